"""The local target's own Prometheus: scrapes the gateway and every replica directly, evaluates the shipped rules, leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from chaosml.model.experiment import PrometheusSpec
from chaosml.monitoring.promapi import query, rules
from chaosml.procs import RUN_TOKEN_ENV, processes_of_run
from chaosml.targets.local import LocalTarget, undo_local_target
from tests.monitoring.promserver import require_prometheus

pytestmark = pytest.mark.slow


def _up(url: str) -> dict[str, float]:
    res = query(url, "up", time.time())["result"]
    return {f"{r['metric']['job']}/{r['metric'].get('replica', '')}": float(r["value"][1]) for r in res}


def test_local_prometheus_scrapes_the_stack_and_the_offline_undo_kills_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_prometheus()
    token = f"prom16-test-{os.getpid()}-{time.time_ns()}"
    monkeypatch.setenv(RUN_TOKEN_ENV, token)  # as the runner does: every process of the run carries it
    run_dir = tmp_path / "run"
    t = LocalTarget(run_dir, profile="naive", replicas=2, restart_delay_s=30.0, prometheus=PrometheusSpec(local=True, scrape_interval=0.5))
    t.start()
    try:
        url = t.prometheus_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        assert t.describe()["groups"]["monitoring"] == ["prometheus"]
        want = {"chaosml-gateway/": 1.0, "chaosml-replicas/model-0": 1.0, "chaosml-replicas/model-1": 1.0}
        deadline = time.monotonic() + 20
        while _up(url) != want:  # the first scrapes land within a scrape interval or two
            assert time.monotonic() < deadline, _up(url)
            time.sleep(0.25)
        names = {r["name"] for g in rules(url) for r in g["rules"]}
        assert names == {"ChaosmlHighErrorRatio", "ChaosmlFallbackSurge", "ChaosmlLowConfidenceShare", "ChaosmlFeatureStoreErrors",
                         "ChaosmlReplicaDown"}
        t.kill(["model-1"])  # restart delay 30 s: stays down
        deadline = time.monotonic() + 10
        while _up(url).get("chaosml-replicas/model-1") != 0.0:
            assert time.monotonic() < deadline, _up(url)
            time.sleep(0.25)
        pid = t.describe()["pids"]["prometheus"]
        # the harness dies here: `chaosml rollback` finds the run's processes by token, Prometheus among them
        message = undo_local_target({"token": token})
        assert "stopped" in message
        assert processes_of_run(token, []) == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        t.stop()
    out = subprocess.run(["pgrep", "-f", str(run_dir)], check=False, capture_output=True, text=True)
    assert out.stdout.strip() == ""
