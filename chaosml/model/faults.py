"""Fault types: one frozen params class per type, registered by its kebab-case name; no I/O.

The loader decodes a fault in two steps (as Toxiproxy does): the common envelope
(name, type, at, duration, repeat), then ``params`` into ``FAULT_TYPES[type]``.
A params class may define ``check(self) -> list[tuple[str, str]]`` returning
(field, message) pairs for constraints across fields.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

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


# ------------------------------------------------------------------------------------------------
# network and feature-store faults (the local target's fault proxy / Toxiproxy, and Redis rows)

#: Links of the reference stack (proxy names): client -> gateway, gateway -> every replica,
#: replicas -> feature store; ``model-<i>`` is one replica's link. A custom stack declares its own
#: (``target.links``); the loader checks a fault's link against the stack's.
LINKS = ("gateway", "feature-store", "model")
_LINK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
STREAMS = ("downstream", "upstream")
OUTAGE_MODES = ("down", "timeout", "latency", "kill")

#: Toxics of ``network-toxic`` -> their attributes (all integers >= 0, units in the comment),
#: as Toxiproxy 2.x defines them. Latency has its own fault type, ``network-latency``.
TOXIC_ATTRIBUTES: dict[str, dict[str, str]] = {
    "bandwidth": {"rate": "KB/s; 0 = nothing gets through"},
    "reset_peer": {"timeout": "ms before the connection is reset (RST)"},
    "slicer": {"average_size": "bytes", "size_variation": "bytes", "delay": "microseconds between slices"},
    "limit_data": {"bytes": "bytes passed before the connection is closed"},
    "slow_close": {"delay": "ms the close is delayed"},
    "timeout": {"timeout": "ms before the connection is closed; 0 = hold until removed"},
}
_REQUIRED_ATTRIBUTES = {"bandwidth": ("rate",), "slicer": ("average_size",), "limit_data": ("bytes",)}

CORRUPTION_MODES = ("nan", "inf", "out-of-range", "wrong-type", "shuffle", "stale")
MISSING_MODES = ("delete-row", "drop-fields")


def _check_link(link: str) -> list[tuple[str, str]]:
    if _LINK_RE.match(link):
        return []
    return [("link", f"{link!r} is not a link name (e.g. {', '.join(LINKS)} or model-<i>)")]


def _check_stream_toxicity(stream: str, toxicity: float) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if stream not in STREAMS:
        errors.append(("stream", f"must be one of {', '.join(STREAMS)}, not {stream!r}"))
    if not 0 < toxicity <= 1:
        errors.append(("toxicity", "must be in (0, 1]: the probability that a connection gets the toxic"))
    return errors


@fault_type("feature-store-outage")
@dataclass(frozen=True, slots=True)
class FeatureStoreOutageParams:
    """Take the feature store away from the replicas (the ``feature-store`` link, or the Redis process)."""

    mode: str = "down"  # down (link disabled: refused) | timeout (data held) | latency | kill (Redis stopped)
    timeout_ms: int = 0  # mode timeout: close held connections after this, ms; 0 = hold until recovered
    latency_ms: int = 0  # mode latency: added to every reply, ms
    jitter_ms: int = 0  # mode latency: +/- this, ms

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if self.mode not in OUTAGE_MODES:
            errors.append(("mode", f"must be one of {', '.join(OUTAGE_MODES)}, not {self.mode!r}"))
        for name in ("timeout_ms", "latency_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                errors.append((name, "must be >= 0"))
        if self.mode == "latency" and self.latency_ms <= 0:
            errors.append(("latency_ms", "must be > 0 when mode is latency"))
        if self.mode != "latency":
            errors += [(n, f"is only used with mode latency, not {self.mode}") for n in ("latency_ms", "jitter_ms") if getattr(self, n)]
        if self.mode != "timeout" and self.timeout_ms:
            errors.append(("timeout_ms", f"is only used with mode timeout, not {self.mode}"))
        return errors


@fault_type("network-latency")
@dataclass(frozen=True, slots=True)
class NetworkLatencyParams:
    """Delay the data on one link (``model``: every replica link) by latency +/- jitter."""

    link: str = "gateway"  # gateway | feature-store | model | model-<i> | a custom stack's declared link
    latency_ms: int = 100  # ms added to each chunk of data
    jitter_ms: int = 0  # ms, +/- around latency_ms
    stream: str = "downstream"  # downstream (replies, server -> client) | upstream (requests)
    toxicity: float = 1.0  # probability that a connection gets the latency

    def check(self) -> list[tuple[str, str]]:
        errors = _check_link(self.link) + _check_stream_toxicity(self.stream, self.toxicity)
        if self.latency_ms <= 0:
            errors.append(("latency_ms", "must be > 0"))
        if self.jitter_ms < 0:
            errors.append(("jitter_ms", "must be >= 0"))
        elif self.jitter_ms > self.latency_ms > 0:
            errors.append(("jitter_ms", f"must be <= latency_ms ({self.latency_ms})"))
        return errors


@fault_type("network-toxic")
@dataclass(frozen=True, slots=True)
class NetworkToxicParams:
    """Any other Toxiproxy toxic on one link: bandwidth, reset_peer, slicer, limit_data, slow_close, timeout."""

    toxic: str  # bandwidth | reset_peer | slicer | limit_data | slow_close | timeout
    link: str = "gateway"  # gateway | feature-store | model | model-<i> | a custom stack's declared link
    attributes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # per toxic, see TOXIC_ATTRIBUTES
    stream: str = "downstream"  # downstream | upstream
    toxicity: float = 1.0  # probability that a connection gets the toxic

    def check(self) -> list[tuple[str, str]]:
        errors = _check_link(self.link) + _check_stream_toxicity(self.stream, self.toxicity)
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


def _check_rows(fraction: float | None, entities: tuple[int, ...] | None) -> list[tuple[str, str]]:
    errors: list[tuple[str, str]] = []
    if fraction is None and entities is None:
        errors.append(("fraction", "set fraction (of entity rows) or entities (a list of entity ids)"))
    elif fraction is not None and entities is not None:
        errors.append(("entities", "set fraction or entities, not both"))
    if fraction is not None and not 0 < fraction <= 1:
        errors.append(("fraction", "must be in (0, 1]"))
    if entities is not None:
        if not entities:
            errors.append(("entities", "must list at least one entity id"))
        elif any(e < 0 for e in entities):
            errors.append(("entities", "entity ids are >= 0"))
        elif len(set(entities)) != len(entities):
            errors.append(("entities", "must not repeat an entity id"))
    return errors


def _check_features(features: tuple[str, ...] | None) -> list[tuple[str, str]]:
    if features is None:
        return []
    if not features:
        return [("features", "must list at least one feature (or be left out: every entity feature)")]
    if len(set(features)) != len(features):
        return [("features", "must not repeat a feature")]
    if any(not f for f in features):
        return [("features", "feature names are non-empty")]
    return []


@fault_type("corrupted-features")
@dataclass(frozen=True, slots=True)
class CorruptedFeaturesParams:
    """Poison entity rows in the feature store; recover restores every touched key byte for byte."""

    mode: str = "nan"  # nan | inf | out-of-range | wrong-type | shuffle (values permuted across fields) | stale
    fraction: float | None = None  # of entity rows, (0, 1], chosen by the run's seeded RNG
    entities: tuple[int, ...] | None = None  # or exactly these entity ids
    features: tuple[str, ...] | None = None  # fields to poison; default every entity feature

    def check(self) -> list[tuple[str, str]]:
        errors = _check_rows(self.fraction, self.entities) + _check_features(self.features)
        if self.mode not in CORRUPTION_MODES:
            errors.append(("mode", f"must be one of {', '.join(CORRUPTION_MODES)}, not {self.mode!r}"))
        if self.mode == "shuffle" and self.features is not None and len(self.features) < 2:
            errors.append(("features", "mode shuffle permutes values across fields: list at least two"))
        return errors


@fault_type("missing-features")
@dataclass(frozen=True, slots=True)
class MissingFeaturesParams:
    """Delete entity rows, or drop some fields of them; recover restores every touched key byte for byte."""

    mode: str = "delete-row"  # delete-row | drop-fields
    fraction: float | None = None  # of entity rows, (0, 1], chosen by the run's seeded RNG
    entities: tuple[int, ...] | None = None  # or exactly these entity ids
    features: tuple[str, ...] | None = None  # drop-fields: the fields to drop (required)

    def check(self) -> list[tuple[str, str]]:
        errors = _check_rows(self.fraction, self.entities) + _check_features(self.features)
        if self.mode not in MISSING_MODES:
            errors.append(("mode", f"must be one of {', '.join(MISSING_MODES)}, not {self.mode!r}"))
        elif self.mode == "drop-fields" and self.features is None:
            errors.append(("features", "is required when mode is drop-fields"))
        elif self.mode == "delete-row" and self.features is not None:
            errors.append(("features", "is only used with mode drop-fields (delete-row deletes the whole row)"))
        return errors


@fault_type("adversarial-payload")
@dataclass(frozen=True, slots=True)
class AdversarialPayloadParams:
    """Mix a hostile load cohort into the traffic for the fault window (load-control file)."""

    cohort: str = "adversarial-evasion"  # one of catalog.HOSTILE_COHORTS
    share: float = 0.2  # fraction of all requests that carry the cohort during the window, (0, 1]

    def check(self) -> list[tuple[str, str]]:
        from chaosml.model.catalog import HOSTILE_COHORTS

        errors: list[tuple[str, str]] = []
        if self.cohort not in HOSTILE_COHORTS:
            errors.append(("cohort", f"must be one of {', '.join(HOSTILE_COHORTS)}, not {self.cohort!r}"))
        if not 0 < self.share <= 1:
            errors.append(("share", f"must be in (0, 1], not {self.share!r}"))
        return errors


# ------------------------------------------------------------------------------------------------
# node failure (kubernetes target on kind: the node is a Docker container)

NODE_ACTIONS = ("pause", "stop")
NODE_CHOICES = ("worker", "random")


@fault_type("node-failure")
@dataclass(frozen=True, slots=True)
class NodeFailureParams:
    """Take one kind node down: ``docker pause`` (frozen, like a partition) or ``docker stop`` (power-off)."""

    node: str = "worker"  # a node name, worker (the worker running most of the stack's pods) or random (seeded)
    action: str = "pause"  # pause | stop
    ready_timeout: float = field(default=60.0, metadata={"duration": True})  # recover waits this long for the node Ready, s

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if self.action not in NODE_ACTIONS:
            errors.append(("action", f"must be one of {', '.join(NODE_ACTIONS)}, not {self.action!r}"))
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", self.node or ""):
            errors.append(("node", f"must be a node name, worker or random, not {self.node!r}"))
        if self.ready_timeout < 0:
            errors.append(("ready_timeout", "must be >= 0"))
        return errors
