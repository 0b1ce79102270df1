"""The fault proxy: asyncio TCP proxies plus Toxiproxy's 2.x REST API; run by chaosml.proxy.__main__ and tests.

Routes, JSON shapes, status codes and error bodies follow Toxiproxy's api.go:

    GET  /version                          200 {"version": ...}
    POST /reset                            204   enable every proxy, remove every toxic
    GET  /proxies                          200 {name: proxy}
    POST /proxies                          201 proxy | 400 | 409
    POST /populate                         201 {"proxies": [...]} | 400 | 409 (+ "error", "status")
    GET  /proxies/{p}                      200 proxy | 404
    POST|PATCH /proxies/{p}                200 proxy | 400 | 404
    DELETE /proxies/{p}                    204 | 404
    GET  /proxies/{p}/toxics               200 [toxic]
    POST /proxies/{p}/toxics               200 toxic | 400 | 404 | 409
    GET  /proxies/{p}/toxics/{t}           200 toxic | 404
    POST|PATCH /proxies/{p}/toxics/{t}     200 toxic | 400 | 404
    DELETE /proxies/{p}/toxics/{t}         204 | 404

Errors are ``{"error": "...", "status": N}``. Unknown routes answer 404
``404 page not found`` (text) and a known route with another method 405 with an
empty body, as Toxiproxy's router does; ``/populate []`` answers ``{"proxies": null}``.

Where this server deliberately differs from Toxiproxy 2.8.0:

- Validation that Toxiproxy lacks warns in the log instead of refusing, so clients
  written against Toxiproxy keep working: a toxicity outside [0, 1] (Toxiproxy
  stores it; > 1 always applies, < 0 never), a negative time attribute (acts as 0),
  an upstream that is not host:port (every connection to it then fails, logged).
- Refused although Toxiproxy accepts them, because Toxiproxy then panics: a negative
  bandwidth rate, slicer size or limit_data byte count (400).
- Request bodies are bounded (MAX_BODY_BYTES, room for ~170,000 proxies in one
  /populate); beyond that: 413 in the usual ``{"error", "status"}`` shape.
- Error bodies are Toxiproxy's bytes (compact JSON and a newline) but served as
  ``application/json``, where Go's http.Error overrides it with ``text/plain``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from chaosml.proxy import sockets
from chaosml.proxy.api import ApiThread
from chaosml.proxy.apierrors import (
    ApiError,
    PopulateError,
    bad_body,
    missing,
)
from chaosml.proxy.link import STREAMS, Connection, Endpoint, Link, ToxicSpec
from chaosml.proxy.toxics import TOXICS, ToxicAttributesError, decode_attributes

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:0"
DIAL_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


PROXY_NOT_FOUND = ("proxy not found", 404)
TOXIC_NOT_FOUND = ("toxic not found", 404)


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); raises ValueError."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"address {address!r}: expected host:port")
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"address {address!r}: port out of range")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Proxy:
    """One named proxy: a listener, its live connections and its toxics."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[
            str, ToxicSpec
        ] = {}  # insertion order = chain order per stream
        self.connections: set[Connection] = set()
        self._listener: sockets.Listener | None = None
        self._dials: dict[sockets.Dial, socket.socket] = {}  # dial -> its client (numeric upstream)
        self._dialing: set[asyncio.Task[None]] = set()  # clients dialing a host name

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": self.toxic_list(),
        }

    def toxic_list(self) -> list[dict[str, Any]]:
        return [
            spec.to_json()
            for stream in STREAMS
            for spec in self.toxics.values()
            if spec.stream == stream
        ]

    async def start(self) -> None:
        if self.enabled:
            return
        try:
            host, port = split_address(self.listen)
            socks = await sockets.listen(host, port)
        except (ValueError, OSError) as exc:
            raise ApiError(f"listen tcp {self.listen}: {exc}", 500) from exc
        self._listener = sockets.Listener(
            asyncio.get_running_loop(), socks, self._accept
        )
        sockname = socks[0].getsockname()
        self.listen = join_address(sockname[0], sockname[1])
        self.enabled = True
        log.info(
            "proxy %s listening on %s -> %s", self.name, self.listen, self.upstream
        )

    async def stop(self) -> None:
        """Stop listening and close every connection (clients see refused / closed)."""
        self.enabled = False
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for conn in list(self.connections):
            conn.abort()
        dials, self._dials = self._dials, {}
        for dial, client in dials.items():
            dial.cancel()
            client.close()
        for task in list(self._dialing):
            task.cancel()
        pending = [*self._dialing, *(c.done for c in self.connections)]
        if pending:
            await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)

    def _accept(self, client: socket.socket) -> None:
        """A new client socket: dial upstream; the client is read once both are connected.

        A numeric upstream is dialled by callbacks (sockets.Dial); a name is looked up
        and tried address by address by asyncio.create_connection, in a task.
        """
        try:
            host, port = split_address(self.upstream)
        except ValueError as exc:
            self._dial_failed(client, exc)
            return
        family = sockets.numeric_family(host)
        if family is None:
            task = asyncio.get_running_loop().create_task(self._dial_name(client, host, port))
            self._dialing.add(task)
            task.add_done_callback(self._dialing.discard)
            return

        def done(upstream: socket.socket | None, error: OSError | None) -> None:
            self._dials.pop(dial, None)
            if upstream is None:
                self._dial_failed(client, error)
                return
            endpoint = Endpoint()
            sockets.wrap(upstream, endpoint)
            self._connect(client, endpoint)

        try:
            dial = sockets.Dial(
                asyncio.get_running_loop(), family, (host, port), DIAL_TIMEOUT_S, done
            )
        except OSError as exc:  # no socket to dial with (e.g. out of file descriptors)
            self._dial_failed(client, exc)
            return
        self._dials[dial] = client

    async def _dial_name(self, client: socket.socket, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(DIAL_TIMEOUT_S):
                _, upstream = await asyncio.get_running_loop().create_connection(
                    Endpoint, host, port
                )
        except (OSError, TimeoutError) as exc:
            self._dial_failed(client, exc)
            return
        except asyncio.CancelledError:
            client.close()
            raise
        self._connect(client, upstream)

    def _dial_failed(self, client: socket.socket, exc: Exception | None) -> None:
        log.warning(
            "proxy %s: unable to open connection to upstream %s: %s",
            self.name,
            self.upstream,
            exc,
        )
        client.close()

    def _connect(self, client_sock: socket.socket, upstream: Endpoint) -> None:
        if not self.enabled:  # disabled while dialing
            upstream.abort()
            client_sock.close()
            return
        client = Endpoint()
        sockets.wrap(client_sock, client)
        conn = Connection(client, upstream, self.connections.discard)
        self.connections.add(conn)
        conn.start(self.toxics.values())

    # -- toxics -----------------------------------------------------------------
    # A change is registered at once and reaches the live connections in the loop's
    # next turn, in the order asked: that turn runs it before handling any data read
    # after the API answered, so the API does not wait on hundreds of connections.
    def add_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.name] = spec
        self._each_link(spec.stream, functools.partial(Link.add, spec=spec))

    def update_toxic(self, spec: ToxicSpec) -> None:
        self.toxics[spec.name] = spec
        self._each_link(spec.stream, functools.partial(Link.update, spec=spec))

    def remove_toxic(self, name: str) -> None:
        spec = self.toxics.pop(name)
        self._each_link(spec.stream, functools.partial(Link.remove, name=name))

    def reset_toxics(self) -> None:
        for name in list(self.toxics):
            self.remove_toxic(name)

    def _each_link(self, stream: str, change: Callable[[Link], None]) -> None:
        if self.connections:
            conns = list(self.connections)
            asyncio.get_running_loop().call_soon(_change_links, conns, stream, change)


def _change_links(
    conns: list[Connection], stream: str, change: Callable[[Link], None]
) -> None:
    for conn in conns:
        if not conn.closing:
            change(conn.links[stream])


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_body(f"{key}: expected a string")
    return value


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad_body(f"{key}: expected a boolean")
    return value


def _check_address(what: str, address: str) -> None:
    try:
        split_address(address)
    except ValueError as exc:
        raise ApiError(f"invalid {what} address: {exc}", 400) from exc


def _check_upstream(name: str, upstream: str) -> None:
    """Toxiproxy accepts any upstream and fails each dial; so do we, with a warning now."""
    try:
        split_address(upstream)
    except ValueError as exc:
        log.warning(
            "proxy %s: upstream %r is not host:port (%s); accepted as Toxiproxy does,"
            " connections to it will fail",
            name,
            upstream,
            exc,
        )


def _toxicity(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_body("toxicity: expected a number")
    if not 0.0 <= value <= 1.0:
        log.warning(
            "toxic %s: toxicity %s is outside [0, 1]; accepted as Toxiproxy does"
            " (above 1 always applies, below 0 never)",
            name,
            value,
        )
    return float(value)


class ProxyServer:
    """Owns every proxy and serves the REST API (chaosml.proxy.api, on its own thread).

    All proxy state lives on the loop that ran ``start``; its operations run there.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8474, *, config: Path | None = None
    ):
        self.host = host
        self.port = port
        self.config = config
        self.proxies: dict[str, Proxy] = {}
        self._api: ApiThread | None = None

    @property
    def url(self) -> str:
        return f"http://{join_address(self.host, self.port)}"

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        """Populate from ``config`` (if any), then serve the API; ``port`` 0 picks a free one."""
        if self.config is not None:
            try:
                data = json.loads(Path(self.config).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ApiError(f"config {self.config}: {exc}", 400) from exc
            await self.populate(data)
        api = ApiThread(self, asyncio.get_running_loop())
        try:
            self.port = await asyncio.wrap_future(api.start(self.host, self.port))
        except OSError:
            await asyncio.to_thread(api.stop, STOP_TIMEOUT_S)
            await self._stop_proxies()
            raise
        self._api = api
        log.info("chaosml proxy API on %s", self.url)

    async def stop(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            await asyncio.to_thread(api.stop, STOP_TIMEOUT_S)
        await self._stop_proxies()

    async def _stop_proxies(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        self.proxies.clear()

    def start_in_thread(self, timeout_s: float = 10.0) -> ServerThread:
        """Run on a fresh event loop in a daemon thread; returns once the API is listening."""
        handle = ServerThread(self)
        handle.start(timeout_s)
        return handle

    # -- operations (each raises ApiError) -----------------------------------------
    def get_proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    async def create_proxy(self, body: Any) -> Proxy:
        if not isinstance(body, dict):
            raise bad_body("expected a JSON object")
        name, upstream = _text(body, "name"), _text(body, "upstream")
        listen = _text(body, "listen") or DEFAULT_LISTEN
        enabled = _flag(body, "enabled", True)
        if not name:
            raise missing("name")
        if not upstream:
            raise missing("upstream")
        _check_address("listen", listen)
        _check_upstream(name, upstream)
        if name in self.proxies:
            raise ApiError("proxy already exists", 409)
        proxy = Proxy(name, listen, upstream)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def update_proxy(self, name: str, body: Any) -> Proxy:
        proxy = self.get_proxy(name)
        if not isinstance(body, dict):
            raise bad_body("expected a JSON object")
        listen = _text(body, "listen") or proxy.listen
        upstream = _text(body, "upstream") or proxy.upstream
        enabled = _flag(body, "enabled", proxy.enabled)
        _check_address("listen", listen)
        if upstream != proxy.upstream:
            _check_upstream(name, upstream)
        if listen != proxy.listen or upstream != proxy.upstream:
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            await proxy.stop()
        return proxy

    async def delete_proxy(self, name: str) -> None:
        proxy = self.get_proxy(name)
        await proxy.stop()
        del self.proxies[name]

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace each proxy; all input is checked before anything changes."""
        if not isinstance(body, list):
            raise bad_body("expected a JSON array of proxies")
        wanted: list[tuple[str, str, str, bool]] = []
        seen: set[str] = set()
        for i, item in enumerate(body, start=1):
            if not isinstance(item, dict):
                raise bad_body(f"proxy {i}: expected a JSON object")
            name, upstream = _text(item, "name"), _text(item, "upstream")
            listen = _text(item, "listen") or DEFAULT_LISTEN
            enabled = _flag(item, "enabled", True)
            if not name:
                raise missing(f"name at proxy {i}")
            if not upstream:
                raise missing(f"upstream at proxy {i}")
            if name in seen:
                raise ApiError(f"duplicate proxy name {name!r} at proxy {i}", 400)
            seen.add(name)
            _check_address("listen", listen)
            _check_upstream(name, upstream)
            wanted.append((name, listen, upstream, enabled))
        result: list[Proxy] = []
        for name, listen, upstream, enabled in wanted:
            existing = self.proxies.get(name)
            if existing is not None:
                if existing.listen == listen and existing.upstream == upstream:
                    result.append(existing)  # unchanged: keeps its state and toxics
                    continue
                await existing.stop()
                del self.proxies[name]
            proxy = Proxy(name, listen, upstream)
            if enabled:
                try:
                    await proxy.start()
                except ApiError as exc:
                    raise PopulateError(exc.message, exc.status, result) from exc
            self.proxies[name] = proxy
            result.append(proxy)
        return result

    async def reset(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.reset_toxics()

    def get_toxic(self, proxy_name: str, toxic_name: str) -> ToxicSpec:
        spec = self.get_proxy(proxy_name).toxics.get(toxic_name)
        if spec is None:
            raise ApiError(*TOXIC_NOT_FOUND)
        return spec

    def add_toxic(self, proxy_name: str, body: Any) -> ToxicSpec:
        proxy = self.get_proxy(proxy_name)
        if not isinstance(body, dict):
            raise bad_body("expected a JSON object")
        stream = _text(body, "stream") or "downstream"
        if stream not in STREAMS:
            raise ApiError(
                "stream was invalid, can be either upstream or downstream", 400
            )
        type_name = _text(body, "type")
        name = _text(body, "name") or f"{type_name}_{stream}"
        toxicity = _toxicity(body.get("toxicity", 1.0), name)
        cls = TOXICS.get(type_name)
        if cls is None:
            raise ApiError("invalid toxic type", 400)
        if name in proxy.toxics:
            raise ApiError("toxic already exists", 409)
        try:
            toxic = decode_attributes(cls, body.get("attributes"))
        except ToxicAttributesError as exc:
            raise bad_body(str(exc)) from exc
        spec = ToxicSpec(name, type_name, stream, toxicity, toxic)
        proxy.add_toxic(spec)
        return spec

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> ToxicSpec:
        proxy = self.get_proxy(proxy_name)
        old = self.get_toxic(proxy_name, toxic_name)
        if not isinstance(body, dict):
            raise bad_body("expected a JSON object")
        toxicity = _toxicity(body.get("toxicity", old.toxicity), old.name)
        try:
            toxic = decode_attributes(
                type(old.toxic), body.get("attributes"), old.toxic
            )
        except ToxicAttributesError as exc:
            raise bad_body(str(exc)) from exc
        spec = ToxicSpec(old.name, old.type, old.stream, toxicity, toxic)
        proxy.update_toxic(spec)
        return spec

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None:
        self.get_toxic(proxy_name, toxic_name)
        self.get_proxy(proxy_name).remove_toxic(toxic_name)


class ServerThread:
    """A ProxyServer running on its own event loop in a daemon thread (tests, bench, CLI helpers)."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(
            target=self._main, name="chaosml-proxy", daemon=True
        )

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout_s: float) -> None:
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"proxy server did not start within {timeout_s}s")
        if self._error is not None:
            self._thread.join(timeout_s)
            raise self._error

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except Exception as exc:  # noqa: BLE001 - re-raised in the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def run(self, coro: Awaitable[Any], timeout_s: float = 10.0) -> Any:
        """Run a coroutine on the server's loop (e.g. ``handle.run(server.reset())``)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)  # type: ignore[arg-type]

    def stop(self, timeout_s: float = 10.0) -> None:
        if (
            self._loop is not None
            and self._stop is not None
            and self._thread.is_alive()
        ):
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
