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
import gc
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
    ap.add_argument("--iterations", type=int, default=3, help="PPO iterations per variant (after a warm-up one)")
    ap.add_argument("--steps", type=int, default=24, help="rollout steps per env and iteration")
    ap.add_argument("--motions", default=str(ROOT.parent / "shared/data/motions/g1_moves/dance"))
    ap.add_argument("--max-clips", type=int, default=4)
    ap.add_argument("--warp-device", default="cpu", help="device of the MuJoCo-Warp measurement (cpu, cuda:0, auto)")
    ap.add_argument("--warp-num-envs", type=int, default=0, help="envs of the warp measurement (0 = --num-envs)")
    ap.add_argument("--skip-warp", action="store_true", help="do not measure the MuJoCo-Warp backend")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the old/new env comparison")
    ap.add_argument("--slice", type=int, default=10, help="control steps per variant and round")
    ap.add_argument("--env-steps", type=int, default=50, help="control steps of the warp measurement")
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
        """Whole TrackingEnv steps with zero actions, and the same steps counting only the backend's step
        (used for the warp measurement; the old/new comparison interleaves its envs instead)."""
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

    # 1. old vs new, end to end. "old" = the code before the batch backend: C-MuJoCo, drivers_500hz, the
    # Transformer context built every step although nothing read it. The machine is shared, so the
    # variants are interleaved finely (a slice of `--slice` control steps each, in turn, for `--rounds`
    # rounds; PPO: one iteration each, in turn): every variant sees the same load, and the ratios hold
    # even when the absolute rates swing with the neighbours' work.
    variants = {
        "old_c_mujoco": ("mujoco", "drivers_500hz", True),
        "c_mujoco_no_context": ("mujoco", "drivers_500hz", False),
        "batch_drivers_500hz": ("batch", "drivers_500hz", False),
        "new_batch_actuator_200hz": ("batch", "actuator_200hz", False),
    }
    # one env per (backend, profile): the two C-MuJoCo variants share theirs (randomised C-MuJoCo holds an
    # 80 MB model copy per env), switching only whether it builds the context
    envs: dict = {}
    wall, cpu, phys = ({v: 0.0 for v in variants} for _ in range(3))
    active = [None]
    for backend, profile, _ in variants.values():
        if (backend, profile) not in envs:
            e = TrackingEnv(variant_cfg(backend, profile).env, motions)
            e.step(np.zeros((args.num_envs, 29)))  # warm-up

            def timed(*a, _step=e.physics.step):
                t = time.perf_counter()
                _step(*a)
                phys[active[0]] += time.perf_counter() - t

            e.physics.step = timed
            envs[backend, profile] = e
    zeros = np.zeros((args.num_envs, 29))
    for _ in range(args.rounds):
        for name, (backend, profile, context) in variants.items():
            e, active[0] = envs[backend, profile], name
            e.keep_context = context
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.slice):
                e.step(zeros)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    steps = args.rounds * args.slice * args.num_envs
    for name in variants:
        results[f"{name}_env_steps_per_s"] = round(steps / wall[name], 1)
        results[f"{name}_physics_env_steps_per_s"] = round(steps / phys[name], 1)
        results[f"{name}_cpu_ms_per_env_step"] = round(1e3 * cpu[name] / steps, 3)
        print(f"{name:26s} TrackingEnv {steps / wall[name]:8.1f} env steps/s (its physics alone "
              f"{steps / phys[name]:8.1f}), {1e3 * cpu[name] / steps:.3f} CPU-ms per env step (all threads)")
    del envs, e
    gc.collect()  # the C-MuJoCo env's model copies (80 MB per env) go before the PPO runners build theirs
    if not args.skip_teacher:
        runners = {}
        for name in ("old_c_mujoco", "new_batch_actuator_200hz"):
            backend, profile, context = variants[name]
            c = variant_cfg(backend, profile)
            env, venv = make_env(c, with_context=False)
            env.keep_context = context  # the old code built the Transformer window although nothing read it
            with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the networks
                runners[name] = OnPolicyRunner(venv, teacher_runner_cfg(c), log_dir=None, device="cpu")
            timed_learn(runners[name], 1)  # warm-up iteration
        it_times: dict[str, list] = {k: [] for k in runners}
        for _ in range(args.iterations):
            for name, runner in runners.items():
                it_times[name] += timed_learn(runner, 1)
        ppo_steps = args.num_envs * args.steps
        for name, t in it_times.items():
            collect = float(np.sum([x["collect_s"] for x in t]))
            learn = float(np.sum([x["learn_s"] for x in t]))
            results[f"{name}_teacher_rollout_env_steps_per_s"] = round(len(t) * ppo_steps / collect, 1)
            results[f"{name}_teacher_env_steps_per_s_incl_update"] = round(len(t) * ppo_steps / (collect + learn), 1)
            results[f"{name}_teacher_update_s"] = round(learn / len(t), 3)
            print(f"{name:26s} PPO teacher: rollout {results[f'{name}_teacher_rollout_env_steps_per_s']} env "
                  f"steps/s, with the update {results[f'{name}_teacher_env_steps_per_s_incl_update']} env steps/s "
                  f"(update {learn / len(t):.2f} s per iteration)")
        del runners, env, venv
        gc.collect()
    for k in [k[len("new_batch_actuator_200hz_"):] for k in results if k.startswith("new_batch_actuator_200hz_")]:
        old_v, new_v = results.get(f"old_c_mujoco_{k}"), results[f"new_batch_actuator_200hz_{k}"]
        if old_v and ("per_s" in k or "cpu_ms" in k):
            ratio = new_v / old_v if "per_s" in k else old_v / new_v  # cpu: old CPU per step / new
            results[f"ratio_new_over_old_{k}"] = round(ratio, 2)
            print(f"new / old {k}: {ratio:.2f}x" + (" (fewer CPU-seconds per env step)" if "cpu" in k else ""))

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
