#!/usr/bin/env bash
# The recommended settings (eps 1e-2, factor_clip 5, lr 0.005) over all 9 alphas, on the
# validation split like the tuning runs (784-500-10, seed 0, 1 epoch).
set -e
. "$(dirname "$0")/common.sh"
sweep tune_mnist_eps_clip --data mnist5k --hidden-sets 500 --seeds 0 --epochs 1 --validation 1000 \
    --alphas $ALPHAS --eps 1e-2 --factor-clip 5
# the same settings on the test digits, 3 seeds
sweep alpha_mnist_recommended_e1 --data mnist5k --hidden-sets 500 --seeds 0 1 2 --epochs 1 \
    --alphas $ALPHAS --eps 1e-2 --factor-clip 5
