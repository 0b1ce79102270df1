"""The model-rollout fault: the degraded variants' training rows and their per-cohort effect, the replica's admin
endpoint and shadow guard, apply/recover and offline undo against real replica apps, and the plan's blast radius."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.modelrollout import LocalModelRollout, ModelRolloutParams, blast_radius
from chaosml.ledger import Ledger
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.rollback import rollback
from chaosml.stack.models import ensure_artifact, ensure_variant, load_artifact, load_variant, variant_train_rows
from chaosml.stack.service import SHADOW_WINDOW, Replica, ServiceConfig, create_app
from chaosml.targets.local import free_ports
from chaosml.workload.builtin_dataset import Dataset, load_dataset, slice_rows
from chaosml.workload.cohorts import build_payloads
from tests.faults.fake_target import FakeTarget

DROP = {"variant": "drop-cohort", "cohort": "mid-radius"}


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def artifact() -> Path:
    return ensure_artifact()


def _accuracy(model_proba: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model_proba.argmax(axis=1) == y))


def test_mid_radius_cohort_is_the_held_out_rows_in_its_radius_band(ds: Dataset) -> None:
    (payloads,) = build_payloads(ds, ["mid-radius"]).values()
    radius = [p["body"]["features"]["mean_radius"] for p in payloads]
    expected = [i for i in ds.test_idx if 14.0 <= ds.X[i, ds.column("mean_radius")] < 17.0]
    assert [p["entity_id"] for p in payloads] == expected and 30 <= len(expected) <= 60
    assert all(14.0 <= r < 17.0 for r in radius)


def test_variant_training_rows(ds: Dataset) -> None:
    rows, y = variant_train_rows(ds, DROP, 0)
    dropped = slice_rows(ds, "mid-radius", ds.train_idx)
    assert len(dropped) > 50 and set(rows) == set(ds.train_idx) - set(dropped)
    assert list(y) == list(ds.y[rows])
    rows, y = variant_train_rows(ds, {"variant": "label-noise", "noise_share": 0.3}, 0)
    assert list(rows) == list(ds.train_idx)
    assert int(np.sum(y != ds.y[rows])) == round(0.3 * len(rows))
    again = variant_train_rows(ds, {"variant": "label-noise", "noise_share": 0.3}, 0)[1]
    assert list(again) == list(y)  # seeded
    rows, y = variant_train_rows(ds, {"variant": "stale", "train_share": 0.2}, 0)
    assert list(rows) == list(ds.train_idx[: round(0.2 * len(ds.train_idx))])


def test_drop_cohort_variant_loses_accuracy_on_the_cohort_only(ds: Dataset, artifact: Path) -> None:
    path, version = ensure_variant(artifact, DROP)
    base = load_artifact(artifact)
    assert version == f"{base.primary_version}+drop-cohort-mid-radius" and path.parent == artifact / "variants"
    variant = load_variant(path)
    test = ds.test_idx
    cohort = np.isin(test, slice_rows(ds, "mid-radius", test))
    x, y = ds.X[test], ds.y[test]
    b, v = base.primary.predict_proba(x), variant.predict_proba(x)
    assert _accuracy(b[cohort], y[cohort]) - _accuracy(v[cohort], y[cohort]) >= 0.08  # the cohort regressed
    assert abs(_accuracy(b[~cohort], y[~cohort]) - _accuracy(v[~cohort], y[~cohort])) <= 0.01  # the rest did not
    assert ensure_variant(artifact, DROP) == (path, version)  # cached


def test_label_noise_and_stale_variants_are_worse_overall(ds: Dataset, artifact: Path) -> None:
    base = load_artifact(artifact)
    x, y = ds.X[ds.test_idx], ds.y[ds.test_idx]
    for spec in ({"variant": "label-noise", "noise_share": 0.3}, {"variant": "stale", "train_share": 0.2}):
        path, version = ensure_variant(artifact, spec)
        assert version.startswith(base.primary_version + "+" + str(spec["variant"]))
        assert _accuracy(load_variant(path).predict_proba(x), y) < _accuracy(base.primary.predict_proba(x), y) - 0.02


@pytest.mark.parametrize("profile", ["naive", "hardened"])
def test_hardened_shadow_guard_rolls_a_disagreeing_variant_back(profile: str, ds: Dataset, artifact: Path) -> None:
    path, version = ensure_variant(artifact, DROP)
    r = Replica(ServiceConfig(name="model-t", redis_url="redis://127.0.0.1:1/0", artifact=artifact, profile=profile),
                load_artifact(artifact))
    r.variant, r.variant_version = load_variant(path), version
    rows = np.concatenate([slice_rows(ds, "mid-radius", ds.test_idx)] * 2)
    served = [r._primary(ds.X[int(i)])[1] for i in rows]
    if profile == "naive":
        assert served == [version] * len(rows) and r.variant is not None
        return
    assert r.variant is None
    assert re.search(rb"^chaosml_replica_variant_rollbacks_total\{[^}]*\} 1\.0$", r.metrics.render(), re.M)  # counted once
    rolled = served.index(r.art.primary_version)
    assert rolled == SHADOW_WINDOW  # the last variant answer is the one that tipped the window
    assert served[rolled:] == [r.art.primary_version] * (len(rows) - rolled)


def test_the_guard_keeps_a_variant_that_agrees(ds: Dataset, artifact: Path) -> None:
    """A variant identical to the base (the base's own arrays) is never rolled back."""
    r = Replica(ServiceConfig(name="model-t", redis_url="redis://127.0.0.1:1/0", artifact=artifact, profile="hardened"),
                load_artifact(artifact))
    r.variant, r.variant_version = r.art.primary, "same"
    assert {r._primary(ds.X[int(i)])[1] for i in ds.test_idx} == {"same"}


@pytest.fixture
def replicas(artifact: Path) -> Iterator[dict[str, str]]:
    """Two naive replica apps on free ports, served from a thread (the injector's calls are blocking)."""
    loop = asyncio.new_event_loop()
    ports = free_ports(2)
    runners: list[web.AppRunner] = []
    started = threading.Event()

    async def start() -> None:
        for i, port in enumerate(ports):
            cfg = ServiceConfig(name=f"model-{i}", redis_url=f"redis://127.0.0.1:{free_ports(1)[0]}/0", artifact=artifact,
                                profile="naive", port=port)
            runner = web.AppRunner(create_app(cfg), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    assert started.is_set()
    try:
        yield {f"model-{i}": f"http://127.0.0.1:{p}" for i, p in enumerate(ports)}
    finally:
        async def stop() -> None:
            for runner in runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _served_version(url: str, ds: Dataset) -> str:
    body = json.dumps(ds.row_payload(int(ds.test_idx[0]))).encode()
    req = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return str(json.loads(resp.read())["model_version"])


def _spec(**params: object) -> FaultSpec:
    return FaultSpec(name="rollout", type="model-rollout", at=1, duration=5,
                     params=ModelRolloutParams(**{"variant": "drop-cohort", "cohort": "mid-radius", **params}))  # type: ignore[arg-type]


def test_apply_recover_and_offline_undo_against_replicas(replicas: dict[str, str], artifact: Path, ds: Dataset) -> None:
    target = FakeTarget(groups={"model": ["model-0", "model-1"]}, artifact=artifact, urls=replicas)
    inj = make_injector(_spec(replicas=1), target, FaultContext(seed=3))
    assert isinstance(inj, LocalModelRollout)
    base = load_artifact(artifact).primary_version
    variant = f"{base}+drop-cohort-mid-radius"
    record = inj.undo_record(0)
    (victim,) = record["victims"]
    other = ({"model-0", "model-1"} - {victim}).pop()
    assert record["urls"] == {victim: replicas[victim]} and record["model_version"] == variant
    applied = inj.apply(0)
    assert applied.ok and applied.targets == (victim,) and applied.detail["serving"] == {victim: variant}
    assert _served_version(replicas[victim], ds) == variant
    assert _served_version(replicas[other], ds) == base  # only the chosen share
    recovered = inj.recover(0)
    assert recovered.ok and recovered.detail["serving"] == {victim: base}
    assert _served_version(replicas[victim], ds) == base
    # a crashed run: the ledger record alone puts the replica back
    record = inj.undo_record(1)
    inj.apply(1)
    assert _served_version(replicas[record["victims"][0]], ds) == variant
    assert undo_fault("model-rollout", record) == f"model-rollout of {variant}: back on the base model: {record['victims'][0]} -> {base}"
    assert _served_version(replicas[record["victims"][0]], ds) == base


def test_offline_undo_of_a_gone_replica_says_so() -> None:
    gone = f"http://127.0.0.1:{free_ports(1)[0]}"
    text = undo_fault("model-rollout", {"urls": {"model-1": gone}, "model_version": "p+v"})
    assert text == "model-rollout of p+v: back on the base model: none; not reached (a restarted replica serves the base model): model-1"


def test_apply_that_reaches_no_replica_is_no_effect(artifact: Path) -> None:
    gone = f"http://127.0.0.1:{free_ports(1)[0]}"
    target = FakeTarget(groups={"model": ["model-0"]}, artifact=artifact, urls={"model-0": gone})
    inj = make_injector(_spec(share=1.0), target, FaultContext())
    event = inj.apply(0)
    assert not event.ok and event.targets == () and "model-0" in event.detail["errors"]
    assert event.no_effect is not None and event.no_effect.startswith("no replica serves ")


def test_blast_radius_names_the_share_and_the_variant() -> None:
    br = blast_radius(_spec(share=0.5), TargetSpec(replicas=4), "breast_cancer")
    assert (br.victims, br.of) == (2, 4)
    assert br.description == ("2 of 4 model replicas (50%) serve a primary trained without the rows of cohort mid-radius "
                              "(mean_radius in [14, 17)) per injection, 1 injection; recover returns them to the base model")
    assert ModelRolloutParams(share=0.3).victim_count(4) == 2 and ModelRolloutParams(replicas=9).victim_count(4) == 4


def test_chaosml_rollback_returns_a_crashed_runs_replica_to_the_base_model(
    replicas: dict[str, str], artifact: Path, ds: Dataset, tmp_path: Path
) -> None:
    target = FakeTarget(groups={"model": ["model-0", "model-1"]}, artifact=artifact, urls=replicas)
    inj = make_injector(_spec(share=1.0), target, FaultContext())
    ledger = Ledger(tmp_path / "ledger.jsonl")
    record = inj.undo_record(0)
    ledger.open(run_id="r", run_dir=tmp_path, kind="fault", type="model-rollout", record=record, fault="rollout", injection=0)
    assert inj.apply(0).ok and {_served_version(u, ds) for u in replicas.values()} == {record["model_version"]}
    entry = json.loads(ledger.path.read_text())  # the harness that wrote it is dead: the entry is stale
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entry["harness_pid"], entry["harness_start"] = dead.pid, 1
    ledger.path.write_text(json.dumps(entry) + "\n")
    report = rollback(ledger)
    assert report.failed == [] and len(report.undone) == 1 and ledger.open_entries() == []
    assert {_served_version(u, ds) for u in replicas.values()} == {load_artifact(artifact).primary_version}
