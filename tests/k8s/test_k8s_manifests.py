"""manifests/ and kind-config.yaml agree with each other and with the experiments, and the API server accepts them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_stack import REPO, make_target, stack_docs

from chaosml.cluster import (
    STACK_MANIFESTS,
    apply_manifests,
    in_namespace,
    load_manifests,
    wait_available,
)
from chaosml.loader import load_experiment
from chaosml.targets.kubernetes.discovery import REFERENCE_POD_LABELS

MANIFESTS = REPO / "manifests"
YAML_FILES = sorted(p.name for p in MANIFESTS.glob("*.yaml"))
K8S_EXPERIMENTS = sorted((REPO / "experiments").glob("k8s-*.yaml"))


def docs(*names: str) -> list[dict[str, Any]]:
    return load_manifests(names or YAML_FILES)


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs() if d["kind"] == kind}


EXAMPLE = MANIFESTS / "examples" / "byo-kserve" / "stack.yaml"


def example_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]


def test_the_byo_example_wires_its_own_stack() -> None:
    """The user's-own-stack example: one Deployment per selector, its Service, its Toxiproxy link, and the
    experiment that selects them."""
    ex = {(d["kind"], d["metadata"]["name"]): d for d in example_docs()}
    assert {d["metadata"].get("namespace") for d in ex.values() if d["kind"] != "Namespace"} == {"ml-shop"}
    exp = load_experiment(REPO / "experiments" / "byo-k8s-kserve.yaml")
    assert exp.target.kubernetes is not None and exp.target.kubernetes.namespace == "ml-shop"
    for svc in exp.target.services:
        hits = [d for (k, _), d in ex.items() if k == "Deployment"
                and all(d["spec"]["template"]["metadata"]["labels"].get(a) == b for a, b in (svc.selector or {}).items())]
        assert len(hits) == 1, svc
    proxies = json.loads(ex[("ConfigMap", "toxiproxy-config")]["data"]["toxiproxy.json"])
    assert {ln.name for ln in exp.target.links} <= {p["name"] for p in proxies}
    tox = ex[("Service", "toxiproxy")]["spec"]["ports"]
    assert exp.target.kubernetes.toxiproxy is not None and exp.target.kubernetes.toxiproxy.port in {p["name"] for p in tox}
    for p in proxies:
        assert int(p["listen"].rsplit(":", 1)[1]) in {q["targetPort"] for q in tox}
        host, port = p["upstream"].rsplit(":", 1)
        assert int(port) in {q["port"] for q in ex[("Service", host)]["spec"]["ports"]}


def kind_config() -> dict[str, Any]:
    return yaml.safe_load((REPO / "kind-config.yaml").read_text())


def test_the_byo_example_loopback_overlay_keeps_its_wiring() -> None:
    """overlay.loopback_byo_kserve (the real-node variant): loopback ports that the reference overlay does not use,
    the proxy link listening on a Toxiproxy Service targetPort with a NodePort (how the target finds the entry
    link) and forwarding to the KServe Service's NodePort, KServe serving on its container port."""
    import overlay

    docs = {(d["kind"], d["metadata"]["name"]): d for d in overlay.loopback_byo_kserve("ns-x", replicas=2)}
    assert {(k, d["metadata"].get("namespace")) for (k, _), d in docs.items() if k != "Namespace"} <= {
        (k, "ns-x") for k, _ in docs}
    ours = set(overlay.KSERVE_PORTS.values()) | set(overlay.KSERVE_NODE_PORTS.values())
    assert not ours & (set(overlay.PORTS.values()) | set(overlay.NODE_PORTS.values()))
    kserve, proxy = docs[("Deployment", "bc-kserve")], docs[("Deployment", "toxiproxy")]
    assert kserve["spec"]["replicas"] == 2
    for dep in (kserve, proxy):
        spec = dep["spec"]["template"]["spec"]
        assert spec["hostNetwork"] and spec["dnsPolicy"] == "Default"
    (c,) = kserve["spec"]["template"]["spec"]["containers"]
    port = c["args"][c["args"].index("--http_port") + 1]
    assert [p["containerPort"] for p in c["ports"]] == [int(port)] and c["image"] == "chaosml-example/kserve-sklearn:dev"
    (link,) = json.loads(docs[("ConfigMap", "toxiproxy-config")]["data"]["toxiproxy.json"])
    model_svc = {p["name"]: p for p in docs[("Service", "bc-model")]["spec"]["ports"]}
    assert model_svc["http"]["targetPort"] == int(port)
    assert link["upstream"] == f"127.0.0.1:{model_svc['http']['nodePort']}"
    tox_svc = {p["targetPort"]: p for p in docs[("Service", "toxiproxy")]["spec"]["ports"]}
    assert tox_svc[int(link["listen"].rsplit(":", 1)[1])]["nodePort"] == overlay.KSERVE_NODE_PORTS["link-ingress"]
    (pc,) = proxy["spec"]["template"]["spec"]["containers"]
    api_port = pc["args"][pc["args"].index("--port") + 1]
    assert {p["name"]: p["containerPort"] for p in pc["ports"]}["api"] == int(api_port)
    assert tox_svc[int(api_port)]["nodePort"] == overlay.KSERVE_NODE_PORTS["proxy-api"]


def test_every_manifest_parses_and_lives_in_the_chaosml_namespace() -> None:
    assert set(STACK_MANIFESTS) <= set(YAML_FILES) and "gameday-cronjob.yaml" in YAML_FILES
    for d in docs():
        assert {"apiVersion", "kind", "metadata"} <= set(d), d
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "chaosml", d["metadata"]
    assert [d["metadata"]["name"] for d in docs("namespace.yaml")] == ["chaosml"]
    assert (MANIFESTS / "Dockerfile").read_text().startswith("# The reference stack image")
    # the base image is a build argument whose default stays the public Python image (kind users)
    dockerfile = (MANIFESTS / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim\nFROM ${BASE}\n" in dockerfile


def test_deployments_labels_probes_resources() -> None:
    deps = by_kind("Deployment")
    assert set(deps) == {"redis", "model", "model-canary", "toxiproxy", "gateway"}
    assert deps["model"]["spec"]["replicas"] >= 2
    for name, d in deps.items():
        tmpl = d["spec"]["template"]
        labels = tmpl["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == name
        assert labels["app.kubernetes.io/part-of"] == "chaosml"
        # the pods' app/track labels are what model-rollout's validate check resolves a canary against
        assert d["spec"]["selector"]["matchLabels"] == REFERENCE_POD_LABELS[name]
        assert {k: labels[k] for k in REFERENCE_POD_LABELS[name]} == REFERENCE_POD_LABELS[name]
        assert labels["app"] == ("model" if name == "model-canary" else name)
        for c in tmpl["spec"]["containers"]:
            assert c["resources"]["requests"], name
            assert c.get("readinessProbe") and c.get("livenessProbe"), name
    model = deps["model"]["spec"]["template"]["spec"]["containers"][0]
    assert model["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert model["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_services_select_pods_and_name_real_ports() -> None:
    deps = by_kind("Deployment")
    for name, svc in by_kind("Service").items():
        sel = svc["spec"]["selector"]
        matching = [d for d in deps.values() if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        # the model Service selects both tracks: the primary and model-rollout's canary
        want = {"model", "model-canary"} if name == "model" else {name}
        assert {d["metadata"]["name"] for d in matching} == want, f"service {name} selects {len(matching)} deployments"
        ports = {p["name"]: p["containerPort"] for c in matching[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        for p in svc["spec"]["ports"]:
            tp = p["targetPort"]
            assert (tp in ports) if isinstance(tp, str) else (tp in ports.values()), (name, p)


def test_node_ports_match_kind_port_mappings() -> None:
    cfg = kind_config()
    assert cfg["name"] == "chaosml" and [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"]
    mappings = [m for n in cfg["nodes"] for m in n.get("extraPortMappings") or []]
    assert all(m["listenAddress"] == "127.0.0.1" for m in mappings)
    mapped = {m["containerPort"] for m in mappings}
    services = [*by_kind("Service").values(), *(d for d in example_docs() if d["kind"] == "Service")]
    node_ports = [p["nodePort"] for s in services for p in s["spec"]["ports"] if "nodePort" in p]
    assert len(node_ports) == len(set(node_ports))  # NodePorts are cluster-wide: the example must not collide
    assert set(node_ports) == mapped
    assert all(30000 <= p <= 32767 for p in node_ports)


def test_toxiproxy_links_match_services_and_the_stack_wiring() -> None:
    proxies = json.loads(by_kind("ConfigMap")["toxiproxy-config"]["data"]["toxiproxy.json"])
    assert {p["name"] for p in proxies} == {"gateway", "model", "feature-store"}
    svc_ports = {(n, p["port"]) for n, s in by_kind("Service").items() for p in s["spec"]["ports"]}
    tox_targets = {p["targetPort"] for p in by_kind("Service")["toxiproxy"]["spec"]["ports"]}
    for p in proxies:
        host, port = p["upstream"].rsplit(":", 1)
        assert (host, int(port)) in svc_ports, p
        assert int(p["listen"].rsplit(":", 1)[1]) in tox_targets, p
    tox = by_kind("Deployment")["toxiproxy"]["spec"]["template"]["spec"]
    assert tox["containers"][0]["image"].startswith("ghcr.io/shopify/toxiproxy")
    assert "-config=/config/toxiproxy.json" in tox["containers"][0]["args"]
    listen = {p["name"]: int(p["listen"].rsplit(":", 1)[1]) for p in proxies}
    gw_args = by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert gw_args[gw_args.index("--backends") + 1] == f"http://toxiproxy:{listen['model']}"
    model_args = by_kind("Deployment")["model"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert model_args[model_args.index("--redis-url") + 1] == f"redis://toxiproxy:{listen['feature-store']}/0"


def test_rbac_is_least_privilege_for_the_runner() -> None:
    (role,) = by_kind("Role").values()
    rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules[("", "pods")] == {"get", "list", "watch", "delete"}
    assert rules[("apps", "deployments")] == {"get", "list", "patch", "update"}
    assert rules[("apps", "deployments/scale")] >= {"patch"}
    assert rules[("", "events")] == {"list", "watch"}
    assert rules[("", "services")] == {"get", "list"}  # list: the Service selecting a user's entry pods
    assert rules[("", "configmaps")] == {"get"}
    assert not any("*" in v for v in rules.values())
    (binding,) = by_kind("RoleBinding").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "chaosml-runner", "namespace": "chaosml"}]
    assert "chaosml-runner" in by_kind("ServiceAccount")
    cron = by_kind("CronJob")["chaosml-gameday"]
    assert cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"] == "chaosml-runner"


@pytest.mark.parametrize("path", K8S_EXPERIMENTS, ids=lambda p: p.name)
def test_kubernetes_experiments_match_the_manifests(path: Path) -> None:
    exp = load_experiment(path)
    k = exp.target.kubernetes
    assert exp.target.platform == "kubernetes" and k is not None
    assert k.context == f"kind-{kind_config()['name']}" and k.namespace == "chaosml"
    deps = by_kind("Deployment")
    for f in exp.faults:
        if f.type == "pod-kill":
            assert f.params.service in deps
            assert exp.target.replicas == deps[f.params.service]["spec"]["replicas"]
        if f.type == "model-rollout":  # the canary names model-canary (by its pods' labels), the primary the model group
            want = dict(t.split("=") for t in f.params.canary.split(",")) if "=" in f.params.canary else None
            hits = [n for n, d in deps.items() if n != f.params.primary and (
                n == f.params.canary if want is None else want.items() <= d["spec"]["template"]["metadata"]["labels"].items())]
            assert hits == ["model-canary"] and deps["model-canary"]["spec"]["replicas"] == 0
            assert exp.target.replicas == deps[f.params.primary]["spec"]["replicas"]
        if f.type == "node-failure":
            assert f.params.node in ("worker", "random") or re.fullmatch(r"chaosml-(worker\d*|control-plane)", f.params.node)


def test_manifests_apply_to_the_api_server(control_plane: Any, k8s_namespace: str) -> None:
    """Server-side dry-run of every object as written (namespace included), then a real apply of the
    stack into a test namespace with its fixed NodePorts, and the CronJob in the version the server offers."""
    api = control_plane.api_client()
    version = control_plane.cronjob_api_version()
    cron = docs("gameday-cronjob.yaml")[0]
    if version != cron["apiVersion"]:
        cron = {**cron, "apiVersion": version, "spec": {k: v for k, v in cron["spec"].items() if k != "timeZone"}}
    # dry-run: the API server validates every object (the namespace must exist for namespaced ones)
    dry = [in_namespace(d, k8s_namespace) for d in load_manifests()] + [in_namespace(cron, k8s_namespace)]
    assert len(apply_manifests(api, dry, dry_run=True)) == len(dry)
    core = control_plane.core_v1()
    assert not core.list_namespaced_service(k8s_namespace).items  # dry run stored nothing

    applied = apply_manifests(api, stack_docs(k8s_namespace, node_ports=True) + [in_namespace(cron, k8s_namespace)])
    assert "Deployment/model" in applied and "Job/seed-features" in applied and "CronJob/chaosml-gameday" in applied
    ready = wait_available(api, k8s_namespace, 60)
    assert ready == {"redis": "1/1", "model": "3/3", "model-canary": "0/0", "toxiproxy": "1/1", "gateway": "1/1"}
    assert apply_manifests(api, stack_docs(k8s_namespace, node_ports=True))  # re-apply is idempotent

    target = make_target(control_plane, k8s_namespace)
    target.start()
    try:
        # endpoints from the real NodePorts through kind-config.yaml's mappings
        assert target.entry_url == "http://127.0.0.1:30081"
        assert target.gateway_url == "http://127.0.0.1:30080"
        assert target.redis_url == "redis://127.0.0.1:30380/0"
        assert target.proxy_api_url == "http://127.0.0.1:30474"
        assert target.links() == {
            "gateway": {"listen": "127.0.0.1:30081", "upstream": "gateway:8080"},
            "model": {"listen": "127.0.0.1:30880", "upstream": "model:8080"},
            "feature-store": {"listen": "127.0.0.1:30379", "upstream": "redis:6379"},
        }
    finally:
        target.stop()
    # free the fixed NodePorts at once for any other test applying them
    for svc in core.list_namespaced_service(k8s_namespace).items:
        core.delete_namespaced_service(svc.metadata.name, k8s_namespace, _preload_content=False).release_conn()


def test_the_loopback_overlays_replace_a_hostnetwork_pod_before_starting_its_successor() -> None:
    """With hostNetwork a new pod needs the old one's host ports: the default surge leaves it Pending beside the old
    pod on one node and the rollout never completes (CI: every wait for the rollout timed out after a template change)."""
    import overlay

    deployments = [d for d in [*overlay.loopback_stack("ns-a"), *overlay.loopback_byo_kserve("ns-b")]
                   if d["kind"] == "Deployment"]
    assert len(deployments) >= 5
    for d in deployments:
        assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, (
            d["metadata"]["name"])


def test_apply_recreates_a_deployment_whose_selector_changed(control_plane: Any, k8s_namespace: str) -> None:
    """A cluster made before the model's selector gained track=stable: the API server refuses the change in place
    (spec.selector is immutable), so apply deletes the Deployment and creates it anew instead of failing
    `chaosml cluster up` (fails before: yes, 422 field is immutable)."""
    from kubernetes import client

    api = control_plane.api_client()

    def deployment(labels: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "m", "namespace": k8s_namespace},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "c", "image": "local/none:1"}]}}}}

    assert apply_manifests(api, [deployment({"app": "m"})]) == ["Deployment/m"]
    assert apply_manifests(api, [deployment({"app": "m", "track": "stable"})]) == [
        "Deployment/m (recreated: its selector changed)"]
    got = client.AppsV1Api(api).read_namespaced_deployment("m", k8s_namespace)
    assert got.spec.selector.match_labels == {"app": "m", "track": "stable"}
    assert apply_manifests(api, [deployment({"app": "m", "track": "stable"})]) == ["Deployment/m"]  # then in place
