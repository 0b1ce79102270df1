"""Host load during a run (load average, CPU steal, the load generator's CPU): sampled by the runner, read by report and compare.

A latency measured on a busy host is the host's as much as the stack's. The runner samples, at
most once per :data:`SAMPLE_INTERVAL_S` while the load runs (so at most duration / interval + 2
samples), the 1-minute load average (``os.getloadavg``) and the CPU counters of ``/proc/stat``;
the load process reports its own CPU time (``os.times``: user + system) in every progress line and
in its done record. :class:`HostLoad` is what the journal keeps (``host_load``).

Definitions (the README's):

- ``load_per_core``: the largest 1-min load average seen during the load, divided by the CPUs;
- ``steal_share``: CPU time the hypervisor gave to other guests over all CPU time during the load
  (``/proc/stat`` steal column); None when the kernel does not expose it;
- ``loadgen_cpu``: load-generator CPU seconds over load wall seconds (1.0 = one core busy, which
  saturates locust's single gevent loop); ``loadgen_cpu_peak`` the largest over one progress interval
  (the stop at the end is not one: it is no load generation).

Two runs' host loads are *very different* (:func:`host_load_differs`) when the busier one's
``load_per_core`` is more than :data:`DIFFER_RATIO` times the other's (the smaller floored at
:data:`LOAD_FLOOR`) AND they differ by more than :data:`DIFFER_ABS` per core; compare then marks
the latency deltas between them ``unreliable (host load)`` instead of regressions.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

#: The runner samples host load at most this often (seconds).
SAMPLE_INTERVAL_S = 1.0
#: Very different host load: the busier run's load per core exceeds this multiple of the other's ...
DIFFER_RATIO = 2.0
#: ... and the two differ by more than this (load average per core).
DIFFER_ABS = 0.5
#: A load per core below this counts as this in the ratio (an idle host: 0.01 vs 0.03 is no difference).
LOAD_FLOOR = 0.05
#: The load generator is called CPU-saturated when one progress interval used this share of a core or more.
SATURATED_CPU = 0.9

_PROC_STAT = "/proc/stat"


@dataclass(frozen=True, slots=True)
class HostLoad:
    """The host's load while the load ran, as the journal keeps it."""

    cpus: int
    load1_start: float  # 1-min load average when the load started
    load1_end: float  # ... when it ended
    load1_max: float  # the largest seen during the load
    samples: int  # load-average samples taken
    steal_share: float | None = None  # stolen CPU time / all CPU time; None: not exposed by /proc/stat
    loadgen_cpu_s: float | None = None  # CPU seconds the load process used; None: it did not say
    loadgen_cpu: float | None = None  # loadgen_cpu_s / load wall seconds (cores kept busy)
    loadgen_cpu_peak: float | None = None  # the largest share of a core over one progress interval

    @property
    def load_per_core(self) -> float:
        return self.load1_max / max(1, self.cpus)

    @property
    def loadgen_saturated(self) -> bool:
        return self.loadgen_cpu_peak is not None and self.loadgen_cpu_peak >= SATURATED_CPU

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> HostLoad | None:
        """The journal's ``host_load``, or None when absent (older journals); ValueError when malformed."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"host_load: must be an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"host_load: unknown field(s) {', '.join(unknown)}")

        def num(name: str, required: bool) -> float | None:
            v = data.get(name)
            if v is None and not required:
                return None
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"host_load.{name}: must be a number >= 0, got {v!r}")
            return float(v)

        cpus = data.get("cpus")
        if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"host_load.cpus: must be an integer >= 1, got {cpus!r}")
        samples = data.get("samples")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise ValueError(f"host_load.samples: must be an integer >= 0, got {samples!r}")
        return cls(
            cpus=cpus, load1_start=num("load1_start", True) or 0.0, load1_end=num("load1_end", True) or 0.0,
            load1_max=num("load1_max", True) or 0.0, samples=samples, steal_share=num("steal_share", False),
            loadgen_cpu_s=num("loadgen_cpu_s", False), loadgen_cpu=num("loadgen_cpu", False),
            loadgen_cpu_peak=num("loadgen_cpu_peak", False),
        )

    def describe(self) -> str:
        """One line for reports: what the host's load was during the run."""
        parts = [f"load average {self.load1_start:.2f} -> {self.load1_end:.2f} (max {self.load1_max:.2f}, "
                 f"{self.load_per_core:.2f} per core of {self.cpus})"]
        parts.append("CPU steal not exposed" if self.steal_share is None else f"CPU steal {100 * self.steal_share:.1f}%")
        if self.loadgen_cpu is not None:
            peak = f", peak {100 * self.loadgen_cpu_peak:.0f}%" if self.loadgen_cpu_peak is not None else ""
            parts.append(f"load generator CPU {100 * self.loadgen_cpu:.0f}% of a core{peak}"
                         + (" (SATURATED: the load may not have been delivered)" if self.loadgen_saturated else ""))
        return "; ".join(parts)


def host_load_differs(a: HostLoad | None, b: HostLoad | None) -> str | None:
    """Why the host loads of two runs are very different (see the module docstring), or None (also when unknown)."""
    if a is None or b is None:
        return None
    la, lb = a.load_per_core, b.load_per_core
    lo, hi = sorted((la, lb))
    if hi / max(lo, LOAD_FLOOR) > DIFFER_RATIO and hi - lo > DIFFER_ABS:
        return (f"host load per core {la:.2f} vs {lb:.2f} (ratio > {DIFFER_RATIO:g} and difference > {DIFFER_ABS:g} per core)")
    return None


def read_cpu_counters(path: str = _PROC_STAT) -> tuple[float, float | None] | None:
    """(total CPU ticks, steal ticks or None when the kernel has no steal column) from ``/proc/stat``; None without it."""
    try:
        with open(path, encoding="ascii") as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    try:
        ticks = [float(x) for x in first[1:]]
    except ValueError:
        return None
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user/nice
    total = sum(ticks[:8])
    steal = ticks[7] if len(ticks) >= 8 else None
    return total, steal


class HostLoadSampler:
    """Samples host load while the load runs; :meth:`finish` gives the :class:`HostLoad` for the journal."""

    def __init__(self, cpu_stat: str = _PROC_STAT) -> None:
        self._cpu_stat = cpu_stat
        self._cpus = os.cpu_count() or 1
        self._cpu0 = read_cpu_counters(cpu_stat)
        self._load1 = [os.getloadavg()[0]]
        self._last = time.monotonic()
        self._loadgen: list[tuple[float, float]] = []  # (elapsed_s, cpu_s) of its progress lines
        self._done: tuple[float, float] | None = None  # (duration_s, cpu_s) of its done record

    def sample(self, *, force: bool = False) -> None:
        """Take a load-average sample, unless one was taken less than SAMPLE_INTERVAL_S ago."""
        now = time.monotonic()
        if force or now - self._last >= SAMPLE_INTERVAL_S:
            self._load1.append(os.getloadavg()[0])
            self._last = now

    def loadgen(self, message: dict[str, Any]) -> None:
        """A progress or done line of the load process: its elapsed time and CPU seconds, when it says them.

        The peak is taken over progress intervals only: the done record's last stretch is the
        stopping of the users and the final flush, not load generation.
        """
        done = message.get("type") == "done"
        cpu, elapsed = message.get("cpu_s"), message.get("duration_s" if done else "elapsed_s")
        if isinstance(cpu, int | float) and isinstance(elapsed, int | float) and not isinstance(cpu, bool) and elapsed > 0:
            if done:
                self._done = (float(elapsed), float(cpu))
            else:
                self._loadgen.append((float(elapsed), float(cpu)))

    def finish(self) -> HostLoad:
        self.sample(force=True)
        steal_share = None
        cpu1 = read_cpu_counters(self._cpu_stat)
        if self._cpu0 is not None and cpu1 is not None and self._cpu0[1] is not None and cpu1[1] is not None:
            total = cpu1[0] - self._cpu0[0]
            steal_share = max(0.0, (cpu1[1] - self._cpu0[1]) / total) if total > 0 else 0.0
        loadgen_cpu_s = loadgen_cpu = peak = None
        points = sorted(self._loadgen)
        last = self._done or (points[-1] if points else None)
        if last is not None:
            elapsed, loadgen_cpu_s = last
            loadgen_cpu = loadgen_cpu_s / elapsed
            shares = [(c1 - c0) / (e1 - e0) for (e0, c0), (e1, c1) in zip([(0.0, 0.0), *points], points, strict=False) if e1 > e0]
            peak = max(shares, default=loadgen_cpu)
        return HostLoad(
            cpus=self._cpus, load1_start=round(self._load1[0], 3), load1_end=round(self._load1[-1], 3),
            load1_max=round(max(self._load1), 3), samples=len(self._load1),
            steal_share=None if steal_share is None else round(steal_share, 5),
            loadgen_cpu_s=None if loadgen_cpu_s is None else round(loadgen_cpu_s, 3),
            loadgen_cpu=None if loadgen_cpu is None else round(loadgen_cpu, 4),
            loadgen_cpu_peak=None if peak is None else round(peak, 4),
        )
