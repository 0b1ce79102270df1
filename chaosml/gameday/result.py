"""A game-day's result as data: per-experiment outcomes and what gameday.json holds; used by the game-day runner and its report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.gameday.model import GameDay, GameDayExperiment
from chaosml.journal import write_json_atomic

GAMEDAY_SCHEMA = "chaosml.gameday/1"


@dataclass
class ExperimentOutcome:
    index: int
    entry: GameDayExperiment
    status: str  # completed | aborted | failed | error | not run
    exit_code: int | None
    reason: str | None = None
    run_dir: Path | None = None
    analysis: dict[str, Any] | None = None
    started_at: float | None = None
    ended_at: float | None = None


@dataclass
class GameDayResult:
    gameday: GameDay
    report_dir: Path
    outcomes: list[ExperimentOutcome]
    aborted: bool
    exit_code: int
    score: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def gameday_dict(result: GameDayResult) -> dict[str, Any]:
    """What gameday.json holds (links are relative to the game-day report dir)."""
    gd = result.gameday
    exps = []
    for oc in result.outcomes:
        a = oc.analysis or {}
        rel = os.path.relpath(oc.run_dir, result.report_dir) if oc.run_dir else None
        exps.append(
            {
                "index": oc.index,
                "source": oc.entry.source,
                "title": oc.entry.experiment.title,
                "release": oc.entry.experiment.release,
                "weight": oc.entry.weight,
                "severity": oc.entry.max_severity(),
                "status": oc.status,
                "exit_code": oc.exit_code,
                "reason": oc.reason,
                "run_dir": rel,
                "report": f"{rel}/report.html" if rel and oc.run_dir and (oc.run_dir / "report.html").exists() else None,
                "report_md": f"{rel}/report.md" if rel and oc.run_dir and (oc.run_dir / "report.md").exists() else None,
                "counts": a.get("counts"),
                "verdicts": a.get("verdicts", []),
                "faults": a.get("faults", []),
                "started_at": oc.started_at,
                "ended_at": oc.ended_at,
            }
        )
    return {
        "schema": GAMEDAY_SCHEMA,
        "name": gd.name,
        "release": gd.release,
        "file": str(gd.file),
        "on_failure": gd.on_failure,
        "aborted": result.aborted,
        "exit_code": result.exit_code,
        "score": result.score,
        "experiments": exps,
    }


def write_json(path: Path, data: Any) -> None:
    """Write gameday.json atomically (the journal's writer)."""
    write_json_atomic(path, data)
