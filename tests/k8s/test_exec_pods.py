"""Exec pods (real local processes run by the simulated kubelet) and the simulated
kube-proxy for NodePorts (kubeproxy.NodePortProxy), against the real control plane.

A Deployment's pods annotated ``chaosml.test/exec: "true"`` run a tiny HTTP server
(``python -c SERVER``) on 127.0.0.1:$(POD_PORT); a NodePort Service selects them; the
proxy forwards connections round robin to the Ready, non-terminating ones.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pytest
from k8s_stack import deployment_doc, wait_for
from kubelet import EXEC_ANNOTATION, REPO_ROOT, SimulatedKubelet, expand
from kubeproxy import NodePortProxy

pytestmark = pytest.mark.k8s

SERVER = r"""
import http.server, json, os, signal, subprocess, sys, time
PORT = int(sys.argv[1])
NAME = os.environ["POD_NAME"]
T0 = time.monotonic()
READY_AFTER = float(os.environ.get("READY_AFTER", "0"))
if os.environ.get("IGNORE_SIGTERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
CHILD = subprocess.Popen(["sleep", "300"]).pid if os.environ.get("SPAWN_CHILD") == "1" else None

class H(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body, ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            ok = time.monotonic() - T0 >= READY_AFTER
            return self._send(200 if ok else 503, b"ok" if ok else b"starting")
        if self.path == "/info":
            env = {k: os.environ.get(k) for k in ("GREETING", "LITERAL", "POD_NAMESPACE", "POD_PORT")}
            body = {"pod": NAME, "port": PORT, "pid": os.getpid(), "child": CHILD, "argv": sys.argv[1:],
                    "env": env, "cwd": os.getcwd()}
            return self._send(200, json.dumps(body).encode(), "application/json")
        if self.path == "/slow":
            time.sleep(30)
        if self.path == "/exit":
            self._send(200, b"bye")
            os._exit(3)
        self._send(200, NAME.encode())

    def log_message(self, fmt, *args):
        sys.stderr.write(NAME + " " + (fmt % args) + "\n")

http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
"""


# --------------------------------------------------------------------------- helpers


def container(env: dict[str, str] | None = None, *, probe: bool = True) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "web",
        "image": "chaosml/exec:python",
        "command": [sys.executable, "-c", SERVER],
        "args": ["$(POD_PORT)"],
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        "ports": [{"name": "http", "containerPort": 8080}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    if probe:
        c["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1,
                               "failureThreshold": 20}  # fmt: skip
    return c


def exec_deployment(name: str, replicas: int, c: dict[str, Any], grace: int = 30) -> dict[str, Any]:
    return deployment_doc(name, {"app": name}, [c], replicas, annotations={EXEC_ANNOTATION: "true"}, grace=grace)


def node_port_service(name: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": app},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip


def is_ready(pod: Any) -> bool:
    st = pod.status
    if st is None or st.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])


def pods_of(core: Any, ns: str, app: str) -> list[Any]:
    return list(core.list_namespaced_pod(ns, label_selector=f"app={app}").items)


def ready_names(core: Any, ns: str, app: str) -> set[str]:
    return {p.metadata.name for p in pods_of(core, ns, app) if is_ready(p)}


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


def health(addr: tuple[str, int]) -> int | None:
    """/healthz status of a pod's server, None when nothing answers."""
    try:
        return http_get(f"http://{addr[0]}:{addr[1]}/healthz", timeout=1.0)[0]
    except OSError:
        return None


def accepts(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=0.5):
            return True
    except OSError:
        return False


def proc_start(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a pid from /proc, None when it no longer exists."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[0], fields[19]


def alive(pid: int, start: str) -> bool:
    """The same process (pid + start time) still exists and is not a zombie."""
    st = proc_start(pid)
    return st is not None and st[1] == start and st[0] not in ("Z", "X")


def exec_info(kubelet: Any, ns: str, name: str) -> dict[str, Any]:
    return dict(kubelet.exec_pods().get(f"{ns}/{name}") or {})


def info_of(kubelet: Any, ns: str, name: str) -> dict[str, Any]:
    addr = kubelet.endpoint(ns, name)
    assert addr is not None, f"{name} has no running process"
    return dict(json.loads(http_get(f"http://{addr[0]}:{addr[1]}/info")[1]))


def logs(kubelet: Any, ns: str, names: Any) -> str:
    return "\n".join(kubelet.exec_log_tail(ns, n, 15) for n in names)


class Traffic:
    """GET / through the proxy every ``interval`` in a thread: (t_send, ok, answer)."""

    def __init__(self, url: str, interval: float = 0.02, max_requests: int = 5000) -> None:
        self.url, self.interval, self.max_requests = url, interval, max_requests
        self.results: list[tuple[float, bool, str]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="traffic", daemon=True)

    def __enter__(self) -> Self:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(10)
        assert not self._t.is_alive()

    def _run(self) -> None:
        for _ in range(self.max_requests):
            if self._stop.is_set():
                return
            t = time.monotonic()
            try:
                code, body = http_get(self.url + "/", timeout=3.0)
                self.results.append((t, code == 200, body))
            except (OSError, http.client.HTTPException) as e:
                self.results.append((t, False, repr(e)))
            self._stop.wait(self.interval)


def say(capsys: pytest.CaptureFixture[str], msg: str) -> None:
    with capsys.disabled():
        print(f"\n  [exec pods] {msg}", end="")


# --------------------------------------------------------------------------- tests


def test_expand_like_kubernetes() -> None:
    v = {"A": "1", "POD_PORT": "8080"}
    assert expand("--port=$(POD_PORT)", v) == "--port=8080"
    assert expand("$(A)$(A)-$(B)", v) == "11-$(B)"  # undefined: left as is
    assert expand("$$(A) $$ $x $( $(A", v) == "$(A) $ $x $( $(A"
    assert expand("", v) == "" and expand("$", v) == "$" and expand("a$", v) == "a$"


def test_exec_deployment_ready_round_robin_and_grace0_replacement(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ns, kubelet = k8s_namespace, control_plane.kubelet
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    ready_after = 1.5
    env = {"READY_AFTER": str(ready_after), "GREETING": "hi from $(POD_NAME)", "LITERAL": "$$(POD_PORT)",
           "SPAWN_CHILD": "1"}  # fmt: skip
    apps.create_namespaced_deployment(ns, exec_deployment("web", 2, container(env)))
    core.create_namespaced_service(ns, node_port_service("web", "web"))

    # processes start: Running, but not Ready while /healthz answers 503
    def started() -> list[str]:
        pods = pods_of(core, ns, "web")
        names = [p.metadata.name for p in pods]
        running = all(p.status.phase == "Running" and kubelet.endpoint(ns, p.metadata.name) for p in pods)
        return names if len(names) == 2 and running else []

    names = wait_for(started, 30, "2 web pods Running with a process", interval=0.02)
    for n in names:
        addr = kubelet.endpoint(ns, n)
        before = health(addr)
        pod = core.read_namespaced_pod(n, ns)
        after = health(addr)
        if after != 200:  # no probe could have succeeded before the read
            assert before != 200 and not is_ready(pod), (before, after, pod.status)
            assert pod.status.phase == "Running" and pod.status.container_statuses[0].started
    wait_for(lambda: ready_names(core, ns, "web") == set(names), 30, "both web pods Ready",
             interval=0.1)  # fmt: skip
    start_to_ready = {n: exec_info(kubelet, ns, n)["start_to_ready_s"][0] for n in names}
    assert all(ready_after <= s < ready_after + 5 for s in start_to_ready.values()), start_to_ready
    times = ", ".join(f"{s:.3f} s" for s in start_to_ready.values())
    say(capsys, f"process start -> Ready (probe passes at +{ready_after:.1f} s): {times}")

    # the container spec reached the process: $(VAR) expansion, env, cwd, annotation
    infos = {n: info_of(kubelet, ns, n) for n in names}
    for n, info in infos.items():
        port = kubelet.endpoint(ns, n)[1]
        assert info["pod"] == n and info["port"] == port and info["argv"] == [str(port)]
        assert info["env"] == {"GREETING": f"hi from {n}", "LITERAL": "$(POD_PORT)", "POD_NAMESPACE": ns,
                               "POD_PORT": str(port)}  # fmt: skip
        assert info["cwd"] == str(REPO_ROOT)
        pod = core.read_namespaced_pod(n, ns)
        assert pod.metadata.annotations["chaosml.test/endpoint"] == f"127.0.0.1:{port}"
        assert pod.status.container_statuses[0].container_id == f"exec://{exec_info(kubelet, ns, n)['pid']}"

    proxy = NodePortProxy(control_plane.api_client, kubelet, ns, "web", "http")
    empty = NodePortProxy(control_plane.api_client, kubelet, ns, "nobody")
    try:
        assert proxy.selector == {"app": "web"} and 30000 <= proxy.node_port <= 32767
        wait_for(lambda: len(proxy.candidates()) == 2, 10, "2 proxy endpoints")
        answers = [http_get(proxy.url + "/")[1] for _ in range(10)]
        assert collections.Counter(answers) == {names[0]: 5, names[1]: 5}, answers
        assert all(a != b for a, b in itertools.pairwise(answers)), answers  # round robin

        # no endpoint: the connection is closed at once
        t = time.monotonic()
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, urllib.error.URLError)):
            http_get(empty.url + "/", timeout=5)
        assert time.monotonic() - t < 1.0 and empty.refused == 1

        # delete one pod with grace period 0: its process group dies, a replacement comes up
        victim, survivor = answers[0], answers[1]
        v = exec_info(kubelet, ns, victim)
        v_addr, v_pid, v_child = kubelet.endpoint(ns, victim), v["pid"], infos[victim]["child"]
        v_start, c_start = proc_start(v_pid)[1], proc_start(v_child)[1]
        with Traffic(proxy.url) as traffic:
            time.sleep(0.3)
            t0 = time.monotonic()
            core.delete_namespaced_pod(victim, ns, grace_period_seconds=0)
            wait_for(lambda: not accepts(v_addr), 10, "the victim's port to refuse connections")
            t_refused = time.monotonic() - t0
            wait_for(lambda: not alive(v_pid, v_start) and not alive(v_child, c_start), 10,
                     "the victim's process group gone")  # fmt: skip

            def replacement() -> str | None:
                new = ready_names(core, ns, "web") - {survivor, victim}
                return next(iter(new), None) if new else None

            repl = wait_for(replacement, 30, "a Ready replacement pod", interval=0.1)
            t_ready = time.monotonic() - t0
            r = exec_info(kubelet, ns, repl)
            assert r["alive"] and r["pid"] not in (v_pid, v_child) and r["restart_count"] == 0
            assert alive(r["pid"], proc_start(r["pid"])[1])
            wait_for(lambda: {c[0] for c in proxy.candidates()} == {survivor, repl}, 10,
                     "the proxy to use the replacement")  # fmt: skip
            t_after = time.monotonic()
            time.sleep(0.5)
        after = [x for x in traffic.results if x[0] >= t_after]
        assert after and all(ok for _, ok, _ in after), after
        assert {body for _, _, body in after} <= {survivor, repl}
        failed = [x for x in traffic.results if not x[1]]
        late = [x for x in failed if x[0] > t0 + 1.0]
        assert not late, late  # at most an in-flight request of the killed pod fails
        assert not [h for h in proxy.history if h[1] == victim and h[0] > t0 + 1.0]
        answers = [http_get(proxy.url + "/")[1] for _ in range(6)]
        assert collections.Counter(answers) == {survivor: 3, repl: 3}, answers
        say(capsys, f"grace-0 delete: port refused +{t_refused:.3f} s, replacement Ready +{t_ready:.3f} s, "
                    f"proxy traffic {len(traffic.results)} requests, {len(failed)} failed")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(kubelet, ns, names)}\nkubelet errors: {list(kubelet.errors)[-5:]}") from e
    finally:
        proxy.stop()
        empty.stop()


def test_graceful_deletion_the_proxy_never_forwards_to_a_terminating_pod(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The servers ignore SIGTERM and keep serving: during the 3 s grace period the
    victim still answers on its port, yet the proxy sends it no new connection once
    the kubelet saw the deletion; SIGKILL comes at the end of the grace period."""
    ns, kubelet = k8s_namespace, control_plane.kubelet
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    apps.create_namespaced_deployment(ns, exec_deployment("drain", 2, container({"IGNORE_SIGTERM": "1"}), grace=3))
    core.create_namespaced_service(ns, node_port_service("drain", "drain"))
    names = wait_for(lambda: sorted(ready_names(core, ns, "drain")) if len(ready_names(core, ns, "drain")) == 2
                     else None, 30, "2 drain pods Ready", interval=0.1)  # fmt: skip
    proxy = NodePortProxy(control_plane.api_client, kubelet, ns, "drain")
    try:
        wait_for(lambda: len(proxy.candidates()) == 2, 10, "2 proxy endpoints")
        victim = names[0]
        v = exec_info(kubelet, ns, victim)
        v_uid, v_pid, v_addr = v["uid"], v["pid"], kubelet.endpoint(ns, victim)
        v_start = proc_start(v_pid)[1]
        with Traffic(proxy.url) as traffic:
            time.sleep(0.3)
            t0 = time.monotonic()
            core.delete_namespaced_pod(victim, ns)  # the pod's grace period: 3 s
            t_term = wait_for(lambda: exec_info(kubelet, ns, victim).get("terminating_since"), 5,
                              "the kubelet to see the deletion", interval=0.005)  # fmt: skip
            # still serving on its own port, but not a proxy endpoint any more
            assert alive(v_pid, v_start) and http_get(f"http://{v_addr[0]}:{v_addr[1]}/")[1] == victim
            assert kubelet.endpoint(ns, victim, ready_only=True) is None
            time.sleep(1.0)
            assert alive(v_pid, v_start), "killed before the end of the grace period"
            wait_for(lambda: not alive(v_pid, v_start), 10, "SIGKILL at the end of the grace period")
            t_killed = time.monotonic() - t_term
            wait_for(lambda: victim not in {p.metadata.name for p in pods_of(core, ns, "drain")}, 10,
                     "the victim's pod object gone")  # fmt: skip
            wait_for(lambda: len(ready_names(core, ns, "drain")) == 2, 30, "the replacement Ready", interval=0.1)
            time.sleep(0.3)
        picks = [h for h in proxy.history if h[2] == v_uid]
        assert picks and max(h[0] for h in picks) < t_term, (t_term, picks[-3:])
        assert all(body != victim for t, _, body in traffic.results if t >= t_term)
        assert all(ok for _, ok, _ in traffic.results), [x for x in traffic.results if not x[1]]
        assert 2.5 <= t_killed <= 6.0, t_killed
        after = sum(1 for t, _, _ in traffic.results if t >= t_term)
        say(capsys, f"graceful delete: kubelet saw it +{(t_term - t0) * 1000:.1f} ms, SIGKILL +{t_killed:.2f} s "
                    f"(grace 3 s); {after} requests after that, none to the victim, 0 failed")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(kubelet, ns, names)}") from e
    finally:
        proxy.stop()


def test_exited_process_is_restarted_and_the_proxy_survives_a_dying_backend(
    control_plane: Any, k8s_namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ns, kubelet = k8s_namespace, control_plane.kubelet
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    apps.create_namespaced_deployment(ns, exec_deployment("crashy", 1, container()))
    core.create_namespaced_service(ns, node_port_service("crashy", "crashy"))
    (name,) = wait_for(lambda: ready_names(core, ns, "crashy"), 30, "the crashy pod Ready", interval=0.1)
    proxy = NodePortProxy(control_plane.api_client, kubelet, ns, "crashy")
    try:
        wait_for(lambda: proxy.candidates(), 10, "1 proxy endpoint")
        pid0 = exec_info(kubelet, ns, name)["pid"]

        # a request in flight when the backend dies: that client connection is closed
        s = socket.create_connection(proxy.address, timeout=5)
        with s:
            s.sendall(b"GET /slow HTTP/1.0\r\nHost: x\r\n\r\n")
            time.sleep(0.3)
            t0 = time.monotonic()
            os.killpg(pid0, signal.SIGKILL)  # a crash, not a deletion
            with contextlib.suppress(ConnectionResetError):
                assert s.recv(65536) == b""
            assert time.monotonic() - t0 < 2.0
        # ... the pod is down: no endpoint, connections are reset at once
        wait_for(lambda: not proxy.candidates(), 5, "no endpoint while the pod is down", interval=0.01)
        refused = proxy.refused
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, urllib.error.URLError)):
            http_get(proxy.url + "/", timeout=5)
        assert proxy.refused == refused + 1

        def restarted(n: int) -> Any:
            pod = core.read_namespaced_pod(name, ns)
            cs = pod.status.container_statuses[0]
            return pod if cs.restart_count == n and is_ready(pod) else None

        pod = wait_for(lambda: restarted(1), 30, "restartCount 1 and Ready again", interval=0.1)
        t_back = time.monotonic() - t0
        assert pod.status.container_statuses[0].last_state.terminated.exit_code == 137  # 128 + SIGKILL
        pid1 = exec_info(kubelet, ns, name)["pid"]
        assert pid1 != pid0
        wait_for(lambda: proxy.candidates(), 10, "the proxy endpoint back")
        assert http_get(proxy.url + "/")[1] == name  # the proxy survived

        # the process exits by itself (code 3): restarted again, after a longer back-off
        t1 = time.monotonic()
        addr = kubelet.endpoint(ns, name)
        assert http_get(f"http://{addr[0]}:{addr[1]}/exit")[1] == "bye"
        pod = wait_for(lambda: restarted(2), 30, "restartCount 2 and Ready again", interval=0.1)
        t_back2 = time.monotonic() - t1
        last = pod.status.container_statuses[0].last_state.terminated
        assert (last.exit_code, last.reason) == (3, "Error")
        info = exec_info(kubelet, ns, name)
        assert info["restart_count"] == 2 and info["exit_codes"] == [137, 3] and len(set(info["pids"])) == 3
        wait_for(lambda: proxy.candidates(), 10, "the proxy endpoint back")
        assert http_get(proxy.url + "/")[1] == name
        say(capsys, f"restart: crash -> Ready again {t_back:.2f} s (back-off 0.5 s), "
                    f"second exit -> Ready again {t_back2:.2f} s (back-off 1 s)")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(kubelet, ns, [name])}") from e
    finally:
        proxy.stop()


@contextlib.contextmanager
def dedicated_kubelet(control_plane: Any, tmp_path: Path) -> Iterator[tuple[SimulatedKubelet, str]]:
    """A second simulated kubelet serving a cordoned node of its own (no pod of
    another test lands there); the node is deleted afterwards."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    node = f"chaosml-exec-{uuid.uuid4().hex[:6]}"
    core = control_plane.core_v1()
    core.create_node({"metadata": {"name": node}, "spec": {"unschedulable": True}})
    kubelet = SimulatedKubelet(control_plane.control_plane.api_client, nodes=[node], exec_dir=tmp_path / "exec")
    try:
        kubelet.start()
        yield kubelet, node
    finally:
        try:
            kubelet.stop()
        finally:
            for delete in (lambda: core.delete_node(node),
                           lambda: client.CoordinationV1Api(core.api_client).delete_namespaced_lease(
                               node, "kube-node-lease")):  # fmt: skip
                try:
                    delete()
                except ApiException as e:
                    if e.status != 404:
                        raise


def test_paused_node_freezes_its_pods_and_kubelet_stop_kills_every_process(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = k8s_namespace
    core = control_plane.core_v1()
    with dedicated_kubelet(control_plane, tmp_path) as (kubelet, node):
        pod_name = "frozen"
        core.create_namespaced_pod(ns, {
            "metadata": {"name": pod_name, "labels": {"app": pod_name}, "annotations": {EXEC_ANNOTATION: "true"}},
            "spec": {"nodeName": node, "containers": [container({"SPAWN_CHILD": "1"})]},
        })  # fmt: skip
        try:
            wait_for(lambda: is_ready(core.read_namespaced_pod(pod_name, ns)), 30, "the pod Ready", interval=0.1)
            info = info_of(kubelet, ns, pod_name)
            pids = [info["pid"], info["child"]]
            starts = [proc_start(p)[1] for p in pids]
            addr = kubelet.endpoint(ns, pod_name)
            assert exec_info(kubelet, ns, pod_name)["pid"] == pids[0]
            assert (tmp_path / "exec").is_dir() and exec_info(kubelet, ns, pod_name)["log"].startswith(
                str(tmp_path / "exec"))  # fmt: skip

            kubelet.pause_node(node)
            try:
                assert [proc_start(p)[0] for p in pids] == ["T", "T"]  # SIGSTOP: the group is frozen
                assert kubelet.endpoint(ns, pod_name) == addr and kubelet.endpoint(ns, pod_name, ready_only=True) is None
                with pytest.raises(OSError):  # accepted by the kernel, never answered
                    http_get(f"http://{addr[0]}:{addr[1]}/", timeout=0.5)
            finally:
                kubelet.resume_node(node)
            assert all(proc_start(p)[0] != "T" for p in pids)
            assert http_get(f"http://{addr[0]}:{addr[1]}/")[1] == pod_name
            wait_for(lambda: is_ready(core.read_namespaced_pod(pod_name, ns)), 30, "Ready after resume", interval=0.1)

            t0 = time.monotonic()
            kubelet.stop()
            t_stop = time.monotonic() - t0
            assert not any(alive(p, s) for p, s in zip(pids, starts, strict=True)), [proc_start(p) for p in pids]
            assert not accepts(addr) and kubelet.exec_pods() == {}
            say(capsys, f"kubelet.stop(): {len(pids)} processes (leader + child) gone, stop took {t_stop:.2f} s")
        finally:
            with contextlib.suppress(Exception):
                core.delete_namespaced_pod(pod_name, ns, grace_period_seconds=0)


def _kserve_python() -> str | None:
    for cand in (os.environ.get("CHAOSML_KSERVE_PYTHON"), str(REPO_ROOT / ".venv-kserve" / "bin" / "python")):
        if cand and Path(cand).exists():
            return cand
    return None


def test_kserve_v2_server_as_an_exec_pod_behind_the_node_port(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = _kserve_python()
    if python is None:
        pytest.skip("no KServe interpreter: .venv-kserve/bin/python does not exist (nor $CHAOSML_KSERVE_PYTHON); "
                    "python -m venv .venv-kserve && .venv-kserve/bin/pip install kserve scikit-learn joblib")  # fmt: skip
    servers = REPO_ROOT / "experiments" / "servers"
    model = tmp_path / "breast_cancer.joblib"
    train = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import kserve_sklearn as k; k.train(sys.argv[2]); "
        "from sklearn.datasets import load_breast_cancer; d = load_breast_cancer(); "
        "print(json.dumps({'x': d.data[0].tolist(), 'y': int(d.target[0])}))"
    )
    proc = subprocess.run([python, "-c", train, str(servers), str(model)], capture_output=True, text=True,
                          timeout=180, check=False)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"{python} cannot train the model (kserve, scikit-learn, joblib?): {proc.stderr.strip()[-300:]}")
    sample = json.loads(proc.stdout.strip().splitlines()[-1])
    assert model.is_file()

    ns, kubelet = k8s_namespace, control_plane.kubelet
    core, apps = control_plane.core_v1(), control_plane.apps_v1()
    c = {
        "name": "kserve",
        "image": "kserve/sklearnserver:exec",
        "command": [python, str(servers / "kserve_sklearn.py")],
        "args": ["--http_port", "$(POD_PORT)", "--model_file", str(model)],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"}, "periodSeconds": 1,
                           "failureThreshold": 90},
    }  # fmt: skip
    apps.create_namespaced_deployment(ns, exec_deployment("kserve", 1, c))
    core.create_namespaced_service(ns, node_port_service("kserve", "kserve"))
    proxy = None
    try:
        (name,) = wait_for(lambda: ready_names(core, ns, "kserve"), 120, "the KServe pod Ready", interval=0.2)
        info = exec_info(kubelet, ns, name)
        assert info["probe"] == "http" and info["restart_count"] == 0
        proxy = NodePortProxy(control_plane.api_client, kubelet, ns, "kserve", "http")
        wait_for(lambda: proxy.candidates(), 10, "the proxy endpoint")
        assert http_get(proxy.url + "/v2/health/ready")[0] == 200
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": sample["x"]}]})
        req = urllib.request.Request(proxy.url + "/v2/models/breast-cancer/infer", data=body.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")  # fmt: skip
        t = time.monotonic()
        with urllib.request.urlopen(req, timeout=10) as r:
            out = json.loads(r.read())
        infer_ms = (time.monotonic() - t) * 1000
        assert out["model_name"] == "breast-cancer" and out["model_version"] == "sklearn-logreg-v1", out
        outputs = {o["name"]: o["data"] for o in out["outputs"]}
        assert outputs["predict"] == [sample["y"]] and abs(sum(outputs["probabilities"]) - 1) < 1e-6, out
        assert proxy.forwarded[name] == 2
        say(capsys, f"KServe V2 exec pod: process start -> Ready {info['start_to_ready_s'][0]:.2f} s; "
                    f"infer through the proxy {infer_ms:.1f} ms, predict {outputs['predict']}")  # fmt: skip
    except AssertionError as e:
        raise AssertionError(f"{e}\n{logs(kubelet, ns, [p.metadata.name for p in pods_of(core, ns, 'kserve')])}") from e
    finally:
        if proxy is not None:
            proxy.stop()
