#!/usr/bin/env bash
# The main job on the bundled data, from a fresh clone: make a virtual environment,
# install gpusnn, train a 2048-500-11 network with FO-STDGD on the bundled synthetic
# DVS128 Gesture recordings (generated and cached on first use), write runs/main/.
# Each call starts the run afresh: --overwrite deletes the previous run's checkpoints,
# spike logs and results.json in runs/main first, so old and new files never mix.
# Usage: bash scripts/main_job.sh [extra gpusnn train flags]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh mnist5k
.venv/bin/gpusnn train --data synth-gestures --hidden 500 --epochs 10 --out runs/main --overwrite \
    --json runs/main/results.json "$@"
echo "results: runs/main/results.json, checkpoint: runs/main/checkpoint.h5"
