"""A round-robin TCP front for a user's service replicas (like a kubernetes Service); run as ``python -m chaosml.targets.front``.

Started by :mod:`chaosml.targets.services` when a custom stack's entry service has no gateway of its
own. Each accepted connection goes to the next backend that is ready; readiness is probed on each
backend's own health URL every 200 ms (a killed replica leaves the rotation as soon as its probe
fails, and comes back when it answers again, as endpoints do). With no ready backend, connections go
round-robin anyway, so clients see the errors. Bytes are copied both ways unchanged: keep-alive
connections stay on one replica until either side closes.

Usage: ``python -m chaosml.targets.front --port P --backend 127.0.0.1:A=http://127.0.0.1:B/health ...``
(the address to connect to, then the URL that says it is ready: ``http://...`` or ``tcp://host:port``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import threading
import time

from chaosml.targets.supervisor import probe

PROBE_INTERVAL_S = 0.2
CONNECT_TIMEOUT_S = 1.0
CHUNK = 65536


class Backend:
    def __init__(self, spec: str) -> None:
        addr, _, health = spec.partition("=")
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"backend {spec!r}: expected HOST:PORT=HEALTH_URL")
        self.host, self.port = host, int(port)
        self.health = health or f"tcp://{addr}"
        self.ready = False


class Front:
    def __init__(self, backends: list[Backend]) -> None:
        self.backends = backends
        self._next = 0
        self._stop = threading.Event()

    def probe_forever(self) -> None:
        while not self._stop.is_set():
            for b in self.backends:
                b.ready = probe(b.health, timeout_s=0.5)
            self._stop.wait(PROBE_INTERVAL_S)

    def order(self) -> list[Backend]:
        """Backends to try for one connection: ready ones in round-robin order, else all of them."""
        n = len(self.backends)
        start = self._next
        self._next = (self._next + 1) % n
        rotated = [self.backends[(start + k) % n] for k in range(n)]
        ready = [b for b in rotated if b.ready]
        return ready or rotated

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for b in self.order():  # bounded: each backend at most once
            try:
                upstream = await asyncio.wait_for(asyncio.open_connection(b.host, b.port), CONNECT_TIMEOUT_S)
                break
            except (TimeoutError, OSError):
                continue
        if upstream is None:
            writer.close()
            return
        ur, uw = upstream
        await asyncio.gather(self._pipe(reader, uw), self._pipe(ur, writer))

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await src.read(CHUNK)
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                dst.close()


async def _serve(port: int, front: Front) -> None:
    server = await asyncio.start_server(front.handle, "127.0.0.1", port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaosml.targets.front", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--backend", action="append", required=True, help="HOST:PORT=HEALTH_URL (repeat)")
    args = ap.parse_args(argv)
    front = Front([Backend(s) for s in args.backend])
    threading.Thread(target=front.probe_forever, name="probe", daemon=True).start()
    print(f"front on 127.0.0.1:{args.port} -> {len(front.backends)} backends ({time.strftime('%H:%M:%S')})", flush=True)
    asyncio.run(_serve(args.port, front))
    front._stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(main())
