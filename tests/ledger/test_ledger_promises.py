"""Issue 14: the ledger keeps its promises: failed recovers, torn and malformed lines, bystanders, own-stack orphans."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from runner_doubles import RecordingTarget, fake_load

from chaosml import runner as runner_mod
from chaosml.cli import main
from chaosml.errors import EXIT_RECOVERY_FAILED, RecoveryError
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.procs import RUN_TOKEN_ENV, zombie_or_gone
from chaosml.records import FaultEvent
from chaosml.rollback import rollback
from chaosml.runner import Runner

EXPERIMENT = """\
version: 1
title: promises
load: {users: 1, duration: 1s}
faults:
  - {name: kill, type: pod-kill, at: 100ms, duration: 200ms, params: {service: model}}
"""


def _dead_harness() -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid, 1.0


def _stale_open(path: Path, **fields: Any) -> str:
    """An open line written by a harness that is gone."""
    pid, start = _dead_harness()
    d = {"op": "open", "id": fields.pop("id", f"e{time.time_ns()}"), "t": time.time(), "run_id": "r", "run_dir": str(path.parent),
         "kind": "target", "type": "local", "fault": None, "injection": None, "record": {}, "harness_pid": pid,
         "harness_start": start, **fields}
    with open(path, "a") as fh:
        fh.write(json.dumps(d) + "\n")
    return str(d["id"])


# ---------------------------------------------------------------------------- item 3
class _FailingRecover:
    """Applies fine; its recover reports ok=False (e.g. a toxic still listed after removal)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {"victims": ["model-0"]}

    def apply(self, injection: int) -> FaultEvent:
        return FaultEvent(time.time(), self.spec.name, injection, "apply", True)

    def recover(self, injection: int) -> FaultEvent:
        return FaultEvent(time.time(), self.spec.name, injection, "recover", False, (), {"error": "toxic still listed"})


def _runner(tmp_path: Path, ledger: Ledger) -> Runner:
    experiment = load_experiment_text(EXPERIMENT, "e.yaml")
    return Runner(experiment, experiment_file="e.yaml", experiment_source=EXPERIMENT, reports_dir=tmp_path / "reports",
                  target_factory=lambda exp, run_dir, on_event: RecordingTarget(), ledger=ledger, out=io.StringIO())


def test_a_recover_that_returns_not_ok_exits_5_naming_what_is_left_and_the_next_run_says_why_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Runner, "_prepare_payloads", lambda self: None)
    monkeypatch.setattr(Runner, "_start_load", fake_load)
    monkeypatch.setattr(runner_mod, "make_injector", lambda spec, target, context: _FailingRecover(spec))
    ledger = Ledger(tmp_path / "ledger.jsonl")
    runner = _runner(tmp_path, ledger)
    with pytest.raises(RecoveryError, match=r"kill #1 \(pod-kill\): its recover reported failure .*toxic still listed.*`chaosml rollback`"):
        runner.run()
    assert runner.result is not None and runner.result.exit_code == EXIT_RECOVERY_FAILED
    (entry,) = ledger.open_entries()  # the fault's entry stays open, marked as failed
    assert entry.kind == "fault" and entry.stale and entry.failure is not None and "toxic still listed" in entry.failure

    with pytest.raises(RecoveryError) as refused:
        _runner(tmp_path, ledger)
    assert "kill #1 (pod-kill) of run" in str(refused.value)
    assert "its recover failed during the run" in str(refused.value) and "Run `chaosml rollback`" in str(refused.value)

    report = rollback(ledger)  # what clears it
    assert report.failed == [] and len(report.undone) == 1 and ledger.open_entries() == []
    _runner(tmp_path, ledger)  # no longer refused


# ---------------------------------------------------------------------------- item 4
def test_an_append_after_a_torn_last_line_starts_on_a_fresh_line(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with open(ledger.path, "w") as fh:
        fh.write('{"op":"open","id":"dead","t":1,"run_')  # power loss mid-write: no newline
    entry = ledger.open(run_id="new", run_dir=tmp_path, kind="target", type="local", record={"token": "t"})
    assert [e.id for e in ledger.open_entries()] == [entry]
    state = ledger.read()
    assert len(state.problems) == 1 and state.problems[0].startswith(f"{ledger.path}:1: unreadable")


def test_malformed_lines_are_located_and_rollback_still_undoes_every_readable_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ledger.jsonl"
    first = _stale_open(path, record={"token": "tok-a"})
    with open(path, "a") as fh:
        fh.write('{"op":"open"}\n')
        fh.write('{"op":"open","id":["a","b"],"t":1,"run_id":"r","run_dir":"/x","kind":"fault","type":"pod-kill"}\n')
        fh.write('"just a string"\n')
        fh.write('{"op":"close","id":{"x":1}}\n')
        fh.write("not json at all\n")
    second = _stale_open(path, record={"token": "tok-b"})
    ledger = Ledger(path)
    assert [e.id for e in ledger.open_entries()] == [first, second]
    state = ledger.read()
    assert [p.split(": ", 1)[0] for p in state.problems] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "open event: 'id' must be a non-empty string, got None" in state.problems[0]
    assert "open event: 'id' must be a non-empty string, got ['a', 'b']" in state.problems[1]
    assert "not a ledger event (a JSON object): str" in state.problems[2]
    assert "unreadable" in state.problems[4]

    monkeypatch.setenv("CHAOSML_STATE_DIR", str(tmp_path))
    assert main(["rollback"]) == 0
    out = capsys.readouterr()
    assert out.out.count("undone: local target of run r") == 2
    assert f"chaosml: ledger: {path}:2: open event" in out.err and f"{path}:6: unreadable" in out.err
    assert ledger.open_entries() == []


def test_an_entry_glued_onto_a_torn_line_by_an_older_chaosml_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"op":"close","id":"abc')
    entry = _stale_open(path, record={"token": "tok"})
    assert [e.id for e in Ledger(path).open_entries()] == [entry]
    state = Ledger(path).read()
    assert "torn text (a crash mid-write) before an event" in state.problems[0]


# ---------------------------------------------------------------------------- item 5
def test_rollback_never_stops_a_bystander_working_inside_the_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "reports" / "run-1"
    run_dir.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV}
    # the user's shell in the run directory (not started by the run), and an orphan the run did start
    shell = subprocess.Popen(["sh", "-c", "sleep 60"], cwd=run_dir, env=env, start_new_session=True)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=run_dir,
                              env={**env, RUN_TOKEN_ENV: "tok-run-1"}, start_new_session=True)
    try:
        time.sleep(0.3)  # let the orphan's environment be readable
        path = tmp_path / "state" / "ledger.jsonl"
        path.parent.mkdir()
        _stale_open(path, run_dir=str(run_dir), record={"token": "tok-run-1", "run_dir": str(run_dir)})
        rb = subprocess.run([sys.executable, "-m", "chaosml.cli", "rollback"], cwd=run_dir, capture_output=True, text=True,
                            env={**env, "CHAOSML_STATE_DIR": str(path.parent)}, timeout=60, check=False)
        assert rb.returncode == 0, rb.stdout + rb.stderr  # rollback, itself inside the run dir, was not stopped either
        assert "stopped 1 orphaned process(es)" in rb.stdout
        assert orphan.wait(timeout=5) == -9
        assert shell.poll() is None and not zombie_or_gone(shell.pid)
    finally:
        for p in (shell, orphan):
            if p.poll() is None:
                p.kill()
                p.wait()


# ---------------------------------------------------------------------------- item 6
def _listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_service_that_rewrites_its_environment_in_the_callers_directory_is_stopped_by_rollback(tmp_path: Path) -> None:
    from chaosml.procs import recording_spawns
    from chaosml.stack.featurestore import redis_server_binary
    from chaosml.targets.local import free_ports
    from chaosml.targets.supervisor import ProcessSpec, Supervisor

    caller_dir = tmp_path / "caller"  # `target.services` commands run where the user says, not in the run dir
    caller_dir.mkdir()
    path = tmp_path / "ledger.jsonl"
    token = f"svc-{time.time_ns()}"
    entry = _stale_open(path, run_dir=str(tmp_path / "reports" / "run"), record={"token": token})
    ledger = Ledger(path)
    (port,) = free_ports(1)
    sup = Supervisor(tmp_path / "sup")
    try:
        with recording_spawns(token, lambda s: ledger.spawned(entry, s)):
            sup.start(ProcessSpec("redis", [str(redis_server_binary()), "--port", str(port), "--save", "", "--appendonly", "no"],
                                  env={RUN_TOKEN_ENV: token}, cwd=caller_dir, ready_url=f"tcp://127.0.0.1:{port}",
                                  restart_delay_s=600))
        assert sup.wait_ready(["redis"], 20)
        (open_entry,) = ledger.open_entries()
        assert [s.name for s in open_entry.spawned] == ["redis"]
        report = rollback(ledger)  # the harness is "gone": its orphan must not survive
        assert report.failed == [] and "stopped 1 orphaned process(es)" in report.undone[0], report
        deadline = time.monotonic() + 5
        while _listens(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _listens(port)
    finally:
        sup.stop_all(timeout_s=2)


def test_a_run_says_which_ledger_lines_it_could_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"op":"open"}\n')
    out = io.StringIO()
    experiment = load_experiment_text(EXPERIMENT, "e.yaml")
    Runner(experiment, experiment_file="e.yaml", experiment_source=EXPERIMENT, reports_dir=tmp_path / "reports",
           target_factory=lambda exp, run_dir, on_event: RecordingTarget(), ledger=Ledger(path), out=out)
    assert out.getvalue() == f"warning: ledger: {path}:1: open event: 'id' must be a non-empty string, got None\n"
