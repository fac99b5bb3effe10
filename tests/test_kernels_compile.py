"""The compile gate: every kernels/*.cu must build for the GPU exactly as cupy.RawModule
builds it (NVRTC with CuPy's flags; no driver or GPU needed) and with nvcc -Werror, with no
warnings, no spills, no local memory and every kernel within the register budget stated in
its source as ``// budget <kernel>: <N> registers``. A deliberately broken kernel must fail.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import kernels

ARCH = "sm_90"
# what cupy 14's RawModule passes to NVRTC, plus -Xptxas=-v for the resource report
CUPY_FLAGS = ("-std=c++17", "-ftz=true", "--device-as-default-execution-space", f"-arch={ARCH}", "-Xptxas=-v")
NVCC_FLAGS = ("-cubin", f"-arch={ARCH}", "-std=c++17", "-Werror", "all-warnings",
              "-Xptxas", "-v,-warn-spills,-warn-lmem-usage")
_BUDGET_RE = re.compile(r"//\s*budget\s+(\w+):\s*(\d+)\s+registers")


def budgets(text: str) -> dict[str, int]:
    """kernel name -> register budget, from the ``// budget`` comments of a source."""
    return {k: int(n) for k, n in _BUDGET_RE.findall(text)}


def ptxas_report(log: str) -> dict[str, dict]:
    """kernel -> {"registers": N, "spill": bytes} from a ptxas -v log."""
    out = {}
    for chunk in re.split(r"Compiling entry function '", log)[1:]:
        name = chunk.split("'", 1)[0]
        regs = re.search(r"Used (\d+) registers", chunk)
        spills = [int(s) for s in re.findall(r"(\d+) bytes spill (?:stores|loads)", chunk)]
        out[name] = {"registers": int(regs.group(1)) if regs else None, "spill": sum(spills)}
    return out


def nvrtc_log(path: Path) -> tuple[bool, str]:
    """(compiled, log) of NVRTC on the include-expanded source, with CuPy's flags."""
    from cupy.cuda import nvrtc  # needs only libnvrtc (pip nvidia-cuda-nvrtc), no driver
    prog = nvrtc.createProgram(kernels.expand(path), path.name, (), ())
    try:
        try:
            nvrtc.compileProgram(prog, CUPY_FLAGS)
            ok = True
        except nvrtc.NVRTCError:
            ok = False
        return ok, nvrtc.getProgramLog(prog)
    finally:
        nvrtc.destroyProgram(prog)


def nvcc_log(path: Path, out: Path) -> tuple[bool, str]:
    """(compiled, log) of nvcc -cubin -Werror all-warnings (LD_PRELOAD kept out: ASan runs)."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return False, "nvcc not on PATH"
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    r = subprocess.run([nvcc, *NVCC_FLAGS, "-I", str(path.parent), "-o", str(out), str(path)],
                       capture_output=True, text=True, env=env)
    return r.returncode == 0, r.stdout + r.stderr


def gate_problems(path: Path, workdir: Path) -> list[str]:
    """Everything wrong with one kernel file; [] when it passes the gate."""
    problems = []
    declared = budgets(path.read_text())
    for tool, (ok, log) in (("nvrtc", nvrtc_log(path)), ("nvcc", nvcc_log(path, workdir / f"{path.stem}.cubin"))):
        if not ok:
            problems.append(f"{tool} failed on {path.name}:\n{log}")
            continue
        if re.search(r"\bwarning\b", log, re.I):
            problems.append(f"{tool} warned on {path.name}:\n{log}")
        report = ptxas_report(log)
        if not report:
            problems.append(f"{tool}: no ptxas report for {path.name}")
        for name, r in report.items():
            if r["spill"]:
                problems.append(f"{tool}: {name} spills {r['spill']} bytes")
            if name not in declared:
                problems.append(f"{path.name}: kernel {name} states no register budget")
            elif r["registers"] is None or r["registers"] > declared[name]:
                problems.append(f"{tool}: {name} uses {r['registers']} registers, budget {declared[name]}")
    return problems


@pytest.mark.parametrize("path", kernels.sources(), ids=lambda p: p.name)
def test_kernel_passes_gate(path, tmp_path):
    assert gate_problems(path, tmp_path) == []


GOOD = """// budget ok_kernel: 32 registers
extern "C" __global__ void ok_kernel(float* x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= 2.0f;
}
"""


@pytest.mark.parametrize("broken, expect", [
    (GOOD.replace("x[i] *= 2.0f", "y[i] *= 2.0f"), "failed"),                       # compile error
    (GOOD.replace("if (i < n)", "int unused = 3; if (i < n)"), r"warned|failed"),    # warning
    (GOOD.replace("32 registers", "1 registers"), "budget 1"),                       # over budget
    (GOOD.replace("// budget ok_kernel: 32 registers", ""), "no register budget"),  # budget missing
], ids=["error", "warning", "over-budget", "no-budget"])
def test_gate_fails_on_broken_kernel(broken, expect, tmp_path):
    path = tmp_path / "broken.cu"
    path.write_text(broken)
    problems = gate_problems(path, tmp_path)
    assert problems and re.search(expect, "\n".join(problems)), problems


def test_gate_passes_the_good_example(tmp_path):
    path = tmp_path / "good.cu"
    path.write_text(GOOD)
    assert gate_problems(path, tmp_path) == []


def test_every_budget_names_a_kernel():
    from gpusnn.cuemu import _KERNEL_RE
    for path in kernels.sources():
        text = path.read_text()
        assert set(budgets(text)) == set(_KERNEL_RE.findall(text)), path.name
