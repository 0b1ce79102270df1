"""Helpers shared by tests in several directories (tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from socketserver import BaseServer
from typing import TypeVar

S = TypeVar("S", bound=BaseServer)


def doc_paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indices) into a parsed YAML/JSON document, the root () first."""
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += doc_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += doc_paths(v, (*prefix, i))
    return out


@contextlib.contextmanager
def serving(srv: S) -> Iterator[S]:
    """Run a socketserver in a thread for the block; shut down, close and join after it (bounded)."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)
