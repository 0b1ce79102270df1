"""Fault-type descriptors and their registry (built-ins of chaosml.faults, plugins by entry point); used by the loader, plan, game-days and the runner.

A fault type is one :class:`FaultType` value, defined in one module: its params class, an injector
factory and an offline undoer per platform, the target capabilities (``typing.Protocol`` classes of
:mod:`chaosml.targets.capabilities`) each injector needs, a default severity, a blast-radius and a
summary function, and an optional ``check`` of the params against the experiment's stack.

:func:`registry` discovers the types once: every module of the package ``chaosml.faults`` (imported
with importlib, so this bottom layer never imports the adapters statically) and every entry point of
the group ``chaosml.faults`` (a module, or a FaultType). A module offers its types as ``FAULT_TYPE``
(one) or ``FAULT_TYPES`` (several). Two types of one name are refused, naming both origins. A test
builds a fresh :class:`FaultRegistry` and adds what it needs.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import pkgutil
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from chaosml.model.experiment import FaultSpec, LinkSpec, TargetSpec
from chaosml.records import FaultEvent

#: the package of the built-in types and the entry-point group of plugins
BUILTIN_PACKAGE = "chaosml.faults"
ENTRY_POINT_GROUP = "chaosml.faults"
PLATFORMS = ("local", "kubernetes")
STACKS = ("reference", "custom")
SEVERITY_LEVELS = ("low", "medium", "high", "critical")


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
        killed. ``apply`` must then do what the record describes (decide victims here, not in apply).
        """
        ...

    def apply(self, injection: int) -> FaultEvent: ...

    def recover(self, injection: int) -> FaultEvent: ...


#: factory(spec, target, context) -> Injector; the target is whatever the platform's adapter is,
#: checked against the type's declared capabilities before the factory is called
Factory = Callable[[FaultSpec, Any, FaultContext], Injector]
#: undo(ledger record) -> one line saying what was undone; idempotent, uses the record alone
Undo = Callable[[dict[str, Any]], str]


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """What one injection of a fault touches on the resolved target."""

    fault: str
    type: str
    victims: int | None  # units hit per injection, when countable
    of: int | None  # units there are
    description: str


#: The reference stack's services (replica groups on the local target, Deployments on kubernetes);
#: only ``model`` has ``target.replicas`` replicas, each other one replica.
REFERENCE_SERVICES: tuple[str, ...] = ("gateway", "model", "feature-store", "proxy")


def reference_replicas(model_replicas: int) -> dict[str, int]:
    """Service -> replica count of the reference stack with ``model_replicas`` model replicas."""
    return {name: model_replicas if name == "model" else 1 for name in REFERENCE_SERVICES}


@dataclass(frozen=True, slots=True)
class StackFacts:
    """What a fault type's ``check`` may know of the experiment's target and data, before the model is built."""

    platform: str  # local | kubernetes
    stack: str  # reference | custom
    services: tuple[str, ...] = ()  # the stack's service names (reference: REFERENCE_SERVICES)
    links: frozenset[str] | None = None  # custom stack: link names faults may address; None: not known
    link_specs: tuple[LinkSpec, ...] = ()  # custom stack: the declared links
    replicas: Mapping[str, int] | None = None  # service -> replicas; None: not known (a custom stack on kubernetes)
    dataset: str | None = None  # load.dataset (built-in), when the load reads no data file
    data_file: str | None = None  # load.data.file, as the experiment names it
    data_features: tuple[str, ...] | None = None  # the data file's feature columns; None: not known (file not readable)


#: check(params, facts) -> [(field path below the fault, e.g. "params.link" or "type", message)]
Check = Callable[[Any, StackFacts], list[tuple[str, str]]]
#: blast_radius(fault, target, dataset) -> BlastRadius of one injection
Radius = Callable[[FaultSpec, TargetSpec, "str | None"], BlastRadius]
#: on_cluster(fault, connected target, nodes) -> what one injection would touch now (``chaosml plan`` with a cluster)
OnCluster = Callable[[FaultSpec, Any, list[dict[str, Any]]], str]


def plan_number(x: float) -> str:
    """A number as plans and summaries show it (``%g``)."""
    return f"{x:g}"


def plan_seconds(seconds: float) -> str:
    """Seconds as the plan shows them: 250ms, 20s, 1.5s, 90s."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def plan_value(v: object) -> str:
    """One param value in a summary: booleans in YAML words, tuples comma-joined, mappings in braces."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return plan_number(v)
    if isinstance(v, tuple):
        return ",".join(plan_value(x) for x in v)
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{plan_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def params_summary(params: object) -> str:
    """``key=value`` for every set field of a params dataclass (or mapping), in field order."""
    if dataclasses.is_dataclass(params) and not isinstance(params, type):
        items = [(f.name, getattr(params, f.name)) for f in dataclasses.fields(params)]
    elif isinstance(params, Mapping):
        items = list(params.items())
    else:
        return "" if params is None else str(params)
    return " ".join(f"{k}={plan_value(v)}" for k, v in items if v is not None) or "-"


def quote(value: str, limit: int = 40) -> str:
    """``repr`` of a user's value, shortened to ``limit`` characters."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def literal_errors(params: object) -> list[tuple[str, str]]:
    """(field, message) for every ``Literal[...]``-typed field of a params dataclass holding another value."""
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        return []
    hints = typing.get_type_hints(type(params))
    errors: list[tuple[str, str]] = []
    for f in dataclasses.fields(params):
        hint = hints.get(f.name)
        if typing.get_origin(hint) is typing.Literal:
            choices = typing.get_args(hint)
            value = getattr(params, f.name)
            if value not in choices:
                errors.append((f.name, f"must be one of {', '.join(map(str, choices))}, not {value!r}"))
    return errors


def params_issues(params: object) -> list[tuple[str, str]]:
    """Every (field, message) a decoded params object has: its Literal fields, then its own ``check()``."""
    check = getattr(params, "check", None)
    return literal_errors(params) + (list(check()) if callable(check) else [])


def default_blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    """The params summary and the injection count: for types that touch nothing countable."""
    return BlastRadius(fault.name, fault.type, None, None, f"{params_summary(fault.params)}; {plural(fault.repeat.count, 'injection')}")


def _no_check(params: object, facts: StackFacts) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class FaultType:
    """Everything chaosml knows about one fault type; see the module docstring."""

    name: str  # kebab-case, as in YAML ``type:``
    params: type  # frozen dataclass; may define check(self) -> [(field, message)]
    injectors: Mapping[str, Factory]  # platform -> factory
    undoers: Mapping[str, Undo]  # platform -> offline undo (a record names its platform; absent: local)
    capabilities: Mapping[str, tuple[type, ...]] = field(default_factory=lambda: MappingProxyType({}))  # platform -> protocols
    stacks: tuple[str, ...] = STACKS
    severity: str = "medium"  # game-day default: low | medium | high | critical
    blast_radius: Radius = default_blast_radius
    summary: Callable[[Any], str] = params_summary  # params -> one line for the plan's timeline
    check: Check = _no_check
    renamed: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # old param name -> new one
    on_cluster: OnCluster | None = None  # kubernetes: resolve against the live cluster, read-only

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_LEVELS:
            raise ValueError(f"fault type {self.name}: severity must be one of {', '.join(SEVERITY_LEVELS)}")
        for what, table in (("undoer", self.undoers), ("capabilities", self.capabilities)):
            extra = set(table) - set(self.injectors)
            if extra:
                raise ValueError(f"fault type {self.name}: {what} for platform(s) without an injector: {', '.join(sorted(extra))}")

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms this type has an injector for."""
        known = [p for p in PLATFORMS if p in self.injectors]
        return (*known, *sorted(p for p in self.injectors if p not in PLATFORMS))

    def support_issue(self, platform: str, stack: str) -> str | None:
        """Why this type cannot run on ``platform`` with ``stack`` (naming what it supports), or None."""
        if platform not in self.injectors:
            return f"{self.name} is not available on the {platform} target; it runs on: {', '.join(self.platforms)}"
        if stack not in self.stacks:
            return f"{self.name} is not available with stack: {stack}; it needs stack: {', '.join(self.stacks)}"
        return None

    def undoer(self, platform: str | None) -> Undo | None:
        """The offline undo for a record of ``platform`` (None: local, as records before platforms were named)."""
        return self.undoers.get(platform or "local")


def protocol_members(protocol: type) -> tuple[str, ...]:
    """Public methods and attributes a ``typing.Protocol`` class declares (its own and inherited)."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(getattr(cls, "__annotations__", {}))
        names.update(n for n, v in vars(cls).items() if callable(v) or isinstance(v, property))
    return tuple(sorted(n for n in names if not n.startswith("_")))


def missing_capabilities(protocols: tuple[type, ...], target_class: type) -> list[str]:
    """``Protocol.member`` for every declared member ``target_class`` does not define (class or annotated)."""
    annotated: set[str] = set()
    for cls in target_class.__mro__:
        annotated.update(getattr(cls, "__annotations__", {}))
    return [
        f"{p.__name__}.{m}"
        for p in protocols
        for m in protocol_members(p)
        if m not in annotated and getattr(target_class, m, None) is None
    ]


class DuplicateFaultTypeError(ValueError):
    """Two fault types of one name (the message names both origins)."""


class FaultRegistry:
    """Fault types by name, each with where it came from (module or entry point)."""

    def __init__(self) -> None:
        self._types: dict[str, tuple[FaultType, str]] = {}

    def add(self, fault_type: FaultType, origin: str) -> None:
        seen = self._types.get(fault_type.name)
        if seen is not None and seen[0] is not fault_type:
            raise DuplicateFaultTypeError(f"fault type {fault_type.name!r} is defined twice: by {seen[1]} and by {origin}")
        self._types[fault_type.name] = (fault_type, origin)

    def add_module(self, module: types.ModuleType, origin: str | None = None) -> None:
        """Add the module's ``FAULT_TYPE`` and ``FAULT_TYPES`` (a module without them adds nothing)."""
        found = [*([module.FAULT_TYPE] if hasattr(module, "FAULT_TYPE") else []), *getattr(module, "FAULT_TYPES", ())]
        for ft in found:
            if not isinstance(ft, FaultType):
                raise TypeError(f"{module.__name__}: FAULT_TYPE(S) must hold FaultType values, not {type(ft).__name__}")
            self.add(ft, origin or f"module {module.__name__}")

    def add_package(self, package: str = BUILTIN_PACKAGE) -> None:
        """Import every module of ``package`` and add its types."""
        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
            self.add_module(importlib.import_module(f"{package}.{info.name}"))

    def add_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every entry point of ``group``: a module (its FAULT_TYPE/FAULT_TYPES) or a FaultType."""
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            origin = f"entry point {ep.name} = {ep.value}" + (f" ({ep.dist.name})" if ep.dist is not None else "")
            obj = ep.load()
            if isinstance(obj, types.ModuleType):
                self.add_module(obj, origin)
            elif isinstance(obj, FaultType):
                self.add(obj, origin)
            else:
                raise TypeError(f"{origin}: expected a module or a FaultType, got {type(obj).__name__}")

    def get(self, name: str) -> FaultType | None:
        entry = self._types.get(name)
        return None if entry is None else entry[0]

    def __getitem__(self, name: str) -> FaultType:
        return self._types[name][0]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[FaultType]:
        return iter(ft for ft, _ in self._types.values())

    def names(self) -> list[str]:
        return sorted(self._types)

    def origin(self, name: str) -> str:
        return self._types[name][1]


_DEFAULT: FaultRegistry | None = None


def registry() -> FaultRegistry:
    """The process-wide registry: built-in types, then plugins (discovered on first call)."""
    global _DEFAULT
    if _DEFAULT is None:
        reg = FaultRegistry()
        reg.add_package()
        reg.add_entry_points()
        _DEFAULT = reg
    return _DEFAULT


def reset_registry() -> None:
    """Forget the discovered registry, so the next :func:`registry` call discovers again (after a plugin install)."""
    global _DEFAULT
    _DEFAULT = None
