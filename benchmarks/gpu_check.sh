#!/usr/bin/env bash
# GPU check: everything that needs a real GPU, in one run of under ten minutes, with nothing
# to download (CuPy, NVRTC and the project must already be installed; kernels compile with
# NVRTC on first use). Writes into OUT_DIR: summary.json (exit code and seconds of each
# step), one .log per step, gpu_tests.xml (JUnit), memcheck.txt, racecheck.txt, bench.json.
#
#   usage: benchmarks/gpu_check.sh OUT_DIR        (PYTHON=... to choose the interpreter)
#
# Steps and their time limits (total 540 s):
#   env        nvidia-smi, versions, GPU visible to CuPy              20 s
#   gpu_tests  pytest -m gpu (every kernel twin test + the epoch)    180 s
#   memcheck   compute-sanitizer memcheck on benchmarks/gpu_step.py  100 s
#   racecheck  compute-sanitizer racecheck on the same step           100 s
#   bench      benchmarks/gpu_bench.py cuda vs numpy vs dense cupy    140 s
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
RESULTS=()

step() {  # step NAME LIMIT_S CMD... : run with a time limit, log to OUT/NAME.log, record rc
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s)
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    RESULTS+=("{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}")
    echo "   rc=$rc ($(( $(date +%s) - t0 )) s)"
    tail -n 3 "$OUT/$name.log"
}

step env 20 bash -c "nvidia-smi; $PYTHON -c 'import cupy, numpy; print(\"cupy\", cupy.__version__, \"numpy\", numpy.__version__); print(\"devices\", cupy.cuda.runtime.getDeviceCount())'"
step gpu_tests 180 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider --junitxml="$OUT/gpu_tests.xml" tests
step memcheck 100 "$SANITIZER" --tool memcheck --leak-check no --error-exitcode 9 \
    --log-file "$OUT/memcheck.txt" "$PYTHON" benchmarks/gpu_step.py --backend cuda
step racecheck 100 "$SANITIZER" --tool racecheck --error-exitcode 9 \
    --log-file "$OUT/racecheck.txt" "$PYTHON" benchmarks/gpu_step.py --backend cuda
step bench 140 "$PYTHON" benchmarks/gpu_bench.py --out "$OUT" --backends cuda,numpy --dense

status=0
for r in "${RESULTS[@]}"; do [[ $r == *'"rc": 0,'* ]] || status=1; done
( IFS=,; echo "{\"ok\": $([ $status = 0 ] && echo true || echo false), \"steps\": [${RESULTS[*]}]}" ) >"$OUT/summary.json"
cat "$OUT/summary.json"
exit $status
