"""``g1 motions``: list, import and inspect the motion library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from g1_description import robot

from .library import ENV_VAR, LibraryError, MotionLibrary, UnknownMotionError, check_motion_name, default_library_path
from .motion import Motion, MotionFormatError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    library_help = f"library directory (default: ${ENV_VAR} or {default_library_path()})"
    parser.add_argument("--library", type=Path, default=None, help=library_help)
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="motions in the library: name, duration, fps, source")
    p.add_argument("pattern", nargs="?", default="", help="glob on names, e.g. 'J_Dance*'")
    p.add_argument("--library", type=Path, default=argparse.SUPPRESS, help=library_help)
    p = sub.add_parser("import", help="import CSV / npz / pkl files or whole directories")
    p.add_argument("--library", type=Path, default=argparse.SUPPRESS, help=library_help)
    p.add_argument("paths", nargs="+", type=Path, metavar="FILE|DIR")
    p.add_argument("--fps", type=float, default=None, help="frame rate of the source files (CSV default 60)")
    p.add_argument("--name", default=None, help="library name (single file only; default: the file name)")
    p.add_argument("--license", default=None, help="licence of the source data (default: from a dataset card)")
    p.add_argument("--attribution", default=None, help="attribution text to store with the motion")
    p.add_argument("--ground", action="store_true",
                   help="ground the feet: stance soles flat and on the floor (motion_server.grounding; "
                        "retargeted clips often stand on tilted, hovering feet)")
    p = sub.add_parser("export", help="write a library motion in another framework's format (train it there)")
    p.add_argument("name")
    p.add_argument("--library", type=Path, default=argparse.SUPPRESS, help=library_help)
    p.add_argument("--format", default="mjlab-npz", choices=("mjlab-npz",),
                   help="mjlab-npz: the motion file of mjlab's / BeyondMimic's tracking task (README)")
    p.add_argument("--out", type=Path, default=None, help="output file (default: NAME.npz here)")
    p = sub.add_parser("inspect", help="duration, fps, ranges, provenance; optional PNG plot")
    p.add_argument("name")
    p.add_argument("--library", type=Path, default=argparse.SUPPRESS, help=library_help)
    p.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                   help="write joint trajectories and the root path to this PNG")


def run(args: argparse.Namespace) -> int:
    library = MotionLibrary(args.library)
    return {"list": _list, "import": _import, "inspect": _inspect, "export": _export}[args.action](library, args)


def _export(library: MotionLibrary, args) -> int:
    from .exporters import export_motion

    try:
        motion = library.load(args.name)
    except (UnknownMotionError, MotionFormatError) as exc:
        print(f"g1 motions export: {exc}", file=sys.stderr)
        return 1
    out = args.out or Path(f"{motion.name}.npz")
    try:
        export_motion(motion, out, args.format)
    except OSError as exc:
        print(f"g1 motions export: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({args.format}: {motion.num_frames} frames at {motion.fps:g} Hz, {motion.duration_s:.2f} s)")
    return 0


def _list(library: MotionLibrary, args) -> int:
    try:
        entries = library.entries()
    except LibraryError as exc:
        print(f"g1 motions list: {exc}", file=sys.stderr)
        return 1
    names = library.names(args.pattern)
    if not names:
        print(f"no motions in {library.root}" + (f" matching {args.pattern!r}" if args.pattern else ""))
        return 0
    print(f"{'name':<32} {'duration_s':>10} {'fps':>5} {'frames':>7}  licence   source")
    for name in names:
        e = entries[name]
        print(f"{name:<32} {e.duration_s:>10.2f} {e.fps:>5g} {e.num_frames:>7}  {e.license:<9} {e.source_file}")
    print(f"{len(names)} motions in {library.root}")
    return 0


def source_files(paths: list[Path]) -> list[Path]:
    """Files to import: the files given, and supported files anywhere under the directories given."""
    from .importers import SUFFIXES

    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        else:
            files.append(path)
    return files


def _import(library: MotionLibrary, args) -> int:
    from tqdm import tqdm

    from .importers import MotionImportError, import_motion
    from .kinematics import KeyBodyKinematics

    files = source_files(args.paths)
    if not files:
        print(f"nothing to import in {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 1
    if args.name is not None and len(files) > 1:
        print("--name needs a single file", file=sys.stderr)
        return 2
    if args.name is not None:
        try:
            check_motion_name(args.name)
        except LibraryError as exc:
            print(f"g1 motions import: --name: {exc}", file=sys.stderr)
            return 2
    kinematics = KeyBodyKinematics()
    failed = []
    show_bar = len(files) > 1 or any(p.is_dir() for p in args.paths)
    for path in tqdm(files, desc="importing", unit="file", disable=not show_bar, file=sys.stderr):
        try:
            result = import_motion(path, name=args.name, fps=args.fps, license=args.license,
                                   attribution=args.attribution, kinematics=kinematics, ground=args.ground)
            library.add(result.motion)
        except (MotionImportError, MotionFormatError, OSError) as exc:
            failed.append(path)
            tqdm.write(f"FAILED {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # noqa: BLE001 - one odd file must not abort a directory import
            failed.append(path)
            tqdm.write(f"FAILED {path}: unexpected {type(exc).__name__}: {exc} (please report this file)",
                       file=sys.stderr)
            continue
        for warning in result.warnings:
            tqdm.write(f"warning: {path.name}: {warning}", file=sys.stderr)
        m = result.motion
        tqdm.write(f"imported {m.name}: {m.duration_s:.2f} s, {m.num_frames} frames at {m.fps:g} Hz "
                   f"(source {m.provenance['source_fps']:g} fps)")
    print(f"{len(files) - len(failed)} imported, {len(failed)} failed, library {library.root}")
    return 1 if failed else 0


def _inspect(library: MotionLibrary, args) -> int:
    try:
        motion = library.load(args.name)
    except (UnknownMotionError, MotionFormatError) as exc:
        print(f"g1 motions inspect: {exc}", file=sys.stderr)
        return 1
    print(describe(motion))
    if args.plot:
        plot(motion, args.plot)
        print(f"wrote {args.plot}")
    return 0


def describe(motion: Motion) -> str:
    p = motion.provenance
    lines = [
        f"name        {motion.name}",
        f"duration    {motion.duration_s:.2f} s, {motion.num_frames} frames at {motion.fps:g} Hz",
        f"source      {p.get('source_file', '?')} ({p.get('source_format', '?')}, {p.get('source_fps', '?')} fps)",
        f"licence     {p.get('license', '?')}",
        f"attribution {p.get('attribution', '')}",
        f"importer    {p.get('importer_version', '?')} at {p.get('imported_at', '?')}",
    ]
    for warning in p.get("import_report", []):
        lines.append(f"import note {warning}")
    root = motion.root_pos
    lines.append(f"root x      {root[:, 0].min():+.3f} .. {root[:, 0].max():+.3f} m")
    lines.append(f"root y      {root[:, 1].min():+.3f} .. {root[:, 1].max():+.3f} m")
    lines.append(f"root z      {root[:, 2].min():+.3f} .. {root[:, 2].max():+.3f} m")
    lines.append(f"root speed  max {np.linalg.norm(motion.root_lin_vel, axis=1).max():.2f} m/s")
    lines.append(f"{'joint':<28} {'min':>7} {'max':>7} {'|vel| max':>9}   (rad, rad/s)")
    for j, name in enumerate(robot.JOINT_NAMES):
        q = motion.joint_pos[:, j]
        lines.append(f"{name:<28} {q.min():>+7.3f} {q.max():>+7.3f} {np.abs(motion.joint_vel[:, j]).max():>9.2f}")
    return "\n".join(lines)


def plot(motion: Motion, out: Path) -> None:
    """PNG: joint trajectories per body part and the root path seen from above."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    t = motion.frame_times_s
    groups = {"left leg": range(0, 6), "right leg": range(6, 12), "waist": range(12, 15),
              "left arm": range(15, 22), "right arm": range(22, 29)}
    fig, axes = plt.subplots(3, 2, figsize=(14, 11))
    for ax, (title, joints) in zip(axes.flat, groups.items()):
        for j in joints:
            ax.plot(t, motion.joint_pos[:, j], lw=0.8, label=robot.JOINT_NAMES[j].replace("_joint", ""))
        ax.set_title(title)
        ax.set_xlabel("clip time (s)")
        ax.set_ylabel("rad")
        ax.legend(fontsize=6, loc="upper right")
    ax = axes.flat[5]
    ax.plot(motion.root_pos[:, 0], motion.root_pos[:, 1], lw=1.0)
    ax.plot(*motion.root_pos[0, :2], "go", label="start")
    ax.plot(*motion.root_pos[-1, :2], "rs", label="end")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("root path (top view)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend(fontsize=7)
    fig.suptitle(f"{motion.name}: {motion.duration_s:.1f} s at {motion.fps:g} Hz")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
