"""LocalTarget end to end: real redis-server, replicas and gateway on 127.0.0.1; kills and restarts."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from testutil import unless_fetch_timed_out

from chaosml.records import TargetEvent
from chaosml.targets.base import Target, TargetError
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import load_dataset

DS = load_dataset()


def post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url + "/predict", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, json.loads(body) if body.startswith(b"{") else {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_nothing_left(run_dir: Path) -> None:
    history = json.loads((run_dir / "pids.json").read_text())["history"]
    assert history and not [h for h in history if alive(h["pid"])]
    out = subprocess.run(["pgrep", "-f", str(run_dir)], check=False, capture_output=True, text=True)
    assert out.stdout.strip() == ""


class Events:
    def __init__(self) -> None:
        self.items: list[TargetEvent] = []
        self.lock = threading.Lock()

    def __call__(self, ev: TargetEvent) -> None:
        with self.lock:
            self.items.append(ev)

    def of(self, subject: str, kind: str) -> list[TargetEvent]:
        with self.lock:
            return [e for e in self.items if e.subject == subject and e.kind == kind]


def wait_for(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_hardened_survives_replica_and_feature_store_kills(tmp_path: Path) -> None:
    ev = Events()
    run_dir = tmp_path / "run-hardened"
    t = LocalTarget(run_dir, profile="hardened", replicas=2, restart_delay_s=1.0, on_event=ev)
    with t:
        assert isinstance(t, Target)
        d = t.describe()
        assert d["profile"] == "hardened" and d["replicas"] == ["model-0", "model-1"]
        assert set(d["pids"]) == {"proxy", "redis", "model-0", "model-1", "gateway"}
        assert t.entry_url.startswith("http://127.0.0.1:")
        # every hop goes through a proxy link; the harness's own views stay direct
        links = t.links()
        assert set(links) == {"feature-store", "model-0", "model-1", "gateway"}
        assert t.entry_url == f"http://{links['gateway']['listen']}" != t.gateway_url
        assert d["replica_redis_url"] == f"redis://{links['feature-store']['listen']}/0"
        assert links["feature-store"]["upstream"] == f"127.0.0.1:{d['ports']['redis']}"
        assert d["proxy_api_url"] == f"http://127.0.0.1:{d['ports']['proxy']}" and d["links"] == links
        assert t.groups() == ["proxy", "feature-store", "model", "gateway"]
        rows = [int(i) for i in DS.test_idx[:20]]
        answers = [unless_fetch_timed_out(lambda i=i: post(t.entry_url, DS.row_payload(i))) for i in rows[:4]]
        assert all(s == 200 and b["served_by"] == "primary" for s, b in answers), answers
        assert {b["replica"] for _, b in answers} == {"model-0", "model-1"}

        old_pid = t.members("model")[0].pid
        t.kill(["model-0"])
        answers = [unless_fetch_timed_out(lambda i=i: post(t.entry_url, DS.row_payload(i))) for i in rows]
        assert [s for s, _ in answers] == [200] * 20
        assert all(b["served_by"] == "primary" and b["replica"] == "model-1" for _, b in answers)
        assert t.wait_group_ready("model", 15)
        restarted = ev.of("model-0", "replica_started")[-1]
        ready = ev.of("model-0", "replica_ready")[-1]
        exited = ev.of("model-0", "replica_exited")[-1]
        assert restarted.detail["pid"] != old_pid and restarted.t - exited.t >= 0.9
        print(f"model-0 restart-to-ready {ready.t - restarted.t:.2f}s, exit-to-ready {ready.t - exited.t:.2f}s")
        assert ready.t - restarted.t < 3

        # feature store outage: replicas fall back; redis comes back empty and is re-seeded
        t.kill(["redis"])
        answers = [post(t.entry_url, DS.row_payload(i)) for i in rows[:10]]
        assert all(s == 200 and b["served_by"] == "fallback" for s, b in answers), answers
        assert wait_for(lambda: ev.of("redis", "feature_store_seeded"), 10)
        assert wait_for(lambda: post(t.entry_url, DS.row_payload(rows[0]))[1]["served_by"] == "primary", 5)

        # the proxy is supervised too: killed, restarted, its links created again on the same ports
        t.kill(["proxy"])
        assert wait_for(lambda: ev.of("proxy", "proxy_links_restored"), 10)
        assert wait_for(lambda: post(t.entry_url, DS.row_payload(rows[0]))[0] == 200, 5)

        with pytest.raises(TargetError):
            t.kill(["model-9"])
    assert_nothing_left(run_dir)
    assert not t.members("model")[0].running
    t.stop()  # idempotent


@pytest.mark.slow
def test_naive_gateway_gives_502_for_a_dead_replica(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-naive"
    with LocalTarget(run_dir, profile="naive", replicas=2, restart_delay_s=3.0) as t:
        assert post(t.entry_url, DS.row_payload(0))[0] == 200
        t.kill(["model-1"])
        time.sleep(0.1)
        statuses = [post(t.entry_url, DS.row_payload(int(i)))[0] for i in DS.test_idx[:10]]
        assert statuses.count(502) >= 4 and statuses.count(200) >= 4, statuses
        assert t.wait_group_ready("model", 15)
        statuses = [post(t.entry_url, DS.row_payload(int(i)))[0] for i in DS.test_idx[:10]]
        assert statuses == [200] * 10
    assert_nothing_left(run_dir)


def test_without_the_proxy_everything_is_direct(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-direct"
    with LocalTarget(run_dir, profile="hardened", replicas=1, proxy=False) as t:
        assert t.links() == {} and t.proxy_api_url is None
        assert t.entry_url == t.gateway_url
        d = t.describe()
        assert d["replica_redis_url"] == t.redis_url and "proxy" not in d["pids"]
        assert post(t.entry_url, DS.row_payload(0))[0] == 200
    assert_nothing_left(run_dir)


def test_start_failure_tears_down_and_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from chaosml.stack import featurestore

    monkeypatch.setattr(featurestore, "redis_server_binary", lambda: Path("/nonexistent/redis-server"))
    t = LocalTarget(tmp_path / "run-bad", replicas=1)
    with pytest.raises(TargetError, match="redis-server"):
        t.start(timeout_s=10)
    t.stop()


@pytest.mark.slow
def test_hardened_breaker_transitions_become_target_events(tmp_path: Path) -> None:
    """Stopping Redis under traffic opens the replicas' circuit breakers; the target reports it."""
    import json as _json
    import urllib.request

    from chaosml.workload.builtin_dataset import load_dataset

    events: list = []
    ds = load_dataset()
    body = _json.dumps(ds.row_payload(int(ds.test_idx[0]))).encode()
    with LocalTarget(tmp_path / "run", profile="hardened", replicas=1, restart_delay_s=0.5, on_event=events.append) as t:
        t.stop_member("redis")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(e.kind == "breaker_transition" for e in events):
            req = urllib.request.Request(t.entry_url + "/predict", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=2) as r:
                assert _json.loads(r.read())["served_by"] in ("fallback", "default")
            time.sleep(0.05)
        t.start_member("redis")
    opened = [e for e in events if e.kind == "breaker_transition"]
    assert opened and opened[0].subject == "model-0" and opened[0].detail == {"from": "closed", "to": "open"}
