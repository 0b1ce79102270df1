"""CI's bounded self-chaos: 10 real runs broken at random moments, each rolled back.

The trials (benchmarks.selfchaos): SIGKILL, a torn ledger tail, a bystander, an own service, SIGINTs during recover.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from benchmarks import selfchaos

pytestmark = pytest.mark.slow


def test_ten_broken_runs_are_all_restored_and_no_bystander_is_harmed(tmp_path: Path) -> None:
    out = io.StringIO()
    results = selfchaos.soak(trials=10, seed=7, workdir=tmp_path, out=out)
    print(out.getvalue())
    assert len(results) == 10
    assert {t.adversity for t in results} == set(selfchaos.ADVERSITIES)
    assert not [t for t in results if t.bystander_harmed], out.getvalue()
    failed = [t for t in results if not t.restored]
    assert not failed, out.getvalue()
    # the seed spreads the kills over the run: before the stack is up, in baseline, in and after fault windows
    phases = {t.phase.split(" (")[0] for t in results if t.adversity != "signals"}
    assert len(phases) >= 3, phases
