#!/usr/bin/env bash
# Timing gradient vs rate gradient (docs/method.md section 3) on synth-gestures, 2048-500-11, current defaults,
# 10 seeds (as alpha_gestures_e5), 5 epochs (epoch 1 from the history), at every alpha of the sweep, so that the
# comparison at the best alpha (1.3: the highest mean of the epoch-1 and epoch-5 test accuracies
# of alpha_gestures_e5, a test-split choice) needs no selection. Only the rate cells run here; the
# timing cells are those of alpha_gestures_e5 (same seeds: paired).
set -e
. "$(dirname "$0")/common.sh"
sweep ablation_gestures --data synth-gestures --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 3 4 5 6 7 8 9 \
    --epochs 5 --gradient rate
