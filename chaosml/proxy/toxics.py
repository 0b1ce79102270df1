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
    """Base of every toxic: the parameters are dataclass fields, integers >= 0 (or one of ``choices``)."""

    type_name: ClassVar[str] = ""
    # Chunks the stage's input channel holds (upstream BufferSize; latency buffers 1024).
    buffer_size: ClassVar[int] = 4
    # Removing the toxic closes the connection instead of resuming the flow (upstream CleanupToxic).
    closes_on_remove: ClassVar[bool] = False
    # Time fields: a negative value is accepted (it acts as 0), as upstream.
    durations: ClassVar[frozenset[str]] = frozenset()
    # Text fields and the values each may take (chaosml extensions; Toxiproxy's attributes are numbers).
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}

    def new_state(self) -> Any:
        """Per-connection state kept across updates of the toxic (upstream StatefulToxic)."""
        return None

    def pending(self, state: Any) -> bytes:
        """Bytes the toxic took from the stream into ``state`` and has not passed on yet.

        When the toxic is removed they go on ahead of what it held, so nothing is lost.
        """
        return b""

    def attributes(self) -> dict[str, int | str]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    async def pipe(self, stub: Stub) -> None:
        """Move the stream from ``stub.recv()`` to ``stub.emit``/``emit_part``, forever.

        A removal cancels this coroutine at whatever await it is suspended on and hands on what
        the stub holds and ``pending(state)`` at once, before the cancellation is delivered: keep
        every byte taken from the stream in the stub (recv/emit) or in ``state`` across each await,
        and do not pass data on from an ``except``/``finally`` block.
        """
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
    values: dict[str, int | str] = dict(base.attributes()) if base is not None else {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in raw:
            continue
        value = raw[field.name]
        allowed = cls.choices.get(field.name)
        if allowed is not None:
            if value not in allowed:
                raise ToxicAttributesError(
                    f"attributes.{field.name}: must be one of {', '.join(allowed)}, got {value!r}"
                )
            values[field.name] = value
            continue
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


# ---------------------------------------------------------------------------- chaosml extensions
# Toxics below are chaosml's own: real Toxiproxy answers 400 "invalid toxic type" for them.


@dataclass
class _HttpState:
    buffer: bytearray = dataclasses.field(default_factory=bytearray)


def http_message_end(data: bytes | bytearray) -> int | None:
    """Where the first complete HTTP/1.x response in ``data`` ends, or None while it is incomplete.

    Framing by ``Transfer-Encoding: chunked``, else ``Content-Length``, else none for 1xx/204/304;
    a response delimited only by the end of the stream is never complete here.
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    lines = bytes(data[:head_end]).split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    body = head_end + 4
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        pos = body
        for _ in range(len(data)):  # each chunk moves pos forward
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(data[pos:eol]).split(b";")[0] or b"0", 16)
            if size == 0:
                trailer_end = data.find(b"\r\n\r\n", eol)
                return None if trailer_end < 0 else trailer_end + 4
            pos = eol + 2 + size + 2
            if pos > len(data):
                return None
        return None
    if b"content-length" in headers:
        end = body + int(headers[b"content-length"])
        return end if end <= len(data) else None
    if status < 200 or status in (204, 304):
        return body
    return None


#: bytes of an HTTP head the toxic waits for before it takes the stream for something else
MAX_HTTP_HEAD = 64 * 1024


def _may_be_http(data: bytes | bytearray) -> bool:
    """Whether ``data`` is, or can still become, the start of an HTTP response (head not overlong)."""
    if len(data) < 5:
        return b"HTTP/".startswith(bytes(data))
    return data.startswith(b"HTTP/") and (data.find(b"\r\n\r\n") >= 0 or len(data) <= MAX_HTTP_HEAD)


def _replace_body(response: bytes, body: bytes, status: int | None = None) -> bytes:
    """``response`` with a new body (Content-Length framing) and, when given, a new status."""
    head_end = response.find(b"\r\n\r\n")
    lines = response[:head_end].split(b"\r\n")
    first = lines[0]
    if status is not None:
        version = first.split(b" ", 1)[0]
        first = version + f" {status} {_REASONS.get(status, 'Error')}".encode()
    kept = [ln for ln in lines[1:] if ln.split(b":", 1)[0].strip().lower() not in (b"content-length", b"transfer-encoding")]
    if status is not None:
        kept = [ln for ln in kept if ln.split(b":", 1)[0].strip().lower() != b"content-type"]
        kept.append(b"Content-Type: application/json")
    return b"\r\n".join([first, *kept, b"Content-Length: " + str(len(body)).encode()]) + b"\r\n\r\n" + body


_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@register("http_errors")
@dataclass(frozen=True)
class HttpErrors(Toxic):
    """chaosml extension: replaces a share of the HTTP/1.x responses on the stream (use it downstream).

    Each complete response is replaced with probability ``permille``/1000: ``mode`` status: the
    ``status`` code (e.g. 503) with a small JSON error body; empty: the original status and headers
    with an empty body; malformed: the first half of the original body (never valid JSON for a JSON
    object). Framing (Content-Length / chunked) is kept right, so keep-alive connections go on.
    Bytes that are not a complete response at end of stream pass unchanged.
    """

    choices: ClassVar[dict[str, tuple[str, ...]]] = {"mode": ("status", "empty", "malformed")}
    permille: int = 0  # responses replaced per 1000
    mode: str = "status"  # status | empty | malformed
    status: int = 503  # mode status: the HTTP status code sent instead

    def new_state(self) -> Any:
        return _HttpState()

    def pending(self, state: Any) -> bytes:
        return bytes(state.buffer) if isinstance(state, _HttpState) else b""

    def replace(self, response: bytes) -> bytes:
        """The response sent instead of ``response`` (a complete HTTP response)."""
        if self.mode == "empty":
            return _replace_body(response, b"")
        if self.mode == "malformed":
            body = response[response.find(b"\r\n\r\n") + 4 :]
            return _replace_body(response, body[: len(body) // 2] if len(body) >= 2 else b"{")
        error = b'{"error": "injected by the chaosml http_errors toxic", "served_by": "http_errors"}'
        return _replace_body(response, error, self.status)

    async def pipe(self, stub: Stub) -> None:
        buf: bytearray = stub.state.buffer
        while True:
            chunk = await stub.recv()
            if chunk is None:
                if buf:
                    rest = Chunk(bytes(buf), time.monotonic())
                    buf.clear()
                    await stub.emit(rest)
                stub.close()
                return
            buf += chunk.data  # no await between taking the bytes and dropping the chunk
            stub.drop()
            while buf:
                end = http_message_end(buf) if buf.startswith(b"HTTP/") else None
                framed = end is not None
                if end is None:
                    if _may_be_http(buf):
                        break  # wait for the rest of the response
                    end = len(buf)  # not an HTTP response: the bytes pass unchanged
                response = bytes(buf[:end])
                del buf[:end]
                if framed and random.randrange(1000) < self.permille:
                    response = self.replace(response)
                await stub.emit(Chunk(response, chunk.ts))
