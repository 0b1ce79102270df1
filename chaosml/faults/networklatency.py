"""network-latency: delay the data on one link (Toxiproxy ``latency`` toxic), removed by name on recover. Found by the fault-type registry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from chaosml.faults._toxics import check_link_params, link_fault_type


@dataclass(frozen=True, slots=True)
class NetworkLatencyParams:
    """Delay the data on one link (``model``: every replica link) by latency +/- jitter."""

    link: str = "gateway"  # gateway | feature-store | model | model-<i> | a custom stack's declared link
    latency_ms: int = 100  # ms added to each chunk of data
    jitter_ms: int = 0  # ms, +/- around latency_ms
    stream: Literal["downstream", "upstream"] = "downstream"  # downstream: replies (server -> client); upstream: requests
    toxicity: float = 1.0  # probability that a connection gets the latency

    def check(self) -> list[tuple[str, str]]:
        errors = check_link_params(self)
        if self.latency_ms <= 0:
            errors.append(("latency_ms", "must be > 0"))
        if self.jitter_ms < 0:
            errors.append(("jitter_ms", "must be >= 0"))
        elif self.jitter_ms > self.latency_ms > 0:
            errors.append(("jitter_ms", f"must be <= latency_ms ({self.latency_ms})"))
        return errors


def toxic(p: NetworkLatencyParams) -> tuple[str, Mapping[str, int]]:
    """Toxiproxy's ``latency`` toxic."""
    return "latency", {"latency": p.latency_ms, "jitter": p.jitter_ms}


def effect(p: NetworkLatencyParams) -> str:
    """The delay, for the blast radius."""
    return f"+{p.latency_ms} ms +/- {p.jitter_ms} ms"


FAULT_TYPE = link_fault_type("network-latency", NetworkLatencyParams, "low", toxic, effect)
