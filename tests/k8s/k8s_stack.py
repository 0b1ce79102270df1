"""Helpers for the kubernetes-target tests: deploy manifests/ into a test namespace, make a target, wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosml.cluster import (
    STACK_MANIFESTS,
    apply_manifests,
    in_namespace,
    load_manifests,
    wait_available,
)
from chaosml.model.experiment import FaultSpec, KubernetesSpec
from chaosml.targets.kubernetes import KubernetesTarget

REPO = Path(__file__).resolve().parents[2]


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def deployment_doc(
    name: str,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    replicas: int = 1,
    *,
    annotations: dict[str, str] | None = None,
    grace: int | None = None,
) -> dict[str, Any]:
    """A Deployment whose selector is ``labels`` (also the pods' labels)."""
    meta: dict[str, Any] = {"labels": labels}
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"containers": containers}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {"metadata": meta, "spec": spec}},
    }


def stack_docs(ns: str, *, node_ports: bool = False, names: tuple[str, ...] = STACK_MANIFESTS) -> list[dict[str, Any]]:
    """The stack's manifests moved to ``ns``; without ``node_ports`` the fixed NodePorts are dropped
    (auto-assigned), so that namespaces of several tests never collide on them."""
    docs = [in_namespace(d, ns) for d in load_manifests([n for n in names if n != "namespace.yaml"])]
    if not node_ports:
        for d in docs:
            if d["kind"] == "Service":
                for p in d["spec"]["ports"]:
                    p.pop("nodePort", None)
    return docs


def deploy_stack(cluster: Any, ns: str, *, node_ports: bool = False, replicas: dict[str, int] | None = None) -> None:
    docs = stack_docs(ns, node_ports=node_ports)
    for d in docs:
        if d["kind"] == "Deployment" and replicas and d["metadata"]["name"] in replicas:
            d["spec"]["replicas"] = replicas[d["metadata"]["name"]]
    api = cluster.api_client()
    apply_manifests(api, docs)
    wait_available(api, ns, 60)


def make_target(cluster: Any, ns: str, **kw: Any) -> KubernetesTarget:
    spec = kw.pop("spec", None) or KubernetesSpec(namespace=ns)
    kw.setdefault("kind_config", REPO / "kind-config.yaml")
    return KubernetesTarget(spec, kubeconfig=cluster.verified_kubeconfig_path, **kw)


def fault(name: str, ftype: str, params: Any) -> FaultSpec:
    return FaultSpec(name=name, type=ftype, at=0.0, duration=1.0, params=params)


def events_of(target: KubernetesTarget, kind: str, subject: str | None = None) -> list[Any]:
    return [e for e in list(target.events) if e.kind == kind and (subject is None or e.subject == subject)]
