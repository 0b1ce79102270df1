"""The kubernetes target's pod watch fed synthetic watch events (no cluster): which victim a replacement pod is paired with."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

pytest.importorskip("kubernetes")

from kubernetes.client import (  # noqa: E402
    V1ContainerStatus,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
)

from chaosml.targets.kubernetes.watch import PodWatch, pod_owner  # noqa: E402

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _pod(name: str, rs: str | None, *, ready: bool = True, deleting: bool = False, template_hash: str | None = None,
         node: str | None = "127.0.0.1", restarts: int = 0, cid: str | None = None) -> V1Pod:
    labels = {"app": "model", **({"pod-template-hash": template_hash} if template_hash else {})}
    owners = [V1OwnerReference(api_version="apps/v1", kind="ReplicaSet", name=rs, uid=f"uid-{rs}", controller=True)] if rs else None
    return V1Pod(
        metadata=V1ObjectMeta(name=name, uid=f"uid-{name}", labels=labels, owner_references=owners,
                              deletion_timestamp=NOW if deleting else None),
        spec=V1PodSpec(containers=[], node_name=node),
        status=V1PodStatus(phase="Running" if node else "Pending",
                           conditions=[V1PodCondition(type="Ready", status="True" if ready else "False")],
                           container_statuses=[V1ContainerStatus(name="model", image="i", image_id="", ready=ready,
                                                                 restart_count=restarts, container_id=cid)]),
    )


class _Watch:
    def __init__(self, initial: list[V1Pod]) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.w = PodWatch("ns", emit=lambda k, s, d, t: self.events.append((k, s, d)),
                          group_of=lambda labels: labels.get("app"), check_context=lambda: None)
        self.w._sync(initial, initial=True)

    def on(self, etype: str, pod: V1Pod) -> None:
        self.w._on_pod(etype, pod)

    def replaced(self) -> dict[str, str]:
        return {s: d["replacement"] for k, s, d in self.events if k == "pod_replaced"}


def test_a_replacement_is_paired_with_the_victim_of_its_own_replicaset() -> None:
    """Two Deployments behind one app label (or a rollout): the victims belong to different ReplicaSets, and the
    second victim's ReplicaSet replaces first. FIFO per group paired it with the first victim."""
    a, b = _pod("model-a-1", "model-a"), _pod("model-b-1", "model-b")
    w = _Watch([a, b])
    w.w.deletion_requested(a, "model", 1.0)
    w.w.deletion_requested(b, "model", 2.0)
    new_b = _pod("model-b-2", "model-b", ready=False, node=None)
    w.on("ADDED", new_b)
    w.on("MODIFIED", _pod("model-b-2", "model-b"))
    assert w.replaced() == {"model-b-1": "model-b-2"}
    w.on("ADDED", _pod("model-a-2", "model-a", ready=False, node=None))
    w.on("MODIFIED", _pod("model-a-2", "model-a"))
    assert w.replaced() == {"model-b-1": "model-b-2", "model-a-1": "model-a-2"}
    created = {s: d["replaces"] for k, s, d in w.events if k == "pod_created"}
    assert created == {"model-b-2": "model-b-1", "model-a-2": "model-a-1"}


def test_a_pod_terminating_before_the_watch_is_no_victim() -> None:
    """A pod of an earlier kill still terminating when the run starts goes away during the run: it must not take the
    replacement of the pod chaosml kills (same ReplicaSet), and it is not reported as replaced."""
    old = _pod("model-1", "model-rs", ready=False, deleting=True)
    live = _pod("model-2", "model-rs")
    w = _Watch([old, live])
    w.on("DELETED", old)
    w.w.deletion_requested(live, "model", 5.0)
    w.on("MODIFIED", _pod("model-2", "model-rs", ready=False, deleting=True))
    w.on("ADDED", _pod("model-3", "model-rs", ready=False))
    w.on("MODIFIED", _pod("model-3", "model-rs"))
    assert w.replaced() == {"model-2": "model-3"}
    assert ("pod_deleted", "model-1") in [(k, s) for k, s, _ in w.events]


def test_victims_of_one_replicaset_are_paired_oldest_first() -> None:
    """mode all: every victim has the same owner; each replacement takes one victim, none twice."""
    pods = [_pod(f"model-{i}", "model-rs") for i in range(3)]
    w = _Watch(pods)
    for i, p in enumerate(pods):
        w.w.deletion_requested(p, "model", float(i))
    for i in range(3):
        w.on("ADDED", _pod(f"model-new-{i}", "model-rs", ready=False))
    for i in (2, 0, 1):
        w.on("MODIFIED", _pod(f"model-new-{i}", "model-rs"))
    assert w.replaced() == {"model-0": "model-new-0", "model-1": "model-new-1", "model-2": "model-new-2"}


def test_pod_owner_is_the_controller_else_the_template_hash() -> None:
    assert pod_owner(_pod("m", "model-5d9c")) == "ReplicaSet/model-5d9c"
    assert pod_owner(_pod("m", None, template_hash="5d9c")) == "pod-template-hash/5d9c"
    assert pod_owner(_pod("m", None)) is None


def test_a_killed_container_is_followed_to_ready_again_with_ids_and_restarts() -> None:
    """container-failure: readiness lost, the kubelet's restart (new container ID, restartCount + 1), Ready again."""
    pod = _pod("model-1", "model-rs", cid="docker://aaa")
    w = _Watch([pod])
    w.w.container_fault("model-1", "docker://aaa", "kill", 0, time.time())
    w.on("MODIFIED", _pod("model-1", "model-rs", ready=False, cid="docker://aaa"))
    w.on("MODIFIED", _pod("model-1", "model-rs", ready=False, restarts=1, cid="docker://bbb"))
    assert not [e for e in w.events if e[0] == "container_recovered"]
    w.on("MODIFIED", _pod("model-1", "model-rs", restarts=1, cid="docker://bbb"))
    (rec,) = [d for k, s, d in w.events if k == "container_recovered" and s == "model-1"]
    assert rec["action"] == "kill" and rec["container_id"] == "docker://aaa" and rec["container_ids"] == {"model": "docker://bbb"}
    assert rec["restarts_before"] == 0 and rec["restarts"] == 1
    assert rec["unready_s"] is not None and rec["restarted_s"] is not None
    assert 0 <= rec["unready_s"] <= rec["restarted_s"] <= rec["ready_s"] < 60
    (restarted,) = [d for k, s, d in w.events if k == "container_restarted"]
    assert restarted["previous_container_ids"] == {"model": "docker://aaa"} and restarted["container_ids"] == {"model": "docker://bbb"}


def test_a_paused_container_that_never_lost_readiness_gives_no_recovery() -> None:
    """Paused shorter than the readiness probe notices: nothing happened to the pod, so no recovery is claimed."""
    w = _Watch([_pod("model-1", "model-rs", cid="docker://aaa")])
    w.w.container_fault("model-1", "docker://aaa", "pause", 0, time.time())
    w.on("MODIFIED", _pod("model-1", "model-rs", cid="docker://aaa"))
    assert not [e for e in w.events if e[0] == "container_recovered"]
