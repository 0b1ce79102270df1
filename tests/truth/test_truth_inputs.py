"""Ground truth for SLIs without their inputs (INCONCLUSIVE, never 0% / PASS) and the probe's probability sanity check."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from analysis_synth import experiment, journal, samples, set_outcome
from testutil import json_server

from chaosml.analysis import analyze
from chaosml.errors import EXIT_INVALID
from chaosml.model.experiment import Hypothesis, ResponseSpec
from chaosml.workload.answers import ProbeAnswerError, check_answer
from chaosml.workload.mapping import RequestMapping, ResponseMapping, probe

HYPS = (
    Hypothesis("few confident mistakes", "confident_wrong_ratio", "<=", 0.05, fault="kill"),
    Hypothesis("still right", "accuracy", ">=", 0.9, fault="kill"),
)


def _run(response: ResponseSpec, drop: tuple[str, ...] = ()):
    df = samples(30.0, 20.0)
    set_outcome(df, 10.0, 11.0)
    for col in drop:
        df[col] = np.nan
    exp = dataclasses.replace(experiment(hypotheses=HYPS, rate=20.0), response=response)
    j = journal(duration=30.0, injections=[{"fault": "kill", "apply": 10.0, "recover": 15.0}])
    return analyze(exp, j, df)


def _verdict(an, sli):
    return next(v for v in an.verdicts if v.sli == sli)


def test_confident_wrong_is_inconclusive_when_confidence_is_not_exposed() -> None:
    an = _run(ResponseSpec(confidence="not-exposed"), drop=("confidence",))
    v = _verdict(an, "confident_wrong_ratio")
    assert v.verdict == "inconclusive" and v.measured is None
    assert "response.confidence: not-exposed" in v.detail
    assert all(p.slis["confident_wrong_ratio"] is None for p in an.phases)
    assert _verdict(an, "accuracy").verdict == "pass"  # accuracy has its inputs
    d = an.to_dict()
    assert "confident_wrong_ratio" in d["unmeasured"]
    assert all(x is None for x in d["timeseries"]["confident_wrong_ratio"])
    assert d["degradation"]["faults"][0]["cohorts"]["all"]["confident_wrong_ratio"]["fault"] is None


def test_a_mapped_confidence_no_answer_carried_is_not_measured_either() -> None:
    an = _run(ResponseSpec(), drop=("confidence",))
    v = _verdict(an, "confident_wrong_ratio")
    assert v.verdict == "inconclusive" and "no answer carried a confidence" in v.detail


def test_quality_slis_are_inconclusive_without_labels() -> None:
    an = _run(ResponseSpec(), drop=("label",))
    for sli in ("accuracy", "confident_wrong_ratio"):
        v = _verdict(an, sli)
        assert v.verdict == "inconclusive" and "no labels" in v.detail, v


def test_quality_slis_are_measured_with_all_inputs() -> None:
    an = _run(ResponseSpec())
    assert _verdict(an, "confident_wrong_ratio").verdict == "pass"
    assert an.to_dict()["unmeasured"] == {}


PLAN = {"prediction": ("json", ("prediction",)), "confidence": ("json", ("confidence",)), "served_by": ("none", None)}


@pytest.mark.parametrize(
    ("body", "labels", "message"),
    [
        (b'{"prediction": 1, "confidence": [1, 2]}', (), "outside [0, 1]"),
        (b'{"prediction": 1, "confidence": 2.0}', (), "outside [0, 1]"),
        (b'{"prediction": 1, "confidence": [0.9, 0.9]}', (), "sums to 1.8"),
        (b'{"prediction": [0.5, 0.7], "confidence": 0.7}', (), "sums to 1.2"),
        (b'{"prediction": "cat", "confidence": 0.9}', (0, 1), "not a class"),
        (b'{"prediction": 0.37, "confidence": 0.9}', (0, 1), "not a class"),
    ],
)
def test_probe_stops_on_insane_probabilities(body: bytes, labels: tuple[int, ...], message: str) -> None:
    with pytest.raises(ProbeAnswerError) as exc:
        check_answer(body, PLAN, body.decode(), labels)
    assert message in str(exc.value) and body.decode() in str(exc.value)
    assert exc.value.exit_code == EXIT_INVALID


@pytest.mark.parametrize(
    "body",
    [
        b'{"prediction": 1, "confidence": 0.9}',
        b'{"prediction": 1, "confidence": [0.1, 0.9]}',
        b'{"prediction": [0.25, 0.75]}',
        b'{"prediction": "1", "confidence": "0.9"}',
        b"not json",
    ],
)
def test_probe_accepts_sane_answers(body: bytes) -> None:
    check_answer(body, PLAN, body.decode(), (0, 1))


def test_the_mapping_probe_stops_on_a_shape_array_mapped_as_confidence() -> None:
    """The issue's run: ``confidence`` mapped to the output's shape ``[1, 2]`` read as "confidence 2.0"."""
    answer = {"outputs": [{"name": "probs", "shape": [1, 2], "data": [0.2, 0.8]}]}
    with json_server(json.dumps(answer).encode()) as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        good = ResponseMapping({"prediction": "outputs[0].data", "confidence": "outputs[0].data", "served_by": "not-exposed"})
        assert probe(url, RequestMapping(), good, [{"entity_id": 1, "features": {}}])[0]["confidence"] == 0.8
        bad = ResponseMapping({"prediction": "outputs[0].data", "confidence": "outputs[0].shape", "served_by": "not-exposed"})
        with pytest.raises(ProbeAnswerError) as exc:
            probe(url, RequestMapping(), bad, [{"entity_id": 1, "features": {}}])
    assert "outside [0, 1]" in str(exc.value) and '"shape": [1, 2]' in str(exc.value)
    assert exc.value.exit_code == EXIT_INVALID
