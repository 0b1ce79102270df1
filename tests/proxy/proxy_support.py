"""Helpers for the fault-proxy tests: tiny threaded upstream servers and socket utilities (127.0.0.1 only)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chaosml.proxy import client

HOST = "127.0.0.1"


class TcpServer:
    """A threaded TCP server on 127.0.0.1:0; ``handle(conn)`` runs per connection."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self._handle = handle
        self._listener = socket.create_server((HOST, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.address = f"{HOST}:{self.port}"
        self.conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        deadline = time.monotonic() + 300  # never outlives a test session
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with self._lock:
                self.conns.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._accepter.join(5)
        self._listener.close()
        with self._lock:
            for conn in self.conns:
                conn.close()
        for thread in self._threads:
            thread.join(5)


def echo(conn: socket.socket) -> None:
    for _ in range(1_000_000):
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def listen_port(proxy: client.ProxyJSON) -> int:
    return int(proxy["listen"].rsplit(":", 1)[1])


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    for _ in range(n + 1):
        if got >= n:
            break
        data = sock.recv(min(65536, n - got))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for one echo of ``payload`` through ``sock``."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


@contextmanager
def proxy_process(*options: str) -> Iterator[str]:
    """``python -m chaosml.proxy [options]`` on a free port; yields its API URL.

    Timing tests use it so that client threads never wait for the proxy's GIL.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chaosml.proxy",
            "--host",
            HOST,
            "--port",
            "0",
            *options,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
