"""Issue 14 item 9: a journal never says 'running' for a run whose harness is gone; ledger paths are absolute."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from chaosml.history import list_runs
from chaosml.journal import JOURNAL_FILE, Journal, load
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.rollback import rollback

EXPERIMENT = """\
version: 1
title: states
load: {users: 1, duration: 1s}
faults:
  - {name: kill, type: pod-kill, at: 100ms, duration: 200ms, params: {service: model}}
"""
ROOT = Path(__file__).resolve().parents[2]


def test_a_journal_left_running_by_a_killed_harness_reads_as_interrupted(tmp_path: Path) -> None:
    """The harness is killed after writing its first journal (e.g. SIGKILL during target start, or a SIGINT before the first ledger entry)."""
    run_dir = tmp_path / "reports" / "run-1"
    code = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from chaosml.journal import Journal
        from chaosml.loader import load_experiment_text
        run_dir = Path({str(run_dir)!r}); run_dir.mkdir(parents=True)
        Journal(run_dir, "run-1", load_experiment_text({EXPERIMENT!r}, "e.yaml"), "e.yaml", "")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, check=False)
    assert json.loads((run_dir / JOURNAL_FILE).read_text())["status"] == "running"  # what the file says
    record = load(run_dir)
    assert record.status == "interrupted"
    assert record.reason is not None and "harness is gone" in record.reason and "chaosml rollback" in record.reason
    (summary,) = list_runs(tmp_path / "reports")
    assert summary.status == "interrupted"


def test_a_running_journal_of_a_live_harness_stays_running(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    Journal(run_dir, "run", load_experiment_text(EXPERIMENT, "e.yaml"), "e.yaml", "")  # this process is its harness
    assert load(run_dir).status == "running"


def test_an_older_journal_without_a_harness_is_interrupted_unless_the_ledger_has_a_live_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAOSML_STATE_DIR", str(tmp_path / "state"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    journal = Journal(run_dir, "run", load_experiment_text(EXPERIMENT, "e.yaml"), "e.yaml", "")
    del journal.data["harness"]
    journal.flush(force=True)
    assert load(run_dir).status == "interrupted"
    Ledger().open(run_id="run", run_dir=run_dir, kind="target", type="local", record={})  # this (live) process
    assert load(run_dir).status == "running"


def test_a_relative_reports_dir_is_stored_absolute_so_rollback_from_elsewhere_marks_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "reports" / "run-1").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "reports" / "run-1" / JOURNAL_FILE).write_text(json.dumps({"schema": "chaosml.journal/2", "status": "running"}))
    ledger = Ledger(tmp_path / "ledger.jsonl")
    monkeypatch.chdir(project)
    ledger.open(run_id="run-1", run_dir=Path("reports/run-1"), kind="fault", type="pod-kill", record={}, fault="k", injection=0)
    (entry,) = ledger.open_entries()
    assert entry.run_dir == str(project / "reports" / "run-1")
    d = json.loads(ledger.path.read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    d["harness_pid"], d["harness_start"] = dead.pid, 1.0
    ledger.path.write_text(json.dumps(d) + "\n")
    monkeypatch.chdir(elsewhere)
    report = rollback(ledger)
    assert report.failed == [] and len(report.undone) == 1
    assert json.loads((project / "reports" / "run-1" / JOURNAL_FILE).read_text())["status"] == "partial"
