"""Command-line options of a run, shared by train, sweep and profile.

Precedence: built-in defaults < TOML file (--config) < flags given on the command line.
The TOML file has the sections of RunConfig ([network], [method], [optim], [train]);
[network] gives the hidden widths, `hidden = [500]` (input and output widths come from the
data). Every key is checked for its type; a bad value is named with its file, key and flag.
"""
from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from gpusnn.config import SECTIONS, OptionError, RunConfig, typed
from gpusnn.errors import ConfigError

# flag dest -> (section, option)
RUN_FLAGS = {
    "data": ("train", "data"), "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
    "seed": ("train", "seed"), "backend": ("train", "backend"),
    "downsample": ("train", "downsample"), "binning": ("train", "binning"), "encoding": ("train", "encoding"),
    "cuda_graph": ("train", "cuda_graph"),
    "steps": ("network", "n_steps"), "theta": ("network", "theta"), "init_scale": ("network", "init_scale"),
    "drive_ref": ("network", "drive_ref"),
    "loss": ("method", "loss"), "temperature": ("method", "temperature"), "r_target": ("method", "r_target"),
    "gradient": ("method", "gradient"),
    "alpha": ("optim", "alpha"), "lr": ("optim", "lr"), "eps": ("optim", "eps"),
    "eps_inside": ("optim", "eps_inside"), "grad_at": ("optim", "grad_at"),
    "factor_clip": ("optim", "factor_clip"), "w_max": ("optim", "w_max"),
}


# option -> flag of the options that are not run options of RUN_FLAGS (train's output options)
_OTHER_FLAGS = {("network", "widths"): "--hidden", ("run", "out"): "--out", ("run", "save_every"): "--save-every",
                ("run", "keep"): "--keep"}
FLAG_OF = {option: "--" + dest.replace("_", "-") for dest, option in RUN_FLAGS.items()} | _OTHER_FLAGS

# the keys a --config file may hold: the RunConfig options, with hidden instead of widths
TOML_KEYS = {name: {f.name: f.type for f in dataclasses.fields(typ)} for name, typ in SECTIONS.items()}
TOML_KEYS["network"] = {"hidden": "hidden", **{k: v for k, v in TOML_KEYS["network"].items() if k != "widths"}}


def flag_message(e: OptionError) -> str:
    """The message of an OptionError with the option's flag: "--batch-size must be > 0, got 0"."""
    return f"{FLAG_OF.get((e.section, e.key), f'{e.section}.{e.key}')} {e.problem}"


def _optional_float(text: str):
    """A float, or "none" (kept as text so that it is told apart from "flag not given";
    RunConfig.from_dict turns it into None)."""
    return "none" if text.lower() in ("none", "off") else float(text)


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (argparse type)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Add every run option; all default to None so that unset flags do not override TOML."""
    d = RunConfig()
    g = p.add_argument_group("data and training")
    g.add_argument("--config", help="TOML file with [network] [method] [optim] [train] sections")
    g.add_argument("--data", help=f"mnist5k, synth-gestures, an MNIST IDX dir, a DVS128 Gesture dir or an "
                                  f"event store .h5 (default {d.train.data})")
    g.add_argument("--backend", choices=("auto", "numpy", "cuda", "emulated"),
                   help=f"auto = cuda when a GPU is usable, else numpy (default {d.train.backend})")
    g.add_argument("--epochs", type=int, help=f"epochs in total (default {d.train.epochs})")
    g.add_argument("--batch-size", type=int, help=f"mini-batch size (default {d.train.batch_size})")
    g.add_argument("--seed", type=int, help=f"seed of weights, encoding and shuffling (default {d.train.seed})")
    g.add_argument("--downsample", type=int, help=f"DVS: sensor pixels per input pixel and axis "
                                                  f"(default {d.train.downsample}: 128 x 128 -> 32 x 32)")
    g.add_argument("--binning", choices=("duration", "count"),
                   help=f"DVS: time bins of equal duration or equal event count (default {d.train.binning})")
    g.add_argument("--encoding", choices=("count", "binary", "rate"),
                   help=f"DVS: every event a spike, one spike per input and step, or counts scaled per sample "
                        f"to a fixed events per input and step (default {d.train.encoding})")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", type=positive_int, nargs="+", metavar="WIDTH",
                   help="hidden layer widths, e.g. --hidden 500 200 (default 500)")
    g.add_argument("--steps", type=int, help=f"time steps T per sample (default {d.network.n_steps})")
    g.add_argument("--theta", type=float, help=f"firing threshold (default {d.network.theta})")
    g.add_argument("--init-scale", type=float, help=f"initial weight scale (default {d.network.init_scale})")
    g.add_argument("--drive-ref", type=_optional_float,
                   help=f"input spikes per sample and step above which theta rises as sqrt(rate / drive_ref), "
                        f"or none (default {d.network.drive_ref:g}; docs/data.md)")
    g = p.add_argument_group("FO-STDGD method")
    g.add_argument("--loss", choices=("ce", "mse"), help=f"loss on output rates (default {d.method.loss})")
    g.add_argument("--temperature", type=float, help=f"ce temperature tau (default {d.method.temperature})")
    g.add_argument("--r-target", type=float, help=f"mse target rate of the true class (default {d.method.r_target})")
    g.add_argument("--gradient", choices=("timing", "rate"), help=f"weight gradient (default {d.method.gradient})")
    g.add_argument("--alpha", type=float, help=f"fractional order in (0, 2) (default {d.optim.alpha})")
    g.add_argument("--lr", type=float, help=f"learning rate mu (default {d.optim.lr})")
    g.add_argument("--eps", type=float, help=f"eps of the fractional factor (default {d.optim.eps})")
    g.add_argument("--eps-inside", action="store_const", const=True,
                   help="use |W(k) - W(k-1) + eps| instead of |W(k) - W(k-1)| + eps")
    g.add_argument("--grad-at", choices=("current", "previous"), help=f"gradient G(k) or G(k-1) (default {d.optim.grad_at})")
    g.add_argument("--factor-clip", type=_optional_float, help=f"upper bound of the fractional factor, or none "
                                                               f"(default {d.optim.factor_clip})")
    g.add_argument("--w-max", type=_optional_float, help=f"clamp weights to +-w_max, or none (default {d.optim.w_max})")


def read_toml(path: str | Path) -> dict:
    """The tables of a --config file; ConfigError naming the file when it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"--config {path}: cannot read the config file: {getattr(e, 'strerror', None) or e}") from e


def toml_options(doc: dict, path) -> tuple[dict, list[int] | None]:
    """The RunConfig dict (without widths) and the hidden widths (None: not given) of a parsed
    --config file. Unknown sections or keys and values of the wrong type are ConfigErrors naming
    the file, the key and its flag; the hint lists exactly the keys that work."""
    out, hidden = {}, None
    for section, table in doc.items():
        if section not in TOML_KEYS or not isinstance(table, dict):
            raise ConfigError(f"--config {path}: unknown section [{section}]; the sections are "
                              + ", ".join(f"[{s}]" for s in TOML_KEYS))
        keys = TOML_KEYS[section]
        for key, value in table.items():
            if key not in keys:
                hint = ("; the network's input and output widths come from the data, give the hidden "
                        "widths as hidden = [500]" if (section, key) == ("network", "widths") else "")
                raise ConfigError(f"--config {path}: unknown key {key!r} in [{section}]{hint}; the keys of "
                                  f"[{section}] are {', '.join(keys)}")
            option = ("network", "widths") if key == "hidden" else (section, key)
            try:
                if key == "hidden":
                    hidden = _hidden(typed("network", "hidden", "tuple[int, ...]", value))
                elif isinstance(value, str) and key in ("factor_clip", "w_max") and value.lower() in ("none", "off"):
                    out.setdefault(section, {})[key] = None
                else:
                    out.setdefault(section, {})[key] = typed(section, key, keys[key], value)
            except OptionError as e:
                raise ConfigError(f"--config {path}: [{section}] {key} {e.problem} "
                                  f"(the flag {FLAG_OF[option]})") from None
    return out, hidden


def _hidden(widths) -> list[int]:
    bad = [w for w in widths if w < 1]
    if bad:
        raise OptionError("network", "widths", f"takes positive integers, got {list(widths)}")
    return [int(w) for w in widths]


def config_from_args(args: argparse.Namespace) -> tuple[RunConfig, list[int]]:
    """The validated RunConfig the flags and --config ask for, and the hidden widths.

    widths[0] and widths[-1] are placeholders until the data is known (see
    gpusnn.workflow.with_data_widths).
    """
    path = getattr(args, "config", None)
    d, hidden = toml_options(read_toml(path), path) if path else ({}, None)
    for dest, (section, key) in RUN_FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            d.setdefault(section, {})[key] = None if value == "none" else value
    if getattr(args, "hidden", None) is not None:
        hidden = _hidden(args.hidden)
    hidden = [500] if hidden is None else hidden
    d.setdefault("network", {})["widths"] = [1, *hidden, 1]
    return RunConfig.from_dict(d).validate(), hidden
