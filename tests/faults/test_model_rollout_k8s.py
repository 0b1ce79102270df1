"""model-rollout on kubernetes against an in-memory cluster: the canary Deployment takes the share of the primary's
replicas (Ready first, never zero Ready model pods), recover gives them back primary first, a canary that never gets
Ready leaves nothing scaled, a canary that matches no Deployment is NO EFFECT; validate's canary rules; the offline
undo's order; a reference replica booted on a variant (the model-canary's ``--variant``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaosml.errors import TargetError
from chaosml.faults import modelrollout
from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.modelrollout import CanaryRollout, ModelRolloutParams, blast_radius, check
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import REFERENCE_SERVICES, StackFacts
from chaosml.stack.models import ensure_artifact, load_artifact
from chaosml.stack.service import Replica, ServiceConfig
from chaosml.targets.supervisor import ReplicaStatus
from chaosml.workload.builtin_dataset import load_dataset
from tests.faults.fake_target import FakeTarget

LABELS = {"model": {"app": "model", "track": "stable"}, "model-canary": {"app": "model", "track": "canary"},
          "other-canary": {"app": "model", "track": "canary", "team": "b"}, "gateway": {"app": "gateway"}}


@dataclass
class Cluster:
    """Deployments by name with pod labels and replica counts; a scaled Deployment's pods are Ready at once unless
    its name is in ``never_ready``. ``serving`` holds the Ready pods of app=model after every change."""

    platform: str = "kubernetes"
    replicas: dict[str, int] = field(default_factory=lambda: {"model": 3, "model-canary": 0, "gateway": 1})
    never_ready: set[str] = field(default_factory=set)
    calls: list[tuple[str, int]] = field(default_factory=list)
    serving: list[int] = field(default_factory=list)
    refuse: str | None = None

    def deployment(self, group: str) -> str:
        return group

    def find_deployments(self, ref: str) -> list[str]:
        if "=" not in ref:
            return [ref] if ref in self.replicas else []
        want = dict(t.split("=") for t in ref.split(","))
        return sorted(d for d in self.replicas if want.items() <= LABELS[d].items())

    def deployment_replicas(self, name: str) -> int:
        return self.replicas[name]

    def deployment_pods(self, name: str) -> list[ReplicaStatus]:
        ready = name not in self.never_ready
        return [ReplicaStatus(f"{name}-{i}", name, None, True, ready, 0) for i in range(self.replicas[name])]

    def scale(self, deployment: str, replicas: int) -> int:
        before = self.replicas[deployment]
        self.calls.append((deployment, replicas))
        self.replicas[deployment] = replicas
        self.serving.append(sum(n for d, n in self.replicas.items() if LABELS[d]["app"] == "model" and d not in self.never_ready))
        return before

    def wait_deployment_ready(self, name: str, timeout_s: float) -> str | None:
        n = self.replicas[name]
        return f"{name}: 0/{n} ready, 0 available" if name in self.never_ready and n else None

    def ledger_scope(self) -> dict[str, Any]:
        return {"platform": "kubernetes", "context": "fake", "namespace": "ns", "server": None, "kubeconfig": None}

    def guard(self) -> None:
        if self.refuse:
            raise TargetError(self.refuse)


def _spec(**params: Any) -> FaultSpec:
    return FaultSpec(name="rollout", type="model-rollout", at=1, duration=5, params=ModelRolloutParams(**params))


def test_the_canary_takes_the_share_ready_first_and_gives_it_back_primary_first() -> None:
    cluster = Cluster()
    inj = make_injector(_spec(canary="app=model,track=canary", share=0.5), cluster, FaultContext())
    assert isinstance(inj, CanaryRollout)
    record = inj.undo_record(0)
    assert {k: record[k] for k in ("mechanism", "canary", "canary_before", "primary", "primary_before", "moved")} == {
        "mechanism": "canary", "canary": "model-canary", "canary_before": 0, "primary": "model", "primary_before": 3, "moved": 2}
    applied = inj.apply(0)
    assert applied.ok and applied.no_effect is None and applied.targets == ("model-canary-0", "model-canary-1")
    assert applied.detail["canary_replicas"] == [0, 2] and applied.detail["primary_replicas"] == [3, 1]
    assert cluster.calls == [("model-canary", 2), ("model", 1)]  # the canary first: capacity kept
    assert cluster.replicas == {"model": 1, "model-canary": 2, "gateway": 1}
    recovered = inj.recover(0)
    assert recovered.ok and recovered.detail["replicas"] == {"model": 3, "model-canary": 0}, recovered.detail
    assert cluster.calls[2:] == [("model", 3), ("model-canary", 0)]  # the primary back before the canary goes
    assert min(cluster.serving) >= 3  # never fewer Ready model pods than before
    assert inj.recover(0).ok and cluster.calls[4:] == [("model", 3), ("model-canary", 0)]  # twice is safe


def test_one_primary_replica_moves_whole_and_the_service_never_has_zero_ready_pods() -> None:
    cluster = Cluster(replicas={"model": 1, "model-canary": 0, "gateway": 1})
    inj = make_injector(_spec(canary="model-canary", share=0.1), cluster, FaultContext())
    assert inj.apply(0).detail["primary_replicas"] == [1, 0]
    assert inj.recover(0).ok
    assert cluster.calls == [("model-canary", 1), ("model", 0), ("model", 1), ("model-canary", 0)]
    assert min(cluster.serving) == 1 and cluster.serving[0] == 2  # both for a moment, never none


def test_a_canary_that_never_gets_ready_fails_apply_and_leaves_nothing_scaled() -> None:
    cluster = Cluster(never_ready={"model-canary"})
    inj = make_injector(_spec(canary="model-canary", replicas=1), cluster, FaultContext())
    with pytest.raises(TargetError, match=r"canary Deployment model-canary was not Ready within 120 s \(model-canary: 0/1 ready"):
        inj.apply(0)
    assert cluster.calls == [("model-canary", 1), ("model-canary", 0)]  # the primary was never touched
    assert cluster.replicas == {"model": 3, "model-canary": 0, "gateway": 1}
    # the runner still recovers every applied injection: idempotent, same counts
    assert inj.recover(0).detail["replicas"] == {"model": 3, "model-canary": 0}


def test_apply_refused_once_the_context_changed() -> None:
    cluster = Cluster(refuse="context changed")
    inj = make_injector(_spec(canary="model-canary", replicas=1), cluster, FaultContext())
    with pytest.raises(TargetError, match="context changed"):
        inj.apply(0)
    assert cluster.calls == []


@pytest.mark.parametrize(("canary", "why"), [
    ("app=model,track=blue", "no Deployment other than the primary (model) matches canary 'app=model,track=blue'"),
    ("track=canary", "canary 'track=canary' matches 2 Deployments (model-canary, other-canary): name one (or add a label)"),
    ("model", "no Deployment other than the primary (model) matches canary 'model'"),
])
def test_a_canary_that_names_no_single_deployment_is_no_effect(canary: str, why: str) -> None:
    cluster = Cluster(replicas={"model": 2, "model-canary": 0, "other-canary": 0, "gateway": 1})
    inj = make_injector(_spec(canary=canary, share=1.0), cluster, FaultContext())
    event = inj.apply(0)
    assert event.no_effect == why and event.targets == () and cluster.calls == []
    assert inj.recover(0).detail["note"] == "nothing was applied"
    assert undo_fault("model-rollout", {**inj.undo_record(0)}) == f"model-rollout (canary): nothing was scaled ({why})"


class FakeApiClient:
    """Stands for the kubernetes ApiClient an offline undo opens from the record: counts the ones opened, and closed."""

    opened: list[FakeApiClient] = []

    def __init__(self) -> None:
        self.closed = False
        FakeApiClient.opened.append(self)

    def close(self) -> None:
        self.closed = True


def test_offline_undo_scales_the_primary_back_then_the_canary_on_one_api_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # review: the undo opened one API client per Deployment (two for one record); one now, closed after.
    import chaosml.targets.kubernetes.undo as k8s_undo

    cluster = Cluster()
    used: list[Any] = []

    def scale_deployment(apps: Any, namespace: str, name: str, replicas: int) -> int:
        used.append((apps.api_client, namespace))
        return cluster.scale(name, replicas)

    monkeypatch.setattr(FakeApiClient, "opened", [])
    monkeypatch.setattr(k8s_undo, "client_from_record", lambda record: FakeApiClient())
    monkeypatch.setattr(k8s_undo, "scale_deployment", scale_deployment)
    inj = make_injector(_spec(canary="model-canary", replicas=1), cluster, FaultContext())
    record = inj.undo_record(0)
    inj.apply(0)
    cluster.calls.clear()
    assert undo_fault("model-rollout", record) == ("model-rollout (canary): primary deployment ns/model scaled back from 2 "
                                                   "to 3 replica(s); canary deployment ns/model-canary scaled back from 1 "
                                                   "to 0 replica(s)")
    assert cluster.calls == [("model", 3), ("model-canary", 0)]  # the primary first
    (api,) = FakeApiClient.opened
    assert api.closed and used == [(api, "ns"), (api, "ns")]
    # idempotent: a second undo finds both at their counts, on one (closed) client again
    assert undo_fault("model-rollout", record) == ("model-rollout (canary): primary deployment ns/model already at 3 "
                                                   "replica(s); canary deployment ns/model-canary already at 0 replica(s)")
    assert len(FakeApiClient.opened) == 2 and all(a.closed for a in FakeApiClient.opened)


def _facts(platform: str, stack: str = "reference") -> StackFacts:
    return StackFacts(platform=platform, stack=stack, services=REFERENCE_SERVICES, replicas={"model": 3})


def test_check_canary_rules_per_platform_and_stack() -> None:
    local = ModelRolloutParams(cohort="mid-radius", share=0.5)
    assert check(local, _facts("local")) == []
    assert check(ModelRolloutParams(canary="model-canary", share=0.5), _facts("local")) == [
        ("params.canary", "is only used on the kubernetes target (the canary Deployment)")]
    assert check(ModelRolloutParams(cohort="mid-radius", share=0.5, primary="gateway"), _facts("local")) == [
        ("params.primary", "is only used on the kubernetes target, with canary")]
    assert check(local, _facts("kubernetes"))[0][0] == "params.canary"
    for ok in ("model-canary", "app=model,track=canary", "track=canary", "app=model"):  # the primary is never the canary
        assert check(ModelRolloutParams(canary=ok, share=0.5), _facts("kubernetes")) == [], ok
    # labels validate cannot see (or a custom stack): resolved at apply
    assert check(ModelRolloutParams(canary="team=b", share=0.5), _facts("kubernetes")) == []
    assert check(ModelRolloutParams(canary="anything", share=0.5), _facts("kubernetes", "custom")) == []
    # variant params say what a replica is switched to locally; a canary serves its own
    assert [f for f, _ in ModelRolloutParams(canary="model-canary", share=1, variant="stale", train_share=0.2).check()] == [
        "variant", "train_share"]
    assert ModelRolloutParams(canary="model-canary", share=1).check() == []


def test_blast_radius_on_kubernetes_names_the_canary_and_the_order() -> None:
    br = blast_radius(_spec(canary="app=model,track=canary", share=0.5),
                      TargetSpec(platform="kubernetes", replicas=3), "breast_cancer")
    assert (br.victims, br.of) == (2, 3)
    assert br.description == (
        "2 of 3 model replicas (67%) move to the canary Deployment 'app=model,track=canary' per injection, 1 injection: "
        "the canary is scaled up by 2 and Ready before the model Deployment is scaled down by as many; its pods serve "
        "their own model; recover scales model back first, then the canary to its count before")
    whole = blast_radius(_spec(canary="model-canary", share=1.0), TargetSpec(platform="kubernetes", replicas=1), None)
    assert "(all of them: the whole service runs on the canary in the window)" in whole.description


def test_on_cluster_says_what_one_injection_sets_now() -> None:
    assert modelrollout.on_cluster(_spec(canary="model-canary", replicas=1), Cluster(), []) == (
        "deployment model-canary scaled from 0 to 1 replicas (Ready first), then model from 3 to 2; "
        "recover: model back to 3, then model-canary to 0")
    assert modelrollout.on_cluster(_spec(canary="nope", replicas=1), Cluster(), []).startswith("NO EFFECT: no Deployment")


def test_a_replica_booted_with_a_variant_serves_it_from_the_first_answer(tmp_path: Path) -> None:
    artifact = ensure_artifact()
    base = load_artifact(artifact)
    r = Replica(ServiceConfig(name="canary-0", redis_url="redis://127.0.0.1:1/0", artifact=artifact, profile="naive",
                              variant={"variant": "drop-cohort", "cohort": "mid-radius"}), base)
    ds = load_dataset()
    assert r.variant is not None and r.variant_version == f"{base.primary_version}+drop-cohort-mid-radius"
    assert r._primary(ds.X[int(ds.test_idx[0])])[1] == r.variant_version
    plain = Replica(ServiceConfig(name="model-0", redis_url="redis://127.0.0.1:1/0", artifact=artifact), base)
    assert plain.variant is None and plain._primary(ds.X[int(ds.test_idx[0])])[1] == base.primary_version


def test_the_shared_fake_target_takes_the_kubernetes_injector() -> None:
    target = FakeTarget(platform="kubernetes", groups={"model": ["model-0", "model-1"], "canary": ["canary-0"]},
                        replicas={"model": 2, "canary": 0})
    inj = make_injector(_spec(canary="app=canary", replicas=1), target, FaultContext())
    assert inj.apply(0).targets == ("canary-0",) and inj.recover(0).ok
    assert target.calls == [("scale", ("deploy-canary", 1)), ("scale", ("deploy-model", 1)),
                            ("scale", ("deploy-model", 2)), ("scale", ("deploy-canary", 0))]
