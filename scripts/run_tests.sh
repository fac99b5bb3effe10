#!/usr/bin/env bash
# The whole test suite, from a fresh clone: make a virtual environment, install gpusnn
# (non-editable, with the test extra: pytest, hypothesis, mlxtend, CuPy + NVRTC for the
# kernel compile gate), run pytest against the installed package.
# Usage: bash scripts/run_tests.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q ".[test]"
exec .venv/bin/pytest -ra "$@"
