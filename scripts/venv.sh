#!/usr/bin/env bash
# Make .venv/ (once) and install gpusnn into it, non-editable, with the extras given as $1
# (e.g. "test" or "mnist5k"). Sourced by main_job.sh and run_tests.sh from the repository root.
# pip runs quietly; a line every 15 s says the install is still going (also into a log file).
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
echo "installing gpusnn[$1] into .venv (a minute or two the first time) ..."
_gpusnn_t0=$SECONDS
( while sleep 15; do echo "  ... still installing ($((SECONDS - _gpusnn_t0)) s)"; done ) &
_gpusnn_ticker=$!
trap 'kill $_gpusnn_ticker 2>/dev/null' EXIT
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q ".[$1]"
kill $_gpusnn_ticker 2>/dev/null
trap - EXIT
echo "installed: the console script is .venv/bin/gpusnn (or run: source .venv/bin/activate)"
