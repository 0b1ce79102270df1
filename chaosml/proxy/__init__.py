"""Toxiproxy-compatible fault proxy and REST client; network faults drive either through one client.

We do not wrap toxiproxy-python 0.1.1: it keeps the server address in class attributes
(one server per process), sets no timeouts, raises only on 400/404/409 (a 500 passes
silently), cannot update a toxic, and pulls in requests and future. client.py is stdlib
http.client: explicit URL and timeout per call, ToxiproxyError(status, message) on any non-2xx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chaosml.proxy.client import ToxiproxyError

if TYPE_CHECKING:
    from chaosml.proxy.server import ProxyServer, ServerThread

__all__ = ["ProxyServer", "ServerThread", "ToxiproxyError"]


def __getattr__(name: str) -> Any:
    # The server needs aiohttp; the client must import without it.
    if name in ("ProxyServer", "ServerThread"):
        from chaosml.proxy import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
