"""Game-day schedules: cron fire times, blackouts, a bounded local scheduler loop, and Kubernetes CronJob manifests.

Called by ``chaosml gameday schedule``. Cron expressions are parsed by ``croniter`` (5 fields,
evaluated in the schedule's time zone, DST-aware). The loop is testable without waiting: the
clock and the way a run is started are injected.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import yaml

from chaosml.errors import InvalidInputError
from chaosml.gameday.model import Blackout, GameDay, Schedule
from chaosml.resources import shipped

#: Most fire times one loop looks at (runs, skips and all): a bound even when every fire is blacked out.
MAX_FIRES = 10_000
#: Longest the loop waits for a started run to finish before it gives up on it.
MAX_RUN_WAIT_S = 24 * 3600.0
API_VERSIONS: tuple[str, ...] = ("batch/v1", "batch/v1beta1")
TEMPLATE = shipped("manifests/gameday-cronjob.yaml")  # the checkout's, else the package copy


def fire_times(cron: str, start: dt.datetime, tz: str = "UTC") -> Iterator[dt.datetime]:
    """Fire times strictly after ``start``, aware, in ``tz``; an endless generator (callers bound it)."""
    from croniter import croniter

    zone = ZoneInfo(tz)
    it = croniter(cron, start.astimezone(zone))
    while True:
        yield it.get_next(dt.datetime)


def next_fire_times(schedule: Schedule, start: dt.datetime, n: int) -> list[dt.datetime]:
    gen = fire_times(schedule.cron, start, schedule.timezone)
    return [next(gen) for _ in range(max(0, n))]


def blackout_reason(schedule: Schedule, t: dt.datetime) -> str | None:
    """Why ``t`` is inside a blackout (its description), or None."""
    for b in schedule.blackouts:
        if in_blackout(b, t, schedule.timezone):
            return b.describe()
    return None


def in_blackout(b: Blackout, t: dt.datetime, tz: str) -> bool:
    local = t.astimezone(ZoneInfo(tz))
    if b.start is not None and b.end is not None:
        return b.start <= local < b.end
    if b.cron is not None:
        from croniter import croniter

        # the last fire at or before t opens a window of duration_s
        it = croniter(b.cron, local + dt.timedelta(seconds=1))
        prev = it.get_prev(dt.datetime)
        return prev <= local < prev + dt.timedelta(seconds=b.duration_s)
    minute = local.hour * 60 + local.minute
    day = local.weekday()
    if b.from_min <= b.to_min:
        return day in b.weekdays and b.from_min <= minute < b.to_min
    # wraps past midnight: [from, 24:00) on the day, [00:00, to) on the next day
    return (day in b.weekdays and minute >= b.from_min) or ((day - 1) % 7 in b.weekdays and minute < b.to_min)


# ------------------------------------------------------------------------------ the loop


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        import time

        time.sleep(max(0.0, seconds))


class RunHandle(Protocol):
    def done(self) -> bool: ...

    def result(self) -> int: ...


class ThreadRun:
    """A game-day run in a background thread; ``result()`` is its exit code."""

    def __init__(self, fn: Callable[[], int]):
        self._code: int | None = None
        self._thread = threading.Thread(target=self._main, args=(fn,), daemon=True, name="gameday-run")
        self._thread.start()

    def _main(self, fn: Callable[[], int]) -> None:
        try:
            self._code = int(fn())
        except Exception:  # noqa: BLE001 - the loop logs the exit code; the run wrote its own report
            self._code = 3

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> int:
        return 3 if self._code is None else self._code


@dataclass
class LoopResult:
    started: list[dt.datetime] = field(default_factory=list)
    skipped: list[tuple[dt.datetime, str]] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        codes = self.exit_codes
        if any(c not in (0, 1, 2) for c in codes):
            return max(c for c in codes if c not in (0, 1, 2))
        return 2 if 2 in codes else 1 if 1 in codes else 0


def run_loop(
    schedule: Schedule,
    start_run: Callable[[dt.datetime], RunHandle],
    *,
    clock: Clock,
    log: Callable[[str], None],
    max_runs: int | None = None,
    until: dt.datetime | None = None,
    preview: int = 5,
) -> LoopResult:
    """Sleep until each fire time, skip blackouts and (concurrency forbid) overlaps, start runs.

    Bounded: stops after ``max_runs`` started runs, at the first fire time after ``until``, or
    after MAX_FIRES fire times, whichever comes first; then waits for runs still going.
    """
    if max_runs is None and until is None:
        raise InvalidInputError("the scheduler loop needs a bound: --max-runs N and/or --until TIME")
    if max_runs is not None and max_runs < 1:
        raise InvalidInputError("--max-runs must be at least 1")
    now = clock.now()
    nxt = next_fire_times(schedule, now, preview)
    log(f"schedule {schedule.cron!r} ({schedule.timezone}, concurrency {schedule.concurrency}); next fire times:")
    for t in nxt:
        why = blackout_reason(schedule, t)
        log(f"  {t.isoformat()}" + (f"  (blackout: {why})" if why else ""))
    result = LoopResult()
    running: list[tuple[dt.datetime, RunHandle]] = []
    gen = fire_times(schedule.cron, now, schedule.timezone)
    for _ in range(MAX_FIRES):
        t = next(gen)
        if until is not None and t > until:
            log(f"next fire time {t.isoformat()} is after --until {until.isoformat()}: stopping")
            break
        wait = (t - clock.now()).total_seconds()
        if wait > 0:
            log(f"sleeping {wait:.0f}s until {t.isoformat()}")
            clock.sleep(wait)
        _reap(running, result, log)
        why = blackout_reason(schedule, t)
        if why:
            log(f"skip {t.isoformat()}: inside blackout {why}")
            result.skipped.append((t, f"blackout: {why}"))
            continue
        if running and schedule.concurrency == "forbid":
            since = running[0][0].isoformat()
            log(f"skip {t.isoformat()}: the run started at {since} is still running (concurrency forbid)")
            result.skipped.append((t, f"previous run started at {since} still running"))
            continue
        log(f"start run at {t.isoformat()}")
        running.append((t, start_run(t)))
        result.started.append(t)
        if max_runs is not None and len(result.started) >= max_runs:
            log(f"started {len(result.started)} run(s): --max-runs reached")
            break
    else:
        log(f"looked at {MAX_FIRES} fire times: stopping")
    waited = 0.0
    while running and waited < MAX_RUN_WAIT_S:
        _reap(running, result, log)
        if running:
            clock.sleep(1.0)
            waited += 1.0
    for t, _h in running:
        log(f"run started at {t.isoformat()} still going after {MAX_RUN_WAIT_S:.0f}s; not waiting longer")
    return result


def _reap(running: list[tuple[dt.datetime, RunHandle]], result: LoopResult, log: Callable[[str], None]) -> None:
    for item in list(running):
        t, h = item
        if h.done():
            running.remove(item)
            code = h.result()
            result.exit_codes.append(code)
            log(f"run started at {t.isoformat()} finished: exit {code}")


# ------------------------------------------------------------------------------ CronJob


def render_cronjob(
    gameday: GameDay,
    *,
    image: str,
    file_in_image: str,
    api_version: str = "batch/v1",
    namespace: str | None = None,
    template: Path = TEMPLATE,
    warn: Callable[[str], None] | None = None,
) -> str:
    """The CronJob manifest (YAML text) that runs ``chaosml gameday run FILE`` on the game-day's schedule."""
    if api_version not in API_VERSIONS:
        raise InvalidInputError(f"--api-version {api_version!r}: choose from {', '.join(API_VERSIONS)}")
    if gameday.schedule is None:
        raise InvalidInputError(f"{gameday.file}: no schedule: add schedule: {{cron: ...}} to render a CronJob")
    if gameday.platforms != {"kubernetes"}:
        raise InvalidInputError(
            f"{gameday.file}: a CronJob needs every experiment to target kubernetes (platforms: {', '.join(sorted(gameday.platforms))})"
        )
    s = gameday.schedule
    doc: dict[str, Any] = yaml.safe_load(template.read_text(encoding="utf-8"))
    ns = namespace
    if ns is None:
        for e in gameday.experiments:
            k = e.experiment.target.kubernetes
            if k is not None:
                ns = k.namespace
                break
    doc["apiVersion"] = api_version
    meta = doc.setdefault("metadata", {})
    meta["name"] = f"chaosml-gameday-{gameday.name}"[:52]
    meta["namespace"] = ns or "chaosml"
    meta.setdefault("labels", {})["chaosml/gameday"] = gameday.name
    meta["labels"]["chaosml/release"] = gameday.release
    spec = doc.setdefault("spec", {})
    spec["schedule"] = s.cron
    if api_version == "batch/v1":
        spec["timeZone"] = s.timezone
    else:
        spec.pop("timeZone", None)
        if s.timezone != "UTC" and warn is not None:
            warn(f"batch/v1beta1 has no timeZone field: {s.cron!r} will fire in the controller's time zone, not {s.timezone}")
    spec["concurrencyPolicy"] = "Forbid" if s.concurrency == "forbid" else "Allow"
    spec["successfulJobsHistoryLimit"] = s.history_limit
    spec["failedJobsHistoryLimit"] = s.history_limit
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "chaosml-runner"
    container = pod["containers"][0]
    container["image"] = image
    container["args"] = ["gameday", "run", file_in_image] + (["--respect-blackouts"] if s.blackouts else [])
    if s.blackouts:
        meta.setdefault("annotations", {})["chaosml/blackouts"] = "; ".join(b.describe() for b in s.blackouts)
    header = (
        f"# Rendered by `chaosml gameday schedule {gameday.file}` from manifests/gameday-cronjob.yaml.\n"
        + ("# Kubernetes has no blackouts: `gameday run --respect-blackouts` exits 0 without running inside one.\n" if s.blackouts else "")
    )
    return header + yaml.safe_dump(doc, sort_keys=False)
