"""The fault proxy's REST API over HTTP: an aiohttp app that runs each operation on the proxies' loop through the control socket; started by ProxyServer in a thread, or in its own process for ``python -m chaosml.proxy``.

Each handler reads and parses its request here, then sends one operation to the
proxies' loop (ProxyServer's, where every connection lives; chaosml.proxy.control runs
it there) and renders what comes back. So a data path busy with hundreds of
connections delays an API call by one turn of that loop, not by the several turns an
HTTP exchange takes; GET /version never leaves this side. In its own process this side
shares no GIL with the data path and gets a CPU of its own as soon as a request comes
in. Changes are serialized by one lock, like Toxiproxy's collection locks. The frontend
stops when the control socket closes: when the server stops, or its process dies.
Routes, bodies and error shapes: see chaosml.proxy.server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web

from chaosml.proxy.apierrors import MAX_BODY_BYTES, VERSION, ApiError, parse_json
from chaosml.proxy.control import READY, frame, unframe

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


SHUTDOWN_TIMEOUT_S = 2.0  # in-flight requests get this long when the server stops
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # on the API process's sys.path


def start_frontend(
    listen: socket.socket, channel: socket.socket, *, process: bool
) -> Callable[[float], None]:
    """Serve the API on ``listen``, talking to the proxies' loop over ``channel``.

    In a daemon thread, or (``process``) in a child ``python -m chaosml.proxy.api`` that
    gets both sockets (the caller's copies are closed here). Returns a blocking wait
    for its end, which comes once the other end of ``channel`` is closed.
    """
    if not process:
        thread = threading.Thread(
            target=serve, args=(listen, channel), name="chaosml-proxy-api", daemon=True
        )
        thread.start()
        return thread.join
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    paths = [str(_PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "chaosml.proxy.api",
             str(listen.fileno()), str(channel.fileno()), level],
            pass_fds=(listen.fileno(), channel.fileno()),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)},
        )
    finally:
        listen.close()
        channel.close()

    def wait(timeout_s: float) -> None:
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout_s)

    return wait


def serve(listen: socket.socket, channel: socket.socket) -> None:
    """The frontend's whole life: serve until ``channel`` closes."""
    asyncio.run(ApiFrontend().serve(listen, channel))


class Channel(asyncio.Protocol):
    """The frontend's end of the control socket: numbered requests out, answers matched back."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._ids = itertools.count(READY + 1)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for ident, ok, result in unframe(self._buffer):
            future = self._pending.pop(ident, None)
            if future is not None and not future.done():
                future.set_result((ok, result))

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the proxies' loop has stopped"))
        self._pending.clear()
        self.closed.set()

    def send(self, ident: int, op: str, args: tuple[Any, ...]) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("the proxies' loop has stopped")
        self._transport.write(frame((ident, op, args)))

    async def call(self, op: str, *args: Any) -> Any:
        """Run ``op`` on the proxies' loop; its result, or its ApiError raised here."""
        ident = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self.send(ident, op, args)
        self._pending[ident] = future
        ok, result = await future
        if not ok:
            raise ApiError(*result)
        return result


class ApiFrontend:
    """The aiohttp app; each handler is one operation on the proxies' loop."""

    def __init__(self) -> None:
        self._channel = Channel()
        self._lock: asyncio.Lock | None = None

    async def serve(self, listen: socket.socket, channel: socket.socket) -> None:
        self._lock = asyncio.Lock()
        await asyncio.get_running_loop().create_unix_connection(
            lambda: self._channel, sock=channel
        )
        app = web.Application(
            middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES
        )
        self._routes(app)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        await runner.setup()
        try:
            await web.SockSite(runner, listen).start()
            self._channel.send(READY, "ready", ())
            await self._channel.closed.wait()
        finally:
            await runner.cleanup()

    # -- HTTP -----------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.headers.get("User-Agent", "").startswith("Mozilla/"):
            return web.Response(
                status=403, text="User agent not allowed\n"
            )  # as upstream
        assert self._lock is not None
        try:
            if request.method == "GET":
                return await handler(request)
            async with self._lock:  # one change at a time
                return await handler(request)
        except ApiError as exc:
            return _error(exc)
        except web.HTTPRequestEntityTooLarge:
            limit = f"larger than {MAX_BODY_BYTES} bytes"
            return _error(ApiError(f"bad request body: {limit}", 413))
        except web.HTTPMethodNotAllowed:
            return web.Response(status=405)  # gorilla/mux: no body
        except web.HTTPNotFound:
            return web.Response(  # net/http's NotFound, as gorilla/mux answers
                status=404,
                text="404 page not found\n",
                headers={"X-Content-Type-Options": "nosniff"},
            )

    def _routes(self, app: web.Application) -> None:
        p, t = "/proxies/{proxy}", "/proxies/{proxy}/toxics/{toxic}"
        app.router.add_get("/version", self._h_version)
        app.router.add_post("/reset", self._h_reset)
        app.router.add_get("/proxies", self._h_proxies)
        app.router.add_post("/proxies", self._h_create)
        app.router.add_post("/populate", self._h_populate)
        app.router.add_get(p, self._h_show)
        app.router.add_post(p, self._h_update)
        app.router.add_patch(p, self._h_update)
        app.router.add_delete(p, self._h_delete)
        app.router.add_get(p + "/toxics", self._h_toxics)
        app.router.add_post(p + "/toxics", self._h_toxic_create)
        app.router.add_get(t, self._h_toxic_show)
        app.router.add_post(t, self._h_toxic_update)
        app.router.add_patch(t, self._h_toxic_update)
        app.router.add_delete(t, self._h_toxic_delete)

    async def _h_version(self, request: web.Request) -> web.Response:
        return web.Response(
            text=json.dumps({"version": VERSION}) + "\n",
            content_type="application/json",
            charset="utf-8",
        )

    async def _h_reset(self, request: web.Request) -> web.Response:
        await self._channel.call("reset")
        return web.Response(status=204)

    async def _h_proxies(self, request: web.Request) -> web.Response:
        return _json(await self._channel.call("proxies"))

    async def _h_create(self, request: web.Request) -> web.Response:
        body = parse_json(await request.read())
        return _json(await self._channel.call("create", body), 201)

    async def _h_populate(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
        except ApiError as exc:
            return _json({**exc.to_json(), "proxies": None}, exc.status)
        status, result = await self._channel.call("populate", body)
        return _json(result, status)

    async def _h_show(self, request: web.Request) -> web.Response:
        return _json(await self._channel.call("show", request.match_info["proxy"]))

    async def _h_update(self, request: web.Request) -> web.Response:
        name, raw = request.match_info["proxy"], await request.read()
        return _json(await self._channel.call("update", name, raw))

    async def _h_delete(self, request: web.Request) -> web.Response:
        await self._channel.call("delete", request.match_info["proxy"])
        return web.Response(status=204)

    async def _h_toxics(self, request: web.Request) -> web.Response:
        return _json(await self._channel.call("toxics", request.match_info["proxy"]))

    async def _h_toxic_create(self, request: web.Request) -> web.Response:
        name, raw = request.match_info["proxy"], await request.read()
        return _json(await self._channel.call("toxic_create", name, raw))

    async def _h_toxic_show(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        return _json(await self._channel.call("toxic_show", proxy, toxic))

    async def _h_toxic_update(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        raw = await request.read()
        return _json(await self._channel.call("toxic_update", proxy, toxic, raw))

    async def _h_toxic_delete(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        await self._channel.call("toxic_delete", proxy, toxic)
        return web.Response(status=204)


def _json(data: Any, status: int = 200) -> web.Response:
    """Compact JSON, as Go's json.Marshal writes it."""
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def _error(exc: ApiError) -> web.Response:
    """Toxiproxy's error body: the JSON then a newline (Go's http.Error)."""
    return web.Response(
        text=json.dumps(exc.to_json(), separators=(",", ":")) + "\n",
        status=exc.status,
        content_type="application/json",
    )


def main(argv: list[str]) -> int:
    """``python -m chaosml.proxy.api LISTEN_FD CHANNEL_FD LEVEL``: the API process (start_frontend)."""
    listen_fd, channel_fd, level = argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops us (channel EOF)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    serve(socket.socket(fileno=int(listen_fd)), socket.socket(fileno=int(channel_fd)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
