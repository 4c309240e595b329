#!/usr/bin/env python3
"""Compare two `track_clips.py` sweeps clip by clip on the ticks BOTH played.

A policy that falls early is scored on the easy first seconds of each clip; one that plays longer is also
scored on the harder rest. This re-reads both sweeps' bags and averages each clip's errors only up to the
clip time where the first of the two runs terminated (the metrics' own termination rule), so the two
numbers of a clip cover the same reference frames. Medians over clips, per group, and the clip-by-clip
table.

    .venv/bin/python src/training_ws/scripts/compare_sweeps.py runs/eval/new runs/eval/old \
        --names new old --taught B_Fence1 B_DadDance ... [--out compare.md]

Run it with the main venv (the one with `g1`). Both folders: OUT/<split>/<clip>/bag as track_clips.py
writes them; clips missing from either are listed and skipped.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from g1_bringup import evaluation, metrics


def played_errors(bag: Path) -> dict[str, np.ndarray]:
    """Clip time and per-tick errors of the longest clip segment of a bag, up to its termination."""
    rec = evaluation.build_record(evaluation.read_bag(bag)).rec
    errors = metrics.per_tick_errors(rec)
    segments = metrics.clip_segments(rec)
    if not segments:
        raise ValueError(f"{bag}: no clip was played")
    _, idx = max(segments, key=lambda s: len(s[1]))
    fail_at = metrics.termination_index(idx, errors)
    valid = idx if fail_at is None else idx[:fail_at]
    return {"t": rec.clip_time_s[valid], "mpkpe": errors["mpkpe_mm"][valid],
            "rel": errors["key_body_rel_mm"][valid], "xy": errors["root_xy_mm"][valid]}


def matched(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict | None:
    if not len(a["t"]) or not len(b["t"]):
        return None
    t_end = float(min(a["t"][-1], b["t"][-1]))
    ma, mb = a["t"] <= t_end + 1e-9, b["t"] <= t_end + 1e-9
    return {"t_end": t_end, **{f"{k}_{s}": float(x[k][m].mean()) for s, x, m in (("a", a, ma), ("b", b, mb))
                               for k in ("mpkpe", "rel", "xy")}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", type=Path, help="first sweep folder")
    p.add_argument("b", type=Path, help="second sweep folder")
    p.add_argument("--names", nargs=2, default=("A", "B"), help="column names of the two sweeps")
    p.add_argument("--taught", nargs="*", default=[], help="clips trained on: a separate group")
    p.add_argument("--out", type=Path, help="also write the markdown here")
    args = p.parse_args(argv)

    rows: dict[str, dict] = {}
    skipped = []
    for bag_a in sorted(args.a.glob("*/*/bag")):
        split, clip = bag_a.parts[-3], bag_a.parts[-2]
        bag_b = args.b / split / clip / "bag"
        if not bag_b.is_dir():
            skipped.append(clip)
            continue
        m = matched(played_errors(bag_a), played_errors(bag_b))
        if m is None:
            skipped.append(clip)
            continue
        rows[clip] = {"split": split, **m}
        print(f"{clip}: {m['mpkpe_a']:.1f} vs {m['mpkpe_b']:.1f} mm over {m['t_end']:.1f} s", file=sys.stderr)
    if not rows:
        raise SystemExit("compare_sweeps: no clip is in both sweeps")

    na, nb = args.names
    taught = set(args.taught)
    groups = [("all", list(rows))]
    if taught:
        groups += [("taught", [c for c in rows if c in taught]), ("never taught", [c for c in rows if c not in taught])]
    groups.append(("held out", [c for c in rows if rows[c]["split"] == "heldout"]))
    med = lambda clips, key: statistics.median(rows[c][key] for c in clips)  # noqa: E731
    lines = [f"| clips | n | median matched E_mpkpe mm: {na} / {nb} | {na} lower on | root-relative mm: {na} / {nb} "
             f"| E_root_xy mm: {na} / {nb} | median matched clip time s |", "|---|---|---|---|---|---|---|"]
    for name, clips in groups:
        if not clips:
            continue
        lower = sum(rows[c]["mpkpe_a"] < rows[c]["mpkpe_b"] for c in clips)
        lines.append(f"| {name} | {len(clips)} | {med(clips, 'mpkpe_a'):.1f} / {med(clips, 'mpkpe_b'):.1f} | "
                     f"{lower}/{len(clips)} | {med(clips, 'rel_a'):.1f} / {med(clips, 'rel_b'):.1f} | "
                     f"{med(clips, 'xy_a'):.1f} / {med(clips, 'xy_b'):.1f} | {med(clips, 't_end'):.1f} |")
    lines += ["", f"| clip | split | matched clip time s | E_mpkpe mm: {na} | {nb} |", "|---|---|---|---|---|"]
    lines += [f"| {c} | {r['split']} | {r['t_end']:.1f} | {r['mpkpe_a']:.1f} | {r['mpkpe_b']:.1f} |" for c, r in rows.items()]
    if skipped:
        lines += ["", f"skipped (not in both sweeps, or nothing played): {', '.join(skipped)}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
