"""chaosml.load.samples: the fast row formatter writes exactly what csv.writer writes, one line per row."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chaosml.load.samples import SampleWriter, format_cell, format_row
from chaosml.records import SAMPLE_COLUMNS


def csv_line(row: tuple[Any, ...]) -> str:
    """The reference: format_cell per value, then csv.writer (QUOTE_MINIMAL), as SampleWriter wrote before."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([format_cell(v) for v in row])
    return out.getvalue()[:-1]


ROW = (1795325276.689175, 12.345, 200, "ok", "primary", 1, 0.97, 1, "clean", 7, "bench-0", "bench")
TRICKY = [
    ROW,
    (2.0, 1.0, 0, "error", None, None, None, None, "clean", None, None, None),
    (1.0, 0.5, 200, "ok", "a,b", 'say "hi"', 0.5, True, "clean", 3, "line\nbreak", "cr\rhere"),
    (1.0, 0.5, 200, "ok", "", " padded ", float("nan"), False, "clean", -0.0, "", "v1"),
    (1e-7, 1e22, 503, "error", "fallback", 1.5, np.float64(0.25), np.int64(3), "drift", "e,1", None, '"'),
]


def test_tricky_rows_match_csv_writer() -> None:
    for row in TRICKY:
        assert format_row(row) == csv_line(row), row


scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.sampled_from([",", '"', "\n", "\r", "a,b", '""']),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # no timing: a busy box
@given(st.tuples(*[scalar] * len(SAMPLE_COLUMNS)))
def test_any_row_matches_csv_writer(row: tuple[Any, ...]) -> None:
    assert format_row(row) == csv_line(row)


def test_writer_file_reads_back_one_row_per_append(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    readable = [row for row in TRICKY if "cr\rhere" not in row]  # csv.writer leaves a lone CR unquoted
    writer = SampleWriter(path)
    for row in readable:
        writer.append(row)
    assert writer.flush() == len(readable) and writer.flush() == 0
    writer.append(ROW)
    writer.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(SAMPLE_COLUMNS)
    assert rows[1:] == [[format_cell(v) for v in row] for row in [*readable, ROW]]
    assert writer.written == len(readable) + 1
