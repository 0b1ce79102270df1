"""Named ports per replica (issue 18 item 1): `ports: [http, grpc, metrics]`, `{port.NAME}`, health and entry on a chosen one."""

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from chaosml.errors import ExperimentError, TargetError
from chaosml.loader import load_experiment_text
from chaosml.model.codec import experiment_from_dict, experiment_to_dict
from chaosml.model.experiment import EntrySpec, ServiceSpec, TargetSpec
from chaosml.targets.services import ServicesTarget

HERE = Path(__file__).resolve().parent
SERVER = HERE / "three_port_server.py"

EXPERIMENT = """\
version: 1
title: three ports
target:
  platform: local
  restart_delay: 1s
  services:
    - name: model
      command: ["{{python}}", "{server}", --http, "{{port.http}}", --grpc, "{{port.grpc}}", --metrics, "{{port.metrics}}"]
      ports: {ports}
      health: /v2/health/ready{extra}
      replicas: {replicas}
      start_timeout: 20s
  entry: {{service: model, port: http}}
request:
  path: /v2/models/m/infer
  body: kserve-v2
  outputs: [predict_proba]
response:
  prediction: outputs[name=predict_proba].data
  confidence: outputs[name=predict_proba].data
  model_version: model_version
  served_by: not-exposed
  replica: not-exposed
load:
  users: 2
  duration: 8s
faults:
  - {{name: kill, type: pod-kill, at: 3s, duration: 3s, params: {{service: model}}}}
"""


def text(ports: str = "[http, grpc, metrics]", replicas: int = 2, extra: str = "") -> str:
    return EXPERIMENT.format(server=SERVER, ports=ports, replicas=replicas, extra=extra)


def issues(t: str) -> list[str]:
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(t, "e.yaml")
    return [str(i) for i in exc.value.issues]


def test_ports_as_a_list_or_a_mapping() -> None:
    svc = load_experiment_text(text(), "e.yaml").target.services[0]
    assert dict(svc.ports) == {"http": None, "grpc": None, "metrics": None} and svc.health_port is None
    exp = load_experiment_text(text("{http: auto, grpc: auto, metrics: 9464}", replicas=1, extra="\n      health_port: metrics"), "e.yaml")
    svc = exp.target.services[0]
    assert dict(svc.ports) == {"http": None, "grpc": None, "metrics": 9464} and svc.health_port == "metrics"
    data = json.loads(json.dumps(experiment_to_dict(exp)))  # as the journal keeps it
    assert data["target"]["services"][0]["ports"] == {"http": None, "grpc": None, "metrics": 9464}
    assert experiment_from_dict(data) == exp


def test_port_mistakes_are_located_before_the_run() -> None:
    t = text("[http, metrics]")
    col = t.splitlines()[7].index('"{port.grpc}"') + 1
    assert issues(t) == [
        f"e.yaml:8:{col}: target.services[0].command[5]: placeholder {{port.grpc}}: no port 'grpc' in target.services[0].ports "
        "(ports: http, metrics)"]
    # two replicas pinned to one port: refused with the port named
    assert issues(text("{http: 8080, grpc: auto, metrics: auto}")) == [
        "e.yaml:9:21: target.services[0].ports.http: port 8080 is pinned, but replicas: 2 would all bind it (all but one fail "
        "with 'address already in use'); write auto for a free port per replica, or replicas: 1"]
    assert issues(text("{http: 8080, grpc: 8080, metrics: auto}", replicas=1)) == [
        "e.yaml:9:33: target.services[0].ports.grpc: port 8080 is pinned twice (also target.services[0].ports.http); "
        "give each its own port, or auto"]
    assert issues(text(extra="\n      health_port: metric")) == [
        "e.yaml:11:20: target.services[0].health_port: no port 'metric' in ports (did you mean 'metrics'?) (ports: http, grpc, metrics)"]
    assert issues(text().replace("port: http}", "port: htp}")) == [
        "e.yaml:13:33: target.entry.port: no port 'htp' in the ports of service 'model' (did you mean 'http'?) (ports: http, grpc, metrics)"]
    assert issues(text("[http, 9grpc, metrics]")) == [
        "e.yaml:9:21: target.services[0].ports[1]: '9grpc' is not a port name (a letter, then letters, digits, '_' or '-', at most 32)"]
    assert issues(text("{http: 0, grpc: auto, metrics: auto}")) == [
        "e.yaml:9:21: target.services[0].ports.http: expected a port number (1-65535) or auto, got an integer (0)"]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_three_ports_per_replica_each_free(tmp_path: Path) -> None:
    spec = load_experiment_text(text(), "e.yaml").target
    with ServicesTarget(spec, tmp_path / "target") as target:
        named = target.describe()["named_ports"]
        assert sorted(named) == ["model-0", "model-1"]
        every = [p for ports in named.values() for p in ports.values()]
        assert len(set(every)) == 6  # a free port per name per replica
        for member, ports in named.items():
            assert _get(f"http://127.0.0.1:{ports['http']}/ports") == ports  # the server got the three it was given
            with socket.create_connection(("127.0.0.1", ports["grpc"]), timeout=2):
                pass
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5) as r:
                assert r.status == 200
            assert target._ports[member] == ports["http"]  # health on the first port
        # clients enter on entry.port through gateway -> front -> model-<i>
        links = target.links()
        assert {links[f"model-{i}"]["upstream"] for i in range(2)} == {f"127.0.0.1:{named[f'model-{i}']['http']}" for i in range(2)}
        req = urllib.request.Request(f"{target.entry_url}/v2/models/m/infer", method="POST", headers={"Content-Type": "application/json"},
                                     data=b'{"inputs": [{"name": "x", "data": [1]}], "outputs": [{"name": "predict_proba"}]}')
        with urllib.request.urlopen(req, timeout=5) as r:
            assert [o["name"] for o in json.loads(r.read())["outputs"]] == ["predict_proba"]


def test_health_and_entry_on_other_ports(tmp_path: Path) -> None:
    spec = TargetSpec(
        stack="custom",
        services=(ServiceSpec(name="model", command=(sys.executable, str(SERVER), "--http", "{port.http}", "--grpc", "{port.grpc}",
                                                     "--metrics", "{port}"),
                              ports={"http": None, "grpc": None, "metrics": None}, health_port="metrics", health="/metrics"),),
        entry=EntrySpec(service="model", port="http", proxy=False),
    )
    with ServicesTarget(spec, tmp_path / "target") as target:
        ports = target.describe()["named_ports"]["model-0"]
        assert target._ports["model-0"] == ports["metrics"]  # {port} and the probe: the health port
        assert _get(f"{target.entry_url}/ports") == ports  # the front forwards to the entry port


def test_pinned_port_conflicts_are_refused_at_start_with_the_port_named(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()[1]
    shared = TargetSpec(
        stack="custom",
        services=tuple(ServiceSpec(name=n, command=(sys.executable, str(SERVER)), ports={"http": taken}, health="tcp") for n in ("a", "b")),
        entry=EntrySpec(service="a", proxy=False),
    )
    with pytest.raises(TargetError, match=rf"port {taken} is pinned for both a-0 port http \(a.ports.http\) and b-0 port http "
                                          r"\(b.ports.http\): two replicas cannot bind one port"):
        ServicesTarget(shared, tmp_path / "t1").start(timeout_s=5)
    with socket.create_server(("127.0.0.1", 0)) as holder:
        busy = holder.getsockname()[1]
        one = TargetSpec(stack="custom", entry=EntrySpec(service="a", proxy=False),
                         services=(ServiceSpec(name="a", command=(sys.executable, str(SERVER)), ports={"http": busy}, health="tcp"),))
        with pytest.raises(TargetError, match=rf"port {busy} for a-0 port http \(a.ports.http\) is not free on 127.0.0.1 "
                                              r"\(Address already in use\): another process holds it"):
            ServicesTarget(one, tmp_path / "t2").start(timeout_s=5)
    assert not (tmp_path / "t1" / "a-0.log").exists()  # refused before anything was started


@pytest.mark.slow
def test_run_against_a_three_port_server(tmp_path: Path) -> None:
    exp = tmp_path / "e.yaml"
    exp.write_text(text())
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = (tmp_path / "r").iterdir()
    samples = (run / "samples.csv").read_text().splitlines()
    header = samples[0].split(",")
    ok = [dict(zip(header, line.split(","))) for line in samples[1:]]
    ok = [r for r in ok if r["outcome"] == "ok"]
    assert len(ok) > 10 and {(r["prediction"], r["confidence"], r["model_version"]) for r in ok} == {("1", "0.8", "three-port-1")}


def test_a_server_missing_a_port_fails_fast_and_says_why(tmp_path: Path) -> None:
    spec = TargetSpec(
        stack="custom", restart_delay=0.3,
        services=(ServiceSpec(name="model", command=(sys.executable, str(SERVER), "--http", "{port.http}", "--grpc", "{port.grpc}"),
                              ports={"http": None, "grpc": None, "metrics": None}, health="/v2/health/ready", start_timeout=60),),
        entry=EntrySpec(service="model", port="http", proxy=False),
    )
    with pytest.raises(TargetError) as exc:
        ServicesTarget(spec, tmp_path / "target").start()
    text = str(exc.value)
    assert re.match(r"services gave up after (\d+\.\d) s \(of 75 s allowed\): every one not ready is crash-looping", text), text
    assert float(re.findall(r"gave up after (\d+\.\d) s", text)[0]) < 25  # the harness's own measure, far below 75 s
    assert re.search(r"  model-0: crash-looping: exited \d+ times without becoming ready \(exit codes 2, 2, 2(, 2)*; \d+ restarts\)", text), text
    assert "      error: no port for metrics: this server needs --http, --grpc and --metrics" in text
