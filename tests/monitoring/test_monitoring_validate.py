"""validate: bad PromQL and unknown alert names are located errors, checked against a real Prometheus (or offline by promtool)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosml.errors import ExperimentError
from chaosml.loader import load_experiment
from chaosml.monitoring.server import promtool_binary
from tests.monitoring.promserver import real_prometheus

RULES = """
groups:
  - name: t
    rules:
      - alert: KnownAlert
        expr: vector(1) < 0
"""


def experiment(prometheus: str, query: str, alert: str) -> str:
    return f"""version: 1
title: validate against a server
load: {{duration: 30s}}
faults:
  - {{name: kill, type: pod-kill, at: 5s, duration: 5s}}
monitoring:
  prometheus: {prometheus}
  queries:
    ok: 'sum(rate(up[5s]))'
    broken: '{query}'
  alerts:
    - {{name: {alert}, faults: [kill]}}
"""


def errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "e.yaml"
    path.write_text(text)
    try:
        load_experiment(path)
    except ExperimentError as e:
        return [str(i).removeprefix(f"{path}:") for i in e.issues]
    return []


def test_bad_promql_and_unknown_alert_against_a_real_server(tmp_path: Path) -> None:
    with real_prometheus(tmp_path / "prom", RULES) as url:
        got = errors(tmp_path, experiment(f"{{url: '{url}'}}", "sum(rate(up[5s])", "KnownAlrt"))
        assert got == [
            "10:13: monitoring.queries.broken: bad PromQL: 1:17: parse error: unclosed left parenthesis",
            f"12:14: monitoring.alerts[0].name: unknown alert 'KnownAlrt' (did you mean 'KnownAlert'?); alerting rules in {url}: KnownAlert",
        ]
        assert errors(tmp_path, experiment(f"{{url: '{url}'}}", "max(up)", "KnownAlert")) == []


def test_bad_promql_offline_with_promtool(tmp_path: Path) -> None:
    if promtool_binary() is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    got = errors(tmp_path, experiment("{local: true}", "rate(up)", "ChaosmlReplicaDown"))
    assert got == ['10:13: monitoring.queries.broken: bad PromQL: 1:6: parse error: expected type range vector in call to function '
                   '"rate", got instant vector']
    bad_rules = tmp_path / "rules.yml"
    bad_rules.write_text("groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: rate(up)\n")
    got = errors(tmp_path, experiment(f"{{local: true, rules: '{bad_rules}'}}", "max(up)", "A"))
    assert len(got) == 1 and got[0].startswith("7:36: monitoring.prometheus.rules: not a usable rule file:") and "range vector" in got[0]
