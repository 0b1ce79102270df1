"""The adversarial-payload fault: params checks, control file written/removed atomically, undoer, effective mix, and a real load process switching its mix."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from testutil import json_server, load_around_fault

from chaosml.faults.adversarial import AdversarialPayloadParams
from chaosml.faults.base import FaultContext, make_injector, undoer_for
from chaosml.load.config import LoadConfig
from chaosml.load.control import ControlError, effective_mix, read_control
from chaosml.loader import load_experiment_text
from chaosml.model.experiment import FaultSpec, Repeat


def spec(name: str = "adv", cohort: str = "garbage", share: float = 0.5) -> FaultSpec:
    return FaultSpec(name, "adversarial-payload", 1.0, 1.0, AdversarialPayloadParams(cohort, share), Repeat())


def test_params_checks() -> None:
    assert AdversarialPayloadParams("garbage", 1.0).check() == []
    assert [f for f, _ in AdversarialPayloadParams("clean", 0.0).check()] == ["cohort", "share"]
    text = """
version: 1
title: t
faults:
  - {name: a, type: adversarial-payload, at: 1s, duration: 1s, params: {cohort: nope, share: 2}}
"""
    with pytest.raises(Exception) as e:
        load_experiment_text(text, "t.yaml")
    message = str(e.value)
    assert "faults[0].params.cohort: must be one of adversarial-evasion" in message
    assert "faults[0].params.share: must be in (0, 1]" in message


def test_apply_recover_and_overlap(tmp_path: Path) -> None:
    ctx = FaultContext(seed=0, run_dir=tmp_path)
    a = make_injector(spec("a", "garbage", 0.2), None, ctx)
    b = make_injector(spec("b", "deep-nesting", 0.3), None, ctx)
    path = tmp_path / "load-control.json"
    assert a.undo_record(0) == {"control_file": str(path), "fault": "a", "cohort": "garbage"}
    ev = a.apply(0)
    assert ev.ok and ev.action == "apply" and ev.detail["cohort"] == "garbage"
    assert json.loads(path.read_text())["share"] == {"garbage": 0.2}
    b.apply(0)
    assert json.loads(path.read_text())["share"] == {"garbage": 0.2, "deep-nesting": 0.3}
    assert a.recover(0).ok
    assert json.loads(path.read_text())["share"] == {"deep-nesting": 0.3}
    ev = b.recover(0)
    assert ev.ok and not path.exists() and ev.detail["control_file_left"] is False
    assert b.recover(0).ok  # twice is fine
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporary files left


def test_undoer_deletes_the_file_and_missing_is_fine(tmp_path: Path) -> None:
    ctx = FaultContext(seed=0, run_dir=tmp_path)
    inj = make_injector(spec(), None, ctx)
    record = inj.undo_record(0)
    inj.apply(0)
    undo = undoer_for("adversarial-payload", None)
    assert "removed" in undo(record) and not Path(record["control_file"]).exists()
    assert "already gone" in undo(record)


def test_effective_mix() -> None:
    base = {"clean": 0.9, "missing-features": 0.1}
    assert effective_mix(base, None) == (base, [])
    mix, problems = effective_mix(base, {"share": {"garbage": 0.2}}, frozenset({"clean", "missing-features", "garbage"}))
    assert problems == [] and mix == pytest.approx({"garbage": 0.2, "clean": 0.72, "missing-features": 0.08})
    mix, _ = effective_mix(base, {"share": {"garbage": 1.0}})
    assert mix == {"garbage": 1.0}
    mix, _ = effective_mix(base, {"share": {"garbage": 0.8, "oversized": 0.8}})
    assert mix == pytest.approx({"garbage": 0.5, "oversized": 0.5})
    mix, _ = effective_mix(base, {"mix": {"clean": 0.0, "garbage": 1.0}})
    assert mix == pytest.approx({"missing-features": 0.1 / 1.1, "garbage": 1.0 / 1.1})  # weights come out normalised
    mix, problems = effective_mix(base, {"share": {"garbage": 0.5}}, frozenset({"clean", "missing-features"}))
    assert mix == base and problems == ["cohort 'garbage' has no payloads in the payload file; ignored"]
    with pytest.raises(ControlError, match=r"share.garbage: must be a finite number >= 0"):
        effective_mix(base, {"share": {"garbage": -1}})


def test_read_control(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    assert read_control(path) is None
    path.write_text("{broken")
    with pytest.raises(ControlError, match="not valid JSON"):
        read_control(path)
    path.write_text("x" * 70_000)
    with pytest.raises(ControlError, match="larger than"):
        read_control(path)


# --- a real load process polling the control file -------------------------------------------


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    with json_server(b'{"prediction": 1, "confidence": 0.9, "served_by": "primary"}') as srv:
        yield srv


def test_load_process_switches_mix_while_the_control_file_exists(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    payloads = {
        "clean": [{"body": {"x": 1}, "label": 1, "entity_id": 1}],
        "garbage": [{"body": {"raw": "\udcff\udcfe"}, "label": None, "entity_id": None}],
    }
    (tmp_path / "payloads.json").write_text(json.dumps(payloads))
    control = tmp_path / "load-control.json"
    config = LoadConfig(
        target_url=f"http://127.0.0.1:{server.server_address[1]}", path="/predict", users=4, spawn_rate=100.0,
        duration_s=4.5, rate_per_user=25.0, request_timeout_s=2.0, mix={"clean": 1.0},
        payloads_file=str(tmp_path / "payloads.json"), samples_file=str(tmp_path / "samples.csv"),
        progress_interval_s=0.5, seed=1, control_file=str(control),
    )
    injector = make_injector(spec("adv", "garbage", 1.0), None, FaultContext(0, tmp_path))
    rows, apply_t, recover_t = load_around_fault(config, injector, tmp_path, settle_s=0.5, window_s=1.5)
    poll = 0.25 + 0.15  # poll interval plus slack
    before = Counter(r["cohort"] for r in rows if float(r["t"]) < apply_t)
    during = Counter(r["cohort"] for r in rows if apply_t + poll < float(r["t"]) < recover_t)
    after = Counter(r["cohort"] for r in rows if float(r["t"]) > recover_t + poll)
    assert set(before) == {"clean"} and set(during) == {"garbage"} and set(after) == {"clean"}, (before, during, after)
    assert sum(during.values()) >= 20
    assert "mix switched (control file): garbage=1" in (tmp_path / "stderr").read_text()
