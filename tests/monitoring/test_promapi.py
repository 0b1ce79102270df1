"""The Prometheus client, the alert poller and the PromQL check against recorded 2.42 answers (a fake API on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosml.model.experiment import MonitoringSpec, PrometheusSpec
from chaosml.monitoring import promql
from chaosml.monitoring.promapi import PromQueryError, PromUnreachable, alerts, query, query_range
from chaosml.monitoring.watch import AlertPoller, RunMonitor, _rfc3339
from chaosml.records import TargetEvent
from chaosml.targets.local import free_ports
from tests.monitoring.promserver import FakeApi, recorded


def test_recorded_answers_parse() -> None:
    with FakeApi() as api:
        api.answers["/api/v1/alerts"] = (200, recorded("alerts.json"))
        api.answers["/api/v1/query_range"] = (200, recorded("query_range_empty.json"))
        api.answers["/api/v1/query"] = (400, recorded("query_bad_data.json"))
        got = alerts(api.url)
        assert [(a["labels"]["alertname"], a["state"]) for a in got] == [("AlwaysFiring", "firing"), ("LongPending", "pending")]
        assert query_range(api.url, "up", 0, 10, 1) == []
        with pytest.raises(PromQueryError) as e:
            query(api.url, "sum(rate(up[5s])", 0)
        assert e.value.error_type == "bad_data" and "unclosed left parenthesis" in e.value.message


def test_unreachable_and_not_prometheus() -> None:
    with pytest.raises(PromUnreachable):
        alerts(f"http://127.0.0.1:{free_ports(1)[0]}", timeout_s=1)
    with FakeApi() as api:
        api.answers["/api/v1/alerts"] = (200, ["not", "the", "api"])
        with pytest.raises(PromUnreachable, match="not a Prometheus API answer"):
            alerts(api.url)


def test_active_at_with_nanoseconds() -> None:
    assert _rfc3339("2026-11-30T07:13:23.525157738Z") == pytest.approx(1796022803.525157738, abs=1e-6)
    assert _rfc3339("2026-11-30T08:13:23+01:00") == 1796022803.0
    assert _rfc3339("yesterday") is None and _rfc3339(None) is None


def test_poller_journals_transitions_once_each() -> None:
    events: list[TargetEvent] = []
    doc: dict[str, Any] = recorded("alerts.json")
    firing, pending = doc["data"]["alerts"]
    with FakeApi() as api:
        poller = AlertPoller(api.url, 0.1, events.append)
        api.answers["/api/v1/alerts"] = (200, {"status": "success", "data": {"alerts": [pending]}})
        poller.poll_once()
        poller.poll_once()  # no change: no event
        api.answers["/api/v1/alerts"] = (200, {"status": "success", "data": {"alerts": [dict(pending, state="firing"), firing]}})
        poller.poll_once()
        api.answers["/api/v1/alerts"] = (503, None)
        poller.poll_once()
        poller.poll_once()  # one event for a run of failures
        api.answers["/api/v1/alerts"] = (200, {"status": "success", "data": {"alerts": []}})
        poller.poll_once()
    kinds = [(e.kind, e.subject) for e in events]
    assert kinds == [
        ("alert_pending", "LongPending"),
        ("alert_firing", "LongPending"), ("alert_firing", "AlwaysFiring"),
        ("alert_poll_failed", "prometheus"),
        ("alert_resolved", "LongPending"), ("alert_resolved", "AlwaysFiring"),
    ]
    assert events[1].detail["active_at"] == pytest.approx(_rfc3339(pending["activeAt"]))
    record = poller.record()
    assert record == {"polls": 4, "failures": 2, "last_error": poller.last_error, "interval_s": 0.1, "last_poll_t": record["last_poll_t"]}
    assert record["last_poll_t"] == events[-1].t  # the last successful read is the one that saw them resolved


def test_run_monitor_stores_queries_and_errors(tmp_path: Path) -> None:
    series = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1.0, "0.5"]]}]}}
    with FakeApi() as api:
        api.answers["/api/v1/alerts"] = (200, {"status": "success", "data": {"alerts": []}})
        api.answers["/api/v1/query_range"] = (200, series)
        spec = MonitoringSpec(PrometheusSpec(url=api.url), {"a": "vector(0.5)"}, poll_interval=0.05)
        mon = RunMonitor(api.url, spec, 1.0, lambda e: None)
        mon.start()
        assert mon.finish(tmp_path, 0.0, 2.0) is None
        import json

        doc = json.loads((tmp_path / "prometheus.json").read_text())
        assert doc["queries"]["a"] == {"query": "vector(0.5)", "step": 1.0, "start": 0.0, "end": 2.0, "series": series["data"]["result"]}
        assert doc["alert_polls"]["polls"] >= 2 and doc["alert_polls"]["failures"] == 0
        api.answers["/api/v1/query_range"] = (400, recorded("query_bad_data.json"))
        mon2 = RunMonitor(api.url, spec, 1.0, lambda e: None)
        assert mon2.finish(tmp_path, 0.0, 2.0) == "queries failed: a"
        assert "unclosed left parenthesis" in json.loads((tmp_path / "prometheus.json").read_text())["queries"]["a"]["error"]


def test_promql_check_maps_bad_data_per_query() -> None:
    with FakeApi() as api:
        api.answers["/api/v1/query"] = (400, recorded("query_bad_data.json"))
        problems, how = promql.check_queries({"bad": "sum(rate(up[5s])"}, api.url)
    assert how == f"checked against {api.url}" and "unclosed left parenthesis" in problems["bad"]


def test_promql_check_offline_with_promtool() -> None:
    if promql.promtool_binary() is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    problems, how = promql.check_queries({"ok": "sum(rate(up[5s]))", "bad": "rate(up)"}, f"http://127.0.0.1:{free_ports(1)[0]}")
    assert set(problems) == {"bad"} and "expected type range vector" in problems["bad"]
    assert how.startswith("checked offline with promtool (")
