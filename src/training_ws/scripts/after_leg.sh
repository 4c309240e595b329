#!/usr/bin/env bash
# After a campaign leg of the teacher: distil a deployable MoE student from the teacher's slim snapshot
# (RUN/policy.pt) for S seconds, export it, and evaluate it on the train and held-out clips -
# `g1-train eval --split all` (plain MuJoCo, clip starts) and, unless --no-track, `g1 track` on the
# held-out clips (the deployment path, scripts/track_clips.py). Tables land in OUT.
#
#   bash src/training_ws/scripts/after_leg.sh src/training_ws/runs/general/teacher \
#        src/training_ws/configs/general.yaml /tmp/leg0 [--student-seconds 480] [--max-s 20] [--no-track]
set -euo pipefail
RUN="$1"; CONFIG="$2"; OUT="$3"; shift 3
STUDENT_S=480; MAX_S=""; TRACK=1
while [ $# -gt 0 ]; do
    case "$1" in
        --student-seconds) STUDENT_S="$2"; shift 2 ;;
        --max-s) MAX_S="$2"; shift 2 ;;
        --no-track) TRACK=0; shift ;;
        *) echo "after_leg: unknown argument $1" >&2; exit 2 ;;
    esac
done
WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$WS/../.." && pwd)"
B="$WS/.venv/bin"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
it=$("$B/python" -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['iter'])" "$RUN/policy.pt")
STUDENT="$OUT/student_it$it"
echo "[after_leg] teacher iteration $it -> student $STUDENT ($STUDENT_S s)"
"$B/g1-train" student --config "$CONFIG" --teacher "$RUN/policy.pt" --kind moe --out "$STUDENT" \
    --max-seconds "$STUDENT_S" > "$OUT/student.log" 2>&1
"$B/g1-train" export --config "$CONFIG" --checkpoint "$STUDENT" --out "$OUT/policy_it$it.onnx" | tee "$OUT/export.log"
extra=()
[ -n "$MAX_S" ] && extra=(--max-s "$MAX_S")
"$B/g1-train" eval --config "$CONFIG" --artifact "$OUT/policy_it$it.onnx" --split all "${extra[@]}" \
    --json "$OUT/eval_it$it.json" --markdown "$OUT/eval_it$it.md" > "$OUT/eval.log" 2>&1
tail -2 "$OUT/eval.log"
if [ "$TRACK" = 1 ]; then
    "$ROOT/.venv/bin/python" "$WS/scripts/track_clips.py" --config "$CONFIG" --split heldout \
        --policy "$OUT/policy_it$it.onnx" --out "$OUT/track_it$it" > "$OUT/track.log" 2>&1
    tail -12 "$OUT/track.log"
fi
echo "[after_leg] done: $OUT"
