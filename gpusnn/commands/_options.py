"""Command-line options of a run, shared by train, sweep and profile.

Precedence: built-in defaults < TOML file (--config) < flags given on the command line.
The TOML file has the sections of RunConfig ([network], [method], [optim], [train]);
[network] may give `hidden = [500]` instead of full widths.
"""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from gpusnn.config import RunConfig
from gpusnn.errors import ConfigError

# flag dest -> (section, option)
_FLAGS = {
    "data": ("train", "data"), "epochs": ("train", "epochs"), "batch_size": ("train", "batch_size"),
    "seed": ("train", "seed"), "backend": ("train", "backend"),
    "downsample": ("train", "downsample"), "binning": ("train", "binning"), "encoding": ("train", "encoding"),
    "steps": ("network", "n_steps"), "theta": ("network", "theta"), "init_scale": ("network", "init_scale"),
    "drive_ref": ("network", "drive_ref"),
    "loss": ("method", "loss"), "temperature": ("method", "temperature"), "r_target": ("method", "r_target"),
    "gradient": ("method", "gradient"),
    "alpha": ("optim", "alpha"), "lr": ("optim", "lr"), "eps": ("optim", "eps"),
    "eps_inside": ("optim", "eps_inside"), "grad_at": ("optim", "grad_at"),
    "factor_clip": ("optim", "factor_clip"), "w_max": ("optim", "w_max"),
}


def _optional_float(text: str):
    """A float, or "none" (kept as text so that it is told apart from "flag not given";
    RunConfig.from_dict turns it into None)."""
    return "none" if text.lower() in ("none", "off") else float(text)


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
    g.add_argument("--encoding", choices=("count", "binary"),
                   help=f"DVS: every event a spike, or one spike per input and step (default {d.train.encoding})")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", type=int, nargs="*", help="hidden layer widths, e.g. --hidden 500 200 (default 500)")
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
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read config file: {e}") from e


def config_from_args(args: argparse.Namespace) -> tuple[RunConfig, list[int]]:
    """The RunConfig the flags and --config ask for, and the hidden widths.

    widths[0] and widths[-1] are placeholders until the data is known (see with_data_widths).
    """
    d = read_toml(args.config) if getattr(args, "config", None) else {}
    d = {k: dict(v) for k, v in d.items()}
    net = d.setdefault("network", {})
    hidden = net.pop("hidden", None)
    if "widths" in net:
        hidden = list(net["widths"])[1:-1]
    for dest, (section, key) in _FLAGS.items():
        value = getattr(args, dest, None)
        if value is not None:
            d.setdefault(section, {})[key] = value
    if getattr(args, "hidden", None) is not None:
        hidden = args.hidden
    hidden = [500] if hidden is None else [int(h) for h in hidden]
    net["widths"] = [1, *hidden, 1]
    cfg = RunConfig.from_dict(d)
    return cfg, hidden


def with_data_widths(cfg: RunConfig, hidden: list[int], n_inputs: int, n_classes: int) -> RunConfig:
    """cfg with widths = (inputs of the data, *hidden, classes of the data), validated."""
    return cfg.replace(network={"widths": (n_inputs, *hidden, n_classes)}).validate()
