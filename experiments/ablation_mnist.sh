#!/usr/bin/env bash
# Timing gradient vs rate gradient (docs/method.md section 3) at alpha = 1 and at the best
# alpha of the 1-epoch sweep (1.5), 784-500-10, 3 seeds, 1 epoch, default settings otherwise.
# The timing cells are those of alpha_mnist_e1; only the rate cells run here.
set -e
. "$(dirname "$0")/common.sh"
sweep ablation_mnist --data mnist5k --alphas 1.0 1.5 --hidden-sets 500 --seeds 0 1 2 --epochs 1 --gradient rate
