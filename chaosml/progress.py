"""The live progress line of a run (phase, elapsed, requests, success, p99); used by the runner."""

from __future__ import annotations

import time
from typing import IO, Any


class Progress:
    """One live line on a terminal (a line every few seconds elsewhere): phase, elapsed/total, success, p99."""

    def __init__(self, out: IO[str], total_s: float):
        self.out = out
        self.total_s = total_s
        self.tty = out.isatty()
        self._last = 0.0

    def show(self, phase: str, elapsed: float, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 5.0:
            return
        self._last = now
        sr = stats.get("success_ratio")
        p99 = stats.get("p99_ms")
        line = (
            f"[{phase:<22}] {elapsed:5.1f}/{self.total_s:.0f}s  "
            f"requests {stats.get('requests', 0):>6}  "
            f"success {'-' if sr is None else f'{sr:6.2%}'}  "
            f"p99 {'-' if p99 is None else f'{p99:7.1f} ms'}"
        )
        if self.tty:
            self.out.write("\r" + line[:120].ljust(120))
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def message(self, text: str) -> None:
        if self.tty:
            self.out.write("\r" + " " * 120 + "\r")
        self.out.write(text + "\n")
        self.out.flush()
