"""Section 2, fault proxy: added latency, throughput and bulk MB/s vs direct; latency and bandwidth toxic error.

- added latency p50/p99: :func:`benchmarks.proxy_roundtrip.run_proxy_bench` (one connection, 64 B
  request/response, the proxy as its own process), repeated; each call measures direct then
  proxied; medians over the calls. Its 100 ms latency toxic gives the latency-toxic error.
- throughput: 64 B round trips/s over 16 concurrent keep-alive connections (asyncio client in
  this process, echo server in its own process), direct and proxied interleaved.
- bulk: one connection downloading N MB, direct and proxied interleaved.
- bandwidth toxic: a download through a 50 KB/s ``bandwidth`` toxic (downstream), measured
  rate = bytes / (request -> last byte); error relative to 50 KB/s (1 KB = 1000 B, as Toxiproxy).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

from benchmarks import netload
from benchmarks.common import HOST, SectionResult, child, median, py
from benchmarks.proxy_roundtrip import proxy_server, run_proxy_bench
from chaosml.proxy import client

BANDWIDTH_KBPS = 50
LATENCY_MS = 100


def run(quick: bool) -> SectionResult:
    res = SectionResult("proxy", "Fault proxy: overhead vs a direct connection, toxic accuracy")
    rounds = 1 if quick else 3
    rt = 300 if quick else 2000
    benches: list[dict[str, Any]] = []
    for _ in range(rounds):
        with contextlib.redirect_stdout(io.StringIO()):
            benches.append(run_proxy_bench(round_trips=rt, toxic_round_trips=10 if quick else 30))
    tp_seconds = 0.5 if quick else 2.0
    bulk_bytes = (8 if quick else 64) * 1_000_000
    bw_bytes = (25 if quick else 150) * 1000
    through: dict[str, list[dict[str, float]]] = {"direct": [], "proxied": []}
    bulk: dict[str, list[dict[str, float]]] = {"direct": [], "proxied": []}
    bandwidth: list[dict[str, float]] = []
    with child(py("-m", "benchmarks.netload", "--host", HOST), ready_prefix="listening ") as (_, sport), \
            proxy_server(False) as api:
        server_port = int(sport)
        proxy = client.create_proxy(api, "bench-net", f"{HOST}:{server_port}")
        proxy_port = int(proxy["listen"].rsplit(":", 1)[1])
        ports = {"direct": server_port, "proxied": proxy_port}
        netload.round_trip_throughput(proxy_port, conns=4, seconds=0.2)  # warm-up
        for k in range(rounds):
            order = ("direct", "proxied") if k % 2 == 0 else ("proxied", "direct")
            for side in order:
                through[side].append(netload.round_trip_throughput(ports[side], conns=16, seconds=tp_seconds))
            for side in order:
                bulk[side].append(netload.download(ports[side], bulk_bytes))
        client.add_toxic(api, "bench-net", "bandwidth", name="bw", stream="downstream",
                         attributes={"rate": BANDWIDTH_KBPS})
        for _ in range(1 if quick else 2):
            bandwidth.append(netload.download(proxy_port, bw_bytes, timeout_s=60))
    res.details = {"proxy_bench": benches, "throughput": through, "bulk": bulk, "bandwidth": bandwidth}

    direct_p50 = median([b["direct"]["p50_ms"] for b in benches])
    res.add("direct_rtt_p50", direct_p50, "ms", note=f"64 B round trip, {rt} per call, median of {rounds} calls")
    res.add("proxy_added_latency_p50", median([b["added_p50_ms"] for b in benches]), "ms", "<=", 1.0,
            note="proxied p50 - direct p50")
    res.add("proxy_added_latency_p99", median([b["added_p99_ms"] for b in benches]), "ms", "<=", 5.0,
            note="proxied p99 - direct p99")
    rps_d = median([t["rps"] for t in through["direct"]])
    rps_p = median([t["rps"] for t in through["proxied"]])
    res.add("throughput_direct", rps_d, "req/s", note="16 connections, 64 B round trips")
    res.add("throughput_proxied", rps_p, "req/s", note="same, through the proxy, no toxics")
    ratio = rps_p / rps_d
    res.add("throughput_proxied_over_direct", ratio, "x", ">=", 0.5,
            note="" if ratio >= 0.5 else f"MISSED: each chunk crosses 3 asyncio tasks per direction in one "
            f"Python process that shares 2 cores with client and server; still {rps_p:.0f} req/s (see README)")
    mbps_d = median([b["bytes_per_s"] for b in bulk["direct"]]) / 1e6
    mbps_p = median([b["bytes_per_s"] for b in bulk["proxied"]]) / 1e6
    res.add("bulk_direct", mbps_d, "MB/s", note=f"{bulk_bytes / 1e6:g} MB download, one connection")
    res.add("bulk_proxied", mbps_p, "MB/s", ">=", 100.0, note="through the proxy, no toxics")
    toxic_p50 = median([b["toxic_100ms"]["p50_ms"] - b["proxied"]["p50_ms"] for b in benches])
    res.add("latency_toxic_100ms_measured", toxic_p50, "ms", note="added round-trip p50 with a 100 ms latency toxic")
    res.add("latency_toxic_error", toxic_p50 - LATENCY_MS, "ms", "<=", 5.0, note="measured - configured (p50)")
    measured_kbps = median([b["bytes_per_s"] for b in bandwidth]) / 1000
    res.add("bandwidth_toxic_50kbps_measured", measured_kbps, "KB/s",
            note=f"{bw_bytes / 1000:g} KB download, request -> last byte")
    res.add("bandwidth_toxic_error", 100.0 * abs(measured_kbps - BANDWIDTH_KBPS) / BANDWIDTH_KBPS, "%", "<=", 5.0,
            note="|measured - configured| / configured")
    return res
