"""The injector protocol and registry: every fault type has apply and recover; used by the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chaosml.model.experiment import FaultSpec
from chaosml.records import FaultEvent


@dataclass(frozen=True)
class FaultContext:
    """What an injector may know about the run besides its spec and the target."""

    seed: int = 0
    run_dir: Path | None = None

    @property
    def load_control_file(self) -> Path | None:
        """JSON file the load process polls (cohort mix overrides during a fault window)."""
        return None if self.run_dir is None else self.run_dir / "load-control.json"


class Injector(Protocol):
    """Applies and recovers one fault spec on one target, one injection at a time.

    ``recover`` is always called after ``apply`` (even when apply failed half-way, and for
    one-shot faults where it only records what it sees), and must be safe to call twice.
    """

    spec: FaultSpec

    def undo_record(self, injection: int) -> dict[str, Any]:
        """What undoing this injection takes, as JSON-safe data, computed BEFORE ``apply``.

        The runner writes it (fsynced) to the rollback ledger before calling ``apply``, so that
        ``chaosml rollback`` can undo the injection from the record alone after the harness was
        killed: e.g. the proxy API URL and toxic name, the Redis URL and the exact bytes (DUMP) of
        every row a corruption will touch, a Deployment's replica count. ``apply`` must then do
        what the record describes (decide victims here, not in apply).
        """
        ...

    def apply(self, injection: int) -> FaultEvent: ...

    def recover(self, injection: int) -> FaultEvent: ...


Factory = Callable[[FaultSpec, Any, FaultContext], Injector]

#: fault type -> factory(spec, target, context) -> Injector
INJECTORS: dict[str, Factory] = {}


def injector(fault_type: str) -> Callable[[Factory], Factory]:
    """Register an injector factory for a fault type."""

    def register(factory: Factory) -> Factory:
        INJECTORS[fault_type] = factory
        return factory

    return register


#: fault type -> undo(record) -> one line saying what was undone. Idempotent, uses nothing but the
#: record (no live target objects), and treats "already undone" (toxic gone, rows already equal,
#: process gone) as success. Raises on a real failure, with what is left in the message.
UNDOERS: dict[str, Callable[[dict[str, Any]], str]] = {}


def undoer(fault_type: str) -> Callable[[Callable[[dict[str, Any]], str]], Callable[[dict[str, Any]], str]]:
    """Register the offline undo of a fault type."""

    def register(fn: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], str]:
        UNDOERS[fault_type] = fn
        return fn

    return register


def load_builtin_injectors() -> None:
    """Import the built-in injector modules (they register themselves)."""
    import importlib
    import pkgutil

    import chaosml.faults as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name != "base":
            importlib.import_module(f"chaosml.faults.{mod.name}")


def make_injector(spec: FaultSpec, target: Any, context: FaultContext | None = None) -> Injector:
    """Build the injector for a fault spec (importing the built-in injectors on first use)."""
    load_builtin_injectors()
    try:
        factory = INJECTORS[spec.type]
    except KeyError:
        raise NotImplementedError(f"no injector for fault type {spec.type!r}") from None
    return factory(spec, target, context or FaultContext())
