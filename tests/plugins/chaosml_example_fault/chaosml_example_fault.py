"""process-pause: freeze replicas of a local service with SIGSTOP and thaw them with SIGCONT; a chaosml fault-type plugin (entry point ``chaosml.faults``).

A paused process keeps its sockets open but answers nothing: clients see timeouts rather than
refused connections, like a process stuck in a long GC pause or a frozen VM. The undo record holds
the paused pids, so ``chaosml rollback`` sends SIGCONT from the record alone after a crash.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass
from typing import Any

from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import FaultContext, FaultType, StackFacts, quote, suggest
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import ReplicaGroups


@dataclass(frozen=True, slots=True)
class ProcessPauseParams:
    """Pause ``count`` running replicas of ``service`` (seeded choice) for the fault window."""

    service: str = "model"  # the replica group (a custom stack's service name)
    count: int = 1  # replicas paused per injection

    def check(self) -> list[tuple[str, str]]:
        return [] if self.count >= 1 else [("count", "must be >= 1")]


class ProcessPause:
    """SIGSTOP on apply, SIGCONT on recover, through the target's replica groups."""

    def __init__(self, spec: FaultSpec, target: ReplicaGroups, context: FaultContext) -> None:
        self.spec = spec
        self.params: ProcessPauseParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        running = {m.name: m.pid for m in self.target.members(self.params.service) if m.running and m.pid}
        victims = sorted(self._rng.sample(sorted(running), min(self.params.count, len(running))))
        record = {"service": self.params.service, "victims": victims, "pids": [running[v] for v in victims]}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        self.target.kill(record["victims"], signal.SIGSTOP)
        return FaultEvent(t, self.spec.name, injection, "apply", bool(record["victims"]), tuple(record["victims"]),
                          {"service": self.params.service, "pids": record["pids"]})

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        self.target.kill(record["victims"], signal.SIGCONT)
        return FaultEvent(t, self.spec.name, injection, "recover", True, tuple(record["victims"]), {"pids": record["pids"]})


def undo(record: dict[str, Any]) -> str:
    """SIGCONT every paused pid's process group (a pid that is gone is fine: nothing is paused there)."""
    done = []
    for pid in record["pids"]:
        try:
            os.killpg(pid, signal.SIGCONT)
            done.append(f"{pid} continued")
        except ProcessLookupError:
            done.append(f"{pid} gone")
    return f"process-pause of {', '.join(record['victims']) or 'nothing'}: {', '.join(done) or 'nothing to do'}"


def check(params: ProcessPauseParams, facts: StackFacts) -> list[tuple[str, str]]:
    """On a custom stack, ``service`` must be one of its services."""
    if facts.stack != "custom" or params.service in facts.services:
        return []
    return [("params.service", f"unknown service {quote(params.service)}{suggest(params.service, facts.services)}")]


FAULT_TYPE = FaultType(
    name="process-pause",
    params=ProcessPauseParams,
    injectors={"local": ProcessPause},
    undoers={"local": undo},
    capabilities={"local": (ReplicaGroups,)},
    severity="medium",
    check=check,
)
