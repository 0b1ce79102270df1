"""pod-kill: kill replicas of a service by mode; the target's supervisor replaces them. Used by the runner."""

from __future__ import annotations

import random
import signal
import time
from typing import Any

from chaosml.faults.base import FaultContext, injector, undoer
from chaosml.model.experiment import FaultSpec
from chaosml.model.faults import PodKillParams
from chaosml.records import FaultEvent


class PodKill:
    """Kill ``victim_count`` replicas of ``params.service``, chosen at random (seeded) among running ones."""

    def __init__(self, spec: FaultSpec, target: Any, context: FaultContext):
        self.spec = spec
        self.params: PodKillParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._victims: dict[int, list[str]] = {}
        self._counts: dict[int, tuple[int, int, int]] = {}

    def _members(self) -> list[Any]:
        """The service's replicas, or (kubernetes) the pods matching ``params.selector``."""
        if self.params.selector and hasattr(self.target, "select"):
            return list(self.target.select(self.params.selector))
        return list(self.target.members(self.params.service))

    def undo_record(self, injection: int) -> dict[str, Any]:
        """Choose the victims now; a kill needs no undo beyond the target's own restart."""
        members = self._members()
        running = sorted(m.name for m in members if m.running)
        count = self.params.victim_count(len(members))
        victims = sorted(self._rng.sample(running, min(count, len(running))))
        self._victims[injection] = victims
        self._counts[injection] = (len(members), len(running), count)
        record = {"service": self.params.service, "victims": victims, "replicas": len(members)}
        if hasattr(self.target, "ledger_scope"):  # kubernetes: which cluster and namespace
            record.update(self.target.ledger_scope(), selector=self.params.selector, grace_period=self.params.grace_period)
        return record

    def apply(self, injection: int) -> FaultEvent:
        if injection not in self._victims:
            self.undo_record(injection)
        victims = self._victims[injection]
        replicas, running, count = self._counts[injection]
        t = time.time()
        if hasattr(self.target, "delete_pods"):  # kubernetes: delete the pods, the ReplicaSet replaces them
            self.target.delete_pods(victims, grace_period=self.params.grace_period)
        else:
            self.target.kill(victims, getattr(signal, self.params.signal))
        return FaultEvent(
            t=t,
            fault=self.spec.name,
            injection=injection,
            action="apply",
            ok=len(victims) == count,
            targets=tuple(victims),
            detail={
                "service": self.params.service,
                "mode": self.params.mode,
                "value": self.params.value,
                "signal": self.params.signal,
                "grace_period": self.params.grace_period,
                "selector": self.params.selector,
                "replicas": replicas,
                "running_before": running,
                "killed": len(victims),
            },
        )

    def recover(self, injection: int) -> FaultEvent:
        """Nothing to undo (the supervisor restarts replicas); record what is ready now."""
        members = self._members()
        ready = sum(1 for m in members if m.ready)
        return FaultEvent(
            t=time.time(),
            fault=self.spec.name,
            injection=injection,
            action="recover",
            ok=True,
            targets=tuple(self._victims.get(injection, ())),
            detail={"ready": ready, "desired": len(members)},
        )


@undoer("pod-kill")
def _undo(record: dict[str, Any]) -> str:
    """A killed replica is replaced by its supervisor (or ReplicaSet): nothing to put back."""
    return f"pod-kill of {', '.join(record.get('victims', [])) or 'nothing'}: nothing to undo"


@injector("pod-kill")
def _make(spec: FaultSpec, target: Any, context: FaultContext) -> PodKill:
    return PodKill(spec, target, context)
