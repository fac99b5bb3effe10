#!/usr/bin/env bash
# PREVIOUS DEFAULTS (eps 1e-3, factor_clip 20; lr 0.005, w_max 4 as now), kept as the comparison
# that shows what the conclusion depends on. mnist5k, test digits, 3 seeds.
# 1 epoch: all 9 alphas, 1 and 2 hidden layers. 3 epochs: 784-500-10, 5 alphas.
# The stored cells were made before TrainConfig gained the DVS encoding fields, so their keys
# differ from what this script computes now: running it again adds a second copy of every
# cell (MNIST ignores the DVS fields); experiments/report.py keeps the newest copy.
set -e
. "$(dirname "$0")/common.sh"
PREV="--eps 1e-3 --factor-clip 20"
sweep prev_alpha_mnist_e1 --data mnist5k --alphas $ALPHAS --hidden-sets 500 500,200 --seeds 0 1 2 --epochs 1 $PREV
sweep prev_alpha_mnist_e3 --data mnist5k --alphas 0.5 1.0 1.3 1.5 1.9 --hidden-sets 500 --seeds 0 1 2 --epochs 3 $PREV
