"""Section ``wrk``: issue 19's fault-proxy figures against direct nginx under wrk (benchmarks.proxy_wrk); skipped without wrk or nginx.

One run of :func:`benchmarks.proxy_wrk.measure` on the stdlib event loop: keep-alive, a new
connection per request, bulk and 200 connections as proxied/direct ratios of interleaved
medians; the added latency on one connection; the REST API's p50 while toxics churn under 200
busy connections; a latency toxic under 200 busy connections and concurrent downloads through a
bandwidth toxic, in the same proxy process.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks import proxy_wrk
from benchmarks.common import SectionResult

PROXY = "proxy asyncio"
#: proxy_wrk scenario -> this section's figure stem (ratios: proxied / direct, goals of issue 19).
RATIOS = {
    proxy_wrk.SCENARIOS[0].name: "keepalive",
    proxy_wrk.SCENARIOS[1].name: "new_connection",
    proxy_wrk.SCENARIOS[2].name: "bulk",
    proxy_wrk.SCENARIOS[3].name: "c200",
}
LATENCY = proxy_wrk.SCENARIOS[4].name
API_GOAL_MS = 5.0
LATENCY_TOXIC_GOAL_MS = 1.0
BANDWIDTH_TOXIC_GOAL_PCT = 2.0


def run(quick: bool, _workdir: Path) -> SectionResult:
    res = SectionResult("wrk", "Fault proxy vs direct nginx under wrk; REST API under churn; toxics under load")
    reason = proxy_wrk.missing_tools()
    if reason is not None:
        res.skipped = reason
        return res
    repeats, seconds = (1, 1.0) if quick else (3, 5.0)
    data = proxy_wrk.measure(repeats, seconds, ["asyncio"], lambda _line: None)
    res.details = proxy_wrk.to_json(data)
    figures: dict[str, proxy_wrk.Figure] = data["figures"]  # type: ignore[assignment]
    how = f"median of {repeats} interleaved wrk runs x {seconds:g} s"
    for scenario, stem in RATIOS.items():
        fig = figures[scenario]
        direct, proxied = fig.median("direct"), fig.median(PROXY)
        res.add(f"{stem}_direct", direct, fig.unit, note=f"{scenario}, nginx directly, {how}")
        res.add(f"{stem}_proxied", proxied, fig.unit, note="same through python -m chaosml.proxy, no toxic")
        assert fig.goal is not None
        res.add(f"{stem}_ratio", proxied / direct, "x", ">=", fig.goal, note="proxied / direct")
    for pct in ("p50", "p99"):
        fig = figures[f"{LATENCY} {pct}"]
        res.add(f"added_latency_{pct}", fig.median(PROXY) - fig.median("direct"), "ms",
                note=f"wrk -c1 {pct}: proxied - direct")
    api_ms: list[float] = data["api_ms"][PROXY]  # type: ignore[index]
    api = proxy_wrk.percentiles(api_ms)
    res.add("api_p50_under_churn", api["p50"], "ms", "<=", API_GOAL_MS,
            note=f"add toxic / GET /version / remove toxic while wrk -t2 -c200 runs through the proxy; {len(api_ms)} calls")
    res.add("api_p99_under_churn", api["p99"], "ms")
    churn_rate = statistics.median(data["churn_req_s"][PROXY])  # type: ignore[index]
    res.add("c200_proxied_under_churn", churn_rate, "req/s",
            note="wrk -t2 -c200 through the proxy while the API churn runs (compare c200_proxied): how busy"
            " the data path was; the API waits for its loop, so a busier one answers later")
    acc: dict[str, float] = data["toxics"][PROXY]  # type: ignore[index]
    res.add("latency_toxic_p50_under_load", acc["latency_p50_ms"], "ms",
            note=f"{acc['latency_configured_ms']:g} ms latency toxic, wrk -t2 -c200 through it"
            f" ({acc['latency_req_s']:.0f} req/s), as the client sees it (proxy and nginx time included)")
    res.add("latency_toxic_added_under_load", acc["latency_added_ms"], "ms",
            note=f"meanwhile a probe, one request at a time: p50 through the toxic"
            f" {acc['latency_probe_toxic_p50_ms']:.2f} ms - p50 through a toxic-free proxy of the same process"
            f" {acc['latency_probe_plain_p50_ms']:.2f} ms ({acc['latency_probes']:g} probes each)")
    res.add("latency_toxic_error_under_load", acc["latency_error_ms"], "ms", "<=", LATENCY_TOXIC_GOAL_MS,
            note="|added - configured|")
    res.add("latency_toxic_gross_error_under_load", acc["latency_gross_error_ms"], "ms",
            note="|wrk p50 - configured|: the figure before the probe (includes the proxy's and nginx's time)")
    res.add("bandwidth_toxic_worst_under_load", acc["bandwidth_worst_kbps"], "KB/s",
            note=f"{acc['bandwidth_downloads']:g} concurrent downloads of {acc['bandwidth_bytes']:g} B through a"
            f" {acc['bandwidth_configured_kbps']:g} KB/s toxic meanwhile, request -> last byte (1 KB = 1000 B)")
    res.add("bandwidth_toxic_error_under_load", acc["bandwidth_error_pct"], "%", "<=", BANDWIDTH_TOXIC_GOAL_PCT,
            note="worst |measured - configured| / configured")
    return res
