"""`chaosml rollback`: undo what the ledger says a dead run left applied, from the records alone; called by the CLI.

Faults newest first (each by its fault type's offline undoer), then targets (by their platform's
``@target_undoer``, see :mod:`chaosml.targets.undoers`); each undone entry is closed, and its run's
journal marked ``partial`` (a journal that cannot be written is a warning, never a failure).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaosml.ledger import Entry, Ledger


@dataclass
class RollbackReport:
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # live runs' entries (not ours to undo)
    problems: list[str] = field(default_factory=list)  # ledger lines that could not be used (file:line: why)
    warnings: list[str] = field(default_factory=list)  # e.g. a journal that could not be marked (not fatal)


def rollback(ledger: Ledger | None = None, *, include_live: bool = False, dry_run: bool = False) -> RollbackReport:
    """Undo every stale open entry: faults newest first, then targets. Closes what it undid.

    Writes only the ledger: marking a run's journal is reported in ``warnings`` when it fails, never fatal.
    """
    from chaosml.faults.base import load_builtin_injectors, undoer_for
    from chaosml.targets.undoers import target_undoer_for

    load_builtin_injectors()
    ledger = ledger or Ledger()
    report = RollbackReport()
    state = ledger.read()
    report.problems = state.problems
    entries = state.entries
    todo = [e for e in entries if include_live or e.stale]
    report.skipped = [f"{e.describe()} (run still going: harness pid {e.harness_pid})" for e in entries if e not in todo]
    ordered = [e for e in reversed(todo) if e.kind == "fault"] + [e for e in reversed(todo) if e.kind != "fault"]
    for e in ordered:
        undo = undoer_for(e.type, e.record.get("platform")) if e.kind == "fault" else target_undoer_for(e.type)
        if undo is None:
            report.failed.append(f"{e.describe()}: no undo known for {e.kind} type {e.type!r}; record: {json.dumps(e.record)}")
            continue
        if dry_run:
            report.undone.append(f"would undo {e.describe()}")
            continue
        record = dict(e.record, spawned=[s.to_dict() for s in e.spawned]) if e.kind == "target" else e.record
        try:
            summary = undo(record)
        except Exception as exc:  # noqa: BLE001 - reported, the entry stays open for the next try
            report.failed.append(f"{e.describe()}: {type(exc).__name__}: {exc}; record: {json.dumps(e.record)}")
            continue
        ledger.close(e.id, ok=True, detail=f"rolled back: {summary}")
        report.undone.append(f"{e.describe()}: {summary}")
        warning = _mark_journal_partial(Path(e.run_dir), e)
        if warning and warning not in report.warnings:
            report.warnings.append(warning)
    return report


def _mark_journal_partial(run_dir: Path, entry: Entry) -> str | None:
    """A run whose harness died is still 'running' in its journal: mark it partial, with why; a warning if that fails."""
    from chaosml.journal import mark_partial

    why = "its recover failed" if entry.failure is not None else "the harness died during the run"
    try:
        mark_partial(run_dir, f"{why}; `chaosml rollback` undid what it left at " + time.strftime("%Y-%m-%d %H:%M:%S"))
    except OSError as exc:
        return f"could not mark the journal of run {entry.run_id} ({run_dir}) as partial: {exc}; `chaosml history` shows it as interrupted"
    return None
