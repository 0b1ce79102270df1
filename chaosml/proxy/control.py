"""The control socket between the REST API frontend (api.py) and the proxies' loop (server.py): framed messages, and the loop's end, which runs each operation.

The frontend sends ``(id, op, args)`` and gets ``(id, ok, result)`` back; ``result`` is
the operation's JSON-ready value, or ``(message, status)`` of its ApiError. Operations
that do not await run in the read callback itself, so a change waits for one turn of
the proxies' loop, no more; the others (binding or closing listeners) run as tasks.
The frontend's first message is ``(0, "ready", ())``. Both ends are this program's
(a socketpair), so messages are pickles.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import TYPE_CHECKING, Any, cast

from chaosml.proxy.apierrors import ApiError, PopulateError, ProxyOperations, parse_json

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

READY = 0  # the id of the frontend's first message: it serves
_LENGTH = 4  # bytes of the big-endian length before each pickle


def frame(message: Any) -> bytes:
    """One message on the control socket: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_LENGTH, "big") + data


def unframe(buffer: bytearray) -> list[Any]:
    """Take every whole message off the front of ``buffer``; a partial one stays there."""
    messages = []
    while len(buffer) >= _LENGTH:
        end = _LENGTH + int.from_bytes(buffer[:_LENGTH], "big")
        if len(buffer) < end:
            break
        messages.append(pickle.loads(buffer[_LENGTH:end]))
        del buffer[:end]
    return messages


class Control(asyncio.Protocol):
    """The proxies' loop's end of the control socket: runs each request on ``server``."""

    def __init__(self, server: ProxyOperations) -> None:
        self.server = server
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()  # the frontend went away
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sync: dict[str, Callable[..., Any]] = {
            "proxies": self._proxies,
            "show": lambda name: server.get_proxy(name).to_json(),
            "toxics": lambda name: server.get_proxy(name).toxic_list(),
            "toxic_create": self._toxic_create,
            "toxic_show": lambda proxy, toxic: server.get_toxic(proxy, toxic).to_json(),
            "toxic_update": self._toxic_update,
            "toxic_delete": server.remove_toxic,
        }
        self._async: dict[str, Callable[..., Awaitable[Any]]] = {
            "reset": server.reset,
            "create": self._create,
            "populate": self._populate,
            "update": self._update,
            "delete": server.delete_proxy,
        }

    def close(self) -> None:
        """Close the socket: the frontend stops serving."""
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for ident, op, args in unframe(self._buffer):
            if ident == READY:
                if not self.ready.done():
                    self.ready.set_result(None)
            elif op in self._sync:
                self._answer(ident, self._sync[op], args)
            else:
                task = asyncio.get_running_loop().create_task(
                    self._answer_async(ident, self._async[op], args)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("the API frontend ended before serving"))
        if not self.lost.done():
            self.lost.set_result(None)

    # -- answering -------------------------------------------------------------------
    def _answer(self, ident: int, op: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._send(ident, True, op(*args))
        except Exception as exc:  # noqa: BLE001 - every failure is answered
            self._failed(ident, exc)

    async def _answer_async(
        self, ident: int, op: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
    ) -> None:
        try:
            self._send(ident, True, await op(*args))
        except Exception as exc:  # noqa: BLE001 - every failure is answered
            self._failed(ident, exc)

    def _failed(self, ident: int, exc: Exception) -> None:
        if isinstance(exc, ApiError):
            self._send(ident, False, (exc.message, exc.status))
            return
        log.exception("proxy API operation failed", exc_info=exc)
        self._send(ident, False, (f"internal error: {exc}", 500))

    def _send(self, ident: int, ok: bool, result: Any) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame((ident, ok, result)))

    # -- operations whose answer is more than one call ---------------------------------
    def _proxies(self) -> dict[str, Any]:
        return {name: p.to_json() for name, p in self.server.proxies.items()}

    async def _create(self, body: Any) -> dict[str, Any]:
        return (await self.server.create_proxy(body)).to_json()

    async def _populate(self, body: Any) -> tuple[int, dict[str, Any]]:
        try:
            proxies = await self.server.populate(body)
        except ApiError as exc:  # upstream: {"error", "status", "proxies"}; null if none
            applied = exc.proxies if isinstance(exc, PopulateError) else []
            return exc.status, {
                **exc.to_json(),
                "proxies": [p.to_json() for p in applied] or None,
            }
        # Go marshals the empty result slice as null.
        return 201, {"proxies": [p.to_json() for p in proxies] or None}

    async def _update(self, name: str, raw: bytes) -> dict[str, Any]:
        self.server.get_proxy(name)  # 404 before 400, as upstream
        return (await self.server.update_proxy(name, parse_json(raw))).to_json()

    def _toxic_create(self, name: str, raw: bytes) -> dict[str, Any]:
        self.server.get_proxy(name)  # 404 before 400, as upstream
        return self.server.add_toxic(name, parse_json(raw)).to_json()

    def _toxic_update(self, proxy: str, toxic: str, raw: bytes) -> dict[str, Any]:
        self.server.get_toxic(proxy, toxic)  # 404 before 400, as upstream
        return self.server.update_toxic(proxy, toxic, parse_json(raw)).to_json()
