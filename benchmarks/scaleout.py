"""Section 6, scale-out: locust master + 2 workers on 127.0.0.1 (chaosml.load.distributed), samples merged.

Against the minimal endpoint, as fast as possible: a single load process (``python -m
chaosml.load``) and master + 2 workers, interleaved. Figures: requests/s of each (steady state,
from progress lines), and the recording consistency of the distributed run: merged rows ==
sum of the workers' rows == sum of the workers' own request counts == locust's aggregated
count at the master, and the merged file sorted by ``t``.
"""

from __future__ import annotations

import itertools
import socket
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    HOST,
    LineReader,
    SectionResult,
    child,
    median,
    py,
    stop_process,
)
from benchmarks.load import run_arm, write_payloads
from chaosml.load.config import LoadConfig
from chaosml.load.distributed import (
    merge_samples,
    start_distributed,
    worker_samples_file,
)

WORKERS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def run_distributed(url: str, workdir: Path, *, users: int, seconds: float, tag: str) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    samples = workdir / f"samples-{tag}.csv"
    config = LoadConfig(
        target_url=url, path="/predict", users=users, spawn_rate=100.0, duration_s=seconds,
        rate_per_user=None, request_timeout_s=5.0, mix={"clean": 1.0},
        payloads_file=str(write_payloads(workdir / "payloads.json")), samples_file=str(samples),
        progress_interval_s=0.5,
    )
    with open(workdir / f"distributed-{tag}.log", "w") as log:
        master, workers = start_distributed(config, workdir / f"distributed-{tag}.json", workers=WORKERS,
                                            port=_free_port(), stderr=log)
        try:
            reader = LineReader(master.stdout)  # type: ignore[arg-type]
            points: list[tuple[float, int]] = []
            done: dict[str, Any] | None = None
            deadline = time.monotonic() + seconds + 90.0
            for msg in reader.progress(deadline):
                if msg["type"] == "progress":
                    points.append((float(msg["elapsed_s"]), int(msg["requests"])))
                else:
                    done = msg
            code = master.wait(30)
            worker_codes = [w.wait(30) for w in workers]
        finally:
            for p in (master, *workers):
                stop_process(p)
    if code != 0 or done is None:
        raise RuntimeError(f"distributed load ({tag}) exited with {code}; see {workdir / f'distributed-{tag}.log'}")
    files = [worker_samples_file(samples, i) for i in range(WORKERS)]
    merged = merge_samples(files, samples)
    ts = [float(line.split(",", 1)[0]) for line in samples.read_text().splitlines()[1:]]
    steady = points[1:] if len(points) >= 3 else points
    # locust's workers report stats every 3 s: the master's progress counts move in steps, so the
    # steady rate is taken over whole progress lines and is coarser than the single process's.
    (e0, r0), (e1, r1) = steady[0], steady[-1]
    workers_info = done["workers"]
    return {
        "tag": tag,
        "exit_codes": {"master": code, "workers": worker_codes},
        "locust_requests": int(done["requests"]),
        "worker_requests": {k: int(v["requests"]) for k, v in workers_info.items()},
        "worker_rows": {k: int(v["rows"]) for k, v in workers_info.items()},
        "merged_rows": merged["rows"],
        "merged_per_file": merged["per_file"],
        "dropped_lines": merged["dropped_lines"],
        "merged_sorted": all(a <= b for a, b in itertools.pairwise(ts)),
        "duration_s": float(done["duration_s"]),
        "rps_total": int(done["requests"]) / float(done["duration_s"]),
        "rps_steady": (r1 - r0) / (e1 - e0) if e1 > e0 else None,
    }


def run(quick: bool, workdir: Path) -> SectionResult:
    res = SectionResult("scaleout", "Scale-out: locust master + 2 workers on 127.0.0.1, samples merged")
    rounds = 1 if quick else 2
    seconds = 4.0 if quick else 8.0
    users = 16
    single: list[dict[str, Any]] = []
    dist: list[dict[str, Any]] = []
    with child(py("-m", "benchmarks.endpoint", "--host", HOST), ready_prefix="listening ") as (_, port):
        url = f"http://{HOST}:{port}"
        for k in range(rounds):
            single.append(run_arm(url, workdir / "scaleout", record=True, users=users, seconds=seconds, tag=f"single-{k}"))
            dist.append(run_distributed(url, workdir / "scaleout", users=users, seconds=seconds, tag=f"dist-{k}"))
    res.details = {"users": users, "seconds": seconds, "workers": WORKERS, "single": single, "distributed": dist}
    rps_single = median([s["requests_total"] / seconds for s in single])
    rps_dist = median([d["rps_total"] for d in dist])
    res.add("rps_single_process", rps_single, "req/s", note=f"{users} users, requests / {seconds:g} s configured")
    res.add("rps_master_2_workers", rps_dist, "req/s", note="locust aggregated requests / measured duration")
    res.add("scale_out_ratio", rps_dist / rps_single, "x",
            note="2 workers / 1 process on THIS 2-core box, which also runs the endpoint and the master")
    last = dist[-1]
    res.add("locust_aggregated_requests", last["locust_requests"], "req", note="master's view (last run)")
    res.add("merged_sample_rows", last["merged_rows"], "rows", note="samples.worker-0/1.csv merged by t")
    consistent = all(
        d["merged_rows"] == sum(d["worker_rows"].values()) == sum(d["worker_requests"].values()) == d["locust_requests"]
        and d["merged_sorted"] and d["dropped_lines"] == 0
        for d in dist
    )
    res.add("records_consistent", int(consistent), "bool", ">=", 1,
            note="every run: merged rows == worker rows == worker requests == locust aggregate; sorted; none dropped")
    return res
