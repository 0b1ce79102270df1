"""A minimal keep-alive HTTP/1.1 endpoint for the load-driver benchmark: ``python -m benchmarks.endpoint``.

Answers every request with the same small JSON body (the fields the load driver records), on
one asyncio event loop with no framework, so it costs far less CPU per request than the load
driver and the driver is what the benchmark measures. Prints ``listening <port>`` once ready.
Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio

from benchmarks.common import serve_main, serve_until_signalled

BODY = b'{"served_by":"primary","prediction":1,"confidence":0.97,"model_version":"bench","replica":"bench-0"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
MAX_HEADER_BYTES = 64 * 1024


class _Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buf = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        for _ in range(10_000):  # bounded: pipelined requests in one read
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEADER_BYTES:
                    self.transport.close()
                return
            head = bytes(self.buf[:end]).lower()
            length = 0
            i = head.find(b"content-length:")
            if i >= 0:
                j = head.find(b"\r\n", i)
                length = int(head[i + 15 : j if j >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            del self.buf[: end + 4 + length]
            self.transport.write(RESPONSE)


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Http, host, port, backlog=1024)
    await serve_until_signalled(server)


def main() -> None:
    serve_main(__doc__, _serve)


if __name__ == "__main__":
    main()
