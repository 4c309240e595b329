"""``g1-train teacher|student|export|eval``: the training workspace's command line.

    g1-train teacher --config configs/teacher.yaml [--resume RUN_DIR|CKPT] [--iterations N] [--set k=v ...]
    g1-train student --config configs/student_moe.yaml --teacher RUN_DIR|CKPT [--resume ...]
    g1-train student --config configs/expert_fence1.yaml     (env.experts: motion experts label)
    g1-train student --config ... --init STUDENT_RUN      (a new run from another student's weights)
    g1-train export  --checkpoint STUDENT_RUN_DIR|CKPT --out policy.onnx [--model-kind transformer_kv]
    g1-train export  --feedback-only --config CONFIG --out feedback.onnx   (env.balance_feedback alone)
    g1-train eval    --artifact policy.onnx|baseline | --checkpoint STUDENT | --teacher TEACHER_RUN --config CFG
                     [--split train|heldout|all]
                     [--max-s S] [--json report.json] [--markdown table.md]
    g1-train teacher|student ... --max-seconds S     (a campaign leg: resumable checkpoints, then --resume RUN)

Every run directory holds the resolved ``config.yaml``, TensorBoard event files, ``progress.jsonl``
and ``model_<it>.pt`` checkpoints; ``--resume`` continues from the newest checkpoint of a run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import ConfigError, TrainCfg, load_config

STARTED = time.monotonic()  # --max-seconds counts from here (imports and env building included)


def _add_common(p: argparse.ArgumentParser, config_required: bool = True) -> None:
    p.add_argument("--config", required=config_required, help="YAML config (see configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set env.num_envs=128 (repeatable)")


def _add_campaign(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-seconds", type=float, metavar="S",
                   help="campaign leg: stop (with a resumable checkpoint) so that the command ends within S "
                        "seconds of its start; checkpoints also every campaign.checkpoint_every_s and on "
                        "SIGTERM/SIGINT. Continue with --resume RUN (same run directory)")


def _config_for_checkpoint(args) -> TrainCfg:
    """The config a checkpoint was trained with (its run's config.yaml) unless --config is given."""
    if args.config:
        return load_config(args.config, args.set)
    ckpt = Path(args.checkpoint)
    run = ckpt if ckpt.is_dir() else ckpt.parent
    if not (run / "config.yaml").is_file():
        raise ConfigError(f"{run} has no config.yaml; pass --config with the config it was trained with")
    return load_config(run / "config.yaml", args.set)


def _eval(args) -> None:
    import tempfile

    from .evaluate import evaluate

    cfg = load_config(args.config, args.set)
    if args.teacher:  # deterministic teacher in the training env (g1_train.teacher_eval)
        from .teacher_eval import evaluate_teacher

        splits = {name: evaluate_teacher(cfg, args.teacher, ms, args.max_s) for name, ms in _motion_sets(cfg, args.split)}
        _report(args, splits, args.teacher)
        return
    with tempfile.TemporaryDirectory(prefix="g1_eval_") as tmp:
        artifact = args.artifact
        if args.checkpoint:
            from .export import export_student

            artifact = str(Path(tmp) / "policy.onnx")
            export_student(cfg, args.checkpoint, artifact, name=Path(args.checkpoint).stem)
        splits = {name: evaluate(None if artifact == "baseline" else artifact, ms, args.max_s)
                  for name, ms in _motion_sets(cfg, args.split)}
    _report(args, splits, args.checkpoint or args.artifact)


def _motion_sets(cfg: TrainCfg, split: str | None):
    """(table name, MotionSet) per evaluated split: ``None`` = the config's motion set as trained
    ("config"); train / heldout / all = the clips as files, no augmentation."""
    from .motions import load_motion_set

    if split is None:
        yield "config", load_motion_set(cfg.env.motions)
        return
    for name in (["train", "heldout"] if split == "all" else [split]):
        yield name, load_motion_set(cfg.env.motions, split=name, augmented=False)


def _report(args, splits: dict, label: str) -> None:
    from .evaluate import markdown_tables, split_summary

    if args.json:
        out = next(iter(splits.values())) if args.split is None else {
            "policy": label, "max_s": args.max_s,
            "splits": {k: {"summary": split_summary(v), **v} for k, v in splits.items()}}
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
    if args.markdown:
        Path(args.markdown).write_text(markdown_tables(splits, f"g1-train eval: {label}"
                                                       + (f" (first {args.max_s:g} s of each clip)" if args.max_s else "")))
    for name, report in splits.items():
        for clip in report["per_clip"]:
            print(f"{name:<8} {clip['motion']:<28} success={clip['success']!s:<5} completion={clip['completion']:.2f} "
                  f"E_mpkpe={clip['E_mpkpe_mm'] or float('nan'):.1f} mm")
    for name, report in splits.items():
        print(json.dumps({"split": name, "controller": report["controller"], **split_summary(report),
                          **report["overall"]}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="g1-train", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("teacher", help="train the privileged MoE teacher (PPO, or SAC with teacher_algo.kind=sac)")
    _add_common(p)
    p.add_argument("--out", help="run directory (default: <log_root>/<name>/teacher_<time>)")
    p.add_argument("--resume", help="run directory or checkpoint to continue from")
    p.add_argument("--iterations", type=int, help="override teacher_algo.iterations")
    _add_campaign(p)

    p = sub.add_parser("student", help="DAgger-distil the teacher into a deployable student")
    _add_common(p)
    p.add_argument("--teacher", help="teacher run directory or checkpoint (not needed with --resume or a motion "
                   "expert, env.experts)")
    p.add_argument("--kind", choices=["moe", "transformer"], help="override student.kind")
    p.add_argument("--out")
    p.add_argument("--resume")
    p.add_argument("--init", metavar="RUN|CKPT",
                   help="start a new run from another student run's weights and normaliser (fresh optimiser, "
                   "iteration 0): e.g. the same student with more motion experts or clips; the networks must "
                   "have the same shapes")
    p.add_argument("--iterations", type=int)
    _add_campaign(p)

    p = sub.add_parser("export", help="export a student checkpoint to an ONNX policy artifact")
    _add_common(p, config_required=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="student run directory or checkpoint")
    src.add_argument("--feedback-only", action="store_true",
                     help="no network: an artifact of --config's env.balance_feedback alone (g1_train.feedback)")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--name", help="artifact name (provenance); default: the file stem")
    p.add_argument("--live", action="store_true",
                   help="a run with student_algo.weight_average: export its live weights instead of the average")
    p.add_argument("--model-kind", choices=["moe", "mlp", "transformer_window", "transformer_kv"],
                   help="artifact model kind; a transformer student: transformer_window (default; the node "
                        "recomputes the rolling context every tick) or transformer_kv (KV cache, one new token "
                        "per tick, same actions)")

    p = sub.add_parser("eval", help="run an artifact (or the pass-through baseline) in MuJoCo, report metrics")
    _add_common(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--artifact", help="policy .onnx, or 'baseline' for the pass-through")
    what.add_argument("--checkpoint", help="student run directory, checkpoint or slim policy.pt: exported to a "
                                           "temporary artifact first")
    what.add_argument("--teacher", help="teacher run directory (its policy.pt) or checkpoint, PPO or SAC: run "
                                        "deterministically in the training env (nominal physics, each clip from "
                                        "its start; g1_train.teacher_eval), not through an artifact; 'zero' = "
                                        "the zero action (the reference pass-through of a residual config)")
    p.add_argument("--split", choices=["train", "heldout", "all"],
                   help="evaluate the config's clips as files (no augmentation): train = all but "
                        "env.motions.heldout, heldout = those, all = both (a table per split); default: "
                        "every clip the config trains on, augmented ones included")
    p.add_argument("--max-s", type=float, help="evaluate at most this many seconds of each clip")
    p.add_argument("--json", help="write the full report here")
    p.add_argument("--markdown", help="write the summary and per-clip tables here")

    args = parser.parse_args(argv)
    try:
        if args.command == "teacher":
            from .train import train_teacher

            cfg = load_config(args.config, args.set)
            ckpt = train_teacher(cfg, out=args.out, resume=args.resume, iterations=args.iterations,
                                 max_seconds=args.max_seconds, started=STARTED)
            if ckpt is not None:  # None on torchrun ranks other than 0: they write nothing
                print(f"teacher checkpoint: {ckpt}")
        elif args.command == "student":
            from .train import train_student

            cfg = load_config(args.config, args.set)
            if args.kind:
                cfg.student.kind = args.kind
            if not (args.teacher or args.resume or cfg.env.experts):
                parser.error("student: give --teacher (a teacher run), --resume (a student run) or a config with "
                             "env.experts (motion experts)")
            if args.init and args.resume:
                parser.error("student: --init starts a new run, --resume continues one: give one of them")
            ckpt = train_student(cfg, teacher=args.teacher, out=args.out, resume=args.resume, init=args.init,
                                 iterations=args.iterations, max_seconds=args.max_seconds, started=STARTED)
            if ckpt is not None:
                print(f"student checkpoint: {ckpt}")
        elif args.command == "export":
            from .export import export_feedback_only, export_student

            if args.feedback_only:
                if not args.config:
                    parser.error("export --feedback-only: give --config (the config with env.balance_feedback)")
                art = export_feedback_only(load_config(args.config, args.set), args.out, name=args.name)
            else:
                cfg = _config_for_checkpoint(args)
                art = export_student(cfg, args.checkpoint, args.out, name=args.name, model_kind=args.model_kind,
                                     live=args.live)
            weights = art.provenance.get("weights", "live") if not args.feedback_only else None
            print(f"exported {art.model_kind} policy to {art.path} (observation size {art.observation.size}, "
                  f"golden vectors checked by ONNX Runtime" + (f"; weights: {weights}" if weights else "") + ")")
        else:
            _eval(args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"g1-train {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
