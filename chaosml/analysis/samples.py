"""Read samples.csv into a DataFrame with fixed dtypes; used by analysis, report and compare.

The load process appends one row per request (columns ``records.SAMPLE_COLUMNS``). A run that was
killed may leave a half-written last line: it is dropped, never parsed into a bogus row.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from chaosml.records import OUTCOMES, SAMPLE_COLUMNS, SERVED_BY_VALUES

OUTCOME_DTYPE = pd.CategoricalDtype(list(OUTCOMES))
SERVED_BY_DTYPE = pd.CategoricalDtype(list(SERVED_BY_VALUES))

#: Columns read as float64 (empty cell = NaN). ``status`` becomes int32 (missing = 0, no response).
FLOAT_COLUMNS: tuple[str, ...] = ("t", "latency_ms", "prediction", "confidence", "label", "entity_id", "drift")
CATEGORY_COLUMNS: tuple[str, ...] = ("cohort", "replica", "model_version")


def empty_samples() -> pd.DataFrame:
    """An empty samples frame with the fixed dtypes."""
    return normalize_samples(pd.DataFrame({c: [] for c in SAMPLE_COLUMNS}))


def normalize_samples(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a samples frame (read from disk or built in a test) to the fixed dtypes.

    Missing columns are added as missing values; rows without a send time are dropped; the
    result is sorted by send time ``t``. Columns already of the right dtype are not copied.
    """
    n = len(df)
    out: dict[str, pd.Series] = {}
    for col in FLOAT_COLUMNS:
        if col in df.columns:
            s = df[col]
            if s.dtype != np.float64:
                s = pd.to_numeric(s.astype(object).where(s.notna(), None), errors="coerce").astype(np.float64)
        else:
            s = pd.Series(np.full(n, np.nan), index=df.index)
        out[col] = s
    if "status" in df.columns:
        s = df["status"]
        if s.dtype != np.int32:
            s = pd.to_numeric(s.astype(object).where(s.notna(), None), errors="coerce")
            s = s.fillna(0).astype(np.int32)
        out["status"] = s
    else:
        out["status"] = pd.Series(np.zeros(n, dtype=np.int32), index=df.index)
    out["outcome"] = _category(df, "outcome", OUTCOME_DTYPE)
    out["served_by"] = _category(df, "served_by", SERVED_BY_DTYPE)
    for col in CATEGORY_COLUMNS:
        out[col] = _category(df, col, None)
    res = pd.DataFrame({c: out[c] for c in SAMPLE_COLUMNS}, index=df.index)
    res = res[res["t"].notna()]
    t = res["t"].to_numpy()
    if len(t) > 1 and bool(np.any(t[1:] < t[:-1])):
        res = res.sort_values("t", kind="stable")
    return res.reset_index(drop=True)


def _category(df: pd.DataFrame, col: str, dtype: pd.CategoricalDtype | None) -> pd.Series:
    if col not in df.columns:
        return pd.Series(pd.Categorical([None] * len(df), dtype=dtype or pd.CategoricalDtype([])), index=df.index)
    s = df[col]
    if isinstance(s.dtype, pd.CategoricalDtype) and (dtype is None or s.dtype == dtype):
        if dtype is None and "" in s.cat.categories:
            s = s.cat.remove_categories([""])
        return s
    values = s.astype(object).where(s.notna(), None)
    values = values.map(lambda v: None if v is None or v == "" else str(v))
    if dtype is None:
        return values.astype("category")
    return pd.Series(pd.Categorical(values, dtype=dtype), index=df.index)


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read samples.csv with fixed dtypes; a missing or empty file gives an empty frame.

    dtypes: t, latency_ms, prediction, confidence, label, entity_id, drift float64 (missing = NaN);
    status int32 (missing = 0); outcome, served_by categoricals with fixed categories (unknown
    or empty = NaN); cohort, replica, model_version categoricals. A truncated last line (no
    trailing newline: the writer was killed mid-row) is dropped. Rows are sorted by ``t``.
    """
    p = Path(path)
    if not p.exists():
        return empty_samples()
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else b""
    if not data.strip():
        return empty_samples()
    dtypes: dict[str, object] = {c: np.float64 for c in FLOAT_COLUMNS}
    dtypes.update({"status": np.float64, "outcome": OUTCOME_DTYPE, "served_by": SERVED_BY_DTYPE})
    dtypes.update({c: "category" for c in CATEGORY_COLUMNS})
    # cohort names as written: "category" would turn all-digit names (a file cohort "007") into numbers
    dtypes["cohort"] = str
    kwargs: dict[str, object] = {
        "keep_default_na": False,
        "na_values": [""],
        "on_bad_lines": "skip",
    }
    try:
        df = pd.read_csv(io.BytesIO(data), dtype=dtypes, **kwargs)
    except (ValueError, TypeError):
        # A garbled numeric cell somewhere: read as text and coerce cell by cell.
        df = pd.read_csv(io.BytesIO(data), dtype=str, **kwargs)
    if "cohort" in df.columns:
        df["cohort"] = df["cohort"].astype("category")
    return normalize_samples(df)
