"""Synthetic DVS128 Gesture recordings, written in exactly the original layout.

Each subject (user) performs the 11 gestures in front of the sensor under a few lighting
conditions; every (user, lighting) trial is one continuous recording `userNN_<lighting>.aedat`
(AEDAT 3.1) with `userNN_<lighting>_labels.csv` and the split files trials_to_train.txt /
trials_to_test.txt (the last ~6/29 of the users are test subjects, as users 24-29 originally).

Scene: hands are bright discs with soft edges over a dim, slightly textured background. The
subject faces the camera, so the subject's right hand appears on the image's left (small x);
"clockwise" is as seen by the camera. Gestures (positions relative to the subject's centre):

    0 clapping      two hands meeting repeatedly at the centre
    1/2 hand waves  one hand oscillating left-right on the subject's right / left side
    3-6 arm circles one hand on a circle (right or left side, clockwise or counter-clockwise),
                    starting at rest at the bottom and making 1.5 turns, so the half first
                    passed is swept twice; the circle centre is shifted so that the mean
                    event position equals the wave's (position alone does not tell them apart)
    7 arm roll      two hands circling each other in front of the chest
    8 air drums     two hands striking up and down alternately
    9 air guitar    one hand strumming, the other sliding slowly along the neck
    10 other        a random smooth path
Per subject: centre, size, speed, contrast; per sample: small jitter; per lighting: contrast
and background noise rate. Gestures come in a random order per trial, some trials repeat a
class and some label windows overlap, like the original annotations.

DVS pixel model, on 10 ms frames: per pixel log intensity L; an event is emitted each time
L moves one threshold away from the pixel's reference (ON threshold / OFF threshold with
per-pixel mismatch), at a timestamp interpolated inside the frame, at most one per refractory
period per frame; plus Poisson background noise events (and a few hot pixels).
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_tools.aedat3 import write_aedat3
from data_tools.errors import ConfigError
from data_tools.events import DVS128_SENSOR, GESTURE_CLASSES, make_events
from data_tools.gesture_layout import LABEL_HEADER, SPLIT_FILES
from data_tools.progress import progress_bar

log = logging.getLogger(__name__)

VERSION = 2
W = H = 128
FRAME_US = 10_000
# the five lighting tags of the original recordings: (log contrast, background noise Hz per pixel)
LIGHTINGS = {"natural": (0.9, 0.06), "lab": (0.8, 0.09), "led": (0.7, 0.12), "fluorescent_led": (0.62, 0.16),
             "fluorescent": (0.55, 0.2)}
THRESHOLD = 0.3
REFRACTORY_US = 2_000
CHUNK_FRAMES = 100


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. users 1..n_users; the last round(n_users * 6 / 29) are test users."""

    seed: int = 0
    n_users: int = 29
    lightings_per_user: int = 3
    gesture_s: float = 1.5
    gap_s: float = 0.3
    small: bool = False

    @classmethod
    def small_config(cls, seed: int = 0) -> "SynthConfig":
        """A tiny configuration for tests: 4 users, 1 lighting each, short gestures."""
        return cls(seed=seed, n_users=4, lightings_per_user=1, gesture_s=0.6, gap_s=0.1, small=True)

    @property
    def n_test_users(self) -> int:
        return max(1, round(self.n_users * 6 / 29))


@dataclass(frozen=True)
class Subject:
    cx: float
    cy: float
    scale: float
    speed: float
    contrast: float


def hand_paths(cls: int, u: np.ndarray, s: Subject, rng: np.random.Generator) -> np.ndarray:
    """Hand centres (x, y) in pixels over the window phase u in [0, 1): float [2 hands, F, 2].
    A hand at NaN is out of view."""
    sc = s.scale
    cx, cy = s.cx + rng.uniform(-1.5, 1.5), s.cy + rng.uniform(-1.5, 1.5)
    side = 30 * sc                                     # subject's right hand at cx - side
    two = np.pi * 2
    cyc = rng.uniform(0.85, 1.15)
    out = np.full((2, u.size, 2), np.nan)
    if cls == 0:                                       # clapping
        d = 4 + 14 * sc * (1 + np.cos(two * 3.5 * cyc * u)) / 2
        out[0] = np.stack([cx - d, cy + 2 + 0 * u], -1)
        out[1] = np.stack([cx + d, cy + 2 + 0 * u], -1)
    elif cls in (1, 2):                                # hand waves
        hx = cx - side if cls == 1 else cx + side
        out[0] = np.stack([hx + 14 * sc * np.sin(two * 3 * cyc * u), cy - 7 * sc - 3 * sc * np.cos(two * 6 * cyc * u)], -1)
    elif cls in (3, 4, 5, 6):                          # arm circles, 1.5 turns from the bottom
        r = 18 * sc
        cw = cls in (3, 5)
        theta = np.pi / 2 + (1 if cw else -1) * 3 * np.pi * u
        shift = 2 * r / (3 * np.pi) * (1 if cw else -1)  # heavy half is on the left for cw
        hx = (cx - side if cls in (3, 4) else cx + side) + shift
        out[0] = np.stack([hx + r * np.cos(theta), cy + 3 * sc + r * np.sin(theta)], -1)
    elif cls == 7:                                     # arm roll
        ph = two * 3 * cyc * u
        out[0] = np.stack([cx + 10 * sc * np.cos(ph), cy + 10 * sc * np.sin(ph)], -1)
        out[1] = np.stack([cx - 10 * sc * np.cos(ph), cy - 10 * sc * np.sin(ph)], -1)
    elif cls == 8:                                     # air drums
        ph = two * 4 * cyc * u
        out[0] = np.stack([cx - 14 * sc + 0 * u, cy + 2 + 8 * sc * np.sin(ph)], -1)
        out[1] = np.stack([cx + 14 * sc + 0 * u, cy + 2 - 8 * sc * np.sin(ph)], -1)
    elif cls == 9:                                     # air guitar
        out[0] = np.stack([cx - 10 * sc + 0 * u, cy + 8 + 10 * sc * np.sin(two * 4 * cyc * u)], -1)
        out[1] = np.stack([cx + 26 * sc - 6 * sc * np.sin(two * u), cy - 12 + 5 * sc * np.sin(two * u)], -1)
    else:                                              # other: random smooth path
        f = rng.uniform(0.5, 3, (2, 3))
        a = rng.uniform(4, 12, (2, 3)) * sc
        ph = rng.uniform(0, two, (2, 3))
        out[0, :, 0] = cx + (a[0, :, None] * np.sin(two * f[0, :, None] * u + ph[0, :, None])).sum(0)
        out[0, :, 1] = cy + (a[1, :, None] * np.sin(two * f[1, :, None] * u + ph[1, :, None])).sum(0)
    return out


def _render(paths: np.ndarray, amp: np.ndarray, radius: float) -> np.ndarray:
    """Hand intensity of frames: float32 [F, H * W] from centres [K, F, 2] and amplitude [K, F]."""
    K, F, _ = paths.shape
    half = int(np.ceil(radius + 4))
    d = np.arange(-half, half + 1)
    gy, gx = [g.ravel() for g in np.meshgrid(d, d, indexing="ij")]
    out = np.zeros(F * H * W, np.float64)
    for k in range(K):
        ok = np.isfinite(paths[k, :, 0]) & (amp[k] > 0)
        f = np.flatnonzero(ok)
        x0 = np.round(paths[k, f, 0]).astype(np.int64)
        y0 = np.round(paths[k, f, 1]).astype(np.int64)
        px, py = x0[:, None] + gx, y0[:, None] + gy
        dist = np.hypot(px - paths[k, f, 0, None], py - paths[k, f, 1, None])
        val = amp[k, f, None] / (1 + np.exp((dist - radius) / 0.8))
        inside = (px >= 0) & (px < W) & (py >= 0) & (py < H)
        idx = (f[:, None] * (H * W) + py * W + px)[inside]
        out += np.bincount(idx, val[inside], minlength=out.size)
    return out.reshape(F, H * W).astype(np.float32)


def _dvs(log_i: np.ndarray, ref: np.ndarray, first: int, th_on: np.ndarray,
         th_off: np.ndarray) -> tuple[np.ndarray, ...]:
    """DVS pixel model over frames first, first+1, ... of log intensity [F, P], updating the
    per-pixel reference ref [P] in place: (frame, pixel, on, t relative to the frame end, us)."""
    nmax = FRAME_US // REFRACTORY_US
    frames, pix, count, on, step = [], [], [], [], []
    for k in range(log_i.shape[0]):
        diff = log_i[k] - ref
        pos = diff > 0
        th = np.where(pos, th_on, th_off)
        n = np.minimum(np.floor(np.abs(diff) / th), nmax)
        idx = np.flatnonzero(n)
        if idx.size:
            nk, thk = n[idx], th[idx]
            ref[idx] += np.where(pos[idx], nk, -nk) * thk
            frames.append(np.full(idx.size, first + k))
            pix.append(idx)
            count.append(nk.astype(np.int64))
            on.append(pos[idx])
            step.append(thk / np.abs(diff[idx]))
    if not pix:
        return (np.empty(0, np.int64),) * 2 + (np.empty(0, bool), np.empty(0, np.int64))
    count = np.concatenate(count)
    rep = lambda a: np.repeat(np.concatenate(a), count)  # noqa: E731
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    frac = np.minimum((j + 1) * rep(step), 1.0)
    return rep(frames), rep(pix), rep(on), ((frac - 1) * FRAME_US).astype(np.int64)


def _noise(rate_hz: float, duration_us: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Background activity: (pixel, on, t_us) of Poisson noise events, 1 % of pixels hot (x20)."""
    weight = np.ones(H * W)
    weight[rng.choice(H * W, H * W // 100, replace=False)] = 20
    n = rng.poisson(rate_hz * weight.sum() * duration_us * 1e-6)
    pix = rng.choice(H * W, n, p=weight / weight.sum())
    return pix, rng.random(n) < 0.5, rng.integers(0, duration_us, n)


def _schedule(cfg: SynthConfig, s: Subject, rng: np.random.Generator) -> np.ndarray:
    """Label rows (class 0..10, start_us, end_us) of one trial, relative to the recording start."""
    classes = list(rng.permutation(11))
    if rng.random() < 0.3:                             # a class performed twice
        classes.insert(int(rng.integers(1, 12)), int(rng.integers(0, 11)))
    rows, t = [], int(cfg.gap_s * 1e6)
    for c in classes:
        d = int(cfg.gesture_s / s.speed * rng.uniform(0.9, 1.1) * 1e6)
        rows.append((c, t, t + d))
        t += d + int(cfg.gap_s * rng.uniform(0.7, 1.3) * 1e6)
    rows = np.array(rows, np.int64)
    if rng.random() < 0.2:                             # an annotation overlapping the next window
        i = int(rng.integers(0, len(rows) - 1))
        rows[i, 2] = rows[i + 1, 1] + int(0.5 * (rows[i + 1, 2] - rows[i + 1, 1]) * rng.random())
    return rows


def render_trial(cfg: SynthConfig, s: Subject, lighting: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One recording: (events time-sorted from t = 0, label rows [R, 3] class 0..10, start, end us)."""
    rows = _schedule(cfg, s, rng)
    n_frames = int(rows[:, 2].max() // FRAME_US) + int(cfg.gap_s * 1e6 // FRAME_US) + 2
    ft = np.arange(n_frames) * FRAME_US
    paths = np.full((2, n_frames, 2), np.nan)
    amp = np.zeros((2, n_frames))
    contrast = LIGHTINGS[lighting][0] * s.contrast
    bg = 0.25 * np.exp(0.1 * rng.standard_normal(H * W)).astype(np.float32)
    for c, a, b in rows:
        f = np.flatnonzero((ft >= a) & (ft < b))
        u = (ft[f] - a) / (b - a)
        ramp = np.clip(np.minimum(u, 1 - u) / 0.05, 0, 1)
        paths[:, f] = hand_paths(int(c), u, s, rng)
        amp[:, f] = 0.25 * (np.exp(contrast) - 1) * ramp
    th_on = THRESHOLD * np.exp(0.05 * rng.standard_normal(H * W))
    th_off = THRESHOLD * np.exp(0.05 * rng.standard_normal(H * W))
    ref = np.log(bg)
    parts = []
    for a in range(0, n_frames, CHUNK_FRAMES):
        log_i = np.log(bg + _render(paths[:, a:a + CHUNK_FRAMES], amp[:, a:a + CHUNK_FRAMES], 4.5 * s.scale))
        parts.append(_dvs(log_i, ref, a, th_on, th_off))
    frame, pix, on, dt = (np.concatenate(p) for p in zip(*parts))
    npix, non, nt = _noise(LIGHTINGS[lighting][1] * rng.uniform(0.7, 1.4), n_frames * FRAME_US, rng)
    pix = np.concatenate([pix, npix])
    t = np.concatenate([frame * FRAME_US + dt, nt])
    order = np.argsort(t, kind="stable")
    ev = make_events(pix[order] % W, pix[order] // W, np.concatenate([on, non])[order], t[order])
    return ev, rows


def trial_plan(cfg: SynthConfig) -> list[tuple[int, str, bool]]:
    """(user, lighting, is_train) of every trial, deterministic for cfg."""
    rng = np.random.default_rng([cfg.seed, 1])
    names = list(LIGHTINGS)
    if not 1 <= cfg.lightings_per_user <= len(names):
        raise ConfigError(f"lightings per user must lie in 1..{len(names)} ({', '.join(names)}), "
                          f"got {cfg.lightings_per_user}")
    if cfg.n_users < 2:
        raise ConfigError(f"need at least 2 users (train and test subjects), got {cfg.n_users}")
    first_test = cfg.n_users - cfg.n_test_users + 1
    return [(u, names[i], u < first_test) for u in range(1, cfg.n_users + 1)
            for i in sorted(rng.choice(len(names), cfg.lightings_per_user, replace=False))]


def generate(root, cfg: SynthConfig = SynthConfig(), *, progress: bool = True) -> dict:
    """Write the synthetic dataset under root (created); returns a summary dict."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plan = trial_plan(cfg)
    splits = {True: [], False: []}
    n_events = n_samples = 0
    for user, lighting, is_train in progress_bar(plan, desc="synthesising trials", enabled=progress, unit="trial"):
        rng = np.random.default_rng([cfg.seed, 2, user, list(LIGHTINGS).index(lighting)])
        srng = np.random.default_rng([cfg.seed, 3, user])
        s = Subject(cx=64 + srng.uniform(-6, 6), cy=64 + srng.uniform(-9, 9), scale=srng.uniform(0.85, 1.15),
                    speed=srng.uniform(0.75, 1.3), contrast=srng.uniform(0.7, 1.3))
        ev, rows = render_trial(cfg, s, lighting, rng)
        start = int(rng.integers(1_000_000, 5_000_000))   # recordings do not start at t = 0
        ev["t"] += start
        name = f"user{user:02d}_{lighting}"
        write_aedat3(root / f"{name}.aedat", ev, header_fields={"Generator": f"gpusnn synth v{VERSION} seed {cfg.seed}"})
        lines = [",".join(LABEL_HEADER)] + [f"{c + 1},{a + start},{b + start}" for c, a, b in rows]
        (root / f"{name}_labels.csv").write_text("\n".join(lines) + "\n")
        splits[is_train].append(f"{name}.aedat")
        n_events += ev.size
        n_samples += len(rows)
    for is_train, names in splits.items():
        (root / SPLIT_FILES[is_train]).write_text("".join(n + "\n" for n in names))
    summary = {"root": str(root), "config": asdict(cfg), "version": VERSION, "trials": len(plan),
               "train_trials": len(splits[True]), "test_trials": len(splits[False]), "samples": n_samples,
               "events": int(n_events), "bytes": sum(p.stat().st_size for p in root.iterdir()),
               "seconds": round(time.perf_counter() - t0, 2), "classes": list(GESTURE_CLASSES),
               "sensor_size": list(DVS128_SENSOR)}
    log.info("synthesised %(trials)d trials, %(samples)d samples, %(events)d events in %(seconds)s s", summary)
    return summary
