"""SignalGuard: the first signal interrupts, never inside a critical section; later ones only say "please wait"."""

from __future__ import annotations

import os
import signal

import pytest

from chaosml.interrupts import Interrupted, SignalGuard


def _signal(signum: int = signal.SIGINT) -> None:
    os.kill(os.getpid(), signum)
    signal.sigtimedwait([], 0)  # let the handler run (it runs between bytecodes of the main thread)


def test_a_signal_inside_a_critical_section_interrupts_after_it(capfd: pytest.CaptureFixture[str]) -> None:
    guard = SignalGuard()
    guard.install()
    finished = []
    try:
        with pytest.raises(Interrupted) as exc, guard.critical("recover kill #1"):
            _signal(signal.SIGTERM)
            _signal()  # a second and third: "please wait", never an exception inside the section
            _signal()
            finished.append(True)
        assert finished == [True] and exc.value.signum == signal.SIGTERM and guard.wait(0)
        guard.finish()
        _signal()  # after finish: nothing raises
    finally:
        guard.restore()
    err = capfd.readouterr().err
    assert "SIGTERM: finishing recover kill #1 first, then stopping the run" in err
    assert err.count("SIGINT: recovering, please wait") == 3


def test_first_signal_outside_a_section_raises_once() -> None:
    guard = SignalGuard()
    guard.install()
    try:
        with pytest.raises(Interrupted):
            _signal()
        _signal()
        with guard.critical("recover kill #1"):
            pass  # no second Interrupted at its end
    finally:
        guard.restore()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
