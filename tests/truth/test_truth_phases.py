"""Ground truth for the phase rule: a request cut by a fault belongs to the fault window, not the phase it was sent in."""

from __future__ import annotations

import numpy as np
import pandas as pd
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.analysis.phases import in_flight


def _kill_run(offset: float, latency_ms: float) -> tuple[pd.DataFrame, dict]:
    """20 req/s for 30 s; a kill at +10.0 s recovered at +15 s; 10 requests sent ``offset`` s before
    the kill fail after ``latency_ms`` (connection reset by the kill); every other request is healthy."""
    df = samples(30.0, 20.0)
    cut = pd.DataFrame(
        {
            "t": [T0 + 10.0 - offset + k * 1e-4 for k in range(10)],
            "latency_ms": [latency_ms] * 10,
            "status": [0] * 10,
            "outcome": ["error"] * 10,
            "served_by": [""] * 10,
            "prediction": [np.nan] * 10,
            "confidence": [np.nan] * 10,
            "label": [1] * 10,
            "cohort": ["clean"] * 10,
            "entity_id": list(range(10)),
            "replica": [""] * 10,
            "model_version": [""] * 10,
        }
    )
    j = journal(duration=30.0, injections=[{"fault": "kill", "apply": 10.0, "recover": 15.0}])
    return pd.concat([df, cut], ignore_index=True), j


def _phase(an, name):
    return next(p for p in an.phases if p.phase.name == name)


def test_requests_sent_5ms_before_a_kill_that_fail_count_in_the_fault_window() -> None:
    df, j = _kill_run(offset=0.005, latency_ms=20.0)
    an = analyze(experiment(rate=20.0), j, df)
    base, fault = _phase(an, "baseline"), _phase(an, "fault")
    assert base.slis["success_ratio"] == 1.0
    assert base.mix["error"] == 0
    assert fault.mix["error"] == 10
    assert _phase(an, "kill").mix["error"] == 10
    assert all(v.verdict == "pass" for v in an.verdicts if v.phase == "baseline")
    # the fault's degradation table agrees with the phase table
    block = an.degradation["faults"][0]["cohorts"]["all"]
    assert block["served_by_counts"]["fault"]["error"] == 10
    assert block["served_by_counts"]["baseline"]["error"] == 0
    # the phases still partition the run: every request counted exactly once
    parts = sum(_phase(an, p).slis["requests"] for p in ("baseline", "fault", "recovery", "between", "after"))
    assert parts == _phase(an, "all").slis["requests"] == len(df)


def test_a_request_answered_before_the_fault_stays_in_the_baseline() -> None:
    df, j = _kill_run(offset=0.050, latency_ms=20.0)  # answered 30 ms before the kill: not cut by it
    an = analyze(experiment(rate=20.0), j, df)
    assert _phase(an, "baseline").mix["error"] == 10
    assert _phase(an, "fault").mix["error"] == 0


def test_the_rule_at_the_edges() -> None:
    t = np.array([0.0, 0.99, 0.99, 1.0, 1.5, 2.0, 2.0])
    end = np.array([0.5, 1.0, 1.01, 1.0, 1.6, 2.0, 2.5])
    # [1, 2): answered exactly at the start is not in flight; sent at the end is not inside
    assert list(in_flight(t, end, [(1.0, 2.0)])) == [False, False, True, True, True, False, False]
    assert list(in_flight(t, t, [(1.0, 2.0)])) == [False, False, False, True, True, False, False]
