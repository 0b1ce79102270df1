"""Requested vs achieved load per phase, and which verdicts a short load leaves inconclusive; used by analyze.

The requested rate is the experiment's open-loop load: ``users`` x ``rate_per_user`` requests/s,
ramping up linearly while locust spawns ``spawn_rate`` users a second from load start, until the
configured ``duration`` (the load then only drains in-flight requests until its recorded end). The
requested requests of a phase are that rate integrated over the phase's intervals; the achieved
ones are the requests the phase holds (by the phases' rule). A phase whose achieved requests fall
short of the requested by more than ``SHORTFALL_MARGIN`` did not get the load the experiment asked
for: its sample verdicts are INCONCLUSIVE with the reason (a load generator that cannot keep up
hides exactly the overload a hypothesis is about). A closed-loop load (``rate_per_user`` unset)
requests no rate: nothing is judged.

A user waits for each answer before its next request, so a target whose answers take longer than
the pacing interval (``1 / rate_per_user``) itself holds the rate down: that is the stack's doing,
not a shortfall of the load generator. The requested load of such a phase is scaled by
``pace / mean(max(pace, request lifetime))`` (the most its users could send while waiting: each
request takes its own cycle) before it is judged, and the row says the target limited it. A naive
stack that hangs during an outage thus FAILs its availability hypothesis instead of hiding behind
"load not delivered".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chaosml.analysis.phases import Interval, LoadRange, Phase
from chaosml.analysis.slis import SampleArrays
from chaosml.analysis.verdicts import Verdict
from chaosml.model.catalog import SAMPLE_SLIS
from chaosml.model.experiment import LoadSpec
from chaosml.model.loadshape import stage_spans, user_seconds

#: A phase that got fewer than (1 - this) of its requested requests did not get the load asked for.
SHORTFALL_MARGIN = 0.2
#: Phases shorter than this many seconds are not judged (a few requests either way are noise).
MIN_PHASE_S = 1.0
#: plan/validate warn when the ramp (users / spawn_rate) takes more than this share of the load duration.
RAMP_WARN_SHARE = 0.5


def ramp_warning(spec: LoadSpec) -> str | None:
    """A warning when spawning the users takes most of the load: the requested rate is barely reached."""
    if spec.spawn_rate <= 0 or spec.duration <= 0 or spec.shape is not None:  # a shape is a deliberate curve: plan shows it
        return None
    ramp = spec.users / spec.spawn_rate
    if ramp <= RAMP_WARN_SHARE * spec.duration:
        return None
    return (f"WARNING: the ramp ({spec.users} users at {spec.spawn_rate:g}/s = {ramp:g} s) takes "
            f"{100 * min(ramp / spec.duration, 1.0):.0f}% of the {spec.duration:g} s load: most of the run is not at the "
            "requested rate (raise load.spawn_rate or load.duration)")


@dataclass(frozen=True, slots=True)
class Delivery:
    """The load one phase asked for and got."""

    phase: str
    duration_s: float
    requested: float
    achieved: int
    achievable: float | None = None  # what users waiting on the target's answers could send; None: not limited

    @property
    def target_limited(self) -> bool:
        return self.achievable is not None and self.achievable < self.requested

    @property
    def requested_rps(self) -> float:
        return self.requested / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def achieved_rps(self) -> float:
        return self.achieved / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def ratio(self) -> float | None:
        return self.achieved / self.requested if self.requested > 0 else None

    @property
    def short(self) -> bool:
        """The load generator fell short of what the phase requested (and its users could have sent)."""
        expected = min(self.requested, self.achievable) if self.achievable is not None else self.requested
        if self.duration_s < MIN_PHASE_S or expected <= 0:
            return False
        return self.achieved < (1.0 - SHORTFALL_MARGIN) * expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "duration_s": self.duration_s,
            "requested": round(self.requested, 3),
            "achieved": self.achieved,
            "requested_rps": round(self.requested_rps, 3),
            "achieved_rps": round(self.achieved_rps, 3),
            "ratio": None if self.ratio is None else round(self.ratio, 4),
            "achievable": None if self.achievable is None else round(self.achievable, 3),
            "target_limited": self.target_limited,
            "short": self.short,
        }


def requested_requests(spec: LoadSpec, start: float, intervals: Sequence[Interval]) -> float | None:
    """Requests the load asked for over ``intervals`` (epoch s); None for a closed-loop load.

    ``rate_per_user`` times the integral of the users curve (chaosml.model.loadshape: the shape's
    stages, or ``users`` ramping up at ``spawn_rate``), cut at the configured duration.
    """
    if spec.rate_per_user is None or spec.users <= 0:
        return None
    stages = spec.stages()
    stop = start + spec.duration  # no new requests after the configured duration (in-flight ones drain)
    total = sum(user_seconds(stages, max(0.0, min(s, stop) - start), max(0.0, min(e, stop) - start)) for s, e in intervals if e > s)
    return float(spec.rate_per_user) * total


def delivery(spec: LoadSpec, a: SampleArrays, phases: Mapping[str, Phase], load: LoadRange) -> list[Delivery]:
    """Requested vs achieved requests of every phase (empty for a closed-loop load)."""
    out: list[Delivery] = []
    for name, phase in phases.items():
        intervals = [(s, min(e, load.end)) for s, e in phase.intervals]
        requested = requested_requests(spec, load.start, intervals)
        if requested is None or spec.rate_per_user is None:
            return []
        mask = a.in_phase(phase)
        out.append(Delivery(name, round(phase.duration, 6), requested, int(mask.sum()),
                            _achievable(requested, 1.0 / float(spec.rate_per_user), a.latency[mask])))
    return out


def stage_delivery(spec: LoadSpec, a: SampleArrays, load: LoadRange) -> list[Delivery]:
    """Requested vs achieved requests of each stage of ``load.shape`` (by send time); empty without a shape or a rate."""
    if spec.shape is None or spec.rate_per_user is None:
        return []
    out = []
    for n, s0, s1, st in stage_spans(spec.shape.stages, spec.duration):
        lo, hi = load.start + s0, min(load.start + s1, load.end_open)
        requested = requested_requests(spec, load.start, [(lo, hi)]) or 0.0
        mask = (a.t >= lo) & (a.t < hi)
        out.append(Delivery(f"stage {n} ({st.users} users)", round(max(0.0, hi - lo), 6), requested, int(mask.sum()),
                            _achievable(requested, 1.0 / float(spec.rate_per_user), a.latency[mask])))
    return out


def _achievable(requested: float, pace_s: float, latency_ms: Any) -> float | None:
    """Requests users could send when each waits for its answer, or None when every answer came within the pacing
    (the target did not hold the rate down).

    locust's constant_throughput starts a user's next request max(pace, lifetime) after the last one started, so
    each request takes its own cycle: requested x pace / mean(max(pace, lifetime)). A slow answer costs its user
    time that a fast one cannot give back (a mean lifetime under the pacing can still hold the rate down)."""
    known = latency_ms[~np.isnan(latency_ms)]
    if len(known) == 0:
        return None
    cycle_s = float(np.maximum(known / 1000.0, pace_s).mean())
    if cycle_s <= pace_s:
        return None
    return requested * pace_s / cycle_s


def short_load_verdicts(verdicts: Sequence[Verdict], deliveries: Sequence[Delivery]) -> list[Verdict]:
    """Sample verdicts of a phase whose load fell short become INCONCLUSIVE, with the numbers."""
    short = {d.phase: d for d in deliveries if d.short}
    out = []
    for v in verdicts:
        d = short.get(v.phase or "")
        if d is None or v.sli not in SAMPLE_SLIS or v.verdict == "inconclusive":
            out.append(v)
            continue
        detail = (f"load not delivered: {d.achieved_rps:.1f} of {d.requested_rps:.1f} requested req/s "
                  f"({100 * (d.ratio or 0.0):.0f}%, short by more than {100 * SHORTFALL_MARGIN:.0f}%); was {v.verdict}: {v.detail}")
        out.append(dataclasses.replace(v, verdict="inconclusive", detail=detail))
    return out


__all__ = [
    "MIN_PHASE_S",
    "RAMP_WARN_SHARE",
    "SHORTFALL_MARGIN",
    "Delivery",
    "delivery",
    "ramp_warning",
    "requested_requests",
    "short_load_verdicts",
    "stage_delivery",
]
