"""Load shapes (``load.shape``): stages of users over time and the exact users-over-time curve; pure, no I/O.

Built by the loader (ramp, step and spike are written as stages), driven by the load process
(:mod:`chaosml.load.driver` calls locust's ``runner.start(users, spawn_rate)`` at each stage
boundary, the ``(user_count, spawn_rate)`` a ``LoadTestShape.tick()`` returns), shown by ``plan``
and integrated by :mod:`chaosml.analysis.delivery` for the requested rate.

The curve (:func:`segments`): the load starts with no users; at the start of each stage the user
count moves from where it is toward the stage's ``users``, then holds. It moves as locust's
``UsersDispatcher`` moves it, up or down: in batches of ``max(1, floor(spawn_rate))`` users, the
first batch at once and one more every ``batch / spawn_rate`` seconds (so 10 users at
``spawn_rate: 10`` all start at once, and 10 users at 2/s start 2 at a time, one batch a second).
A stage ends at ``end`` seconds from load start; the last stage holds until the load ends. A load
without a shape is one stage: ``users`` at ``spawn_rate`` for the whole load. The requested rate
is ``rate_per_user`` times the curve.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Shape types of ``load.shape.type``.
SHAPE_TYPES: tuple[str, ...] = ("ramp", "step", "spike", "stages")


@dataclass(frozen=True, slots=True)
class LoadStage:
    """One stage: from the previous stage's end until ``end``, move to ``users`` at ``spawn_rate``/s and hold."""

    end: float  # seconds from load start (the last stage holds until the load ends)
    users: int
    spawn_rate: float  # users started or stopped per second while moving


@dataclass(frozen=True, slots=True)
class LoadShape:
    """``load.shape``: its type, the parameters as given (normalised to numbers), and its stages."""

    type: str  # ramp | step | spike | stages
    stages: tuple[LoadStage, ...]
    params: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def describe(self) -> str:
        """One line: the shape as the user wrote it."""
        p = self.params

        def s(x: float) -> str:
            return f"{x:g}s"

        if self.type == "ramp":
            return f"ramp from {p['from']:g} to {p['to']:g} users over {s(p['over'])}, then hold"
        if self.type == "step":
            return f"step from {p['from']:g} to {p['to']:g} users in {p['steps']:g} steps of {s(p['every'])}, then hold"
        if self.type == "spike":
            return f"spike from {p['base']:g} to {p['peak']:g} users at {s(p['at'])} for {s(p['for'])}, then back to {p['base']:g}"
        return f"{len(self.stages)} stage(s), the last one held until the load ends"


Segment = tuple[float, float, int]  # (t0, t1, users held from t0 until t1)


def segments(stages: tuple[LoadStage, ...]) -> list[Segment]:
    """The users-over-time curve as constant pieces from 0 to infinity (see the module docstring)."""
    out: list[Segment] = []
    users, t = 0, 0.0
    for i, st in enumerate(stages):
        end = math.inf if i == len(stages) - 1 else max(st.end, t)
        batch = max(1, math.floor(st.spawn_rate))
        every = batch / st.spawn_rate
        step = t
        while users != st.users and step < end:  # one dispatch per batch, the first one at the stage start
            users += max(-batch, min(batch, st.users - users))
            nxt = min(step + every, end) if users != st.users else end
            out.append((step, nxt, users))
            step = nxt
        if step < end:
            out.append((step, end, users))
        t = end
    return _merged(out)


def _merged(pieces: list[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for t0, t1, u in pieces:
        if t1 <= t0:
            continue
        if out and out[-1][2] == u and out[-1][1] == t0:
            out[-1] = (out[-1][0], t1, u)
        else:
            out.append((t0, t1, u))
    return out


def users_at(stages: tuple[LoadStage, ...], x: float) -> int:
    """Users the shape asks for ``x`` seconds after load start."""
    for t0, t1, u in segments(stages):
        if t0 <= x < t1:
            return u
    return 0


def user_seconds(stages: tuple[LoadStage, ...], a: float, b: float) -> float:
    """Integral of the users curve over [a, b] seconds from load start (user-seconds); exact."""
    return sum(u * (min(b, t1) - max(a, t0)) for t0, t1, u in segments(stages) if min(b, t1) > max(a, t0))


def stage_spans(stages: tuple[LoadStage, ...], duration: float) -> list[tuple[int, float, float, LoadStage]]:
    """(1-based number, start, end, stage) of each stage within a load of ``duration`` seconds (the last one to its end)."""
    out = []
    start = 0.0
    for i, st in enumerate(stages):
        end = duration if i == len(stages) - 1 else min(st.end, duration)
        if end > start:
            out.append((i + 1, start, end, st))
        start = max(start, end)
    return out


__all__ = ["SHAPE_TYPES", "LoadShape", "LoadStage", "Segment", "segments", "stage_spans", "user_seconds", "users_at"]
