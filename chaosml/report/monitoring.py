"""The report's "Monitoring and alerts" section (experiments with ``monitoring:``); used by chaosml.report.document.

Per injection, the detection table puts side by side what the load saw first (users), what the
stack said itself (readiness, breaker) and each expected alert (fired after how long, or missed,
and how long after the recover it resolved); then the false alarms and each query's value per phase.
"""

from __future__ import annotations

from typing import Any

from chaosml.model.catalog import ALERT_INJECTION_SLIS, ALERT_RUN_SLIS
from chaosml.report.blocks import Block, Heading, Para, Table


def _first(sign: dict[str, Any] | None) -> str:
    return "nothing" if sign is None else f"{sign['ttd_s']:.2f} s ({sign['what']})"


def _alert_cell(d: dict[str, Any]) -> str:
    if d["status"] == "missed":
        return f"{d['alert']}: MISSED"
    if d["status"] == "already firing":
        return f"{d['alert']}: already firing at apply"
    if d["status"] == "not observed":
        return f"{d['alert']}: not fired when the run ended (before recover + grace)"
    ttr = d["time_to_resolve_s"]
    resolved = "still firing at the end" if ttr is None else f"resolved {ttr:+.2f} s after recover"
    return f"{d['alert']}: fired after {d['time_to_alert_s']:.2f} s, {resolved}"


def monitoring_section(analysis: dict[str, Any]) -> list[Block]:
    """Blocks of the section, or [] when the experiment has no monitoring."""
    mon = analysis.get("monitoring")
    if not mon:
        return []
    blocks: list[Block] = [Heading("Monitoring and alerts")]
    problems = [p for p in (mon.get("problem"), mon.get("poll_problem")) if p]
    src = mon.get("prometheus_url") or "no Prometheus"
    blocks.append(Para(
        f"Prometheus: {src}. Alerts read from /api/v1/alerts every {mon['poll_interval_s']:g} s during the run (a firing "
        f"time is late by at most that); an expected alert counts when it starts firing between apply and recover + "
        f"{mon['grace_s']:g} s (grace). " + " ".join(problems)
    ))
    detections = mon.get("detections") or []
    rows, kinds = [], []
    for row in mon.get("by_source") or []:
        mine = [d for d in detections if d["fault"] == row["fault"] and d["injection"] == row["injection"]]
        rows.append((
            f"{row['fault']} #{row['injection'] + 1}",
            _first(row.get("users")),
            _first(row.get("stack")),
            "; ".join(_alert_cell(d) for d in mine) or (_first(row.get("alert")) if row.get("alert") else "no alert expected"),
        ))
        kinds.append("fail" if any(d["status"] == "missed" for d in mine) else "")
    if rows:
        blocks.append(Heading("Detection per injection", 3))
        blocks.append(Table(("injection", "load-observed (users)", "stack signal", "expected alerts"), tuple(rows), tuple(kinds)))
    alarms = mon.get("false_alarms") or []
    blocks.append(Para(
        "False alarms (alerts that started firing with no fault active): "
        + (", ".join(f"{a['alert']} at {a['start_s']:+.1f} s" for a in alarms) if alarms else "none") + "."
    ))
    intervals = mon.get("alert_intervals") or []
    if intervals:
        blocks.append(Table(
            ("alert", "labels", "pending since", "firing from", "until"),
            tuple((i["alert"], i["labels"] or "-", "-" if i.get("pending_since_s") is None else f"{i['pending_since_s']:+.1f} s",
                   f"{i['start_s']:+.1f} s", "end of run" if i["end_s"] is None else f"{i['end_s']:+.1f} s")
                  for i in intervals),
        ))
    queries = mon.get("queries") or {}
    if queries:
        phases = [p["name"] for p in analysis.get("phases") or []]
        qrows = tuple(
            (f"prom:{name}", *("no data" if q["by_phase"].get(ph) is None else f"{q['by_phase'][ph]:.4g}" for ph in phases))
            for name, q in queries.items()
        )
        blocks.append(Heading("Queries per phase (mean of the points in the phase; step = window)", 3))
        blocks.append(Table(("query", *phases), qrows))
        blocks.append(Table(("query", "PromQL"), tuple((f"prom:{n}", " ".join(q["query"].split())) for n, q in queries.items())))
    blocks.append(Table(("figure", "definition"), tuple((k, v) for k, v in {**ALERT_INJECTION_SLIS, **ALERT_RUN_SLIS}.items())))
    return blocks
