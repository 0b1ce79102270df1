"""Buffered appender of request samples to samples.csv (columns records.SAMPLE_COLUMNS); used by the driver.

A row is formatted to its CSV line when it is appended (one string kept, the tuple dropped), so
the buffer holds only text until the next :meth:`SampleWriter.flush`. The fast formatter writes
exactly what ``csv.writer`` (QUOTE_MINIMAL) writes: a line that would need quoting (a comma,
quote, CR or LF inside a value) is handed to ``csv.writer`` instead.
"""

from __future__ import annotations

import csv
import io
import os
from typing import IO, Any

from chaosml.errors import LoadConfigError
from chaosml.records import SAMPLE_COLUMNS

_SEPARATORS = len(SAMPLE_COLUMNS) - 1


def format_cell(value: Any) -> str:
    """One CSV cell: None -> "", floats compact, everything else str()."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cell(value: Any) -> str:
    """format_cell with the common exact types first (the recording hot path)."""
    cls = value.__class__
    if cls is str:
        return value
    if cls is float:
        return repr(value)
    if cls is int:
        return str(value)
    return format_cell(value)


def format_row(row: tuple[Any, ...]) -> str:
    """One samples row as its CSV line (no line terminator), byte for byte as ``csv.writer`` writes it."""
    line = ",".join([_cell(v) for v in row])
    if line.count(",") == _SEPARATORS == len(row) - 1 and '"' not in line and "\n" not in line and "\r" not in line:
        return line
    out = io.StringIO()
    # "\r\n" as the writer's terminator makes csv quote a lone CR too (with "\n" it does not,
    # and a reader would end the row there); the line itself still ends in "\n".
    csv.writer(out, lineterminator="\r\n").writerow([format_cell(v) for v in row])
    return out.getvalue()[:-2]


class SampleWriter:
    """Appends rows to a CSV file; rows are buffered in memory (as formatted lines) until :meth:`flush`.

    The header is written when the file is new or empty; an existing file whose header
    differs from ``SAMPLE_COLUMNS`` is refused rather than appended to.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        header = ",".join(SAMPLE_COLUMNS)
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, encoding="utf-8", newline="") as f:
                first = f.readline().rstrip("\r\n")
            if first != header:
                raise LoadConfigError(
                    [f"samples_file: {self.path} exists with header {first!r}, expected {header!r}"]
                )
            needs_header = False
        else:
            needs_header = True
        self._file: IO[str] = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._lines: list[str] = []
        self.written = 0
        if needs_header:
            self._file.write(header + "\n")
            self._file.flush()

    def append(self, row: tuple[Any, ...]) -> None:
        """Buffer one row, values in SAMPLE_COLUMNS order."""
        self._lines.append(format_row(row))

    def flush(self) -> int:
        """Write buffered rows and flush them to the OS; return how many were written."""
        lines, self._lines = self._lines, []
        if lines:
            lines.append("")
            self._file.write("\n".join(lines))
            self._file.flush()
            self.written += len(lines) - 1
        return len(lines) - 1 if lines else 0

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()
