"""One AEDAT 3.1 reader, one fresh process: seconds and peak memory to read a file into
x, y, p, t arrays.

Readers: gpusnn (data_tools.aedat3.read_aedat3), spikingjelly
(spikingjelly.datasets.utils.load_aedat_v3; spikingjelly.datasets imports torchvision and
torchaudio at module level, whose CUDA wheels cannot load beside the CPU torch, so empty
stand-in modules are registered first: the loader uses neither), tonic (tonic.io's
get_aer_events_from_file plus the x / y / p decode of the data word; it ignores packet types
and the timestamp overflow). Prints one JSON line: seconds, events, peak_rss_bytes,
rss_before_bytes.
"""
from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import sys
import time
import types

from common import peak_rss_bytes, reset_peak_rss, rss_bytes


#: packages whose CUDA wheels cannot load beside the CPU torch; spikingjelly.datasets imports them
STAND_INS = ("torchvision", "torchaudio")


def _dummy(attr: str):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return type(attr, (), {})


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty STAND_INS packages: any submodule imports, any attribute is a dummy class."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in STAND_INS:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        mod = types.ModuleType(spec.name)
        mod.__path__ = []
        mod.__getattr__ = _dummy
        return mod

    def exec_module(self, module):
        pass


def read_gpusnn(path):
    from data_tools.aedat3 import read_aedat3
    ev = read_aedat3(path)
    return ev.size


def read_spikingjelly(path):
    from spikingjelly.datasets.utils import load_aedat_v3
    return load_aedat_v3(path)["t"].size


def read_tonic(path):
    from tonic.io import get_aer_events_from_file, read_aedat_header_from_file
    version, start, _ = read_aedat_header_from_file(path)
    ev = get_aer_events_from_file(path, version, start)
    addr = ev["address"]
    x, y, p = (addr >> 17) & 0x7FFF, (addr >> 2) & 0x7FFF, (addr >> 1) & 1
    del x, y, p
    return ev.size


READERS = {"gpusnn": read_gpusnn, "spikingjelly": read_spikingjelly, "tonic": read_tonic}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader", choices=sorted(READERS), required=True)
    p.add_argument("path")
    args = p.parse_args()
    read = READERS[args.reader]
    if args.reader == "spikingjelly":
        sys.meta_path.insert(0, _StandIn())
        import spikingjelly.datasets.utils  # noqa: F401
    elif args.reader == "tonic":
        import tonic.io  # noqa: F401
    else:
        import data_tools.aedat3  # noqa: F401
    before = rss_bytes()
    reset_peak_rss()
    t0 = time.perf_counter()
    n = read(args.path)
    sec = time.perf_counter() - t0
    print(json.dumps({"reader": args.reader, "seconds": sec, "events": int(n),
                      "rss_before_bytes": before, "peak_rss_bytes": peak_rss_bytes()}))


if __name__ == "__main__":
    main()
