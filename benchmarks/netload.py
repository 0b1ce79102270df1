"""TCP echo/source server and clients for the fault-proxy benchmark; ``python -m benchmarks.netload`` serves.

Protocol (first byte of a connection): ``E`` = echo everything that follows; ``S`` + 8-byte
big-endian length = the server sends that many bytes, then closes. The server runs in its own
process (prints ``listening <port>``); the clients below run in the benchmark process.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

from benchmarks.common import serve_main, serve_until_signalled

CHUNK = 64 * 1024
_ZEROS = bytes(CHUNK)


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        mode = await reader.readexactly(1)
        if mode == b"E":
            for _ in range(100_000_000):
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        elif mode == b"S":
            (left,) = struct.unpack(">Q", await reader.readexactly(8))
            while left > 0:
                n = min(left, CHUNK)
                writer.write(_ZEROS[:n])
                await writer.drain()
                left -= n
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _serve(host: str, port: int) -> None:
    server = await asyncio.start_server(_handle, host, port, backlog=256)
    await serve_until_signalled(server)


# ------------------------------------------------------------------------- clients
async def _rr_conn(host: str, port: int, size: int, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * size
    writer.write(b"E")
    n = 0
    try:
        for _ in range(100_000_000):
            if time.perf_counter() >= until:
                break
            writer.write(payload)
            await reader.readexactly(size)
            n += 1
    finally:
        counts.append(n)
        writer.close()


async def _round_trips(host: str, port: int, conns: int, seconds: float, size: int) -> dict[str, float]:
    counts: list[int] = []
    start = time.perf_counter()
    until = start + seconds
    await asyncio.wait_for(
        asyncio.gather(*(_rr_conn(host, port, size, until, counts) for _ in range(conns))), seconds + 30
    )
    elapsed = time.perf_counter() - start
    total = sum(counts)
    return {"round_trips": total, "seconds": elapsed, "rps": total / elapsed}


def round_trip_throughput(port: int, *, conns: int, seconds: float, size: int = 64,
                          host: str = "127.0.0.1") -> dict[str, float]:
    """Request/response round trips per second over ``conns`` concurrent keep-alive connections."""
    return asyncio.run(_round_trips(host, port, conns, seconds, size))


def download(port: int, nbytes: int, *, host: str = "127.0.0.1", timeout_s: float = 120.0) -> dict[str, float]:
    """Ask the server for ``nbytes`` and read them all; seconds from request to last byte."""
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        start = time.perf_counter()
        sock.sendall(b"S" + struct.pack(">Q", nbytes))
        got = 0
        first: float | None = None
        deadline = start + timeout_s
        while got < nbytes and time.perf_counter() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                break
            if first is None:
                first = time.perf_counter()
            got += len(data)
        end = time.perf_counter()
    if got != nbytes:
        raise RuntimeError(f"download got {got} of {nbytes} bytes")
    return {"bytes": got, "seconds": end - start, "first_byte_s": (first or end) - start,
            "bytes_per_s": got / (end - start)}


def main() -> None:
    serve_main(__doc__, _serve)


if __name__ == "__main__":
    main()
