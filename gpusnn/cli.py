"""The `gpusnn` command line. Every module in gpusnn/commands/ adds its commands through
`register(subparsers)`; each command function checks its inputs and output paths before any
work, prints what it did and returns a JSON-able dict of results, which is written to
--json FILE when that option is given.

Every failure is a GpusnnError (or an OSError a check could not foresee): the message goes to
stderr as "gpusnn: error: ..." and the exit status is 2, never a traceback.

Logging: warnings and errors always; progress (a bar on a terminal, a line every 10 s
otherwise) and one line per epoch unless -q; -v adds the INFO messages of every module (data
statistics, backend choice, saved files), -vv DEBUG.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys
from pathlib import Path

import numpy as np

from data_tools.progress import PROGRESS
from gpusnn import __version__, commands
from gpusnn.commands._checks import output_file
from gpusnn.commands._options import flag_message
from gpusnn.config import OptionError
from gpusnn.errors import GpusnnError

log = logging.getLogger("gpusnn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpusnn", description="Event-driven spiking neural networks trained with FO-STDGD "
                                   "(backends: numpy reference, cuda kernels, emulated kernels on the CPU).")
    parser.add_argument("--version", action="version", version=f"gpusnn {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="also the INFO messages of every module (-vv: DEBUG); give before COMMAND")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only warnings and errors: no progress, no per-epoch lines; give before COMMAND")
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


class _Formatter(logging.Formatter):
    """Progress lines as they are; other records as "LEVEL logger: message"."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == PROGRESS.name and record.levelno == logging.INFO:
            return record.getMessage()
        return f"{record.levelname} {record.name}: {record.getMessage()}"


def setup_logging(verbose: int, quiet: bool) -> None:
    """Root level WARNING (-v: INFO, -vv: DEBUG); progress lines at INFO unless quiet."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    PROGRESS.setLevel(logging.WARNING if quiet else logging.INFO)


def fail(message: str) -> int:
    """Print the error as argparse does and return the exit status 2."""
    print(f"gpusnn: error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    args.progress = not args.quiet
    try:
        if getattr(args, "json", None):
            output_file(args.json, "--json")
        results = args.func(args)
        if getattr(args, "json", None) and results is not None:
            write_json(args.json, results)
    except OptionError as e:
        return fail(flag_message(e))
    except GpusnnError as e:
        return fail(str(e))
    except OSError as e:  # what no check foresaw (a disk filling up, a file removed meanwhile)
        return fail(f"{e.filename or ''}: {e.strerror or e}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
