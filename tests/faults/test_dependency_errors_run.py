"""Ground truth, one short real run: dependency-errors' empty and malformed bodies on the client -> gateway link are
``invalid`` requests, so success_ratio falls by the injected share and a success_ratio hypothesis fails (promise 1)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaosml.analysis.samples import read_samples

pytestmark = pytest.mark.slow

SHARE = 0.3
EXPERIMENT = f"""version: 1
title: Empty and malformed 200s to the clients
release: hardened
target: {{platform: local, profile: hardened, replicas: 2, restart_delay: 1s}}
load: {{users: 6, spawn_rate: 20, rate_per_user: 5, duration: 20s, request_timeout: 2s, mix: {{clean: 1.0}}}}
steady_state:
  window: 1s
  hold: 2
  slos:
    - {{name: availability, sli: success_ratio, op: ">=", target: 0.95, phases: [baseline, after]}}
hypotheses:
  - {{name: available-despite-empty, during: empty, sli: success_ratio, op: ">=", target: 0.99}}
  - {{name: available-despite-malformed, during: malformed, sli: success_ratio, op: ">=", target: 0.99}}
  - {{name: no-invalid-when-empty, during: empty, sli: invalid_ratio, op: "<=", target: 0.01}}
faults:
  - name: empty
    type: dependency-errors
    at: 3s
    duration: 5s
    params: {{link: gateway, error_share: {SHARE}, mode: empty}}
  - name: malformed
    type: dependency-errors
    at: 10s
    duration: 5s
    params: {{link: gateway, error_share: {SHARE}, mode: malformed}}
"""


def test_empty_and_malformed_bodies_lower_success_by_the_injected_share(tmp_path: Path) -> None:
    path = tmp_path / "bad-answers.yaml"
    path.write_text(EXPERIMENT)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(path), "--reports-dir", str(reports)],
                          check=False, capture_output=True, text=True, timeout=180)
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the hypotheses fail: no false pass
    journal = json.loads((run_dir / "journal.json").read_text())
    verdicts = {v["name"]: v for v in json.loads((run_dir / "analysis.json").read_text())["verdicts"]}
    windows = {}
    for e in journal["fault_events"]:
        assert e["ok"] and not e.get("no_effect"), e
        windows.setdefault(e["fault"], {})[e["action"]] = e["t"]

    df = read_samples(run_dir / "samples.csv")
    end = df["t"] + df["latency_ms"].fillna(0.0) / 1000.0
    assert set(df["outcome"].dropna()) <= {"ok", "invalid"}, df["outcome"].value_counts()
    for fault, hypothesis in (("empty", "available-despite-empty"), ("malformed", "available-despite-malformed")):
        apply_t, recover_t = windows[fault]["apply"], windows[fault]["recover"]
        # the analysis' figure, recomputed from the samples: requests whose lifetime overlaps the window
        touching = df[(df["t"] < recover_t) & ((df["t"] >= apply_t) | (end > apply_t))]
        v = verdicts[hypothesis]
        assert v["verdict"] == "fail", v
        assert v["samples"] == len(touching)
        assert v["measured"] == pytest.approx((touching["outcome"] == "ok").sum() / len(touching))
        # requests sent and answered inside the window all crossed the toxic: binomial(n, SHARE) of them are invalid
        inside = df[(df["t"] >= apply_t) & (end <= recover_t)]
        n = len(inside)
        invalid = int((inside["outcome"] == "invalid").sum())
        assert n >= 60, n
        assert abs(invalid / n - SHARE) <= 4 * math.sqrt(SHARE * (1 - SHARE) / n), (fault, invalid, n)
        assert (inside["status"] == 200).all()  # every one of them a 200: the old ok
        assert inside.loc[inside["outcome"] == "invalid", "prediction"].isna().all()
    assert verdicts["no-invalid-when-empty"]["verdict"] == "fail"
    # away from the windows nothing is invalid (the toxic is gone on recover)
    empty, malformed = windows["empty"], windows["malformed"]
    clear = ((end < empty["apply"]) | ((df["t"] > empty["recover"] + 0.5) & (end < malformed["apply"]))
             | (df["t"] > malformed["recover"] + 0.5))
    assert clear.sum() >= 100 and (df.loc[clear, "outcome"] == "ok").all()
    report = (run_dir / "report.md").read_text()
    assert "| phase | requests | primary |" in report and "| invalid |" in report  # the outcome mix has the class
    for fault in ("empty", "malformed"):  # and the degradation sentence says how many
        assert f"{fault} (dependency-errors, 1 injection): served primary" in report
        assert re.search(rf"{fault} \(dependency-errors.*invalid \d+\.\d+% of requests", report), fault
