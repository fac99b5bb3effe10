"""`gpusnn data synth|inspect|convert`: make the synthetic DVS128 Gesture recordings, summarise
an event file, convert a dataset to the HDF5 event store."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from data_tools.convert import WORKERS, convert
from data_tools.dataset_inspect import inspect_dataset
from data_tools.datasets import SYNTH_SOURCE, synth_store
from data_tools.event_store import COMPRESSION
from data_tools.gesture_layout import COUNTING_RULES
from data_tools.inspect import FORMATS, inspect_file
from data_tools.sensors import SENSORS
from data_tools.synth import SynthConfig, generate
from gpusnn.commands._checks import data_source, input_file, output_dir, output_file
from gpusnn.errors import ConfigError
from data_tools.synth_real import RealSizeConfig, generate_real


def register(sub) -> None:
    p = sub.add_parser("data", help="event data tools (synth, inspect, convert)",
                       description="Tools for DVS event data; see docs/data.md.")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    s = dsub.add_parser("synth", help="write synthetic DVS128 Gesture recordings (original layout)")
    s.add_argument("dir", metavar="DIR", help="output directory (created)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--users", type=int, default=SynthConfig.n_users, help="number of subjects (last ~6/29 test)")
    s.add_argument("--lightings", type=int, default=SynthConfig.lightings_per_user, help="lighting conditions per user (1-5)")
    s.add_argument("--small", action="store_true", help="tiny configuration (4 users, short gestures)")
    s.add_argument("--size", choices=("small", "default", "real"), default="default",
                   help="small = --small; default: the bundled set (~8 M events); real: the original "
                        "release's size (122 trials, 1,464 label rows, ~600 M events, ~4.8 GB; docs/data.md)")
    s.add_argument("--jobs", type=int, default=1, help="with --size real: processes writing trials (default 1)")
    s.add_argument("--json", dest="json", help="write the results to this file")
    s.set_defaults(func=run_synth)

    i = dsub.add_parser("inspect", help="summarise an event file (AEDAT 2/3.1/4, Prophesee EVT 2/3, event store) "
                                        "or a DVS128 Gesture directory (samples, events per sample, conversion cost)")
    i.add_argument("file", metavar="FILE",
                   help="an event file (AEDAT 2/3.1/4, Prophesee EVT 2.0/3.0 RAW), an event store (.h5) or a "
                        "dataset directory")
    i.add_argument("--format", choices=FORMATS, help="read a file whose header does not name its format as this")
    i.add_argument("--sensor", choices=sorted(SENSORS), help="decode as this chip, overriding the header")
    i.add_argument("--counting", choices=COUNTING_RULES, default="rows", help="with a directory: samples per trial")
    i.add_argument("--json", dest="json", help="write the results to this file")
    i.set_defaults(func=run_inspect)

    c = dsub.add_parser("convert", help="convert a dataset to an HDF5 event store")
    c.add_argument("src", metavar="SRC", help="DVS128 Gesture directory, tonic DVSGesture directory or 'synth-gestures'")
    c.add_argument("dst", metavar="DST", help="output .h5 file")
    c.add_argument("--counting", choices=COUNTING_RULES, default="rows", help="samples per trial (docs/data.md)")
    c.add_argument("--sensor", choices=sorted(SENSORS), help="the recordings' chip, overriding their headers")
    c.add_argument("--compression", choices=("none", "lzf", "gzip"), default=COMPRESSION or "none",
                   help="event compression (default none: fastest; lzf 2.4x, gzip 3.1x smaller; docs/data.md)")
    c.add_argument("--workers", type=int, default=WORKERS,
                   help=f"0: parse and write in turn; 1: parse the next trial in a thread; N: parse in N "
                        f"processes that hand trials back through shared memory (default {WORKERS}; docs/data.md)")
    c.add_argument("--json", dest="json", help="write the results to this file")
    c.set_defaults(func=run_convert)


def run_synth(args) -> dict:
    output_dir(args.dir, "DIR")
    if args.size == "real":
        out = generate_real(args.dir, RealSizeConfig(seed=args.seed), jobs=args.jobs,
                            progress=getattr(args, "progress", True))
        print(f"{out['trials']} trials, {out['samples']} label rows, {out['events']} events, "
              f"{out['bytes'] / 1e9:.2f} GB in {out['seconds']} s -> {out['root']}")
        return out
    cfg = SynthConfig.small_config(args.seed) if args.small or args.size == "small" else replace(
        SynthConfig(), seed=args.seed, n_users=args.users, lightings_per_user=args.lightings)
    out = generate(args.dir, cfg, progress=getattr(args, "progress", True))
    print(f"{out['trials']} trials, {out['samples']} samples, {out['events']} events, "
          f"{out['bytes'] / 1e6:.1f} MB in {out['seconds']} s -> {out['root']}")
    return out


def run_inspect(args) -> dict:
    if Path(args.file).is_dir():
        out = inspect_dataset(data_source(args.file, "FILE"), counting=args.counting,
                              progress=getattr(args, "progress", True))
    else:
        out = inspect_file(input_file(args.file, "FILE"), format=args.format, sensor=args.sensor)
    for k, v in out.items():
        print(f"{k:>18}: {v}")
    return out


def run_convert(args) -> dict:
    data_source(args.src, "SRC")
    output_file(args.dst, "DST")
    if args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    src = str(synth_store(progress=getattr(args, "progress", True)).parent) if args.src == SYNTH_SOURCE else args.src
    out = convert(src, args.dst, counting=args.counting, workers=args.workers,
                  compression=None if args.compression == "none" else args.compression,
                  progress=getattr(args, "progress", True), sensor=args.sensor)
    print(f"{out['samples']} samples ({out['train']} train, {out['test']} test), {out['events']} events -> {args.dst}")
    return out
