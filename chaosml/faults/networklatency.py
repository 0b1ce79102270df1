"""network-latency: delay the data on one link (Toxiproxy ``latency`` toxic), removed by name on recover. Found by the fault-type registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chaosml.faults._toxics import (
    ToxicInjector,
    check_link_fault,
    check_link_name,
    check_toxicity,
    link_fault_on_cluster,
    link_scope,
    share_words,
    undo_toxic_record,
)
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    plural,
)
from chaosml.targets.capabilities import ProxyLinks


@dataclass(frozen=True, slots=True)
class NetworkLatencyParams:
    """Delay the data on one link (``model``: every replica link) by latency +/- jitter."""

    link: str = "gateway"  # gateway | feature-store | model | model-<i> | a custom stack's declared link
    latency_ms: int = 100  # ms added to each chunk of data
    jitter_ms: int = 0  # ms, +/- around latency_ms
    stream: Literal["downstream", "upstream"] = "downstream"  # downstream: replies (server -> client); upstream: requests
    toxicity: float = 1.0  # probability that a connection gets the latency

    def check(self) -> list[tuple[str, str]]:
        errors = check_link_name(self.link) + check_toxicity(self.toxicity)
        if self.latency_ms <= 0:
            errors.append(("latency_ms", "must be > 0"))
        if self.jitter_ms < 0:
            errors.append(("jitter_ms", "must be >= 0"))
        elif self.jitter_ms > self.latency_ms > 0:
            errors.append(("jitter_ms", f"must be <= latency_ms ({self.latency_ms})"))
        return errors


def make(spec: FaultSpec, target: ProxyLinks, context: FaultContext) -> ToxicInjector:
    p: NetworkLatencyParams = spec.params
    return ToxicInjector(
        spec, target, link=p.link, toxic="latency",
        attributes={"latency": p.latency_ms, "jitter": p.jitter_ms}, stream=p.stream, toxicity=p.toxicity,
    )


def undo(record: dict[str, Any]) -> str:
    return undo_toxic_record(record)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: NetworkLatencyParams = fault.params
    victims, of, where = link_scope(p.link, target)
    what = f"+{p.latency_ms} ms +/- {p.jitter_ms} ms on the {p.stream} stream"
    text = f"{what}, {share_words(p.toxicity)} of {where}; {plural(fault.repeat.count, 'injection')}"
    return BlastRadius(fault.name, fault.type, victims, of, text)


FAULT_TYPE = FaultType(
    name="network-latency",
    params=NetworkLatencyParams,
    injectors={"local": make, "kubernetes": make},
    undoers={"local": undo, "kubernetes": undo},
    capabilities={"local": (ProxyLinks,), "kubernetes": (ProxyLinks,)},
    severity="low",
    blast_radius=blast_radius,
    check=check_link_fault,
    on_cluster=link_fault_on_cluster,
)
