"""Do the motion experts walk the robot back onto the clip's path? Every clip of an expert config, a few
envs each, started ``--offset`` m off the reference pelvis (x/y uniform, the env's reset pose range),
the experts' labels acting; the median pelvis x/y error over time at each ``env.expert_position_gain``.

    src/training_ws/.venv/bin/python src/training_ws/scripts/expert_position_gain.py \\
        --config src/training_ws/configs/experts_g1moves8.yaml --gain 1 4 --offset 0.15
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g1_train.config import load_config  # noqa: E402
from g1_train.env import TrackingEnv  # noqa: E402
from g1_train.motions import load_motion_set  # noqa: E402

REPORT_S = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


def root_xy_error(cfg, ms, offset_m: float, seconds: float, repeats: int, seed: int) -> tuple[np.ndarray, float]:
    """((T + 1, N) pelvis x/y error (m) per step and env, NaN after an env's episode ended; the step (s))."""
    c = copy.deepcopy(cfg.env)
    clips = np.repeat(np.arange(ms.num_clips), repeats)
    n = clips.size
    c.num_envs, c.seed = n, seed
    c.randomization.init_root_xy_m, c.randomization.init_yaw_rad = offset_m, 0.0
    c.sampling.start_sampling = "segments"
    c.sampling.max_segment_s = float(ms.length.max()) * 0.02 + 1.0
    env = TrackingEnv(c, ms)
    steps = int(round(seconds / env.dt))
    last = np.minimum(ms.length[clips] - 1, steps + 1).astype(np.int64)
    env.reset(np.ones(n, dtype=bool), episodes=(clips, np.zeros(n, dtype=np.int64), last))
    env.obs = env._observe()
    running, out = np.ones(n, dtype=bool), []
    for _ in range(steps + 1):
        err = np.linalg.norm(env.state.root_pos[:, :2] - env.reference().root_pos[:, 0, :2], axis=-1)
        out.append(np.where(running, err, np.nan))
        _, _, terminated, time_out, _ = env.step(env.obs["expert_action"].astype(np.float64))
        running &= ~(terminated | time_out)
    return np.array(out), env.dt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a config with env.experts")
    p.add_argument("--set", action="append", default=[], help="config override (as g1-train)")
    p.add_argument("--gain", type=float, nargs="+", default=[1.0, 4.0])
    p.add_argument("--offset", type=float, default=0.15, help="start up to this far off the reference (m)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=3, help="envs per clip")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for gain in args.gain:
        cfg = load_config(args.config, [*args.set, f"env.expert_position_gain={gain}"])
        if not cfg.env.experts:
            p.error(f"{args.config} names no env.experts")
        ms = load_motion_set(cfg.env.motions, split="train", augmented=False)
        h, dt = root_xy_error(cfg, ms, args.offset, args.seconds, args.repeats, args.seed)
        cells = []
        for t in (t for t in REPORT_S if t <= args.seconds):
            row = h[int(round(t / dt))]
            cells.append(f"{t:g} s: {1000 * np.nanmedian(row):.0f} mm ({np.sum(~np.isnan(row))} up)")
        print(f"gain {gain:g}, {h.shape[1]} envs ({ms.num_clips} clips), start <= {args.offset:g} m off: "
              + ", ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
