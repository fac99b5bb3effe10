"""Real-size synthetic DVS128 Gesture recordings (`gpusnn data synth DIR --size real`).

The original release's shape and statistics, written in its layout (AEDAT 3.1 + labels CSV +
split files), fast enough to make in minutes: events are drawn directly from per-class
spatio-temporal templates instead of the pixel model of :mod:`data_tools.synth` (which makes
~0.25 M events/s and would need ~40 min for this size).

Plan (deterministic for the seed): 29 users x 4 of the 5 lighting tags, users 1-6 recorded
under all 5, so 122 trials; users 1-23 train (98 trials), 24-29 test (24 trials), as the
official split. A trial is the 11 gestures in random order plus one class performed a second
time (12 label rows: 1,342 gestures counted once per class and trial, 1,464 label rows), each
~6 s long (5-7 s, scaled by the subject's speed), with 1.5-4.5 s gaps; one trial in five has an
annotation that overlaps the next window.

Events of a gesture window (~200-400 k: a rate of 35-65 k events/s times the lighting's
contrast factor):

- hand-edge events (about 85 %): the hand centres follow the class's path of
  :func:`data_tools.synth.hand_paths` (the same gesture templates as the small set, with the
  subject's centre, size, speed and per-sample jitter); each event lies on the rim of a hand
  disc (radius ~7 px x the subject's size, 15 % radial spread) at a uniform angle; its time is
  drawn with density proportional to the hand speed (events come from motion), its polarity is
  ON on the leading edge and OFF on the trailing one (10 % flipped);
- body events (about 5 %): a slowly swaying torso outline around the subject's centre;
- background activity (the rest): uniform pixels with 1 % hot pixels (x20), random polarity.

Between gestures the hand moves back with a random smooth path at ~30 % of the gesture rate,
plus the same background activity. Total: ~600 M events, ~4.8 GB of AEDAT.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_tools.aedat3 import write_aedat3
from data_tools.events import DVS128_SENSOR, GESTURE_CLASSES, make_events
from data_tools.gesture_layout import LABEL_HEADER, SPLIT_FILES
from data_tools.synth import LIGHTINGS, Subject, hand_paths

log = logging.getLogger(__name__)

VERSION = 1
W = H = 128
N_USERS = 29
FIRST_TEST_USER = 24
FULL_LIGHTING_USERS = 6            # users 1..6 recorded under all 5 lighting tags
GRID = 2048                        # phase grid on which hand paths are evaluated
# per lighting: event-rate factor (contrast) and background activity (events/s over the sensor)
RATE = {"natural": (1.0, 6_000), "lab": (0.95, 8_000), "led": (0.9, 10_000), "fluorescent_led": (0.85, 13_000),
        "fluorescent": (0.8, 16_000)}


@dataclass(frozen=True)
class RealSizeConfig:
    """What to generate. fraction < 1 keeps every k-th trial of the plan (k = round(1/fraction))
    for quick checks; gesture rate in events/s before the lighting factor."""

    seed: int = 0
    gesture_s: float = 6.0
    rate_lo: float = 35_000
    rate_hi: float = 65_000
    gap_rate: float = 0.3
    fraction: float = 1.0


def trial_plan(cfg: RealSizeConfig) -> list[tuple[int, str, bool]]:
    """(user, lighting, is_train) of every trial: 122 at fraction 1."""
    rng = np.random.default_rng([cfg.seed, 11])
    names = list(LIGHTINGS)
    plan = []
    for u in range(1, N_USERS + 1):
        k = len(names) if u <= FULL_LIGHTING_USERS else len(names) - 1
        for i in sorted(rng.choice(len(names), k, replace=False)):
            plan.append((u, names[i], u < FIRST_TEST_USER))
    step = max(1, round(1 / cfg.fraction))
    return plan[::step]


def _subject(seed: int, user: int) -> Subject:
    r = np.random.default_rng([seed, 13, user])
    return Subject(cx=64 + r.uniform(-8, 8), cy=64 + r.uniform(-10, 10), scale=r.uniform(0.85, 1.2),
                   speed=r.uniform(0.85, 1.2), contrast=r.uniform(0.8, 1.2))


def schedule(cfg: RealSizeConfig, s: Subject, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(performed, labels): the performed gestures [12, 3] (class 0..10, start, end us) and the
    label rows [12, 3], equal except for one overlapping annotation in one trial of five."""
    classes = list(rng.permutation(11))
    classes.insert(int(rng.integers(1, 12)), int(rng.integers(0, 11)))
    rows, t = [], int(rng.uniform(1.5, 3.0) * 1e6)
    for c in classes:
        d = int(cfg.gesture_s / s.speed * rng.uniform(0.85, 1.15) * 1e6)
        rows.append((c, t, t + d))
        t += d + int(rng.uniform(1.5, 4.5) * 1e6)
    performed = np.array(rows, np.int64)
    labels = performed.copy()
    if rng.random() < 0.2:
        i = int(rng.integers(0, len(rows) - 1))
        labels[i, 2] = labels[i + 1, 1] + int(0.5 * (labels[i + 1, 2] - labels[i + 1, 1]) * rng.random())
    return performed, labels


def _motion_events(paths: np.ndarray, n: int, t0: int, t1: int, radius: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """About n hand-rim events over [t0, t1) us for hand centres paths [K, GRID, 2] (NaN = no
    hand), density proportional to the hands' speed: (pixel int64, on bool, t int64 sorted);
    events that fall off the sensor are dropped."""
    K = paths.shape[0]
    vel = np.gradient(paths, axis=1)
    speed = np.nan_to_num(np.hypot(vel[..., 0], vel[..., 1]))            # [K, GRID] px per grid step
    rate = speed + 0.05 * speed.max() * np.isfinite(paths[..., 0])        # a slow hand still makes events
    cdf = np.cumsum(rate.sum(0))
    u = np.searchsorted(cdf, np.sort(rng.random(n, np.float32)) * cdf[-1]).clip(0, GRID - 1)
    if K > 1:                                                              # choose a hand by its rate
        k = (rng.random(n, np.float32) * rate.sum(0)[u] > rate[0, u]).astype(np.intp)
        centre, v = paths[k, u].astype(np.float32), vel[k, u].astype(np.float32)
    else:
        centre, v = paths[0, u].astype(np.float32), vel[0, u].astype(np.float32)
    phi = rng.random(n, np.float32) * np.float32(2 * np.pi)
    r = np.float32(radius) * (1 + np.float32(0.15) * rng.standard_normal(n, np.float32))
    dx, dy = np.cos(phi), np.sin(phi)
    on = (dx * v[:, 0] + dy * v[:, 1] > 0) ^ (rng.random(n, np.float32) < 0.1)
    x = np.rint(centre[:, 0] + r * dx)
    y = np.rint(centre[:, 1] + r * dy)
    t = t0 + ((u + rng.random(n, np.float32)) * np.float32((t1 - t0) / GRID)).astype(np.int64)
    keep = np.flatnonzero((x >= 0) & (x < W) & (y >= 0) & (y < H))
    pix = y[keep].astype(np.int64) * W + x[keep].astype(np.int64)
    return pix, on[keep], np.sort(t[keep])


def _uniform_events(n: int, t0: int, t1: int, weight: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """n background events on pixels drawn with weights [H * W] over [t0, t1) us: (pixel, on, t)."""
    pix = np.searchsorted(np.cumsum(weight), rng.random(n) * weight.sum()).clip(0, H * W - 1)
    return pix, rng.random(n, np.float32) < 0.5, rng.integers(t0, t1, n)


def render_trial(cfg: RealSizeConfig, s: Subject, lighting: str,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One recording: (events sorted by time from t = 0, label rows [12, 3] class 0..10, start, end us)."""
    performed, labels = schedule(cfg, s, rng)
    factor, bg_rate = RATE[lighting]
    radius = 7.0 * s.scale
    hot = np.ones(H * W)
    hot[rng.choice(H * W, H * W // 100, replace=False)] = 20
    u = (np.arange(GRID) + 0.5) / GRID
    parts, prev_end = [], 0
    end = int(performed[-1, 2] + rng.uniform(1.5, 3.0) * 1e6)
    for c, a, b in [*performed.tolist(), (-1, end, end)]:
        if a > prev_end:                                   # gap: the hand wanders back, slowly
            n = int(cfg.rate_lo * cfg.gap_rate * factor * (a - prev_end) * 1e-6)
            parts.append(_motion_events(hand_paths(10, u, s, rng)[:1], n, prev_end, a, radius, rng))
        if c < 0:
            break
        n_all = int(rng.uniform(cfg.rate_lo, cfg.rate_hi) * factor * (b - a) * 1e-6)
        n_body = n_all // 20
        parts.append(_motion_events(hand_paths(int(c), u, s, rng), n_all - n_body, a, b, radius, rng))
        sway = np.stack([s.cx + 3 * np.sin(2 * np.pi * u * rng.uniform(0.5, 1.5)),
                         s.cy + 28 * s.scale + 0 * u], -1)[None]
        parts.append(_motion_events(sway, n_body, a, b, 16 * s.scale, rng))
        prev_end = b
    n_bg = int(bg_rate * rng.uniform(0.8, 1.25) * end * 1e-6)
    parts.append(_uniform_events(n_bg, 0, end, hot, rng))
    pix, on, t = (np.concatenate(p) for p in zip(*parts))
    order = np.argsort(t, kind="stable")                   # sorted runs: the merge is cheap
    pix = pix[order]
    return make_events(pix % W, pix // W, on[order], t[order]), labels


def _write_trial(root: Path, cfg: RealSizeConfig, user: int, lighting: str) -> dict:
    """Render and write one trial; its counts."""
    rng = np.random.default_rng([cfg.seed, 12, user, list(LIGHTINGS).index(lighting)])
    ev, rows = render_trial(cfg, _subject(cfg.seed, user), lighting, rng)
    start = int(rng.integers(1_000_000, 5_000_000))        # recordings do not start at t = 0
    ev["t"] += start
    name = f"user{user:02d}_{lighting}"
    write_aedat3(root / f"{name}.aedat", ev, packet_events=8192,
                 header_fields={"Generator": f"gpusnn synth real-size v{VERSION} seed {cfg.seed}"})
    lines = [",".join(LABEL_HEADER)] + [f"{c + 1},{a + start},{b + start}" for c, a, b in rows]
    (root / f"{name}_labels.csv").write_text("\n".join(lines) + "\n")
    lo = np.searchsorted(ev["t"], rows[:, 1] + start)
    hi = np.searchsorted(ev["t"], rows[:, 2] + start)
    return {"events": int(ev.size), "rows": len(rows), "window_events": int((hi - lo).sum())}


def generate_real(root, cfg: RealSizeConfig = RealSizeConfig(), *, jobs: int = 1, progress: bool = True) -> dict:
    """Write the real-size synthetic dataset under root (created), trials in `jobs` processes
    (the output does not depend on jobs); returns a summary dict."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    plan = trial_plan(cfg)
    bar = tqdm(total=len(plan), desc="synthesising trials", disable=not progress, unit="trial")
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            futures = [pool.submit(_write_trial, root, cfg, u, light) for u, light, _ in plan]
            for f in as_completed(futures):
                bar.update(1)
            counts = [f.result() for f in futures]
    else:
        counts = []
        for u, light, _ in plan:
            counts.append(_write_trial(root, cfg, u, light))
            bar.update(1)
    bar.close()
    for is_train in (True, False):
        names = [f"user{u:02d}_{light}.aedat" for u, light, tr in plan if tr == is_train]
        (root / SPLIT_FILES[is_train]).write_text("".join(n + "\n" for n in names))
    summary = {"root": str(root), "size": "real", "version": VERSION, "seed": cfg.seed, "fraction": cfg.fraction,
               "trials": len(plan), "train_trials": sum(tr for *_, tr in plan),
               "test_trials": sum(not tr for *_, tr in plan), "samples": sum(c["rows"] for c in counts),
               "events": sum(c["events"] for c in counts),
               "events_in_windows": sum(c["window_events"] for c in counts),
               "bytes": sum(p.stat().st_size for p in root.iterdir()),
               "seconds": round(time.perf_counter() - t0, 2), "classes": list(GESTURE_CLASSES),
               "sensor_size": list(DVS128_SENSOR)}
    log.info("synthesised %(trials)d trials, %(samples)d samples, %(events)d events in %(seconds)s s", summary)
    return summary
