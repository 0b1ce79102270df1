"""The crash-safe rollback ledger: what a run applied and has not undone yet; used by the runner and `chaosml rollback`.

An append-only JSON-lines file (``$CHAOSML_STATE_DIR/ledger.jsonl``, default
``~/.local/state/chaosml/``), one line per event, each appended under an exclusive lock and
fsynced before the runner goes on:

- ``open``: written BEFORE a target is started or a fault applied, holding the undo record
  (``Injector.undo_record``) and the harness's pid and process start time;
- ``close``: written after the matching recover (or target stop) succeeded.

An entry is *stale* when it is open and the harness that wrote it is gone (killed, machine
restarted). ``rollback`` undoes stale entries from their records alone: faults in reverse order
(by their type's ``@undoer``), then targets (local: every process carrying the run's
``CHAOSML_RUN_TOKEN`` in its environment is killed with its process group).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_ENV = "CHAOSML_STATE_DIR"
RUN_TOKEN_ENV = "CHAOSML_RUN_TOKEN"
LEDGER_FILE = "ledger.jsonl"


def state_dir() -> Path:
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else Path.home() / ".local" / "state" / "chaosml"


def _proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _alive(pid: int | None, start_time: int | None) -> bool:
    if not pid:
        return False
    now = _proc_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


@dataclass
class Entry:
    """An open ledger entry."""

    id: str
    t: float
    run_id: str
    run_dir: str
    kind: str  # fault | target
    type: str  # fault type, or target platform
    record: dict[str, Any]
    fault: str | None = None
    injection: int | None = None
    harness_pid: int | None = None
    harness_start: int | None = None

    @property
    def stale(self) -> bool:
        """Open, and the harness that opened it is gone."""
        return not _alive(self.harness_pid, self.harness_start)

    def describe(self) -> str:
        what = f"{self.fault} #{(self.injection or 0) + 1} ({self.type})" if self.kind == "fault" else f"{self.type} target"
        return f"{what} of run {self.run_id}"


class Ledger:
    """Append-only, locked, fsynced ledger file."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_dir() / LEDGER_FILE
        self._me = (os.getpid(), _proc_start_time(os.getpid()))

    def _append(self, line: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def open(
        self,
        *,
        run_id: str,
        run_dir: Path | str,
        kind: str,
        type: str,
        record: dict[str, Any],
        fault: str | None = None,
        injection: int | None = None,
    ) -> str:
        entry_id = uuid.uuid4().hex
        self._append(
            {
                "op": "open",
                "id": entry_id,
                "t": time.time(),
                "run_id": run_id,
                "run_dir": str(run_dir),
                "kind": kind,
                "type": type,
                "fault": fault,
                "injection": injection,
                "record": record,
                "harness_pid": self._me[0],
                "harness_start": self._me[1],
            }
        )
        return entry_id

    def close(self, entry_id: str, ok: bool = True, detail: str = "") -> None:
        self._append({"op": "close", "id": entry_id, "t": time.time(), "ok": ok, "detail": detail})

    def open_entries(self) -> list[Entry]:
        """Entries opened and not closed, in the order they were opened. A torn last line is ignored."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        opened: dict[str, Entry] = {}
        for line in raw.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write: its entry was never acted on
            if not isinstance(d, dict):
                continue
            if d.get("op") == "open":
                opened[d["id"]] = Entry(
                    id=d["id"],
                    t=d["t"],
                    run_id=d["run_id"],
                    run_dir=d["run_dir"],
                    kind=d["kind"],
                    type=d["type"],
                    record=d.get("record") or {},
                    fault=d.get("fault"),
                    injection=d.get("injection"),
                    harness_pid=d.get("harness_pid"),
                    harness_start=d.get("harness_start"),
                )
            elif d.get("op") == "close":
                opened.pop(d.get("id"), None)
        return list(opened.values())

    def stale_entries(self) -> list[Entry]:
        return [e for e in self.open_entries() if e.stale]


# ----------------------------------------------------------------------------- targets
def processes_with_token(token: str) -> list[int]:
    """Pids of processes whose environment holds CHAOSML_RUN_TOKEN=token (not this process)."""
    needle = f"{RUN_TOKEN_ENV}={token}".encode()
    me = os.getpid()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            env = (d / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            found.append(int(d.name))
    return found


def processes_in_dir(run_dir: str) -> list[int]:
    """Pids of processes whose working directory is ``run_dir`` or below it (not this process).

    The environment token alone is not enough: redis-server rewrites its process title over its
    environment block, so /proc/PID/environ no longer shows the token. Every process the local
    target starts runs inside the run directory, and a directory is not reused by another run.
    """
    root = os.path.realpath(run_dir)
    me = os.getpid()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            cwd = os.readlink(d / "cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(int(d.name))
    return found


def processes_of_run(token: str | None, run_dir: str | None) -> list[int]:
    """Every live process of a run: carrying its token, or working inside its (absolute) run dir."""
    pids = set(processes_with_token(token)) if token else set()
    if run_dir and os.path.isabs(run_dir):
        pids |= set(processes_in_dir(run_dir))
    return sorted(p for p in pids if not _zombie_or_gone(p))


def kill_run_processes(token: str | None, run_dir: str | None, timeout_s: float = 5.0) -> list[int]:
    """SIGKILL every process of a run (and its process group); wait until they are gone."""
    pids = processes_of_run(token, run_dir)
    for pid in pids:
        for kill in (lambda p: os.killpg(os.getpgid(p), signal.SIGKILL), lambda p: os.kill(p, signal.SIGKILL)):
            try:
                kill(pid)
                break
            except (ProcessLookupError, PermissionError):
                continue
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [p for p in pids if _zombie_or_gone(p) is False]
        if not left:
            break
        time.sleep(0.05)
    return pids


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def _undo_local_target(record: dict[str, Any]) -> str:
    token = record.get("token")
    run_dir = record.get("run_dir")
    if not token and not run_dir:
        return "local target: no run token or directory recorded; nothing to stop"
    pids = kill_run_processes(token and str(token), run_dir and str(run_dir))
    left = processes_of_run(token and str(token), run_dir and str(run_dir))
    if left:
        raise RuntimeError(f"processes still alive after SIGKILL: {left}")
    return f"local target: stopped {len(pids)} orphaned process(es)" if pids else "local target: no process left"


def _undo_kubernetes_target(record: dict[str, Any]) -> str:
    from chaosml.targets.kubernetes import undo_target

    return undo_target(record)


#: target platform -> undo(record) -> summary
TARGET_UNDOERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "local": _undo_local_target,
    "kubernetes": _undo_kubernetes_target,
}


# ---------------------------------------------------------------------------- rollback
@dataclass
class RollbackReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # live runs' entries (not ours to undo)


def rollback(ledger: Ledger | None = None, *, include_live: bool = False, dry_run: bool = False) -> RollbackReport:
    """Undo every stale open entry: faults newest first, then targets. Closes what it undid."""
    from chaosml.faults.base import load_builtin_injectors, undoer_for

    load_builtin_injectors()
    ledger = ledger or Ledger()
    report = RollbackReport()
    entries = ledger.open_entries()
    todo = [e for e in entries if include_live or e.stale]
    report.skipped = [f"{e.describe()} (run still going: harness pid {e.harness_pid})" for e in entries if e not in todo]
    ordered = [e for e in reversed(todo) if e.kind == "fault"] + [e for e in reversed(todo) if e.kind != "fault"]
    for e in ordered:
        undo = undoer_for(e.type, e.record.get("platform")) if e.kind == "fault" else TARGET_UNDOERS.get(e.type)
        if undo is None:
            report.failed.append(f"{e.describe()}: no undo known for {e.kind} type {e.type!r}; record: {json.dumps(e.record)}")
            continue
        if dry_run:
            report.undone.append(f"would undo {e.describe()}")
            continue
        try:
            summary = undo(e.record)
        except Exception as exc:  # noqa: BLE001 - reported, the entry stays open for the next try
            report.failed.append(f"{e.describe()}: {type(exc).__name__}: {exc}; record: {json.dumps(e.record)}")
            continue
        ledger.close(e.id, ok=True, detail=f"rolled back: {summary}")
        report.undone.append(f"{e.describe()}: {summary}")
        _mark_journal_partial(Path(e.run_dir))
    return report


def _mark_journal_partial(run_dir: Path) -> None:
    """A run whose harness died is still 'running' in its journal: mark it partial, with why."""
    from chaosml.journal import mark_partial

    mark_partial(
        run_dir,
        "the harness died during the run; `chaosml rollback` undid what it left at " + time.strftime("%Y-%m-%d %H:%M:%S"),
    )
