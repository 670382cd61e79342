#!/usr/bin/env bash
# Keep a round's held-out predictions (a few hundred kB of probabilities and outline figures, no
# images) in docs/loso-runs/ (or $LOSO_KEEP_DIR), so that a later session on a new machine can read
# the gate or fit a release's second stage and threshold without retraining the held-out runs.
# For a round whose candidate passed the gate and still needs its all-sites run (each held-out run
# adds ~0.3 MB to git):
#   scripts/keep_loso_outputs.sh build/loso/R13
#   .venv/bin/python -m busapp.training.loso_eval gate --recipe R13=docs/loso-runs/R13/busi,...
set -euo pipefail
keep=${LOSO_KEEP_DIR:-$(cd "$(dirname "$0")/.." && pwd)/docs/loso-runs}
for src in "$@"; do
  recipe=$(basename "$src")
  for run in "$src"/*/; do
    run=${run%/}; site=$(basename "$run")
    [ -f "$run/done" ] && [ -f "$run/held_out.npz" ] || continue  # held-out runs that finished
    dst="$keep/$recipe/$site"
    mkdir -p "$dst"
    cp "$run"/loso.json "$run"/config.json "$run"/history.csv "$run"/held_out*.npz "$dst"/
  done
done
