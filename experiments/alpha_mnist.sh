#!/usr/bin/env bash
# Accuracy vs alpha on the real MNIST digits (mnist5k), default method settings.
# Short budget (1 epoch): all 9 alphas, 1 and 2 hidden layers, 3 seeds.
# Longer budget (3 epochs): 784-500-10, 5 alphas, 3 seeds (what the shared 2-core machine
# allowed in the session; the full grid is the same command with $ALPHAS and 500 500,200).
set -e
. "$(dirname "$0")/common.sh"
sweep alpha_mnist_e1 --data mnist5k --alphas $ALPHAS --hidden-sets 500 500,200 --seeds 0 1 2 --epochs 1
sweep alpha_mnist_e3 --data mnist5k --alphas 0.5 1.0 1.3 1.5 1.9 --hidden-sets 500 --seeds 0 1 2 --epochs 3
