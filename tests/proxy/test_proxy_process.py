"""The REST API in its own process (``python -m chaosml.proxy``): it ends with the proxy, and the proxy with it; the control socket's framing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import psutil
import pytest
from proxy_support import HOST, TcpServer, connect, listen_port, round_trip

from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.proxy.control import frame, unframe

WAIT_S = 15.0  # bound on every wait for a process to end (a loaded CI machine)


@contextmanager
def proxy_cli() -> Iterator[tuple[subprocess.Popen[str], str, psutil.Process]]:
    """``python -m chaosml.proxy`` on a free port: (process, API URL, its API child)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.proxy", "--host", HOST, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://" in line, line
        children = psutil.Process(proc.pid).children()
        assert len(children) == 1, children
        assert "chaosml.proxy.api" in children[0].cmdline()
        yield proc, line.rsplit(" ", 1)[1].strip(), children[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(WAIT_S)
        assert proc.stdout is not None
        proc.stdout.close()


def gone(process: psutil.Process) -> bool:
    """Wait (bounded) until ``process`` has ended; True if it did."""
    try:
        process.wait(WAIT_S)
    except psutil.TimeoutExpired:
        process.kill()
        return False
    return True


def test_the_api_is_served_by_a_child_that_does_not_carry_the_data(
    echo_server: TcpServer,
) -> None:
    with proxy_cli() as (proc, api, child):
        port = listen_port(client.create_proxy(api, "echo", echo_server.address))
        client.add_toxic(api, "echo", "latency", attributes={"latency": 0})
        with connect(port) as sock:
            round_trip(sock)
        # The proxy's port belongs to the parent (the data path), not to the API child.
        ports = {c.laddr.port for c in psutil.Process(proc.pid).net_connections()}
        assert port in ports
        assert port not in {c.laddr.port for c in child.net_connections()}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0
        assert gone(child)


def test_sigkill_of_the_proxy_ends_its_api_process() -> None:
    with proxy_cli() as (proc, api, child):
        assert client.version(api)
        proc.kill()
        proc.wait(WAIT_S)
        assert gone(child)
        with pytest.raises(ToxiproxyError) as err:
            client.version(api, timeout=2.0)
        assert err.value.status == 0  # nobody listens any more


def test_when_the_api_process_dies_the_proxy_stops_with_status_3(
    echo_server: TcpServer,
) -> None:
    with proxy_cli() as (proc, api, child):
        port = listen_port(client.create_proxy(api, "echo", echo_server.address))
        child.kill()
        assert proc.wait(WAIT_S) == 3
        with pytest.raises(OSError):  # its proxies are closed too: nothing left behind
            connect(port).close()


def test_frames_split_anywhere_come_out_whole_and_in_order() -> None:
    messages = [(1, "toxic_create", ("echo", b"{}")), (2, True, {"a": [1]}), (3, False, ("x", 404))]
    stream = b"".join(frame(m) for m in messages)
    for cut in range(len(stream) + 1):
        buffer = bytearray(stream[:cut])
        got = unframe(buffer)
        buffer += stream[cut:]
        got += unframe(buffer)
        assert got == messages
        assert buffer == b""


def test_a_partial_frame_stays_in_the_buffer() -> None:
    data = frame((7, "proxies", ()))
    buffer = bytearray(data[:-1])
    assert unframe(buffer) == []
    assert buffer == data[:-1]
