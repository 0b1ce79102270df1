"""Build an injector for a fault spec, and undo a ledger record, through the fault-type registry; used by the runner and the ledger."""

from __future__ import annotations

from typing import Any

from chaosml.errors import TargetError
from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import (
    FaultContext,
    FaultRegistry,
    Injector,
    Undo,
    registry,
)
from chaosml.targets.capabilities import OnPlatform

__all__ = ["FaultContext", "Injector", "load_builtin_injectors", "make_injector", "undo_fault", "undoer_for"]


def _platform(target: object) -> str:
    """The target's platform; a target that does not say is a local one."""
    return target.platform if isinstance(target, OnPlatform) else "local"


def undoer_for(fault_type: str, platform: str | None, types: FaultRegistry | None = None) -> Undo | None:
    """The offline undo of ``fault_type`` on ``platform`` (None: local), or None when there is none."""
    ft = (types or registry()).get(fault_type)
    return None if ft is None else ft.undoer(platform)


def undo_fault(fault_type: str, record: dict[str, Any], types: FaultRegistry | None = None) -> str:
    """Undo one ledger record of ``fault_type`` from the record alone (dispatching on its platform)."""
    undo = undoer_for(fault_type, record.get("platform"), types)
    if undo is None:
        raise NotImplementedError(f"no undo known for fault type {fault_type!r} on platform {record.get('platform') or 'local'}")
    return undo(record)


def make_injector(spec: FaultSpec, target: object, context: FaultContext | None = None, types: FaultRegistry | None = None) -> Injector:
    """Build the injector for a fault spec on ``target``'s platform; refused (naming the supported platforms) elsewhere."""
    ft = (types or registry()).get(spec.type)
    if ft is None:
        raise NotImplementedError(f"no injector for fault type {spec.type!r}")
    platform = _platform(target)
    factory = ft.injectors.get(platform)
    if factory is None:
        raise TargetError(f"{spec.type} is not available on the {platform} target; it runs on: {', '.join(ft.platforms)}")
    return factory(spec, target, context or FaultContext())


def load_builtin_injectors() -> None:
    """Discover the fault types (built-in modules and plugins) now rather than on first use."""
    registry()
