#!/usr/bin/env bash
# Accuracy vs alpha on the real MNIST digits (mnist5k), default method settings,
# 1 and 2 hidden layers, 3 seeds, a short (1 epoch) and a longer (3 epochs) budget.
set -e
. "$(dirname "$0")/common.sh"
for epochs in 1 3; do
    sweep "alpha_mnist_e$epochs" --data mnist5k --alphas $ALPHAS --hidden-sets 500 500,200 \
        --seeds 0 1 2 --epochs "$epochs"
done
