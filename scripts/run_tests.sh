#!/usr/bin/env bash
# The whole test suite, from a fresh clone: make a virtual environment, install gpusnn
# (non-editable, with the test extra: pytest, hypothesis, mlxtend, CuPy + NVRTC for the
# kernel compile gate), run pytest against the installed package.
# Usage: bash scripts/run_tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh test
exec .venv/bin/pytest -ra "$@"
