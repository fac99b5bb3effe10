# Shared by the experiment scripts: run from the repository root, low priority.
# PYTHON picks the interpreter (default: python); gpusnn must be importable.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1  # the repository root, also when sourced from elsewhere
ALPHAS="0.5 0.7 0.9 1.0 1.1 1.3 1.5 1.7 1.9"
JOBS=${JOBS:-2}

# sweep NAME [gpusnn sweep options...]: results experiments/results/NAME.json,
# figure runs/sweeps/NAME/sweep.png, summary runs/sweeps/NAME.summary.json
sweep() {
    local name=$1; shift
    nice -n 10 "${PYTHON:-python}" -m gpusnn -q sweep --jobs "$JOBS" --out "runs/sweeps/$name" \
        --results "experiments/results/$name.json" \
        --json "runs/sweeps/$name.summary.json" "$@"
}
