"""Typed records for every option of a run (network, method, optimiser, training).

All options are documented in README.md ("Method options"). A RunConfig round-trips
through a plain dict (JSON / TOML / HDF5 attributes) with ``to_dict`` / ``from_dict``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gpusnn.errors import ConfigError


class OptionError(ConfigError):
    """A run option with a bad value. section and key name the option (the CLI names its flag),
    problem says what is wrong ("must be > 0, got 0")."""

    def __init__(self, section: str, key: str, problem: str):
        self.section, self.key, self.problem = section, key, problem
        super().__init__(f"{section}.{key} {problem}")

    def __reduce__(self):  # picklable across the sweep's worker processes
        return OptionError, (self.section, self.key, self.problem)


_TYPES = {  # annotation -> (accepts, converts, what the value must be)
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), int, "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float, "a number"),
    "float | None": (lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                     lambda v: None if v is None else float(v), 'a number or "none"'),
    "bool": (lambda v: isinstance(v, bool), bool, "true or false"),
    "str": (lambda v: isinstance(v, str), str, "text"),
    "tuple[int, ...]": (lambda v: isinstance(v, (list, tuple)) and all(
        isinstance(w, int) and not isinstance(w, bool) for w in v), tuple, "a list of integers"),
}


def typed(section: str, key: str, annotation: str, value):
    """value as the option's type (ints accepted for floats); OptionError when it has another type."""
    accepts, convert, what = _TYPES[annotation]
    if not accepts(value):
        raise OptionError(section, key, f"must be {what}, got {value!r}")
    return convert(value)


def _check(ok: bool, section: str, key: str, problem: str) -> None:
    if not ok:
        raise OptionError(section, key, problem)


def _check_types(part, section: str) -> None:
    for f in dataclasses.fields(part):
        typed(section, f.name, f.type, getattr(part, f.name))


def _one_of(part, section: str, key: str, choices: tuple[str, ...]) -> None:
    value = getattr(part, key)
    _check(value in choices, section, key, f"must be one of {', '.join(choices)}, got {value!r}")


@dataclass(frozen=True)
class NetworkConfig:
    """Fully connected nonleaky IF network.

    widths: layer sizes from input to output, e.g. (784, 500, 10); theta: firing threshold
    (dimensionless potential units); n_steps: T, the number of time steps per sample;
    init_scale: weights start uniform in +-init_scale * sqrt(3 / n_pre);
    drive_ref: input spikes per sample and step above which the threshold rises with the
    input drive: on data with a mean of r > drive_ref, a new run uses theta * sqrt(r / drive_ref)
    (gpusnn.training.with_input_drive; its saved config then holds that theta and drive_ref
    None); None = never. 512 leaves MNIST (~100) and the bundled gestures (~380) unchanged and
    gives the real-size DVS128 Gesture rate (~16 k) a threshold of ~5.7 (docs/data.md).
    """

    widths: tuple[int, ...] = (784, 500, 10)
    theta: float = 1.0
    n_steps: int = 20
    init_scale: float = 1.0
    drive_ref: float | None = 512.0

    def validate(self) -> None:
        _check_types(self, "network")
        _check(len(self.widths) >= 2 and all(w > 0 for w in self.widths), "network", "widths",
               f"must be >= 2 positive layer sizes, got {self.widths}")
        _check(self.theta > 0, "network", "theta", f"must be > 0, got {self.theta}")
        _check(self.n_steps > 0, "network", "n_steps",
               f"must be a positive integer, got {self.n_steps}")
        _check(self.init_scale > 0, "network", "init_scale", f"must be > 0, got {self.init_scale}")
        _check(self.drive_ref is None or self.drive_ref > 0, "network", "drive_ref",
               f"must be > 0 or none, got {self.drive_ref}")


@dataclass(frozen=True)
class MethodConfig:
    """Loss and gradient (docs/method.md section 3).

    loss: "ce" (softmax cross-entropy on rho * T / temperature) or "mse" (target rate
    r_target for the true class, 0 for the others); gradient: "timing" (presynaptic rate
    inside the postsynaptic inter-spike window) or "rate" (whole-window rate, ablation).
    """

    loss: str = "ce"
    temperature: float = 1.0
    r_target: float = 0.5
    gradient: str = "timing"

    def validate(self) -> None:
        _check_types(self, "method")
        _one_of(self, "method", "loss", ("ce", "mse"))
        _one_of(self, "method", "gradient", ("timing", "rate"))
        _check(self.temperature > 0, "method", "temperature", f"must be > 0, got {self.temperature}")
        _check(0 < self.r_target <= 1, "method", "r_target", f"must lie in (0, 1], got {self.r_target}")


@dataclass(frozen=True)
class OptimConfig:
    """Fractional-order update (docs/method.md section 4).

    W(k+1) = W(k) - lr / Gamma(2 - alpha) * G * (|W(k) - W(k-1)| + eps) ** (1 - alpha)

    alpha in (0, 2) (1 = plain gradient descent); eps_inside: use |W(k) - W(k-1) + eps|;
    grad_at: "current" G(k) or "previous" G(k-1); factor_clip: upper bound on the
    fractional factor (None = no bound); w_max: clamp weights to [-w_max, w_max] after
    each update (None = no clamp).
    """

    alpha: float = 1.0
    lr: float = 0.005
    eps: float = 1e-2
    eps_inside: bool = False
    grad_at: str = "current"
    factor_clip: float | None = 5.0
    w_max: float | None = 4.0

    def validate(self) -> None:
        _check_types(self, "optim")
        _check(0 < self.alpha < 2, "optim", "alpha",
               f"must lie in the open interval (0, 2), got {self.alpha}")
        _check(self.lr > 0, "optim", "lr", f"must be > 0, got {self.lr}")
        _check(self.eps > 0, "optim", "eps", f"must be > 0, got {self.eps}")
        _one_of(self, "optim", "grad_at", ("current", "previous"))
        _check(self.factor_clip is None or self.factor_clip > 0, "optim", "factor_clip",
               f'must be > 0 or "none", got {self.factor_clip}')
        _check(self.w_max is None or self.w_max > 0, "optim", "w_max", f'must be > 0 or "none", got {self.w_max}')


@dataclass(frozen=True)
class TrainConfig:
    """Training loop: data name or path, epochs, mini-batch size, seed, backend.

    DVS event data is encoded with downsample (sensor pixels per input pixel and axis),
    binning ("duration": equal time bins; "count": equal event counts per bin) and
    encoding ("count": every event is a spike, so an input can spike several times in a
    step; "binary": at most one spike per input and step; "rate": count, with each sample's
    counts scaled to data_tools.encode.RATE_REF events per input line and step, docs/method.md).
    Static images ignore these.
    cuda_graph: run each training step as a captured CUDA graph (cuda backend only; the
    results are the same as without it, so a run may resume with or without it).
    """

    data: str = "mnist5k"
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    backend: str = "auto"
    downsample: int = 4
    binning: str = "duration"
    encoding: str = "count"
    cuda_graph: bool = False

    def validate(self) -> None:
        _check_types(self, "train")
        _check(self.epochs >= 0, "train", "epochs", f"must be >= 0, got {self.epochs}")
        _check(self.batch_size > 0, "train", "batch_size", f"must be > 0, got {self.batch_size}")
        _check(self.seed >= 0, "train", "seed", f"must be >= 0, got {self.seed}")
        _one_of(self, "train", "backend", ("auto", "numpy", "cuda", "emulated"))
        _check(self.downsample >= 1, "train", "downsample", f"must be a positive integer, got {self.downsample}")
        _one_of(self, "train", "binning", ("duration", "count"))
        _one_of(self, "train", "encoding", ("count", "binary", "rate"))


SECTIONS = {"network": NetworkConfig, "method": MethodConfig, "optim": OptimConfig, "train": TrainConfig}


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; saved with every checkpoint."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "RunConfig":
        for part in (self.network, self.method, self.optim, self.train):
            part.validate()
        return self

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["network"]["widths"] = list(self.network.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Build from a (possibly partial) nested dict. Unknown sections are a ConfigError,
        unknown keys and values of the wrong type an OptionError naming the option; "none"
        switches factor_clip and w_max off (TOML has no null)."""
        unknown = set(d) - set(SECTIONS)
        if unknown:
            raise ConfigError(f"unknown config section(s): {sorted(unknown)}; known: {sorted(SECTIONS)}")
        parts = {}
        for name, typ in SECTIONS.items():
            sub = dict(d.get(name, {}))
            fields = {f.name: f.type for f in dataclasses.fields(typ)}
            for key in sorted(set(sub) - set(fields)):
                raise OptionError(name, key, f"is not an option of [{name}]; known: {', '.join(fields)}")
            for key in ("factor_clip", "w_max", "drive_ref"):   # TOML has no null: "none" switches it off
                if isinstance(sub.get(key), str) and sub[key].lower() in ("none", "off"):
                    sub[key] = None
            parts[name] = typ(**{k: typed(name, k, fields[k], v) for k, v in sub.items()})
        return cls(**parts)

    def replace(self, **sections) -> "RunConfig":
        """Copy with some options changed: replace(optim={"alpha": 1.5}, train={...})."""
        d = self.to_dict()
        for name, changes in sections.items():
            d[name].update(changes)
        return RunConfig.from_dict(d)
