"""KubernetesTarget: the stack as Deployments in one namespace of an existing cluster; used by the runner, `chaosml plan` and the faults.

It composes context, discovery, actions and the pod watch.

It never creates or deletes the stack (``chaosml cluster up`` does, see :mod:`chaosml.cluster`); it
connects, checks, watches and acts inside ONE namespace:

- safety (:mod:`.context`): the kube context must be allowed (``allowed_contexts``, or
  ``allow_any_context`` confirmed by the constructor's ``allow_context``, i.e. ``--allow-context``);
  the context and its API server are pinned at connect: if the kubeconfig changes during the run,
  :meth:`KubernetesTarget.guard` refuses every further fault action
  (:attr:`KubernetesTarget.abort_reason`), while recovery still acts on the pinned cluster;
- groups, endpoints and links (:mod:`.discovery`): a group's members are its Deployment's
  non-terminating pods; endpoints are NodePorts reached on 127.0.0.1 (:mod:`.kindconfig`):
  ``entry_url``, ``gateway_url``, ``redis_url`` (direct), ``proxy_api_url`` and :meth:`links`;
- what the cluster does becomes TargetEvents (:mod:`.watch`), with the MTTR breakdown of every
  replaced pod (:meth:`KubernetesTarget.replacements`).
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Self

from chaosml.errors import TargetError
from chaosml.model.experiment import KubernetesSpec, TargetSpec
from chaosml.records import EventKind, TargetEvent
from chaosml.targets.capabilities import PodContainer
from chaosml.targets.kubernetes import actions, runtime
from chaosml.targets.kubernetes.context import (
    API_TIMEOUT_S,
    IN_CLUSTER_CONTEXT,
    ContextNotAllowedError,
    PinnedCluster,
    context_allowed,
    context_drift,
    kubeconfig_facts,
)
from chaosml.targets.kubernetes.discovery import DEFAULT_GROUPS, Discovery, StackLayout
from chaosml.targets.kubernetes.kindconfig import default_kind_config
from chaosml.targets.kubernetes.watch import PodWatch
from chaosml.targets.supervisor import ReplicaStatus

log = logging.getLogger(__name__)

#: how often :meth:`KubernetesTarget.wait_group_ready` polls (seconds)
POLL_S = 0.1
#: the reference stack's groups, in the order :meth:`KubernetesTarget.groups` lists them
REFERENCE_GROUP_ORDER = ("feature-store", "model", "gateway", "proxy")


class KubernetesTarget:
    """The stack in one namespace of an existing cluster (see the module docstring)."""

    platform = "kubernetes"

    def __init__(
        self,
        spec: KubernetesSpec | None = None,
        *,
        kubeconfig: str | Path | None = None,
        allow_context: str | None = None,
        entry_url: str | None = None,
        kind_config: str | Path | None = None,
        groups: dict[str, str] | None = None,
        on_event: Callable[[TargetEvent], None] | None = None,
        run_dir: Path | None = None,
        seed: int = 0,
        custom: TargetSpec | None = None,
        served_by_exposed: bool = True,
    ) -> None:
        self.spec = spec or KubernetesSpec()
        #: a user's stack (``target.services`` on kubernetes): groups are its services, resolved by label
        self.custom = custom if custom is not None and custom.stack == "custom" else None
        self.served_by_exposed = served_by_exposed
        self.namespace = self.spec.namespace
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        #: the context name ``--allow-context`` confirmed (with ``allow_any_context`` in the file)
        self.allow_context = allow_context
        self._entry_override = entry_url
        self.kind_config = Path(kind_config) if kind_config else default_kind_config()
        self.layout = StackLayout(dict(groups or ({} if self.custom else DEFAULT_GROUPS)))
        self._user_on_event = on_event
        self.run_dir = run_dir
        self._rng = random.Random(seed)
        self.events: list[TargetEvent] = []
        self._events_lock = threading.Lock()
        self._cluster: PinnedCluster | None = None
        self._facts: dict[str, Any] = {}
        self._core: Any = None
        self._apps: Any = None
        self._discovery: Discovery | None = None
        self.watch = PodWatch(self.namespace, emit=self._emit, group_of=self.layout.group_of,
                              check_context=self.check_context)
        self._scaled: dict[str, int] = {}  # deployment -> original replicas (while scaled by us)
        self.abort_reason: str | None = None
        self._started = False
        self._stopped = False

    # --- connection ------------------------------------------------------------------
    @property
    def context(self) -> str:
        return str(self._facts.get("context") or self.spec.context or "")

    @property
    def group_deployments(self) -> dict[str, str]:
        """group -> Deployment name."""
        return self.layout.deployments

    def connect(self) -> None:
        """Resolve and check the context against the allowlist, connect, and check the namespace exists."""
        if self._cluster is not None:
            return
        facts = kubeconfig_facts(self.kubeconfig, self.spec.context)
        ok, why = context_allowed(facts["context"], self.spec, self.allow_context)
        if not ok:
            raise ContextNotAllowedError(why)
        self._facts = {**facts, "allowed_because": why}
        self._cluster = PinnedCluster(facts["kubeconfig"], facts["context"], facts["server"])
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._cluster.new()
        self._core, self._apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._discovery = Discovery(self._core, self._apps, namespace=self.namespace, context=self.context, spec=self.spec,
                                    custom=self.custom, kind_config=self.kind_config, entry_override=self._entry_override,
                                    layout=self.layout)
        try:
            self._core.read_namespace(self.namespace, _request_timeout=API_TIMEOUT_S)
        except ApiException as e:
            if e.status == 403:  # in a pod with the namespaced Role only: namespaces are cluster-scoped
                return
            if e.status == 404:
                raise TargetError(
                    f"namespace {self.namespace!r} does not exist in context {self.context!r}: is the stack deployed? "
                    + ("(target.kubernetes.namespace must name your stack's namespace)" if self.custom else "(`chaosml cluster up`)")
                ) from e
            raise TargetError(f"cannot read namespace {self.namespace!r} in context {self.context!r}: {e.status} {e.reason}") from e
        except Exception as e:
            raise TargetError(f"cannot reach the API server of context {self.context!r} ({facts['server']}): {e}") from e

    def _connected(self) -> Discovery:
        if self._discovery is None:
            raise TargetError("the kubernetes target is not connected")
        return self._discovery

    def start(self, timeout_s: float = 60.0) -> None:
        """Connect, check every Deployment is available, resolve endpoints, start the watches."""
        if self._started:
            raise TargetError("the kubernetes target was already started (make a new one)")
        self._started = True
        deadline = time.monotonic() + timeout_s
        self.connect()
        try:
            found = self._connected()
            found.resolve_groups()
            missing = [g for g in self.group_deployments if not found.wait_available(g, max(0.1, deadline - time.monotonic()))]
            if missing:
                raise TargetError(
                    f"deployments not available in {self.namespace!r} within {timeout_s:.0f}s: "
                    + "; ".join(found.deployment_summary(g) for g in missing)
                )
            found.resolve_endpoints()
            assert self._cluster is not None
            self.watch.start(self._cluster.new, max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def resolve(self) -> None:
        """Connect and resolve groups and endpoints without waiting or watching (``chaosml plan``)."""
        self.connect()
        found = self._connected()
        found.resolve_groups()
        found.resolve_endpoints()

    def stop(self) -> None:
        """Stop the watches and close the clients; the stack is left as it is. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        alive = self.watch.stop()
        if alive:
            log.warning("kubernetes target: watch threads still running after stop: %s", alive)
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- groups and endpoints -------------------------------------------------------
    @property
    def feature_store_group(self) -> str:
        """The group ``feature-store-outage`` mode ``kill`` scales to zero."""
        if self.custom is None:
            return "feature-store"
        behind = next((ln.service for ln in self.custom.links if ln.name == "feature-store"), None)
        if behind is None:
            raise TargetError("the feature-store link names no service (target.links[].service), so there is nothing to scale")
        return behind

    def deployment(self, group: str) -> str:
        return self.layout.deployment(group)

    def selector(self, group: str) -> str:
        return self.layout.selector(group)

    def _endpoint(self, key: str) -> str:
        try:
            return str(self.layout.endpoints[key])
        except KeyError:
            raise TargetError(
                f"the kubernetes target has no {key} (not started, or no NodePort Service for it in {self.namespace!r})"
            ) from None

    @property
    def entry_url(self) -> str:
        return self._endpoint("entry_url")

    @property
    def gateway_url(self) -> str:
        return self._endpoint("gateway_url")

    @property
    def redis_url(self) -> str:
        return self._endpoint("redis_url")

    @property
    def proxy_api_url(self) -> str | None:
        return self.layout.endpoints.get("proxy_api_url")

    @property
    def owns_proxy(self) -> bool:
        """Toxiproxy is a Deployment of the cluster, not a child of the run: unreachable means unknown."""
        return False

    @property
    def owns_redis(self) -> bool:
        return False

    def links(self) -> dict[str, dict[str, str]]:
        """Toxiproxy proxy name -> ``{"listen": "127.0.0.1:HOSTPORT", "upstream": "svc:port"}``."""
        return {k: dict(v) for k, v in self.layout.links.items()}

    # --- safety ----------------------------------------------------------------------
    def check_context(self) -> None:
        """Re-read the kubeconfig; a changed current context (or a context now naming another API
        server) sets :attr:`abort_reason`."""
        if self.abort_reason or self._cluster is None or self._facts.get("context") == IN_CLUSTER_CONTEXT:
            return
        reason = context_drift(self.kubeconfig, self.spec.context, self._facts)
        if reason:
            self.abort_reason = reason + "; refusing to inject anything more (recovery still acts on the pinned cluster)"
            self._emit(EventKind.CONTEXT_CHANGED, self.context, {"reason": self.abort_reason})

    def guard(self) -> None:
        """Raise before any fault action when the run must not go on (context changed, not connected)."""
        self.check_context()
        if self.abort_reason:
            raise TargetError(self.abort_reason)
        if self._cluster is None:
            raise TargetError("the kubernetes target is not connected")

    def ledger_scope(self) -> dict[str, Any]:
        """What an undo record needs to find this cluster again (offline undoers)."""
        return {
            "platform": "kubernetes",
            "kubeconfig": self._facts.get("kubeconfig"),
            "context": self._facts.get("context"),
            "server": self._facts.get("server"),
            "namespace": self.namespace,
        }

    # --- queries ---------------------------------------------------------------------
    def groups(self) -> list[str]:
        return [g for g in REFERENCE_GROUP_ORDER if g in self.group_deployments] + [
            g for g in self.group_deployments if g not in REFERENCE_GROUP_ORDER
        ]

    def _list_pods(self, selector: str) -> list[Any]:
        if self._core is None:
            raise TargetError("the kubernetes target is not connected")
        return actions.list_pods(self._core, self.namespace, selector)

    def select(self, selector: str, group: str = "selector") -> list[ReplicaStatus]:
        """Non-terminating pods matching a label selector in the namespace, by name."""
        pods = [p for p in self._list_pods(selector) if actions.pod_live(p)]
        return sorted((actions.pod_status(p, group) for p in pods), key=lambda s: s.name)

    def members(self, group: str) -> list[ReplicaStatus]:
        """The group's Deployment's pods that are not terminating (a kill victim drops out at once)."""
        return self.select(self.selector(group), group)

    def pods(self, group: str) -> list[Any]:
        return self._list_pods(self.selector(group))

    def desired_replicas(self, group: str) -> int:
        return self.deployment_replicas(self.deployment(group))

    def deployment_replicas(self, name: str) -> int:
        """The Deployment ``name``'s desired replicas (``spec.replicas``)."""
        return actions.desired_replicas(self._apps, self.namespace, name)

    def find_deployments(self, ref: str) -> list[str]:
        """The Deployments of the namespace ``ref`` names: a label selector ``k=v,...`` (their pod template's
        labels), or a Deployment's name."""
        return actions.deployments_matching(self._apps, self.namespace, ref)

    def deployment_pods(self, name: str) -> list[ReplicaStatus]:
        """The non-terminating pods of the Deployment ``name`` (its ``spec.selector``)."""
        return self.select(actions.deployment_selector(self._apps, self.namespace, name), name)

    def wait_deployment_ready(self, name: str, timeout_s: float) -> str | None:
        """Wait (bounded) until the Deployment ``name`` is rolled out and every desired replica Ready: None, or
        what it still lacks at the deadline."""
        found = self._connected()
        return None if found.wait_deployment(name, timeout_s) else found.summary_of(name)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node: name, roles, ready, pods of this namespace on it."""
        return actions.list_nodes(self._core, self.namespace)

    def node_ready(self, name: str) -> bool:
        return actions.node_ready(self._core, name)

    def node_commands(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(stop, start) argv of ``target.kubernetes.nodes.<name>``, or None when not configured (kind: its container)."""
        access = self.spec.nodes.get(name)
        return None if access is None or not access.stop else (access.stop, access.start)

    def describe(self) -> dict[str, Any]:
        deployments: dict[str, Any] = {}
        if self._apps is not None:
            for group, name in self.group_deployments.items():
                try:
                    d = self._apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
                    deployments[group] = {"deployment": name, "replicas": d.spec.replicas, "ready": d.status.ready_replicas or 0,
                                          "selector": self.selector(group)}
                except Exception as e:  # noqa: BLE001 - describing never fails the run
                    deployments[group] = {"deployment": name, "error": str(e)}
        ep = self.layout.endpoints
        return {
            "platform": "kubernetes",
            "context": self._facts.get("context"),
            "server": self._facts.get("server"),
            "kubeconfig": self._facts.get("kubeconfig"),
            "allowed_because": self._facts.get("allowed_because"),
            "namespace": self.namespace,
            "entry_url": ep.get("entry_url"),
            "gateway_url": ep.get("gateway_url"),
            "redis_url": ep.get("redis_url"),
            "proxy_api_url": ep.get("proxy_api_url"),
            "links": self.links(),
            "kind_config": str(self.kind_config) if self.kind_config else None,
            "deployments": deployments,
            "groups": {g: [m.name for m in self.members(g)] for g in self.group_deployments} if self._core is not None else {},
            "stack": "custom" if self.custom is not None else "reference",
            "served_by_exposed": self.served_by_exposed,
        }

    # --- actions ---------------------------------------------------------------------
    def delete_pods(self, names: Iterable[str], grace_period: float = 0.0) -> list[str]:
        """Delete the named pods of the namespace (grace period in seconds); the ReplicaSet replaces them."""
        self.guard()
        pods = actions.read_pods(self._core, self.namespace, list(names))
        deleted = []
        for n, pod in pods.items():
            group = self.layout.group_of(pod.metadata.labels or {})
            t = time.time()
            self.watch.deletion_requested(pod, group, t)
            actions.delete_pod(self._core, self.namespace, pod, grace_period)
            deleted.append(n)
            self._emit(EventKind.REPLICA_KILLED, n, {"grace_period_s": grace_period, "node": pod.spec.node_name, "group": group,
                                             "uid": pod.metadata.uid}, t=t)
        return deleted

    def exec_in_pod(self, name: str, argv: list[str], container: str | None = None) -> str:
        """Run ``argv`` in the named pod (its first container, or ``container``); its output (RBAC: pods/exec)."""
        self.guard()
        if self._core is None:
            raise TargetError("the kubernetes target is not connected")
        return actions.exec_in_pod(self._core, self.namespace, name, argv, container)

    def pod_containers(self, names: list[str], container: str | None = None) -> list[PodContainer]:
        """The named pods' container ``container`` (None: each pod's first), with how its node's runtime is reached."""
        if self._core is None:
            raise TargetError("the kubernetes target is not connected")
        pods = actions.read_pods(self._core, self.namespace, list(names))
        return [actions.pod_container(pod, container, *self._node_runtime(pod.spec.node_name)) for pod in pods.values()]

    def _node_runtime(self, node: str | None) -> tuple[str | None, tuple[str, ...]]:
        """(docker_host, exec) of ``target.kubernetes.nodes.<node>``; (None, ()) when the node is not listed."""
        access = self.spec.nodes.get(node or "")
        return (None, ()) if access is None else (access.docker_host, access.exec)

    def container_runtime(self, container: PodContainer) -> str:
        """Which runtime path reaches the container (Docker engine or containerd through a command); touches nothing."""
        return runtime.path(container)

    def container_fault(self, containers: list[PodContainer], action: str, sig: str = "SIGKILL") -> list[dict[str, Any]]:
        """Kill (``sig``) or pause each container in place through its node's runtime; the pod stays, the
        watch follows it to Ready again (``container_recovered``). One result per container: state after, or error."""
        self.guard()
        out = []
        for c in containers:
            t = time.time()
            self.watch.container_fault(c.pod, c.container_id, action, c.restarts, t)
            try:
                if action == "kill":
                    state = runtime.kill(c, self.namespace, sig)
                else:
                    state = runtime.pause(c, self.namespace)
                error = None
            except Exception as e:  # noqa: BLE001 - reported per container; the injection is not ok
                state, error = None, str(e)
            detail = {"container": c.container, "container_id": c.container_id, "node": c.node, "restarts": c.restarts,
                      "state": state, **({"signal": sig} if action == "kill" else {}), **({"error": error} if error else {})}
            self._emit(EventKind.CONTAINER_KILLED if action == "kill" else EventKind.CONTAINER_PAUSED, c.pod, detail, t=t)
            out.append({"pod": c.pod, **detail})
        return out

    def unpause_containers(self, containers: list[PodContainer]) -> list[str]:
        """Thaw the containers :meth:`container_fault` paused (idempotent; also after the context changed)."""
        done, failed = [], []
        for c in containers:
            try:
                line = runtime.unpause(c, self.namespace)
            except Exception as e:  # noqa: BLE001 - every other container is still thawed; raised below
                failed.append(str(e))
                continue
            self._emit(EventKind.CONTAINER_UNPAUSED, c.pod, {"container": c.container, "container_id": c.container_id,
                                                             "node": c.node, "done": line})
            done.append(line)
        if failed:
            raise TargetError("; ".join(failed))
        return done

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None:
        """The local protocol's kill: delete the pods, with grace period 0 for SIGKILL and 30 s for SIGTERM."""
        self.delete_pods(names, grace_period=0.0 if sig == signal.SIGKILL else 30.0)

    def scale(self, deployment: str, replicas: int) -> int:
        """Set a Deployment's replicas through the scale subresource; returns the previous count."""
        cur = actions.scale_deployment(self._apps, self.namespace, deployment, replicas)
        self._emit(EventKind.DEPLOYMENT_SCALED, deployment, {"from": cur, "to": replicas})
        return cur

    def _member_deployment(self, name: str) -> str:
        if name in self.group_deployments:
            return self.group_deployments[name]
        if name in self.group_deployments.values():
            return name
        if name == "redis":
            return self.deployment("feature-store")
        raise TargetError(f"no deployment for member {name!r}; groups: {', '.join(self.group_deployments)}")

    def stop_member(self, name: str) -> int:
        """Scale a member's Deployment (``redis``/``feature-store``, or any group) to 0; returns the
        original replica count, which :meth:`start_member` restores."""
        self.guard()
        dep = self._member_deployment(name)
        prev = self.scale(dep, 0)
        self._scaled.setdefault(dep, prev)
        return self._scaled[dep]

    def start_member(self, name: str, replicas: int | None = None) -> None:
        """Scale back to the ORIGINAL count recorded by :meth:`stop_member` (or ``replicas``)."""
        dep = self._member_deployment(name)
        want = replicas if replicas is not None else self._scaled.get(dep)
        if want is None:
            return
        self.scale(dep, int(want))
        self._scaled.pop(dep, None)

    def wait_group_ready(self, group: str, timeout_s: float) -> bool:
        """Every desired replica of the group's Deployment is a Ready, non-terminating pod (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            want = self.desired_replicas(group)
            ready = sum(1 for m in self.members(group) if m.ready)
            if ready >= want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    def pick(self, items: list[str], k: int) -> list[str]:
        return sorted(self._rng.sample(items, min(k, len(items))))

    # --- events ----------------------------------------------------------------------
    def _emit(self, kind: str, subject: str, detail: dict[str, Any] | None = None, t: float | None = None) -> None:
        ev = TargetEvent(t=time.time() if t is None else t, kind=kind, subject=subject, detail=detail or {})
        with self._events_lock:
            self.events.append(ev)
        if self._user_on_event is not None:
            try:
                self._user_on_event(ev)
            except Exception:
                log.exception("on_event listener failed for %s", ev)

    def replacements(self) -> list[dict[str, Any]]:
        """The MTTR breakdown of every replaced pod seen so far (``pod_replaced`` details)."""
        with self._events_lock:
            return [dict(e.detail) for e in self.events if e.kind == EventKind.POD_REPLACED]
