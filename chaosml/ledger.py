"""The crash-safe rollback ledger: what a run applied and has not undone yet; used by the runner and `chaosml rollback`.

An append-only JSON-lines file (``$CHAOSML_STATE_DIR/ledger.jsonl``, default
``~/.local/state/chaosml/``), one line per event, each appended under an exclusive lock and
fsynced before the runner goes on (an append after a line torn by a crash starts on a fresh line):

- ``open``: written BEFORE a target is started or a fault applied, holding the undo record
  (``Injector.undo_record``), the absolute run directory, and the harness's pid and process start time;
- ``spawn``: a process the run started (pid, start time, the session it leads), under its
  target's entry, written right after the spawn (:func:`chaosml.procs.note_spawn`);
- ``recover_failed``: the run's own recover of an entry reported failure; the entry stays open;
- ``close``: written after the matching recover (or target stop) succeeded.

An entry is *stale* when it is open and no running harness will undo it: the harness that wrote
it is gone (killed, machine restarted), or its recover failed. ``rollback`` undoes stale entries
from their records alone (:mod:`chaosml.rollback`: faults in reverse order by their type's undoer,
then targets by their platform's ``@target_undoer``; local: the processes the run started, proven
by :mod:`chaosml.procs`, and no other): the ledger itself imports no fault, target or journal. A line that cannot be used
(torn, malformed) is reported with its file and line number, and every readable entry is still undone.
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

from chaosml.procs import Spawned, alive, start_time

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
    spawned: list[Spawned] = field(default_factory=list)  # processes the run started (target entries)
    failure: str | None = None  # why the run's own recover failed (it gave up: the entry is for rollback)

    @property
    def stale(self) -> bool:
        """Open, and no running harness will undo it: the harness is gone, or its recover failed."""
        return self.failure is not None or not alive(self.harness_pid, self.harness_start)

    def describe(self) -> str:
        what = f"{self.fault} #{(self.injection or 0) + 1} ({self.type})" if self.kind == "fault" else f"{self.type} target"
        return f"{what} of run {self.run_id}"

    def why(self) -> str:
        """Why the entry is left open, for messages."""
        if self.failure is not None:
            return f"its recover failed during the run: {self.failure}"
        return f"its harness (pid {self.harness_pid}) is gone"


@dataclass
class LedgerState:
    """What the ledger file says: the open entries, and every line it could not use (``file:line: why``)."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_OPS = ("open", "close", "spawn", "recover_failed")


def _check(d: Any) -> str | None:
    """Why ``d`` is not a usable ledger event, or None."""
    if not isinstance(d, dict):
        return f"not a ledger event (a JSON object): {type(d).__name__}"
    op = d.get("op")
    if op not in _OPS:
        return f"unknown op {op!r} (known: {', '.join(_OPS)})"
    if not isinstance(d.get("id"), str) or not d["id"]:
        return f"{op} event: 'id' must be a non-empty string, got {d.get('id')!r}"
    if op == "open":
        for key in ("run_id", "run_dir", "kind", "type"):
            if not isinstance(d.get(key), str):
                return f"open event {d['id']}: {key!r} must be a string, got {d.get(key)!r}"
        if not isinstance(d.get("t"), (int, float)):
            return f"open event {d['id']}: 't' must be a number, got {d.get('t')!r}"
        if not isinstance(d.get("record") or {}, dict):
            return f"open event {d['id']}: 'record' must be an object"
        for key, types in (("fault", (str,)), ("injection", (int,)), ("harness_pid", (int,)), ("harness_start", (int, float))):
            if d.get(key) is not None and not isinstance(d[key], types):
                return f"open event {d['id']}: {key!r} must be {types[0].__name__} or null, got {d[key]!r}"
    if op == "spawn":
        try:
            Spawned.from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            return f"spawn event {d['id']}: {type(exc).__name__}: {exc}"
    return None


def _parse_line(line: bytes) -> tuple[Any, str | None]:
    """One line's event, and a note when only its tail could be read (text torn by a crash before it)."""
    try:
        return json.loads(line), None
    except ValueError:
        pass
    # a line glued onto a torn one (written by an older chaosml): read the last whole event in it
    at = line.rfind(b'{"op":', 1)
    if at > 0:
        try:
            return json.loads(line[at:]), f"torn text (a crash mid-write) before an event; read the event after it: {line[:60]!r}"
        except ValueError:
            pass
    raise ValueError(f"unreadable (torn by a crash mid-write?): {line[:80]!r}")


class Ledger:
    """Append-only, locked, fsynced ledger file."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_dir() / LEDGER_FILE
        self._me = (os.getpid(), start_time(os.getpid()))

    def _append(self, line: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(line, separators=(",", ":"), allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # the last line was torn by a crash: start on a fresh line
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
        """Record what is about to be done (before doing it); ``run_dir`` is stored absolute."""
        entry_id = uuid.uuid4().hex
        self._append(
            {
                "op": "open",
                "id": entry_id,
                "t": time.time(),
                "run_id": run_id,
                "run_dir": os.path.abspath(run_dir),
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

    def spawned(self, entry_id: str, process: Spawned) -> None:
        """Record a process the run started (under its target's entry), so rollback finds it whatever it does."""
        self._append({"op": "spawn", "id": entry_id, "t": time.time(), **process.to_dict()})

    def recover_failed(self, entry_id: str, detail: str) -> None:
        """The run's own recover of an entry failed: it stays open, for `chaosml rollback`."""
        self._append({"op": "recover_failed", "id": entry_id, "t": time.time(), "detail": detail})

    def read(self) -> LedgerState:
        """The open entries in the order they were opened, and every line that could not be used (located)."""
        state = LedgerState()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return state
        opened: dict[str, Entry] = {}
        for n, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                d, note = _parse_line(line)
            except ValueError as exc:
                state.problems.append(f"{self.path}:{n}: {exc}")
                continue
            if note:
                state.problems.append(f"{self.path}:{n}: {note}")
            why = _check(d)
            if why:
                state.problems.append(f"{self.path}:{n}: {why}")
                continue
            op, entry_id = d["op"], d["id"]
            if op == "open":
                opened[entry_id] = Entry(
                    id=entry_id,
                    t=float(d["t"]),
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
            elif op == "close":
                opened.pop(entry_id, None)
            elif entry_id in opened and op == "spawn":
                opened[entry_id].spawned.append(Spawned.from_dict(d))
            elif entry_id in opened:
                opened[entry_id].failure = str(d.get("detail") or "no detail")
        state.entries = list(opened.values())
        return state

    def open_entries(self) -> list[Entry]:
        """Entries opened and not closed, in the order they were opened (see :meth:`read` for the problems)."""
        return self.read().entries

    def stale_entries(self) -> list[Entry]:
        return [e for e in self.open_entries() if e.stale]
