"""The shipped naive monitoring experiment, run for real: the report shows the missed detection the load saw at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.monitoring.promserver import require_prometheus

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_naive_release_misses_the_feature_store_outage(tmp_path: Path) -> None:
    require_prometheus()
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "run", "experiments/monitoring-naive.yaml", "--reports-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=REPO,  # the rule file's path is relative to the repository
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    verdicts = {v["name"]: v for v in analysis["verdicts"]}
    assert [d["status"] for d in analysis["monitoring"]["detections"]] == ["missed"]
    assert verdicts["no-missed-alert"]["measured"] == 1.0 and verdicts["alerted-fast"]["verdict"] == "fail"
    assert verdicts["no-confident-wrong"]["verdict"] == "fail"  # what users got while no alert fired
    assert verdicts["no-false-alarm"]["verdict"] == "pass"
    assert verdicts["prom-availability"]["verdict"] == "pass"  # no 5xx: an error-ratio alert cannot see it
    assert "ChaosmlHighErrorRatio: MISSED" in (run_dir / "report.md").read_text()
    left = subprocess.run(["pgrep", "-af", str(run_dir)], capture_output=True, text=True).stdout
    assert [ln for ln in left.splitlines() if "pgrep" not in ln] == []
