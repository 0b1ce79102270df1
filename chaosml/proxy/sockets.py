"""The proxy's sockets without asyncio's server and transport layers: batch accept, callback dial, a minimal transport.

Per new connection asyncio's ``create_server`` runs an accept task, a transport and a
waiter future, and ``create_connection`` a coroutine, a name lookup and another
transport; that was most of the proxy's Python work per connection. Here a listening
socket's reader accepts every pending connection in one go, a numeric upstream is
dialled with ``connect_ex`` and one writer callback (no task), and :class:`SocketTransport`
is the subset of ``asyncio.Transport`` the links use, driven by ``loop.add_reader`` /
``add_writer`` (any loop that has them: the stdlib selector loop, uvloop).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

RECV_SIZE = 256 * 1024  # asyncio's own read size
HIGH_WATER = 64 * 1024  # asyncio's default write-buffer limits
LOW_WATER = 16 * 1024
ACCEPT_BATCH = 256  # connections accepted per readiness event at most
ACCEPT_RETRY_S = 1.0  # out of file descriptors: stop accepting this long (as asyncio)
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def numeric_family(host: str) -> int | None:
    """AF_INET / AF_INET6 for a numeric address, None for a name that needs a lookup."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return family
    return None


def _nodelay(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class SocketTransport(asyncio.Transport):
    """A connected non-blocking TCP socket driven by the loop's reader/writer callbacks.

    Semantics follow asyncio's socket transport where the links depend on them:
    ``connection_made`` before the first read, ``pause_writing`` above HIGH_WATER
    buffered bytes and ``resume_writing`` at LOW_WATER, ``close`` after the buffer is
    sent, ``abort`` at once, and ``connection_lost`` exactly once, in a later loop turn.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.Protocol,
    ) -> None:
        super().__init__({"socket": sock})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._buffer = bytearray()
        self._reading = False  # our reader is registered
        self._paused = False  # the protocol paused reading
        self._eof = False  # the peer ended its stream
        self._closing = False
        self._finished = False  # connection_lost is scheduled or done
        self._writer = False  # our writer is registered
        self._protocol_paused = False  # pause_writing was sent
        protocol.connection_made(self)
        self._update_reader()

    # -- reading ----------------------------------------------------------------------
    def _update_reader(self) -> None:
        want = not (self._paused or self._eof or self._closing)
        if want and not self._reading:
            self._loop.add_reader(self._fd, self._read_ready)
            self._reading = True
        elif not want and self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            self._update_reader()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._update_reader()

    def _read_ready(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        try:
            if data:
                self._protocol.data_received(data)
                return
            self._eof = True
            self._update_reader()
            if not self._protocol.eof_received():
                self.close()
        except Exception as exc:  # as asyncio's transport: a failing protocol ends its connection
            log.exception("proxy connection: protocol failed; closing the socket")
            self._fatal(exc)

    # -- writing ----------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        if not self._buffer:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._loop.add_writer(self._fd, self._write_ready)
            self._writer = True
        self._buffer += data
        if not self._protocol_paused and len(self._buffer) > HIGH_WATER:
            self._protocol_paused = True
            self._protocol.pause_writing()

    def _write_ready(self) -> None:
        try:
            sent = self._sock.send(self._buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del self._buffer[:sent]
        if self._protocol_paused and len(self._buffer) <= LOW_WATER:
            self._protocol_paused = False
            self._protocol.resume_writing()
        if not self._buffer:
            self._stop_writer()
            if self._closing:
                self._finish(None)

    def _stop_writer(self) -> None:
        if self._writer:
            self._loop.remove_writer(self._fd)
            self._writer = False

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def can_write_eof(self) -> bool:
        return False

    # -- closing ----------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; close once the buffered bytes are sent."""
        if self._closing:
            return
        self._closing = True
        self._update_reader()
        if not self._buffer:
            self._finish(None)

    def abort(self) -> None:
        """Close now; buffered bytes are discarded."""
        self._fatal(None)

    def _fatal(self, exc: Exception | None) -> None:
        self._closing = True
        self._buffer.clear()
        self._update_reader()
        self._finish(exc)

    def _finish(self, exc: Exception | None) -> None:
        if self._finished:
            return
        self._finished = True
        self._stop_writer()
        self._loop.call_soon(self._lost, exc)

    def _lost(self, exc: Exception | None) -> None:
        self._sock.close()
        self._protocol.connection_lost(exc)


class Listener:
    """Listening sockets whose reader accepts every pending connection and hands each one over."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        socks: list[socket.socket],
        on_socket: Callable[[socket.socket], None],
    ) -> None:
        self._loop = loop
        self.sockets = socks
        self._on_socket = on_socket
        self._closed = False
        for sock in socks:
            loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    log.error("accept on %s: %s; retrying in %ss", sock.getsockname(), exc, ACCEPT_RETRY_S)
                    self._loop.remove_reader(sock.fileno())
                    self._loop.call_later(ACCEPT_RETRY_S, self._resume, sock)
                    return
                continue  # e.g. ECONNABORTED: that client is gone, the next may be there
            conn.setblocking(False)
            _nodelay(conn)
            self._on_socket(conn)

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()


async def listen(host: str, port: int, backlog: int = socket.SOMAXCONN) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for host:port (every address of a name, as asyncio.create_server)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks


class Dial:
    """A non-blocking connect to a numeric address: one writer callback and one timer, no task.

    Calls ``on_done(sock, None)`` once connected or ``on_done(None, error)`` on failure or
    after ``timeout_s``; ``cancel`` closes the socket and calls neither. Raises OSError when
    no socket can be made (e.g. out of file descriptors).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        family: int,
        address: tuple[str, int],
        timeout_s: float,
        on_done: Callable[[socket.socket | None, OSError | None], None],
    ) -> None:
        self._loop = loop
        self._on_done: Callable[[socket.socket | None, OSError | None], None] | None = on_done
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._timer: asyncio.TimerHandle | None = None
        self._writer = False
        try:
            self._sock.setblocking(False)
            _nodelay(self._sock)
            err = self._sock.connect_ex(address)
        except OSError as exc:
            loop.call_soon(self._fail, exc)
            return
        if err == 0:
            loop.call_soon(self._connected)
        elif err in (errno.EINPROGRESS, errno.EINTR, errno.EAGAIN):
            loop.add_writer(self._sock.fileno(), self._connected)
            self._writer = True
            self._timer = loop.call_later(timeout_s, self._timed_out)
        else:
            loop.call_soon(self._fail, OSError(err, f"connect {address}: {errno.errorcode.get(err, err)}"))

    def _release(self) -> Callable[[socket.socket | None, OSError | None], None] | None:
        on_done, self._on_done = self._on_done, None
        if self._writer:
            self._loop.remove_writer(self._sock.fileno())
            self._writer = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return on_done

    def _connected(self) -> None:
        on_done = self._release()
        if on_done is None:
            return
        err = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._sock.close()
            on_done(None, OSError(err, f"connect: {errno.errorcode.get(err, err)}"))
        else:
            on_done(self._sock, None)

    def _fail(self, exc: OSError) -> None:
        on_done = self._release()
        if on_done is not None:
            self._sock.close()
            on_done(None, exc)

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError("connect: timed out"))

    def cancel(self) -> None:
        if self._release() is not None:
            self._sock.close()


def wrap(sock: socket.socket, protocol: asyncio.Protocol) -> SocketTransport:
    """``sock`` (connected, non-blocking) as a transport of ``protocol``; reading starts now."""
    return SocketTransport(asyncio.get_running_loop(), sock, protocol)
