"""Frozen game-day model: a suite of experiments, a release label, a failure policy and a schedule; no I/O.

A game-day file (``experiments/gamedays/*.yaml``; loaded by chaosml.gameday.loader)::

    version: 1
    name: weekly-resilience            # [a-z0-9-], used in report and CronJob names
    release: hardened                  # the label of the release under test
    description: optional text
    on_failure: continue               # stop | continue: after an experiment that failed
    experiments:                       # run in this order; paths relative to this file
      - ../quickstart.yaml             # a bare path: weight 1, severity from its fault types
      - path: ../quickstart-naive.yaml
        weight: 2                      # > 0: how much this experiment counts in the score
        severity: high                 # low | medium | high | critical, for every fault ...
        # severity: {kill-replica: critical}   # ... or per fault name
    cohort_weights: {missing-features: 2}      # optional: weight of verdicts scoped to a cohort (default 1;
                                               # a file cohort of load.data.cohort not listed: clean's weight)
    schedule:                          # optional; used by `chaosml gameday schedule`
      cron: "0 3 * * 1"                # 5-field cron (croniter syntax)
      timezone: UTC                    # an IANA time zone name
      concurrency: forbid              # forbid | allow: start a run while the previous one runs?
      history_limit: 3                 # runs kept (CronJob successful/failed history limits)
      blackouts:                       # fire times inside one of these are skipped
        - {cron: "0 0 24 12 *", duration: 48h, reason: holidays}   # from each cron fire, for duration
        - {start: "2026-12-24T00:00", end: "2027-01-02T00:00"}      # an absolute range (schedule zone)
        - {weekdays: [sat, sun], from: "00:00", to: "24:00"}        # weekly; from > to wraps past midnight
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from chaosml.model.experiment import Experiment
from chaosml.model.faulttype import registry

#: Severity levels and their weight in the resilience score.
SEVERITIES: dict[str, float] = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 5.0}
ON_FAILURE: tuple[str, ...] = ("stop", "continue")
CONCURRENCY: tuple[str, ...] = ("forbid", "allow")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Blackout:
    """A period in which scheduled runs are skipped: one of the three forms is set."""

    reason: str = ""
    cron: str | None = None  # each fire of this cron opens a window of ``duration_s``
    duration_s: float = 0.0
    start: dt.datetime | None = None  # absolute [start, end), aware
    end: dt.datetime | None = None
    weekdays: tuple[int, ...] = ()  # 0 = Monday; a daily [from, to) on each of these days
    from_min: int = 0  # minutes after midnight
    to_min: int = 0

    def describe(self) -> str:
        if self.cron is not None:
            what = f"cron {self.cron!r} for {self.duration_s:g}s"
        elif self.start is not None and self.end is not None:
            what = f"{self.start.isoformat()} .. {self.end.isoformat()}"
        else:
            days = ",".join(WEEKDAYS[d] for d in self.weekdays)
            what = f"{days} {self.from_min // 60:02d}:{self.from_min % 60:02d}-{self.to_min // 60:02d}:{self.to_min % 60:02d}"
        return f"{what}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True, slots=True)
class Schedule:
    cron: str
    timezone: str = "UTC"
    concurrency: str = "forbid"
    history_limit: int = 3
    blackouts: tuple[Blackout, ...] = ()


@dataclass(frozen=True, slots=True)
class GameDayExperiment:
    """One experiment of a game-day, loaded and validated."""

    path: Path  # resolved against the game-day file's folder
    source: str  # the path as written
    experiment: Experiment
    weight: float = 1.0
    severity: str | None = None  # one level for every fault
    fault_severity: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    text: str = ""  # the file's text as validated (the run's journal keeps this same text)

    def severity_of(self, fault: str | None) -> str:
        """A fault's severity: per-fault setting, experiment setting, then the default of its type."""
        if fault is not None and fault in self.fault_severity:
            return self.fault_severity[fault]
        if self.severity is not None:
            return self.severity
        if fault is not None:
            for f in self.experiment.faults:
                if f.name == fault:
                    ft = registry().get(f.type)  # the type's own default (FaultType.severity)
                    return ft.severity if ft is not None else "medium"
        return self.max_severity()

    def max_severity(self) -> str:
        levels = [self.severity_of(f.name) for f in self.experiment.faults] or [self.severity or "medium"]
        return max(levels, key=lambda s: SEVERITIES[s])


@dataclass(frozen=True, slots=True)
class GameDay:
    name: str
    file: Path
    experiments: tuple[GameDayExperiment, ...]
    release: str = "unversioned"
    description: str = ""
    on_failure: str = "continue"
    schedule: Schedule | None = None
    cohort_weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    version: int = 1

    @property
    def platforms(self) -> set[str]:
        return {e.experiment.target.platform for e in self.experiments}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": str(self.file),
            "release": self.release,
            "on_failure": self.on_failure,
            "experiments": [
                {"path": str(e.path), "source": e.source, "title": e.experiment.title, "weight": e.weight, "severity": e.max_severity()}
                for e in self.experiments
            ],
            "cohort_weights": dict(self.cohort_weights),
        }
