"""node-failure against a REAL Docker engine (a stand-in "kind node" container), and rescheduling on the
control plane when a node is lost (the simulated kubelet's node paused in step with the container).

The engine comes from tests/k8s/start-docker.sh (installs Debian's docker.io when missing and starts
dockerd; idempotent). The stand-in node image is made with `docker import` from a tar holding
Debian's busybox-static binary; it runs `sleep` with no network. Skipped with the reason when no
engine can run here.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import deploy_stack, events_of, fault, make_target, wait_for

from chaosml.errors import TargetError
from chaosml.faults.base import make_injector, undo_fault
from chaosml.faults.nodefailure import NodeFailureParams

pytestmark = pytest.mark.k8s
HERE = Path(__file__).resolve().parent
NODE_IMAGE = "chaosml/fake-kind-node:busybox"
SECOND_NODE = "chaosml-worker2"


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[Any]:
    try:
        import docker
    except ImportError:
        pytest.skip("the docker Python SDK is not installed (pip install 'chaosml[kubernetes]')")
    proc = subprocess.run(["bash", str(HERE / "start-docker.sh")], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        pytest.skip(f"no Docker engine can run here: {proc.stderr.strip()[-400:]}")
    host = next(ln.split("=", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("DOCKER_HOST="))
    client = docker.DockerClient(base_url=host, timeout=60)
    try:
        client.ping()
    except Exception as e:  # noqa: BLE001 - skip with the reason
        pytest.skip(f"the Docker engine does not answer: {e}")
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.skip("/bin/busybox (Debian's busybox-static) is missing")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(str(busybox), arcname="bin/busybox")
    client.api.import_image_from_data(buf.getvalue(), repository=NODE_IMAGE.split(":")[0], tag=NODE_IMAGE.split(":")[1])
    before = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = host  # the engine the script found or started (chaosml's node-failure fault reads it too)
    try:
        yield client
    finally:
        client.close()
        if before is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = before


def run_node(client: Any, name: str) -> Any:
    """A stand-in kind node container named like the node (removed first if left over)."""
    import docker.errors

    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.NotFound:
        pass
    return client.containers.run(NODE_IMAGE, ["/bin/busybox", "sleep", "3600"], name=name, detach=True,
                                 network_mode="none", labels={"chaosml.io/test": "node-failure"})


def status(client: Any, name: str) -> str:
    c = client.containers.get(name)
    return str(c.attrs["State"]["Status"])


@pytest.mark.parametrize(("action", "down_state"), [("pause", "paused"), ("stop", "exited")])
def test_node_failure_apply_recover_and_offline_undo(
    docker_engine: Any, control_plane: Any, k8s_namespace: str, action: str, down_state: str
) -> None:
    node = f"chaosml-fake-{uuid.uuid4().hex[:6]}"
    container = run_node(docker_engine, node)
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        params = NodeFailureParams(node=node, action=action, ready_timeout_s=0)
        inj = make_injector(fault("lose-node", "node-failure", params), target)
        record = inj.undo_record(0)
        assert record["container"] == node and record["state_before"] == "running" and record["action"] == action
        ev = inj.apply(0)
        assert ev.ok and ev.detail["state"] == down_state and status(docker_engine, node) == down_state
        rec = inj.recover(0)
        assert rec.ok and status(docker_engine, node) == "running", rec.detail
        assert inj.recover(0).ok  # twice is safe

        # a crashed harness: apply, lose the injector, undo from the (JSON) record alone
        inj2 = make_injector(fault("lose-node", "node-failure", params), target)
        rec2 = json.loads(json.dumps(inj2.undo_record(0)))
        inj2.apply(0)
        del inj2
        assert status(docker_engine, node) == down_state
        summary = undo_fault("node-failure", rec2)
        assert summary == f"node-failure {action} of {node}: container {node} {'unpaused' if action == 'pause' else 'started'}"
        assert status(docker_engine, node) == "running"
        assert undo_fault("node-failure", rec2).endswith("already running")  # idempotent
    finally:
        target.stop()
        container.remove(force=True)


def test_node_failure_refuses_a_missing_container(docker_engine: Any, control_plane: Any, k8s_namespace: str) -> None:
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 2})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        inj = make_injector(fault("lose-node", "node-failure", NodeFailureParams(node="no-such-node-xyz")), target)
        with pytest.raises(TargetError, match="no Docker container named 'no-such-node-xyz'"):
            inj.undo_record(0)
    finally:
        target.stop()


def test_lost_node_pods_are_rescheduled_on_the_other_worker(
    docker_engine: Any, control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """node: worker picks the worker running most pods; its container is paused and the simulated
    kubelet's node paused in step; the node controller taints it, the pods are evicted (10 s
    toleration from manifests/stack.yaml) and the ReplicaSets reschedule them on the second node."""
    kubelet = control_plane.kubelet
    kubelet.add_node(SECOND_NODE)
    deploy_stack(control_plane, k8s_namespace, replicas={"model": 3})
    target = make_target(control_plane, k8s_namespace)
    target.start()
    victim_node = None
    container = None
    try:
        inj = make_injector(fault("lose-a-worker", "node-failure", NodeFailureParams(node="worker", action="pause", ready_timeout_s=30)),
                            target)
        victim_node = inj.resolve_node()
        container = run_node(docker_engine, victim_node)
        on_victim = {p.metadata.name for g in ("model", "feature-store", "gateway", "proxy") for p in target.pods(g)
                     if p.spec.node_name == victim_node}
        assert on_victim, "the chosen worker runs pods of the stack"
        record = inj.undo_record(0)
        assert record["node"] == victim_node
        assert inj.apply(0).ok and status(docker_engine, victim_node) == "paused"
        kubelet.pause_node(victim_node)

        def all_moved() -> bool:
            return all(
                target.wait_group_ready(g, 0) and all(p.spec.node_name != victim_node for p in target.pods(g)
                                                      if p.metadata.deletion_timestamp is None)
                for g in ("model", "feature-store", "gateway", "proxy")
            )

        wait_for(all_moved, 90, "every group Ready again off the lost node", interval=0.5)
        for name in on_victim:
            wait_for(lambda n=name: events_of(target, "pod_replaced", n), 30, f"{name} replaced")
        moved = [e.detail for e in events_of(target, "pod_replaced") if e.subject in on_victim]
        assert all(d["victim_node"] == victim_node and d["node"] != victim_node and d["deletion"] == "observed" for d in moved)
        kubelet.resume_node(victim_node)
        rec = inj.recover(0)
        assert rec.ok and rec.detail["node_ready"] is True and status(docker_engine, victim_node) == "running"
        worst = max(moved, key=lambda d: d["ready_s"])
        with capsys.disabled():
            print(f"\nnode-failure: {len(moved)} pod(s) moved off {victim_node}; per pod (from eviction): "
                  f"created +{worst['created_s']}s, scheduled +{worst['scheduled_s']}s, Ready +{worst['ready_s']}s")
    finally:
        if victim_node is not None and kubelet.is_paused(victim_node):
            kubelet.resume_node(victim_node)
        target.stop()
        if container is not None:
            container.remove(force=True)
