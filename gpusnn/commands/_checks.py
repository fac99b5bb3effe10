"""Checks every command runs on its paths before doing any work, so that a bad path fails in
a second with exit status 2 and a message naming the flag, instead of a traceback after the
work. Nothing is created: a probe file is made and removed in the nearest existing folder."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from data_tools.datasets import source_kind
from gpusnn.errors import ConfigError


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, flag: str, path: Path) -> None:
    """Create and remove a hidden file in folder; ConfigError when that fails."""
    try:
        fd, name = tempfile.mkstemp(prefix=".gpusnn-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot write in {folder} ({e.strerror or e})") from None


def output_dir(path: str | os.PathLike, flag: str) -> Path:
    """path as a directory that exists and is writable or can be created there."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: exists and is not a directory")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ConfigError(f"{flag} {path}: cannot be created, {base} is a file")
    _probe(base, flag, path)
    return path


def output_file(path: str | os.PathLike, flag: str, suffixes: tuple[str, ...] = ()) -> Path:
    """path as a file that can be written (created or replaced); suffixes: the allowed ones
    (without the dot, lower case), empty for any."""
    path = Path(path)
    if suffixes and path.suffix.lower().lstrip(".") not in suffixes:
        raise ConfigError(f"{flag} {path}: unknown format {path.suffix!r}; use one of "
                          + ", ".join(f".{s}" for s in suffixes))
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path}: exists and is not writable")
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        raise ConfigError(f"{flag} {path}: cannot be created, {base} is a file")
    _probe(base, flag, path)
    return path


def input_file(path: str | os.PathLike, flag: str) -> Path:
    """path as an existing regular file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{flag} {path}: no such file")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory, not a file")
    return path


def data_source(source: str, flag: str = "--data") -> str:
    """source as a data source that exists (see data_tools.datasets.source_kind)."""
    try:
        source_kind(source)
    except ConfigError as e:
        raise ConfigError(f"{flag} {e}") from None
    return source
