#!/usr/bin/env bash
# Keep a round's held-out predictions (a few hundred kB of probabilities and outline figures, no
# images) in docs/loso-runs/, so that a later session on a new machine can read the gate or fit a
# release's second stage and threshold without retraining the held-out runs:
#   scripts/keep_loso_outputs.sh build/loso/R13
#   .venv/bin/python -m busapp.training.loso_eval gate --recipe R13=docs/loso-runs/R13/busi,...
set -euo pipefail
cd "$(dirname "$0")/.."
for src in "$@"; do
  recipe=$(basename "$src")
  for run in "$src"/*/; do
    run=${run%/}; site=$(basename "$run")
    [ -f "$run/done" ] && [ -f "$run/held_out.npz" ] || continue  # held-out runs that finished
    dst="docs/loso-runs/$recipe/$site"
    mkdir -p "$dst"
    cp "$run"/loso.json "$run"/config.json "$run"/history.csv "$run"/held_out*.npz "$dst"/
  done
done
