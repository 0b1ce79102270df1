"""Monitoring SLIs and alert detection, pure functions of the journal and its stored Prometheus data; used by analyze.

Inputs: ``journal["prometheus"]`` (prometheus.json, written by the runner after the load: per query
its PromQL, step, range and the raw matrix, plus how the alert poller fared) and the journal's
``alert_firing`` / ``alert_resolved`` target events (the runner polled ``/api/v1/alerts`` every
``monitoring.poll_interval`` during the run, so a firing time is late by at most one poll interval).

Definitions:

- ``prom:NAME`` over a phase or fault = the mean of the query's points (one per step = steady_state
  window) whose evaluation time falls in the phase's intervals; ``samples`` = that number of
  points. No series, no point in the phase, a query error or more than one series (aggregate with
  sum/max) -> INCONCLUSIVE naming the query, never 0.
- Per injection and expected alert (``monitoring.alerts``): fired = an episode of that alertname
  started firing in [apply, recover + grace]; time_to_alert_s = that start - apply; time_to_resolve_s
  = its resolve - recover (negative: it cleared while the fault was still applied; None: still
  firing when the run ended). An episode already firing at apply is not a detection of this
  injection ("already firing"): its verdicts are inconclusive. Never fired -> missed; but when the
  alerts were last read before recover + grace ("not observed": the run ended first), the
  verdicts are inconclusive: the alert might have fired later.
- ``alert_ttd_s`` per injection = the earliest time_to_alert_s over the fault's expected alerts;
  ``missed_alerts`` per injection = the number of them that never fired.
- ``false_alarms`` = alert episodes (any alertname) that started firing within the load but outside
  every [apply, recover + grace], or were already firing when the load started (before any fault).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np

from chaosml.analysis.mttr import aggregate_values
from chaosml.analysis.phases import InjectionWindow, LoadRange, Phase
from chaosml.analysis.verdicts import Verdict, _scope, judge
from chaosml.model.catalog import ALERT_INJECTION_SLIS, ALERT_RUN_SLIS, PROM_SLI_PREFIX, is_prom_sli
from chaosml.model.experiment import Experiment, MonitoringSpec
from chaosml.records import EventKind

#: A poller that failed more than this share of its polls leaves alert verdicts inconclusive.
MAX_POLL_FAILURE_SHARE = 0.2


@dataclass(frozen=True, slots=True)
class AlertEpisode:
    """One alert (name and labels) firing from ``start`` until ``end`` (None: still firing at the end)."""

    name: str
    labels: str  # its labels, sorted, as one string: tells episodes of the same alertname apart
    start: float
    end: float | None
    active_at: float | None  # when its expression first held (pending), as Prometheus says


@dataclass(frozen=True, slots=True)
class AlertDetection:
    """One expected alert in one injection."""

    fault: str
    injection: int
    alert: str
    status: str  # fired | missed | already firing | not observed
    fired_at: float | None
    time_to_alert_s: float | None
    time_to_resolve_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alert_episodes(target_events: Sequence[Mapping[str, Any]]) -> list[AlertEpisode]:
    """Firing episodes from the journal's alert events, in start order."""
    open_: dict[tuple[str, str], tuple[float, float | None]] = {}
    out: list[AlertEpisode] = []
    for e in sorted((e for e in target_events if e.get("t") is not None), key=lambda e: float(e["t"])):
        kind = e.get("kind")
        if kind not in (EventKind.ALERT_FIRING, EventKind.ALERT_RESOLVED):
            continue
        detail = e.get("detail") or {}
        key = (str(e.get("subject", "")), _label_key(detail.get("labels") or {}))
        if kind == EventKind.ALERT_FIRING and key not in open_:
            active = detail.get("active_at")
            open_[key] = (float(e["t"]), float(active) if isinstance(active, int | float) else None)
        elif kind == EventKind.ALERT_RESOLVED and key in open_:
            start, active = open_.pop(key)
            out.append(AlertEpisode(key[0], key[1], start, float(e["t"]), active))
    out += [AlertEpisode(k[0], k[1], s, None, a) for k, (s, a) in open_.items()]
    return sorted(out, key=lambda ep: (ep.start, ep.name, ep.labels))


def _label_key(labels: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k != "alertname")


def alert_detections(mon: MonitoringSpec, windows: Sequence[InjectionWindow], episodes: Sequence[AlertEpisode], end: float,
                     observed_until: float | None = None) -> list[AlertDetection]:
    """Every (injection, expected alert) pair; ``end`` bounds a window without a recover event; ``observed_until``
    is the last successful read of the alerts (None: ``end``)."""
    observed = end if observed_until is None else observed_until
    out = []
    for w in windows:
        recover = w.recover_t if w.recover_t is not None else end
        until = recover + mon.grace
        for exp in mon.alerts:
            if w.fault not in exp.faults:
                continue
            mine = [ep for ep in episodes if ep.name == exp.name]
            started = [ep for ep in mine if w.apply_t <= ep.start <= until]
            before = [ep for ep in mine if ep.start < w.apply_t and (ep.end is None or ep.end > w.apply_t)]
            if started:
                first = min(started, key=lambda ep: ep.start)
                ttr = None if first.end is None or w.recover_t is None else round(first.end - w.recover_t, 6)
                out.append(AlertDetection(w.fault, w.index, exp.name, "fired", first.start, round(first.start - w.apply_t, 6), ttr))
            elif before:
                out.append(AlertDetection(w.fault, w.index, exp.name, "already firing", None, None, None))
            elif observed < until:
                out.append(AlertDetection(w.fault, w.index, exp.name, "not observed", None, None, None))
            else:
                out.append(AlertDetection(w.fault, w.index, exp.name, "missed", None, None, None))
    return out


def false_alarms(mon: MonitoringSpec, windows: Sequence[InjectionWindow], episodes: Sequence[AlertEpisode], load: LoadRange) -> list[AlertEpisode]:
    """Episodes that started firing within the load with no fault active (outside every [apply, recover + grace]),
    or were still firing when the load started."""
    quiet = [(w.apply_t, (w.recover_t if w.recover_t is not None else math.inf) + mon.grace) for w in windows]
    return [
        ep for ep in episodes
        if (load.start <= ep.start <= load.end and not any(a <= ep.start <= b for a, b in quiet))
        or (ep.start < load.start and (ep.end is None or ep.end > load.start))
    ]


def prom_point_value(entry: Mapping[str, Any] | None, phase: Phase | None) -> tuple[float | None, int, str]:
    """(mean of the query's points in ``phase``, number of points, detail); None when there is no number."""
    if entry is None:
        return None, 0, "not collected: the run stored no data for this query"
    query = str(entry.get("query", ""))
    if entry.get("error"):
        return None, 0, f"query failed: {entry['error']} (query: {query})"
    series = entry.get("series") or []
    if not series:
        return None, 0, f"no data: the query returned no series (query: {query})"
    if len(series) > 1:
        return None, 0, f"the query returned {len(series)} series; aggregate it to one (sum, max, ...) (query: {query})"
    if phase is None:
        return None, 0, "the phase never happened"
    pts = np.array([[float(t), float(v)] for t, v in series[0].get("values") or []], dtype=np.float64).reshape(-1, 2)
    inside = phase.select(pts[:, 0]) & np.isfinite(pts[:, 1]) if len(pts) else np.zeros(0, dtype=bool)
    n = int(inside.sum())
    if n == 0:
        return None, 0, f"no data in {phase.name}: no finite point of the query there (query: {query})"
    return float(pts[inside, 1].mean()), n, f"mean of {n} points, step {entry.get('step')}s"


def _poll_problem(prom: Mapping[str, Any]) -> str | None:
    """Why the alert poller's record cannot support a verdict, or None."""
    poll = prom.get("alert_polls") or {}
    polls, failures = int(poll.get("polls") or 0), int(poll.get("failures") or 0)
    if polls == 0:
        return f"alerts were never read from Prometheus ({poll.get('last_error') or 'no poll recorded'})"
    if failures > MAX_POLL_FAILURE_SHARE * polls:
        return f"{failures} of {polls} reads of /api/v1/alerts failed (last: {poll.get('last_error')})"
    return None


def monitoring_verdicts(
    experiment: Experiment,
    prom: Mapping[str, Any],
    phases: Mapping[str, Phase],
    detections: Sequence[AlertDetection],
    alarms: Sequence[AlertEpisode],
) -> list[Verdict]:
    """The verdicts of every SLO and hypothesis on a monitoring SLI, in file order (SLOs first)."""
    out: list[Verdict] = []
    queries = prom.get("queries") or {}
    names = [f.name for f in experiment.faults]
    for slo in experiment.steady_state.slos:
        if is_prom_sli(slo.sli):
            for ph in slo.phases:
                out.append(_prom_verdict("slo", slo.name, slo.sli, slo.op, slo.target, ph, queries, phases, names, None))
    poll_problem = _poll_problem(prom)
    for h in experiment.hypotheses:
        if is_prom_sli(h.sli):
            out.append(_prom_verdict("hypothesis", h.name, h.sli, h.op, h.target, h.during or h.fault or "fault", queries, phases, names,
                                     h.min_samples))
        elif h.sli in ALERT_INJECTION_SLIS:
            make = partial(Verdict, name=h.name, kind="hypothesis", sli=h.sli, op=h.op, target=float(h.target),
                           scope=f"fault {h.fault}", fault=h.fault)
            mine = [d for d in detections if d.fault == h.fault]
            per: dict[int, list[AlertDetection]] = {}
            for d in mine:
                per.setdefault(d.injection, []).append(d)
            if poll_problem:
                out.append(make(measured=None, samples=len(per), verdict="inconclusive", detail=poll_problem))
                continue
            if not per:
                out.append(make(measured=None, samples=0, verdict="inconclusive", detail="no injection was applied"))
                continue
            out.append(_alert_verdict(make, h.sli, h.agg, per))
        elif h.sli in ALERT_RUN_SLIS:
            make = partial(Verdict, name=h.name, kind="hypothesis", sli=h.sli, op=h.op, target=float(h.target), scope="whole run")
            if poll_problem:
                out.append(make(measured=None, samples=0, verdict="inconclusive", detail=poll_problem))
                continue
            shown = ", ".join(f"{ep.name} at {ep.start:.1f}" for ep in alarms[:5])
            detail = f"{len(alarms)} alert(s) fired with no fault active" + (f": {shown}" if shown else "")
            out.append(make(measured=float(len(alarms)), samples=1, verdict=judge(float(len(alarms)), h.op, h.target), detail=detail))
    return out


def _prom_verdict(kind: str, name: str, sli: str, op: str, target: float, phase_name: str, queries: Mapping[str, Any],
                  phases: Mapping[str, Phase], fault_names: Sequence[str], min_samples: int | None) -> Verdict:
    is_fault = phase_name in fault_names or (phase_name in phases and phases[phase_name].kind == "fault")
    make = partial(Verdict, name=name, kind=kind, sli=sli, op=op, target=float(target), scope=_scope(phase_name, None, phases),
                   phase=phase_name, fault=phase_name if is_fault else None)
    entry = queries.get(sli.removeprefix(PROM_SLI_PREFIX))
    measured, n, detail = prom_point_value(entry, phases.get(phase_name))
    if measured is None:
        return make(measured=None, samples=n, verdict="inconclusive", detail=detail)
    need = min_samples if min_samples is not None else 1
    if n < need:
        return make(measured=measured, samples=n, verdict="inconclusive", detail=f"{detail}; {n} points < min_samples {need}")
    return make(measured=measured, samples=n, verdict=judge(measured, op, target), detail=detail)


def _alert_verdict(make: Any, sli: str, agg: str, per: Mapping[int, Sequence[AlertDetection]]) -> Verdict:
    n = len(per)
    already = [i for i, ds in per.items() if any(d.status == "already firing" for d in ds)]
    if already:
        return make(measured=None, samples=n, verdict="inconclusive",
                    detail=f"an expected alert was already firing at apply in injection(s) {', '.join(f'#{i + 1}' for i in sorted(already))}")
    unseen = [i for i, ds in per.items() if any(d.status == "not observed" for d in ds)]
    if unseen and (sli == "missed_alerts" or any(not any(d.status == "fired" for d in per[i]) for i in unseen)):
        return make(measured=None, samples=n, verdict="inconclusive",
                    detail=f"the run ended before recover + grace of injection(s) {', '.join(f'#{i + 1}' for i in sorted(unseen))}: "
                    "an expected alert could still have fired")
    if sli == "missed_alerts":
        values = [float(sum(d.status == "missed" for d in ds)) for ds in per.values()]
    else:
        ttas = [[d.time_to_alert_s for d in ds if d.time_to_alert_s is not None] for ds in per.values()]
        missing = sum(not t for t in ttas)
        if missing:
            return make(measured=None, samples=n, verdict="fail", detail=f"no expected alert fired in {missing} of {n} injections")
        values = [min(t) for t in ttas]
    measured = aggregate_values(values, agg)
    shown = ", ".join(f"{v:.3g}" for v in values[:10]) + (", ..." if n > 10 else "")
    return make(measured=measured, samples=n, verdict=judge(measured, make.keywords["op"], make.keywords["target"]),
                detail=f"{agg} over {n} injections [{shown}]")


def alert_intervals(episodes: Sequence[AlertEpisode], load: LoadRange) -> list[dict[str, Any]]:
    """Firing intervals as offsets from load start (for the timeline plot and the report)."""
    return [
        {"alert": ep.name, "labels": ep.labels, "start_s": round(ep.start - load.start, 3),
         "end_s": None if ep.end is None else round(ep.end - load.start, 3),
         "pending_since_s": None if ep.active_at is None else round(ep.active_at - load.start, 3)}
        for ep in episodes
    ]


def monitoring_result(
    experiment: Experiment,
    journal: Mapping[str, Any],
    windows: Sequence[InjectionWindow],
    phases: Mapping[str, Phase],
    load: LoadRange,
) -> tuple[list[Verdict], dict[str, Any]]:
    """(verdicts on monitoring SLIs, the report's monitoring section) of a run whose experiment has ``monitoring:``."""
    mon = experiment.monitoring
    assert mon is not None
    prom: Mapping[str, Any] = journal.get("prometheus") or {}
    episodes = alert_episodes(journal.get("target_events") or [])
    last_poll = (prom.get("alert_polls") or {}).get("last_poll_t")
    detections = alert_detections(mon, windows, episodes, load.end, float(last_poll) if isinstance(last_poll, int | float) else None)
    alarms = false_alarms(mon, windows, episodes, load)
    verdicts = monitoring_verdicts(experiment, prom, phases, detections, alarms)
    queries = prom.get("queries") or {}
    per_phase = {
        name: {ph: prom_point_value(queries.get(name), phase)[0] for ph, phase in phases.items()} for name in mon.queries
    }
    section = {
        "prometheus_url": prom.get("url"),
        "collected": bool(prom),
        "problem": None if prom else "no Prometheus data was stored for this run (prometheus.json missing)",
        "poll_problem": _poll_problem(prom) if prom else None,
        "poll_interval_s": mon.poll_interval,
        "grace_s": mon.grace,
        "queries": {name: {"query": q, "by_phase": per_phase[name]} for name, q in mon.queries.items()},
        "detections": [d.to_dict() for d in detections],
        "false_alarms": [{"alert": ep.name, "labels": ep.labels, "start_s": round(ep.start - load.start, 3)} for ep in alarms],
        "alert_intervals": alert_intervals(episodes, load),
    }
    return verdicts, section
