"""One short real run of feature-store-outage (timeout) per release: the hardened stack falls back, the naive one hangs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXPERIMENT = """version: 1
title: Short feature store hang ({profile})
release: {profile}
target: {{platform: local, profile: {profile}, replicas: 2, restart_delay: 1s}}
load: {{users: 6, spawn_rate: 20, rate_per_user: 5, duration: 12s, request_timeout: 1s, mix: {{clean: 1.0}}}}
steady_state:
  window: 1s
  hold: 2
  slos:
    - {{name: availability, sli: success_ratio, op: ">=", target: 0.95, phases: [after]}}
hypotheses:
  - {{name: available-during-hang, during: hang, sli: success_ratio, op: ">=", target: 0.99, min_samples: 5}}
  - {{name: fallback-takes-over, during: hang, sli: fallback_ratio, op: ">=", target: 0.9, min_samples: 5}}
faults:
  - name: hang
    type: feature-store-outage
    at: 3s
    duration: 5s
    params: {{mode: timeout}}
"""


def run(tmp: Path, profile: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    path = tmp / f"hang-{profile}.yaml"
    path.write_text(EXPERIMENT.format(profile=profile))
    reports = tmp / f"reports-{profile}"
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "run", str(path), "--reports-dir", str(reports)],
        check=False, capture_output=True, text=True, timeout=120,
    )
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    return proc, run_dir


def verdicts(run_dir: Path) -> dict[str, dict]:
    return {v["name"]: v for v in json.loads((run_dir / "analysis.json").read_text())["verdicts"]}


def test_hardened_falls_back_where_naive_hangs(tmp_path: Path) -> None:
    hardened, h_dir = run(tmp_path, "hardened")
    naive, n_dir = run(tmp_path, "naive")
    assert hardened.returncode == 0, hardened.stdout + hardened.stderr
    assert naive.returncode == 1, naive.stdout + naive.stderr
    h, n = verdicts(h_dir), verdicts(n_dir)
    assert h["available-during-hang"]["verdict"] == "pass" and h["fallback-takes-over"]["measured"] >= 0.9
    assert n["available-during-hang"]["verdict"] == "fail"
    assert n["available-during-hang"]["measured"] < h["available-during-hang"]["measured"] - 0.3
    for run_dir in (h_dir, n_dir):
        journal = json.loads((run_dir / "journal.json").read_text())
        events = [(e["action"], e["ok"]) for e in journal["fault_events"]]
        assert events == [("apply", True), ("recover", True)]
        assert journal["target"]["links"]["feature-store"]["listen"] in journal["target"]["replica_redis_url"]
