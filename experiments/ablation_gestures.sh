#!/usr/bin/env bash
# Timing gradient vs rate gradient (docs/method.md section 3) on synth-gestures, 2048-500-11,
# current defaults, 10 seeds (as alpha_gestures_e5), 5 epochs (epoch 1 from the history): at
# alpha = 1.3, the alpha with the highest mean of the epoch-1 and epoch-5 test accuracies in
# alpha_gestures_e5 (selected on the test split: see docs/results.md; 1.0-1.9 are within noise
# of each other), and at alpha = 1 (plain gradient descent, no selection). Only the rate cells
# run here; the timing cells are those of alpha_gestures_e5.
set -e
. "$(dirname "$0")/common.sh"
sweep ablation_gestures --data synth-gestures --alphas 1.0 1.3 --hidden-sets 500 --seeds 0 1 2 3 4 5 6 7 8 9 \
    --epochs 5 --gradient rate
