"""The API half of `chaosml cluster`: apply manifests, wait for Deployments and Jobs, list status; used by chaosml.cluster and the k8s tests."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from chaosml.errors import TargetError
from chaosml.targets.kubernetes.rollout import rollout_pending

#: the field manager of every server-side apply
FIELD_MANAGER = "chaosml"
#: where a namespaced manifest without ``metadata.namespace`` goes (the reference stack's namespace)
DEFAULT_NAMESPACE = "chaosml"


def apply_manifests(api_client: Any, docs: Iterable[dict[str, Any]], *, dry_run: bool = False) -> list[str]:
    """Server-side apply of every document (``dry_run``: validated by the API server, nothing stored)."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api_client)
    done = []
    for doc in docs:
        res = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        md = doc["metadata"]
        kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
        if dry_run:
            kwargs["dry_run"] = "All"
        if res.namespaced:
            kwargs["namespace"] = md.get("namespace", DEFAULT_NAMESPACE)
        try:
            res.server_side_apply(body=doc, name=md["name"], **kwargs)
        except Exception as e:
            if dry_run or not _selector_changed(doc, e):
                raise
            # a Deployment's selector cannot change in place (e.g. the reference model's gained track=stable):
            # delete it, its ReplicaSets and pods with it, and create it anew
            res.delete(name=md["name"], namespace=kwargs.get("namespace"), propagation_policy="Foreground")
            _wait_gone(res, md["name"], kwargs.get("namespace"), RECREATE_TIMEOUT_S)
            res.server_side_apply(body=doc, name=md["name"], **kwargs)
            done.append(f"{doc['kind']}/{md['name']} (recreated: its selector changed)")
            continue
        done.append(f"{doc['kind']}/{md['name']}")
    return done


#: how long a Deployment recreated for a changed selector may take to go (its pods' grace periods)
RECREATE_TIMEOUT_S = 120.0


def _selector_changed(doc: dict[str, Any], e: Exception) -> bool:
    """The API server refused to change a Deployment's immutable ``spec.selector``."""
    text = str(getattr(e, "body", "") or e)
    return (doc.get("kind") == "Deployment" and getattr(e, "status", None) == 422
            and "spec.selector" in text and "immutable" in text)


def _wait_gone(res: Any, name: str, namespace: str | None, timeout_s: float) -> None:
    from kubernetes.client.exceptions import ApiException

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            res.get(name=name, namespace=namespace)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        if time.monotonic() >= deadline:
            raise TargetError(f"Deployment {name} (being recreated for a changed selector) still there after {timeout_s:.0f}s")
        time.sleep(0.5)


def wait_available(api_client: Any, namespace: str, timeout_s: float) -> dict[str, str]:
    """Wait until every Deployment of the namespace is rolled out (:func:`rollout_pending`); name -> "ready/desired".
    Raises on timeout, naming what each unfinished Deployment waits for."""
    from kubernetes import client

    apps = client.AppsV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    while True:
        deps = apps.list_namespaced_deployment(namespace, _request_timeout=30).items
        counts = {d.metadata.name: f"{d.status.ready_replicas or 0}/{d.spec.replicas}" for d in deps}
        pending = {d.metadata.name: why for d in deps if (why := rollout_pending(d)) is not None}
        if deps and not pending:
            return counts
        if time.monotonic() >= deadline:
            raise TargetError(f"deployments in {namespace!r} not available within {timeout_s:.0f}s: {counts}"
                              + "".join(f"; {name}: {why}" for name, why in sorted(pending.items())))
        time.sleep(1.0)


def wait_job(api_client: Any, namespace: str, name: str, timeout_s: float) -> None:
    """Wait until a Job succeeded. Raises on timeout."""
    from kubernetes import client

    batch = client.BatchV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    while True:
        st = batch.read_namespaced_job_status(name, namespace, _request_timeout=30).status
        if st.succeeded:
            return
        if time.monotonic() >= deadline:
            raise TargetError(f"job {namespace}/{name} did not succeed within {timeout_s:.0f}s (failed pods: {st.failed or 0})")
        time.sleep(1.0)


def status_lines(api_client: Any, context: str, namespace: str) -> list[str]:
    """`chaosml cluster status`: the context, every node (roles, Ready) and the namespace's Deployments."""
    from kubernetes import client

    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    try:
        nodes = core.list_node(_request_timeout=10).items
    except Exception as e:
        raise TargetError(f"the API server of context {context} is not reachable: {e}") from e
    lines = [f"context {context}"]
    for n in nodes:
        ready = {c.type: c.status for c in n.status.conditions or []}.get("Ready")
        roles = ",".join(sorted(k.split("/", 1)[1] for k in n.metadata.labels or {} if k.startswith("node-role.kubernetes.io/"))) or "worker"
        lines.append(f"  node {n.metadata.name:<28} {roles:<14} Ready={ready}")
    deps = apps.list_namespaced_deployment(namespace, _request_timeout=10).items
    if not deps:
        lines.append(f"  no deployments in namespace {namespace}: `chaosml cluster up` applies manifests/")
    for d in deps:
        lines.append(f"  deployment {d.metadata.name:<22} ready {d.status.ready_replicas or 0}/{d.spec.replicas}"
                     f"  available {d.status.available_replicas or 0}")
    return lines
