"""Monitoring SLIs and alert detection over synthetic runs: missed alerts, false alarms, prom:NAME values, no data is never 0."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from chaosml.analysis import analyze
from chaosml.model.experiment import AlertExpectation, Hypothesis, MonitoringSpec, PrometheusSpec, Slo
from tests.analysis.analysis_synth import T0, experiment, journal, samples

QUERY = 'sum(rate(chaosml_gateway_requests_total{status=~"5.."}[2s])) / sum(rate(chaosml_gateway_requests_total[2s]))'


def alert(t: float, kind: str, name: str, active_at: float | None = None) -> dict[str, Any]:
    """An alert event at offset ``t`` (firing/resolved) as the runner's poller journals it."""
    detail: dict[str, Any] = {"labels": {"alertname": name, "severity": "page"}}
    if active_at is not None:
        detail["active_at"] = T0 + active_at
    return {"t": t, "kind": f"alert_{kind}", "subject": name, "detail": detail}


def mon_experiment(hypotheses: tuple[Hypothesis, ...] = (), slos: tuple[Slo, ...] = (), grace: float = 5.0,
                   alerts: tuple[AlertExpectation, ...] = (AlertExpectation("ReplicaDown", ("kill",)),)) -> Any:
    exp = experiment(hypotheses=hypotheses, slos=slos)  # fault kill at 10 s for 5 s
    mon = MonitoringSpec(PrometheusSpec(local=True), {"error_ratio": QUERY}, alerts, grace=grace)
    return dataclasses.replace(exp, monitoring=mon)


def series(points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    return [{"metric": {}, "values": [[T0 + t, str(v)] for t, v in points]}]


def prom_doc(queries: dict[str, Any] | None = None, polls: int = 60, failures: int = 0) -> dict[str, Any]:
    return {"url": "http://127.0.0.1:9", "alert_polls": {"polls": polls, "failures": failures, "last_error": None},
            "queries": queries if queries is not None else {}}


def run(exp: Any, events: list[dict[str, Any]], prom: dict[str, Any]) -> Any:
    j = journal(duration=30, injections=[{"fault": "kill", "apply": 10, "recover": 15}], target_events=events)
    j["prometheus"] = prom
    return analyze(exp, j, samples(30, 50))


def verdict(an: Any, name: str) -> Any:
    return next(v for v in an.verdicts if v.name == name)


H_TTD = Hypothesis("tta", "alert_ttd_s", "<=", 6.0, fault="kill")
H_MISSED = Hypothesis("missed", "missed_alerts", "<=", 0.0, fault="kill")
H_FALSE = Hypothesis("false", "false_alarms", "<=", 0.0)


def test_alert_fired_gives_time_to_alert_and_resolve() -> None:
    events = [alert(15.5 - 0.3, "firing", "ReplicaDown", active_at=10.2), alert(17.0, "resolved", "ReplicaDown")]
    an = run(mon_experiment((H_TTD, H_MISSED, H_FALSE)), events, prom_doc())
    d = an.monitoring["detections"][0]
    assert (d["status"], d["time_to_alert_s"], d["time_to_resolve_s"]) == ("fired", pytest.approx(5.2), pytest.approx(2.0))
    assert (verdict(an, "tta").verdict, verdict(an, "tta").measured) == ("pass", pytest.approx(5.2))
    assert (verdict(an, "missed").verdict, verdict(an, "missed").measured) == ("pass", 0.0)
    assert (verdict(an, "false").verdict, verdict(an, "false").measured) == ("pass", 0.0)
    inj = an.injections[0]  # the synthetic users saw nothing: the alert is the first sign (TTD source "alert")
    assert (inj.detected_source, inj.ttd_s, inj.detected_by) == ("alert", pytest.approx(5.2), "alert ReplicaDown firing")
    assert an.monitoring["alert_intervals"] == [
        {"alert": "ReplicaDown", "labels": "severity=page", "start_s": 15.2, "end_s": 17.0, "pending_since_s": 10.2}
    ]


def test_missed_alert_is_a_failed_detection_not_a_number() -> None:
    an = run(mon_experiment((H_TTD, H_MISSED)), [], prom_doc())  # the alert never fired
    assert an.monitoring["detections"][0]["status"] == "missed"
    v = verdict(an, "tta")
    assert (v.verdict, v.measured) == ("fail", None) and "no expected alert fired in 1 of 1 injections" in v.detail
    assert (verdict(an, "missed").verdict, verdict(an, "missed").measured) == ("fail", 1.0)


def test_alert_firing_after_window_plus_grace_is_missed_and_a_false_alarm() -> None:
    events = [alert(21.0, "firing", "ReplicaDown"), alert(23.0, "resolved", "ReplicaDown")]  # recover 15 + grace 5 = 20
    an = run(mon_experiment((H_MISSED, H_FALSE)), events, prom_doc())
    assert an.monitoring["detections"][0]["status"] == "missed"
    assert an.monitoring["false_alarms"] == [{"alert": "ReplicaDown", "labels": "severity=page", "start_s": 21.0}]
    assert (verdict(an, "false").verdict, verdict(an, "false").measured) == ("fail", 1.0)


def test_false_alarm_in_baseline() -> None:
    events = [alert(3.0, "firing", "Noisy"), alert(4.0, "resolved", "Noisy"), alert(12.0, "firing", "ReplicaDown")]
    an = run(mon_experiment((H_FALSE, H_TTD)), events, prom_doc())
    v = verdict(an, "false")
    assert (v.verdict, v.measured) == ("fail", 1.0) and "Noisy" in v.detail
    assert verdict(an, "tta").measured == pytest.approx(2.0)


def test_alert_already_firing_at_apply_is_inconclusive() -> None:
    events = [alert(8.0, "firing", "ReplicaDown")]  # fired before the fault: not a detection of it
    an = run(mon_experiment((H_TTD, H_MISSED)), events, prom_doc())
    assert an.monitoring["detections"][0]["status"] == "already firing"
    assert verdict(an, "tta").verdict == "inconclusive" and verdict(an, "missed").verdict == "inconclusive"


def test_alert_verdicts_inconclusive_when_alerts_were_not_read() -> None:
    an = run(mon_experiment((H_TTD, H_FALSE)), [], prom_doc(polls=0))
    assert {verdict(an, "tta").verdict, verdict(an, "false").verdict} == {"inconclusive"}
    an = run(mon_experiment((H_TTD, H_FALSE)), [], prom_doc(polls=10, failures=5))
    assert "5 of 10 reads of /api/v1/alerts failed" in verdict(an, "false").detail


def test_prom_sli_is_the_mean_of_the_points_in_each_phase() -> None:
    pts = [(float(t), 0.0) for t in range(1, 10)] + [(float(t), 0.3) for t in range(10, 16)] + [(float(t), 0.0) for t in range(16, 30)]
    slo = Slo("prom-avail", "prom:error_ratio", "<=", 0.01, ("baseline", "after"))
    hyp = Hypothesis("prom-errors", "prom:error_ratio", ">=", 0.25, during="kill")
    an = run(mon_experiment((hyp,), (slo,)), [], prom_doc({"error_ratio": {"query": QUERY, "step": 1.0, "series": series(pts)}}))
    v = verdict(an, "prom-errors")
    assert (v.verdict, v.measured, v.samples) == ("pass", pytest.approx(0.3), 6)  # points at 10..15 (recover at 15 is in)
    base = next(v for v in an.verdicts if v.name == "prom-avail" and v.phase == "baseline")
    assert (base.verdict, base.measured, base.samples) == ("pass", 0.0, 9)
    assert an.monitoring["queries"]["error_ratio"]["by_phase"]["kill"] == pytest.approx(0.3)


@pytest.mark.parametrize("entry,why", [
    ({"query": QUERY, "step": 1.0, "series": []}, "no data: the query returned no series (query: " + QUERY),
    ({"query": QUERY, "step": 1.0, "series": series([(1.0, 0.1)])}, "no data in kill: no finite point"),
    ({"query": QUERY, "step": 1.0, "series": series([(11.0, float("nan"))])}, "no data in kill"),
    ({"query": QUERY, "step": 1.0, "series": series([(11.0, 0.1)]) * 2}, "the query returned 2 series; aggregate it"),
    ({"query": QUERY, "step": 1.0, "error": "bad_data: parse error"}, "query failed: bad_data: parse error"),
    (None, "not collected"),
])
def test_prom_sli_without_data_is_inconclusive_never_zero(entry: dict[str, Any] | None, why: str) -> None:
    hyp = Hypothesis("prom-errors", "prom:error_ratio", "<=", 0.5, during="kill")
    an = run(mon_experiment((hyp,)), [], prom_doc({} if entry is None else {"error_ratio": entry}))
    v = verdict(an, "prom-errors")
    assert (v.verdict, v.measured) == ("inconclusive", None)
    assert why in v.detail


def test_no_prometheus_data_at_all_is_inconclusive() -> None:
    j = journal(duration=30, injections=[{"fault": "kill", "apply": 10, "recover": 15}])  # no journal["prometheus"]
    an = analyze(mon_experiment((H_TTD, Hypothesis("p", "prom:error_ratio", "<=", 1, during="kill"))), j, samples(30, 50))
    assert {v.verdict for v in an.verdicts if v.kind == "hypothesis"} == {"inconclusive"}
    assert an.monitoring["problem"]


def test_alert_firing_since_before_the_load_is_a_false_alarm() -> None:
    events = [alert(-3.0, "firing", "AlwaysOn"), alert(-2.0, "firing", "Brief"), alert(-1.0, "resolved", "Brief")]
    an = run(mon_experiment((H_FALSE,)), events, prom_doc())
    assert [a["alert"] for a in an.monitoring["false_alarms"]] == ["AlwaysOn"]  # Brief resolved before the load started
    assert verdict(an, "false").verdict == "fail"


def test_run_ending_before_recover_plus_grace_is_not_a_missed_alert() -> None:
    prom = prom_doc()
    prom["alert_polls"]["last_poll_t"] = T0 + 17.0  # the alerts were last read 2 s after recover; grace is 5 s
    an = run(mon_experiment((H_TTD, H_MISSED)), [], prom)
    assert an.monitoring["detections"][0]["status"] == "not observed"
    assert {verdict(an, "tta").verdict, verdict(an, "missed").verdict} == {"inconclusive"}
    prom["alert_polls"]["last_poll_t"] = T0 + 21.0  # read past recover + grace: a real miss
    an = run(mon_experiment((H_TTD, H_MISSED)), [], prom)
    assert an.monitoring["detections"][0]["status"] == "missed" and verdict(an, "missed").verdict == "fail"
