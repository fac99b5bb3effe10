"""--backend cuda where it cannot run: a ConfigError naming the flag and the reason (exit 2
from the CLI), never a CuPy traceback; auto falls back to numpy."""
from __future__ import annotations

import sys

import pytest

from gpusnn import cli
from gpusnn.backends import get_backend, gpu_problem, gpu_usable
from gpusnn.errors import ConfigError


def test_no_cupy_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # import cupy now raises ImportError
    assert "CuPy does not import" in gpu_problem() and not gpu_usable()
    with pytest.raises(ConfigError, match=r"--backend cuda: CuPy does not import.*cuda12 or cuda13 extra"):
        get_backend("cuda")
    assert get_backend("auto").name == "numpy"


@pytest.mark.skipif(gpu_usable(), reason="a usable GPU is present")
def test_cuda_without_gpu_exits_2(capsys, caplog):
    assert cli.main(["-q", "profile", "--backend", "cuda", "--inputs", "20", "--hidden", "8", "--classes", "3",
                     "--steps", "4", "--batch-size", "2", "--repeats", "1"]) == 2
    err = capsys.readouterr().err + caplog.text     # the CLI logs the message to stderr
    assert "--backend cuda" in err and gpu_problem() in err and "Traceback" not in err
