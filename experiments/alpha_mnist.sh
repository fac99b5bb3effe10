#!/usr/bin/env bash
# Accuracy vs alpha on the real MNIST digits (mnist5k: 4,000 train / 1,000 test), at the
# current defaults (lr 0.005, eps 1e-2, factor_clip 5, w_max 4), 3 seeds, 5 epochs, test split.
# The 1-epoch budget is epoch 1 of these runs' history (nothing in training depends on the
# total epoch count). 1 hidden layer first, then 2 (the order the CPU time is spent in).
set -e
. "$(dirname "$0")/common.sh"
sweep alpha_mnist_e5 --data mnist5k --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 --epochs 5
sweep alpha_mnist_e5 --data mnist5k --alphas $ALPHAS --hidden-sets 500,200 --seeds 0 1 2 --epochs 5
