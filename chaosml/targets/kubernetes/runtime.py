"""Pods' containers through their node's runtime: kill, pause, unpause by ID; used by KubernetesTarget and container-failure.

The container-ID scheme chooses the path: ``docker://`` through the node's Docker engine (dockershim,
runtime_docker.py), ``containerd://`` through ``ctr -n k8s.io`` on the node (kind, runtime_containerd.py);
any other runtime is refused with the reason. A container is acted on only when the runtime's own labels
say it belongs to the named pod of the namespace (``io.kubernetes.pod.name`` /
``io.kubernetes.pod.namespace``, set by the kubelet), so a stale or wrong ID never touches anything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from chaosml.errors import TargetError
from chaosml.targets.capabilities import PodContainer
from chaosml.targets.kubernetes import runtime_containerd, runtime_docker

#: the container-ID schemes of the runtimes container faults reach
DOCKER_SCHEME = "docker://"
CONTAINERD_SCHEME = "containerd://"


class RuntimeContainer(Protocol):
    """One container as a runtime path reaches it (runtime_docker.DockerContainer, runtime_containerd.CtrContainer)."""

    resume_hint: str  # what to run by hand when a resume did not take

    def labels(self) -> dict[str, str] | None: ...

    def kill(self, sig: str) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def state(self) -> str: ...

    def close(self) -> None: ...


def _scheme(c: PodContainer) -> tuple[str, str]:
    """(scheme, runtime ID) of the container; a TargetError naming the runtime when no path reaches it."""
    for scheme in (DOCKER_SCHEME, CONTAINERD_SCHEME):
        if c.container_id.startswith(scheme):
            return scheme, c.container_id.removeprefix(scheme)
    runtime = c.container_id.partition("://")[0] or "an unknown runtime"
    raise TargetError(
        f"pod {c.pod}: its container runs on {runtime} ({c.container_id}); container faults reach containers through "
        "their node's Docker engine (docker://, dockershim) or containerd (containerd://, e.g. kind), so this node is not supported")


def path(c: PodContainer) -> str:
    """Which runtime path reaches the container, in words (refused like :func:`kill` when none does); touches nothing."""
    scheme, _ = _scheme(c)
    if scheme == DOCKER_SCHEME:
        return runtime_docker.describe(c.docker_host)
    return runtime_containerd.describe(runtime_containerd.node_prefix(c.node, c.node_exec, c.docker_host))


def _open(c: PodContainer) -> RuntimeContainer:
    scheme, rid = _scheme(c)
    if scheme == DOCKER_SCHEME:
        return runtime_docker.DockerContainer(c.docker_host, rid)
    return runtime_containerd.CtrContainer(runtime_containerd.node_prefix(c.node, c.node_exec, c.docker_host), rid)


@contextmanager
def _owned(c: PodContainer, namespace: str) -> Iterator[RuntimeContainer | None]:
    """The runtime's container of ``c.pod`` (None when gone), owner checked, with the runtime closed after."""
    rc = _open(c)
    try:
        labels = rc.labels()
        if labels is not None:
            owner = (labels.get("io.kubernetes.pod.namespace"), labels.get("io.kubernetes.pod.name"))
            if owner != (namespace, c.pod):
                raise TargetError(f"container {c.container_id} belongs to {owner[0]}/{owner[1]}, not {namespace}/{c.pod}: not touched")
        yield None if labels is None else rc
    finally:
        rc.close()


def kill(c: PodContainer, namespace: str, sig: str) -> str:
    """Send ``sig`` to the container's main process; its state after (``missing`` when it was gone)."""
    with _owned(c, namespace) as rc:
        if rc is None:
            return "missing"
        rc.kill(sig)
        return rc.state()


def pause(c: PodContainer, namespace: str) -> str:
    """Freeze the container (cgroup freezer); its state after (``missing`` when it was gone)."""
    with _owned(c, namespace) as rc:
        if rc is None:
            return "missing"
        rc.pause()
        return rc.state()


def unpause(c: PodContainer, namespace: str) -> str:
    """Thaw the container if it is paused (idempotent); one line saying what was done."""
    with _owned(c, namespace) as rc:
        if rc is None:
            return f"container {c.container_id} of {c.pod} is gone: nothing to unpause"
        state = rc.state()
        if state != "paused":
            return f"container {c.container_id} of {c.pod} is {state}: nothing to unpause"
        rc.resume()
        state = rc.state()
        if state == "paused":
            raise TargetError(f"container {c.container_id} of {c.pod} is still paused; {rc.resume_hint}")
        return f"container {c.container_id} of {c.pod} unpaused"
