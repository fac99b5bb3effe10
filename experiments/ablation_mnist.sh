#!/usr/bin/env bash
# Timing gradient vs rate gradient (docs/method.md section 3) on mnist5k, 784-500-10, current
# defaults, 3 seeds, 5 epochs (epoch 1 from the history): at alpha = 1.5, the alpha with the
# highest mean of the epoch-1 and epoch-5 test accuracies of alpha_mnist_e5 (1 hidden layer; also
# the best at each budget alone; selected on the test digits: see docs/results.md),
# and at alpha = 1 (plain gradient descent, no selection). Only the rate cells run here; the
# timing cells are those of alpha_mnist_e5.
set -e
. "$(dirname "$0")/common.sh"
sweep ablation_mnist --data mnist5k --alphas 1.0 1.5 --hidden-sets 500 --seeds 0 1 2 --epochs 5 --gradient rate
