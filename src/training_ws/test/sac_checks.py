"""SAC checks that need torch: run in the training venv by test_train_sac.py (not collected directly)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from g1_train.config import TrainCfg, load_config
from g1_train.sac import DoubleQ, ReplayBuffer, SacActor, SacLearner, load_sac_actor

WS = Path(__file__).resolve().parents[1]
ROOT = WS.parents[1]
SMOKE = WS / "configs" / "smoke.yaml"
# a few small SAC updates on the smoke task (4 envs x 8 steps per iteration)
SAC_SET = ["teacher_algo.kind=sac", "sac.batch_size=32", "sac.learning_starts=40", "sac.buffer_size=2000",
           "sac.critic_hidden=[64,64]", "campaign.checkpoint_every_s=1000"]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "g1_train.cli", *args], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"g1-train {' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-4000:]}")
    return proc


def _sets(extra: list[str] = ()) -> list[str]:
    return [a for s in SAC_SET + list(extra) for a in ("--set", s)]


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    cfg = TrainCfg()
    cfg.teacher.kind = "mlp"
    cfg.teacher.expert_hidden = [16]
    torch.manual_seed(0)
    actor = SacActor(cfg, obs_dim=7, act_dim=3)
    x = torch.randn(64, 7)
    torch.manual_seed(1)
    a, logp = actor.sample(x)
    mean, log_std = actor._head(x)
    torch.manual_seed(1)
    u = mean + log_std.exp() * torch.randn_like(mean)  # the same noise draw
    torch.testing.assert_close(a, torch.tanh(u))
    dist = torch.distributions.TransformedDistribution(torch.distributions.Normal(mean, log_std.exp()),
                                                       [torch.distributions.TanhTransform(cache_size=1)])
    torch.testing.assert_close(logp, dist.log_prob(torch.tanh(u)).sum(-1), rtol=1e-4, atol=1e-4)
    assert (a.abs() < 1).all()
    # the deterministic action is bound * tanh(mean) of the normalised observation
    actor.eval()
    torch.testing.assert_close(actor(x), cfg.sac.action_bound * torch.tanh(actor._head(actor.normalizer(x))[0]))


def test_replay_buffer_next_observation_is_the_same_envs_next_row():
    buf = ReplayBuffer(capacity=5 * 3, num_envs=3, obs_dim=2, act_dim=1, device="cpu")
    assert buf.rows == 5
    gen = torch.Generator().manual_seed(0)
    for t in range(12):  # wraps around twice; row value = step * 10 + env
        obs = torch.tensor([[t * 10.0 + e, 0.0] for e in range(3)])
        buf.add(obs, torch.full((3, 1), float(t)), torch.full((3,), float(t)), torch.zeros(3), torch.ones(3))
        if buf.size >= 2:
            o, a, r, d, ok, o2 = buf.sample(256, gen)
            step, env = (o[:, 0] // 10), o[:, 0] % 10
            torch.testing.assert_close(o2[:, 0], o[:, 0] + 10.0)    # the same env, one step later
            torch.testing.assert_close(a[:, 0], step)               # the action of that step
            assert int(step.max()) < t                              # never the newest row (no successor yet)
            assert int(step.min()) >= t - buf.rows + 1              # only rows still in the ring
            assert set(env.long().tolist()) <= {0, 1, 2}
    assert buf.transitions == (buf.rows - 1) * 3


def test_update_is_finite_and_target_critics_follow_by_polyak():
    cfg = load_config(SMOKE, ["sac.critic_hidden=[32,32]", "sac.tau=0.25"])
    obs_dim = 30 + 9 * 7  # any size above the MoE layout's proprio + reference part works for an MLP
    cfg.teacher.kind = "mlp"
    cfg.teacher.expert_hidden = [32]
    torch.manual_seed(0)
    learner = SacLearner(cfg, obs_dim, 29)
    target_before = [p.clone() for p in learner.critic_target.parameters()]
    b = 64
    batch = (torch.randn(b, obs_dim), torch.rand(b, 29) * 2 - 1, torch.randn(b), (torch.rand(b) < 0.1).float(),
             (torch.rand(b) < 0.9).float(), torch.randn(b, obs_dim))
    out = learner.update(batch)
    assert all(math.isfinite(v) for v in out.values())
    for p, pt, old in zip(learner.critic.parameters(), learner.critic_target.parameters(), target_before):
        torch.testing.assert_close(pt, 0.75 * old + 0.25 * p)
    assert learner.updates == 1 and isinstance(learner.critic_target, DoubleQ)


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sac") / "teacher"
    proc = _cli("teacher", "--config", str(SMOKE), "--out", str(out), "--iterations", "4", *_sets())
    return out, proc


def test_sac_teacher_trains_with_finite_losses_and_writes_checkpoints(sac_run):
    out, proc = sac_run
    prog = [json.loads(ln) for ln in (out / "progress.jsonl").read_text().splitlines()]
    assert [p["it"] for p in prog] == [0, 1, 2, 3]
    assert prog[-1]["env_steps"] == 4 * 8 * 4 and prog[-1]["updates"] > 0
    learnt = [p for p in prog if "critic_loss" in p]
    assert learnt and all(math.isfinite(p[k]) for p in learnt for k in ("critic_loss", "actor_loss", "alpha", "q"))
    assert (out / "model_3.pt").is_file() and (out / "policy.pt").is_file()
    assert "teacher checkpoint:" in proc.stdout


def test_sac_checkpoint_and_slim_snapshot_reload_to_the_same_actor(sac_run):
    out, _ = sac_run
    cfg = load_config(out / "config.yaml")
    full = torch.load(out / "model_3.pt", weights_only=True)
    slim = torch.load(out / "policy.pt", weights_only=True)
    assert full["algorithm"] == slim["algorithm"] == "sac" and full["sac"]["updates"] > 0
    d = next(iter(full["sac"]["actor"]["normalizer._mean"].shape[1:]))
    a1, a2 = load_sac_actor(cfg, full, d, 29), load_sac_actor(cfg, slim, d, 29)
    x = torch.randn(5, d)
    torch.testing.assert_close(a1(x), a2(x))
    assert float(a1.normalizer.count) > 0  # the normaliser statistics travelled with the actor
    fresh = SacActor(cfg, d, 29).eval()
    assert not torch.allclose(fresh(x), a1(x))


def test_sac_resume_continues_the_run(sac_run, tmp_path):
    out, _ = sac_run
    before = torch.load(out / "model_3.pt", weights_only=True)["sac"]["updates"]
    proc = _cli("teacher", "--config", str(SMOKE), "--resume", str(out), "--iterations", "2", *_sets())
    assert "resumed SAC" in proc.stdout
    prog = [json.loads(ln) for ln in (out / "progress.jsonl").read_text().splitlines()]
    assert [p["it"] for p in prog][-2:] == [4, 5]
    after = torch.load(out / "model_5.pt", weights_only=True)
    assert after["sac"]["updates"] > before and after["campaign"]["env_steps"] == 6 * 8 * 4


def test_sac_honours_max_seconds(tmp_path):
    out = tmp_path / "timed"
    proc = _cli("teacher", "--config", str(SMOKE), "--out", str(out), "--iterations", "100000",
                "--max-seconds", "25", *_sets())
    stops = [json.loads(ln) for ln in (out / "campaign.jsonl").read_text().splitlines()
             if json.loads(ln)["event"] == "stop"]
    assert stops and stops[-1]["reason"] == "max_seconds"
    assert list(out.glob("model_*.pt")) and (out / "policy.pt").is_file()
    assert "max_seconds" in proc.stdout


def test_teacher_eval_runs_sac_and_ppo_teachers_in_the_training_env(sac_run, tmp_path):
    out, _ = sac_run
    j = tmp_path / "sac.json"
    proc = _cli("eval", "--config", str(SMOKE), "--teacher", str(out), "--split", "train", "--max-s", "1.5",
                "--json", str(j), *_sets())
    rep = json.loads(j.read_text())["splits"]
    assert rep["train"]["controller"].startswith("teacher (sac")
    assert rep["train"]["summary"]["clips"] == 2 and 0.0 <= rep["train"]["summary"]["completion_mean"] <= 1.0
    assert "success=" in proc.stdout
    ppo = tmp_path / "ppo"
    _cli("teacher", "--config", str(SMOKE), "--out", str(ppo), "--iterations", "1")
    j2 = tmp_path / "ppo.json"
    _cli("eval", "--config", str(SMOKE), "--teacher", str(ppo), "--split", "train", "--max-s", "1.5", "--json", str(j2))
    rep2 = json.loads(j2.read_text())["splits"]["train"]
    assert rep2["controller"].startswith("teacher (ppo")
    assert [c["motion"] for c in rep2["per_clip"]] == [c["motion"] for c in rep["train"]["per_clip"]]


def test_distilling_a_sac_teacher_is_refused_with_a_clear_error(sac_run, tmp_path):
    out, _ = sac_run
    proc = _cli("student", "--config", str(SMOKE), "--teacher", str(out), "--out", str(tmp_path / "s"), check=False)
    assert proc.returncode == 2
    assert "is a SAC teacher" in proc.stderr
