"""Seeded bootstrap confidence intervals for the difference of one metric between two releases; used by compare.

Two resampling units, both vectorised with numpy and bounded in memory:

- **blocks of requests** for sample SLIs: the requests of a phase/cohort are grouped into time
  blocks (the experiment's SLI window, aligned at load start, per run) and whole blocks are
  resampled with replacement. Requests next to each other in time are not independent (a killed
  replica fails a burst of them), so resampling single requests would give intervals that are too
  narrow and flag noise as regressions. With fewer than :data:`MIN_BLOCKS` blocks on a side,
  single requests are resampled instead (recorded as ``unit="requests"``).
- **injections** for per-injection values (MTTR, TTD, ready time): the injections of a fault are
  resampled and aggregated (mean by default, or the hypothesis' ``agg``).

The interval is the percentile interval of ``candidate* - baseline*`` over ``resamples`` paired
draws (each side resampled independently), at ``confidence`` (default 95%).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Fewer time blocks than this on a side: resample single requests instead of blocks.
MIN_BLOCKS = 4
#: Most resampled values held in memory at once (rows x samples); larger jobs run in chunks.
MAX_CELLS = 4_000_000


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval for candidate - baseline."""

    low: float
    high: float
    unit: str  # blocks | requests | injections

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass(frozen=True, slots=True)
class RatioData:
    """One side of a ratio SLI (or a mean): per sample value (0/1 for ratios) and time block, denominator samples only."""

    hits: np.ndarray  # float64 0/1 per sample
    blocks: np.ndarray  # int64 block id per sample (>= 0)

    @property
    def n(self) -> int:
        return len(self.hits)

    def value(self) -> float | None:
        return float(self.hits.mean()) if self.n else None


@dataclass(frozen=True, slots=True)
class QuantileData:
    """One side of a latency percentile: latencies and their time blocks."""

    values: np.ndarray
    blocks: np.ndarray
    q: float

    @property
    def n(self) -> int:
        return len(self.values)

    def value(self) -> float | None:
        return float(np.percentile(self.values, 100 * self.q)) if self.n else None


def _alpha(confidence: float) -> tuple[float, float]:
    a = (1.0 - confidence) / 2.0
    return 100 * a, 100 * (1.0 - a)


def _block_counts(rng: np.random.Generator, nb: int, resamples: int) -> np.ndarray:
    """(resamples, nb) multiplicities of each block in a resample of nb blocks."""
    picks = rng.integers(0, nb, size=(resamples, nb))
    counts = np.zeros((resamples, nb), dtype=np.float64)
    np.add.at(counts, (np.repeat(np.arange(resamples), nb), picks.ravel()), 1.0)
    return counts


def ratio_draws(d: RatioData, rng: np.random.Generator, resamples: int) -> tuple[np.ndarray, str]:
    """Bootstrap draws of a ratio (mean of 0/1 hits)."""
    ids, inv = np.unique(d.blocks, return_inverse=True)
    nb = len(ids)
    if nb >= MIN_BLOCKS:
        num = np.bincount(inv, weights=d.hits, minlength=nb)
        den = np.bincount(inv, minlength=nb).astype(np.float64)
        c = _block_counts(rng, nb, resamples)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (c @ num) / (c @ den), "blocks"
    if np.all((d.hits == 0) | (d.hits == 1)):
        # i.i.d. requests: a resampled proportion is Binomial(n, p) / n, exactly.
        return rng.binomial(d.n, float(d.hits.mean()), size=resamples) / d.n, "requests"
    out = np.empty(resamples, dtype=np.float64)
    chunk = max(1, MAX_CELLS // max(1, d.n))
    for lo in range(0, resamples, chunk):
        m = min(chunk, resamples - lo)
        out[lo : lo + m] = d.hits[rng.integers(0, d.n, size=(m, d.n))].mean(axis=1)
    return out, "requests"


def quantile_draws(d: QuantileData, rng: np.random.Generator, resamples: int) -> tuple[np.ndarray, str]:
    """Bootstrap draws of a percentile (inverted-CDF percentile of the resampled latencies)."""
    order = np.argsort(d.values, kind="stable")
    vals = d.values[order]
    ids, inv = np.unique(d.blocks[order], return_inverse=True)
    nb = len(ids)
    out = np.empty(resamples, dtype=np.float64)
    chunk = max(1, MAX_CELLS // max(1, len(vals)))
    unit = "blocks" if nb >= MIN_BLOCKS else "requests"
    for lo in range(0, resamples, chunk):
        m = min(chunk, resamples - lo)
        if unit == "blocks":
            w = _block_counts(rng, nb, m)[:, inv]  # weight of each sorted latency
        else:
            picks = rng.integers(0, len(vals), size=(m, len(vals)))
            w = np.zeros((m, len(vals)), dtype=np.float64)
            np.add.at(w, (np.repeat(np.arange(m), len(vals)), picks.ravel()), 1.0)
        cw = np.cumsum(w, axis=1)
        target = d.q * cw[:, -1:]
        idx = np.minimum((cw < target).sum(axis=1), len(vals) - 1)
        out[lo : lo + m] = vals[idx]
    return out, unit


def injection_draws(values: np.ndarray, agg: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Bootstrap draws of ``agg`` over resampled injections; ``agg`` reduces along axis 1."""
    picks = rng.integers(0, len(values), size=(resamples, len(values)))
    return agg(values[picks])


AGG_ARRAY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda x: x.mean(axis=1),
    "median": lambda x: np.median(x, axis=1),
    "max": lambda x: x.max(axis=1),
    "min": lambda x: x.min(axis=1),
}


def diff_interval(base: np.ndarray, cand: np.ndarray, confidence: float, unit: str) -> Interval | None:
    """Percentile interval of cand - base over paired draws; None if every draw is undefined."""
    d = cand - base
    d = d[~np.isnan(d)]
    if not len(d):
        return None
    lo, hi = np.percentile(d, _alpha(confidence))
    return Interval(float(lo), float(hi), unit)


def ratio_interval(base: RatioData, cand: RatioData, *, seed: int, resamples: int, confidence: float) -> Interval | None:
    rng = np.random.default_rng(seed)
    b, ub = ratio_draws(base, rng, resamples)
    c, uc = ratio_draws(cand, rng, resamples)
    return diff_interval(b, c, confidence, ub if ub == uc else "requests")


def quantile_interval(base: QuantileData, cand: QuantileData, *, seed: int, resamples: int, confidence: float) -> Interval | None:
    rng = np.random.default_rng(seed)
    b, ub = quantile_draws(base, rng, resamples)
    c, uc = quantile_draws(cand, rng, resamples)
    return diff_interval(b, c, confidence, ub if ub == uc else "requests")


def injection_interval(
    base: np.ndarray, cand: np.ndarray, agg: str, *, seed: int, resamples: int, confidence: float
) -> Interval | None:
    rng = np.random.default_rng(seed)
    f = AGG_ARRAY[agg]
    return diff_interval(injection_draws(base, f, rng, resamples), injection_draws(cand, f, rng, resamples), confidence, "injections")


__all__ = [
    "AGG_ARRAY",
    "MIN_BLOCKS",
    "Interval",
    "QuantileData",
    "RatioData",
    "injection_interval",
    "quantile_interval",
    "ratio_interval",
]
