"""Fault types: one frozen params class per type, registered by its kebab-case name; no I/O.

The loader decodes a fault in two steps (as Toxiproxy does): the common envelope
(name, type, at, duration, repeat), then ``params`` into ``FAULT_TYPES[type]``.
A params class may define ``check(self) -> list[tuple[str, str]]`` returning
(field, message) pairs for constraints across fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

#: kebab-case fault type -> params class
FAULT_TYPES: dict[str, type] = {}


def fault_type(name: str) -> Callable[[type[T]], type[T]]:
    """Register a params class under a fault type name."""

    def register(cls: type[T]) -> type[T]:
        if name in FAULT_TYPES:
            raise ValueError(f"fault type {name!r} registered twice")
        FAULT_TYPES[name] = cls
        cls.fault_type = name  # type: ignore[attr-defined]
        return cls

    return register


KILL_MODES = ("one", "all", "fixed", "percent")
SIGNALS = ("SIGKILL", "SIGTERM")


@fault_type("pod-kill")
@dataclass(frozen=True, slots=True)
class PodKillParams:
    """Kill replicas of a service; the supervisor (or ReplicaSet) replaces them."""

    service: str = "model"  # local: replica group; kubernetes: app label value
    mode: str = "one"  # one | all | fixed | percent
    value: float | None = None  # fixed: how many; percent: 1-100
    signal: str = "SIGKILL"  # local target
    grace_period: float = 0.0  # kubernetes target: pod deletion grace period, s
    selector: str | None = None  # kubernetes target: label selector overriding app=<service>

    def victim_count(self, replicas: int) -> int:
        """How many of ``replicas`` one injection kills (the blast radius)."""
        if self.mode == "all":
            return replicas
        if self.mode == "fixed":
            return min(int(self.value or 0), replicas)
        if self.mode == "percent":
            return min(replicas, math.ceil(replicas * float(self.value or 0) / 100))
        return min(1, replicas)

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if self.mode not in KILL_MODES:
            errors.append(("mode", f"must be one of {', '.join(KILL_MODES)}, not {self.mode!r}"))
        if self.mode in ("fixed", "percent"):
            if self.value is None:
                errors.append(("value", f"is required when mode is {self.mode}"))
            elif self.mode == "fixed" and (self.value < 1 or self.value != int(self.value)):
                errors.append(("value", "must be a whole number >= 1 when mode is fixed"))
            elif self.mode == "percent" and not 0 < self.value <= 100:
                errors.append(("value", "must be in (0, 100] when mode is percent"))
        elif self.value is not None:
            errors.append(("value", f"is only used with mode fixed or percent, not {self.mode}"))
        if self.signal not in SIGNALS:
            errors.append(("signal", f"must be one of {', '.join(SIGNALS)}"))
        if self.grace_period < 0:
            errors.append(("grace_period", "must be >= 0"))
        return errors
