"""container-failure: kill or pause a pod's container in place through its node's runtime (kubernetes target). Found by the fault-type registry.

Unlike pod-kill, the pod stays: ``action: kill`` sends ``signal`` to the container's main process
(``docker kill`` / ``ctr task kill``) and the kubelet restarts it in the same pod (restartCount + 1, with CrashLoopBackOff
back-off from the second restart on); ``action: pause`` freezes it (``docker pause`` / ``ctr task pause``) until recover
unpauses it: its readiness probe takes it out of the Service, its liveness probe may restart it. The
pod watch follows each pod to Ready again and records ``container_recovered`` (readiness lost,
restarted, Ready, seconds after the fault) with the container IDs and restart counts.

Victims are chosen like pod-kill's (``mode``/``value`` among the running pods of ``service`` or
``selector``, seeded) in ``undo_record``, which holds every container's ID, node and runtime access,
so the offline undoer (``chaosml rollback``) unpauses them from the record alone. The container-ID
scheme chooses the path (targets/kubernetes/runtime.py): ``docker://`` (dockershim) through the node's
Docker engine, ``target.kubernetes.nodes.<node>.docker_host`` (else ``DOCKER_HOST`` or the local
socket); ``containerd://`` (kind) through ``ctr -n k8s.io`` run by ``nodes.<node>.exec`` (a command
prefix, e.g. ``[ssh, node-1]``), else ``docker exec <node>`` (a kind node's container). Any other
runtime is refused before anything is applied.
"""

from __future__ import annotations

import random
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaosml.errors import TargetError
from chaosml.faults._victims import Mode, choose, mode_errors, service_errors, service_replicas, victim_count
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    StackFacts,
    plural,
)
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import LedgerScope, PodContainer, PodContainers
from chaosml.targets.kubernetes.runtime import unpause
from chaosml.targets.supervisor import ReplicaStatus

NAME = "container-failure"
PAST = {"kill": "killed", "pause": "paused"}
#: how often recover polls the victims' pods for Ready (seconds)
POLL_S = 0.25


@dataclass(frozen=True, slots=True)
class ContainerFailureParams:
    """Kill or pause the container of chosen pods in place; the kubelet restarts a killed one, probes judge a paused one."""

    # service, mode, value: as _victims.Selection, not inherited so that action stays second (plan lists params in field order)
    service: str = "model"  # the app label value (reference stack) or a custom stack's service
    action: Literal["kill", "pause"] = "kill"
    mode: Mode = "one"
    value: float | None = None  # fixed: how many pods; percent: 1-100
    signal: Literal["SIGKILL", "SIGTERM"] = "SIGKILL"  # action kill
    container: str | None = None  # the container's name in the pod (None: the pod's first container)
    selector: str | None = None  # label selector overriding the service's own
    ready_timeout_s: float = field(default=0.0, metadata={"duration": True})  # recover waits up to this long for the pods Ready, s (0: notes what it sees)

    def check(self) -> list[tuple[str, str]]:
        errors = mode_errors(self.mode, self.value)
        if self.action == "pause" and self.signal != "SIGKILL":
            errors.append(("signal", "is only used with action kill"))
        if self.ready_timeout_s < 0:
            errors.append(("ready_timeout_s", "must be >= 0"))
        return errors


class KubernetesContainers(PodContainers, LedgerScope, Protocol):
    """What container-failure needs of the kubernetes target."""


def _members(target: KubernetesContainers, p: ContainerFailureParams) -> list[ReplicaStatus]:
    """The pods the victims are chosen among: those ``selector`` matches, else the service's."""
    return list(target.select(p.selector) if p.selector else target.members(p.service))


def _ref(c: dict[str, Any]) -> PodContainer:
    return PodContainer(pod=c["pod"], node=c["node"], container=c["container"], container_id=c["container_id"],
                        restarts=int(c["restarts"]), ready=bool(c["ready"]), docker_host=c["docker_host"],
                        node_exec=tuple(c.get("exec") or ()))


class ContainerFailure:
    """Kill or pause the chosen pods' containers per injection; recover unpauses and waits for the pods Ready."""

    def __init__(self, spec: FaultSpec, target: KubernetesContainers, context: FaultContext) -> None:
        self.spec = spec
        self.params: ContainerFailureParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}
        self._applied_t: dict[int, float] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        """Choose the pods now and read their containers (ID, node, runtime path); refuse a runtime no path reaches."""
        p = self.params
        members = _members(self.target, p)
        running = sorted(m.name for m in members if m.running)
        count = victim_count(p.mode, p.value, len(members))
        victims = choose(self._rng, running, count)
        containers = self.target.pod_containers(victims, p.container) if victims else []
        paths = [self.target.container_runtime(c) for c in containers]
        record = {**self.target.ledger_scope(), "service": p.service, "selector": p.selector, "action": p.action,
                  "signal": p.signal, "replicas": len(members), "running_before": len(running), "chosen": count,
                  "containers": [{"pod": c.pod, "node": c.node, "container": c.container, "container_id": c.container_id,
                                  "restarts": c.restarts, "ready": c.ready, "docker_host": c.docker_host,
                                  "exec": list(c.node_exec), "runtime": path} for c, path in zip(containers, paths, strict=True)]}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        containers = [_ref(c) for c in record["containers"]]
        t = time.time()
        self._applied_t[injection] = t
        results = self.target.container_fault(containers, record["action"], record["signal"]) if containers else []
        done = [r for r in results if "error" not in r and r["state"] != "missing"]
        p = self.params
        if not record["replicas"]:
            why = f"no pods of {'selector ' + repr(p.selector) if p.selector else 'service ' + repr(p.service)}"
        else:
            why = f"{record['running_before']} of {record['replicas']} pods running"
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply",
            ok=bool(done) and len(done) == record["chosen"], targets=tuple(c.pod for c in containers),
            detail={"action": record["action"], "signal": record["signal"] if record["action"] == "kill" else None,
                    "mode": p.mode, "value": p.value, "replicas": record["replicas"], "containers": results},
            no_effect=None if done else f"{PAST[record['action']]} no container: " + (
                "; ".join(r.get("error") or f"{r['pod']}: container {r['state']}" for r in results) or why),
        )

    def recover(self, injection: int) -> FaultEvent:
        """Unpause what was paused, then wait (``ready_timeout_s``) for every victim pod Ready; per pod what it shows."""
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        containers = [_ref(c) for c in record["containers"]]
        detail: dict[str, Any] = {"action": record["action"]}
        ok = True
        if record["action"] == "pause" and containers:
            try:
                detail["unpaused"] = self.target.unpause_containers(containers)
            except Exception as e:  # noqa: BLE001 - reported; the ledger keeps the record for rollback
                detail["unpause_error"] = str(e)
                ok = False
        detail["pods"] = self._wait_ready(containers, self._applied_t.get(injection, t))
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="recover", ok=ok,
                          targets=tuple(c.pod for c in containers), detail=detail)

    def _wait_ready(self, containers: list[PodContainer], applied_t: float) -> list[dict[str, Any]]:
        """Each victim's container now (after up to ``ready_timeout_s`` for all Ready; the watch times the way back)."""
        deadline = time.monotonic() + self.params.ready_timeout_s
        names = [c.pod for c in containers]
        while True:
            try:
                now = {c.pod: c for c in self.target.pod_containers(names, self.params.container)}
                error = None
            except Exception as e:  # noqa: BLE001 - a pod may be gone (its ReplicaSet replaced it); reported
                now, error = {}, str(e)
            if (names and all(n in now and now[n].ready for n in names)) or time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
        out = []
        for c in containers:
            cur = now.get(c.pod)
            out.append({"pod": c.pod, "container_id": c.container_id, "restarts_before": c.restarts,
                        "container_id_now": cur.container_id if cur else None, "restarts": cur.restarts if cur else None,
                        "ready": bool(cur and cur.ready), "seen_s": round(time.time() - applied_t, 3),
                        **({"error": error} if error and cur is None else {})})
        return out


def undo(record: dict[str, Any]) -> str:
    """Unpause the paused containers from the record alone (idempotent); a kill needs no undo (the kubelet restarts)."""
    if record.get("action") != "pause":
        pods = ", ".join(c["pod"] for c in record.get("containers", [])) or "nothing"
        return f"container-failure kill of {pods}: nothing to undo (the kubelet restarts the container)"
    ns = str(record.get("namespace") or "")
    lines = [unpause(_ref(c), ns) for c in record.get("containers", [])]
    return "container-failure pause: " + ("; ".join(lines) or "no container was paused")


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: ContainerFailureParams = fault.params
    injections = plural(fault.repeat.count, "injection")
    what = f"container {p.container!r}" if p.container else "the first container"
    how = (f"killed with {p.signal} in place (the kubelet restarts it: restartCount + 1, back-off from the second restart)"
           if p.action == "kill" else
           "paused until recovered (readiness probes take the pod out; liveness probes may restart it)")
    how += f"; {_runtime_paths(target)}"
    svc = next((s for s in target.services if s.name == p.service), None)
    n = service_replicas(target, p.service)
    selector = p.selector or f"app={p.service}"
    if p.selector or (target.stack == "custom" and svc is not None and svc.selector):
        return BlastRadius(fault.name, fault.type, None, None,
                           f"{what} of {p.mode} pod(s) matching {selector!r} per injection, {injections}; {how}")
    victims = victim_count(p.mode, p.value, n)
    text = f"{what} of {victims} of {plural(n, 'pod')} matching {selector!r} per injection, {injections}; {how}"
    return BlastRadius(fault.name, fault.type, victims, n, text)


def _runtime_paths(target: TargetSpec) -> str:
    """Which runtime path each container ID scheme will take, with the nodes configured (known before the cluster)."""
    nodes = target.kubernetes.nodes if target.kubernetes is not None else {}
    engines = [f"{n}: {a.docker_host}" for n, a in nodes.items() if a.docker_host]
    execs = [f"{n}: `{shlex.join(a.exec)}`" for n, a in nodes.items() if a.exec]
    return (f"reached by container ID: docker:// through the node's Docker engine ({_or_else(engines, 'DOCKER_HOST or the local socket')}), "
            f"containerd:// with `ctr -n k8s.io` run by {_or_else(execs, '`docker exec <node>` (kind)')}")


def _or_else(configured: list[str], default: str) -> str:
    return "; ".join([*configured, f"else {default}"]) if configured else default


def on_cluster(fault: FaultSpec, target: KubernetesContainers, nodes: list[dict[str, Any]]) -> str:
    """The pods one injection would choose among now, and the runtime path of each one's container."""
    p: ContainerFailureParams = fault.params
    members = _members(target, p)
    running = sorted(m.name for m in members if m.running)
    paths: dict[str, list[str]] = {}
    for c in target.pod_containers(running, p.container) if running else []:
        try:
            path = target.container_runtime(c)
        except TargetError as e:
            path = f"refused ({e})"
        paths.setdefault(path, []).append(c.pod)
    sel = p.selector or target.selector(p.service)
    return (f"{victim_count(p.mode, p.value, len(members))} of {len(members)} pods matching {sel!r} per injection, chosen "
            f"at apply among the running: {', '.join(running) or 'none'}; runtime: "
            + ("; ".join(f"{path} ({', '.join(pods)})" for path, pods in paths.items()) or "nothing (no running pod)"))


def check(params: ContainerFailureParams, facts: StackFacts) -> list[tuple[str, str]]:
    """The service is the stack's, and mode fixed hits no more pods than it has (when known)."""
    return service_errors(params.service, params.selector, params.mode, params.value, facts)


FAULT_TYPE = FaultType(
    name=NAME,
    params=ContainerFailureParams,
    injectors={"kubernetes": ContainerFailure},
    undoers={"kubernetes": undo},
    capabilities={"kubernetes": (KubernetesContainers,)},
    severity="medium",
    blast_radius=blast_radius,
    check=check,
    renamed={"ready_timeout": "ready_timeout_s"},
    on_cluster=on_cluster,
)
