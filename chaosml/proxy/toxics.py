"""The toxics: one small frozen class per fault type, registered by name; used by chaosml.proxy.link.

Semantics follow Toxiproxy 2.x (toxics/*.go). A toxic's fields are its JSON
``attributes`` (units in the comments); ``pipe`` moves chunks from a stage's input
to its output and may delay, drop, slice, truncate or close the stream.

Decoding is two-step, as upstream: the envelope (name, type, stream, toxicity) is
read by the server, then :func:`decode_attributes` structures the attributes into
the class registered under ``type``. A negative time (a field listed in
``durations``) is accepted with a warning, as Toxiproxy accepts it (its timers fire
at once); a negative rate, size or byte count is refused, because Toxiproxy panics
on those (negative slice bounds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(slots=True)
class Chunk:
    """Bytes read from one socket, stamped with the monotonic time they were read."""

    data: bytes
    ts: float


class Stub(Protocol):
    """What a toxic sees of the stage it runs on (one toxic, one connection, one direction)."""

    state: Any

    async def recv(self) -> Chunk | None:
        """Next chunk, or None at end of stream; the chunk is 'held' until emitted or dropped."""

    async def emit(self, chunk: Chunk) -> None:
        """Pass a chunk on; it stays held (forwarded on interrupt) until it is accepted."""

    async def emit_part(self, piece: Chunk, rest: Chunk | None) -> None:
        """Pass a piece on; ``rest`` becomes the held remainder."""

    def drop(self) -> None:
        """Forget the held chunk (its bytes are lost)."""

    def close(self) -> None:
        """End the stream downstream of this stage (the connection then closes)."""

    def reset(self) -> None:
        """Close both sockets of the connection with RST (SO_LINGER 0)."""


log = logging.getLogger(__name__)


class ToxicAttributesError(ValueError):
    """An attribute has the wrong JSON type or an out-of-range value."""


TOXICS: dict[str, type[Toxic]] = {}


def register(type_name: str) -> Any:
    """Class decorator: make a toxic class known under ``type_name``."""

    def wrap(cls: type[Toxic]) -> type[Toxic]:
        cls.type_name = type_name
        TOXICS[type_name] = cls
        return cls

    return wrap


class Toxic:
    """Base of every toxic: the parameters are dataclass fields, all integers >= 0."""

    type_name: ClassVar[str] = ""
    # Chunks the stage's input channel holds (upstream BufferSize; latency buffers 1024).
    buffer_size: ClassVar[int] = 4
    # Removing the toxic closes the connection instead of resuming the flow (upstream CleanupToxic).
    closes_on_remove: ClassVar[bool] = False
    # Time fields: a negative value is accepted (it acts as 0), as upstream.
    durations: ClassVar[frozenset[str]] = frozenset()

    def new_state(self) -> Any:
        """Per-connection state kept across updates of the toxic (upstream StatefulToxic)."""
        return None

    def attributes(self) -> dict[str, int]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    async def pipe(self, stub: Stub) -> None:
        raise NotImplementedError


def decode_attributes(cls: type[Toxic], raw: Any, base: Toxic | None = None) -> Toxic:
    """Structure JSON ``attributes`` into ``cls``; missing fields keep ``base``'s values (or 0).

    Unknown keys are ignored, as Go's encoding/json does.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ToxicAttributesError(
            f"attributes: expected an object, got {_json_type(raw)}"
        )
    values: dict[str, int] = dict(base.attributes()) if base is not None else {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in raw:
            continue
        value = raw[field.name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToxicAttributesError(
                f"attributes.{field.name}: expected an integer, got {_json_type(value)}"
            )
        if value < 0 and field.name not in cls.durations:
            raise ToxicAttributesError(
                f"attributes.{field.name}: must be >= 0, got {value}"
            )
        if value < 0:
            log.warning(
                "%s toxic: attributes.%s = %d is negative; accepted as Toxiproxy does"
                " (acts as 0)",
                cls.type_name,
                field.name,
                value,
            )
        values[field.name] = value
    return cls(**values)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@register("noop")
@dataclass(frozen=True)
class Noop(Toxic):
    """Passes data through unchanged; what a stage runs when toxicity says 'not this time'."""

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            await stub.emit(chunk)


NOOP = Noop()


@register("latency")
@dataclass(frozen=True)
class Latency(Toxic):
    """Delays each chunk by latency +/- jitter, measured from when it was read (pipelined)."""

    buffer_size: ClassVar[int] = 1024
    durations: ClassVar[frozenset[str]] = frozenset({"latency", "jitter"})
    latency: int = 0  # ms
    jitter: int = 0  # ms

    def delay_s(self) -> float:
        delay = self.latency
        if self.jitter > 0:
            delay += (
                random.randrange(self.jitter * 2) - self.jitter
            )  # Go: rand.Int63n(2j) - j
        return delay / 1000.0

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            sleep = self.delay_s() - (time.monotonic() - chunk.ts)
            if sleep > 0:
                await asyncio.sleep(sleep)
            chunk.ts += sleep  # a later latency toxic adds its full delay on top
            await stub.emit(chunk)


@register("bandwidth")
@dataclass(frozen=True)
class Bandwidth(Toxic):
    """Limits throughput; chunks bigger than 100 ms worth are sent in 100 ms slices.

    Each piece is sent at an absolute deadline (bytes so far / rate), so timer
    lateness never accumulates; time spent idle waiting for data earns no credit.
    """

    rate: int = 0  # KB/s (1 KB = 1000 bytes, as upstream); 0 = nothing gets through

    async def pipe(self, stub: Stub) -> None:
        deadline = time.monotonic()  # when the bytes emitted so far are due
        while True:
            waited_from = time.monotonic()
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            if self.rate <= 0:
                # Upstream loops forever sending empty slices: the data never arrives.
                await asyncio.Event().wait()
            now = time.monotonic()
            # Idle time is not credit; lateness of the last send (at most a slice) is.
            deadline = max(deadline + (now - waited_from), now - 0.1)
            bytes_per_s = self.rate * 1000.0
            slice_size = self.rate * 100
            data = chunk.data
            while len(data) > slice_size:
                deadline += slice_size / bytes_per_s
                await _sleep_until(deadline)
                rest = Chunk(data[slice_size:], chunk.ts)
                await stub.emit_part(Chunk(data[:slice_size], chunk.ts), rest)
                data = rest.data
            deadline += len(data) / bytes_per_s
            await _sleep_until(deadline)
            await stub.emit(Chunk(data, chunk.ts))


async def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


@register("slow_close")
@dataclass(frozen=True)
class SlowClose(Toxic):
    """Delays the close of the stream (the FIN) by ``delay``."""

    durations: ClassVar[frozenset[str]] = frozenset({"delay"})
    delay: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                await asyncio.sleep(self.delay / 1000.0)
                stub.close()
                return
            await stub.emit(chunk)


@register("timeout")
@dataclass(frozen=True)
class Timeout(Toxic):
    """Drops all data; closes the connection after ``timeout`` (0: never, until removed).

    As upstream (since 2.1.1, PR #168): data is dropped, not delayed, and removing the
    toxic closes the connection, because the stream has lost bytes.
    """

    closes_on_remove: ClassVar[bool] = True
    durations: ClassVar[frozenset[str]] = frozenset({"timeout"})
    timeout: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        try:
            async with asyncio.timeout(
                self.timeout / 1000.0 if self.timeout > 0 else None
            ):
                while True:
                    chunk = await stub.recv()
                    if chunk is None:
                        break
                    stub.drop()
        except TimeoutError:
            pass
        stub.close()


@register("reset_peer")
@dataclass(frozen=True)
class ResetPeer(Toxic):
    """On the first data (or end of stream), waits ``timeout`` then resets both sockets (RST)."""

    durations: ClassVar[frozenset[str]] = frozenset({"timeout"})
    timeout: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        await stub.recv()
        stub.drop()
        await asyncio.sleep(self.timeout / 1000.0)
        stub.reset()


@register("slicer")
@dataclass(frozen=True)
class Slicer(Toxic):
    """Slices each chunk into pieces of about average_size +/- size_variation bytes."""

    durations: ClassVar[frozenset[str]] = frozenset({"delay"})
    average_size: int = 0  # bytes
    size_variation: int = 0  # bytes, should be smaller than average_size
    delay: int = 0  # µs between pieces

    def bounds(self, size: int) -> list[tuple[int, int]]:
        """Piece boundaries of a chunk of ``size`` bytes (upstream's recursive halving)."""
        out: list[tuple[int, int]] = []
        todo = [(0, size)]
        average = max(self.average_size, 1)
        for _ in range(2 * size + 1):  # each split makes progress: at most 2*size steps
            if not todo:
                break
            start, end = todo.pop()
            if (end - start) - average <= self.size_variation:
                out.append((start, end))
                continue
            variation = 0
            if self.size_variation > 0:
                variation = (
                    random.randrange(self.size_variation * 2) - self.size_variation
                )
            mid = min(max(start + (end - start) // 2 + variation, start + 1), end - 1)
            todo.append((mid, end))
            todo.append((start, mid))
        return out

    async def pipe(self, stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            data = chunk.data
            for start, end in self.bounds(len(data)):
                rest = Chunk(data[end:], chunk.ts) if end < len(data) else None
                await stub.emit_part(Chunk(data[start:end], chunk.ts), rest)
                await asyncio.sleep(self.delay / 1_000_000.0)


@dataclass
class _LimitState:
    transmitted: int = 0


@register("limit_data")
@dataclass(frozen=True)
class LimitData(Toxic):
    """Passes ``bytes`` bytes, then closes the connection."""

    bytes: int = 0  # bytes

    def new_state(self) -> Any:
        return _LimitState()

    async def pipe(self, stub: Stub) -> None:
        state: _LimitState = stub.state
        while True:
            chunk = await stub.recv()
            if chunk is None:
                stub.close()
                return
            remaining = max(self.bytes - state.transmitted, 0)
            if remaining < len(chunk.data):
                chunk = Chunk(chunk.data[:remaining], chunk.ts)
            if chunk.data:
                await stub.emit(chunk)
                state.transmitted += len(chunk.data)
            else:
                stub.drop()
            if self.bytes - state.transmitted <= 0:
                stub.close()
                return
