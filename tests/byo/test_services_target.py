"""ServicesTarget: a user's services supervised on 127.0.0.1, a dependency behind the fault proxy, kill and restart."""

import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from chaosml.model.experiment import EntrySpec, LinkSpec, ServiceSpec, TargetSpec
from chaosml.proxy import client
from chaosml.targets.services import ServicesTarget

HERE = Path(__file__).resolve().parent


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_services_links_kill_and_teardown(tmp_path: Path) -> None:
    dep = socket.socket()
    dep.bind(("127.0.0.1", 0))
    dep.listen(8)
    dep.settimeout(5)
    accepted: list[bytes] = []

    def serve_dep() -> None:  # a stand-in TCP dependency: reads one message per connection
        for _ in range(2):  # bounded
            try:
                conn, _ = dep.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    accepted.append(conn.recv(64))
                except OSError:
                    accepted.append(b"")

    threading.Thread(target=serve_dep, daemon=True).start()
    spec = TargetSpec(
        stack="custom", restart_delay=0.5,
        services=(ServiceSpec(name="model", command=("{python}", str(HERE / "echo_server.py"), "{port}"),
                              health="/health", replicas=2, env={"DEP": "{link:feature-store}", "WHO": "{name}"}),),
        links=(LinkSpec(name="feature-store", upstream=f"127.0.0.1:{dep.getsockname()[1]}", env="DEP_ADDR"),),
        entry=EntrySpec(service="model"),
    )
    events: list = []
    target = ServicesTarget(spec, tmp_path / "target", on_event=events.append)
    with target:
        links = target.links()
        assert sorted(links) == ["feature-store", "gateway", "model-0", "model-1"]
        listen = links["feature-store"]["listen"]
        # every replica reaches the dependency through its link, by env var or placeholder
        for i in range(2):
            direct = f"http://127.0.0.1:{target._ports[f'model-{i}']}"
            assert _get(f"{direct}/env/DEP_ADDR")["value"] == listen
            assert _get(f"{direct}/env/DEP")["value"] == listen
            assert _get(f"{direct}/env/WHO")["value"] == f"model-{i}"
        host, port = listen.split(":")
        with socket.create_connection((host, int(port)), timeout=2) as s:
            s.sendall(b"PING")
        deadline = time.monotonic() + 5
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted == [b"PING"]  # through the proxy to the upstream
        api = target.proxy_api_url
        assert api is not None and client.get_proxy(api, "feature-store", timeout=2)["enabled"] is True
        # the entry answers through gateway -> front -> model-<i>
        req = urllib.request.Request(f"{target.entry_url}/infer", data=b'{"inputs": []}', method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
        # pod-kill semantics: kill one replica, the supervisor restarts it
        assert [m.name for m in target.members("model")] == ["model-0", "model-1"]
        target.kill(["model-1"])
        time.sleep(0.2)
        assert target.wait_group_ready("model", 15)
        pids = target.describe()["pids"]
    kinds = [(e.kind, e.subject) for e in events]
    assert ("replica_killed", "model-1") in kinds and kinds.count(("replica_started", "model-1")) == 2
    for pid in pids.values():  # stop() reaped every process it started
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    dep.close()


class _Echo:
    """A stand-in TCP dependency that echoes every message (bounded: closes with the test)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(10)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for _ in range(50):  # bounded
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    while data := conn.recv(64):
                        conn.sendall(data)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def _round_trip_ms(addr: str) -> float:
    host, port = addr.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        t = time.monotonic()
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        return (time.monotonic() - t) * 1000


def test_several_named_dependency_links_take_faults_one_by_one(tmp_path: Path) -> None:
    """Two dependencies behind their own links; a latency fault on one leaves the other alone."""
    from chaosml.faults.base import FaultContext, make_injector
    from chaosml.faults.networklatency import NetworkLatencyParams
    from chaosml.model.experiment import FaultSpec

    store, payments = _Echo(), _Echo()
    spec = TargetSpec(
        stack="custom", restart_delay=0.5,
        services=(ServiceSpec(name="model", command=("{python}", str(HERE / "echo_server.py"), "{port}"),
                              health="/health", replicas=1, env={"PAY": "{link:payments-db}"}),),
        links=(LinkSpec(name="feature-store", upstream=store.address, env="STORE_ADDR"),
               LinkSpec(name="payments-db", upstream=payments.address, env="PAYMENTS_ADDR")),
        entry=EntrySpec(service="model"),
    )
    try:
        with ServicesTarget(spec, tmp_path / "target") as target:
            links = target.links()
            assert {"feature-store", "payments-db"} <= set(links)
            direct = f"http://127.0.0.1:{target._ports['model-0']}"
            assert _get(f"{direct}/env/PAYMENTS_ADDR")["value"] == links["payments-db"]["listen"]
            assert _get(f"{direct}/env/PAY")["value"] == links["payments-db"]["listen"]
            assert _get(f"{direct}/env/STORE_ADDR")["value"] == links["feature-store"]["listen"]
            fault = FaultSpec(name="slow-payments", type="network-latency", at=0, duration=1,
                              params=NetworkLatencyParams(link="payments-db", latency_ms=150, stream="downstream"))
            inj = make_injector(fault, target, FaultContext())
            inj.undo_record(0)
            assert inj.apply(0).ok
            slow = _round_trip_ms(links["payments-db"]["listen"])
            fast = _round_trip_ms(links["feature-store"]["listen"])
            assert slow >= 140 and fast < 100, (slow, fast)
            assert inj.recover(0).ok
            assert _round_trip_ms(links["payments-db"]["listen"]) < 100
    finally:
        store.close()
        payments.close()
