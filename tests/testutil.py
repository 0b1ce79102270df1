"""Helpers shared by tests in several directories (tests/ is on sys.path through tests/conftest.py)."""

from __future__ import annotations

import contextlib
import csv
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseServer
from typing import Any, TypeVar

from chaosml.faults.base import Injector
from chaosml.load.config import LoadConfig, start_load

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


def json_post_handler(answer: bytes | Callable[[bytes], bytes]) -> type[BaseHTTPRequestHandler]:
    """A quiet HTTP/1.1 handler answering every POST with 200 and ``answer`` (or ``answer(request body)``) as application/json."""

    class JsonPost(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            data = answer(body) if callable(answer) else answer
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return JsonPost


@contextlib.contextmanager
def json_server(answer: bytes | Callable[[bytes], bytes]) -> Iterator[ThreadingHTTPServer]:
    """A server on a free 127.0.0.1 port answering POSTs as :func:`json_post_handler`, for the block."""
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), json_post_handler(answer))) as srv:
        yield srv


def load_around_fault(
    config: LoadConfig, injector: Injector, out_dir: Path, settle_s: float, window_s: float
) -> tuple[list[dict[str, str]], float, float]:
    """Run the load process of ``config`` (stderr in ``out_dir``/stderr); from its first progress line wait ``settle_s``,
    apply injection 0 of ``injector``, wait ``window_s`` and recover it; when the load has ended (bounded):
    (its sample rows, apply t, recover t)."""
    with open(out_dir / "stderr", "w") as err:
        proc = start_load(config, out_dir / "load.json", stderr=err)
    try:
        assert proc.stdout is not None
        assert '"progress"' in proc.stdout.readline()  # the load is running
        time.sleep(settle_s)
        apply_t = injector.apply(0).t
        time.sleep(window_s)
        recover_t = injector.recover(0).t
        proc.stdout.read()
        assert proc.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    with open(config.samples_file, newline="") as f:
        return list(csv.DictReader(f)), apply_t, recover_t


def unless_fetch_timed_out(ask: Callable[[], tuple[int, dict[str, Any]]], attempts: int = 5) -> tuple[int, dict[str, Any]]:
    """``ask()`` again (at most ``attempts`` times in all) while the answer is the hardened stack's fallback for
    ``feature_store_error``: its 50 ms feature fetch timing out on a busy machine (CI runs three test workers on 2
    cores) says nothing about what a test checks when the feature store is up."""
    status, body = ask()
    for _ in range(attempts - 1):
        if body.get("reason") != "feature_store_error":
            break
        status, body = ask()
    return status, body
