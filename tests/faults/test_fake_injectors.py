"""Fast injector tests against FakeTarget: what each injector asks of the target, recorded in memory."""

from __future__ import annotations

from typing import Any

import pytest
from fake_target import FakeTarget

from chaosml.errors import TargetError
from chaosml.faults import featurestore
from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.featurestore import FeatureStoreOutageParams
from chaosml.faults.nodefailure import NodeFailure, NodeFailureParams
from chaosml.faults.podkill import PodKillParams
from chaosml.model.experiment import FaultSpec


def _spec(ftype: str, params: Any, name: str = "f") -> FaultSpec:
    return FaultSpec(name=name, type=ftype, at=0.0, duration=1.0, params=params)


def test_local_pod_kill_signals_seeded_victims_decided_before_apply() -> None:
    t = FakeTarget()
    inj = make_injector(_spec("pod-kill", PodKillParams(mode="fixed", value=2, signal="SIGTERM")), t, FaultContext(seed=3))
    record = inj.undo_record(0)
    assert record["replicas"] == 3 and len(record["victims"]) == 2 and "platform" not in record
    ev = inj.apply(0)
    assert ev.ok and list(ev.targets) == record["victims"]
    assert t.calls == [("kill", (record["victims"], "SIGTERM"))]
    assert inj.recover(0).detail == {"ready": 1, "desired": 3}
    again = make_injector(_spec("pod-kill", PodKillParams(mode="fixed", value=2)), FakeTarget(), FaultContext(seed=3))
    assert again.undo_record(0)["victims"] == record["victims"]  # same seed, same victims
    assert undo_fault("pod-kill", record).endswith("nothing to undo")


def test_kubernetes_pod_kill_deletes_selected_pods_with_the_grace_period() -> None:
    t = FakeTarget(platform="kubernetes", labels={"tier=model": ["pod-a", "pod-b"]})
    inj = make_injector(_spec("pod-kill", PodKillParams(mode="all", selector="tier=model", grace_period_s=5)), t, FaultContext())
    record = inj.undo_record(0)
    assert record["platform"] == "kubernetes" and record["grace_period"] == 5 and record["victims"] == ["pod-a", "pod-b"]
    inj.apply(0)
    assert t.calls == [("delete_pods", (["pod-a", "pod-b"], 5))]


def test_kubernetes_pod_kill_is_refused_by_the_context_guard() -> None:
    t = FakeTarget(platform="kubernetes", refuse="context changed")
    inj = make_injector(_spec("pod-kill", PodKillParams()), t, FaultContext())
    with pytest.raises(TargetError, match="context changed"):
        inj.apply(0)
    assert t.calls == []


def test_feature_store_kill_scales_the_deployment_to_zero_and_back() -> None:
    t = FakeTarget(platform="kubernetes", replicas={"feature-store": 2})
    inj = make_injector(_spec("feature-store-outage", FeatureStoreOutageParams(mode="kill")), t, FaultContext())
    record = inj.undo_record(0)
    assert record["mechanism"] == "scale-to-zero" and record["replicas_before"] == 2 and record["platform"] == "kubernetes"
    assert inj.apply(0).detail["scaled_from"] == 2 and t.replicas["feature-store"] == 0
    ev = inj.recover(0)
    assert ev.ok and t.replicas["feature-store"] == 2
    assert t.calls == [("stop_member", "deploy-feature-store"), ("start_member", ("deploy-feature-store", 2))]


def test_local_feature_store_kill_stops_and_restarts_the_redis_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(featurestore, "_redis_rows", lambda url: 569)  # no Redis here: the row count is all it reads
    t = FakeTarget()
    inj = make_injector(_spec("feature-store-outage", FeatureStoreOutageParams(mode="kill")), t, FaultContext())
    record = inj.undo_record(0)
    assert record["member"] == "redis" and record["pid"] == 1000 and record["rows_before"] == 569
    assert inj.apply(0).ok and "redis" in t.down
    assert inj.recover(0).ok
    assert "redis" not in t.down and t.calls == [("stop_member", "redis"), ("start_member", ("redis", None))]


def test_node_failure_picks_the_busiest_worker_and_the_guard_comes_first() -> None:
    nodes = [{"name": "cp", "control_plane": True, "pods": 9}, {"name": "w1", "control_plane": False, "pods": 2},
             {"name": "w2", "control_plane": False, "pods": 5}]
    t = FakeTarget(platform="kubernetes", node_list=nodes, refuse="not connected")
    inj = make_injector(_spec("node-failure", NodeFailureParams()), t, FaultContext())
    assert isinstance(inj, NodeFailure) and inj.resolve_node() == "w2"
    with pytest.raises(TargetError, match="not connected"):
        inj.apply(0)


def test_container_failure_pause_records_the_containers_then_unpauses_them_on_recover() -> None:
    from chaosml.faults.containerfailure import ContainerFailureParams

    t = FakeTarget(platform="kubernetes")
    params = ContainerFailureParams(action="pause", mode="fixed", value=2, ready_timeout_s=0)
    inj = make_injector(_spec("container-failure", params), t, FaultContext(seed=3))
    record = inj.undo_record(0)
    assert record["action"] == "pause" and record["replicas"] == 3 and record["chosen"] == 2
    pods = [c["pod"] for c in record["containers"]]
    assert len(pods) == 2 and {c["container_id"] for c in record["containers"]} == {f"docker://{p}" for p in pods}
    ev = inj.apply(0)
    assert ev.ok and ev.targets == tuple(pods) and t.paused == {f"docker://{p}" for p in pods}
    rec = inj.recover(0)
    assert rec.ok and not t.paused and [p["pod"] for p in rec.detail["pods"]] == pods
    assert t.calls == [("container_fault", (pods, "pause", "SIGKILL")), ("unpause_containers", pods)]


def test_container_failure_refuses_a_container_no_runtime_path_reaches_before_applying() -> None:
    # changed by issue 13 item 4: containerd:// (kind) is now reached through ctr; another runtime is still refused
    t = FakeTarget(platform="kubernetes", container_ids={"model-0": "cri-o://abc", "model-1": "cri-o://def",
                                                         "model-2": "cri-o://123"})
    from chaosml.faults.containerfailure import ContainerFailureParams

    inj = make_injector(_spec("container-failure", ContainerFailureParams()), t, FaultContext())
    with pytest.raises(TargetError, match=r"runs on cri-o \(cri-o://.*\).*Docker engine.*containerd"):
        inj.undo_record(0)
    assert t.calls == []


def test_container_failure_records_the_runtime_path_of_each_container() -> None:
    t = FakeTarget(platform="kubernetes", container_ids={"model-0": "containerd://abc", "model-1": "containerd://def",
                                                         "model-2": "docker://123"})
    from chaosml.faults.containerfailure import ContainerFailureParams

    inj = make_injector(_spec("container-failure", ContainerFailureParams(mode="all")), t, FaultContext())
    record = inj.undo_record(0)
    assert {c["pod"]: c["runtime"] for c in record["containers"]} == {
        "model-0": "containerd through `docker exec node-1 ctr -n k8s.io`",
        "model-1": "containerd through `docker exec node-1 ctr -n k8s.io`",
        "model-2": "the Docker engine (DOCKER_HOST or the local socket)"}
    assert all(c["exec"] == [] for c in record["containers"]) and t.calls == []


def test_container_failure_that_kills_nothing_says_why() -> None:
    from chaosml.faults.containerfailure import ContainerFailureParams

    t = FakeTarget(platform="kubernetes", down={"model-0", "model-1", "model-2"})
    inj = make_injector(_spec("container-failure", ContainerFailureParams(ready_timeout_s=0)), t, FaultContext())
    ev = inj.apply(0)
    assert not ev.ok and ev.no_effect == "killed no container: 0 of 3 pods running"


def test_adversarial_payload_needs_no_target_capability(tmp_path: Any) -> None:
    from chaosml.faults.adversarial import AdversarialPayloadParams

    inj = make_injector(_spec("adversarial-payload", AdversarialPayloadParams("type-confusion", 0.5)), object(),
                        FaultContext(run_dir=tmp_path))
    assert inj.apply(0).ok and (tmp_path / "load-control.json").exists()
    assert inj.recover(0).ok and not (tmp_path / "load-control.json").exists()


def test_node_failure_runs_the_nodes_own_commands_and_undo_runs_start_from_the_record(tmp_path: Any) -> None:
    """A real node (no kind container): stop on apply, start on recover and in the offline undo (record alone)."""
    from chaosml.faults.nodefailure import undo

    log = tmp_path / "log"
    stop, start = ("sh", "-c", f"echo stop >> {log}"), ("sh", "-c", f"echo start >> {log}")
    t = FakeTarget(platform="kubernetes", commands={"n2": (stop, start)},
                   node_list=[{"name": "n2", "control_plane": False, "pods": 1}])
    inj = make_injector(_spec("node-failure", NodeFailureParams(node="n2", ready_timeout_s=0)), t, FaultContext())
    record = inj.undo_record(0)
    assert record["mechanism"] == "commands" and record["start"] == list(start) and "container" not in record
    assert inj.apply(0).ok and log.read_text() == "stop\n"
    assert inj.recover(0).ok and log.read_text() == "stop\nstart\n"
    assert undo(record).startswith("node-failure of n2: start command run") and log.read_text() == "stop\nstart\nstart\n"


def test_node_failure_whose_stop_command_fails_is_no_effect() -> None:
    t = FakeTarget(platform="kubernetes", commands={"n2": (("false",), ("true",))})
    inj = make_injector(_spec("node-failure", NodeFailureParams(node="n2", ready_timeout_s=0)), t, FaultContext())
    ev = inj.apply(0)
    assert not ev.ok and ev.no_effect == "failed no node: the stop command failed (exit 1: )"


def test_container_failure_on_cluster_names_the_runtime_path_of_each_running_pod() -> None:
    from chaosml.faults import containerfailure
    from chaosml.faults.containerfailure import ContainerFailureParams

    t = FakeTarget(platform="kubernetes", container_ids={"model-0": "containerd://a", "model-1": "docker://b",
                                                         "model-2": "cri-o://c"})
    text = containerfailure.on_cluster(_spec("container-failure", ContainerFailureParams()), t, [])
    assert text == (
        "1 of 3 pods matching 'app=model' per injection, chosen at apply among the running: model-0, model-1, model-2; "
        "runtime: containerd through `docker exec node-1 ctr -n k8s.io` (model-0); "
        "the Docker engine (DOCKER_HOST or the local socket) (model-1); "
        "refused (pod model-2: its container runs on cri-o (cri-o://c); container faults reach containers through their "
        "node's Docker engine (docker://, dockershim) or containerd (containerd://, e.g. kind), so this node is not "
        "supported) (model-2)")
    assert t.calls == []


def test_container_failure_blast_radius_says_the_runtime_path_per_id_scheme_with_the_nodes_configured() -> None:
    from chaosml.faults.containerfailure import ContainerFailureParams, blast_radius
    from chaosml.model.experiment import KubernetesSpec, NodeAccessSpec, TargetSpec

    f = _spec("container-failure", ContainerFailureParams(action="pause"))
    kind = TargetSpec(platform="kubernetes", kubernetes=KubernetesSpec())
    assert blast_radius(f, kind, None).description.endswith(
        "reached by container ID: docker:// through the node's Docker engine (DOCKER_HOST or the local socket), "
        "containerd:// with `ctr -n k8s.io` run by `docker exec <node>` (kind)")
    nodes = {"n1": NodeAccessSpec(exec=("ssh", "node 1")), "n2": NodeAccessSpec(docker_host="ssh://root@n2")}
    listed = TargetSpec(platform="kubernetes", kubernetes=KubernetesSpec(nodes=nodes))
    assert blast_radius(f, listed, None).description.endswith(
        "reached by container ID: docker:// through the node's Docker engine (n2: ssh://root@n2; else DOCKER_HOST or the "
        "local socket), containerd:// with `ctr -n k8s.io` run by n1: `ssh 'node 1'`; else `docker exec <node>` (kind)")
