"""Fixtures for the fault-proxy tests: a real ProxyServer in a thread and tiny upstream servers."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from proxy_support import HOST, TcpServer, echo, listen_port, proxy_process

from chaosml.proxy import client
from chaosml.proxy.server import ProxyServer, ServerThread


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    yield server
    server.close()


@pytest.fixture
def tcp_server() -> Iterator[Callable[[Callable[[socket.socket], None]], TcpServer]]:
    """Factory for upstream servers with a custom per-connection handler."""
    made: list[TcpServer] = []

    def make(handle: Callable[[socket.socket], None]) -> TcpServer:
        made.append(TcpServer(handle))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def proxy_server() -> Iterator[ServerThread]:
    handle = ProxyServer(HOST, 0).start_in_thread()
    yield handle
    handle.stop()


@pytest.fixture
def api(proxy_server: ServerThread) -> str:
    return proxy_server.url


@pytest.fixture
def echo_proxy(api: str, echo_server: TcpServer) -> int:
    """Port of a proxy named 'echo' in front of the echo server."""
    return listen_port(client.create_proxy(api, "echo", echo_server.address))


@pytest.fixture
def api_process() -> Iterator[str]:
    """API URL of a fault proxy running in its own process (for timing tests)."""
    with proxy_process() as url:
        yield url
