#!/usr/bin/env bash
# After a GPU window: reassemble the checkpoint that came back in OUT (model.pt.part-* + model.sha256),
# check its sha256, and put it, policy.pt and the logs into the campaign run directory RUN, so that the
# next leg here (or the next window, after prepare.sh) resumes from it:
#   bash src/training_ws/device/collect.sh /path/to/files_at src/training_ws/runs/general/teacher
set -euo pipefail
OUT="$1"; RUN="$2"
[ -f "$OUT/model.sha256" ] || { echo "[collect] error: $OUT/model.sha256 missing (no checkpoint came back)" >&2; exit 2; }
name=$(awk '{print $2}' "$OUT/model.sha256")
mkdir -p "$RUN/window_logs"
cat "$OUT"/model.pt.part-* > "$RUN/$name.tmp"
(cd "$RUN" && awk -v n="$name.tmp" '{print $1"  "n}' "$OUT/model.sha256" | sha256sum -c --quiet) \
    || { rm -f "$RUN/$name.tmp"; echo "[collect] error: $name does not match its sha256 (a part was cut off)" >&2; exit 2; }
mv "$RUN/$name.tmp" "$RUN/$name"
[ -f "$OUT/policy.pt" ] && cp "$OUT/policy.pt" "$RUN/policy.pt"
tar xzf "$OUT/run_logs.tar.gz" -C "$RUN/window_logs"
[ -f "$OUT/window.log" ] && cp "$OUT/window.log" "$RUN/window_logs/"
# the window's progress lines continue this run's history
if [ -f "$RUN/window_logs/progress.jsonl" ]; then
    cat "$RUN/window_logs/progress.jsonl" >> "$RUN/progress.jsonl"
    cat "$RUN/window_logs/campaign.jsonl" >> "$RUN/campaign.jsonl"
fi
echo "[collect] $RUN/$name (sha256 ok); resume with: g1-train teacher --config $RUN/config.yaml --resume $RUN"
