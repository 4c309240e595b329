"""Training throughput on this machine: environment steps/s of teacher PPO rollouts and student
(DAgger) updates/s, for the C-MuJoCo backend with the MoE teacher and both students; plus raw env
stepping of both physics backends on a flat floor (MuJoCo-Warp cannot randomise terrain per world).

Run with the training venv:  src/training_ws/.venv/bin/python src/training_ws/bench/train_throughput.py
Prints figures; the last line is a JSON object.
"""

from __future__ import annotations

import argparse
import copy
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
          f"{args.num_envs} envs, {args.steps} steps/iteration")
    results: dict = {"num_envs": args.num_envs, "steps_per_iteration": args.steps, "backend": "c-mujoco"}

    # 1. raw environment stepping (zero actions, randomisation on)
    env, venv = make_env(cfg, with_context=False)
    t0 = time.perf_counter()
    n = 50
    for _ in range(n):
        env.step(np.zeros((args.num_envs, 29)))
    results["env_steps_per_s_raw"] = round(n * args.num_envs / (time.perf_counter() - t0), 1)
    print(f"raw env stepping: {results['env_steps_per_s_raw']} env steps/s")

    # 1b. both physics backends on a flat floor (randomisation otherwise on): whole env steps, and the
    # time of those steps spent in the backend's step (10 substeps of PD + simulation + forward)
    def backend_rate(backend: str, num_envs: int, device: str = "auto") -> tuple[float, float, float]:
        c = copy.deepcopy(cfg.env)
        c.backend, c.warp_device, c.num_envs = backend, device, num_envs
        c.randomization.terrain_height_m = 0.0
        t_build = time.perf_counter()
        e = TrackingEnv(c, load_motion_set(c.motions))
        built = time.perf_counter() - t_build
        zeros = np.zeros((num_envs, 29))
        e.step(zeros)  # warm-up (graph capture)
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
        env_rate = n * num_envs / (time.perf_counter() - t0)
        return round(env_rate, 1), round(n * num_envs / physics_s[0], 1), round(built, 2)

    rate, phys, _ = backend_rate("mujoco", args.num_envs)
    results["c_mujoco_flat_env_steps_per_s_raw"], results["c_mujoco_flat_physics_env_steps_per_s"] = rate, phys
    print(f"C-MuJoCo, flat floor: {rate} env steps/s (its physics steps alone: {phys} env steps/s)")
    if not args.skip_warp:
        wn = args.warp_num_envs or args.num_envs
        rate, phys, built = backend_rate("warp", wn, args.warp_device)
        results.update({"warp_device": args.warp_device, "warp_num_envs": wn, "warp_env_build_s": built,
                        "warp_flat_env_steps_per_s_raw": rate, "warp_flat_physics_env_steps_per_s": phys})
        print(f"MuJoCo-Warp on {args.warp_device}, {wn} worlds, flat floor: {rate} env steps/s (its physics steps "
              f"alone: {phys} env steps/s); env built in {built} s (kernel load/compile included)")

    # 2. teacher PPO: rollout (env + MoE actor inference) and update
    runner = OnPolicyRunner(venv, teacher_runner_cfg(cfg), log_dir=None, device="cpu")
    t = timed_learn(runner, args.iterations)
    steps = args.num_envs * args.steps
    collect = float(np.mean([x["collect_s"] for x in t]))
    learn = float(np.mean([x["learn_s"] for x in t]))
    results["teacher_rollout_env_steps_per_s"] = round(steps / collect, 1)
    results["teacher_env_steps_per_s_incl_update"] = round(steps / (collect + learn), 1)
    results["teacher_update_s"] = round(learn, 3)
    print(f"teacher PPO: rollout {results['teacher_rollout_env_steps_per_s']} env steps/s, "
          f"update {learn:.2f} s/iteration, overall {results['teacher_env_steps_per_s_incl_update']} env steps/s")
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
