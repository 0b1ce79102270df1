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

All loops are bounded by a stop event; :meth:`SimulatedKubelet.stop` joins them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self._threads = []
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients = []
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
