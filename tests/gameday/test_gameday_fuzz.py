"""Game-day files of any shape give located errors, never another exception (property-based)."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testutil import doc_paths

from chaosml.errors import ExperimentError, InvalidInputError
from chaosml.gameday.loader import load_gameday_text

ROOT = Path(__file__).resolve().parents[2]
GAMEDAYS = ROOT / "experiments" / "gamedays"
BASE = yaml.safe_load((GAMEDAYS / "weekly.yaml").read_text())

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["0 3 * * 1", "61 * * * *", "forbid", "allow", "stop", "../quickstart.yaml",
                                           "nope.yaml", "-1s", "24h", "sat", "25:00", "2026-13-01T00:00", "é✓"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)),
    max_leaves=6,
)


PATHS = doc_paths(BASE)


def _check(text: str) -> None:
    try:
        load_gameday_text(text, "fuzz.yaml", base_dir=GAMEDAYS)
    except ExperimentError as exc:
        assert exc.issues and all(i.line >= 1 and "\n" not in str(i) for i in exc.issues)
    except InvalidInputError:
        pass  # a referenced experiment file's own errors, located in that file


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=_VALUES, delete=st.booleans())
def test_mutated_gameday_files_load_or_raise_located_errors(path: tuple, value: object, delete: bool) -> None:
    doc = copy.deepcopy(BASE)
    if not path:
        doc = value
    else:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    _check(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_is_a_located_error(text: str) -> None:
    _check(text)
