"""Model artifact: trained once, cached, loadable without scikit-learn, accurate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chaosml.stack import models
from chaosml.stack.models import ensure_artifact, load_artifact
from chaosml.workload.builtin_dataset import load_dataset


def test_artifact_is_cached_and_accurate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ensure_artifact(tmp_path, "breast_cancer", 0)
    assert path.parent == tmp_path and "seed0" in path.name and "sklearn" in path.name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("retrained")

    monkeypatch.setattr(models, "_train", boom)
    assert ensure_artifact(tmp_path, "breast_cancer", 0) == path

    meta = json.loads((path / "meta.json").read_text())
    assert meta["primary"]["test_accuracy"] > 0.9
    assert meta["fallback"]["test_accuracy"] > 0.85
    assert meta["primary"]["version"].startswith("primary-")
    assert meta["fallback"]["version"].startswith("fallback-")
    assert meta["train_seconds"] < 10
    assert meta["default"]["prediction"] == 1 and 0.5 < meta["default"]["confidence"] < 0.7

    art = load_artifact(path)
    ds = load_dataset()
    X = ds.X[ds.test_idx]
    p = art.primary.predict_proba(X)
    assert np.allclose(p.sum(axis=1), 1.0)
    assert np.mean(p.argmax(axis=1) == ds.y[ds.test_idx]) == pytest.approx(meta["primary"]["test_accuracy"])
    f = art.fallback.predict_proba(X[:, ds.columns(ds.request_features)])
    assert np.mean(f.argmax(axis=1) == ds.y[ds.test_idx]) == pytest.approx(meta["fallback"]["test_accuracy"])
    d = art.ood_distance(X[:, ds.columns(ds.request_features)])
    assert np.mean(d > art.ood_threshold) < 0.01


def test_exported_trees_match_sklearn(tmp_path: Path) -> None:
    import joblib

    path = ensure_artifact(tmp_path)
    gb = joblib.load(path / "primary.joblib")
    art = load_artifact(path)
    ds = load_dataset()
    assert np.allclose(gb.predict_proba(ds.X), art.primary.predict_proba(ds.X), atol=1e-9)
