"""The fault proxy API's shared vocabulary: version, body bound, errors in Toxiproxy's shape, JSON bodies; used by server.py and api.py."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaosml.proxy.server import Proxy

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

    def __init__(self, message: str, status: int, proxies: list[Proxy]) -> None:
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
