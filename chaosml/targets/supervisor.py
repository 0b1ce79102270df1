"""Kubelet-like process supervisor used by the local target: start, probe, restart after a delay, kill, stop.

Generic: it knows process specs, not models. Each child runs in its own session (so its whole process
group can be signalled), logs to ``run_dir/logs/<name>.log``, and its pid is recorded in
``run_dir/pids.json`` on every start; a run's ledger records every spawn too (pid, start time,
session: :func:`chaosml.procs.note_spawn`), which is how `chaosml rollback` finds an orphan after a crash. One monitor thread
polls for exits every 50 ms and restarts children after their ``restart_delay_s``; one prober thread
per child checks its ``ready_url`` every 200 ms (``http://`` GET expecting 2xx, or ``tcp://host:port``
connect) and emits ``replica_ready`` / ``replica_unready`` on transitions.

Events (``TargetEvent.kind``): ``replica_started`` (pid, restarts), ``replica_killed`` (pid, signal),
``replica_exited`` (pid, returncode), ``replica_ready``, ``replica_unready`` (reason),
``replica_start_failed`` (error). A failing ``on_event`` listener is logged, never raised.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

from chaosml.procs import kill_run_processes, note_spawn
from chaosml.records import EventKind, TargetEvent

log = logging.getLogger(__name__)

POLL_S = 0.05
PROBE_INTERVAL_S = 0.2
PROBE_TIMEOUT_S = 0.5
#: Environment variable naming the supervisor that started a process (its token).
SUPERVISOR_TOKEN_ENV = "CHAOSML_SUPERVISOR_TOKEN"
MAX_START_FAILURES = 20  # consecutive failed restarts of one child before giving up on it
EXIT_CODES_KEPT = 5  # the last exit codes of a child kept for start-up errors


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to run and how to tell it is ready. ``env`` entries are added to the parent's environment."""

    name: str
    argv: tuple[str, ...] | list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | Path | None = None
    ready_url: str | None = None  # http://127.0.0.1:P/readyz or tcp://127.0.0.1:P; None = ready when started
    restart_delay_s: float = 2.0
    group: str = "default"


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    name: str
    group: str
    pid: int | None
    running: bool
    ready: bool
    restarts: int


@dataclass(frozen=True, slots=True)
class MemberHealth:
    """Why a child is or is not ready, for start-up errors: its exits, restarts and its last probe."""

    name: str
    pid: int | None
    running: bool
    ready: bool
    ever_ready: bool
    restarts: int
    exit_codes: tuple[int, ...]  # the last few, oldest first
    exits_unready: int  # exits since it was last ready (since its start when it never was)
    ready_url: str | None
    last_probe: str | None  # "HTTP 404", "connection refused", "timed out", ...; None before the first probe
    last_probe_for_s: float  # how long the probe has answered ``last_probe``


@dataclass(eq=False)
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0  # bumps on every start; probe results of older generations are dropped
    ready: bool = False
    restarts: int = 0
    restart_at: float | None = None  # monotonic time of a pending restart
    held: bool = False  # stopped on purpose: no restart until started again
    start_failures: int = 0
    prober: threading.Thread | None = None
    ever_ready: bool = False
    exit_codes: list[int] = field(default_factory=list)
    exits_unready: int = 0
    last_probe: str | None = None
    last_probe_since: float = 0.0  # monotonic


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """One readiness check: ``http(s)://`` GET answered 2xx, or ``tcp://host:port`` accepted a connection."""
    return check(url, timeout_s)[0]


def check(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """:func:`probe` with what was seen: ("HTTP 404", "connection refused", "timed out", "accepted", ...)."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port
    try:
        if u.scheme == "tcp":
            with socket.create_connection((host, port or 0), timeout=timeout_s):
                return True, "accepted"
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(host, port, timeout=timeout_s)
        try:
            conn.request("GET", u.path or "/")
            r = conn.getresponse()
            r.read()
            return 200 <= r.status < 300, f"HTTP {r.status}"
        finally:
            conn.close()
    except ConnectionRefusedError:
        return False, "connection refused"
    except TimeoutError:
        return False, f"timed out after {timeout_s:g} s"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Supervisor:
    """Runs and restarts child processes; thread-safe; a context manager (``stop_all`` on exit)."""

    def __init__(self, run_dir: Path, on_event: Callable[[TargetEvent], None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pids_file = self.run_dir / "pids.json"
        self._on_event = on_event
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._emit_lock = threading.Lock()
        self._children: dict[str, _Child] = {}
        self._pid_history: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        # in every child's environment: stop_all also finds a child whose Popen never returned (an interrupt
        # while Popen waited for the exec, after the fork), which no table of pids knows
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    # --- events ----------------------------------------------------------------------
    def _emit(self, kind: EventKind, subject: str, **detail: Any) -> None:
        ev = TargetEvent(t=time.time(), kind=kind, subject=subject, detail=detail)
        with self._emit_lock:
            if self._on_event is None:
                return
            try:
                self._on_event(ev)
            except Exception:
                log.exception("on_event listener failed for %s", ev)

    # --- start -----------------------------------------------------------------------
    def start(self, spec: ProcessSpec) -> int:
        """Start a new child (names are unique); return its pid. Raises OSError if it cannot be spawned."""
        with self._lock:
            if self._stopping.is_set():
                raise RuntimeError("supervisor is stopped")
            if spec.name in self._children:
                raise ValueError(f"a process named {spec.name!r} is already supervised")
            child = _Child(spec=spec)
            self._children[spec.name] = child
            try:
                self._spawn(child)
            except BaseException:
                del self._children[spec.name]
                raise
            child.prober = threading.Thread(target=self._probe_loop, args=(child,), name=f"probe-{spec.name}", daemon=True)
            child.prober.start()
            if self._monitor is None:
                self._monitor = threading.Thread(target=self._monitor_loop, name="supervisor-monitor", daemon=True)
                self._monitor.start()
            assert child.proc is not None
            return child.proc.pid

    def _spawn(self, child: _Child) -> None:
        """Start the child's process (lock held) and record it."""
        spec = child.spec
        env = dict(os.environ)
        env.update(spec.env)
        env[SUPERVISOR_TOKEN_ENV] = self.token
        logf: IO[bytes]
        with open(self.log_dir / f"{spec.name}.log", "ab") as logf:
            logf.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start {list(spec.argv)}\n".encode())
            logf.flush()
            proc = subprocess.Popen(
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        child.proc = proc
        note_spawn(proc.pid, spec.name, env)  # the run's ledger records it: rollback finds it whatever it does
        child.generation += 1
        child.ready = False
        child.restart_at = None
        self._pid_history.append({"name": spec.name, "group": spec.group, "pid": proc.pid, "t": time.time()})
        self._write_pids()
        self._cond.notify_all()
        self._emit(EventKind.REPLICA_STARTED, spec.name, pid=proc.pid, restarts=child.restarts, group=spec.group)

    def _write_pids(self) -> None:
        data = {
            "supervisor_pid": os.getpid(),
            "current": {
                n: {"pid": c.proc.pid if c.proc else None, "group": c.spec.group, "pgid": c.proc.pid if c.proc else None}
                for n, c in self._children.items()
            },
            "history": self._pid_history,
        }
        tmp = self.pids_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.pids_file)

    # --- monitor ---------------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stopping.wait(POLL_S):  # ends when stop_all sets the event
            with self._lock:
                now = time.monotonic()
                for child in list(self._children.values()):
                    proc = child.proc
                    if proc is not None and proc.poll() is not None:
                        self._on_exit(child, proc)
                    elif proc is None and child.restart_at is not None and now >= child.restart_at:
                        self._restart(child)

    def _on_exit(self, child: _Child, proc: subprocess.Popen[bytes]) -> None:
        name = child.spec.name
        child.proc = None
        child.generation += 1
        was_ready, child.ready = child.ready, False
        child.exit_codes = [*child.exit_codes[-(EXIT_CODES_KEPT - 1):], proc.returncode]
        child.exits_unready += 1
        self._emit(EventKind.REPLICA_EXITED, name, pid=proc.pid, returncode=proc.returncode)
        if was_ready:
            self._emit(EventKind.REPLICA_UNREADY, name, reason="exited")
        if not child.held and not self._stopping.is_set():
            child.restart_at = time.monotonic() + child.spec.restart_delay_s
        self._cond.notify_all()

    def _restart(self, child: _Child) -> None:
        child.restarts += 1
        try:
            self._spawn(child)
            child.start_failures = 0
        except OSError as e:
            child.start_failures += 1
            self._emit(EventKind.REPLICA_START_FAILED, child.spec.name, error=str(e), failures=child.start_failures)
            if child.start_failures < MAX_START_FAILURES:
                child.restart_at = time.monotonic() + max(child.spec.restart_delay_s, 0.5)
            else:
                child.restart_at = None

    def _probe_loop(self, child: _Child) -> None:
        while not self._stopping.is_set():  # one probe per interval until stop_all
            t0 = time.monotonic()
            with self._lock:
                gen, proc, url = child.generation, child.proc, child.spec.ready_url
            if proc is not None:
                ok, seen = (True, "no probe") if url is None else check(url)
                with self._lock:
                    if child.generation == gen and child.proc is proc and seen != child.last_probe:
                        child.last_probe, child.last_probe_since = seen, time.monotonic()
                    if child.generation == gen and child.proc is proc and proc.poll() is None and ok != child.ready:
                        child.ready = ok
                        if ok:
                            child.ever_ready, child.exits_unready = True, 0
                        self._cond.notify_all()
                        if ok:
                            self._emit(EventKind.REPLICA_READY, child.spec.name, pid=proc.pid)
                        else:
                            self._emit(EventKind.REPLICA_UNREADY, child.spec.name, pid=proc.pid, reason="probe failed")
            self._stopping.wait(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - t0)))

    # --- queries ---------------------------------------------------------------------
    def status(self) -> list[ReplicaStatus]:
        with self._lock:
            return [
                ReplicaStatus(
                    name=n,
                    group=c.spec.group,
                    pid=c.proc.pid if c.proc is not None else None,
                    running=c.proc is not None and c.proc.poll() is None,
                    ready=c.ready,
                    restarts=c.restarts,
                )
                for n, c in self._children.items()
            ]

    def health(self, name: str) -> MemberHealth:
        """The child's exits, restarts and last probe (for a start-up error that explains itself)."""
        with self._lock:
            c = self._child(name)
            return MemberHealth(
                name=name, pid=c.proc.pid if c.proc is not None else None, running=c.proc is not None and c.proc.poll() is None,
                ready=c.ready, ever_ready=c.ever_ready, restarts=c.restarts, exit_codes=tuple(c.exit_codes),
                exits_unready=c.exits_unready, ready_url=c.spec.ready_url, last_probe=c.last_probe,
                last_probe_for_s=time.monotonic() - c.last_probe_since if c.last_probe is not None else 0.0,
            )

    def names(self, group: str | None = None) -> list[str]:
        with self._lock:
            return [n for n, c in self._children.items() if group is None or c.spec.group == group]

    def pids(self) -> dict[str, int | None]:
        with self._lock:
            return {n: (c.proc.pid if c.proc is not None else None) for n, c in self._children.items()}

    def wait_ready(self, names: Iterable[str], timeout_s: float) -> bool:
        """Block until every named child is ready; False on timeout."""
        wanted = list(names)
        deadline = time.monotonic() + timeout_s
        with self._cond:
            unknown = [n for n in wanted if n not in self._children]
            if unknown:
                raise KeyError(f"unknown process(es): {', '.join(unknown)}")
            while True:  # bounded by the deadline
                if all(self._children[n].ready for n in wanted):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, POLL_S))

    # --- actions ---------------------------------------------------------------------
    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a child's process group (records ``replica_killed``); the monitor restarts it if it exits.

        After SIGKILL the child is reaped before this returns (``replica_exited`` already emitted).
        """
        with self._lock:
            child = self._child(name)
            proc = child.proc
            if proc is None or proc.poll() is not None:
                raise ProcessLookupError(f"{name} is not running")
            self._emit(EventKind.REPLICA_KILLED, name, pid=proc.pid, signal=signal.Signals(sig).name)
            _signal_group(proc, sig)
            if sig == signal.SIGKILL:
                # reap it now, so that status() and wait_ready() reflect the kill when this returns
                try:
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    return
                self._on_exit(child, proc)

    def stop(self, name: str, timeout_s: float = 5.0) -> None:
        """Stop one child on purpose (SIGTERM, then SIGKILL) and do not restart it until :meth:`resume`."""
        with self._lock:
            child = self._child(name)
            child.held = True
            child.restart_at = None
            proc = child.proc
        if proc is not None:
            _terminate([proc], timeout_s)
            with self._lock:
                if child.proc is proc:
                    self._on_exit(child, proc)

    def resume(self, name: str) -> int | None:
        """Start a child held by :meth:`stop` again; return its pid (None if it was already running)."""
        with self._lock:
            child = self._child(name)
            child.held = False
            if child.proc is not None:
                return None
            child.restarts += 1
            self._spawn(child)
            assert child.proc is not None
            return child.proc.pid

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise KeyError(f"unknown process {name!r}; known: {', '.join(self._children)}") from None

    def stop_all(self, timeout_s: float = 5.0) -> None:
        """SIGTERM every process group, wait up to ``timeout_s``, SIGKILL the rest, reap all. Idempotent."""
        self._stopping.set()
        monitor = self._monitor
        if monitor is not None and monitor is not threading.current_thread():
            monitor.join(timeout=2.0)
        with self._lock:
            procs = [c.proc for c in self._children.values() if c.proc is not None]
            probers = [c.prober for c in self._children.values() if c.prober is not None]
        _terminate(procs, timeout_s)
        kill_run_processes(self.token, timeout_s=timeout_s, token_env=SUPERVISOR_TOKEN_ENV)  # any this table lost
        with self._lock:
            for c in self._children.values():
                if c.proc is not None:
                    c.proc = None
                    c.ready = False
            self._write_pids()
            self._cond.notify_all()
        for t in probers:
            t.join(timeout=PROBE_TIMEOUT_S + 1.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child is its session's and group's leader
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


def _terminate(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM the groups, wait, SIGKILL survivors, and reap every process."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for p in live:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        if p.poll() is None:
            _signal_group(p, signal.SIGKILL)
        else:
            # the leader is gone; stragglers of its group would still answer to the group id
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for p in procs:
        try:
            p.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            log.error("process %s survived SIGKILL", p.pid)
