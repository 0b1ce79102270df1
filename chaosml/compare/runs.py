"""One run re-analysed from disk for compare: its stored experiment, samples and analysis; used by chaosml.compare.core."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chaosml.analysis import Analysis, analyze, read_samples
from chaosml.analysis.slis import SampleArrays
from chaosml.errors import InvalidInputError
from chaosml.journal import JOURNAL_FILE
from chaosml.journal import load as load_journal
from chaosml.model.experiment import Experiment


@dataclass
class RunData:
    """One run re-analysed from disk."""

    run_dir: Path
    journal: dict[str, Any]
    experiment: Experiment
    analysis: Analysis
    arrays: SampleArrays
    blocks: np.ndarray  # int64 time block (SLI window since load start) per sample

    @property
    def run_id(self) -> str:
        return str(self.journal.get("run_id") or self.run_dir.name)


def resolve_run_dir(path: str | Path) -> Path:
    """A run directory, or the directory of a journal.json given directly."""
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        p = p.parent
    if not (p / JOURNAL_FILE).is_file():
        raise InvalidInputError(f"{path}: no {JOURNAL_FILE} here; give a run directory (reports/<run-id>/) or its {JOURNAL_FILE}")
    return p


def load_run(path: str | Path) -> RunData:
    """Read a run's journal (its stored experiment, not re-parsed) and samples, and analyse it again."""
    run_dir = resolve_run_dir(path)
    record = load_journal(run_dir)  # JournalError (exit 4) names the file and what is wrong
    journal, experiment = record.to_dict(), record.experiment
    samples = read_samples(record.samples_path)
    analysis = analyze(experiment, journal, samples)
    arrays = SampleArrays.from_frame(samples, experiment.steady_state.confidence_threshold)
    w = float(experiment.steady_state.window) or 1.0
    blocks = np.floor((arrays.t - analysis.load.start) / w).astype(np.int64) if len(arrays) else np.zeros(0, np.int64)
    return RunData(run_dir, journal, experiment, analysis, arrays, np.maximum(blocks, 0))
