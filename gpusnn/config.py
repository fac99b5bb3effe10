"""Typed records for every option of a run (network, method, optimiser, training).

All options are documented in README.md ("Method options"). A RunConfig round-trips
through a plain dict (JSON / TOML / HDF5 attributes) with ``to_dict`` / ``from_dict``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gpusnn.errors import ConfigError


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
        if len(self.widths) < 2 or any(int(w) <= 0 for w in self.widths):
            raise ConfigError(f"widths must be >= 2 positive layer sizes, got {self.widths}")
        if not self.theta > 0:
            raise ConfigError(f"threshold theta must be > 0, got {self.theta}")
        if int(self.n_steps) <= 0:
            raise ConfigError(f"number of time steps T must be a positive integer, got {self.n_steps}")
        if not self.init_scale > 0:
            raise ConfigError(f"init_scale must be > 0, got {self.init_scale}")
        if self.drive_ref is not None and not self.drive_ref > 0:
            raise ConfigError(f"drive_ref must be > 0 or none, got {self.drive_ref}")


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
        if self.loss not in ("ce", "mse"):
            raise ConfigError(f"loss must be 'ce' or 'mse', got {self.loss!r}")
        if self.gradient not in ("timing", "rate"):
            raise ConfigError(f"gradient must be 'timing' or 'rate', got {self.gradient!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.r_target <= 1:
            raise ConfigError(f"r_target must lie in (0, 1], got {self.r_target}")


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
        if not 0 < self.alpha < 2:
            raise ConfigError(f"fractional order alpha must lie in the open interval (0, 2), got {self.alpha}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate lr must be > 0, got {self.lr}")
        if not self.eps > 0:
            raise ConfigError(f"eps must be > 0, got {self.eps}")
        if self.grad_at not in ("current", "previous"):
            raise ConfigError(f"grad_at must be 'current' or 'previous', got {self.grad_at!r}")
        if self.factor_clip is not None and not self.factor_clip > 0:
            raise ConfigError(f"factor_clip must be > 0 or None, got {self.factor_clip}")
        if self.w_max is not None and not self.w_max > 0:
            raise ConfigError(f"w_max must be > 0 or None, got {self.w_max}")


@dataclass(frozen=True)
class TrainConfig:
    """Training loop: data name or path, epochs, mini-batch size, seed, backend.

    DVS event data is encoded with downsample (sensor pixels per input pixel and axis),
    binning ("duration": equal time bins; "count": equal event counts per bin) and
    encoding ("count": every event is a spike, so an input can spike several times in a
    step; "binary": at most one spike per input and step). Static images ignore these.
    """

    data: str = "mnist5k"
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    backend: str = "auto"
    downsample: int = 4
    binning: str = "duration"
    encoding: str = "count"

    def validate(self) -> None:
        if int(self.epochs) < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if int(self.batch_size) <= 0:
            raise ConfigError(f"batch_size must be > 0, got {self.batch_size}")
        if self.backend not in ("auto", "numpy", "cuda", "emulated"):
            raise ConfigError(f"backend must be auto, numpy, cuda or emulated, got {self.backend!r}")
        if int(self.downsample) < 1:
            raise ConfigError(f"downsample must be a positive integer, got {self.downsample}")
        if self.binning not in ("duration", "count"):
            raise ConfigError(f"binning must be 'duration' or 'count', got {self.binning!r}")
        if self.encoding not in ("count", "binary"):
            raise ConfigError(f"encoding must be 'count' or 'binary', got {self.encoding!r}")


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
        """Build from a (possibly partial) nested dict; unknown keys are an error."""
        parts = {}
        for name, typ in (("network", NetworkConfig), ("method", MethodConfig),
                          ("optim", OptimConfig), ("train", TrainConfig)):
            sub = dict(d.get(name, {}))
            known = {f.name for f in dataclasses.fields(typ)}
            unknown = set(sub) - known
            if unknown:
                raise ConfigError(f"unknown option(s) in [{name}]: {sorted(unknown)}; known: {sorted(known)}")
            if "widths" in sub:
                sub["widths"] = tuple(int(w) for w in sub["widths"])
            for key in ("factor_clip", "w_max", "drive_ref"):   # TOML has no null: "none" switches it off
                if isinstance(sub.get(key), str) and sub[key].lower() in ("none", "off"):
                    sub[key] = None
            parts[name] = typ(**sub)
        unknown = set(d) - set(parts)
        if unknown:
            raise ConfigError(f"unknown config section(s): {sorted(unknown)}")
        return cls(**parts)

    def replace(self, **sections) -> "RunConfig":
        """Copy with some options changed: replace(optim={"alpha": 1.5}, train={...})."""
        d = self.to_dict()
        for name, changes in sections.items():
            d[name].update(changes)
        return RunConfig.from_dict(d)
