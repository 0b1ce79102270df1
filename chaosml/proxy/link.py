"""One proxied TCP connection: two links (upstream, downstream), each a chain of toxic stages.

Used by chaosml.proxy.server. Mirrors Toxiproxy's link.go / toxic_collection.go:

    client --read--> [stage toxic 1] -> [stage toxic 2] -> ... --write--> upstream   (upstream link)
    client <--write-- ... <- [stage toxic 1] <--read-- upstream                      (downstream link)

Each stage is a task running one toxic's ``pipe`` between two bounded channels.
Toxics are appended at the end of a live chain; removing or updating one cancels
its stage and hands the chunk it held, plus its queued input, to the next stage,
so no byte is lost or reordered (except by toxics whose job is to lose them).
When either link ends, its destination socket is closed; the other link then
reads end-of-stream and closes too, as upstream does (no TCP half-close).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaosml.proxy.toxics import NOOP, Chunk, Toxic

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

UPSTREAM = "upstream"  # client -> upstream server
DOWNSTREAM = "downstream"  # upstream server -> client
STREAMS = (UPSTREAM, DOWNSTREAM)
READ_SIZE = 32 * 1024  # Go's io.Copy buffer
WRITER_BUFFER = 4  # chunks queued before the socket writer


@dataclass(frozen=True)
class ToxicSpec:
    """A toxic as configured through the API: the envelope plus the typed attributes."""

    name: str
    type: str
    stream: str  # upstream | downstream
    toxicity: float  # probability, drawn per connection, that the toxic applies
    toxic: Toxic

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": self.toxic.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


class Channel:
    """A bounded FIFO between two stages.

    ``force_extend`` ignores the bound (hand-over on interrupt); ``redirect`` makes
    every later ``put`` go to another channel (the stage reading this one was removed).
    """

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Chunk | None] = deque()
        self._maxsize = max(maxsize, 1)
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self.redirect: Channel | None = None

    def _changed(self) -> None:
        if self._items:
            self._readable.set()
        else:
            self._readable.clear()
        if len(self._items) < self._maxsize or self.redirect is not None:
            self._writable.set()
        else:
            self._writable.clear()

    def resolve(self) -> Channel:
        channel = self
        for _ in range(10_000):  # a chain of removed stages is never longer than this
            if channel.redirect is None:
                return channel
            channel = channel.redirect
        raise RuntimeError("redirect cycle between channels")

    async def put(self, item: Chunk | None) -> None:
        while True:
            channel = self.resolve()
            if len(channel._items) < channel._maxsize:
                channel._items.append(item)
                channel._changed()
                return
            await channel._writable.wait()

    async def get(self) -> Chunk | None:
        while not self._items:
            await self._readable.wait()
        item = self._items.popleft()
        self._changed()
        return item

    def force_extend(self, items: Iterable[Chunk | None]) -> None:
        channel = self.resolve()
        channel._items.extend(items)
        channel._changed()

    def drain(self) -> list[Chunk | None]:
        items = list(self._items)
        self._items.clear()
        self._changed()
        return items

    def redirect_to(self, target: Channel) -> None:
        self.redirect = target
        self._changed()


class Stage:
    """One toxic on one link: the Stub a toxic's ``pipe`` runs against."""

    def __init__(self, link: Link, spec: ToxicSpec, output: Channel) -> None:
        self.link = link
        self.spec = spec
        self.input = Channel(spec.toxic.buffer_size)
        self.output = output
        self.state: Any = spec.toxic.new_state()
        self.has_held = False
        self.held: Chunk | None = None
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        # Toxicity is drawn each time the stage (re)starts, as upstream's ToxicStub.Run.
        toxic = self.spec.toxic if random.random() < self.spec.toxicity else NOOP
        try:
            await toxic.pipe(self)
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken toxic must not wedge the connection
            log.exception("toxic %s failed; closing the stream", self.spec.name)
            self.close()

    async def interrupt(self) -> None:
        """Stop the running toxic; what it held stays in ``held``."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    def handover(self) -> list[Chunk | None]:
        """The held chunk (if any) then everything queued on the input, in order."""
        items: list[Chunk | None] = [self.held] if self.has_held else []
        self.has_held = False
        self.held = None
        return items + self.input.drain()

    # -- Stub -----------------------------------------------------------------
    async def recv(self) -> Chunk | None:
        chunk = await self.input.get()
        self.has_held = True
        self.held = chunk
        return chunk

    async def emit(self, chunk: Chunk) -> None:
        self.has_held = True
        self.held = chunk
        await self.output.put(chunk)
        self.has_held = False
        self.held = None

    async def emit_part(self, piece: Chunk, rest: Chunk | None) -> None:
        await self.output.put(piece)
        self.has_held = rest is not None
        self.held = rest

    def drop(self) -> None:
        self.has_held = False
        self.held = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.drop()
            self.output.force_extend([None])

    def reset(self) -> None:
        self.drop()
        self.link.conn.reset()


class Link:
    """One direction of a connection: reader -> stages -> writer."""

    def __init__(
        self,
        conn: Connection,
        stream: str,
        source: asyncio.StreamReader,
        dest: asyncio.StreamWriter,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.source = source
        self.dest = dest
        self.sink = Channel(WRITER_BUFFER)
        self.head = (
            self.sink
        )  # where the reader puts: first stage's input, or the writer's
        self.stages: list[Stage] = []
        self.reader: asyncio.Task[None] | None = None
        self.writer: asyncio.Task[None] | None = None

    def start(self, specs: Iterable[ToxicSpec]) -> None:
        for spec in specs:
            self.add(spec)
        loop = asyncio.get_running_loop()
        self.reader = loop.create_task(self._read())
        self.writer = loop.create_task(self._write())

    def tasks(self) -> list[asyncio.Task[None]]:
        found = [t for t in (self.reader, self.writer) if t is not None]
        return found + [s.task for s in self.stages if s.task is not None]

    def add(self, spec: ToxicSpec) -> None:
        """Append a toxic at the end of the chain (data already past it is not affected)."""
        if self.conn.closing:
            return
        stage = Stage(self, spec, self.sink)
        if self.stages:
            self.stages[-1].output = stage.input
        else:
            self.head = stage.input
        self.stages.append(stage)
        stage.start()

    def _index(self, name: str) -> int | None:
        for i, stage in enumerate(self.stages):
            if stage.spec.name == name:
                return i
        return None

    async def remove(self, name: str) -> None:
        i = self._index(name)
        if i is None:
            return
        stage = self.stages[i]
        await stage.interrupt()
        i = self.stages.index(stage)  # the chain may have changed while we waited
        # From here on no await: the splice is atomic for every other task.
        items = stage.handover()
        if stage.spec.toxic.closes_on_remove:
            stage.close()  # e.g. timeout: bytes were dropped, so the stream must end
        elif not stage.closed:
            stage.output.force_extend(items)
        stage.input.redirect_to(stage.output)
        if i == 0:
            self.head = stage.output
        else:
            self.stages[i - 1].output = stage.output
        del self.stages[i]

    async def update(self, spec: ToxicSpec) -> None:
        i = self._index(spec.name)
        if i is None:
            return
        stage = self.stages[i]
        await stage.interrupt()
        stage.spec = spec
        if stage.closed or self.conn.closing:
            return
        if stage.has_held:  # the interrupted toxic's chunk goes on, as upstream
            stage.output.force_extend([stage.held])
            stage.drop()
        stage.start()

    async def _read(self) -> None:
        try:
            while True:
                data = await self.source.read(READ_SIZE)
                if not data:
                    break
                await self.head.put(Chunk(data, time.monotonic()))
        except (ConnectionError, OSError):
            pass
        await self.head.put(None)

    async def _write(self) -> None:
        try:
            while True:
                chunk = await self.sink.get()
                if chunk is None:
                    break
                self.dest.write(chunk.data)
                await self.dest.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.dest.close()


class Connection:
    """A client socket, its upstream socket, and the two links between them."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        on_done: Callable[[Connection], None],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.on_done = on_done
        self.links = {
            UPSTREAM: Link(self, UPSTREAM, client[0], upstream[1]),
            DOWNSTREAM: Link(self, DOWNSTREAM, upstream[0], client[1]),
        }
        self._aborted = False
        self.closing = False  # set once teardown began: no new stage tasks after that

    async def run(self, specs: Iterable[ToxicSpec]) -> None:
        """Pump until both links ended (or the connection is aborted), then clean up."""
        specs = list(specs)
        try:
            for stream, link in self.links.items():
                link.start(s for s in specs if s.stream == stream)
            writers = [
                link.writer for link in self.links.values() if link.writer is not None
            ]
            await asyncio.wait(writers)
        finally:
            self.closing = True
            self.on_done(self)
            tasks = [t for link in self.links.values() for t in link.tasks()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (self.client[1], self.upstream[1]):
                if self._aborted or not writer.transport.is_closing():
                    writer.transport.abort()

    def abort(self) -> None:
        """Close both sockets now (proxy disabled or deleted); buffered data is discarded."""
        self._aborted = True
        self.closing = True
        for writer in (self.client[1], self.upstream[1]):
            writer.transport.abort()
        for link in self.links.values():
            for task in link.tasks():
                task.cancel()

    def reset(self) -> None:
        """Close both sockets with RST: SO_LINGER on, timeout 0, then close."""
        for writer in (self.client[1], self.upstream[1]):
            sock = writer.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
        self.abort()
