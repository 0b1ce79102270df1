"""The http_errors toxic (a chaosml extension): the declared share of HTTP responses is replaced, framing stays right."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable

import pytest
from proxy_support import HOST, TcpServer, listen_port

from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.proxy.toxics import HttpErrors, http_message_end

BODY = json.dumps({"prediction": 1, "confidence": 0.93, "served_by": "primary"}).encode()
REQUESTS = 400


def _http_upstream(chunked: bool) -> Callable[[socket.socket], None]:
    """A keep-alive HTTP/1.1 server answering every GET with BODY (Content-Length, or chunked in two pieces)."""

    def handle(conn: socket.socket) -> None:
        pending = b""
        for _ in range(10 * REQUESTS):  # bounded: one request per turn
            while b"\r\n\r\n" not in pending:
                data = conn.recv(65536)
                if not data:
                    return
                pending += data
            _, _, pending = pending.partition(b"\r\n\r\n")
            if chunked:
                half = len(BODY) // 2
                body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (BODY[:half], BODY[half:])) + b"0\r\n\r\n"
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            else:
                body = BODY
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY)
            conn.sendall(head + body)

    return handle


def _count(port: int, n: int) -> dict[str, int]:
    """Send ``n`` GETs over ONE keep-alive connection; count what came back."""
    counts = {"ok": 0, "status": 0, "empty": 0, "malformed": 0}
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        for _ in range(n):
            conn.request("GET", "/predict")
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                counts["status"] += 1
                assert r.status == 503 and json.loads(body)["served_by"] == "http_errors"
            elif not body:
                counts["empty"] += 1
            else:
                try:
                    assert json.loads(body) == json.loads(BODY)
                    counts["ok"] += 1
                except ValueError:
                    counts["malformed"] += 1
    finally:
        conn.close()
    return counts


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("mode", ["status", "empty", "malformed"])
def test_the_declared_share_of_responses_is_replaced(
    api: str, tcp_server: Callable[[Callable[[socket.socket], None]], TcpServer], mode: str, chunked: bool
) -> None:
    upstream = tcp_server(_http_upstream(chunked))
    port = listen_port(client.create_proxy(api, "svc", upstream.address))
    client.add_toxic(api, "svc", "http_errors", attributes={"permille": 250, "mode": mode})
    counts = _count(port, REQUESTS)
    # binomial(400, 0.25): mean 100, sd 8.7; +/- 4 sd
    assert 65 <= counts[mode] <= 135, counts
    assert counts["ok"] + counts[mode] == REQUESTS, counts  # nothing else: framing never broke


def test_no_response_is_replaced_at_share_zero_and_removal_restores_the_stream(
    api: str, tcp_server: Callable[[Callable[[socket.socket], None]], TcpServer]
) -> None:
    upstream = tcp_server(_http_upstream(False))
    port = listen_port(client.create_proxy(api, "svc", upstream.address))
    client.add_toxic(api, "svc", "http_errors", name="e", attributes={"permille": 0})
    assert _count(port, 50)["ok"] == 50
    client.update_toxic(api, "svc", "e", attributes={"permille": 1000})
    assert _count(port, 20)["status"] == 20
    client.remove_toxic(api, "svc", "e")
    assert _count(port, 50)["ok"] == 50


def test_bad_attributes_are_refused(api: str, tcp_server: Callable[[Callable[[socket.socket], None]], TcpServer]) -> None:
    upstream = tcp_server(_http_upstream(False))
    client.create_proxy(api, "svc", upstream.address)
    with pytest.raises(ToxiproxyError) as e:
        client.add_toxic(api, "svc", "http_errors", attributes={"permille": 10, "mode": "garbled"})
    assert e.value.status == 400 and "mode: must be one of status, empty, malformed" in e.value.message


def test_a_toxic_removed_mid_response_loses_no_byte() -> None:
    """The bytes of an incomplete response kept in the toxic's state go on first when it is removed."""
    toxic = HttpErrors(permille=1000)
    state = toxic.new_state()
    state.buffer += b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"
    assert toxic.pending(state) == bytes(state.buffer)
    assert http_message_end(state.buffer) is None
    state.buffer += b"67890"
    assert http_message_end(state.buffer) == len(state.buffer)


def test_message_end_framing() -> None:
    assert http_message_end(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\nHTTP/1.1") == len(b"HTTP/1.1 204 No Content\r\nServer: x\r\n\r\n")
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    assert http_message_end(chunked + b"next") == len(chunked)
    assert http_message_end(chunked[:-2]) is None
    assert http_message_end(b"HTTP/1.1 200 OK\r\n\r\nuntil close") is None
    replaced = HttpErrors(permille=1000, mode="malformed").replace(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\": 1}")
    assert replaced == b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{\"a\""


def test_a_stream_that_is_not_http_passes_unchanged(api: str, echo_proxy: int) -> None:
    """Redis (RESP) or any other bytes on the link: the toxic neither holds nor changes them."""
    from proxy_support import connect, recv_exactly

    client.add_toxic(api, "echo", "http_errors", attributes={"permille": 1000})
    with connect(echo_proxy) as sock:
        for payload in (b"+PONG\r\n", b"*1\r\n$4\r\nPING\r\n", b"HTTX"):
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload
