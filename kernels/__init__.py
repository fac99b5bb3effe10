"""The CUDA C sources of gpusnn's kernels, installed with the package (see docs/kernels.md).

One .cu per phase (events, forward, gradient, update, compact), shared helpers in .cuh.
``source(name)`` returns a file's text with its local ``#include "x.cuh"`` lines expanded
(with #line markers, so compiler messages still name the original file and line): CuPy's
and cuemu's compile caches then key on everything the kernel is built from.
"""
from __future__ import annotations

import re
from pathlib import Path

DIR = Path(__file__).resolve().parent
_INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([\w.]+\.cuh)"\s*$', re.M)


def sources() -> list[Path]:
    """Every kernel file (*.cu), sorted by name."""
    return sorted(DIR.glob("*.cu"))


def expand(path: Path, _seen: set | None = None) -> str:
    """The text of path with its ``#include "x.cuh"`` lines (next to it) expanded once each."""
    seen = set() if _seen is None else _seen
    out, last = [], 0
    text = path.read_text()
    for m in _INCLUDE_RE.finditer(text):
        out.append(text[last:m.start()])
        header = path.parent / m.group(1)
        if header.name not in seen:
            seen.add(header.name)
            line = text.count("\n", 0, m.end()) + 2
            out.append(f'#line 1 "{header.name}"\n{expand(header, seen)}\n#line {line} "{path.name}"')
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def source(name: str) -> str:
    """The self-contained source of kernels/<name>.cu (name without the suffix)."""
    path = DIR / f"{name}.cu"
    if not path.is_file():
        raise FileNotFoundError(f"no kernel file {path}")
    return f'#line 1 "{path.name}"\n' + expand(path)
