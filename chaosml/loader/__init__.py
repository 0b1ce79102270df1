"""Experiment YAML -> validated, frozen chaosml.model.Experiment (or one ExperimentError with every issue).

Called by the CLI (validate, plan, run) and the game-day loader; a run's journal keeps the
normalised experiment as data, so readers of old runs never need this loader (schema-1 journals aside).

How it works:

1. The text is composed by chaosml.decoding into a located tree (bounded, no tag evaluated):
   every value keeps its 1-based line and column.
2. Each section is decoded by chaosml.loader.schema; unknown keys, missing required keys, wrong
   types and out-of-range values become issues with the field path (``faults[0].repeat.every``).
3. Cross-field checks (chaosml.loader.checks: references between hypotheses and faults, the
   timeline against the load duration, baseline availability, unique names, the custom stack)
   run on whatever decoded cleanly, so one mistake does not hide another.
"""

from __future__ import annotations

from pathlib import Path

from chaosml.decoding import MAX_FILE_BYTES, MAX_NODES, parse_duration
from chaosml.errors import ExperimentError, Issue
from chaosml.loader.schema import ROLLBACK_PARAMS, ExperimentDecoder
from chaosml.model.experiment import Experiment
from chaosml.yamltree import Node

#: The issue for a file with no content.
EMPTY = "the file is empty: expected a mapping with at least 'title'"

#: Top-level keys that only a game-day file has (chaosml.gameday.model), and only an experiment has.
GAMEDAY_ONLY_KEYS = frozenset({"name", "experiments", "on_failure", "cohort_weights", "schedule"})
EXPERIMENT_ONLY_KEYS = frozenset({"title", "target", "load", "steady_state", "hypotheses", "faults", "abort", "rollbacks",
                                  "request", "response"})

__all__ = [
    "EMPTY",
    "GAMEDAY_ONLY_KEYS",
    "GameDayFileError",
    "document_kind",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "ROLLBACK_PARAMS",
    "load_experiment",
    "load_experiment_text",
    "parse_duration",
    "read_experiment_text",
]


class GameDayFileError(ExperimentError):
    """An experiment was expected but the file is a game-day (``experiments:`` and no experiment keys)."""


def document_kind(root: Node) -> str | None:
    """"gameday" or "experiment" when the top-level keys are only that kind's (``experiments:`` decides a game-day), else None."""
    if root.kind != "map":
        return None
    keys = set(root.value)
    if "experiments" in keys and not keys & EXPERIMENT_ONLY_KEYS:
        return "gameday"
    if keys & EXPERIMENT_ONLY_KEYS and not keys & GAMEDAY_ONLY_KEYS:
        return "experiment"
    return None


def load_experiment(path: str | Path) -> Experiment:
    """Load and validate an experiment file; raise ExperimentError holding every issue."""
    return load_experiment_text(read_experiment_text(path), str(path))


def read_experiment_text(path: str | Path) -> str:
    """An experiment file's text (bounded, UTF-8), read once: validate it and journal the same text."""
    filename = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ExperimentError([Issue(filename, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExperimentError([_too_large(filename)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ExperimentError([Issue(filename, line, column, "", "the file is not UTF-8 text")]) from None
    return text


def load_experiment_text(text: str, filename: str = "<string>") -> Experiment:
    """Validate experiment YAML given as text; raise ExperimentError holding every issue."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ExperimentError([_too_large(filename)])
    decoder = ExperimentDecoder(filename)
    root = decoder.d.compose(text, empty=EMPTY)
    if root is None:
        raise ExperimentError(decoder.d.issues)
    if document_kind(root) == "gameday":
        raise GameDayFileError([Issue(filename, root.line, root.col, "", "this is a game-day file (it lists experiments:), not an experiment: "
                                      f"`chaosml gameday run {filename}` runs it; `chaosml validate` checks it as one")])
    experiment = decoder.experiment(root)
    if experiment is None:
        raise ExperimentError(decoder.d.issues or [Issue(filename, 1, 1, "", "invalid experiment")])
    return experiment


def _too_large(filename: str) -> Issue:
    return Issue(filename, 1, 1, "", f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; refusing to read it")
