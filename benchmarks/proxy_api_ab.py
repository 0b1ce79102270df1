"""``python -m benchmarks.proxy_api_ab``: the fault proxy's REST API under toxic churn, two source trees side by side (benchmarks/README.md, section wrk).

Each side is a name and a PYTHONPATH (e.g. a ``git worktree`` or ``git archive`` of
another commit): ``python -m chaosml.proxy`` is started from it in front of one nginx,
``wrk -t2 -c200`` drives 200 keep-alive connections through it while
``proxy_wrk.api_churn`` adds a latency toxic, reads /version and removes the toxic in a
loop. Sides alternate A B, B A, ... for ``--repeats``; printed per run and per side:
the p50 of every call, the p50 per call type, and wrk's request rate meanwhile, with the
load average. All traffic is to 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks import proxy_wrk

CALLS = ("add", "version", "remove")  # api_churn's calls, in order


def churn_run(nginx_port: int, pythonpath: str, duration_s: float) -> tuple[list[float], float]:
    """One proxy from ``pythonpath`` under churn: (ms per call in api_churn's order, wrk req/s)."""
    os.environ["PYTHONPATH"] = pythonpath  # inherited by the proxy process
    with proxy_wrk.fault_proxy(nginx_port, "asyncio") as (api, port):
        stop = threading.Event()
        times: list[float] = []
        churn = threading.Thread(
            target=proxy_wrk.api_churn, args=(api, stop, duration_s + 10, times)
        )
        churn.start()
        try:
            result = proxy_wrk.run_wrk(port, proxy_wrk.SCENARIOS[3], duration_s)
        finally:
            stop.set()
            churn.join(duration_s + 20)
    return [t * 1000 for t in times], result.req_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_api_ab", description=__doc__)
    parser.add_argument(
        "--side", action="append", required=True, metavar="NAME=PYTHONPATH",
        help="a source tree to measure; give two (or more)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per side, alternated (default 5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (default 5)")
    args = parser.parse_args(argv)
    reason = proxy_wrk.missing_tools()
    if reason:
        print(reason)
        return 0
    sides = [tuple(side.split("=", 1)) for side in args.side]
    p50s: dict[str, list[float]] = {name: [] for name, _ in sides}
    by_call: dict[str, dict[str, list[float]]] = {name: {c: [] for c in CALLS} for name, _ in sides}
    rates: dict[str, list[float]] = {name: [] for name, _ in sides}
    print(f"load before {proxy_wrk.fmt_load(os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="chaosml-api-ab-") as tmp, proxy_wrk.nginx(Path(tmp)) as nginx_port:
        for rep in range(args.repeats):
            for name, path in sides if rep % 2 == 0 else sides[::-1]:
                ms, rate = churn_run(nginx_port, path, args.duration)
                p50s[name].append(statistics.median(ms))
                rates[name].append(rate)
                calls = {call: ms[i::3] for i, call in enumerate(CALLS)}
                for call, values in calls.items():
                    by_call[name][call] += values
                split = " ".join(f"{c} {statistics.median(v):.2f}" for c, v in calls.items() if v)
                print(
                    f"run {rep + 1} {name}: p50 {p50s[name][-1]:.2f} ms ({split}; {len(ms)} calls),"
                    f" wrk {rate:.0f} req/s, load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
    print(f"load after {proxy_wrk.fmt_load(os.getloadavg())}")
    for name, _ in sides:
        split = " ".join(f"{c} {statistics.median(v):.2f}" for c, v in by_call[name].items() if v)
        print(
            f"{name}: median of the runs' p50 {statistics.median(p50s[name]):.2f} ms"
            f" (runs {', '.join(f'{v:.2f}' for v in p50s[name])}); per call {split};"
            f" wrk {statistics.median(rates[name]):.0f} req/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
