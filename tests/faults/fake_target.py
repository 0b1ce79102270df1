"""FakeTarget: every target capability in memory, recording what injectors did; used by the fast injector tests."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.errors import TargetError
from chaosml.targets.capabilities import PodContainer
from chaosml.targets.kubernetes import runtime
from chaosml.targets.supervisor import ReplicaStatus


@dataclass
class FakeTarget:
    """Groups of replicas, pods, links, Deployments and nodes held in dicts; ``calls`` lists every change made."""

    platform: str = "local"
    groups: dict[str, list[str]] = field(default_factory=lambda: {"model": ["model-0", "model-1", "model-2"], "feature-store": ["redis"]})
    labels: dict[str, list[str]] = field(default_factory=dict)  # label selector -> pod names
    replicas: dict[str, int] = field(default_factory=lambda: {"feature-store": 1})  # group -> Deployment replicas
    node_list: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path = Path(".")
    redis_url: str = "redis://127.0.0.1:1/0"  # nothing listens there: row counts read as "not answering"
    owns_redis: bool = True
    proxy_api_url: str | None = None
    owns_proxy: bool = True
    refuse: str | None = None  # guard() raises TargetError with this reason
    exec_output: str = ""  # what every exec_in_pod answers
    down: set[str] = field(default_factory=set)  # members stopped or killed
    container_ids: dict[str, str] = field(default_factory=dict)  # pod -> container ID (default docker://<pod>)
    paused: set[str] = field(default_factory=set)  # container IDs paused
    commands: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)  # node -> (stop, start)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    artifact: Path = Path(".")  # ModelVariants: the reference stack's artifact directory
    urls: dict[str, str] = field(default_factory=dict)  # ModelVariants: replica name -> its own address

    # ModelVariants
    def replica_urls(self) -> dict[str, str]:
        return dict(self.urls)

    # ReplicaGroups / ProcessControl / PodDeletion
    def members(self, group: str) -> list[ReplicaStatus]:
        return [ReplicaStatus(n, group, None if n in self.down else 1000 + i, n not in self.down, n not in self.down, 0)
                for i, n in enumerate(self.groups.get(group, []))]

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None:
        self.calls.append(("kill", (sorted(names), signal.Signals(sig).name)))
        self.down.update(names)

    def select(self, selector: str, group: str = "selector") -> list[ReplicaStatus]:
        return [ReplicaStatus(n, group, None, n not in self.down, n not in self.down, 0) for n in self.labels.get(selector, [])]

    def selector(self, group: str) -> str:
        return f"app={group}"

    def delete_pods(self, names: list[str], grace_period: float = 0.0) -> list[str]:
        self.guard()
        self.calls.append(("delete_pods", (sorted(names), grace_period)))
        self.down.update(names)
        return sorted(names)

    def stop_member(self, name: str) -> int:
        self.guard()
        self.calls.append(("stop_member", name))
        self.down.add(name)
        group = next((g for g, d in self.deployments.items() if d == name), None)
        before = self.replicas.get(group, 1) if group else 1
        if group:
            self.replicas[group] = 0
        return before

    def start_member(self, name: str, replicas: int | None = None) -> None:
        self.calls.append(("start_member", (name, replicas)))
        self.down.discard(name)
        group = next((g for g, d in self.deployments.items() if d == name), None)
        if group:
            self.replicas[group] = replicas if replicas is not None else 1

    def wait_group_ready(self, group: str, timeout_s: float) -> bool:
        return all(m.ready for m in self.members(group))

    # PodExec
    def exec_in_pod(self, name: str, argv: list[str], container: str | None = None) -> str:
        self.guard()
        self.calls.append(("exec_in_pod", (name, list(argv), container)))
        return self.exec_output

    # LedgerScope / ContextGuard
    def ledger_scope(self) -> dict[str, Any]:
        return {"platform": self.platform, "context": "fake", "namespace": "ns", "server": None, "kubeconfig": None}

    def guard(self) -> None:
        if self.refuse:
            raise TargetError(self.refuse)

    # ProxyLinks
    def links(self) -> dict[str, dict[str, str]]:
        return {"gateway": {}, "feature-store": {}, "model-0": {}, "model-1": {}}

    # DeploymentScaling
    @property
    def deployments(self) -> dict[str, str]:
        return {g: f"deploy-{g}" for g in self.replicas}

    @property
    def feature_store_group(self) -> str:
        return "feature-store"

    def deployment(self, group: str) -> str:
        return self.deployments[group]

    def desired_replicas(self, group: str) -> int:
        return self.replicas[group]

    # CanaryDeployments (by name, or the selector app=<group>)
    def _group_of(self, name: str) -> str:
        return next(g for g, d in self.deployments.items() if d == name)

    def find_deployments(self, ref: str) -> list[str]:
        return sorted(d for g, d in self.deployments.items() if ref in (d, f"app={g}"))

    def deployment_replicas(self, name: str) -> int:
        return self.replicas[self._group_of(name)]

    def deployment_pods(self, name: str) -> list[ReplicaStatus]:
        return self.members(self._group_of(name))

    def scale(self, deployment: str, replicas: int) -> int:
        self.calls.append(("scale", (deployment, replicas)))
        group = self._group_of(deployment)
        before, self.replicas[group] = self.replicas[group], replicas
        return before

    def wait_deployment_ready(self, name: str, timeout_s: float) -> str | None:
        return None if self.wait_group_ready(self._group_of(name), timeout_s) else f"{name}: not every pod Ready"

    # PodContainers
    def pod_containers(self, names: list[str], container: str | None = None) -> list[PodContainer]:
        return [PodContainer(n, "node-1", container or "main", self.container_ids.get(n, f"docker://{n}"), 0,
                             n not in self.down, None) for n in sorted(names)]

    def container_runtime(self, container: PodContainer) -> str:
        return runtime.path(container)  # pure: the ID scheme's path in words (refuses other runtimes), no I/O

    def container_fault(self, containers: list[PodContainer], action: str, sig: str = "SIGKILL") -> list[dict[str, Any]]:
        self.guard()
        self.calls.append(("container_fault", ([c.pod for c in containers], action, sig)))
        if action == "pause":
            self.paused.update(c.container_id for c in containers)
        return [{"pod": c.pod, "container_id": c.container_id, "state": "paused" if action == "pause" else "exited"}
                for c in containers]

    def unpause_containers(self, containers: list[PodContainer]) -> list[str]:
        self.calls.append(("unpause_containers", [c.pod for c in containers]))
        self.paused.difference_update(c.container_id for c in containers)
        return [f"{c.container_id} unpaused" for c in containers]

    # NodeControl
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.node_list)

    def node_commands(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        return self.commands.get(name)

    def node_ready(self, name: str) -> bool:
        return True
