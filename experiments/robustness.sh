#!/usr/bin/env bash
# No NaN / inf at the ends of (0, 2): current defaults, 784-500-10, seed 0, 1 epoch, test digits.
set -e
. "$(dirname "$0")/common.sh"
sweep robustness --data mnist5k --alphas 0.05 0.2 1.95 1.99 --hidden-sets 500 --seeds 0 --epochs 1
