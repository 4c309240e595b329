"""Campaign checks that need torch: run in the training venv by test_train_campaign.py.

    python campaign_checks.py digest CKPT            -> JSON {iter, model, optimizer, campaign keys}
    python campaign_checks.py env_roundtrip SOURCES  -> JSON: a TrackingEnv's state restored into a fresh
                                                        env continues bit-identically
    python campaign_checks.py recipe_change SOURCES  -> JSON: a state restored under other gains / action
                                                        scale keeps the new config's
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import torch


def _tensor_digest(obj, h) -> None:
    if isinstance(obj, torch.Tensor):
        h.update(obj.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(str(k).encode())
            _tensor_digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensor_digest(v, h)
    else:
        h.update(repr(obj).encode())


def digest(path: str) -> dict:
    from g1_train.train import state_digest

    state = torch.load(path, map_location="cpu", weights_only=True)  # the format's promise
    opt = hashlib.sha256()
    _tensor_digest(state["optimizer_state_dict"], opt)
    c = state.get("campaign", {})
    return {"iter": state["iter"], "model": state_digest(state), "optimizer": opt.hexdigest(),
            "campaign_keys": sorted(c), "ranks": len(c.get("ranks", [])), "env_steps": c.get("env_steps"),
            "physics": (c.get("ranks") or [{}])[0].get("env", {}).get("physics", {}).get("kind")}


def slim(path: str) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {"keys": sorted(state), "iter": state["iter"]}


def env_roundtrip(source: str) -> dict:
    """Step env A; snapshot; build env B from the same config (another seed), restore; step both with the
    same actions: observations, rewards and the simulator states stay bit-identical."""
    from g1_train import campaign
    from g1_train.config import EnvCfg, MotionCfg
    from g1_train.env import TrackingEnv
    from g1_train.motions import load_motion_set

    ms = load_motion_set(MotionCfg(sources=[source], max_clips=2))
    cfg = EnvCfg(num_envs=3, seed=5)
    cfg.sampling.start_sampling = "adaptive"
    cfg.sampling.max_segment_s = 0.5  # several resets within the test
    a = TrackingEnv(cfg, ms)
    rng = np.random.default_rng(0)
    for _ in range(7):
        a.step(rng.normal(0, 0.5, (3, 29)))
    saved = campaign.env_state(a)
    # through the file format, as a checkpoint does (weights_only)
    import io
    buf = io.BytesIO()
    torch.save(saved, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    cfg_b = EnvCfg(num_envs=3, seed=99)
    cfg_b.sampling.start_sampling = "adaptive"
    cfg_b.sampling.max_segment_s = 0.5
    b = TrackingEnv(cfg_b, ms)
    restored = campaign.load_env_state(b, saved)
    max_diff, resets = 0.0, 0
    for _ in range(40):
        act = rng.normal(0, 0.5, (3, 29))
        oa, ra, ta, toa, _ = a.step(act)
        ob, rb, tb, tob, _ = b.step(act)
        resets += int((ta | toa).sum())
        for k in oa:
            max_diff = max(max_diff, float(np.abs(oa[k] - ob[k]).max()))
        max_diff = max(max_diff, float(np.abs(ra - rb).max()), float(np.abs(a.friction - b.friction).max()))
        assert np.array_equal(ta, tb) and np.array_equal(toa, tob)
    qa, qb = (np.array(e.physics.qpos) if hasattr(e.physics, "qpos")  # batch backend: one bound array
              else np.array([d.qpos.copy() for d in e.physics.datas]) for e in (a, b))
    return {"restored": restored, "max_diff": max_diff, "qpos_diff": float(np.abs(qa - qb).max()),
            "resets": resets, "rng_equal": a.rng.integers(1 << 30) == b.rng.integers(1 << 30)}


def recipe_change(source: str) -> dict:
    """A task state saved under the general recipe (STAND gains, constant scale 0.25) restored into an env
    of the improved recipe (tracking gains, effort_over_kp scale): the env keeps the new config's gains and
    action scale (config-derived, not task state), the episodes in flight continue."""
    from g1_description import robot
    from g1_train import campaign
    from g1_train.config import EnvCfg, MotionCfg
    from g1_train.env import TrackingEnv, action_scales
    from g1_train.motions import load_motion_set

    ms = load_motion_set(MotionCfg(sources=[source], max_clips=2))
    old = TrackingEnv(EnvCfg(num_envs=2, seed=5, gains="stand"), ms)
    old.step(np.zeros((2, 29)))
    saved = campaign.env_state(old)
    new_cfg = EnvCfg(num_envs=2, seed=6, gains="tracking", action_scale_mode="effort_over_kp")
    new = TrackingEnv(new_cfg, ms)
    restored = campaign.load_env_state(new, saved)
    return {"restored": restored, "saved_has_scale": "action_scale" in saved["arrays"],
            "kp_is_new": bool(np.array_equal(new.kp, robot.KP)),
            "scale_is_new": bool(np.array_equal(new.action_scale, action_scales(new_cfg))),
            "frame_continued": bool(np.array_equal(new.frame, old.frame))}


if __name__ == "__main__":
    cmd, arg = sys.argv[1], sys.argv[2]
    print(json.dumps({"digest": digest, "slim": slim, "env_roundtrip": env_roundtrip,
                      "recipe_change": recipe_change}[cmd](arg), default=str))
