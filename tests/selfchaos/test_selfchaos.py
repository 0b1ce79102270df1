"""CI's bounded self-chaos: 10 real runs killed with SIGKILL at random moments, each rolled back."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import selfchaos_soak

pytestmark = pytest.mark.slow


def test_ten_killed_runs_are_all_restored(tmp_path: Path) -> None:
    out = io.StringIO()
    results = selfchaos_soak.soak(trials=10, seed=7, workdir=tmp_path, out=out)
    print(out.getvalue())
    assert len(results) == 10
    failed = [t for t in results if not t.restored]
    assert not failed, out.getvalue()
    # the seed spreads the kills over the run: before the stack is up, in baseline, in and after fault windows
    phases = {t.phase.split(" (")[0] for t in results}
    assert len(phases) >= 3, phases
