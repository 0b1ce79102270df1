"""Labelled datasets named in the experiment (``load.data``: CSV, or Parquet with pyarrow); used by the runner.

:func:`dataset_for` picks what a run sends: the file in ``load.data``, else the built-in scikit-learn
dataset (``load.dataset``). For a custom stack every feature is a request feature (there is no
feature store the harness manages); the reference stack keeps its request/entity split.

The schema is inferred from the data: feature columns must be numeric (or given as ``features``),
ranges are the training rows' (min, max) unless ``ranges`` gives them (the out-of-range and
corrupted cohorts push values outside them). Labels: integers as they are, anything else mapped to
0..k-1 in sorted order (the mapping is in ``class_names``). Problems raise :class:`DataFileError`
(exit 4) naming the file and the column.

File cohorts (``load.data.cohort: COLUMN``): each row belongs to the cohort named by its value in
that column, normalised by :func:`normalise_cohort` (``" EU West "`` -> ``eu-west``; values that
normalise alike are one cohort). The column is read as text as written (a CSV cell ``NA`` is the
cohort ``na``); an empty cell, a null, or a value with no letter or digit is an error naming its
row, and so is a name equal to a built-in cohort's (``catalog.COHORTS``) or more than
:data:`MAX_FILE_COHORTS` distinct names. The train/test split is then stratified by label and
cohort together (by label alone when a pair has a single row or there are more pairs than test rows). The load sends each clean row under
its file cohort (see ``chaosml.workload.cohorts.expand_mix``); :func:`check_file_cohorts` refuses, before
anything starts, a mix key or an objective's ``cohort`` naming a file cohort with no test rows.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chaosml.errors import InvalidInputError
from chaosml.model.catalog import MAX_FILE_COHORTS, normalise_cohort
from chaosml.workload.builtin_dataset import TEST_FRACTION, Dataset, load_dataset

if TYPE_CHECKING:
    from chaosml.model.experiment import DataSpec, Experiment

#: Largest data file read (rows beyond what a load run needs only cost memory).
MAX_ROWS = 1_000_000


class DataFileError(InvalidInputError):
    """The data file named in the experiment cannot be used; nothing was started or injected."""


def pyarrow_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def _read(path: Path) -> Any:
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        if not pyarrow_available():
            raise DataFileError(f"{path}: reading Parquet needs pyarrow, which is not installed (pip install pyarrow), or use a CSV file")
        return pd.read_parquet(path)
    return pd.read_csv(path, nrows=MAX_ROWS)


def load_user_dataset(spec: DataSpec, seed: int = 0, where: str = "load.data") -> Dataset:
    """The labelled dataset in ``spec.file`` with a stratified train/test split drawn with ``seed``."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    path = Path(spec.file)
    if not path.is_file():
        raise DataFileError(f"{path}: {where}.file: no such file")
    try:
        df = _read(path)
    except DataFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse problem is the file's
        raise DataFileError(f"{path}: cannot read it: {type(exc).__name__}: {exc}") from None
    columns = [str(c) for c in df.columns]
    df.columns = columns
    for key, col in (("label", spec.label), ("entity", spec.entity), ("cohort", spec.cohort)):
        if col is not None and col not in columns:
            raise DataFileError(f"{path}: {where}.{key}: no column {col!r} (columns: {', '.join(columns[:20])})")
    skip = {spec.label, spec.entity, spec.cohort}
    if spec.features is not None:
        missing = [f for f in spec.features if f not in columns]
        if missing:
            raise DataFileError(f"{path}: {where}.features: no column(s) {', '.join(map(repr, missing))} (columns: {', '.join(columns[:20])})")
        features = list(spec.features)
    else:
        features = [c for c in columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    bad = [f for f in features if not pd.api.types.is_numeric_dtype(df[f])]
    if bad:
        raise DataFileError(f"{path}: {where}.features: column(s) {', '.join(map(repr, bad))} are not numeric; only numeric features are sent")
    if not features:
        raise DataFileError(f"{path}: {where}: no numeric feature columns")
    if spec.ranges:
        unknown = [f for f in spec.ranges if f not in features]
        if unknown:
            raise DataFileError(f"{path}: {where}.ranges: not feature column(s): {', '.join(map(repr, unknown))}")
    if spec.cohort is not None and spec.cohort in features:
        raise DataFileError(f"{path}: {where}.cohort: column {spec.cohort!r} is also a feature; a cohort column is not sent")
    if spec.cohort is not None and spec.cohort in (spec.label, spec.entity):
        raise DataFileError(f"{path}: {where}.cohort: column {spec.cohort!r} is the {'label' if spec.cohort == spec.label else 'entity'} column")
    raw_cohorts = None
    if spec.cohort is not None:
        df = df.reset_index(drop=True)  # row numbers in messages are positions
        raw_cohorts = _cohort_cells(path, df, spec.cohort)
    df = df.dropna(subset=[spec.label])
    if len(df) < 10:
        raise DataFileError(f"{path}: fewer than 10 labelled rows")
    cohorts = _file_cohorts(path, raw_cohorts.loc[df.index], spec.cohort, where) if raw_cohorts is not None and spec.cohort else None
    labels = df[spec.label]
    if pd.api.types.is_integer_dtype(labels):
        y = labels.to_numpy(dtype=np.int64)
        class_names = tuple(str(v) for v in sorted(set(y.tolist())))
    else:
        classes = sorted({str(v) for v in labels})
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[str(v)] for v in labels], dtype=np.int64)
        class_names = tuple(classes)
    X = df[features].to_numpy(dtype=np.float64)
    if spec.entity is not None:
        ent = df[spec.entity]
        if not pd.api.types.is_integer_dtype(ent):
            raise DataFileError(f"{path}: {where}.entity: column {spec.entity!r} must hold integers")
        entity_ids = ent.to_numpy(dtype=np.int64)
    else:
        entity_ids = np.arange(len(df))
    idx = np.arange(len(df))
    counts = np.bincount(y - y.min()) if len(y) else np.array([])
    stratify: Any = y if counts.size and counts[counts > 0].min() >= 2 else None
    if cohorts is not None:  # every cohort in the test rows in its share, when each (label, cohort) pair allows it
        pairs = np.array([f"{a}|{b}" for a, b in zip(y.tolist(), cohorts.tolist())])
        _, pair_counts = np.unique(pairs, return_counts=True)
        n_test = math.ceil(spec.test_fraction * len(pairs))  # as train_test_split counts them
        if pair_counts.min() >= 2 and len(pair_counts) <= min(n_test, len(pairs) - n_test):
            stratify = pairs
    train_idx, test_idx = train_test_split(idx, test_size=spec.test_fraction, random_state=seed, stratify=stratify)
    for a in (X, y):
        a.setflags(write=False)
    ds = Dataset(
        name=path.name, seed=seed, feature_names=tuple(features), request_features=tuple(features), entity_features=(),
        X=X, y=y, entity_ids=entity_ids, train_idx=np.sort(train_idx), test_idx=np.sort(test_idx), class_names=class_names,
        cohorts=cohorts, cohort_column=spec.cohort if cohorts is not None else None,
    )
    if spec.ranges:
        return _with_ranges(ds, {k: (float(v[0]), float(v[1])) for k, v in spec.ranges.items()})
    return ds


def _cohort_cells(path: Path, df: Any, column: str) -> Any:
    """The cohort column as written: a CSV column is re-read as text, so that ``NA`` or ``null`` stay names."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        return df[column]
    try:
        text = pd.read_csv(path, usecols=[column], dtype=str, keep_default_na=False, nrows=MAX_ROWS)[column]
    except Exception:  # noqa: BLE001 - fall back to the parsed column (its missing values are errors below)
        return df[column]
    if len(text) != len(df):
        return df[column]
    text.index = df.index
    return text


def _file_cohorts(path: Path, cells: Any, column: str, where: str) -> np.ndarray:
    """Normalised cohort name per row; DataFileError for an empty value, a built-in name or too many names."""
    import pandas as pd

    from chaosml.model.catalog import COHORTS

    names: list[str] = []
    seen: set[str] = set()
    for pos, value in zip(cells.index.tolist(), cells.tolist()):
        row = int(pos) + 1  # the first row after the header is row 1
        missing = value is None or (not isinstance(value, str) and bool(pd.isna(value)))
        name = "" if missing else normalise_cohort(value)
        if not name:
            what = "an empty value" if missing or not str(value).strip() else f"the value {str(value)!r}, which has no letter or digit,"
            raise DataFileError(f"{path}: {where}.cohort: column {column!r} has {what} at row {row} (rows count from 1 after the header); "
                                "every row needs a cohort")
        if name in COHORTS:
            raise DataFileError(f"{path}: {where}.cohort: column {column!r}: the value {str(value)!r} (row {row}) is the built-in cohort "
                                f"name {name!r}; rename it in the file (built-in names: {', '.join(COHORTS)})")
        seen.add(name)
        names.append(name)
        if len(seen) > MAX_FILE_COHORTS:
            n = len({normalise_cohort(v) for v in cells.tolist() if isinstance(v, str) or not pd.isna(v)})
            raise DataFileError(f"{path}: {where}.cohort: column {column!r} has {n} distinct values; at most {MAX_FILE_COHORTS} "
                                "cohorts are supported (is it an id column?)")
    out = np.array(names, dtype=object)
    out.setflags(write=False)
    return out


class _RangedDataset(Dataset):
    """A dataset whose feature ranges are given (for the out-of-range cohorts), else inferred."""

    def feature_ranges(self) -> dict[str, tuple[float, float]]:
        base = Dataset.feature_ranges(self)
        base.update(self.__dict__.get("_given_ranges", {}))
        return base


def _with_ranges(ds: Dataset, ranges: dict[str, tuple[float, float]]) -> Dataset:
    out = _RangedDataset(**{f.name: getattr(ds, f.name) for f in dataclasses.fields(ds)})
    object.__setattr__(out, "_given_ranges", ranges)
    return out


def check_file_cohorts(experiment: Experiment, ds: Dataset) -> None:
    """DataFileError for a mix key or an SLO/hypothesis/abort ``cohort`` naming a file cohort without test rows.

    Built-in cohort names are not file cohorts and are not checked here (the loader did).
    """
    from chaosml.model.catalog import COHORTS

    if ds.cohorts is None:
        return
    rows = ds.test_cohort_rows()
    named: list[tuple[str, str]] = [(f"load.mix.{c}", c) for c in experiment.load.mix]
    named += [(f"steady_state.slos[{i}].cohort", s.cohort) for i, s in enumerate(experiment.steady_state.slos) if s.cohort]
    named += [(f"hypotheses[{i}].cohort", h.cohort) for i, h in enumerate(experiment.hypotheses) if h.cohort]
    named += [(f"abort[{i}].cohort", a.cohort) for i, a in enumerate(experiment.abort) if a.cohort]
    file = str(Path(experiment.load.data.file)) if experiment.load.data is not None else ds.name
    for where, name in named:
        if name in COHORTS or rows.get(name, 0) > 0:
            continue
        empty = [c for c, n in rows.items() if n == 0]
        known = ", ".join(rows) + (f" (no test rows: {', '.join(empty)})" if empty else "")
        raise DataFileError(f"{file}: {where}: no test rows with {ds.cohort_column} = {name}; cohorts in the file: {known}")


def dataset_for(experiment: Experiment) -> Dataset:
    """The dataset a run sends: ``load.data`` when given, else the built-in one (all features for a custom stack).

    With file cohorts, names the experiment gives them are checked against the test rows (:func:`check_file_cohorts`).
    """
    load = experiment.load
    if load.data is not None:
        ds = load_user_dataset(load.data, seed=load.seed)
        check_file_cohorts(experiment, ds)
        return ds
    ds = load_dataset(load.dataset, seed=load.seed)
    if experiment.target.stack == "custom":
        return dataclasses.replace(ds, request_features=ds.feature_names, entity_features=())
    return ds


__all__ = [
    "MAX_FILE_COHORTS",
    "TEST_FRACTION",
    "DataFileError",
    "check_file_cohorts",
    "dataset_for",
    "load_user_dataset",
    "normalise_cohort",
    "pyarrow_available",
]
