"""The ``monitoring:`` section and its checks across sections; used by chaosml.loader.schema and chaosml.loader.checks.

- ``prometheus``: ``url`` (any reachable Prometheus, e.g. a cluster's) or ``local: true`` (the local
  target starts one; reference stack only), not both; ``scrape_interval`` and ``rules`` only with local.
- ``queries``: name -> PromQL; each becomes the SLI ``prom:NAME``. Bad PromQL is a located issue
  when it can be checked (chaosml.monitoring.promql: the server, else promtool).
- ``alerts``: ``{name, faults}``: the alert (``alertname``) expected to fire during every injection
  of each named fault. Names must be alerting rules of the rule file in use (local) or of the server
  (url, when it answers); faults must be declared.
- SLIs: ``prom:NAME`` is judged like a sample SLI (``during``); ``alert_ttd_s`` and ``missed_alerts``
  per injection of a ``fault`` that some alert expects; ``false_alarms`` over the whole run (no scope).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chaosml.decoding import BAD, Node, quote, suggest
from chaosml.loader.state import DecodeState
from chaosml.model import catalog
from chaosml.model.experiment import AlertExpectation, MonitoringSpec, PrometheusSpec
from chaosml.monitoring.promql import alert_names_in_rules, alert_names_on_server, check_queries, check_rule_file
from chaosml.monitoring.server import shipped_rules

#: A query's name: what follows ``prom:`` in an SLI.
QUERY_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: Most queries and expected alerts of one experiment.
MAX_QUERIES = 100


def decode_monitoring(ex: DecodeState, y: Node, path: str) -> Any:
    """``monitoring:`` -> MonitoringSpec (or BAD); remembers what the cross-section checks need."""
    d = ex.d
    schema = {
        "prometheus": ("prometheus", lambda py, ppath: _prometheus(ex, py, ppath)),
        "queries": ("queries", d.mapping_of(d.string())),
        "alerts": ("alerts", d.section_list(lambda ay, apath, i: _alert(ex, ay, apath))),
        "grace": ("grace", d.duration()),
        "poll_interval": ("poll_interval", d.duration(positive=True)),
    }
    values = d.fields(y, path, schema, required=("prometheus",))
    if values is None:
        return BAD
    ex.monitoring_queries = set()
    poll = values.get("poll_interval")
    if poll not in (None, BAD) and not 0.1 <= poll <= 60:
        d.issue_at(f"{path}.poll_interval", "must be within [100ms, 60s]")
        values["poll_interval"] = BAD
    queries = values.get("queries")
    if queries not in (None, BAD):
        if len(queries) > MAX_QUERIES:
            d.issue_at(f"{path}.queries", f"at most {MAX_QUERIES} queries, got {len(queries)}")
            values["queries"] = BAD
        for name in queries:
            if not QUERY_NAME_RE.fullmatch(name):
                d.issue_at(f"{path}.queries.{name}", f"{quote(name)} is not a query name (a letter or '_', then letters, digits, '_')")
                values["queries"] = BAD
            else:
                ex.monitoring_queries.add(name)
    ex.monitoring_path = path
    ex.monitoring_values = values
    return d.build(MonitoringSpec, values)


def _prometheus(ex: DecodeState, y: Node, path: str) -> Any:
    d = ex.d
    url_re = r"https?://[^\s/]+(/\S*)?"
    schema = {
        "url": ("url", d.optional(d.matching(url_re, lambda v: f"must be an http:// or https:// URL, got {quote(v)}"))),
        "local": ("local", d.boolean()),
        "scrape_interval": ("scrape_interval", d.duration(positive=True)),
        "rules": ("rules", d.optional(d.string())),
    }
    values = d.fields(y, path, schema)
    if values is None:
        return BAD
    url, local = values.get("url"), values.get("local", False)
    if url not in (None, BAD) and local is True:
        d.issue_at(f"{path}.url", "give either url (your Prometheus) or local: true (chaosml starts one), not both")
        values["url"] = BAD
    elif url is None and local is False:
        d.issue(y, path, "say which Prometheus: url: http://HOST:9090, or local: true (the local target starts one)")
        values["local"] = BAD
    for key in ("scrape_interval", "rules"):
        if key in values and local is not True:
            if local is False:
                d.issue_at(f"{path}.{key}", "only used with local: true (your own Prometheus has its own)")
            values[key] = BAD
    if values.get("scrape_interval") not in (None, BAD) and not 0.1 <= values["scrape_interval"] <= 60:
        d.issue_at(f"{path}.scrape_interval", "must be within [100ms, 60s]")
        values["scrape_interval"] = BAD
    rules = values.get("rules")
    if rules not in (None, BAD):
        problem = check_rule_file(Path(rules))
        if problem:
            d.issue_at(f"{path}.rules", f"not a usable rule file: {problem}")
            values["rules"] = BAD
    return d.build(PrometheusSpec, values)


def _alert(ex: DecodeState, y: Node, path: str) -> Any:
    d = ex.d
    schema = {
        "name": ("name", d.string()),
        "faults": ("faults", d.list_of(d.string(), non_empty=True, unique=True)),
    }
    values = d.fields(y, path, schema, required=("name", "faults"))
    if values is None:
        return BAD
    ex.alert_raw.append((path, values))
    return d.build(AlertExpectation, values)


def sli_problem(ex: DecodeState, sli: str, kind: str) -> str | None:
    """Why a monitoring SLI (``prom:NAME`` or an alert SLI) cannot be used by an SLO, hypothesis or abort condition; None when it can."""
    if catalog.is_prom_sli(sli):
        name = sli.removeprefix(catalog.PROM_SLI_PREFIX)
        declared = ex.monitoring_queries
        if declared is None:
            return f"{quote(sli)} needs a monitoring section declaring the query {quote(name)} under monitoring.queries"
        if name not in declared:
            valid = ", ".join(f"prom:{n}" for n in sorted(declared)) or "none declared"
            return f"unknown query {quote(name)}{suggest(name, declared)}; monitoring.queries: {valid}"
        if kind == "abort":
            return f"{sli} is read from Prometheus after the run, not watched live; abort conditions take success_ratio, latency_p99_ms, throughput_rps"
        return None
    if sli in catalog.MONITORING_SLIS:
        if ex.monitoring_queries is None:
            return f"{sli} needs a monitoring section (monitoring.prometheus and monitoring.alerts)"
        if kind != "hypothesis":
            return f"{sli} is measured from alerts per injection or per run; use it in a hypothesis"
    return None


def check_alert_hypothesis(ex: DecodeState, path: str, hv: dict[str, Any], fault_names: set[str] | None) -> None:
    """``alert_ttd_s``/``missed_alerts`` need a ``fault`` some alert expects; ``false_alarms`` takes no scope."""
    sli = hv["sli"]
    if sli in catalog.ALERT_RUN_SLIS:
        for key in ("during", "fault", "cohort"):
            if hv.get(key) not in (None, BAD):
                ex.d.issue_at(f"{path}.{key}", f"{sli} counts alerts over the whole run: leave out {key!r}")
                hv[key] = BAD
        return
    if hv.get("during") not in (None, BAD):
        ex.d.issue_at(f"{path}.during", f"{sli} is measured per injection of a fault: use 'fault:', not 'during:'")
        hv["during"] = BAD
        return
    fault = hv.get("fault")
    if fault is None:
        ex.d.issue_at(path, f"missing required key 'fault': {sli} is measured per injection of the named fault")
        hv["fault"] = BAD
        return
    if fault is BAD or (fault_names is not None and fault not in fault_names):
        if fault is not BAD and fault_names is not None:
            declared = ", ".join(sorted(fault_names)) or "none"
            ex.d.issue_at(f"{path}.fault", f"unknown fault {quote(fault)}{suggest(fault, fault_names)}; declared faults: {declared}")
            hv["fault"] = BAD
        return
    expecting = {f for _, av in ex.alert_raw if av.get("faults") not in (None, BAD) for f in av["faults"]}
    if fault not in expecting:
        ex.d.issue_at(f"{path}.fault", f"no monitoring.alerts entry expects an alert for fault {quote(fault)}, so {sli} has nothing to measure")
        hv["fault"] = BAD


def check_monitoring(ex: DecodeState, values: dict[str, Any], fault_names: set[str] | None) -> None:
    """Across sections: local Prometheus on the local reference stack only, alert names and faults, PromQL."""
    mon = values.get("monitoring")
    mv = ex.monitoring_values
    if mon is None or mv is None:
        return
    path = ex.monitoring_path
    target = values.get("target")
    prom = mv.get("prometheus", BAD)
    if prom is not BAD and prom.local and target is not BAD and target is not None:
        if target.platform != "local" or target.stack != "reference":
            where = "platform kubernetes" if target.platform != "local" else "your own stack (target.services)"
            ex.d.issue_at(f"{path}.prometheus.local", f"the local Prometheus scrapes the local reference stack; with {where} give url: of your Prometheus")
            values["monitoring"] = BAD
    for apath, av in ex.alert_raw:
        for i, f in enumerate(av.get("faults") or () if av.get("faults") is not BAD else ()):
            if fault_names is not None and f not in fault_names:
                declared = ", ".join(sorted(fault_names)) or "none"
                ex.d.issue_at(f"{apath}.faults[{i}]", f"unknown fault {quote(f)}{suggest(f, fault_names)}; declared faults: {declared}")
                values["monitoring"] = BAD
    if prom is BAD:
        return
    known, source = _known_alerts(prom)
    if known is not None:
        for apath, av in ex.alert_raw:
            name = av.get("name", BAD)
            if name is not BAD and name not in known:
                valid = ", ".join(sorted(known)) or "none"
                ex.d.issue_at(f"{apath}.name", f"unknown alert {quote(name)}{suggest(name, known)}; alerting rules in {source}: {valid}")
                values["monitoring"] = BAD
    queries = mv.get("queries")
    if queries not in (None, BAD):
        problems, _ = check_queries(queries, prom.url)
        for name, problem in problems.items():
            ex.d.issue_at(f"{path}.queries.{name}", f"bad PromQL: {problem}")
            values["monitoring"] = BAD


def _known_alerts(prom: PrometheusSpec) -> tuple[set[str] | None, str]:
    """The alert names the Prometheus of the run will evaluate, and where they come from (None: cannot tell now)."""
    if prom.local:
        rules = Path(prom.rules) if prom.rules else shipped_rules()
        return alert_names_in_rules(rules), str(prom.rules or "the shipped chaosml/stack/alerts.yml")
    assert prom.url is not None
    return alert_names_on_server(prom.url), prom.url
