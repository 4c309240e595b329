"""``g1 policy``: look inside a policy artifact, quantize it."""

from __future__ import annotations

import argparse
import json
import sys

from g1_tracker_policy import contract as c


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    p = sub.add_parser("inspect", help="check an artifact against this robot and print its contract")
    p.add_argument("artifact")
    p.add_argument("--json", action="store_true", help="print the contract fields as JSON")
    p.add_argument("--sidecar", default=None, metavar="YAML",
                   help="policies trained elsewhere: facts the file lacks (default: <policy>.g1.yaml next to it)")
    p = sub.add_parser("quantize", help="write an int8-weight copy (faster on CPU), refused if actions move")
    p.add_argument("artifact")
    p.add_argument("out")
    p.add_argument("--max-target-diff-rad", type=float, default=None,
                   help="largest allowed joint-target change vs the float model (default 0.02)")


def run(args: argparse.Namespace) -> int:
    try:
        if args.policy_command == "inspect":
            from g1_tracker_policy import external

            art = external.load_policy(args.artifact, args.sidecar)
            if isinstance(art, external.ExternalArtifact):  # mjlab / holosoma export
                info = art.describe()
                if args.json:
                    print(json.dumps(info, indent=2, default=str))
                else:
                    for k, v in info.items():
                        print(f"{k:18s} {v}")
                    print(f"{art.format} export: OK (joints mapped by name; gains, default pose, action scale and "
                          "observation terms from " + ("the file" if set(art.facts_from.values()) == {"metadata"}
                                                       else "the file and the sidecar") + ")")
                return 0
            info = {"path": str(art.path), "name": art.name, "model_kind": art.model_kind,
                    "action_base": art.action_base, "observation_size": art.observation.size,
                    "history_length": art.observation.history_length,
                    "future_offsets": list(art.observation.future_offsets), "io": art.io,
                    "provenance": {k: v for k, v in art.provenance.items() if k != "train_config"}}
            if args.json:
                print(json.dumps(info, indent=2, default=str))
            else:
                for k, v in info.items():
                    print(f"{k:18s} {v}")
                print("contract: OK (joint order, default pose, gains, rate, layout, golden vectors)")
            return 0
        from g1_tracker_policy.quantize import DEFAULT_MAX_TARGET_DIFF_RAD, QuantizationError, quantize_artifact

        tol = DEFAULT_MAX_TARGET_DIFF_RAD if args.max_target_diff_rad is None else args.max_target_diff_rad
        try:
            art, rep = quantize_artifact(args.artifact, args.out, max_target_diff_rad=tol)
        except QuantizationError as exc:
            print(f"g1 policy quantize: refused: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {art.path} ({rep['bytes_int8'] / 1e6:.1f} MB, float {rep['bytes_float'] / 1e6:.1f} MB): "
              f"joint targets within {rep['max_target_diff_rad']:.4f} rad of the float model "
              f"(mean {rep['mean_target_diff_rad']:.5f}) on {rep['checked_steps']} steps")
        return 0
    except c.ContractError as exc:
        print(f"g1 policy {args.policy_command}: {exc}", file=sys.stderr)
        return 1
