"""The `gpusnn` command line. Every module in gpusnn/commands/ adds its commands through
`register(subparsers)`; each command function returns a JSON-able dict of results, which
is written to --json FILE when that option is given."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from pathlib import Path

import numpy as np

from gpusnn import __version__, commands
from gpusnn.errors import GpusnnError

log = logging.getLogger("gpusnn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpusnn", description="Event-driven spiking neural networks trained with FO-STDGD "
                                   "(backends: numpy reference, cuda kernels, emulated kernels on the CPU).")
    parser.add_argument("--version", action="version", version=f"gpusnn {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors, no progress bars")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue  # helpers such as _options, not commands
        importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: str | Path, results: dict) -> None:
    """Write results as indented JSON (NumPy values converted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(results), indent=2) + "\n")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    args.progress = not args.quiet and sys.stderr.isatty()
    try:
        results = args.func(args)
    except GpusnnError as e:
        log.error("%s", e)
        return 2
    if getattr(args, "json", None) and results is not None:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
