#!/usr/bin/env bash
# GPU check: everything that needs a real GPU in one call of under five minutes, with nothing
# to download (CuPy, NVRTC and the project must already be installed: the cuda12 / cuda13
# extra). Writes two files into OUT_DIR: summary.json (the verdict, every step's status,
# seconds and limit, the key numbers) and gpu_check.tar.gz (every log and result file).
#
#   usage: benchmarks/gpu_check.sh OUT_DIR     PYTHON=... chooses the interpreter;
#          GPUSNN_REQUIRE_GPU=1 turns every "skipped: no GPU" into a failure.
#
# Step status: passed | failed | timeout | skipped (no GPU) | unavailable (tool or package
# missing: not a failure) | not needed. Exit status 0 when no step failed or timed out.
# Steps and time limits (s); the group marked || runs in parallel; every limit is also cut
# to what is left of TOTAL_S = 285 so that the whole script ends within five minutes:
#   env          15  nvidia-smi, versions, gpusnn.backends.gpu_problem()
#   gpu_tests    60  pytest -m gpu (every kernel twin test and the epoch test on cuda)
#   memcheck  || 60  compute-sanitizer memcheck on benchmarks/gpu_step.py, CuPy pools off
#   initcheck || 60  compute-sanitizer initcheck, the same
#   racecheck || 60  where a kernel uses __shared__ memory (forward.cu's currents_csr and
#                    currents_grid stage spike ids in it), else "not needed"; the sanitizers
#                    run gpu_step.py in both forward modes (event, dense: every forward kernel)
#   agree     || 60  cuda vs emulated on one 2048-500-11 batch (benchmarks/gpu_agree.py)
#   profiles     60  gpusnn profile, 784-500-10 and 2048-500-11, T = 20, B in {32, 128, 512}
#   kernel_times 25  per-kernel times, 2048-500-11, T = 20, B = 32 and 512
#   crossover    15  event vs dense forward of 2048-500 over densities 1-60 %, T = 20, B 32 / 128
#                    (benchmarks/gpu_crossover.py: measures forward.DENSE_ABOVE, modelled until then)
#   graph        20  training step as a captured CUDA graph vs kernel by kernel (benchmarks/gpu_graph.py)
#   bench        40  benchmarks/gpu_bench.py: cuda vs numpy vs dense formulation and its GEMMs
#   spikingjelly 30  SpikingJelly's CuPy neurons vs gpusnn, same network (if installed)
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
REQUIRE=${GPUSNN_REQUIRE_GPU:-0}
TOTAL_S=285
START=$(date +%s)
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
LOGS=$WORK/gpu_check
mkdir -p "$LOGS/steps"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
SANITIZER=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)

record() {  # record NAME STATUS RC SECONDS LIMIT NOTE: one step's result as JSON
    local note=${6//[\"\\]/}
    printf '{"step": "%s", "status": "%s", "rc": %s, "seconds": %s, "limit_s": %s, "note": "%s"}\n' \
        "$1" "$2" "$3" "$4" "$5" "$note" >"$LOGS/steps/$1.json"
    echo "== $1: $2 (${4}s of ${5}s)${note:+ - $note}"
}

left() {  # seconds left of TOTAL_S
    echo $(( TOTAL_S - ($(date +%s) - START) ))
}

run_step() {  # run_step NAME LIMIT CMD...: run under a time limit, log to NAME.log, record
    local name=$1 limit=$2 t0 rc status note=""
    shift 2
    (( limit > $(left) )) && limit=$(left)
    if (( limit <= 0 )); then
        record "$name" timeout null 0 0 "no time left of ${TOTAL_S}s"
        return
    fi
    t0=$(date +%s)
    timeout --kill-after=2 "$limit" "$@" >"$LOGS/$name.log" 2>&1
    rc=$?
    case $rc in
        0) status=passed ;;
        124|137) status=timeout ;;
        *) status=failed; note=$(tail -n 1 "$LOGS/$name.log" | tr -d '\000-\037' | cut -c1-200) ;;
    esac
    record "$name" "$status" "$rc" $(( $(date +%s) - t0 )) "$limit" "$note"
}

gpu_step() {  # gpu_step NAME LIMIT CMD...: run_step where a GPU is usable, else skipped (failed if required)
    if [[ -n $GPU_PROBLEM ]]; then
        if [[ $REQUIRE == 1 ]]; then
            record "$1" failed null 0 "$2" "skipped: no GPU ($GPU_PROBLEM) but GPUSNN_REQUIRE_GPU=1"
        else
            record "$1" skipped null 0 "$2" "skipped: no GPU ($GPU_PROBLEM)"
        fi
        return
    fi
    run_step "$@"
}

sanitizer_step() {  # sanitizer_step TOOL LIMIT: compute-sanitizer TOOL on a small training run, pools off
    if [[ -z $GPU_PROBLEM && ! -x $SANITIZER ]]; then
        record "$1" unavailable null 0 "$2" "compute-sanitizer not found"
        return
    fi
    gpu_step "$1" "$2" "$SANITIZER" --tool "$1" --error-exitcode 9 --log-file "$LOGS/$1.txt" \
        "$PYTHON" benchmarks/gpu_step.py --backend cuda --no-pool --modes event,dense
}

# env: always runs; decides whether there is a GPU
t0=$(date +%s)
{
    command -v nvidia-smi >/dev/null && timeout 10 nvidia-smi
    timeout 15 "$PYTHON" -c 'import sys, numpy; print("python", sys.version.split()[0], "numpy", numpy.__version__)
try:
    import cupy; print("cupy", cupy.__version__)
except Exception as e:
    print("cupy: not importable:", e)'
} >"$LOGS/env.log" 2>&1
GPU_PROBLEM=$(timeout 15 "$PYTHON" -c 'from gpusnn.backends import gpu_problem; print(gpu_problem() or "")' 2>>"$LOGS/env.log")
rc=$?
echo "gpu_problem: ${GPU_PROBLEM:-none}" >>"$LOGS/env.log"
if (( rc != 0 )); then
    GPU_PROBLEM="gpusnn does not import (see env.log)"
    record env failed "$rc" $(( $(date +%s) - t0 )) 15 "$GPU_PROBLEM"
else
    record env passed 0 $(( $(date +%s) - t0 )) 15 "${GPU_PROBLEM:+no GPU: $GPU_PROBLEM}"
fi
GPU_PROBLEM=${GPU_PROBLEM//[$'\n\r\t']/ }

gpu_step gpu_tests 60 "$PYTHON" -m pytest -q -m gpu -rs -p no:cacheprovider --junitxml="$LOGS/gpu_tests.xml" tests
if [[ $REQUIRE == 1 && -f $LOGS/gpu_tests.log ]] && grep -q "needs a CUDA GPU" "$LOGS/gpu_tests.log"; then
    record gpu_tests failed null 0 60 "tests skipped for want of a GPU but GPUSNN_REQUIRE_GPU=1"
fi

# parallel group: the sanitizers and the agreement run (the emulated half is CPU work)
sanitizer_step memcheck 60 &
sanitizer_step initcheck 60 &
if grep -lq "__shared__" kernels/*.cu kernels/*.cuh 2>/dev/null; then
    sanitizer_step racecheck 60 &
else
    record racecheck "not needed" null 0 0 "no kernel uses shared memory"
fi
gpu_step agree 60 "$PYTHON" benchmarks/gpu_agree.py --out "$LOGS/agree.json" &
wait

# shellcheck disable=SC2317  # profiles and peers run through bash -c (exported), under gpu_step's timeout
profiles() {  # the six profiles, one JSON each (input density 0.1 for 784 inputs, 0.05 for 2048)
    local net n_in hidden classes density b
    for net in "784 500 10 0.1" "2048 500 11 0.05"; do
        read -r n_in hidden classes density <<<"$net"
        for b in 32 128 512; do
            "$PYTHON" -m gpusnn -q profile --backend cuda --inputs "$n_in" --hidden "$hidden" --classes "$classes" \
                --density "$density" --steps 20 --batch-size "$b" --repeats 5 --warmup 2 \
                --json "$LOGS/profile_$n_in-$hidden-$classes""_B$b.json" || return 1
        done
    done
}
# shellcheck disable=SC2317
peers() {  # SpikingJelly (CuPy neurons) and gpusnn on the same network and input
    local t
    for t in spikingjelly gpusnn; do
        "$PYTHON" benchmarks/train_worker.py --trainer "$t" --backend cuda --steps 20 --samples 512 --batch 32 \
            --epochs 2 --warmup 1 || return 1
    done
}
export -f profiles peers
export PYTHON LOGS
gpu_step profiles 60 bash -c profiles
gpu_step kernel_times 25 "$PYTHON" benchmarks/gpu_kernel_times.py --backend cuda --widths 2048,500,11 --steps 20 \
    --batch-sizes 32,512 --out "$LOGS/kernel_times.json"
gpu_step crossover 15 "$PYTHON" benchmarks/gpu_crossover.py --backend cuda --layer 2048,500 --steps 20 \
    --batch-sizes 32,128 --out "$LOGS/crossover.json"
gpu_step graph 20 "$PYTHON" benchmarks/gpu_graph.py --widths 2048,500,11 --steps 20 --batch-size 32 \
    --repeats 50 --out "$LOGS/graph.json"
gpu_step bench 40 "$PYTHON" benchmarks/gpu_bench.py --out "$LOGS" --backends cuda,numpy --dense --samples 512 --steps 20

if timeout 20 "$PYTHON" -c 'import torch, spikingjelly, cupy; assert torch.cuda.is_available()' >"$LOGS/spikingjelly.log" 2>&1; then
    gpu_step spikingjelly 30 bash -c peers
else
    record spikingjelly unavailable null 0 30 "torch with CUDA + SpikingJelly not installed"
fi

# summary.json (verdict + key numbers) and the tarball of everything
SECONDS_ALL=$(( $(date +%s) - START ))
"$PYTHON" - "$LOGS" "$OUT/summary.json" "$REQUIRE" "$GPU_PROBLEM" "$SECONDS_ALL" <<'EOF'
import glob, json, os, sys
logs, out, require, problem, seconds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4], int(sys.argv[5])
ORDER = ["env", "gpu_tests", "memcheck", "initcheck", "racecheck", "agree", "profiles", "kernel_times", "crossover",
         "graph",
         "bench", "spikingjelly"]
steps = sorted((json.load(open(p)) for p in glob.glob(os.path.join(logs, "steps", "*.json"))),
               key=lambda s: ORDER.index(s["step"]) if s["step"] in ORDER else len(ORDER))
bad = [s["step"] for s in steps if s["status"] in ("failed", "timeout")]
def load(name):
    try:
        return json.load(open(os.path.join(logs, name)))
    except (OSError, ValueError):
        return None
results = {}
for p in sorted(glob.glob(os.path.join(logs, "profile_*.json"))):
    r = json.load(open(p))
    results[os.path.basename(p)[8:-5]] = {"step_ms": r["throughput"]["step_s"] * 1e3,
                                          "device_traffic": {k: v for k, v in (r["device_traffic"] or {}).items()
                                                             if k != "breakdown"}}
agree = load("agree.json")
bench = load("bench.json")
crossover = load("crossover.json")
summary = {"ok": not bad, "gpu": not problem, "gpu_problem": problem or None, "require_gpu": require,
           "seconds": seconds, "failed": bad,
           "verdict": ("FAILED: " + ", ".join(bad)) if bad else ("passed" if not problem else
                      "no GPU: nothing measured (every GPU step skipped)"),
           "steps": steps, "profiles": results or None, "agree": agree, "graph": load("graph.json"),
           "crossover": crossover and {str(b["batch_size"]): b["measured_crossover"] for b in crossover["batches"]},
           "bench": bench and {k: {m: v[m] for m in ("epoch_s", "dense_epoch_s", "gemm_epoch_s", "speedup_vs_numpy",
                                                   "speedup_vs_gemms") if m in v} for k, v in bench["backends"].items()}}
json.dump(summary, open(out, "w"), indent=2)
print(json.dumps({k: summary[k] for k in ("ok", "gpu", "verdict", "seconds")}))
sys.exit(1 if bad else 0)
EOF
status=$?
tar -czf "$OUT/gpu_check.tar.gz" -C "$WORK" gpu_check || status=1
exit $status
