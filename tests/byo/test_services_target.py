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
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - 127.0.0.1
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
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310
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
