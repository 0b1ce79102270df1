"""Pods' containers through their node's Docker engine (dockershim): kill, pause, unpause by ID; used by KubernetesTarget and container-failure.

A container is acted on only when the engine's own labels say it belongs to the named pod of the
namespace (``io.kubernetes.pod.name`` / ``io.kubernetes.pod.namespace``, set by the kubelet), so a
stale or wrong ID never touches anything else. Containers of other runtimes (``containerd://`` on
kind) are refused with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chaosml.docker_engine import docker_client
from chaosml.errors import TargetError

#: the container-ID scheme of containers run by a Docker engine (dockershim)
DOCKER_SCHEME = "docker://"
DOCKER_TIMEOUT_S = 30


def docker_id(container_id: str, pod: str) -> str:
    """The Docker ID in ``docker://<id>``; a TargetError naming the runtime for any other scheme."""
    if not container_id.startswith(DOCKER_SCHEME):
        runtime = container_id.partition("://")[0] or "an unknown runtime"
        raise TargetError(
            f"pod {pod}: its container runs on {runtime} ({container_id}); container faults reach containers through "
            "their node's Docker engine (nodes whose kubelet uses dockershim), so this node is not supported")
    return container_id.removeprefix(DOCKER_SCHEME)


def _engine(host: str | None) -> Any:
    return docker_client(
        DOCKER_TIMEOUT_S,
        "container faults need the docker Python SDK: pip install 'chaosml[kubernetes]'",
        f"cannot reach the Docker engine {host or '(DOCKER_HOST or the local socket)'} of the node",
        base_url=host,
    )


def _container(client: Any, container_id: str, pod: str, namespace: str) -> Any:
    """The engine's container of ``pod`` (None when gone); refused when its labels name another pod."""
    import docker.errors

    try:
        c = client.containers.get(docker_id(container_id, pod))
    except docker.errors.NotFound:
        return None
    labels = c.labels or {}
    owner = (labels.get("io.kubernetes.pod.namespace"), labels.get("io.kubernetes.pod.name"))
    if owner != (namespace, pod):
        raise TargetError(f"container {container_id} belongs to {owner[0]}/{owner[1]}, not {namespace}/{pod}: not touched")
    return c


def _state(c: Any) -> str:
    c.reload()
    return str(c.attrs.get("State", {}).get("Status") or c.status)


@contextmanager
def _owned(host: str | None, container_id: str, pod: str, namespace: str) -> Iterator[Any]:
    """The engine's container of ``pod`` (None when gone), owner checked, with the engine closed after."""
    client = _engine(host)
    try:
        yield _container(client, container_id, pod, namespace)
    finally:
        client.close()


def kill(host: str | None, container_id: str, pod: str, namespace: str, sig: str) -> str:
    """Send ``sig`` to the container's main process; its state after (``missing`` when it was gone)."""
    with _owned(host, container_id, pod, namespace) as c:
        if c is None:
            return "missing"
        c.kill(signal=sig)
        return _state(c)


def pause(host: str | None, container_id: str, pod: str, namespace: str) -> str:
    """Freeze the container (cgroup freezer); its state after (``missing`` when it was gone)."""
    with _owned(host, container_id, pod, namespace) as c:
        if c is None:
            return "missing"
        c.pause()
        return _state(c)


def unpause(host: str | None, container_id: str, pod: str, namespace: str) -> str:
    """Thaw the container if it is paused (idempotent); one line saying what was done."""
    with _owned(host, container_id, pod, namespace) as c:
        if c is None:
            return f"container {container_id} of {pod} is gone: nothing to unpause"
        state = _state(c)
        if state != "paused":
            return f"container {container_id} of {pod} is {state}: nothing to unpause"
        c.unpause()
        state = _state(c)
        if state == "paused":
            raise TargetError(f"container {container_id} of {pod} is still paused; run `docker unpause` on its node's engine")
        return f"container {container_id} of {pod} unpaused"
