#!/usr/bin/env bash
# Prepare a GPU window (run here, with network): everything run_window.sh needs on a machine without
# network, in ONE ignored folder that the device tool carries (src/training_ws/runs/window by default):
#   wheels/           the packages of device/wheels.txt for the device's Python (cp312, manylinux x86_64)
#   g1_model.tar.xz   the G1 MJCF (scene.xml, g1.xml and the meshes g1.xml uses) from g1_description's model
#                     package (the whole package is 212 MB; run_window.sh points G1_MJCF_DIR at this copy)
#   motions.tar.xz    the config's motion sources, same layout (so the clip order, and with it the
#                     sampler state of the checkpoint, is the same there)
#   resume/           the newest model_<it>.pt of the campaign run + its config.yaml (when --run is given)
#   MANIFEST          sizes and sha256 of everything above
# and checks that this folder plus the working tree that travels fit the device tool's 64 MiB.
#
#   bash src/training_ws/device/prepare.sh --run src/training_ws/runs/general/teacher \
#        [--config src/training_ws/configs/general.yaml] [--python-version 3.12] [--dest DIR] [--budget-mib 64]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WS="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$WS/../.." && pwd)"
PYV=3.12
DEST="$WS/runs/window"
RUN=""
CONFIG="$WS/configs/general.yaml"
BUDGET_MIB=64
TRAIN_PY="${G1_TRAIN_PYTHON:-$WS/.venv/bin/python}"
PIP=(python3 -m pip)

die() { printf '\033[31m[prepare] error:\033[0m %s\n' "$*" >&2; exit 1; }
say() { printf '\033[1m[prepare]\033[0m %s\n' "$*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --run) RUN="$2"; shift 2 ;;
        --config) CONFIG="$2"; shift 2 ;;
        --python-version) PYV="$2"; shift 2 ;;
        --dest) DEST="$2"; shift 2 ;;
        --budget-mib) BUDGET_MIB="$2"; shift 2 ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
DEST="$(realpath -m "$DEST")"
CONFIG="$(realpath -m "$CONFIG")"
[ -z "$RUN" ] || RUN="$(realpath -m "$RUN")"
[ -x "$TRAIN_PY" ] || die "training venv missing ($TRAIN_PY): bash src/training_ws/setup.sh"
[ -f "$CONFIG" ] || die "config $CONFIG not found"
cd "$ROOT"

tmp="$DEST.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/wheels"

say "wheels for Python $PYV (device/wheels.txt)"
plats=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    plats+=(--platform "$p")
done
grep -v '^\s*#' "$HERE/wheels.txt" | grep -v '^\s*$' | while read -r spec; do
    "${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
        "${plats[@]}" -d "$tmp/wheels" "$spec" 2> >(grep -v 'is ignored: it is neither' >&2) \
        || die "no wheel of $spec for Python $PYV"
done

say "G1 model (scene.xml, g1.xml and its meshes)"
model_dir="$("$TRAIN_PY" -c 'from g1_description import mjcf; print(mjcf.model_dir())')"
files=$(cd "$model_dir" && { echo scene.xml; echo g1.xml; echo LICENSE;
        grep -o 'file="[^"]*"' g1.xml | sed 's/.*file="//;s/"$//' | sort -u | sed 's|^|assets/|'; })
(cd "$model_dir" && tar cJf "$tmp/g1_model.tar.xz" $files)

say "motion sources of $CONFIG"
"$TRAIN_PY" - "$CONFIG" "$tmp" <<'EOF'
import sys, tarfile, glob
from pathlib import Path
sys.path.insert(0, "src/training_ws")
from g1_train.config import load_config
cfg, out = load_config(sys.argv[1]), Path(sys.argv[2])
with tarfile.open(out / "motions.tar.xz", "w:xz") as tar:
    for i, src in enumerate(cfg.env.motions.sources):
        hits = sorted(glob.glob(str(Path(src).expanduser()))) or [src]
        for h in hits:
            p = Path(h)
            if not p.exists():
                sys.exit(f"[prepare] error: motion source {src} not found")
            # source i keeps its own folder: src<i>/<name>, listed in order in sources.txt
            tar.add(p, arcname=f"src{i}/{p.name}")
            with open(out / "sources.txt", "a") as f:
                f.write(f"src{i}/{p.name}\n")
EOF

if [ -n "$RUN" ]; then
    ckpt="$(ls "$RUN"/model_*.pt 2>/dev/null | sed 's/.*model_\([0-9]*\)\.pt/\1 &/' | sort -n | tail -1 | cut -d' ' -f2)"
    [ -n "$ckpt" ] || die "no model_<it>.pt in $RUN"
    mkdir -p "$tmp/resume"
    cp "$ckpt" "$tmp/resume/"
    cp "$RUN/config.yaml" "$tmp/resume/config.yaml"
    say "checkpoint $(basename "$ckpt") of $RUN"
fi

(cd "$tmp" && find . -type f ! -name MANIFEST -printf '%s %p\n' | sort -k2 > MANIFEST.sizes && \
    find . -type f ! -name 'MANIFEST*' -print0 | sort -z | xargs -0 sha256sum > MANIFEST && cat MANIFEST.sizes >> MANIFEST && rm MANIFEST.sizes)
rm -rf "$DEST"
mv "$tmp" "$DEST"

# what travels: tracked files + untracked files git does not ignore + this folder (carried)
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
carry=$(du -sb "$DEST" | cut -f1)
total=$((tree + carry))
budget=$((BUDGET_MIB * 1024 * 1024))
printf '[prepare] working tree %.1f MiB + %s %.1f MiB = %.1f MiB (budget %d MiB)\n' \
    "$(echo "$tree / 1048576" | bc -l)" "${DEST#$ROOT/}" "$(echo "$carry / 1048576" | bc -l)" \
    "$(echo "$total / 1048576" | bc -l)" "$BUDGET_MIB"
du -b "$DEST"/* "$DEST"/wheels/* 2>/dev/null | sort -n | awk '{printf "    %8.2f MiB  %s\n", $1/1048576, $2}'
[ "$total" -le "$budget" ] || die "over the ${BUDGET_MIB} MiB the device tool carries: carry less (an older, smaller checkpoint? fewer motion sources?)"
say "ready: carry ${DEST#$ROOT/} (run: bash src/training_ws/device/run_window.sh --carry ${DEST#$ROOT/} ...)"
