"""container-failure on containerd through the kubernetes target: a fake pod list whose pods' containers are
``containerd://`` containers of a real containerd, reached through ``target.kubernetes.nodes.<node>.exec``; pause,
recover, the offline rollback from the ledger's record alone (``chaosml rollback``), and kill."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from containerd_node import Containerd, containerd  # noqa: F401 - the fixture

from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.faults.containerfailure import ContainerFailureParams
from chaosml.ledger import Ledger
from chaosml.model.experiment import FaultSpec, KubernetesSpec, NodeAccessSpec
from chaosml.rollback import rollback

pytest.importorskip("kubernetes")
from kubernetes.client import (  # noqa: E402 - after the skip
    V1Container,
    V1ContainerStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
)

from chaosml.targets.kubernetes import KubernetesTarget  # noqa: E402
from chaosml.targets.kubernetes.context import IN_CLUSTER_CONTEXT  # noqa: E402

NS = "chaosml"
NODE = "ctrd-node"


def _pod(name: str, cid: str) -> V1Pod:
    return V1Pod(
        metadata=V1ObjectMeta(name=name, uid=f"uid-{name}", labels={"app": "model"}),
        spec=V1PodSpec(containers=[V1Container(name="main")], node_name=NODE),
        status=V1PodStatus(phase="Running", conditions=[V1PodCondition(type="Ready", status="True")],
                           container_statuses=[V1ContainerStatus(name="main", image="i", image_id="", ready=True,
                                                                 restart_count=0, container_id=f"containerd://{cid}")]),
    )


class _Core:
    """The two CoreV1Api reads container-failure makes, from a fixed pod list."""

    def __init__(self, pods: list[V1Pod]) -> None:
        self.pods = {p.metadata.name: p for p in pods}

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", _request_timeout: Any = None) -> Any:
        return SimpleNamespace(items=list(self.pods.values()))

    def read_namespaced_pod(self, name: str, namespace: str, _request_timeout: Any = None) -> V1Pod:
        return self.pods[name]


def _target(c: Containerd, pods: list[V1Pod]) -> KubernetesTarget:
    """A KubernetesTarget 'connected' to the fake pod list (in-cluster: no kubeconfig to re-check), node NODE's
    containerd reached through the exec prefix ``env CONTAINERD_ADDRESS=<sock>``."""
    t = KubernetesTarget(KubernetesSpec(namespace=NS, nodes={NODE: NodeAccessSpec(exec=tuple(c.prefix))}))
    t._core = _Core(pods)
    t._cluster = object()  # type: ignore[assignment]
    t._facts = {"context": IN_CLUSTER_CONTEXT}
    return t


def _spec(params: ContainerFailureParams) -> FaultSpec:
    return FaultSpec(name="freeze", type="container-failure", at=0.0, duration=1.0, params=params)


@pytest.mark.slow
def test_pause_through_the_fault_then_recover_and_offline_rollback(containerd: Containerd, tmp_path: Path) -> None:  # noqa: F811
    pods = [_pod("model-0", containerd.run("m0", "model-0", NS)), _pod("model-1", containerd.run("m1", "model-1", NS))]
    t = _target(containerd, pods)
    inj = make_injector(_spec(ContainerFailureParams(action="pause", mode="all")), t, FaultContext(seed=1))
    record = inj.undo_record(0)
    prefix = " ".join(containerd.prefix)
    assert [(c["pod"], c["exec"], c["runtime"]) for c in record["containers"]] == [
        (p, containerd.prefix, f"containerd through `{prefix} ctr -n k8s.io`") for p in ("model-0", "model-1")]
    ev = inj.apply(0)
    assert ev.ok and [r["state"] for r in ev.detail["containers"]] == ["paused", "paused"]
    assert containerd.status("m0") == containerd.status("m1") == "PAUSED"
    rec = inj.recover(0)
    assert rec.ok and len(rec.detail["unpaused"]) == 2
    assert containerd.status("m0") == containerd.status("m1") == "RUNNING"
    # the run died with the containers paused: `chaosml rollback` resumes them from the ledger's record alone
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.open(run_id="r", run_dir=tmp_path, kind="fault", type="container-failure", record=record, fault="freeze",
                injection=0)
    inj.apply(0)
    assert containerd.status("m0") == containerd.status("m1") == "PAUSED"
    entry = json.loads(ledger.path.read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entry["harness_pid"], entry["harness_start"] = dead.pid, 1  # the harness is gone: the entry is stale
    ledger.path.write_text(json.dumps(entry) + "\n")
    report = rollback(ledger)
    assert report.failed == [] and len(report.undone) == 1, report
    assert report.undone[0].endswith("container-failure pause: container containerd://m0 of model-0 unpaused; "
                                     "container containerd://m1 of model-1 unpaused")
    assert containerd.status("m0") == containerd.status("m1") == "RUNNING"
    assert undo_fault("container-failure", record).count("is running: nothing to unpause") == 2  # idempotent


def test_kill_through_the_fault_stops_the_task_and_refuses_another_pods_container(containerd: Containerd) -> None:  # noqa: F811
    stranger = containerd.run("s0", "other", "elsewhere")
    pods = [_pod("model-0", containerd.run("k0", "model-0", NS)), _pod("model-1", stranger)]  # model-1's ID is stale
    t = _target(containerd, pods)
    ev = make_injector(_spec(ContainerFailureParams(action="kill", mode="all")), t, FaultContext()).apply(0)
    by_pod = {r["pod"]: r for r in ev.detail["containers"]}
    assert not ev.ok  # one of the two chosen containers was not touched
    assert "error" not in by_pod["model-0"] and containerd.wait_status("k0", "STOPPED") == "STOPPED"
    assert "belongs to elsewhere/other, not chaosml/model-1: not touched" in by_pod["model-1"]["error"]
    assert containerd.status(stranger) == "RUNNING"
    assert [e.kind for e in t.events] == ["container_killed", "container_killed"]
