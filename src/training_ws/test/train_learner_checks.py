"""Learner-side speed settings change nothing that is learned: run in the training venv by
test_train_learner.py (not collected directly; the working directory is the repository root).

- fused Adam (``fused_optimizer``) follows torch's default Adam update rule, and a real teacher run with it
  takes the same actions and reaches the same parameters (to float rounding) as with rsl-rl's default Adam;
- the fused flag survives loading a checkpoint (``load_state_dict`` overwrites the optimiser's flags);
- ``torch_threads`` sets torch's intra-op threads;
- ``teacher_algo.mixed_precision`` (a recipe option) runs the update's matmuls in bf16, the rollout in float32;
- the teacher's env never builds the student's Transformer context.
"""

from __future__ import annotations

import contextlib
import copy
import io
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from g1_train.config import load_config
from g1_train.models import MotionMoE
from g1_train.train import TeacherRunner, apply_learner_settings, make_env, set_fused_optimizer, teacher_runner_cfg

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def _ops(step) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return {e.key for e in prof.key_averages()}


def test_fused_adam_follows_the_default_update_rule():
    torch.manual_seed(0)
    net = MotionMoE(12, 5, 7, 3, 29, num_experts=2, expert_hidden=[32], gate_hidden=[16], encoder_channels=[8, 8],
                    encoder_out=8)
    nets = {"default": net, "fused": copy.deepcopy(net)}
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, m in nets.items()}
    set_fused_optimizer(opts["fused"], True)
    x, y = torch.randn(64, 12 + 5 * 7 + 3), torch.randn(64, 29)
    initial = [p.detach().clone() for p in net.parameters()]
    kernels = {}
    for it in range(10):
        for k, m in nets.items():
            opts[k].zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            ops = _ops(opts[k].step) if it == 0 else (opts[k].step() or set())
            kernels.setdefault(k, ops)
    assert "aten::_fused_adam_" in kernels["fused"] and "aten::_fused_adam_" not in kernels["default"]
    moved = max((p - q).abs().max().item() for p, q in zip(nets["default"].parameters(), initial))
    diff = max((p - q).abs().max().item() for p, q in zip(nets["default"].parameters(), nets["fused"].parameters()))
    assert moved > 5e-3, "the optimiser did not move the parameters: the comparison would prove nothing"
    assert diff < 1e-6, f"fused Adam left the default rule by {diff}"
    set_fused_optimizer(opts["fused"], False)  # back to torch's default choice
    assert all(g["fused"] is None and g["foreach"] is None for g in opts["fused"].param_groups)


def _teacher(fused: bool, mixed_precision: bool = False):
    cfg = load_config(SMOKE)
    cfg.fused_optimizer = fused
    cfg.teacher_algo.mixed_precision = mixed_precision
    torch.manual_seed(cfg.env.seed)
    _, venv = make_env(cfg, with_context=False)
    with contextlib.redirect_stdout(io.StringIO()):
        runner = TeacherRunner(venv, teacher_runner_cfg(cfg), log_dir=None, device="cpu")
    runner.logger.log = lambda *a, **k: None
    apply_learner_settings(runner, cfg)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    step = venv.step

    def recording_step(actions):
        obs, *rest = step(actions)
        seen.append((actions.detach().clone().numpy(), obs["policy"].clone().numpy()))
        return obs, *rest

    venv.step = recording_step
    return runner, seen


def test_teacher_with_fused_adam_acts_and_learns_as_with_the_default():
    """Two teacher runs from one seed, rsl-rl's default Adam vs fused: the first iteration's rollout is
    bit-identical (nothing learned yet), later actions and observations and the final parameters agree to
    float rounding, and the parameters did move."""
    runs = {k: _teacher(k == "fused") for k in ("default", "fused")}
    initial = {k: p.detach().clone() for k, p in runs["default"][0].alg.actor.state_dict().items()}
    for runner, _ in runs.values():
        torch.manual_seed(1)  # the action noise: one stream per run
        runner.learn(3)
    (a_def, seen_def), (a_fus, seen_fus) = runs["default"], runs["fused"]
    steps = a_def.cfg["num_steps_per_env"]
    assert len(seen_def) == len(seen_fus) == 3 * steps
    for t, ((act0, obs0), (act1, obs1)) in enumerate(zip(seen_def, seen_fus)):
        if t < steps:
            assert np.array_equal(act0, act1) and np.array_equal(obs0, obs1), f"step {t}: rollouts differ before any update"
        else:
            np.testing.assert_allclose(act1, act0, atol=1e-4, err_msg=f"step {t}: actions")
            np.testing.assert_allclose(obs1, obs0, atol=1e-4, err_msg=f"step {t}: observations")
    final_def, final_fus = a_def.alg.actor.state_dict(), a_fus.alg.actor.state_dict()
    moved = max((final_def[k] - initial[k]).abs().max().item() for k in initial)
    diff = max((final_def[k] - final_fus[k]).abs().max().item() for k in initial)
    assert moved > 1e-3 and diff < 1e-5, (moved, diff)
    assert a_def.alg.learning_rate == a_fus.alg.learning_rate  # the adaptive KL schedule took the same steps


def test_fused_flag_survives_loading_a_checkpoint(tmp_path):
    old, _ = _teacher(fused=False)  # a checkpoint as written before: default Adam flags
    old.learn(1)
    old.save(str(tmp_path / "model_0.pt"))
    saved_flags = torch.load(tmp_path / "model_0.pt", weights_only=True)["optimizer_state_dict"]["param_groups"][0]
    assert saved_flags["fused"] is None
    new, _ = _teacher(fused=True)
    new.load(str(tmp_path / "model_0.pt"))
    assert all(g["fused"] is True and g["foreach"] is False for g in new.alg.optimizer.param_groups)
    assert new.alg.optimizer.state_dict()["state"], "the optimiser state was not loaded"
    new.learn(1)  # the loaded Adam state (moments, step) runs in the fused kernel
    back, _ = _teacher(fused=False)
    back.load(str(tmp_path / "model_0.pt"))
    assert all(g["fused"] is None for g in back.alg.optimizer.param_groups)


def test_torch_threads_setting():
    runner, _ = _teacher(fused=True)
    cfg = load_config(SMOKE)
    torch.set_num_threads(2)
    cfg.torch_threads = 0
    apply_learner_settings(runner, cfg)
    assert torch.get_num_threads() == 2  # 0 = leave torch's own setting
    cfg.torch_threads = 1
    apply_learner_settings(runner, cfg)
    assert torch.get_num_threads() == 1


def test_teacher_env_builds_no_transformer_context():
    runner, _ = _teacher(fused=True)
    env = runner.env.env
    assert env.keep_context is False
    runner.learn(1)
    assert set(runner.env.get_observations().keys()) == {"policy", "privileged"}
    assert "policy_context" not in env.obs
    # a built window advances with every step of an episode (context_steps = steps since reset, + 1 for the
    # constructor's first observation); here some episode ran for >= 2 steps and the window never advanced
    assert env.episode_len.max() >= 2 and env.context_steps.max() <= 1


def test_mixed_precision_option_runs_the_update_in_bf16():
    dtypes: dict[str, set] = {}
    for mixed in (False, True):
        runner, _ = _teacher(fused=True, mixed_precision=mixed)
        assert runner.alg.use_mixed_precision is mixed
        seen: set = set()
        runner.alg.critic.mlp[0].register_forward_hook(
            lambda m, i, o, seen=seen: seen.add(("grad" if torch.is_grad_enabled() else "rollout", o.dtype)))
        runner.learn(1)
        assert all(torch.isfinite(p).all() for p in runner.alg.actor.parameters())
        dtypes[str(mixed)] = seen
    assert dtypes["False"] == {("rollout", torch.float32), ("grad", torch.float32)}
    assert dtypes["True"] == {("rollout", torch.float32), ("grad", torch.bfloat16)}
