#!/usr/bin/env bash
# Accuracy vs alpha on the bundled synthetic DVS128 gestures (synth-gestures v2: 2048 inputs
# = 32 x 32 x 2, 11 classes, 778 train / 202 test), at the current defaults (lr 0.005,
# eps 1e-2, factor_clip 5; DVS downsample 4, duration binning, count encoding), 5 epochs,
# test split. The 1-epoch budget is epoch 1 of these runs' history. 10 seeds (a cell takes
# seconds and 202 test samples make single runs noisy: one sample is 0.5 %).
set -e
. "$(dirname "$0")/common.sh"
sweep alpha_gestures_e5 --data synth-gestures --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 3 4 5 6 7 8 9 --epochs 5
sweep alpha_gestures_e5 --data synth-gestures --alphas $ALPHAS --hidden-sets 500,200 --seeds 0 1 2 3 4 5 6 7 8 9 --epochs 5
