#!/usr/bin/env bash
# Sample-efficiency study (training README, "Sample-efficiency study"): the same small clip set, the same
# wall budget per arm, the arms ONE AFTER ANOTHER (same nice level and thread settings), then every arm's
# final teacher evaluated the same way: `g1-train eval --teacher RUN --split all` (deterministic teacher in
# the training env, nominal physics, each clip from its start; g1_train.teacher_eval). Prints the table.
#
#   bash src/training_ws/scripts/sample_efficiency_study.sh [--budget-s 600] [--out DIR] [--seed N]
#                                                          [--arms "ppo ppo_improved sac"]
#
# An arm whose run directory already has eval.json is skipped (re-running continues a study); the arms'
# configs are src/training_ws/configs/study_<arm>.yaml; --seed sets env.seed (the torch seed follows).
# Each arm's config is also evaluated with the zero action (`--teacher zero`: the reference pass-through
# under that arm's gains), the 0-step row. Run from the repository root.
set -euo pipefail

BUDGET=600
OUT=src/training_ws/runs/study
ARMS="ppo ppo_improved sac"
SEED=0
while [ $# -gt 0 ]; do
    case "$1" in
        --budget-s) BUDGET="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --arms) ARMS="$2"; shift 2 ;;
        --seed) SEED="$2"; shift 2 ;;
        *) echo "usage: $0 [--budget-s S] [--out DIR] [--seed N] [--arms \"ppo ppo_improved sac\"]" >&2; exit 2 ;;
    esac
done

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WS="$(cd "$HERE/.." && pwd)"
B="$WS/.venv/bin"
[ -x "$B/g1-train" ] || { echo "error: no training venv at $WS/.venv; run: bash src/training_ws/setup.sh" >&2; exit 2; }
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # the same for every arm (see the README's CPU note)
mkdir -p "$OUT"

for arm in $ARMS; do
    cfg="$WS/configs/study_$arm.yaml"
    run="$OUT/$arm"
    [ -f "$cfg" ] || { echo "error: no config $cfg for arm '$arm'" >&2; exit 2; }
    if [ -f "$run/eval.json" ]; then
        echo "[study] $arm: already done ($run/eval.json), skipped"
        continue
    fi
    rm -rf "$run"
    mkdir -p "$run"
    echo "[study] $arm: training for ${BUDGET} s ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg))"
    t0=$(date +%s.%N)
    "$B/g1-train" teacher --config "$cfg" --out "$run" --max-seconds "$BUDGET" --set "env.seed=$SEED" \
        > "$run/train.log" 2>&1
    t1=$(date +%s.%N)
    python3 -c "import json,sys; json.dump({'wall_s': round($t1 - $t0, 1), 'budget_s': $BUDGET, 'load_end': open('/proc/loadavg').read().split()[:3]}, open(sys.argv[1], 'w'))" "$run/wall.json"
    echo "[study] $arm: evaluating ($(date -u +%H:%M:%S) UTC)"
    "$B/g1-train" eval --config "$cfg" --teacher "$run" --split all --json "$run/eval.json.tmp" \
        --markdown "$run/eval.md" > "$run/eval.log" 2>&1
    mv "$run/eval.json.tmp" "$run/eval.json"
done

for arm in $ARMS; do  # the 0-step row of each arm's recipe (deterministic: no seed involved)
    run="$OUT/$arm"
    if [ ! -f "$run/zero.json" ]; then
        "$B/g1-train" eval --config "$WS/configs/study_$arm.yaml" --teacher zero --split all \
            --json "$run/zero.json.tmp" > "$run/zero.log" 2>&1
        mv "$run/zero.json.tmp" "$run/zero.json"
    fi
done

"$B/python" "$HERE/study_table.py" "$OUT" $ARMS
