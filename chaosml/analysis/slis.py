"""Sample SLIs (catalog.SAMPLE_SLIS) over any set of samples, whole or grouped; used by phases, MTTR and verdicts.

Everything is computed from a few per-sample numpy arrays (:class:`SampleArrays`) with
``np.bincount`` sums and one sort per grouped latency percentile, so a million samples split
into thousands of windows take a fraction of a second.

Definitions (denominators in brackets):

- success_ratio = outcome ok [requests]; error_ratio = error, timeout or invalid [requests]
  (so success + rejected + error = 1 over requests with a known outcome);
  timeout_ratio, invalid_ratio (a 2xx without an answer), rejected_ratio likewise [requests];
- primary_ratio, fallback_ratio (= not primary), default_ratio [ok answers];
- accuracy = prediction == label, confident_wrong_ratio = wrong with confidence >= threshold
  [ok answers with a prediction and a label];
- latency_* over requests with a latency; throughput_rps = requests / duration.

A ratio whose denominator is empty is undefined: NaN in grouped arrays, ``None`` in dicts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chaosml.analysis.phases import Phase
from chaosml.analysis.samples import normalize_samples
from chaosml.model.catalog import SAMPLE_SLIS

#: The SLI -> name of the count it is computed over (the "n" of a verdict).
SLI_DENOMINATOR: dict[str, str] = {
    "success_ratio": "requests",
    "error_ratio": "requests",
    "timeout_ratio": "requests",
    "rejected_ratio": "requests",
    "invalid_ratio": "requests",
    "primary_ratio": "answers",
    "fallback_ratio": "answers",
    "default_ratio": "answers",
    "accuracy": "predictions",
    "confident_wrong_ratio": "predictions",
    "latency_p50_ms": "latencies",
    "latency_p95_ms": "latencies",
    "latency_p99_ms": "latencies",
    "latency_mean_ms": "latencies",
    "throughput_rps": "requests",
}

COUNT_NAMES: tuple[str, ...] = ("requests", "answers", "predictions", "latencies")

#: served-by mix classes: what a request ended as, errors included (used by plots and tables).
MIX_CLASSES: tuple[str, ...] = ("primary", "fallback", "default", "rejected", "error", "timeout", "invalid", "unknown")

#: the MIX_CLASSES that error_ratio counts
ERROR_CLASSES: tuple[str, ...] = ("error", "timeout", "invalid")

#: outcome codes in ``SampleArrays.code`` (the order of ``records.OUTCOMES``); UNKNOWN = no or an unknown outcome
OK, REJECTED, ERROR, TIMEOUT, INVALID, UNKNOWN = range(6)
_NOUTCOMES = UNKNOWN + 1

_QUANTILES = {"latency_p50_ms": 0.50, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}


@dataclass(frozen=True, slots=True)
class SampleArrays:
    """Per-sample numpy arrays that every SLI is a count or percentile of.

    ``code`` packs what counts need into one small int per sample, so all counts of any grouping
    come from a single ``np.bincount``: ``code = (outcome * 5 + served_by) * 4 + quality`` with
    outcome ok/rejected/error/timeout/invalid/unknown (0-5, OK..UNKNOWN), served_by primary/fallback/default/rejected/
    unknown (0-4) and quality no prediction/correct/wrong/confident-wrong (0-3).
    """

    t: np.ndarray  # float64 send time, sorted
    end: np.ndarray  # float64 end of the request's lifetime: t + latency (t when the latency is unknown)
    latency: np.ndarray  # float64, NaN = missing
    code: np.ndarray  # int64 count code (see above)
    primary: np.ndarray  # bool: 2xx answer served by the primary model
    mix: np.ndarray  # int8 index into MIX_CLASSES
    cohort: np.ndarray  # int64 cohort code, -1 = none
    cohorts: tuple[str, ...]  # cohort names by code
    version: np.ndarray  # int64 model_version code, -1 = none (no answer, or a stack that does not say)
    versions: tuple[str, ...]  # model versions by code
    lat_index: np.ndarray  # indices of samples with a latency, in increasing latency order
    lat_sorted: np.ndarray  # latency[lat_index]

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, confidence_threshold: float) -> SampleArrays:
        df = normalize_samples(df)
        outcome = df["outcome"].cat.codes.to_numpy().astype(np.int64)  # ok, rejected, error, timeout, invalid; -1
        served = df["served_by"].cat.codes.to_numpy().astype(np.int64)  # primary, fallback, default, rejected; -1
        outcome[outcome < 0] = UNKNOWN
        served[served < 0] = 4
        ok = outcome == OK
        pred = df["prediction"].to_numpy()
        label = df["label"].to_numpy()
        conf = df["confidence"].to_numpy()
        predicted = ok & ~np.isnan(pred) & ~np.isnan(label)
        correct = predicted & (pred == label)
        with np.errstate(invalid="ignore"):
            confident_wrong = predicted & ~correct & (conf >= confidence_threshold)
        quality = np.where(predicted, np.where(correct, 1, np.where(confident_wrong, 3, 2)), 0)
        mix = np.full(len(df), MIX_CLASSES.index("unknown"), dtype=np.int8)
        mix[ok & (served == 0)] = MIX_CLASSES.index("primary")
        mix[ok & (served == 1)] = MIX_CLASSES.index("fallback")
        mix[ok & (served == 2)] = MIX_CLASSES.index("default")
        mix[(outcome == REJECTED) | (ok & (served == 3))] = MIX_CLASSES.index("rejected")
        mix[outcome == ERROR] = MIX_CLASSES.index("error")
        mix[outcome == TIMEOUT] = MIX_CLASSES.index("timeout")
        mix[outcome == INVALID] = MIX_CLASSES.index("invalid")
        latency = df["latency_ms"].to_numpy()
        lat_index = np.flatnonzero(~np.isnan(latency))
        lat_index = lat_index[np.argsort(latency[lat_index], kind="stable")]
        cohort_cat, version_cat = df["cohort"], df["model_version"]
        t = df["t"].to_numpy()
        return cls(
            t=t,
            end=t + np.nan_to_num(latency, nan=0.0) / 1000.0,
            latency=latency,
            code=(outcome * 5 + served) * 4 + quality,
            primary=ok & (served == 0),
            mix=mix,
            cohort=cohort_cat.cat.codes.to_numpy().astype(np.int64),
            cohorts=tuple(str(c) for c in cohort_cat.cat.categories),
            version=version_cat.cat.codes.to_numpy().astype(np.int64),
            versions=tuple(str(v) for v in version_cat.cat.categories),
            lat_index=lat_index,
            lat_sorted=latency[lat_index],
        )

    def decode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(outcome, served_by, quality) code per sample, unpacked from ``code``."""
        return self.code // 20, (self.code // 4) % 5, self.code % 4

    def in_phase(self, phase: Phase) -> np.ndarray:
        """Mask of the samples that belong to ``phase`` (by the phases' lifetime rule)."""
        return phase.select(self.t, self.end)

    def cohort_mask(self, cohort: str | None) -> np.ndarray | None:
        """Mask of one cohort's samples (None = no filter); an unknown cohort selects nothing."""
        if cohort is None:
            return None
        if cohort not in self.cohorts:
            return np.zeros(len(self), dtype=bool)
        return self.cohort == self.cohorts.index(cohort)


_NCODES = _NOUTCOMES * 5 * 4


#: the SLIs over requests that are a share of outcomes (numerators: :func:`outcome_hits`)
OUTCOME_RATIOS: tuple[str, ...] = ("success_ratio", "error_ratio", "timeout_ratio", "rejected_ratio", "invalid_ratio")


def outcome_hits(outcome: np.ndarray) -> dict[str, np.ndarray]:
    """Per request: does it count in the numerator of each of OUTCOME_RATIOS (``outcome``: codes OK..UNKNOWN)."""
    return {
        "success_ratio": outcome == OK,
        "error_ratio": (outcome == ERROR) | (outcome == TIMEOUT) | (outcome == INVALID),
        "timeout_ratio": outcome == TIMEOUT,
        "rejected_ratio": outcome == REJECTED,
        "invalid_ratio": outcome == INVALID,
    }


def grouped_slis(
    a: SampleArrays,
    gid: np.ndarray,
    ngroups: int,
    durations: np.ndarray | float | None = None,
) -> dict[str, np.ndarray]:
    """Every sample SLI plus the counts (COUNT_NAMES) per group.

    ``gid`` gives each sample's group in ``[0, ngroups)``; -1 leaves the sample out.
    ``durations`` (s, per group or one for all) gives throughput_rps; None = span of send times.
    Undefined values are NaN.
    """
    gid = np.asarray(gid, dtype=np.int64)
    keep = gid >= 0
    if keep.all():
        flat = gid * _NCODES + a.code
    else:
        flat = gid[keep] * _NCODES + a.code[keep]
    c = np.bincount(flat, minlength=ngroups * _NCODES)[: ngroups * _NCODES]
    c = c.reshape(ngroups, _NOUTCOMES, 5, 4).astype(np.float64)
    n = c.sum(axis=(1, 2, 3))
    okc = c[:, OK]  # (ngroups, served, quality) of 2xx answers
    n_ok = okc.sum(axis=(1, 2))
    n_pred = okc[:, :, 1:].sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out: dict[str, np.ndarray] = {
            "requests": n,
            "answers": n_ok,
            "predictions": n_pred,
            "success_ratio": n_ok / n,
            "error_ratio": c[:, ERROR:INVALID + 1].sum(axis=(1, 2, 3)) / n,
            "timeout_ratio": c[:, TIMEOUT].sum(axis=(1, 2)) / n,
            "rejected_ratio": c[:, REJECTED].sum(axis=(1, 2)) / n,
            "invalid_ratio": c[:, INVALID].sum(axis=(1, 2)) / n,
            "primary_ratio": okc[:, 0].sum(axis=1) / n_ok,
            "default_ratio": okc[:, 2].sum(axis=1) / n_ok,
            "accuracy": okc[:, :, 1].sum(axis=1) / n_pred,
            "confident_wrong_ratio": okc[:, :, 3].sum(axis=1) / n_pred,
        }
        out["fallback_ratio"] = 1.0 - out["primary_ratio"]

        lg = gid[a.lat_index]
        lkeep = lg >= 0
        lg = lg[lkeep]
        lat = a.lat_sorted[lkeep]  # still in increasing latency order
        n_lat = np.bincount(lg, minlength=ngroups)[:ngroups]
        out["latencies"] = n_lat.astype(np.float64)
        out["latency_mean_ms"] = np.bincount(lg, weights=lat, minlength=ngroups)[:ngroups] / n_lat
        out.update(_grouped_quantiles(lat, lg, n_lat, ngroups))

        if durations is None:
            tg = gid[keep]
            tt = a.t[keep]
            tmin = np.full(ngroups, np.inf)
            tmax = np.full(ngroups, -np.inf)
            _group_extreme(tmin, tg, tt, np.minimum)
            _group_extreme(tmax, tg, tt, np.maximum)
            span = tmax - tmin
            dur = np.where(span > 0, span, np.nan)
        else:
            dur = np.broadcast_to(np.asarray(durations, dtype=np.float64), (ngroups,))
            dur = np.where(dur > 0, dur, np.nan)
        out["throughput_rps"] = n / dur
    return out


def _group_extreme(acc: np.ndarray, g: np.ndarray, x: np.ndarray, fn: np.ufunc) -> None:
    # Sorting-based group min/max: faster than ufunc.at on large inputs.
    if not len(g):
        return
    order = np.argsort(g, kind="stable")
    gs = g[order]
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    acc[gs[starts]] = fn(acc[gs[starts]], fn.reduceat(xs, starts))


def _grouped_quantiles(lat: np.ndarray, g: np.ndarray, n_lat: np.ndarray, ngroups: int) -> dict[str, np.ndarray]:
    """Linear-interpolated percentiles per group (numpy's default method).

    ``lat`` must be in increasing order; a stable sort by group keeps that order inside each
    group (a radix sort when the group ids fit in 16 bits).
    """
    out = {name: np.full(ngroups, np.nan) for name in _QUANTILES}
    if not len(lat):
        return out
    if ngroups == 1:
        s = lat
    elif ngroups <= np.iinfo(np.uint16).max:
        s = lat[np.argsort(g.astype(np.uint16), kind="stable")]
    else:
        s = lat[np.argsort(g, kind="stable")]
    starts = np.cumsum(n_lat) - n_lat
    has = n_lat > 0
    for name, q in _QUANTILES.items():
        pos = q * (n_lat[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_lat[has] - 1)
        frac = pos - lo
        base = starts[has]
        vlo = s[base + lo]
        vhi = s[base + hi]
        out[name][has] = vlo + (vhi - vlo) * frac
    return out


def to_optional(x: float) -> float | None:
    """NaN/inf -> None, numpy scalars -> float."""
    v = float(x)
    return None if math.isnan(v) or math.isinf(v) else v


def row(slis: dict[str, np.ndarray], i: int) -> dict[str, float | None]:
    """Group ``i`` of :func:`grouped_slis` as a JSON-safe dict; counts become ints."""
    d: dict[str, float | None] = {}
    for name in ("requests", *SAMPLE_SLIS):
        d[name] = to_optional(slis[name][i])
    for name in COUNT_NAMES:
        d[name] = int(slis[name][i])
    return d


def slis_of(a: SampleArrays, mask: np.ndarray | None, duration_s: float | None = None) -> dict[str, float | None]:
    """SLIs of the samples selected by ``mask`` (None = all)."""
    if mask is None:
        gid = np.zeros(len(a), dtype=np.int64)
    else:
        gid = np.where(mask, 0, -1)
    return row(grouped_slis(a, gid, 1, duration_s), 0)


def compute_slis(df: pd.DataFrame, confidence_threshold: float, duration_s: float | None = None) -> dict[str, float | None]:
    """Every SAMPLE_SLIS value plus ``requests`` (and the other counts) over the samples in ``df``.

    ``duration_s`` is the length of time the samples cover (for throughput_rps); None = span of
    their send times. Ratios with an empty denominator are None, never NaN.
    """
    return slis_of(SampleArrays.from_frame(df, confidence_threshold), None, duration_s)


def mix_counts(a: SampleArrays, mask: np.ndarray | None) -> dict[str, int]:
    """How many selected requests ended as each MIX_CLASSES class."""
    m = a.mix if mask is None else a.mix[mask]
    c = np.bincount(m.astype(np.int64), minlength=len(MIX_CLASSES))
    return {name: int(c[i]) for i, name in enumerate(MIX_CLASSES)}
