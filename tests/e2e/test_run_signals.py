"""Signals at bad moments: Ctrl-C during a fault's recover, a burst of them, and during target start."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chaosml.ledger import Ledger

pytestmark = pytest.mark.slow

#: Redis is stopped for 3 s; its recover restarts it, waits until it is ready and re-seeds it (a real,
#: slow-enough recover to land signals in). Load ends well after the window.
EXPERIMENT = """\
version: 1
title: Signals during recover
target: {platform: local, profile: hardened, replicas: 2, restart_delay: 1s}
load: {users: 4, spawn_rate: 20, rate_per_user: 5, duration: 14s, mix: {clean: 1.0}}
steady_state: {window: 1s, hold: 2}
hypotheses:
  - {name: redis-back, fault: redis-down, sli: mttr_s, op: "<=", target: 10}
faults:
  - {name: redis-down, type: feature-store-outage, at: 4s, duration: 3s, params: {mode: kill}}
rollbacks:
  - {type: wait-ready, params: {timeout: 20s}}
"""


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    return proc, reports


def _journal(reports: Path) -> dict[str, Any]:
    runs = list(reports.iterdir()) if reports.exists() else []
    if not runs:
        return {}
    try:
        return json.loads((runs[0] / "journal.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait_for(pred: Any, reports: Path, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        journal = _journal(reports)
        if pred(journal):
            return journal
        time.sleep(0.02)
    raise AssertionError(f"timed out; journal: {_journal(reports)}")


def _leftovers(run_dir: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", str(run_dir)], check=False, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.mark.parametrize("signals", [1, 5])
def test_signals_during_recover_finish_the_recover_close_the_ledger_and_report(tmp_path: Path, signals: int) -> None:
    # issue 14 item 7: a signal during recover exited 2 "every fault was recovered" with the ledger
    # entry left open; five SIGINTs in 1.2 s killed the harness with no journal exit code and no report.
    proc, reports = _start(tmp_path)
    try:
        journal = _wait_for(lambda j: bool(j.get("timeline")), reports, 120)
        planned_end = journal["timeline"][0]["planned_end"]
        time.sleep(max(0.0, planned_end + 0.03 - time.time()))  # the recover starts at planned_end
        sent = []
        for k in range(signals):
            sent.append(time.time())
            proc.send_signal(signal.SIGINT if k % 2 == 0 else signal.SIGTERM)
            time.sleep(0.3)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    (run_dir,) = list(reports.iterdir())
    journal = json.loads((run_dir / "journal.json").read_text())
    recover = [e for e in journal["fault_events"] if e["action"] == "recover"]
    assert len(recover) == 1 and recover[0]["ok"], journal["fault_events"]
    assert recover[0]["t"] <= sent[0] <= recover[0]["t"] + recover[0]["detail"]["reseeded_s"], "signal not inside the recover"
    assert Ledger().open_entries() == [], "a ledger entry stayed open"
    assert proc.returncode == 2, out + err
    assert journal["status"] == "aborted" and journal["exit_code"] == 2
    assert journal["reason"] == "interrupted by SIGINT"
    assert "SIGINT: finishing recover redis-down #1 first" in err, err
    if signals > 1:
        # every later signal says "please wait", except one that arrives after the outcome is settled (journal exit
        # code and report written): that one is ignored (SignalGuard.release), and the exit code stays 2
        assert 1 <= err.count("recovering, please wait") <= signals - 1, err
    assert (run_dir / "report.md").exists()
    assert "Traceback" not in err
    assert not _leftovers(run_dir)


def test_interrupt_during_target_start_does_not_wait_for_ready(tmp_path: Path) -> None:
    # issue 14 item 11: a SIGINT during target start took 30 s: the wait-ready rollback waited its full
    # timeout for replicas that were being torn down. An interrupt cuts waits short.
    proc, reports = _start(tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not any(e.kind == "target" for e in Ledger().open_entries()) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)  # inside target start (it takes seconds: proxy, Redis, replicas, gateway)
        assert not _journal(reports).get("target"), "target already started"
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    (run_dir,) = list(reports.iterdir())
    journal = json.loads((run_dir / "journal.json").read_text())
    assert proc.returncode == 2, out + err
    assert journal["status"] == "aborted" and journal["exit_code"] == 2
    assert took < 10, f"interrupt took {took:.1f}s"
    (rb,) = journal["rollbacks"]
    assert not rb["ok"] and "interrupted" in rb["detail"]
    assert Ledger().open_entries() == []
    assert not _leftovers(run_dir)
