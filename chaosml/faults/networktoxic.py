"""network-toxic: any other Toxiproxy toxic on one link (bandwidth, reset_peer, slicer, limit_data, slow_close, timeout). Found by the fault-type registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from chaosml.faults._toxics import check_link_params, link_fault_type

#: Toxics -> their attributes (all integers >= 0, units in the comment), as Toxiproxy 2.x defines
#: them. Latency has its own fault type, ``network-latency``.
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "bandwidth": {"rate": "KB/s; 0 = nothing gets through"},
    "reset_peer": {"timeout": "ms before the connection is reset (RST)"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "microseconds between slices"},
    "limit_data": {"bytes": "bytes passed before the connection is closed"},
    "slow_close": {"delay": "ms the close is delayed"},
    "timeout": {"timeout": "ms before the connection is closed; 0 = hold until removed"},
}
_REQUIRED_ATTRIBUTES = {"bandwidth": ("rate",), "slicer": ("average_size",), "limit_data": ("bytes",)}
_EFFECT = {
    "bandwidth": "throughput capped at {rate} KB/s",
    "reset_peer": "connections reset (RST) {timeout} ms after their first data",
    "slicer": "data sliced into ~{average_size}-byte pieces",
    "limit_data": "connections closed after {bytes} bytes",
    "slow_close": "connection close delayed by {delay} ms",
    "timeout": "data held, connections closed after {timeout} ms (0 = held until recovered)",
}


@dataclass(frozen=True, slots=True)
class NetworkToxicParams:
    """Any other Toxiproxy toxic on one link: bandwidth, reset_peer, slicer, limit_data, slow_close, timeout."""

    toxic: str  # bandwidth | reset_peer | slicer | limit_data | slow_close | timeout
    link: str = "gateway"  # gateway | feature-store | model | model-<i> | a custom stack's declared link
    attributes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # per toxic, see TOXIC_ATTRIBUTES
    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: float = 1.0  # probability that a connection gets the toxic

    def check(self) -> list[tuple[str, str]]:
        errors = check_link_params(self)
        known = TOXIC_ATTRIBUTES.get(self.toxic)
        if known is None:
            hint = " (use type network-latency for latency)" if self.toxic == "latency" else ""
            errors.append(("toxic", f"must be one of {', '.join(TOXIC_ATTRIBUTES)}, not {self.toxic!r}{hint}"))
            return errors
        for name, value in self.attributes.items():
            if name not in known:
                errors.append(("attributes", f"unknown attribute {name!r} of toxic {self.toxic}; known: {', '.join(known)}"))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                errors.append(("attributes", f"{name} must be an integer >= 0 ({known[name]})"))
        for name in _REQUIRED_ATTRIBUTES.get(self.toxic, ()):
            if name not in self.attributes:
                errors.append(("attributes", f"toxic {self.toxic} needs attribute {name!r} ({known[name]})"))
        if self.toxic == "slicer":
            avg, var = self.attributes.get("average_size", 1), self.attributes.get("size_variation", 0)
            if isinstance(avg, int) and isinstance(var, int) and (avg < 1 or var >= avg):
                errors.append(("attributes", "slicer needs average_size >= 1 and size_variation < average_size"))
        return errors


def toxic(p: NetworkToxicParams) -> tuple[str, Mapping[str, int]]:
    """The toxic the params name, with their attributes."""
    return p.toxic, p.attributes


def effect(p: NetworkToxicParams) -> str:
    """What the toxic does, with its attributes (0 where not given), for the blast radius."""
    zeros = dict.fromkeys(("rate", "timeout", "average_size", "bytes", "delay"), 0)
    return _EFFECT[p.toxic].format_map({**zeros, **dict(p.attributes)})


FAULT_TYPE = link_fault_type("network-toxic", NetworkToxicParams, "medium", toxic, effect)
