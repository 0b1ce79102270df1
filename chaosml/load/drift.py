"""The drift schedule the load process applies to clean requests while a ``drift`` fault is active; pure, no locust.

A ``drift`` fault puts an entry ``{"drift": {...}}`` under ``faults`` in the load-control file
(``chaosml/faults/drift.py`` writes it, :func:`active_schedule` reads it). The magnitude ``m`` in
[0, 1] is the fraction of the declared drift reached at send time ``t`` in the window
[``start_t``, ``start_t + duration_s``]:

- ``linear``: ``m = (t - start_t) / duration_s``;
- ``step``: ``steps`` equal steps, the first at apply: ``m = min(1, (floor(steps * (t - start_t) / duration_s) + 1) / steps)``;
- ``sudden``: ``m = 1`` for the whole window.

At magnitude ``m`` one request is built from a clean row as follows (``mean`` and ``std`` of a
feature are its population mean and standard deviation over the rows the load draws its clean
traffic from, :func:`feature_stats`):

1. prior shift: with ``class_mix``, the row's class is drawn from ``(1 - m) * base + m * class_mix``
   (``base`` = the class proportions of those rows), then a row of that class;
2. out of distribution: with probability ``ood_share * m`` every request feature is replaced by
   ``mean +/- u * std`` (``u`` uniform in [``OOD_MIN_STD``, ``OOD_MAX_STD``], sign at random);
3. covariate shift, otherwise: each listed feature ``x`` becomes
   ``mean + (x - mean) * (1 + (scale - 1) * m) + shift_std * m * std``.

The row keeps its label and entity id: drift changes what the model sees, not who the entity is.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

OOD_MIN_STD = 4.0
OOD_MAX_STD = 8.0
RAMPS = ("linear", "step", "sudden")


@dataclass(frozen=True, slots=True)
class DriftSchedule:
    """One active drift entry of the load-control file."""

    fault: str
    start_t: float  # epoch seconds of apply
    duration_s: float
    features: tuple[str, ...] = ()
    shift_std: float = 0.0
    scale: float = 1.0
    ramp: str = "linear"
    steps: int = 4
    class_mix: Mapping[int, float] | None = None
    ood_share: float = 0.0

    def magnitude(self, t: float) -> float:
        """The fraction of the declared drift reached at epoch ``t`` (0 before apply, 1 from the window's end)."""
        if t < self.start_t:
            return 0.0
        if self.ramp == "sudden" or self.duration_s <= 0:
            return 1.0
        x = (t - self.start_t) / self.duration_s
        if self.ramp == "step":
            return min(1.0, (math.floor(self.steps * x) + 1) / self.steps)
        return min(1.0, x)


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def parse_schedule(key: str, raw: Any) -> DriftSchedule | None:
    """A drift entry as written by the fault, or None when it is not one (or malformed)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("drift"), dict):
        return None
    d = raw["drift"]
    start, duration = _number(d.get("start_t")), _number(d.get("duration_s"))
    ramp, features = d.get("ramp", "linear"), d.get("features", [])
    if start is None or duration is None or ramp not in RAMPS or not isinstance(features, list):
        return None
    mix = d.get("class_mix")
    class_mix = None
    if isinstance(mix, dict):
        parsed = {int(k): _number(v) for k, v in mix.items() if str(k).lstrip("-").isdigit()}
        class_mix = {k: v for k, v in parsed.items() if v is not None and v >= 0}
        if sum(class_mix.values()) <= 0:
            class_mix = None
    steps, scale = d.get("steps", 4), _number(d.get("scale"))
    return DriftSchedule(
        fault=str(d.get("fault", key)), start_t=start, duration_s=duration,
        features=tuple(str(f) for f in features),
        shift_std=_number(d.get("shift_std")) or 0.0,
        scale=1.0 if scale is None else scale,
        ramp=ramp, steps=steps if isinstance(steps, int) and steps >= 1 else 4,
        class_mix=class_mix, ood_share=min(1.0, max(0.0, _number(d.get("ood_share")) or 0.0)),
    )


def active_schedule(entries: Any) -> DriftSchedule | None:
    """The drift applied now: of the control file's drift entries, the one applied last (None: no drift)."""
    if not isinstance(entries, dict):
        return None
    found = [s for k, v in entries.items() if (s := parse_schedule(str(k), v)) is not None]
    return max(found, key=lambda s: s.start_t, default=None)


def feature_stats(rows: Iterable[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Feature -> (mean, population std) over ``rows`` (each a feature -> value mapping)."""
    sums: dict[str, list[float]] = {}
    for row in rows:
        for f, v in row.items():
            sums.setdefault(f, []).append(float(v))
    out: dict[str, tuple[float, float]] = {}
    for f, values in sums.items():
        mean = sum(values) / len(values)
        out[f] = (mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)))
    return out


def class_weights(schedule: DriftSchedule, base: Mapping[int, float], m: float) -> dict[int, float]:
    """Class -> probability at magnitude ``m``: ``(1 - m) * base + m * class_mix`` (both normalised)."""
    assert schedule.class_mix is not None
    b_total = sum(base.values()) or 1.0
    t_total = sum(schedule.class_mix.values())
    classes = set(base) | set(schedule.class_mix)
    return {c: (1 - m) * base.get(c, 0.0) / b_total + m * schedule.class_mix.get(c, 0.0) / t_total for c in sorted(classes)}


def drifted(
    features: Mapping[str, float], schedule: DriftSchedule, stats: Mapping[str, tuple[float, float]], m: float, rng: random.Random
) -> dict[str, float]:
    """The request features of one row at magnitude ``m`` (steps 2 and 3 of the module docstring)."""
    out = {f: float(v) for f, v in features.items()}
    if schedule.ood_share > 0 and rng.random() < schedule.ood_share * m:
        for f in out:
            mean, std = stats.get(f, (out[f], 0.0))
            out[f] = mean + rng.choice((-1.0, 1.0)) * rng.uniform(OOD_MIN_STD, OOD_MAX_STD) * std
        return out
    factor = 1.0 + (schedule.scale - 1.0) * m
    for f in schedule.features:
        if f in out and f in stats:
            mean, std = stats[f]
            out[f] = mean + (out[f] - mean) * factor + schedule.shift_std * m * std
    return out


def weighted_choice(rng: random.Random, weights: Mapping[int, float], present: Sequence[int]) -> int | None:
    """A class drawn by ``weights`` among ``present`` ones (None when none of them has weight)."""
    pairs = [(c, weights.get(c, 0.0)) for c in present if weights.get(c, 0.0) > 0]
    if not pairs:
        return None
    x = rng.random() * sum(w for _, w in pairs)
    for c, w in pairs:
        x -= w
        if x < 0:
            return c
    return pairs[-1][0]
