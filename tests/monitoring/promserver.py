"""Test helpers: a real Prometheus (Debian's package) on a free 127.0.0.1 port, and a fake API serving recorded answers."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chaosml.monitoring import server
from chaosml.monitoring.promapi import PromQueryError, PromUnreachable, alerts
from chaosml.targets.local import free_ports

RECORDED = Path(__file__).parent / "recorded"


def ready(url: str) -> bool:
    try:
        alerts(url, timeout_s=1.0)
    except (PromUnreachable, PromQueryError):
        return False
    return True


def recorded(name: str) -> Any:
    """A JSON answer recorded from a real Prometheus 2.42."""
    return json.loads((RECORDED / name).read_text())


def require_prometheus() -> Path:
    binary = server.prometheus_binary()
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus; .ci/test installs it)")
    return binary


@contextmanager
def real_prometheus(tmp: Path, rules: str | None = None, scrape: list[str] | None = None) -> Iterator[str]:
    """A Prometheus evaluating ``rules`` (YAML text) every second, scraping ``scrape`` (host:port), stopped on exit."""
    binary = require_prometheus()
    port = free_ports(1)[0]
    tmp.mkdir(parents=True, exist_ok=True)
    rule_files = []
    if rules is not None:
        (tmp / "rules.yml").write_text(rules)
        rule_files.append(str(tmp / "rules.yml"))
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "rule_files": rule_files,
              "scrape_configs": [{"job_name": "t", "static_configs": [{"targets": scrape or []}]}]}
    (tmp / "prometheus.yml").write_text(json.dumps(config))
    log = open(tmp / "log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(server.argv(binary, tmp / "prometheus.yml", tmp / "data", port), stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not ready(url):
            assert proc.poll() is None, (tmp / "log").read_text()
            assert time.monotonic() < deadline, "prometheus did not become ready in 30 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


class FakeApi:
    """A stand-in Prometheus API on 127.0.0.1: ``answers[path] = (status, JSON document)``, changeable between calls."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, doc = api.answers.get(self.path.split("?")[0], (404, None))
                body = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
