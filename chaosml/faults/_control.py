"""The load-control file as the load-side faults (adversarial-payload, drift) edit it: one entry per injection, written atomically.

The file (format in ``chaosml/load/control.py``) holds ``faults``: injection key -> entry, and
``share``: the cohort shares rebuilt from the adversarial entries. Every writer goes through
:func:`set_entry`, so two load-side faults of different types never drop each other's entries.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

MAX_CONTROL_BYTES = 64 * 1024


def read_entries(path: Path) -> dict[str, Any]:
    """The file's ``faults`` entries; {} when it is missing or unreadable."""
    try:
        raw = json.loads(path.read_bytes()[:MAX_CONTROL_BYTES])
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return {}
    entries = raw.get("faults") if isinstance(raw, dict) else None
    return entries if isinstance(entries, dict) else {}


def shares(entries: dict[str, Any]) -> dict[str, float]:
    """Cohort -> share of all requests, summed over the adversarial entries (capped at 1)."""
    out: dict[str, float] = {}
    for e in entries.values():
        if isinstance(e, dict) and isinstance(e.get("cohort"), str) and isinstance(e.get("share"), int | float):
            out[e["cohort"]] = min(1.0, out.get(e["cohort"], 0.0) + float(e["share"]))
    return out


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so the poller never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_entry(path: Path, key: str, entry: dict[str, Any] | None) -> None:
    """Put (or, with None, remove) one injection's entry; the file goes away when no entry is left. Raises OSError."""
    entries = read_entries(path)
    if entry is None:
        entries.pop(key, None)
    else:
        entries[key] = entry
    if entries:
        write_atomic(path, {"faults": entries, "share": shares(entries)})
    else:
        path.unlink(missing_ok=True)


def undo_control_file(fault_type: str, record: dict[str, Any]) -> str:
    """Offline undo of a load-side fault: delete the load-control file (missing is fine: already undone)."""
    path = Path(str(record["control_file"]))
    existed = path.exists()
    path.unlink(missing_ok=True)
    return f"{fault_type}: {'removed' if existed else 'already gone:'} {path}"
