"""Phases of a run from the journal's actual fault events (not the plan); used by analyze, MTTR, verdicts and compare.

Every interval is half-open ``[start, end)`` in epoch seconds; a closed end is stored as the next
float after it (``np.nextafter``).

Which requests belong to a phase (:func:`in_flight`, the one rule tables, plots, compare and
game-day scores share): a request lives from its send time ``t`` to ``t + latency`` (its answer,
error or timeout; just ``t`` when the latency is unknown). It belongs to a fault window when that
lifetime overlaps the window (sent before the window ends, and answered after it starts or sent
inside it), so a request sent 5 ms before a kill and cut by it counts in the fault, not the
baseline. ``fault`` and each fault's own phase select by this rule; every other phase selects by
send time, minus the requests that belong to a fault window. The phases below (defined for users
in ``catalog.PHASE_DEFINITIONS``, which validate, plan and the report share) are by time:

- ``baseline``: [load start, first apply);
- each injection's fault window: [apply, recover] (to load end when no recover was recorded);
- ``fault``: the union of every fault window; a fault's name: the union of its own windows;
- ``recovery``: (recover, recovered time) per injection, where the recovered time is apply + MTTR
  (the recovery edge, see mttr.py); until the next apply of any fault, or load
  end, when the injection never recovered; minus the fault windows;
- ``after``: from the end of the last recovery (or the last recover, when SLOs already held at
  recover) to load end, inclusive;
- ``between``: steady time between injections that is in no fault or recovery interval;
- ``all``: [load start, load end].

The load start is the one the journal records (the load process's clock before its first request),
or the first request's send time when one was sent before it: a request is never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chaosml.model.catalog import PHASES

Interval = tuple[float, float]

STANDARD_PHASES: tuple[str, ...] = PHASES


def _after(x: float) -> float:
    return float(np.nextafter(x, math.inf))


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping, non-empty union of half-open intervals."""
    out: list[list[float]] = []
    for s, e in sorted((float(s), float(e)) for s, e in intervals if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def subtract(a: Iterable[Interval], b: Iterable[Interval]) -> list[Interval]:
    """``a`` minus ``b`` (both any intervals); the result is merged."""
    result = merge(a)
    for bs, be in merge(b):
        nxt: list[Interval] = []
        for s, e in result:
            if be <= s or bs >= e:
                nxt.append((s, e))
                continue
            if s < bs:
                nxt.append((s, bs))
            if be < e:
                nxt.append((be, e))
        result = nxt
    return merge(result)


def clip(intervals: Iterable[Interval], lo: float, hi: float) -> list[Interval]:
    return merge((max(s, lo), min(e, hi)) for s, e in intervals)


def _bounds(intervals: Sequence[Interval]) -> tuple[np.ndarray, np.ndarray]:
    iv = merge(intervals)
    starts = np.fromiter((s for s, _ in iv), dtype=np.float64, count=len(iv))
    ends = np.fromiter((e for _, e in iv), dtype=np.float64, count=len(iv))
    return starts, ends


def select(t: np.ndarray, intervals: Sequence[Interval]) -> np.ndarray:
    """Boolean mask of send times ``t`` inside any of the (merged) half-open ``intervals``."""
    starts, ends = _bounds(intervals)
    if not len(starts):
        return np.zeros(len(t), dtype=bool)
    idx = np.searchsorted(starts, t, side="right") - 1
    inside = idx >= 0
    return inside & (t < ends[np.clip(idx, 0, None)])


def in_flight(t: np.ndarray, end: np.ndarray, intervals: Sequence[Interval]) -> np.ndarray:
    """THE phase rule: mask of requests whose lifetime ``[t, end]`` overlaps any half-open interval.

    A request overlaps ``[a, b)`` when it was sent inside it (``a <= t < b``), or sent before
    ``b`` and answered after ``a`` (``t < b`` and ``end > a``). With ``end == t`` (latency
    unknown) this is selection by send time.
    """
    starts, ends = _bounds(intervals)
    if not len(starts):
        return np.zeros(len(t), dtype=bool)
    idx = np.searchsorted(starts, end, side="left") - 1  # last interval starting before the answer
    spans = (idx >= 0) & (ends[np.clip(idx, 0, None)] > t)
    return spans | select(t, intervals)


@dataclass(frozen=True, slots=True)
class LoadRange:
    """When load was sent: fault offsets and plot axes are relative to ``start``."""

    start: float
    end: float  # last moment of load (inclusive)
    end_known: bool  # False: the journal has no load end (the run did not finish)

    @property
    def end_open(self) -> float:
        """Half-open end that includes ``end``."""
        return _after(self.end)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class InjectionWindow:
    """One injection of one fault as it actually happened (from fault_events)."""

    fault: str
    type: str
    index: int
    apply_t: float
    recover_t: float | None  # None: no recover event was recorded
    apply_ok: bool
    recover_ok: bool | None
    targets: tuple[str, ...]
    search_end: float  # next apply of any fault after this one, or load end
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def window(self) -> Interval:
        """[apply, recover] as a half-open interval (to load end without a recover)."""
        end = _after(self.recover_t) if self.recover_t is not None else math.inf
        return (self.apply_t, end)


def load_range(journal: dict[str, Any], t: np.ndarray) -> LoadRange:
    """Load start and end from the journal, falling back to the samples and the events."""
    load = journal.get("load") or {}
    start = _num(load.get("started_at"))
    end = _num(load.get("ended_at"))
    end_known = end is not None
    event_times = [
        float(e["t"]) for key in ("fault_events", "target_events") for e in journal.get(key) or [] if _num(e.get("t")) is not None
    ]
    if start is None:
        cands = [x for x in (_num(journal.get("started_at")),) if x is not None]
        if len(t):
            cands.append(float(t.min()))
        start = min(cands) if cands else 0.0
    elif len(t) and float(t.min()) < start:  # a request sent before the recorded start is counted, never dropped
        start = float(t.min())
    if end is None:
        cands = [start]
        if len(t):
            cands.append(float(t.max()))
        cands.extend(event_times)
        end = max(cands)
    return LoadRange(start=start, end=max(end, start), end_known=end_known)


def injection_windows(journal: dict[str, Any], load: LoadRange, fault_types: dict[str, str] | None = None) -> list[InjectionWindow]:
    """Pair apply/recover fault events by (fault, injection), sorted by apply time."""
    types = dict(fault_types or {})
    for step in journal.get("timeline") or []:
        if "fault" in step and "type" in step:
            types.setdefault(str(step["fault"]), str(step["type"]))
    events = sorted(
        (e for e in journal.get("fault_events") or [] if _num(e.get("t")) is not None),
        key=lambda e: float(e["t"]),
    )
    applies: dict[tuple[str, int], dict[str, Any]] = {}
    recovers: dict[tuple[str, int], dict[str, Any]] = {}
    for e in events:
        key = (str(e.get("fault")), int(e.get("injection") or 0))
        if e.get("action") == "apply":
            applies.setdefault(key, e)
        elif (
            e.get("action") == "recover"
            and key in applies
            and key not in recovers
            and float(e["t"]) >= float(applies[key]["t"])
        ):
            recovers[key] = e
    apply_times = sorted({float(e["t"]) for e in applies.values()})
    out: list[InjectionWindow] = []
    for key, ap in applies.items():
        at = float(ap["t"])
        i = int(np.searchsorted(apply_times, at, side="right"))
        nxt = apply_times[i] if i < len(apply_times) else math.inf
        rec = recovers.get(key)
        out.append(
            InjectionWindow(
                fault=key[0],
                type=types.get(key[0], ""),
                index=key[1],
                apply_t=at,
                recover_t=float(rec["t"]) if rec else None,
                apply_ok=bool(ap.get("ok", True)),
                recover_ok=bool(rec.get("ok", True)) if rec else None,
                targets=tuple(str(x) for x in ap.get("targets") or ()),
                search_end=min(nxt, load.end),
                detail=dict(ap.get("detail") or {}),
            )
        )
    out.sort(key=lambda w: (w.apply_t, w.fault, w.index))
    return out


@dataclass(frozen=True, slots=True)
class Phase:
    """A named set of half-open intervals; ``kind`` is "phase" or "fault" (a fault's own windows).

    ``lifetime``: requests belong when their lifetime overlaps the intervals (fault windows);
    otherwise by send time, minus the requests whose lifetime overlaps ``exclude`` (the fault
    windows: those belong to the fault).
    """

    name: str
    kind: str
    intervals: tuple[Interval, ...]
    lifetime: bool = False
    exclude: tuple[Interval, ...] = ()

    @property
    def duration(self) -> float:
        return float(sum(e - s for s, e in self.intervals))

    def select(self, t: np.ndarray, end: np.ndarray | None = None) -> np.ndarray:
        """Mask of the requests sent at ``t`` and answered at ``end`` (None: send times only) in this phase."""
        end = t if end is None else end
        if self.lifetime:
            return in_flight(t, end, self.intervals)
        mask = select(t, self.intervals)
        if self.exclude:
            mask &= ~in_flight(t, end, self.exclude)
        return mask


def build_phases(
    load: LoadRange,
    injections: Sequence[InjectionWindow],
    recovered_at: Sequence[float | None],
) -> dict[str, Phase]:
    """All phases, keyed by name: STANDARD_PHASES, then one per fault name in order of first apply.

    ``recovered_at[k]`` is the recovered time (apply + MTTR) of ``injections[k]``, None if it
    never recovered.
    """
    lo, hi = load.start, load.end_open
    windows: list[Interval] = []
    recoveries: list[Interval] = []
    rec_ends: list[float] = []
    by_fault: dict[str, list[Interval]] = {}
    for inj, rt in zip(injections, recovered_at, strict=True):
        w = (inj.apply_t, min(inj.window[1], hi))
        windows.append(w)
        by_fault.setdefault(inj.fault, []).append(w)
        end = w[1]
        if inj.recover_t is not None:
            r0 = _after(inj.recover_t)
            r1 = inj.search_end if rt is None else rt
            if r1 >= load.end:
                r1 = hi  # never recovered before load end: the recovery includes load end
            if r1 > r0:
                recoveries.append((r0, r1))
                end = max(end, r1)
        rec_ends.append(end)
    fault = clip(windows, lo, hi)
    phases: dict[str, Phase] = {}
    if injections:
        first = min(inj.apply_t for inj in injections)
        after_start = max(rec_ends)
        if after_start >= load.end:
            after_start = hi  # the last injection never recovered (or ran to load end): no after
        baseline = clip([(lo, first)], lo, hi)
        recovery = subtract(clip(recoveries, lo, hi), fault)
        after = clip([(after_start, hi)], lo, hi)
        between = subtract(subtract(clip([(first, after_start)], lo, hi), fault), recovery)
    else:
        baseline, recovery, after, between = [(lo, hi)], [], [], []
    excl = tuple(fault)
    for name, iv in (("baseline", baseline), ("recovery", recovery), ("between", between), ("after", after)):
        phases[name] = Phase(name, "phase", tuple(iv), exclude=excl)
    phases["fault"] = Phase("fault", "phase", excl, lifetime=True)
    phases["all"] = Phase("all", "phase", ((lo, hi),))
    phases = {name: phases[name] for name in STANDARD_PHASES}
    for name, iv in by_fault.items():
        if name not in phases:
            phases[name] = Phase(name, "fault", tuple(clip(iv, lo, hi)), lifetime=True)
    return phases


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v
