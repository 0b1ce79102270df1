"""One proxied TCP connection: two sockets (asyncio Protocols) and two links between them.

Used by chaosml.proxy.server. Mirrors Toxiproxy's link.go / toxic_collection.go:

    client --read--> [stage toxic 1] -> [stage toxic 2] -> ... --write--> upstream   (upstream link)
    client <--write-- ... <- [stage toxic 1] <--read-- upstream                      (downstream link)

A link without toxics is on the fast path: ``data_received`` writes straight to the
peer transport, and back-pressure is pause/resume_reading driven by the peer's
pause/resume_writing; no task, stream or chunk object per read. Adding a toxic
switches the link to the toxic chain: each stage is a task running one toxic's
``pipe`` between two bounded channels, and a writer task empties the last channel
into the peer. Bytes already written stay ahead of the chain's, so nothing is
reordered. When the last toxic is removed, the writer flushes what the chain still
holds and then hands the link back to the fast path.

Toxics are appended at the end of a live chain; removing or updating one cancels
its stage and hands the chunk it held, plus its queued input, to the next stage,
so no byte is lost or reordered (except by toxics whose job is to lose them).
When either link ends, its destination socket is closed; the other link then
reads end-of-stream and closes too, as upstream does (no TCP half-close).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from chaosml.proxy.toxics import NOOP, Chunk, Toxic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

UPSTREAM = "upstream"  # client -> upstream server
DOWNSTREAM = "downstream"  # upstream server -> client
STREAMS = (UPSTREAM, DOWNSTREAM)
READ_SIZE = 32 * 1024  # Go's io.Copy buffer: the largest chunk a toxic sees
WRITER_BUFFER = 4  # chunks queued before the socket writer
WAKE = Chunk(b"", 0.0)  # an empty chunk the writer skips: wakes it to re-check its mode


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
        self._on_writable: list[Callable[[], None]] = []

    def _changed(self) -> None:
        if self._items:
            self._readable.set()
        else:
            self._readable.clear()
        if len(self._items) < self._maxsize or self.redirect is not None:
            self._writable.set()
            if self._on_writable:
                callbacks, self._on_writable = self._on_writable, []
                for callback in callbacks:
                    callback()
        else:
            self._writable.clear()

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self._maxsize and self.redirect is None

    def when_writable(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, the next time the channel has room (or is redirected)."""
        self._on_writable.append(callback)

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


#: A link's sink and head before its first toxic: never read or written (the fast path).
_NO_CHANNEL = Channel(1)


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
        self.removing = False  # removed: name lookups skip this stage
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
        """The held chunk (if any), the bytes the toxic kept back, then everything queued on the input, in order."""
        items: list[Chunk | None] = [self.held] if self.has_held else []
        self.has_held = False
        self.held = None
        pending = self.spec.toxic.pending(self.state)
        if pending:
            items.append(Chunk(pending, time.monotonic()))
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
        await self._put(chunk)
        self.has_held = False
        self.held = None

    async def emit_part(self, piece: Chunk, rest: Chunk | None) -> None:
        await self._put(piece)
        self.has_held = rest is not None
        self.held = rest

    async def _put(self, chunk: Chunk) -> None:
        if self.output is self.link.sink and self.link.write_through(chunk):
            return
        await self.output.put(chunk)

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


class Endpoint(asyncio.Protocol):
    """One socket of a connection: the source of one link and the destination of the other.

    Reading is paused while any reason is registered: ``wiring`` until the connection
    is set up, ``dest`` while a fast-path peer's write buffer is full, ``chain`` while
    the first toxic stage's input is full.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reading: Link | None = None  # the link this socket feeds
        self.writing: Link | None = None  # the link that writes into this socket
        self.lost = False
        self.early: list[bytes] = []  # read before wiring (some loops ignore the pause)
        self.early_eof = False
        self.writing_paused = False
        self._pauses: set[str] = set()
        self._drain_waiter: asyncio.Future[None] | None = None  # a toxic chain's writer
        self.on_lost: Callable[[], None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.pause("wiring")

    def data_received(self, data: bytes) -> None:
        if self.reading is not None:
            self.reading.feed(data)
        else:
            self.early.append(data)
            if self.transport is not None:
                self.transport.pause_reading()  # now it holds (uvloop)

    def eof_received(self) -> bool:
        if self.reading is not None:
            self.reading.feed_eof()
        else:
            self.early_eof = True
        return True  # keep the socket: the link closes it once its data is out

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_drain()
        if self.reading is not None:
            self.reading.feed_eof()
        if self.on_lost is not None:
            self.on_lost()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.writing is not None and self.writing.fast:
            self.writing.source.pause("dest")

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_drain()
        if self.writing is not None:
            self.writing.source.resume("dest")

    def _wake_drain(self) -> None:
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the links -----------------------------------------------------------
    def pause(self, reason: str) -> None:
        if not self._pauses and self.transport is not None and not self.lost:
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: str) -> None:
        if reason not in self._pauses:
            return
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.lost:
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark (or the socket is gone)."""
        if self.writing_paused and not self.lost:
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
            await waiter
        if self.lost:
            raise ConnectionResetError("connection lost")

    def close(self) -> None:
        """Close after the buffered data is sent."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def linger_zero(self) -> None:
        """Make the next close send RST (SO_LINGER on, timeout 0)."""
        sock = self.transport.get_extra_info("socket") if self.transport else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )


class Link:
    """One direction of a connection: source socket -> (fast path | stages -> writer) -> dest socket."""

    def __init__(
        self, conn: Connection, stream: str, source: Endpoint, dest: Endpoint
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.source = source
        self.dest = dest
        self.fast = True  # no toxic chain: data_received writes to dest directly
        self.eof = False  # the source has ended
        # The writer's input and where reads go in toxic mode (the first stage's input, or
        # the writer's): made with the first toxic, so a fast-path link allocates neither.
        self.sink: Channel = _NO_CHANNEL
        self.head: Channel = _NO_CHANNEL
        self.stages: list[Stage] = []
        self.writer: asyncio.Task[None] | None = None
        self._writer_waiting = False  # the writer awaits an empty sink
        self._changes: set[asyncio.Task[None]] = set()  # scheduled updates
        self._changes_lock: asyncio.Lock | None = None

    def tasks(self) -> list[asyncio.Task[None]]:
        found = [self.writer] if self.writer is not None else []
        found += list(self._changes)
        return found + [s.task for s in self.stages if s.task is not None]

    # -- data from the source socket ---------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.fast:
            self.dest.write(data)
            return
        now = time.monotonic()
        channel = self.head.resolve()
        channel.force_extend(
            Chunk(data[i : i + READ_SIZE], now) for i in range(0, len(data), READ_SIZE)
        )
        if channel.full():
            self.source.pause("chain")
            channel.when_writable(self._chain_has_room)

    def _chain_has_room(self) -> None:
        self.source.resume("chain")

    def feed_eof(self) -> None:
        if self.eof:
            return
        self.eof = True
        if self.fast:
            self.dest.close()
        else:
            self.head.resolve().force_extend([None])

    # -- toxics ----------------------------------------------------------------------
    def add(self, spec: ToxicSpec) -> None:
        """Append a toxic at the end of the chain (data already past it is not affected)."""
        if self.conn.closing or (self.fast and self.eof):
            return
        if self.sink is _NO_CHANNEL:
            self.sink = self.head = Channel(WRITER_BUFFER)
        stage = Stage(self, spec, self.sink)
        if self.stages:
            self.stages[-1].output = stage.input
        else:
            self.head = stage.input
        self.stages.append(stage)
        stage.start()
        if self.fast:
            self.fast = False
            self.source.resume("dest")  # the writer's drain carries back-pressure now
            if self.writer is None:
                self.writer = asyncio.get_running_loop().create_task(self._write())

    def _find(self, name: str) -> Stage | None:
        for stage in self.stages:
            if stage.spec.name == name and not stage.removing:
                return stage
        return None

    def remove(self, name: str) -> None:
        """Take a toxic out of the chain now; data keeps its order.

        Its task is suspended at an await (this runs on the same loop), where the stage's
        held chunk and the toxic's state are whole, and nothing is taken or put before
        it resumes (Channel.get and put move items only then); cancelled there, it hands
        everything on in the splice, so no turn has to pass first (an update of the same
        stage queued before finds it gone and does nothing).
        """
        stage = self._find(name)
        if stage is None:
            return
        stage.removing = True
        if stage.task is not None:
            stage.task.cancel()
        self._splice(stage)

    def update(self, spec: ToxicSpec) -> None:
        """Schedule a restart of the toxic ``spec.name`` with new attributes."""
        stage = self._find(spec.name)
        if stage is not None:
            self._change(functools.partial(self._update, stage, spec))

    def _change(self, change: Callable[[], Awaitable[None]]) -> None:
        # Changes run one at a time per link, in the order they were asked for; the
        # API answers once they are scheduled, so it never waits for a busy link.
        if self.conn.closing:
            return
        if self._changes_lock is None:
            self._changes_lock = asyncio.Lock()
        task = asyncio.get_running_loop().create_task(self._run_change(change))
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)

    async def _run_change(self, change: Callable[[], Awaitable[None]]) -> None:
        assert self._changes_lock is not None
        async with self._changes_lock:
            await change()

    def _splice(self, stage: Stage) -> None:
        """Take a stopped stage out of the chain, handing what it held to the next."""
        i = self.stages.index(stage)
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
        if not self.stages:
            self.sink.force_extend([WAKE])  # the writer flushes, then goes fast

    async def _update(self, stage: Stage, spec: ToxicSpec) -> None:
        await stage.interrupt()
        if stage.removing or stage not in self.stages:
            return  # removed meanwhile: the splice handed on what it held
        stage.spec = spec
        if stage.closed or self.conn.closing:
            return
        if stage.has_held:  # the interrupted toxic's chunk goes on, as upstream
            stage.output.force_extend([stage.held])
            stage.drop()
        stage.start()

    async def _write(self) -> None:
        """Empty the sink into dest until end of stream, or until the chain is gone."""
        try:
            while self.stages or len(self.sink) or self.eof:
                self._writer_waiting = True
                try:
                    chunk = await self.sink.get()
                finally:
                    self._writer_waiting = False
                if chunk is None:
                    break
                if chunk.data:
                    self.dest.write(chunk.data)
                    await self.dest.drain()
            else:
                self._go_fast()
                return
        except (ConnectionError, OSError):
            pass
        self.writer = None
        self.dest.close()

    def write_through(self, chunk: Chunk) -> bool:
        """The last stage's chunk straight into dest, when the writer waits on an empty sink
        and dest takes data: nothing is ahead of it, and the writer's wake-up turn is saved."""
        if not self._writer_waiting or len(self.sink) or self.dest.writing_paused or self.dest.lost:
            return False
        if chunk.data:
            self.dest.write(chunk.data)
        return True

    def _go_fast(self) -> None:
        # Nothing is queued and no toxic remains: reads go straight to dest again.
        self.fast = True
        self.writer = None
        if self.dest.writing_paused:
            self.source.pause("dest")
        self.source.resume("chain")


class Connection:
    """A client socket, its upstream socket, and the two links between them."""

    def __init__(
        self,
        client: Endpoint,
        upstream: Endpoint,
        on_done: Callable[[Connection], None],
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.on_done = on_done
        self.links = {
            UPSTREAM: Link(self, UPSTREAM, client, upstream),
            DOWNSTREAM: Link(self, DOWNSTREAM, upstream, client),
        }
        self.closing = False  # set once teardown began: no new stage tasks after that
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self, specs: Iterable[ToxicSpec]) -> None:
        """Wire both sockets to their links, start the toxics, and start reading."""
        for stream, link in self.links.items():
            link.source.reading = link
            link.dest.writing = link
            for spec in specs:
                if spec.stream == stream:
                    link.add(spec)
        for endpoint in (self.client, self.upstream):
            endpoint.on_lost = self._endpoint_lost
        for endpoint in (self.client, self.upstream):
            link = self.links[UPSTREAM if endpoint is self.client else DOWNSTREAM]
            for data in endpoint.early:
                link.feed(data)
            endpoint.early.clear()
            if endpoint.lost or endpoint.early_eof:
                link.feed_eof()
            endpoint.resume("wiring")
        self._endpoint_lost()

    def _endpoint_lost(self) -> None:
        if not (self.client.lost and self.upstream.lost) or self.done.done():
            return
        self.closing = True
        self.on_done(self)
        tasks = [t for link in self.links.values() for t in link.tasks()]
        for task in tasks:
            task.cancel()
        self.done.set_result(None)

    def abort(self) -> None:
        """Close both sockets now (proxy disabled or deleted); buffered data is discarded."""
        self.closing = True
        for endpoint in (self.client, self.upstream):
            endpoint.abort()
        for link in self.links.values():
            for task in link.tasks():
                task.cancel()

    def reset(self) -> None:
        """Close both sockets with RST: SO_LINGER on, timeout 0, then close."""
        for endpoint in (self.client, self.upstream):
            endpoint.linger_zero()
        self.abort()
