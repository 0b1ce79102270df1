"""Compare releases: re-analyse runs from disk and judge every verdict, fault and cohort x phase SLI, noise-aware (public API)."""

from chaosml.compare.core import (
    COMPARE_SCHEMA,
    KEY_SLIS,
    Comparison,
    Row,
    Settings,
    Side,
    compare_runs,
    compare_sides,
    default_min_change,
)
from chaosml.compare.policy import FailPolicy, failing_rows, parse_min_change
from chaosml.compare.render import render_terminal, write_outputs
from chaosml.compare.runs import load_run

__all__ = [
    "COMPARE_SCHEMA",
    "KEY_SLIS",
    "Comparison",
    "FailPolicy",
    "Row",
    "Settings",
    "Side",
    "compare_runs",
    "compare_sides",
    "default_min_change",
    "failing_rows",
    "load_run",
    "parse_min_change",
    "render_terminal",
    "write_outputs",
]
