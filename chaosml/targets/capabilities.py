"""Typed target capabilities: the small protocols fault injectors need from a target; implemented by the targets, declared by fault types.

A fault type names, per platform, the protocols its injector takes the target as
(:attr:`chaosml.model.faulttype.FaultType.capabilities`); :func:`target_class` says which class
each platform and stack runs, and :func:`missing_for` which declared members that class lacks, so
validate and plan refuse a fault on a target that cannot take it before anything starts.
"""

from __future__ import annotations

import importlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from chaosml.model.faulttype import FaultType, missing_capabilities
from chaosml.targets.supervisor import ReplicaStatus

#: (platform, stack) -> "module:Class" of the target adapter (imported only when asked)
TARGET_CLASSES: dict[tuple[str, str], str] = {
    ("local", "reference"): "chaosml.targets.local:LocalTarget",
    ("local", "custom"): "chaosml.targets.services:ServicesTarget",
    ("kubernetes", "reference"): "chaosml.targets.kubernetes:KubernetesTarget",
    ("kubernetes", "custom"): "chaosml.targets.kubernetes:KubernetesTarget",
}


@runtime_checkable
class OnPlatform(Protocol):
    """Every target: which platform's injectors and undoers apply to it."""

    platform: str


class ReplicaGroups(Protocol):
    """Named groups of replicas (processes or pods) that can be listed and killed by name."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None: ...


class ModelVariants(Protocol):
    """Reference-stack replicas whose admin endpoint (``/admin/model``) serves a degraded model variant, trained from the artifact."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    @property
    def artifact(self) -> Path: ...

    def replica_urls(self) -> dict[str, str]: ...


class PodDeletion(Protocol):
    """Kubernetes pods: chosen by label selector, deleted with a grace period (the ReplicaSet replaces them)."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    def select(self, selector: str, group: str = "selector") -> list[ReplicaStatus]: ...

    def selector(self, group: str) -> str: ...

    def delete_pods(self, names: list[str], grace_period: float = 0.0) -> list[str]: ...


class PodExec(Protocol):
    """Kubernetes pods of a group, and a command run inside one of them (the API's exec, RBAC pods/exec)."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    def exec_in_pod(self, name: str, argv: list[str], container: str | None = None) -> str: ...


class LedgerScope(Protocol):
    """Which cluster and namespace a ledger record belongs to (so rollback refuses another cluster)."""

    def ledger_scope(self) -> dict[str, Any]: ...


class ContextGuard(Protocol):
    """Refuses (raises) when the cluster context is not the allowed one any more; called before every change."""

    def guard(self) -> None: ...


class ProxyLinks(Protocol):
    """A Toxiproxy API in front of the stack's links (proxy name -> listen/upstream)."""

    @property
    def proxy_api_url(self) -> str | None: ...

    @property
    def owns_proxy(self) -> bool: ...

    def links(self) -> dict[str, dict[str, str]]: ...


class FeatureRows(Protocol):
    """The feature store's Redis, reachable from the harness."""

    @property
    def redis_url(self) -> str: ...

    @property
    def owns_redis(self) -> bool: ...


class ProcessControl(Protocol):
    """Supervised processes that can be held stopped and started again by member name."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    def stop_member(self, name: str) -> None: ...

    def start_member(self, name: str) -> None: ...

    def wait_group_ready(self, group: str, timeout_s: float) -> bool: ...


class DeploymentScaling(Protocol):
    """Kubernetes Deployments of groups, scaled to zero and back (``stop_member`` returns the replicas before)."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    @property
    def feature_store_group(self) -> str: ...

    def deployment(self, group: str) -> str: ...

    def desired_replicas(self, group: str) -> int: ...

    def stop_member(self, name: str) -> int: ...

    def start_member(self, name: str, replicas: int | None = None) -> None: ...

    def wait_group_ready(self, group: str, timeout_s: float) -> bool: ...


class CanaryDeployments(Protocol):
    """Kubernetes Deployments by name or pod labels: scaled (``scale`` returns the replicas before), their pods
    listed, waited on until rolled out and Ready (``wait_deployment_ready``: None, or what is missing)."""

    def deployment(self, group: str) -> str: ...

    def find_deployments(self, ref: str) -> list[str]: ...

    def deployment_replicas(self, name: str) -> int: ...

    def deployment_pods(self, name: str) -> list[ReplicaStatus]: ...

    def scale(self, deployment: str, replicas: int) -> int: ...

    def wait_deployment_ready(self, name: str, timeout_s: float) -> str | None: ...


class PrometheusEndpoint(Protocol):
    """A Prometheus the target started for the run (local: ``monitoring.prometheus.local``); None when it started none."""

    @property
    def prometheus_url(self) -> str | None: ...


class NodeControl(Protocol):
    """The cluster's nodes: listed with their pod counts, and asked whether one is Ready."""

    def nodes(self) -> list[dict[str, Any]]: ...

    def node_ready(self, name: str) -> bool: ...


class NodeCommands(Protocol):
    """The commands that take a node down and bring it back (``target.kubernetes.nodes.<node>.stop/start``), if any."""

    def node_commands(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None: ...


@dataclass(frozen=True, slots=True)
class PodContainer:
    """One container of a pod as the pod's status reports it, and how its node's runtime is reached."""

    pod: str
    node: str | None
    container: str
    container_id: str  # containerStatuses[].containerID: docker://<id> (dockershim), containerd://<id> (kind)
    restarts: int
    ready: bool
    docker_host: str | None  # target.kubernetes.nodes.<node>.docker_host (None: DOCKER_HOST / the local socket)
    node_exec: tuple[str, ...] = ()  # target.kubernetes.nodes.<node>.exec: runs ctr on the node (containerd; (): docker exec <node>)


class PodContainers(Protocol):
    """Kubernetes pods' containers, killed or paused in place through their node's runtime (the pod stays;
    the kubelet restarts a killed container, probes decide on a paused one)."""

    def members(self, group: str) -> list[ReplicaStatus]: ...

    def select(self, selector: str, group: str = "selector") -> list[ReplicaStatus]: ...

    def selector(self, group: str) -> str: ...

    def pod_containers(self, names: list[str], container: str | None = None) -> list[PodContainer]: ...

    def container_runtime(self, container: PodContainer) -> str: ...

    def container_fault(self, containers: list[PodContainer], action: str, sig: str = "SIGKILL") -> list[dict[str, Any]]: ...

    def unpause_containers(self, containers: list[PodContainer]) -> list[str]: ...


def target_class(platform: str, stack: str) -> type:
    """The adapter class that runs ``platform`` with ``stack``."""
    module, _, name = TARGET_CLASSES[(platform, stack)].partition(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def missing_for(fault_type: FaultType, platform: str, stack: str) -> list[str]:
    """Declared capabilities (``Protocol.member``) the platform's target class lacks; [] when all are there."""
    return missing_capabilities(fault_type.capabilities.get(platform, ()), target_class(platform, stack))


def capability_issue(fault_type: FaultType, platform: str, stack: str) -> str | None:
    """Why ``fault_type`` cannot run on ``platform`` with ``stack`` (unsupported, or capabilities missing), or None."""
    issue = fault_type.support_issue(platform, stack)
    if issue is not None:
        return issue
    missing = missing_for(fault_type, platform, stack)
    if missing:
        return (f"{fault_type.name}: the {platform} target ({stack} stack) lacks {', '.join(missing)}; "
                f"it runs on: {', '.join(fault_type.platforms)}")
    return None
