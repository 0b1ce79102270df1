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
from chaosml.analysis.delivery import SHORTFALL_MARGIN, delivery, short_load_verdicts, stage_delivery
from chaosml.analysis.drift import drift_quality, drift_switches, undrifted
from chaosml.analysis.inputs import SERVED_BY_SLIS, unmeasured_slis
from chaosml.analysis.monitoring import monitoring_result
from chaosml.analysis.mttr import InjectionResult, aggregate, detection_by_source, injection_results
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
    without_effect,
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
    versions: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)  # model_version -> "all" | cohort -> SLIs

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
            **({"model_versions": self.versions} if self.versions else {}),  # only when the answers name their model version
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
    unmeasured: dict[str, str] = field(default_factory=dict)  # SLI -> why it has no input in this run
    load_delivery: list[dict[str, Any]] = field(default_factory=list)  # requested vs achieved requests per phase
    load_stages: list[dict[str, Any]] = field(default_factory=list)  # ... per stage of load.shape (empty without one)
    replacements: list[dict[str, Any]] = field(default_factory=list)  # kubernetes: per killed pod, its MTTR breakdown
    container_recoveries: list[dict[str, Any]] = field(default_factory=list)  # kubernetes: per container killed/paused in place
    no_effect: dict[str, str] = field(default_factory=dict)  # fault name -> why some injection of it took no effect
    drift: list[dict[str, Any]] = field(default_factory=list)  # quality per drift-magnitude bin (analysis/drift.py)
    drift_switches: list[dict[str, Any]] = field(default_factory=list)  # per drift injection: the magnitude the stack switched at
    monitoring: dict[str, Any] = field(default_factory=dict)  # experiments with monitoring: (see monitoring_result)

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
            **({"no_effect": dict(self.no_effect)} if self.no_effect else {}),
            "counts": counts(self.verdicts),
            "verdicts": [{"name": v.name, "scope": v.scope, "verdict": v.verdict, "measured": v.measured} for v in self.verdicts],
            "faults": [
                {k: f[k] for k in ("fault", "injections", "recovered", "not_recovered")} | {"mttr_s_max": f["mttr_s"]["max"]}
                for f in self.faults
            ],
            "load_delivery": [
                {k: d[k] for k in ("phase", "requested_rps", "achieved_rps", "short")} for d in self.load_delivery
            ],
            **({"load_stages": [{k: d[k] for k in ("phase", "requested_rps", "achieved_rps", "short")} for d in self.load_stages]}
               if self.load_stages else {}),
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
            **({"container_recoveries": self.container_recoveries} if self.container_recoveries else {}),  # container faults only
            **({"no_effect": dict(self.no_effect)} if self.no_effect else {}),  # only a run with a fault that did nothing
            "unmeasured": dict(self.unmeasured),
            "load_delivery": list(self.load_delivery),
            "load_stages": list(self.load_stages),
            **({} if self.served_by_exposed else {"served_by_exposed": False}),  # only a stack that hides it
            **({"drift": list(self.drift), "drift_switches": list(self.drift_switches)} if self.drift else {}),  # only with drift
            **({"monitoring": self.monitoring} if self.monitoring else {}),  # only an experiment with monitoring:
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
    monitoring: dict[str, Any] = {}
    if experiment.monitoring is not None:
        mv, monitoring = monitoring_result(experiment, journal, windows, phases, load)
        verdicts += mv
        monitoring["by_source"] = [
            {"fault": w.fault, "injection": w.index, **row}
            for w, row in zip(windows, detection_by_source(a, windows, journal.get("target_events") or []), strict=True)
        ]
    deliveries = delivery(experiment.load, a, phases, load)
    verdicts = short_load_verdicts(verdicts, deliveries)
    stages = stage_delivery(experiment.load, a, load)
    short = [d for d in deliveries if d.short]
    short_stages = [d for d in stages if d.short]
    if short_stages:
        notes.append("LOAD SHAPE NOT DELIVERED: " + "; ".join(f"{d.phase} {d.achieved_rps:.1f} of {d.requested_rps:.1f} req/s"
                                                              for d in short_stages)
                     + f" (short by more than {100 * SHORTFALL_MARGIN:.0f}%)")
    if short:
        notes.append(
            "LOAD NOT DELIVERED: " + "; ".join(f"{d.phase} {d.achieved_rps:.1f} of {d.requested_rps:.1f} req/s" for d in short)
            + f" (short by more than {100 * SHORTFALL_MARGIN:.0f}%): their sample verdicts are inconclusive"
        )
    if load.end_known is False:
        notes.append("the journal has no load end: analysed up to the last sample or event")
    never = [f.name for f in experiment.faults if f.name not in phases]
    if never:
        notes.append("never applied: " + ", ".join(never))
    target = journal.get("target") or {}
    exposed = bool(target.get("served_by_exposed", True))
    unmeasured = unmeasured_slis(experiment, samples, exposed)
    verdicts = [_unmeasured_verdict(v, unmeasured[v.sli]) if v.sli in unmeasured else v for v in verdicts]
    for pr in phase_results:
        _hide(pr.slis, unmeasured)
        for c in (*pr.cohorts.values(), *(s for v in pr.versions.values() for s in v.values())):
            _hide(c, unmeasured)
    if not exposed:
        notes.append(NOT_EXPOSED_NOTE)
    no_effect = {**no_effect_reasons(journal), **undrifted(samples, windows)}
    if no_effect:
        verdicts = without_effect(verdicts, no_effect)
        notes.extend(f"NO EFFECT: fault {f}: {why}; every verdict scoped to it is inconclusive and the run cannot pass"
                     for f, why in no_effect.items())
    notes.extend(f"{sli} is not measured: {why}" for sli, why in unmeasured.items() if sli not in SERVED_BY_SLIS)
    series = timeseries(a, load, steady.window)
    for sli in unmeasured:
        if sli in series:
            series[sli] = [None] * len(series[sli])
    deg = degradation(
        samples, a, windows, load, steady, journal.get("target_events") or [], [f.name for f in experiment.faults]
    ) if exposed else {}
    _hide_degradation(deg, unmeasured)
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
        passed=passed(verdicts) and not no_effect,
        timeseries=series,
        events=_events(journal, load),
        notes=notes,
        degradation=deg,
        served_by_exposed=exposed,
        unmeasured=unmeasured,
        replacements=replacements(results, journal.get("target_events") or []),
        container_recoveries=container_recoveries(results, journal.get("target_events") or []),
        no_effect=no_effect,
        load_delivery=[d.to_dict() for d in deliveries],
        drift=_hide_rows(drift_quality(samples, a), unmeasured),
        drift_switches=drift_switches(list(experiment.faults), deg),
        monitoring=monitoring,
        load_stages=[d.to_dict() for d in stages],
    )


def no_effect_reasons(journal: dict[str, Any]) -> dict[str, str]:
    """Fault name -> which of its injections took no effect and why (from the apply events' ``no_effect``)."""
    by_fault: dict[str, dict[str, list[int]]] = {}
    for e in journal.get("fault_events") or []:
        if e.get("action") == "apply" and e.get("no_effect"):
            why = by_fault.setdefault(str(e.get("fault")), {})
            why.setdefault(str(e["no_effect"]), []).append(int(e.get("injection") or 0) + 1)
    return {
        fault: "; ".join(f"{'injection' if len(ns) == 1 else 'injections'} {', '.join(f'#{i}' for i in sorted(ns))} {why}"
                         for why, ns in reasons.items())
        for fault, reasons in by_fault.items()
    }


def replacements(results: list[InjectionResult], target_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kubernetes target's ``pod_replaced`` breakdowns (deletion seen, replacement created,
    scheduled, Ready; seconds after the deletion), each tied to the injection that killed the pod."""
    return _tied(results, target_events, EventKind.POD_REPLACED, "deleted_t")


def container_recoveries(results: list[InjectionResult], target_events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The kubernetes target's ``container_recovered`` breakdowns (readiness lost, restarted in the same pod, Ready;
    seconds after chaosml killed or paused the container), each tied to its injection."""
    return _tied(results, target_events, EventKind.CONTAINER_RECOVERED, "applied_t")


def _tied(results: list[InjectionResult], target_events: list[dict[str, Any]], kind: str, t_key: str) -> list[dict[str, Any]]:
    """The details of the ``kind`` events (about a pod, which the fault hit at ``detail[t_key]``), each with the
    injection that hit it and that injection's SLO-based MTTR."""
    out = []
    for e in target_events:
        if e.get("kind") != kind:
            continue
        d = dict(e.get("detail") or {})
        pod, hit_t = d.get("victim", e.get("subject")), d.get(t_key)
        owner = None
        for r in results:  # the latest injection at or before the fault's time that targeted this pod
            if pod in r.targets and hit_t is not None and r.apply_t <= hit_t + 1e-6:
                owner = r
        d["injection"] = None if owner is None else f"{owner.fault} #{owner.injection + 1}"
        d["slo_mttr_s"] = None if owner is None else owner.mttr_s
        out.append(d)
    return out


NOT_EXPOSED_NOTE = (
    "This stack does not expose which path served an answer (response.served_by: not-exposed): "
    "primary/fallback/default ratios are reported as not exposed, never guessed; success, errors, "
    "latency, accuracy and confident-wrong answers are measured as usual."
)


def _hide(slis: dict[str, float | None], unmeasured: dict[str, str]) -> None:
    for k in unmeasured:
        if k in slis:
            slis[k] = None


def _hide_rows(rows: list[dict[str, Any]], unmeasured: dict[str, str]) -> list[dict[str, Any]]:
    for r in rows:
        _hide(r, unmeasured)
    return rows


def _hide_degradation(deg: dict[str, Any], unmeasured: dict[str, str]) -> None:
    """Unmeasured quality figures of the degradation summary become None (shown as not measured)."""
    for f in deg.get("faults") or []:
        for block in (f.get("cohorts") or {}).values():
            if "confident_wrong_ratio" in unmeasured:
                block["confident_wrong_ratio"] = {"fault": None, "baseline": None}
            if "accuracy" in unmeasured:
                acc = block["accuracy"]
                acc["fault"] = dict.fromkeys(acc["fault"])
                acc["baseline"] = dict.fromkeys(acc["baseline"])
        if "accuracy" in unmeasured and "accuracy_by_path" in f:
            f["accuracy_by_path"]["fault"] = dict.fromkeys(f["accuracy_by_path"]["fault"])
            f["accuracy_by_path"]["overall"] = dict.fromkeys(f["accuracy_by_path"]["overall"])


def _unmeasured_verdict(v: Verdict, why: str) -> Verdict:
    detail = why if v.sli not in SERVED_BY_SLIS else f"{v.sli} is not exposed by this stack (response.served_by: not-exposed); not measured"
    return dataclasses.replace(v, measured=None, samples=0, verdict="inconclusive", detail=f"not measured: {detail}")


def _phase_result(a: SampleArrays, phase: Phase, load: LoadRange) -> PhaseResult:
    mask = a.in_phase(phase)
    duration = phase.duration
    overall = slis_of(a, mask, duration)
    cohorts: dict[str, dict[str, float | None]] = {}
    if a.cohorts:
        gid = np.where(mask, a.cohort, -1)
        grouped = grouped_slis(a, gid, len(a.cohorts), duration)
        cohorts = {name: row(grouped, i) for i, name in enumerate(a.cohorts)}
    offsets = [(round(s - load.start, 6), round(min(e, load.end) - load.start, 6)) for s, e in phase.intervals]
    return PhaseResult(phase=phase, offsets=offsets, slis=overall, cohorts=cohorts, mix=mix_counts(a, mask),
                       versions=_version_slis(a, mask, duration))


def _version_slis(a: SampleArrays, mask: np.ndarray, duration: float) -> dict[str, dict[str, dict[str, float | None]]]:
    """Model version -> {"all": its SLIs, <cohort>: its SLIs on that cohort}, over the answers it gave in the phase."""
    nv, nc = len(a.versions), len(a.cohorts) + 1  # cohort code -1 (none) -> group 0
    if not nv:
        return {}
    selected = mask & (a.version >= 0)
    every = grouped_slis(a, np.where(selected, a.version, -1), nv, duration)
    by_cohort = grouped_slis(a, np.where(selected, a.version * nc + a.cohort + 1, -1), nv * nc, duration)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for v, name in enumerate(a.versions):
        if not every["requests"][v]:
            continue
        out[name] = {"all": row(every, v)}
        for c, cohort in enumerate(a.cohorts):
            if by_cohort["requests"][v * nc + c + 1]:
                out[name][cohort] = row(by_cohort, v * nc + c + 1)
    return out


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
