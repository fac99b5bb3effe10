"""Shared helpers of the benchmark suite: machine description, process memory, fresh-process runs.

Memory figures come from the kernel's own accounting (/proc/self/status VmHWM, reset by
writing 5 to /proc/self/clear_refs), so they cover NumPy, scipy and torch buffers alike;
where /proc is missing they fall back to resource.getrusage's ru_maxrss (no reset).
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window for this process (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_bytes() -> int:
    """Resident set size now."""
    kib = _status_kib("VmRSS")
    return (kib or 0) * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size since the last reset_peak_rss (or process start)."""
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def versions() -> dict:
    """Versions of whatever of the compared packages this interpreter can import."""
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "scipy", "torch", "snntorch", "spikingjelly", "tonic", "cupy", "gpusnn"):
        try:
            from importlib.metadata import version
            out[name] = version(name)
        except Exception:  # not installed in this environment
            continue
    return out


def machine() -> dict:
    """CPU model, cores, OS, BLAS, versions and the date (UTC) of this run."""
    from gpusnn.profiling import cpu_model
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_model(), "cpu_cores": os.cpu_count(), "platform": platform.platform(), "versions": versions(),
            "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS")
                    if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "architecture", "num_threads")} for p in threadpool_info()]
    except ImportError:
        pass
    return info


def run_worker(python: str, script: str, args: list[str], threads: int | None = None, timeout: float = 900) -> dict:
    """Run benchmarks/<script> in a fresh process; its last stdout line is its JSON result.

    threads: cap on the BLAS / OpenMP threads of that process (None: the libraries' default).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if threads is not None:
        env.update({k: str(threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    proc = subprocess.run([python, str(Path(__file__).parent / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_result(name: str, result: dict, out_dir: Path = RESULTS) -> Path:
    """Write one suite's result as out_dir/<name>.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def report(result: dict, out: str | None) -> int:
    """Print a script's result as JSON and write it to out (a path) when given; exit status 0."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")
    return 0
