"""Suite-wide isolation: the whole session (and every process it starts) uses its own rollback ledger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("chaosml-state")
    old = os.environ.get("CHAOSML_STATE_DIR")
    os.environ["CHAOSML_STATE_DIR"] = str(state)
    yield state
    if old is None:
        os.environ.pop("CHAOSML_STATE_DIR", None)
    else:
        os.environ["CHAOSML_STATE_DIR"] = old
