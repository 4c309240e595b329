#!/usr/bin/env python3
"""Fit the balance feedback prior's 14 gains (g1_train.feedback) by the cross-entropy method: each
candidate runs the training env with nominal physics on every train clip from its first frame (at most
``--max-s``) and on every stand-start copy (the `g1 track` start: standing, 2 s blend-in), with the
zero network action (the pass-through plus the feedback) and the deployment's height (> 0.25 m) and
orientation (> 1 rad) terminations plus training's key-body one at its fresh-sampler level (worst key
body > 0.6 m from the reference, pelvis-relative: a fall); fitness = the mean share of each clip survived.
The held-out clips are scored every 5 generations and never used for selection.

    src/training_ws/.venv/bin/python src/training_ws/scripts/fit_balance_feedback.py \\
        --config src/training_ws/configs/general.yaml --generations 40 --out runs/feedback/fit.jsonl

Prints one JSON line per generation (the mean's fitness, best, population mean, held-out) and, at the end,
the YAML line ``balance_feedback: [...]`` of the final mean. ``--resume FIT.jsonl`` continues from the
last generation's mean and spread (the RNG restarts from ``--seed`` + generation).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g1_train.config import load_config  # noqa: E402
from g1_train.env import action_scales, deployment_observation_config  # noqa: E402
from g1_train.feedback import NUM_GAINS, BalanceFeedback, gain_names  # noqa: E402
from g1_train.motions import load_motion_set  # noqa: E402

#: the deployment's orientation limit (g1_bringup.metrics); stand-start copies, no other augmentation. (The
#: key-body limit is min(the sampler's threshold, 0.6 m by default) = 0.6 m in every fresh rollout.)
FIT_SETS = ["env.motions.mirror=false", "env.motions.time_scales=[]", "env.terminations.orientation_error_rad=1.0",
            "env.balance_feedback=[]"]


def survival(cfg, ms, gains: np.ndarray, max_s: float) -> np.ndarray:
    """(clips,) share of each clip (its first ``max_s``) played before the first termination."""
    from g1_train.teacher_eval import survival as run

    fb = BalanceFeedback(deployment_observation_config(cfg.env), gains, action_scales(cfg.env))
    return run(cfg, ms, lambda obs: fb.action_delta(obs["policy"]), max_s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[], help="config override (as g1-train)")
    p.add_argument("--generations", type=int, default=40)
    p.add_argument("--population", type=int, default=12)
    p.add_argument("--elite", type=int, default=4)
    p.add_argument("--max-s", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="JSON lines, one per generation")
    p.add_argument("--resume", help="a previous --out file: continue from its last mean and spread")
    args = p.parse_args(argv)
    cfg = load_config(args.config, [*args.set, *FIT_SETS])
    train = load_motion_set(cfg.env.motions, split="train", augmented=True)
    heldout = load_motion_set(cfg.env.motions, split="heldout", augmented=True)
    print(f"{train.num_clips} train clips, {heldout.num_clips} held-out (stand-start copies included), "
          f"first {args.max_s:g} s; gains: {', '.join(gain_names())}", flush=True)
    # start: a little ankle-pitch feedback (the ankle strategy), wider spread on the P gains
    mu = np.zeros(NUM_GAINS)
    mu[0], mu[1] = 1.0, 0.1
    sd = np.full(NUM_GAINS, 0.3)
    sd[1::2] = 0.05
    first = 0
    if args.resume:
        last = [json.loads(line) for line in Path(args.resume).read_text().splitlines() if line.strip()][-1]
        mu, sd, first = np.array(last["mu"]), np.array(last["sd"]), last["gen"] + 1
    else:
        z_tr, z_ho = survival(cfg, train, np.zeros(NUM_GAINS), args.max_s), survival(cfg, heldout, np.zeros(NUM_GAINS), args.max_s)
        print(json.dumps({"zero_action": {"train": round(float(z_tr.mean()), 4), "heldout": round(float(z_ho.mean()), 4)}}),
              flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a" if args.resume else "w") as log:
        for gen in range(first, first + args.generations):
            t0 = time.time()
            rng = np.random.default_rng(args.seed + gen)
            cands = [mu] + [mu + sd * rng.standard_normal(NUM_GAINS) for _ in range(args.population - 1)]
            fit = np.array([survival(cfg, train, c, args.max_s).mean() for c in cands])
            elite = np.argsort(-fit)[:args.elite]
            mu = np.mean([cands[i] for i in elite], 0)
            sd = 0.7 * sd + 0.3 * np.std([cands[i] for i in elite], 0) + 1e-3
            rec = {"gen": gen, "mu_fit": float(fit[0]), "best": float(fit[elite[0]]), "mean": float(fit.mean()),
                   "s": round(time.time() - t0, 1), "mu": mu.tolist(), "sd": sd.tolist()}
            if gen % 5 == 4:
                rec["heldout_mu"] = float(survival(cfg, heldout, mu, args.max_s).mean())
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()
                              if k not in ("mu", "sd")}), flush=True)
    print("balance_feedback: [" + ", ".join(f"{g:.4f}" for g in mu) + "]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
