"""Labelled datasets named in the experiment (``load.data``: CSV, or Parquet with pyarrow); used by the runner.

:func:`dataset_for` picks what a run sends: the file in ``load.data``, else the built-in scikit-learn
dataset (``load.dataset``). For a custom stack every feature is a request feature (there is no
feature store the harness manages); the reference stack keeps its request/entity split.

The schema is inferred from the data: feature columns must be numeric (or given as ``features``),
ranges are the training rows' (min, max) unless ``ranges`` gives them (the out-of-range and
corrupted cohorts push values outside them). Labels: integers as they are, anything else mapped to
0..k-1 in sorted order (the mapping is in ``class_names``). Problems raise :class:`DataFileError`
(exit 4) naming the file and the column.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chaosml.dataset import TEST_FRACTION, Dataset, load_dataset
from chaosml.errors import InvalidInputError

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
    for key, col in (("label", spec.label), ("entity", spec.entity)):
        if col is not None and col not in columns:
            raise DataFileError(f"{path}: {where}.{key}: no column {col!r} (columns: {', '.join(columns[:20])})")
    skip = {spec.label, spec.entity}
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
    df = df.dropna(subset=[spec.label])
    if len(df) < 10:
        raise DataFileError(f"{path}: fewer than 10 labelled rows")
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
    stratify = y if counts.size and counts[counts > 0].min() >= 2 else None
    train_idx, test_idx = train_test_split(idx, test_size=spec.test_fraction, random_state=seed, stratify=stratify)
    for a in (X, y):
        a.setflags(write=False)
    ds = Dataset(
        name=path.name, seed=seed, feature_names=tuple(features), request_features=tuple(features), entity_features=(),
        X=X, y=y, entity_ids=entity_ids, train_idx=np.sort(train_idx), test_idx=np.sort(test_idx), class_names=class_names,
    )
    if spec.ranges:
        return _with_ranges(ds, {k: (float(v[0]), float(v[1])) for k, v in spec.ranges.items()})
    return ds


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


def dataset_for(experiment: Experiment) -> Dataset:
    """The dataset a run sends: ``load.data`` when given, else the built-in one (all features for a custom stack)."""
    load = experiment.load
    if load.data is not None:
        return load_user_dataset(load.data, seed=load.seed)
    ds = load_dataset(load.dataset, seed=load.seed)
    if experiment.target.stack == "custom":
        return dataclasses.replace(ds, request_features=ds.feature_names, entity_features=())
    return ds


__all__ = ["TEST_FRACTION", "DataFileError", "dataset_for", "load_user_dataset", "pyarrow_available"]
