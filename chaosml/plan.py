"""Experiment -> run plan (timed apply/recover steps, phases, resolved targets, blast radius); pure, no I/O.

``chaosml plan`` prints :func:`render_plan` of :func:`build_plan` as its dry run; the runner walks
``Plan.steps``. Everything here is a function of the validated experiment alone, so the same file
always gives the same plan (no clocks, pids or hosts).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaosml.analysis.delivery import ramp_warning
from chaosml.loader import ROLLBACK_PARAMS
from chaosml.model import catalog
from chaosml.model.experiment import Experiment, FaultSpec, TargetSpec

__all__ = [
    "BlastRadius",
    "Injection",
    "PhaseSpan",
    "Plan",
    "Step",
    "blast_radius",
    "build_plan",
    "pod_kill_victims",
    "render_plan",
    "resolve_on_cluster",
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


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What one injection of a fault touches on the resolved target."""

    fault: str
    type: str
    victims: int | None  # units hit per injection, when countable
    of: int | None  # units there are
    description: str


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
        Injection(f.name, f.type, i + 1, counts[f.name], start, end, params_summary(f.params))
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


def pod_kill_victims(mode: str, value: float | None, replicas: int) -> int:
    """Replicas one pod-kill injection hits: one=1, all=N, fixed=min(value, N), percent=ceil(N*value/100)."""
    if replicas <= 0:
        return 0
    if mode == "one":
        return 1
    if mode == "all":
        return replicas
    if mode == "fixed":
        return min(int(value or 0), replicas)
    if mode == "percent":
        return min(math.ceil(replicas * (value or 0) / 100), replicas)
    raise ValueError(f"unknown pod-kill mode {mode!r}")


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None = None) -> BlastRadius:
    """The blast radius of one injection of ``fault`` on ``target`` (``dataset`` sizes feature-row faults)."""
    injections = _plural(fault.repeat.count, "injection")
    if fault.type in _LINK_FAULTS:
        return _link_blast_radius(fault, target, injections)
    if fault.type in ("corrupted-features", "missing-features"):
        return _rows_blast_radius(fault, dataset, injections)
    if fault.type == "pod-kill" and target.platform == "kubernetes" and target.stack == "custom" and target.kubernetes is not None:
        p = fault.params
        svc = next(s for s in target.services if s.name == p.service)
        selector = p.selector or ",".join(f"{k}={v}" for k, v in sorted((svc.selector or {}).items()))
        value = _num(p.value) if p.value is not None else "?"
        count = {"one": "1 pod", "all": "every pod", "fixed": f"{value} pod(s)", "percent": f"{value}% of the pods"}[p.mode]
        text = (f"{count} matching {selector!r} in namespace {target.kubernetes.namespace!r} per injection, {injections}; "
                f"deleted with grace period {_s(p.grace_period)}; the ReplicaSet replaces them "
                "(`chaosml plan` with the cluster reachable names the pods)")
        return BlastRadius(fault.name, fault.type, None, None, text)
    if fault.type == "pod-kill":
        p = fault.params
        n = _replicas(target, p.service)
        victims = pod_kill_victims(p.mode, p.value, n)
        pct = round(100 * victims / n) if n else 0
        if target.platform == "kubernetes" and target.kubernetes is not None:
            selector = p.selector or f"app={p.service}"
            what = f"{victims} of {n} pods matching {selector!r} in namespace {target.kubernetes.namespace!r}"
            how = f"deleted with grace period {_s(p.grace_period)}; the ReplicaSet replaces them"
        else:
            what = f"{victims} of {n} replicas of {p.service!r}"
            how = f"killed with {p.signal}; restarted after {_s(target.restart_delay)}"
        text = f"{what} ({pct}%) per injection, {injections}; {how}"
        if victims == n:
            text += "; every replica: expect a full outage until they are back"
        return BlastRadius(fault.name, fault.type, victims, n, text)
    return BlastRadius(fault.name, fault.type, None, None, f"{params_summary(fault.params)}; {injections}")


#: entity rows in the feature store per bundled dataset (one row per dataset row)
DATASET_ROWS = {"breast_cancer": 569}
_LINK_FAULTS = ("feature-store-outage", "network-latency", "network-toxic")
_TOXIC_EFFECT = {
    "bandwidth": "throughput capped at {rate} KB/s",
    "reset_peer": "connections reset (RST) {timeout} ms after their first data",
    "slicer": "data sliced into ~{average_size}-byte pieces",
    "limit_data": "connections closed after {bytes} bytes",
    "slow_close": "connection close delayed by {delay} ms",
    "timeout": "data held, connections closed after {timeout} ms (0 = held until recovered)",
}


def _replicas(target: TargetSpec, service: str) -> int:
    """Replicas of ``service``: a custom stack's declared count, else the reference stack's ``replicas``."""
    for svc in target.services:
        if svc.name == service:
            return svc.replicas
    return target.replicas


def _link_scope(link: str, target: TargetSpec) -> tuple[int | None, int | None, str]:
    """(victims, of, words) for a proxy link of the reference stack (or a custom stack's entry service)."""
    if target.stack == "custom" and target.platform == "kubernetes":
        return 1, 1, f"the {link} proxy of the cluster's Toxiproxy: every connection through it"
    n = _replicas(target, target.entry.service) if target.entry is not None else target.replicas
    if link == "gateway":
        return 1, 1, "the gateway link (client -> gateway): every request"
    if link == "feature-store":
        return 1, 1, f"the feature-store link (replicas -> redis): every feature fetch of all {n} replicas"
    if link == "model":
        return n, n, f"all {n} replica links (gateway -> model-0..{n - 1}): every request"
    if not re.fullmatch(r"model-\d+", link):
        declared = next((ln for ln in target.links if ln.name == link), None)
        dest = f" (services -> {declared.upstream})" if declared is not None and declared.upstream else ""
        return 1, 1, f"the {link} link{dest}: every connection through it"
    idx = int(link.rsplit("-", 1)[1])
    if idx >= n:
        return 0, n, f"link {link}, which does not exist with {_plural(n, 'replica')}: the injection will fail"
    return 1, n, f"1 of {n} replica links ({link}: gateway -> {link}, about {round(100 / n)}% of requests)"


def _link_blast_radius(fault: FaultSpec, target: TargetSpec, injections: str) -> BlastRadius:
    p = fault.params
    if fault.type == "feature-store-outage":
        how = {
            "down": "the feature-store link disabled (replicas get connection refused)",
            "timeout": "the feature-store link holds all data "
            + ("until recovered" if not p.timeout_ms else f"and closes connections after {p.timeout_ms} ms"),
            "latency": f"every feature fetch delayed by {p.latency_ms} ms +/- {p.jitter_ms} ms",
            "kill": "the redis process stopped and kept down until recovered (then restarted and re-seeded)",
        }[p.mode]
        if target.stack == "custom":
            behind = next((ln.service for ln in target.links if ln.name == "feature-store"), None)
            if p.mode == "kill":
                how = f"the Deployment of service {behind!r} scaled to 0 and back to its original replicas"
            return BlastRadius(fault.name, fault.type, 1, 1, f"{how}: every connection through the feature-store link, {injections}")
        if target.platform == "kubernetes" and p.mode == "kill":
            how = "the redis Deployment scaled to 0 and back to its original replicas (then re-seeded)"
        return BlastRadius(
            fault.name, fault.type, 1, 1,
            f"{how}: every feature fetch of all {target.replicas} replicas, {injections}; "
            "expect fallback answers (hardened) or zero-filled/failed answers (naive)",
        )
    victims, of, where = _link_scope(p.link, target)
    if fault.type == "network-latency":
        what = f"+{p.latency_ms} ms +/- {p.jitter_ms} ms on the {p.stream} stream"
    else:
        what = _TOXIC_EFFECT[p.toxic].format_map({**{k: 0 for k in ("rate", "timeout", "average_size", "bytes", "delay")}, **dict(p.attributes)})
        what += f" on the {p.stream} stream"
    share = "every connection" if p.toxicity >= 1 else f"{_num(round(100 * p.toxicity, 1))}% of connections"
    return BlastRadius(fault.name, fault.type, victims, of, f"{what}, {share} of {where}; {injections}")


def _rows_blast_radius(fault: FaultSpec, dataset: str | None, injections: str) -> BlastRadius:
    p = fault.params
    rows = DATASET_ROWS.get(dataset or "")
    if p.entities is not None:
        victims: int | None = len(p.entities)
        which = f"{victims} listed entity rows"
    else:
        victims = max(1, math.ceil(p.fraction * rows)) if rows else None
        which = f"{_num(round(100 * p.fraction, 2))}% of entity rows (seeded choice)"
        if rows:
            which += f" = {victims} of {rows}"
    fields = "every entity feature" if p.features is None else f"features {', '.join(p.features)}"
    if fault.type == "corrupted-features":
        what = f"{which}: {fields} poisoned ({p.mode})"
    elif p.mode == "delete-row":
        what = f"{which} deleted"
    else:
        what = f"{which}: {fields} dropped"
    return BlastRadius(
        fault.name, fault.type, victims, rows,
        f"{what}, {injections}; every touched key is saved with DUMP first and restored byte for byte",
    )


def params_summary(params: Any) -> str:
    """``key=value`` for every set field of a params dataclass (or mapping), in field order."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        items = [(f.name, getattr(params, f.name)) for f in dataclasses.fields(params)]
    elif isinstance(params, dict) or hasattr(params, "items"):
        items = list(params.items())
    else:
        return "" if params is None else str(params)
    return " ".join(f"{k}={_value(v)}" for k, v in items if v is not None) or "-"


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
        f"load: {_plural(load.users, 'user')} (spawn {_num(load.spawn_rate)}/s), {rate}{total}, "
        f"for {_s(load.duration)}, request timeout {_s(load.request_timeout)}, "
        f"dataset {load.dataset}, seed {load.seed}"
    )
    out += [w for w in (ramp_warning(load),) if w]
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
    out.append("abort when:")
    out += [
        f"  {a.sli} {a.op} {_num(a.target)} for {_s(a.for_)}{_cohort(a.cohort)}" for a in exp.abort
    ] or ["  never (no abort conditions)"]
    out.append("rollbacks:")
    out += [f"  {_rollback(r.type, r.params)}" for r in exp.rollbacks] or ["  none"]
    out.append("")
    out.append("dry run: nothing was injected")
    return "\n".join(out) + "\n"


def _hypothesis(h: Any) -> str:
    head = f"{h.name}: {h.sli} {h.op} {_num(h.target)}"
    if h.sli in catalog.INJECTION_SLIS:
        tail = f" ({h.agg} over the injections of {h.fault})"
    else:
        tail = f" (during {h.during})"
    if h.min_samples is not None:
        tail += f", at least {h.min_samples} samples"
    return head + tail + _cohort(h.cohort)


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


def _num(x: float) -> str:
    return f"{x:g}"


def _s(seconds: float) -> str:
    """Seconds as the plan shows them: 250ms, 20s, 1.5s, 90s."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, tuple):
        return ",".join(_value(x) for x in v)
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
        p = f.params
        try:
            if f.type == "pod-kill":
                pods = target.select(p.selector) if p.selector else target.members(p.service)
                names = [m.name for m in pods]
                victims = pod_kill_victims(p.mode, p.value, len(names))
                sel = p.selector or target.selector(p.service)
                out.append(
                    f"  {f.name}: {victims} of {len(names)} pods matching {sel!r} per injection "
                    f"({round(100 * victims / len(names)) if names else 0}%), chosen at apply among: {', '.join(names) or 'none'}"
                )
            elif f.type == "feature-store-outage" and p.mode == "kill":
                g = target.feature_store_group
                n = target.desired_replicas(g)
                out.append(
                    f"  {f.name}: deployment {target.deployment(g)} scaled from {n} to 0 replicas, "
                    f"then back to {n} (pods now: {', '.join(m.name for m in target.members(g)) or 'none'})"
                )
            elif f.type == "node-failure":
                workers = [n for n in nodes if not n["control_plane"]]
                if p.node == "worker":
                    pick = sorted(workers, key=lambda n: (-n["pods"], n["name"]))[:1]
                    which = pick[0]["name"] if pick else "no worker node"
                elif p.node == "random":
                    which = "one of " + (", ".join(n["name"] for n in workers) or "no worker node") + " (seeded choice)"
                else:
                    which = p.node
                on = {n["name"]: n["pods"] for n in nodes}
                extra = f", running {_plural(on[which], 'pod')} of the namespace" if which in on else ""
                out.append(f"  {f.name}: docker {p.action} of node container {which}{extra}")
            elif f.type in _LINK_FAULTS:
                links = target.links()
                link = "feature-store" if f.type == "feature-store-outage" else p.link
                shown = links.get(link) or (links.get("model") if link.startswith("model") else None)
                out.append(f"  {f.name}: Toxiproxy link {link}: {shown or 'not found among the Toxiproxy proxies'}")
        except Exception as e:  # noqa: BLE001 - one fault's resolution failing is shown, not fatal
            out.append(f"  {f.name}: cannot resolve ({type(e).__name__}: {e})")
    return out
