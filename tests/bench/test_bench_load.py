"""benchmarks/load.py: the in-process recording cost times a row shaped like the driver's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import load
from chaosml.load import samples
from chaosml.records import SAMPLE_COLUMNS


def test_recording_cost_formats_rows_with_every_sample_column(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A row one column short never takes format_row's fast path, so it timed the csv fallback instead (fixed)."""
    seen: list[tuple[Any, ...]] = []
    original = samples.SampleWriter.append

    def append(self: samples.SampleWriter, row: tuple[Any, ...]) -> None:
        seen.append(row)
        original(self, row)

    monkeypatch.setattr(samples.SampleWriter, "append", append)
    cost = load.recording_cost_us(tmp_path / "micro.csv", 10)
    assert cost >= 0 and len(seen) == 10
    assert {len(row) for row in seen} == {len(SAMPLE_COLUMNS)}
    assert not (tmp_path / "micro.csv").exists()
