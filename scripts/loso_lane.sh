#!/usr/bin/env bash
# One lane of a leave-one-site-out round on one core, resumable (a finished run is skipped):
#   taskset -c 0 scripts/loso_lane.sh R3 build/loso/R3 bus_uclm busi breast_lesions_usg all
# Each held-out run also predicts its site's development images for the gate, with the mirror
# (held_out.npz) and with the image alone (held_out_image.npz).
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:?recipe}; root=${2:?work root}; shift 2
py=${PYTHON:-.venv/bin/python}
mkdir -p "$root"
for h in "$@"; do
  dir="$root/$h" args=()
  [ "$h" != all ] && args=(--held-out "$h")
  if [ ! -f "$dir/done" ]; then
    "$py" -m busapp.training.cli loso-fit --recipe "$recipe" "${args[@]}" --work-dir "$dir" --threads 1 >> "$dir.log" 2>&1
    if [ "$h" != all ]; then  # both test-time views: the mirror and the image alone (one-view graphs)
      "$py" -m busapp.training.loso_eval predict "$dir" >> "$dir.log" 2>&1
      "$py" -m busapp.training.loso_eval predict --views image "$dir" >> "$dir.log" 2>&1
    fi
    touch "$dir/done"
  fi
done
