"""Quality vs drift magnitude: ground truth on hand-built samples (bins, counts, accuracy, confident-wrong, fallback)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis.analyze import analyze
from chaosml.analysis.drift import drift_quality, drift_switches
from chaosml.analysis.samples import normalize_samples
from chaosml.analysis.slis import SampleArrays
from chaosml.faults.drift import DriftParams
from chaosml.model.experiment import FaultSpec, Hypothesis, Repeat


def frame(rows: list[tuple[float | None, int, float, str]]) -> pd.DataFrame:
    """(drift, prediction, confidence, served_by) per request; every label is 1, every request a 200."""
    n = len(rows)
    return normalize_samples(pd.DataFrame({
        "t": np.arange(n, dtype=float), "latency_ms": 1.0, "status": 200, "outcome": "ok",
        "served_by": [r[3] for r in rows], "prediction": [r[1] for r in rows], "confidence": [r[2] for r in rows],
        "label": 1, "cohort": "clean", "drift": [np.nan if r[0] is None else r[0] for r in rows],
    }))


def test_bins_and_their_figures() -> None:
    df = frame([
        (None, 1, 0.9, "primary"), (None, 0, 0.6, "primary"),  # none: accuracy 1/2, no confident mistake
        (0.0, 1, 0.9, "primary"), (0.25, 0, 0.95, "primary"),  # 0-0.25 takes m == 0 and m == 0.25
        (0.5, 0, 0.85, "fallback"), (0.3, 1, 0.9, "fallback"),  # 0.25-0.5
        (1.0, 0, 0.99, "primary"), (0.8, 0, 0.5, "fallback"), (0.9, 1, 0.9, "primary"), (0.76, 0, 0.81, "primary"),
    ])
    rows = drift_quality(df, SampleArrays.from_frame(df, 0.8))
    assert [(r["bin"], r["requests"]) for r in rows] == [("none", 2), ("0-0.25", 2), ("0.25-0.5", 2), ("0.75-1", 4)]
    by = {r["bin"]: r for r in rows}
    assert (by["none"]["accuracy"], by["none"]["confident_wrong_ratio"]) == (0.5, 0.0)
    assert (by["0-0.25"]["accuracy"], by["0-0.25"]["confident_wrong_ratio"]) == (0.5, 0.5)
    assert (by["0.25-0.5"]["fallback_ratio"], by["0.25-0.5"]["confident_wrong_ratio"]) == (1.0, 0.5)
    assert (by["0.75-1"]["accuracy"], by["0.75-1"]["confident_wrong_ratio"], by["0.75-1"]["fallback_ratio"]) == (0.25, 0.5, 0.25)


def test_no_drifted_request_no_rows() -> None:
    df = frame([(None, 1, 0.9, "primary")])
    assert drift_quality(df, SampleArrays.from_frame(df, 0.8)) == []


def test_switch_delay_becomes_the_magnitude_by_the_faults_ramp() -> None:
    faults = [FaultSpec("lin", "drift", 5.0, 14.0, DriftParams(ood_share=0.1), Repeat()),
              FaultSpec("steps", "drift", 5.0, 8.0, DriftParams(ood_share=0.1, ramp="step", steps=4), Repeat()),
              FaultSpec("other", "pod-kill", 5.0, 8.0, None, Repeat())]
    deg = {"faults": [
        {"fault": "lin", "per_injection": [{"injection": 0, "switched": True, "fallback_delay_s": 7.0}]},
        {"fault": "steps", "per_injection": [{"injection": 0, "switched": True, "fallback_delay_s": 4.1},
                                             {"injection": 1, "switched": False, "fallback_delay_s": None}]},
        {"fault": "other", "per_injection": [{"injection": 0, "switched": True, "fallback_delay_s": 1.0}]},
    ]}
    assert drift_switches(faults, deg) == [
        {"fault": "lin", "injection": 0, "switch_s": 7.0, "magnitude": 0.5},
        {"fault": "steps", "injection": 0, "switch_s": 4.1, "magnitude": 0.75},  # third of 4 steps starts at 4 s
        {"fault": "steps", "injection": 1, "switch_s": None, "magnitude": None},
    ]


def test_a_drift_that_drifted_no_request_is_no_effect_and_cannot_pass() -> None:
    """Never a false pass: a drift window without one drifted request (no clean rows in the mix) is inconclusive."""
    fault = FaultSpec("shift", "drift", 10.0, 10.0, DriftParams(ood_share=0.5), Repeat())
    exp = experiment(faults=(fault,), hypotheses=(Hypothesis("ok", "confident_wrong_ratio", "<=", 0.05, during="shift"),))
    j = journal(duration=30.0, injections=[{"fault": "shift", "type": "drift", "apply": 10.0, "recover": 20.0}])
    df = samples(30.0, 50.0)
    result = analyze(exp, j, df)
    assert not result.passed and "shift" in result.no_effect
    assert result.no_effect["shift"] == "injection #1 drifted no request: the load sent no clean row during the window"
    assert [v.verdict for v in result.verdicts if v.name == "ok"] == ["inconclusive"]
    inside = (df["t"] >= T0 + 10.0) & (df["t"] <= T0 + 20.0)
    df["drift"] = np.where(inside, 0.5, np.nan)  # the same run with drifted requests: measured, and it holds
    result = analyze(exp, j, df)
    assert result.passed and result.no_effect == {} and [r["bin"] for r in result.drift] == ["none", "0.25-0.5"]
