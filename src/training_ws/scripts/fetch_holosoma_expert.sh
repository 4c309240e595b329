#!/usr/bin/env bash
# holosoma's whole-body-tracking dance policy (PPO; its 131.5 s motion is inside the model) from the PyPI
# wheel holosoma-inference==0.1.3, for configs/experts_two.yaml. Downloads the wheel (no install, no
# dependencies) and extracts the one ONNX into src/training_ws/runs/data/holosoma/ (gitignored).
set -euo pipefail
WS="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$WS/runs/data/holosoma"
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$WS/.venv/bin/python" -m pip download --quiet --no-deps holosoma-inference==0.1.3 -d "$TMP"
"$WS/.venv/bin/python" - "$TMP" "$OUT" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{tmp}/holosoma_inference-0.1.3-*.whl")
name = "holosoma_inference/models/wbt/ppo_g1_29dof_dancing.onnx"
with zipfile.ZipFile(wheel) as z, open(f"{out}/ppo_g1_29dof_dancing.onnx", "wb") as f:
    f.write(z.read(name))
print(f"{out}/ppo_g1_29dof_dancing.onnx")
PY
