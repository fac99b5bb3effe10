#!/usr/bin/env bash
# Timing gradient vs rate gradient (docs/method.md section 3) on mnist5k, 784-500-10, current defaults,
# 3 seeds, 5 epochs (epoch 1 from the history), at every alpha of the sweep, so that the
# comparison at the best alpha (1.5: the highest mean of the epoch-1 and epoch-5 test accuracies
# of alpha_mnist_e5, a test-split choice) needs no selection. Only the rate cells run here; the
# timing cells are those of alpha_mnist_e5 (same seeds: paired).
set -e
. "$(dirname "$0")/common.sh"
sweep ablation_mnist --data mnist5k --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 --epochs 5 --gradient rate
