"""``g1 description``: print the G1 description or write the generated URDF."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import mjcf, robot, urdf


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", metavar="WHAT", required=True)
    sub.add_parser("info", help="joint table: SDK index, name, limits, default, kp/kd, effort")
    p = sub.add_parser("urdf", help="write the URDF generated from the MJCF (for robot_description)")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")


def run(args: argparse.Namespace) -> int:
    if args.what == "info":
        print(f"MJCF: {mjcf.scene_path()}")
        print(f"{'idx':>3} {'joint':<28} {'lower':>8} {'upper':>8} {'default':>8} {'kp':>7} {'kd':>6} {'effort':>6}")
        for j in robot.JOINTS:
            print(f"{j.index:>3} {j.name:<28} {j.lower_rad:>8.3f} {j.upper_rad:>8.3f} {j.default_rad:>8.3f} "
                  f"{j.kp:>7.2f} {j.kd:>6.2f} {j.effort_limit:>6.0f}")
        print("key bodies:", ", ".join(robot.KEY_BODIES))
        return 0
    text = urdf.generate_urdf()
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
