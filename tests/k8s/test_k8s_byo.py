"""A user's own stack on the kubernetes target, against the real control plane (simulated kubelet).

The user's Deployments, Services and Toxiproxy are not chaosml's: the target selects them by
labels, finds the entry through the NodePort Service that selects the entry's pods, checks every
declared link against the Toxiproxy API, and acts only on pods (pod-kill) and the scale of the
Deployment behind the feature-store link (feature-store-outage kill).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import REPO, deployment_doc, events_of, wait_for

from chaosml.cluster import apply_manifests, wait_available
from chaosml.errors import TargetError
from chaosml.faults.base import make_injector, undo_fault
from chaosml.loader import load_experiment_text
from chaosml.proxy import client as toxiproxy
from chaosml.proxy.server import ProxyServer, ServerThread
from chaosml.targets.kubernetes import KubernetesTarget

pytestmark = pytest.mark.k8s


def deployment(name: str, labels: dict[str, str], replicas: int = 1, port: int = 8080) -> dict[str, Any]:
    container = {"name": "main", "image": "example.invalid/user-model:1",
                 "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}]}
    return deployment_doc(name, labels, [container], replicas)


def node_port_service(name: str, selector: dict[str, str], port_name: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": selector,
                 "ports": [{"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                           {"name": port_name, "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    }


def user_stack(ns: str) -> list[dict[str, Any]]:
    """A user's namespace: a model server, a cache, an unrelated app, and a NodePort Service for the model."""
    docs = [
        deployment("iris-serving", {"app": "iris", "tier": "serving"}, replicas=2),
        deployment("iris-canary", {"app": "iris", "tier": "canary"}, replicas=1),
        deployment("cache", {"app": "cache"}, replicas=2, port=6379),
        node_port_service("iris", {"app": "iris", "tier": "serving"}),
    ]
    for d in docs:
        d["metadata"]["namespace"] = ns
    return docs


EXPERIMENT = """\
version: 1
title: byo on kubernetes
target:
  platform: kubernetes
  kubernetes: {{namespace: {ns}, toxiproxy: {{url: "{api}"}}}}
  services:
    - name: model
      selector: {{app: iris, tier: serving}}
    - name: cache
      selector: {{app: cache}}
  links:
    - {{name: feature-store, service: cache}}
    - {{name: model-egress}}
  entry: {{service: model, port: http}}
request: {{path: /v2/models/iris/infer, body: kserve-v2}}
response: {{prediction: "outputs[0].data[0]", served_by: not-exposed}}
load: {{duration: 30s}}
faults:
  - {{name: kill, type: pod-kill, at: 5s, duration: 5s, params: {{service: model}}}}
  - {{name: fs, type: feature-store-outage, at: 12s, duration: 5s, params: {{mode: kill}}}}
  - {{name: slow, type: network-latency, at: 20s, duration: 5s, params: {{link: model-egress, latency_ms: 50}}}}
"""


@pytest.fixture
def toxiproxy_api() -> Iterator[str]:
    """The user's Toxiproxy (chaosml's compatible server), with the proxies the experiment names."""
    handle: ServerThread = ProxyServer("127.0.0.1", 0).start_in_thread()
    try:
        toxiproxy.create_proxy(handle.url, "feature-store", "127.0.0.1:1", listen="127.0.0.1:0")
        toxiproxy.create_proxy(handle.url, "model-egress", "127.0.0.1:1", listen="127.0.0.1:0")
        yield handle.url
    finally:
        handle.stop()


def deploy(cluster: Any, ns: str) -> None:
    api = cluster.api_client()
    apply_manifests(api, user_stack(ns))
    wait_available(api, ns, 60)


def byo_target(cluster: Any, ns: str, api: str, text: str | None = None) -> tuple[Any, KubernetesTarget]:
    exp = load_experiment_text(text or EXPERIMENT.format(ns=ns, api=api), "byo-k8s.yaml")
    target = KubernetesTarget(exp.target.kubernetes, kubeconfig=cluster.verified_kubeconfig_path,
                              kind_config=REPO / "kind-config.yaml", custom=exp.target, served_by_exposed=False)
    return exp, target


def test_services_are_selected_by_labels_and_the_entry_by_its_service(
    control_plane: Any, k8s_namespace: str, toxiproxy_api: str
) -> None:
    deploy(control_plane, k8s_namespace)
    _, target = byo_target(control_plane, k8s_namespace, toxiproxy_api)
    target.start()
    try:
        assert target.group_deployments == {"model": "iris-serving", "cache": "cache"}
        assert target.selector("model") == "app=iris,tier=serving"
        assert [m.ready for m in target.members("model")] == [True, True]
        assert len(target.members("cache")) == 2
        svc = control_plane.core_v1().read_namespaced_service("iris", k8s_namespace)
        node_port = next(p.node_port for p in svc.spec.ports if p.name == "http")
        assert target.entry_url == f"http://127.0.0.1:{node_port}"  # the named port, not the first
        assert target.proxy_api_url == toxiproxy_api
        assert set(target.links()) == {"feature-store", "model-egress"}
        assert target.feature_store_group == "cache"
        d = target.describe()
        assert d["stack"] == "custom" and d["served_by_exposed"] is False
        assert d["deployments"]["model"]["deployment"] == "iris-serving"
    finally:
        target.stop()


def test_faults_act_on_the_users_deployments(control_plane: Any, k8s_namespace: str, toxiproxy_api: str) -> None:
    deploy(control_plane, k8s_namespace)
    exp, target = byo_target(control_plane, k8s_namespace, toxiproxy_api)
    target.start()
    apps = control_plane.apps_v1()
    try:
        # pod-kill by service name: a pod of iris-serving, never the canary with the same app label
        canary = {p.metadata.name for p in control_plane.core_v1().list_namespaced_pod(k8s_namespace, label_selector="tier=canary").items}
        kill = make_injector(exp.fault("kill"), target)
        victims = kill.undo_record(0)["victims"]
        assert len(victims) == 1 and not set(victims) & canary
        assert kill.apply(0).ok
        replaced = wait_for(lambda: events_of(target, "pod_replaced", victims[0]), 30, "the replacement pod Ready")
        assert replaced[0].detail["group"] == "model" and replaced[0].detail["ready_s"] > 0
        print(f"\nuser Deployment pod replaced: {json.dumps(replaced[0].detail)}")
        assert kill.recover(0).ok

        # feature-store-outage kill scales the service behind the feature-store link
        fs = make_injector(exp.fault("fs"), target)
        assert type(fs).__name__ == "ScaleToZero"
        record = json.loads(json.dumps(fs.undo_record(0)))
        assert record["deployment"] == "cache" and record["replicas_before"] == 2
        assert fs.apply(0).ok
        assert apps.read_namespaced_deployment("cache", k8s_namespace).spec.replicas == 0
        assert apps.read_namespaced_deployment("iris-serving", k8s_namespace).spec.replicas == 2  # untouched
        rec = fs.recover(0)
        assert rec.ok and rec.detail["replicas"] == 2, rec.detail
        assert undo_fault("feature-store-outage", record).endswith(f"deployment {k8s_namespace}/cache already at 2 replica(s)")

        # a network fault on a declared link goes to the user's Toxiproxy
        slow = make_injector(exp.fault("slow"), target)
        slow.undo_record(0)
        assert slow.apply(0).ok
        assert [t["type"] for t in toxiproxy.toxics(toxiproxy_api, "model-egress")] == ["latency"]
        assert slow.recover(0).ok
        assert toxiproxy.toxics(toxiproxy_api, "model-egress") == []
    finally:
        target.stop()


def test_selection_errors_name_what_is_there(control_plane: Any, k8s_namespace: str, toxiproxy_api: str) -> None:
    deploy(control_plane, k8s_namespace)
    text = EXPERIMENT.format(ns=k8s_namespace, api=toxiproxy_api)
    # two Deployments carry app=iris
    _, t = byo_target(control_plane, k8s_namespace, toxiproxy_api, text.replace("{app: iris, tier: serving}", "{app: iris}"))
    with pytest.raises(TargetError, match=r"service 'model': 2 Deployments have pods labelled app=iris: iris-canary .*iris-serving"):
        t.start()
    # none carries app=redis
    _, t = byo_target(control_plane, k8s_namespace, toxiproxy_api, text.replace("{app: cache}", "{app: redis}"))
    with pytest.raises(TargetError, match=r"service 'cache': no Deployment in namespace .* has pods labelled app=redis \(Deployments: cache"):
        t.start()
    # a link the user's Toxiproxy does not have
    _, t = byo_target(control_plane, k8s_namespace, toxiproxy_api, text.replace("{name: model-egress}", "{name: model-egres}")
                      .replace("link: model-egress", "link: model-egres"))
    with pytest.raises(TargetError, match=r"link\(s\) 'model-egres' of target.links are not proxies of the Toxiproxy .*"
                                          r"proxies: feature-store, model-egress"):
        t.start()
    # no NodePort Service selects the canary's pods
    _, t = byo_target(control_plane, k8s_namespace, toxiproxy_api, text.replace("{app: iris, tier: serving}", "{app: iris, tier: canary}"))
    with pytest.raises(TargetError, match=r"no NodePort Service selects the pods of service 'model' \(Deployment iris-canary"):
        t.start()
    # a port name the Service does not have
    _, t = byo_target(control_plane, k8s_namespace, toxiproxy_api, text.replace("port: http", "port: grpc"))
    with pytest.raises(TargetError, match=r"Service 'iris' has no port 'grpc'; ports: metrics, http"):
        t.start()


def test_plan_resolves_the_users_pods(control_plane: Any, k8s_namespace: str, toxiproxy_api: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from chaosml.cli import main

    deploy(control_plane, k8s_namespace)
    path = tmp_path / "byo-k8s.yaml"
    path.write_text(EXPERIMENT.format(ns=k8s_namespace, api=toxiproxy_api).replace(
        "toxiproxy:", "allowed_contexts: ['*'], toxiproxy:"))
    monkeypatch.setenv("KUBECONFIG", str(control_plane.verified_kubeconfig_path))
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "custom stack: model (pods app=iris,tier=serving), cache (pods app=cache)" in out
    pods = sorted(p.metadata.name for p in control_plane.core_v1().list_namespaced_pod(k8s_namespace, label_selector="tier=serving").items)
    assert f"kill: 1 of 2 pods matching 'app=iris,tier=serving' per injection (50%), chosen at apply among: {', '.join(pods)}" in out
    assert "fs: deployment cache scaled from 2 to 0 replicas, then back to 2" in out
    assert "slow: Toxiproxy link model-egress: {" in out
