"""Load past one machine: locust master/worker mode for the load process, and merging the workers' samples.

One master and N workers, each its own process::

    python -m chaosml.load.distributed master CONFIG.json --workers 2 [--bind 127.0.0.1] [--port 5557]
    python -m chaosml.load.distributed worker CONFIG.json --index 0 [--master-host 127.0.0.1] [--master-port 5557]

The master sends no requests: it waits for ``--workers`` workers, starts ``config.users`` users
spread over them, prints JSON progress lines on stdout (like ``python -m chaosml.load``; requests
are locust's aggregated counts), and after ``config.duration_s`` (or SIGTERM/SIGINT) tells every
worker to stop. Each worker runs the same recorder as the single-process driver and writes its OWN
samples file, ``worker_samples_file(config.samples_file, index)`` (``samples.worker-<i>.csv``
beside ``samples.csv``): no two processes ever append to one file, so rows never interleave or
tear. On stop a worker lets in-flight requests finish, flushes and closes its file, sends its last
locust stats and then ``chaosml_done`` {index, requests, rows} to the master; the master's final
``done`` line holds locust's aggregated request count and every worker's counts. The harness then
calls :func:`merge_samples` (no locust) to merge the worker files into one samples.csv sorted by
send time ``t``, and can check that merged rows == sum of worker rows == locust's aggregated count.

Workers on other machines: the same CONFIG (same payloads file path on each machine),
``--master-host`` the master's address, ``--bind 0.0.0.0`` on the master, and clocks synced by
NTP (``t`` is each worker's epoch clock). Importing this module does not import locust: only
:func:`run_master`/:func:`run_worker` do, in the load processes.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from chaosml.load.config import (
    EXIT_INTERNAL,
    EXIT_INVALID_INPUT,
    LoadConfig,
    LoadConfigError,
)
from chaosml.load.samples import format_row
from chaosml.records import SAMPLE_COLUMNS

DEFAULT_MASTER_PORT = 5557
#: How long the master waits for every worker to connect, seconds.
WORKER_CONNECT_TIMEOUT_S = 60.0
#: Beyond the request timeout: how long the master waits for every worker's chaosml_done, seconds.
DONE_GRACE_S = 15.0
MSG_STOP = "chaosml_stop"
MSG_DONE = "chaosml_done"

log = logging.getLogger("chaosml.load.distributed")


def worker_samples_file(samples_file: str | os.PathLike[str], index: int) -> Path:
    """``dir/samples.csv`` -> ``dir/samples.worker-<index>.csv``."""
    p = Path(samples_file)
    return p.with_name(f"{p.stem}.worker-{index}{p.suffix or '.csv'}")


def merge_samples(worker_files: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Merge worker samples files into ``out`` sorted by ``t`` (stable); returns row counts.

    A truncated last line of a worker file (worker killed mid-write) is dropped and counted.
    """
    header = list(SAMPLE_COLUMNS)
    rows: list[tuple[float, int, list[str]]] = []
    per_file: dict[str, int] = {}
    dropped = 0
    for k, path in enumerate(worker_files):
        with open(path, encoding="utf-8", newline="") as f:  # a quoted CR or LF stays in its field
            data = f.read()
        if data and not data.endswith("\n"):
            cut = data.rfind("\n")
            data = data[: cut + 1]
            dropped += 1
        reader = csv.reader(io.StringIO(data, newline=""))
        first = next(reader, None)
        if first is not None and first != header:
            raise ValueError(f"{path}: header {first!r} is not the samples header")
        n = 0
        for row in reader:
            if len(row) != len(header):
                dropped += 1
                continue
            rows.append((float(row[0]), k, row))
            n += 1
        per_file[os.fspath(path)] = n
    rows.sort(key=lambda r: (r[0], r[1]))
    tmp = Path(f"{os.fspath(out)}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        f.writelines(format_row(tuple(r[2])) + "\n" for r in rows)  # as SampleWriter writes them
    os.replace(tmp, out)
    return {"rows": len(rows), "per_file": per_file, "dropped_lines": dropped}


def start_distributed(
    config: LoadConfig,
    config_path: str | os.PathLike[str],
    *,
    workers: int,
    port: int = DEFAULT_MASTER_PORT,
    bind: str = "127.0.0.1",
    stderr: int | IO[Any] | None = None,
) -> tuple[subprocess.Popen[str], list[subprocess.Popen[str]]]:
    """Write the config, start the master and ``workers`` local workers; returns (master, workers).

    The master's stdout is a text pipe of JSON lines (``master_ready``, ``progress``, ``done``).
    """
    from chaosml.procs import note_spawn

    config.check()
    Path(config_path).write_text(config.to_json(), encoding="utf-8")
    common = {"stdin": subprocess.DEVNULL, "stderr": stderr, "text": True, "start_new_session": True}
    master = subprocess.Popen(
        [sys.executable, "-m", "chaosml.load.distributed", "master", os.fspath(config_path),
         "--workers", str(workers), "--bind", bind, "--port", str(port)],
        stdout=subprocess.PIPE, bufsize=1, **common,  # type: ignore[call-overload]
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chaosml.load.distributed", "worker", os.fspath(config_path),
             "--index", str(i), "--master-host", "127.0.0.1" if bind in ("0.0.0.0", "*") else bind,
             "--master-port", str(port)],
            stdout=subprocess.DEVNULL, **common,  # type: ignore[call-overload]
        )
        for i in range(workers)
    ]
    for name, p in (("load-master", master), *((f"load-worker-{i}", w) for i, w in enumerate(procs))):
        note_spawn(p.pid, name, os.environ)  # a run's ledger records them (chaosml.procs)
    return master, procs


# ----------------------------------------------------------------- load processes (import locust)
class _NullWriter:
    """The master sends nothing; its user class still needs a recorder."""

    written = 0

    def append(self, row: tuple[Any, ...]) -> None:
        pass

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass


def _emit(record: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, OSError, ValueError):
        pass


def run_master(config: LoadConfig, payloads: dict[str, Any], workers: int, bind: str, port: int) -> int:
    import gevent
    import gevent.event
    import locust
    from locust.env import Environment

    from chaosml.load.driver import Recorder, make_user_class

    user_class = make_user_class(config, Recorder(config, payloads, _NullWriter()))  # type: ignore[arg-type]
    env = Environment(user_classes=[user_class], events=locust.events, host=config.target_url,
                      stop_timeout=config.request_timeout_s)
    runner = env.create_master_runner(master_bind_host=bind, master_bind_port=port)
    done: dict[int, dict[str, Any]] = {}

    def on_done(environment: Any, msg: Any, **_kw: Any) -> None:
        done[int(msg.data["index"])] = dict(msg.data)

    runner.register_message(MSG_DONE, on_done)
    stop = gevent.event.Event()
    reason = ["duration"]

    def on_signal(name: str) -> None:
        reason[0] = name
        stop.set()

    handlers = [gevent.signal_handler(signal.SIGTERM, on_signal, "SIGTERM"),
                gevent.signal_handler(signal.SIGINT, on_signal, "SIGINT")]
    _emit({"type": "master_ready", "port": port, "workers_expected": workers})
    try:
        deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT_S
        while runner.worker_count < workers and time.monotonic() < deadline and not stop.is_set():
            stop.wait(0.1)
        if runner.worker_count < workers:
            print(f"chaosml.load.distributed: only {runner.worker_count} of {workers} workers connected",
                  file=sys.stderr)
            return EXIT_INTERNAL
        started_at = round(time.time(), 6)  # before the first spawn: no request is sent before it (the runner's t0)
        runner.start(config.users, config.spawn_rate)
        start = time.monotonic()
        end = start + config.duration_s
        next_progress = start + config.progress_interval_s
        last = (start, 0)
        while not stop.is_set() and time.monotonic() < end:
            stop.wait(max(0.0, min(next_progress, end) - time.monotonic()))
            now = time.monotonic()
            if now >= next_progress and not stop.is_set():
                total = env.stats.total.num_requests
                _emit({"type": "progress", "started_at": started_at, "elapsed_s": round(now - start, 3), "requests": total,
                       "rps": round((total - last[1]) / max(now - last[0], 1e-9), 3),
                       "workers": runner.worker_count, "success_ratio": None, "p99_ms": None})
                last = (now, total)
                while next_progress <= now:
                    next_progress += config.progress_interval_s
        duration = time.monotonic() - start
        runner.send_message(MSG_STOP)
        wait_until = time.monotonic() + config.request_timeout_s + DONE_GRACE_S
        while len(done) < workers and time.monotonic() < wait_until:
            gevent.sleep(0.1)
        gevent.sleep(0.2)  # the stats each worker sent before its done message are handled in order
        total = env.stats.total.num_requests
        runner.quit()
    finally:
        for h in handlers:
            h.cancel()
    _emit({
        "type": "done",
        "requests": total,
        "duration_s": round(duration, 3),
        "stopped_by": reason[0],
        "workers": {str(i): done[i] for i in sorted(done)},
        "workers_missing": [i for i in range(workers) if i not in done],
    })
    return 0 if len(done) == workers else EXIT_INTERNAL


def run_worker(config: LoadConfig, payloads: dict[str, Any], index: int, master_host: str, master_port: int) -> int:
    import gevent
    import gevent.event
    import locust
    from locust.env import Environment

    from chaosml.load.driver import (
        FLUSH_INTERVAL_S,
        STOP_GRACE_S,
        Recorder,
        make_user_class,
    )
    from chaosml.load.samples import SampleWriter

    config = dataclasses.replace(config, seed=config.seed + 1000 * (index + 1))  # distinct payload sequences
    writer = SampleWriter(worker_samples_file(config.samples_file, index))
    recorder = Recorder(config, payloads, writer)
    user_class = make_user_class(config, recorder)
    env = Environment(user_classes=[user_class], events=locust.events, host=config.target_url,
                      stop_timeout=config.request_timeout_s)
    runner = env.create_worker_runner(master_host, master_port)
    finished = gevent.event.Event()

    def flush_loop() -> None:
        while not finished.wait(timeout=FLUSH_INTERVAL_S):
            writer.flush()

    def on_stop(environment: Any, msg: Any, **_kw: Any) -> None:
        try:
            with gevent.Timeout(config.request_timeout_s + STOP_GRACE_S, False):
                runner.stop()  # waits up to stop_timeout for in-flight requests, which are recorded
            if runner.user_greenlets:
                runner.user_greenlets.kill(block=True, timeout=STOP_GRACE_S)
            finished.set()
            writer.close()
            runner._send_stats()  # locust's last counts reach the master before our done message
            runner.send_message(MSG_DONE, {"index": index, "requests": recorder.total, "rows": writer.written,
                                           "samples_file": writer.path})
        except Exception:
            log.exception("worker %d: stopping failed", index)

    runner.register_message(MSG_STOP, on_stop, concurrent=True)
    flusher = gevent.spawn(flush_loop)
    # ends when the master says quit (or after a generous bound)
    runner.greenlet.join(timeout=config.duration_s + WORKER_CONNECT_TIMEOUT_S + 2 * (config.request_timeout_s + DONE_GRACE_S))
    finished.set()
    flusher.join(timeout=STOP_GRACE_S)
    writer.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaosml.load.distributed", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    m = sub.add_parser("master")
    m.add_argument("config")
    m.add_argument("--workers", type=int, required=True)
    m.add_argument("--bind", default="127.0.0.1")
    m.add_argument("--port", type=int, default=DEFAULT_MASTER_PORT)
    w = sub.add_parser("worker")
    w.add_argument("config")
    w.add_argument("--index", type=int, required=True)
    w.add_argument("--master-host", default="127.0.0.1")
    w.add_argument("--master-port", type=int, default=DEFAULT_MASTER_PORT)
    args = parser.parse_args(argv)
    from chaosml.workload.payload_file import load_payloads

    try:
        config = LoadConfig.from_json(Path(args.config).read_text(encoding="utf-8"))
        payloads = load_payloads(config.payloads_file, config.mix)
    except (OSError, LoadConfigError, TypeError) as e:
        print(f"chaosml.load.distributed: {args.config}: {e}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"chaosml.load.distributed[{args.role}]: %(levelname)s %(name)s: %(message)s")
    try:
        if args.role == "master":
            return run_master(config, payloads, args.workers, args.bind, args.port)
        return run_worker(config, payloads, args.index, args.master_host, args.master_port)
    except Exception as e:
        logging.getLogger("chaosml.load.distributed").exception("%s failed", args.role)
        print(f"chaosml.load.distributed: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
