"""The drift fault: located params errors, the schedule's maths, control-file entries beside adversarial-payload, offline undo,
and a real load process whose sent inputs move by exactly the declared amount at the magnitude each sample records."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from testutil import json_server, load_around_fault

from chaosml.errors import InvalidInputError
from chaosml.faults.adversarial import AdversarialPayloadParams
from chaosml.faults.base import FaultContext, make_injector, undoer_for
from chaosml.faults.drift import DriftParams
from chaosml.load.config import LoadConfig
from chaosml.load.drift import DriftSchedule, active_schedule, class_weights, drifted, feature_stats
from chaosml.loader import load_experiment_text
from chaosml.model.experiment import FaultSpec, Repeat

HEAD = """version: 1
title: t
load: {duration: 30s, dataset: breast_cancer}
faults:
"""


def errors_of(fault_yaml: str) -> list[str]:
    with pytest.raises(InvalidInputError) as e:
        load_experiment_text(HEAD + fault_yaml, "t.yaml")
    return [ln for ln in str(e.value).splitlines() if ln.startswith("t.yaml:")]


def test_unknown_feature_is_located_and_lists_the_request_features() -> None:
    lines = errors_of("  - {name: d, type: drift, at: 1s, duration: 5s, params: {features: [mean_radius, mean_radus, worst_area], shift_std: 2}}\n")
    assert len(lines) == 2, lines
    assert lines[0].startswith("t.yaml:5:") and "faults[0].params.features[1]: no feature 'mean_radus' in the requests of dataset breast_cancer" \
        " (did you mean 'mean_radius'?); features: mean_radius, mean_texture," in lines[0]
    assert "faults[0].params.features[2]: no feature 'worst_area'" in lines[1]


def test_params_errors_come_together() -> None:
    lines = errors_of("  - {name: d, type: drift, at: 1s, duration: 5s, params: {scale: 0, ood_share: 2, ramp: jump}}\n"
                      "  - {name: e, type: drift, at: 1s, duration: 5s, params: {class_mix: {'0': 1, '7': 1}}}\n")
    assert [ln.split(": ", 1)[1] for ln in lines] == [
        "faults[0].params.features: list the request features to shift or scale",
        "faults[0].params.scale: must be > 0, not 0.0",
        "faults[0].params.ood_share: must be in [0, 1], not 2.0",
        "faults[0].params.ramp: must be one of linear, step, sudden, not 'jump'",
        "faults[1].params.class_mix.7: no class '7' in dataset breast_cancer; classes: 0, 1",
    ], lines


def test_params_check() -> None:
    assert DriftParams(features=("a",), shift_std=1.0).check() == []
    assert DriftParams(ood_share=0.1).check() == []
    assert [f for f, _ in DriftParams().check()] == ["features"]  # nothing drifts
    assert [f for f, _ in DriftParams(features=("a",)).check()] == ["shift_std"]  # listed but not moved
    assert [f for f, _ in DriftParams(class_mix={"x": 1.0}).check()] == ["class_mix.x"]
    assert [f for f, _ in DriftParams(class_mix={"0": 0.0}).check()] == ["class_mix"]


def test_magnitude_per_ramp() -> None:
    linear = DriftSchedule("d", start_t=100.0, duration_s=10.0, ramp="linear")
    assert [linear.magnitude(t) for t in (99.0, 100.0, 102.5, 110.0, 120.0)] == [0.0, 0.0, 0.25, 1.0, 1.0]
    step = DriftSchedule("d", start_t=100.0, duration_s=10.0, ramp="step", steps=4)
    assert [step.magnitude(t) for t in (100.0, 102.4, 102.5, 107.6, 109.9)] == [0.25, 0.25, 0.5, 1.0, 1.0]
    sudden = DriftSchedule("d", start_t=100.0, duration_s=10.0, ramp="sudden")
    assert [sudden.magnitude(t) for t in (99.0, 100.0, 105.0)] == [0.0, 1.0, 1.0]


def test_drifted_features_and_class_weights() -> None:
    s = DriftSchedule("d", 0.0, 1.0, features=("a",), shift_std=2.0, scale=3.0)
    stats = {"a": (10.0, 2.0), "b": (0.0, 1.0)}
    out = drifted({"a": 11.0, "b": 5.0}, s, stats, 0.5, random.Random(0))
    assert out == {"a": 10.0 + 1.0 * 2.0 + 2.0 * 0.5 * 2.0, "b": 5.0}  # spread x(1 + 2 * 0.5), moved 1 std
    ood = drifted({"a": 11.0, "b": 5.0}, DriftSchedule("d", 0.0, 1.0, ood_share=1.0), stats, 1.0, random.Random(0))
    assert all(4.0 <= abs(ood[f] - stats[f][0]) / stats[f][1] <= 8.0 for f in ood)
    s = DriftSchedule("d", 0.0, 1.0, class_mix={1: 1.0})
    assert class_weights(s, {0: 3.0, 1: 1.0}, 0.0) == {0: 0.75, 1: 0.25}
    assert class_weights(s, {0: 3.0, 1: 1.0}, 0.5) == {0: 0.375, 1: 0.625}
    assert feature_stats([{"a": 1.0}, {"a": 3.0}]) == {"a": (2.0, 1.0)}


def spec(name: str = "d", duration: float = 2.0, **params: Any) -> FaultSpec:
    return FaultSpec(name, "drift", 1.0, duration, DriftParams(**params), Repeat())


def test_apply_recover_beside_adversarial_and_offline_undo(tmp_path: Path) -> None:
    ctx = FaultContext(seed=0, run_dir=tmp_path)
    d = make_injector(spec(features=("a",), shift_std=1.0), None, ctx)
    adv = make_injector(FaultSpec("adv", "adversarial-payload", 1.0, 1.0, AdversarialPayloadParams("garbage", 0.2), Repeat()), None, ctx)
    path = tmp_path / "load-control.json"
    record = d.undo_record(0)
    assert record == {"control_file": str(path), "fault": "d"}
    ev = d.apply(0)
    assert ev.ok and ev.detail["shift_std"] == 1.0 and ev.detail["start_t"] == ev.t
    adv.apply(0)
    adv.recover(0)  # the adversarial fault's rewrite keeps the drift entry
    schedule = active_schedule(json.loads(path.read_text())["faults"])
    assert schedule is not None and schedule.fault == "d" and schedule.features == ("a",) and schedule.start_t == ev.t
    ev = d.recover(0)
    assert ev.ok and not path.exists() and d.recover(0).ok
    d.apply(1)
    undo = undoer_for("drift", None)
    assert undo is not None and "removed" in undo(record) and not path.exists()
    assert "already gone" in undo(record)


# --- a real load process --------------------------------------------------------------------


def _echo(request: bytes) -> bytes:
    """The sent value of feature ``a`` as the confidence, so the samples show what was sent."""
    body = json.loads(request)
    a = body["instances"][0][0] if "instances" in body else body["features"]["a"]
    return json.dumps({"prediction": 0, "confidence": a, "served_by": "primary"}).encode()


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with json_server(_echo) as srv:
        yield srv


ROWS = [{"a": float(i), "b": 2.0 * i} for i in range(40)]


def run_load(server: ThreadingHTTPServer, tmp_path: Path, fault: FaultSpec, body: str) -> tuple[list[dict[str, str]], float, float]:
    """Load for ~4 s with ``fault`` applied after ~0.7 s for its duration; (sample rows, apply t, recover t)."""
    items = [{"body": {"entity_id": i, "features": f} if body == "reference" else {"instances": [[f["a"], f["b"]]]},
              "label": i % 2, "entity_id": i, "features": f} for i, f in enumerate(ROWS)]
    (tmp_path / "payloads.json").write_text(json.dumps({"clean": items}))
    config = LoadConfig(
        target_url=f"http://127.0.0.1:{server.server_address[1]}", path="/predict", users=4, spawn_rate=100.0,
        duration_s=4.0, rate_per_user=25.0, request_timeout_s=2.0, mix={"clean": 1.0},
        payloads_file=str(tmp_path / "payloads.json"), samples_file=str(tmp_path / "samples.csv"),
        progress_interval_s=0.5, seed=1, control_file=str(tmp_path / "load-control.json"),
        request_body=None if body == "reference" else {"body": body},
        response={"prediction": "prediction", "confidence": "confidence", "served_by": "served_by"},
    )
    injector = make_injector(fault, None, FaultContext(0, tmp_path))
    return load_around_fault(config, injector, tmp_path, settle_s=0.2, window_s=fault.duration)


@pytest.mark.slow
@pytest.mark.parametrize("body", ["reference", "kserve-v1"])
def test_linear_ramp_moves_the_sent_inputs_by_the_declared_amount(server: ThreadingHTTPServer, tmp_path: Path, body: str) -> None:
    fault = spec(duration=2.0, features=("a",), shift_std=2.0, ramp="linear")
    rows, apply_t, recover_t = run_load(server, tmp_path, fault, body)
    mean, std = feature_stats([{"a": r["a"]} for r in ROWS])["a"]
    poll = 0.25 + 0.15  # the load polls the control file every 0.25 s
    drifted_rows = [r for r in rows if r["drift"]]
    assert len(drifted_rows) >= 50
    for r in rows:
        t, sent, orig = float(r["t"]), float(r["confidence"]), ROWS[int(r["entity_id"])]["a"]
        if not r["drift"]:
            assert sent == orig and (t < apply_t + poll or t > recover_t), r  # base inputs outside the window
            continue
        m = float(r["drift"])
        assert apply_t <= t <= recover_t + poll and abs(m - min(1.0, (t - apply_t) / fault.duration)) < 0.01, r
        assert sent == pytest.approx(orig + 2.0 * m * std, abs=2.0 * std * 1e-6), r  # shift_std * m std (m recorded to 6 digits)
    late = [r for r in drifted_rows if float(r["drift"]) >= 0.75]
    shift = sum(float(r["confidence"]) for r in late) / len(late) - mean
    expected = 2.0 * std * sum(float(r["drift"]) for r in late) / len(late)
    assert abs(shift - expected) < 0.25 * std  # the sent mean moved by the declared amount (row-choice noise aside)
    assert [r for r in rows if float(r["t"]) > recover_t + poll and r["drift"]] == []


@pytest.mark.slow
def test_sudden_prior_shift_sends_only_the_target_class(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    fault = spec(duration=1.5, class_mix={"1": 1.0}, ramp="sudden")
    rows, apply_t, recover_t = run_load(server, tmp_path, fault, "reference")
    during = [r for r in rows if r["drift"]]
    before = [r for r in rows if float(r["t"]) < apply_t]
    assert len(during) >= 40 and {r["drift"] for r in during} == {"1.0"}
    assert {r["label"] for r in during} == {"1"}
    assert {r["label"] for r in before} == {"0", "1"}


def test_user_data_file_features_are_the_valid_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("temp,load_pct,y\n1.0,20,0\n2.0,30,1\n")
    text = """version: 1
title: byo drift
target:
  platform: local
  services:
    - {name: model, command: ["{python}", server.py, "{port}"], health: /health, replicas: 1}
  entry: {service: model}
response: {prediction: prediction, served_by: not-exposed}
load: {duration: 30s, data: {file: d.csv, label: y}}
faults:
  - {name: d, type: drift, at: 5s, duration: 10s, params: {features: [temp, load], shift_std: 1}}
"""
    with pytest.raises(InvalidInputError) as e:
        load_experiment_text(text, "e.yaml")
    assert "faults[0].params.features[1]: no feature 'load' in data file 'd.csv' (did you mean 'load_pct'?); features: temp, load_pct" in str(e.value)
    exp = load_experiment_text(text.replace("[temp, load]", "[temp, load_pct]"), "e.yaml")
    assert exp.faults[0].params.features == ("temp", "load_pct")


def test_blast_radius_and_offline_undo_by_type(tmp_path: Path) -> None:
    from chaosml.faults.base import undo_fault
    from chaosml.faults.drift import blast_radius
    from chaosml.model.experiment import TargetSpec

    fault = spec(duration=14.0, features=("mean_area",), shift_std=3.0, ramp="step", steps=2, ood_share=0.2)
    assert blast_radius(fault, TargetSpec(), "breast_cancer").description == (
        "every clean request of the load, step ramp in 2 steps over 14s to: mean_area shifted by 3 std; "
        "20% of requests out of distribution; 1 injection; recover returns the load to its base distribution")
    inj = make_injector(fault, None, FaultContext(0, tmp_path))
    record = inj.undo_record(0)
    inj.apply(0)
    assert undo_fault("drift", record) == f"drift: removed {tmp_path / 'load-control.json'}"
