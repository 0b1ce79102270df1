"""Section 1, load driver: requests/s and CPU per request of the real load process, recording on vs off.

The load process (``python -m chaosml.load CONFIG.json``, started with ``start_load``) sends as
fast as it can (no wait time) with ``users`` keep-alive users against the minimal endpoint
(``benchmarks.endpoint``, its own process). Arms alternate on, off, on, off, ... so background
load hits both alike; figures are medians over the pairs.

- rps: (requests at the last progress line - requests at the first) / (elapsed between them): the
  steady state, without spawn and stop;
- CPU per request: the load process's utime+stime (/proc/<pid>/stat) over the same interval, per request;
- recording off (``LoadConfig.record = False``) still times, classifies and parses every answer;
  it only skips the samples row (formatting and writing samples.csv).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    HOST,
    LineReader,
    SectionResult,
    child,
    cpu_seconds,
    median,
    py,
    stop_process,
)
from chaosml.load.config import LoadConfig, start_load

#: A request body like the reference stack's (entity id plus request-time features).
BODY = {"entity_id": 7, "features": {f"f{i}": round(0.1 * i + 0.013, 3) for i in range(10)}}


#: A samples row like the driver's: every SAMPLE_COLUMNS value (drift empty), for recording_cost_us.
ROW = (1795325276.689175, 12.345, 200, "ok", "primary", 1, 0.97, 1, "clean", 7, "bench-0", "bench", None)


def write_payloads(path: Path) -> Path:
    path.write_text(json.dumps({"clean": [{"body": BODY, "label": 1, "entity_id": 7}]}))
    return path


def run_arm(url: str, workdir: Path, *, record: bool, users: int, seconds: float, tag: str) -> dict[str, Any]:
    """One run of the load process; returns rps and CPU per request over its steady state."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = LoadConfig(
        target_url=url,
        path="/predict",
        users=users,
        spawn_rate=float(users * 100),
        duration_s=seconds,
        rate_per_user=None,
        request_timeout_s=5.0,
        mix={"clean": 1.0},
        payloads_file=str(write_payloads(workdir / "payloads.json")),
        samples_file=str(workdir / f"samples-{tag}.csv"),
        progress_interval_s=0.5,
        record=record,
    )
    with open(workdir / f"load-{tag}.log", "w") as log:
        proc = start_load(config, workdir / f"load-{tag}.json", stderr=log)
        try:
            reader = LineReader(proc.stdout)  # type: ignore[arg-type]
            points: list[tuple[float, int, float]] = []  # (elapsed_s, requests, cpu_s)
            done: dict[str, Any] | None = None
            deadline = time.monotonic() + seconds + 30.0
            for msg in reader.progress(deadline):
                if msg["type"] == "progress":
                    cpu = cpu_seconds(proc.pid)
                    if cpu is not None:
                        points.append((float(msg["elapsed_s"]), int(msg["requests"]), cpu))
                else:
                    done = msg
            code = proc.wait(30)
        finally:
            stop_process(proc)
    if code != 0 or done is None:
        raise RuntimeError(f"load process ({tag}) exited with {code}; see {workdir / f'load-{tag}.log'}")
    steady = points[1:] if len(points) >= 3 else points  # the first interval holds the spawn
    if len(steady) < 2:
        raise RuntimeError(f"load process ({tag}) sent too few progress lines ({len(points)})")
    (e0, r0, c0), (e1, r1, c1) = steady[0], steady[-1]
    requests = r1 - r0
    rows = _count_rows(Path(config.samples_file))
    return {
        "record": record,
        "requests_total": int(done["requests"]),
        "rows_written": rows,
        "interval_s": round(e1 - e0, 3),
        "interval_requests": requests,
        "rps": requests / (e1 - e0),
        "cpu_s": c1 - c0,
        "cpu_ms_per_request": 1000.0 * (c1 - c0) / requests if requests else None,
        "cpu_utilisation": (c1 - c0) / (e1 - e0),
    }


def _count_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def recording_cost_us(path: Path, rows: int) -> float:
    """CPU microseconds per samples row for SampleWriter alone (append + flush every 1000 rows), in this process."""
    from chaosml.load.samples import SampleWriter

    writer = SampleWriter(path)
    t0 = time.process_time()
    for i in range(rows):
        writer.append(ROW)
        if i % 1000 == 999:
            writer.flush()
    writer.close()
    cost = (time.process_time() - t0) / rows * 1e6
    path.unlink()
    return cost


def run(quick: bool, workdir: Path) -> SectionResult:
    res = SectionResult("load", "Load driver: recording on vs off against a minimal keep-alive endpoint")
    pairs = 1 if quick else 5
    seconds = 2.0 if quick else 3.0
    users = 16
    arms: list[dict[str, Any]] = []
    with child(py("-m", "benchmarks.endpoint", "--host", HOST), ready_prefix="listening ") as (_, port):
        url = f"http://{HOST}:{port}"
        # warm-up run (imports, page cache), not counted
        run_arm(url, workdir / "load", record=True, users=users, seconds=1.0, tag="warmup")
        for k in range(pairs):
            order = (True, False) if k % 2 == 0 else (False, True)
            for record in order:
                tag = f"{'on' if record else 'off'}-{k}"
                arms.append(run_arm(url, workdir / "load", record=record, users=users, seconds=seconds, tag=tag))
    on = [a for a in arms if a["record"]]
    off = [a for a in arms if not a["record"]]
    rps_on, rps_off = median([a["rps"] for a in on]), median([a["rps"] for a in off])
    cpu_on = median([a["cpu_ms_per_request"] for a in on])
    cpu_off = median([a["cpu_ms_per_request"] for a in off])
    pair_ratios = [off_a["rps"] / on_a["rps"] for on_a, off_a in zip(on, off)]
    res.details = {"users": users, "seconds_per_arm": seconds, "pairs": pairs, "arms": arms,
                   "pair_rps_ratios_off_over_on": pair_ratios}
    res.add("rps_recording_on", rps_on, "req/s", note=f"{users} users, no wait, median of {pairs}")
    res.add("rps_recording_off", rps_off, "req/s", note=f"median of {pairs}")
    ratio = median(pair_ratios)
    util_on = median([a["cpu_utilisation"] for a in on])
    util_off = median([a["cpu_utilisation"] for a in off])
    row_us = median([recording_cost_us(workdir / "load" / "micro.csv", 5_000 if quick else 50_000) for _ in range(3)])
    res.details["recording_cpu_us_per_row"] = row_us
    res.add(
        "recording_overhead_ratio", ratio, "x", "<=", 1.05,
        note=f"rps off / rps on, median of {pairs} interleaved pairs (pairs: "
        + ", ".join(f"{r:.3f}" for r in pair_ratios) + ")"
        + ("" if ratio <= 1.05 else f"; MISSED: the load process got {util_on:.2f} (on) vs {util_off:.2f} (off) "
           "of a core on this shared box; see cpu_overhead_ratio and README"),
    )
    res.add("cpu_per_request_on", cpu_on, "ms CPU", note="load process utime+stime / requests")
    res.add("cpu_per_request_off", cpu_off, "ms CPU")
    cpu_ratio = cpu_on / cpu_off
    res.add("cpu_overhead_ratio", cpu_ratio, "x", "<=", 1.05,
            note="CPU per request on / off (independent of the CPU share the scheduler gives)"
            + ("" if cpu_ratio <= 1.05 else f"; MISSED: +{1000 * (cpu_on - cpu_off):.1f} us/request, of which "
               f"SampleWriter alone costs {row_us:.1f} us/row (format_row at append, on the gevent loop); see README"))
    res.add("recording_cpu_per_row", row_us, "us CPU", note=f"SampleWriter.append (formats the line) + flush alone, {len(ROW)} columns, in-process")
    res.add("load_process_cpu_utilisation_on", util_on, "cores",
            note="~1.0 = the single-threaded driver is the bottleneck, as intended")
    rows_ok = all(a["rows_written"] == a["requests_total"] for a in on) and all(a["rows_written"] == 0 for a in off)
    res.add("rows_match_requests", int(rows_ok), "bool", ">=", 1,
            note="recording on: one row per request; off: none")
    return res
