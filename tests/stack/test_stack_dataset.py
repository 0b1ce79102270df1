"""Dataset loading: feature split, names, stratified split, payload helpers."""

from __future__ import annotations

import numpy as np
import pytest

from chaosml.workload.builtin_dataset import load_dataset


def test_feature_split_and_names() -> None:
    ds = load_dataset()
    assert len(ds.feature_names) == 30
    assert len(ds.request_features) == 10 and len(ds.entity_features) == 20
    assert all(f.startswith("mean_") for f in ds.request_features)
    assert set(ds.request_features) | set(ds.entity_features) == set(ds.feature_names)
    assert "mean_radius" in ds.request_features and "worst_concave_points" in ds.entity_features
    assert all(" " not in f and f == f.lower() for f in ds.feature_names)
    assert ds.X.dtype == np.float64 and ds.X.shape == (569, 30)
    assert ds.class_names == ("malignant", "benign")


def test_split_is_stratified_disjoint_and_seeded() -> None:
    ds = load_dataset(seed=0)
    assert len(set(ds.train_idx) & set(ds.test_idx)) == 0
    assert len(ds.train_idx) + len(ds.test_idx) == 569
    assert abs(len(ds.test_idx) / 569 - 0.3) < 0.01
    assert abs(ds.y[ds.train_idx].mean() - ds.y[ds.test_idx].mean()) < 0.02
    assert np.array_equal(load_dataset(seed=0).test_idx, ds.test_idx)
    assert not np.array_equal(load_dataset(seed=1).test_idx, ds.test_idx)


def test_payload_label_and_ranges() -> None:
    ds = load_dataset()
    p = ds.row_payload(7)
    assert p["entity_id"] == 7 and isinstance(p["entity_id"], int)
    assert list(p["features"]) == list(ds.request_features)
    assert p["features"]["mean_radius"] == float(ds.X[7, ds.column("mean_radius")])
    assert ds.label(7) == int(ds.y[7])
    assert set(ds.entity_row(7)) == set(ds.entity_features)
    r = ds.feature_ranges()
    assert set(r) == set(ds.feature_names)
    assert all(lo <= hi for lo, hi in r.values())


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(ValueError, match="known datasets: breast_cancer"):
        load_dataset("iris")
