"""TTD, MTTR and ready time on constructed timelines, plus a property test of MTTR over generated outages."""

from __future__ import annotations

import numpy as np
import pandas as pd
from analysis_synth import T0, experiment, journal, samples, set_outcome
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chaosml.analysis import analyze
from chaosml.analysis.mttr import first_run
from chaosml.model.experiment import Slo

KILL = {"fault": "kill", "apply": 10.0, "recover": 12.0, "targets": ["model-1"]}


def test_mttr_exact_on_a_constructed_outage():
    df = samples(60, 50)
    set_outcome(df, 10, 15)  # errors for 5 s after apply
    an = analyze(experiment(window=1.0, hold=3), journal(duration=60, injections=[KILL]), df)
    (inj,) = an.injections
    assert inj.recovered and inj.mttr_s == 5.0
    assert inj.recovered_at == T0 + 15.0
    assert an.faults[0]["mttr_s"]["mean"] == 5.0 and an.faults[0]["recovered"] == 1


def test_healthy_throughout_means_mttr_zero():
    df = samples(60, 50)
    set_outcome(df, 10, 15, outcome="ok", served_by="fallback")  # the fallback keeps the SLO
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), df)
    assert an.injections[0].mttr_s == 0.0
    assert an.injections[0].ttd_s is not None and an.injections[0].ttd_s < 0.05  # fallback shows detection


def test_never_recovered_is_not_a_number():
    df = samples(60, 50)
    set_outcome(df, 10, 60)
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), df)
    (inj,) = an.injections
    assert not inj.recovered and inj.mttr_s is None
    agg = an.faults[0]
    assert agg["not_recovered"] == 1 and agg["mttr_s"]["count"] == 0 and agg["mttr_s"]["mean"] is None


def test_search_stops_at_the_next_apply_of_any_fault():
    df = samples(60, 50)
    set_outcome(df, 10, 20)
    injections = [KILL, {"fault": "other", "apply": 22.0, "recover": 23.0}]
    an = analyze(experiment(hold=3), journal(duration=60, injections=injections), df)
    first, second = an.injections
    assert first.windows_searched == 12
    assert not first.recovered  # only 2 healthy windows (20-22) before the next apply
    assert second.recovered and second.mttr_s == 0.0


def test_empty_windows_are_not_healthy():
    df = samples(60, 50)
    df = df[~((df["t"] >= T0 + 10) & (df["t"] < T0 + 14))]  # no traffic at all for 4 s
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), df)
    assert an.injections[0].mttr_s == 4.0


def test_cohort_slo_filters_recovery():
    df = samples(60, 50, cohorts=("clean", "rare"))
    m = (df["t"] >= T0 + 10) & (df["t"] < T0 + 18) & (df["cohort"] == "rare")
    df.loc[m, ["outcome", "served_by", "status"]] = ["error", "", 503]
    slo_rare = (Slo("rare-ok", "success_ratio", ">=", 0.99, ("after",), cohort="rare"),)
    slo_clean = (Slo("clean-ok", "success_ratio", ">=", 0.99, ("after",), cohort="clean"),)
    j = journal(duration=60, injections=[KILL])
    assert analyze(experiment(slos=slo_rare), j, df).injections[0].mttr_s == 8.0
    assert analyze(experiment(slos=slo_clean), j, df).injections[0].mttr_s == 0.0


def test_ttd_from_samples_or_target_events_whichever_first():
    df = samples(60, 50)
    set_outcome(df, 10.5, 13)  # first failing request sent at 10.51
    first = df[df["t"] >= T0 + 10.5].iloc[0]
    events = [{"t": 10.2, "kind": "replica_unready", "subject": "gateway", "detail": {"reason": "probe failed"}}]
    an = analyze(experiment(), journal(duration=60, injections=[KILL], target_events=events), df)
    assert an.injections[0].ttd_s == 0.2
    assert "gateway readiness check failed" in an.injections[0].detected_by
    assert an.injections[0].detected_source == "stack"
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), df)
    # users see the error when it arrives: send time + latency
    assert an.injections[0].ttd_s == round(first["t"] + first["latency_ms"] / 1000 - (T0 + 10.0), 6)
    assert "error" in an.injections[0].detected_by and an.injections[0].detected_source == "users"


def test_ttd_none_when_nothing_noticed():
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), samples(60, 50))
    assert an.injections[0].ttd_s is None and an.injections[0].detected_by is None
    assert an.faults[0]["detected"] == 0


def test_ready_time_is_the_last_targeted_replica_back():
    kill2 = dict(KILL, targets=["model-1", "model-2"])
    events = [
        {"t": 9.0, "kind": "replica_ready", "subject": "model-1"},  # before apply: not counted
        {"t": 12.5, "kind": "replica_ready", "subject": "model-2"},
        {"t": 13.1, "kind": "replica_ready", "subject": "model-1"},
        {"t": 14.0, "kind": "replica_ready", "subject": "model-3"},  # not targeted
    ]
    an = analyze(experiment(restart_delay=2.0), journal(duration=60, injections=[kill2], target_events=events), samples(60, 50))
    inj = an.injections[0]
    assert inj.ready_s == 3.1 and inj.restart_delay_s == 2.0
    events = events[:2]  # model-1 never came back
    an = analyze(experiment(), journal(duration=60, injections=[kill2], target_events=events), samples(60, 50))
    assert an.injections[0].ready_s is None
    assert "1 of 2 replicas not ready again: model-1" == an.injections[0].ready_detail


def test_ready_search_stops_when_the_replica_is_targeted_again():
    injections = [
        {"fault": "kill", "injection": 0, "apply": 10.0, "recover": 11.0, "targets": ["model-1"]},
        {"fault": "kill", "injection": 1, "apply": 20.0, "recover": 21.0, "targets": ["model-1"]},
    ]
    events = [{"t": 23.0, "kind": "replica_ready", "subject": "model-1"}]
    an = analyze(experiment(), journal(duration=60, injections=injections, target_events=events), samples(60, 50))
    assert [i.ready_s for i in an.injections] == [None, 3.0]
    assert an.faults[0]["ready_s"]["count"] == 1


def test_repeated_injections_aggregate():
    df = samples(90, 40)
    injections = []
    for k, outage in enumerate((2, 4, 6)):
        apply = 10.0 + 25 * k
        set_outcome(df, apply, apply + outage)
        injections.append({"fault": "kill", "injection": k, "apply": apply, "recover": apply + 1})
    an = analyze(experiment(), journal(duration=90, injections=injections), df)
    assert [i.mttr_s for i in an.injections] == [2.0, 4.0, 6.0]
    agg = an.faults[0]["mttr_s"]
    assert (agg["count"], agg["mean"], agg["median"], agg["max"]) == (3, 4.0, 4.0, 6.0)


def test_first_run():
    h = np.array([1, 0, 1, 1, 0, 1, 1, 1], dtype=bool)
    assert first_run(h, 2) == 2
    assert first_run(h, 3) == 5
    assert first_run(h, 4) is None
    assert first_run(h[:1], 3) is None


@settings(max_examples=60, deadline=None)
@given(
    outage=st.integers(min_value=0, max_value=8),
    hold=st.integers(min_value=1, max_value=6),
    tail=st.integers(min_value=0, max_value=10),
    window=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
    bounded_by_next_apply=st.booleans(),
)
def test_mttr_property(outage, hold, tail, window, bounded_by_next_apply):
    """Outage of L whole windows, healthy after: MTTR == L*w iff h healthy windows fit before the search ends."""
    assume(not bounded_by_next_apply or outage + tail > 0)  # a simultaneous apply shares the windows
    apply = 4.0 * window
    end = apply + (outage + tail) * window  # search end: load end, or the next injection's apply
    duration = end + (5 * window if bounded_by_next_apply else 0.0)
    rate = 8 / window  # 8 requests per window, off the window boundaries
    n = round(duration * rate)
    t = T0 + (np.arange(n) + 0.5) / rate
    df = pd.DataFrame({"t": t, "latency_ms": 10.0, "status": 200, "outcome": "ok", "served_by": "primary",
                       "prediction": 1.0, "confidence": 0.9, "label": 1, "cohort": "clean"})
    set_outcome(df, apply, apply + outage * window)
    injections = [{"fault": "kill", "apply": apply, "recover": apply + window / 2}]
    if bounded_by_next_apply:
        injections.append({"fault": "other", "injection": 0, "apply": end, "recover": end + window})
    an = analyze(experiment(window=window, hold=hold), journal(duration=duration, injections=injections), df)
    first = an.injections[0]
    assert first.windows_searched == outage + tail
    if tail >= hold:
        assert first.recovered and first.mttr_s == outage * window
    else:
        assert not first.recovered and first.mttr_s is None


def test_ttd_ignores_answers_the_cohort_already_got_in_the_baseline():
    """A stack that serves some fallback answers all the time has not 'detected' a fault by doing so."""
    df = samples(60, 50)
    usual = np.arange(len(df)) % 20 == 0  # 5% fallback answers throughout, baseline included
    df.loc[usual, "served_by"] = "fallback"
    set_outcome(df, 12, 12.5)  # the fault shows as errors 2 s after apply at 10 s
    an = analyze(experiment(), journal(duration=60, injections=[{**KILL, "targets": []}]), df)
    (inj,) = an.injections
    assert inj.ttd_s is not None and abs(inj.ttd_s - 2.0) < 0.05, (inj.ttd_s, inj.detected_by)
    assert "error" in inj.detected_by
