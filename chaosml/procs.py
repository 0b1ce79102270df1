"""Finding and stopping a run's processes (psutil); used by the ledger, the runner, the supervisor and the targets' offline undo.

Only a process the run started may ever be stopped. A process counts as the run's when one of
these proves it:

- its environment holds the run token (``CHAOSML_RUN_TOKEN=...``), which every process the run
  starts inherits and nothing else carries;
- it is a process the run recorded at spawn time (:class:`Spawned`, written to the ledger before the
  harness goes on): the same pid with the same process start time, so a reused pid is never taken
  for it;
- it lives in a session the run created for a spawned process (every child is started with
  ``start_new_session``, so its session id is its recorded pid) and was born after that session's
  leader: this finds a service that rewrites its environment block (redis-server sets its process
  title over it) and the children it forks, whatever directory they work in.

Nothing else is: not a process that merely works inside the run directory (the user's shell,
an editor, ``chaosml rollback`` itself), not this process, not its ancestors.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import psutil

log = logging.getLogger(__name__)

#: every process of a run carries the run's token in this environment variable
RUN_TOKEN_ENV = "CHAOSML_RUN_TOKEN"
#: rounds of find-and-kill in :func:`kill_run_processes` (a process may fork while it is being stopped)
KILL_ROUNDS = 3


@dataclass(frozen=True, slots=True)
class Spawned:
    """A process the run started, as recorded at spawn time: pid, start time, and the session it leads."""

    pid: int
    start: float  # psutil create_time: seconds since the epoch, stable for the process's life
    sid: int | None  # its session id when it leads its own session (start_new_session), else None
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Spawned:
        """Raises ValueError/TypeError/KeyError when ``d`` is not a spawn record."""
        pid, start, sid = d["pid"], d["start"], d.get("sid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            raise ValueError(f"pid must be a positive integer, got {pid!r}")
        if not isinstance(start, (int, float)) or isinstance(start, bool):
            raise TypeError(f"start must be a number, got {start!r}")
        if sid is not None and (not isinstance(sid, int) or isinstance(sid, bool) or sid <= 0):
            raise ValueError(f"sid must be a positive integer or null, got {sid!r}")
        return cls(pid, float(start), sid, str(d.get("name") or ""))


def start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch, stable for its life), or None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``started`` (None: any process); a zombie is not alive."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started) and not zombie_or_gone(pid)


def zombie_or_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def spawned_now(pid: int, name: str = "") -> Spawned | None:
    """The spawn record of a process just started (None when it is already gone)."""
    started = start_time(pid)
    if started is None:
        return None
    try:
        sid: int | None = os.getsid(pid)
    except OSError:
        sid = None
    return Spawned(pid, started, sid if sid == pid else None, name)


# ---------------------------------------------------------------------------- recording spawns
SpawnRecorder = Callable[[Spawned], None]
_recorders: dict[str, SpawnRecorder] = {}


@contextmanager
def recording_spawns(token: str, recorder: SpawnRecorder) -> Iterator[None]:
    """While inside, :func:`note_spawn` of a process carrying ``token`` calls ``recorder`` (the runner writes the ledger)."""
    _recorders[token] = recorder
    try:
        yield
    finally:
        _recorders.pop(token, None)


def note_spawn(pid: int, name: str, env: Mapping[str, str]) -> None:
    """Called by whoever starts a process right after starting it: records it for the run whose token ``env`` holds.

    A failing recorder is logged, not raised: the process still carries the token.
    """
    token = env.get(RUN_TOKEN_ENV)
    recorder = _recorders.get(token) if token else None
    if recorder is None:
        return
    spawned = spawned_now(pid, name)
    if spawned is None:
        return
    try:
        recorder(spawned)
    except Exception:
        log.exception("could not record the spawn of %s (pid %s)", name, pid)


# ---------------------------------------------------------------------------- finding and stopping
def _protected() -> set[int]:
    """This process and its ancestors: never a run's process, whatever they carry."""
    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def _proven(p: psutil.Process, token: str | None, by_pid: dict[int, float], sessions: dict[int, float],
            token_env: str = RUN_TOKEN_ENV) -> bool:
    try:
        if by_pid.get(p.pid) == p.create_time():
            return True
        sid = os.getsid(p.pid)
        leader_start = sessions.get(sid)
        if leader_start is not None and p.create_time() >= leader_start:
            leader = start_time(sid)
            if leader is None or leader == leader_start:  # the leader lives on, or left its session behind
                return True
        if token:
            return p.environ().get(token_env) == token
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
        return False
    return False


def processes_of_run(token: str | None, spawned: Iterable[Spawned] = (), token_env: str = RUN_TOKEN_ENV) -> list[int]:
    """Every live process proven to be the run's (see the module docstring); never this process or its ancestors.

    ``token_env`` names the environment variable holding ``token`` (a fault's own token, e.g. for the
    processes one injection started, instead of the run's)."""
    spawned = list(spawned)
    if not token and not spawned:
        return []
    by_pid = {s.pid: s.start for s in spawned}
    sessions = {s.sid: s.start for s in spawned if s.sid is not None}
    protected = _protected()
    found = [p.pid for p in psutil.process_iter() if p.pid not in protected and _proven(p, token, by_pid, sessions, token_env)]
    return sorted(p for p in found if not zombie_or_gone(p))


def kill_run_processes(token: str | None, spawned: Iterable[Spawned] = (), timeout_s: float = 5.0,
                       token_env: str = RUN_TOKEN_ENV) -> list[int]:
    """SIGKILL every process proven to be the run's, one by one; wait (bounded) until they are gone."""
    spawned = list(spawned)
    killed: list[int] = []
    deadline = time.monotonic() + timeout_s
    for _ in range(KILL_ROUNDS):
        pids = [p for p in processes_of_run(token, spawned, token_env) if p not in killed]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            killed.append(pid)
        while time.monotonic() < deadline and any(not zombie_or_gone(p) for p in pids):
            time.sleep(0.05)
    return sorted(killed)


def spawned_of(record: Mapping[str, Any]) -> list[Spawned]:
    """The spawn records a ledger entry's record carries (``record["spawned"]``), skipping malformed ones."""
    out = []
    for d in record.get("spawned") or ():
        try:
            out.append(Spawned.from_dict(d))
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a malformed spawn record: %r", d)
    return out
