"""Training throughput on this machine, end to end: env steps/s of whole TrackingEnv steps (physics,
observations, rewards, resets) and of PPO teacher iterations as `g1-train teacher` runs them (MoE actor
rollout + the PPO update), with a config's settings (default configs/general.yaml), for the old path
(C-MuJoCo backend, drivers_500hz, Transformer context built every step, rsl-rl's default per-tensor Adam)
against the new default (batch backend, actuator_200hz, context only when a model reads it, fused Adam)
in interleaved rounds of one run, with the ratios: at the same settings, and - labelled as such - the new
path with a recipe change (``--recipe-set KEY=VALUE``; default: the CPU recipe of
configs/general_feedback.yaml - its num_envs, PPO epochs and bf16 update, 64 / 2 / on) against the old path
at the config's settings. Intermediate variants show where the gain
comes from; each PPO variant's time is split into physics, host MDP, inference, the rest of the rollout
and the update; the update alone is measured with 1 / 2 torch threads and both Adam kernels, and its
FLOPs against one thread's sgemm rate. Then MuJoCo-Warp raw stepping on a flat floor, and student
(DAgger) updates/s on the default backend.

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


def learner_detail(cfg, rounds: int, results: dict) -> None:
    """The PPO update of the new path on one filled rollout storage, repeated: torch threads 1 vs 2, rsl-rl's
    default Adam vs fused, interleaved; its matmul FLOPs (torch profiler) against one thread's sgemm rate."""
    from torch.profiler import ProfilerActivity, profile

    from g1_train.train import TeacherRunner, apply_learner_settings, make_env, set_fused_optimizer, teacher_runner_cfg

    threads = torch.get_num_threads()
    _, venv = make_env(cfg, with_context=False)
    with contextlib.redirect_stdout(io.StringIO()):
        runner = TeacherRunner(venv, teacher_runner_cfg(cfg), log_dir=None, device="cpu")
    apply_learner_settings(runner, cfg)
    runner.logger.log = lambda *a, **k: None
    alg = runner.alg
    alg.storage.clear = lambda: None  # keep the rollout: every update below trains on the same data
    runner.learn(1)
    variants = {"1 thread, rsl-rl default Adam": (1, False), "1 thread, fused Adam": (1, True),
                "2 threads, fused Adam": (2, True)}
    times: dict = {k: [] for k in variants}
    for _ in range(rounds):
        for name, (n_threads, fused) in variants.items():
            torch.set_num_threads(n_threads)
            set_fused_optimizer(alg.optimizer, fused)
            t0, c0 = time.perf_counter(), time.process_time()
            alg.update()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    torch.set_num_threads(threads)
    set_fused_optimizer(alg.optimizer, cfg.fused_optimizer)
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        alg.update()
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events)
    mm = [e for e in events if e.key in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")]
    mm_us = sum(e.self_cpu_time_total for e in mm)
    gflop = sum(e.flops for e in events) / 1e9
    a, w = torch.randn(192, 1343), torch.randn(512, 1343)  # the critic's first layer on one minibatch
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(50):
            a @ w.t()
        best = min(best, (time.perf_counter() - t0) / 50)
    sgemm = 2 * 192 * 1343 * 512 / best / 1e9
    samples = cfg.env.num_envs * cfg.teacher_algo.num_steps_per_env
    for name, t in times.items():
        wall, cpu = sorted(x[0] for x in t), sorted(x[1] for x in t)
        key = name.replace(", ", "_").replace(" ", "_").replace("-", "_")
        results[f"update_{key}_median_s"] = round(wall[len(wall) // 2], 3)
        print(f"PPO update ({samples} samples, {cfg.teacher_algo.num_learning_epochs} epochs) {name:30s} median "
              f"{wall[len(wall) // 2]:.3f} s wall ({wall[0]:.3f}-{wall[-1]:.3f}), CPU {cpu[len(cpu) // 2]:.3f} s")
    results.update({"update_gflop": round(gflop, 1), "update_matmul_share": round(mm_us / total_us, 3),
                    "sgemm_1thread_gflops": round(sgemm, 1)})
    print(f"PPO update: {gflop:.1f} GFLOP (the profiler's count: matmuls, convolutions), {100 * mm_us / total_us:.0f} % "
          f"of its profiled CPU time in matmuls; one thread's sgemm here: {sgemm:.0f} GFLOPS, so they alone need >= {gflop / sgemm:.2f} s "
          f"= {1e3 * gflop / sgemm / samples:.2f} ms per sample")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(HERE.parent / "configs/general.yaml"),
                    help="training config whose settings are measured (motion sources relative to the repository root)")
    ap.add_argument("--num-envs", type=int, default=0, help="envs per variant (0 = the config's)")
    ap.add_argument("--iterations", type=int, default=3, help="PPO iterations per variant (after a warm-up one)")
    ap.add_argument("--steps", type=int, default=0, help="rollout steps per env and iteration (0 = the config's)")
    ap.add_argument("--motions", default="", help="motion source instead of the config's")
    ap.add_argument("--max-clips", type=int, default=8, help="clips loaded (0 = all of the config's; the per-step "
                    "cost does not depend on the number)")
    ap.add_argument("--recipe-set", action="append", default=None, metavar="KEY=VALUE",
                    help="config override of the new path's recipe variant, repeatable (default: configs/general_feedback.yaml's CPU "
                    "recipe: its env.num_envs, teacher_algo.num_learning_epochs and teacher_algo.mixed_precision); "
                    "the README says what each changes for learning")
    ap.add_argument("--no-recipe", action="store_true", help="do not measure a recipe variant")
    ap.add_argument("--warp-device", default="cpu", help="device of the MuJoCo-Warp measurement (cpu, cuda:0, auto)")
    ap.add_argument("--warp-num-envs", type=int, default=0, help="envs of the warp measurement (0 = --num-envs)")
    ap.add_argument("--skip-warp", action="store_true", help="do not measure the MuJoCo-Warp backend")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the old/new env comparison")
    ap.add_argument("--slice", type=int, default=10, help="control steps per variant and round")
    ap.add_argument("--env-steps", type=int, default=50, help="control steps of the warp measurement")
    ap.add_argument("--skip-teacher", action="store_true", help="raw env stepping only in the comparison")
    ap.add_argument("--skip-students", action="store_true", help="do not measure the DAgger students")
    ap.add_argument("--learner-rounds", type=int, default=3,
                    help="rounds of the PPO-update detail (threads, Adam kernel, FLOPs; 0 = skip it)")
    args = ap.parse_args()

    from g1_train.config import TrainCfg, load_config
    from g1_train.env import TrackingEnv
    from g1_train.motions import load_motion_set
    from g1_train.train import (StudentRunner, TeacherRunner, apply_learner_settings, make_env, student_runner_cfg,
                                teacher_runner_cfg)

    def bench_cfg(overrides: list[str]) -> TrainCfg:
        c = load_config(args.config, overrides)
        if args.num_envs and not any(o.startswith("env.num_envs=") for o in overrides):
            c.env.num_envs = args.num_envs
        if args.motions:
            c.env.motions.sources = [args.motions]
        c.env.motions.sources = [str(ROOT / p) if not Path(p).is_absolute() else p for p in c.env.motions.sources]
        c.env.motions.max_clips = args.max_clips
        if args.steps:
            c.teacher_algo.num_steps_per_env = c.student_algo.num_steps_per_env = args.steps
            c.student_algo.gradient_length = args.steps // 2
        c.env.randomization.terrain_height_m = 0.0  # flat floor: the batch backend has no per-env terrain
        return c

    if args.no_recipe:
        recipe_sets = []
    elif args.recipe_set:
        recipe_sets = args.recipe_set
    else:  # the adopted CPU recipe, read from the config that holds it (one source of truth)
        fb = load_config(str(HERE.parent / "configs/general_feedback.yaml"), [])
        recipe_sets = [f"env.num_envs={fb.env.num_envs}", f"teacher_algo.num_learning_epochs={fb.teacher_algo.num_learning_epochs}",
                       f"teacher_algo.mixed_precision={str(fb.teacher_algo.mixed_precision).lower()}"]
    cfg = bench_cfg([])
    args.num_envs, args.steps = cfg.env.num_envs, cfg.teacher_algo.num_steps_per_env
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    a = cfg.teacher_algo
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; config {Path(args.config).name}: {args.num_envs} envs, {args.steps} steps/iteration, "
          f"{a.num_learning_epochs} epochs x {a.num_mini_batches} minibatches, teacher {cfg.teacher.kind}, "
          f"randomisation on (flat floor)")
    results: dict = {"config": Path(args.config).name, "num_envs": args.num_envs, "steps_per_iteration": args.steps,
                     "recipe": recipe_sets, "load_average_start": round(os.getloadavg()[0], 2)}
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
        # PPO as `g1-train teacher` runs it (TeacherRunner, the config's torch threads). Variants: (backend, profile,
        # context, fused Adam, envs). "old" = the code before issue 14's work (rsl-rl's default Adam: a Python
        # loop over the parameter tensors on CPU); "new" = the default now; the two intermediate ones split the
        # gain into physics and learner; the recipe variant changes the recipe (more envs per iteration).
        ppo = {  # name: (backend, profile, context built, fused Adam, config)
            "old_c_mujoco": ("mujoco", "drivers_500hz", True, False, cfg),
            "batch_rsl_adam": ("batch", "actuator_200hz", False, False, cfg),
            "new_batch_actuator_200hz": ("batch", "actuator_200hz", False, True, cfg),
        }
        if recipe_sets:
            ppo["new_recipe"] = ("batch", "actuator_200hz", False, True, bench_cfg(recipe_sets))
        runners, parts = {}, {}
        for name, (backend, profile, context, fused, base) in ppo.items():
            c = copy.deepcopy(base)
            c.env.backend, c.env.physics_profile = backend, profile
            c.fused_optimizer = fused
            env, venv = make_env(c, with_context=False)
            env.keep_context = context  # the old code built the Transformer window although nothing read it
            with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the networks
                runners[name] = TeacherRunner(venv, teacher_runner_cfg(c), log_dir=None, device="cpu")
            apply_learner_settings(runners[name], c)
            timed_learn(runners[name], 1)  # warm-up iteration
            # where a rollout's time goes: the backend's step, the rest of TrackingEnv.step (host MDP), the
            # actor + critic inference (PPO.act); the remainder is rsl-rl's storage, logging and conversions
            parts[name] = {"physics": 0.0, "env": 0.0, "act": 0.0}
            for obj, attr, part in ((env.physics, "step", "physics"), (env, "step", "env"), (runners[name].alg, "act", "act")):
                def timed_part(*a, _f=getattr(obj, attr), _p=parts[name], _k=part):
                    t = time.perf_counter()
                    out = _f(*a)
                    _p[_k] += time.perf_counter() - t
                    return out
                setattr(obj, attr, timed_part)
        it_times: dict[str, list] = {k: [] for k in runners}
        for _ in range(args.iterations):
            for name, runner in runners.items():
                c0 = time.process_time()
                t = timed_learn(runner, 1)
                t[0]["cpu_s"] = time.process_time() - c0
                it_times[name] += t
        for name, t in it_times.items():
            ppo_steps = ppo[name][4].env.num_envs * ppo[name][4].teacher_algo.num_steps_per_env
            collect = float(np.sum([x["collect_s"] for x in t]))
            learn = float(np.sum([x["learn_s"] for x in t]))
            cpu_s = float(np.sum([x["cpu_s"] for x in t]))
            n = len(t) * ppo_steps
            results[f"{name}_teacher_rollout_env_steps_per_s"] = round(n / collect, 1)
            results[f"{name}_teacher_env_steps_per_s_incl_update"] = round(n / (collect + learn), 1)
            results[f"{name}_teacher_update_s"] = round(learn / len(t), 3)
            results[f"{name}_teacher_update_ms_per_sample"] = round(1e3 * learn / n, 3)
            results[f"{name}_teacher_cpu_ms_per_env_step"] = round(1e3 * cpu_s / n, 3)
            p = parts[name]
            split = {"physics": p["physics"], "host_mdp": p["env"] - p["physics"], "inference": p["act"],
                     "rollout_rest": collect - p["env"] - p["act"], "update": learn}
            for k, v in split.items():
                results[f"{name}_teacher_{k}_ms_per_env_step"] = round(1e3 * v / n, 3)
            print(f"{name:26s} PPO teacher ({ppo[name][4].env.num_envs} envs): rollout {n / collect:7.1f} env steps/s, with the "
                  f"update {n / (collect + learn):7.1f} env steps/s (update {learn / len(t):.2f} s per iteration = "
                  f"{1e3 * learn / n:.2f} ms per sample; {1e3 * cpu_s / n:.2f} CPU-ms per env step, all threads)")
            print(f"{'':26s}   wall ms per env step: " + ", ".join(f"{k} {1e3 * v / n:.3f}" for k, v in split.items())
                  + f" ({', '.join(f'{k} {100 * v / (collect + learn):.0f} %' for k, v in split.items())})")
        del runners, env, venv
        gc.collect()
    for k in [k[len("new_batch_actuator_200hz_"):] for k in results if k.startswith("new_batch_actuator_200hz_")]:
        old_v, new_v = results.get(f"old_c_mujoco_{k}"), results[f"new_batch_actuator_200hz_{k}"]
        cost = "ms_per" in k  # CPU-ms per env step, update ms per sample: lower is better
        if old_v and (k.endswith("per_s") or k.endswith("_incl_update") or cost):
            ratio = old_v / new_v if cost else new_v / old_v
            results[f"ratio_new_over_old_{k}"] = round(ratio, 2)
            print(f"new / old {k} (same settings): {ratio:.2f}x" + (" (old cost / new cost)" if cost else ""))
    for k in ("teacher_rollout_env_steps_per_s", "teacher_env_steps_per_s_incl_update"):
        if f"new_recipe_{k}" in results and f"old_c_mujoco_{k}" in results:
            ratio = results[f"new_recipe_{k}"] / results[f"old_c_mujoco_{k}"]
            results[f"ratio_recipe_over_old_{k}"] = round(ratio, 2)
            print(f"new path with the recipe {' '.join(recipe_sets)} / old path with {Path(args.config).name}'s settings "
                  f"{k} (NOT the same settings: a recipe change): {ratio:.2f}x")
    if "new_batch_actuator_200hz_teacher_update_s" in results and "old_c_mujoco_teacher_env_steps_per_s_incl_update" in results:
        # what bounds the end-to-end ratio: the update alone, as if rollouts cost nothing
        bound = args.num_envs * args.steps / results["new_batch_actuator_200hz_teacher_update_s"]
        results["bound_update_only_env_steps_per_s"] = round(bound, 1)
        results["bound_ratio_free_rollout_over_old"] = round(bound / results["old_c_mujoco_teacher_env_steps_per_s_incl_update"], 2)
        print(f"bound: the new update alone allows {bound:.1f} env steps/s end to end (a rollout that cost nothing), "
              f"{results['bound_ratio_free_rollout_over_old']:.2f}x the old path")

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
    if args.learner_rounds:
        learner_detail(cfg, args.learner_rounds, results)
    if args.skip_students:
        print(json.dumps(results))
        return

    # 2. teacher checkpoint for the students (default backend)
    _, venv = make_env(cfg, with_context=False)
    with contextlib.redirect_stdout(io.StringIO()):
        runner = TeacherRunner(venv, teacher_runner_cfg(cfg), log_dir=None, device="cpu")
    apply_learner_settings(runner, cfg)
    timed_learn(runner, 1)
    steps = args.num_envs * args.steps
    ckpt = Path("/tmp") / f"g1_train_bench_teacher_{os.getpid()}.pt"
    runner.save(str(ckpt))

    # 3. students: DAgger rollouts + behaviour-cloning updates
    for kind in ("moe", "transformer"):
        cfg.student.kind = kind
        _, svenv = make_env(cfg, with_context=kind == "transformer")
        with contextlib.redirect_stdout(io.StringIO()):
            srunner = StudentRunner(svenv, student_runner_cfg(cfg), log_dir=None, device="cpu")
        apply_learner_settings(srunner, cfg)
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
