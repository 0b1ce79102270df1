"""compute_slis: every catalog SLI, empty denominators, confident-wrong counting, grouped == per group."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chaosml.analysis.slis import SampleArrays, compute_slis, grouped_slis, row
from chaosml.model.catalog import SAMPLE_SLIS


def frame(rows):
    cols = ["t", "latency_ms", "status", "outcome", "served_by", "prediction", "confidence", "label", "cohort"]
    return pd.DataFrame(rows, columns=cols)


ROWS = [
    # t, latency, status, outcome, served_by, prediction, confidence, label, cohort
    (0.0, 10.0, 200, "ok", "primary", 1, 0.95, 1, "clean"),  # correct
    (0.5, 20.0, 200, "ok", "primary", 0, 0.95, 1, "clean"),  # confident wrong
    (1.0, 30.0, 200, "ok", "fallback", 0, 0.60, 1, "clean"),  # wrong, not confident
    (1.5, 40.0, 200, "ok", "default", None, None, 1, "clean"),  # no prediction
    (2.0, 50.0, 422, "rejected", "rejected", None, None, 0, "oor"),
    (2.5, 2000.0, 0, "timeout", "", None, None, 0, "oor"),
    (3.0, 5.0, 503, "error", "", None, None, 1, "oor"),
    (4.0, None, 0, "error", None, None, None, 1, "oor"),  # no latency recorded
]


def test_definitions():
    s = compute_slis(frame(ROWS), confidence_threshold=0.8)
    assert set(SAMPLE_SLIS) <= set(s)
    assert s["requests"] == 8
    assert s["success_ratio"] == 4 / 8
    assert s["error_ratio"] == 3 / 8  # error, timeout, error
    assert s["timeout_ratio"] == 1 / 8
    assert s["rejected_ratio"] == 1 / 8
    assert s["primary_ratio"] == 2 / 4
    assert s["fallback_ratio"] == 2 / 4  # fallback + default: anything but primary
    assert s["default_ratio"] == 1 / 4
    assert s["accuracy"] == 1 / 3  # three 2xx answers carry a prediction
    assert s["confident_wrong_ratio"] == 1 / 3  # confidence 0.6 is not confident
    lat = np.array([10, 20, 30, 40, 50, 2000, 5], dtype=float)
    assert s["latency_p50_ms"] == np.percentile(lat, 50)
    assert math.isclose(s["latency_p95_ms"], np.percentile(lat, 95))
    assert math.isclose(s["latency_p99_ms"], np.percentile(lat, 99))
    assert math.isclose(s["latency_mean_ms"], lat.mean())
    assert s["throughput_rps"] == 8 / 4.0  # span of send times
    assert compute_slis(frame(ROWS), 0.8, duration_s=16.0)["throughput_rps"] == 0.5


def test_confidence_threshold_is_inclusive():
    rows = [(0.0, 1.0, 200, "ok", "primary", 0, 0.8, 1, "clean")]
    assert compute_slis(frame(rows), 0.8)["confident_wrong_ratio"] == 1.0
    assert compute_slis(frame(rows), 0.81)["confident_wrong_ratio"] == 0.0


def test_empty_denominators_are_none_never_nan():
    only_errors = [(0.0, 5.0, 503, "error", "", None, None, 1, "clean")]
    s = compute_slis(frame(only_errors), 0.8)
    for name in ("primary_ratio", "fallback_ratio", "default_ratio", "accuracy", "confident_wrong_ratio"):
        assert s[name] is None, name
    assert s["success_ratio"] == 0.0
    assert s["throughput_rps"] is None  # one sample: no span
    empty = compute_slis(frame([]), 0.8)
    assert empty["requests"] == 0
    assert all(empty[name] is None for name in SAMPLE_SLIS)


def test_grouped_equals_each_group_alone():
    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame(
        {
            "t": np.sort(rng.uniform(0, 100, n)),
            "latency_ms": np.where(rng.random(n) < 0.05, np.nan, rng.exponential(30, n)),
            "outcome": rng.choice(["ok", "error", "timeout", "rejected"], n, p=[0.85, 0.05, 0.05, 0.05]),
            "served_by": rng.choice(["primary", "fallback", "default", ""], n),
            "prediction": rng.integers(0, 2, n).astype(float),
            "confidence": rng.random(n),
            "label": rng.integers(0, 2, n),
            "cohort": rng.choice(["a", "b", "c"], n),
        }
    )
    a = SampleArrays.from_frame(df, 0.7)
    gid = np.floor(a.t / 7).astype(np.int64)
    gid[::11] = -1
    ng = int(gid.max()) + 1
    g = grouped_slis(a, gid, ng, 7.0)
    for i in range(ng):
        alone = compute_slis(df[gid == i], 0.7, duration_s=7.0)
        got = row(g, i)
        for name, value in alone.items():
            if value is None:
                assert got[name] is None, (i, name)
            else:
                assert math.isclose(got[name], value, rel_tol=1e-9, abs_tol=1e-12), (i, name)
