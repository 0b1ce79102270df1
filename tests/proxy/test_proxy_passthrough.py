"""Pass-through, enable/disable and /reset of the fault proxy, over real sockets on 127.0.0.1."""

from __future__ import annotations

import socket
import threading

import pytest
from proxy_support import connect, listen_port, recv_exactly, round_trip

from chaosml.proxy import client


def test_small_payload_round_trips_unchanged(echo_proxy: int) -> None:
    with connect(echo_proxy) as sock:
        for i in range(20):
            payload = f"message {i}\n".encode()
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload


def test_large_payload_is_byte_identical(echo_proxy: int) -> None:
    payload = bytes(range(256)) * 16_384  # 4 MiB, every byte value
    with connect(echo_proxy, timeout=20) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = recv_exactly(sock, len(payload))
        sender.join(20)
    assert received == payload


def test_concurrent_connections_do_not_mix(echo_proxy: int) -> None:
    socks = [connect(echo_proxy) for _ in range(8)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(f"conn-{i}".encode() * 100)
        for i, sock in enumerate(socks):
            expected = f"conn-{i}".encode() * 100
            assert recv_exactly(sock, len(expected)) == expected
    finally:
        for sock in socks:
            sock.close()


def test_upstream_unreachable_closes_the_client(api: str) -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    dead = f"127.0.0.1:{spare.getsockname()[1]}"
    spare.close()
    port = listen_port(client.create_proxy(api, "dead", dead))
    with connect(port) as sock:
        sock.settimeout(5)
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_disable_refuses_new_and_closes_existing_then_enable_restores(
    api: str, echo_proxy: int
) -> None:
    with connect(echo_proxy) as existing:
        round_trip(existing)
        proxy = client.update_proxy(api, "echo", enabled=False)
        assert proxy["enabled"] is False
        existing.settimeout(2)
        assert _closed(existing)
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy).close()

    proxy = client.update_proxy(api, "echo", enabled=True)
    assert proxy["enabled"] is True
    assert listen_port(proxy) == echo_proxy  # same address again
    with connect(echo_proxy) as sock:
        round_trip(sock)


def test_reset_removes_toxics_and_enables_every_proxy(
    api: str, echo_proxy: int
) -> None:
    client.add_toxic(api, "echo", "latency", attributes={"latency": 300})
    client.update_proxy(api, "echo", enabled=False)
    client.reset(api)
    proxy = client.get_proxy(api, "echo")
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    with connect(echo_proxy) as sock:
        assert round_trip(sock) < 0.2


def test_reset_speeds_up_a_live_connection(api: str, echo_proxy: int) -> None:
    with connect(echo_proxy) as sock:
        client.add_toxic(api, "echo", "latency", attributes={"latency": 200})
        assert round_trip(sock) >= 0.19
        client.reset(api)
        assert round_trip(sock) < 0.1


def test_delete_proxy_closes_listener(api: str, echo_proxy: int) -> None:
    client.delete_proxy(api, "echo")
    assert client.proxies(api) == {}
    with pytest.raises(ConnectionRefusedError):
        connect(echo_proxy).close()
