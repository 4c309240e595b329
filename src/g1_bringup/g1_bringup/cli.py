"""The ``g1`` command: one entry point for the stack in the pip world (and on distro installs).

Subcommands are implemented by the package that owns the capability and imported lazily, so that
``g1 --help`` is fast and a broken optional dependency only breaks its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help). The module has add_arguments(parser) and run(args) -> int, or
# add_<name>_arguments / run_<name> when it serves several subcommands.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "track": ("g1_bringup.track", "the main job: track a motion in simulation, record, evaluate, report"),
    "eval": ("g1_bringup.commands", "evaluate a recorded bag: report.json, report.md, plots"),
    "record": ("g1_bringup.commands", "record the tracking topics of a running graph to a bag (MCAP)"),
    "play": ("g1_bringup.commands", "call /play_motion (or --stop, --list) on a running graph"),
    "replay": ("g1_bringup.replay", "feed a bag's recorded observations through another policy (open loop)"),
    "policy": ("g1_tracker_policy.cli", "policy artifacts: inspect the contract, quantize to int8"),
    "motions": ("motion_server.cli", "motion library: list, import, inspect motions"),
    "description": ("g1_description.cli", "G1 description: joints, gains, URDF generation"),
}


def _entry(mod, name: str, what: str):
    return getattr(mod, f"{what}_{name}_arguments" if what == "add" else f"run_{name}", None) or \
        getattr(mod, "add_arguments" if what == "add" else "run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="g1", description="Unitree G1 whole-body motion tracking stack (ROS 2).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:  # keep the rest of the CLI usable; say why this one is not
            sub.add_parser(name, help=f"(unavailable: {exc})").set_defaults(_module=None, _error=str(exc))
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        _entry(mod, name, "add")(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_error", None):
        print(f"g1 {args.command}: unavailable: {args._error}", file=sys.stderr)
        return 2
    if not getattr(args, "_module", None):
        parser.print_help()
        return 0
    try:
        return int(_entry(importlib.import_module(args._module), args.command, "run")(args) or 0)
    except BrokenPipeError:  # `g1 motions list | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
