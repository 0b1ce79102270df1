"""analyze(experiment, journal, samples) -> Analysis: phases, SLIs, TTD/MTTR/ready, verdicts, time series.

A pure function of the experiment model, the journal dict and the samples frame (as read by
``read_samples``); the runner, ``chaosml report`` and ``compare`` call it. ``Analysis.to_dict()``
is JSON-safe (no NaN: undefined values are None) and is what the report renders.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from chaosml.analysis.degradation import degradation
from chaosml.analysis.mttr import InjectionResult, aggregate, injection_results
from chaosml.analysis.phases import (
    InjectionWindow,
    LoadRange,
    Phase,
    build_phases,
    injection_windows,
    load_range,
)
from chaosml.analysis.slis import (
    MIX_CLASSES,
    SampleArrays,
    grouped_slis,
    mix_counts,
    row,
    slis_of,
    to_optional,
)
from chaosml.analysis.verdicts import (
    Verdict,
    counts,
    hypothesis_verdicts,
    passed,
    slo_verdicts,
)
from chaosml.model.experiment import Experiment
from chaosml.records import EventKind

ANALYSIS_SCHEMA = "chaosml.analysis/1"

#: Most windows a time series holds; longer runs get wider plot windows (recovery uses its own).
MAX_SERIES_WINDOWS = 5000

SERIES_SLIS: tuple[str, ...] = (
    "success_ratio",
    "error_ratio",
    "fallback_ratio",
    "accuracy",
    "confident_wrong_ratio",
    "latency_p50_ms",
    "latency_p99_ms",
)


@dataclass(slots=True)
class PhaseResult:
    """SLIs of one phase, overall and per cohort, with its served-by mix."""

    phase: Phase
    offsets: list[tuple[float, float]]
    slis: dict[str, float | None]
    cohorts: dict[str, dict[str, float | None]]
    mix: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.phase.name,
            "kind": self.phase.kind,
            "intervals": [[s, e] for s, e in self.phase.intervals],
            "offsets": [[s, e] for s, e in self.offsets],
            "duration_s": self.phase.duration,
            "slis": self.slis,
            "cohorts": self.cohorts,
            "served_by": self.mix,
        }


@dataclass(slots=True)
class Analysis:
    """Everything the report shows about one run."""

    run_id: str
    status: str
    reason: str | None
    title: str
    release: str
    profile: str
    platform: str
    load: LoadRange
    window_s: float
    hold: int
    confidence_threshold: float
    restart_delay_s: float
    cohorts: list[str]
    phases: list[PhaseResult]
    injections: list[InjectionResult]
    faults: list[dict[str, Any]]
    verdicts: list[Verdict]
    passed: bool
    timeseries: dict[str, Any]
    events: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    degradation: dict[str, Any] = field(default_factory=dict)
    served_by_exposed: bool = True  # False: the stack does not say which path served (response.served_by: not-exposed)
    replacements: list[dict[str, Any]] = field(default_factory=list)  # kubernetes: per killed pod, its MTTR breakdown

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "aborted", "failed")

    def phase(self, name: str) -> PhaseResult | None:
        for p in self.phases:
            if p.phase.name == name:
                return p
        return None

    def summary(self) -> dict[str, Any]:
        """The few facts the runner copies into journal["analysis"]."""
        return {
            "passed": self.passed,
            "counts": counts(self.verdicts),
            "verdicts": [{"name": v.name, "scope": v.scope, "verdict": v.verdict, "measured": v.measured} for v in self.verdicts],
            "faults": [
                {k: f[k] for k in ("fault", "injections", "recovered", "not_recovered")} | {"mttr_s_max": f["mttr_s"]["max"]}
                for f in self.faults
            ],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: what analysis.json holds and the report renders."""
        return {
            "schema": ANALYSIS_SCHEMA,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "title": self.title,
            "release": self.release,
            "profile": self.profile,
            "platform": self.platform,
            "load": {
                "started_at": self.load.start,
                "ended_at": self.load.end if self.load.end_known else None,
                "last_seen_at": self.load.end,
                "duration_s": self.load.duration,
            },
            "window_s": self.window_s,
            "hold": self.hold,
            "confidence_threshold": self.confidence_threshold,
            "restart_delay_s": self.restart_delay_s,
            "cohorts": list(self.cohorts),
            "phases": [p.to_dict() for p in self.phases],
            "injections": [r.to_dict() for r in self.injections],
            "faults": self.faults,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "counts": counts(self.verdicts),
            "passed": self.passed,
            "summary": self.summary(),
            "timeseries": self.timeseries,
            "events": self.events,
            "notes": list(self.notes),
            "degradation": self.degradation,
            "replacements": self.replacements,
            **({} if self.served_by_exposed else {"served_by_exposed": False}),  # only a stack that hides it
        }


def _cut_short(journal: dict[str, Any], windows: Sequence[InjectionWindow], load: LoadRange) -> dict[tuple[str, int], str]:
    """Injections whose observation the end of an unfinished run ended (no later apply did): (fault, index) -> why."""
    status = str(journal.get("status", "unknown"))
    if status == "completed":
        return {}
    why = f"the run ended ({status}) before recovery could be observed"
    return {(w.fault, w.index): why for w in windows if w.search_end >= load.end}


def analyze(experiment: Experiment, journal: dict[str, Any], samples: pd.DataFrame) -> Analysis:
    """Analyse one run: phases from the actual fault events, SLIs, TTD/MTTR/ready, verdicts."""
    steady = experiment.steady_state
    a = SampleArrays.from_frame(samples, steady.confidence_threshold)
    load = load_range(journal, a.t)
    types = {f.name: f.type for f in experiment.faults}
    windows = injection_windows(journal, load, types)
    results, notes = injection_results(
        a, windows, journal.get("target_events") or [], steady, load, experiment.target.restart_delay
    )
    phases = build_phases(load, windows, [r.recovered_at for r in results])
    phase_results = [_phase_result(a, p, load) for p in phases.values()]
    verdicts = slo_verdicts(experiment, a, phases) + hypothesis_verdicts(experiment, a, phases, results,
                                                                         _cut_short(journal, windows, load))
    if load.end_known is False:
        notes.append("the journal has no load end: analysed up to the last sample or event")
    never = [f.name for f in experiment.faults if f.name not in phases]
    if never:
        notes.append("never applied: " + ", ".join(never))
    target = journal.get("target") or {}
    exposed = bool(target.get("served_by_exposed", True))
    if not exposed:
        verdicts = [_not_exposed_verdict(v) if v.sli in SERVED_BY_SLIS else v for v in verdicts]
        for pr in phase_results:
            _hide_served_by(pr.slis)
            for c in pr.cohorts.values():
                _hide_served_by(c)
        notes.append(NOT_EXPOSED_NOTE)
    series = timeseries(a, load, steady.window)
    if not exposed:
        series["fallback_ratio"] = [None] * len(series["fallback_ratio"])
    return Analysis(
        run_id=str(journal.get("run_id", "")),
        status=str(journal.get("status", "unknown")),
        reason=journal.get("reason"),
        title=experiment.title,
        release=experiment.release,
        profile=str(target.get("profile", experiment.target.profile)),
        platform=str(target.get("platform", experiment.target.platform)),
        load=load,
        window_s=float(steady.window),
        hold=int(steady.hold),
        confidence_threshold=float(steady.confidence_threshold),
        restart_delay_s=float(experiment.target.restart_delay),
        cohorts=list(a.cohorts),
        phases=phase_results,
        injections=results,
        faults=aggregate(results, [f.name for f in experiment.faults]),
        verdicts=verdicts,
        passed=passed(verdicts),
        timeseries=series,
        events=_events(journal, load),
        notes=notes,
        degradation=degradation(
            samples, a, windows, load, steady, journal.get("target_events") or [], [f.name for f in experiment.faults]
        ) if exposed else {},
        served_by_exposed=exposed,
        replacements=replacements(results, journal.get("target_events") or []),
    )


def replacements(results: list[InjectionResult], target_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kubernetes target's ``pod_replaced`` breakdowns (deletion seen, replacement created,
    scheduled, Ready; seconds after the deletion), each tied to the injection that killed the pod."""
    out = []
    for e in target_events:
        if e.get("kind") != EventKind.POD_REPLACED:
            continue
        d = dict(e.get("detail") or {})
        victim, deleted = d.get("victim"), d.get("deleted_t")
        owner = None
        for r in results:  # the latest injection at or before the deletion that targeted this pod
            if victim in r.targets and deleted is not None and r.apply_t <= deleted + 1e-6:
                owner = r
        d["injection"] = None if owner is None else f"{owner.fault} #{owner.injection + 1}"
        d["slo_mttr_s"] = None if owner is None else owner.mttr_s
        out.append(d)
    return out


#: SLIs that need the stack to say which path served each answer.
SERVED_BY_SLIS: frozenset[str] = frozenset({"primary_ratio", "fallback_ratio", "default_ratio"})
NOT_EXPOSED_NOTE = (
    "This stack does not expose which path served an answer (response.served_by: not-exposed): "
    "primary/fallback/default ratios are reported as not exposed, never guessed; success, errors, "
    "latency, accuracy and confident-wrong answers are measured as usual."
)


def _hide_served_by(slis: dict[str, float | None]) -> None:
    for k in SERVED_BY_SLIS:
        if k in slis:
            slis[k] = None


def _not_exposed_verdict(v: Verdict) -> Verdict:
    return dataclasses.replace(
        v, measured=None, samples=0, verdict="inconclusive",
        detail=f"{v.sli} is not exposed by this stack (response.served_by: not-exposed); not measured",
    )


def _phase_result(a: SampleArrays, phase: Phase, load: LoadRange) -> PhaseResult:
    mask = phase.select(a.t)
    duration = phase.duration
    overall = slis_of(a, mask, duration)
    cohorts: dict[str, dict[str, float | None]] = {}
    if a.cohorts:
        gid = np.where(mask, a.cohort, -1)
        grouped = grouped_slis(a, gid, len(a.cohorts), duration)
        cohorts = {name: row(grouped, i) for i, name in enumerate(a.cohorts)}
    offsets = [(round(s - load.start, 6), round(min(e, load.end) - load.start, 6)) for s, e in phase.intervals]
    return PhaseResult(phase=phase, offsets=offsets, slis=overall, cohorts=cohorts, mix=mix_counts(a, mask))


def timeseries(a: SampleArrays, load: LoadRange, window: float) -> dict[str, Any]:
    """Per-window SLIs and served-by mix, windows aligned at load start (columnar, JSON-safe)."""
    duration = load.duration
    w = float(window) if window > 0 else 1.0
    if duration / w > MAX_SERIES_WINDOWS:
        w = duration / MAX_SERIES_WINDOWS
    nwin = max(1, math.ceil(duration / w - 1e-9))
    j = np.floor((a.t - load.start) / w + 1e-9).astype(np.int64) if len(a) else np.zeros(0, dtype=np.int64)
    inside = (a.t >= load.start) & (a.t <= load.end)
    gid = np.where(inside, np.minimum(j, nwin - 1), -1)
    g = grouped_slis(a, gid, nwin, w)
    keep = gid >= 0
    mix = np.bincount(gid[keep] * len(MIX_CLASSES) + a.mix[keep].astype(np.int64), minlength=nwin * len(MIX_CLASSES))
    mix = mix[: nwin * len(MIX_CLASSES)].reshape(nwin, len(MIX_CLASSES))
    out: dict[str, Any] = {
        "window_s": w,
        "t": [round(i * w, 9) for i in range(nwin)],
        "requests": [int(x) for x in g["requests"]],
    }
    for name in SERIES_SLIS:
        out[name] = [to_optional(x) for x in g[name]]
    out["mix"] = {name: mix[:, i].astype(int).tolist() for i, name in enumerate(MIX_CLASSES)}
    return out


def _events(journal: dict[str, Any], load: LoadRange) -> list[dict[str, Any]]:
    """Fault and target events in time order, with offsets from load start."""
    out: list[dict[str, Any]] = []
    for e in journal.get("fault_events") or []:
        if e.get("t") is None:
            continue
        out.append(
            {
                "t": float(e["t"]),
                "offset_s": round(float(e["t"]) - load.start, 6),
                "source": "fault",
                "what": f"{e.get('action')} {e.get('fault')} #{int(e.get('injection') or 0) + 1}",
                "ok": bool(e.get("ok", True)),
                "subjects": [str(x) for x in e.get("targets") or []],
            }
        )
    for e in journal.get("target_events") or []:
        if e.get("t") is None:
            continue
        out.append(
            {
                "t": float(e["t"]),
                "offset_s": round(float(e["t"]) - load.start, 6),
                "source": "target",
                "what": str(e.get("kind")),
                "ok": True,
                "subjects": [str(e.get("subject", ""))],
            }
        )
    out.sort(key=lambda d: d["t"])
    return out


__all__ = ["ANALYSIS_SCHEMA", "Analysis", "PhaseResult", "analyze", "timeseries"]
