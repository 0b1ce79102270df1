"""The proxy's own socket layer (chaosml.proxy.sockets): batch accept, callback dial, the minimal transport; and dials through it."""

from __future__ import annotations

import asyncio
import socket

import pytest
from proxy_support import HOST, TcpServer, connect, listen_port

from chaosml.proxy import client, sockets

TIMEOUT_S = 5.0


def _free_closed_port() -> int:
    with socket.create_server((HOST, 0)) as sock:
        return int(sock.getsockname()[1])


async def _dial(port: int, timeout_s: float = TIMEOUT_S) -> tuple[socket.socket | None, OSError | None]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[socket.socket | None, OSError | None]] = loop.create_future()
    sockets.Dial(loop, socket.AF_INET, (HOST, port), timeout_s, lambda s, e: done.set_result((s, e)))
    return await asyncio.wait_for(done, TIMEOUT_S)


def test_dial_connects_and_reports_refusal() -> None:
    async def main() -> None:
        with socket.create_server((HOST, 0)) as server:
            sock, error = await _dial(server.getsockname()[1])
            assert error is None and sock is not None
            assert sock.getpeername() == server.getsockname()
            sock.close()
        sock, error = await _dial(_free_closed_port())
        assert sock is None and isinstance(error, ConnectionRefusedError)

    asyncio.run(main())


def test_dial_cancel_calls_nothing_and_closes() -> None:
    async def main() -> None:
        called: list[object] = []
        with socket.create_server((HOST, 0)) as server:
            dial = sockets.Dial(
                asyncio.get_running_loop(), socket.AF_INET, server.getsockname(), TIMEOUT_S,
                lambda s, e: called.append((s, e)),
            )
            dial.cancel()
            await asyncio.sleep(0.05)
        assert called == []

    asyncio.run(main())


def test_listener_accepts_every_pending_connection_in_one_event() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        socks = await sockets.listen(HOST, 0)
        accepted: list[socket.socket] = []
        listener = sockets.Listener(loop, socks, accepted.append)
        port = socks[0].getsockname()[1]
        clients = [socket.create_connection((HOST, port), TIMEOUT_S) for _ in range(5)]
        try:
            for _ in range(100):  # bounded: 5 s at most
                if len(accepted) == 5:
                    break
                await asyncio.sleep(0.05)
            assert len(accepted) == 5
            assert all(not s.getblocking() for s in accepted)
            assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in accepted)
        finally:
            listener.close()
            for sock in [*clients, *accepted]:
                sock.close()
        with pytest.raises(OSError):
            socket.create_connection((HOST, port), 1).close()

    asyncio.run(main())


class _Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> bool:
        self.events.append("eof")
        return True

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(None)


def test_transport_back_pressure_then_close_after_the_buffer_is_sent() -> None:
    """Above the high-water mark the protocol is paused; close() still delivers every byte, then EOF."""
    payload = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than the socket buffers hold

    async def main() -> None:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        proto = _Recorder()
        transport = sockets.SocketTransport(loop, left, proto)
        transport.write(payload)
        assert proto.events == ["made", "pause"]
        assert transport.get_write_buffer_size() > 0
        transport.close()
        transport.write(b"after close")  # dropped, as after asyncio's close
        received = bytearray()
        for _ in range(100_000):  # bounded; each turn reads what is there
            try:
                chunk = right.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not chunk:
                break
            received += chunk
        right.close()
        await asyncio.wait_for(proto.lost, TIMEOUT_S)
        assert received == payload
        assert proto.events == ["made", "pause", "resume", "lost"]

    asyncio.run(main())


def test_transport_reads_eof_and_abort_loses_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        left.setblocking(False)
        proto = _Recorder()
        transport = sockets.SocketTransport(loop, left, proto)
        right.sendall(b"hello")
        right.shutdown(socket.SHUT_WR)
        for _ in range(100):
            if "eof" in proto.events:
                break
            await asyncio.sleep(0.02)
        assert bytes(proto.data) == b"hello"
        transport.abort()
        transport.abort()
        transport.close()
        await asyncio.wait_for(proto.lost, TIMEOUT_S)
        await asyncio.sleep(0.02)
        assert proto.events == ["made", "eof", "lost"]
        assert left.fileno() == -1  # closed
        right.close()

    asyncio.run(main())


def test_upstream_by_name_is_dialled(api: str, echo_server: TcpServer) -> None:
    """A host name (not numeric) goes through the lookup path; the data still flows."""
    proxy = client.create_proxy(api, "named", f"localhost:{echo_server.port}")
    with connect(listen_port(proxy)) as sock:
        sock.sendall(b"ping")
        assert sock.recv(4) == b"ping"


def test_refused_upstream_closes_the_client_and_the_proxy_keeps_serving(
    api: str, echo_server: TcpServer
) -> None:
    proxy = client.create_proxy(api, "down", f"{HOST}:{_free_closed_port()}")
    port = listen_port(proxy)
    for _ in range(3):
        with connect(port) as sock:
            sock.sendall(b"x")
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
    client.update_proxy(api, "down", upstream=echo_server.address)
    with connect(listen_port(client.get_proxy(api, "down"))) as sock:
        sock.sendall(b"back")
        assert sock.recv(4) == b"back"


def test_a_failing_protocol_closes_its_connection() -> None:
    """As asyncio's transport: an exception in data_received ends the connection instead of wedging it."""

    class Broken(_Recorder):
        def data_received(self, data: bytes) -> None:
            raise ValueError("broken")

    async def main() -> None:
        left, right = socket.socketpair()
        left.setblocking(False)
        proto = Broken()
        sockets.SocketTransport(asyncio.get_running_loop(), left, proto)
        right.sendall(b"x")
        await asyncio.wait_for(proto.lost, TIMEOUT_S)
        right.settimeout(TIMEOUT_S)
        assert right.recv(1) == b""  # closed on our side
        right.close()

    asyncio.run(main())


def test_deleting_a_proxy_closes_clients_whose_dial_is_still_pending(api: str) -> None:
    """A client accepted while its upstream dial hangs is closed when the proxy goes, not left open."""
    with socket.socket() as stalled:  # backlog full: further SYNs are dropped, so a dial hangs
        stalled.bind((HOST, 0))
        stalled.listen(0)
        fillers = []
        for _ in range(4):  # fill the accept queue (its length is backlog + 1 on Linux)
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(stalled.getsockname())
            fillers.append(filler)
        try:
            proxy = client.create_proxy(api, "stalled", f"{HOST}:{stalled.getsockname()[1]}")
            with connect(listen_port(proxy), timeout=3.0) as sock:
                sock.sendall(b"x")
                client.delete_proxy(api, "stalled")
                try:
                    assert sock.recv(1) == b""  # closed by the proxy
                except ConnectionResetError:
                    pass
        finally:
            for filler in fillers:
                filler.close()
