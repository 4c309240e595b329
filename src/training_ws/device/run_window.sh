#!/usr/bin/env bash
# One GPU window: continue the campaign on a lent machine that has no network, using only what
# prepare.sh put into the carried folder, and stop in time. Run from the repository root there:
#
#   bash src/training_ws/device/run_window.sh --carry src/training_ws/runs/window --budget-s 540
#
# 1. installs the carried wheels (--no-index --no-deps) into a target folder on PYTHONPATH, next to the
#    machine's own python3 packages (torch + CUDA, numpy, onnx, ...). Not a --system-site-packages venv:
#    the device's python3 is itself a venv (/opt/torch/.venv), whose packages such a venv would not see;
# 2. unpacks the G1 model (G1_MJCF_DIR) and the motion sources (same layout as here);
# 3. resumes the carried checkpoint (resume/) with its config, or starts one from --config:
#    --ranks processes (default: all cores) simulate with C-MuJoCo, one core each (OMP_NUM_THREADS=1),
#    and learn on --device (default cuda when torch sees a GPU: all ranks share it over gloo,
#    g1_train.train.rank_device), a resumable checkpoint every 60 s (campaign.checkpoint_every_s);
# 4. stops itself: --max-seconds ends the leg with a checkpoint before --budget-s (counted from this
#    script's start, installation included) and a `timeout` TERM + KILL backs it up;
# 5. keeps $OUT (--out) current every 15 s while training: the newest checkpoint in <= 15 MiB parts
#    (model.pt.part-*, model.sha256 naming model_<it>.pt), the slim policy.pt, run_logs.tar.gz
#    (progress.jsonl, campaign.jsonl, config.yaml) and window.log, so that a window killed at its limit
#    still returns its last checkpoint. Here: bash src/training_ws/device/collect.sh OUT RUN.
#
# Options: --carry DIR --budget-s S (540) --out DIR ($OUT) --ranks N (nproc) --device cuda|cpu (auto)
#          --config CFG (when nothing is carried in resume/) --python PY (python3) --set KEY=VALUE ...
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WS="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$WS/../.." && pwd)"
T0=$SECONDS
CARRY="$WS/runs/window"
BUDGET=540
OUTDIR="${OUT:-/tmp/g1_window_out}"
RANKS="$(nproc)"
DEVICE=auto
CONFIG=""
PY="${PYTHON:-python3}"
WORK="${G1_WINDOW_WORK:-/tmp/g1_window}"
SETS=()
SYNC_S=15
FINAL_MARGIN_S=25   # seconds kept for the last sync after the training has stopped

die() { echo "[window] error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --carry) CARRY="$2"; shift 2 ;;
        --budget-s) BUDGET="$2"; shift 2 ;;
        --out) OUTDIR="$2"; shift 2 ;;
        --ranks) RANKS="$2"; shift 2 ;;
        --device) DEVICE="$2"; shift 2 ;;
        --config) CONFIG="$2"; shift 2 ;;
        --python) PY="$2"; shift 2 ;;
        --set) SETS+=(--set "$2"); shift 2 ;;
        -h|--help) sed -n 2,27p "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -d "$CARRY/wheels" ] || die "$CARRY/wheels missing: run device/prepare.sh here first and carry its folder"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/window.log"
exec > >(tee -a "$LOG") 2>&1
echo "[window] $(date -u +%FT%TZ) host $(hostname), budget ${BUDGET} s, carry $CARRY"

# 1. wheels
rm -rf "$WORK" && mkdir -p "$WORK/site" || die "cannot create $WORK"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$CARRY"/wheels/*.whl \
    || die "installing the carried wheels failed"
export PYTHONPATH="$WORK/site:$WS"
for p in g1_description motion_server g1_tracker_policy g1_hardware g1_bringup; do PYTHONPATH="$PYTHONPATH:$ROOT/src/$p"; done
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1

# 2. model and motions
mkdir -p "$WORK/model" "$WORK/motions"
tar xJf "$CARRY/g1_model.tar.xz" -C "$WORK/model" || die "g1_model.tar.xz"
tar xJf "$CARRY/motions.tar.xz" -C "$WORK/motions" || die "motions.tar.xz"
export G1_MJCF_DIR="$WORK/model"
sources=$(sed "s|^|$WORK/motions/|" "$CARRY/sources.txt" | paste -sd, -)

"$PY" - <<'EOF' || die "the carried packages do not import (see above)"
import torch, mujoco, rsl_rl, tensordict, g1_train.train, g1_tracker_policy.observation
from importlib.metadata import version
print(f"[window] python ok: torch {torch.__version__} (cuda available: {torch.cuda.is_available()}, "
      f"{torch.cuda.device_count()} GPUs), mujoco {mujoco.__version__}, rsl-rl-lib {version('rsl-rl-lib')}")
EOF
if [ "$DEVICE" = auto ]; then
    DEVICE=$("$PY" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
fi

# 3. the run: the carried checkpoint, else a new run of --config
RUN="$WORK/run"
mkdir -p "$RUN"
RESUME=()
if ls "$CARRY"/resume/model_*.pt >/dev/null 2>&1; then
    cp "$CARRY"/resume/* "$RUN/"
    CONFIG="$RUN/config.yaml"
    RESUME=(--resume "$RUN")
    echo "[window] resuming $(ls "$CARRY"/resume/model_*.pt | xargs -n1 basename)"
fi
[ -n "$CONFIG" ] || die "nothing to resume in $CARRY/resume and no --config given"

# 5. keep $OUT current
sync_out() {
    local ckpt it
    ckpt=$(ls "$RUN"/model_*.pt 2>/dev/null | sed 's/.*model_\([0-9]*\)\.pt/\1 &/' | sort -n | tail -1 | cut -d' ' -f2)
    if [ -n "$ckpt" ] && [ "$(cat "$WORK/.synced" 2>/dev/null)" != "$ckpt" ]; then
        rm -f "$OUTDIR"/.part-*
        split -b 15M -d -a 2 "$ckpt" "$OUTDIR/.part-"
        (cd "$RUN" && sha256sum "$(basename "$ckpt")") > "$OUTDIR/.sha"
        rm -f "$OUTDIR"/model.pt.part-*
        for f in "$OUTDIR"/.part-*; do mv "$f" "$OUTDIR/model.pt.part-${f##*.part-}"; done
        mv "$OUTDIR/.sha" "$OUTDIR/model.sha256"   # last: names the checkpoint the parts belong to
        echo "$ckpt" > "$WORK/.synced"
    fi
    [ -f "$RUN/policy.pt" ] && cp "$RUN/policy.pt" "$OUTDIR/.policy.pt" && mv "$OUTDIR/.policy.pt" "$OUTDIR/policy.pt"
    (cd "$RUN" && tar czf "$OUTDIR/.logs.tgz" $(ls progress.jsonl campaign.jsonl config.yaml 2>/dev/null)) \
        && mv "$OUTDIR/.logs.tgz" "$OUTDIR/run_logs.tar.gz"
    return 0
}
( while sleep "$SYNC_S"; do sync_out; done ) &
SYNC_PID=$!

# 4. train until the budget
left=$((BUDGET - (SECONDS - T0) - FINAL_MARGIN_S))
[ "$left" -gt 30 ] || die "only $left s left of the ${BUDGET} s budget after setting up"
if [ "$RANKS" -gt 1 ]; then
    launch=("$PY" -m torch.distributed.run --standalone --nproc_per_node="$RANKS")
else
    launch=("$PY")
fi
echo "[window] training: $RANKS rank(s), device $DEVICE, --max-seconds $left"
T_TRAIN=$SECONDS
timeout --signal=TERM --kill-after=15 "$((left + 10))" \
    "${launch[@]}" -m g1_train.cli teacher --config "$CONFIG" "${RESUME[@]}" --out "$RUN" --max-seconds "$left" \
    --set "device=$DEVICE" --set campaign.checkpoint_every_s=60 --set campaign.keep_checkpoints=2 \
    --set "env.motions.sources=[$sources]" --set "log_root=$WORK" "${SETS[@]}"
rc=$?
TRAIN_S=$((SECONDS - T_TRAIN))
kill "$SYNC_PID" 2>/dev/null
wait "$SYNC_PID" 2>/dev/null
sync_out
"$PY" - "$RUN" "$RANKS" "$DEVICE" "$TRAIN_S" <<'EOF'
import json, sys
from pathlib import Path
run, ranks, device, train_s = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
events = [json.loads(l) for l in (run / "campaign.jsonl").read_text().splitlines()]
start = [e for e in events if e["event"] == "start"][-1]
resume = next((e for e in reversed(events) if e["event"] == "resume"), {"env_steps": 0, "wall_s": 0.0})
rows = [json.loads(l) for l in (run / "progress.jsonl").read_text().splitlines()]
leg = [r for r in rows if r["it"] >= start["it"]]
if leg:
    steps = leg[-1]["env_steps"] - resume["env_steps"]
    secs = leg[-1]["wall_s"] - resume.get("wall_s", 0.0)
    print(f"[window] this leg: iterations {leg[0]['it']}-{leg[-1]['it']}, {steps} env steps (all ranks); "
          f"{steps / max(secs, 1e-9):.0f} env steps/s over rank 0's collect + learn time ({secs:.0f} s), "
          f"{steps / max(train_s, 1e-9):.0f} env steps/s over the training command's wall time ({train_s:.0f} s, "
          f"start-up and checkpoints included); {ranks} ranks, device {device}; campaign total "
          f"{leg[-1]['env_steps']} env steps")
EOF
echo "[window] done in $((SECONDS - T0)) s (training exit status $rc); \$OUT: $(ls "$OUTDIR" | tr '\n' ' ')"
exit "$rc"
