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


def test_a_signal_after_an_interrupted_run_is_settled_does_not_kill_the_process() -> None:
    """Five SIGINTs 0.3 s apart: the last one came after the report was written and killed `chaosml run`
    with SIGINT (returncode -2) instead of letting it exit 2 (seen in CI)."""
    import subprocess
    import sys

    code = (
        "import os, signal, sys\n"
        "from chaosml.interrupts import Interrupted, SignalGuard\n"
        "g = SignalGuard(); g.install()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGINT); signal.sigtimedwait([], 0)\n"
        "except Interrupted:\n"
        "    pass\n"
        "g.finish(); g.release()\n"
        "os.kill(os.getpid(), signal.SIGINT); signal.sigtimedwait([], 0)\n"
        "sys.exit(2)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2, done.stderr


def test_release_restores_the_handlers_of_a_run_that_was_not_interrupted() -> None:
    before = signal.getsignal(signal.SIGINT)
    guard = SignalGuard()
    guard.install()
    guard.release()
    assert signal.getsignal(signal.SIGINT) is before
