"""A real short run with load.shape (a spike) on the local target: each stage gets its rate, every request is counted, host load is kept."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXPERIMENT = """\
version: 1
title: spike run
target: {platform: local, profile: hardened, replicas: 2, restart_delay: 1s}
load:
  duration: 22s
  spawn_rate: 20
  rate_per_user: 4
  shape: {type: spike, base: 4, peak: 16, at: 6s, for: 8s}
steady_state:
  slos:
    - {name: availability, sli: success_ratio, op: ">=", target: 0.95, phases: [baseline, after]}
hypotheses:
  - {name: available-during-kill, during: kill, sli: success_ratio, op: ">=", target: 0.9}
faults:
  - {name: kill, type: pod-kill, at: 8s, duration: 2s, params: {service: model}}
"""


def test_a_spike_run_delivers_each_stage_and_counts_every_request(tmp_path: Path) -> None:
    exp = tmp_path / "spike.yaml"
    exp.write_text(EXPERIMENT)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                          capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    stages = analysis["load_stages"]
    assert [s["phase"] for s in stages] == ["stage 1 (4 users)", "stage 2 (16 users)", "stage 3 (4 users)"]
    # the users curve plan showed is the one the load process drove. Stages last 6-8 s: a user stopped at the
    # spike's end may still send the request its pacing had due at that instant (up to 12 here; with 4 s stages
    # that alone was 19% of the last stage's 64 requests: CI saw 1.17-1.19)
    for s in stages:
        assert not s["short"] and 0.85 <= s["ratio"] <= 1.15, stages
    assert stages[1]["achieved_rps"] > 3 * stages[0]["achieved_rps"]
    assert "## Load shape: requested vs achieved per stage" in (run_dir / "report.md").read_text()
    # issue 15 item 9: the console's request count is the report's (no request before the recorded load start)
    said = int(re.search(r"load finished: (\d+) requests", proc.stderr + proc.stdout).group(1))  # type: ignore[union-attr]
    counted = next(p for p in analysis["phases"] if p["name"] == "all")["slis"]["requests"]
    assert said == counted
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["host_load"]["samples"] >= 10 and journal["host_load"]["loadgen_cpu"] is not None
    assert journal["analysis"]["load_stages"][1]["requested_rps"] == 64.0
