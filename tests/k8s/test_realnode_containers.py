"""Container-level failures on a real node, through the node's Docker engine: a killed container is
restarted in place by the kubelet (same pod, restartCount + 1, CrashLoopBackOff back-off from the
second restart on), and a paused container is taken out of the endpoints by its readiness probe and
restarted by its liveness probe. The evidence a container-kill / container-pause fault mode needs."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from k8s_stack import wait_for
from realnode import RealCluster

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


def test_a_killed_container_restarts_in_place_with_back_off(real_cluster: RealCluster, real_stack: str) -> None:
    pod = _model_pod(real_cluster, real_stack)
    node = next(n for n in real_cluster.nodes if n.name == pod.spec.node_name)
    base = _status(real_cluster, real_stack, pod.metadata.name).restart_count
    timings = []
    for i in (1, 2):
        wait_for(lambda: _status(real_cluster, real_stack, pod.metadata.name).ready, 60, "model Ready", interval=0.2)
        cid = _running_container(real_cluster, pod)
        assert _status(real_cluster, real_stack, pod.metadata.name).container_id == f"docker://{cid}"
        t0 = time.monotonic()
        node.docker("kill", cid)
        wait_for(lambda: not _status(real_cluster, real_stack, pod.metadata.name).ready, 30, "model NotReady",
                 interval=0.1)
        unready = time.monotonic() - t0
        wait_for(lambda n=i: _status(real_cluster, real_stack, pod.metadata.name).restart_count == base + n, 60,
                 f"restart {i}", interval=0.1)
        restarted = time.monotonic() - t0
        st = wait_for(lambda: (s := _status(real_cluster, real_stack, pod.metadata.name)).ready and s, 60,
                      f"Ready after restart {i}", interval=0.1)
        timings.append({"unready_s": round(unready, 2), "restarted_s": round(restarted, 2),
                        "ready_s": round(time.monotonic() - t0, 2), "new_container": st.container_id != f"docker://{cid}"})
    print(json.dumps({"container_kill": timings}))
    # the same pod all along (no ReplicaSet replacement); new containers; the second restart waited
    # for the kubelet's back-off (10 s) that the first did not
    assert _model_pod(real_cluster, real_stack).metadata.uid == pod.metadata.uid
    assert all(t["new_container"] for t in timings)
    assert timings[1]["restarted_s"] > timings[0]["restarted_s"] + 5, timings


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
