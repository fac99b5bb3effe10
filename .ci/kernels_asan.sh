#!/usr/bin/env bash
# CI step: the kernel tests against an AddressSanitizer + UBSan build of the emulation
# (the CPU stand-in for compute-sanitizer memcheck). Called from .ci/run with $PYTHON set to
# the project's venv python. libasan is preloaded into the Python process only (gpusnn.cuemu
# and the compile gate strip LD_PRELOAD from the g++ / nvcc subprocesses).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LIBASAN=$(gcc -print-file-name=libasan.so)
[ -f "$LIBASAN" ] || { echo "kernels_asan: libasan not found ($LIBASAN)" >&2; exit 1; }
# a separate cache: sanitized builds never mix with the plain ones
export CUEMU_CACHE=${CUEMU_CACHE:-$HOME/.cache/cuemu-asan}
CUEMU_SANITIZE=1 \
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:halt_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LD_PRELOAD="$LIBASAN" \
    "$PYTHON" -m pytest -q -p no:cacheprovider -m "not gpu" \
    tests/test_gpu_forward.py tests/test_gpu_gradient.py tests/test_gpu_update.py \
    tests/test_gpu_events.py tests/test_gpu_backend.py tests/test_gpu_grid.py tests/test_gpu_dense.py \
    tests/test_gpu_large_batch.py tests/test_gpu_encode.py "$@"
