#!/usr/bin/env bash
# Which lr / eps / factor_clip make high orders help or hurt: the evidence for the current
# defaults (eps 1e-2, factor_clip 5). Tuned on a validation split (the last 1,000 of the 4,000
# mnist5k training digits; train on the other 3,000), never on the test digits.
# 784-500-10, seed 0, 1 epoch. Base: the previous defaults (eps 1e-3, factor_clip 20), lr 0.005.
# (Cells stored before TrainConfig gained the DVS fields: re-running adds copies, see
# prev_alpha_mnist.sh; experiments/report.py keeps the newest.)
set -e
. "$(dirname "$0")/common.sh"
TUNE="--data mnist5k --hidden-sets 500 --seeds 0 --epochs 1 --validation 1000"
for lr in 0.0005 0.005; do
    sweep tune_mnist_lr $TUNE --alphas $ALPHAS --lr "$lr" --eps 1e-3 --factor-clip 20
done
HIGH_LOW="0.5 1.5 1.9"
for clip in 5 1000; do  # 1000 never binds at eps 1e-3 (made before --factor-clip none worked)
    sweep tune_mnist_eps_clip $TUNE --alphas $HIGH_LOW --eps 1e-3 --factor-clip "$clip"
done
for eps in 1e-2 1e-1; do
    sweep tune_mnist_eps_clip $TUNE --alphas $HIGH_LOW --eps "$eps" --factor-clip 20
done
# the combination that became the default, all 9 alphas
sweep tune_mnist_eps_clip $TUNE --alphas $ALPHAS --eps 1e-2 --factor-clip 5
