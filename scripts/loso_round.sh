#!/usr/bin/env bash
# One leave-one-site-out round of a recipe (busapp/training/loso.py RECIPES), resumable:
#   scripts/loso_round.sh R4 [WORK_ROOT]
# trains the three held-out runs and the all-sites run in two lanes (scripts/loso_lane.sh, one
# thread each), predicts the held-out sites with both test-time views, prints the gate
# (docs/busnet2-plan.md) for each view and leaves the release command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${1:?recipe, e.g. R4}
root=${2:-build/loso/$recipe}
py=${PYTHON:-.venv/bin/python}
scripts/loso_lane.sh "$recipe" "$root" all busi &
scripts/loso_lane.sh "$recipe" "$root" breast_lesions_usg bus_uclm &
wait
for views in mirror image; do
  "$py" -m busapp.training.loso_eval gate --views "$views" \
    --recipe "$recipe=$root/busi,$root/breast_lesions_usg,$root/bus_uclm" | tee "$root/gate-$views.jsonl"
done
echo "release: $py -m busapp.training.release --recipe $recipe --all $root/all" \
     "--held-out $root/busi,$root/breast_lesions_usg,$root/bus_uclm --stage P0|P1 --views mirror|image" \
     "--out models/busnet --input-check scripts/input_check_card_block.json"
