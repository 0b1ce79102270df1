"""model-rollout on the kubernetes target against the real control plane (simulated kubelet): the reference stack's
model-canary Deployment takes the share of the primary's replicas for the window and gives it back, and a crashed
run's record alone restores both Deployments' counts through `chaosml rollback`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import deploy_stack, events_of, fault, make_target

from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.modelrollout import ModelRolloutParams
from chaosml.ledger import Ledger
from chaosml.records import EventKind
from chaosml.rollback import rollback

pytestmark = pytest.mark.k8s


def _replicas(cluster: Any, ns: str) -> dict[str, int]:
    apps = cluster.apps_v1()
    return {d: int(apps.read_namespaced_deployment(d, ns).spec.replicas) for d in ("model", "model-canary")}


def test_canary_apply_and_recover_move_replicas_and_restore_both_counts(control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 3})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        spec = fault("rollout", "model-rollout", ModelRolloutParams(canary="app=model,track=canary", share=0.5))
        inj = make_injector(spec, target, FaultContext())
        record = inj.undo_record(0)
        assert (record["canary"], record["canary_before"], record["primary"], record["primary_before"], record["moved"]) == (
            "model-canary", 0, "model", 3, 2)
        assert record["namespace"] == k8s_namespace and record["server"]  # found again offline
        applied = inj.apply(0)
        assert applied.ok and applied.no_effect is None, applied
        assert _replicas(control_plane, k8s_namespace) == {"model": 1, "model-canary": 2}
        canary_pods = target.deployment_pods("model-canary")
        assert len(applied.targets) == 2 and list(applied.targets) == sorted(m.name for m in canary_pods)
        assert all(p.startswith("model-canary-") for p in applied.targets)
        # the primary's group keeps its own pods only (its selector has track=stable)
        assert not {m.name for m in target.members("model")} & set(applied.targets)
        scaled = [(e.subject, e.detail["to"]) for e in events_of(target, EventKind.DEPLOYMENT_SCALED)]
        assert scaled == [("model-canary", 2), ("model", 1)]  # the canary first
        recovered = inj.recover(0)
        assert recovered.ok, recovered.detail
        assert _replicas(control_plane, k8s_namespace) == {"model": 3, "model-canary": 0}
        scaled = [(e.subject, e.detail["to"]) for e in events_of(target, EventKind.DEPLOYMENT_SCALED)]
        assert scaled[2:] == [("model", 3), ("model-canary", 0)]  # the primary back first
        assert target.wait_deployment_ready("model", 30) is None
        assert sum(m.ready for m in target.members("model")) == 3
    finally:
        target.stop()


def test_canary_matching_nothing_is_no_effect_on_the_cluster(control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        inj = make_injector(fault("rollout", "model-rollout", ModelRolloutParams(canary="track=blue", share=1.0)), target)
        event = inj.apply(0)
        assert event.no_effect == "no Deployment other than the primary (model) matches canary 'track=blue'"
        assert _replicas(control_plane, k8s_namespace) == {"model": 2, "model-canary": 0}
        assert not events_of(target, EventKind.DEPLOYMENT_SCALED)
    finally:
        target.stop()


def test_canary_offline_undo_after_a_crash(control_plane: Any, k8s_namespace: str, tmp_path: Path) -> None:
    """Apply, then lose the injector and the target (the harness died): the record alone restores both counts."""
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    spec = fault("rollout", "model-rollout", ModelRolloutParams(canary="model-canary", replicas=1))
    inj = make_injector(spec, target)
    record = json.loads(json.dumps(inj.undo_record(0)))  # as the ledger stores it
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open(run_id="crashed", run_dir=tmp_path, kind="fault", type=spec.type, record=record, fault="rollout", injection=0)
    assert inj.apply(0).ok
    assert _replicas(control_plane, k8s_namespace) == {"model": 1, "model-canary": 1}
    del inj
    target.stop()

    report = rollback(ledger, include_live=True)
    assert not report.failed, report.failed
    ns = k8s_namespace
    assert report.undone == [
        f"rollout #1 (model-rollout) of run crashed: model-rollout (canary): primary deployment {ns}/model scaled back "
        f"from 1 to 2 replica(s); canary deployment {ns}/model-canary scaled back from 1 to 0 replica(s)"]
    assert _replicas(control_plane, k8s_namespace) == {"model": 2, "model-canary": 0}
    assert ledger.open_entries() == []
    assert undo_fault("model-rollout", record) == (  # idempotent, from the record alone
        f"model-rollout (canary): primary deployment {ns}/model already at 2 replica(s); "
        f"canary deployment {ns}/model-canary already at 0 replica(s)")
