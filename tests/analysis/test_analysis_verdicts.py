"""SLO and hypothesis verdicts: pass, fail, inconclusive, cohort filter, injection SLIs, aggregates."""

from __future__ import annotations

import pytest
from analysis_synth import T0, experiment, journal, samples, set_outcome

from chaosml.analysis import analyze
from chaosml.faults.podkill import PodKillParams
from chaosml.model.experiment import FaultSpec, Hypothesis, Repeat, Slo

KILL = {"fault": "kill", "apply": 10.0, "recover": 15.0, "targets": ["model-1"]}


def by_name(an):
    return {(v.name, v.phase or v.fault): v for v in an.verdicts}


def test_slo_verdict_per_phase_pass_and_fail():
    df = samples(60, 50)
    set_outcome(df, 10, 15)
    slos = (Slo("availability", "success_ratio", ">=", 0.99, ("baseline", "fault", "after", "all")),)
    an = analyze(experiment(slos=slos), journal(duration=60, injections=[KILL]), df)
    v = by_name(an)
    assert v[("availability", "baseline")].verdict == "pass"
    assert v[("availability", "baseline")].samples == 500
    assert v[("availability", "fault")].verdict == "fail"
    assert v[("availability", "fault")].measured == pytest.approx(0.0)
    assert v[("availability", "after")].verdict == "pass"
    assert v[("availability", "all")].measured == pytest.approx(1 - 250 / 3000)
    assert not an.passed
    assert an.to_dict()["counts"] == {"pass": 2, "fail": 2, "inconclusive": 0}


def test_too_few_samples_is_inconclusive_not_pass():
    df = samples(60, 1)  # 1 request/s: 10 in baseline
    an = analyze(experiment(min_samples=20), journal(duration=60, injections=[KILL]), df)
    v = by_name(an)[("availability", "baseline")]
    assert v.verdict == "inconclusive" and v.measured == 1.0 and v.samples == 10
    assert "min_samples 20" in v.detail
    assert not an.passed


def test_empty_phase_is_inconclusive():
    slos = (Slo("recovering", "success_ratio", ">=", 0.9, ("recovery",)),)
    an = analyze(experiment(slos=slos), journal(duration=60, injections=[KILL]), samples(60, 50))
    v = by_name(an)[("recovering", "recovery")]
    assert v.verdict == "inconclusive" and v.samples == 0 and v.measured is None


def test_hypothesis_during_fault_with_cohort_and_confident_wrong():
    df = samples(60, 50, cohorts=("clean", "adversarial"))
    m = (df["t"] >= T0 + 10) & (df["t"] < T0 + 15) & (df["cohort"] == "adversarial")
    df.loc[m, "prediction"] = 1 - df.loc[m, "label"]  # wrong, with confidence 0.9 >= 0.8
    hyps = (
        Hypothesis("cw-adv", "confident_wrong_ratio", "<=", 0.01, during="kill", cohort="adversarial"),
        Hypothesis("cw-clean", "confident_wrong_ratio", "<=", 0.01, during="kill", cohort="clean"),
        Hypothesis("cw-all", "confident_wrong_ratio", "<=", 0.01, during="kill"),
        Hypothesis("acc-adv-baseline", "accuracy", ">=", 0.99, during="baseline", cohort="adversarial"),
    )
    an = analyze(experiment(hypotheses=hyps), journal(duration=60, injections=[KILL]), df)
    v = by_name(an)
    adv = v[("cw-adv", "kill")]
    assert adv.verdict == "fail" and adv.measured == 1.0 and adv.samples == 125 and adv.cohort == "adversarial"
    assert adv.scope == "fault kill, cohort adversarial"
    assert v[("cw-clean", "kill")].verdict == "pass" and v[("cw-clean", "kill")].measured == 0.0
    assert v[("cw-all", "kill")].measured == pytest.approx(0.5)
    assert v[("acc-adv-baseline", "baseline")].verdict == "pass"


def test_fallback_ratio_counts_answers_and_undefined_is_inconclusive():
    df = samples(60, 50)
    set_outcome(df, 10, 15, outcome="ok", served_by="fallback")
    hyps = (Hypothesis("fallback", "fallback_ratio", ">=", 0.95, during="kill"),)
    an = analyze(experiment(hypotheses=hyps), journal(duration=60, injections=[KILL]), df)
    v = by_name(an)[("fallback", "kill")]
    assert v.verdict == "pass" and v.measured == 1.0 and v.samples == 250
    set_outcome(df, 10, 15)  # every request fails: no 2xx answers to take a ratio of
    an = analyze(experiment(hypotheses=hyps), journal(duration=60, injections=[KILL]), df)
    v = by_name(an)[("fallback", "kill")]
    assert v.verdict == "inconclusive" and v.measured is None
    assert "0 2xx answers of 250 requests" in v.detail


def _repeated(outages, recover_all=True):
    df = samples(100, 20)
    injections = []
    for k, outage in enumerate(outages):
        apply = 10.0 + 30 * k
        set_outcome(df, apply, apply + (outage if outage is not None else 1000))
        injections.append({"fault": "kill", "injection": k, "apply": apply, "recover": apply + 1, "targets": ["model-1"]})
    fault = FaultSpec("kill", "pod-kill", 10.0, 1.0, PodKillParams(), Repeat(len(outages), 30.0))
    return df, injections, fault


@pytest.mark.parametrize(("agg", "expected", "verdict"), [("max", 6.0, "fail"), ("mean", 4.0, "pass"), ("median", 4.0, "pass"), ("min", 2.0, "pass")])
def test_injection_sli_aggregates(agg, expected, verdict):
    df, injections, fault = _repeated([2, 4, 6])
    hyps = (Hypothesis("mttr", "mttr_s", "<=", 5.0, fault="kill", agg=agg),)
    an = analyze(experiment(hypotheses=hyps, faults=(fault,)), journal(duration=100, injections=injections), df)
    v = by_name(an)[("mttr", "kill")]
    assert (v.measured, v.verdict, v.samples) == (expected, verdict, 3)


def test_injection_not_recovered_fails_with_measured_none_when_its_least_value_already_fails():
    """The second kill (40 s) never recovers in the 60 s left: MTTR >= 57 s, mean >= (2 + 57) / 2 = 29.5 s."""
    df, injections, fault = _repeated([2, None])
    hyps = (Hypothesis("mttr", "mttr_s", "<=", 20.0, fault="kill", agg="mean"),
            Hypothesis("mttr-100", "mttr_s", "<=", 100.0, fault="kill", agg="mean"))
    an = analyze(experiment(hypotheses=hyps, faults=(fault,)), journal(duration=100, injections=injections), df)
    v = by_name(an)[("mttr", "kill")]
    assert v.verdict == "fail" and v.measured is None
    assert v.detail == "not recovered in 1 of 2 injections (mean at least 29.5 s: kill#1 searched 60 windows)"
    v = by_name(an)[("mttr-100", "kill")]
    assert v.verdict == "inconclusive" and v.measured is None
    assert v.detail.endswith("; too short a search to judge mttr_s <= 100"), v.detail


def test_injection_sli_min_samples_and_never_applied():
    df, injections, fault = _repeated([2])
    never = FaultSpec("never", "pod-kill", 90.0, 1.0, PodKillParams())
    hyps = (
        Hypothesis("mttr", "mttr_s", "<=", 10.0, fault="kill", min_samples=3),
        Hypothesis("never-mttr", "mttr_s", "<=", 10.0, fault="never"),
        Hypothesis("never-ok", "success_ratio", ">=", 0.9, during="never"),
        Hypothesis("ready", "ready_s", "<=", 10.0, fault="kill"),
    )
    an = analyze(experiment(hypotheses=hyps, faults=(fault, never)), journal(duration=100, injections=injections), df)
    v = by_name(an)
    assert v[("mttr", "kill")].verdict == "inconclusive" and v[("mttr", "kill")].measured == 2.0
    assert v[("never-mttr", "never")].verdict == "inconclusive"
    assert v[("never-ok", "never")].verdict == "inconclusive"
    assert v[("never-ok", "never")].detail == "fault never was never applied"
    assert v[("ready", "kill")].verdict == "fail"  # model-1 never reported ready
    assert "never applied: never" in an.notes
