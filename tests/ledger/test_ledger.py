"""The rollback ledger: open/close bookkeeping, torn lines, staleness, and offline undo of orphans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaosml.ledger import Ledger
from chaosml.procs import RUN_TOKEN_ENV, processes_of_run
from chaosml.rollback import rollback


def test_open_close_and_torn_last_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    a = ledger.open(run_id="r", run_dir=tmp_path, kind="fault", type="pod-kill", record={"victims": ["m-0"]}, fault="k", injection=0)
    b = ledger.open(run_id="r", run_dir=tmp_path, kind="target", type="local", record={"token": "x"})
    ledger.close(a)
    with open(ledger.path, "a") as fh:
        fh.write('{"op": "close", "id": "' + b[:10])  # a crash mid-write: no newline, torn JSON
    (entry,) = ledger.open_entries()
    assert entry.id == b and entry.kind == "target"
    assert not entry.stale  # this process wrote it and is alive
    assert ledger.stale_entries() == []


def _dead_pid() -> tuple[int, int]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid, 1


def test_rollback_kills_orphans_by_token_and_closes_the_entry(tmp_path: Path) -> None:
    token = f"test-{os.getpid()}-{time.time_ns()}"
    env = {**os.environ, RUN_TOKEN_ENV: token}
    # an orphan in its own session, like a replica whose harness was SIGKILLed
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while orphan.pid not in processes_of_run(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.pid in processes_of_run(token)
        ledger = Ledger(tmp_path / "ledger.jsonl")
        ledger.open(run_id="r1", run_dir=tmp_path, kind="target", type="local", record={"token": token})
        # pretend the harness that wrote it is dead
        lines = ledger.path.read_text().splitlines()
        d = json.loads(lines[0])
        d["harness_pid"], d["harness_start"] = _dead_pid()
        ledger.path.write_text(json.dumps(d) + "\n")
        (journal := tmp_path / "journal.json").write_text(json.dumps({"status": "running"}))

        assert rollback(ledger, dry_run=True).undone == ["would undo local target of run r1"]
        assert orphan.poll() is None
        report = rollback(ledger)
        assert report.failed == [] and len(report.undone) == 1
        assert orphan.wait(timeout=5) == -9
        assert ledger.open_entries() == []
        assert json.loads(journal.read_text())["status"] == "partial"
        assert rollback(ledger).undone == []  # idempotent
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


def test_live_runs_entries_are_not_touched(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open(run_id="live", run_dir=tmp_path, kind="fault", type="pod-kill", record={}, fault="k", injection=0)
    report = rollback(ledger)
    assert report.undone == [] and len(report.skipped) == 1
    assert len(ledger.open_entries()) == 1


def test_unknown_type_is_reported_with_its_record(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open(run_id="r", run_dir=tmp_path, kind="fault", type="no-such-fault", record={"x": 1}, fault="k", injection=0)
    d = json.loads(ledger.path.read_text())
    d["harness_pid"], d["harness_start"] = _dead_pid()
    ledger.path.write_text(json.dumps(d) + "\n")
    report = rollback(ledger)
    assert len(report.failed) == 1 and '"x": 1' in report.failed[0]
    assert len(ledger.open_entries()) == 1


@pytest.mark.slow
def test_a_sigkilled_run_is_rolled_back_and_the_next_run_refuses_until_then(tmp_path: Path) -> None:
    """Kill the harness with SIGKILL mid-fault: orphans remain; `chaosml run` refuses; rollback cleans up."""
    tmpl = (Path(__file__).parents[1] / "e2e" / "short.yaml.tmpl").read_text()
    exp = tmp_path / "exp.yaml"
    exp.write_text(tmpl.format(profile="hardened", duration="30s"))
    reports = tmp_path / "reports"
    cmd = [sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = list(reports.iterdir()) if reports.exists() else []
        if runs:
            try:
                data = json.loads((runs[0] / "journal.json").read_text())
            except (OSError, ValueError):
                data = {}
            if data.get("fault_events"):
                journal = runs[0] / "journal.json"
                break
        time.sleep(0.1)
    assert journal is not None, "the run never applied a fault"
    proc.kill()  # SIGKILL the harness alone: its children live on in their own sessions
    proc.wait()
    (target,) = [e for e in Ledger().open_entries() if e.kind == "target" and e.run_dir == str(journal.parent)]
    token, spawned = target.record["token"], target.spawned
    assert {s.name for s in spawned} >= {"redis", "gateway", "load"}, spawned  # recorded at spawn time
    orphans = processes_of_run(token, spawned)
    assert orphans, "expected orphaned stack processes after SIGKILL"
    # redis-server rewrites its environment block (process title): it is found by its recorded spawn
    redis = [p for p in orphans if "redis-server" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert redis and not set(redis) & set(processes_of_run(token)), (redis, orphans)

    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 5 and "chaosml rollback" in refused.stderr, refused.stderr
    assert len(list(reports.iterdir())) == 1  # refused before creating a run dir

    rb = subprocess.run([sys.executable, "-m", "chaosml.cli", "rollback"], capture_output=True, text=True, timeout=60, check=False)
    assert rb.returncode == 0, rb.stdout + rb.stderr
    assert "stopped" in rb.stdout
    assert processes_of_run(token, spawned) == []  # token-carrying and recorded processes alike
    assert json.loads(journal.read_text())["status"] == "partial"
    # the partial run still renders
    rep = subprocess.run([sys.executable, "-m", "chaosml.cli", "report", str(journal.parent)], capture_output=True, text=True, timeout=60, check=False)
    # it exits by the run's policy (issue 15 item 9): a run its harness never finished is no pass, exit 2
    assert rep.returncode == 2 and "exit 2: interrupted or aborted" in rep.stdout, rep.stdout + rep.stderr
    assert "PARTIAL" in (journal.parent / "report.md").read_text()
