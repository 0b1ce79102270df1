"""The crash-safe rollback ledger: what a run applied and has not undone yet; used by the runner and `chaosml rollback`.

An append-only JSON-lines file (``$CHAOSML_STATE_DIR/ledger.jsonl``, default
``~/.local/state/chaosml/``), one line per event, each appended under an exclusive lock and
fsynced before the runner goes on:

- ``open``: written BEFORE a target is started or a fault applied, holding the undo record
  (``Injector.undo_record``) and the harness's pid and process start time;
- ``close``: written after the matching recover (or target stop) succeeded.

An entry is *stale* when it is open and the harness that wrote it is gone (killed, machine
restarted). ``rollback`` undoes stale entries from their records alone: faults in reverse order
(by their type's ``@undoer``), then targets (by their platform's ``@target_undoer``, see
:mod:`chaosml.targets.undoers`; local: every process of the run, found by :mod:`chaosml.procs`, is
killed with its process group). Both registries are looked up only when rolling back: the ledger
itself imports no fault and no target.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.procs import alive, start_time

STATE_ENV = "CHAOSML_STATE_DIR"
LEDGER_FILE = "ledger.jsonl"


def state_dir() -> Path:
    env = os.environ.get(STATE_ENV)
    return Path(env) if env else Path.home() / ".local" / "state" / "chaosml"


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
    harness_start: float | None = None

    @property
    def stale(self) -> bool:
        """Open, and the harness that opened it is gone."""
        return not alive(self.harness_pid, self.harness_start)

    def describe(self) -> str:
        what = f"{self.fault} #{(self.injection or 0) + 1} ({self.type})" if self.kind == "fault" else f"{self.type} target"
        return f"{what} of run {self.run_id}"


class Ledger:
    """Append-only, locked, fsynced ledger file."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_dir() / LEDGER_FILE
        self._me = (os.getpid(), start_time(os.getpid()))

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


# ---------------------------------------------------------------------------- rollback
@dataclass
class RollbackReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # live runs' entries (not ours to undo)


def rollback(ledger: Ledger | None = None, *, include_live: bool = False, dry_run: bool = False) -> RollbackReport:
    """Undo every stale open entry: faults newest first, then targets. Closes what it undid."""
    from chaosml.faults.base import load_builtin_injectors, undoer_for
    from chaosml.targets.undoers import target_undoer_for

    load_builtin_injectors()
    ledger = ledger or Ledger()
    report = RollbackReport()
    entries = ledger.open_entries()
    todo = [e for e in entries if include_live or e.stale]
    report.skipped = [f"{e.describe()} (run still going: harness pid {e.harness_pid})" for e in entries if e not in todo]
    ordered = [e for e in reversed(todo) if e.kind == "fault"] + [e for e in reversed(todo) if e.kind != "fault"]
    for e in ordered:
        undo = undoer_for(e.type, e.record.get("platform")) if e.kind == "fault" else target_undoer_for(e.type)
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
