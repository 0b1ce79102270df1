"""A small Toxiproxy REST client (stdlib only); used by chaosml's network faults for both servers.

Every call takes the server URL (``http://127.0.0.1:8474``; a bare ``host:port`` means
http) and a timeout in seconds, and raises :class:`ToxiproxyError` for any non-2xx
answer, or with status 0 when the server cannot be reached. Works against real
Toxiproxy 2.x and against :mod:`chaosml.proxy.server`.

    from chaosml.proxy import client
    client.create_proxy(url, "redis", upstream="127.0.0.1:6379", listen="127.0.0.1:26379")
    client.add_toxic(url, "redis", "latency", attributes={"latency": 100, "jitter": 10})
    client.update_proxy(url, "redis", enabled=False)      # down: connections refused
    client.reset(url)                                     # everything back to normal
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict
from urllib.parse import quote, urlsplit

from chaosml.errors import ChaosmlError

DEFAULT_TIMEOUT_S = 5.0


class ToxicJSON(TypedDict):
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class ProxyJSON(TypedDict):
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: list[ToxicJSON]


class ToxiproxyError(ChaosmlError):
    """A Toxiproxy API call failed: ``status`` is the HTTP status, 0 if the server was unreachable."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(
            f"toxiproxy {status}: {message}" if status else f"toxiproxy: {message}"
        )
        self.status = status
        self.message = message


def _request(
    url: str, method: str, path: str, body: Any = None, *, timeout: float
) -> Any:
    """One HTTP exchange; returns the decoded JSON body (None when empty)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToxiproxyError(0, f"bad server URL {url!r}")
    conn_cls = (
        http.client.HTTPSConnection
        if parts.scheme == "https"
        else http.client.HTTPConnection
    )
    conn = conn_cls(parts.hostname, parts.port, timeout=timeout)
    full_path = parts.path.rstrip("/") + path
    payload = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", "User-Agent": "chaosml-toxiproxy-client"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, full_path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise ToxiproxyError(
            0, f"{method} {url}{path}: {exc or type(exc).__name__}"
        ) from exc
    finally:
        conn.close()
    text = raw.decode("utf-8", "replace")
    if not 200 <= status < 300:
        message = text.strip()
        try:
            decoded = json.loads(text)
        except json.JSONDecodeError:
            decoded = None
        if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
            message = decoded["error"]
        raise ToxiproxyError(status, message or f"HTTP {status}")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()  # e.g. very old servers answer /version in plain text


def _p(name: str) -> str:
    return quote(name, safe="")


def version(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
    data = _request(url, "GET", "/version", timeout=timeout)
    return str(data["version"]) if isinstance(data, dict) else str(data)


def proxies(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, ProxyJSON]:
    return _request(url, "GET", "/proxies", timeout=timeout)


def get_proxy(url: str, name: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> ProxyJSON:
    return _request(url, "GET", f"/proxies/{_p(name)}", timeout=timeout)


def create_proxy(
    url: str,
    name: str,
    upstream: str,
    listen: str = "127.0.0.1:0",
    *,
    enabled: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ProxyJSON:
    """Create a proxy (409 if the name exists); ``listen`` port 0 picks a free port."""
    body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
    return _request(url, "POST", "/proxies", body, timeout=timeout)


def update_proxy(
    url: str,
    name: str,
    *,
    enabled: bool | None = None,
    listen: str | None = None,
    upstream: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ProxyJSON:
    """Change a proxy; ``enabled=False`` takes it down (refused), ``True`` brings it back.

    Sent as POST, which every Toxiproxy 2.x accepts (2.6+ also takes PATCH).
    """
    body: dict[str, Any] = {}
    if enabled is not None:
        body["enabled"] = enabled
    if listen is not None:
        body["listen"] = listen
    if upstream is not None:
        body["upstream"] = upstream
    return _request(url, "POST", f"/proxies/{_p(name)}", body, timeout=timeout)


def delete_proxy(url: str, name: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    _request(url, "DELETE", f"/proxies/{_p(name)}", timeout=timeout)


def populate(
    url: str, items: Sequence[Mapping[str, Any]], *, timeout: float = DEFAULT_TIMEOUT_S
) -> list[ProxyJSON]:
    """Create or replace proxies (same name, listen and upstream: left as is)."""
    data = _request(url, "POST", "/populate", [dict(i) for i in items], timeout=timeout)
    return list(data["proxies"] or []) if isinstance(data, dict) else []


def reset(url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
    """Enable every proxy and remove every toxic."""
    _request(url, "POST", "/reset", timeout=timeout)


def toxics(
    url: str, proxy: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> list[ToxicJSON]:
    return _request(url, "GET", f"/proxies/{_p(proxy)}/toxics", timeout=timeout)


def get_toxic(
    url: str, proxy: str, toxic: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> ToxicJSON:
    path = f"/proxies/{_p(proxy)}/toxics/{_p(toxic)}"
    return _request(url, "GET", path, timeout=timeout)


def add_toxic(
    url: str,
    proxy: str,
    type: str,  # the API field name
    *,
    attributes: Mapping[str, int | str] | None = None,
    name: str | None = None,
    stream: str = "downstream",
    toxicity: float = 1.0,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ToxicJSON:
    """Add a toxic; the server names it ``<type>_<stream>`` unless ``name`` is given."""
    body: dict[str, Any] = {
        "type": type,
        "stream": stream,
        "toxicity": toxicity,
        "attributes": dict(attributes or {}),
    }
    if name is not None:
        body["name"] = name
    path = f"/proxies/{_p(proxy)}/toxics"
    return _request(url, "POST", path, body, timeout=timeout)


def update_toxic(
    url: str,
    proxy: str,
    toxic: str,
    *,
    attributes: Mapping[str, int | str] | None = None,
    toxicity: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ToxicJSON:
    """Change some attributes and/or the toxicity; the others keep their values."""
    body: dict[str, Any] = {"attributes": dict(attributes or {})}
    if toxicity is not None:
        body["toxicity"] = toxicity
    path = f"/proxies/{_p(proxy)}/toxics/{_p(toxic)}"
    return _request(url, "POST", path, body, timeout=timeout)


def remove_toxic(
    url: str, proxy: str, toxic: str, *, timeout: float = DEFAULT_TIMEOUT_S
) -> None:
    _request(url, "DELETE", f"/proxies/{_p(proxy)}/toxics/{_p(toxic)}", timeout=timeout)
