"""benchmarks/proxy_wrk.py: reading wrk's output and rendering the table (no wrk or nginx needed)."""

from __future__ import annotations

import socket
import threading

import pytest

from benchmarks import proxy_api_ab, proxy_wrk

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:40001/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   265.38us  752.25us  12.79ms   94.78%
    Req/Sec     4.13k     2.20k    9.89k    65.00%
  Latency Distribution
     50%  151.00us
     75%  212.00us
     90%  301.00us
     99%    2.31ms
  8305 requests in 2.02s, 6.59MB read
Requests/sec:   4110.05
Transfer/sec:      3.26MB
"""


def test_parse_wrk_reads_rate_transfer_and_percentiles() -> None:
    result = proxy_wrk.parse_wrk(WRK_OUTPUT)
    assert result.req_s == 4110.05
    assert result.bytes_s == pytest.approx(3.26 * 1024 * 1024)
    assert result.p50_ms == pytest.approx(0.151)
    assert result.p99_ms == pytest.approx(2.31)


def test_parse_wrk_refuses_output_without_figures() -> None:
    with pytest.raises(RuntimeError, match="unexpected wrk output"):
        proxy_wrk.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_render_reports_ratios_goals_and_load() -> None:
    figures: dict[str, proxy_wrk.Figure] = {}
    keep_alive, latency = proxy_wrk.SCENARIOS[0], proxy_wrk.SCENARIOS[4]
    sides = [
        ("direct", 10_000.0, 0.1),
        ("proxy asyncio", 6_000.0, 0.3),
        ("proxy uvloop", 4_000.0, 0.2),
    ]
    for side, req_s, p50 in sides:
        result = proxy_wrk.WrkResult(req_s, 0.0, p50, 1.0)
        proxy_wrk.record(figures, keep_alive, side, result)
        proxy_wrk.record(figures, latency, side, result)
    data: dict[str, object] = {
        "figures": figures,
        "api_ms": {"proxy asyncio": [2.0, 4.0, 9.0], "proxy uvloop": [6.0, 7.0]},
        "churn_req_s": {"proxy asyncio": [500.0], "proxy uvloop": [700.0, 900.0]},
        "load_before": (1.0, 2.0, 3.0),
        "load_after": (1.5, 2.0, 3.0),
        "cpus": 2,
        "sides": [side for side, _, _ in sides],
        "repeats": 1,
        "duration_s": 5.0,
    }
    text = proxy_wrk.render(data)
    assert "0.60       0.40  >= 0.5: MET / MISSED" in text
    assert "+0.200ms   +0.100ms" in text
    assert "proxy asyncio: p50 4.00 ms (goal <= 5 ms: MET)" in text
    assert "proxy uvloop: p50 6.50 ms (goal <= 5 ms: MISSED)" in text
    assert "2 calls; wrk meanwhile 800 req/s" in text
    assert "load average before 1.00/2.00/3.00" in text


def test_missing_tools_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_wrk.shutil, "which", lambda _tool: None)
    assert proxy_wrk.missing_tools() == (
        "skipped: wrk and nginx not installed (Debian: apt-get install wrk nginx)"
    )
    assert proxy_wrk.main([]) == 0


def test_http_get_ms_reads_one_whole_answer_per_request() -> None:
    """The latency probe waits for the body's last byte (Content-Length), on a keep-alive socket."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
        theirs.settimeout(5)
        ours.settimeout(5)

        def finish() -> None:
            assert theirs.recv(100).startswith(b"GET / HTTP/1.1\r\n")
            theirs.sendall(b"lo")

        helper = threading.Thread(target=finish)
        helper.start()
        assert proxy_wrk.http_get_ms(ours) >= 0
        helper.join(5)
        theirs.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        assert proxy_wrk.http_get_ms(ours) >= 0
        theirs.shutdown(socket.SHUT_WR)
        with pytest.raises(RuntimeError, match="incomplete"):
            proxy_wrk.http_get_ms(ours)


def test_proxy_api_ab_skips_with_the_reason_without_wrk_or_nginx(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(proxy_wrk.shutil, "which", lambda _tool: None)
    assert proxy_api_ab.main(["--side", "A=/nowhere/a", "--side", "B=/nowhere/b"]) == 0
    assert "skipped: wrk and nginx not installed" in capsys.readouterr().out
