"""Experiment -> run plan (timed apply/recover steps, phases, resolved targets, blast radius); pure, no I/O.

``chaosml plan`` prints :func:`render_plan` of :func:`build_plan` as its dry run; the runner walks
``Plan.steps``. Everything here is a function of the validated experiment alone, so the same file
always gives the same plan (no clocks, pids or hosts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaosml.analysis.delivery import ramp_warning
from chaosml.analysis.mttr import least_mttr, whole_windows
from chaosml.analysis.verdicts import decided_from_least
from chaosml.loader import ROLLBACK_PARAMS
from chaosml.model import catalog
from chaosml.model.experiment import Experiment, FaultSpec, LoadSpec, MonitoringSpec, TargetSpec
from chaosml.model.faulttype import BlastRadius, registry
from chaosml.model.faulttype import plan_number as _num
from chaosml.model.faulttype import plan_seconds as _s
from chaosml.model.faulttype import plan_value as _value
from chaosml.model.faulttype import plural as _plural
from chaosml.model.loadshape import stage_spans
from chaosml.monitoring.promql import check_queries

__all__ = [
    "BlastRadius",
    "Injection",
    "PhaseSpan",
    "Plan",
    "Step",
    "blast_radius",
    "build_plan",
    "render_plan",
    "resolve_on_cluster",
    "short_search_warnings",
    "starting_what",
]


@dataclass(frozen=True, slots=True)
class Injection:
    """One window of one fault on the timeline (offsets in seconds from load start)."""

    fault: str
    type: str
    index: int  # 1-based injection number
    count: int  # injections of this fault
    start: float
    end: float
    params: str  # one-line summary of the fault's params


@dataclass(frozen=True, slots=True)
class Step:
    """A timed action for the runner: apply or recover one injection."""

    at: float  # seconds from load start
    action: str  # apply | recover
    fault: str
    index: int  # 1-based injection number

    @property
    def injection(self) -> int:
        """The 0-based injection number, as injectors, fault events and the ledger count."""
        return self.index - 1


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    """A planned stretch of the run; recovery's true end is only known once SLIs are back."""

    name: str  # baseline | fault | recovery/after
    start: float
    end: float
    faults: tuple[str, ...] = ()  # faults active (fault spans) or just recovered (recovery spans)


@dataclass(frozen=True, slots=True)
class Plan:
    """The resolved, timed plan of one experiment."""

    experiment: Experiment
    load_end: float
    injections: tuple[Injection, ...]
    steps: tuple[Step, ...]
    blast_radius: tuple[BlastRadius, ...]
    phases: tuple[PhaseSpan, ...]


def build_plan(experiment: Experiment) -> Plan:
    """Resolve the experiment's timeline, targets and phases."""
    counts = {f.name: f.repeat.count for f in experiment.faults}
    injections = tuple(
        Injection(f.name, f.type, i + 1, counts[f.name], start, end, registry()[f.type].summary(f.params))
        for f, i, start, end in experiment.injections()
    )
    steps: list[Step] = []
    for inj in injections:
        steps.append(Step(inj.start, "apply", inj.fault, inj.index))
        steps.append(Step(inj.end, "recover", inj.fault, inj.index))
    # at equal times recover first, so two faults never look stacked for an instant
    steps.sort(key=lambda s: (s.at, s.action != "recover", s.fault, s.index))
    return Plan(
        experiment=experiment,
        load_end=experiment.load.duration,
        injections=injections,
        steps=tuple(steps),
        blast_radius=tuple(
            blast_radius(f, experiment.target, dataset=experiment.load.dataset) for f in experiment.faults
        ),
        phases=_phases(injections, experiment.load.duration),
    )


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None = None) -> BlastRadius:
    """The blast radius of one injection of ``fault`` on ``target`` (``dataset`` sizes feature-row faults), by its type."""
    return registry()[fault.type].blast_radius(fault, target, dataset)


def _phases(injections: Sequence[Injection], load_end: float) -> tuple[PhaseSpan, ...]:
    if not injections:
        return (PhaseSpan("baseline", 0.0, load_end),)
    spans: list[PhaseSpan] = []
    first = min(i.start for i in injections)
    if first > 0:
        spans.append(PhaseSpan("baseline", 0.0, first))
    # merge overlapping windows into "fault" spans; the gaps after them are recovery, then after
    merged: list[tuple[float, float, list[str]]] = []
    for inj in sorted(injections, key=lambda i: (i.start, i.end, i.fault)):
        label = f"{inj.fault} #{inj.index}"
        if merged and inj.start <= merged[-1][1]:
            start, end, names = merged[-1]
            merged[-1] = (start, max(end, inj.end), [*names, label])
        else:
            merged.append((inj.start, inj.end, [label]))
    for k, (start, end, names) in enumerate(merged):
        spans.append(PhaseSpan("fault", start, end, tuple(names)))
        gap_end = merged[k + 1][0] if k + 1 < len(merged) else load_end
        if gap_end > end:
            spans.append(PhaseSpan("recovery/after", end, gap_end, tuple(names)))
    return tuple(spans)


# ------------------------------------------------------------------------------------------------
# rendering


def render_plan(plan: Plan) -> str:
    """The dry-run text ``chaosml plan`` prints."""
    exp = plan.experiment
    t, load, ss = exp.target, exp.load, exp.steady_state
    out: list[str] = [f"plan: {exp.title}", f"release: {exp.release}"]

    target = f"target: {t.platform}, {t.stack} stack, profile {t.profile}, {_plural(t.replicas, 'replica')}"
    if t.stack == "custom" and t.platform == "kubernetes":
        shown = ", ".join(f"{s.name} (pods {','.join(f'{k}={v}' for k, v in sorted((s.selector or {}).items()))})" for s in t.services)
        links = ", ".join(f"{ln.name}" + (f" -> {ln.service}" if ln.service else "") for ln in t.links)
        entry = t.entry.service if t.entry else "?"
        e = t.entry
        via = (f" at {e.url}" if e.url else f" via the Toxiproxy link {e.link}" if e.link else
               " via the NodePort of its Service" + (f" (port {e.port})" if e.port else "")) if e else ""
        target = f"target: {t.platform}, custom stack: {shown}; entry {entry}{via}" + (f"; links {links}" if links else "")
    elif t.stack == "custom":
        shown = ", ".join(f"{s.name} x{s.replicas} ({' '.join(s.command)[:60]})" for s in t.services)
        links = ", ".join(f"{ln.name} -> {ln.upstream}" for ln in t.links)
        entry = t.entry.service if t.entry else "?"
        via = " via the gateway link" if t.entry and t.entry.proxy else ""
        target = f"target: {t.platform}, custom stack: {shown}; entry {entry}{via}" + (f"; links {links}" if links else "")
    if t.platform == "kubernetes" and t.kubernetes is not None:
        k = t.kubernetes
        context = k.context or "the kubeconfig's current context"
        allowed = "any (confirmed on the command line)" if k.allow_any_context else ", ".join(k.allowed_contexts)
        target += f", context {context} (allowed: {allowed}), namespace {k.namespace}"
    else:
        target += f", restart delay {_s(t.restart_delay)}"
    out.append(target)
    if t.stack == "custom" or exp.request != type(exp.request)() or exp.response != type(exp.response)():
        out.append(f"request: {exp.request.method} {exp.request.path}, body {exp.request.body}; response: " + ", ".join(
            f"{k}={getattr(exp.response, k)}" for k in ("prediction", "confidence", "model_version", "served_by")))

    rate = "as fast as possible" if load.rate_per_user is None else f"{_num(load.rate_per_user)} req/s per user"
    total = "" if load.rate_per_user is None else f" (about {_num(load.rate_per_user * load.users)} req/s)"
    out.append(
        f"load: {'up to ' if load.shape else ''}{_plural(load.users, 'user')} (spawn {_num(load.spawn_rate)}/s), {rate}{total}, "
        f"for {_s(load.duration)}, request timeout {_s(load.request_timeout)}, "
        f"{_data(load)}, seed {load.seed}"
    )
    out += [w for w in (ramp_warning(load),) if w]
    if load.shape is not None:
        out += _shape_lines(load)
    weight = sum(load.mix.values()) or 1.0
    out.append("mix: " + ", ".join(f"{c} {_num(round(100 * w / weight, 1))}%" for c, w in load.mix.items()))
    if load.data is not None and load.data.cohort:
        out.append(f"file cohorts: each clean row is sent and judged under its {load.data.cohort!r} value "
                   f"({load.data.file} is read at run time; clean is split by the test rows' shares)")

    out.append("")
    out.append(f"timeline (offsets from load start; the load ends at {_s(plan.load_end)}):")
    if plan.injections:
        rows: list[tuple[str, ...]] = [("start", "end", "fault", "type", "injection", "params")]
        rows += [
            (_s(i.start), _s(i.end), i.fault, i.type, f"{i.index}/{i.count}", i.params) for i in plan.injections
        ]
        out += _table(rows)
    else:
        out.append("  no faults: a baseline-only run")

    out.append("")
    out.append("blast radius:")
    out += [f"  {b.fault}: {b.description}" for b in plan.blast_radius] or ["  nothing is injected"]

    out.append("")
    out.append("phases:")
    out += _table([(p.name, _s(p.start), _s(p.end), ", ".join(p.faults)) for p in plan.phases])
    out.append(
        f"  recovery/after: recovery, then between (or after, past the last fault); recovery ends when every SLO "
        f"holds for {_plural(ss.hold, 'window')} of {_s(ss.window)}"
    )
    out += [f"  {name}: {text}" for name, text in catalog.PHASE_DEFINITIONS.items()]

    out.append("")
    out.append(
        f"steady state: window {_s(ss.window)}, hold {ss.hold}, at least {ss.min_samples} samples per verdict, "
        f"confident-wrong at confidence >= {_num(ss.confidence_threshold)}"
    )
    out.append("slos:")
    out += [
        f"  {s.name}: {s.sli} {s.op} {_num(s.target)} (during {', '.join(s.phases)}){_cohort(s.cohort)}"
        for s in ss.slos
    ] or ["  none"]
    out.append("hypotheses:")
    out += [f"  {_hypothesis(h)}" for h in exp.hypotheses] or ["  none"]
    out += short_search_warnings(plan)
    out.append("abort when:")
    out += [
        f"  {a.sli} {a.op} {_num(a.target)} for {_s(a.for_)}{_cohort(a.cohort)}" for a in exp.abort
    ] or ["  never (no abort conditions)"]
    out.append("rollbacks:")
    out += [f"  {_rollback(r.type, r.params)}" for r in exp.rollbacks] or ["  none"]
    if exp.monitoring is not None:
        out += ["", *_monitoring(exp.monitoring)]
    out.append("")
    out.append("dry run: nothing was injected")
    return "\n".join(out) + "\n"


def starting_what(spec: TargetSpec) -> str:
    """What the run starts, for the console: the reference stack and its profile, or the user's own services."""
    if spec.stack != "custom":
        return f"{spec.platform}, reference stack, profile {spec.profile}"
    if spec.platform == "kubernetes":
        return f"{spec.platform}, your own stack: " + ", ".join(s.name for s in spec.services) + " (pods found by their labels)"
    return f"{spec.platform}, your own stack: " + ", ".join(f"{s.name} x{s.replicas}" for s in spec.services)


def _shape_lines(load: LoadSpec) -> list[str]:
    """load.shape as the stages the load process drives: times, users, spawn rate and the requested rate."""
    assert load.shape is not None
    rows: list[tuple[str, ...]] = [("stage", "from", "to", "users", "spawn", "requested rate")]
    for n, start, end, st in stage_spans(load.shape.stages, load.duration):
        rate = "as fast as possible" if load.rate_per_user is None else f"{_num(st.users * load.rate_per_user)} req/s"
        rows.append((str(n), _s(start), _s(end), str(st.users), f"{_num(st.spawn_rate)}/s", rate))
    return [f"load shape: {load.shape.describe()} (users move to each stage's count at its spawn rate, from 0 at load start)",
            *_table(rows)]


def _data(load: LoadSpec) -> str:
    """What the load sends: the user's data file (``load.data``) or the built-in dataset."""
    if load.locustfile is not None:
        return (f"requests from your locustfile {load.locustfile} (its User classes, pointed at the target; "
                "no labels: accuracy and confident-wrong are not measured)")
    if load.data is None:
        return f"built-in dataset {load.dataset}"
    return f"data file {load.data.file} (label {load.data.label!r})"


def short_search_warnings(plan: Plan) -> list[str]:
    """A warning per ``mttr_s``/``ttd_s`` hypothesis that some injection's search could not fail.

    MTTR and TTD are searched from an injection's apply to the next apply of any fault (or the load
    end). An injection with no value is judged from the least value that search proves
    (``analysis.mttr.least_mttr``, or the span for TTD) by the analysis' own rule
    (``analysis.verdicts.decided_from_least``): when that rule cannot fail the hypothesis, a stack too
    slow for it cannot be told from one that was cut off, and its verdict would be inconclusive.
    """
    ss = plan.experiment.steady_state
    starts = sorted({i.start for i in plan.injections})
    out = []
    for h in plan.experiment.hypotheses:
        if h.sli not in ("mttr_s", "ttd_s") or h.op not in ("<=", "<"):
            continue
        for inj in plan.injections:
            if inj.fault != h.fault:  # the loader requires `fault:` on an injection SLI
                continue
            end = min([s for s in starts if s > inj.start] + [plan.load_end])
            span = end - inj.start
            least = least_mttr(whole_windows(span, ss.window), ss) if h.sli == "mttr_s" else span
            if decided_from_least(least, h.op, float(h.target)) != "fail":
                until = "the load end" if end == plan.load_end else f"the next apply at {_s(end)}"
                none = "no recovery" if h.sli == "mttr_s" else "nothing observed"
                out.append(f"WARNING: hypothesis {h.name}: {inj.fault} #{inj.index} at {_s(inj.start)} is searched only "
                           f"{_s(span)}, until {until}; {none} in it proves only {h.sli} >= {_s(least)}, which does not "
                           f"fail {h.op} {_s(float(h.target))}: a stack too slow for it would be inconclusive, not fail "
                           "(space the faults or lengthen the load)")
    return out


def _hypothesis(h: Any) -> str:
    head = f"{h.name}: {h.sli} {h.op} {_num(h.target)}"
    if h.sli in catalog.INJECTION_SLIS or h.sli in catalog.ALERT_INJECTION_SLIS:
        tail = f" ({h.agg} over the injections of {h.fault})"
    elif h.sli in catalog.ALERT_RUN_SLIS:
        tail = " (over the whole run)"
    else:
        tail = f" (during {h.during})"
    if h.min_samples is not None:
        tail += f", at least {h.min_samples} samples"
    return head + tail + _cohort(h.cohort)


def _monitoring(mon: MonitoringSpec) -> list[str]:
    p = mon.prometheus
    where = (f"local: started by the local target on 127.0.0.1, scraping every {_s(p.scrape_interval)}, rules "
             f"{p.rules or 'chaosml/stack/alerts.yml (shipped)'}") if p.local else f"url: {p.url}"
    out = ["monitoring:", f"  prometheus: {where}",
           f"  alerts polled every {_s(mon.poll_interval)}; an expected alert counts until {_s(mon.grace)} after its fault's recover"]
    out += [f"  query prom:{name}: {' '.join(q.split())}" for name, q in mon.queries.items()]
    if mon.queries:
        out.append(f"  PromQL {check_queries(mon.queries, p.url)[1]}")
    out += [f"  expect {a.name} during {', '.join(a.faults)}" for a in mon.alerts]
    return out


def _rollback(rtype: str, params: Any) -> str:
    kinds = ROLLBACK_PARAMS.get(rtype, {})
    shown = [
        f"{k}={_s(v) if kinds.get(k) == 'duration' and isinstance(v, (int, float)) else _value(v)}"
        for k, v in params.items()
    ]
    return " ".join([rtype, *shown])


def _cohort(cohort: str | None) -> str:
    return f" [cohort {cohort}]" if cohort else ""


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


# ------------------------------------------------------------------------------------------------
# the plan against a reachable cluster (kubernetes target)


def resolve_on_cluster(plan: Plan, target: Any) -> list[str]:
    """Lines naming what each fault would touch NOW on a connected kubernetes target; injects nothing.

    ``target`` is a connected :class:`chaosml.targets.kubernetes.KubernetesTarget` (its context was
    checked against the allowlist by ``connect()``); it is only read: ``members``/``select``,
    ``desired_replicas``, ``nodes`` and ``links``.
    """
    out = [f"cluster: context {target.context}, namespace {target.namespace}"]
    try:
        nodes = target.nodes()
    except Exception as e:  # noqa: BLE001 - shown, the rest still resolves
        nodes = []
        out.append(f"  nodes: cannot list ({type(e).__name__}: {e})")
    for n in nodes:
        role = "control-plane" if n["control_plane"] else "worker"
        out.append(f"  node {n['name']} ({role}, {'Ready' if n['ready'] else 'NotReady'}): {_plural(n['pods'], 'pod')} of the namespace")
    for f in plan.experiment.faults:
        describe = registry()[f.type].on_cluster
        if describe is None:
            continue
        try:
            out.append(f"  {f.name}: {describe(f, target, nodes)}")
        except Exception as e:  # noqa: BLE001 - one fault's resolution failing is shown, not fatal
            out.append(f"  {f.name}: cannot resolve ({type(e).__name__}: {e})")
    return out
