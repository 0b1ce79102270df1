"""The pod and Warning-event watches of one namespace, as TargetEvents with the per-pod MTTR breakdown; used by KubernetesTarget.

Kinds emitted: ``pod_created``, ``pod_scheduled``, ``pod_ready``, ``pod_deleting``, ``pod_deleted``,
``container_restarted`` (pod events carry the restart count and the container IDs),
``pod_replaced`` (the MTTR breakdown of one killed pod: deletion -> replacement created ->
scheduled -> Ready; a replacement is paired with a victim of the same owner (controller
ownerReference, else ``pod-template-hash``), oldest victim first), ``container_recovered`` (a pod
whose container chaosml killed or paused: readiness lost -> restarted -> Ready), ``k8s_warning``
and ``watch_error``, plus the local target's kinds (``replica_started``, ``replica_exited``,
``replica_ready``, ``replica_unready``; a replacement's ``replica_ready`` is also emitted under the
name of the pod it replaces, so ``ready_s`` works unchanged).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaosml.errors import TargetError
from chaosml.records import EventKind
from chaosml.targets.kubernetes.actions import container_ids, pod_ready, pod_restarts
from chaosml.targets.kubernetes.context import API_TIMEOUT_S

log = logging.getLogger(__name__)

#: how long one watch request lasts before it is renewed (seconds)
WATCH_TIMEOUT_S = 5
#: how often the pod watch re-checks the kube context (seconds)
CONTEXT_CHECK_S = 1.0

#: emit(kind, subject, detail, t)
Emit = Callable[[str, str, dict[str, Any], float], None]


def pod_owner(pod: Any) -> str | None:
    """The controller that replaces ``pod``: its controller ownerReference (``ReplicaSet/model-5d9c``), else its
    ``pod-template-hash`` label (``pod-template-hash/5d9c``), else None (a bare pod: nothing replaces it)."""
    for ref in pod.metadata.owner_references or []:
        if ref.controller:
            return f"{ref.kind}/{ref.name}"
    h = (pod.metadata.labels or {}).get("pod-template-hash")
    return f"pod-template-hash/{h}" if h else None


@dataclass
class _PodState:
    name: str
    group: str | None
    node: str | None
    phase: str
    ready: bool
    deleting: bool
    restarts: int
    created_t: float | None = None  # observed by the watch (None: existed before the watch)
    scheduled_t: float | None = None
    ready_t: float | None = None
    replaces: str | None = None  # the victim this pod replaces
    owner: str | None = None  # the controller that replaces it (``ReplicaSet/model-5d9c``), see :func:`pod_owner`
    deleting_before_watch: bool = False  # terminating in the first listing: nobody's victim in this run
    containers: dict[str, str] = field(default_factory=dict)  # container name -> container ID


@dataclass
class _Victim:
    name: str
    group: str | None
    node: str | None
    owner: str | None
    deleted_t: float  # the delete request (or the first sign of deletion)
    how: str  # requested | observed
    deletion_seen_t: float | None = None
    gone_t: float | None = None
    replacement: str | None = None


@dataclass
class _ContainerVictim:
    """A pod whose container chaosml killed or paused at ``t``: followed until the pod is Ready again."""

    pod: str
    container_id: str
    action: str  # kill | pause
    restarts: int  # the pod's restarts before
    t: float
    unready_t: float | None = None
    restarted_t: float | None = None


class PodWatch:
    """Follows the pods and Warning events of a namespace in two threads until :meth:`stop`."""

    def __init__(
        self,
        namespace: str,
        *,
        emit: Emit,
        group_of: Callable[[dict[str, str]], str | None],
        check_context: Callable[[], None],
    ) -> None:
        self.namespace = namespace
        self._emit = emit
        self._group_of = group_of
        self._check_context = check_context
        self._pods: dict[str, _PodState] = {}  # uid -> state
        self._victims: list[_Victim] = []
        self._container_victims: list[_ContainerVictim] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, new_client: Callable[[], Any], timeout_s: float) -> None:
        """Start both watches, each with its own API client; wait until the pods were listed once."""
        for fn, name in ((self._pod_loop, "k8s-pod-watch"), (self._event_loop, "k8s-event-watch")):
            t = threading.Thread(target=fn, args=(new_client,), name=name, daemon=True)
            t.start()
            self.threads.append(t)
        if not self._synced.wait(timeout_s):
            raise TargetError("the pod watch did not start")

    def stop(self) -> list[str]:
        """Stop both watches (bounded); returns the names of threads still running."""
        self._stop.set()
        for t in self.threads:
            t.join(timeout=WATCH_TIMEOUT_S + 10)
        return [t.name for t in self.threads if t.is_alive()]

    def deletion_requested(self, pod: Any, group: str | None, t: float) -> None:
        """chaosml is deleting ``pod`` at ``t``: the start of its replacement's MTTR breakdown."""
        with self._lock:
            self._add_victim(pod.metadata.name, group, pod.spec.node_name, pod_owner(pod), t, "requested")

    def container_fault(self, pod: str, container_id: str, action: str, restarts: int, t: float) -> None:
        """chaosml kills or pauses ``container_id`` of ``pod`` at ``t``: follow the pod to Ready again."""
        with self._lock:
            self._container_victims.append(_ContainerVictim(pod, container_id, action, restarts, t))

    # --- the loops ---------------------------------------------------------------------
    def _pod_loop(self, new_client: Callable[[], Any]) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(new_client())
        first = True
        last_check = 0.0
        while not self._stop.is_set():
            try:
                listing = core.list_namespaced_pod(self.namespace, _request_timeout=API_TIMEOUT_S)
                self._sync(listing.items, initial=first)
                first = False
                self._synced.set()
                rv = listing.metadata.resource_version
                w = watch.Watch()
                for ev in w.stream(core.list_namespaced_pod, self.namespace, resource_version=rv,
                                   timeout_seconds=WATCH_TIMEOUT_S, _request_timeout=(5, WATCH_TIMEOUT_S + 10)):
                    if ev["type"] == "ERROR":
                        break
                    self._on_pod(ev["type"], ev["object"])
                    if time.monotonic() - last_check > CONTEXT_CHECK_S:
                        last_check = time.monotonic()
                        self._check_context()
                    if self._stop.is_set():
                        w.stop()
                        break
                if time.monotonic() - last_check > CONTEXT_CHECK_S:
                    last_check = time.monotonic()
                    self._check_context()
            except ApiException as e:
                if e.status != 410:  # 410 Gone: list again
                    self._emit(EventKind.WATCH_ERROR, "pods", {"error": f"{e.status} {e.reason}"}, time.time())
                    self._stop.wait(0.5)
            except Exception as e:  # noqa: BLE001 - keep watching until stopped
                if not self._stop.is_set():
                    self._emit(EventKind.WATCH_ERROR, "pods", {"error": repr(e)}, time.time())
                    self._stop.wait(0.5)

    def _event_loop(self, new_client: Callable[[], Any]) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(new_client())
        seen: set[str] = set()
        started = time.time()
        while not self._stop.is_set():
            try:
                listing = core.list_namespaced_event(self.namespace, field_selector="type=Warning", _request_timeout=API_TIMEOUT_S)
                seen.update(f"{e.metadata.uid}/{e.count}" for e in listing.items)
                w = watch.Watch()
                for ev in w.stream(core.list_namespaced_event, self.namespace, field_selector="type=Warning",
                                   resource_version=listing.metadata.resource_version, timeout_seconds=WATCH_TIMEOUT_S,
                                   _request_timeout=(5, WATCH_TIMEOUT_S + 10)):
                    obj = ev["object"]
                    if ev["type"] in ("ADDED", "MODIFIED") and getattr(obj, "metadata", None) is not None:
                        key = f"{obj.metadata.uid}/{obj.count}"
                        if key not in seen:
                            seen.add(key)
                            io = obj.involved_object
                            self._emit(EventKind.K8S_WARNING, io.name if io else "", {
                                "reason": obj.reason, "message": obj.message, "kind": io.kind if io else None,
                                "count": obj.count, "since_start_s": round(time.time() - started, 3)}, time.time())
                    if self._stop.is_set():
                        w.stop()
                        break
            except ApiException as e:
                if e.status != 410:
                    self._stop.wait(0.5)
            except Exception:  # noqa: BLE001 - keep watching until stopped
                if not self._stop.is_set():
                    self._stop.wait(0.5)

    # --- pod state and transitions --------------------------------------------------------
    def _add_victim(self, name: str, group: str | None, node: str | None, owner: str | None, t: float,
                    how: str) -> _Victim:
        for v in self._victims:
            if v.name == name:
                v.owner = v.owner or owner
                return v
        v = _Victim(name, group, node, owner, t, how)
        self._victims.append(v)
        return v

    def _sync(self, pods: list[Any], initial: bool) -> None:
        """A fresh listing: on the first one, remember every pod silently; later (after a 410), diff."""
        seen = set()
        for pod in pods:
            seen.add(pod.metadata.uid)
            if initial:
                with self._lock:
                    st = self._state_of(pod)
                    st.deleting_before_watch = st.deleting
                    self._pods[pod.metadata.uid] = st
            else:
                self._on_pod("MODIFIED" if pod.metadata.uid in self._pods else "ADDED", pod)
        if not initial:
            for uid in [u for u in self._pods if u not in seen]:
                st = self._pods[uid]
                self._on_deleted(uid, st, time.time())

    def _state_of(self, pod: Any) -> _PodState:
        return _PodState(
            name=pod.metadata.name,
            group=self._group_of(pod.metadata.labels or {}),
            node=pod.spec.node_name if pod.spec else None,
            phase=(pod.status.phase if pod.status else None) or "Pending",
            ready=pod_ready(pod),
            deleting=pod.metadata.deletion_timestamp is not None,
            restarts=pod_restarts(pod),
            owner=pod_owner(pod),
            containers=container_ids(pod),
        )

    def _on_pod(self, etype: str, pod: Any) -> None:
        now = time.time()
        uid = pod.metadata.uid
        new = self._state_of(pod)
        with self._lock:
            old = self._pods.get(uid)
            if etype == "DELETED":
                if old is not None:
                    self._on_deleted(uid, old, now)
                return
            if old is None:
                new.created_t = now
                self._pods[uid] = new
                victim = self._victim_for(new)
                if victim is not None:
                    victim.replacement = new.name
                    new.replaces = victim.name
                self._emit(EventKind.POD_CREATED, new.name, {"group": new.group, "node": new.node, "replaces": new.replaces}, now)
                old = _PodState(new.name, new.group, None, "Pending", False, False, new.restarts, created_t=now,
                                replaces=new.replaces)
            else:
                new.created_t, new.scheduled_t, new.ready_t, new.replaces = old.created_t, old.scheduled_t, old.ready_t, old.replaces
                new.deleting_before_watch = old.deleting_before_watch
                self._pods[uid] = new
            self._transitions(old, new, now)

    def _victim_for(self, new: _PodState) -> _Victim | None:
        """The oldest unpaired victim that ``new`` replaces: same group and same owner (when both owners are known)."""
        if not new.group:
            return None
        return next((v for v in self._victims if v.replacement is None and v.group == new.group
                     and (v.owner is None or new.owner is None or v.owner == new.owner)), None)

    def _transitions(self, old: _PodState, new: _PodState, now: float) -> None:
        name = new.name
        if new.node and not old.node:
            new.scheduled_t = now
            self._emit(EventKind.POD_SCHEDULED, name, {"node": new.node, "group": new.group}, now)
        if new.phase == "Running" and old.phase != "Running" and not new.deleting:
            self._emit(EventKind.REPLICA_STARTED, name, {"node": new.node, "group": new.group, "restarts": new.restarts}, now)
        if new.restarts > old.restarts:
            self._emit(EventKind.CONTAINER_RESTARTED, name, {"restarts": new.restarts, "group": new.group, "node": new.node,
                                                     "container_ids": new.containers,
                                                     "previous_container_ids": old.containers}, now)
            self._emit(EventKind.REPLICA_EXITED, name, {"reason": "container restarted", "restarts": new.restarts}, now)
        if new.deleting and not old.deleting:
            v = self._add_victim(name, new.group, new.node, new.owner, now, "observed")
            v.deletion_seen_t = now
            self._emit(EventKind.POD_DELETING, name, {"node": new.node, "group": new.group, "requested_by_chaosml": v.how == "requested",
                                              "restarts": new.restarts, "container_ids": new.containers}, now)
        if new.ready and not old.ready:
            new.ready_t = now
            self._emit(EventKind.POD_READY, name, {"node": new.node, "group": new.group, "replaces": new.replaces,
                                           "restarts": new.restarts, "container_ids": new.containers}, now)
            self._emit(EventKind.REPLICA_READY, name, {"node": new.node, "group": new.group}, now)
            if new.replaces:
                self._replaced(new, now)
        elif old.ready and not new.ready:
            self._emit(EventKind.REPLICA_UNREADY, name, {"reason": "terminating" if new.deleting else "readiness lost",
                                                 "node": new.node, "group": new.group, "restarts": new.restarts}, now)
        self._container_progress(old, new, now)

    def _container_progress(self, old: _PodState, new: _PodState, now: float) -> None:
        """A killed/paused container's pod: readiness lost, restarted, Ready again -> ``container_recovered``."""
        for cv in [c for c in self._container_victims if c.pod == new.name]:
            if cv.unready_t is None and old.ready and not new.ready:
                cv.unready_t = now
            if cv.restarted_t is None and new.restarts > cv.restarts:
                cv.restarted_t = now
            if new.ready and (not old.ready or new.restarts > old.restarts) and (cv.unready_t or cv.restarted_t):
                self._container_victims.remove(cv)
                self._emit(EventKind.CONTAINER_RECOVERED, new.name, {
                    "pod": new.name, "action": cv.action, "node": new.node, "group": new.group, "applied_t": cv.t,
                    "container_id": cv.container_id, "container_ids": new.containers,
                    "restarts_before": cv.restarts, "restarts": new.restarts,
                    "unready_s": None if cv.unready_t is None else round(cv.unready_t - cv.t, 4),
                    "restarted_s": None if cv.restarted_t is None else round(cv.restarted_t - cv.t, 4),
                    "ready_s": round(now - cv.t, 4)}, now)

    def _replaced(self, pod: _PodState, now: float) -> None:
        victim = next((v for v in self._victims if v.name == pod.replaces), None)
        if victim is None:
            return
        t0 = victim.deleted_t
        detail = {
            "victim": victim.name,
            "replacement": pod.name,
            "group": pod.group,
            "victim_node": victim.node,
            "node": pod.node,
            "deletion": victim.how,
            "deleted_t": t0,
            "deletion_seen_s": None if victim.deletion_seen_t is None else round(victim.deletion_seen_t - t0, 4),
            "created_s": None if pod.created_t is None else round(pod.created_t - t0, 4),
            "scheduled_s": None if pod.scheduled_t is None else round(pod.scheduled_t - t0, 4),
            "ready_s": round(now - t0, 4),
            "victim_gone_s": None if victim.gone_t is None else round(victim.gone_t - t0, 4),
            "container_ids": pod.containers,
        }
        # the local target's vocabulary: the killed replica is "ready again" when its replacement is
        self._emit(EventKind.REPLICA_READY, victim.name, {"replacement": pod.name, "node": pod.node, "group": pod.group}, now)
        self._emit(EventKind.POD_REPLACED, victim.name, detail, now)

    def _on_deleted(self, uid: str, st: _PodState, now: float) -> None:
        self._pods.pop(uid, None)
        if not st.deleting_before_watch:  # a pod terminating before the watch is not this run's victim
            v = self._add_victim(st.name, st.group, st.node, st.owner, now, "observed")
            v.gone_t = now
        if st.ready:
            self._emit(EventKind.REPLICA_UNREADY, st.name, {"reason": "deleted", "node": st.node, "group": st.group}, now)
        self._emit(EventKind.POD_DELETED, st.name, {"node": st.node, "group": st.group, "restarts": st.restarts,
                                                "container_ids": st.containers}, now)
        self._emit(EventKind.REPLICA_EXITED, st.name, {"reason": "pod deleted", "node": st.node, "group": st.group}, now)
