"""Training throughput on this machine, end to end: env steps/s of whole TrackingEnv steps (physics,
observations, rewards, resets) and of PPO teacher iterations (MoE actor rollout + update), for the old
path (C-MuJoCo backend, drivers_500hz, Transformer context built every step) against the new default
(batch backend, actuator_200hz, context only when a model reads it) in interleaved rounds of one run,
with the ratio; the two intermediate variants show where the gain comes from. Then MuJoCo-Warp raw
stepping on a flat floor, and student (DAgger) updates/s on the default backend.

Run with the training venv:  src/training_ws/.venv/bin/python src/training_ws/bench/train_throughput.py
Prints figures; the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def timed_learn(runner, iterations: int) -> list[dict]:
    """Run ``iterations`` and capture rsl-rl's collect/learn times per iteration (no console spam)."""
    times = []

    def log(*args, **kwargs):
        times.append({"collect_s": kwargs["collect_time"], "learn_s": kwargs["learn_time"]})

    runner.logger.log = log
    runner.learn(iterations)
    return times[1:] if len(times) > 1 else times  # the first iteration includes warm-up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num-envs", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--steps", type=int, default=24, help="rollout steps per env and iteration")
    ap.add_argument("--motions", default=str(ROOT.parent / "shared/data/motions/g1_moves/dance"))
    ap.add_argument("--max-clips", type=int, default=4)
    ap.add_argument("--warp-device", default="cpu", help="device of the MuJoCo-Warp measurement (cpu, cuda:0, auto)")
    ap.add_argument("--warp-num-envs", type=int, default=0, help="envs of the warp measurement (0 = --num-envs)")
    ap.add_argument("--skip-warp", action="store_true", help="do not measure the MuJoCo-Warp backend")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of the old/new comparison")
    ap.add_argument("--env-steps", type=int, default=50, help="control steps per raw env measurement")
    ap.add_argument("--skip-teacher", action="store_true", help="raw env stepping only in the comparison")
    ap.add_argument("--skip-students", action="store_true", help="do not measure the DAgger students")
    args = ap.parse_args()

    from rsl_rl.runners import DistillationRunner, OnPolicyRunner

    from g1_train.config import TrainCfg
    from g1_train.env import TrackingEnv
    from g1_train.motions import load_motion_set
    from g1_train.train import make_env, student_runner_cfg, teacher_runner_cfg

    cfg = TrainCfg()
    cfg.env.num_envs = args.num_envs
    cfg.env.motions.sources = [args.motions]
    cfg.env.motions.max_clips = args.max_clips
    cfg.teacher_algo.num_steps_per_env = cfg.student_algo.num_steps_per_env = args.steps
    cfg.student_algo.gradient_length = args.steps // 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"{args.num_envs} envs, {args.steps} steps/iteration, randomisation on (flat floor)")
    results: dict = {"num_envs": args.num_envs, "steps_per_iteration": args.steps}
    motions = load_motion_set(cfg.env.motions)
    n = args.env_steps

    def variant_cfg(backend: str, profile: str) -> TrainCfg:
        c = copy.deepcopy(cfg)
        c.env.backend, c.env.physics_profile = backend, profile
        return c

    def env_rate(c: TrainCfg, context: bool) -> tuple[float, float]:
        """Whole TrackingEnv steps (physics, observations, rewards, terminations, resets) with zero actions,
        and the same steps counting only the time in the backend's step."""
        e = TrackingEnv(c.env, motions)
        e.keep_context = context
        zeros = np.zeros((c.env.num_envs, 29))
        e.step(zeros)  # warm-up
        physics_s = [0.0]
        physics_step = e.physics.step

        def timed_step(*a):
            t = time.perf_counter()
            physics_step(*a)
            physics_s[0] += time.perf_counter() - t

        e.physics.step = timed_step
        t0 = time.perf_counter()
        for _ in range(n):
            e.step(zeros)
        steps = n * c.env.num_envs
        return round(steps / (time.perf_counter() - t0), 1), round(steps / physics_s[0], 1)

    def teacher_rate(c: TrainCfg, context: bool) -> tuple[float, float, float]:
        """PPO teacher iterations (rollout with the MoE actor, then the update): env steps/s."""
        env, venv = make_env(c, with_context=False)
        env.keep_context = context  # the old code built the Transformer window although nothing read it
        with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the networks
            runner = OnPolicyRunner(venv, teacher_runner_cfg(c), log_dir=None, device="cpu")
        t = timed_learn(runner, args.iterations)
        steps = c.env.num_envs * args.steps
        collect = float(np.mean([x["collect_s"] for x in t]))
        learn = float(np.mean([x["learn_s"] for x in t]))
        return round(steps / collect, 1), round(steps / (collect + learn), 1), round(learn, 3)

    # 1. old vs new, end to end, interleaved rounds on the same (shared) machine. "old" = the code before
    # the batch backend: C-MuJoCo, drivers_500hz, the Transformer context built every step.
    variants = {
        "old_c_mujoco": ("mujoco", "drivers_500hz", True),
        "c_mujoco_no_context": ("mujoco", "drivers_500hz", False),
        "batch_drivers_500hz": ("batch", "drivers_500hz", False),
        "new_batch_actuator_200hz": ("batch", "actuator_200hz", False),
    }
    teacher_variants = ("old_c_mujoco", "new_batch_actuator_200hz")
    rates: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    for r in range(args.rounds):
        for name, (backend, profile, context) in variants.items():
            c = variant_cfg(backend, profile)
            env_s, phys_s = env_rate(c, context)
            got = {"env_steps_per_s": env_s, "physics_env_steps_per_s": phys_s}
            if name in teacher_variants and not args.skip_teacher:
                roll, overall, upd = teacher_rate(c, context)
                got.update(teacher_rollout_env_steps_per_s=roll, teacher_env_steps_per_s_incl_update=overall,
                           teacher_update_s=upd)
            for k, v in got.items():
                rates[name].setdefault(k, []).append(v)
            print(f"round {r + 1} {name:26s} " + ", ".join(f"{k} {v}" for k, v in got.items()))
    for name, d in rates.items():
        for k, v in d.items():
            results[f"{name}_{k}"] = round(float(np.median(v)), 1)
    old, new = rates["old_c_mujoco"], rates["new_batch_actuator_200hz"]
    for k in new:
        if k in old and k.endswith("_per_s"):  # per-round ratios (same minute of the shared machine), then their median
            ratio = float(np.median([b / a for a, b in zip(old[k], new[k])]))
            results[f"ratio_new_over_old_{k}"] = round(ratio, 2)
            print(f"new / old {k}: {ratio:.2f}x (median of {args.rounds} rounds)")

    # 1b. MuJoCo-Warp on a flat floor (its own device), for comparison
    if not args.skip_warp:
        wn = args.warp_num_envs or args.num_envs
        c = variant_cfg("warp", "")
        c.env.warp_device, c.env.num_envs = args.warp_device, wn
        t_build = time.perf_counter()
        TrackingEnv(c.env, motions)
        built = round(time.perf_counter() - t_build, 2)
        rate, phys = env_rate(c, False)
        results.update({"warp_device": args.warp_device, "warp_num_envs": wn, "warp_env_build_s": built,
                        "warp_flat_env_steps_per_s_raw": rate, "warp_flat_physics_env_steps_per_s": phys})
        print(f"MuJoCo-Warp on {args.warp_device}, {wn} worlds, flat floor: {rate} env steps/s (its physics steps "
              f"alone: {phys} env steps/s); first env built in {built} s (kernel load/compile included)")
    if args.skip_students:
        print(json.dumps(results))
        return

    # 2. teacher checkpoint for the students (default backend)
    _, venv = make_env(cfg, with_context=False)
    runner = OnPolicyRunner(venv, teacher_runner_cfg(cfg), log_dir=None, device="cpu")
    timed_learn(runner, 1)
    steps = args.num_envs * args.steps
    ckpt = Path("/tmp") / f"g1_train_bench_teacher_{os.getpid()}.pt"
    runner.save(str(ckpt))

    # 3. students: DAgger rollouts + behaviour-cloning updates
    for kind in ("moe", "transformer"):
        cfg.student.kind = kind
        _, svenv = make_env(cfg, with_context=kind == "transformer")
        srunner = DistillationRunner(svenv, student_runner_cfg(cfg), log_dir=None, device="cpu")
        srunner.load(str(ckpt), load_cfg={"teacher": True, "iteration": False})
        t = timed_learn(srunner, args.iterations)
        learn = float(np.mean([x["learn_s"] for x in t]))
        collect = float(np.mean([x["collect_s"] for x in t]))
        grad_steps = args.steps * cfg.student_algo.num_learning_epochs // cfg.student_algo.gradient_length
        results[f"student_{kind}_updates_per_s"] = round(grad_steps / learn, 2)
        results[f"student_{kind}_samples_per_s"] = round(steps / learn, 1)
        results[f"student_{kind}_rollout_env_steps_per_s"] = round(steps / collect, 1)
        print(f"student {kind}: {results[f'student_{kind}_updates_per_s']} optimiser updates/s "
              f"({results[f'student_{kind}_samples_per_s']} samples/s), DAgger rollout "
              f"{results[f'student_{kind}_rollout_env_steps_per_s']} env steps/s")
    ckpt.unlink(missing_ok=True)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
