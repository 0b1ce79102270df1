"""A small client of Prometheus' HTTP API (v1; tested against 2.42): instant and range queries, active alerts.

Used by the PromQL check (validate/plan), the runner's alert poller and the post-run collection.
Standard library only (urllib), every call bounded by a timeout. Errors:
:class:`PromUnreachable` (no answer: connection refused, timeout, not HTTP) and :class:`PromQueryError`
(Prometheus answered with ``status: error``; ``error_type`` is its ``errorType``, e.g. ``bad_data``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

#: Seconds one API call may take.
TIMEOUT_S = 5.0


class PromUnreachable(Exception):
    """No usable answer from the server (refused, timed out, not its API)."""


class PromQueryError(Exception):
    """Prometheus refused the request; ``error_type`` is its errorType (bad_data: the expression)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def _get(base_url: str, path: str, params: dict[str, str], timeout_s: float) -> Any:
    url = f"{base_url.rstrip('/')}{path}?{urllib.parse.urlencode(params)}" if params else f"{base_url.rstrip('/')}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            body = r.read()
    except urllib.error.HTTPError as e:  # 400/422/503 carry the API's JSON error
        body = e.read()
        if not body:
            raise PromUnreachable(f"{url}: HTTP {e.code}") from None
    except (OSError, ValueError) as e:
        raise PromUnreachable(f"{base_url}: {type(e).__name__}: {e}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        raise PromUnreachable(f"{url}: not a Prometheus API answer") from None
    if not isinstance(doc, dict) or "status" not in doc:
        raise PromUnreachable(f"{url}: not a Prometheus API answer")
    if doc["status"] != "success":
        raise PromQueryError(str(doc.get("errorType", "error")), str(doc.get("error", "unknown error")))
    return doc.get("data")


def query(base_url: str, expr: str, at: float, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """``/api/v1/query`` at epoch ``at``: ``{"resultType": ..., "result": [...]}``."""
    data = _get(base_url, "/api/v1/query", {"query": expr, "time": f"{at:.3f}"}, timeout_s)
    return dict(data)


def query_range(base_url: str, expr: str, start: float, end: float, step: float, timeout_s: float = TIMEOUT_S) -> list[dict[str, Any]]:
    """``/api/v1/query_range``: the matrix, one ``{"metric": labels, "values": [[t, "v"], ...]}`` per series."""
    data = _get(
        base_url, "/api/v1/query_range",
        {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}, timeout_s,
    )
    return list(data.get("result") or [])


def alerts(base_url: str, timeout_s: float = TIMEOUT_S) -> list[dict[str, Any]]:
    """``/api/v1/alerts``: the active (pending or firing) alerts, each with ``labels``, ``state`` and ``activeAt``."""
    data = _get(base_url, "/api/v1/alerts", {}, timeout_s)
    return list(data.get("alerts") or [])


def rules(base_url: str, timeout_s: float = TIMEOUT_S) -> list[dict[str, Any]]:
    """``/api/v1/rules?type=alert``: the rule groups, each with its ``rules`` (``name``, ``type``, ``state``)."""
    data = _get(base_url, "/api/v1/rules", {"type": "alert"}, timeout_s)
    return list(data.get("groups") or [])
