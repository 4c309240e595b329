"""Benchmark: `g1 eval` time for a 60 s recorded run, and the real-time factor of `g1 track` in lockstep
with recording; runs the same track twice and checks that the reports are identical.

    .venv/bin/python bench/eval_speed.py [--clip-s 56] [--keep DIR]

Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/motion_server.py would shadow the motion_server package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def track(out: Path, library: Path, motion: str, controller: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "g1_bringup.cli", "track", "--out", str(out), "--quiet", "--library",
                    str(library), "--motion", motion, *controller], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip-s", type=float, default=56.0, help="clip length; stand-up adds ~4 s")
    parser.add_argument("--keep", type=Path, help="keep the runs in this directory")
    parser.add_argument("--policy", default="shipped",
                        help="'shipped' (the default policy: it tracks the whole slow squat, the baseline falls "
                             "half-way), 'baseline', or an ONNX file")
    args = parser.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randrange(20, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from g1_bringup import default_motion
    from g1_bringup.evaluation import evaluate_bag

    root = args.keep or Path(tempfile.mkdtemp(prefix="g1-eval-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    from motion_server.importers import import_motion
    from motion_server.library import MotionLibrary

    csv = default_motion.write_csv(root / "long_squat.csv", duration_s=args.clip_s)
    library = MotionLibrary(root / "library")
    library.add(import_motion(csv, name="long_squat", fps=default_motion.FPS).motion)
    controller = {"shipped": [], "baseline": ["--baseline"]}.get(args.policy, ["--policy", args.policy])
    runs = []
    for i in range(2):
        out = root / f"run{i}"
        wall = track(out, library.root, "long_squat", controller)
        final = json.loads((out / "sim_final.json").read_text())
        report = json.loads((out / "report.json").read_text())
        runs.append({"wall_s": wall, "sim": final, "report": report})
        print(f"run {i}: g1 track wall {wall:.1f} s (incl. start-up and evaluation), sim {final['sim_time_s']:.1f} s, "
              f"sim-node RTF {final['real_time_factor']:.2f}x", file=sys.stderr)
    eval_times = []
    for i in range(3):
        t0 = time.perf_counter()
        evaluate_bag(root / "run0" / "bag", root / f"eval{i}", plots=False)
        eval_times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    evaluate_bag(root / "run0" / "bag", root / "eval_plots", plots=True)
    eval_with_plots = time.perf_counter() - t0
    recorded_s = runs[0]["sim"]["sim_time_s"]
    same = (runs[0]["report"]["overall"] == runs[1]["report"]["overall"]
            and runs[0]["report"]["per_clip"] == runs[1]["report"]["per_clip"])
    same_state = runs[0]["sim"]["state_sha256"] == runs[1]["sim"]["state_sha256"]
    result = {
        "controller": runs[0]["report"]["controller"],
        "completion": runs[0]["report"]["overall"].get("completion"),
        "recorded_sim_s": round(recorded_s, 2),
        "eval_s_median": round(sorted(eval_times)[1], 3),
        "eval_s_with_plots": round(eval_with_plots, 3),
        "eval_s_per_60s_recorded": round(sorted(eval_times)[1] * 60.0 / recorded_s, 3),
        "track_lockstep_rtf_sim_node": round(min(r["sim"]["real_time_factor"] for r in runs), 2),
        "track_rtf_end_to_end": round(min(r["sim"]["sim_time_s"] / r["wall_s"] for r in runs), 2),
        "identical_reports": same,
        "bit_identical_final_state": same_state,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
