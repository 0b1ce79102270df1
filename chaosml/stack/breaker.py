"""Circuit breaker (closed / open / half-open) guarding the replica's feature-store calls; pure logic."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATE_CODES: dict[str, int] = {"closed": 0, "open": 1, "half_open": 2}


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures, stays open ``open_s`` seconds, then
    lets one trial call through (half-open): its success closes the breaker, its failure reopens it.

    A trial that never reports back (cancelled request) is given up after ``open_s`` and another
    trial is allowed. Not thread-safe: the replica uses it from one event loop.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        open_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if open_s < 0:
            raise ValueError("open_s must be >= 0")
        self.failure_threshold = failure_threshold
        self.open_s = open_s
        self._clock = clock
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._trial_at: float | None = None
        self.transitions = 0  # times the state changed
        self.opens = 0  # times it opened

    @property
    def state(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.open_s:
            self._set("half_open")
            self._trial_at = None
        return self._state

    @property
    def state_code(self) -> int:
        return STATE_CODES[self.state]

    def _set(self, state: State) -> None:
        if state != self._state:
            self._state = state
            self.transitions += 1

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one trial at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        now = self._clock()
        if self._trial_at is None or now - self._trial_at >= self.open_s:
            self._trial_at = now
            return True
        return False

    def record_success(self) -> None:
        if self.state == "open":  # a late answer to a call made before the breaker opened
            return
        self._failures = 0
        self._trial_at = None
        self._set("closed")

    def record_failure(self) -> None:
        if self.state == "open":  # already open: a late failure does not extend the open time
            return
        self._failures += 1
        if self._state == "half_open" or self._failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._trial_at = None
        if self._state != "open":
            self.opens += 1
        self._set("open")
