"""Smoke tests for the real control plane + simulated kubelet (tests/k8s)."""

from __future__ import annotations

import threading
import time
import warnings
from collections import Counter
from typing import Any, Self

import pytest
import yaml
from k8s_stack import wait_for

pytestmark = pytest.mark.k8s

IMAGE = "chaosml/reference-stack:dev"




def is_ready(pod: Any) -> bool:
    if (
        pod.status is None
        or pod.status.phase != "Running"
        or pod.metadata.deletion_timestamp
    ):
        return False
    return any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def ready_pods(core: Any, ns: str, selector: str) -> list[Any]:
    return [
        p
        for p in core.list_namespaced_pod(ns, label_selector=selector).items
        if is_ready(p)
    ]


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": IMAGE,
                            "ports": [{"containerPort": 8080}],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "64Mi"}
                            },
                        }
                    ]
                },
            },
        },
    }


class PodWatcher:
    """Collects pod watch events of one namespace in a background thread."""

    def __init__(self, core: Any, ns: str) -> None:
        self.core, self.ns = core, ns
        self.events: list[tuple[str, str, str]] = []  # (type, name, phase)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="pod-watcher", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        assert self._ready.wait(10), "watch did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        from kubernetes import watch

        rv = self.core.list_namespaced_pod(self.ns).metadata.resource_version
        self._ready.set()
        while not self._stop.is_set():
            w = watch.Watch()
            for ev in w.stream(
                self.core.list_namespaced_pod,
                self.ns,
                resource_version=rv,
                timeout_seconds=1,
                _request_timeout=(5, 15),
            ):
                pod = ev["object"]
                rv = pod.metadata.resource_version
                self.events.append(
                    (ev["type"], pod.metadata.name, pod.status.phase or "")
                )
                if self._stop.is_set():
                    w.stop()

    def counts(self) -> Counter[str]:
        return Counter(t for t, _, _ in self.events)


def test_server_version_and_apis(control_plane: Any) -> None:
    from kubernetes import client

    info = client.VersionApi(control_plane.api_client()).get_code()
    assert (info.major, info.minor) == ("1", "20"), info
    assert info.git_version.startswith("v1.20."), info
    # CronJob moved to batch/v1 in 1.21: on this server it is batch/v1beta1.
    assert control_plane.cronjob_api_version() == "batch/v1beta1"
    assert "v1beta1" in control_plane.control_plane.api_versions("batch")


def test_job_pods_complete(control_plane: Any, k8s_namespace: str) -> None:
    from kubernetes import client

    batch = client.BatchV1Api(control_plane.api_client())
    batch.create_namespaced_job(
        k8s_namespace,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once"},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "c", "image": IMAGE}],
                    }
                },
            },
        },
    )
    wait_for(
        lambda: (
            batch.read_namespaced_job_status("once", k8s_namespace).status.succeeded
            == 1
        ),
        30,
        "the Job to succeed",
        interval=0.1,
    )


def test_kubeconfig_context_is_usable(control_plane: Any) -> None:
    from kubernetes import client, config
    from urllib3.exceptions import InsecureRequestWarning

    cfg = yaml.safe_load(control_plane.kubeconfig_path.read_text())
    assert cfg["current-context"] == control_plane.context == "kind-chaosml-test"
    assert cfg["clusters"][0]["cluster"]["insecure-skip-tls-verify"] is True
    assert cfg["clusters"][0]["cluster"]["server"] == control_plane.api_url
    api_client = config.new_client_from_config(
        config_file=str(control_plane.kubeconfig_path), context=control_plane.context
    )
    try:
        with warnings.catch_warnings():
            # insecure-skip-tls-verify: urllib3 warns on every request
            warnings.simplefilter("ignore", InsecureRequestWarning)
            names = [
                n.metadata.name for n in client.CoreV1Api(api_client).list_node().items
            ]
    finally:
        api_client.close()
    assert "chaosml-worker" in names

    # the verified kubeconfig: same context, no warning even under "error"
    cfg = yaml.safe_load(control_plane.verified_kubeconfig_path.read_text())
    assert cfg["current-context"] == "kind-chaosml-test"
    assert "insecure-skip-tls-verify" not in cfg["clusters"][0]["cluster"]
    api_client = config.new_client_from_config(
        config_file=str(control_plane.verified_kubeconfig_path),
        context=control_plane.context,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert client.CoreV1Api(api_client).list_node().items
    finally:
        api_client.close()


def test_node_is_ready(control_plane: Any) -> None:
    node = control_plane.core_v1().read_node("chaosml-worker")
    ready = {c.type: c.status for c in node.status.conditions}["Ready"]
    assert ready == "True"
    assert node.status.allocatable["pods"] == "110"
    assert not [t for t in node.spec.taints or [] if t.effect == "NoSchedule"]


def test_default_service_account_in_new_namespace(
    control_plane: Any, k8s_namespace: str
) -> None:
    core = control_plane.core_v1()
    sa = core.read_namespaced_service_account("default", k8s_namespace)
    assert sa.metadata.name == "default"
    # the token controller (controller-manager, service-account key) made a secret
    wait_for(
        lambda: core.read_namespaced_service_account("default", k8s_namespace).secrets,
        20,
        "the default service account's token secret",
    )


def test_deployment_replace_scale_watch(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    ns, name, sel = k8s_namespace, "reference-stack", "app=reference-stack"
    timings: dict[str, float] = {}

    with PodWatcher(core, ns) as watcher:
        t0 = time.monotonic()
        apps.create_namespaced_deployment(ns, deployment(name, 3))
        wait_for(lambda: len(ready_pods(core, ns, sel)) == 3, 60, "3 Ready pods")
        pods = ready_pods(core, ns, sel)
        timings["create -> 3 Ready"] = time.monotonic() - t0
        for p in pods:
            assert p.spec.node_name in control_plane.kubelet.node_names
            assert p.status.pod_ip and p.status.start_time
            (cs,) = p.status.container_statuses
            assert cs.ready and cs.restart_count == 0 and cs.state.running is not None
        wait_for(
            lambda: (
                apps.read_namespaced_deployment(name, ns).status.ready_replicas == 3
            ),
            30,
            "deployment readyReplicas == 3",
        )

        # delete one pod: the ReplicaSet replaces it
        victim = pods[0]
        old_uids = {p.metadata.uid for p in pods}
        t0 = time.monotonic()
        core.delete_namespaced_pod(victim.metadata.name, ns)

        def replacement_ready() -> bool:
            ready = ready_pods(core, ns, sel)
            uids = {p.metadata.uid for p in ready}
            return (
                len(ready) == 3
                and victim.metadata.uid not in uids
                and bool(uids - old_uids)
            )

        wait_for(replacement_ready, 60, "a Ready replacement pod")
        timings["delete -> replacement Ready"] = time.monotonic() - t0
        wait_for(
            lambda: all(
                p.metadata.uid != victim.metadata.uid
                for p in core.list_namespaced_pod(ns, label_selector=sel).items
            ),
            30,
            "the deleted pod to be gone",
        )

        # scale to 0 and back to 3
        t0 = time.monotonic()
        apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 0}})
        wait_for(
            lambda: not core.list_namespaced_pod(ns, label_selector=sel).items,
            60,
            "all pods gone after scale to 0",
        )
        timings["scale 3 -> 0 (pods gone)"] = time.monotonic() - t0
        t0 = time.monotonic()
        apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 3}})
        wait_for(
            lambda: len(ready_pods(core, ns, sel)) == 3,
            60,
            "3 Ready pods after scale up",
        )
        timings["scale 0 -> 3 Ready"] = time.monotonic() - t0

        # the watch saw it all: 3 + 1 + 3 pods added, 1 + 3 deleted
        wait_for(lambda: watcher.counts()["DELETED"] >= 4, 10, "4 DELETED watch events")
        counts = watcher.counts()
    assert counts["ADDED"] >= 7, counts
    assert counts["MODIFIED"] >= 7, counts
    assert any(t == "MODIFIED" and phase == "Running" for t, _, phase in watcher.events)

    with capsys.disabled():
        print()
        for k, v in timings.items():
            print(f"  [k8s smoke] {k}: {v:.2f} s")
        print(f"  [k8s smoke] watch events: {dict(counts)}")
    assert not control_plane.kubelet.errors, list(control_plane.kubelet.errors)


def test_second_node_pause_evict_resume(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A paused node goes Ready=Unknown, gets the unreachable taints, its pod is
    marked NotReady, evicted (stays Terminating while the node is gone) and
    replaced; on resume the old pod finishes and the replacement becomes Ready."""
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    kubelet = control_plane.kubelet
    ns, node, sel = k8s_namespace, "chaosml-worker-2", "app=pinned"
    t: dict[str, float] = {}

    def node_ready() -> str:
        return {c.type: c.status for c in core.read_node(node).status.conditions}[
            "Ready"
        ]

    def taints() -> set[tuple[str, str]]:
        return {(x.key, x.effect) for x in core.read_node(node).spec.taints or []}

    def pods() -> list[Any]:
        return core.list_namespaced_pod(ns, label_selector=sel).items

    kubelet.add_node(node)
    try:
        assert node in kubelet.node_names
        assert node_ready() == "True"
        dep = deployment("pinned", 1)
        spec = dep["spec"]["template"]["spec"]
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
        spec["tolerations"] = [
            {
                "key": f"node.kubernetes.io/{k}",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 1,
            }
            for k in ("unreachable", "not-ready")
        ]
        apps.create_namespaced_deployment(ns, dep)
        wait_for(
            lambda: len(ready_pods(core, ns, sel)) == 1, 30, "the pinned pod Ready"
        )
        (victim,) = ready_pods(core, ns, sel)
        assert victim.spec.node_name == node

        t0 = time.monotonic()
        kubelet.pause_node(node)
        assert kubelet.is_paused(node)
        assert node_ready() == "Unknown"
        # node lifecycle controller: NoSchedule at once, NoExecute within its
        # monitor period (5 s), pods marked NotReady, eviction after 1 s toleration
        wait_for(
            lambda: ("node.kubernetes.io/unreachable", "NoExecute") in taints(),
            30,
            "the unreachable:NoExecute taint",
            interval=0.2,
        )
        t["pause -> NoExecute taint"] = time.monotonic() - t0
        wait_for(
            lambda: (
                core.read_namespaced_pod(
                    victim.metadata.name, ns
                ).metadata.deletion_timestamp
            ),
            30,
            "the eviction of the pod on the paused node",
            interval=0.2,
        )
        t["pause -> pod evicted"] = time.monotonic() - t0
        pod = core.read_namespaced_pod(victim.metadata.name, ns)
        assert not is_ready(pod)
        # a replacement exists (Pending: its only node is unreachable)
        wait_for(lambda: len(pods()) == 2, 30, "a replacement pod")
        time.sleep(1.0)  # the paused kubelet does not finish the termination
        assert victim.metadata.uid in {p.metadata.uid for p in pods()}

        t0 = time.monotonic()
        kubelet.resume_node(node)
        assert node_ready() == "True"
        wait_for(
            lambda: (
                [p.metadata.uid for p in pods()]
                == [p.metadata.uid for p in ready_pods(core, ns, sel)]
                and len(pods()) == 1
                and pods()[0].metadata.uid != victim.metadata.uid
            ),
            30,
            "old pod gone and the replacement Ready after resume",
        )
        t["resume -> replacement Ready"] = time.monotonic() - t0
        wait_for(
            lambda: not {k for k, _ in taints()} & {"node.kubernetes.io/unreachable"},
            30,
            "the unreachable taints to go",
            interval=0.2,
        )
        apps.delete_namespaced_deployment("pinned", ns)
        wait_for(lambda: not pods(), 30, "pinned pods gone")
    finally:
        kubelet.remove_node(node)
    assert node not in kubelet.node_names
    with capsys.disabled():
        print()
        for k, v in t.items():
            print(f"  [k8s node pause] {k}: {v:.2f} s")
