"""What leg odometry (g1_hardware.leg_odometry) costs per 50 Hz estimate, beside the forward kinematics it
is built on (one mj_kinematics call), on random poses around the default stand (no simulation).

    .venv/bin/python bench/leg_odometry.py [--frames 3000] [--repeat 5]

Both are timed in the same run over the same frames; the ratio is the figure to compare across machines.
Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from g1_description import robot
from g1_hardware.leg_odometry import KNEES, LegOdometry


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=3000)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    q = robot.clip_to_limits(robot.DEFAULT_JOINT_POS + 0.2 * rng.standard_normal((args.frames, robot.NUM_JOINTS)))
    tilt = 0.1 * rng.standard_normal((args.frames, 3))
    quat = np.concatenate([np.ones((args.frames, 1)), tilt / 2], axis=1)
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    tau = np.zeros_like(q)
    tau[:, list(KNEES)] = -10.0  # double support: both feet weighted
    odo = LegOdometry()
    fk_s, est_s = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        for i in range(len(q)):
            odo.feet_from_pelvis(q[i], quat[i])
        t1 = time.perf_counter()
        odo.reset()
        for i in range(len(q)):
            odo.update(q[i], quat[i], i * robot.CONTROL_PERIOD_S, tau[i])
        t2 = time.perf_counter()
        fk_s.append((t1 - t0) / len(q))
        est_s.append((t2 - t1) / len(q))
    fk, est = float(np.median(fk_s)) * 1e6, float(np.median(est_s)) * 1e6
    print(f"{len(q)} frames x {args.repeat}: forward kinematics {fk:.1f} us, whole estimate {est:.1f} us "
          f"({est / fk:.1f}x; {est / (robot.CONTROL_PERIOD_S * 1e6) * 100:.2f} % of a 20 ms tick)")
    print(json.dumps({"frames": len(q), "fk_us": round(fk, 1), "estimate_us": round(est, 1),
                      "ratio": round(est / fk, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
