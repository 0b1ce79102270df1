"""The dataset the reference stack serves and the load process labels; pure, sklearn's bundled data only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

KNOWN_DATASETS: tuple[str, ...] = ("breast_cancer",)
TEST_FRACTION = 0.3


def _snake(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features split into request-time features (in the payload) and entity features (in the feature store)."""

    name: str
    seed: int
    feature_names: tuple[str, ...]  # all features, snake_case, column order of X
    request_features: tuple[str, ...]  # sent in the request payload
    entity_features: tuple[str, ...]  # stored per entity in the feature store
    X: np.ndarray  # float64, n x len(feature_names)
    y: np.ndarray  # int labels
    entity_ids: np.ndarray  # int, the row index
    train_idx: np.ndarray
    test_idx: np.ndarray
    class_names: tuple[str, ...]
    cohorts: np.ndarray | None = None  # per-row user cohort name (load.data.cohort, normalised); None = no file cohorts
    cohort_column: str | None = None  # the data file's column the cohorts come from

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def column(self, feature: str) -> int:
        """Column index of a feature in X."""
        return self.feature_names.index(feature)

    def columns(self, features: tuple[str, ...] | list[str]) -> list[int]:
        return [self.feature_names.index(f) for f in features]

    def row_payload(self, i: int) -> dict[str, Any]:
        """The /predict request body for row ``i``: entity id plus its request-time features."""
        row = self.X[int(i)]
        return {
            "entity_id": int(self.entity_ids[int(i)]),
            "features": {f: float(row[self.column(f)]) for f in self.request_features},
        }

    def entity_row(self, i: int) -> dict[str, float]:
        """Entity features of row ``i`` (what the feature store holds for it)."""
        row = self.X[int(i)]
        return {f: float(row[self.column(f)]) for f in self.entity_features}

    def label(self, i: int) -> int:
        return int(self.y[int(i)])

    def test_cohort_rows(self) -> dict[str, int]:
        """File cohort -> number of held-out (test) rows, every cohort of the file, sorted by name; {} without file cohorts."""
        if self.cohorts is None:
            return {}
        counts = {str(c): 0 for c in sorted(set(self.cohorts.tolist()))}
        for c in self.cohorts[self.test_idx].tolist():
            counts[str(c)] += 1
        return counts

    def feature_ranges(self) -> dict[str, tuple[float, float]]:
        """Per-feature (min, max) over the training rows."""
        xt = self.X[self.train_idx]
        lo, hi = xt.min(axis=0), xt.max(axis=0)
        return {f: (float(lo[j]), float(hi[j])) for j, f in enumerate(self.feature_names)}


#: slice cohort -> (request feature, low (inclusive), high (exclusive)): the held-out rows in that range, sent
#: clean (chaosml/workload/cohorts.py); a model-rollout drop-cohort variant is trained without its training rows
SLICES: dict[str, tuple[str, float, float]] = {"mid-radius": ("mean_radius", 14.0, 17.0)}


def slice_rows(ds: Dataset, name: str, rows: np.ndarray) -> np.ndarray:
    """The rows among ``rows`` that fall in slice cohort ``name``."""
    feature, lo, hi = SLICES[name]
    x = ds.X[rows, ds.column(feature)]
    out: np.ndarray = rows[(x >= lo) & (x < hi)]
    return out


def _load_breast_cancer() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    from sklearn.datasets import load_breast_cancer

    b = load_breast_cancer()
    return (
        np.asarray(b.data, dtype=np.float64),
        np.asarray(b.target, dtype=np.int64),
        [str(n) for n in b.feature_names],
        [str(n) for n in b.target_names],
    )


_LOADERS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray, list[str], list[str]]]] = {
    "breast_cancer": _load_breast_cancer,
}


def load_dataset(name: str = "breast_cancer", seed: int = 0) -> Dataset:
    """Load a bundled dataset with a stratified 70/30 train/test split drawn with ``seed``."""
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    from sklearn.model_selection import train_test_split

    X, y, raw_names, class_names = _LOADERS[name]()
    names = tuple(_snake(n) for n in raw_names)
    request = tuple(n for n, raw in zip(names, raw_names) if raw.startswith("mean "))
    entity = tuple(n for n in names if n not in request)
    idx = np.arange(X.shape[0])
    train_idx, test_idx = train_test_split(idx, test_size=TEST_FRACTION, random_state=seed, stratify=y)
    for a in (X, y):
        a.setflags(write=False)
    return Dataset(
        name=name,
        seed=seed,
        feature_names=names,
        request_features=request,
        entity_features=entity,
        X=X,
        y=y,
        entity_ids=idx.copy(),
        train_idx=np.sort(train_idx),
        test_idx=np.sort(test_idx),
        class_names=tuple(class_names),
    )
