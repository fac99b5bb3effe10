#!/usr/bin/env bash
# Accuracy vs alpha on the bundled synthetic DVS128 gestures (2048 inputs, 11 classes),
# default method settings, 2048-500-11, 3 seeds, 3 epochs. The 1-epoch budget is epoch 1
# of these runs' history (training does not depend on the total number of epochs).
set -e
. "$(dirname "$0")/common.sh"
sweep alpha_gestures_e3 --data synth-gestures --alphas $ALPHAS --hidden-sets 500 --seeds 0 1 2 --epochs 3
