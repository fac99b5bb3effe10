"""benchmarks/gpu_check.sh without a GPU (it must say so cleanly, and fail when a GPU is
required) and the CPU runs of its Python parts (kernel times, cuda-vs-emulated agreement)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from gpusnn.backends import gpu_usable

ROOT = Path(__file__).resolve().parent.parent
GPU_STEPS = {"gpu_tests", "memcheck", "initcheck", "racecheck", "agree", "profiles", "kernel_times", "crossover",
             "graph", "bench"}


def bench_module(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is no package; its scripts import common)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_check(out: Path, **env) -> tuple[int, dict]:
    env = {**os.environ, "PYTHON": sys.executable, **env}
    rc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), str(out)], env=env,
                        capture_output=True, text=True, timeout=120).returncode
    return rc, json.loads((out / "summary.json").read_text())


@pytest.mark.skipif(gpu_usable(), reason="a GPU is present: the check would run for real")
def test_gpu_check_without_gpu(tmp_path):
    rc, summary = run_check(tmp_path / "a", GPUSNN_REQUIRE_GPU="0")
    assert rc == 0 and summary["ok"] and not summary["gpu"] and summary["verdict"].startswith("no GPU")
    assert sorted(os.listdir(tmp_path / "a")) == ["gpu_check.tar.gz", "summary.json"]
    status = {s["step"]: s["status"] for s in summary["steps"]}
    assert status["env"] == "passed"   # racecheck is a GPU step: forward.cu stages spikes in __shared__
    assert {status[s] for s in GPU_STEPS} == {"skipped"}
    with tarfile.open(tmp_path / "a" / "gpu_check.tar.gz") as tar:
        assert "gpu_check/env.log" in tar.getnames()
    rc, summary = run_check(tmp_path / "b", GPUSNN_REQUIRE_GPU="1")
    status = {s["step"]: s["status"] for s in summary["steps"]}
    assert rc == 1 and not summary["ok"] and {status[s] for s in GPU_STEPS} == {"failed"}
    assert set(summary["failed"]) == GPU_STEPS


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_gpu_check_passes_shellcheck():
    subprocess.run(["shellcheck", str(ROOT / "benchmarks" / "gpu_check.sh")], check=True)


def test_kernel_times_cover_every_counted_launch(tmp_path):
    gpu_kernel_times = bench_module("gpu_kernel_times")
    out = tmp_path / "k.json"
    assert gpu_kernel_times.main(["--backend", "emulated", "--widths", "40,16,5", "--steps", "5",
                                  "--batch-sizes", "3", "--repeats", "2", "--out", str(out)]) == 0
    batch = json.loads(out.read_text())["batches"][0]
    tr = batch["device_traffic"]["breakdown"]
    calls = {**tr["kernels"], **{f"xp.{k}": v for k, v in tr["library"].items()}}
    assert {k: v["launches_per_batch"] for k, v in batch["per_label"].items()} == calls
    assert all(v["ms_per_batch"] > 0 for v in batch["per_label"].values())


def test_agreement_script_agrees_emulated_with_numpy(tmp_path):
    gpu_agree = bench_module("gpu_agree")
    out = tmp_path / "a.json"
    assert gpu_agree.main(["--backends", "emulated,numpy", "--widths", "60,20,5", "--steps", "6",
                           "--batch-size", "8", "--density", "0.2", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["ok"] and res["spikes_equal"] and min(res["spikes_per_layer"][0]) > 0


def test_graph_script_refuses_a_backend_without_cuda_graphs(capsys):
    gpu_graph = bench_module("gpu_graph")
    assert gpu_graph.main(["--backend", "emulated", "--widths", "20,8,3", "--steps", "4", "--batch-size", "2"]) == 2
    assert "--cuda-graph needs --backend cuda" in capsys.readouterr().err
