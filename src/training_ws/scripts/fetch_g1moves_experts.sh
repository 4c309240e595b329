#!/usr/bin/env bash
# The G1-Moves motion experts of configs/experts_g1moves.yaml and experts_g1moves8.yaml: mjlab/BeyondMimic
# single-clip trackers that the G1-Moves dataset publishes next to its clips (CC-BY-4.0, attribution: Mitch Chaiet / Experiential
# Technologies; https://huggingface.co/datasets/exptech/g1-moves, github.com/experientialtech/g1-moves),
# one ONNX per clip, into src/training_ws/runs/data/g1moves_experts/ (gitignored: never commit them).
#
#   bash src/training_ws/scripts/fetch_g1moves_experts.sh                 # download (needs the internet)
#   G1_MOVES=/path/to/g1-moves bash src/training_ws/scripts/fetch_g1moves_experts.sh   # from a local copy
#
# G1_MOVES: a dataset checkout (<category>/<clip>/policy/<clip>.onnx) or any folder holding <clip>.onnx
# files; unset = the Hugging Face dataset. B_Fence1 comes from ../shared/data/policies (the config points
# there). Every file is checked to load as an mjlab export with the policy node's own loader.
# Without access to Hugging Face: the RoboJuDo deployment repository github.com/CharlyCS/g1-moves-deploy
# holds exports of all seven names flat in RoboJuDo/assets/models/g1/beyondmimic/ (used on 2026-12-07:
# G1_MOVES=<that folder>).
set -euo pipefail
WS="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$WS/runs/data/g1moves_experts"
BASE_URL="${G1_MOVES_URL:-https://huggingface.co/datasets/exptech/g1-moves/resolve/main}"
CLIPS=(dance/B_DadDance dance/B_StretchDance dance/J_Dance2_Salsa dance/J_Dance3_Woah dance/J_Dance7_Party
       dance/J_Dance0_StepTouch dance/J_Dance5_Hype)  # the last two: clips outside the 49 shared ones
mkdir -p "$OUT"
for entry in "${CLIPS[@]}"; do
  clip="${entry#*/}"
  dest="$OUT/$clip.onnx"
  if [[ -n "${G1_MOVES:-}" ]]; then
    src=""
    for cand in "$G1_MOVES/$entry/policy/$clip.onnx" "$G1_MOVES/$clip.onnx"; do
      [[ -f "$cand" ]] && src="$cand" && break
    done
    [[ -n "$src" ]] || { echo "error: no $clip.onnx under G1_MOVES=$G1_MOVES ($entry/policy/ or flat)" >&2; exit 1; }
    cp "$src" "$dest.part"
  else
    curl --fail --location --silent --show-error -o "$dest.part" "$BASE_URL/$entry/policy/$clip.onnx" \
      || { echo "error: could not download $clip from $BASE_URL (set G1_MOVES to a local copy)" >&2; exit 1; }
  fi
  mv "$dest.part" "$dest"
done
"$WS/.venv/bin/python" - "$OUT" "${CLIPS[@]}" <<'PY'
import sys
from g1_tracker_policy import external
out, clips = sys.argv[1], [c.split("/", 1)[1] for c in sys.argv[2:]]
for clip in clips:
    art = external.load_policy(f"{out}/{clip}.onnx")
    if not isinstance(art, external.ExternalArtifact) or art.format != external.FORMAT_MJLAB:
        sys.exit(f"error: {out}/{clip}.onnx is not an mjlab export")
    print(f"{out}/{clip}.onnx  mjlab, {len(art.observation_terms)} observation terms")
PY
