"""HDF5 files written atomically and opened with clear errors: the helpers that checkpoints
and spike logs share. A file is built in memory (hdf5_image) and written by atomic_write, so
a crash or a full disk never leaves a partial file under its final name."""
from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Callable

import h5py

from gpusnn.errors import CheckpointError

TMP_MARK = ".tmp"  # hidden temporaries are ".NAME.tmpPID" beside their target


def atomic_write(path: str | os.PathLike, payload: bytes) -> Path:
    """Write payload to a hidden temporary file next to path, fsync it, rename it to path
    and fsync the directory.

    Any I/O failure (full disk, I/O error) removes the temporary file, leaves path as it
    was and raises CheckpointError naming path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        why = "disk full" if e.errno == errno.ENOSPC else "write failed"
        raise CheckpointError(f"{path}: {why} ({e}); the previous file is untouched") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def hdf5_image(fill: Callable[[h5py.File], None], base: bytes | None = None) -> bytes:
    """Build an HDF5 file in memory, starting from a copy of base when given, and return its
    bytes. Keeping HDF5 away from the disk makes every write error a plain OSError."""
    buf = io.BytesIO(base or b"")
    with h5py.File(buf, "a" if base else "w") as f:
        fill(f)
    return buf.getvalue()


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_h5(path: str | os.PathLike, what: str = "checkpoint") -> h5py.File:
    """Open path read-only as HDF5, or raise CheckpointError saying what the file is."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a {what}: not a readable HDF5 file ({e})") from e


def check_format(f: h5py.File, path: Path, fmt: str, version: int) -> int:
    """Check the root format and version attributes; return the file's version."""
    found = f.attrs.get("format")
    found = found.decode() if isinstance(found, bytes) else found
    if found != fmt:
        raise CheckpointError(f"{path}: not a {fmt} file (root attribute format = {found!r})")
    if "version" not in f.attrs:
        raise CheckpointError(f"{path}: missing attribute(s) ['version'] on /")
    v = int(f.attrs["version"])
    if v > version:
        raise CheckpointError(f"{path}: {fmt} version {v} is newer than this gpusnn reads "
                              f"(<= {version}); upgrade gpusnn")
    return v
