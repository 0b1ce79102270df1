"""A real Prometheus scraping a real run of the reference stack: PromQL SLIs against the load's, time to alert against ground truth.

Tolerances, stated:

- PromQL error ratio vs the load-observed error ratio over the same fault window: within 0.05
  absolute. The two count the same requests, but Prometheus' points are rates over the 2 s before
  each 1 s step, so the points at the window's edges mix in-fault and healthy traffic.
- time to alert: Prometheus fires a rule at the first evaluation at least ``for`` after its
  expression first held (``activeAt``): ground truth = activeAt + for. The poller sees the firing
  state at most one poll interval (0.5 s) later, so measured - ground truth must lie in [0, 1 s]
  (one scrape interval). From the apply, time to alert lies in [for, for + scrape + evaluation +
  poll] = [5, 7.5] s: the failed scrape comes within a scrape interval of the kill and is
  evaluated within an evaluation interval.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.monitoring.promserver import require_prometheus

pytestmark = pytest.mark.slow

QUERY = '(sum(rate(chaosml_gateway_requests_total{status=~"5.."}[2s])) or vector(0)) / sum(rate(chaosml_gateway_requests_total[2s]))'
EXPERIMENT = f"""
version: 1
title: Monitoring real run
release: naive
target: {{platform: local, profile: naive, replicas: 3, restart_delay: 12s}}
load: {{users: 6, spawn_rate: 20, rate_per_user: 5, duration: 30s, mix: {{clean: 1.0}}}}
steady_state:
  window: 1s
  hold: 2
  slos:
    - {{name: prom-errors, sli: "prom:error_ratio", op: "<=", target: 0.01, phases: [baseline]}}
hypotheses:
  - {{name: prom-errors-kill, during: kill, sli: "prom:error_ratio", op: ">=", target: 0.1}}
  - {{name: load-errors-kill, during: kill, sli: error_ratio, op: ">=", target: 0.1}}
  - {{name: alert-fast, fault: kill, sli: alert_ttd_s, op: "<=", target: 10}}
  - {{name: no-missed, fault: kill, sli: missed_alerts, op: "<=", target: 0}}
  - {{name: no-false-alarms, sli: false_alarms, op: "<=", target: 0}}
faults:
  - {{name: kill, type: pod-kill, at: 8s, duration: 12s, params: {{service: model, mode: one}}}}
monitoring:
  prometheus: {{local: true, scrape_interval: 1s}}
  queries:
    error_ratio: '{QUERY}'
  alerts:
    - {{name: ChaosmlReplicaDown, faults: [kill]}}
"""


def _chaosml(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaosml.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    require_prometheus()
    tmp = tmp_path_factory.mktemp("monitoring")
    exp = tmp / "monitoring.yaml"
    exp.write_text(EXPERIMENT)
    proc = _chaosml("run", str(exp), "--reports-dir", str(tmp / "reports"))
    (run_dir,) = [p for p in (tmp / "reports").iterdir() if p.is_dir()]
    return proc, run_dir


def _verdicts(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {f"{v['name']}@{v['scope']}": v for v in json.loads((run_dir / "analysis.json").read_text())["verdicts"]}


def test_run_passes_and_leaves_nothing(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, run_dir = run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (run_dir / "prometheus.json").is_file() and (run_dir / "target" / "prometheus" / "prometheus.yml").is_file()
    left = subprocess.run(["pgrep", "-af", str(run_dir)], capture_output=True, text=True).stdout
    assert [ln for ln in left.splitlines() if "pgrep" not in ln] == []  # prometheus stopped with the target


def test_promql_error_ratio_equals_load_observed(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = run
    v = _verdicts(run_dir)
    prom, load = v["prom-errors-kill@fault kill"], v["load-errors-kill@fault kill"]
    assert prom["verdict"] == load["verdict"] == "pass"
    assert abs(prom["measured"] - load["measured"]) <= 0.05, (prom, load)
    assert v["prom-errors@phase baseline"]["measured"] == 0.0  # no 5xx before the kill, in either view
    assert prom["samples"] >= 10  # points of a 12 s window at a 1 s step


def test_time_to_alert_within_one_scrape_interval_of_ground_truth(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = run
    journal = json.loads((run_dir / "journal.json").read_text())
    apply_t = next(e["t"] for e in journal["fault_events"] if e["action"] == "apply")
    firing = [e for e in journal["target_events"] if e["kind"] == "alert_firing" and e["subject"] == "ChaosmlReplicaDown"]
    assert len(firing) == 1, firing
    active_at = firing[0]["detail"]["active_at"]
    assert 0.0 <= active_at - apply_t <= 2.0  # the first failed scrape (1 s) evaluated at the next evaluation (1 s)
    truth = active_at + 5.0  # the rule's for: 5s
    assert 0.0 <= firing[0]["t"] - truth <= 1.0
    analysis = json.loads((run_dir / "analysis.json").read_text())
    (det,) = analysis["monitoring"]["detections"]
    assert det["status"] == "fired" and 5.0 <= det["time_to_alert_s"] <= 7.5
    v = _verdicts(run_dir)
    assert v["alert-fast@fault kill"]["measured"] == pytest.approx(det["time_to_alert_s"])
    assert v["no-missed@fault kill"]["verdict"] == v["no-false-alarms@whole run"]["verdict"] == "pass"


def test_report_rerenders_offline(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = run
    before = _verdicts(run_dir)
    (run_dir / "analysis.json").unlink()
    proc = _chaosml("report", str(run_dir))  # the run's Prometheus is gone: prometheus.json is enough
    assert proc.returncode in (0, 1), proc.stderr
    after = _verdicts(run_dir)
    assert {k: (v["verdict"], v["measured"]) for k, v in after.items()} == {k: (v["verdict"], v["measured"]) for k, v in before.items()}
    text = (run_dir / "report.md").read_text()
    assert "ChaosmlReplicaDown" in text
