"""Finding the stack in a namespace: groups' Deployments by name or labels, entry Services, NodePorts, Toxiproxy links; used by KubernetesTarget.

Two kinds of stack:

- the reference stack (``chaosml cluster up``): groups are Deployments by name (``feature-store``
  -> ``redis``, ``model`` -> ``model``, ``gateway`` -> ``gateway``, ``proxy`` -> ``toxiproxy``);
  the endpoints are its Services' NodePorts and the links the proxies of the Toxiproxy ConfigMap;
- a user's stack (``target.services``): each service is the ONE Deployment whose pods carry its
  selector's labels; the entry is a URL, a Toxiproxy link or the NodePort Service selecting the
  entry service's pods; links are the proxies the user's Toxiproxy API lists.

NodePorts are reached on 127.0.0.1 through kind's ``extraPortMappings`` (:mod:`.kindconfig`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.errors import TargetError
from chaosml.model.experiment import KubernetesSpec, TargetSpec, ToxiproxySpec
from chaosml.targets.kubernetes.context import API_TIMEOUT_S
from chaosml.targets.kubernetes.kindconfig import host_of
from chaosml.targets.kubernetes.rollout import rollout_pending

#: overrides the entry URL (e.g. a port-forward or an ingress) instead of the NodePort mapping
ENTRY_URL_ENV = "CHAOSML_K8S_ENTRY_URL"
#: group -> Deployment name (also its ``app`` label)
DEFAULT_GROUPS: dict[str, str] = {"feature-store": "redis", "model": "model", "gateway": "gateway", "proxy": "toxiproxy"}
#: the reference stack's Deployments (manifests/stack.yaml) -> their pods' ``app``/``track`` labels; model-rollout's
#: validate check resolves a canary against them (a test holds them to the manifests)
REFERENCE_POD_LABELS: dict[str, dict[str, str]] = {
    "redis": {"app": "redis"}, "model": {"app": "model", "track": "stable"}, "model-canary": {"app": "model", "track": "canary"},
    "toxiproxy": {"app": "toxiproxy"}, "gateway": {"app": "gateway"},
}
#: Services and port names the endpoints come from (manifests/stack.yaml)
GATEWAY_SERVICE, GATEWAY_PORT = "gateway", "http"
REDIS_SERVICE, REDIS_PORT = "redis", "redis"
PROXY_SERVICE, PROXY_API_PORT = "toxiproxy", "api"
PROXY_CONFIGMAP, PROXY_CONFIG_KEY = "toxiproxy-config", "toxiproxy.json"
ENTRY_LINK = "gateway"

#: a Service's port name -> {"port", "target_port", "node_port"}
Ports = dict[str, dict[str, Any]]


@dataclass
class StackLayout:
    """What discovery found: each group's Deployment and pod labels, the endpoints, the Toxiproxy links."""

    deployments: dict[str, str]
    selectors: dict[str, dict[str, str]] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    #: Toxiproxy proxy name -> {"listen": "127.0.0.1:HOSTPORT", "upstream": "svc:port"}
    links: dict[str, dict[str, str]] = field(default_factory=dict)

    def deployment(self, group: str) -> str:
        try:
            return self.deployments[group]
        except KeyError:
            raise TargetError(f"no group {group!r}; groups: {', '.join(self.deployments)}") from None

    def selector(self, group: str) -> str:
        """The group's pods' label selector (``k=v,...``)."""
        labels = self.selectors.get(group) or {"app": self.deployment(group)}
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def group_of(self, labels: dict[str, str]) -> str | None:
        """The group whose selector matches a pod's labels."""
        for group, sel in self.selectors.items():
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return group
        return None


def _ports_of(svc: Any) -> Ports:
    return {str(p.name or p.port): {"port": p.port, "target_port": p.target_port, "node_port": p.node_port}
            for p in svc.spec.ports or []}


def _by_target_port(ports: Ports) -> dict[Any, dict[str, Any]]:
    return {int(p["target_port"]) if str(p["target_port"]).isdigit() else p["port"]: p for p in ports.values()}


class Discovery:
    """Resolves a :class:`StackLayout` in one namespace through connected Core and Apps APIs."""

    def __init__(
        self,
        core: Any,
        apps: Any,
        *,
        namespace: str,
        context: str,
        spec: KubernetesSpec,
        custom: TargetSpec | None,
        kind_config: Path | None,
        entry_override: str | None,
        layout: StackLayout,
    ) -> None:
        self.core, self.apps = core, apps
        self.namespace, self.context = namespace, context
        self.spec, self.custom = spec, custom
        self.kind_config = kind_config
        self.entry_override = entry_override
        self.layout = layout

    # --- groups ------------------------------------------------------------------------
    def resolve_groups(self) -> None:
        if self.custom is not None:
            self._resolve_custom_groups()
        else:
            self._resolve_reference_groups()

    def _resolve_reference_groups(self) -> None:
        from kubernetes.client.exceptions import ApiException

        missing = []
        for group, name in self.layout.deployments.items():
            try:
                d = self.apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
            except ApiException as e:
                if e.status != 404:
                    raise TargetError(f"cannot read deployment {self.namespace}/{name}: {e.status} {e.reason}") from e
                missing.append(f"{name} (group {group})")
                continue
            self.layout.selectors[group] = dict(d.spec.selector.match_labels or {})
        if missing:
            raise TargetError(
                f"deployment(s) missing in namespace {self.namespace!r} of context {self.context!r}: {', '.join(missing)}; "
                "deploy the reference stack with `chaosml cluster up` (manifests/)"
            )

    def _resolve_custom_groups(self) -> None:
        """services[i].selector -> the ONE Deployment of the namespace whose pods carry those labels."""
        assert self.custom is not None
        try:
            deps = self.apps.list_namespaced_deployment(self.namespace, _request_timeout=API_TIMEOUT_S).items
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
                self.layout.deployments[svc.name] = d.metadata.name
                self.layout.selectors[svc.name] = dict(d.spec.selector.match_labels or {}) or want
            elif not hits:
                listing = "; ".join(shown(d) for d in deps[:10]) or "none"
                problems.append(f"service {svc.name!r}: no Deployment in namespace {self.namespace!r} has pods labelled {sel} "
                                f"(Deployments: {listing})")
            else:
                problems.append(f"service {svc.name!r}: {len(hits)} Deployments have pods labelled {sel}: "
                                f"{'; '.join(shown(d) for d in hits)}; add a label to target.services[].selector that tells them apart")
        if problems:
            raise TargetError("; ".join(problems) + f" (context {self.context!r})")

    def wait_available(self, group: str, timeout_s: float) -> bool:
        """The group's Deployment is rolled out (:func:`rollout_pending`) and every desired replica ready (bounded)."""
        return self.wait_deployment(self.layout.deployment(group), timeout_s)

    def wait_deployment(self, name: str, timeout_s: float) -> bool:
        """The Deployment ``name`` is rolled out (:func:`rollout_pending`) and every desired replica ready (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            d = self.apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
            want = d.spec.replicas or 0
            if rollout_pending(d) is None and (d.status.ready_replicas or 0) >= want:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def deployment_summary(self, group: str) -> str:
        return self.summary_of(self.layout.deployment(group))

    def summary_of(self, name: str) -> str:
        """``name: ready/desired ready, N available`` (or the error reading it), for messages."""
        try:
            d = self.apps.read_namespaced_deployment(name, self.namespace, _request_timeout=API_TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - for a message only
            return f"{name}: {e}"
        st = d.status
        pending = rollout_pending(d)
        return (f"{name}: {st.ready_replicas or 0}/{d.spec.replicas} ready, {st.available_replicas or 0} available"
                + (f", rollout not complete: {pending}" if pending else ""))

    # --- endpoints ---------------------------------------------------------------------
    def resolve_endpoints(self) -> None:
        if self.custom is not None:
            self._resolve_custom_endpoints()
        else:
            self._resolve_reference_endpoints()

    def _host(self, node_port: int) -> str:
        return host_of(self.kind_config, node_port)

    def _node_ports(self, service: str) -> Ports:
        """Port name -> {"port", "target_port", "node_port"} of a Service (empty when it does not exist)."""
        from kubernetes.client.exceptions import ApiException

        try:
            svc = self.core.read_namespaced_service(service, self.namespace, _request_timeout=API_TIMEOUT_S)
        except ApiException as e:
            if e.status == 404:
                return {}
            raise
        return _ports_of(svc)

    def _node_port_url(self, ports: Ports, port: str | None, what: str) -> str:
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

    def _resolve_reference_endpoints(self) -> None:
        from kubernetes.client.exceptions import ApiException

        ep: dict[str, str] = {}
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
            cm = self.core.read_namespaced_config_map(PROXY_CONFIGMAP, self.namespace, _request_timeout=API_TIMEOUT_S)
            proxies = json.loads((cm.data or {}).get(PROXY_CONFIG_KEY, "[]"))
        except ApiException as e:
            if e.status != 404:
                raise
            proxies = []
        by_target = _by_target_port(proxy_ports)
        for p in proxies:
            listen_port = int(str(p["listen"]).rsplit(":", 1)[1])
            svc_port = by_target.get(listen_port)
            if svc_port and svc_port["node_port"]:
                links[p["name"]] = {"listen": self._host(svc_port["node_port"]), "upstream": str(p["upstream"])}
        self.layout.links = links
        if self.entry_override:
            ep["entry_url"] = self.entry_override.rstrip("/")
        elif ENTRY_LINK in links:
            ep["entry_url"] = f"http://{links[ENTRY_LINK]['listen']}"
        elif "gateway_url" in ep:
            ep["entry_url"] = ep["gateway_url"]
        self.layout.endpoints = ep

    def _toxiproxy_spec(self) -> ToxiproxySpec | None:
        if self.spec.toxiproxy is not None:
            return self.spec.toxiproxy
        if self.custom is not None and (self.custom.links or (self.custom.entry and self.custom.entry.link)):
            return ToxiproxySpec()
        return None

    def _resolve_custom_endpoints(self) -> None:
        from chaosml.proxy import client as toxiproxy

        assert self.custom is not None and self.custom.entry is not None
        ep: dict[str, str] = {}
        tox = self._toxiproxy_spec()
        links: dict[str, dict[str, str]] = {}
        if tox is not None:
            if tox.url:
                ep["proxy_api_url"] = tox.url.rstrip("/")
                tox_ports: Ports = {}
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
            by_target = _by_target_port(tox_ports)
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
        self.layout.links = links
        entry = self.custom.entry
        if self.entry_override:
            ep["entry_url"] = self.entry_override.rstrip("/")
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
        self.layout.endpoints = ep

    def _entry_service_url(self, service: str, port: str | None) -> str:
        """The NodePort URL of the Kubernetes Service that selects the entry service's pods."""
        dep = self.apps.read_namespaced_deployment(self.layout.deployment(service), self.namespace, _request_timeout=API_TIMEOUT_S)
        pod_labels = dict((dep.spec.template.metadata.labels if dep.spec.template.metadata else None) or {})
        svcs = self.core.list_namespaced_service(self.namespace, _request_timeout=API_TIMEOUT_S).items
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
        return self._node_port_url(_ports_of(chosen), port, f"Service {chosen.metadata.name!r}")
