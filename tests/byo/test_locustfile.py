"""load.locustfile: a user's own locustfile sends the load; validate, plan, exit 4 before anything starts, and a real run."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosml.errors import EXIT_INVALID, ExperimentError, InvalidInputError
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.plan import build_plan, render_plan
from chaosml.runner import Runner
from chaosml.workload.prepare import check_locustfile

BASE = "version: 1\ntitle: mine\nload: {duration: 10s, users: 2, locustfile: %s}\n"


def test_a_locustfile_load_validates_and_plan_says_what_is_sent() -> None:
    exp = load_experiment_text(BASE % "mine.py", "e.yaml")
    assert exp.load.locustfile == "mine.py" and exp.load.rate_per_user is None  # the file's own wait_time
    assert load_experiment_text(BASE.replace("users: 2", "users: 2, rate_per_user: 3") % "mine.py", "e.yaml").load.rate_per_user == 3
    text = render_plan(build_plan(exp))
    assert "requests from your locustfile mine.py (its User classes, pointed at the target; no labels: accuracy and " \
           "confident-wrong are not measured)" in text


def test_what_the_locustfile_decides_is_not_also_set() -> None:
    text = "version: 1\ntitle: mine\nload:\n  locustfile: mine.txt\n  mix: {clean: 1}\n  dataset: breast_cancer\n"
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(text, "e.yaml")
    assert [str(i) for i in exc.value.issues] == [
        "e.yaml:4:15: load.locustfile: must be a .py file (a locustfile), got 'mine.txt'",
        "e.yaml:5:8: load.mix: the locustfile decides what is sent: drop load.mix (or load.locustfile)",
        "e.yaml:6:12: load.dataset: the locustfile decides what is sent: drop load.dataset (or load.locustfile)",
    ]


def test_a_missing_or_broken_locustfile_is_exit_4_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read it"):
        check_locustfile(str(tmp_path / "nope.py"))
    (tmp_path / "bad.py").write_text("from locust import HttpUser\nclass A(HttpUser:\n    pass\n")
    with pytest.raises(InvalidInputError, match=r"bad.py:2:\d+: load.locustfile: "):
        check_locustfile(str(tmp_path / "bad.py"))
    text = BASE % str(tmp_path / "bad.py")
    started: list[str] = []
    runner = Runner(load_experiment_text(text, "e.yaml"), experiment_file="e.yaml", experiment_source=text,
                    reports_dir=tmp_path / "reports", ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO(),
                    target_factory=lambda *a: started.append("target"))
    with pytest.raises(InvalidInputError) as exc:
        runner.run()
    assert exc.value.exit_code == EXIT_INVALID and started == []
    assert json.loads((runner.run_dir / "journal.json").read_text())["status"] == "invalid"


@pytest.mark.slow
def test_a_real_run_with_a_locustfile_measures_availability_and_leaves_accuracy_inconclusive(tmp_path: Path) -> None:
    from chaosml.workload.prepare import prepare_workload

    body = prepare_workload(load_experiment_text("version: 1\ntitle: x\n", "x.yaml"), "x").payloads["clean"][0]["body"]
    (tmp_path / "mine.py").write_text(
        "from locust import FastHttpUser, task\n\n\n"
        "class Mine(FastHttpUser):\n"
        "    @task\n"
        "    def predict(self):\n"
        f"        self.client.post('/predict', json={body!r})\n"
    )
    exp = tmp_path / "mine.yaml"
    exp.write_text(
        "version: 1\ntitle: my locustfile\ntarget: {platform: local, profile: hardened, replicas: 2}\n"
        f"load: {{duration: 8s, users: 4, rate_per_user: 5, locustfile: {tmp_path / 'mine.py'}}}\n"
        "hypotheses:\n"
        "  - {name: available, during: kill, sli: success_ratio, op: '>=', target: 0.9}\n"
        "  - {name: accurate, during: kill, sli: accuracy, op: '>=', target: 0.9}\n"
        "faults:\n  - {name: kill, type: pod-kill, at: 3s, duration: 2s, params: {service: model}}\n"
    )
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                          capture_output=True, text=True, timeout=150)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a verdict is INCONCLUSIVE: no pass
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    verdicts = {v["name"]: v for v in analysis["verdicts"]}
    assert verdicts["available"]["verdict"] == "pass" and verdicts["available"]["samples"] > 20
    assert verdicts["accurate"]["verdict"] == "inconclusive"
    assert "the workload has no labels (load.locustfile" in verdicts["accurate"]["detail"]
    rows = (run_dir / "samples.csv").read_text().splitlines()[1:]
    assert len(rows) == next(p for p in analysis["phases"] if p["name"] == "all")["slis"]["requests"]
    delivered = [d for d in analysis["load_delivery"] if d["phase"] == "baseline"]
    assert delivered and not delivered[0]["short"]  # rate_per_user paces the file's users: delivery is judged


def test_a_fault_that_switches_chaosmls_own_load_is_refused_beside_a_locustfile() -> None:
    text = (BASE % "mine.py") + "faults:\n  - {name: adv, type: adversarial-payload, at: 2s, duration: 2s}\n"
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(text, "e.yaml")
    assert [str(i) for i in exc.value.issues] == [
        "e.yaml:5:23: faults[0].type: adversarial-payload switches the cohorts of chaosml's own load; with load.locustfile "
        "your file decides what is sent, so it would have no effect (drop one of them)"]
