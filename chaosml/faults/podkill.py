"""pod-kill: kill replicas of a service by mode; the supervisor (local) or ReplicaSet (kubernetes) replaces them. Found by the fault-type registry.

Local target: the victims get ``signal``. Kubernetes target: their pods are deleted with
``grace_period_s`` (``selector`` overrides the service's own label selector). Victims are chosen,
seeded, in ``undo_record``; a kill needs no undo beyond the target's own restart.
"""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chaosml.faults._victims import Selection, choose, mode_errors, service_errors, service_replicas
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    StackFacts,
    plan_number,
    plan_seconds,
    plural,
)
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import LedgerScope, PodDeletion, ReplicaGroups
from chaosml.targets.supervisor import ReplicaStatus

NAME = "pod-kill"


@dataclass(frozen=True, slots=True)
class PodKillParams(Selection):
    """Kill replicas of a service; the supervisor (or ReplicaSet) replaces them."""

    signal: Literal["SIGKILL", "SIGTERM"] = "SIGKILL"  # local target
    grace_period_s: float = 0.0  # kubernetes target: pod deletion grace period, s
    selector: str | None = None  # kubernetes target: label selector overriding app=<service>

    def check(self) -> list[tuple[str, str]]:
        errors = mode_errors(self.mode, self.value)
        if self.grace_period_s < 0:
            errors.append(("grace_period_s", "must be >= 0"))
        return errors


class KubernetesPods(PodDeletion, LedgerScope, Protocol):
    """What pod-kill needs of the kubernetes target."""


class _Kill:
    """Shared by both platforms: choose ``victim_count`` running replicas at random (seeded) in undo_record."""

    def __init__(self, spec: FaultSpec, context: FaultContext) -> None:
        self.spec = spec
        self.params: PodKillParams = spec.params
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._victims: dict[int, list[str]] = {}
        self._counts: dict[int, tuple[int, int, int]] = {}

    def _members(self) -> list[ReplicaStatus]:
        raise NotImplementedError

    def _scope(self) -> dict[str, Any]:
        return {}

    def _kill(self, victims: list[str]) -> None:
        raise NotImplementedError

    def undo_record(self, injection: int) -> dict[str, Any]:
        """Choose the victims now; a kill needs no undo beyond the target's own restart."""
        members = self._members()
        running = sorted(m.name for m in members if m.running)
        count = self.params.victim_count(len(members))
        victims = choose(self._rng, running, count)
        self._victims[injection] = victims
        self._counts[injection] = (len(members), len(running), count)
        return {"service": self.params.service, "victims": victims, "replicas": len(members), **self._scope()}

    def apply(self, injection: int) -> FaultEvent:
        if injection not in self._victims:
            self.undo_record(injection)
        victims = self._victims[injection]
        replicas, running, count = self._counts[injection]
        t = time.time()
        self._kill(victims)
        p = self.params
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=len(victims) == count, targets=tuple(victims),
            detail={"service": p.service, "mode": p.mode, "value": p.value, "signal": p.signal, "grace_period": p.grace_period_s,
                    "selector": p.selector, "replicas": replicas, "running_before": running, "killed": len(victims)},
            no_effect=None if victims else self._nothing_killed(replicas, running),
        )

    def _nothing_killed(self, replicas: int, running: int) -> str:
        """Why an injection chose no victim: the selection was empty, or nothing in it was running."""
        p = self.params
        what = f"pods matching {p.selector!r}" if p.selector else f"replicas of service {p.service!r}"
        if not replicas:
            return f"killed nothing: there are no {what}"
        return f"killed nothing: {running} of {replicas} {what} running"

    def recover(self, injection: int) -> FaultEvent:
        """Nothing to undo (the supervisor restarts replicas); record what is ready now."""
        members = self._members()
        return FaultEvent(
            t=time.time(), fault=self.spec.name, injection=injection, action="recover", ok=True,
            targets=tuple(self._victims.get(injection, ())),
            detail={"ready": sum(1 for m in members if m.ready), "desired": len(members)},
        )


class LocalPodKill(_Kill):
    """Send ``params.signal`` to the victims among the service's replica processes."""

    def __init__(self, spec: FaultSpec, target: ReplicaGroups, context: FaultContext) -> None:
        super().__init__(spec, context)
        self.target = target

    def _members(self) -> list[ReplicaStatus]:
        return list(self.target.members(self.params.service))

    def _kill(self, victims: list[str]) -> None:
        self.target.kill(victims, signal.Signals[self.params.signal])


class KubernetesPodKill(_Kill):
    """Delete the victims among the service's pods (or the pods ``params.selector`` matches)."""

    def __init__(self, spec: FaultSpec, target: KubernetesPods, context: FaultContext) -> None:
        super().__init__(spec, context)
        self.target = target

    def _members(self) -> list[ReplicaStatus]:
        if self.params.selector:
            return list(self.target.select(self.params.selector))
        return list(self.target.members(self.params.service))

    def _scope(self) -> dict[str, Any]:
        return {**self.target.ledger_scope(), "selector": self.params.selector, "grace_period": self.params.grace_period_s}

    def _kill(self, victims: list[str]) -> None:
        self.target.delete_pods(victims, grace_period=self.params.grace_period_s)


def undo(record: dict[str, Any]) -> str:
    """A killed replica is replaced by its supervisor (or ReplicaSet): nothing to put back."""
    return f"pod-kill of {', '.join(record.get('victims', [])) or 'nothing'}: nothing to undo"


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: PodKillParams = fault.params
    injections = plural(fault.repeat.count, "injection")
    if target.platform == "kubernetes" and target.stack == "custom" and target.kubernetes is not None:
        svc = next(s for s in target.services if s.name == p.service)
        selector = p.selector or ",".join(f"{k}={v}" for k, v in sorted((svc.selector or {}).items()))
        value = plan_number(p.value) if p.value is not None else "?"
        count = {"one": "1 pod", "all": "every pod", "fixed": f"{value} pod(s)", "percent": f"{value}% of the pods"}[p.mode]
        text = (f"{count} matching {selector!r} in namespace {target.kubernetes.namespace!r} per injection, {injections}; "
                f"deleted with grace period {plan_seconds(p.grace_period_s)}; the ReplicaSet replaces them "
                "(`chaosml plan` with the cluster reachable names the pods)")
        return BlastRadius(fault.name, fault.type, None, None, text)
    n = service_replicas(target, p.service)
    victims = p.victim_count(n)
    pct = round(100 * victims / n) if n else 0
    if target.platform == "kubernetes" and target.kubernetes is not None:
        selector = p.selector or f"app={p.service}"
        what = f"{victims} of {n} pods matching {selector!r} in namespace {target.kubernetes.namespace!r}"
        how = f"deleted with grace period {plan_seconds(p.grace_period_s)}; the ReplicaSet replaces them"
    else:
        what = f"{victims} of {plural(n, 'replica')} of {p.service!r}"
        how = f"killed with {p.signal}; restarted after {plan_seconds(target.restart_delay)}"
    text = f"{what} ({pct}%) per injection, {injections}; {how}"
    if victims == n:
        text += "; every replica: expect a full outage until they are back"
    return BlastRadius(fault.name, fault.type, victims, n, text)


def on_cluster(fault: FaultSpec, target: KubernetesPods, nodes: list[dict[str, Any]]) -> str:
    """The pods one injection would choose among now."""
    p: PodKillParams = fault.params
    names = [m.name for m in (target.select(p.selector) if p.selector else target.members(p.service))]
    victims = p.victim_count(len(names))
    sel = p.selector or target.selector(p.service)
    return (f"{victims} of {len(names)} pods matching {sel!r} per injection "
            f"({round(100 * victims / len(names)) if names else 0}%), chosen at apply among: {', '.join(names) or 'none'}")


def check(params: PodKillParams, facts: StackFacts) -> list[tuple[str, str]]:
    """The service is the stack's, and mode fixed kills no more replicas than it has (when known)."""
    return service_errors(params.service, params.selector, params.mode, params.value, facts)


FAULT_TYPE = FaultType(
    name=NAME,
    params=PodKillParams,
    injectors={"local": LocalPodKill, "kubernetes": KubernetesPodKill},
    undoers={"local": undo, "kubernetes": undo},
    capabilities={"local": (ReplicaGroups,), "kubernetes": (PodDeletion, LedgerScope)},
    severity="medium",
    blast_radius=blast_radius,
    check=check,
    renamed={"grace_period": "grace_period_s"},
    on_cluster=on_cluster,
)
