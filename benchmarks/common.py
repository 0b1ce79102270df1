"""Shared pieces of the benchmark suite: figures, section results, machine context, child processes.

Every figure is measured in this run (never estimated or copied): a :class:`Figure` holds the value,
its unit, an optional target (operator and threshold) and whether it was met, plus a note saying
what it means or why it missed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, t: v <= t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    ">": lambda v, t: v > t,
}


@dataclass
class Figure:
    """One measured number; ``met`` is None when the figure has no target."""

    section: str
    name: str
    value: float | int | None
    unit: str
    op: str | None = None
    target: float | None = None
    note: str = ""
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.op is not None and self.target is not None and self.value is not None:
            self.met = _OPS[self.op](float(self.value), float(self.target))

    @property
    def target_text(self) -> str:
        return "-" if self.op is None or self.target is None else f"{self.op} {self.target:g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "target": None if self.op is None else {"op": self.op, "value": self.target},
            "met": self.met,
            "note": self.note,
        }


@dataclass
class SectionResult:
    """What one section measured: figures, the raw data behind them, the machine's load while it ran."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    skipped: str | None = None  # why nothing was measured (a tool is missing): not an error

    def add(self, name: str, value: float | None, unit: str, op: str | None = None,
            target: float | None = None, note: str = "") -> Figure:
        fig = Figure(self.name, name, value, unit, op, target, note)
        self.figures.append(fig)
        return fig

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "context": self.context,
            "figures": [f.to_dict() for f in self.figures],
            "details": self.details,
            "error": self.error,
            "skipped": self.skipped,
        }


def machine_context() -> dict[str, Any]:
    """Load average and CPU count now (recorded at the start and end of every section)."""
    one, five, fifteen = os.getloadavg()
    return {"t": time.time(), "loadavg": [round(one, 2), round(five, 2), round(fifteen, 2)], "cpu_count": os.cpu_count()}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, -(-round(q * len(ordered)) // 100))
    return float(ordered[min(rank, len(ordered)) - 1])


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, seconds (from /proc/<pid>/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLK_TCK  # fields 14 and 15 (1-based) of the stat line


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a benchmark child: the source tree (chaosml, benchmarks) importable, unbuffered output."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class LineReader:
    """Reads a child's stdout lines on a thread into a queue (so waits are bounded)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def get(self, timeout_s: float) -> str | None:
        """The next line; None at end of stream; raises queue.Empty after ``timeout_s``."""
        return self.lines.get(timeout=timeout_s)

    def progress(self, deadline: float) -> Iterator[dict[str, Any]]:
        """The load process's progress/done messages until end of stream or ``deadline`` (monotonic)."""
        from chaosml.load.config import parse_progress

        while time.monotonic() < deadline:
            try:
                line = self.get(max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return
            if line is None:
                return
            msg = parse_progress(line)
            if msg is not None:
                yield msg


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM this child (its process group when it leads one), then SIGKILL; reap it."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)
        except ProcessLookupError:
            pass
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


@contextlib.contextmanager
def child(argv: list[str], *, ready_prefix: str, timeout_s: float = 30.0, stderr: Any = None,
          env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a helper process and wait for its first stdout line starting with ``ready_prefix``.

    Yields (process, the rest of that line). The process is stopped on exit.
    """
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1,
        env=env or python_env(),
    )
    try:
        reader = LineReader(proc.stdout)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{argv[2] if len(argv) > 2 else argv}: not ready within {timeout_s:.0f}s")
            try:
                line = reader.get(left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{' '.join(argv[:3])}: exited with {proc.wait(5)} before it was ready")
            if line.startswith(ready_prefix):
                yield proc, line[len(ready_prefix) :].strip()
                return
    finally:
        stop_process(proc)


def py(*args: str) -> list[str]:
    """argv running this interpreter."""
    return [sys.executable, *args]


async def serve_until_signalled(server: Any) -> None:
    """Print ``listening <port>`` for the benchmark to read, serve until SIGTERM/SIGINT, then close."""
    import asyncio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def serve_main(description: str | None, serve: Callable[[str, int], Any]) -> None:
    """``python -m`` entry of a benchmark server: ``--host``/``--port`` (0: any free port), then
    ``asyncio.run(serve(host, port))`` (which prints ``listening <port>`` once ready)."""
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))
