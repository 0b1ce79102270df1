"""The injector protocol and registry: every fault type has apply and recover; used by the runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from chaosml.model.experiment import FaultSpec
from chaosml.records import FaultEvent


class Injector(Protocol):
    """Applies and recovers one fault spec on one target, one injection at a time.

    ``recover`` is always called after ``apply`` (even when apply failed half-way, and for
    one-shot faults where it only records what it sees), and must be safe to call twice.
    """

    spec: FaultSpec

    def apply(self, injection: int) -> FaultEvent: ...

    def recover(self, injection: int) -> FaultEvent: ...


#: fault type -> factory(spec, target, seed) -> Injector
INJECTORS: dict[str, Callable[[FaultSpec, Any, int], Injector]] = {}


def injector(fault_type: str) -> Callable[[Callable[[FaultSpec, Any, int], Injector]], Callable[[FaultSpec, Any, int], Injector]]:
    """Register an injector factory for a fault type."""

    def register(factory: Callable[[FaultSpec, Any, int], Injector]) -> Callable[[FaultSpec, Any, int], Injector]:
        INJECTORS[fault_type] = factory
        return factory

    return register


def make_injector(spec: FaultSpec, target: Any, seed: int = 0) -> Injector:
    """Build the injector for a fault spec (importing the built-in injectors on first use)."""
    from chaosml.faults import podkill  # noqa: F401  (registers)

    try:
        factory = INJECTORS[spec.type]
    except KeyError:
        raise NotImplementedError(f"no injector for fault type {spec.type!r}") from None
    return factory(spec, target, seed)
