#!/usr/bin/env bash
# PREVIOUS DEFAULTS (eps 1e-3, factor_clip 20) at a small learning rate, lr 0.0005 (chosen on
# the validation split by tuning_mnist.sh, where the curve rose monotonically), reported on
# the test digits: the regime where the paper's rising curve shows.
# 784-500-10, all 9 alphas, 3 seeds, 1 epoch. (Re-running adds copies; see prev_alpha_mnist.sh.)
set -e
. "$(dirname "$0")/common.sh"
sweep prev_alpha_mnist_lr0005_e1 --data mnist5k --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 --epochs 1 \
    --lr 0.0005 --eps 1e-3 --factor-clip 20
