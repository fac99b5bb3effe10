"""benchmarks/ is put on sys.path by tests and by the scripts themselves (they import common),
so a script named like an installed package (benchmarks/distributed.py once hid dask's
`distributed`) would break that package for the rest of the process."""
from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_no_benchmark_script_shadows_an_importable_module():
    path = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    clashes = {}
    for script in sorted(BENCH.glob("*.py")):
        if script.stem in sys.builtin_module_names:
            clashes[script.name] = "a builtin module"
            continue
        spec = importlib.machinery.PathFinder.find_spec(script.stem, path)
        if spec is not None:
            clashes[script.name] = spec.origin
    assert clashes == {}, f"benchmark scripts named like importable modules: {clashes}"


def test_the_check_sees_a_clash():
    path = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
    assert importlib.machinery.PathFinder.find_spec("json", path) is not None
