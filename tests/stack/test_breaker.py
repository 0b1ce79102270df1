"""Circuit breaker state machine, driven by a fake clock."""

from __future__ import annotations

import pytest

from chaosml.stack.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_consecutive_failures_only() -> None:
    c = Clock()
    b = CircuitBreaker(failure_threshold=3, open_s=2.0, clock=c)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the count
    b.record_failure()
    b.record_failure()
    assert b.state == "closed" and b.allow()
    b.record_failure()
    assert b.state == "open" and b.state_code == 1 and b.opens == 1
    assert not b.allow()


def test_half_open_allows_one_trial_then_closes_on_success() -> None:
    c = Clock()
    b = CircuitBreaker(failure_threshold=1, open_s=2.0, clock=c)
    b.record_failure()
    c.t += 1.999
    assert b.state == "open" and not b.allow()
    c.t += 0.001
    assert b.state == "half_open" and b.state_code == 2
    assert b.allow()
    assert not b.allow()  # only one trial in flight
    b.record_success()
    assert b.state == "closed" and b.allow()


def test_half_open_failure_reopens_for_full_period() -> None:
    c = Clock()
    b = CircuitBreaker(failure_threshold=2, open_s=1.0, clock=c)
    b.record_failure()
    b.record_failure()
    c.t += 1.0
    assert b.allow()
    b.record_failure()  # the trial failed: one failure is enough in half-open
    assert b.state == "open" and b.opens == 2
    c.t += 0.5
    assert not b.allow()
    c.t += 0.5
    assert b.state == "half_open"


def test_lost_trial_is_replaced_after_open_period() -> None:
    c = Clock()
    b = CircuitBreaker(failure_threshold=1, open_s=1.0, clock=c)
    b.record_failure()
    c.t += 1.0
    assert b.allow()
    c.t += 0.5
    assert not b.allow()
    c.t += 0.5
    assert b.allow()  # the first trial never reported back


def test_late_results_while_open_change_nothing() -> None:
    c = Clock()
    b = CircuitBreaker(failure_threshold=1, open_s=1.0, clock=c)
    b.record_failure()
    c.t += 0.9
    b.record_failure()  # does not extend the open period
    b.record_success()  # a late success does not close it
    assert b.state == "open"
    c.t += 0.1
    assert b.state == "half_open"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(open_s=-1)
