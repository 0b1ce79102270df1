"""Reading and changing pods, Deployments and nodes through the API; used by KubernetesTarget, its pod watch and its offline undo.

Plain functions of a connected ``CoreV1Api``/``AppsV1Api`` and a namespace: no safety checks and no
events here (the target guards every fault action and records what it did).
"""

from __future__ import annotations

from typing import Any

from chaosml.errors import TargetError
from chaosml.targets.capabilities import PodContainer
from chaosml.targets.kubernetes.context import API_TIMEOUT_S
from chaosml.targets.supervisor import ReplicaStatus


# ------------------------------------------------------------------------------ pods
def pod_ready(pod: Any) -> bool:
    """Running, not terminating, and its Ready condition is True."""
    st = pod.status
    if st is None or st.phase != "Running" or pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])


def pod_restarts(pod: Any) -> int:
    """The restarts of all the pod's containers."""
    return sum(int(c.restart_count or 0) for c in (pod.status.container_statuses if pod.status else None) or [])


def container_ids(pod: Any) -> dict[str, str]:
    """Container name -> ``containerStatuses[].containerID`` (``docker://...``) of the pod's started containers."""
    return {c.name: c.container_id for c in (pod.status.container_statuses if pod.status else None) or [] if c.container_id}


def pod_container(pod: Any, name: str | None, docker_host: str | None, node_exec: tuple[str, ...] = ()) -> PodContainer:
    """The pod's container ``name`` (None: its first) as its status reports it; a TargetError when it has none."""
    names = [c.name for c in pod.spec.containers]
    want = name or names[0]
    if want not in names:
        raise TargetError(f"pod {pod.metadata.name} has no container {want!r}; its containers: {', '.join(names)}")
    st = next((c for c in (pod.status.container_statuses if pod.status else None) or [] if c.name == want), None)
    if st is None or not st.container_id:
        raise TargetError(f"pod {pod.metadata.name}: container {want!r} has not started (no container ID yet)")
    return PodContainer(pod=pod.metadata.name, node=pod.spec.node_name, container=want, container_id=st.container_id,
                        restarts=int(st.restart_count or 0), ready=bool(st.ready), docker_host=docker_host,
                        node_exec=node_exec)


def pod_status(pod: Any, group: str) -> ReplicaStatus:
    """A pod as the local target's :class:`ReplicaStatus` (no pid)."""
    running = bool(pod.status and pod.status.phase == "Running")
    return ReplicaStatus(name=pod.metadata.name, group=group, pid=None, running=running, ready=pod_ready(pod),
                         restarts=pod_restarts(pod))


def pod_live(pod: Any) -> bool:
    """Not terminating and not finished."""
    return pod.metadata.deletion_timestamp is None and (pod.status is None or pod.status.phase not in ("Succeeded", "Failed"))


def list_pods(core: Any, namespace: str, selector: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S).items)


def read_pods(core: Any, namespace: str, names: list[str]) -> dict[str, Any]:
    """name -> pod for every named pod; a missing one is a TargetError."""
    from kubernetes.client.exceptions import ApiException

    pods = {}
    for n in names:
        try:
            pods[n] = core.read_namespaced_pod(n, namespace, _request_timeout=API_TIMEOUT_S)
        except ApiException as e:
            if e.status == 404:
                raise TargetError(f"no pod {n!r} in namespace {namespace!r}") from e
            raise
    return pods


def delete_pod(core: Any, namespace: str, pod: Any, grace_period: float) -> None:
    """Delete one pod (grace period in seconds), only if it is still the same pod (its uid)."""
    from kubernetes.client.exceptions import ApiException

    try:
        core.delete_namespaced_pod(
            pod.metadata.name, namespace, grace_period_seconds=round(grace_period),
            body={"gracePeriodSeconds": round(grace_period), "preconditions": {"uid": pod.metadata.uid}},
            _request_timeout=API_TIMEOUT_S,
        )
    except ApiException as e:
        if e.status not in (404, 409):  # gone already (or replaced by a namesake)
            raise


# ------------------------------------------------------------------------ deployments
def scale_deployment(apps: Any, namespace: str, name: str, replicas: int) -> int:
    """Set a Deployment's replicas through the scale subresource; returns the previous count."""
    cur = int(apps.read_namespaced_deployment_scale(name, namespace, _request_timeout=API_TIMEOUT_S).spec.replicas or 0)
    if cur != replicas:
        apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}}, _request_timeout=API_TIMEOUT_S)
    return cur


def desired_replicas(apps: Any, namespace: str, name: str) -> int:
    d = apps.read_namespaced_deployment(name, namespace, _request_timeout=API_TIMEOUT_S)
    return int(d.spec.replicas or 0)


def parse_selector(selector: str) -> dict[str, str]:
    """``k=v,k2=v2`` (equality only) as a dict; a TargetError naming the bad term otherwise."""
    labels = {}
    for term in (t.strip() for t in selector.split(",")):
        k, eq, v = term.partition("=")
        if not eq or not k.strip() or "!" in k or v.startswith("="):
            raise TargetError(f"label selector {selector!r}: {term!r} is not key=value (only equality terms are supported)")
        labels[k.strip()] = v.strip()
    return labels


def labels_match(labels: dict[str, str] | None, want: dict[str, str]) -> bool:
    """Every ``want`` label is on ``labels`` with its value (an equality label selector)."""
    return all((labels or {}).get(k) == v for k, v in want.items())


def deployments_matching(apps: Any, namespace: str, ref: str) -> list[str]:
    """The Deployments ``ref`` names: ``k=v,...`` -> those whose pod template carries every label; else the one named ``ref``."""
    deps = apps.list_namespaced_deployment(namespace, _request_timeout=API_TIMEOUT_S).items
    if "=" not in ref:
        return [d.metadata.name for d in deps if d.metadata.name == ref]
    want = parse_selector(ref)
    return sorted(d.metadata.name for d in deps
                  if labels_match(d.spec.template.metadata.labels if d.spec.template.metadata else None, want))


def deployment_selector(apps: Any, namespace: str, name: str) -> str:
    """The Deployment's pod selector (``spec.selector.matchLabels``) as ``k=v,...``."""
    d = apps.read_namespaced_deployment(name, namespace, _request_timeout=API_TIMEOUT_S)
    return ",".join(f"{k}={v}" for k, v in sorted((d.spec.selector.match_labels or {}).items()))


# ------------------------------------------------------------------------------ nodes
def list_nodes(core: Any, namespace: str) -> list[dict[str, Any]]:
    """Every node: name, roles, ready, pods of ``namespace`` on it, whether it is a control plane."""
    nodes = core.list_node(_request_timeout=API_TIMEOUT_S).items
    pods = core.list_namespaced_pod(namespace, _request_timeout=API_TIMEOUT_S).items
    on: dict[str, int] = {}
    for p in pods:
        if p.spec.node_name and p.metadata.deletion_timestamp is None:
            on[p.spec.node_name] = on.get(p.spec.node_name, 0) + 1
    out = []
    for n in nodes:
        labels = n.metadata.labels or {}
        roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
        ready = {c.type: c.status for c in (n.status.conditions or [])}.get("Ready")
        out.append({"name": n.metadata.name, "roles": roles, "ready": ready == "True", "pods": on.get(n.metadata.name, 0),
                    "control_plane": bool({"control-plane", "master"} & set(roles))})
    return sorted(out, key=lambda d: d["name"])


def node_ready(core: Any, name: str) -> bool:
    n = core.read_node(name, _request_timeout=API_TIMEOUT_S)
    return {c.type: c.status for c in (n.status.conditions or [])}.get("Ready") == "True"


def exec_in_pod(core: Any, namespace: str, pod: str, argv: list[str], container: str | None = None) -> str:
    """Run ``argv`` in a pod's container through the API's exec (as ``kubectl exec``); its stdout and stderr."""
    from kubernetes.stream import stream

    kwargs: dict[str, Any] = {"command": list(argv), "stderr": True, "stdin": False, "stdout": True, "tty": False,
                              "_request_timeout": API_TIMEOUT_S}
    if container:
        kwargs["container"] = container
    return str(stream(core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs))
