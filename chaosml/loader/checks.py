"""Checks across the sections of an experiment file, run by chaosml.loader.schema after the sections decode.

Custom-stack keys per platform, unique names, references between hypotheses and faults, the
timeline against the load duration, cohorts against the load mix, and the fault-specific checks
(:func:`fault_params`, :func:`check_custom_faults`: each fault type's own checks from the registry). Each check
reports through the decoder (``ex.d``) and marks the section it rejects as BAD, so one mistake
does not cause spurious follow-up issues.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chaosml.decoding import BAD, Decoder, Node, join_path, quote, suggest
from chaosml.loader.monitoring import check_alert_hypothesis, check_monitoring, sli_problem
from chaosml.loader.state import DecodeState
from chaosml.model import catalog
from chaosml.model.experiment import (
    AbortCondition,
    DataSpec,
    Hypothesis,
    LoadSpec,
    Repeat,
    Slo,
    TargetSpec,
)
from chaosml.model.faulttype import (
    REFERENCE_SERVICES,
    StackFacts,
    params_issues,
    reference_replicas,
    registry,
)

#: Most services, links and replicas of a custom stack.
MAX_SERVICES = 20
#: Operators as the SLO/hypothesis/abort ``op`` key accepts them.
OPERATORS: tuple[str, ...] = tuple(catalog.OPERATORS)
#: SLIs whose value is a fraction: targets must lie in [0, 1].
RATIO_SLIS: frozenset[str] = frozenset(s for s in catalog.SAMPLE_SLIS if s.endswith("_ratio") or s == "accuracy")


def fmt_s(seconds: float) -> str:
    """Seconds for a message: 2.5 -> "2.5s"."""
    return f"{seconds:g}s"


def cross_checks(ex: DecodeState, values: dict[str, Any]) -> None:
    """Checks that need several sections; builds SLOs, hypotheses and abort conditions once the mix and fault names are known."""
    # fault names: unique, not phase names; all known only when every fault's name was read
    names: dict[str, str] = {}
    for path, fv in ex.fault_raw:
        name = fv.get("name", BAD)
        if name is BAD:
            continue
        if name in names:
            ex.d.issue_at(f"{path}.name", f"duplicate fault name {name!r} (also {names[name]})")
            values["faults"] = BAD
        elif name in catalog.PHASES:
            ex.d.issue_at(f"{path}.name", f"{name!r} is a phase name; choose another fault name")
            values["faults"] = BAD
        names.setdefault(name, path)
    fault_names = set(names) if ex.names_complete else None

    # SLOs and hypotheses (built here, now that the load mix and fault names are known)
    for kind, raw in (("slo", ex.slo_raw), ("hypothesis", ex.hyp_raw), ("abort", ex.abort_raw)):
        seen: dict[str, str] = {}
        for path, hv in raw:
            check_common(ex, path, hv, kind)
            name = hv.get("name", BAD)
            if kind != "abort" and name is not BAD:
                if name in seen:
                    ex.d.issue_at(f"{path}.name", f"duplicate {'SLO' if kind == 'slo' else kind} name {name!r} (also {seen[name]})")
                    hv["name"] = BAD
                seen[name] = path
            if kind == "hypothesis":
                check_hypothesis(ex, path, hv, fault_names)

    ss = values.get("steady_state")
    if ss is not None and ss is not BAD:
        slos = tuple(ex.d.build(Slo, v) for _, v in ex.slo_raw)
        values["steady_state"] = BAD if BAD in slos else dataclasses.replace(ss, slos=slos)
    elif ss is BAD:
        for _, v in ex.slo_raw:
            ex.d.build(Slo, v)
    if values.get("hypotheses") not in (None, BAD):
        hyps = tuple(ex.d.build(Hypothesis, v) for _, v in ex.hyp_raw)
        values["hypotheses"] = BAD if BAD in hyps else hyps
    if values.get("abort") not in (None, BAD):
        aborts = tuple(ex.d.build(AbortCondition, v) for _, v in ex.abort_raw)
        values["abort"] = BAD if BAD in aborts else aborts

    check_timeline(ex, values)
    check_custom_faults(ex, values)
    check_monitoring(ex, values, fault_names)
    check_locustfile_faults(ex, values)


#: Fault types that act through the dataset-driven load (they switch its cohort mix via the load-control file).
LOAD_CONTROL_FAULTS = ("adversarial-payload",)


def check_locustfile_faults(ex: DecodeState, values: dict[str, Any]) -> None:
    """With load.locustfile the user's file decides what is sent: a fault that switches the load's cohorts would do nothing."""
    load = values.get("load")
    if load in (None, BAD) or load.locustfile is None:
        return
    for path, fv in ex.fault_raw:
        if fv.get("type") in LOAD_CONTROL_FAULTS:
            ex.d.issue_at(f"{path}.type", f"{fv['type']} switches the cohorts of chaosml's own load; with load.locustfile your "
                                          "file decides what is sent, so it would have no effect (drop one of them)")


def check_common(ex: DecodeState, path: str, values: dict[str, Any], kind: str) -> None:
    """sli/op/target/cohort checks shared by SLOs, hypotheses and abort conditions."""
    sli = values.get("sli", BAD)
    if sli is not BAD and (catalog.is_prom_sli(sli) or sli in catalog.MONITORING_SLIS):
        problem = sli_problem(ex, sli, kind)  # chaosml.loader.monitoring; None: usable here
        if problem is not None:
            ex.d.issue_at(f"{path}.sli", problem)
            values["sli"] = sli = BAD
    elif sli is not BAD:
        if sli not in catalog.ALL_SLIS:
            known = (*catalog.ALL_SLIS, *(catalog.MONITORING_SLIS if ex.monitoring_queries is not None else ()))
            hint = suggest(sli, known) or f"; choose from: {', '.join(known)}"
            if ex.monitoring_queries:
                hint += f" (or a monitoring query: {', '.join('prom:' + q for q in sorted(ex.monitoring_queries))})"
            ex.d.issue_at(f"{path}.sli", f"unknown SLI {quote(sli)}{hint}")
            values["sli"] = sli = BAD
        elif kind != "hypothesis" and sli in catalog.INJECTION_SLIS:
            ex.d.issue_at(
                f"{path}.sli",
                f"{sli} is measured per fault injection, not over samples; use it in a hypothesis with 'fault:'",
            )
            values["sli"] = sli = BAD
    op = values.get("op", BAD)
    if op is not BAD and op not in OPERATORS:
        ex.d.issue_at(f"{path}.op", f"unknown operator {quote(op)}; choose from: {', '.join(OPERATORS)}")
        values["op"] = BAD
    target = values.get("target", BAD)
    if sli is not BAD and target is not BAD and not catalog.is_prom_sli(sli):  # a query's unit is the user's
        if sli in RATIO_SLIS and not 0 <= target <= 1:
            ex.d.issue_at(f"{path}.target", f"{sli} is a ratio: the target must be within [0, 1], got {target:g}")
            values["target"] = BAD
        elif sli not in RATIO_SLIS and target < 0:
            ex.d.issue_at(f"{path}.target", f"{sli} is never negative: the target must be >= 0, got {target:g}")
            values["target"] = BAD
    cohort = values.get("cohort")
    mix = ex.mix_cohorts
    if cohort not in (None, BAD) and mix is not None and cohort not in mix:
        if ex.file_cohorts and cohort not in catalog.COHORTS:  # a file cohort: sent by name, or as part of clean
            if "clean" not in mix:
                ex.d.issue_at(f"{path}.cohort", f"cohort {quote(cohort)} is not in load.mix, nor is clean (whose rows are "
                              "sent under their file cohorts), so it would have no samples")
                values["cohort"] = BAD
        else:
            ex.d.issue_at(f"{path}.cohort", f"cohort {quote(cohort)} is not in load.mix, so it would have no samples")
            values["cohort"] = BAD


def check_hypothesis(ex: DecodeState, path: str, hv: dict[str, Any], fault_names: set[str] | None) -> None:
    """A hypothesis measures a sample SLI ``during`` a phase or fault, or an injection SLI per ``fault``."""
    sli = hv.get("sli", BAD)
    if sli is BAD:
        return
    if sli in catalog.MONITORING_SLIS:
        check_alert_hypothesis(ex, path, hv, fault_names)
        return
    during, fault = hv.get("during"), hv.get("fault")
    injection = ", ".join(catalog.INJECTION_SLIS)
    if sli in catalog.SAMPLE_SLIS or catalog.is_prom_sli(sli):
        if "fault" in hv and fault is not None:
            ex.d.issue_at(f"{path}.fault", f"'fault' is for injection SLIs ({injection}); {sli} is measured 'during' a fault or phase")
            hv["fault"] = BAD
        if "agg" in hv and hv["agg"] is not BAD:
            ex.d.issue_at(f"{path}.agg", f"'agg' is for injection SLIs ({injection}), not {sli}")
            hv["agg"] = BAD
        if "during" not in hv or during is None:
            if "fault" not in hv:
                ex.d.issue_at(path, f"missing required key 'during': {sli} is measured during a fault (its name) or a phase ({', '.join(catalog.PHASES)})")
                hv["during"] = BAD
        elif during is not BAD and fault_names is not None and during not in catalog.PHASES and during not in fault_names:
            choices = [*catalog.PHASES, *sorted(fault_names)]
            ex.d.issue_at(
                f"{path}.during",
                f"{quote(during)} is neither a phase nor a declared fault{suggest(during, choices)}; "
                f"choose from: {', '.join(choices)}",
            )
            hv["during"] = BAD
    else:
        if "during" in hv and during is not None:
            ex.d.issue_at(f"{path}.during", f"{sli} is measured per injection of a fault: use 'fault:', not 'during:'")
            hv["during"] = BAD
        if "fault" not in hv or fault is None:
            if "during" not in hv:
                ex.d.issue_at(path, f"missing required key 'fault': {sli} is measured per injection of the named fault")
                hv["fault"] = BAD
        elif fault is not BAD and fault_names is not None and fault not in fault_names:
            declared = ", ".join(sorted(fault_names)) or "none"
            ex.d.issue_at(f"{path}.fault", f"unknown fault {quote(fault)}{suggest(fault, fault_names)}; declared faults: {declared}")
            hv["fault"] = BAD


def check_timeline(ex: DecodeState, values: dict[str, Any]) -> None:
    """Every fault window ends before the load does; a fault at 0s must not remove a baseline that is used."""
    load = values.get("load", LoadSpec())
    load_end = None if load is BAD else load.duration
    starts: list[tuple[float, str]] = []
    for path, fv in ex.fault_raw:
        at, dur, rep = fv.get("at", BAD), fv.get("duration", BAD), fv.get("repeat", Repeat())
        if BAD in (at, dur, rep):
            continue
        starts.append((at, path))
        if load_end is None:
            continue
        name = fv.get("name", "?")
        for i in range(rep.count):
            end = at + i * rep.every + dur
            if end >= load_end:
                where = f"{path}.duration" if i == 0 else f"{path}.repeat"
                label = f"fault window {i + 1} of {name!r}" if rep.count > 1 else f"fault {name!r}"
                verb = "after the load ends" if end > load_end else "just as the load ends"
                tail = "" if end > load_end else ", leaving no time to observe recovery"
                ex.d.issue_at(where, f"{label} ends at {fmt_s(end)}, {verb} at {fmt_s(load_end)}{tail}")
                values["faults"] = BAD
                break
    if not starts:
        return
    first, first_path = min(starts)
    if first > 0:
        return
    users = []
    for path, sv in ex.slo_raw:
        phases = sv.get("phases", Slo.__dataclass_fields__["phases"].default)
        if phases is not BAD and "baseline" in phases:
            users.append(f"SLO {sv.get('name', path)!r}")
    for path, hv in ex.hyp_raw:
        if hv.get("during") == "baseline":
            users.append(f"hypothesis {hv.get('name', path)!r}")
    if users:
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        ex.d.issue_at(
            f"{first_path}.at",
            f"a fault at 0s leaves no baseline, but the baseline phase is used by {shown}; start the first fault later",
        )


def check_custom_stack(ex: DecodeState, path: str, values: dict[str, Any]) -> None:
    """target.services/links/entry: a complete custom stack with unique names and links that exist."""
    services, links, entry = values.get("services"), values.get("links"), values.get("entry")
    platform = values.get("platform", TargetSpec().platform)
    ex.platform = platform if platform is not BAD else "local"
    ex.custom_services = None
    ex.custom_links = None
    if "services" not in values:
        for key in ("links", "entry"):
            if values.get(key) not in (None, (), BAD):
                ex.d.issue_at(f"{path}.{key}", "only used with target.services (your own stack)")
                values[key] = BAD
        return
    if "stack" in values:
        ex.d.issue_at(f"{path}.stack", "leave out 'stack': declaring target.services makes the stack your own")
        values["stack"] = BAD
    else:
        values["stack"] = "custom"
    own = "services[].selector" if ex.platform == "kubernetes" else "services[].replicas"
    for key in ("profile", "replicas") + (("restart_delay",) if ex.platform == "kubernetes" else ()):
        if key in values:
            ex.d.issue_at(f"{path}.{key}", f"only used with the reference stack; your services set their own ({own})")
            values[key] = BAD
    if services is None or services == ():
        ex.d.issue_at(f"{path}.services", "must declare at least one service")
        values["services"] = BAD
        return
    check_platform_keys(ex, path, values)
    if services is BAD:
        return
    names: dict[str, int] = {}
    for i, svc in enumerate(services):
        if svc.name in names:
            ex.d.issue_at(f"{path}.services[{i}].name", f"duplicate service name {svc.name!r} (also services[{names[svc.name]}])")
            values["services"] = BAD
        names.setdefault(svc.name, i)
    if len(services) > MAX_SERVICES:
        ex.d.issue_at(f"{path}.services", f"at most {MAX_SERVICES} services")
        values["services"] = BAD
    ex.custom_services = {s.name: s for s in services}
    ex.custom_link_specs = links if links not in (None, BAD) else ()
    if links not in (None, BAD):
        seen: set[str] = set()
        for i, ln in enumerate(links):
            if ln.name in seen:
                ex.d.issue_at(f"{path}.links[{i}].name", f"duplicate link name {ln.name!r}")
                values["links"] = BAD
            seen.add(ln.name)
            if ex.platform == "local" and (ln.name == "gateway" or re.fullmatch(r"model(-\d+)?", ln.name)):
                ex.d.issue_at(f"{path}.links[{i}].name", f"{quote(ln.name)} is the entry's link name (gateway, model-<i>); choose another, e.g. feature-store")
                values["links"] = BAD
            if ln.service is not None and ln.service not in names:
                ex.d.issue_at(f"{path}.links[{i}].service", f"unknown service {quote(ln.service)}{suggest(ln.service, names)}; services: {', '.join(names)}")
                values["links"] = BAD
    if entry is None:
        ex.d.issue_at(path, "missing required key 'entry': which service clients call, e.g. entry: {service: model}")
        values["entry"] = BAD
    elif entry is not BAD and entry.service not in names:
        ex.d.issue_at(f"{path}.entry.service", f"unknown service {quote(entry.service)}{suggest(entry.service, names)}; services: {', '.join(names)}")
        values["entry"] = BAD
    if ex.platform == "local":
        check_service_ports(ex, path, values)
    if entry not in (None, BAD) and links is not BAD:
        lk = {ln.name for ln in links or ()}
        if ex.platform == "kubernetes":
            if entry.link is not None and entry.link not in lk:
                ex.d.issue_at(f"{path}.entry.link", f"no link {quote(entry.link)}{suggest(entry.link, lk)}; declare it in target.links")
                values["entry"] = BAD
        elif entry.proxy:
            n = ex.custom_services[entry.service].replicas if entry.service in ex.custom_services else 0
            lk |= {"gateway", "model", *(f"model-{i}" for i in range(n))}
        ex.custom_links = lk


_PORT_PLACEHOLDER = re.compile(r"\{port\.([^{}]*)\}")


def check_service_ports(ex: DecodeState, path: str, values: dict[str, Any]) -> None:
    """Local services: ``{port.NAME}`` names a declared port; a pinned port is bound by one replica of one service only."""
    services, entry = values.get("services"), values.get("entry")
    if services in (None, BAD):
        return
    pinned: dict[int, str] = {}
    for i, svc in enumerate(services):
        spath = f"{path}.services[{i}]"
        declared = list(svc.ports)
        texts = [(f"{spath}.command[{j}]", a) for j, a in enumerate(svc.command)] + [(f"{spath}.env.{k}", v) for k, v in svc.env.items()]
        for where, text in texts:
            for m in _PORT_PLACEHOLDER.finditer(text):
                if m.group(1) not in declared:
                    known = f"ports: {', '.join(declared)}" if declared else "declare them: ports: [http, grpc, metrics]"
                    ex.d.issue_at(where, f"placeholder {m.group(0)}: no port {quote(m.group(1))} in {spath}.ports"
                                         f"{suggest(m.group(1), declared)} ({known})")
                    values["services"] = BAD
        for name, number in svc.ports.items():
            if number is None:
                continue
            ppath = f"{spath}.ports.{name}"
            if svc.replicas > 1:
                ex.d.issue_at(ppath, f"port {number} is pinned, but replicas: {svc.replicas} would all bind it (all but one fail "
                                     "with 'address already in use'); write auto for a free port per replica, or replicas: 1")
                values["services"] = BAD
            elif number in pinned:
                ex.d.issue_at(ppath, f"port {number} is pinned twice (also {pinned[number]}); give each its own port, or auto")
                values["services"] = BAD
            pinned.setdefault(number, ppath)
    if entry in (None, BAD) or entry.port is None:
        return
    svc = next((s for s in services if s.name == entry.service), None)
    if svc is not None and entry.port not in svc.ports:
        known = ", ".join(svc.ports) or "none declared"
        ex.d.issue_at(f"{path}.entry.port", f"no port {quote(entry.port)} in the ports of service {quote(svc.name)}"
                                            f"{suggest(entry.port, svc.ports)} (ports: {known})")
        values["entry"] = BAD


#: keys of services[], links[] and entry that only one platform uses
_LOCAL_ONLY: dict[str, tuple[str, ...]] = {
    "services": ("command", "health", "replicas", "env", "cwd", "start_timeout", "ports", "health_port"),
    "links": ("upstream", "env"),
    "entry": ("proxy",),
}
_K8S_ONLY: dict[str, tuple[str, ...]] = {"services": ("selector",), "links": ("service",), "entry": ("url", "link")}


def check_platform_keys(ex: DecodeState, path: str, values: dict[str, Any]) -> None:
    """Keys of a custom stack that the other platform uses are errors; required ones per platform."""
    k8s = ex.platform == "kubernetes"
    other = _LOCAL_ONLY if k8s else _K8S_ONLY
    here = "kubernetes" if k8s else "local"
    groups = (("services", ex.service_keys), ("links", ex.link_keys))
    for section, table in groups:
        for ipath, (node, keys) in table.items():
            for key in other[section]:
                if key in keys:
                    ex.d.issue_at(f"{ipath}.{key}", f"not used on the {here} target" + (
                        " (chaosml does not start your pods: select their Deployment with selector)" if k8s and section == "services"
                        else " (links on kubernetes name proxies of your cluster's Toxiproxy)" if k8s
                        else ""))
                    values[section] = BAD
            need = ("selector",) if k8s and section == "services" else ("command",) if section == "services" else (
                () if k8s else ("upstream",))
            for key in need:
                if key not in keys:
                    ex.d.issue(node, ipath, f"missing required key {key!r}" + (
                        ": the labels of your Deployment's pods, e.g. selector: {app: my-model}" if key == "selector" else ""))
                    values[section] = BAD
    for key in other["entry"]:
        if key in ex.entry_keys:
            ex.d.issue_at(f"{path}.entry.{key}", f"not used on the {here} target")
            values["entry"] = BAD


# -- fault-specific checks ----------------------------------------------------------------


def fault_params(d: Decoder, cls: type, y: Node, path: str, renamed: Mapping[str, str]) -> Any:
    """A fault's params mapping -> its params dataclass (typed from the annotations), then its own checks.

    A key the fault type renamed is reported with its new name (and not again as an unknown key).
    """
    old_keys = [k for k in renamed if y.kind == "map" and k in y.value]
    for key in old_keys:
        kl, kc, _ = y.value[key]
        d.issue((kl, kc), join_path(path, key), f"unknown key {quote(key)}: renamed to {renamed[key]!r}")
    if old_keys:
        y = Node("map", {k: v for k, v in y.value.items() if k not in renamed}, y.line, y.col, y.text, y.path)
    obj = d.dataclass_of(cls, "params", choices=False)(y, path)  # choices: with the other checks, below
    if obj is BAD or old_keys:
        return BAD
    problems = params_issues(obj)
    for field_name, message in problems:
        d.issue_at(join_path(path, field_name) if field_name else path, message)
    return BAD if problems else obj


def check_custom_faults(ex: DecodeState, values: dict[str, Any]) -> None:
    """Every fault type must run on the target's platform and stack, and pass its own check against the stack."""
    from chaosml.targets.capabilities import (
        capability_issue,  # the target classes, looked up only here
    )

    services, links = ex.custom_services, ex.custom_links
    target, load = values.get("target", TargetSpec()), values.get("load", LoadSpec())
    replicas: dict[str, int] | None = None
    if services is None:
        replicas = None if target is BAD else reference_replicas(target.replicas)
    elif ex.platform == "local":
        replicas = {name: svc.replicas for name, svc in services.items()}
    data = None if load is BAD else load.data
    facts = StackFacts(
        platform=ex.platform,
        stack="reference" if services is None else "custom",
        services=REFERENCE_SERVICES if services is None else tuple(services),
        links=None if links is None else frozenset(links),
        link_specs=tuple(ex.custom_link_specs or ()),
        replicas=replicas,
        dataset=None if load is BAD or data is not None else load.dataset,
        data_file=None if data is None else data.file,
        data_features=None if data is None else data.features or data_file_features(data),
    )
    if services is not None and ex.mix_cohorts and "adversarial-evasion" in ex.mix_cohorts:
        ex.d.issue_at("load.mix.adversarial-evasion", "adversarial-evasion needs the reference stack's model; not available with target.services")
        values["load"] = BAD
    types = registry()
    for path, fv in ex.fault_raw:
        ftype, params = fv.get("type", BAD), fv.get("params")
        if ftype is BAD or ftype not in types:
            continue
        issue = capability_issue(types[ftype], facts.platform, facts.stack)
        if issue is not None:
            ex.d.issue_at(f"{path}.type", issue)
            values["faults"] = BAD
            continue
        if params in (None, BAD):
            continue
        for field_path, message in types[ftype].check(params, facts):
            ex.d.issue_at(f"{path}.{field_path}", message)
            values["faults"] = BAD


#: Most bytes of a data file's first line read for its column names.
MAX_HEADER_BYTES = 1 << 20


def data_file_features(data: DataSpec) -> tuple[str, ...] | None:
    """The feature columns a data file may have, from its header (every column but label, entity and
    cohort); None when the file cannot be read now (the run reports that)."""
    path = Path(data.file)
    try:
        if path.suffix.lower() == ".csv":
            with path.open("rb") as f:
                first = f.readline(MAX_HEADER_BYTES).decode("utf-8-sig")
            columns = next(csv.reader(io.StringIO(first)), [])
        else:
            import pyarrow.parquet as pq  # the parquet extra; without it, nothing is known now

            columns = list(pq.read_schema(path).names)
    except (OSError, UnicodeDecodeError, ImportError, ValueError, csv.Error):
        return None
    skip = {data.label, data.entity, data.cohort}
    return tuple(c for c in columns if c and c not in skip) or None
