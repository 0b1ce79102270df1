"""Evasion perturbations computed against the reference stack's models, offline; used by cohorts.py.

An attacker controls only the request-time features of a ``/predict`` body: the entity features
come from the feature store. For each held-out row :func:`evasion_rows` searches, along a few
gradient-sign directions of the request features, the smallest step that makes the primary model
(gradient-boosted trees on all features, evaluated on the full vector: perturbed request features
plus the entity's true stored features) predict the wrong class:

- directions (in units of each feature's training standard deviation): the sign of the fallback
  logistic model's weights, the sign of a linear surrogate of the primary (an L2-regularised
  logistic regression fitted by Newton's method to the primary's own predictions on the training
  rows, restricted to the request-feature weights), and that surrogate's L2-normalised weights;
  each pushed away from the true label;
- every candidate is clipped into the training range of each feature, so a naive stack (range
  checks or not) sees plausible values;
- the step is searched on a geometric grid, then refined by bisection; the attacker prefers the
  smallest step whose wrong answer has primary confidence >= ``target_confidence`` (a confident
  evasion: the silent failure) and otherwise takes the smallest step that flips at all;
- a row the primary already gets wrong is sent unchanged (step 0); a row no step flips is sent at
  the largest step of the direction that moved the primary furthest (counted as not flipped).

The label stays the TRUE label, so accuracy and confident-wrong ratio measure the damage. Everything
is numpy on the artifact's exported arrays: deterministic, and well under a second for all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chaosml.stack.models import Artifact, LinearModel, TreeEnsemble
from chaosml.workload.builtin_dataset import Dataset

#: geometric grid of step sizes, in training standard deviations per feature
STEP_GRID: tuple[float, ...] = tuple(float(x) for x in np.geomspace(0.02, 4.0, 40))
BISECTION_ROUNDS = 10
TARGET_CONFIDENCE = 0.9
SURROGATE_L2 = 1.0
SURROGATE_NEWTON_STEPS = 25


@dataclass(frozen=True, slots=True)
class EvasionResult:
    """Perturbed request features for each held-out row, and how each fared against the primary."""

    rows: np.ndarray  # dataset row indices (ds.test_idx order)
    x_request: np.ndarray  # (n, len(request_features)) perturbed request features
    step: np.ndarray  # step size used, training std units (0 = unchanged)
    direction: tuple[str, ...]  # name of the direction used per row ("none" when unchanged)
    clean_correct: np.ndarray  # bool: the primary was right on the clean row
    flipped: np.ndarray  # bool: the primary is wrong on the perturbed row
    confidence: np.ndarray  # primary confidence on the perturbed row

    @property
    def flip_rate(self) -> float:
        """Share of rows the primary got right that the perturbation makes it get wrong."""
        n = int(self.clean_correct.sum())
        return float((self.flipped & self.clean_correct).sum() / n) if n else 0.0

    @property
    def confident_flip_rate(self) -> float:
        """Like :attr:`flip_rate`, counting only wrong answers at confidence >= TARGET_CONFIDENCE."""
        n = int(self.clean_correct.sum())
        hit = self.flipped & self.clean_correct & (self.confidence >= TARGET_CONFIDENCE)
        return float(hit.sum() / n) if n else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "rows": len(self.rows),
            "clean_correct": int(self.clean_correct.sum()),
            "flipped": int((self.flipped & self.clean_correct).sum()),
            "flip_rate": round(self.flip_rate, 4),
            "confident_flip_rate": round(self.confident_flip_rate, 4),
            "median_step_std": float(np.median(self.step[self.flipped & self.clean_correct]))
            if (self.flipped & self.clean_correct).any()
            else None,
        }


def fit_surrogate(X: np.ndarray, target: np.ndarray, l2: float = SURROGATE_L2) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """L2-regularised logistic regression on standardised ``X`` by Newton's method: (mean, scale, w, b)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = np.column_stack([(X - mean) / scale, np.ones(len(X))])
    theta = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0  # no penalty on the intercept
    y = target.astype(np.float64)
    for _ in range(SURROGATE_NEWTON_STEPS):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ theta, -500, 500)))
        grad = Z.T @ (p - y) + reg * theta
        hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(Z.shape[1])
        delta = np.linalg.solve(hess, grad)
        theta -= delta
        if float(np.max(np.abs(delta))) < 1e-10:
            break
    return mean, scale, theta[:-1], float(theta[-1])


def _directions(ds: Dataset, primary: TreeEnsemble, fallback: LinearModel) -> dict[str, np.ndarray]:
    """Unit-free directions over the request features that raise the class-1 logit (callers negate per label)."""
    req_cols = ds.columns(ds.request_features)
    Xtr = ds.X[ds.train_idx]
    surrogate_target = (primary.predict_proba(Xtr)[:, 1] >= 0.5).astype(np.int64)
    _, _, w, _ = fit_surrogate(Xtr, surrogate_target)
    w_req = w[req_cols]
    # fallback weights are per standardised feature: sign is what moves its logit up
    dirs = {
        "fallback-sign": np.sign(fallback.coef),
        "surrogate-sign": np.sign(w_req),
        "surrogate-l2": w_req / max(float(np.linalg.norm(w_req)), 1e-12) * np.sqrt(len(w_req)),
    }
    return {k: v for k, v in dirs.items() if np.any(v != 0)}


def evasion_rows(ds: Dataset, art: Artifact, rows: np.ndarray | None = None,
                 target_confidence: float = TARGET_CONFIDENCE) -> EvasionResult:
    """The evasion perturbation of every row in ``rows`` (default: the held-out rows)."""
    rows = np.asarray(ds.test_idx if rows is None else rows, dtype=np.int64)
    if list(art.request_features) != list(ds.request_features) or list(art.feature_names) != list(ds.feature_names):
        raise ValueError("the artifact was trained on other features than this dataset's")
    req_cols = np.asarray(ds.columns(ds.request_features))
    Xtr = ds.X[ds.train_idx]
    std = Xtr[:, req_cols].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    lo, hi = Xtr[:, req_cols].min(axis=0), Xtr[:, req_cols].max(axis=0)
    X = ds.X[rows]
    y = ds.y[rows].astype(np.int64)
    n = len(rows)
    away = np.where(y == 1, -1.0, 1.0)  # push the class-1 logit down for label 1, up for label 0
    dirs = _directions(ds, art.primary, art.fallback)
    names = list(dirs)

    def perturb(idx: np.ndarray, d: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Full feature rows ``X[idx]`` moved by ``eps`` (per row) along ``d``, clipped to the training range."""
        out = X[idx].copy()
        delta = (away[idx, None] * d[None, :]) * std[None, :] * eps[:, None]
        out[:, req_cols] = np.clip(out[:, req_cols] + delta, lo, hi)
        return out

    def p_wrong_primary(Xc: np.ndarray, labels: np.ndarray) -> np.ndarray:
        p = art.primary.predict_proba(Xc)[:, 1]
        return np.where(labels == 1, 1.0 - p, p)

    def p_wrong_fallback(Xc: np.ndarray, labels: np.ndarray) -> np.ndarray:
        p = art.fallback.predict_proba(Xc[:, req_cols])[:, 1]
        return np.where(labels == 1, 1.0 - p, p)

    clean_correct = p_wrong_primary(X, y) < 0.5
    # (model, minimum wrong-class probability) goals in the attacker's order of preference
    goals = [
        (p_wrong_primary, max(target_confidence, 0.5)),
        (p_wrong_primary, 0.5),
        (p_wrong_fallback, max(target_confidence, 0.5)),
        (p_wrong_fallback, 0.5),
    ]
    step = np.zeros(n)
    chosen = np.full(n, -1)
    todo = np.flatnonzero(clean_correct)
    grid = np.asarray(STEP_GRID)
    for model, need in goals:
        if not len(todo):
            break
        best = np.full(len(todo), np.inf)
        best_dir = np.full(len(todo), -1)
        for di, name in enumerate(names):
            d = dirs[name]
            # every grid step at once, step-major: (len(grid) * len(todo)) candidate rows
            idx_all = np.tile(todo, len(grid))
            eps_all = np.repeat(grid, len(todo))
            pw = model(perturb(idx_all, d, eps_all), y[idx_all]).reshape(len(grid), len(todo))
            hit = (pw > 0.5) & (pw >= need)
            has = hit.any(axis=0)
            first = np.argmax(hit, axis=0)
            sub = np.flatnonzero(has)
            a = np.where(first[sub] > 0, grid[np.maximum(first[sub] - 1, 0)], 0.0)
            b = grid[first[sub]]
            for _ in range(BISECTION_ROUNDS):  # between the last grid step that missed and the first that hit
                mid = (a + b) / 2
                pm = model(perturb(todo[sub], d, mid), y[todo[sub]])
                ok = (pm > 0.5) & (pm >= need)
                b = np.where(ok, mid, b)
                a = np.where(ok, a, mid)
            found = np.full(len(todo), np.inf)
            found[sub] = b
            take = found < best
            best[take], best_dir[take] = found[take], di
        got = np.isfinite(best)
        step[todo[got]], chosen[todo[got]] = best[got], best_dir[got]
        todo = todo[~got]
    x_req = X[:, req_cols].copy()
    for di, name in enumerate(names):
        m = np.flatnonzero(chosen == di)
        if len(m):
            x_req[m] = perturb(m, dirs[name], step[m])[:, req_cols]
    Xf = X.copy()
    Xf[:, req_cols] = x_req
    pw_final = p_wrong_primary(Xf, y)
    return EvasionResult(
        rows=rows,
        x_request=x_req,
        step=step,
        direction=tuple(names[c] if c >= 0 else "none" for c in chosen),
        clean_correct=clean_correct,
        flipped=pw_final > 0.5,
        confidence=np.maximum(pw_final, 1.0 - pw_final),
    )


_CACHE: dict[tuple[str, int, str], EvasionResult] = {}


def evasion_for(ds: Dataset, artifact_dir: Path | None = None) -> EvasionResult:
    """:func:`evasion_rows` for the held-out rows against the artifact the stack serves (memoised)."""
    from chaosml.stack.models import ensure_artifact, load_artifact

    path = Path(artifact_dir) if artifact_dir is not None else ensure_artifact(None, ds.name, ds.seed)
    key = (ds.name, ds.seed, str(path))
    if key not in _CACHE:
        _CACHE[key] = evasion_rows(ds, load_artifact(path))
    return _CACHE[key]
