"""Issue 14 item 8: a full reports filesystem (a real tmpfs, mounted by the test) ends the run cleanly.

Every fault is recovered, and rollback never needs to write a journal.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runner_doubles import RecordingTarget, fake_load

from chaosml import runner as runner_mod
from chaosml.cli import main
from chaosml.errors import EXIT_ABORTED, InvalidInputError
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.records import FaultEvent
from chaosml.runner import Runner

EXPERIMENT = """\
version: 1
title: full disk
load: {users: 1, duration: 2s}
faults:
  - {name: kill, type: pod-kill, at: 100ms, duration: 1500ms, params: {service: model}}
"""


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (needs root: skipped otherwise)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path) -> None:
    """Fill the filesystem to the last byte (as the samples of a long run would)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:  # bounded by the filesystem's size
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


class _FillingInjector:
    """Its apply happens while the disk fills up; records that recover ran."""

    def __init__(self, spec: Any, fill: Path, calls: list[str]) -> None:
        self.spec, self.fill, self.calls = spec, fill, calls

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {"victims": ["model-0"]}

    def apply(self, injection: int) -> FaultEvent:
        _fill(self.fill)
        self.calls.append("apply")
        return FaultEvent(time.time(), self.spec.name, injection, "apply", True)

    def recover(self, injection: int) -> FaultEvent:
        self.calls.append("recover")
        return FaultEvent(time.time(), self.spec.name, injection, "recover", True)


def test_a_disk_that_fills_up_mid_run_aborts_it_with_a_clear_reason_and_every_fault_recovered(
    small_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(Runner, "_prepare_payloads", lambda self: None)
    monkeypatch.setattr(Runner, "_start_load", fake_load)
    monkeypatch.setattr(runner_mod, "make_injector", lambda spec, target, context: _FillingInjector(spec, small_fs, calls))
    ledger = Ledger(tmp_path / "ledger.jsonl")  # the state dir is elsewhere (it is not full)
    out = io.StringIO()
    runner = Runner(load_experiment_text(EXPERIMENT, "e.yaml"), experiment_file="e.yaml", experiment_source=EXPERIMENT,
                    reports_dir=small_fs / "reports", target_factory=lambda exp, run_dir, on_event: RecordingTarget(), ledger=ledger, out=out)
    result = runner.run()
    assert calls == ["apply", "recover"]
    assert ledger.open_entries() == []
    assert (result.status, result.exit_code) == ("aborted", EXIT_ABORTED)
    assert result.reason is not None and "No space left on device" in result.reason
    assert "every applied fault was recovered" in result.reason and "is the reports dir full?" in out.getvalue()


def test_a_reports_dir_full_before_the_run_starts_nothing(small_fs: Path, tmp_path: Path) -> None:
    _fill(small_fs)
    with pytest.raises(InvalidInputError, match=r"No space left on device; nothing was started"):
        Runner(load_experiment_text(EXPERIMENT, "e.yaml"), experiment_file="e.yaml", experiment_source=EXPERIMENT,
               reports_dir=small_fs / "reports", ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO())


def test_rollback_undoes_everything_in_one_call_when_the_journal_cannot_be_written(
    small_fs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = small_fs / "reports" / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / "journal.json").write_text(json.dumps({"schema": "chaosml.journal/2", "status": "running"}))
    _fill(small_fs)
    state = tmp_path / "state"
    monkeypatch.setenv("CHAOSML_STATE_DIR", str(state))
    ledger = Ledger()
    ledger.open(run_id="run-1", run_dir=run_dir, kind="fault", type="pod-kill", record={"victims": ["m-0"]}, fault="k", injection=0)
    d = json.loads(ledger.path.read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    d["harness_pid"], d["harness_start"] = dead.pid, 1.0
    ledger.path.write_text(json.dumps(d) + "\n")
    assert main(["rollback"]) == 0
    out = capsys.readouterr()
    assert "undone: k #1 (pod-kill) of run run-1" in out.out
    assert "could not mark the journal of run run-1" in out.err and "No space left on device" in out.err
    assert ledger.open_entries() == []
    assert not list(run_dir.glob("*.tmp"))  # no half-written temp file left on the full disk


def test_the_load_process_says_once_that_it_cannot_write_its_samples_and_stops(small_fs: Path, tmp_path: Path) -> None:
    from chaosml.load.config import LoadConfig, start_load

    payloads = tmp_path / "payloads.json"
    payloads.write_text(json.dumps({"clean": [{"body": {"a": 1}, "label": 1, "entity_id": 2}]}))
    (small_fs / "run").mkdir()
    config = LoadConfig(target_url="http://127.0.0.1:9", path="/predict", users=4, spawn_rate=50.0, duration_s=20.0,
                        rate_per_user=50.0, request_timeout_s=1.0, mix={"clean": 1.0}, payloads_file=str(payloads),
                        samples_file=str(small_fs / "run" / "samples.csv"), progress_interval_s=0.5, seed=1)
    fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # leave about 8 KiB free: the header fits, the rows soon do not
        free = os.statvfs(small_fs).f_bavail * os.statvfs(small_fs).f_frsize
        os.write(fd, b"\0" * max(0, free - 8192))
    finally:
        os.close(fd)
    t0 = time.monotonic()
    proc = start_load(config, str(tmp_path / "load.json"), stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert "No space left on device" in err and "Traceback" not in err, err
    assert "stopping the load" in err and time.monotonic() - t0 < 15  # it stopped long before its 20 s were over
