"""What every target built on the local Supervisor shares (reference stack, user services); used by both."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from chaosml.errors import TargetError
from chaosml.records import EventKind, TargetEvent
from chaosml.targets.startup import explain, hopeless
from chaosml.targets.supervisor import ReplicaStatus, Supervisor

log = logging.getLogger(__name__)

#: The start-up wait looks at the members' health this often (seconds), to give up early.
READY_SLICE_S = 0.5


class SupervisedTarget:
    """Members are supervised local processes in groups; proxy links are re-created if the proxy restarts.

    Subclasses set ``run_dir``, ``_sup``, ``_links``, ``_user_on_event`` and implement ``_start``,
    ``_create_links`` and ``describe``; ``_not_ready_label`` names the members in errors and
    ``_name`` the target in start-up errors.
    """

    platform = "local"
    run_dir: Path
    _not_ready_label = "members"
    _name = "target"

    def __init__(self, on_event: Callable[[TargetEvent], None] | None) -> None:
        self._user_on_event = on_event
        self._sup: Supervisor | None = None
        self._links: dict[str, dict[str, str]] = {}
        self._proxy_ready_seen = False
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def _create_links(self) -> None:
        raise NotImplementedError

    def _start(self, deadline: float) -> None:
        raise NotImplementedError

    def _start_within(self, timeout_s: float) -> None:
        """Run ``_start`` once with a deadline; on any failure stop what was started and raise TargetError."""
        if self._started:
            raise TargetError(f"the {self._name} was already started (make a new one)")
        self._started = True
        deadline = time.monotonic() + timeout_s
        try:
            self._start(deadline)
        except BaseException as e:
            self.stop()
            if isinstance(e, TargetError):
                raise
            if isinstance(e, Exception):
                raise TargetError(f"{self._name} failed to start: {type(e).__name__}: {e}") from e
            raise

    @property
    def supervisor(self) -> Supervisor:
        if self._sup is None:
            raise TargetError("the target is not started")
        return self._sup

    def _require_ready(self, names: list[str], timeout_s: float) -> None:
        """Wait until every named member is ready; give up early when every one not ready is hopeless (crash-looping, 404)."""
        sup = self.supervisor
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        while not sup.wait_ready(names, min(READY_SLICE_S, max(0.0, deadline - time.monotonic()))):
            waiting = [h for h in map(sup.health, names) if not h.ready]
            gave_up = bool(waiting) and all(hopeless(h) for h in waiting)
            if gave_up or time.monotonic() >= deadline:
                elapsed = time.monotonic() - t0
                why = (f"gave up after {elapsed:.1f} s (of {timeout_s:.0f} s allowed): every one not ready is crash-looping "
                       "or its health path is not found" if gave_up else f"not ready after {elapsed:.1f} s (the start timeout)")
                lines = [explain(h, self.run_dir / "logs" / f"{h.name}.log") for h in waiting]
                raise TargetError(f"{self._not_ready_label} {why}:\n" + "\n".join(lines))

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and reap them; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self._sup is not None:
            self._sup.stop_all()
        for t in self._threads:
            t.join(timeout=5.0)

    def __enter__(self) -> Self:
        self.start()  # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- events ----------------------------------------------------------------------
    def _emit(self, ev: TargetEvent) -> None:
        if self._user_on_event is not None:
            try:
                self._user_on_event(ev)
            except Exception:
                log.exception("on_event listener failed for %s", ev)

    def _in_background(self, fn: Callable[[], None], name: str) -> None:
        """Run follow-up work off the supervisor's monitor thread; joined by stop()."""
        t = threading.Thread(target=fn, name=name, daemon=True)
        self._threads.append(t)
        t.start()

    def _on_event(self, ev: TargetEvent) -> None:
        if self._user_on_event is not None:
            self._user_on_event(ev)  # the supervisor logs a failing listener
        if ev.kind == EventKind.REPLICA_READY and ev.subject == "proxy" and self._links:
            if self._proxy_ready_seen:
                # the proxy came back empty after a restart: create the same links again
                self._in_background(self._restore_links, "restore-links")
            self._proxy_ready_seen = True

    def _restore_links(self) -> None:
        try:
            self._create_links()
            ev = TargetEvent(t=time.time(), kind=EventKind.PROXY_LINKS_RESTORED, subject="proxy", detail={"links": sorted(self._links)})
        except Exception as e:  # noqa: BLE001 - reported as an event, never raised from a thread
            ev = TargetEvent(t=time.time(), kind=EventKind.PROXY_LINKS_RESTORE_FAILED, subject="proxy", detail={"error": str(e)})
        self._emit(ev)

    # --- queries and actions ---------------------------------------------------------
    def links(self) -> dict[str, dict[str, str]]:
        return {k: dict(v) for k, v in self._links.items()}

    def members(self, group: str) -> list[ReplicaStatus]:
        return [s for s in self.supervisor.status() if s.group == group]

    def groups(self) -> list[str]:
        """Every group with members, in start order."""
        seen: dict[str, None] = {}
        for s in self.supervisor.status():
            seen.setdefault(s.group, None)
        return list(seen)

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None:
        """Signal each named member's process group (SIGKILL by default); the supervisor restarts them."""
        sup = self.supervisor
        known = set(sup.names())
        unknown = [n for n in names if n not in known]
        if unknown:
            raise TargetError(f"unknown member(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for n in names:
            try:
                sup.kill(n, sig)
            except ProcessLookupError:
                log.info("%s was not running when asked to kill it", n)

    def stop_member(self, name: str) -> None:
        """Stop a member and keep it down until :meth:`start_member` (e.g. a feature-store outage)."""
        self.supervisor.stop(name)

    def start_member(self, name: str) -> None:
        self.supervisor.resume(name)

    def wait_group_ready(self, group: str, timeout_s: float) -> bool:
        names = [s.name for s in self.members(group)]
        if not names:
            raise TargetError(f"no members in group {group!r}")
        return self.supervisor.wait_ready(names, timeout_s)

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError
