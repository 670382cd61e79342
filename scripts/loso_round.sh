#!/usr/bin/env bash
# One leave-one-site-out round of a recipe (busapp/training/loso.py RECIPES), resumable:
#   scripts/loso_round.sh R4 [WORK_ROOT]
# trains the three held-out runs and the all-sites run in two lanes (one core each), predicts the
# held-out sites, prints the gate (docs/busnet2-plan.md) and leaves the release command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:?recipe, e.g. R4}
root=${2:-build/loso/$recipe}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$root"
run() {  # held-out site or "all"
  local h=$1 dir="$root/$1" args=()
  [ "$h" != all ] && args=(--held-out "$h")
  "$py" -m busapp.training.cli loso-fit --recipe "$recipe" "${args[@]}" --work-dir "$dir" --threads 1 > "$dir.log" 2>&1
  [ "$h" != all ] && "$py" -m busapp.training.loso_eval predict "$dir" >> "$dir.log" 2>&1
  return 0
}
(run all; run busi) &
(run breast_lesions_usg; run bus_uclm) &
wait
"$py" -m busapp.training.loso_eval gate --recipe "$recipe=$root/busi,$root/breast_lesions_usg,$root/bus_uclm" | tee "$root/gate.jsonl"
echo "release: $py -m busapp.training.release --recipe $recipe --all $root/all" \
     "--held-out $root/busi,$root/breast_lesions_usg,$root/bus_uclm --stage P0 --out models/busnet" \
     "--input-check scripts/input_check_card_block.json"
