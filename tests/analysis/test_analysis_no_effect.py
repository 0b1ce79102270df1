"""A fault that took no effect (its apply event's ``no_effect``) makes every verdict scoped to it inconclusive, and the run cannot pass."""

from __future__ import annotations

from analysis_synth import experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.faults.podkill import PodKillParams
from chaosml.model.experiment import FaultSpec, Hypothesis, Repeat, Slo

WHY = "killed nothing: there are no replicas of service 'modle'"
KILL = FaultSpec("kill", "pod-kill", 10.0, 5.0, PodKillParams(service="modle"), Repeat())
HYPS = (
    Hypothesis("available-during-kill", "success_ratio", ">=", 0.99, during="kill"),
    Hypothesis("available-during-faults", "success_ratio", ">=", 0.99, during="fault"),
    Hypothesis("recovers-fast", "mttr_s", "<=", 10, fault="kill"),
)


def _journal(no_effect: str | None) -> dict:
    j = journal(duration=60, injections=[{"fault": "kill", "apply": 10.0, "recover": 15.0}])
    if no_effect is not None:
        j["fault_events"][0]["no_effect"] = no_effect
    return j


def test_a_fault_that_did_nothing_is_inconclusive_never_a_pass() -> None:
    exp = experiment(hypotheses=HYPS, faults=(KILL,),
                     slos=(Slo("availability", "success_ratio", ">=", 0.99, ("baseline", "after")),))
    held = analyze(exp, _journal(None), samples(60, 50))
    assert held.passed and {v.verdict for v in held.verdicts} == {"pass"}  # the same run with an effect passes

    an = analyze(exp, _journal(WHY), samples(60, 50))
    by_name = {v.name: v for v in an.verdicts}
    for name in ("available-during-kill", "available-during-faults", "recovers-fast"):
        assert by_name[name].verdict == "inconclusive"
        assert by_name[name].detail.startswith(f"fault kill had no effect: injection #1 {WHY}; measured: ")
    assert by_name["availability"].verdict == "pass"  # baseline/after are not scoped to the fault
    assert an.passed is False
    d = an.to_dict()
    assert d["no_effect"] == {"kill": f"injection #1 {WHY}"} and d["summary"]["no_effect"] == d["no_effect"]
    assert f"NO EFFECT: fault kill: injection #1 {WHY}; every verdict scoped to it is inconclusive and the run cannot pass" in d["notes"]


def test_only_the_injections_without_effect_are_named() -> None:
    kill3 = FaultSpec("kill", "pod-kill", 10.0, 5.0, PodKillParams(), Repeat(count=3, every=15.0))
    j = journal(duration=60, injections=[{"fault": "kill", "injection": i, "apply": 10.0 + 15 * i, "recover": 15.0 + 15 * i}
                                         for i in range(3)])
    for e in j["fault_events"]:
        if e["action"] == "apply" and e["injection"] in (0, 2):
            e["no_effect"] = "killed nothing: 0 of 3 replicas of service 'model' running"
    an = analyze(experiment(hypotheses=HYPS, faults=(kill3,)), j, samples(60, 50))
    assert an.no_effect == {"kill": "injections #1, #3 killed nothing: 0 of 3 replicas of service 'model' running"}
    assert not an.passed
