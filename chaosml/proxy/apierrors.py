"""The fault proxy API's shared vocabulary: version, body bound, errors in Toxiproxy's shape, JSON bodies, and what
the HTTP layer needs of the server (typed protocols); used by server.py and api.py, so that neither imports the other back."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

VERSION = (
    "2.12.0-chaosml"  # the Toxiproxy API level served, tagged as this implementation
)
MAX_BODY_BYTES = 16 * 1024 * 1024  # Toxiproxy has no bound; 1.1 MB held ~11,700 proxies


class ApiError(Exception):
    """An API failure with its HTTP status, rendered as Toxiproxy's error body."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


class PopulateError(ApiError):
    """/populate failed part-way; ``proxies`` were applied before the failure (as upstream)."""

    def __init__(self, message: str, status: int, proxies: Sequence[Rendered]) -> None:
        super().__init__(message, status)
        self.proxies = proxies


def bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing(field: str) -> ApiError:
    return ApiError(f"missing required field: {field}", 400)



def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_body(str(exc) if raw.strip() else "EOF") from exc


class Rendered(Protocol):
    """A proxy or toxic as the API renders it."""

    def to_json(self) -> dict[str, Any]: ...


class RenderedProxy(Rendered, Protocol):
    def toxic_list(self) -> list[dict[str, Any]]: ...


class ProxyOperations(Protocol):
    """What the HTTP layer (api.py) calls on the server (server.ProxyServer); each runs on the proxies' loop."""

    @property
    def proxies(self) -> Mapping[str, Rendered]: ...

    async def reset(self) -> None: ...

    async def create_proxy(self, body: Any) -> Rendered: ...

    async def populate(self, body: Any) -> Sequence[Rendered]: ...

    def get_proxy(self, name: str) -> RenderedProxy: ...

    async def update_proxy(self, name: str, body: Any) -> Rendered: ...

    async def delete_proxy(self, name: str) -> None: ...

    def get_toxic(self, proxy_name: str, toxic_name: str) -> Rendered: ...

    def add_toxic(self, proxy_name: str, body: Any) -> Rendered: ...

    def update_toxic(self, proxy_name: str, toxic_name: str, body: Any) -> Rendered: ...

    def remove_toxic(self, proxy_name: str, toxic_name: str) -> None: ...
