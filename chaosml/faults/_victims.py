"""Which pods (or replicas) of a service one injection hits, by blast-radius mode, and the service check; shared by
pod-kill, resource-pressure and container-failure."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from chaosml.model.experiment import TargetSpec
from chaosml.model.faulttype import StackFacts, plan_number, plural, quote, reference_replicas, suggest

Mode = Literal["one", "all", "fixed", "percent"]


@dataclass(frozen=True, slots=True)
class Selection:
    """The victim-selection params a fault type's params extend: ``mode``/``value`` replicas of ``service``."""

    service: str = "model"  # local: replica group; kubernetes: app label value
    mode: Mode = "one"
    value: float | None = None  # fixed: how many; percent: 1-100

    def victim_count(self, replicas: int) -> int:
        """How many of ``replicas`` one injection hits (the blast radius)."""
        return victim_count(self.mode, self.value, replicas)


def choose(rng: random.Random, running: list[str], count: int) -> list[str]:
    """``count`` of the ``running`` names (all when fewer), chosen at random with ``rng``, sorted."""
    return sorted(rng.sample(running, min(count, len(running))))


def service_replicas(target: TargetSpec, service: str) -> int:
    """The replicas ``service`` has: a custom stack's declared count, the reference stack's own (model: target.replicas, else 1)."""
    for svc in target.services:
        if svc.name == service:
            return svc.replicas
    return reference_replicas(target.replicas).get(service, target.replicas)


def victim_count(mode: Mode, value: float | None, replicas: int) -> int:
    """How many of ``replicas`` one injection hits: one, all, ``value`` (fixed) or ``value`` % rounded up (percent)."""
    if replicas <= 0:
        return 0
    if mode == "all":
        return replicas
    if mode == "fixed":
        return min(int(value or 0), replicas)
    if mode == "percent":
        return min(replicas, math.ceil(replicas * float(value or 0) / 100))
    return 1


def mode_errors(mode: Mode, value: float | None) -> list[tuple[str, str]]:
    """``value`` is required by mode fixed (a whole number >= 1) and percent (in (0, 100]), and used by no other mode."""
    if mode in ("fixed", "percent"):
        if value is None:
            return [("value", f"is required when mode is {mode}")]
        if mode == "fixed" and (value < 1 or value != int(value)):
            return [("value", "must be a whole number >= 1 when mode is fixed")]
        if mode == "percent" and not 0 < value <= 100:
            return [("value", "must be in (0, 100] when mode is percent")]
    elif value is not None:
        return [("value", f"is only used with mode fixed or percent, not {mode}")]
    return []


def service_errors(service: str, selector: str | None, mode: Mode, value: float | None,
                   facts: StackFacts, verb: str = "kills") -> list[tuple[str, str]]:
    """``service`` must be one of the stack's services (unless a selector picks the reference stack's pods on
    kubernetes), and mode fixed must not ask for more victims than the service has replicas (when known)."""
    if selector is not None and facts.platform == "kubernetes" and facts.stack == "reference":
        return []
    if facts.services and service not in facts.services:
        hint = suggest(service, facts.services)
        return [("params.service", f"unknown service {quote(service)}{hint}; services: {', '.join(facts.services)}")]
    n = None if facts.replicas is None else facts.replicas.get(service)
    if n is not None and mode == "fixed" and value is not None and value > n:
        kills, has = plan_number(value), plural(n, "replica")
        return [("params.value", f"mode fixed {verb} {kills} replicas, but service {service!r} has {has}; use a value <= {n}, or mode all")]
    return []
