#!/usr/bin/env bash
# PREVIOUS DEFAULTS (eps 1e-3, factor_clip 20): rate gradient at alpha 1 and 1.5, 784-500-10,
# 3 seeds, 1 epoch. The timing cells are those of prev_alpha_mnist_e1.
# (Re-running adds copies; see prev_alpha_mnist.sh.)
set -e
. "$(dirname "$0")/common.sh"
sweep prev_ablation_mnist --data mnist5k --alphas 1.0 1.5 --hidden-sets 500 --seeds 0 1 2 --epochs 1 \
    --gradient rate --eps 1e-3 --factor-clip 20
