"""A real local run whose pod-kill selects nothing at run time ends INCONCLUSIVE (exit 1), never "every hypothesis held"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent

#: validate refuses `service: modle`, so the run is driven through the Python API, as a plugin or a
#: game-day could: the model is the quickstart-like short experiment with the typo put back in.
SCRIPT = """
import dataclasses, sys
from pathlib import Path
from chaosml.loader import load_experiment_text
from chaosml.report import report_run
from chaosml.runner import Runner

text, reports = sys.argv[1], Path(sys.argv[2])
ex = load_experiment_text(text, "short.yaml")
fault = ex.faults[0]
ex = dataclasses.replace(ex, faults=(dataclasses.replace(fault, params=dataclasses.replace(fault.params, service="modle")),))
result = report_run(Runner(ex, experiment_file="short.yaml", experiment_source=text, reports_dir=reports).run())
print(result.run_dir)
sys.exit(result.exit_code)
"""


def test_a_pod_kill_that_kills_nothing_is_inconclusive_not_a_pass(tmp_path: Path) -> None:
    text = (HERE / "short.yaml.tmpl").read_text().format(profile="hardened", duration="18s")
    text = text.replace('  - {name: replica-back, fault: kill, sli: ready_s, op: "<=", target: 8}\n', "")  # as in the issue
    proc = subprocess.run([sys.executable, "-c", SCRIPT, text, str(tmp_path / "reports")],
                          check=False, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    why = "killed nothing: there are no replicas of service 'modle'"
    assert f"NO EFFECT: {why}" in proc.stderr  # the progress line at apply
    journal = json.loads((run_dir / "journal.json").read_text())
    applies = [e for e in journal["fault_events"] if e["action"] == "apply"]
    assert [e.get("no_effect") for e in applies] == [why, why] and journal["exit_code"] == 1
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert analysis["passed"] is False and analysis["no_effect"] == {"kill": f"injections #1, #2 {why}"}
    verdicts = {v["name"]: v for v in analysis["verdicts"]}
    assert verdicts["available-during-kill"]["verdict"] == "inconclusive"
    assert verdicts["available-during-kill"]["detail"].startswith(f"fault kill had no effect: injections #1, #2 {why}")
    assert f"NO EFFECT: fault kill: injections #1, #2 {why}" in (run_dir / "report.md").read_text()
    shown = subprocess.run([sys.executable, "-m", "chaosml.cli", "report", str(run_dir)],
                           check=False, capture_output=True, text=True, timeout=60)
    assert f"  NO EFFECT    fault kill: injections #1, #2 {why}; every verdict scoped to it is inconclusive" in shown.stdout
