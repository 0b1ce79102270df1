"""Stand-ins for runner tests: a target that serves nothing and a load process that only lives for the load's duration."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from chaosml.runner import Runner


class RecordingTarget:
    """Records what the runner does with it (when given a list); serves nothing (the load process is faked too)."""

    platform = "local"
    entry_url = "http://127.0.0.1:9"

    def __init__(self, calls: list[str] | None = None) -> None:
        self.calls = calls if calls is not None else []
        self.calls.append("target constructed")

    def start(self) -> None:
        self.calls.append("target started")

    def stop(self) -> None:
        self.calls.append("target stopped")

    def describe(self) -> dict[str, Any]:
        return {"platform": "fake"}

    def groups(self) -> list[str]:
        return []


def fake_load(self: Runner) -> None:
    """Runner._start_load stand-in: one progress line, then a process that lives for the load's duration."""
    line = json.dumps({"type": "progress", "elapsed_s": 0.0, "requests": 0})
    code = f"import time; print({line!r}, flush=True); time.sleep({self.experiment.load.duration})"
    self.load_proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    self._reader = threading.Thread(target=self._read_lines, args=(self.load_proc,), daemon=True)
    self._reader.start()


def scripted_load(messages: list[dict[str, Any]], gap_s: float = 0.0, tail_s: float = 0.0) -> Callable[[Runner], None]:
    """A Runner._start_load stand-in whose process prints these JSON lines ``gap_s`` apart, then lives ``tail_s`` more."""

    def start(self: Runner) -> None:
        code = "import time\n" + "".join(f"print({json.dumps(m)!r}, flush=True); time.sleep({gap_s})\n" for m in messages)
        code += f"time.sleep({tail_s})\n"
        self.load_proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read_lines, args=(self.load_proc,), daemon=True)
        self._reader.start()

    return start

