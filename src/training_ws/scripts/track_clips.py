#!/usr/bin/env python3
"""Evaluate a policy through the deployment path: `g1 track` (sim node + motion server + policy node +
recorder + `g1 eval`) once per clip, then one table per split - the same summary as `g1-train eval`
(g1_train.evaluate.markdown_tables: success, mean completion, median / overall E_mpkpe).

    .venv/bin/python src/training_ws/scripts/track_clips.py --config src/training_ws/configs/general.yaml \
        --split heldout --policy policy.onnx --out /tmp/track_heldout        # or --baseline
    .venv/bin/python src/training_ws/scripts/track_clips.py --clips a.csv b.csv --policy policy.onnx --out DIR

Run it with the main venv (the one with `g1`). Each clip's run lands in OUT/<split>/<clip>/ (bag,
report.json, plots); a clip whose report.json exists is not run again, so an interrupted sweep continues
where it stopped. Writes OUT/summary.json and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

WS = Path(__file__).resolve().parents[1]
ROOT = WS.parents[1]
sys.path.insert(0, str(WS))

from g1_train.config import load_config  # noqa: E402
from g1_train.evaluate import markdown_tables, split_summary  # noqa: E402
from g1_train.motions import _expand  # noqa: E402


def clips_of_split(config: str, split: str, overrides: list[str]) -> dict[str, list[Path]]:
    """Clip files of the config's sources by split (file stem = clip name, as the importer names clips)."""
    cfg = load_config(config, overrides).env.motions
    files = _expand(list(cfg.sources))
    if cfg.names:
        files = [f for f in files if any(n in f.stem for n in cfg.names)]
    held = set(cfg.heldout)
    out = {"train": [f for f in files if f.stem not in held], "heldout": [f for f in files if f.stem in held]}
    missing = held - {f.stem for f in out["heldout"]}
    if missing:
        raise SystemExit(f"track_clips: env.motions.heldout clips not found in the sources: {sorted(missing)}")
    return out if split == "all" else {split: out[split]}


#: what `g1 track` says when its graph never ran a tick (g1_bringup.track): retried once, nothing was measured
NOT_STARTED = "the graph did not run"


def track(g1: Path, clip: Path, out: Path, policy: str | None, duration: float | None, timeout: float,
          ground: str = "auto", reanchor: str = "auto", odometry: str = "ground_truth") -> dict:
    report = out / "report.json"
    if not report.is_file():
        cmd = [str(g1), "track", "--motion", str(clip), "--out", str(out), "--quiet", "--ground", ground,
               "--reanchor-after-blend", reanchor, "--odometry", odometry]
        cmd += ["--baseline"] if policy is None else ["--policy", policy]
        if duration:
            cmd += ["--duration", str(duration)]
        t0 = time.monotonic()
        for attempt in (1, 2):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode == 0 and report.is_file():
                break
            if attempt == 1 and NOT_STARTED in proc.stdout + proc.stderr:
                # the graph never ticked (a node slow to start or to discover its peers on a loaded
                # machine): nothing was measured, so run it once more from scratch
                print(f"  {clip.stem}: the graph did not start ({proc.stderr.strip().splitlines()[-1][:160]}); "
                      "running it again", flush=True)
                shutil.rmtree(out, ignore_errors=True)
                continue
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        print(f"  {clip.stem}: {time.monotonic() - t0:.0f} s", flush=True)
    return json.loads(report.read_text())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="training config whose sources / env.motions.heldout give the clips")
    src.add_argument("--clips", nargs="+", help="clip files (CSV / npz / pkl)")
    p.add_argument("--split", choices=["train", "heldout", "all"], default="heldout")
    p.add_argument("--set", action="append", default=[], help="config override (as g1-train)")
    pol = p.add_mutually_exclusive_group(required=True)
    pol.add_argument("--policy", help="policy artifact (.onnx)")
    pol.add_argument("--baseline", action="store_true", help="the reference pass-through")
    p.add_argument("--out", required=True)
    p.add_argument("--ground", choices=("auto", "on", "off"), default="auto",
                   help="g1 track --ground: foot grounding of the clips (auto = what the policy was trained on)")
    p.add_argument("--reanchor-after-blend", choices=("auto", "on", "off"), default="auto",
                   help="g1 track --reanchor-after-blend (auto = for policies that observe the reference position)")
    p.add_argument("--odometry", choices=("ground_truth", "legs"), default="ground_truth",
                   help="g1 track --odometry: the robot's position for the policy from the simulator or leg odometry")
    p.add_argument("--duration", type=float, help="g1 track --duration (sim seconds, stand-up included)")
    p.add_argument("--max-clips", type=int, default=0, help="at most this many clips per split (0 = all)")
    p.add_argument("--g1", default=str(ROOT / ".venv" / "bin" / "g1"), help="the g1 command")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per clip before giving up")
    args = p.parse_args(argv)

    splits = clips_of_split(args.config, args.split, args.set) if args.config else {"clips": [Path(c) for c in args.clips]}
    out = Path(args.out)
    policy = None if args.baseline else str(Path(args.policy).resolve())
    reports: dict[str, dict] = {}
    for name, files in splits.items():
        files = files[:args.max_clips] if args.max_clips else files
        print(f"{name}: {len(files)} clips", flush=True)
        per_clip = []
        for f in files:
            rep = track(Path(args.g1), f, out / name / f.stem, policy, args.duration, args.timeout, args.ground,
                        args.reanchor_after_blend, args.odometry)
            if not rep["per_clip"]:  # fell (or stopped) before the clip played a frame: a failure, completion 0
                last = next((e["event"] for e in reversed(rep.get("events", [])) if "mode" not in e["event"]), None)
                rep["per_clip"] = [{"motion": f.stem, "success": False, "completion": 0.0, "E_mpkpe_mm": None,
                                    "termination": last or "no played frame"}]
            per_clip += rep["per_clip"]
        scored = [(c["E_mpkpe_mm"], c.get("ticks_before_termination") or c.get("ticks") or 1) for c in per_clip
                  if c.get("E_mpkpe_mm") is not None]
        overall = {"E_mpkpe_mm": sum(e * w for e, w in scored) / sum(w for _, w in scored)} if scored else {}
        reports[name] = {"per_clip": per_clip, "overall": overall}  # overall: tick-weighted, as g1-train eval
    label = "baseline" if args.baseline else args.policy
    (out / "summary.json").write_text(json.dumps(
        {"policy": label, "duration": args.duration, "reanchor_after_blend": args.reanchor_after_blend,
         "odometry": args.odometry,
         "splits": {k: {"summary": split_summary(v), "per_clip": v["per_clip"]} for k, v in reports.items()}},
        indent=2, default=float))
    md = markdown_tables(reports, f"g1 track: {label}" + (f" (--duration {args.duration:g})" if args.duration else "")
                         + f" (--reanchor-after-blend {args.reanchor_after_blend}, --odometry {args.odometry})")
    (out / "summary.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
