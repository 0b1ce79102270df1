"""Container-level failures on a real node, through the node's Docker engine: a killed container is
restarted in place by the kubelet (same pod, restartCount + 1, CrashLoopBackOff back-off from the
second restart on), and a paused container is taken out of the endpoints by its readiness probe and
restarted by its liveness probe; the pause first by hand (docker pause), then both as chaosml's
container-failure fault through `chaosml run` (the kill run also followed by the test on its own), and its
offline undo (unpause from the record alone)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import wait_for
from realnode import RealCluster
from realnode_run import RUN_TIMEOUT_S, chaosml_run, events, experiment

pytestmark = [pytest.mark.k8s, pytest.mark.realnode]


def _model_pod(cluster: RealCluster, ns: str) -> Any:
    pods = [p for p in cluster.core_v1().list_namespaced_pod(ns, label_selector="app=model").items
            if p.metadata.deletion_timestamp is None]
    return pods[0]


def _status(cluster: RealCluster, ns: str, name: str) -> Any:
    return cluster.core_v1().read_namespaced_pod(name, ns).status.container_statuses[0]


def _running_container(cluster: RealCluster, pod: Any) -> str:
    node = next(n for n in cluster.nodes if n.name == pod.spec.node_name)
    out = node.docker("ps", "-q", "--no-trunc", "--filter", f"label=io.kubernetes.pod.uid={pod.metadata.uid}",
                      "--filter", f"label=io.kubernetes.container.name={pod.spec.containers[0].name}").stdout.split()
    assert len(out) == 1, out
    return out[0]


def test_a_paused_container_is_unready_then_restarted_by_its_liveness_probe(
    real_cluster: RealCluster, real_stack: str
) -> None:
    pod = _model_pod(real_cluster, real_stack)
    node = next(n for n in real_cluster.nodes if n.name == pod.spec.node_name)
    wait_for(lambda: _status(real_cluster, real_stack, pod.metadata.name).ready, 60, "model Ready", interval=0.2)
    base = _status(real_cluster, real_stack, pod.metadata.name).restart_count
    cid = _running_container(real_cluster, pod)
    t0 = time.monotonic()
    node.docker("pause", cid)
    try:
        wait_for(lambda: not _status(real_cluster, real_stack, pod.metadata.name).ready, 30, "model NotReady",
                 interval=0.1)
        unready = time.monotonic() - t0
        # liveness: httpGet /healthz every 5 s, 3 failures (manifests/stack.yaml)
        wait_for(lambda: _status(real_cluster, real_stack, pod.metadata.name).restart_count == base + 1, 60,
                 "the liveness restart", interval=0.1)
        restarted = time.monotonic() - t0
        wait_for(lambda: _status(real_cluster, real_stack, pod.metadata.name).ready, 60, "Ready again", interval=0.1)
        ready = time.monotonic() - t0
    finally:
        if node.docker("inspect", "-f", "{{.State.Paused}}", cid, check=False).stdout.strip() == "true":
            node.docker("unpause", cid)
    print(json.dumps({"container_pause": {"unready_s": round(unready, 2), "restarted_s": round(restarted, 2),
                                          "ready_s": round(ready, 2)}}))
    assert unready < 5 and 10 < restarted < 40, (unready, restarted)
    assert _model_pod(real_cluster, real_stack).metadata.uid == pod.metadata.uid


def _wait_model_ready(cluster: RealCluster, ns: str) -> Any:
    """The model pod, Ready, with no terminating one left (earlier tests kill and pause it)."""
    def ready() -> Any:
        pods = cluster.core_v1().list_namespaced_pod(ns, label_selector="app=model").items
        ok = len(pods) == 1 and pods[0].metadata.deletion_timestamp is None and pods[0].status.container_statuses \
            and pods[0].status.container_statuses[0].ready
        return pods[0] if ok else None

    return wait_for(ready, 120, "the model pod Ready", interval=0.5)


def _fresh_model_pod(cluster: RealCluster, ns: str) -> Any:
    """A new model pod: the kubelet's restart back-off belongs to a pod, and the tests above restarted this one."""
    old = _wait_model_ready(cluster, ns)
    cluster.core_v1().delete_namespaced_pod(old.metadata.name, ns, grace_period_seconds=0)
    return wait_for(lambda: (p := _wait_model_ready(cluster, ns)).metadata.uid != old.metadata.uid and p, 120,
                    "a new model pod Ready", interval=0.5)


def _observe(cluster: RealCluster, ns: str, name: str, stop: threading.Event, seen: list[tuple[float, bool, int, str]]) -> None:
    """Every change of the pod's (ready, restartCount, containerID), polled from the API every 0.1 s, with its wall
    clock time (the journal's clock), until ``stop`` (bounded by the run's timeout)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not stop.is_set() and time.monotonic() < deadline:
        st = _status(cluster, ns, name)
        now = time.time()
        if not seen or seen[-1][1:] != (bool(st.ready), st.restart_count, st.container_id):
            seen.append((now, bool(st.ready), st.restart_count, st.container_id))
        stop.wait(0.1)


def test_chaosml_run_container_kill_restarts_in_place_with_back_off(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    """Two kills 12 s apart: the same pod each time, a new container ID, restartCount + 1; the second restart
    waits for the kubelet's back-off. Each step comes from the target's real watch (container_recovered), and the
    test follows the same pod on its own (API polls, the node's engine) during the run: NotReady after each kill,
    restartCount + 1, Ready in a new container, the second restart later by the back-off. (One run: a test that
    killed the container twice by hand, before this one, saw the same.)"""
    pod = _fresh_model_pod(real_cluster, real_stack)
    name = pod.metadata.name
    base = _status(real_cluster, real_stack, name).restart_count
    assert _status(real_cluster, real_stack, name).container_id == f"docker://{_running_container(real_cluster, pod)}"
    path = experiment(tmp_path, real_cluster, real_stack, "container-kill", [
        {"name": "kill-model-container", "type": "container-failure", "at": "6s", "duration": "10s",
         "repeat": {"count": 2, "every": "12s"}, "params": {"service": "model", "action": "kill"}}], "50s")
    seen: list[tuple[float, bool, int, str]] = []
    stop = threading.Event()
    observer = threading.Thread(target=_observe, args=(real_cluster, real_stack, name, stop, seen), daemon=True)
    observer.start()
    try:
        journal = chaosml_run(real_cluster, tmp_path, path)
    finally:
        stop.set()
        observer.join(timeout=30)
    applies = [e for e in journal["fault_events"] if e["action"] == "apply"]
    assert [e["ok"] for e in applies] == [True, True], applies
    killed = [e["detail"]["containers"][0] for e in applies]
    assert all(k["pod"] == pod.metadata.name and k["container_id"].startswith("docker://") for k in killed), killed
    recovered = events(journal, "container_recovered")
    assert [e["subject"] for e in recovered] == [pod.metadata.name] * 2, json.dumps(journal["target_events"])[-4000:]
    first, second = (e["detail"] for e in recovered)
    for d, k in ((first, killed[0]), (second, killed[1])):
        assert d["action"] == "kill" and d["container_id"] == k["container_id"] and d["restarts"] == d["restarts_before"] + 1
        assert d["container_ids"]["model"] != d["container_id"], d
        assert 0 <= d["unready_s"] <= d["restarted_s"] <= d["ready_s"] < 60, d
    assert second["container_id"] == first["container_ids"]["model"]  # the second kill hit the restarted container
    assert second["restarted_s"] > first["restarted_s"] + 5, (first, second)  # CrashLoopBackOff: 10 s before restart 2
    assert not events(journal, "pod_replaced")  # no ReplicaSet replacement: the pod stayed
    # the test's own view of the same pod: after each kill NotReady, restartCount + 1, Ready in a new container
    timings = []
    for i, (apply, k) in enumerate(zip(applies, killed), start=1):
        after = [o for o in seen if o[0] >= apply["t"]]
        unready = next((o for o in after if not o[1]), None)
        restarted = next((o for o in after if o[2] == base + i), None)
        ready = next((o for o in after if o[1] and o[2] == base + i), None)
        assert unready and restarted and ready, (i, seen)
        assert unready[0] <= restarted[0] <= ready[0] and ready[3] != k["container_id"], (i, seen)
        timings.append({"unready_s": round(unready[0] - apply["t"], 2), "restarted_s": round(restarted[0] - apply["t"], 2),
                        "ready_s": round(ready[0] - apply["t"], 2)})
    assert timings[1]["restarted_s"] > timings[0]["restarted_s"] + 5, timings  # the back-off, seen by the test too
    after_run = _model_pod(real_cluster, real_stack)
    assert after_run.metadata.uid == pod.metadata.uid  # the same pod all along
    assert _status(real_cluster, real_stack, name).container_id == f"docker://{_running_container(real_cluster, after_run)}"
    print(json.dumps({"container_kill": [{k: d[k] for k in ("unready_s", "restarted_s", "ready_s", "restarts")}
                                         for d in (first, second)], "container_kill_polled": timings}))


def test_chaosml_run_container_pause_is_unready_then_ready_after_unpause(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    """Paused 8 s (shorter than the liveness probe's 3 x 5 s): the readiness probe takes it out, recover unpauses,
    it is Ready again without a restart."""
    pod = _wait_model_ready(real_cluster, real_stack)
    path = experiment(tmp_path, real_cluster, real_stack, "container-pause", [
        {"name": "freeze-model", "type": "container-failure", "at": "6s", "duration": "8s",
         "params": {"service": "model", "action": "pause", "ready_timeout_s": "30s"}}], "25s")
    journal = chaosml_run(real_cluster, tmp_path, path)
    (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
    (recover,) = [e for e in journal["fault_events"] if e["action"] == "recover"]
    assert apply["ok"] and apply["detail"]["containers"][0]["state"] == "paused", apply
    assert recover["ok"] and "unpaused" in recover["detail"]["unpaused"][0], recover
    assert recover["detail"]["pods"][0]["ready"], recover
    (d,) = [e["detail"] for e in events(journal, "container_recovered") if e["subject"] == pod.metadata.name]
    assert d["action"] == "pause" and d["restarted_s"] is None and d["restarts"] == d["restarts_before"], d
    # Ready only after the unpause: recover starts (and unpauses) at its scheduled +8 s from the plan's clock,
    # which is less than 8 s after the apply's own time when choosing the pod took a while (CI: ready +7.97 s)
    unpause_s = recover["t"] - apply["t"]
    assert 7 < unpause_s <= 8.5, (apply["t"], recover["t"])
    assert 0 < d["unready_s"] < unpause_s <= d["ready_s"] < 30, (unpause_s, d)
    assert [e["subject"] for e in events(journal, "container_unpaused")] == [pod.metadata.name]
    print(json.dumps({"container_pause": {k: d[k] for k in ("unready_s", "ready_s")}}))


def test_a_paused_container_is_unpaused_offline_from_its_undo_record(real_cluster: RealCluster, real_stack: str) -> None:
    """The harness died after apply: `chaosml rollback` thaws the container from the ledger record alone."""
    from k8s_stack import fault, make_target

    from chaosml.faults.base import make_injector, undo_fault
    from chaosml.faults.containerfailure import ContainerFailureParams
    from chaosml.model.experiment import KubernetesSpec, NodeAccessSpec

    pod = _wait_model_ready(real_cluster, real_stack)
    node = next(n for n in real_cluster.nodes if n.name == pod.spec.node_name)
    spec = KubernetesSpec(namespace=real_stack, nodes={n.name: NodeAccessSpec(f"unix://{n.sock}") for n in real_cluster.nodes})
    target = make_target(real_cluster, real_stack, spec=spec)
    target.start()
    cid = ""
    try:
        try:
            inj = make_injector(fault("freeze", "container-failure", ContainerFailureParams(action="pause")), target)
            record = json.loads(json.dumps(inj.undo_record(0)))  # as the ledger stores it
            cid = record["containers"][0]["container_id"].removeprefix("docker://")
            assert inj.apply(0).ok
            assert node.docker("inspect", "-f", "{{.State.Paused}}", cid).stdout.strip() == "true"
        finally:
            target.stop()
        line = undo_fault("container-failure", record)
        assert node.docker("inspect", "-f", "{{.State.Paused}}", cid).stdout.strip() == "false", line
        assert line == f"container-failure pause: container docker://{cid} of {pod.metadata.name} unpaused"
        assert "nothing to unpause" in undo_fault("container-failure", record)  # idempotent
    finally:  # never leave it paused for the next test
        if cid and node.docker("inspect", "-f", "{{.State.Paused}}", cid, check=False).stdout.strip() == "true":
            node.docker("unpause", cid)
    _wait_model_ready(real_cluster, real_stack)
