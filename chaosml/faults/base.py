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
Undo = Callable[[dict[str, Any]], str]

#: the platform key of an injector or undoer that works on every target
ANY_PLATFORM = "*"

#: (fault type, target platform or ANY_PLATFORM) -> factory(spec, target, context) -> Injector
INJECTORS: dict[tuple[str, str], Factory] = {}

#: (fault type, platform or ANY_PLATFORM) -> undo(record) -> one line saying what was undone.
#: Idempotent, uses nothing but the record (no live target objects), and treats "already undone"
#: (toxic gone, rows already equal, process gone) as success. Raises on a real failure, with what
#: is left in the message. A record names its platform under ``platform`` (absent: local).
UNDOERS: dict[tuple[str, str], Undo] = {}


def injector(fault_type: str, platform: str = ANY_PLATFORM) -> Callable[[Factory], Factory]:
    """Register an injector factory for a fault type, on every platform or on one.

    A platform's own factory wins over the ANY_PLATFORM one whatever the import order, so one
    fault type may have two mechanisms (e.g. feature-store-outage ``kill``: stop a local process,
    or scale a Deployment to zero on kubernetes).
    """

    def register(factory: Factory) -> Factory:
        key = (fault_type, platform)
        if key in INJECTORS and INJECTORS[key] is not factory:
            raise RuntimeError(f"two injectors registered for fault type {fault_type!r} on platform {platform!r}")
        INJECTORS[key] = factory
        return factory

    return register


def undoer(fault_type: str, platform: str = ANY_PLATFORM) -> Callable[[Undo], Undo]:
    """Register the offline undo of a fault type, on every platform or on one (see :func:`injector`)."""

    def register(fn: Undo) -> Undo:
        key = (fault_type, platform)
        if key in UNDOERS and UNDOERS[key] is not fn:
            raise RuntimeError(f"two undoers registered for fault type {fault_type!r} on platform {platform!r}")
        UNDOERS[key] = fn
        return fn

    return register


def _lookup(table: dict[tuple[str, str], Any], fault_type: str, platform: str | None) -> Any:
    if platform and (fault_type, platform) in table:
        return table[(fault_type, platform)]
    return table.get((fault_type, ANY_PLATFORM))


def undoer_for(fault_type: str, platform: str | None) -> Undo | None:
    """The offline undo of ``fault_type`` on ``platform`` (its own, else the any-platform one)."""
    load_builtin_injectors()
    return _lookup(UNDOERS, fault_type, platform)


def undo_fault(fault_type: str, record: dict[str, Any]) -> str:
    """Undo one ledger record of ``fault_type`` from the record alone (dispatching on its platform)."""
    undo = undoer_for(fault_type, record.get("platform"))
    if undo is None:
        raise NotImplementedError(f"no undo known for fault type {fault_type!r}")
    return undo(record)


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
    factory = _lookup(INJECTORS, spec.type, getattr(target, "platform", None))
    if factory is None:
        raise NotImplementedError(f"no injector for fault type {spec.type!r}")
    return factory(spec, target, context or FaultContext())
