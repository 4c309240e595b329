"""The sample-efficiency study's table from its run directories (scripts/sample_efficiency_study.sh).

    python study_table.py OUT_DIR ARM [ARM ...]

Per arm: env steps and iterations (progress.jsonl), the command's wall time (wall.json), the last 20
iterations' training statistics, and the evaluation (eval.json: `g1-train eval --teacher --split all`);
first the zero-action rows (zero.json) of each distinct recipe.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def _f(v, spec):
    return "–" if v is None else format(v, spec)


def main(argv: list[str]) -> int:
    out, arms = Path(argv[0]), argv[1:]
    print("| arm | algorithm | env steps | iterations (updates) | wall s | train ep. s / success (last 20 it) | "
          "train clips: success | completion | median E_mpkpe mm | held out: success | completion | E_mpkpe mm |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    seen_envs: list = []
    for arm in arms:  # 0-step rows: the zero action under each distinct recipe (env section of the config)
        zero = out / arm / "zero.json"
        env = yaml.safe_load((out / arm / "config.yaml").read_text())["env"]
        if not zero.is_file() or env in seen_envs:
            continue
        seen_envs.append(env)
        ev = json.loads(zero.read_text())["splits"]
        tr, ho = ev["train"]["summary"], ev["heldout"]["summary"]
        same = [a for a in arms if yaml.safe_load((out / a / "config.yaml").read_text())["env"] == env]
        print(f"| zero action ({' = '.join(same)} recipe) | – | 0 | – | – | – | "
              f"{tr['successes']}/{tr['clips']} | {tr['completion_mean']:.3f} | {_f(tr['E_mpkpe_median_mm'], '.1f')} | "
              f"{ho['successes']}/{ho['clips']} | {ho['completion_mean']:.3f} | {_f(ho['E_mpkpe_median_mm'], '.1f')} |")
    for arm in arms:
        run = out / arm
        prog = [json.loads(ln) for ln in (run / "progress.jsonl").read_text().splitlines() if ln.strip()]
        last = prog[-1]
        tail = prog[-20:]
        ep = [p["mean_episode_s"] for p in tail if "mean_episode_s" in p]
        su = [p["train_success"] for p in tail if "train_success" in p]
        wall = json.loads((run / "wall.json").read_text())
        ev = json.loads((run / "eval.json").read_text())["splits"]
        algo = "SAC" if "updates" in last else "PPO"
        it = f"{last['it'] + 1}" + (f" ({last['updates']})" if "updates" in last else "")
        tr, ho = ev["train"]["summary"], ev["heldout"]["summary"]
        print(f"| {arm} | {algo} | {last['env_steps']:,} | {it} | {wall['wall_s']:.0f} | "
              f"{_f(sum(ep) / len(ep) if ep else None, '.2f')} / {_f(sum(su) / len(su) if su else None, '.2f')} | "
              f"{tr['successes']}/{tr['clips']} | {tr['completion_mean']:.3f} | {_f(tr['E_mpkpe_median_mm'], '.1f')} | "
              f"{ho['successes']}/{ho['clips']} | {ho['completion_mean']:.3f} | {_f(ho['E_mpkpe_median_mm'], '.1f')} |")
    print()
    for arm in arms:
        ev = json.loads((out / arm / "eval.json").read_text())["splits"]
        clips = [f"{c['motion']} {c['completion']:.2f}" for s in ("train", "heldout") for c in ev[s]["per_clip"]]
        print(f"{arm}: per-clip completion: {', '.join(clips)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
