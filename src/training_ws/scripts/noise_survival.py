#!/usr/bin/env python3
"""How long the zero action (the pass-through of the reference, for a residual config) stays up with
PPO-style Gaussian exploration noise on it: the training env with nominal physics, one env per clip,
spawned in every clip's first frame, actions ~ N(0, sigma) (x the config's action scale).

    src/training_ws/.venv/bin/python src/training_ws/scripts/noise_survival.py \\
        --config src/training_ws/configs/general.yaml --sigma 0 0.05 0.15
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g1_description import robot  # noqa: E402
from g1_train.config import load_config  # noqa: E402
from g1_train.motions import load_motion_set  # noqa: E402


def survival_s(cfg, ms, sigma: float, max_s: float, seed: int = 0) -> np.ndarray:
    """(clips,) seconds until the first termination (at most ``max_s``)."""
    from g1_train.teacher_eval import survival

    rng, a = np.random.default_rng(seed), robot.NUM_JOINTS
    share = survival(cfg, ms, lambda obs: rng.normal(0.0, sigma, (obs["policy"].shape[0], a)), max_s)
    last = np.minimum(ms.length - 1, int(round(max_s / robot.CONTROL_PERIOD_S)))
    return share * (last + 1) * robot.CONTROL_PERIOD_S


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], help="config override (as g1-train)")
    p.add_argument("--sigma", type=float, nargs="+", default=[0.0, 0.05, 0.15])
    p.add_argument("--split", choices=["train", "heldout", "all"], default="all")
    p.add_argument("--max-s", type=float, default=20.0)
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.set)
    ms = load_motion_set(cfg.env.motions, split=args.split, augmented=False)
    print(f"{ms.num_clips} clips, grounded feet: {cfg.env.motions.ground_feet}, first {args.max_s:g} s")
    for sigma in args.sigma:
        s = survival_s(cfg, ms, sigma, args.max_s)
        print(f"sigma {sigma:g}: survival median {np.median(s):.2f} s, mean {s.mean():.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
