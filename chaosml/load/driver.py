"""The locust-based load driver; imported only by ``python -m chaosml.load`` (importing locust patches gevent in)."""

from __future__ import annotations

import bisect
import importlib.util
import itertools
import json
import logging
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import IO, Any

import gevent
import gevent.event
import locust
from geventhttpclient.useragent import BadStatusCode
from locust import FastHttpUser, LoadTestShape, User, constant, constant_throughput, task
from locust.contrib.fasthttp import LocustBadStatusCode
from locust.env import Environment

from chaosml.errors import LoadConfigError
from chaosml.load.config import LoadConfig
from chaosml.load.control import (
    POLL_INTERVAL_S,
    ControlError,
    effective_mix,
    read_control,
)
from chaosml.load.drift import DriftSchedule, active_schedule, class_weights, drifted, feature_stats, weighted_choice
from chaosml.load.samples import SampleWriter
from chaosml.records import classify_outcome
from chaosml.workload.mapping import Extractor, RequestMapping, ResponseMapping
from chaosml.workload.payload_file import Payload, encode_body

log = logging.getLogger("chaosml.load")

#: How often buffered sample rows are written to the file, seconds.
FLUSH_INTERVAL_S = 0.25
#: Extra time allowed for users to stop beyond the request timeout, seconds.
STOP_GRACE_S = 5.0
#: Mixed into the load seed for the tick offsets, so cohort and payload picks stay as they were.
TICK_SEED_SALT = 0x71C6
#: Mixed into the load seed for drift's draws (class, out-of-distribution share), likewise.
DRIFT_SEED_SALT = 0xD71F

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_RESPONSE_FIELDS = ("served_by", "prediction", "confidence", "model_version", "replica")


def _is_timeout(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    if isinstance(exc, TimeoutError | socket.timeout | gevent.Timeout):
        return True
    return "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower()


def _scalar(value: Any) -> Any:
    """A response field as a CSV-safe scalar; containers and None become empty."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return None


def _parse_body(content: bytes | None) -> tuple[dict[str, Any], bool]:
    """(fields, is it an answer) of a reference-stack body: an answer is a JSON object with a ``prediction`` key."""
    if not content:
        return {}, False
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return {}, False
    if not isinstance(data, dict):
        return {}, False
    return {k: _scalar(data.get(k)) for k in _RESPONSE_FIELDS}, "prediction" in data


def _cpu_s() -> float:
    """CPU seconds (user + system) this load process has used: the runner records it as the load generator's CPU."""
    t = os.times()
    return t.user + t.system


def _p99(values: list[float]) -> float | None:
    """Nearest-rank 99th percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-99 * len(ordered) // 100))  # ceil(0.99 n)
    return ordered[rank - 1]


def _by_label(payloads: list[Payload]) -> dict[int, list[Payload]]:
    out: dict[int, list[Payload]] = {}
    for p in payloads:
        if p.label is not None:
            out.setdefault(p.label, []).append(p)
    return out


class Recorder:
    """Picks payloads, sends requests, records one sample row per request and interval stats."""

    def __init__(self, config: LoadConfig, payloads: dict[str, list[Payload]], writer: SampleWriter) -> None:
        self.config = config
        self.headers = {**_HEADERS, **(config.headers or {})}
        self.extractor = Extractor(ResponseMapping(config.response)) if config.response is not None else None
        self.writer = writer
        self.rng = random.Random(config.seed)
        self.payloads = payloads
        self.base_mix = {c: float(w) for c, w in config.mix.items() if w > 0}
        self.mix: dict[str, float] = {}
        self._mix_state: tuple[list[str], list[float]] = ([], [])
        self.set_mix(self.base_mix)
        self.drift: DriftSchedule | None = None  # set by the ControlPoller while a drift fault is active
        self.drift_rng = random.Random(config.seed ^ DRIFT_SEED_SALT)
        self.request = RequestMapping(**config.request_body) if config.request_body else RequestMapping()
        # the clean rows drift rebuilds: those of the base mix's cohorts that carry their features
        self.drift_pool = {c: [p for p in payloads.get(c, []) if p.features is not None] for c in self.base_mix}
        self.drift_stats = feature_stats(p.features for ps in self.drift_pool.values() for p in ps if p.features)
        self.class_rows = {c: _by_label(ps) for c, ps in self.drift_pool.items()}
        # per cohort, fixed for the run: its classes (sorted) and their row counts, the base of drift's prior shift
        self.class_base = {c: (sorted(rows), {k: float(len(ps)) for k, ps in rows.items()}) for c, rows in self.class_rows.items()}
        self.tick_rng = random.Random(config.seed ^ TICK_SEED_SALT)
        self.tick_offsets: list[float] = []
        self.total = 0
        self._interval_count = 0
        self._interval_ok = 0
        self._interval_latencies: list[float] = []

    def set_mix(self, mix: dict[str, float]) -> None:
        """Draw cohorts by ``mix`` from now on (one atomic swap: users never see half a mix)."""
        cohorts = [c for c, w in mix.items() if w > 0 and self.payloads.get(c)]
        self.mix = {c: mix[c] for c in cohorts}
        self._mix_state = (cohorts, list(itertools.accumulate(mix[c] for c in cohorts)))

    def pick(self) -> tuple[str, Payload]:
        cohorts, cum_weights = self._mix_state
        x = self.rng.random() * cum_weights[-1]
        i = min(bisect.bisect_right(cum_weights, x), len(cohorts) - 1)
        cohort = cohorts[i]
        return cohort, self.rng.choice(self.payloads[cohort])

    def drift_body(self, cohort: str, payload: Payload, t: float) -> tuple[Payload, bytes, float | None]:
        """(row, body, magnitude) of one request: the payload as it is, or rebuilt under the active drift."""
        schedule = self.drift
        pool = self.drift_pool.get(cohort)
        if schedule is None or not pool or payload.features is None:
            return payload, payload.body, None
        m = schedule.magnitude(t)
        if schedule.class_mix is not None:
            classes, base = self.class_base[cohort]
            label = weighted_choice(self.drift_rng, class_weights(schedule, base, m), classes)
            if label is not None:
                payload = self.drift_rng.choice(self.class_rows[cohort][label])
        assert payload.features is not None
        features = drifted(payload.features, schedule, self.drift_stats, m, self.drift_rng)
        body = self.request.render({"entity_id": payload.entity_id, "features": features}, list(features))
        return payload, encode_body(body), round(m, 6)

    def send(self, client: Any) -> None:
        cohort, payload = self.pick()
        payload, body, drift = self.drift_body(cohort, payload, time.time())
        path = self.config.path
        t = time.time()
        t0 = time.perf_counter()
        with client.request(
            self.config.method, path, name=path, data=body, headers=self.headers, catch_response=True
        ) as resp:
            latency_ms = (time.perf_counter() - t0) * 1000.0
            resp.success()  # outcomes live in our samples, not in locust's failure stats
            exc = resp.request_meta.get("exception")
            bad_status = isinstance(exc, BadStatusCode | LocustBadStatusCode)
            transport_error = exc if exc is not None and not bad_status else None
            answered = True
            if transport_error is not None:
                # no (complete) response: refused, reset, timed out, or body read failed
                status, fields = 0, dict[str, Any]()
            else:
                status = int(resp.status_code or 0)
                if not status:
                    fields = {}
                elif self.extractor is not None:
                    fields, answered = self.extractor.read(resp.content, resp.headers)
                else:
                    fields, answered = _parse_body(resp.content)
        timed_out = _is_timeout(transport_error)
        outcome = classify_outcome(status, timed_out=timed_out, answered=answered)
        self.record(
            (
                round(t, 6),
                round(latency_ms, 3),
                status,
                outcome,
                fields.get("served_by"),
                fields.get("prediction"),
                fields.get("confidence"),
                payload.label,
                cohort,
                payload.entity_id,
                fields.get("replica"),
                fields.get("model_version"),
                drift,
            ),
            ok=outcome == "ok",
            latency_ms=latency_ms,
        )

    def on_request(self, name: str, response_time: float, response: Any = None, exception: BaseException | None = None,
                   start_time: float | None = None, **_kw: Any) -> None:
        """locust's request event, for the requests a user's locustfile sends: one sample row each.

        The columns the file cannot give stay empty: label and entity_id (no dataset row), and
        the cohort is the request's name. The answer is read like the reference stack's, or by
        the response mapping; status 0 is a request that got no response (refused, reset, timed out).
        Only a response mapping says what an answer is (the file may call any endpoint): with one, a
        2xx without an answer is ``invalid``; without one, every 2xx is ``ok``.
        """
        status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
        fields: dict[str, Any] = {}
        answered = True
        if status:
            content = getattr(response, "content", None)
            if self.extractor is not None:
                fields, answered = self.extractor.read(content, getattr(response, "headers", {}) or {})
            else:
                fields = _parse_body(content)[0]
        outcome = classify_outcome(status, timed_out=not status and _is_timeout(exception), answered=answered)
        sent = start_time if start_time is not None else time.time() - response_time / 1000.0
        self.record(
            (round(sent, 6), round(float(response_time), 3), status, outcome, fields.get("served_by"), fields.get("prediction"),
             fields.get("confidence"), None, name, None, fields.get("replica"), fields.get("model_version"), None),  # no drift: the file decides what is sent
            ok=outcome == "ok",
            latency_ms=float(response_time),
        )

    def record(self, row: tuple[Any, ...], *, ok: bool, latency_ms: float) -> None:
        if self.config.record:  # off only when chaosml bench measures the cost of recording
            self.writer.append(row)
        self.total += 1
        self._interval_count += 1
        self._interval_ok += ok
        self._interval_latencies.append(latency_ms)

    def tick_offset(self) -> float:
        """A user's first-send delay: a seeded uniform fraction of its tick (1 / rate_per_user).

        Users started together would otherwise send in lock-step at whole multiples of the tick
        after load start, and faults applied at whole-second offsets would land a few ms after a
        batch of sends. Zero for closed-loop users (no tick). The offsets go in the done record.
        """
        rate = self.config.rate_per_user
        offset = self.tick_rng.uniform(0.0, 1.0 / rate) if rate else 0.0
        self.tick_offsets.append(round(offset, 6))
        return offset

    def take_interval(self) -> tuple[int, int, float | None]:
        """(requests, ok, p99 ms) since the last call, and reset."""
        count, ok, p99 = self._interval_count, self._interval_ok, _p99(self._interval_latencies)
        self._interval_count = self._interval_ok = 0
        self._interval_latencies = []
        return count, ok, p99


def make_user_class(config: LoadConfig, recorder: Recorder) -> type[FastHttpUser]:
    """A FastHttpUser subclass bound to this config and recorder."""

    class PredictUser(FastHttpUser):
        host = config.target_url
        network_timeout = config.request_timeout_s
        connection_timeout = config.request_timeout_s
        max_retries = 0
        wait_time = (
            constant_throughput(config.rate_per_user) if config.rate_per_user is not None else constant(0)
        )

        def on_start(self) -> None:
            gevent.sleep(recorder.tick_offset())

        @task
        def predict(self) -> None:
            recorder.send(self.client)

        def on_stop(self) -> None:
            self.client.client.close()  # close pooled keep-alive sockets

    return PredictUser


def locustfile_users(config: LoadConfig) -> list[type[User]]:
    """The User classes a user's locustfile defines, pointed at the target (``host``), paced by ``rate_per_user`` when given.

    Raises LoadConfigError (exit 4) when the file cannot be imported or defines no User class.
    """
    assert config.locustfile is not None
    spec = importlib.util.spec_from_file_location("chaosml_user_locustfile", config.locustfile)
    if spec is None or spec.loader is None:
        raise LoadConfigError([f"locustfile: cannot load {config.locustfile}"])
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - the user's file: said as invalid input, with what it raised
        raise LoadConfigError([f"locustfile: {config.locustfile} raised {type(e).__name__}: {e}"]) from None
    classes = [c for c in vars(module).values()
               if isinstance(c, type) and issubclass(c, User) and c.__module__ == module.__name__ and not c.abstract]
    if not classes:
        raise LoadConfigError([f"locustfile: {config.locustfile} defines no User class (a subclass of locust's HttpUser or FastHttpUser)"])
    for c in classes:
        c.host = config.target_url  # the run's target, never the file's own host
        if config.rate_per_user is not None:
            c.wait_time = constant_throughput(config.rate_per_user)
        if issubclass(c, FastHttpUser):
            c.network_timeout = c.connection_timeout = config.request_timeout_s
    return classes


class StageShape(LoadTestShape):
    """load.shape's stages as a locust LoadTestShape: ``tick()`` gives the (users, spawn_rate) of the stage at the run time.

    Locust's own shape worker polls ``tick()`` about once a second (and waits for each ramp), so a
    stage boundary would take effect up to a second late: :func:`drive_stages` calls ``tick()`` at
    each boundary instead, so the users curve is the one plan shows and delivery integrates.
    """

    def __init__(self, stages: list[list[float]]) -> None:
        super().__init__()
        self.stages = [(float(end), int(users), float(rate)) for end, users, rate in stages]

    def at(self, run_time: float) -> tuple[int, float]:
        for end, users, rate in self.stages[:-1]:
            if run_time < end:
                return users, rate
        return self.stages[-1][1], self.stages[-1][2]  # the last stage holds until the load ends

    def tick(self) -> tuple[int, float]:
        return self.at(self.get_run_time())

    def boundaries(self) -> list[float]:
        """Run times at which the stage changes (0 and each stage's end but the last)."""
        return [0.0] + [end for end, _, _ in self.stages[:-1]]


def drive_stages(runner: Any, shape: StageShape, start: float, stop: gevent.event.Event) -> None:
    """At each stage boundary (monotonic ``start`` + offset) start the stage's users at its rate, until ``stop``."""
    for offset in shape.boundaries():
        if stop.wait(timeout=max(0.0, start + offset - time.monotonic())):
            return
        users, rate = shape.at(time.monotonic() - start + 1e-6)
        runner.start(users, rate)


class _Output:
    """JSON lines to stdout; a vanished reader does not stop the load."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.broken = False

    def emit(self, record: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.stream.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = True


def _every(interval_s: float, fn: Callable[[], Any], stop: gevent.event.Event) -> None:
    while not stop.wait(timeout=interval_s):
        fn()


class ControlPoller:
    """Polls the load-control file and switches the recorder's mix while it exists (see control.py)."""

    def __init__(self, path: str, recorder: Recorder) -> None:
        self.path = path
        self.recorder = recorder
        self._seen: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) last applied
        self.switches = 0

    def poll(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self._seen is not None:
                self._seen = None
                self._apply(self.recorder.base_mix, "control file removed")
                self._set_drift(None)
            return
        except OSError as e:
            log.warning("load-control file %s: %s", self.path, e)
            return
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key == self._seen:
            return
        self._seen = key
        try:
            control = read_control(self.path)
            mix, problems = effective_mix(self.recorder.base_mix, control, frozenset(self.recorder.payloads))
        except ControlError as e:
            log.warning("load-control file %s: %s; using the base mix", self.path, e)
            control, mix, problems = None, self.recorder.base_mix, []
        for p in problems:
            log.warning("load-control file %s: %s", self.path, p)
        self._apply(mix, "control file")
        self._set_drift(active_schedule((control or {}).get("faults")))

    def _set_drift(self, schedule: DriftSchedule | None) -> None:
        if schedule == self.recorder.drift:
            return
        self.recorder.drift = schedule
        said = "stopped" if schedule is None else f"{schedule.fault} ({schedule.ramp} over {schedule.duration_s:g}s)"
        print(f"chaosml.load: drift {said}", file=sys.stderr, flush=True)

    def _apply(self, mix: dict[str, float], why: str) -> None:
        if mix == self.recorder.mix:
            return
        self.recorder.set_mix(mix)
        self.switches += 1
        shown = ", ".join(f"{c}={w:.3g}" for c, w in self.recorder.mix.items())
        print(f"chaosml.load: mix switched ({why}): {shown}", file=sys.stderr, flush=True)


def run(
    config: LoadConfig,
    payloads: dict[str, list[Payload]],
    stdout: IO[str] | None = None,
    early_signals: list[str] | None = None,
) -> int:
    """Run the load for ``config.duration_s`` (or until SIGTERM/SIGINT); return the exit code.

    ``early_signals`` names signals received before this call (the caller's interim handler
    appends to it); if it is non-empty once our handlers are installed, no load is sent.
    """
    out = _Output(stdout if stdout is not None else sys.stdout)
    writer = SampleWriter(config.samples_file)
    recorder = Recorder(config, payloads, writer)
    user_classes: list[type[User]] = locustfile_users(config) if config.locustfile else [make_user_class(config, recorder)]
    if config.locustfile:  # the file's users send: record every request they make
        locust.events.request.add_listener(recorder.on_request)
    env = Environment(
        user_classes=user_classes,
        events=locust.events,
        host=config.target_url,
        stop_timeout=config.request_timeout_s,  # let in-flight requests finish and be recorded
    )
    runner = env.create_local_runner()

    stop_requested = gevent.event.Event()
    reason = ["duration"]

    def on_signal(signame: str) -> None:
        reason[0] = signame
        stop_requested.set()

    handlers = [
        gevent.signal_handler(signal.SIGTERM, on_signal, "SIGTERM"),
        gevent.signal_handler(signal.SIGINT, on_signal, "SIGINT"),
    ]
    if early_signals:
        on_signal(early_signals[0])
    flush_stop = gevent.event.Event()

    def flush_or_stop() -> None:
        try:
            writer.flush()
        except OSError as e:  # e.g. a full disk: said once; load that cannot be recorded is not sent
            print(f"chaosml.load: cannot write {config.samples_file}: {e.strerror or e}; stopping the load", file=sys.stderr, flush=True)
            on_signal("samples-write-error")
            flush_stop.set()

    flusher = gevent.spawn(_every, FLUSH_INTERVAL_S, flush_or_stop, flush_stop)
    poller = None
    if config.control_file:
        control = ControlPoller(config.control_file, recorder)
        control.poll()
        poller = gevent.spawn(_every, POLL_INTERVAL_S, control.poll, flush_stop)

    start = time.monotonic()
    started_at = round(time.time(), 6)  # the load start as epoch s: no request is sent before it (the runner's t0)
    cpu0 = _cpu_s()  # the load's own CPU, without the start-up (imports) before it
    end = start + config.duration_s
    interval = config.progress_interval_s
    next_progress = start + interval
    last_tick = start
    shaper = None
    try:
        if not stop_requested.is_set():
            if config.stages:
                shaper = gevent.spawn(drive_stages, runner, StageShape(config.stages), start, stop_requested)
            else:
                runner.start(config.users, config.spawn_rate)
        while not stop_requested.is_set():
            now = time.monotonic()
            if now >= end:
                break
            stop_requested.wait(timeout=max(0.0, min(next_progress, end) - now))
            now = time.monotonic()
            if now >= next_progress and not stop_requested.is_set():
                count, ok, p99 = recorder.take_interval()
                span = max(now - last_tick, 1e-9)
                out.emit(
                    {
                        "type": "progress",
                        "started_at": started_at,
                        "elapsed_s": round(now - start, 3),
                        "requests": recorder.total,
                        "rps": round(count / span, 3),
                        "success_ratio": round(ok / count, 6) if count else None,
                        "p99_ms": round(p99, 3) if p99 is not None else None,
                        "cpu_s": round(_cpu_s() - cpu0, 3),
                    }
                )
                last_tick = now
                while next_progress <= now:
                    next_progress += interval
    finally:
        if shaper is not None:
            shaper.kill(block=True, timeout=STOP_GRACE_S)
        try:
            with gevent.Timeout(config.request_timeout_s + STOP_GRACE_S, False):
                runner.quit()
            if runner.user_greenlets:
                runner.user_greenlets.kill(block=True, timeout=STOP_GRACE_S)
        finally:
            flush_stop.set()
            flusher.join(timeout=STOP_GRACE_S)
            if poller is not None:
                poller.join(timeout=STOP_GRACE_S)
            writer.close()
            for h in handlers:
                h.cancel()
    out.emit(
        {
            "type": "done",
            "requests": recorder.total,
            "duration_s": round(time.monotonic() - start, 3),
            "stopped_by": reason[0],
            "cpu_s": round(_cpu_s() - cpu0, 3),
            "tick_offsets": {"seed": config.seed, "salt": TICK_SEED_SALT, "users": len(recorder.tick_offsets),
                             "max_s": max(recorder.tick_offsets, default=0.0)},
        }
    )
    return 0
