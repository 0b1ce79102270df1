"""The Toxiproxy 2.x REST API of the fault proxy: shapes, status codes, error bodies, and the client's errors."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from proxy_support import TcpServer, connect, listen_port, round_trip

from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError


def raw(api: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """One request with a raw body; returns (status, decoded JSON or text or None)."""
    parts = urlsplit(api)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    if not text:
        return response.status, None
    try:
        return response.status, json.loads(text)
    except json.JSONDecodeError:
        return response.status, text


def test_version(api: str) -> None:
    status, body = raw(api, "GET", "/version")
    assert status == 200
    assert isinstance(body["version"], str)
    assert client.version(api) == body["version"]


def test_create_returns_201_with_the_real_port(
    api: str, echo_server: TcpServer
) -> None:
    body = json.dumps(
        {"name": "e", "listen": "127.0.0.1:0", "upstream": echo_server.address}
    )
    status, proxy = raw(api, "POST", "/proxies", body.encode())
    assert status == 201
    assert list(proxy) == ["name", "listen", "upstream", "enabled", "toxics"]
    assert proxy["name"] == "e"
    assert proxy["upstream"] == echo_server.address
    assert proxy["enabled"] is True
    assert proxy["toxics"] == []
    assert listen_port(proxy) != 0
    with connect(listen_port(proxy)) as sock:
        round_trip(sock)
    status, index = raw(api, "GET", "/proxies")
    assert status == 200
    assert index == {"e": proxy}


def test_create_disabled_does_not_listen(api: str, echo_server: TcpServer) -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    listen = f"127.0.0.1:{spare.getsockname()[1]}"
    spare.close()
    proxy = client.create_proxy(api, "off", echo_server.address, listen, enabled=False)
    assert proxy["enabled"] is False
    assert proxy["listen"] == listen
    with pytest.raises(ConnectionRefusedError):
        connect(listen_port(proxy)).close()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "bad request body: "),
        (b"", 400, "bad request body: EOF"),
        (b"[]", 400, "bad request body: "),
        (b'{"upstream": "127.0.0.1:1"}', 400, "missing required field: name"),
        (b'{"name": "x"}', 400, "missing required field: upstream"),
        (
            b'{"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}',
            400,
            "bad request body",
        ),
    ],
)
def test_create_rejects_bad_input(
    api: str, body: bytes, status: int, error: str
) -> None:
    got_status, got = raw(api, "POST", "/proxies", body)
    assert got_status == status
    assert got["status"] == status
    assert got["error"].startswith(error)


def test_duplicate_proxy_is_409(
    api: str, echo_proxy: int, echo_server: TcpServer
) -> None:
    body = json.dumps({"name": "echo", "upstream": echo_server.address}).encode()
    assert raw(api, "POST", "/proxies", body) == (
        409,
        {"error": "proxy already exists", "status": 409},
    )
    with pytest.raises(ToxiproxyError) as err:
        client.create_proxy(api, "echo", echo_server.address)
    assert (err.value.status, err.value.message) == (409, "proxy already exists")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/proxies/nope"),
        ("POST", "/proxies/nope"),
        ("PATCH", "/proxies/nope"),
        ("DELETE", "/proxies/nope"),
        ("GET", "/proxies/nope/toxics"),
        ("POST", "/proxies/nope/toxics"),
        ("GET", "/proxies/nope/toxics/t"),
        ("DELETE", "/proxies/nope/toxics/t"),
    ],
)
def test_unknown_proxy_is_404(api: str, method: str, path: str) -> None:
    body = b"{}" if method in ("POST", "PATCH") else None
    assert raw(api, method, path, body) == (
        404,
        {"error": "proxy not found", "status": 404},
    )


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
def test_unknown_toxic_is_404(api: str, echo_proxy: int, method: str) -> None:
    body = b"{}" if method in ("POST", "PATCH") else None
    got = raw(api, method, "/proxies/echo/toxics/nope", body)
    assert got == (404, {"error": "toxic not found", "status": 404})


def test_update_proxy_and_delete(api: str, echo_proxy: int) -> None:
    status, proxy = raw(api, "PATCH", "/proxies/echo", b'{"enabled": false}')
    assert status == 200
    assert proxy["enabled"] is False
    status, proxy = raw(api, "POST", "/proxies/echo", b'{"enabled": true}')
    assert (status, proxy["enabled"]) == (200, True)
    assert raw(api, "POST", "/proxies/echo", b"{bad")[0] == 400
    assert raw(api, "DELETE", "/proxies/echo") == (204, None)
    assert raw(api, "GET", "/proxies/echo")[0] == 404


def test_update_proxy_upstream_moves_new_connections(
    api: str, echo_proxy: int, tcp_server: Any
) -> None:
    def hello(conn: socket.socket) -> None:
        conn.sendall(b"other")

    other = tcp_server(hello)
    proxy = client.update_proxy(api, "echo", upstream=other.address)
    assert proxy["upstream"] == other.address
    assert listen_port(proxy) == echo_proxy
    with connect(echo_proxy) as sock:
        assert sock.recv(5) == b"other"


def test_toxic_defaults_and_shape(api: str, echo_proxy: int) -> None:
    status, toxic = raw(api, "POST", "/proxies/echo/toxics", b'{"type": "latency"}')
    assert status == 200
    assert toxic == {
        "attributes": {"latency": 0, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    }
    assert raw(api, "GET", "/proxies/echo/toxics") == (200, [toxic])
    assert raw(api, "GET", "/proxies/echo/toxics/latency_downstream") == (200, toxic)
    assert client.get_proxy(api, "echo")["toxics"] == [toxic]


def test_toxics_list_upstream_first_then_downstream(api: str, echo_proxy: int) -> None:
    client.add_toxic(api, "echo", "latency", name="d1")
    client.add_toxic(api, "echo", "bandwidth", name="u1", stream="upstream")
    client.add_toxic(api, "echo", "slicer", name="d2")
    assert [t["name"] for t in client.toxics(api, "echo")] == ["u1", "d1", "d2"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{oops", "bad request body: "),
        (b'{"type": "nosuch"}', "invalid toxic type"),
        (b'{"stream": "upstream"}', "invalid toxic type"),
        (
            b'{"type": "latency", "stream": "sideways"}',
            "stream was invalid, can be either upstream or downstream",
        ),
        (
            b'{"type": "latency", "attributes": {"latency": "100"}}',
            "bad request body: ",
        ),
        (b'{"type": "latency", "attributes": []}', "bad request body: "),
        (b'{"type": "latency", "toxicity": "high"}', "bad request body: "),
    ],
)
def test_add_toxic_rejects_bad_input(
    api: str, echo_proxy: int, body: bytes, error: str
) -> None:
    status, got = raw(api, "POST", "/proxies/echo/toxics", body)
    assert (status, got["status"]) == (400, 400)
    assert got["error"].startswith(error)
    assert client.toxics(api, "echo") == []


def test_duplicate_toxic_is_409(api: str, echo_proxy: int) -> None:
    client.add_toxic(api, "echo", "latency")
    status, got = raw(
        api,
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "bandwidth", "name": "latency_downstream"}',
    )
    assert (status, got) == (409, {"error": "toxic already exists", "status": 409})
    with pytest.raises(ToxiproxyError) as err:
        client.add_toxic(api, "echo", "latency")
    assert err.value.status == 409


def test_update_toxic_merges_attributes_and_keeps_envelope(
    api: str, echo_proxy: int
) -> None:
    client.add_toxic(
        api,
        "echo",
        "latency",
        name="l",
        toxicity=0.5,
        attributes={"latency": 10, "jitter": 2},
    )
    status, toxic = raw(
        api,
        "PATCH",
        "/proxies/echo/toxics/l",
        b'{"attributes": {"jitter": 5}, "stream": "upstream"}',
    )
    assert status == 200
    assert toxic["attributes"] == {"latency": 10, "jitter": 5}
    assert (toxic["stream"], toxic["toxicity"]) == ("downstream", 0.5)
    toxic = client.update_toxic(api, "echo", "l", toxicity=1.0)
    assert (toxic["toxicity"], toxic["attributes"]["latency"]) == (1.0, 10)
    bad = b'{"attributes": {"latency": "x"}}'
    assert raw(api, "POST", "/proxies/echo/toxics/l", bad)[0] == 400
    assert client.remove_toxic(api, "echo", "l") is None
    assert raw(api, "DELETE", "/proxies/echo/toxics/l")[0] == 404


def test_populate_creates_updates_and_keeps_others(
    api: str, echo_server: TcpServer
) -> None:
    client.create_proxy(api, "keep", echo_server.address)
    client.add_toxic(api, "keep", "latency")
    items = [
        {"name": "a", "listen": "127.0.0.1:0", "upstream": echo_server.address},
        {
            "name": "b",
            "listen": "127.0.0.1:0",
            "upstream": echo_server.address,
            "enabled": False,
        },
    ]
    status, body = raw(api, "POST", "/populate", json.dumps(items).encode())
    assert status == 201
    assert [p["name"] for p in body["proxies"]] == ["a", "b"]
    assert [p["enabled"] for p in body["proxies"]] == [True, False]
    # Same listen and upstream: left as it is (port, state and toxics); different: replaced.
    a = body["proxies"][0]
    again = client.populate(
        api,
        [
            {"name": "a", "listen": a["listen"], "upstream": echo_server.address},
            {"name": "keep", "listen": "127.0.0.1:0", "upstream": echo_server.address},
        ],
    )
    assert again[0] == a
    assert again[1]["toxics"] == []
    assert set(client.proxies(api)) == {"a", "b", "keep"}
    with connect(listen_port(a)) as sock:
        round_trip(sock)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{bad", "bad request body: "),
        (b'{"name": "x"}', "bad request body: "),
        (
            b'[{"name": "ok", "upstream": "127.0.0.1:1"}, {"upstream": "127.0.0.1:1"}]',
            "missing required field: name at proxy 2",
        ),
        (
            b'[{"name": "ok", "upstream": "127.0.0.1:1"}, {"name": "y"}]',
            "missing required field: upstream at proxy 2",
        ),
        (
            b'[{"name": "d", "upstream": "127.0.0.1:1"}, {"name": "d", "upstream": "127.0.0.1:1"}]',
            "duplicate proxy name",
        ),
    ],
)
def test_populate_rejects_bad_input_without_changes(
    api: str, body: bytes, error: str
) -> None:
    status, got = raw(api, "POST", "/populate", body)
    assert status == 400
    assert got["status"] == 400
    assert got["error"].startswith(error)
    assert got["proxies"] is None
    assert client.proxies(api) == {}


def test_populate_bind_failure_reports_what_was_applied(
    api: str, echo_server: TcpServer
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = f"127.0.0.1:{busy.getsockname()[1]}"
        items = [
            {"name": "first", "listen": "127.0.0.1:0", "upstream": echo_server.address},
            {"name": "second", "listen": taken, "upstream": echo_server.address},
        ]
        status, got = raw(api, "POST", "/populate", json.dumps(items).encode())
    assert status == 500
    assert [p["name"] for p in got["proxies"]] == ["first"]
    assert "second" not in client.proxies(api)


def test_reset_is_204(api: str) -> None:
    assert raw(api, "POST", "/reset") == (204, None)


def test_browsers_are_refused_like_upstream(api: str) -> None:
    parts = urlsplit(api)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
        assert conn.getresponse().status == 403
    finally:
        conn.close()


def test_client_raises_typed_errors(api: str, echo_proxy: int) -> None:
    cases = [
        (lambda: client.get_proxy(api, "nope"), 404, "proxy not found"),
        (
            lambda: client.update_proxy(api, "nope", enabled=False),
            404,
            "proxy not found",
        ),
        (lambda: client.delete_proxy(api, "nope"), 404, "proxy not found"),
        (lambda: client.toxics(api, "nope"), 404, "proxy not found"),
        (lambda: client.remove_toxic(api, "echo", "nope"), 404, "toxic not found"),
        (lambda: client.update_toxic(api, "echo", "nope"), 404, "toxic not found"),
        (lambda: client.get_toxic(api, "echo", "nope"), 404, "toxic not found"),
        (lambda: client.add_toxic(api, "echo", "nosuch"), 400, "invalid toxic type"),
        (
            lambda: client.create_proxy(api, "", "127.0.0.1:1"),
            400,
            "missing required field: name",
        ),
        (
            lambda: client.populate(api, [{"name": "x"}]),
            400,
            "missing required field: upstream at proxy 1",
        ),
    ]
    for call, status, message in cases:
        with pytest.raises(ToxiproxyError) as err:
            call()
        assert (err.value.status, err.value.message) == (status, message)


def test_client_unreachable_server_is_status_0() -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{spare.getsockname()[1]}"
    spare.close()
    with pytest.raises(ToxiproxyError) as err:
        client.version(url, timeout=1.0)
    assert err.value.status == 0


def test_client_times_out() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ToxiproxyError) as err:
            client.proxies(url, timeout=0.3)
    assert err.value.status == 0


@pytest.mark.parametrize(
    "command",
    [["-m", "chaosml.proxy"], ["-m", "chaosml.cli", "proxy"]],
    ids=["python-m-chaosml.proxy", "chaosml-proxy"],
)
def test_python_m_chaosml_proxy_serves_config(
    tmp_path: Path, echo_server: TcpServer, command: list[str]
) -> None:
    config = tmp_path / "proxies.json"
    config.write_text(
        json.dumps(
            [{"name": "cfg", "listen": "127.0.0.1:0", "upstream": echo_server.address}]
        )
    )
    proc = subprocess.Popen(
        [sys.executable, *command, "--port", "0", "--config", str(config)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        proxy = client.get_proxy(url, "cfg")
        with connect(listen_port(proxy)) as sock:
            round_trip(sock)
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        assert proc.stdout is not None
        proc.stdout.close()
