"""How the stack degraded under each fault: what served, how well, how fast it switched and came back; used by analyze.

Per fault (over the requests whose lifetime overlaps its injection windows, ``phases.in_flight``)
and per cohort (plus ``all``), against the baseline phase:

- served-by mix (``slis.MIX_CLASSES`` shares of requests) during the fault vs the baseline;
- accuracy of the answers each path served (primary, fallback, default), in the fault windows and
  over the whole run: is the fallback as good as the primary it replaces?
- rejected ratio and the status codes of the rejections (e.g. ``{"422": 40, "413": 2}``);
- confident-wrong ratio (wrong at confidence >= the experiment's threshold) during vs baseline.

Per injection:

- fallback switch: did the stack switch to its fallback, and when. An answer counts as switched when
  it was served by ``fallback`` or ``default`` and that kind made up less than ``USUAL_SHARE`` of its
  cohort's baseline answers (a usual kind is normal behaviour, as for TTD). A switch is a
  statistically significant rise of the switched share of 2xx answers from the baseline phase to
  the answers in flight during the search range (apply until this injection's recover, or the next
  apply after its own if that is later): a one-sided two-proportion z-test at ``SWITCH_ALPHA`` with
  at least ``SWITCH_MIN_EFFECT`` more switched answers (as a fraction). Otherwise "no switch" (None),
  however many stray fallback answers the window holds. The delay is apply -> the first switched
  answer at or after the change point of that range (the maximum-likelihood split between the
  baseline share and a higher one), so baseline noise before the real edge does not count;
- time back to primary: recover -> the start of the first ``hold`` windows in a row (windows of
  ``steady_state.window`` aligned at recover, until the next apply after recover, or load end) whose primary ratio
  is at least the baseline's minus ``BACK_TOLERANCE``; a window without answers is not back.
  None = not back within the run, never a number. Only injections that switched count in the
  per-fault back/not-back figures: there is no return from a switch that never happened;
- circuit-breaker transitions: counted from ``breaker_*`` target events when the journal has any;
  otherwise the breaker is reported as "not exposed".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from chaosml.analysis.mttr import first_run, stats
from chaosml.analysis.phases import InjectionWindow, LoadRange, in_flight, select
from chaosml.analysis.samples import normalize_samples
from chaosml.analysis.slis import MIX_CLASSES, OK, SampleArrays, to_optional
from chaosml.model.experiment import SteadyState

BACK_TOLERANCE = 0.05  # primary ratio within this many points (as a fraction) of the baseline = back
SWITCH_ALPHA = 0.01  # one-sided significance level of the switch test
SWITCH_MIN_EFFECT = 0.05  # a switch raises the switched share of answers by at least this much (as a fraction)
SWITCH_TEST = "one-sided two-proportion z-test"
USUAL_SHARE = 0.2  # an answer kind with at least this share of a cohort's baseline answers is usual
PATHS: tuple[str, ...] = ("primary", "fallback", "default")
_SERVED_CODE = {"primary": 0, "fallback": 1, "default": 2}
ALL = "all"


def _ratio(num: float, den: float) -> float | None:
    return None if den <= 0 else float(num) / float(den)


class _Stats:
    """Counts over one selection of samples (a mask)."""

    def __init__(self, a: SampleArrays, status: np.ndarray, mask: np.ndarray) -> None:
        outcome, served, quality = a.decode()
        self.requests = int(mask.sum())
        mix = np.bincount(a.mix[mask].astype(np.int64), minlength=len(MIX_CLASSES))
        self.mix = {c: int(mix[i]) for i, c in enumerate(MIX_CLASSES)}
        ok = mask & (outcome == OK)
        predicted = ok & (quality > 0)
        self.predictions = int(predicted.sum())
        self.confident_wrong = int((predicted & (quality == 3)).sum())
        self.path_n: dict[str, int] = {}
        self.path_correct: dict[str, int] = {}
        for p, k in _SERVED_CODE.items():
            sel = predicted & (served == k)
            self.path_n[p] = int(sel.sum())
            self.path_correct[p] = int((sel & (quality == 1)).sum())
        rejected = mask & (a.mix == MIX_CLASSES.index("rejected"))
        self.rejected = int(rejected.sum())
        codes, n = np.unique(status[rejected], return_counts=True)
        self.status_codes = {str(int(c)): int(k) for c, k in zip(codes, n)}

    def mix_share(self) -> dict[str, float | None]:
        return {c: _ratio(n, self.requests) for c, n in self.mix.items()}

    def accuracy(self, path: str) -> float | None:
        return _ratio(self.path_correct[path], self.path_n[path])

    @property
    def primary_ratio(self) -> float | None:
        answers = sum(self.mix[p] for p in PATHS)
        return _ratio(self.mix["primary"], answers)

    @property
    def confident_wrong_ratio(self) -> float | None:
        return _ratio(self.confident_wrong, self.predictions)

    @property
    def rejected_ratio(self) -> float | None:
        return _ratio(self.rejected, self.requests)


def _cohort_block(fault: _Stats, base: _Stats) -> dict[str, Any]:
    return {
        "requests": {"fault": fault.requests, "baseline": base.requests},
        "served_by": {"fault": fault.mix_share(), "baseline": base.mix_share()},
        "served_by_counts": {"fault": fault.mix, "baseline": base.mix},
        "accuracy": {
            "fault": {p: fault.accuracy(p) for p in PATHS},
            "baseline": {p: base.accuracy(p) for p in PATHS},
            "answers": {"fault": dict(fault.path_n), "baseline": dict(base.path_n)},
        },
        "rejected_ratio": {"fault": fault.rejected_ratio, "baseline": base.rejected_ratio},
        "status_codes": {"fault": fault.status_codes, "baseline": base.status_codes},
        "confident_wrong_ratio": {"fault": fault.confident_wrong_ratio, "baseline": base.confident_wrong_ratio},
        "primary_ratio": {"fault": fault.primary_ratio, "baseline": base.primary_ratio},
    }


def _usual_keys(a: SampleArrays, baseline: np.ndarray) -> set[int]:
    """(cohort, mix class) keys that made up >= USUAL_SHARE of that cohort's baseline requests."""
    usual: set[int] = set()
    width = len(MIX_CLASSES) + 1
    cohort = a.cohort[baseline].astype(np.int64)
    mix = a.mix[baseline].astype(np.int64)
    for c in np.unique(cohort):
        m = mix[cohort == c]
        counts = np.bincount(m, minlength=len(MIX_CLASSES))
        for k in np.flatnonzero(counts >= USUAL_SHARE * len(m)):
            usual.add(int(c) * width + int(k))
    return usual


def _load_end(windows: Sequence[InjectionWindow]) -> float:
    return max(w.search_end for w in windows)


def _switch_end(w: InjectionWindow, windows: Sequence[InjectionWindow]) -> float:
    """The switch is searched in this injection's own window, or until the next apply after it starts."""
    later = [o.apply_t for o in windows if o.apply_t > w.apply_t]
    end = w.recover_t if w.recover_t is not None else _load_end(windows)
    return max(end, min(later, default=end))


def _back_end(w: InjectionWindow, windows: Sequence[InjectionWindow]) -> float:
    """Back to primary is searched from recover until the next apply of any fault after it, or load end."""
    assert w.recover_t is not None
    later = [o.apply_t for o in windows if o.apply_t > w.recover_t]
    return min(later, default=_load_end(windows))


def _switched(a: SampleArrays, baseline: np.ndarray) -> np.ndarray:
    """Per sample: a fallback/default answer of a kind that is not usual for its cohort (see the module docstring)."""
    width = len(MIX_CLASSES) + 1
    out = np.isin(a.mix, [MIX_CLASSES.index("fallback"), MIX_CLASSES.index("default")])
    usual = _usual_keys(a, baseline)
    if usual and out.any():
        key = a.cohort.astype(np.int64) * width + a.mix.astype(np.int64)
        out &= ~np.isin(key, list(usual))
    return out


def switch_test(x0: int, n0: int, x1: int, n1: int) -> dict[str, Any]:
    """Is the switched share x1/n1 significantly above the baseline's x0/n0 (SWITCH_TEST, SWITCH_ALPHA, SWITCH_MIN_EFFECT)?"""
    out: dict[str, Any] = {"baseline": [x0, n0], "fault": [x1, n1], "z": None, "p_value": None, "significant": False}
    if n0 <= 0 or n1 <= 0:
        return out
    p0, p1 = x0 / n0, x1 / n1
    pooled = (x0 + x1) / (n0 + n1)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n0 + 1.0 / n1))
    if se == 0.0:
        return out  # no switched answer at all (or nothing else): no change to test
    z = (p1 - p0) / se
    p = 1.0 - NormalDist().cdf(z)
    out.update(z=round(z, 4), p_value=p, significant=bool(p < SWITCH_ALPHA and p1 - p0 >= SWITCH_MIN_EFFECT))
    return out


def change_point(x: np.ndarray, p0: float) -> int:
    """Where a 0/1 sequence steps up from the baseline share ``p0``: the maximum-likelihood split
    ``k`` (Bernoulli(p0) before it, Bernoulli(share after k) from it on); 0 when it is high from the start."""
    n = len(x)
    if not n:
        return 0
    p0 = min(max(p0, 1e-9), 1.0 - 1e-9)
    before = np.concatenate(([0.0], np.cumsum(x)))  # ones before k, k = 0..n
    k = np.arange(n + 1, dtype=np.float64)
    ones_after = before[-1] - before
    rest = n - k
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(rest > 0, ones_after / rest, 0.0)
        ll_after = np.nan_to_num(ones_after * np.log(p1)) + np.nan_to_num((rest - ones_after) * np.log1p(-p1))
    ll = before * math.log(p0) + (k - before) * math.log1p(-p0) + ll_after
    return int(np.argmax(ll))


def _fallback_delays(
    a: SampleArrays, windows: Sequence[InjectionWindow], baseline: np.ndarray
) -> list[tuple[float | None, str | None, dict[str, Any]]]:
    switched = _switched(a, baseline)
    answered = np.isin(a.mix, [MIX_CLASSES.index(p) for p in PATHS])
    x0, n0 = int((switched & baseline).sum()), int((answered & baseline).sum())
    out: list[tuple[float | None, str | None, dict[str, Any]]] = []
    for w in windows:
        rng = np.flatnonzero(in_flight(a.t, a.end, [(w.apply_t, _switch_end(w, windows))]) & answered)
        x = switched[rng].astype(np.float64)
        test = switch_test(x0, n0, int(x.sum()), len(rng))
        if not test["significant"]:
            out.append((None, None, test))
            continue
        k = change_point(x, (x0 + 0.5) / (n0 + 1.0))  # the baseline share, never exactly 0 or 1
        hits = np.flatnonzero(x[k:] > 0)
        row = rng[k + int(hits[0])]
        code = int(a.cohort[row])
        cohort = a.cohorts[code] if code >= 0 else "?"
        delay = round(max(float(a.t[row]), w.apply_t) - w.apply_t, 6)
        out.append((delay, f"{MIX_CLASSES[int(a.mix[row])]} (cohort {cohort})", test))
    return out


def _back_to_primary(
    a: SampleArrays, windows: Sequence[InjectionWindow], base_primary: float | None, steady: SteadyState
) -> list[tuple[float | None, int]]:
    """(seconds from recover to the first healthy run, windows searched) per injection."""
    w = float(steady.window)
    out: list[tuple[float | None, int]] = []
    answered = np.isin(a.mix, [MIX_CLASSES.index(p) for p in PATHS])
    for inj in windows:
        if inj.recover_t is None or base_primary is None or w <= 0:
            out.append((None, 0))
            continue
        nw = max(0, int(np.floor((_back_end(inj, windows) - inj.recover_t) / w + 1e-9)))
        if nw == 0:
            out.append((None, 0))
            continue
        lo = int(np.searchsorted(a.t, inj.recover_t, side="left"))
        hi = int(np.searchsorted(a.t, inj.recover_t + nw * w, side="left"))
        t = a.t[lo:hi]
        j = np.minimum(np.floor((t - inj.recover_t) / w + 1e-9).astype(np.int64), nw - 1)
        ans = answered[lo:hi]
        prim = a.primary[lo:hi]
        n_ans = np.bincount(j[ans], minlength=nw)[:nw]
        n_prim = np.bincount(j[prim], minlength=nw)[:nw]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = n_prim / n_ans
        healthy = (n_ans > 0) & (ratio >= base_primary - BACK_TOLERANCE - 1e-12)
        first = first_run(healthy, steady.hold)
        out.append((None if first is None else round(first * w, 6), nw))
    return out


def _breaker_events(target_events: Sequence[dict[str, Any]]) -> list[tuple[float, str]]:
    return sorted(
        (float(e["t"]), str(e.get("kind")))
        for e in target_events
        if e.get("t") is not None and "breaker" in str(e.get("kind", ""))
    )


def degradation(
    samples: pd.DataFrame,
    a: SampleArrays,
    windows: Sequence[InjectionWindow],
    load: LoadRange,
    steady: SteadyState,
    target_events: Sequence[dict[str, Any]] = (),
    fault_order: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON-safe degradation summary (see the module docstring); ``a`` is ``samples`` as arrays."""
    status = normalize_samples(samples)["status"].to_numpy().astype(np.int64)
    if len(status) != len(a):
        raise ValueError("samples and sample arrays differ in length")
    first_apply = min((w.apply_t for w in windows), default=load.end_open)
    fault_windows = [w.window for w in windows]
    baseline = select(a.t, [(load.start, first_apply)]) & ~in_flight(a.t, a.end, fault_windows)
    breaker = _breaker_events(target_events)
    names: list[str] = list(fault_order)
    for w in windows:
        if w.fault not in names:
            names.append(w.fault)
    base_all = _Stats(a, status, baseline)
    # noise floor of the switch delay: how often the baseline already gave a switched answer that counts
    counted = int((_switched(a, baseline) & baseline).sum())
    base_span = max(0.0, min(first_apply, load.end) - load.start)
    switch_interval = round(base_span / counted, 6) if counted else None
    delays = _fallback_delays(a, windows, baseline)
    back = _back_to_primary(a, windows, base_all.primary_ratio, steady)
    everything = np.ones(len(a), dtype=bool)
    overall = _Stats(a, status, everything)
    faults_out: list[dict[str, Any]] = []
    for name in names:
        ks = [k for k, w in enumerate(windows) if w.fault == name]
        if not ks:
            faults_out.append({"fault": name, "type": "", "injections": 0, "cohorts": {}, "per_injection": []})
            continue
        mask = in_flight(a.t, a.end, [windows[k].window for k in ks]) & (a.t <= load.end)
        cohorts: dict[str, Any] = {ALL: _cohort_block(_Stats(a, status, mask), base_all)}
        for code, cname in enumerate(a.cohorts):
            cm = a.cohort == code
            if not (mask & cm).any():
                continue
            cohorts[cname] = _cohort_block(_Stats(a, status, mask & cm), _Stats(a, status, baseline & cm))
        per_injection = []
        for k in ks:
            w = windows[k]
            if breaker:
                end = _back_end(w, windows) if w.recover_t is not None else _load_end(windows)
                transitions: int | str = sum(1 for t, _ in breaker if w.apply_t <= t < end)
            else:
                transitions = "not exposed"
            per_injection.append(
                {
                    "injection": w.index,
                    "apply_t": w.apply_t,
                    "recover_t": w.recover_t,
                    "fallback_delay_s": delays[k][0],
                    "fallback_first": delays[k][1],
                    "switched": delays[k][0] is not None,
                    "switch_test": delays[k][2],
                    "back_to_primary_s": back[k][0],
                    "back": back[k][0] is not None,
                    "windows_searched": back[k][1],
                    "breaker_transitions": transitions,
                }
            )
        fstats = _Stats(a, status, mask)
        sw = [k for k in ks if delays[k][0] is not None]  # only a switch can come back
        faults_out.append(
            {
                "fault": name,
                "type": windows[ks[0]].type,
                "injections": len(ks),
                "cohorts": cohorts,
                "accuracy_by_path": {
                    "fault": {p: fstats.accuracy(p) for p in PATHS},
                    "overall": {p: overall.accuracy(p) for p in PATHS},
                    "answers": {"fault": dict(fstats.path_n), "overall": dict(overall.path_n)},
                },
                "per_injection": per_injection,
                "fallback_delay_s": stats([d for k in sw if (d := delays[k][0]) is not None]),
                "switched": sum(delays[k][0] is not None for k in ks),
                "back_to_primary_s": stats([b for k in sw if (b := back[k][0]) is not None]),
                "back": sum(back[k][0] is not None for k in sw),
                "not_back": sum(back[k][0] is None for k in sw),
            }
        )
    return {
        "back_tolerance": BACK_TOLERANCE,
        "usual_share": USUAL_SHARE,
        "switch_rule": {"test": SWITCH_TEST, "alpha": SWITCH_ALPHA, "min_effect": SWITCH_MIN_EFFECT},
        "hold": int(steady.hold),
        "window_s": float(steady.window),
        "baseline_switch_interval_s": switch_interval,
        "baseline_primary_ratio": to_optional(base_all.primary_ratio) if base_all.primary_ratio is not None else None,
        "breaker": "exposed" if breaker else "not exposed",
        "faults": faults_out,
    }


__all__ = ["BACK_TOLERANCE", "SWITCH_ALPHA", "SWITCH_MIN_EFFECT", "USUAL_SHARE", "change_point", "degradation", "switch_test"]
