#!/usr/bin/env bash
# Make .venv/ (once) and install gpusnn into it, non-editable, with the extras given as $1
# (e.g. "test" or "mnist5k"). Sourced by main_job.sh and run_tests.sh from the repository root.
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q ".[$1]"
