"""Per-injection time to detect, time to recover and replica ready time, and their aggregates; used by analyze.

- TTD: apply -> the first moment the serving stack or its users could observe the fault, searched
  until the next apply of any fault (or load end), labelled with its source (``detected_source``):
  ``users``: the answer (send time + latency) of the first request whose lifetime overlaps the
  fault (``phases.in_flight``) and that was not a 2xx answer from the primary model (fallback,
  default, rejected, error, timeout) of a kind its cohort never got in the baseline, or took more
  than ``SLOW_FACTOR`` x the slowest baseline answer; ``stack``: the stack's own signal, a ``replica_unready`` event whose
  reason is a failed readiness check (``STACK_UNREADY_REASONS``, not the harness seeing the process
  it killed exit) or a ``breaker_*`` event; ``alert``: a Prometheus alert seen firing
  (``alert_firing``, from ``monitoring:``; any alertname). None = nothing observable (the harness's
  own kill events never count).
- MTTR: windows of ``steady_state.window`` seconds aligned at apply, searched until the next
  apply of any fault (or load end), whole windows only. A window is healthy when it holds at
  least one sample and every SLO (its sample SLI over the window's samples of the SLO's cohort)
  holds; an SLI that is undefined in a window (e.g. no 2xx answers for fallback_ratio) does not
  hold. The first run of ``hold`` healthy windows bounds recovery; none found = not recovered
  (``mttr_s`` None, ``recovered`` False), never a number. The recovery edge is then located from
  the requests of the last unhealthy window before that run: the midpoint between the last
  request that broke an SLO there (:func:`slo_failures`: e.g. an error for success_ratio, a slow
  answer for a latency SLO, in the SLO's cohort) and the next request of the same SLO's traffic,
  never later than the healthy run's start. MTTR = apply -> that edge, ``mttr_precision_s`` =
  half the gap around it (the whole window when no request located it). MTTR 0 = the SLOs never
  broke after apply (the first window was already healthy).
- ``mttr_min_s`` (only when not recovered): the least MTTR consistent with what was observed,
  (windows searched - ``hold``) x window: a recovery edge earlier than that would have been found,
  since a run of ``hold`` healthy windows after it fits in the search. ``ttd_min_s`` (only when
  nothing was observable): the time searched, apply -> the next apply (or load end). A hypothesis
  that these bounds cannot decide is inconclusive, not failed (see verdicts).
- ready_s: apply -> the last of the first ``replica_ready`` events of each replica named in the
  apply event's ``targets`` (each searched until that replica is targeted again). None if one of
  them never came back, or the injection named no replicas.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from chaosml.analysis.phases import InjectionWindow, LoadRange, in_flight, select
from chaosml.analysis.slis import MIX_CLASSES, OK, SampleArrays, grouped_slis, outcome_hits
from chaosml.model.catalog import OPERATORS, SAMPLE_SLIS
from chaosml.model.experiment import Slo, SteadyState
from chaosml.records import EventKind

#: A slow answer takes more than this many times the slowest baseline answer.
SLOW_FACTOR = 2.0
#: replica_unready reasons that are the stack's own readiness signal (not the harness's kill or deletion).
STACK_UNREADY_REASONS: frozenset[str] = frozenset({"probe failed", "readiness lost"})

#: catalog.OPERATORS, elementwise over arrays (NaN compares false).
_NP_OPERATORS: dict[str, np.ufunc] = {
    ">=": np.greater_equal,
    "<=": np.less_equal,
    ">": np.greater,
    "<": np.less,
    "==": np.equal,
}
assert set(_NP_OPERATORS) == set(OPERATORS)

_EPS = 1e-9  # tolerance (in windows) for float send times that sit exactly on a window boundary


@dataclass(frozen=True, slots=True)
class InjectionResult:
    """What one injection did to the stack and how fast it came back."""

    fault: str
    type: str
    injection: int
    apply_t: float
    recover_t: float | None
    offset_s: float  # apply, seconds after load start
    duration_s: float | None  # apply -> recover
    apply_ok: bool
    recover_ok: bool | None
    targets: tuple[str, ...]
    ttd_s: float | None
    detected_by: str | None
    detected_source: str | None  # users | stack; None = nothing observable
    mttr_s: float | None
    recovered: bool
    mttr_precision_s: float | None  # +- around mttr_s: half the request gap at the edge, or the window
    windows_searched: int  # whole windows between apply and the next apply (or load end)
    mttr_min_s: float | None  # not recovered: MTTR is at least this (None when mttr_s is a number)
    ttd_min_s: float | None  # nothing observable: TTD is at least this, the time searched (None when ttd_s is)
    ready_s: float | None
    ready_detail: str
    restart_delay_s: float

    @property
    def recovered_at(self) -> float | None:
        return None if self.mttr_s is None else self.apply_t + self.mttr_s

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d


def window_health(
    a: SampleArrays,
    gid: np.ndarray,
    ngroups: int,
    steady: SteadyState,
) -> tuple[np.ndarray, list[str]]:
    """Healthy flag per window group, and notes on SLOs that cannot judge windows."""
    n = np.bincount(gid[gid >= 0], minlength=ngroups)[:ngroups]
    healthy = n > 0
    notes: list[str] = []
    cache: dict[str | None, dict[str, np.ndarray]] = {}
    for slo in steady.slos:
        if slo.sli not in SAMPLE_SLIS:
            notes.append(f"SLO {slo.name}: {slo.sli} is not a sample SLI; ignored for recovery")
            continue
        if slo.cohort not in cache:
            mask = a.cohort_mask(slo.cohort)
            g = gid if mask is None else np.where(mask, gid, -1)
            cache[slo.cohort] = grouped_slis(a, g, ngroups, steady.window)
        values = cache[slo.cohort][slo.sli]
        with np.errstate(invalid="ignore"):
            holds = _NP_OPERATORS[slo.op](values, slo.target) & ~np.isnan(values)
        healthy &= holds
    if not steady.slos:
        notes.append("no SLOs: any window with traffic counts as healthy")
    return healthy, notes


def first_run(healthy: np.ndarray, hold: int) -> int | None:
    """Index of the first window that starts ``hold`` healthy windows in a row."""
    hold = max(1, int(hold))
    if len(healthy) < hold:
        return None
    runs = np.convolve(healthy.astype(np.int64), np.ones(hold, dtype=np.int64), mode="valid")
    hits = np.flatnonzero(runs == hold)
    return int(hits[0]) if len(hits) else None


def whole_windows(span_s: float, window_s: float) -> int:
    """The whole MTTR windows in a search of ``span_s`` seconds (as :func:`recovery_times` counts them)."""
    return max(int(math.floor(span_s / window_s + _EPS)), 0) if window_s > 0 else 0


def least_mttr(windows_searched: int, steady: SteadyState) -> float:
    """The least MTTR of an injection that did not recover in ``windows_searched`` whole windows.

    Recovery is found at the first window starting ``hold`` healthy ones, and its edge lies in the
    window before: had the edge come before (windows_searched - hold) x window, the run of healthy
    windows after it would have fitted in the search.
    """
    return round(max(int(windows_searched) - max(1, int(steady.hold)), 0) * float(steady.window), 6)


def slo_failures(a: SampleArrays, slo: Slo) -> np.ndarray | None:
    """Per request: did it break this SLO's SLI (an error for success_ratio, a slow answer for a
    latency SLO, ...), within the SLO's cohort; None for an SLI with no per-request meaning."""
    outcome, served, quality = a.decode()
    answered = outcome == OK
    by_sli: dict[str, np.ndarray] = {
        **outcome_hits(outcome),
        "success_ratio": ~answered,
        "primary_ratio": answered & (served != 0),
        "fallback_ratio": answered & (served != 0),
        "default_ratio": answered & (served == 2),
        "accuracy": answered & ((quality == 2) | (quality == 3)),
        "confident_wrong_ratio": answered & (quality == 3),
    }
    if slo.sli.startswith("latency_") and slo.op in ("<=", "<"):
        with np.errstate(invalid="ignore"):
            fails = ~_NP_OPERATORS[slo.op](a.latency, slo.target) & ~np.isnan(a.latency)
    elif slo.sli in by_sli:
        fails = by_sli[slo.sli]
    else:
        return None
    mask = a.cohort_mask(slo.cohort)
    return fails if mask is None else fails & mask


def recovery_edge(a: SampleArrays, steady: SteadyState, lo: float, hi: float) -> tuple[float, float]:
    """(edge, precision) of recovery in the last unhealthy window ``[lo, hi)``: see the module docstring."""
    best: tuple[float, float] | None = None
    i0, i1 = int(np.searchsorted(a.t, lo, side="left")), int(np.searchsorted(a.t, hi, side="left"))
    for slo in steady.slos:
        fails = slo_failures(a, slo)
        if fails is None:
            continue
        bad = np.flatnonzero(fails[i0:i1])
        if not len(bad):
            continue
        last = i0 + int(bad[-1])
        pop = a.cohort_mask(slo.cohort)
        later = np.flatnonzero(pop[last + 1 :]) if pop is not None else np.arange(len(a) - last - 1)
        nxt = float(a.t[last + 1 + int(later[0])]) if len(later) else hi
        edge = min((float(a.t[last]) + nxt) / 2.0, hi)
        cand = (edge, max((nxt - float(a.t[last])) / 2.0, 0.0))
        if best is None or cand[0] > best[0]:
            best = cand
    return best if best is not None else (hi, hi - lo)


def recovery_times(
    a: SampleArrays,
    injections: Sequence[InjectionWindow],
    steady: SteadyState,
) -> tuple[list[float | None], list[float | None], list[int], list[str]]:
    """MTTR (s, None = not recovered), its precision and whole windows searched, per injection; plus notes."""
    w = float(steady.window)
    if not injections or w <= 0:
        return [None] * len(injections), [None] * len(injections), [0] * len(injections), []
    starts = np.array(sorted({inj.apply_t for inj in injections}), dtype=np.float64)
    ends = np.array([min(inj.search_end for inj in injections if inj.apply_t == s) for s in starts])
    nw = np.maximum(np.floor((ends - starts) / w + _EPS), 0).astype(np.int64)
    woff = np.cumsum(nw) - nw
    total = int(nw.sum())
    idx = np.searchsorted(starts, a.t, side="right") - 1
    safe = np.clip(idx, 0, None)
    j = np.floor((a.t - starts[safe]) / w + _EPS).astype(np.int64) if len(a) else np.zeros(0, dtype=np.int64)
    valid = (idx >= 0) & (j >= 0) & (j < nw[safe])
    gid = np.where(valid, woff[safe] + j, -1)
    healthy, notes = window_health(a, gid, total, steady)
    by_start: dict[float, tuple[float | None, float | None, int]] = {}
    for k, s in enumerate(starts):
        seg = healthy[woff[k] : woff[k] + nw[k]]
        first = first_run(seg, steady.hold)
        if first is None:
            by_start[float(s)] = (None, None, int(nw[k]))
        elif first == 0:
            by_start[float(s)] = (0.0, 0.0, int(nw[k]))
        else:
            edge, plus_minus = recovery_edge(a, steady, float(s) + (first - 1) * w, float(s) + first * w)
            by_start[float(s)] = (round(edge - float(s), 6), round(plus_minus, 6), int(nw[k]))
    mttr = [by_start[inj.apply_t][0] for inj in injections]
    precision = [by_start[inj.apply_t][1] for inj in injections]
    searched = [by_start[inj.apply_t][2] for inj in injections]
    return mttr, precision, searched, notes


def stack_signals(target_events: Sequence[dict[str, Any]]) -> list[tuple[float, str, str]]:
    """(time, label, source) of the stack's own signals (source ``stack``) and of alerts seen firing
    (source ``alert``) that it noticed something, in time order."""
    out: list[tuple[float, str, str]] = []
    for e in target_events:
        if e.get("t") is None:
            continue
        kind, subject = str(e.get("kind")), str(e.get("subject", ""))
        reason = str((e.get("detail") or {}).get("reason", e.get("reason", "")))
        if kind == EventKind.REPLICA_UNREADY and reason in STACK_UNREADY_REASONS:
            out.append((float(e["t"]), f"{subject} readiness check failed ({reason})", "stack"))
        elif kind.startswith("breaker_"):
            out.append((float(e["t"]), f"{kind} {subject}".strip(), "stack"))
        elif kind == EventKind.ALERT_FIRING:
            out.append((float(e["t"]), f"alert {subject} firing", "alert"))
    return sorted(out)


def detection_times(
    a: SampleArrays,
    injections: Sequence[InjectionWindow],
    target_events: Sequence[dict[str, Any]],
) -> list[tuple[float | None, str | None, str | None]]:
    """TTD (s), what showed it and its source (users | stack | alert), per injection; see the module docstring.

    A kind of answer the stack already gave in the baseline (e.g. the hardened stack's fallback for
    low-confidence inputs of a cohort) is its normal behaviour, not a sign it noticed the fault: a
    (cohort, answer class) pair seen before the first apply does not count; nor does a latency the
    baseline already had (see SLOW_FACTOR).
    """
    abnormal = ~a.primary
    slow_above = math.inf
    if len(injections):
        first_apply = min(inj.apply_t for inj in injections)
        base = select(a.t, [(-math.inf, first_apply)]) & ~in_flight(a.t, a.end, [inj.window for inj in injections])
        key = a.cohort.astype(np.int64) * (len(MIX_CLASSES) + 1) + a.mix.astype(np.int64)
        abnormal &= ~np.isin(key, np.unique(key[base & abnormal]))
        lat = a.latency[base]
        lat = lat[~np.isnan(lat)]
        if len(lat):
            slow_above = SLOW_FACTOR * float(lat.max())
    with np.errstate(invalid="ignore"):
        slow = a.latency > slow_above
    signals = stack_signals(target_events)
    sig_t = np.array([t for t, _, _ in signals], dtype=np.float64)
    out: list[tuple[float | None, str | None, str | None]] = []
    for inj in injections:
        best: tuple[float, str, str] | None = None
        seen = in_flight(a.t, a.end, [(inj.apply_t, inj.search_end)]) & (abnormal | slow)
        rows = np.flatnonzero(seen)
        if len(rows):
            observed = np.maximum(a.end[rows], inj.apply_t)
            k = int(np.argmin(observed))
            row = int(rows[k])
            code = int(a.cohort[row])
            cohort = a.cohorts[code] if code >= 0 else "?"
            if abnormal[row]:
                what = f"request answered {MIX_CLASSES[int(a.mix[row])]} (cohort {cohort})"
            else:
                what = f"slow answer {a.latency[row]:.0f} ms, above {slow_above:.0f} ms (cohort {cohort})"
            best = (float(observed[k]), what, "users")
        i = int(np.searchsorted(sig_t, inj.apply_t, side="left"))
        if i < len(signals) and sig_t[i] < inj.search_end and (best is None or sig_t[i] < best[0]):
            best = (float(sig_t[i]), signals[i][1], signals[i][2])
        out.append((None, None, None) if best is None else (round(best[0] - inj.apply_t, 6), best[1], best[2]))
    return out


def detection_by_source(
    a: SampleArrays,
    injections: Sequence[InjectionWindow],
    target_events: Sequence[dict[str, Any]],
) -> list[dict[str, dict[str, Any] | None]]:
    """Per injection, the first sign from each source (users, stack, alert) on its own: ``{source: {ttd_s, what} | None}``.

    ``users`` is :func:`detection_times` without any event; ``stack`` and ``alert`` the first such
    signal in [apply, search end). TTD itself is the earliest of the three.
    """
    users = detection_times(a, injections, [])
    signals = stack_signals(target_events)
    out = []
    for inj, (u_ttd, u_what, _) in zip(injections, users, strict=True):
        row: dict[str, dict[str, Any] | None] = {"users": None if u_ttd is None else {"ttd_s": u_ttd, "what": u_what}}
        for source in ("stack", "alert"):
            first = next(((t, what) for t, what, src in signals if src == source and inj.apply_t <= t < inj.search_end), None)
            row[source] = None if first is None else {"ttd_s": round(first[0] - inj.apply_t, 6), "what": first[1]}
        out.append(row)
    return out


def ready_times(injections: Sequence[InjectionWindow], target_events: Sequence[dict[str, Any]]) -> list[tuple[float | None, str]]:
    """ready_s and a short explanation, per injection."""
    ready: dict[str, list[float]] = {}
    for e in target_events:
        if e.get("kind") == EventKind.REPLICA_READY and e.get("t") is not None:
            ready.setdefault(str(e.get("subject", "")), []).append(float(e["t"]))
    for times in ready.values():
        times.sort()
    out: list[tuple[float | None, str]] = []
    for inj in injections:
        if not inj.targets:
            out.append((None, "no replica targets"))
            continue
        back: list[float] = []
        missing: list[str] = []
        for r in inj.targets:
            # Until this replica is targeted again by a later injection of any fault.
            later = [o.apply_t for o in injections if o.apply_t > inj.apply_t and r in o.targets]
            bound = min(later) if later else math.inf
            times = ready.get(r, [])
            i = int(np.searchsorted(times, inj.apply_t, side="left"))
            if i < len(times) and times[i] < bound:
                back.append(times[i])
            else:
                missing.append(r)
        if missing:
            out.append((None, f"{len(missing)} of {len(inj.targets)} replicas not ready again: {', '.join(missing)}"))
        else:
            out.append((round(max(back) - inj.apply_t, 6), f"{len(back)} replicas ready again"))
    return out


def injection_results(
    a: SampleArrays,
    injections: Sequence[InjectionWindow],
    target_events: Sequence[dict[str, Any]],
    steady: SteadyState,
    load: LoadRange,
    restart_delay: float,
) -> tuple[list[InjectionResult], list[str]]:
    """TTD, MTTR and ready time of every injection, in apply order; plus notes."""
    mttr, precision, searched, notes = recovery_times(a, injections, steady)
    ttd = detection_times(a, injections, target_events)
    ready = ready_times(injections, target_events)
    out = []
    for k, inj in enumerate(injections):
        out.append(
            InjectionResult(
                fault=inj.fault,
                type=inj.type,
                injection=inj.index,
                apply_t=inj.apply_t,
                recover_t=inj.recover_t,
                offset_s=round(inj.apply_t - load.start, 6),
                duration_s=None if inj.recover_t is None else round(inj.recover_t - inj.apply_t, 6),
                apply_ok=inj.apply_ok,
                recover_ok=inj.recover_ok,
                targets=inj.targets,
                ttd_s=ttd[k][0],
                detected_by=ttd[k][1],
                detected_source=ttd[k][2],
                mttr_s=mttr[k],
                recovered=mttr[k] is not None,
                mttr_precision_s=precision[k],
                windows_searched=searched[k],
                mttr_min_s=least_mttr(searched[k], steady) if mttr[k] is None else None,
                ttd_min_s=round(inj.search_end - inj.apply_t, 6) if ttd[k][0] is None else None,
                ready_s=ready[k][0],
                ready_detail=ready[k][1],
                restart_delay_s=float(restart_delay),
            )
        )
    return out, notes


def stats(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, median, min, max of the defined values (None when there are none)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"count": 0, "mean": None, "median": None, "min": None, "max": None}
    return {
        "count": len(vals),
        "mean": statistics.fmean(vals),
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
    }


def aggregate(results: Sequence[InjectionResult], fault_order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Per fault: injections, recovered/detected/ready counts, and stats of ttd/mttr/ready over the defined values."""
    names: list[str] = list(fault_order or [])
    for r in results:
        if r.fault not in names:
            names.append(r.fault)
    out = []
    for name in names:
        rs = [r for r in results if r.fault == name]
        out.append(
            {
                "fault": name,
                "type": rs[0].type if rs else "",
                "injections": len(rs),
                "recovered": sum(r.recovered for r in rs),
                "not_recovered": sum(not r.recovered for r in rs),
                "detected": sum(r.ttd_s is not None for r in rs),
                "with_targets": sum(bool(r.targets) for r in rs),
                "ready": sum(r.ready_s is not None for r in rs),
                "ttd_s": stats([r.ttd_s for r in rs if r.ttd_s is not None]),
                "mttr_s": stats([r.mttr_s for r in rs if r.mttr_s is not None]),
                "ready_s": stats([r.ready_s for r in rs if r.ready_s is not None]),
                "restart_delay_s": rs[0].restart_delay_s if rs else None,
            }
        )
    return out


def aggregate_values(values: Sequence[float], agg: str) -> float:
    """Aggregate injection values with a catalog.AGGREGATES name."""
    if agg == "max":
        return max(values)
    if agg == "min":
        return min(values)
    if agg == "mean":
        return statistics.fmean(values)
    if agg == "median":
        return float(statistics.median(values))
    raise ValueError(f"unknown aggregate {agg!r}")


__all__ = [
    "InjectionResult",
    "aggregate",
    "aggregate_values",
    "detection_times",
    "first_run",
    "injection_results",
    "least_mttr",
    "ready_times",
    "recovery_edge",
    "recovery_times",
    "slo_failures",
    "stack_signals",
    "stats",
    "whole_windows",
    "window_health",
]
