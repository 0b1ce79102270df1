"""``python -m benchmarks.proxy_wrk``: the fault proxy against direct nginx, measured with wrk (benchmarks/README.md, section wrk).

Starts its own nginx (own prefix dir and config, 127.0.0.1 and a free port, never the
system one) and ``python -m chaosml.proxy`` in front of it, then runs wrk against both,
interleaved (direct, proxy, proxy, direct, ...) and reports medians and proxy/direct
ratios: keep-alive request rate, a new connection per request, bulk transfer, added
p50/p99 latency on one connection, 200 connections, and the REST API's latency while
toxics churn under 200 busy connections; then a latency toxic under 200 busy connections
and downloads through a bandwidth toxic (toxic_accuracy). Skips (exit 0, with the reason)
when wrk or nginx is missing; the suite's section ``wrk`` (benchmarks/wrk.py) runs it too. All traffic is to 127.0.0.1; every run is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaosml.proxy import client

HOST = "127.0.0.1"
BULK_BYTES = 16 * 1024 * 1024
LATENCY_TOXIC_MS = 100  # the latency toxic measured under load
BANDWIDTH_TOXIC_KBPS = 50  # the bandwidth toxic measured under load (1 KB = 1000 B, as Toxiproxy)
BANDWIDTH_DOWNLOADS = 4  # concurrent downloads through the bandwidth toxic
BW_FILE_BYTES = 1_000_000  # bw.bin: downloads through the bandwidth toxic take a Range of it
START_TIMEOUT_S = 10.0
NAME_WIDTH = 64  # the figure column of the printed table

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen {host}:{port};
        root {prefix}/html;
    }}
}}
"""


@dataclass(frozen=True)
class Scenario:
    """One wrk invocation: what it measures and how it is read."""

    name: str
    path: str
    connections: int
    threads: int
    metric: str  # req_s | bytes_s | p50_ms | p99_ms (read from the same run)
    goal: float | None  # proxy/direct ratio to reach (None: reported only)
    headers: tuple[str, ...] = ()


SCENARIOS = (
    Scenario("keep-alive (wrk -t1 -c10)", "/", 10, 1, "req_s", 0.5),
    Scenario(
        "new connection per request (-c10, Connection: close)",
        "/",
        10,
        1,
        "req_s",
        0.33,
        ("Connection: close",),
    ),
    Scenario("bulk 16 MiB file (-c10)", "/bulk.bin", 10, 1, "bytes_s", 0.6),
    Scenario("keep-alive, 200 connections (-t2 -c200)", "/", 200, 2, "req_s", 0.5),
    Scenario("latency, one connection (-c1)", "/", 1, 1, "latency", None),
)


@dataclass
class WrkResult:
    req_s: float
    bytes_s: float
    p50_ms: float
    p99_ms: float


@dataclass
class Figure:
    """One measured quantity: its values per side ('direct', 'proxy asyncio', ...)."""

    name: str
    unit: str = ""
    goal: float | None = None  # proxy/direct ratio to reach
    values: dict[str, list[float]] = field(default_factory=dict)

    def median(self, side: str) -> float:
        return statistics.median(self.values[side])


def free_port() -> int:
    with socket.create_server((HOST, 0)) as sock:
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout_s}s")


@contextlib.contextmanager
def nginx(workdir: Path) -> Iterator[int]:
    """nginx serving index.html (small) and bulk.bin, on a free 127.0.0.1 port."""
    prefix = workdir / "nginx"
    (prefix / "html").mkdir(parents=True)
    (prefix / "tmp").mkdir()
    (prefix / "html" / "index.html").write_bytes(
        b"<html>chaosml proxy bench</html>\n" * 18
    )
    (prefix / "html" / "bulk.bin").write_bytes(os.urandom(BULK_BYTES))
    (prefix / "html" / "bw.bin").write_bytes(os.urandom(BW_FILE_BYTES))
    for path in [workdir, *prefix.rglob("*")] + [prefix]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # workers may run as nobody
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, host=HOST, port=port))
    proc = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # nginx logs to error.log (-e)
    )
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextlib.contextmanager
def fault_proxy(upstream_port: int, loop: str) -> Iterator[tuple[str, int]]:
    """``python -m chaosml.proxy`` with one proxy to nginx; yields (API URL, proxy port)."""
    cmd = [sys.executable, "-m", "chaosml.proxy", "--host", HOST, "--port", "0"]
    if loop != "asyncio":
        cmd += ["--loop", loop]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on http://" not in line:
            raise RuntimeError(f"the proxy did not start: {line!r}")
        api = line.rsplit(" ", 1)[1].strip()
        port = free_port()
        client.create_proxy(api, "nginx", f"{HOST}:{upstream_port}", f"{HOST}:{port}")
        yield api, port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, Transfer/sec and the 50%/99% latency lines of ``wrk --latency``."""
    req = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (req and transfer and p50 and p99):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return WrkResult(
        req_s=float(req.group(1)),
        bytes_s=float(transfer.group(1)) * _BYTES[transfer.group(2)],
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
    )


def run_wrk(port: int, scenario: Scenario, duration_s: float) -> WrkResult:
    cmd = [
        "wrk",
        f"-t{scenario.threads}",
        f"-c{scenario.connections}",
        f"-d{duration_s:g}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for header in scenario.headers:
        cmd += ["-H", header]
    cmd.append(f"http://{HOST}:{port}{scenario.path}")
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=duration_s + 30, check=True
    )
    return parse_wrk(done.stdout)


def api_churn(
    api: str, stop: threading.Event, limit_s: float, times: list[float]
) -> None:
    """Add a latency toxic, GET /version, remove the toxic, until ``stop``; seconds per call into ``times``."""
    deadline = time.monotonic() + limit_s
    for step in range(1_000_000):
        if stop.is_set() or time.monotonic() > deadline:
            return
        name = f"churn{step}"
        calls: list[Callable[[], object]] = [
            functools.partial(
                client.add_toxic,
                api,
                "nginx",
                "latency",
                name=name,
                attributes={"latency": 1},
            ),
            functools.partial(client.version, api),
            functools.partial(client.remove_toxic, api, "nginx", name),
        ]
        for call in calls:
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        time.sleep(0.01)


def download_rate(port: int, size: int) -> tuple[float, int]:
    """GET the first ``size`` bytes of /bw.bin: (bytes received / (request sent -> last byte), bytes)."""
    request = (
        f"GET /bw.bin HTTP/1.1\r\nHost: {HOST}\r\nRange: bytes=0-{size - 1}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    received = 0
    with socket.create_connection((HOST, port), timeout=10) as sock:
        start = time.perf_counter()
        sock.sendall(request)
        for _ in range(1_000_000):
            data = sock.recv(65536)
            if not data:
                break
            received += len(data)
            last = time.perf_counter()
    if received < size:
        raise RuntimeError(f"bandwidth download: {received} bytes, expected over {size}")
    return received / (last - start), received


@contextlib.contextmanager
def toxic_proxy(
    api: str, upstream_port: int, name: str, toxic: str, attributes: dict[str, int]
) -> Iterator[int]:
    """A proxy to nginx with one downstream toxic, deleted on exit; yields its port."""
    port = free_port()
    client.create_proxy(api, name, f"{HOST}:{upstream_port}", f"{HOST}:{port}")
    try:
        client.add_toxic(api, name, toxic, name=toxic, attributes=attributes)
        yield port
    finally:
        client.delete_proxy(api, name)


def http_get_ms(sock: socket.socket, path: str = "/") -> float:
    """One keep-alive ``GET path`` on ``sock``: milliseconds from sending to the body's last byte."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    start = time.perf_counter()
    sock.sendall(request)
    data = b""
    for _ in range(10_000):
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError(f"probe: no Content-Length in {head!r}")
            if len(body) >= int(length.group(1)):
                return (time.perf_counter() - start) * 1000
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    raise RuntimeError(f"probe: incomplete answer {data[:200]!r}")


def probe(ports: dict[str, int], stop: threading.Event, limit_s: float, times: dict[str, list[float]]) -> None:
    """Sequential keep-alive GETs, one connection per port, the ports taken in turn, until ``stop``."""
    deadline = time.monotonic() + limit_s
    with contextlib.ExitStack() as stack:
        socks = {
            name: stack.enter_context(socket.create_connection((HOST, port), timeout=10))
            for name, port in ports.items()
        }
        for _ in range(1_000_000):
            if stop.is_set() or time.monotonic() > deadline:
                return
            for name, sock in socks.items():
                times.setdefault(name, []).append(http_get_ms(sock))


def toxic_accuracy(api: str, upstream_port: int, plain_port: int, seconds: float) -> dict[str, float]:
    """A latency toxic under 200 busy connections, and concurrent downloads through a bandwidth toxic.

    wrk -t2 -c200 runs through a proxy with a downstream latency toxic (each connection waits
    for its answer, so the load is 200 connections x one request per latency); meanwhile
    BANDWIDTH_DOWNLOADS downloads run through a proxy with a bandwidth toxic, in the same
    proxy process, and a probe sends one request at a time, alternately through the latency
    proxy and through ``plain_port`` (a proxy to the same nginx without toxics, same process).
    Latency: the toxic's added delay under that load = probe p50 through the toxic - probe p50
    without it (the proxy's and nginx's own time at this load cancel out); its error against the
    configured latency is the accuracy. wrk's p50 is reported as the client sees it (it
    includes the proxy's and nginx's time). Bandwidth: each download's bytes / (request sent ->
    last byte); the worst error counts.
    """
    size = int(BANDWIDTH_TOXIC_KBPS * 1000 * seconds)
    busy: list[WrkResult] = []
    rates: list[float] = []
    probed: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        lat_port = stack.enter_context(
            toxic_proxy(api, upstream_port, "acc-latency", "latency", {"latency": LATENCY_TOXIC_MS})
        )
        bw_port = stack.enter_context(
            toxic_proxy(api, upstream_port, "acc-bandwidth", "bandwidth", {"rate": BANDWIDTH_TOXIC_KBPS})
        )
        load = threading.Thread(
            target=lambda: busy.append(run_wrk(lat_port, SCENARIOS[3], seconds + 1))
        )
        downloads = [
            threading.Thread(target=lambda: rates.append(download_rate(bw_port, size)[0]))
            for _ in range(BANDWIDTH_DOWNLOADS)
        ]
        stop = threading.Event()
        prober = threading.Thread(
            target=probe, args=({"toxic": lat_port, "plain": plain_port}, stop, seconds + 10, probed)
        )
        load.start()
        try:
            time.sleep(0.5)  # wrk's 200 connections are up
            for thread in [*downloads, prober]:
                thread.start()
        finally:
            for thread in downloads:
                thread.join(seconds + 30)
            stop.set()
            prober.join(seconds + 30)
            load.join(seconds + 40)
    if not busy or len(rates) != BANDWIDTH_DOWNLOADS or not probed.get("toxic"):
        raise RuntimeError(f"toxics under load: wrk {busy}, {len(rates)} of {BANDWIDTH_DOWNLOADS} downloads,"
                           f" {len(probed.get('toxic', []))} probes")
    worst = max(rates, key=lambda rate: abs(rate / 1000 - BANDWIDTH_TOXIC_KBPS))
    added = statistics.median(probed["toxic"]) - statistics.median(probed["plain"])
    return {
        "latency_configured_ms": LATENCY_TOXIC_MS,
        "latency_p50_ms": busy[0].p50_ms,
        "latency_p99_ms": busy[0].p99_ms,
        "latency_gross_error_ms": abs(busy[0].p50_ms - LATENCY_TOXIC_MS),
        "latency_req_s": busy[0].req_s,
        "latency_probe_toxic_p50_ms": statistics.median(probed["toxic"]),
        "latency_probe_plain_p50_ms": statistics.median(probed["plain"]),
        "latency_probes": len(probed["toxic"]),
        "latency_added_ms": added,
        "latency_error_ms": abs(added - LATENCY_TOXIC_MS),
        "bandwidth_configured_kbps": BANDWIDTH_TOXIC_KBPS,
        "bandwidth_downloads": BANDWIDTH_DOWNLOADS,
        "bandwidth_bytes": size,
        "bandwidth_worst_kbps": worst / 1000,
        "bandwidth_error_pct": 100 * abs(worst / 1000 - BANDWIDTH_TOXIC_KBPS) / BANDWIDTH_TOXIC_KBPS,
    }


def measure(
    repeats: int, duration_s: float, loops: list[str], log: Callable[[str], None]
) -> dict[str, object]:
    load_before = os.getloadavg()
    figures: dict[str, Figure] = {}
    api_ms: dict[str, list[float]] = {}
    churn_req_s: dict[str, list[float]] = {}  # wrk's rate meanwhile: how busy the data path was
    toxics: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="chaosml-wrk-"))
        nginx_port = stack.enter_context(nginx(Path(tmp)))
        ports = {"direct": nginx_port}
        apis: dict[str, str] = {}
        for loop in loops:
            api, port = stack.enter_context(fault_proxy(nginx_port, loop))
            ports[f"proxy {loop}"], apis[f"proxy {loop}"] = port, api
        sides = list(ports)
        for rep in range(repeats):
            order = sides if rep % 2 == 0 else sides[::-1]  # A B C, C B A, ...
            for scenario in SCENARIOS:
                for side in order:
                    result = run_wrk(ports[side], scenario, duration_s)
                    record(figures, scenario, side, result)
                    log(f"  rep {rep + 1} {side:14} {scenario.name}: {result}")
        # API latency while 200 connections are busy through the proxy and toxics churn.
        busy = SCENARIOS[3]
        for rep in range(repeats):
            for side, api in apis.items():
                stop = threading.Event()
                times: list[float] = []
                churn = threading.Thread(
                    target=api_churn, args=(api, stop, duration_s + 10, times)
                )
                churn.start()
                try:
                    rate = run_wrk(ports[side], busy, duration_s).req_s
                finally:
                    stop.set()
                    churn.join(duration_s + 20)
                api_ms.setdefault(side, []).extend(t * 1000 for t in times)
                churn_req_s.setdefault(side, []).append(rate)
                log(f"  rep {rep + 1} {side} API under churn: {len(times)} calls, wrk {rate:.0f} req/s")
        for side, api in apis.items():
            toxics[side] = toxic_accuracy(api, nginx_port, ports[side], max(duration_s, 1.0))
            log(f"  {side} toxics under load: {toxics[side]}")
    return {
        "figures": figures,
        "api_ms": api_ms,
        "churn_req_s": churn_req_s,
        "toxics": toxics,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "sides": sides,
        "repeats": repeats,
        "duration_s": duration_s,
    }


def record(
    figures: dict[str, Figure], scenario: Scenario, side: str, result: WrkResult
) -> None:
    if scenario.metric == "latency":
        rows = [
            (f"{scenario.name} p50", result.p50_ms, "ms"),
            (f"{scenario.name} p99", result.p99_ms, "ms"),
        ]
    elif scenario.metric == "bytes_s":
        rows = [(scenario.name, result.bytes_s / 1e6, "MB/s")]
    else:
        rows = [(scenario.name, result.req_s, "req/s")]
    for name, value, unit in rows:
        figure = figures.setdefault(name, Figure(name, unit, scenario.goal))
        figure.values.setdefault(side, []).append(value)


def render(data: dict[str, object]) -> str:
    """One row per figure: medians per side, then per proxy its ratio (or added ms) and goal."""
    figures: dict[str, Figure] = data["figures"]  # type: ignore[assignment]
    sides: list[str] = data["sides"]  # type: ignore[assignment]
    proxies = sides[1:]
    head = f"{'figure':{NAME_WIDTH}}" + "".join(f" {side:>14}" for side in sides)
    lines = [head + "".join(f" {'vs direct':>10}" for _ in proxies) + "  goal"]
    for figure in figures.values():
        direct = figure.median("direct")
        digits = 3 if figure.unit == "ms" else 1
        row = f"{figure.name + ' [' + figure.unit + ']':{NAME_WIDTH}}"
        row += "".join(f" {figure.median(side):14.{digits}f}" for side in sides)
        verdicts: list[str] = []
        for side in proxies:
            value = figure.median(side)
            if figure.unit == "ms":
                row += f" {value - direct:+8.3f}ms"
                continue
            ratio = value / direct if direct else float("nan")
            row += f" {ratio:10.2f}"
            if figure.goal is not None:
                verdicts.append("MET" if ratio >= figure.goal else "MISSED")
        if figure.unit == "ms":
            row += "  added latency (reported)"
        elif figure.goal is None:
            row += "  (reported)"
        else:
            row += f"  >= {figure.goal}: {' / '.join(verdicts)}"
        lines.append(row)
    api_ms: dict[str, list[float]] = data["api_ms"]  # type: ignore[assignment]
    churn_req_s: dict[str, list[float]] = data["churn_req_s"]  # type: ignore[assignment]
    for side, times in api_ms.items():
        api = percentiles(times)
        met = "MET" if api["p50"] <= 5.0 else "MISSED"
        lines.append(
            f"REST API under toxic churn, 200 busy connections, {side}: p50 {api['p50']:.2f} ms"
            f" (goal <= 5 ms: {met}), p99 {api['p99']:.1f} ms, {len(times)} calls;"
            f" wrk meanwhile {statistics.median(churn_req_s[side]):.0f} req/s"
        )
    toxics: dict[str, dict[str, float]] = data.get("toxics", {})  # type: ignore[assignment]
    for side, acc in toxics.items():
        lat_ok = "MET" if acc["latency_error_ms"] <= 1.0 else "MISSED"
        bw_ok = "MET" if acc["bandwidth_error_pct"] <= 2.0 else "MISSED"
        lines.append(
            f"toxics under load, {side}: latency {acc['latency_configured_ms']:g} ms added"
            f" {acc['latency_added_ms']:.2f} ms (probe p50 {acc['latency_probe_toxic_p50_ms']:.2f} - "
            f"{acc['latency_probe_plain_p50_ms']:.2f} ms without the toxic; goal within 1 ms: {lat_ok}),"
            f" wrk -t2 -c200 p50 {acc['latency_p50_ms']:.2f} ms; bandwidth"
            f" {acc['bandwidth_configured_kbps']:g} KB/s, worst of {acc['bandwidth_downloads']:g} downloads"
            f" {acc['bandwidth_worst_kbps']:.2f} KB/s (goal within 2%: {bw_ok})"
        )
    lines.append(
        f"medians of {data['repeats']} interleaved repeats x {data['duration_s']}s;"
        f" load average before {fmt_load(data['load_before'])},"
        f" after {fmt_load(data['load_after'])} on {data['cpus']} CPUs"
    )
    return "\n".join(lines)


def percentiles(times: list[float]) -> dict[str, float]:
    """p50 (median) and p99 (``statistics.quantiles``, exclusive method) of some timings."""
    p99 = statistics.quantiles(times, n=100)[98] if len(times) >= 2 else times[0]
    return {"p50": statistics.median(times), "p99": p99}


def to_json(data: dict[str, object]) -> dict[str, object]:
    """``measure``'s result with its figures as plain dicts (for a JSON file)."""
    figures: dict[str, Figure] = data["figures"]  # type: ignore[assignment]
    return {**data, "figures": {k: asdict(v) for k, v in figures.items()}}


def fmt_load(load: object) -> str:
    return "/".join(f"{x:.2f}" for x in load)  # type: ignore[attr-defined]


def missing_tools() -> str | None:
    absent = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if absent:
        return f"skipped: {' and '.join(absent)} not installed (Debian: apt-get install wrk nginx)"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.proxy_wrk", description=__doc__
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="interleaved repeats (default 3)"
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="seconds per wrk run (default 5)"
    )
    parser.add_argument(
        "--loop",
        action="append",
        choices=("asyncio", "uvloop"),
        help="the proxy's event loop; repeat to measure both side by side"
        " (default asyncio)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--verbose", action="store_true", help="print every wrk run")
    args = parser.parse_args(argv)
    reason = missing_tools()
    if reason:
        print(reason)
        return 0
    log = print if args.verbose else (lambda _line: None)
    data = measure(args.repeats, args.duration, args.loop or ["asyncio"], log)
    print(render(data))
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(data), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
