"""Trains, caches and loads the reference stack's models; the replicas and gateway load the cached artifact.

The artifact directory ``~/.cache/chaosml/models/<key>/`` holds:

- ``primary.joblib`` / ``fallback.joblib``: the fitted scikit-learn estimators (for offline use);
- ``serving.npz``: the same models exported to plain arrays, so a replica predicts with numpy
  alone and starts without importing scikit-learn (an import that costs ~1.5 s);
- ``meta.json``: feature lists, training ranges, the Mahalanobis statistics of the request-time
  features, the default response and the test accuracies.

Training checks that the exported arrays reproduce scikit-learn's probabilities.

Degraded variants of the primary (for the ``model-rollout`` fault) are trained on demand, seeded,
by :func:`ensure_variant` into ``<artifact>/variants/<name>.npz`` (the primary's arrays only):
``drop-cohort`` without the training rows of a slice cohort, ``label-noise`` with a share of the
training labels flipped, ``stale`` on an early share of the training rows only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ARTIFACT_FORMAT = 1
PRIMARY_CONFIDENCE_MIN = 0.6  # hardened: primary answers below this confidence go to the fallback
OOD_PERCENTILE = 99.9
OOD_FACTOR = 1.5  # threshold = percentile of training distances x factor


def default_cache_dir() -> Path:
    """``$CHAOSML_CACHE_DIR/models``, else ``$XDG_CACHE_HOME/chaosml/models``, else ``~/.cache/chaosml/models``."""
    if os.environ.get("CHAOSML_CACHE_DIR"):
        return Path(os.environ["CHAOSML_CACHE_DIR"]) / "models"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "chaosml" / "models"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))
    return out


@dataclass(frozen=True, eq=False)
class TreeEnsemble:
    """A binary gradient-boosted tree ensemble as padded arrays: (n_trees, n_nodes) each."""

    feature: np.ndarray  # int, -1 at leaves
    threshold: np.ndarray
    left: np.ndarray  # int, self-loop at leaves
    right: np.ndarray
    value: np.ndarray  # leaf raw value (already scaled by the learning rate)
    init: float
    depth: int

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # scikit-learn's trees compare float32 inputs against their thresholds.
        X = np.atleast_2d(np.asarray(X, dtype=np.float64)).astype(np.float32).astype(np.float64)
        n, t = X.shape[0], self.feature.shape[0]
        trees = np.arange(t)[None, :]
        node = np.zeros((n, t), dtype=np.int64)
        rows = np.arange(n)[:, None]
        for _ in range(self.depth):
            f = self.feature[trees, node]
            x = X[rows, np.maximum(f, 0)]
            go_left = x <= self.threshold[trees, node]
            nxt = np.where(go_left, self.left[trees, node], self.right[trees, node])
            node = np.where(f < 0, node, nxt)
        raw = self.init + self.value[trees, node].sum(axis=1)
        p1 = _sigmoid(raw)
        return np.column_stack([1.0 - p1, p1])


@dataclass(frozen=True, eq=False)
class LinearModel:
    """Standard scaling followed by binary logistic regression."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        p1 = _sigmoid(((X - self.mean) / self.scale) @ self.coef + self.intercept)
        return np.column_stack([1.0 - p1, p1])


@dataclass(frozen=True, eq=False)
class Artifact:
    """Everything a replica or the gateway needs to serve, loaded from an artifact directory."""

    path: Path
    meta: dict[str, Any]
    primary: TreeEnsemble
    fallback: LinearModel
    ood_mean: np.ndarray
    ood_scale: np.ndarray
    ood_inv_cov: np.ndarray

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def request_features(self) -> list[str]:
        return list(self.meta["request_features"])

    @property
    def entity_features(self) -> list[str]:
        return list(self.meta["entity_features"])

    @property
    def primary_version(self) -> str:
        return str(self.meta["primary"]["version"])

    @property
    def fallback_version(self) -> str:
        return str(self.meta["fallback"]["version"])

    @property
    def default_response(self) -> dict[str, Any]:
        return dict(self.meta["default"])

    @property
    def ood_threshold(self) -> float:
        return float(self.meta["ood"]["threshold"])

    def ood_distance(self, x_request: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of request-time feature rows from the training distribution."""
        z = (np.atleast_2d(x_request) - self.ood_mean) / self.ood_scale
        d2 = np.einsum("ij,jk,ik->i", z, self.ood_inv_cov, z)
        out: np.ndarray = np.sqrt(np.maximum(d2, 0.0))
        return out


def load_meta(path: Path) -> dict[str, Any]:
    """Only meta.json (the gateway needs nothing else)."""
    meta: dict[str, Any] = json.loads((Path(path) / "meta.json").read_text())
    return meta


def load_artifact(path: Path) -> Artifact:
    """Load an artifact directory written by :func:`ensure_artifact`, without scikit-learn."""
    path = Path(path)
    meta = load_meta(path)
    primary, fallback = load_artifact_arrays_only(path / "serving.npz")
    with np.load(path / "serving.npz") as z:
        a = {k: z[k] for k in z.files if k.startswith("ood_")}
    return Artifact(
        path=path,
        meta=meta,
        primary=primary,
        fallback=fallback,
        ood_mean=a["ood_mean"],
        ood_scale=a["ood_scale"],
        ood_inv_cov=a["ood_inv_cov"],
    )


def artifact_key(dataset: str, seed: int) -> str:
    import sklearn

    return f"{dataset}-seed{seed}-sklearn{sklearn.__version__}-fmt{ARTIFACT_FORMAT}"


def _export_gb(gb: Any, X_train: np.ndarray) -> dict[str, np.ndarray]:
    trees = [est[0].tree_ for est in gb.estimators_]
    lr = float(gb.learning_rate)
    n_nodes = max(t.node_count for t in trees)
    t_count = len(trees)
    feature = np.full((t_count, n_nodes), -1, dtype=np.int64)
    threshold = np.zeros((t_count, n_nodes))
    left = np.zeros((t_count, n_nodes), dtype=np.int64)
    right = np.zeros((t_count, n_nodes), dtype=np.int64)
    value = np.zeros((t_count, n_nodes))
    depth = 0
    for i, t in enumerate(trees):
        k = t.node_count
        leaf = t.children_left[:k] < 0
        feature[i, :k] = np.where(leaf, -1, t.feature[:k])
        threshold[i, :k] = t.threshold[:k]
        idx = np.arange(k)
        left[i, :k] = np.where(leaf, idx, t.children_left[:k])
        right[i, :k] = np.where(leaf, idx, t.children_right[:k])
        value[i, :k] = lr * t.value[:k, 0, 0]
        depth = max(depth, int(t.max_depth))
    tmp = TreeEnsemble(feature, threshold, left, right, value, 0.0, depth)
    # The constant init term: sklearn's decision function minus the trees' sum.
    raw_trees = np.log(tmp.predict_proba(X_train)[:, 1]) - np.log(tmp.predict_proba(X_train)[:, 0])
    init = float(np.median(gb.decision_function(X_train) - raw_trees))
    return {
        "gb_feature": feature,
        "gb_threshold": threshold,
        "gb_left": left,
        "gb_right": right,
        "gb_value": value,
        "gb_init": np.array(init),
        "gb_depth": np.array(depth),
    }


def _train(dir_: Path, dataset_name: str, seed: int) -> None:
    import joblib
    import sklearn
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from chaosml.workload.builtin_dataset import load_dataset

    t0 = time.monotonic()
    ds = load_dataset(dataset_name, seed)
    if len(ds.class_names) != 2:
        raise ValueError(f"the reference stack serves binary datasets only, {dataset_name!r} has {len(ds.class_names)} classes")
    Xtr, ytr = ds.X[ds.train_idx], ds.y[ds.train_idx]
    Xte, yte = ds.X[ds.test_idx], ds.y[ds.test_idx]
    req_cols = ds.columns(ds.request_features)

    gb = GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, random_state=seed)
    gb.fit(Xtr, ytr)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    lr.fit(Xtr[:, req_cols], ytr)

    arrays = _export_gb(gb, Xtr)
    scaler, logreg = lr.named_steps["standardscaler"], lr.named_steps["logisticregression"]
    arrays.update(
        lr_mean=np.asarray(scaler.mean_, dtype=np.float64),
        lr_scale=np.asarray(scaler.scale_, dtype=np.float64),
        lr_coef=np.asarray(logreg.coef_[0], dtype=np.float64),
        lr_intercept=np.array(float(logreg.intercept_[0])),
    )
    # Mahalanobis statistics on standardised request-time features (raw ones are ill-conditioned).
    xr = Xtr[:, req_cols]
    ood_mean, ood_scale = xr.mean(axis=0), xr.std(axis=0)
    ood_scale = np.where(ood_scale > 0, ood_scale, 1.0)
    z = (xr - ood_mean) / ood_scale
    cov = np.cov(z, rowvar=False) + 1e-6 * np.eye(z.shape[1])
    inv_cov = np.linalg.pinv(cov)
    arrays.update(ood_mean=ood_mean, ood_scale=ood_scale, ood_inv_cov=inv_cov)
    d_train = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, inv_cov, z), 0.0))
    ood_threshold = float(np.percentile(d_train, OOD_PERCENTILE) * OOD_FACTOR)

    np.savez(dir_ / "serving.npz", **arrays)  # type: ignore[arg-type]
    joblib.dump(gb, dir_ / "primary.joblib")
    joblib.dump(lr, dir_ / "fallback.joblib")

    art_tmp = load_artifact_arrays_only(dir_ / "serving.npz")
    p_sk = gb.predict_proba(Xte)[:, 1]
    p_np = art_tmp[0].predict_proba(Xte)[:, 1]
    f_sk = lr.predict_proba(Xte[:, req_cols])[:, 1]
    f_np = art_tmp[1].predict_proba(Xte[:, req_cols])[:, 1]
    if not (np.allclose(p_sk, p_np, atol=1e-9) and np.allclose(f_sk, f_np, atol=1e-9)):
        raise RuntimeError("exported serving arrays do not reproduce scikit-learn's probabilities")

    def digest(name: str) -> str:
        return hashlib.sha256((dir_ / name).read_bytes()).hexdigest()[:10]

    npz_hash = digest("serving.npz")
    majority = int(np.bincount(ytr).argmax())
    prior = float(np.mean(ytr == majority))
    ranges = ds.feature_ranges()
    meta = {
        "format": ARTIFACT_FORMAT,
        "dataset": dataset_name,
        "seed": seed,
        "sklearn_version": sklearn.__version__,
        "created_at": time.time(),
        "train_seconds": 0.0,
        "n_entities": ds.n_rows,
        "class_names": list(ds.class_names),
        "feature_names": list(ds.feature_names),
        "request_features": list(ds.request_features),
        "entity_features": list(ds.entity_features),
        "train_ranges": {f: list(r) for f, r in ranges.items()},
        "primary": {
            "version": f"primary-{npz_hash}",
            "kind": "GradientBoostingClassifier",
            "features": list(ds.feature_names),
            "test_accuracy": float(np.mean((p_np >= 0.5).astype(int) == yte)),
            "min_confidence": PRIMARY_CONFIDENCE_MIN,
        },
        "fallback": {
            "version": f"fallback-{npz_hash}",
            "kind": "StandardScaler+LogisticRegression",
            "features": list(ds.request_features),
            "test_accuracy": float(np.mean((f_np >= 0.5).astype(int) == yte)),
        },
        "default": {
            "prediction": majority,
            "confidence": prior,
            "model_version": f"default-{npz_hash}",
        },
        "ood": {
            "features": list(ds.request_features),
            "percentile": OOD_PERCENTILE,
            "factor": OOD_FACTOR,
            "threshold": ood_threshold,
            "train_mean": ood_mean.tolist(),
            "train_scale": ood_scale.tolist(),
            "inv_cov": inv_cov.tolist(),
        },
    }
    meta["train_seconds"] = round(time.monotonic() - t0, 3)
    (dir_ / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _trees(a: dict[str, np.ndarray]) -> TreeEnsemble:
    return TreeEnsemble(a["gb_feature"], a["gb_threshold"], a["gb_left"], a["gb_right"], a["gb_value"],
                        float(a["gb_init"]), int(a["gb_depth"]))


def load_artifact_arrays_only(npz: Path) -> tuple[TreeEnsemble, LinearModel]:
    """The primary and fallback models from ``serving.npz``."""
    with np.load(npz) as z:
        a = {k: z[k] for k in z.files}
    return _trees(a), LinearModel(a["lr_mean"], a["lr_scale"], a["lr_coef"], float(a["lr_intercept"]))


def load_variant(npz: Path) -> TreeEnsemble:
    """A degraded primary written by :func:`ensure_variant` (numpy only)."""
    with np.load(npz) as z:
        return _trees({k: z[k] for k in z.files})


def variant_name(spec: dict[str, Any]) -> str:
    """The variant's name in model versions and file names: ``drop-cohort-mid-radius``, ``label-noise-0.3``, ``stale-0.2``."""
    kind = str(spec["variant"])
    if kind == "drop-cohort":
        return f"{kind}-{spec['cohort']}"
    if kind == "label-noise":
        return f"{kind}-{float(spec['noise_share']):g}"
    if kind == "stale":
        return f"{kind}-{float(spec['train_share']):g}"
    raise ValueError(f"unknown model variant {kind!r}")


def variant_train_rows(ds: Any, spec: dict[str, Any], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training rows and labels of a variant (seeded): the primary's training split, degraded as ``spec`` says."""
    from chaosml.workload.builtin_dataset import slice_rows

    rows, kind = ds.train_idx, str(spec["variant"])
    y = np.array(ds.y[rows])
    if kind == "drop-cohort":
        keep = ~np.isin(rows, slice_rows(ds, str(spec["cohort"]), rows))
        return rows[keep], y[keep]
    rng = np.random.default_rng(seed)
    if kind == "label-noise":
        flip = rng.choice(len(rows), size=round(float(spec["noise_share"]) * len(rows)), replace=False)
        y[flip] = 1 - y[flip]
        return rows, y
    if kind == "stale":  # the rows an older artifact saw: the first share of the training rows
        n = max(2, round(float(spec["train_share"]) * len(rows)))
        return rows[:n], y[:n]
    raise ValueError(f"unknown model variant {kind!r}")


def ensure_variant(artifact_dir: Path, spec: dict[str, Any]) -> tuple[Path, str]:
    """Train (once, cached) the degraded primary ``spec`` describes; return its npz and its model version.

    The version is ``<primary version>+<variant name>``; the estimator is the primary's, with the
    same seed, on :func:`variant_train_rows`.
    """
    from sklearn.ensemble import GradientBoostingClassifier

    from chaosml.workload.builtin_dataset import load_dataset

    meta = load_meta(artifact_dir)
    name = variant_name(spec)
    version = f"{meta['primary']['version']}+{name}"
    out = Path(artifact_dir) / "variants" / f"{name}.npz"
    if out.is_file():
        return out, version
    seed = int(meta["seed"])
    ds = load_dataset(str(meta["dataset"]), seed)
    rows, y = variant_train_rows(ds, spec, seed)
    gb = GradientBoostingClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, random_state=seed)
    gb.fit(ds.X[rows], y)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.npz")
    np.savez(tmp, **_export_gb(gb, ds.X[rows]))  # type: ignore[arg-type]
    os.replace(tmp, out)
    return out, version


def _complete(path: Path) -> bool:
    return all((path / n).is_file() for n in ("meta.json", "serving.npz", "primary.joblib", "fallback.joblib"))


def ensure_artifact(cache_dir: Path | None = None, dataset: str = "breast_cancer", seed: int = 0) -> Path:
    """Return the artifact directory for (dataset, seed), training once and caching it atomically.

    ``cache_dir`` is the models root (default :func:`default_cache_dir`); the artifact lives in
    ``<cache_dir>/<key>/`` where the key holds the dataset, seed, sklearn version and format.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / artifact_key(dataset, seed)
    if _complete(final):
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        _train(tmp, dataset, seed)
        if final.exists() and not _complete(final):
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not _complete(final):  # lost a race to a broken writer: surface it
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
