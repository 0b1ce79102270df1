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
    """The reference: format_cell per value, then csv.writer (QUOTE_MINIMAL, CR and LF quoted), no terminator."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([format_cell(v) for v in row])
    return out.getvalue()[:-2]


ROW = (1795325276.689175, 12.345, 200, "ok", "primary", 1, 0.97, 1, "clean", 7, "bench-0", "bench", None)
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
    writer = SampleWriter(path)
    for row in TRICKY:
        writer.append(row)
    assert writer.flush() == len(TRICKY) and writer.flush() == 0
    writer.append(ROW)
    writer.close()
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(SAMPLE_COLUMNS)
    assert rows[1:] == [[format_cell(v) for v in row] for row in [*TRICKY, ROW]]
    assert writer.written == len(TRICKY) + 1


def test_a_carriage_return_in_an_answer_field_does_not_split_the_row(tmp_path: Path) -> None:
    """Regression: csv.writer with a "\n" terminator left a lone CR unquoted; readers ended the row there."""
    from chaosml.analysis import read_samples

    path = tmp_path / "samples.csv"
    writer = SampleWriter(path)
    writer.append((1.0, 0.5, 200, "ok", "primary", 1, 0.9, 1, "clean", 3, "replica\r0", "v1"))
    writer.append(ROW)
    writer.close()
    frame = read_samples(path)
    assert len(frame) == 2
    assert list(frame["replica"].astype(str)) == ["replica\r0", "bench-0"]


def test_merging_worker_files_keeps_quoted_line_breaks_in_their_field(tmp_path: Path) -> None:
    """Regression: merge_samples read with universal newlines and splitlines(), so a quoted CR or LF tore the row."""
    from chaosml.load.distributed import merge_samples, worker_samples_file

    base = tmp_path / "samples.csv"
    odd = (1.0, 0.5, 200, "ok", "primary", 1, 0.9, 1, "clean", 3, "replica\r0", "v\n1", None)
    for i, rows in enumerate([[odd], [ROW]]):
        writer = SampleWriter(worker_samples_file(base, i))
        for row in rows:
            writer.append(row)
        writer.close()
    out = merge_samples([worker_samples_file(base, i) for i in range(2)], base)
    assert out == {"rows": 2, "per_file": {str(worker_samples_file(base, i)): 1 for i in range(2)}, "dropped_lines": 0}
    with open(base, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[1:] == [[format_cell(v) for v in odd], [format_cell(v) for v in ROW]]


def test_rows_of_many_shapes_still_match_csv_writer(monkeypatch: Any) -> None:
    """The per-shape template cache is bounded; shapes beyond it are formatted the slow way, identically."""
    from chaosml.load import samples

    monkeypatch.setattr(samples, "_TEMPLATES", {})
    monkeypatch.setattr(samples, "_MAX_TEMPLATES", 2)
    values: list[Any] = [None, 1, 1.5, "x", True]
    for i in range(len(values) ** 3):
        row = (values[i % 5], values[i // 5 % 5], values[i // 25 % 5], "a,b" if i % 7 == 0 else "ok", *ROW[4:])
        assert format_row(row) == csv_line(row), row
    assert len(samples._TEMPLATES) == 2
    assert format_row([1.5, None]) == csv_line((1.5, None))  # type: ignore[arg-type]  # a list, not a tuple
