"""The fault proxy's REST API over HTTP: an aiohttp app on its own thread and event loop; started by ProxyServer.

Each handler reads and parses its request on the API loop, then runs one operation
on the proxies' loop (ProxyServer's, where every connection lives) and renders what
it returns. So a data path busy with hundreds of connections delays an API call by
one turn of that loop, not by the several turns an HTTP exchange takes; GET /version
never leaves the API loop. Changes are serialized by one lock, like Toxiproxy's
collection locks. Routes, bodies and error shapes: see chaosml.proxy.server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from chaosml.proxy.apierrors import (
    MAX_BODY_BYTES,
    VERSION,
    ApiError,
    PopulateError,
    ProxyOperations,
    parse_json,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine


T = TypeVar("T")
SHUTDOWN_TIMEOUT_S = 2.0  # in-flight requests get this long when the server stops


class ApiThread:
    """Serves ``server``'s API from a daemon thread; operations hop to ``data_loop``."""

    def __init__(
        self, server: ProxyOperations, data_loop: asyncio.AbstractEventLoop
    ) -> None:
        self.server = server
        self.data_loop = data_loop
        self._started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._thread = threading.Thread(
            target=self._main, name="chaosml-proxy-api", daemon=True
        )
        self._address = ("", 0)

    def start(self, host: str, port: int) -> concurrent.futures.Future[int]:
        """Start serving; the future holds the bound port (or the bind error)."""
        self._address = (host, port)
        self._thread.start()
        return self._started

    def stop(self, timeout_s: float) -> None:
        """Stop serving and wait for the thread (blocking: call it from a worker thread)."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout_s)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
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
            await web.TCPSite(runner, *self._address).start()
        except OSError as exc:
            await runner.cleanup()
            self._started.set_exception(exc)
            return
        self._started.set_result(runner.addresses[0][1])
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    # -- running operations on the proxies' loop ----------------------------------------
    async def _now(self, op: Callable[[], T]) -> T:
        """Run a plain function on the data loop in its next turn."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(op())
            except Exception as exc:  # noqa: BLE001 - re-raised in the handler
                done.set_exception(exc)

        self.data_loop.call_soon_threadsafe(run)
        return await asyncio.wrap_future(done)

    async def _on_data(self, op: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine (one that must await, e.g. to bind a listener) on the data loop."""
        future = asyncio.run_coroutine_threadsafe(op(), self.data_loop)
        return await asyncio.wrap_future(future)

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
        await self._on_data(self.server.reset)
        return web.Response(status=204)

    async def _h_proxies(self, request: web.Request) -> web.Response:
        proxies = self.server.proxies
        return _json(
            await self._now(lambda: {n: p.to_json() for n, p in proxies.items()})
        )

    async def _h_create(self, request: web.Request) -> web.Response:
        body = parse_json(await request.read())

        async def create() -> dict[str, Any]:
            return (await self.server.create_proxy(body)).to_json()

        return _json(await self._on_data(create), 201)

    async def _h_populate(self, request: web.Request) -> web.Response:
        try:
            body = parse_json(await request.read())
        except ApiError as exc:
            return _json({**exc.to_json(), "proxies": None}, exc.status)

        async def populate() -> tuple[int, dict[str, Any]]:
            try:
                proxies = await self.server.populate(body)
            except (
                ApiError
            ) as exc:  # upstream: {"error", "status", "proxies"}; null if none
                applied = exc.proxies if isinstance(exc, PopulateError) else []
                return exc.status, {
                    **exc.to_json(),
                    "proxies": [p.to_json() for p in applied] or None,
                }
            # Go marshals the empty result slice as null.
            return 201, {"proxies": [p.to_json() for p in proxies] or None}

        status, result = await self._on_data(populate)
        return _json(result, status)

    async def _h_show(self, request: web.Request) -> web.Response:
        name = request.match_info["proxy"]
        return _json(await self._now(lambda: self.server.get_proxy(name).to_json()))

    async def _h_update(self, request: web.Request) -> web.Response:
        name, raw = request.match_info["proxy"], await request.read()

        async def update() -> dict[str, Any]:
            self.server.get_proxy(name)  # 404 before 400, as upstream
            return (await self.server.update_proxy(name, parse_json(raw))).to_json()

        return _json(await self._on_data(update))

    async def _h_delete(self, request: web.Request) -> web.Response:
        name = request.match_info["proxy"]
        await self._on_data(lambda: self.server.delete_proxy(name))
        return web.Response(status=204)

    async def _h_toxics(self, request: web.Request) -> web.Response:
        name = request.match_info["proxy"]
        return _json(await self._now(lambda: self.server.get_proxy(name).toxic_list()))

    async def _h_toxic_create(self, request: web.Request) -> web.Response:
        name, raw = request.match_info["proxy"], await request.read()

        def add() -> dict[str, Any]:
            self.server.get_proxy(name)  # 404 before 400, as upstream
            return self.server.add_toxic(name, parse_json(raw)).to_json()

        return _json(await self._now(add))

    async def _h_toxic_show(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        return _json(
            await self._now(lambda: self.server.get_toxic(proxy, toxic).to_json())
        )

    async def _h_toxic_update(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        raw = await request.read()

        def update() -> dict[str, Any]:
            self.server.get_toxic(proxy, toxic)  # 404 before 400, as upstream
            return self.server.update_toxic(proxy, toxic, parse_json(raw)).to_json()

        return _json(await self._now(update))

    async def _h_toxic_delete(self, request: web.Request) -> web.Response:
        proxy, toxic = request.match_info["proxy"], request.match_info["toxic"]
        await self._now(lambda: self.server.remove_toxic(proxy, toxic))
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
