"""The load tables (per phase and per load.shape stage) mark a short phase SHORT and a target that held its own rate
down TARGET-LIMITED, the same way in both tables."""

from __future__ import annotations

from typing import Any

from chaosml.report.blocks import Table
from chaosml.report.document import load_table, stage_table

ROWS: list[dict[str, Any]] = [
    {"phase": "baseline", "duration_s": 10.0, "requested_rps": 100.0, "achieved_rps": 99.0, "ratio": 0.99, "short": False},
    {"phase": "fault", "duration_s": 5.0, "requested_rps": 100.0, "achieved_rps": 40.0, "ratio": 0.4, "short": True,
     "target_limited": True},
    {"phase": "after", "duration_s": 5.0, "requested_rps": 0.0, "achieved_rps": 0.0, "ratio": None, "short": False},
    {"phase": "between", "duration_s": 5.0, "requested_rps": 100.0, "achieved_rps": 100.0, "ratio": 1.0, "short": False},
    {"phase": "empty", "duration_s": 0.0, "requested_rps": 100.0, "achieved_rps": 0.0, "ratio": 0.0, "short": True},
]


def _table(blocks: list[Any]) -> Table:
    (table,) = [b for b in blocks if isinstance(b, Table)]
    return table


def test_the_achieved_column_says_short_and_target_limited_in_both_load_tables() -> None:
    by_phase = _table(load_table({"load_delivery": ROWS}))
    assert [r[-1] for r in by_phase.rows] == ["99%", "40% SHORT TARGET-LIMITED", "n/a"]  # no 'between', no empty phase
    assert by_phase.row_kinds == ("", "fail", "")
    by_stage = _table(stage_table({"load_stages": ROWS}))
    assert [r[-1] for r in by_stage.rows] == ["99%", "40% SHORT TARGET-LIMITED", "n/a", "100%"]
    assert by_stage.rows[1][:4] == ("fault", "5.0 s", "100.0", "40.0")
