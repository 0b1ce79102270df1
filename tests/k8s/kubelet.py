"""A simulated kubelet (what kwok does) for the test control plane.

No container runs. In background threads it

* registers Nodes (allocatable cpu/memory/pods, Ready condition, a Lease in
  ``kube-node-lease``) and renews their leases so the node lifecycle controller
  keeps them Ready;
* watches pods bound to its nodes (``spec.nodeName``) and, ``start_delay`` seconds
  after it first sees one, patches its status to Running with PodScheduled,
  Initialized, ContainersReady and Ready conditions, a podIP, startTime and
  running, ready containerStatuses (restartCount 0);
* completes pods owned by a Job (phase Succeeded, exit code 0) ``job_pod_seconds``
  after they run (None: they run forever);
* finishes the termination of pods carrying a ``deletionTimestamp`` (delete with
  grace period 0, guarded by the pod's uid) ``delete_delay`` seconds later;
* can pause a node (no heartbeats, Ready condition Unknown or False, its pods are no
  longer served: deleted pods stay Terminating) and resume it (Ready again, its
  pods re-marked Ready), for node-failure tests.

Exec pods (opt-in, annotation ``chaosml.test/exec: "true"``): the pod's first
container runs as a real local process (argv = ``command`` + ``args`` with
Kubernetes ``$(VAR)`` expansion; env = PATH/HOME/LANG + the container's ``env`` +
``POD_PORT`` (a free 127.0.0.1 port per pod) + ``POD_NAME`` + ``POD_NAMESPACE``; cwd =
annotation ``chaosml.test/cwd`` or the repo root; stdout/stderr in
``<exec_dir>/<namespace>_<pod>_<uid8>.log``; own session/process group). The pod is
Running at process start and Ready once its ``readinessProbe`` (httpGet / tcpSocket /
exec, always sent to 127.0.0.1:POD_PORT) succeeds, or without a probe once the port
accepts TCP connections. A process that exits is restarted per ``restartPolicy``
(restartCount, lastState, CrashLoopBackOff back-off). Deletion: SIGKILL of the
process group at once for grace period 0 (or a pod gone from the API), else SIGTERM
then SIGKILL after the grace period (bounded by ``exec_max_grace``), then the pod is
deleted as for other pods. A paused node SIGSTOPs its exec pods' groups, resume
SIGCONTs them; a removed node kills them. :meth:`SimulatedKubelet.stop` (and an atexit
hook, and PR_SET_PDEATHSIG via ``setpriv`` when available) kill every exec process
group. :meth:`SimulatedKubelet.endpoint` gives a pod's ``(host, port)``,
:meth:`SimulatedKubelet.exec_pods` diagnostics. Pods without the annotation behave
exactly as before.

All loops are bounded by a stop event; :meth:`SimulatedKubelet.stop` joins them.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime as dt
import heapq
import http.client
import itertools
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("chaosml.tests.kubelet")

DEFAULT_NODE = "chaosml-worker"
LEASE_NS = "kube-node-lease"
KUBELET_VERSION = "v1.20.2"


def _owned_by_job(pod: Any) -> bool:
    return any(o.kind == "Job" for o in pod.metadata.owner_references or [])


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- exec pods: module-level helpers --------------------------------------------------

EXEC_ANNOTATION = "chaosml.test/exec"
CWD_ANNOTATION = "chaosml.test/cwd"
ENDPOINT_ANNOTATION = "chaosml.test/endpoint"
EXEC_HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
_SETPRIV = shutil.which("setpriv")  # PR_SET_PDEATHSIG without a preexec_fn (threads)

# Every exec process group still alive, by leader pid (killed by the atexit hook).
_LIVE_LOCK = threading.Lock()
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def is_exec_pod(pod: Any) -> bool:
    ann = (pod.metadata.annotations or {}) if pod.metadata else {}
    return str(ann.get(EXEC_ANNOTATION, "")).lower() == "true"


def expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion (third_party/forked/golang/expansion):
    ``$(NAME)`` -> the value when defined, else left as is; ``$$`` -> ``$``; any other
    ``$`` is kept."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    n = len(text)
    while cursor < n:
        if text[cursor] == "$" and cursor + 1 < n:
            out.append(text[checkpoint:cursor])
            nxt = text[cursor + 1]
            if nxt == "$":
                out.append("$")
                advance = 1
            elif nxt == "(":
                close = text.find(")", cursor + 2)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = text[cursor + 2 : close]
                    out.append(variables.get(name, f"$({name})"))
                    advance = close - cursor
            else:
                out.append("$" + nxt)
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(text[checkpoint:])
    return "".join(out)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((EXEC_HOST, 0))
        return int(s.getsockname()[1])


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the group leader exited? Without reaping it: while it is a zombie its pid,
    hence the group id, cannot be reused, so signalling the group stays safe."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return proc.poll() is not None
    return info is not None and info.si_pid != 0


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.returncode is not None:  # reaped: the group id may belong to someone else
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _reap(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int | None:
    """SIGKILL what is left of the group (the leader too), reap the leader."""
    _signal_group(proc, signal.SIGKILL)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    with _LIVE_LOCK:
        _LIVE.pop(proc.pid, None)
    return rc


def kill_all_exec_processes(timeout: float = 5.0) -> int:
    """SIGKILL every exec process group of every kubelet in this process (atexit)."""
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        _signal_group(p, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(max(0.05, deadline - time.monotonic()))
    with _LIVE_LOCK:
        for p in procs:
            if p.returncode is not None:
                _LIVE.pop(p.pid, None)
    return len(procs)


atexit.register(kill_all_exec_processes)


@dataclass
class _Probe:
    kind: str  # "http" | "tcp" | "exec"
    path: str = "/"
    scheme: str = "HTTP"
    headers: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_container(cls, c: Any) -> _Probe | None:
        p = c.readiness_probe
        if p is None:
            return None
        common: dict[str, Any] = {
            "initial_delay": float(p.initial_delay_seconds or 0),
            "period": float(p.period_seconds or 10),
            "timeout": float(p.timeout_seconds or 1),
            "success_threshold": int(p.success_threshold or 1),
            "failure_threshold": int(p.failure_threshold or 3),
        }
        if p.http_get is not None:
            g = p.http_get
            return cls(
                kind="http",
                path=g.path or "/",
                scheme=(g.scheme or "HTTP").upper(),
                headers={h.name: h.value for h in g.http_headers or []},
                **common,
            )
        if getattr(p, "_exec", None) is not None and p._exec.command:
            return cls(kind="exec", command=list(p._exec.command), **common)
        return cls(kind="tcp", **common)  # tcpSocket (or an unsupported kind)


@dataclass
class _ExecSpec:
    container: str
    image: str
    argv: list[str]
    env: dict[str, str]
    cwd: str
    probe: _Probe | None
    restart_policy: str
    error: str | None = None


@dataclass
class _ExecPod:
    uid: str
    namespace: str
    name: str
    node: str
    port: int
    log_path: Path
    spec: _ExecSpec
    lock: threading.Lock = field(default_factory=threading.Lock)
    wake: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    proc: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    attempts: int = 0
    restart_count: int = 0
    ready: bool = False
    ready_changed: str = ""
    started_at: str = ""
    started_mono: float = 0.0
    start_to_ready: list[float] = field(default_factory=list)
    last_state: dict[str, Any] = field(default_factory=dict)
    last_container_id: str = ""
    final_phase: str | None = None
    crash_streak: int = 0
    backoff_until: float = 0.0
    next_probe: float = 0.0
    fast_until: float = 0.0
    slow_warned: bool = False
    successes: int = 0
    failures: int = 0
    gone: bool = False
    terminating_since: float | None = None
    grace_used: float | None = None
    frozen: bool = False
    annotated: bool = False
    patched: tuple[str, bool] | None = None  # (phase, ready) last sent
    patched_mono: float = 0.0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def alive(self) -> bool:
        return self.proc is not None and not _exited(self.proc)


@dataclass
class _Node:
    name: str
    index: int
    cpu: str
    memory: str
    pods: str
    labels: dict[str, str]
    paused: bool = False
    removed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_ip: int = 2
    lease_failures: int = 0

    @property
    def ip(self) -> str:
        return f"10.0.0.{10 + self.index}"

    def alloc_pod_ip(self) -> str:
        ip = f"10.244.{self.index}.{self.next_ip}"
        self.next_ip = self.next_ip + 1 if self.next_ip < 254 else 2
        return ip


class SimulatedKubelet:
    """Simulated kubelet for one or more nodes.

    ``client_factory`` returns a new ``kubernetes.client.ApiClient``; each thread
    gets its own.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        nodes: Iterable[str] = (DEFAULT_NODE,),
        *,
        start_delay: float = 0.5,
        delete_delay: float = 0.0,
        heartbeat_interval: float = 3.0,
        lease_duration_seconds: int = 40,
        watch_timeout_seconds: int = 3,
        job_pod_seconds: float | None = 1.0,
        cpu: str = "8",
        memory: str = "32Gi",
        max_pods: str = "110",
        exec_dir: Path | str | None = None,
        exec_restart_backoff: float = 0.5,
        exec_max_backoff: float = 5.0,
        exec_max_grace: float = 30.0,
    ) -> None:
        self._factory = client_factory
        self.start_delay = start_delay
        self.delete_delay = delete_delay
        self.heartbeat_interval = heartbeat_interval
        self.lease_duration_seconds = lease_duration_seconds
        self.watch_timeout_seconds = watch_timeout_seconds
        self.job_pod_seconds = job_pod_seconds
        self._defaults = {"cpu": cpu, "memory": memory, "pods": max_pods}
        self._initial_nodes = list(nodes)
        self._nodes: dict[str, _Node] = {}
        self._node_index = itertools.count()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, str, str, str, str]] = []
        self._seq = itertools.count()
        self._scheduled: set[tuple[str, str]] = set()  # (kind, uid)
        self._latest: dict[str, Any] = {}  # uid -> last seen V1Pod
        self._pod_info: dict[str, tuple[str, str]] = {}  # uid -> (podIP, startedAt)
        self._threads: list[threading.Thread] = []
        self._clients: list[Any] = []
        self._api: client.CoreV1Api | None = None  # for calls from the caller's thread
        self._api_lock = threading.Lock()
        self.errors: collections.deque[str] = collections.deque(maxlen=200)
        self.started_pods = 0
        self.completed_pods = 0
        self.finished_deletions = 0
        self._watch_synced = threading.Event()
        # exec pods (opt-in per pod, see the module docstring)
        self._exec_dir_arg = Path(exec_dir) if exec_dir is not None else None
        self._exec_dir: Path | None = self._exec_dir_arg
        self.exec_restart_backoff = exec_restart_backoff
        self.exec_max_backoff = exec_max_backoff
        self.exec_max_grace = exec_max_grace
        self._exec: dict[str, _ExecPod] = {}  # uid -> exec pod
        self._exec_lock = threading.RLock()
        self._exec_ports: set[int] = set()
        self._exec_api: client.CoreV1Api | None = None
        self._exec_api_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _new_core(self) -> client.CoreV1Api:
        api_client = self._factory()
        self._clients.append(api_client)
        return client.CoreV1Api(api_client)

    def start(self, timeout: float = 30.0) -> SimulatedKubelet:
        if self._threads:
            return self
        self._stop.clear()
        self._api = self._new_core()
        for name in self._initial_nodes:
            self.add_node(name)
        for target, name in (
            (self._watch_loop, "kubelet-watch"),
            (self._worker_loop, "kubelet-worker"),
            (self._heartbeat_loop, "kubelet-heartbeat"),
        ):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if not self._watch_synced.wait(timeout):
            raise TimeoutError("simulated kubelet: first pod list did not complete")
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        deadline = time.monotonic() + timeout
        self._stop_exec_pods(min(10.0, timeout))
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients = []
        self._exec_api = None
        if self._exec_dir is not None and self._exec_dir_arg is None:
            if os.environ.get("CHAOSML_K8S_KEEP", "") in ("", "0"):
                shutil.rmtree(self._exec_dir, ignore_errors=True)
            self._exec_dir = None
        if alive:
            raise RuntimeError(f"simulated kubelet threads did not stop: {alive}")

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # -- nodes -----------------------------------------------------------------------

    @property
    def node_names(self) -> list[str]:
        with self._lock:
            return list(self._nodes)

    def add_node(
        self,
        name: str,
        *,
        cpu: str | None = None,
        memory: str | None = None,
        max_pods: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """Register a Node (and its Lease) and start serving its pods."""
        with self._lock:
            if name in self._nodes:
                return
            node = _Node(
                name=name,
                index=next(self._node_index),
                cpu=cpu or self._defaults["cpu"],
                memory=memory or self._defaults["memory"],
                pods=max_pods or self._defaults["pods"],
                labels={
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "chaosml-simulated",
                    **(labels or {}),
                },
            )
        with self._api_lock:
            api = self._require_api()
            body = self._node_body(node)
            try:
                api.create_node(body)
            except ApiException as e:
                if e.status != 409:
                    raise
                api.patch_node(name, {"metadata": {"labels": node.labels}})
            api.patch_node_status(name, {"status": body["status"]})
            self._renew_lease(api, node)
        with self._lock:
            self._nodes[name] = node
        self._resync_node(name)

    def remove_node(self, name: str) -> None:
        """Stop serving the node and delete the Node object (its pods are then
        garbage-collected by the control plane)."""
        with self._lock:
            node = self._nodes.pop(name, None)
        if node is None:
            return
        with node.lock:  # no heartbeat in flight re-creates the lease
            node.removed = True
        for ep in self._exec_on_node(name):
            ep.wake.set()  # node gone: its processes are killed
        with self._api_lock:
            api = self._require_api()
            for delete in (
                lambda: api.delete_node(name),
                lambda: client.CoordinationV1Api(
                    api.api_client
                ).delete_namespaced_lease(name, LEASE_NS),
            ):
                try:
                    delete()
                except ApiException as e:
                    if e.status != 404:
                        raise

    def pause_node(self, name: str, ready_status: str = "Unknown") -> None:
        """Simulate a dead/partitioned node: stop heartbeats and set its Ready
        condition to ``ready_status`` ("Unknown", as the node controller would after
        the grace period, or "False"). Its pods are no longer served."""
        if ready_status not in ("Unknown", "False"):
            raise ValueError("ready_status must be 'Unknown' or 'False'")
        node = self._node(name)
        with node.lock:
            node.paused = True
            self._freeze_node(name)
            now = _now()
            reason, message = (
                (
                    "NodeStatusUnknown",
                    "Kubelet stopped posting node status (chaosml pause).",
                )
                if ready_status == "Unknown"
                else ("KubeletNotReady", "chaosml simulated kubelet paused")
            )
            with self._api_lock:
                self._require_api().patch_node_status(
                    name,
                    {
                        "status": {
                            "conditions": [
                                {
                                    "type": "Ready",
                                    "status": ready_status,
                                    "reason": reason,
                                    "message": message,
                                    "lastHeartbeatTime": now,
                                    "lastTransitionTime": now,
                                }
                            ]
                        }
                    },
                )

    def resume_node(self, name: str) -> None:
        """Heartbeats again, Ready True; pods on the node are re-marked Ready."""
        node = self._node(name)
        with node.lock:
            with self._api_lock:
                api = self._require_api()
                api.patch_node_status(
                    name, {"status": {"conditions": self._conditions()}}
                )
                self._renew_lease(api, node)
            node.paused = False
            self._thaw_node(name)
        self._resync_node(name)

    def is_paused(self, name: str) -> bool:
        return self._node(name).paused

    def _node(self, name: str) -> _Node:
        with self._lock:
            try:
                return self._nodes[name]
            except KeyError:
                raise KeyError(f"node {name!r} is not served by this kubelet") from None

    def _require_api(self) -> client.CoreV1Api:
        if self._api is None:
            self._api = self._new_core()
        return self._api

    @staticmethod
    def _conditions(ready: str = "True") -> list[dict[str, str]]:
        now = _now()
        conds = [
            ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID"),
            ("Ready", ready, "KubeletReady"),
        ]
        return [
            {
                "type": t,
                "status": s,
                "reason": r,
                "message": "chaosml simulated kubelet",
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }
            for t, s, r in conds
        ]

    def _node_body(self, node: _Node) -> dict[str, Any]:
        resources = {
            "cpu": node.cpu,
            "memory": node.memory,
            "pods": node.pods,
            "ephemeral-storage": "100Gi",
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "labels": node.labels,
                "annotations": {"chaosml.io/simulated": "true"},
            },
            "spec": {"podCIDR": f"10.244.{node.index}.0/24"},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "conditions": self._conditions(),
                "addresses": [
                    {"type": "InternalIP", "address": node.ip},
                    {"type": "Hostname", "address": node.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, node.name).hex,
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, node.name)),
                    "bootID": str(uuid.uuid4()),
                    "kernelVersion": "simulated",
                    "osImage": "chaosml simulated kubelet",
                    "containerRuntimeVersion": "simulated://1.0",
                    "kubeletVersion": KUBELET_VERSION,
                    "kubeProxyVersion": KUBELET_VERSION,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    def _renew_lease(self, api: client.CoreV1Api, node: _Node) -> None:
        coord = client.CoordinationV1Api(api.api_client)
        spec = {
            "holderIdentity": node.name,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "renewTime": _now_micro(),
        }
        try:
            coord.patch_namespaced_lease(node.name, LEASE_NS, {"spec": spec})
        except ApiException as e:
            if e.status != 404:
                raise
            coord.create_namespaced_lease(
                LEASE_NS,
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": node.name, "namespace": LEASE_NS},
                    "spec": spec,
                },
            )

    def _heartbeat_loop(self) -> None:
        api = self._new_core()
        beats = 0
        while not self._stop.wait(self.heartbeat_interval):
            beats += 1
            with self._lock:
                nodes = list(self._nodes.values())
            for node in nodes:
                if self._stop.is_set():
                    return
                with node.lock:
                    if node.paused or node.removed:
                        continue
                    try:
                        self._renew_lease(api, node)
                        if beats % 5 == 0:  # a status refresh now and then
                            api.patch_node_status(
                                node.name,
                                {"status": {"conditions": self._conditions()}},
                            )
                    except Exception as e:  # noqa: BLE001 - keep beating
                        self._error(f"heartbeat {node.name}: {e!r}")

    # -- pods ------------------------------------------------------------------------

    def _served(self, pod: Any) -> _Node | None:
        name = pod.spec.node_name if pod.spec else None
        if not name:
            return None
        with self._lock:
            node = self._nodes.get(name)
        if node is None or node.paused:
            return None
        return node

    @staticmethod
    def _is_ready(pod: Any) -> bool:
        st = pod.status
        if st is None or st.phase != "Running":
            return False
        return any(
            c.type == "Ready" and c.status == "True" for c in st.conditions or []
        )

    def _consider(self, pod: Any) -> None:
        uid = pod.metadata.uid
        self._latest[uid] = pod
        if is_exec_pod(pod):
            self._consider_exec(pod)
            return
        if self._served(pod) is None:
            return
        ns, name = pod.metadata.namespace, pod.metadata.name
        if pod.metadata.deletion_timestamp is not None:
            self._schedule("delete", uid, ns, name, self.delete_delay)
        elif pod.status is not None and pod.status.phase in ("Succeeded", "Failed"):
            return
        elif not self._is_ready(pod):
            self._schedule("start", uid, ns, name, self.start_delay)
        elif self.job_pod_seconds is not None and _owned_by_job(pod):
            self._schedule("complete", uid, ns, name, self.job_pod_seconds)

    def _schedule(self, kind: str, uid: str, ns: str, name: str, delay: float) -> None:
        with self._cv:
            if (kind, uid) in self._scheduled:
                return
            self._scheduled.add((kind, uid))
            heapq.heappush(
                self._heap,
                (time.monotonic() + delay, next(self._seq), kind, uid, ns, name),
            )
            self._cv.notify()

    def _resync_node(self, node_name: str) -> None:
        """Consider every pod bound to ``node_name`` now (after add/resume)."""
        if not self._threads:
            return
        with self._api_lock:
            pods = self._require_api().list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={node_name}", _request_timeout=30
            )
        for pod in pods.items:
            self._consider(pod)

    def _watch_loop(self) -> None:
        api = self._new_core()
        while not self._stop.is_set():
            try:
                pods = api.list_pod_for_all_namespaces(_request_timeout=30)
                seen = set()
                for pod in pods.items:
                    seen.add(pod.metadata.uid)
                    self._consider(pod)
                for uid in list(self._latest):
                    if uid not in seen:
                        self._forget(uid)
                self._watch_synced.set()
                w = watch.Watch()
                for ev in w.stream(
                    api.list_pod_for_all_namespaces,
                    resource_version=pods.metadata.resource_version,
                    timeout_seconds=self.watch_timeout_seconds,
                    _request_timeout=(5, self.watch_timeout_seconds + 10),
                ):
                    if self._stop.is_set():
                        w.stop()
                        break
                    if ev["type"] == "ERROR":
                        break
                    pod = ev["object"]
                    if ev["type"] == "DELETED":
                        self._forget(pod.metadata.uid)
                    else:
                        self._consider(pod)
            except ApiException as e:
                if e.status != 410:  # 410 Gone: relist
                    self._error(f"watch: {e.status} {e.reason}")
                    self._stop.wait(0.5)
            except Exception as e:  # noqa: BLE001 - keep watching
                if not self._stop.is_set():
                    self._error(f"watch: {e!r}")
                    self._stop.wait(0.5)

    def _forget(self, uid: str) -> None:
        self._latest.pop(uid, None)
        self._pod_info.pop(uid, None)
        with self._exec_lock:
            ep = self._exec.get(uid)
            if ep is not None:
                ep.gone = True  # removed from the API: its process is killed
                if ep.terminating_since is None:
                    ep.terminating_since = time.monotonic()
                if ep.finished.is_set():
                    del self._exec[uid]
        if ep is not None:
            ep.wake.set()

    def _worker_loop(self) -> None:
        api = self._new_core()
        while not self._stop.is_set():
            with self._cv:
                while not self._stop.is_set():
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = self._heap[0][0] - now if self._heap else 1.0
                    self._cv.wait(min(timeout, 1.0))
                if self._stop.is_set():
                    return
                _, _, kind, uid, ns, name = heapq.heappop(self._heap)
                self._scheduled.discard((kind, uid))
            try:
                if kind == "start":
                    self._start_pod(api, uid, ns, name)
                elif kind == "complete":
                    self._complete_pod(api, uid, ns, name)
                else:
                    self._finish_deletion(api, uid, ns, name)
            except ApiException as e:
                if e.status not in (404, 409, 422):
                    self._error(f"{kind} {ns}/{name}: {e.status} {e.reason}")
            except Exception as e:  # noqa: BLE001 - keep working
                self._error(f"{kind} {ns}/{name}: {e!r}")

    def _start_pod(self, api: client.CoreV1Api, uid: str, ns: str, name: str) -> None:
        pod = self._latest.get(uid)
        if pod is None or pod.metadata.deletion_timestamp is not None:
            return
        node = self._served(pod)
        if node is not None and is_exec_pod(pod):
            if uid not in self._pod_info:
                self._pod_info[uid] = (node.alloc_pod_ip(), _now())
            self._exec_start(pod, node)
            return
        if node is None or self._is_ready(pod):
            return
        if uid not in self._pod_info:
            self._pod_info[uid] = (node.alloc_pod_ip(), _now())
        pod_ip, started = self._pod_info[uid]
        now = _now()

        def container_status(c: Any, init: bool) -> dict[str, Any]:
            cid = uuid.uuid5(uuid.NAMESPACE_OID, f"{uid}/{c.name}").hex
            state = (
                {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                "finishedAt": started, "containerID": f"simulated://{cid}"}}
                if init
                else {"running": {"startedAt": started}}
            )  # fmt: skip
            out = {
                "name": c.name,
                "image": c.image or "",
                "imageID": f"simulated://{c.image or ''}",
                "containerID": f"simulated://{cid}",
                "ready": not init,
                "restartCount": 0,
                "state": state,
                "lastState": {},
            }
            if not init:
                out["started"] = True
            return out

        conditions = [
            {
                "type": t,
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        status: dict[str, Any] = {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": node.ip,
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": started,
            "containerStatuses": [
                container_status(c, False) for c in pod.spec.containers
            ],
        }
        if pod.spec.init_containers:
            status["initContainerStatuses"] = [
                container_status(c, True) for c in pod.spec.init_containers
            ]
        api.patch_namespaced_pod_status(name, ns, {"status": status})
        self.started_pods += 1

    def _complete_pod(
        self, api: client.CoreV1Api, uid: str, ns: str, name: str
    ) -> None:
        """A Job's pod: its containers exit 0 (phase Succeeded)."""
        pod = self._latest.get(uid)
        if pod is None or pod.metadata.deletion_timestamp is not None:
            return
        if self._served(pod) is None or not self._is_ready(pod):
            return
        _, started = self._pod_info.get(uid, ("", _now()))
        now = _now()
        statuses = []
        for cs in pod.status.container_statuses or []:
            statuses.append(
                {
                    "name": cs.name,
                    "image": cs.image,
                    "imageID": cs.image_id,
                    "containerID": cs.container_id,
                    "ready": False,
                    "started": False,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": started,
                            "finishedAt": now,
                            "containerID": cs.container_id,
                        }
                    },
                }
            )
        conditions = [
            {
                "type": t,
                "status": "False" if t in ("Ready", "ContainersReady") else "True",
                "reason": "PodCompleted",
                "lastProbeTime": None,
                "lastTransitionTime": now,
            }
            for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")
        ]
        api.patch_namespaced_pod_status(
            name,
            ns,
            {
                "status": {
                    "phase": "Succeeded",
                    "conditions": conditions,
                    "containerStatuses": statuses,
                }
            },
        )
        self.completed_pods += 1

    def _finish_deletion(
        self, api: client.CoreV1Api, uid: str, ns: str, name: str
    ) -> None:
        pod = self._latest.get(uid)
        if pod is not None and self._served(pod) is None:
            return  # node paused or gone: the pod stays Terminating
        with self._exec_lock:
            ep = self._exec.get(uid)
        if ep is not None and ep.proc is not None:
            return  # its process is still being terminated: rescheduled after that
        api.delete_namespaced_pod(
            name,
            ns,
            grace_period_seconds=0,
            body={"gracePeriodSeconds": 0, "preconditions": {"uid": uid}},
        )
        self.finished_deletions += 1

    def _error(self, msg: str) -> None:
        log.warning("simulated kubelet: %s", msg)
        self.errors.append(f"{time.strftime('%H:%M:%S')} {msg}")

    # -- exec pods -------------------------------------------------------------------

    def endpoint(
        self, namespace: str, pod_name: str, *, ready_only: bool = False
    ) -> tuple[str, int] | None:
        """``(host, port)`` of the pod's running exec process, else None. With
        ``ready_only``: only while this kubelet sees it Ready, not terminating (no
        deletionTimestamp seen, not deleted) and its node not paused."""
        with self._exec_lock:
            eps = [
                ep
                for ep in self._exec.values()
                if ep.namespace == namespace and ep.name == pod_name
            ]
        for ep in eps:
            if ep.gone or ep.proc is None or ep.finished.is_set():
                continue
            if ready_only and (
                not ep.ready or ep.frozen or ep.terminating_since is not None
            ):
                continue
            return (EXEC_HOST, ep.port)
        return None

    def exec_pods(self) -> dict[str, dict[str, Any]]:
        """Diagnostics of every exec pod this kubelet handles, by ``namespace/name``
        (``#<uid8>`` appended when an older pod of that name is still handled)."""
        with self._exec_lock:
            eps = list(self._exec.values())
        out: dict[str, dict[str, Any]] = {}
        for ep in eps:
            key = ep.key if ep.key not in out else f"{ep.key}#{ep.uid[:8]}"
            proc = ep.proc
            out[key] = {
                "uid": ep.uid,
                "node": ep.node,
                "host": EXEC_HOST,
                "port": ep.port,
                "pid": proc.pid if proc is not None else None,
                "pids": list(ep.pids),
                "alive": proc is not None and not _exited(proc),
                "ready": ep.ready,
                "restart_count": ep.restart_count,
                "exit_codes": list(ep.exit_codes),
                "start_to_ready_s": [round(x, 4) for x in ep.start_to_ready],
                "terminating": ep.terminating_since is not None,
                "terminating_since": ep.terminating_since,
                "grace_used_s": ep.grace_used,
                "gone": ep.gone,
                "frozen": ep.frozen,
                "final_phase": ep.final_phase,
                "finished": ep.finished.is_set(),
                "argv": list(ep.spec.argv),
                "cwd": ep.spec.cwd,
                "probe": ep.spec.probe.kind if ep.spec.probe else None,
                "error": ep.spec.error,
                "log": str(ep.log_path),
            }
        return out

    def exec_log_tail(self, namespace: str, pod_name: str, lines: int = 40) -> str:
        """The last ``lines`` of the pod's process log (every pod of that name)."""
        with self._exec_lock:
            paths = [
                ep.log_path
                for ep in self._exec.values()
                if ep.namespace == namespace and ep.name == pod_name
            ]
        parts = []
        for path in paths:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

    @property
    def exec_dir(self) -> Path:
        """Where exec pods' logs go (a temp dir made on first use unless given;
        removed by stop() unless CHAOSML_K8S_KEEP=1)."""
        if self._exec_dir is None:
            self._exec_dir = Path(tempfile.mkdtemp(prefix="chaosml-exec-pods-"))
        self._exec_dir.mkdir(parents=True, exist_ok=True)
        return self._exec_dir

    def _exec_on_node(self, node_name: str) -> list[_ExecPod]:
        with self._exec_lock:
            return [ep for ep in self._exec.values() if ep.node == node_name]

    def _freeze_node(self, node_name: str) -> None:
        for ep in self._exec_on_node(node_name):
            with ep.lock:
                if ep.proc is not None and not ep.frozen:
                    _signal_group(ep.proc, signal.SIGSTOP)
                    ep.frozen = True
                    self._exec_log(ep, "node paused: process group stopped (SIGSTOP)")

    def _thaw_node(self, node_name: str) -> None:
        for ep in self._exec_on_node(node_name):
            with ep.lock:
                if ep.frozen:
                    if ep.proc is not None:
                        _signal_group(ep.proc, signal.SIGCONT)
                    ep.frozen = False
                    ep.patched, ep.patched_mono = None, 0.0  # re-assert its status
                    self._exec_log(
                        ep, "node resumed: process group continued (SIGCONT)"
                    )
            ep.wake.set()

    def _consider_exec(self, pod: Any) -> None:
        """Called from the watch thread: never blocks."""
        uid = pod.metadata.uid
        with self._exec_lock:
            ep = self._exec.get(uid)
        deleting = pod.metadata.deletion_timestamp is not None
        if ep is not None:
            if deleting and ep.terminating_since is None:
                ep.terminating_since = time.monotonic()
            ep.wake.set()
        if self._served(pod) is None:
            return
        ns, name = pod.metadata.namespace, pod.metadata.name
        if deleting:
            if ep is None or ep.finished.is_set():
                self._schedule("delete", uid, ns, name, self.delete_delay)
            # else: its supervisor terminates the process, then schedules the delete
        elif ep is None and (
            pod.status is None or pod.status.phase not in ("Succeeded", "Failed")
        ):
            self._schedule("start", uid, ns, name, self.start_delay)

    def _exec_spec(self, pod: Any, port: int) -> _ExecSpec:
        c = pod.spec.containers[0]
        ns, name = pod.metadata.namespace, pod.metadata.name
        ann = pod.metadata.annotations or {}
        provided = {"POD_PORT": str(port), "POD_NAME": name, "POD_NAMESPACE": ns}
        variables = dict(provided)
        for e in c.env or []:
            if e.name in provided:
                continue  # the kubelet's own values win
            if e.value is not None:
                variables[e.name] = expand(e.value, variables)
            elif e.value_from is not None and e.value_from.field_ref is not None:
                path = e.value_from.field_ref.field_path
                value = {
                    "metadata.name": name,
                    "metadata.namespace": ns,
                    "metadata.uid": pod.metadata.uid,
                    "spec.nodeName": pod.spec.node_name,
                    "status.podIP": EXEC_HOST,
                    "status.hostIP": EXEC_HOST,
                }.get(path)
                if value is not None:
                    variables[e.name] = value
            elif e.value_from is None:
                variables[e.name] = ""
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        env.setdefault("PATH", os.defpath)
        env.update(variables)
        argv = [expand(a, variables) for a in [*(c.command or []), *(c.args or [])]]
        spec = _ExecSpec(
            container=c.name,
            image=c.image or "",
            argv=argv,
            env=env,
            cwd=str(ann.get(CWD_ANNOTATION) or REPO_ROOT),
            probe=_Probe.from_container(c),
            restart_policy=pod.spec.restart_policy or "Always",
        )
        if not c.command:
            spec.error = (
                "exec pod: the first container needs a `command` (no image entrypoint)"
            )
        return spec

    def _alloc_exec_port(self) -> int:
        with self._exec_lock:
            for _ in range(100):
                port = _free_port()
                if port not in self._exec_ports:
                    self._exec_ports.add(port)
                    return port
        raise RuntimeError("simulated kubelet: no free port for an exec pod")

    def _exec_start(self, pod: Any, node: _Node) -> None:
        """Worker thread: create the pod's supervisor (which runs the process)."""
        uid = pod.metadata.uid
        if self._stop.is_set():
            return
        with self._exec_lock:
            ep = self._exec.get(uid)
            if ep is not None:
                ep.wake.set()
                return
            port = self._alloc_exec_port()
            ns, name = pod.metadata.namespace, pod.metadata.name
            ep = _ExecPod(
                uid=uid,
                namespace=ns,
                name=name,
                node=node.name,
                port=port,
                log_path=self.exec_dir / f"{ns}_{name}_{uid[:8]}.log",
                spec=self._exec_spec(pod, port),
            )
            ep.thread = threading.Thread(
                target=self._exec_supervise,
                args=(ep,),
                name=f"exec-{name}",
                daemon=True,
            )
            self._exec[uid] = ep
        ep.thread.start()

    def _exec_core(self) -> client.CoreV1Api:
        with self._exec_api_lock:
            if self._exec_api is None:
                self._exec_api = self._new_core()
            return self._exec_api

    def _exec_log(self, ep: _ExecPod, msg: str) -> None:
        with contextlib.suppress(OSError), open(ep.log_path, "a") as fh:
            fh.write(f"--- [simulated kubelet {_now()}] {msg}\n")

    def _exec_supervise(self, ep: _ExecPod) -> None:
        try:
            self._exec_loop(ep)
        except Exception as e:  # noqa: BLE001 - report, then clean up
            self._error(f"exec {ep.key}: {e!r}")
        finally:
            with ep.lock:
                proc, ep.proc = ep.proc, None
                ep.ready = False
            if proc is not None:
                rc = _reap(proc)
                self._exec_log(ep, f"process group killed (SIGKILL), exit {rc}")
            with self._exec_lock:
                self._exec_ports.discard(ep.port)
                if ep.gone and self._exec.get(ep.uid) is ep:
                    del self._exec[ep.uid]
            ep.finished.set()

    def _exec_loop(self, ep: _ExecPod) -> None:
        """The pod's supervisor: start/restart the process, probe, terminate. Each
        pass is short; the loop ends with the pod, its node or the kubelet."""
        api = self._exec_core()
        while not self._stop.is_set():
            ep.wake.clear()
            with self._lock:
                node = self._nodes.get(ep.node)
            if node is None or node.removed:
                self._exec_log(ep, f"node {ep.node} removed")
                return
            if node.paused:  # frozen by pause_node (a force-deleted pod dies on resume)
                ep.wake.wait(0.2)
                continue
            if ep.gone:
                self._exec_log(ep, "pod deleted from the API (grace period 0)")
                return
            pod = self._latest.get(ep.uid)
            if pod is None:
                ep.wake.wait(0.1)
                continue
            if pod.metadata.deletion_timestamp is not None:
                self._exec_terminate(ep, pod)
                self._schedule(
                    "delete", ep.uid, ep.namespace, ep.name, self.delete_delay
                )
                return
            now = time.monotonic()
            if ep.spec.error is not None or ep.final_phase is not None:
                self._exec_resync(ep, api, pod)
                ep.wake.wait(0.5)
                continue
            if ep.proc is None:
                if now >= ep.backoff_until:
                    self._exec_spawn(ep, api)
                    continue
            elif _exited(ep.proc):
                self._exec_on_exit(ep, api)
                continue
            else:
                self._exec_probe_step(ep, api)
            self._exec_resync(ep, api, pod)
            wait = 0.1
            if ep.proc is None:
                wait = max(0.01, min(wait, ep.backoff_until - time.monotonic()))
            ep.wake.wait(wait)

    def _exec_spawn(self, ep: _ExecPod, api: client.CoreV1Api) -> None:
        spec = ep.spec
        with ep.lock:
            with self._lock:
                node = self._nodes.get(ep.node)
            if self._stop.is_set() or node is None or node.paused or ep.gone:
                return
            if ep.attempts > 0:
                ep.restart_count += 1
            ep.attempts += 1
            exe = spec.argv[0]
            found = (
                os.path.join(spec.cwd, exe)
                if os.sep in exe
                else shutil.which(exe, path=spec.env.get("PATH"))
            )
            error = None
            if not os.path.isdir(spec.cwd):
                error = f"cwd {spec.cwd!r} is not a directory"
            elif found is None or not os.access(found, os.X_OK):
                error = f"executable {exe!r} not found"
            proc = None
            if error is None:
                argv = spec.argv
                if _SETPRIV is not None:  # SIGKILL it if its supervisor thread dies
                    argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
                self._exec_log(
                    ep,
                    f"start #{ep.attempts} port {ep.port} cwd {spec.cwd} argv {spec.argv!r}",
                )
                try:
                    with open(ep.log_path, "ab") as log_fh:
                        proc = subprocess.Popen(
                            argv,
                            cwd=spec.cwd,
                            env=spec.env,
                            stdin=subprocess.DEVNULL,
                            stdout=log_fh,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                            close_fds=True,
                        )
                except OSError as e:
                    error = f"{type(e).__name__}: {e}"
            now_s = _now()
            if proc is None:
                self._exec_log(ep, f"start failed: {error}")
                ep.last_state = {
                    "terminated": {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": str(error),
                        "startedAt": now_s,
                        "finishedAt": now_s,
                    }
                }
                ep.exit_codes.append(128)
                self._exec_after_exit(ep, 128, 0.0)
            else:
                with _LIVE_LOCK:
                    _LIVE[proc.pid] = proc
                ep.proc = proc
                ep.pids.append(proc.pid)
                if len(ep.pids) == 1:
                    self.started_pods += 1
                ep.started_at = now_s
                ep.started_mono = time.monotonic()
                ep.last_container_id = f"exec://{proc.pid}"
                self._exec_set_ready(ep, False)
                ep.successes = ep.failures = 0
                ep.slow_warned = False
                probe = spec.probe
                ep.next_probe = ep.started_mono + (
                    probe.initial_delay if probe else 0.0
                )
                ep.fast_until = ep.next_probe + (
                    probe.failure_threshold * probe.period if probe else 60.0
                )
        self._exec_patch(ep, api)
        if proc is not None and not ep.annotated:
            ep.annotated = True
            with contextlib.suppress(Exception), self._exec_api_lock:
                api.patch_namespaced_pod(
                    ep.name,
                    ep.namespace,
                    {
                        "metadata": {
                            "annotations": {
                                ENDPOINT_ANNOTATION: f"{EXEC_HOST}:{ep.port}"
                            }
                        }
                    },
                    _request_timeout=10,
                )

    def _exec_set_ready(self, ep: _ExecPod, ready: bool) -> None:
        if ready != ep.ready or not ep.ready_changed:
            ep.ready_changed = _now()
        ep.ready = ready

    def _exec_on_exit(self, ep: _ExecPod, api: client.CoreV1Api) -> None:
        with ep.lock:
            proc = ep.proc
            if proc is None:
                return
            rc = _reap(proc)
            ep.proc = None
            ran = time.monotonic() - ep.started_mono
            code = 137 if rc is None else (rc if rc >= 0 else 128 - rc)
            ep.exit_codes.append(code)
            ep.last_state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": ep.started_at,
                    "finishedAt": _now(),
                    "containerID": ep.last_container_id,
                }
            }
            self._exec_log(
                ep, f"process {proc.pid} exited with {code} after {ran:.2f} s"
            )
            self._exec_after_exit(ep, code, ran)
        self._exec_patch(ep, api)

    def _exec_after_exit(self, ep: _ExecPod, code: int, ran: float) -> None:
        """Under ep.lock: restart (back-off) or final phase, per restartPolicy."""
        self._exec_set_ready(ep, False)
        policy = ep.spec.restart_policy
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            ep.crash_streak = 0 if ran > 10.0 else ep.crash_streak + 1
            delay = min(
                self.exec_restart_backoff * 2 ** max(0, ep.crash_streak - 1),
                self.exec_max_backoff,
            )
            ep.backoff_until = time.monotonic() + delay
            self._exec_log(ep, f"restarting in {delay:.2f} s (restartPolicy {policy})")
        else:
            ep.final_phase = "Succeeded" if code == 0 else "Failed"

    def _exec_probe_once(self, ep: _ExecPod) -> bool:
        probe = ep.spec.probe
        timeout = max(0.05, min(probe.timeout if probe else 1.0, 10.0))
        try:
            if probe is None or probe.kind == "tcp":
                with socket.create_connection((EXEC_HOST, ep.port), timeout=timeout):
                    return True
            if probe.kind == "exec":
                r = subprocess.run(
                    probe.command, cwd=ep.spec.cwd, env=ep.spec.env, timeout=timeout,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, check=False,
                )  # fmt: skip
                return r.returncode == 0
            conn: http.client.HTTPConnection
            if probe.scheme == "HTTPS":
                conn = http.client.HTTPSConnection(
                    EXEC_HOST, ep.port, timeout=timeout,
                    context=ssl._create_unverified_context(),  # like the kubelet
                )  # fmt: skip
            else:
                conn = http.client.HTTPConnection(EXEC_HOST, ep.port, timeout=timeout)
            try:
                conn.request(
                    "GET", probe.path,
                    headers={"User-Agent": "kube-probe/1.20", **probe.headers},
                )  # fmt: skip
                resp = conn.getresponse()
                resp.read(65536)
                return 200 <= resp.status < 300
            finally:
                conn.close()
        except (OSError, http.client.HTTPException, subprocess.SubprocessError):
            return False

    def _exec_probe_step(self, ep: _ExecPod, api: client.CoreV1Api) -> None:
        probe = ep.spec.probe
        if time.monotonic() < ep.next_probe or ep.frozen:
            return
        ok = self._exec_probe_once(ep)
        now = time.monotonic()
        changed = False
        with ep.lock:
            if ep.proc is None or ep.frozen:
                return
            if not ep.ready:
                ep.successes = ep.successes + 1 if ok else 0
                if ep.successes >= (probe.success_threshold if probe else 1):
                    self._exec_set_ready(ep, True)
                    ep.failures = 0
                    ep.start_to_ready.append(now - ep.started_mono)
                    ep.next_probe = now + probe.period if probe else float("inf")
                    self._exec_log(
                        ep, f"Ready {now - ep.started_mono:.3f} s after start"
                    )
                    changed = True
                else:
                    fast = now < ep.fast_until
                    if not fast and not ep.slow_warned:
                        ep.slow_warned = True
                        self._error(
                            f"exec {ep.key}: not Ready {now - ep.started_mono:.1f} s after "
                            "start; probing every periodSeconds from now on"
                        )
                    ep.next_probe = now + (
                        0.1 if fast else (probe.period if probe else 1.0)
                    )
            elif probe is not None:
                if ok:
                    ep.failures = 0
                else:
                    ep.failures += 1
                    if ep.failures >= probe.failure_threshold:
                        self._exec_set_ready(ep, False)
                        ep.successes = 0
                        self._exec_log(
                            ep, f"readiness probe failed {ep.failures} times: not Ready"
                        )
                        changed = True
                ep.next_probe = now + probe.period
        if changed:
            self._exec_patch(ep, api)

    def _exec_terminate(self, ep: _ExecPod, pod: Any) -> None:
        """SIGKILL the group for grace period 0, else SIGTERM, then SIGKILL after the
        grace period (at most exec_max_grace) unless it exited before."""
        grace = pod.metadata.deletion_grace_period_seconds
        grace = float(grace if grace is not None else 0)
        with ep.lock:
            proc = ep.proc
            self._exec_set_ready(ep, False)
        if proc is None:
            return
        if ep.frozen:
            _signal_group(proc, signal.SIGCONT)
        t0 = time.monotonic()
        if grace > 0 and not _exited(proc):
            _signal_group(proc, signal.SIGTERM)
            self._exec_log(ep, f"deletion: SIGTERM, grace period {grace:g} s")
            deadline = t0 + min(grace, self.exec_max_grace)
            while (
                not _exited(proc)
                and time.monotonic() < deadline
                and not self._stop.is_set()
                and not ep.gone
            ):
                time.sleep(0.05)
        rc = _reap(proc)
        ep.grace_used = round(time.monotonic() - t0, 3)
        self._exec_log(
            ep, f"deletion: process group gone after {ep.grace_used} s (exit {rc})"
        )
        with ep.lock:
            ep.proc = None

    def _exec_status(self, ep: _ExecPod, pod: Any) -> dict[str, Any]:
        pod_ip, started = self._pod_info.get(ep.uid, ("", _now()))
        with self._lock:
            node = self._nodes.get(ep.node)
        alive = ep.proc is not None
        if alive:
            state: dict[str, Any] = {"running": {"startedAt": ep.started_at}}
        elif ep.final_phase is not None:
            state = ep.last_state
        elif ep.spec.error is not None:
            state = {
                "waiting": {
                    "reason": "CreateContainerConfigError",
                    "message": ep.spec.error,
                }
            }
        elif ep.last_state:
            state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": "back-off restarting failed container (exec pod)"}}  # fmt: skip
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        first = pod.spec.containers[0]
        cs0: dict[str, Any] = {
            "name": first.name,
            "image": first.image or "",
            "imageID": f"exec://{first.image or ''}",
            "ready": ep.ready,
            "started": alive,
            "restartCount": ep.restart_count,
            "state": state,
            "lastState": ep.last_state if ep.final_phase is None else {},
        }
        if ep.last_container_id:
            cs0["containerID"] = ep.last_container_id
        statuses = [cs0]
        for c in pod.spec.containers[1:]:  # not run: simulated as today
            cid = uuid.uuid5(uuid.NAMESPACE_OID, f"{ep.uid}/{c.name}").hex
            statuses.append({
                "name": c.name, "image": c.image or "", "imageID": f"simulated://{c.image or ''}",
                "containerID": f"simulated://{cid}", "ready": True, "started": True,
                "restartCount": 0, "state": {"running": {"startedAt": started}}, "lastState": {},
            })  # fmt: skip
        ready = "True" if ep.ready else "False"
        conditions = []
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
            cond: dict[str, Any] = {"type": t, "status": "True", "lastProbeTime": None}
            if t in ("Ready", "ContainersReady"):
                cond["status"] = ready
                cond["lastTransitionTime"] = ep.ready_changed or started
                if not ep.ready:
                    cond["reason"] = (
                        "PodCompleted" if ep.final_phase else "ContainersNotReady"
                    )
                    cond["message"] = f"containers with unready status: [{first.name}]"
            else:
                cond["lastTransitionTime"] = started
            conditions.append(cond)
        status: dict[str, Any] = {
            "phase": ep.final_phase or "Running",
            "conditions": conditions,
            "hostIP": node.ip if node is not None else "",
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}] if pod_ip else [],
            "startTime": started,
            "containerStatuses": statuses,
        }
        if pod.spec.init_containers:
            status["initContainerStatuses"] = [
                {"name": c.name, "image": c.image or "", "imageID": f"simulated://{c.image or ''}",
                 "ready": True, "restartCount": 0, "lastState": {},
                 "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                          "startedAt": started, "finishedAt": started}}}
                for c in pod.spec.init_containers
            ]  # fmt: skip
        return status

    def _exec_patch(self, ep: _ExecPod, api: client.CoreV1Api) -> None:
        pod = self._latest.get(ep.uid)
        if pod is None or ep.gone or self._served(pod) is None:
            return  # a paused node posts nothing
        if pod.metadata.deletion_timestamp is not None:
            return
        with ep.lock:
            status = self._exec_status(ep, pod)
            ep.patched = (status["phase"], ep.ready)
            ep.patched_mono = time.monotonic()
        try:
            with self._exec_api_lock:
                api.patch_namespaced_pod_status(
                    ep.name, ep.namespace, {"status": status}, _request_timeout=10
                )
        except ApiException as e:
            if e.status not in (404, 409, 422):
                self._error(f"exec status {ep.key}: {e.status} {e.reason}")
            ep.patched = None  # sent again by _exec_resync (at most once a second)
        except Exception as e:  # noqa: BLE001 - a transient API error must not kill the pod
            self._error(f"exec status {ep.key}: {e!r}")
            ep.patched = None

    def _exec_resync(self, ep: _ExecPod, api: client.CoreV1Api, pod: Any) -> None:
        """Re-send the status when the API disagrees with it (e.g. the node
        controller marked the pod NotReady while the node was paused), at most once
        a second."""
        if time.monotonic() - ep.patched_mono < 1.0:
            return
        want = (ep.final_phase or "Running", ep.ready)
        st = pod.status
        have = (
            (st.phase if st else None),
            any(c.type == "Ready" and c.status == "True" for c in (st.conditions or []))
            if st
            else False,
        )
        if ep.patched is None or have != want:
            self._exec_patch(ep, api)

    def _stop_exec_pods(self, timeout: float) -> None:
        """SIGKILL every exec process group, reap, join the supervisors (bounded)."""
        with self._exec_lock:
            eps = list(self._exec.values())
        for ep in eps:
            ep.wake.set()
            with ep.lock:
                if ep.proc is not None:
                    _signal_group(ep.proc, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for ep in eps:
            proc = ep.proc
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.05, deadline - time.monotonic()))
            if ep.thread is not None:
                ep.thread.join(max(0.05, deadline - time.monotonic()))
        alive = [ep.key for ep in eps if ep.thread is not None and ep.thread.is_alive()]
        if alive:
            self._error(f"exec supervisors still running after stop: {alive}")
        with self._exec_lock:
            self._exec.clear()
            self._exec_ports.clear()
