"""Kubernetes target: the reference stack as Deployments in one namespace of an existing cluster; used by the runner.

It never creates or deletes the stack (``chaosml cluster up`` does, see :mod:`chaosml.cluster`); it
connects, checks, watches and acts inside ONE namespace:

- safety: the kube context must match ``allowed_contexts`` (fnmatch, default ``kind-*``); any other
  context is refused unless the experiment says ``allow_any_context: true`` AND the command line
  confirms the same context name (``--allow-context NAME``, which reaches the target through
  ``$CHAOSML_ALLOW_CONTEXT``). The context (and the API server it names) is pinned at start: if the
  kubeconfig's current context changes during the run, every further fault action is refused
  (:attr:`KubernetesTarget.abort_reason`), while recovery still acts on the pinned cluster;
- groups are Deployments: ``feature-store`` -> ``redis``, ``model`` -> ``model``, ``gateway`` ->
  ``gateway``, ``proxy`` -> ``toxiproxy``; a group's members are its non-terminating pods;
- endpoints are NodePorts reached on 127.0.0.1 through kind's ``extraPortMappings``
  (``kind-config.yaml``): ``entry_url`` (the Toxiproxy ``gateway`` link), ``gateway_url``,
  ``redis_url`` (direct, for seeding and feature injectors), ``proxy_api_url`` and :meth:`links`;
- a pod watch thread turns what the cluster does into TargetEvents: ``pod_created``,
  ``pod_scheduled``, ``pod_ready``, ``pod_deleting``, ``pod_deleted``, ``container_restarted``,
  ``pod_replaced`` (the MTTR breakdown of one killed pod: deletion -> replacement created ->
  scheduled -> Ready) and the local target's kinds (``replica_killed``, ``replica_exited``,
  ``replica_started``, ``replica_ready``, ``replica_unready``; a replacement's ``replica_ready``
  is also emitted under the name of the pod it replaces, so ``ready_s`` works unchanged); an
  event watch adds ``k8s_warning`` for Warning events.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from chaosml.errors import TargetError
from chaosml.model.experiment import KubernetesSpec, TargetSpec, ToxiproxySpec
from chaosml.procs import kill_run_processes
from chaosml.records import TargetEvent
from chaosml.targets.supervisor import ReplicaStatus
from chaosml.targets.undoers import target_undoer

log = logging.getLogger(__name__)

#: the command line's ``--allow-context NAME`` reaches the target through this variable
ALLOW_CONTEXT_ENV = "CHAOSML_ALLOW_CONTEXT"
#: overrides the entry URL (e.g. a port-forward or an ingress) instead of the NodePort mapping
ENTRY_URL_ENV = "CHAOSML_K8S_ENTRY_URL"
#: the kind config whose extraPortMappings map NodePorts to 127.0.0.1 (default: the repo's)
KIND_CONFIG_ENV = "CHAOSML_KIND_CONFIG"
#: the context name used when running inside a pod (no kubeconfig; add it to allowed_contexts)
IN_CLUSTER_CONTEXT = "in-cluster"

#: group -> Deployment name (also its ``app`` label)
DEFAULT_GROUPS: dict[str, str] = {"feature-store": "redis", "model": "model", "gateway": "gateway", "proxy": "toxiproxy"}
#: Services and port names the endpoints come from (manifests/stack.yaml)
GATEWAY_SERVICE, GATEWAY_PORT = "gateway", "http"
REDIS_SERVICE, REDIS_PORT = "redis", "redis"
PROXY_SERVICE, PROXY_API_PORT = "toxiproxy", "api"
PROXY_CONFIGMAP, PROXY_CONFIG_KEY = "toxiproxy-config", "toxiproxy.json"
ENTRY_LINK = "gateway"

API_TIMEOUT_S = 10.0
WATCH_TIMEOUT_S = 5
CONTEXT_CHECK_S = 1.0
POLL_S = 0.1
_REPO_ROOT = Path(__file__).resolve().parents[2]


class ContextNotAllowedError(TargetError):
    """The kube context is not in the experiment's allowlist (nothing was touched)."""


# ------------------------------------------------------------------------------ contexts
def context_allowed(context: str, spec: KubernetesSpec, confirmed: str | None) -> tuple[bool, str]:
    """Whether chaosml may act on ``context``, and why (or why not, with how to allow it)."""
    patterns = list(spec.allowed_contexts)
    for p in patterns:
        if fnmatch.fnmatchcase(context, p):
            return True, f"context {context!r} matches allowed_contexts pattern {p!r}"
    if spec.allow_any_context and confirmed == context:
        return True, f"context {context!r} allowed by allow_any_context and --allow-context {context}"
    why = f"kube context {context!r} is not in allowed_contexts ({', '.join(patterns) or 'none'})"
    if spec.allow_any_context:
        if confirmed:
            how = f"--allow-context {confirmed!r} names another context; pass --allow-context {context}"
        else:
            how = f"allow_any_context is set in the file; confirm it on the command line with --allow-context {context}"
    else:
        how = (
            f"add a matching pattern to target.kubernetes.allowed_contexts, or set allow_any_context: true "
            f"in the experiment AND pass --allow-context {context}"
        )
    return False, f"refusing to touch {why}: {how}"


def kubeconfig_facts(kubeconfig: str | Path | None, context: str | None) -> dict[str, Any]:
    """``{"context", "current_context", "server", "namespace", "kubeconfig"}`` read from a kubeconfig file.

    ``context`` None means the file's current context. In a pod without a kubeconfig, the in-cluster
    service account is used and the context is called ``in-cluster``.
    """
    path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
        Path.home() / ".kube" / "config"
    )
    if not Path(path).exists():
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
            host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            return {"context": IN_CLUSTER_CONTEXT, "current_context": IN_CLUSTER_CONTEXT,
                    "server": f"https://{host}:{port}", "namespace": None, "kubeconfig": None}
        raise TargetError(
            f"no kubeconfig at {path}: is the cluster up? (`chaosml cluster up` creates kind-chaosml; "
            "or set KUBECONFIG)"
        )
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise TargetError(f"cannot read kubeconfig {path}: {e}") from e
    current = data.get("current-context")
    name = context or current
    if not name:
        raise TargetError(f"kubeconfig {path} has no current-context; name one in target.kubernetes.context")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or []}
    if name not in contexts:
        raise TargetError(f"context {name!r} is not in kubeconfig {path}; contexts: {', '.join(sorted(map(str, contexts)))}")
    ctx = contexts[name]
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or []}
    server = (clusters.get(ctx.get("cluster")) or {}).get("server")
    return {"context": name, "current_context": current, "server": server, "namespace": ctx.get("namespace"),
            "kubeconfig": path}


def new_api_client(kubeconfig: str | None, context: str) -> Any:
    """A ``kubernetes.client.ApiClient`` for one context (or the in-cluster service account)."""
    from kubernetes import client, config

    if context == IN_CLUSTER_CONTEXT and not kubeconfig:
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as e:
        raise TargetError(f"cannot load kube context {context!r} from {kubeconfig}: {e}") from e


def client_from_record(record: dict[str, Any]) -> Any:
    """An ApiClient for the cluster an undo record names, refusing if the context now points elsewhere."""
    facts = kubeconfig_facts(record.get("kubeconfig"), record["context"])
    if record.get("server") and facts["server"] != record["server"]:
        raise TargetError(
            f"context {record['context']!r} now points at {facts['server']}, not {record['server']} as during the run: "
            "refusing to act on another cluster"
        )
    return new_api_client(facts["kubeconfig"], record["context"])


def scale_from_record(record: dict[str, Any]) -> str:
    """Scale ``record["deployment"]`` back to ``record["replicas_before"]`` (idempotent); used by offline undoers."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = client_from_record(record)
    try:
        apps = client.AppsV1Api(api)
        ns, name, want = record["namespace"], record["deployment"], int(record["replicas_before"])
        try:
            now = int(apps.read_namespaced_deployment_scale(name, ns, _request_timeout=API_TIMEOUT_S).spec.replicas or 0)
        except ApiException as e:
            if e.status == 404:
                return f"deployment {ns}/{name} no longer exists: nothing to scale back"
            raise
        if now == want:
            return f"deployment {ns}/{name} already at {want} replica(s)"
        apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": want}}, _request_timeout=API_TIMEOUT_S)
        return f"deployment {ns}/{name} scaled back from {now} to {want} replica(s)"
    finally:
        api.close()


@target_undoer("kubernetes")
def undo_target(record: dict[str, Any]) -> str:
    """Offline undo of a kubernetes target: stop the run's orphaned processes (the load driver); the
    stack itself was never created by the run and is left as it is (faults are undone by their own
    records)."""
    token, run_dir = record.get("token"), record.get("run_dir")
    pids = kill_run_processes(token and str(token), run_dir and str(run_dir)) if token or run_dir else []
    left = f"stopped {len(pids)} orphaned process(es)" if pids else "no process left"
    return f"kubernetes target: {left}; the stack in the cluster is left running (it belongs to `chaosml cluster`)"


# ------------------------------------------------------------------------- kind mapping
def kind_port_map(kind_config: str | Path | None) -> dict[int, tuple[str, int]]:
    """containerPort (= NodePort) -> (listenAddress, hostPort) from a kind config's extraPortMappings."""
    if kind_config is None or not Path(kind_config).exists():
        return {}
    data = yaml.safe_load(Path(kind_config).read_text()) or {}
    out: dict[int, tuple[str, int]] = {}
    for node in data.get("nodes") or []:
        for m in node.get("extraPortMappings") or []:
            out[int(m["containerPort"])] = (str(m.get("listenAddress") or "127.0.0.1"), int(m.get("hostPort") or m["containerPort"]))
    return out


def default_kind_config() -> Path | None:
    env = os.environ.get(KIND_CONFIG_ENV)
    if env:
        return Path(env)
    p = _REPO_ROOT / "kind-config.yaml"
    return p if p.exists() else None


# ------------------------------------------------------------------------------ pods
def _pod_ready(pod: Any) -> bool:
    st = pod.status
    if st is None or st.phase != "Running" or pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])


def _restarts(pod: Any) -> int:
    return sum(int(c.restart_count or 0) for c in (pod.status.container_statuses if pod.status else None) or [])


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


@dataclass
class _Victim:
    name: str
    group: str | None
    node: str | None
    deleted_t: float  # the delete request (or the first sign of deletion)
    how: str  # requested | observed
    deletion_seen_t: float | None = None
    gone_t: float | None = None
    replacement: str | None = None


@dataclass
class _Cluster:
    """The pinned connection: one API client per thread (urllib3 pools are not shared across watches)."""

    kubeconfig: str | None
    context: str
    server: str | None
    clients: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self) -> Any:
        c = new_api_client(self.kubeconfig, self.context)
        with self.lock:
            self.clients.append(c)
        return c

    def close(self) -> None:
        with self.lock:
            clients, self.clients = self.clients, []
        for c in clients:
            try:
                c.close()
            except Exception:
                log.debug("closing an api client failed", exc_info=True)


class KubernetesTarget:
    """The reference stack in one namespace of an existing cluster (see the module docstring)."""

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
        self.allow_context = allow_context
        self._entry_override = entry_url
        self.kind_config = Path(kind_config) if kind_config else default_kind_config()
        self.group_deployments = dict(groups or ({} if self.custom else DEFAULT_GROUPS))
        self._user_on_event = on_event
        self.run_dir = run_dir
        self._rng = random.Random(seed)
        self.events: list[TargetEvent] = []
        self._events_lock = threading.Lock()
        self._cluster: _Cluster | None = None
        self._facts: dict[str, Any] = {}
        self._core: Any = None
        self._apps: Any = None
        self._selectors: dict[str, dict[str, str]] = {}
        self._endpoints: dict[str, Any] = {}
        self._links: dict[str, dict[str, str]] = {}
        self._pods: dict[str, _PodState] = {}  # uid -> state
        self._victims: list[_Victim] = []
        self._state_lock = threading.RLock()
        self._scaled: dict[str, int] = {}  # deployment -> original replicas (while scaled by us)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch_synced = threading.Event()
        self.abort_reason: str | None = None
        self._started = False
        self._stopped = False

    # --- connection ------------------------------------------------------------------
    @property
    def context(self) -> str:
        return str(self._facts.get("context") or self.spec.context or "")

    def connect(self) -> None:
        """Resolve and check the context against the allowlist, connect, and check the namespace exists."""
        if self._cluster is not None:
            return
        facts = kubeconfig_facts(self.kubeconfig, self.spec.context)
        ok, why = context_allowed(facts["context"], self.spec, self.allow_context)
        if not ok:
            raise ContextNotAllowedError(why)
        self._facts = {**facts, "allowed_because": why}
        self._cluster = _Cluster(facts["kubeconfig"], facts["context"], facts["server"])
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._cluster.new()
        self._core, self._apps = client.CoreV1Api(api), client.AppsV1Api(api)
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

    def start(self, timeout_s: float = 60.0) -> None:
        """Connect, check every Deployment is available, resolve endpoints, start the watches."""
        if self._started:
            raise TargetError("the kubernetes target was already started (make a new one)")
        self._started = True
        deadline = time.monotonic() + timeout_s
        self.connect()
        try:
            if self.custom is not None:
                self._resolve_custom_groups()
            else:
                self._resolve_groups()
            missing = [g for g in self.group_deployments if not self._wait_available(g, max(0.1, deadline - time.monotonic()))]
            if missing:
                raise TargetError(
                    f"deployments not available in {self.namespace!r} within {timeout_s:.0f}s: "
                    + "; ".join(self._deployment_summary(g) for g in missing)
                )
            if self.custom is not None:
                self._resolve_custom_endpoints()
            else:
                self._resolve_endpoints()
            self._start_watches(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def resolve(self) -> None:
        """Connect and resolve groups and endpoints without waiting or watching (``chaosml plan``)."""
        self.connect()
        if self.custom is not None:
            self._resolve_custom_groups()
            self._resolve_custom_endpoints()
        else:
            self._resolve_groups()
            self._resolve_endpoints()

    def stop(self) -> None:
        """Stop the watches and close the clients; the stack is left as it is. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        for t in self._threads:
            t.join(timeout=WATCH_TIMEOUT_S + 10)
        alive = [t.name for t in self._threads if t.is_alive()]
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
    def _resolve_groups(self) -> None:
        from kubernetes.client.exceptions import ApiException

        missing = []
        for group, name in self.group_deployments.items():
            try:
                d = self._apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
            except ApiException as e:
                if e.status != 404:
                    raise TargetError(f"cannot read deployment {self.namespace}/{name}: {e.status} {e.reason}") from e
                missing.append(f"{name} (group {group})")
                continue
            self._selectors[group] = dict(d.spec.selector.match_labels or {})
        if missing:
            raise TargetError(
                f"deployment(s) missing in namespace {self.namespace!r} of context {self.context!r}: {', '.join(missing)}; "
                "deploy the reference stack with `chaosml cluster up` (manifests/)"
            )

    # --- a user's stack: services selected by labels ---------------------------------
    def _resolve_custom_groups(self) -> None:
        """services[i].selector -> the ONE Deployment of the namespace whose pods carry those labels."""
        assert self.custom is not None
        try:
            deps = self._apps.list_namespaced_deployment(self.namespace, _request_timeout=API_TIMEOUT_S).items
        except Exception as e:
            raise TargetError(f"cannot list Deployments in namespace {self.namespace!r}: {e}") from e

        def labels_of(d: Any) -> dict[str, str]:
            return dict((d.spec.template.metadata.labels if d.spec.template.metadata else None) or {})

        def shown(d: Any) -> str:
            return f"{d.metadata.name} ({', '.join(f'{k}={v}' for k, v in sorted(labels_of(d).items())) or 'no pod labels'})"

        problems = []
        for svc in self.custom.services:
            want = dict(svc.selector or {})
            sel = ",".join(f"{k}={v}" for k, v in sorted(want.items()))
            hits = [d for d in deps if all(labels_of(d).get(k) == v for k, v in want.items())]
            if len(hits) == 1:
                d = hits[0]
                self.group_deployments[svc.name] = d.metadata.name
                self._selectors[svc.name] = dict(d.spec.selector.match_labels or {}) or want
            elif not hits:
                listing = "; ".join(shown(d) for d in deps[:10]) or "none"
                problems.append(f"service {svc.name!r}: no Deployment in namespace {self.namespace!r} has pods labelled {sel} "
                                f"(Deployments: {listing})")
            else:
                problems.append(f"service {svc.name!r}: {len(hits)} Deployments have pods labelled {sel}: "
                                f"{'; '.join(shown(d) for d in hits)}; add a label to target.services[].selector that tells them apart")
        if problems:
            raise TargetError("; ".join(problems) + f" (context {self.context!r})")

    @property
    def feature_store_group(self) -> str:
        """The group ``feature-store-outage`` mode ``kill`` scales to zero."""
        if self.custom is None:
            return "feature-store"
        behind = next((ln.service for ln in self.custom.links if ln.name == "feature-store"), None)
        if behind is None:
            raise TargetError("the feature-store link names no service (target.links[].service), so there is nothing to scale")
        return behind

    def _toxiproxy_spec(self) -> ToxiproxySpec | None:
        if self.spec.toxiproxy is not None:
            return self.spec.toxiproxy
        if self.custom is not None and (self.custom.links or (self.custom.entry and self.custom.entry.link)):
            return ToxiproxySpec()
        return None

    def _node_port_url(self, ports: dict[str, Any], port: str | None, what: str) -> str:
        """``http://127.0.0.1:HOSTPORT`` of one NodePort among a Service's ``ports`` (by name, or the only/first)."""
        if port is not None:
            p = ports.get(port) or next((v for v in ports.values() if str(v["port"]) == port), None)
            if p is None:
                raise TargetError(f"{what} has no port {port!r}; ports: {', '.join(ports) or 'none'}")
        else:
            p = next((v for v in ports.values() if v["node_port"]), None)
        if p is None or not p["node_port"]:
            raise TargetError(f"{what} has no NodePort: make it type NodePort (and map the port in the kind config's "
                              "extraPortMappings), or give a URL")
        return f"http://{self._host(p['node_port'])}"

    def _resolve_custom_endpoints(self) -> None:
        from chaosml.proxy import client as toxiproxy

        assert self.custom is not None and self.custom.entry is not None
        ep: dict[str, Any] = {}
        tox = self._toxiproxy_spec()
        links: dict[str, dict[str, str]] = {}
        if tox is not None:
            if tox.url:
                ep["proxy_api_url"] = tox.url.rstrip("/")
                tox_ports: dict[str, Any] = {}
            else:
                tox_ports = self._node_ports(tox.service)
                if not tox_ports:
                    raise TargetError(f"no Service {tox.service!r} in namespace {self.namespace!r} for the Toxiproxy API "
                                      "(target.kubernetes.toxiproxy); network faults and links need it")
                ep["proxy_api_url"] = self._node_port_url(tox_ports, tox.port, f"Toxiproxy Service {tox.service!r}")
            try:
                listed = toxiproxy.proxies(ep["proxy_api_url"], timeout=API_TIMEOUT_S)
            except Exception as e:
                raise TargetError(f"the Toxiproxy API at {ep['proxy_api_url']} does not answer: {e}") from e
            by_target = {
                int(p["target_port"]) if str(p["target_port"]).isdigit() else p["port"]: p for p in tox_ports.values()
            }
            for name, px in listed.items():
                listen_port = int(str(px.get("listen", ":0")).rsplit(":", 1)[1] or 0)
                svc_port = by_target.get(listen_port)
                listen = self._host(svc_port["node_port"]) if svc_port and svc_port["node_port"] else str(px.get("listen"))
                links[name] = {"listen": listen, "upstream": str(px.get("upstream"))}
            missing = [ln.name for ln in self.custom.links if ln.name not in links]
            if missing:
                raise TargetError(f"link(s) {', '.join(map(repr, missing))} of target.links are not proxies of the Toxiproxy at "
                                  f"{ep['proxy_api_url']} (proxies: {', '.join(sorted(links)) or 'none'}); create them there "
                                  "(e.g. its -config file) or fix the names")
        self._links = links
        entry = self.custom.entry
        if self._entry_override:
            ep["entry_url"] = self._entry_override.rstrip("/")
        elif entry.url:
            ep["entry_url"] = entry.url.rstrip("/")
        elif entry.link:
            listen = links.get(entry.link, {}).get("listen", "")
            if not listen.startswith("127.") and not listen.startswith("localhost"):
                raise TargetError(f"entry.link {entry.link!r}: the Toxiproxy Service exposes no NodePort for its listen "
                                  f"address {listen or '?'}; add one (and a kind extraPortMappings entry), or give entry.url")
            ep["entry_url"] = f"http://{listen}"
        else:
            ep["entry_url"] = self._entry_service_url(entry.service, entry.port)
        self._endpoints = ep

    def _entry_service_url(self, service: str, port: str | None) -> str:
        """The NodePort URL of the Kubernetes Service that selects the entry service's pods."""
        dep = self._apps.read_namespaced_deployment(self.deployment(service), self.namespace, _request_timeout=API_TIMEOUT_S)
        pod_labels = dict((dep.spec.template.metadata.labels if dep.spec.template.metadata else None) or {})
        svcs = self._core.list_namespaced_service(self.namespace, _request_timeout=API_TIMEOUT_S).items
        selecting = [s for s in svcs if s.spec.selector and all(pod_labels.get(k) == v for k, v in s.spec.selector.items())]
        with_np = [s for s in selecting if any(p.node_port for p in s.spec.ports or [])]
        if not with_np:
            found = ", ".join(s.metadata.name for s in selecting) or "none"
            raise TargetError(
                f"no NodePort Service selects the pods of service {service!r} (Deployment {dep.metadata.name}; Services "
                f"selecting them: {found}): expose one (type: NodePort, mapped in the kind config's extraPortMappings), "
                "or give target.entry.url (e.g. a kubectl port-forward), or set " + ENTRY_URL_ENV
            )
        chosen = with_np[0]
        ports = {str(p.name or p.port): {"port": p.port, "target_port": p.target_port, "node_port": p.node_port}
                 for p in chosen.spec.ports or []}
        return self._node_port_url(ports, port, f"Service {chosen.metadata.name!r}")

    def deployment(self, group: str) -> str:
        try:
            return self.group_deployments[group]
        except KeyError:
            raise TargetError(f"no group {group!r}; groups: {', '.join(self.group_deployments)}") from None

    def selector(self, group: str) -> str:
        labels = self._selectors.get(group) or {"app": self.deployment(group)}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def _deployment_summary(self, group: str) -> str:
        name = self.deployment(group)
        try:
            d = self._apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - for a message only
            return f"{name}: {e}"
        st = d.status
        return f"{name}: {st.ready_replicas or 0}/{d.spec.replicas} ready, {st.available_replicas or 0} available"

    def _wait_available(self, group: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        name = self.deployment(group)
        while True:
            d = self._apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
            want = d.spec.replicas or 0
            if (d.status.available_replicas or 0) >= want and (d.status.ready_replicas or 0) >= want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _host(self, node_port: int) -> str:
        addr, port = kind_port_map(self.kind_config).get(node_port, ("127.0.0.1", node_port))
        return f"{'127.0.0.1' if addr in ('0.0.0.0', '') else addr}:{port}"

    def _node_ports(self, service: str) -> dict[str, Any]:
        """Port name -> {"port", "target_port", "node_port"} of a Service (empty when it does not exist)."""
        from kubernetes.client.exceptions import ApiException

        try:
            svc = self._core.read_namespaced_service(service, self.namespace, _request_timeout=API_TIMEOUT_S)
        except ApiException as e:
            if e.status == 404:
                return {}
            raise
        return {
            str(p.name or p.port): {"port": p.port, "target_port": p.target_port, "node_port": p.node_port}
            for p in svc.spec.ports or []
        }

    def _resolve_endpoints(self) -> None:
        import json

        from kubernetes.client.exceptions import ApiException

        ep: dict[str, Any] = {}
        gw = self._node_ports(GATEWAY_SERVICE).get(GATEWAY_PORT)
        if gw and gw["node_port"]:
            ep["gateway_url"] = f"http://{self._host(gw['node_port'])}"
        rd = self._node_ports(REDIS_SERVICE).get(REDIS_PORT)
        if rd and rd["node_port"]:
            ep["redis_url"] = f"redis://{self._host(rd['node_port'])}/0"
        proxy_ports = self._node_ports(PROXY_SERVICE)
        api = proxy_ports.get(PROXY_API_PORT)
        if api and api["node_port"]:
            ep["proxy_api_url"] = f"http://{self._host(api['node_port'])}"
        links: dict[str, dict[str, str]] = {}
        try:
            cm = self._core.read_namespaced_config_map(PROXY_CONFIGMAP, self.namespace, _request_timeout=API_TIMEOUT_S)
            proxies = json.loads((cm.data or {}).get(PROXY_CONFIG_KEY, "[]"))
        except ApiException as e:
            if e.status != 404:
                raise
            proxies = []
        by_target = {
            int(p["target_port"]) if str(p["target_port"]).isdigit() else p["port"]: p
            for p in proxy_ports.values()
        }
        for p in proxies:
            listen_port = int(str(p["listen"]).rsplit(":", 1)[1])
            svc_port = by_target.get(listen_port)
            if svc_port and svc_port["node_port"]:
                links[p["name"]] = {"listen": self._host(svc_port["node_port"]), "upstream": str(p["upstream"])}
        self._links = links
        if self._entry_override:
            ep["entry_url"] = self._entry_override.rstrip("/")
        elif ENTRY_LINK in links:
            ep["entry_url"] = f"http://{links[ENTRY_LINK]['listen']}"
        elif "gateway_url" in ep:
            ep["entry_url"] = ep["gateway_url"]
        self._endpoints = ep

    def _endpoint(self, key: str) -> str:
        try:
            return str(self._endpoints[key])
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
        return self._endpoints.get("proxy_api_url")

    @property
    def owns_proxy(self) -> bool:
        """Toxiproxy is a Deployment of the cluster, not a child of the run: unreachable means unknown."""
        return False

    @property
    def owns_redis(self) -> bool:
        return False

    def links(self) -> dict[str, dict[str, str]]:
        """Toxiproxy proxy name -> ``{"listen": "127.0.0.1:HOSTPORT", "upstream": "svc:port"}``."""
        return {k: dict(v) for k, v in self._links.items()}

    # --- safety ----------------------------------------------------------------------
    def check_context(self) -> None:
        """Re-read the kubeconfig; a changed current context (or a context now naming another API
        server) sets :attr:`abort_reason`."""
        if self.abort_reason or self._cluster is None or self._facts.get("context") == IN_CLUSTER_CONTEXT:
            return
        try:
            now = kubeconfig_facts(self.kubeconfig, self.spec.context)
        except TargetError as e:
            reason = f"the kubeconfig became unreadable during the run: {e}"
        else:
            reason = ""
            if self.spec.context is None and now["context"] != self._facts["context"]:
                reason = f"the kubeconfig's current context changed from {self._facts['context']!r} to {now['context']!r} during the run"
            elif now["server"] != self._facts["server"]:
                reason = f"context {self.context!r} now points at {now['server']}, not {self._facts['server']}"
        if reason:
            self.abort_reason = reason + "; refusing to inject anything more (recovery still acts on the pinned cluster)"
            self._emit("context_changed", self.context, {"reason": self.abort_reason})

    def _guard(self) -> None:
        """Raise before any fault action when the run must not go on."""
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
        return [g for g in ("feature-store", "model", "gateway", "proxy") if g in self.group_deployments] + [
            g for g in self.group_deployments if g not in ("feature-store", "model", "gateway", "proxy")
        ]

    def _list_pods(self, selector: str) -> list[Any]:
        if self._core is None:
            raise TargetError("the kubernetes target is not connected")
        return list(self._core.list_namespaced_pod(self.namespace, label_selector=selector, _request_timeout=API_TIMEOUT_S).items)

    def _status(self, pod: Any, group: str) -> ReplicaStatus:
        running = bool(pod.status and pod.status.phase == "Running")
        return ReplicaStatus(name=pod.metadata.name, group=group, pid=None, running=running, ready=_pod_ready(pod),
                             restarts=_restarts(pod))

    def select(self, selector: str, group: str = "selector") -> list[ReplicaStatus]:
        """Non-terminating pods matching a label selector in the namespace, by name."""
        pods = [
            p for p in self._list_pods(selector)
            if p.metadata.deletion_timestamp is None and (p.status is None or p.status.phase not in ("Succeeded", "Failed"))
        ]
        return sorted((self._status(p, group) for p in pods), key=lambda s: s.name)

    def members(self, group: str) -> list[ReplicaStatus]:
        """The group's Deployment's pods that are not terminating (a kill victim drops out at once)."""
        return self.select(self.selector(group), group)

    def pods(self, group: str) -> list[Any]:
        return self._list_pods(self.selector(group))

    def desired_replicas(self, group: str) -> int:
        d = self._apps.read_namespaced_deployment(self.deployment(group), self.namespace, _request_timeout=API_TIMEOUT_S)
        return int(d.spec.replicas or 0)

    def nodes(self) -> list[dict[str, Any]]:
        """Every node: name, roles, ready, pods of this namespace on it."""
        nodes = self._core.list_node(_request_timeout=API_TIMEOUT_S).items
        pods = self._core.list_namespaced_pod(self.namespace, _request_timeout=API_TIMEOUT_S).items
        on: dict[str, int] = {}
        for p in pods:
            if p.spec.node_name and p.metadata.deletion_timestamp is None:
                on[p.spec.node_name] = on.get(p.spec.node_name, 0) + 1
        out = []
        for n in nodes:
            labels = n.metadata.labels or {}
            roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
            ready = {c.type: c.status for c in (n.status.conditions or [])}.get("Ready")
            out.append({"name": n.metadata.name, "roles": roles, "ready": ready == "True", "pods": on.get(n.metadata.name, 0),
                        "control_plane": bool({"control-plane", "master"} & set(roles))})
        return sorted(out, key=lambda d: d["name"])

    def node_ready(self, name: str) -> bool:
        n = self._core.read_node(name, _request_timeout=API_TIMEOUT_S)
        return {c.type: c.status for c in (n.status.conditions or [])}.get("Ready") == "True"

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
        return {
            "platform": "kubernetes",
            "context": self._facts.get("context"),
            "server": self._facts.get("server"),
            "kubeconfig": self._facts.get("kubeconfig"),
            "allowed_because": self._facts.get("allowed_because"),
            "namespace": self.namespace,
            "entry_url": self._endpoints.get("entry_url"),
            "gateway_url": self._endpoints.get("gateway_url"),
            "redis_url": self._endpoints.get("redis_url"),
            "proxy_api_url": self._endpoints.get("proxy_api_url"),
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
        from kubernetes.client.exceptions import ApiException

        self._guard()
        names = list(names)
        pods = {}
        for n in names:
            try:
                pods[n] = self._core.read_namespaced_pod(n, self.namespace, _request_timeout=API_TIMEOUT_S)
            except ApiException as e:
                if e.status == 404:
                    raise TargetError(f"no pod {n!r} in namespace {self.namespace!r}") from e
                raise
        deleted = []
        for n, pod in pods.items():
            group = self._group_of(pod.metadata.labels or {})
            t = time.time()
            with self._state_lock:
                self._add_victim(n, group, pod.spec.node_name, t, "requested")
            try:
                self._core.delete_namespaced_pod(
                    n, self.namespace, grace_period_seconds=round(grace_period),
                    body={"gracePeriodSeconds": round(grace_period), "preconditions": {"uid": pod.metadata.uid}},
                    _request_timeout=API_TIMEOUT_S,
                )
            except ApiException as e:
                if e.status not in (404, 409):  # gone already (or replaced by a namesake)
                    raise
            deleted.append(n)
            self._emit("replica_killed", n, {"grace_period_s": grace_period, "node": pod.spec.node_name, "group": group,
                                             "uid": pod.metadata.uid}, t=t)
        return deleted

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None:
        """The local protocol's kill: delete the pods, with grace period 0 for SIGKILL and 30 s for SIGTERM."""
        self.delete_pods(names, grace_period=0.0 if sig == signal.SIGKILL else 30.0)

    def scale(self, deployment: str, replicas: int) -> int:
        """Set a Deployment's replicas through the scale subresource; returns the previous count."""
        apps = self._apps
        cur = int(apps.read_namespaced_deployment_scale(deployment, self.namespace, _request_timeout=API_TIMEOUT_S).spec.replicas or 0)
        if cur != replicas:
            apps.patch_namespaced_deployment_scale(deployment, self.namespace, {"spec": {"replicas": replicas}},
                                                   _request_timeout=API_TIMEOUT_S)
        self._emit("deployment_scaled", deployment, {"from": cur, "to": replicas})
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
        self._guard()
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

    def _group_of(self, labels: dict[str, str]) -> str | None:
        for group, sel in self._selectors.items():
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return group
        return None

    def _add_victim(self, name: str, group: str | None, node: str | None, t: float, how: str) -> _Victim:
        for v in self._victims:
            if v.name == name:
                return v
        v = _Victim(name, group, node, t, how)
        self._victims.append(v)
        return v

    def _start_watches(self, timeout_s: float) -> None:
        for fn, name in ((self._pod_watch_loop, "k8s-pod-watch"), (self._event_watch_loop, "k8s-event-watch")):
            t = threading.Thread(target=fn, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        if not self._watch_synced.wait(timeout_s):
            raise TargetError("the pod watch did not start")

    def _pod_watch_loop(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        assert self._cluster is not None
        core = client.CoreV1Api(self._cluster.new())
        first = True
        last_check = 0.0
        while not self._stop.is_set():
            try:
                listing = core.list_namespaced_pod(self.namespace, _request_timeout=API_TIMEOUT_S)
                self._sync(listing.items, initial=first)
                first = False
                self._watch_synced.set()
                rv = listing.metadata.resource_version
                w = watch.Watch()
                for ev in w.stream(core.list_namespaced_pod, self.namespace, resource_version=rv,
                                   timeout_seconds=WATCH_TIMEOUT_S, _request_timeout=(5, WATCH_TIMEOUT_S + 10)):
                    if ev["type"] == "ERROR":
                        break
                    self._on_pod(ev["type"], ev["object"])
                    if time.monotonic() - last_check > CONTEXT_CHECK_S:
                        last_check = time.monotonic()
                        self.check_context()
                    if self._stop.is_set():
                        w.stop()
                        break
                if time.monotonic() - last_check > CONTEXT_CHECK_S:
                    last_check = time.monotonic()
                    self.check_context()
            except ApiException as e:
                if e.status != 410:  # 410 Gone: list again
                    self._emit("watch_error", "pods", {"error": f"{e.status} {e.reason}"})
                    self._stop.wait(0.5)
            except Exception as e:  # noqa: BLE001 - keep watching until stopped
                if not self._stop.is_set():
                    self._emit("watch_error", "pods", {"error": repr(e)})
                    self._stop.wait(0.5)

    def _event_watch_loop(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        assert self._cluster is not None
        core = client.CoreV1Api(self._cluster.new())
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
                            self._emit("k8s_warning", io.name if io else "", {
                                "reason": obj.reason, "message": obj.message, "kind": io.kind if io else None,
                                "count": obj.count, "since_start_s": round(time.time() - started, 3)})
                    if self._stop.is_set():
                        w.stop()
                        break
            except ApiException as e:
                if e.status != 410:
                    self._stop.wait(0.5)
            except Exception:  # noqa: BLE001 - keep watching until stopped
                if not self._stop.is_set():
                    self._stop.wait(0.5)

    def _sync(self, pods: list[Any], initial: bool) -> None:
        """A fresh listing: on the first one, remember every pod silently; later (after a 410), diff."""
        seen = set()
        for pod in pods:
            seen.add(pod.metadata.uid)
            if initial:
                with self._state_lock:
                    self._pods[pod.metadata.uid] = self._state_of(pod)
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
            ready=_pod_ready(pod),
            deleting=pod.metadata.deletion_timestamp is not None,
            restarts=_restarts(pod),
        )

    def _on_pod(self, etype: str, pod: Any) -> None:
        now = time.time()
        uid = pod.metadata.uid
        new = self._state_of(pod)
        with self._state_lock:
            old = self._pods.get(uid)
            if etype == "DELETED":
                if old is not None:
                    self._on_deleted(uid, old, now)
                return
            if old is None:
                new.created_t = now
                self._pods[uid] = new
                victim = next((v for v in self._victims if v.group == new.group and v.replacement is None and new.group), None)
                if victim is not None:
                    victim.replacement = new.name
                    new.replaces = victim.name
                self._emit("pod_created", new.name, {"group": new.group, "node": new.node, "replaces": new.replaces}, t=now)
                old = _PodState(new.name, new.group, None, "Pending", False, False, new.restarts, created_t=now,
                                replaces=new.replaces)
            else:
                new.created_t, new.scheduled_t, new.ready_t, new.replaces = old.created_t, old.scheduled_t, old.ready_t, old.replaces
                self._pods[uid] = new
            self._transitions(old, new, now)

    def _transitions(self, old: _PodState, new: _PodState, now: float) -> None:
        name = new.name
        if new.node and not old.node:
            new.scheduled_t = now
            self._emit("pod_scheduled", name, {"node": new.node, "group": new.group}, t=now)
        if new.phase == "Running" and old.phase != "Running" and not new.deleting:
            self._emit("replica_started", name, {"node": new.node, "group": new.group, "restarts": new.restarts}, t=now)
        if new.restarts > old.restarts:
            self._emit("container_restarted", name, {"restarts": new.restarts, "group": new.group}, t=now)
            self._emit("replica_exited", name, {"reason": "container restarted", "restarts": new.restarts}, t=now)
        if new.deleting and not old.deleting:
            v = self._add_victim(name, new.group, new.node, now, "observed")
            v.deletion_seen_t = now
            self._emit("pod_deleting", name, {"node": new.node, "group": new.group, "requested_by_chaosml": v.how == "requested"}, t=now)
        if new.ready and not old.ready:
            new.ready_t = now
            self._emit("pod_ready", name, {"node": new.node, "group": new.group, "replaces": new.replaces}, t=now)
            self._emit("replica_ready", name, {"node": new.node, "group": new.group}, t=now)
            if new.replaces:
                self._replaced(new, now)
        elif old.ready and not new.ready:
            self._emit("replica_unready", name, {"reason": "terminating" if new.deleting else "readiness lost",
                                                 "node": new.node, "group": new.group}, t=now)

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
        }
        # the local target's vocabulary: the killed replica is "ready again" when its replacement is
        self._emit("replica_ready", victim.name, {"replacement": pod.name, "node": pod.node, "group": pod.group}, t=now)
        self._emit("pod_replaced", victim.name, detail, t=now)

    def _on_deleted(self, uid: str, st: _PodState, now: float) -> None:
        self._pods.pop(uid, None)
        v = self._add_victim(st.name, st.group, st.node, now, "observed")
        v.gone_t = now
        if st.ready:
            self._emit("replica_unready", st.name, {"reason": "deleted", "node": st.node, "group": st.group}, t=now)
        self._emit("pod_deleted", st.name, {"node": st.node, "group": st.group}, t=now)
        self._emit("replica_exited", st.name, {"reason": "pod deleted", "node": st.node, "group": st.group}, t=now)

    def replacements(self) -> list[dict[str, Any]]:
        """The MTTR breakdown of every replaced pod seen so far (``pod_replaced`` details)."""
        with self._events_lock:
            return [dict(e.detail) for e in self.events if e.kind == "pod_replaced"]
