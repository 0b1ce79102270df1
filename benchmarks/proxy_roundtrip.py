"""Micro-benchmark of the fault proxy on 127.0.0.1 (pass-through overhead, latency-toxic accuracy); used by benchmarks/proxy.py."""

from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from benchmarks.common import HOST
from chaosml.proxy import client
from chaosml.proxy.server import ProxyServer

SOCKET_TIMEOUT_S = 5.0


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    listener = socket.create_server((HOST, 0))
    listener.settimeout(SOCKET_TIMEOUT_S)

    def serve() -> None:
        conns: list[socket.socket] = []
        try:
            for _ in range(16):  # the bench opens 3 connections
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                conn.settimeout(SOCKET_TIMEOUT_S)
                conns.append(conn)
                threading.Thread(target=_echo, args=(conn,), daemon=True).start()
        finally:
            for conn in conns:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def _echo(conn: socket.socket) -> None:
    try:
        for _ in range(10_000_000):
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)
    except OSError:
        return


def _round_trips(port: int, n: int, payload: bytes) -> list[float]:
    """Seconds per request/response on one connection (after one warm-up)."""
    with socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples: list[float] = []
        for _ in range(n + 1):
            start = time.perf_counter()
            sock.sendall(payload)
            got = 0
            for _ in range(len(payload)):
                if got >= len(payload):
                    break
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("echo connection closed")
                got += len(chunk)
            samples.append(time.perf_counter() - start)
        return samples[1:]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def proxy_server(in_process: bool) -> Iterator[str]:
    """The API URL of a fault proxy: a ``python -m chaosml.proxy`` child, or a thread here."""
    if in_process:
        handle = ProxyServer(HOST, 0).start_in_thread()
        try:
            yield handle.url
        finally:
            handle.stop()
        return
    cmd = [sys.executable, "-m", "chaosml.proxy", "--host", HOST, "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "chaosml proxy API listening on http://..."
        if "listening on " not in line:
            raise RuntimeError(f"fault proxy did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(SOCKET_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(SOCKET_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


def run_proxy_bench(
    round_trips: int = 2000,
    toxic_round_trips: int = 30,
    payload_size: int = 64,
    *,
    in_process: bool = False,
) -> dict[str, Any]:
    """Measure direct vs proxied round trips and a 100 ms latency toxic; print a table.

    The proxy runs as its own process by default: in a thread of this process it would
    share the GIL with the client and echo threads, which adds ~0.6 ms that is not the
    proxy's (``in_process=True`` shows that figure).

    Returns milliseconds: ``direct``/``proxied``/``toxic_100ms`` each with p50/p99, plus
    ``added_p50_ms``/``added_p99_ms`` (proxy overhead) and ``toxic_error_p50_ms``.
    """
    payload = b"x" * payload_size
    listener, echo_thread = _echo_server()
    upstream = f"{HOST}:{listener.getsockname()[1]}"
    with proxy_server(in_process) as url:
        try:
            proxy = client.create_proxy(url, "bench", upstream)
            port = int(proxy["listen"].rsplit(":", 1)[1])
            direct = _round_trips(listener.getsockname()[1], round_trips, payload)
            proxied = _round_trips(port, round_trips, payload)
            client.add_toxic(url, "bench", "latency", attributes={"latency": 100})
            toxic = _round_trips(port, toxic_round_trips, payload)
        finally:
            listener.close()
            echo_thread.join(SOCKET_TIMEOUT_S)

    def stats(samples: list[float]) -> dict[str, float]:
        return {
            "p50_ms": _pct(samples, 0.50) * 1000,
            "p99_ms": _pct(samples, 0.99) * 1000,
            "mean_ms": statistics.fmean(samples) * 1000,
            "n": len(samples),
        }

    result: dict[str, Any] = {
        "payload_bytes": payload_size,
        "proxy": "thread" if in_process else "process",
        "direct": stats(direct),
        "proxied": stats(proxied),
        "toxic_100ms": stats(toxic),
    }
    result["added_p50_ms"] = result["proxied"]["p50_ms"] - result["direct"]["p50_ms"]
    result["added_p99_ms"] = result["proxied"]["p99_ms"] - result["direct"]["p99_ms"]
    result["toxic_error_p50_ms"] = (
        result["toxic_100ms"]["p50_ms"] - result["proxied"]["p50_ms"] - 100
    )
    _print_table(result)
    return result


def _print_table(r: dict[str, Any]) -> None:
    print(
        f"fault proxy bench ({r['payload_bytes']} B request/response on 127.0.0.1, "
        f"proxy in a {r['proxy']})"
    )
    print(f"{'path':<22}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for key, label in (
        ("direct", "direct"),
        ("proxied", "via proxy"),
        ("toxic_100ms", "via proxy + 100 ms"),
    ):
        s = r[key]
        print(
            f"{label:<22}{s['n']:>6}{s['p50_ms']:>10.3f}{s['p99_ms']:>10.3f}{s['mean_ms']:>10.3f}"
        )
    print(
        f"proxy adds p50 {r['added_p50_ms']:.3f} ms, p99 {r['added_p99_ms']:.3f} ms; "
        f"100 ms toxic measures {100 + r['toxic_error_p50_ms']:.2f} ms at p50"
    )


if __name__ == "__main__":
    run_proxy_bench()
