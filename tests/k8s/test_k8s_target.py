"""The kubernetes target against the real control plane: context allowlist, pod-kill with a measured
MTTR breakdown, blast-radius modes, feature-store scale-to-zero and its offline undo."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_stack import deploy_stack, events_of, fault, make_target, wait_for

from chaosml.errors import TargetError
from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.featurestore import FeatureStoreOutageParams
from chaosml.faults.podkill import PodKillParams
from chaosml.ledger import Ledger
from chaosml.model.experiment import KubernetesSpec
from chaosml.rollback import rollback
from chaosml.targets.kubernetes import (
    ContextNotAllowedError,
    KubernetesTarget,
    context_allowed,
)

pytestmark = pytest.mark.k8s


def renamed_kubeconfig(src: Path, dst: Path, name: str, extra: str | None = None) -> Path:
    """A copy of ``src`` whose context is called ``name`` (plus an ``extra`` context on the same cluster)."""
    cfg = yaml.safe_load(src.read_text())
    ctx = cfg["contexts"][0]
    ctx["name"] = name
    if extra:
        cfg["contexts"].append({"name": extra, "context": dict(ctx["context"])})
    cfg["current-context"] = name
    dst.write_text(yaml.safe_dump(cfg))
    return dst


# ------------------------------------------------------------------------------ safety
def test_context_allowlist_rules() -> None:
    spec = KubernetesSpec()
    assert context_allowed("kind-chaosml", spec, None)[0]
    ok, why = context_allowed("prod-eu", spec, None)
    assert not ok and "not in allowed_contexts (kind-*)" in why and "--allow-context prod-eu" in why
    # allow_any_context alone is not enough: the command line must confirm the same name
    anyctx = KubernetesSpec(allow_any_context=True)
    assert not context_allowed("prod-eu", anyctx, None)[0]
    assert not context_allowed("prod-eu", anyctx, "prod-us")[0]
    assert context_allowed("prod-eu", anyctx, "prod-eu")[0]
    # the flag alone is not enough either
    assert not context_allowed("prod-eu", spec, "prod-eu")[0]
    assert context_allowed("staging-1", KubernetesSpec(allowed_contexts=("staging-*",)), None)[0]


def test_start_refuses_a_context_outside_the_allowlist(control_plane: Any, k8s_namespace: str, tmp_path: Path) -> None:
    kc = renamed_kubeconfig(control_plane.verified_kubeconfig_path, tmp_path / "kubeconfig", "prod-eu-1")
    target = make_target(control_plane, k8s_namespace)
    target.kubeconfig = str(kc)
    with pytest.raises(ContextNotAllowedError) as exc:
        target.start()
    msg = str(exc.value)
    assert msg.startswith("refusing to touch kube context 'prod-eu-1'"), msg
    assert "allowed_contexts (kind-*)" in msg and "--allow-context prod-eu-1" in msg

    # allowed only when the file says allow_any_context AND the command line names the context
    spec = KubernetesSpec(namespace=k8s_namespace, allow_any_context=True)
    with pytest.raises(ContextNotAllowedError, match="confirm it on the command line with --allow-context prod-eu-1"):
        KubernetesTarget(spec, kubeconfig=kc).connect()
    t = make_target(control_plane, k8s_namespace, spec=spec, allow_context="prod-eu-1")
    t.kubeconfig = str(kc)
    try:
        t.connect()  # reaches the namespace: allowed
        assert t.context == "prod-eu-1"
        assert "allow_any_context and --allow-context prod-eu-1" in t.describe()["allowed_because"]
    finally:
        t.stop()


def test_missing_namespace_and_stack_are_clear_errors(control_plane: Any, k8s_namespace: str) -> None:
    t = make_target(control_plane, "no-such-namespace", spec=KubernetesSpec(namespace="no-such-namespace"))
    with pytest.raises(TargetError, match="namespace 'no-such-namespace' does not exist in context 'kind-chaosml-test'"):
        t.start()
    t = make_target(control_plane, k8s_namespace)
    with pytest.raises(TargetError, match=r"deployment\(s\) missing in namespace .*redis \(group feature-store\)"):
        t.start(timeout_s=5)


def test_a_context_switch_during_the_run_stops_further_faults(control_plane: Any, k8s_namespace: str, tmp_path: Path) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    kc = renamed_kubeconfig(control_plane.verified_kubeconfig_path, tmp_path / "kubeconfig", "kind-a", extra="kind-b")
    target = make_target(control_plane, k8s_namespace)
    target.kubeconfig = str(kc)
    target.start()
    try:
        cfg = yaml.safe_load(kc.read_text())
        cfg["current-context"] = "kind-b"
        kc.write_text(yaml.safe_dump(cfg))
        wait_for(lambda: target.abort_reason, 15, "the watch to notice the context switch")
        assert "current context changed from 'kind-a' to 'kind-b'" in str(target.abort_reason)
        assert events_of(target, "context_changed")
        victim = target.members("model")[0].name
        with pytest.raises(TargetError, match="current context changed"):
            target.delete_pods([victim])
        assert victim in {m.name for m in target.members("model")}  # nothing was deleted
    finally:
        target.stop()


# ------------------------------------------------------------------------------ pod-kill
def test_pod_kill_replacement_ready_with_mttr_breakdown(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_stack(control_plane, k8s_namespace)
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        d = target.describe()
        assert d["platform"] == "kubernetes" and d["namespace"] == k8s_namespace
        assert d["deployments"]["model"]["replicas"] == 3 and d["deployments"]["model"]["selector"] == "app=model,track=stable"
        assert set(target.links()) == {"gateway", "model", "feature-store"}
        assert target.entry_url.startswith("http://127.0.0.1:") and target.redis_url.startswith("redis://127.0.0.1:")
        before = {m.name for m in target.members("model")}
        assert len(before) == 3

        inj = make_injector(fault("kill", "pod-kill", PodKillParams(service="model", mode="one")), target, FaultContext(seed=1))
        record = inj.undo_record(0)
        assert record["platform"] == "kubernetes" and record["namespace"] == k8s_namespace and len(record["victims"]) == 1
        (victim,) = record["victims"]
        ev = inj.apply(0)
        assert ev.ok and ev.targets == (victim,) and ev.detail["grace_period"] == 0.0
        assert target.wait_group_ready("model", 30)
        wait_for(lambda: events_of(target, "pod_replaced", victim), 30, "the pod_replaced event")
        rec = inj.recover(0)
        assert rec.ok and rec.detail["ready"] == 3

        after = {m.name for m in target.members("model")}
        assert victim not in after and len(after) == 3 and len(after - before) == 1
        (replacement,) = after - before
        (bd,) = [e.detail for e in events_of(target, "pod_replaced", victim)]
        assert bd["replacement"] == replacement and bd["deletion"] == "requested"
        assert 0 <= bd["created_s"] <= bd["scheduled_s"] <= bd["ready_s"] < 30
        # every step observed through the watch, in order, after the delete request
        t_kill = events_of(target, "replica_killed", victim)[0].t
        kinds = [(e.kind, e.subject) for e in target.events if e.t >= t_kill]
        for step in [("pod_deleting", victim), ("pod_created", replacement), ("pod_scheduled", replacement),
                     ("pod_ready", replacement), ("pod_replaced", victim)]:
            assert step in kinds, (step, kinds)
        assert kinds.index(("pod_created", replacement)) < kinds.index(("pod_scheduled", replacement)) < kinds.index(
            ("pod_ready", replacement)
        )
        # the local target's vocabulary, so chaosml.analysis works unchanged (ready_s: victim ready again)
        assert events_of(target, "replica_unready", victim) and events_of(target, "replica_exited", victim)
        assert any(e.detail.get("replacement") == replacement for e in events_of(target, "replica_ready", victim))
        with capsys.disabled():
            print(
                f"\nMTTR breakdown (pod-kill, control plane + simulated kubelet start_delay "
                f"{control_plane.kubelet.start_delay}s): deletion seen +{bd['deletion_seen_s']}s, "
                f"replacement created +{bd['created_s']}s, scheduled +{bd['scheduled_s']}s, Ready +{bd['ready_s']}s, "
                f"victim gone +{bd['victim_gone_s']}s"
            )
    finally:
        target.stop()
    assert not [t for t in target.watch.threads if t.is_alive()]


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [("one", None, 1), ("all", None, 4), ("fixed", 2, 2), ("percent", 50, 2), ("percent", 10, 1)],
)
def test_pod_kill_modes_pick_the_right_counts(
    control_plane: Any, k8s_namespace: str, mode: str, value: float | None, expected: int
) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 4})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        before = {m.name for m in target.members("model")}
        inj = make_injector(fault("kill", "pod-kill", PodKillParams(service="model", mode=mode, value=value)), target)
        record = inj.undo_record(0)
        assert len(record["victims"]) == expected and set(record["victims"]) <= before
        ev = inj.apply(0)
        assert ev.ok and ev.detail["killed"] == expected and ev.detail["replicas"] == 4
        assert target.wait_group_ready("model", 30)
        for v in record["victims"]:
            wait_for(lambda v=v: events_of(target, "pod_replaced", v), 30, f"{v} replaced")
        after = {m.name for m in target.members("model")}
        assert len(after) == 4 and not (after & set(record["victims"])) and len(after - before) == expected
    finally:
        target.stop()


def test_pod_kill_by_label_selector_with_grace_period(control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        params = PodKillParams(service="model", mode="all", selector="app.kubernetes.io/component=feature-store", grace_period_s=1)
        inj = make_injector(fault("kill-fs", "pod-kill", params), target)
        record = inj.undo_record(0)
        assert len(record["victims"]) == 1 and record["victims"][0].startswith("redis-")
        inj.apply(0)
        ev = events_of(target, "replica_killed", record["victims"][0])[0]
        assert ev.detail["grace_period_s"] == 1
        assert target.wait_group_ready("feature-store", 30)
        assert len(target.members("model")) == 2  # the selector, not the service, chose the victims
    finally:
        target.stop()


# ------------------------------------------------------------------------------ feature store
def _redis_replicas(cluster: Any, ns: str) -> int:
    return int(cluster.apps_v1().read_namespaced_deployment("redis", ns).spec.replicas)


def test_feature_store_scale_to_zero_restores_the_original_count(control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2, "redis": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        inj = make_injector(fault("fs", "feature-store-outage", FeatureStoreOutageParams(mode="kill")), target)
        assert type(inj).__name__ == "ScaleToZero"
        record = inj.undo_record(0)
        assert record["replicas_before"] == 2 and record["deployment"] == "redis" and record["mechanism"] == "scale-to-zero"
        ev = inj.apply(0)
        assert ev.ok and _redis_replicas(control_plane, k8s_namespace) == 0
        wait_for(lambda: not target.members("feature-store"), 30, "redis pods gone")
        rec = inj.recover(0)
        assert rec.ok and rec.detail["replicas"] == 2 and rec.detail["ready"], rec.detail
        assert _redis_replicas(control_plane, k8s_namespace) == 2
        assert sum(m.ready for m in target.members("feature-store")) == 2
        assert inj.recover(0).ok  # twice is safe
    finally:
        target.stop()


def test_feature_store_offline_undo_after_a_crash(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apply, then lose the injector and the target (the harness died): the record alone scales back."""
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2, "redis": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    spec = fault("fs", "feature-store-outage", FeatureStoreOutageParams(mode="kill"))
    inj = make_injector(spec, target)
    record = json.loads(json.dumps(inj.undo_record(0)))  # as the ledger stores it
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open(run_id="crashed", run_dir=tmp_path, kind="fault", type=spec.type, record=record, fault="fs", injection=0)
    inj.apply(0)
    assert _redis_replicas(control_plane, k8s_namespace) == 0
    del inj
    target.stop()

    # `chaosml rollback` (include_live: the entry's harness is this test process)
    report = rollback(ledger, include_live=True)
    assert not report.failed, report.failed
    expected = (
        f"fs #1 (feature-store-outage) of run crashed: feature-store-outage kill (scale-to-zero): "
        f"deployment {k8s_namespace}/redis scaled back from 0 to 2 replica(s)"
    )
    assert report.undone == [expected]
    assert _redis_replicas(control_plane, k8s_namespace) == 2
    assert ledger.open_entries() == []
    # idempotent, from the record alone
    assert undo_fault("feature-store-outage", record).endswith(f"deployment {k8s_namespace}/redis already at 2 replica(s)")
    # and it refuses when the recorded context now points at another API server
    bad = {**record, "server": "https://10.9.9.9:6443"}
    with pytest.raises(TargetError, match="refusing to act on another cluster"):
        undo_fault("feature-store-outage", bad)

    t2 = make_target(control_plane, k8s_namespace)
    t2.start()
    try:
        assert t2.wait_group_ready("feature-store", 30)
    finally:
        t2.stop()


def test_stop_and_start_member_keep_the_original_count(control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2, "redis": 3})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        assert target.stop_member("redis") == 3
        assert target.stop_member("redis") == 3  # a second stop keeps the original, not 0
        assert _redis_replicas(control_plane, k8s_namespace) == 0
        target.start_member("redis")
        assert _redis_replicas(control_plane, k8s_namespace) == 3
        assert target.wait_group_ready("feature-store", 30)
        t0 = time.monotonic()
        assert target.wait_group_ready("model", 5) and time.monotonic() - t0 < 5
    finally:
        target.stop()
