#!/usr/bin/env bash
# Set up the training workspace's own virtual environment (src/training_ws/.venv):
#   torch (pinned, in the SAME pip command as everything else so nothing can swap in a CUDA build),
#   rsl-rl-lib, MuJoCo, ONNX/ONNX Runtime, TensorBoard, tqdm, PyYAML, and the stack's ROS-free
#   packages (g1_description, motion_server, g1_tracker_policy, g1_hardware sim core, g1_bringup metrics)
#   plus g1_train itself, editable. Their ROS node modules are never imported by training.
#
# Idempotent and fast when up to date (a stamp holds the hash of the inputs).
# Environment:
#   PYTHON=python3.11          interpreter for the venv
#   G1_TRAIN_VENV=<dir>        venv location (default src/training_ws/.venv)
#   G1_TRAIN_TORCH="torch==2.13.0"  torch requirement; on a CUDA machine e.g.
#       G1_TRAIN_TORCH="torch==2.13.0" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
VENV="${G1_TRAIN_VENV:-$HERE/.venv}"
PYTHON="${PYTHON:-python3.11}"
TORCH="${G1_TRAIN_TORCH:-torch==2.13.0}"
STAMP="$VENV/.g1-train-setup"

say() { printf '\033[1m[training_ws setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[training_ws setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
command -v "$PYTHON" >/dev/null 2>&1 || die "no python3.11 found; set PYTHON=/path/to/python3.11"

# Everything that decides the venv's content goes into the stamp: re-run only when it changes.
inputs_hash=$( { cat "$HERE/requirements.txt" "$HERE/setup.sh" "$HERE/pyproject.toml"; echo "$TORCH";
                 for p in g1_description motion_server g1_tracker_policy g1_hardware g1_bringup; do cat "$ROOT/src/$p/setup.py"; done; } \
               | sha256sum | cut -c1-16)
if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$inputs_hash" ] \
   && "$VENV/bin/python" -c 'import torch, rsl_rl, g1_train, g1_tracker_policy.observation' 2>/dev/null; then
    say "up to date ($VENV)"
    exit 0
fi

t0=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1
say "installing $TORCH, rsl-rl-lib, mujoco, onnx, tensorboard, ... (a few minutes on a fresh machine)"
# One command: pip resolves torch together with rsl-rl-lib, so the pin holds.
"$PY" -m pip install -q "$TORCH" -r "$HERE/requirements.txt" "setuptools==79.0.1" "wheel==0.45.1" \
    2>&1 | grep -v '^WARNING: Location' || true
# The stack's ROS-free packages, editable (their node modules import rclpy; training never imports
# those). --no-deps: their only declared dependency is setuptools.
"$PY" -m pip install -q --no-deps --no-build-isolation \
    -e "$ROOT/src/g1_description" -e "$ROOT/src/motion_server" -e "$ROOT/src/g1_tracker_policy" \
    -e "$ROOT/src/g1_hardware" -e "$ROOT/src/g1_bringup" \
    -e "$HERE" 2>&1 | grep -v '^WARNING: Location' || true
"$PY" -c 'import torch, rsl_rl, mujoco, onnx, onnxruntime, g1_train, g1_tracker_policy.observation' \
    || die "the training environment did not install; see the pip output above"
echo "$inputs_hash" > "$STAMP"
say "done in $((SECONDS - t0)) s: $("$PY" -c 'import torch, rsl_rl; from importlib.metadata import version as v; print("torch", torch.__version__, "rsl-rl-lib", v("rsl-rl-lib"))')"
