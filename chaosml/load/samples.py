"""Buffered appender of request samples to samples.csv (columns records.SAMPLE_COLUMNS); used by the driver.

A row is formatted to its CSV line when it is appended (one string kept, the tuple dropped), so
the buffer holds only text until the next :meth:`SampleWriter.flush`. The fast formatter (one
cached %-template per row shape, i.e. per tuple of exact cell types) writes exactly what
``csv.writer`` (QUOTE_MINIMAL) writes: a line that would need quoting (a comma, quote, CR or LF
inside a value) is handed to ``csv.writer`` instead.
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


#: %-conversion per exact type, giving format_cell's text: "%.0s" turns None into "".
_CONVERSIONS: dict[type, str] = {str: "%s", int: "%s", bool: "%s", float: "%r", type(None): "%.0s"}
#: A row's exact cell types -> its %-template (None: a type without a conversion). The driver's
#: rows come in a handful of shapes, so one C-level ``template % row`` formats a row.
_TEMPLATES: dict[tuple[type, ...], str | None] = {}
_MAX_TEMPLATES = 1024  # bounded: unusual rows (a locustfile's answers) fall back beyond this


def _template(types: tuple[type, ...]) -> str | None:
    conversions = [_CONVERSIONS.get(t) for t in types]
    template = None if None in conversions else ",".join(conversions)  # type: ignore[arg-type]
    if len(_TEMPLATES) < _MAX_TEMPLATES:
        _TEMPLATES[types] = template
    return template


def format_row(row: tuple[Any, ...]) -> str:
    """One samples row as its CSV line (no line terminator), byte for byte as ``csv.writer`` writes it."""
    types = tuple(map(type, row))
    template = _TEMPLATES.get(types, "") if row.__class__ is tuple else None
    if template == "":
        template = _template(types)
    line = template % row if template is not None else ",".join([format_cell(v) for v in row])
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
