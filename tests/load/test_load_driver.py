"""Real runs of the load process (``python -m chaosml.load``) against a tiny 127.0.0.1 HTTP server.

The pytest process never imports locust: the driver always runs in a child process.
"""

from __future__ import annotations

import csv
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from testutil import serving

from chaosml.load.config import (
    EXIT_INVALID_INPUT,
    LoadConfig,
    LoadConfigError,
    parse_progress,
    start_load,
)
from chaosml.load.samples import SampleWriter
from chaosml.records import SAMPLE_COLUMNS
from chaosml.workload.payload_file import encode_body, load_payloads

OK_BODY = {
    "prediction": 1,
    "confidence": 0.9,
    "served_by": "primary",
    "model_version": "v",
    "replica": "r0",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        code: int
        out: dict[str, Any]
        if self.path != "/predict":
            code, out = 404, {}
        elif b"REJECT" in body:
            code, out = 422, {"served_by": "rejected", "error": "invalid input"}
        elif b"BOOM" in body:
            code, out = 500, {"error": "boom"}
        elif b"NOPRED" in body:
            code, out = 200, {k: v for k, v in OK_BODY.items() if k != "prediction"}
        else:
            if b"SLOW" in body:
                time.sleep(1.0)
            code, out = 200, OK_BODY
        data = json.dumps(out).encode()
        if b"EMPTY" in body:  # what dependency-errors' empty and malformed modes do to a 200
            data = b""
        elif b"HALF" in body:
            data = data[: len(data) // 2]
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # client gave up (timeout test)
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # broken pipes from clients that timed out are expected


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.bodies = []  # type: ignore[attr-defined]
    with serving(srv):
        yield srv


def _url(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PAYLOADS = {
    "clean": [
        {"body": {"features": [1.0, 2.0]}, "label": 1, "entity_id": 10},
        {"body": {"features": [3.0, 4.0]}, "label": 0, "entity_id": 11},
    ],
    "garbage": [{"body": {"raw": "REJECT \udcff\udcfe{not json"}, "label": 0, "entity_id": 20}],
    "boom": [{"body": {"features": "BOOM"}, "label": 1, "entity_id": 30}],
    "slow": [{"body": {"features": "SLOW"}, "label": 1, "entity_id": 40}],
    "empty": [{"body": {"features": "EMPTY"}, "label": 1, "entity_id": 50}],
    "half": [{"body": {"features": "HALF"}, "label": 1, "entity_id": 60}],
    "nopred": [{"body": {"features": "NOPRED"}, "label": 1, "entity_id": 70}],
}


def _config(tmp_path: Path, target_url: str, **kw: Any) -> LoadConfig:
    payloads_file = tmp_path / "payloads.json"
    payloads_file.write_text(json.dumps(PAYLOADS))
    base = LoadConfig(
        target_url=target_url,
        path="/predict",
        users=3,
        spawn_rate=50.0,
        duration_s=3.0,
        rate_per_user=5.0,
        request_timeout_s=2.0,
        mix={"clean": 6.0, "garbage": 2.0, "boom": 2.0},
        payloads_file=str(payloads_file),
        samples_file=str(tmp_path / "run" / "samples.csv"),
        progress_interval_s=0.5,
        seed=7,
    )
    return replace(base, **kw)


class _Run:
    """A started load process with its stdout drained by a thread."""

    def __init__(self, config: LoadConfig, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / "load.stderr"
        with open(self.stderr_path, "w") as err:
            self.proc = start_load(config, tmp_path / "load.json", stderr=err)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait(self, timeout: float) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        finally:
            self._reader.join(timeout=5)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        return rc

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def records(self) -> list[dict[str, Any]]:
        out = [parse_progress(line) for line in self.lines]
        assert all(r is not None for r in out), self.lines  # nothing else on stdout
        return [r for r in out if r is not None]


def _rows(path: str) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def test_run_records_one_row_per_request(server: _Server, tmp_path: Path) -> None:
    config = _config(tmp_path, _url(server))
    started = time.time()
    run = _Run(config, tmp_path)
    samples = Path(config.samples_file)
    rows_while_running = 0
    deadline = time.monotonic() + 15
    while run.proc.poll() is None and time.monotonic() < deadline:
        if samples.exists():
            rows_while_running = max(rows_while_running, len(samples.read_text().splitlines()) - 1)
            if rows_while_running >= 5:
                break
        time.sleep(0.1)
    assert run.proc.poll() is None, "load process ended before rows could be observed"
    assert rows_while_running >= 5  # the file grows during the run, not only at exit

    assert run.wait(timeout=15) == 0, run.stderr
    header, rows = _rows(config.samples_file)
    assert tuple(header) == SAMPLE_COLUMNS
    expected = config.users * config.rate_per_user * config.duration_s  # type: ignore[operator]
    assert 0.5 * expected <= len(rows) <= 1.3 * expected, len(rows)
    assert len(rows) == len(server.bodies)  # type: ignore[attr-defined]

    by_cohort = Counter(r["cohort"] for r in rows)
    assert set(by_cohort) == {"clean", "garbage", "boom"}
    assert 0.4 <= by_cohort["clean"] / len(rows) <= 0.8, by_cohort

    for r in rows:
        assert started - 1 <= float(r["t"]) <= time.time()
        assert 0 < float(r["latency_ms"]) < 2000
        if r["cohort"] == "clean":
            assert (r["status"], r["outcome"], r["served_by"]) == ("200", "ok", "primary")
            assert (r["prediction"], r["confidence"]) == ("1", "0.9")
            assert (r["replica"], r["model_version"]) == ("r0", "v")
            assert (r["label"], r["entity_id"]) in {("1", "10"), ("0", "11")}
        elif r["cohort"] == "garbage":
            assert (r["status"], r["outcome"], r["served_by"]) == ("422", "rejected", "rejected")
            assert (r["prediction"], r["confidence"], r["replica"]) == ("", "", "")
            assert (r["label"], r["entity_id"]) == ("0", "20")
        else:
            assert (r["status"], r["outcome"], r["served_by"]) == ("500", "error", "")

    # raw bodies go out byte for byte (lone surrogates -> the original bytes)
    assert b"REJECT \xff\xfe{not json" in server.bodies  # type: ignore[attr-defined]

    records = run.records()
    progress = [r for r in records if r["type"] == "progress"]
    done = [r for r in records if r["type"] == "done"]
    assert len(done) == 1 and records[-1] is done[0]
    assert done[0]["requests"] == len(rows)
    assert config.duration_s <= done[0]["duration_s"] < config.duration_s + 3
    assert done[0]["stopped_by"] == "duration"
    ticks = done[0]["tick_offsets"]  # seeded first-send offsets: users do not send in lock-step
    assert ticks["seed"] == config.seed and ticks["users"] == config.users
    assert 0 < ticks["max_s"] < 1 / config.rate_per_user  # type: ignore[operator]
    assert 3 <= len(progress) <= 7, progress
    for p in progress:
        assert set(p) == {"type", "started_at", "elapsed_s", "requests", "rps", "success_ratio", "p99_ms", "cpu_s"}
        assert 0 <= p["cpu_s"] <= done[0]["cpu_s"]  # the load's own CPU seconds, growing
        assert p["started_at"] <= min(float(r["t"]) for r in rows)  # no request before the recorded load start
    assert [p["requests"] for p in progress] == sorted(p["requests"] for p in progress)
    busy = [p for p in progress if p["requests"] > 0 and p["success_ratio"] is not None]
    assert busy and all(0 <= p["success_ratio"] <= 1 and p["p99_ms"] > 0 for p in busy)
    assert any(p["rps"] > 5 for p in progress)


def test_connection_refused_gives_status_0_errors(tmp_path: Path) -> None:
    config = _config(
        tmp_path, f"http://127.0.0.1:{_closed_port()}", users=2, duration_s=1.5, mix={"clean": 1.0}
    )
    run = _Run(config, tmp_path)
    assert run.wait(timeout=15) == 0, run.stderr
    _, rows = _rows(config.samples_file)
    assert len(rows) >= 4
    assert {(r["status"], r["outcome"], r["served_by"], r["prediction"]) for r in rows} == {
        ("0", "error", "", "")
    }
    assert run.records()[-1]["requests"] == len(rows)


def test_request_timeout_gives_timeout_outcome(server: _Server, tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        _url(server),
        users=2,
        duration_s=1.5,
        request_timeout_s=0.3,
        mix={"slow": 1.0, "clean": 1.0},
    )
    run = _Run(config, tmp_path)
    assert run.wait(timeout=15) == 0, run.stderr
    _, rows = _rows(config.samples_file)
    slow = [r for r in rows if r["cohort"] == "slow"]
    assert slow
    for r in slow:
        assert (r["status"], r["outcome"], r["served_by"]) == ("0", "timeout", "")
        assert 250 <= float(r["latency_ms"]) < 1000
    assert {r["outcome"] for r in rows if r["cohort"] == "clean"} == {"ok"}


def test_sigterm_stops_cleanly_with_rows_flushed(server: _Server, tmp_path: Path) -> None:
    config = _config(tmp_path, _url(server), users=2, duration_s=30.0)
    run = _Run(config, tmp_path)
    deadline = time.monotonic() + 10
    while not run.lines and time.monotonic() < deadline:  # first progress line: load is flowing
        time.sleep(0.05)
    assert run.lines, run.stderr
    time.sleep(0.3)
    run.proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert run.wait(timeout=10) == 0, run.stderr
    assert time.monotonic() - t0 < 5
    _, rows = _rows(config.samples_file)
    done = run.records()[-1]
    assert done["type"] == "done" and done["stopped_by"] == "SIGTERM"
    assert done["requests"] == len(rows) >= 3
    assert done["duration_s"] < 10
    assert len(rows) == len(server.bodies)  # type: ignore[attr-defined]


def test_appends_to_existing_samples_file_without_second_header(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    row = (1.5, 2.25, 200, "ok", "primary", 1, 0.9, 1, "clean", 3, "r0", "v")
    for _ in range(2):
        w = SampleWriter(path)
        w.append(row)
        w.append((2.0, 1.0, 0, "error", None, None, None, None, "clean", None, None, None))
        assert w.flush() == 2
        w.close()
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(SAMPLE_COLUMNS)
    assert lines[1:] == ["1.5,2.25,200,ok,primary,1,0.9,1,clean,3,r0,v", "2.0,1.0,0,error,,,,,clean,,,"] * 2

    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(LoadConfigError, match="exists with header 'a,b'"):
        SampleWriter(foreign)


def test_config_round_trip_and_every_error_reported(tmp_path: Path) -> None:
    config = _config(tmp_path, "http://127.0.0.1:1")
    assert LoadConfig.from_json(config.to_json()) == config
    assert LoadConfig.from_json(replace(config, rate_per_user=None).to_json()).rate_per_user is None

    bad = json.loads(config.to_json())
    bad.update(users=0, spawn_rate=-1, path="predict", mix={"clean": -1}, extra=1)
    del bad["duration_s"]
    with pytest.raises(LoadConfigError) as e:
        LoadConfig.from_json(json.dumps(bad))
    assert e.value.issues == ["duration_s: missing", "unknown field 'extra'"]
    del bad["extra"]
    bad["duration_s"] = float("nan")
    with pytest.raises(LoadConfigError) as e:
        LoadConfig.from_json(json.dumps(bad))
    assert e.value.issues == [
        "path: must start with '/', got 'predict'",
        "users: must be an integer >= 1, got 0",
        "spawn_rate: must be > 0, got -1",
        "duration_s: must be a finite number, got nan",
        "mix.clean: must be >= 0, got -1",
    ]


def test_parse_progress() -> None:
    assert parse_progress('{"type": "progress", "requests": 3}\n') == {"type": "progress", "requests": 3}
    assert parse_progress(b'{"type":"done","requests":9,"duration_s":1.0}') == {
        "type": "done",
        "requests": 9,
        "duration_s": 1.0,
    }
    for line in ("", "hello", "{broken", '{"type": "log"}', "[1]"):
        assert parse_progress(line) is None


def test_payloads_checked_against_mix(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"clean": [{"body": {"a": 1}, "label": 1, "entity_id": 2}], "empty": []}))
    loaded = load_payloads(path, {"clean": 1.0, "unused": 0.0})
    assert loaded["clean"][0].body == b'{"a":1}'
    with pytest.raises(LoadConfigError) as e:
        load_payloads(path, {"clean": 1.0, "empty": 1.0, "missing": 2.0})
    assert e.value.issues == [
        f"{path}: empty: must be a non-empty list of payloads",
        f"{path}: cohort 'missing' from the mix has no payloads",
    ]
    with pytest.raises(LoadConfigError, match="payload file not found"):
        load_payloads(tmp_path / "nope.json", {"clean": 1.0})
    assert encode_body({"raw": "x\udcff"}) == b"x\xff"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"users": 0}, "users: must be an integer >= 1, got 0"),
        ({"mix": {"clean": 1.0, "nope": 1.0}}, "cohort 'nope' from the mix has no payloads"),
        ({"payloads_file": "/nonexistent/payloads.json"}, "payload file not found"),
    ],
)
def test_bad_config_exits_4_with_one_line(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    config = _config(tmp_path, "http://127.0.0.1:1")
    raw = json.loads(config.to_json()) | change
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.load", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == EXIT_INVALID_INPUT
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"chaosml.load: {path}: invalid config: ")
    assert message in lines[0]
    assert not Path(config.samples_file).exists()


def test_config_side_never_imports_locust() -> None:
    code = (
        "import sys, chaosml.load, chaosml.load.config, chaosml.workload.payload_file, chaosml.load.samples\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent', 'geventhttpclient'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def _wait_catching(pid: int, sig: signal.Signals, timeout: float = 20.0) -> None:
    """Until the process catches ``sig`` (its SigCgt mask in /proc): a signal sent earlier would meet the default action
    of an interpreter still starting, which no code of ours can handle (a fixed sleep raced it on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (sig - 1)):
            return
        time.sleep(0.005)
    raise AssertionError(f"the load process did not install its {sig.name} handler within {timeout} s")


def test_sigterm_before_load_starts_exits_cleanly(server: _Server, tmp_path: Path) -> None:
    config = _config(tmp_path, _url(server), duration_s=30.0)
    run = _Run(config, tmp_path)
    _wait_catching(run.proc.pid, signal.SIGTERM)  # its early handler is in place; locust is (most likely) still importing
    run.proc.send_signal(signal.SIGTERM)
    assert run.wait(timeout=10) == 0, run.stderr
    done = run.records()[-1]
    assert done["type"] == "done" and done["stopped_by"] == "SIGTERM"
    header, rows = _rows(config.samples_file)
    assert tuple(header) == SAMPLE_COLUMNS and done["requests"] == len(rows)


def test_a_load_shape_moves_the_users_at_each_stage_boundary(server: _Server, tmp_path: Path) -> None:
    # load.shape (issue 17): 2 users for 2 s, 8 users for 2 s, 2 users again; 5 req/s per user
    config = _config(tmp_path, _url(server), duration_s=6.0, users=8, mix={"clean": 1.0},
                     stages=[[2.0, 2, 100.0], [4.0, 8, 100.0], [6.0, 2, 100.0]])
    run = _Run(config, tmp_path)
    assert run.wait(timeout=30) == 0, run.stderr
    started = next(r for r in run.records() if r["type"] == "progress")["started_at"]
    _, rows = _rows(config.samples_file)
    per_stage = Counter(min(2, int((float(r["t"]) - started) // 2.0)) for r in rows)
    low, high, back = per_stage[0], per_stage[1], per_stage[2]
    assert 0.5 * 20 <= low <= 1.5 * 20, per_stage  # 2 users x 5 req/s x 2 s
    assert 0.6 * 80 <= high <= 1.3 * 80, per_stage  # 8 users x 5 req/s x 2 s
    assert 0.5 * 20 <= back <= 1.5 * 20, per_stage
    assert high > 2.5 * max(low, back), per_stage


def test_bad_stages_are_invalid_config(tmp_path: Path) -> None:
    issues = _config(tmp_path, "http://127.0.0.1:9", stages=[[2.0, 2, 0.0], [1.0, -1, 5.0]]).validate()
    assert [i.split(":")[0] for i in issues] == ["stages[0]", "stages[1]"]
    assert _config(tmp_path, "http://127.0.0.1:9", stages=[]).validate() == [
        "stages: must be a non-empty list of [end_s, users, spawn_rate]"]


LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Api(HttpUser):
    host = "http://example.invalid"  # chaosml points every user at the run's target instead
    wait_time = constant(0.05)

    @task
    def predict(self):
        self.client.post("/predict", json={"features": [1.0, 2.0]})
        self.client.post("/predict", json={"features": "BOOM"}, name="boom")
"""


def test_a_users_locustfile_sends_the_load_and_every_request_is_one_sample(server: _Server, tmp_path: Path) -> None:
    # issue 17: a user's own locustfile instead of the dataset-driven load; one sample row per request
    (tmp_path / "mine.py").write_text(LOCUSTFILE)
    config = _config(tmp_path, _url(server), duration_s=2.0, users=2, rate_per_user=None, locustfile=str(tmp_path / "mine.py"))
    run = _Run(config, tmp_path)
    assert run.wait(timeout=30) == 0, run.stderr
    _, rows = _rows(config.samples_file)
    done = run.records()[-1]
    assert rows and len(rows) == len(server.bodies) == done["requests"]  # type: ignore[attr-defined]
    by_name = Counter(r["cohort"] for r in rows)
    assert set(by_name) == {"/predict", "boom"} and abs(by_name["/predict"] - by_name["boom"]) <= 2
    started = next(r for r in run.records() if r["type"] == "progress")["started_at"]
    for r in rows:
        assert float(r["latency_ms"]) > 0 and float(r["t"]) >= started
        assert (r["label"], r["entity_id"]) == ("", "")  # no dataset row: these columns stay empty
        if r["cohort"] == "/predict":
            assert (r["status"], r["outcome"], r["served_by"], r["prediction"], r["confidence"]) == ("200", "ok", "primary", "1", "0.9")
        else:
            assert (r["status"], r["outcome"], r["served_by"]) == ("500", "error", "")


def test_a_locustfile_without_users_is_invalid_input(server: _Server, tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("X = 1\n")
    config = _config(tmp_path, _url(server), locustfile=str(tmp_path / "empty.py"))
    run = _Run(config, tmp_path)
    assert run.wait(timeout=30) == EXIT_INVALID_INPUT
    assert "defines no User class" in run.stderr


#: the response mapping that reads the test server's answers as the reference reader does
MAPPING = {"prediction": "prediction", "confidence": "confidence", "served_by": "served_by", "model_version": "model_version",
           "replica": "replica"}


@pytest.mark.parametrize("response", [None, MAPPING], ids=["reference", "mapping"])
def test_a_2xx_without_an_answer_is_invalid_never_ok(server: _Server, tmp_path: Path, response: dict[str, str] | None) -> None:
    # promise 1: a 200 whose body is empty, cut or has no prediction is no success (fails before: yes, all were ok)
    config = _config(tmp_path, _url(server), users=4, duration_s=2.0, response=response,
                     mix={"clean": 1.0, "empty": 1.0, "half": 1.0, "nopred": 1.0})
    run = _Run(config, tmp_path)
    assert run.wait(timeout=30) == 0, run.stderr
    _, rows = _rows(config.samples_file)
    by_cohort = Counter(r["cohort"] for r in rows)
    assert set(by_cohort) == {"clean", "empty", "half", "nopred"}, by_cohort
    for r in rows:
        expected = "ok" if r["cohort"] == "clean" else "invalid"
        assert (r["status"], r["outcome"]) == ("200", expected), r
        if r["cohort"] != "nopred":
            assert r["prediction"] == ("1" if r["cohort"] == "clean" else ""), r
    assert {r["served_by"] for r in rows if r["cohort"] == "nopred"} == {"primary"}  # the fields that are there are still read
    # the live success counter counts ok only: about a quarter here, never all
    progress = [p for p in run.records() if p["type"] == "progress" and p["success_ratio"] is not None]
    assert progress and max(p["success_ratio"] for p in progress) < 1.0


LOCUSTFILE_EMPTY = """
from locust import HttpUser, constant, task


class Api(HttpUser):
    wait_time = constant(0.05)

    @task
    def predict(self):
        self.client.post("/predict", json={"features": [1.0, 2.0]})
        self.client.post("/predict", json={"features": "EMPTY"}, name="empty")
"""


@pytest.mark.parametrize(("response", "empty_outcome"), [(None, "ok"), (MAPPING, "invalid")], ids=["no-mapping", "mapping"])
def test_a_locustfile_classifies_answers_only_with_a_response_mapping(server: _Server, tmp_path: Path,
                                                                       response: dict[str, str] | None, empty_outcome: str) -> None:
    # the file may call any endpoint: without a mapping chaosml cannot know what an answer is, so a 2xx stays ok
    (tmp_path / "mine.py").write_text(LOCUSTFILE_EMPTY)
    config = _config(tmp_path, _url(server), duration_s=1.5, users=2, rate_per_user=None, response=response,
                     locustfile=str(tmp_path / "mine.py"))
    run = _Run(config, tmp_path)
    assert run.wait(timeout=30) == 0, run.stderr
    _, rows = _rows(config.samples_file)
    outcomes = {(r["cohort"], r["status"], r["outcome"]) for r in rows}
    assert outcomes == {("/predict", "200", "ok"), ("empty", "200", empty_outcome)}
