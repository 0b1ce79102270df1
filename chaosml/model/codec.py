"""Experiment <-> plain JSON data (dicts, lists, scalars) without the YAML loader; used by the journal.

:func:`experiment_to_dict` writes every field of the frozen model (defaults included), so the data
is the NORMALISED experiment; :func:`experiment_from_dict` rebuilds the same ``Experiment`` from
it, checking each value against the field's annotation. A fault's ``params`` is a tagged union: the
fault's ``type`` picks the params class (:func:`params_class`, the one place that knows where the
fault-type registry lives). Errors name the field path: ``faults[0].params.latency_ms: ...``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from chaosml.model.experiment import Experiment, FaultSpec

__all__ = ["CodecError", "experiment_from_dict", "experiment_to_dict", "params_class", "to_data"]

T = TypeVar("T")


class CodecError(ValueError):
    """Stored experiment data does not fit the model; the message starts with the field path."""


def params_class(fault_type: str) -> type:
    """The params dataclass of ``fault_type`` (the fault-type registry's lookup, in one place)."""
    from chaosml.model.faulttype import registry

    types = registry()
    if fault_type not in types:
        raise CodecError(f"unknown fault type {fault_type!r}; known: {', '.join(types.names())}")
    return types[fault_type].params


def to_data(value: object) -> Any:
    """A frozen model value as JSON data: dataclasses -> dicts (every field), tuples -> lists, mappings -> dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    return value


def experiment_to_dict(experiment: Experiment) -> dict[str, Any]:
    """The normalised experiment as JSON data (what the journal stores under ``experiment``)."""
    data: dict[str, Any] = to_data(experiment)
    return data


def experiment_from_dict(data: object) -> Experiment:
    """Rebuild the ``Experiment`` that :func:`experiment_to_dict` wrote; raises CodecError with the field path."""
    return _structure_dataclass(Experiment, data, "experiment")


def _structure_dataclass(cls: type[T], data: object, path: str) -> T:
    if not isinstance(data, Mapping):
        raise CodecError(f"{path}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CodecError(f"{path}: unknown field(s) {', '.join(map(str, unknown))} for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise CodecError(f"{path}.{name}: missing (required by {cls.__name__})")
            continue
        if cls is FaultSpec and name == "params":
            ptype = data.get("type")
            if not isinstance(ptype, str):
                raise CodecError(f"{path}.type: expected the fault type (a string) to decode params")
            try:
                pcls = params_class(ptype)
            except CodecError as exc:
                raise CodecError(f"{path}.type: {exc}") from None
            values[name] = _structure_dataclass(pcls, data[name], f"{path}.{name}")
        else:
            values[name] = _structure(hints[name], data[name], f"{path}.{name}")
    return cls(**values)


def _structure(tp: Any, value: object, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _structure(rest[0], value, path)
        raise CodecError(f"{path}: cannot decode a union of {tp}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _structure_dataclass(tp, value, path)
    if origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise CodecError(f"{path}: expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise CodecError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_structure(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise CodecError(f"{path}: expected {len(args)} items, got {len(value)}")
        return tuple(_structure(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (Mapping, dict) or tp in (Mapping, dict):
        if not isinstance(value, Mapping):
            raise CodecError(f"{path}: expected a mapping, got {type(value).__name__}")
        vtype = args[1] if len(args) == 2 else Any
        return types.MappingProxyType({str(k): _structure(vtype, v, f"{path}.{k}") for k, v in value.items()})
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise CodecError(f"{path}: expected a number, got {type(value).__name__}")
    if tp in (int, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise CodecError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
    raise CodecError(f"{path}: no decoder for {tp!r}")
