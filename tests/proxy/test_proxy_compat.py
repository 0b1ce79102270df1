"""The fault proxy against Toxiproxy 2.8.0's recorded responses (issue 19), item by item.

Toxiproxy cannot run here, so its answers are data: each case is the request sent
to both servers and Toxiproxy's status and body (api.go, gorilla/mux, net/http).
Deliberate differences are tested as such and listed in chaosml/proxy/server.py.
"""

from __future__ import annotations

import http.client
import json
import logging
from urllib.parse import urlsplit

import pytest
from proxy_support import connect, round_trip

from chaosml.proxy import client
from chaosml.proxy.apierrors import MAX_BODY_BYTES


def send(
    api: str, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes, str]:
    """One request; returns (status, raw body bytes, Content-Type)."""
    parts = urlsplit(api)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, data, response.getheader("Content-Type", "")


# (method, path, body) -> Toxiproxy 2.8.0's (status, body), for requests whose
# answer does not depend on ports. ``None`` body: compare parsed JSON instead.
TOXIPROXY_ANSWERS = [
    # Unknown route: net/http's NotFound text.
    ("GET", "/nosuch", None, 404, b"404 page not found\n"),
    ("POST", "/proxies/echo/toxics/t/extra", b"{}", 404, b"404 page not found\n"),
    # Known route, other method: gorilla/mux answers 405 with no body.
    ("PUT", "/proxies", b"{}", 405, b""),
    ("DELETE", "/version", None, 405, b""),
    ("PUT", "/proxies/echo", b"{}", 405, b""),
    # Errors: the JSON then a newline (http.Error), compact as json.Marshal writes it.
    ("GET", "/proxies/nope", None, 404, b'{"error":"proxy not found","status":404}\n'),
    (
        "GET",
        "/proxies/echo/toxics/nope",
        None,
        404,
        b'{"error":"toxic not found","status":404}\n',
    ),
    (
        "POST",
        "/proxies/echo/toxics",
        b'{"type": "nosuch"}',
        400,
        b'{"error":"invalid toxic type","status":400}\n',
    ),
    # /populate of nothing: Go marshals the nil result slice as null.
    ("POST", "/populate", b"[]", 201, b'{"proxies":null}'),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"), TOXIPROXY_ANSWERS
)
def test_answers_match_toxiproxy_byte_for_byte(
    api: str,
    echo_proxy: int,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    expected: bytes,
) -> None:
    got_status, got_body, _ = send(api, method, path, body)
    assert (got_status, got_body) == (status, expected)


def test_errors_keep_the_json_content_type(api: str) -> None:
    # Deliberate difference: Go's http.Error serves the same bytes as text/plain.
    status, body, content_type = send(api, "GET", "/proxies/nope")
    assert status == 404
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"error": "proxy not found", "status": 404}


def test_toxicity_outside_0_1_is_accepted_with_a_warning(
    api: str, echo_proxy: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Toxiproxy 2.8.0: 200 and the toxic as sent.
    with caplog.at_level(logging.WARNING, logger="chaosml.proxy.server"):
        status, body, _ = send(
            api,
            "POST",
            "/proxies/echo/toxics",
            b'{"type": "latency", "toxicity": 1.5, "attributes": {"latency": 40}}',
        )
    assert status == 200
    assert json.loads(body) == {
        "attributes": {"latency": 40, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.5,
    }
    assert "toxicity 1.5 is outside [0, 1]" in caplog.text
    with connect(echo_proxy) as sock:  # above 1: always applies
        assert round_trip(sock) >= 0.04
    status, body, _ = send(
        api, "PATCH", "/proxies/echo/toxics/latency_downstream", b'{"toxicity": -0.5}'
    )
    assert (status, json.loads(body)["toxicity"]) == (200, -0.5)
    with connect(echo_proxy) as sock:  # below 0: never applies
        assert round_trip(sock) < 0.04


def test_negative_times_are_accepted_with_a_warning_and_act_as_zero(
    api: str, echo_proxy: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Toxiproxy 2.8.0: 200 and the attributes as sent; its timers fire at once.
    with caplog.at_level(logging.WARNING, logger="chaosml.proxy.toxics"):
        status, body, _ = send(
            api,
            "POST",
            "/proxies/echo/toxics",
            b'{"type": "latency", "attributes": {"latency": -1, "jitter": -5}}',
        )
    assert status == 200
    assert json.loads(body)["attributes"] == {"latency": -1, "jitter": -5}
    assert "attributes.latency = -1 is negative" in caplog.text
    for kind, attribute in [("slow_close", "delay"), ("slicer", "delay")]:
        toxic = client.add_toxic(api, "echo", kind, attributes={attribute: -3})
        assert toxic["attributes"][attribute] == -3
    with connect(echo_proxy) as sock:
        assert round_trip(sock, b"x" * 100) < 0.1


@pytest.mark.parametrize(
    ("kind", "attributes"),
    [
        ("bandwidth", {"rate": -1}),
        ("slicer", {"average_size": -10}),
        ("limit_data", {"bytes": -1}),
    ],
)
def test_negative_sizes_stay_refused(
    api: str, echo_proxy: int, kind: str, attributes: dict[str, int]
) -> None:
    # Deliberate difference: Toxiproxy accepts these, then panics on the first data
    # (negative slice bounds / make length), which kills the whole server.
    body = json.dumps({"type": kind, "attributes": attributes}).encode()
    status, got, _ = send(api, "POST", "/proxies/echo/toxics", body)
    assert status == 400
    assert json.loads(got)["error"].startswith("bad request body: attributes.")


def test_upstream_without_a_port_is_accepted_and_its_connections_fail(
    api: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Toxiproxy 2.8.0: 201; each connection is then closed (dial error logged).
    with caplog.at_level(logging.WARNING, logger="chaosml.proxy.server"):
        status, body, _ = send(
            api, "POST", "/proxies", b'{"name": "x", "upstream": "nohostport"}'
        )
    assert status == 201
    proxy = json.loads(body)
    assert (proxy["upstream"], proxy["enabled"], proxy["toxics"]) == (
        "nohostport",
        True,
        [],
    )
    assert "upstream 'nohostport' is not host:port" in caplog.text
    port = int(proxy["listen"].rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.settimeout(5)
        try:
            assert sock.recv(10) == b""
        except ConnectionResetError:
            pass


def test_a_1_1_mb_populate_of_11700_proxies_is_accepted(api: str) -> None:
    # Toxiproxy 2.8.0 took a 1.1 MB /populate of 11,695 proxies; ours was refused (1 MiB).
    items = [
        {
            "name": f"proxy-{i:06d}",
            "listen": "127.0.0.1:0",
            "upstream": f"127.0.0.1:{10000 + i % 50000}",
            "enabled": False,
        }
        for i in range(11_700)
    ]
    body = json.dumps(items).encode()
    assert len(body) > 1_100_000
    status, got, _ = send(api, "POST", "/populate", body)
    assert status == 201
    proxies = json.loads(got)["proxies"]
    assert len(proxies) == 11_700
    assert proxies[-1]["name"] == "proxy-011699"
    assert len(client.proxies(api)) == 11_700


def test_a_body_over_the_bound_is_413_in_the_error_shape(api: str) -> None:
    body = b"[" + b" " * MAX_BODY_BYTES + b"]"
    status, got, content_type = send(api, "POST", "/populate", body)
    assert status == 413
    assert content_type.startswith("application/json")
    assert json.loads(got) == {
        "error": f"bad request body: larger than {MAX_BODY_BYTES} bytes",
        "status": 413,
    }
    assert client.proxies(api) == {}
