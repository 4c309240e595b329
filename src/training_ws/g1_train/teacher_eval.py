"""Deterministic evaluation of a teacher (PPO or SAC) in the training task: ``g1-train eval --teacher RUN``.

A teacher reads privileged observations, so it cannot be exported and run by the policy node; this runs
it where it was trained instead - :class:`g1_train.env.TrackingEnv` with randomisation off (nominal
physics, the config's physics profile and backend, no pushes, no joint noise), one env per clip, every
clip from its first frame to its end (or ``max_s``) with the reference velocities, the deterministic
action (PPO: the Gaussian's mean; SAC: ``bound * tanh(mean)``), and the env's terminations (an env stops
recording at its first termination). The ticks go through ``g1_bringup.metrics.compute_metrics``
(:func:`g1_train.evaluate.clip_parts_metrics`), the same success / completion / E_mpkpe as ``g1-train
eval`` and ``g1 eval``. Not the deployment path (no observation latency, no motion server, no student):
comparable between teachers evaluated this way, not with artifact tables.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tensordict import TensorDict

from .checkpoint_io import load_checkpoint
from .config import TrainCfg
from .env import TrackingEnv
from .evaluate import ROW_KEYS, clip_part, clip_parts_metrics
from .motions import MotionSet
from .sac import is_sac_checkpoint, load_sac_actor, teacher_obs
from .train import latest_checkpoint, model_dict

Act = Callable[[dict[str, np.ndarray]], np.ndarray]

#: ``--teacher zero``: a policy that always outputs 0 (with ``env.action_base: reference_next_frame`` the
#: pass-through of the reference under the config's gains; with ``offset`` the default pose): the 0-step row
ZERO_POLICY = "zero"


def teacher_checkpoint(path: str | Path) -> Path:
    """A run directory's slim ``policy.pt`` if it has one (the newest actor), else its newest checkpoint."""
    p = Path(path)
    if p.is_dir() and (p / "policy.pt").is_file():
        return p / "policy.pt"
    return latest_checkpoint(p)


def load_teacher_policy(cfg: TrainCfg, checkpoint: str | Path, example_obs: dict[str, np.ndarray]) -> tuple[Act, str]:
    """(deterministic act(obs dict) -> (N, 29) actions, algorithm name) of a PPO or SAC teacher checkpoint
    (``model_<it>.pt`` or slim ``policy.pt``), or of :data:`ZERO_POLICY`."""
    if str(checkpoint) == ZERO_POLICY:
        return (lambda obs: np.zeros((len(obs["policy"]), 29))), "zero action"
    ckpt = teacher_checkpoint(checkpoint)
    state = load_checkpoint(ckpt, map_location="cpu")
    if is_sac_checkpoint(state):
        x = teacher_obs(example_obs)
        actor = load_sac_actor(cfg, state, x.shape[1], 29)

        def act(obs):
            with torch.inference_mode():
                return actor(torch.as_tensor(teacher_obs(obs))).numpy().astype(np.float64)
        return act, "sac"
    if "actor_state_dict" not in state:
        raise ValueError(f"{ckpt} holds no teacher actor (neither a PPO actor_state_dict nor a SAC actor)")
    from rsl_rl.utils import resolve_class

    cls, kwargs = resolve_class(model_dict(cfg.teacher, cfg, stochastic=True))
    groups = ["policy", "privileged"]
    td = lambda o: TensorDict({k: torch.as_tensor(o[k]) for k in groups}, batch_size=[len(o["policy"])])  # noqa: E731
    model = cls(td(example_obs), {"actor": groups}, "actor", 29, **kwargs)
    model.load_state_dict(state["actor_state_dict"])
    model.eval()

    def act(obs):
        with torch.inference_mode():
            return model(td(obs)).numpy().astype(np.float64)  # deterministic: the distribution's mean
    return act, "ppo"


def eval_env(cfg: TrainCfg, ms: MotionSet) -> TrackingEnv:
    """The training task with nominal physics and one env per clip, clips never cut."""
    c = copy.deepcopy(cfg.env)
    c.num_envs = ms.num_clips
    c.randomization.enabled = False
    c.sampling.start_sampling = "segments"
    c.sampling.max_segment_s = float(ms.length.max()) * 0.02 + 1.0
    return TrackingEnv(c, ms)


def _start_clips(cfg: TrainCfg, ms: MotionSet, max_s: float | None) -> tuple[TrackingEnv, np.ndarray]:
    """:func:`eval_env` with every env in its clip's first frame; (env, the last frame of each episode)."""
    env = eval_env(cfg, ms)
    n = env.num_envs
    last = ms.length - 1
    if max_s:
        last = np.minimum(last, int(round(max_s / env.dt)))
    last = last.astype(np.int64)
    env.reset(np.ones(n, dtype=bool), episodes=(np.arange(n), np.zeros(n, dtype=np.int64), last))
    env.obs = env._observe()
    return env, last


def survival(cfg: TrainCfg, ms: MotionSet, act: Act, max_s: float) -> np.ndarray:
    """(clips,) share of each clip's first ``max_s`` played before its first termination: one env per clip
    (:func:`eval_env`), spawned in the clip's first frame, ``act(obs) -> (N, A)`` every step (the scripts'
    zero action with noise, the balance feedback fit)."""
    env, last = _start_clips(cfg, ms, max_s)
    n = env.num_envs
    alive, running = np.zeros(n), np.ones(n, dtype=bool)
    for _ in range(int(last.max()) + 1):
        _, _, terminated, time_out, _ = env.step(act(env.obs))
        alive += running
        running &= ~(terminated | time_out)
        if not running.any():
            break
    return alive / (last + 1)


def evaluate_teacher(cfg: TrainCfg, checkpoint: str | Path, ms: MotionSet, max_s: float | None = None) -> dict:
    """Metrics (``compute_metrics``' report: per_clip + overall) of the deterministic teacher on every clip."""
    env, last = _start_clips(cfg, ms, max_s)
    act, algo = load_teacher_policy(cfg, checkpoint, env.obs)
    n = env.num_envs
    rows = [{k: [] for k in ROW_KEYS} for _ in range(n)]
    running = np.ones(n, dtype=bool)
    while running.any():
        _, _, terminated, time_out, _ = env.step(act(env.obs))
        running &= ~(terminated | time_out)   # a done env was reset: its state is no longer this episode's
        s = env.state
        for i in np.flatnonzero(running):
            r = rows[i]
            r["ref_idx"].append(int(ms.start[i] + env.frame[i]))
            r["q"].append(s.joint_pos[i].copy())
            r["root_pos"].append(s.root_pos[i].copy())
            r["root_quat"].append(s.root_quat[i].copy())
            r["lin"].append(s.root_lin_vel[i].copy())
            r["ang"].append(s.root_ang_vel[i].copy())
            r["kb"].append(s.key_body_pos[i].copy())
    parts = []
    for c in range(n):
        r = rows[c]
        if not r["q"]:  # terminated on the first step: one tick at the start keeps the clip in the table
            r = {k: [v] for k, v in zip(ROW_KEYS, (int(ms.start[c]), ms.joint_pos[ms.start[c]], ms.root_pos[ms.start[c]],
                                                   ms.root_quat_wxyz[ms.start[c]], ms.root_lin_vel[ms.start[c]],
                                                   ms.root_ang_vel[ms.start[c]], ms.key_body_pos[ms.start[c]]))}
        parts.append(clip_part(ms, c, r, last[c] * env.dt, env.dt))
    metrics = clip_parts_metrics(parts, ms.key_body_names)
    metrics["controller"] = f"teacher ({algo}, deterministic, training env, nominal physics)"
    metrics["physics_profile"] = env.profile.name
    metrics["checkpoint"] = ZERO_POLICY if str(checkpoint) == ZERO_POLICY else str(teacher_checkpoint(checkpoint))
    return metrics
