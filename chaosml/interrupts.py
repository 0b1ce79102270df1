"""SIGINT/SIGTERM during a run: the first one interrupts, but never a recover or ledger close; used by the runner and `chaosml run`.

A :class:`SignalGuard` is installed for the whole run (and, by the CLI, while the report is
written). Its rules:

- the first signal outside a critical section raises :class:`Interrupted` in the main thread (it
  cuts target start, the load wait and the fault schedule short);
- inside :meth:`SignalGuard.critical` (apply + ledger open, recover + ledger close) the first
  signal is deferred: the section finishes, then :class:`Interrupted` is raised;
- after :meth:`SignalGuard.finish` (recovery, rollbacks, teardown, journal, report) no signal
  raises anything;
- every later signal only says "recovering, please wait": the run still recovers every fault,
  closes the ledger, writes its journal exit code and its report;
- :attr:`SignalGuard.event` is set at the first signal, so waits (:meth:`SignalGuard.wait`) end early.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The run was interrupted by a signal; BaseException so that no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """SIGINT/SIGTERM handling for one run (see the module docstring). Only the main thread installs handlers."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._depth = 0
        self._doing = ""  # what the outermost critical section does, said when a signal comes inside it
        self._finishing = False
        self._raised = False
        self._old: dict[int, Any] = {}

    @property
    def interrupted(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread() and not self._old:
            self._old = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def restore(self) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
        self._old = {}

    def release(self) -> None:
        """The run is over: restore the handlers, unless a signal already stopped it. Then further signals are
        ignored: the outcome (journal exit code, report) is settled, and a late Ctrl-C must not turn exit 2 into a
        death by SIGINT while the process exits."""
        if not self.interrupted:
            self.restore()
            return
        for s in self._old or dict.fromkeys(SIGNALS):
            signal.signal(s, signal.SIG_IGN)
        self._old = {}

    def finish(self) -> None:
        """From now on a signal raises nothing: what follows (recovery, teardown, journal, report) always completes."""
        self._finishing = True

    @contextmanager
    def critical(self, doing: str) -> Iterator[None]:
        """A section no signal cuts (apply + ledger open, recover + ledger close); a signal received inside interrupts after it.

        ``doing`` says what it does ("recover kill #1"), for the message a signal prints meanwhile.
        """
        if not self._depth:
            self._doing = doing
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0 and self.event.is_set() and not (self._raised or self._finishing):
            self._raised = True
            raise Interrupted(self.signum or signal.SIGINT)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when a signal came (now or before): the caller stops waiting."""
        return self.event.wait(max(0.0, seconds))

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.event.is_set():
            _say(f"{name}: recovering, please wait (every applied fault is undone, the ledger closed and the journal and report written before exit)")
            return
        self.signum = signum
        self.event.set()
        if self._depth:
            _say(f"{name}: finishing {self._doing} first, then stopping the run ...")
            return
        if self._finishing:
            _say(f"{name}: stopping: finishing the recovery and teardown in progress ...")
            return
        self._raised = True
        raise Interrupted(signum)


def _say(message: str) -> None:
    """A line on stderr, written straight to the file descriptor (safe inside a signal handler)."""
    try:
        os.write(sys.stderr.fileno(), f"chaosml: {message}\n".encode())
    except (OSError, ValueError):
        pass
