"""The report's monitoring section and the alert panel of the timeline plot, from a synthetic run with a missed and a fired alert."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from chaosml.analysis import analyze
from chaosml.model.experiment import AlertExpectation, MonitoringSpec, PrometheusSpec
from chaosml.report.blocks import Para, Table
from chaosml.report.document import build_document
from chaosml.report.plots import plot_timeline
from chaosml.report.render import _json_safe
from tests.analysis.analysis_synth import experiment, journal, samples
from tests.analysis.test_analysis_monitoring import QUERY, alert, prom_doc, series


def _analysis() -> dict[str, Any]:
    exp = dataclasses.replace(experiment(), monitoring=MonitoringSpec(
        PrometheusSpec(local=True), {"error_ratio": QUERY},
        (AlertExpectation("ReplicaDown", ("kill",)), AlertExpectation("HighErrorRatio", ("kill",))), grace=5.0,
    ))
    events = [alert(12.5, "firing", "ReplicaDown"), alert(16.0, "resolved", "ReplicaDown"), alert(2.0, "firing", "Noisy")]
    j = journal(duration=30, injections=[{"fault": "kill", "apply": 10, "recover": 15}], target_events=events)
    j["prometheus"] = prom_doc({"error_ratio": {"query": QUERY, "step": 1.0, "series": series([(11.0, 0.25), (12.0, 0.35)])}})
    return dict(_json_safe(analyze(exp, j, samples(30, 50)).to_dict()))


def test_detection_table_false_alarms_and_queries() -> None:
    analysis = _analysis()
    blocks = build_document(analysis, {}, {})
    tables = [b for b in blocks if isinstance(b, Table)]
    detect = next(t for t in tables if t.headers == ("injection", "load-observed (users)", "stack signal", "expected alerts"))
    (row,) = detect.rows
    assert row[0] == "kill #1" and row[1] == "nothing" and row[2] == "nothing"
    assert row[3] == "ReplicaDown: fired after 2.50 s, resolved +1.00 s after recover; HighErrorRatio: MISSED"
    assert detect.row_kinds == ("fail",)
    assert any(isinstance(b, Para) and b.text == "False alarms (alerts that started firing with no fault active): Noisy at +2.0 s." for b in blocks)
    q = next(t for t in tables if t.headers[0] == "query" and "kill" in t.headers)
    assert q.rows[0][q.headers.index("kill")] == "0.3" and q.rows[0][q.headers.index("baseline")] == "no data"


def test_timeline_plot_gets_an_alert_panel(tmp_path: Path) -> None:
    analysis = _analysis()
    with_alerts = plot_timeline(analysis, tmp_path / "with.png")
    analysis.pop("monitoring")
    without = plot_timeline(analysis, tmp_path / "without.png")
    from matplotlib.image import imread

    assert imread(with_alerts).shape[0] > imread(without).shape[0]  # the extra panel, one row per alertname
