"""CI's bounded self-chaos: 10 real runs killed with SIGKILL at random moments, each rolled back."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("selfchaos_soak", Path(__file__).with_name("soak.py"))
assert _spec and _spec.loader
soak_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(soak_mod)


def test_ten_killed_runs_are_all_restored(tmp_path: Path) -> None:
    out = io.StringIO()
    results = soak_mod.soak(trials=10, seed=7, workdir=tmp_path, out=out)
    print(out.getvalue())
    assert len(results) == 10
    failed = [t for t in results if not t.restored]
    assert not failed, out.getvalue()
    # the seed spreads the kills over the run: some before faults, some inside fault windows
    phases = {t.phase.split(" (")[0] for t in results}
    assert len(phases) >= 3, phases
