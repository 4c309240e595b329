"""Export a distilled student to ONNX through the policy artifact contract.

The contract writer (``g1_tracker_policy.contract.write_artifact``) is the policy node's own: it stores
joint order, gains, default pose, action scale/offset, control rate, the observation config and golden
vectors, then loads the file back through the same checks the node runs. Golden inputs here are real
observations of a short rollout of the student in the training task (from a reset, so the transformer's
rolling context is covered), and golden outputs are torch's actions for them: ONNX Runtime must
reproduce them or the export is refused.

A Transformer student exports as ``transformer_window`` (default: the node keeps the last C observations
and recomputes the window each tick) or ``transformer_kv`` (one new token per tick against a cache of
the last C-1 steps' keys/values: same actions, a fraction of the compute). Its golden vectors run past
the context length (C + 4 steps when the episode lasts), so the loader's golden check also covers the
window sliding.
"""

from __future__ import annotations

import copy
import io
from pathlib import Path

import numpy as np
import onnx
import torch
from tensordict import TensorDict

from g1_description import robot
from g1_tracker_policy import contract

from . import campaign
from .checkpoint_io import load_checkpoint
from .config import TrainCfg, to_dict
from .env import action_scales, pd_gains
from .models import (CausalTransformerModel, ExportFeedForward, ExportTransformerKV, ExportTransformerWindow,
                     count_parameters, transformer_arch_of)
from .train import latest_checkpoint, make_env, model_dict

#: the artifact kinds each student kind can be exported as; the first is the default
EXPORT_KINDS = {"moe": ("moe",), "mlp": ("mlp",), "transformer": ("transformer_window", "transformer_kv")}
MODEL_KIND = {k: v[0] for k, v in EXPORT_KINDS.items()}


class WithFeedback(torch.nn.Module):
    """An export wrapper plus the env's balance feedback (g1_train.feedback) on the current observation:
    the artifact outputs what the policy's action was in training, ``net(obs) + feedback(obs)``. The
    current observation is the obs input (feed-forward, KV) or the last row of the window."""

    def __init__(self, inner: torch.nn.Module, feedback: torch.nn.Module, window: bool):
        super().__init__()
        self.inner, self.feedback, self.window = inner, feedback, window

    def forward(self, obs, *rest):
        out = self.inner(obs, *rest)
        current = obs[:, -1] if self.window else obs
        if isinstance(out, tuple):
            return (out[0] + self.feedback(current),) + tuple(out[1:])
        return out + self.feedback(current)


def load_student(cfg: TrainCfg, checkpoint: Path, obs: TensorDict, live: bool = False):
    """The student of a checkpoint (run directory, model_<it>.pt or slim policy.pt): its averaged weights
    where the run kept them (``student_algo.weight_average``), else - or with ``live`` - the live ones.
    The model's ``weights`` attribute says which (provenance)."""
    from rsl_rl.utils import resolve_class

    cls, kwargs = resolve_class(model_dict(cfg.student, cfg, stochastic=True, learn_std=False))
    groups = {"student": ["policy_context", "context_len"] if cfg.student.kind == "transformer" else ["policy"]}
    state = load_checkpoint(checkpoint)
    if "student_state_dict" not in state:
        raise ValueError(f"{checkpoint} is not a student (distillation) checkpoint: only students are "
                         "deployable, the teacher needs privileged observations")
    if cfg.student.kind == "transformer":  # checkpoints of the first architecture stay exportable
        kwargs["arch"] = transformer_arch_of(state["student_state_dict"])
    model = cls(obs, groups, "student", robot.NUM_JOINTS, **kwargs)
    if not live and campaign.AVERAGE_KEY in state:
        model.load_state_dict(state[campaign.AVERAGE_KEY])
        weights = {"average": state.get(campaign.AVERAGE_INFO_KEY, {})}
    else:
        model.load_state_dict(state["student_state_dict"])
        weights = state.get("weights", "live")  # a slim policy.pt of an averaging run holds the average
    model.weights = weights
    return model.eval()


def _golden_rollout(cfg: TrainCfg):
    """A short deterministic rollout (no randomisation) that the golden vectors are drawn from."""
    c = copy.deepcopy(cfg)
    c.env.num_envs = 1
    c.env.randomization.enabled = False
    env, venv = make_env(c, with_context=True)
    return env, venv


def export_student(cfg: TrainCfg, checkpoint: str | Path, out_path: str | Path, golden_steps: int | None = None,
                   name: str | None = None, model_kind: str | None = None,
                   live: bool = False) -> contract.PolicyArtifact:
    """``live``: export the live weights of a run that also kept averaged ones (:func:`load_student`).
    ``model_kind``: the artifact kind, one of ``EXPORT_KINDS[cfg.student.kind]`` (default: the first).
    ``golden_steps``: length of the golden rollout (default 6, or C + 4 for a Transformer of context C)."""
    allowed = EXPORT_KINDS.get(cfg.student.kind)
    if allowed is None:
        raise ValueError(f"student.kind {cfg.student.kind!r} cannot be exported; one of {sorted(EXPORT_KINDS)}")
    kind = model_kind or allowed[0]
    if kind not in allowed:
        raise ValueError(f"a {cfg.student.kind} student exports as {' or '.join(allowed)}, not {kind!r}")
    ckpt = latest_checkpoint(checkpoint)
    env, venv = _golden_rollout(cfg)
    model = load_student(cfg, ckpt, venv.get_observations(), live=live)
    if golden_steps is None:
        golden_steps = max(6, model.context + 4) if isinstance(model, CausalTransformerModel) else 6

    inputs, outputs = [], []
    with torch.inference_mode():
        for _ in range(golden_steps):
            obs = venv.get_observations()
            action = model(obs)
            inputs.append(obs["policy"][0].numpy().copy())
            total = action[0].numpy().astype(np.float64)
            if env.feedback is not None:  # the env adds it in step(); the artifact outputs the sum
                total = total + env.feedback.action_delta(obs["policy"][0:1].numpy())[0]
            outputs.append(total.astype(np.float32))
            _, _, dones, _ = venv.step(action)
            if bool(dones[0]):
                break  # the golden protocol is one episode from a reset
    golden_in, golden_out = np.stack(inputs), np.stack(outputs)

    d = env.obs_cfg.size
    output_names = [contract.OUTPUT_ACTION]
    if kind == "transformer_kv":
        wrapper = ExportTransformerKV(model).eval()
        args = (torch.zeros(1, d), torch.zeros(wrapper.kv_shape), torch.zeros(1, dtype=torch.int64))
        input_names = [contract.INPUT_OBS, contract.INPUT_PAST_KV, contract.INPUT_PAST_LEN]
        output_names.append(contract.OUTPUT_PRESENT_KV)
    elif kind == "transformer_window":
        wrapper = ExportTransformerWindow(model).eval()
        args = (torch.zeros(1, model.context, d), torch.ones(1, dtype=torch.int64))
        input_names = [contract.INPUT_OBS, contract.INPUT_CONTEXT_LEN]
    else:
        wrapper = ExportFeedForward(model).eval()
        args = (torch.zeros(1, d),)
        input_names = [contract.INPUT_OBS]
    if env.feedback is not None:
        wrapper = WithFeedback(wrapper, env.feedback.torch_module(), window=kind == "transformer_window").eval()
    provenance = {
        "trainer": "g1_train (rsl-rl-lib DAgger distillation of a GMT-style MoE teacher)",
        "student": cfg.student.kind, "parameters": count_parameters(model), "checkpoint": str(ckpt),
        "weights": model.weights,
    }
    if isinstance(model, CausalTransformerModel):
        # the window the student was trained on; a KV artifact caches C-1 steps and attends to C
        provenance["transformer"] = {"arch": model.arch, "context_steps": model.context}
        if kind == "transformer_kv":
            provenance["transformer"]["kv_cache_steps"] = model.context - 1
    return _write(cfg, env, wrapper, args, input_names, output_names, kind, out_path, name, provenance,
                  golden_in, golden_out)


def export_feedback_only(cfg: TrainCfg, out_path: str | Path, golden_steps: int = 6,
                         name: str | None = None) -> contract.PolicyArtifact:
    """An artifact of the config's balance feedback alone (no network: the policy's action is the feedback,
    the PD target the reference plus it): the fitted prior's own row in evaluations, and a policy the stack
    can run before any PPO."""
    if not cfg.env.balance_feedback:
        raise ValueError("export --feedback-only: the config has no env.balance_feedback gains")
    env, venv = _golden_rollout(cfg)
    inputs, outputs = [], []
    zero = torch.zeros(1, robot.NUM_JOINTS)
    for _ in range(golden_steps):
        obs = venv.get_observations()
        inputs.append(obs["policy"][0].numpy().copy())
        outputs.append(env.feedback.action_delta(obs["policy"][0:1].numpy())[0].astype(np.float32))
        _, _, dones, _ = venv.step(zero)
        if bool(dones[0]):
            break
    wrapper = env.feedback.torch_module().eval()
    provenance = {"trainer": "g1_train balance feedback only (scripts/fit_balance_feedback.py; no network)",
                  "parameters": 0}
    return _write(cfg, env, wrapper, (torch.zeros(1, env.obs_cfg.size),), [contract.INPUT_OBS],
                  [contract.OUTPUT_ACTION], "mlp", out_path, name, provenance, np.stack(inputs), np.stack(outputs))


def _write(cfg: TrainCfg, env, wrapper, args, input_names, output_names, kind, out_path, name, provenance,
           golden_in, golden_out) -> contract.PolicyArtifact:
    buf = io.BytesIO()
    torch.onnx.export(wrapper, args, buf, input_names=input_names, output_names=output_names,
                      opset_version=17, dynamo=False)
    onnx_model = onnx.load_from_string(buf.getvalue())
    provenance = {
        "name": name or Path(out_path).stem,
        **provenance,
        "motions": env.motions.names[:50], "num_motions": env.motions.num_clips,
        "train_config": to_dict(cfg),
        # g1_description.physics profile it was trained with: `g1-train eval` simulates with it
        "physics_profile": env.profile.name,
        # trained on foot-grounded clips (motion_server.grounding): `g1 track` grounds the clip it plays
        "reference_grounding": bool(cfg.env.motions.ground_feet),
        # the fixed balance feedback inside the graph (g1_train.feedback), or [] for none
        "balance_feedback": [float(g) for g in cfg.env.balance_feedback],
    }
    kp, kd = pd_gains(cfg.env)  # the gains the policy was trained with
    return contract.write_artifact(out_path, onnx_model, model_kind=kind, observation=env.obs_cfg,
                                   kp=kp, kd=kd, action_scale=action_scales(cfg.env), action_base=cfg.env.action_base,
                                   provenance=provenance,
                                   golden_inputs=golden_in, golden_outputs=golden_out)
