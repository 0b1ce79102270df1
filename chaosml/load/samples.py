"""Buffered appender of request samples to samples.csv (columns records.SAMPLE_COLUMNS); used by the driver."""

from __future__ import annotations

import csv
import os
from typing import IO, Any

from chaosml.errors import LoadConfigError
from chaosml.records import SAMPLE_COLUMNS


def format_cell(value: Any) -> str:
    """One CSV cell: None -> "", floats compact, everything else str()."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class SampleWriter:
    """Appends rows to a CSV file; rows are buffered in memory until :meth:`flush`.

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
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._buffer: list[tuple[Any, ...]] = []
        self.written = 0
        if needs_header:
            self._csv.writerow(SAMPLE_COLUMNS)
            self._file.flush()

    def append(self, row: tuple[Any, ...]) -> None:
        """Buffer one row, values in SAMPLE_COLUMNS order."""
        self._buffer.append(row)

    def flush(self) -> int:
        """Write buffered rows and flush them to the OS; return how many were written."""
        rows, self._buffer = self._buffer, []
        if rows:
            self._csv.writerows([format_cell(v) for v in row] for row in rows)
            self._file.flush()
            self.written += len(rows)
        return len(rows)

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()
