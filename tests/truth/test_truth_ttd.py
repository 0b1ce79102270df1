"""Ground truth for TTD: what users or the stack observe, labelled with its source; the harness's own kill events never count."""

from __future__ import annotations

import pytest
from analysis_synth import T0, experiment, journal, samples, set_outcome

from chaosml.analysis import analyze

KILL = {"fault": "kill", "apply": 10.0, "recover": 15.0, "targets": ["model-1"]}
HARNESS = [
    {"t": 10.0, "kind": "replica_killed", "subject": "model-1", "detail": {"signal": "SIGKILL"}},
    {"t": 10.02, "kind": "replica_exited", "subject": "model-1", "detail": {"returncode": -9}},
    {"t": 10.02, "kind": "replica_unready", "subject": "model-1", "detail": {"reason": "exited"}},
]


def _inj(df, events=()):
    (inj,) = analyze(experiment(), journal(duration=40.0, injections=[KILL], target_events=list(events)), df).injections
    return inj


def test_a_kill_nobody_could_observe_is_nothing_observable() -> None:
    inj = _inj(samples(40.0, 20.0), HARNESS)
    assert inj.ttd_s is None and inj.detected_by is None and inj.detected_source is None


def test_users_observe_the_first_failed_answer_when_it_arrives() -> None:
    df = samples(40.0, 20.0)
    set_outcome(df, 10.7, 11.5)
    first = df[df["t"] >= T0 + 10.7].iloc[0]
    inj = _inj(df, HARNESS)
    assert inj.detected_source == "users" and "error" in inj.detected_by
    assert inj.ttd_s == pytest.approx(first["t"] + first["latency_ms"] / 1000 - (T0 + 10.0), abs=1e-6)


def test_a_request_sent_just_before_the_kill_and_cut_by_it_is_observed_at_its_answer() -> None:
    df = samples(40.0, 20.0)
    cut = (df["t"] >= T0 + 9.97) & (df["t"] < T0 + 10.0)  # the request sent at +9.975 s
    assert cut.any()
    df.loc[cut, ["outcome", "served_by", "status", "latency_ms"]] = ["error", "", 0, 30.0]
    inj = _inj(df)
    t = float(df.loc[cut, "t"].iloc[0])
    assert inj.ttd_s == pytest.approx(t + 0.030 - (T0 + 10.0), abs=1e-6) and inj.detected_source == "users"


def test_slow_answers_are_observed() -> None:
    df = samples(40.0, 20.0)
    slow = (df["t"] >= T0 + 10.3) & (df["t"] < T0 + 14.0)
    df.loc[slow, "latency_ms"] = 400.0
    inj = _inj(df)
    assert inj.detected_source == "users" and "slow answer 400 ms" in inj.detected_by
    assert inj.ttd_s == pytest.approx(0.325 + 0.4, abs=1e-6)  # first slow request sent at 10.325, answered 400 ms later


def test_the_stacks_own_signal_counts_when_it_comes_first() -> None:
    df = samples(40.0, 20.0)
    set_outcome(df, 11.0, 12.0)
    events = [*HARNESS, {"t": 10.4, "kind": "replica_unready", "subject": "gateway", "detail": {"reason": "probe failed"}}]
    inj = _inj(df, events)
    assert inj.detected_source == "stack" and inj.ttd_s == pytest.approx(0.4)
    assert inj.detected_by == "gateway readiness check failed (probe failed)"
    inj = _inj(df, [*HARNESS, {"t": 10.2, "kind": "breaker_open", "subject": "model-1"}])
    assert inj.detected_source == "stack" and inj.detected_by == "breaker_open model-1"


def test_nothing_observable_in_a_short_search_cannot_fail_a_longer_target() -> None:
    """Searched for 30 s (apply at 10 s, load end at 40 s): TTD >= 30 s, so ``<= 10`` fails, ``<= 60`` is inconclusive."""
    from chaosml.model.experiment import Hypothesis

    hyps = (Hypothesis("within-10", "ttd_s", "<=", 10.0, fault="kill"), Hypothesis("within-60", "ttd_s", "<=", 60.0, fault="kill"))
    an = analyze(experiment(hypotheses=hyps), journal(duration=40.0, injections=[KILL], target_events=HARNESS), samples(40.0, 20.0))
    (inj,) = an.injections
    assert inj.ttd_s is None and inj.ttd_min_s == 30.0
    v = {x.name: x for x in an.verdicts}
    assert v["within-10"].verdict == "fail" and v["within-10"].measured is None, v["within-10"]
    assert v["within-60"].verdict == "inconclusive" and "at least 30 s" in v["within-60"].detail, v["within-60"]
