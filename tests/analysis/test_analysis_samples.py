"""read_samples: fixed dtypes, empty cells, a truncated last line from a killed run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from chaosml.analysis.samples import read_samples
from chaosml.records import SAMPLE_COLUMNS

HEADER = ",".join(SAMPLE_COLUMNS) + "\n"
ROWS = [
    "1700000000.5,12.5,200,ok,primary,1,0.93,1,clean,7,model-1,v1\n",
    "1700000000.1,2001.0,0,timeout,,,,0,missing-features,8,,\n",
    "1700000000.9,8.0,422,rejected,rejected,,,1,out-of-range,9,model-2,v1\n",
]


def test_dtypes_sorted_and_missing_cells(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text(HEADER + "".join(ROWS))
    df = read_samples(p)
    assert list(df.columns) == list(SAMPLE_COLUMNS)
    assert len(df) == 3
    assert df["t"].is_monotonic_increasing
    for col in ("t", "latency_ms", "prediction", "confidence", "label", "entity_id"):
        assert df[col].dtype == np.float64, col
    assert df["status"].dtype == np.int32
    for col in ("outcome", "served_by", "cohort", "replica", "model_version"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert list(df["outcome"].cat.categories) == ["ok", "rejected", "error", "timeout", "invalid"]
    assert list(df["served_by"].cat.categories) == ["primary", "fallback", "default", "rejected"]
    first = df.iloc[0]
    assert first["outcome"] == "timeout"
    assert pd.isna(first["served_by"]) and np.isnan(first["prediction"]) and first["status"] == 0
    assert df["served_by"].iloc[1] == "primary"


def test_truncated_last_line_is_dropped(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text(HEADER + "".join(ROWS) + "1700000001.2,3")  # the writer was killed mid-row
    df = read_samples(p)
    assert len(df) == 3
    assert df["t"].max() == 1700000000.9


def test_missing_empty_and_header_only_files(tmp_path):
    assert len(read_samples(tmp_path / "nope.csv")) == 0
    (tmp_path / "empty.csv").write_text("")
    assert len(read_samples(tmp_path / "empty.csv")) == 0
    (tmp_path / "header.csv").write_text(HEADER)
    df = read_samples(tmp_path / "header.csv")
    assert len(df) == 0 and list(df.columns) == list(SAMPLE_COLUMNS)
    (tmp_path / "half-header.csv").write_text("t,latency")
    assert len(read_samples(tmp_path / "half-header.csv")) == 0


def test_garbled_numeric_cell_is_coerced_not_fatal(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text(HEADER + ROWS[0] + "1700000000.6,abc,200,ok,primary,1,0.9,1,clean,7,model-1,v1\n")
    df = read_samples(p)
    assert len(df) == 2
    assert np.isnan(df["latency_ms"].iloc[1])
