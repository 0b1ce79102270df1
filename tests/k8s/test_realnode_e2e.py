"""The reference stack on a real node (real kubelet, real containers, kube-proxy) and `chaosml run`
through the CLI against it: pod-kill with grace 0 and the default grace, one and all replicas,
feature-store outage, network and data faults, node-failure of a second real node (its own
stop/start commands; one run, watched by the test as well)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import wait_for
from overlay import NODE_PORTS, PORTS
from realnode import RealCluster
from realnode_run import RUN_TIMEOUT_S, chaosml_run, events, experiment

pytestmark = [pytest.mark.k8s, pytest.mark.realnode]

ENTRY = f"http://127.0.0.1:{NODE_PORTS['link-gateway']}"


def _predict(url: str) -> int:
    from chaosml.workload.builtin_dataset import load_dataset

    body = json.dumps(load_dataset("breast_cancer", 0).row_payload(0)).encode()
    req = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return int(r.status)


def _pods(cluster: RealCluster, ns: str, app: str) -> list[Any]:
    return list(cluster.core_v1().list_namespaced_pod(ns, label_selector=f"app={app}").items)


def test_stack_runs_in_real_containers_behind_kube_proxy(real_cluster: RealCluster, real_stack: str) -> None:
    core = real_cluster.core_v1()
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {n.name for n in real_cluster.nodes}
    apps = ("redis", "model", "gateway", "toxiproxy")

    def settled() -> bool:  # earlier tests (container kill/pause) may have just restarted a container
        pods = [p for app in apps for p in _pods(real_cluster, real_stack, app)]
        return all(p.metadata.deletion_timestamp is None and p.status.container_statuses
                   and p.status.container_statuses[0].ready for p in pods)

    wait_for(settled, 60, "every pod of the stack Ready", interval=0.5)
    for app in apps:
        for pod in _pods(real_cluster, real_stack, app):
            assert pod.status.pod_ip == pod.spec.node_name, pod.metadata.name  # hostNetwork: the node's 127.0.0.x
            (cs,) = pod.status.container_statuses
            assert cs.ready and cs.container_id.startswith("docker://"), cs
    # entry NodePort -> (kube-proxy) -> proxy link "gateway" -> gateway -> link "model" -> model NodePort -> model
    assert _predict(ENTRY) == 200
    # the proxy API (chaosml's Toxiproxy-compatible proxy) lists the overlay's links
    with urllib.request.urlopen(f"http://127.0.0.1:{NODE_PORTS['proxy-api']}/proxies", timeout=5) as r:
        proxies = json.loads(r.read())
    assert set(proxies) == {"gateway", "model", "feature-store"}
    assert proxies["feature-store"]["upstream"] == f"127.0.0.1:{PORTS['redis']}"


def _container_running(cluster: RealCluster, pod: Any) -> bool:
    node = next(n for n in cluster.nodes if n.name == pod.spec.node_name)
    out = node.docker("ps", "-q", "--filter", f"label=io.kubernetes.pod.uid={pod.metadata.uid}",
                      "--filter", f"label=io.kubernetes.container.name={pod.spec.containers[0].name}").stdout
    return bool(out.strip())


def test_every_container_exits_promptly_on_sigterm(real_cluster: RealCluster, real_stack: str) -> None:
    """A PID 1 that ignores SIGTERM holds its port for the whole grace period: delete each pod with a
    30 s grace period and require its container (in the node's engine) gone well before."""
    core = real_cluster.core_v1()
    took = {}
    for app in ("redis", "model", "gateway", "toxiproxy"):
        pod = _pods(real_cluster, real_stack, app)[0]
        assert _container_running(real_cluster, pod)
        t0 = time.monotonic()
        core.delete_namespaced_pod(pod.metadata.name, real_stack, grace_period_seconds=30)
        wait_for(lambda p=pod: not _container_running(real_cluster, p), 30, f"{app} container stopped", interval=0.1)
        took[app] = round(time.monotonic() - t0, 2)
    assert all(t < 5 for t in took.values()), took
    from chaosml.cluster import wait_available

    api = real_cluster.api_client()
    try:
        wait_available(api, real_stack, 120)
    finally:
        api.close()
    wait_for(lambda: _safe_predict() == 200, 60, "the stack serving again")


def _safe_predict() -> int:
    try:
        return _predict(ENTRY)
    except OSError:
        return 0


@pytest.mark.parametrize("grace", [0, 30], ids=["grace-0", "default-grace-30"])
def test_chaosml_run_pod_kill_on_the_real_node(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path, grace: int
) -> None:
    """grace 0: the pod object goes at once; 30 s (Kubernetes' default): SIGTERM, the app exits at once,
    but the object stays until the kubelet's status sync (~10 s), and with hostNetwork the replica's
    port is a hostPort, so the scheduler holds the replacement until then. The scheduler may miss the old
    pod's deletion and retry only at its 60 s flush of unschedulable pods (kube-scheduler 1.20; one CI run:
    scheduled +58.2 s, so a second kill at +23 s found no pod): grace 30 kills once, in an 80 s run."""
    params: dict[str, Any] = {"service": "model", "mode": "one", "grace_period_s": grace}
    kills = 2 if grace == 0 else 1
    path = experiment(tmp_path, real_cluster, real_stack, f"pod-kill-{grace}", [
        {"name": "kill-model-pod", "type": "pod-kill", "at": "8s", "duration": "10s",
         "repeat": {"count": kills, "every": "15s"}, "params": params}], "35s" if grace == 0 else "80s")
    journal = chaosml_run(real_cluster, tmp_path, path)
    replaced = events(journal, "pod_replaced")
    assert len(replaced) == kills, json.dumps(journal["target_events"], indent=1)[-4000:]
    for e in replaced:
        d = e["detail"]
        # the real watch saw every stage, in order (a replacement the scheduler held until its flush: < 70 s)
        assert 0 <= d["created_s"] <= d["scheduled_s"] <= d["ready_s"] < 70, d
        assert d["node"] in {n.name for n in real_cluster.nodes}, d
    print(json.dumps({"grace": grace, "pod_replaced": [e["detail"] for e in replaced]}, indent=1))


def _scale_model(cluster: RealCluster, ns: str, replicas: int) -> None:
    from kubernetes import client

    from chaosml.cluster import wait_available

    api = cluster.api_client()
    try:
        client.AppsV1Api(api).patch_namespaced_deployment_scale("model", ns, {"spec": {"replicas": replicas}})
        wait_available(api, ns, 120)
    finally:
        api.close()


def test_chaosml_run_pod_kill_all_replicas_on_two_real_nodes(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    """mode all with two replicas (one per node: with hostNetwork the model's port is a hostPort): both pods
    deleted at once, and each gets its own replacement with its own breakdown from the real watch."""
    added = real_cluster.add_node() if len(real_cluster.nodes) == 1 else None
    try:
        _scale_model(real_cluster, real_stack, 2)
        wait_for(lambda: len({p.spec.node_name for p in _pods(real_cluster, real_stack, "model")
                              if p.metadata.deletion_timestamp is None and p.status.container_statuses
                              and p.status.container_statuses[0].ready}) == 2, 120, "a Ready model replica per node",
                 interval=0.5)
        path = experiment(tmp_path, real_cluster, real_stack, "pod-kill-all", [
            {"name": "kill-all-models", "type": "pod-kill", "at": "8s", "duration": "12s",
             "params": {"service": "model", "mode": "all", "grace_period_s": 0}}], "30s")
        journal = chaosml_run(real_cluster, tmp_path, path)
        (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
        assert apply["ok"] and len(apply["targets"]) == 2, apply
        replaced = {e["subject"]: e["detail"] for e in events(journal, "pod_replaced")}
        assert set(replaced) == set(apply["targets"]), json.dumps(journal["target_events"], indent=1)[-4000:]
        assert len({d["replacement"] for d in replaced.values()}) == 2, replaced
        for d in replaced.values():
            assert d["deletion"] == "requested" and 0 <= d["created_s"] <= d["scheduled_s"] <= d["ready_s"] < 60, d
        assert {d["node"] for d in replaced.values()} == {n.name for n in real_cluster.nodes}, replaced
        print(json.dumps({"pod_kill_all": list(replaced.values())}, indent=1))
    finally:
        _scale_model(real_cluster, real_stack, len(real_cluster.nodes) - (1 if added else 0))
        if added is not None:
            real_cluster.remove_node(added)
            from chaosml.cluster import wait_available

            api = real_cluster.api_client()
            try:
                wait_available(api, real_stack, 120)
            finally:
                api.close()


def test_chaosml_run_feature_store_outage_on_the_real_node(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    path = experiment(tmp_path, real_cluster, real_stack, "fs-outage", [
        {"name": "fs-down", "type": "feature-store-outage", "at": "8s", "duration": "8s", "params": {"mode": "kill"}}],
        "30s")
    journal = chaosml_run(real_cluster, tmp_path, path)
    scaled = events(journal, "deployment_scaled")
    assert [(e["detail"]["from"], e["detail"]["to"]) for e in scaled] == [(1, 0), (0, 1)], scaled
    # redis came back Ready (re-seeded) in a real container
    (pod,) = _pods(real_cluster, real_stack, "redis")
    assert pod.status.container_statuses[0].ready


def _model_on(cluster: RealCluster, ns: str, node: str) -> bool:
    """Every model pod on ``node`` and Ready, none terminating: the failed node holds the only model replica."""
    pods = _pods(cluster, ns, "model")
    return bool(pods) and all(
        p.metadata.deletion_timestamp is None and p.spec.node_name == node and p.status.container_statuses
        and p.status.container_statuses[0].ready for p in pods)


def _prefer_node(cluster: RealCluster, ns: str, node: str | None) -> None:
    affinity = None if node is None else {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}}]}}
    from kubernetes import client

    client.AppsV1Api(cluster.api_client()).patch_namespaced_deployment(
        "model", ns, {"spec": {"template": {"spec": {"affinity": affinity}}}})


def _node_stages(core: Any, node: str, stages: dict[str, float]) -> None:
    """Record (wall clock, as the journal's) when ``node`` is first seen not Ready and first seen NoExecute-tainted."""
    n = core.read_node(node)
    now = time.time()
    if "not_ready" not in stages and any(c.type == "Ready" and c.status != "True" for c in n.status.conditions):
        stages["not_ready"] = now
    if "tainted" not in stages and any(t.key == "node.kubernetes.io/unreachable" and t.effect == "NoExecute"
                                       for t in n.spec.taints or []):
        stages["tainted"] = now


def _served_from(cluster: RealCluster, ns: str, node1: str, failed: str) -> bool:
    """The stack answers with its only live model replica on ``node1`` while ``failed`` is still not Ready."""
    live = [p for p in _pods(cluster, ns, "model") if p.metadata.deletion_timestamp is None]
    if not (live and all(p.spec.node_name == node1 and p.status.container_statuses
                         and p.status.container_statuses[0].ready for p in live)):
        return False
    if _safe_predict() != 200:
        return False
    n = cluster.core_v1().read_node(failed)
    return any(c.type == "Ready" and c.status != "True" for c in n.status.conditions)


def test_chaosml_run_node_failure_of_a_second_real_node(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    """A second real node runs the model replica; node-failure through `chaosml run` stops it with its own stop
    command (kubelet SIGSTOP, containers paused, from target.kubernetes.nodes): the node goes Unknown, gets the
    NoExecute taint, the pod is evicted after its 10 s toleration and replaced on node 1 (eviction and replacement
    from the real watch, chaosml's target, in the journal), the stack serves from node 1 while node 2 is down, and
    recover's start command brings the node back Ready. While the run goes, the test watches the Node object
    (NotReady, the taint). One run for what two tests checked with two runs stopping the same node."""
    node1 = real_cluster.nodes[0].name
    node2 = real_cluster.add_node()
    runner: threading.Thread | None = None
    try:
        _prefer_node(real_cluster, real_stack, node2.name)
        wait_for(lambda: _model_on(real_cluster, real_stack, node2.name), 120, "the model replica on node 2",
                 interval=0.5)
        (victim,) = [p.metadata.name for p in _pods(real_cluster, real_stack, "model")
                     if p.metadata.deletion_timestamp is None]
        path = experiment(tmp_path, real_cluster, real_stack, "node-failure", [
            {"name": "node-2-down", "type": "node-failure", "at": "6s", "duration": "90s",
             "params": {"node": node2.name, "ready_timeout_s": "90s"}}], "110s", failable=(node2.name,))
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["journal"] = chaosml_run(real_cluster, tmp_path, path)
            except BaseException as e:  # re-raised in the test's thread
                result["error"] = e

        runner = threading.Thread(target=run, name="chaosml-run", daemon=True)
        runner.start()
        core = real_cluster.core_v1()
        stages: dict[str, float] = {}
        deadline = time.monotonic() + RUN_TIMEOUT_S + 30
        while runner.is_alive() and time.monotonic() < deadline:
            _node_stages(core, node2.name, stages)
            if "tainted" in stages and "served_from_node_1" not in stages and _served_from(
                    real_cluster, real_stack, node1, node2.name):
                stages["served_from_node_1"] = time.time()
            time.sleep(0.25)
        runner.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not runner.is_alive(), "chaosml run did not end"
        if "error" in result:
            raise result["error"]
        journal = result["journal"]
        (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
        (recover,) = [e for e in journal["fault_events"] if e["action"] == "recover"]
        assert apply["ok"] and apply["detail"]["mechanism"] == "commands", apply
        assert recover["ok"] and recover["detail"]["node_ready"], recover
        replaced = [e["detail"] for e in events(journal, "pod_replaced")]
        assert len(replaced) == 1, json.dumps(journal["target_events"], indent=1)[-4000:]
        (d,) = replaced
        assert [e["subject"] for e in events(journal, "pod_replaced")] == [victim], journal["target_events"]
        assert d["victim_node"] == node2.name and d["node"] == node1 and d["deletion"] == "observed", d
        evicted_s = round(d["deleted_t"] - apply["t"], 2)  # the eviction, seen by the watch, after the stop command
        assert 30 < evicted_s < 120, evicted_s
        # every stage, in order: the Node object (polled here), the eviction and replacement (the run's watch)
        deleting = [e["t"] for e in events(journal, "pod_deleting") if e["subject"] == victim]
        assert deleting, json.dumps(journal["target_events"], indent=1)[-4000:]
        stages["evicted"] = min(deleting)
        (stages["replaced"],) = [e["t"] for e in events(journal, "pod_replaced")]
        rel = {k: round(v - apply["t"], 1) for k, v in stages.items()}
        print(json.dumps({"node_failure": {"stages_s": rel, "evicted_s": evicted_s, "replaced": d,
                                           "node_ready_after_start_s": recover["detail"]["node_ready_s"]}}, indent=1))
        assert apply["t"] <= stages["not_ready"] <= stages["tainted"] <= stages["evicted"] <= stages["replaced"], rel
        # the stack served from node 1 while node 2 was down: 90 s of outage for it (one run under load: evicted at
        # +57 s, replacement Ready +61 s, the first answer through kube-proxy's new endpoint +71 s)
        assert "served_from_node_1" in stages, rel
    finally:
        if runner is not None:
            runner.join(timeout=RUN_TIMEOUT_S)
        node2.resume()
        real_cluster.remove_node(node2)
        _prefer_node(real_cluster, real_stack, None)
        from chaosml.cluster import wait_available

        api = real_cluster.api_client()
        try:
            wait_available(api, real_stack, 120)
        finally:
            api.close()


def test_chaosml_run_network_and_data_faults_on_the_real_node(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    """Latency on the in-cluster "model" link and a feature-store timeout (toxics in chaosml's proxy,
    running as the cluster's fault proxy), corrupted features written to the real Redis, then an
    adversarial cohort in the load."""
    path = experiment(tmp_path, real_cluster, real_stack, "network-data", [
        {"name": "slow-model-link", "type": "network-latency", "at": "5s", "duration": "6s",
         "params": {"link": "model", "latency_ms": 300}},
        {"name": "fs-timeout", "type": "feature-store-outage", "at": "14s", "duration": "5s",
         "params": {"mode": "timeout", "timeout_ms": 0}},
        {"name": "out-of-range", "type": "corrupted-features", "at": "21s", "duration": "5s",
         "params": {"mode": "out-of-range", "fraction": 0.5}},
        {"name": "evade", "type": "adversarial-payload", "at": "28s", "duration": "5s",
         "params": {"cohort": "adversarial-evasion", "share": 0.4}}], "36s")
    journal = chaosml_run(real_cluster, tmp_path, path)
    done = {(e["fault"], e["action"]) for e in journal["fault_events"] if e["ok"]}
    for fault in ("slow-model-link", "fs-timeout", "out-of-range", "evade"):
        assert {(fault, "apply"), (fault, "recover")} <= done, journal["fault_events"]
    # nothing left behind in the cluster's proxy
    with urllib.request.urlopen(f"http://127.0.0.1:{NODE_PORTS['proxy-api']}/proxies", timeout=5) as r:
        proxies = json.loads(r.read())
    assert all(p["toxics"] == [] and p["enabled"] for p in proxies.values()), proxies
