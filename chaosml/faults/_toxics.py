"""Shared by network-latency, network-toxic and feature-store-outage: Toxiproxy toxics on the stack's links, added and removed by name.

They speak the Toxiproxy REST API through :mod:`chaosml.proxy.client`, so they drive the fault
proxy of the local target and a real Toxiproxy alike. A target with links offers
``proxy_api_url`` and ``links()`` (proxy name -> listen/upstream); ``link: model`` means every
``model-<i>`` link. Each injection's toxic is named ``chaosml-<fault>-<injection>`` so that undo
(in the runner or offline from the ledger record) removes exactly it, and a 404 means it is gone
already. The link checks and blast-radius words of the link faults live here too, and
:func:`link_fault_type`, the declaration those link faults share (they differ in params and toxic only).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from chaosml.errors import TargetError
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import BlastRadius, FaultContext, FaultType, StackFacts, plan_number, plural, quote
from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import ProxyLinks

#: Every proxy API call is bounded by this (seconds).
API_TIMEOUT_S = 2.0


#: The reference stack's links: client -> gateway, gateway -> each replica, replicas -> feature store.
REFERENCE_LINK_RE = re.compile(r"gateway|feature-store|model|model-(0|[1-9][0-9]{0,3})")
#: A link name a custom stack may declare (the loader checks declarations against it).
LINK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")


def proxy_api(target: ProxyLinks) -> str:
    """The target's Toxiproxy API URL, or a TargetError saying why network faults cannot run."""
    url = target.proxy_api_url
    if not url:
        raise TargetError("this target has no fault proxy (proxy_api_url); network faults need its links")
    return str(url)


def resolve_links(target: ProxyLinks, link: str) -> list[str]:
    """Proxy names a ``link`` param selects on ``target``.

    ``model`` is every ``model-<i>`` link (local target: one proxy per replica) or, where the target
    has one proxy in front of the whole model Service (kubernetes), that ``model`` link.
    """
    links = target.links()
    if not links:
        raise TargetError("this target has no proxy links; network faults need them")
    if link == "model":
        names = [n for n in links if re.fullmatch(r"model-\d+", n)]
        names.sort(key=lambda n: int(n.rsplit("-", 1)[1]))
        if names:
            return names
    if link in links:
        return [link]
    raise TargetError(f"no link {link!r} on this target; links: {', '.join(links)} (and model = every model-<i>)")


def toxic_name(spec: FaultSpec, injection: int) -> str:
    return f"chaosml-{spec.name}-{injection}"


def proxy_state(api: str, proxy: str) -> dict[str, Any]:
    """``{"enabled": bool, "toxics": [names]}`` of one proxy, or ``{"error": ...}`` (for event details)."""
    try:
        p = client.get_proxy(api, proxy, timeout=API_TIMEOUT_S)
    except ToxiproxyError as e:
        return {"error": str(e)}
    return {"enabled": bool(p["enabled"]), "toxics": [t["name"] for t in p.get("toxics") or []]}


def proxy_gone(exc: ToxiproxyError, record: Mapping[str, Any]) -> bool:
    """True when the API refused the connection and the proxy belonged to the (now gone) run.

    The local target's proxy is a child of the harness: when its API refuses connections, the process
    and every toxic in it are gone. A shared Toxiproxy (``owned_by_run`` false) that cannot be reached
    is a real failure: its toxics may still be there.
    """
    return exc.status == 0 and isinstance(exc.__cause__, ConnectionRefusedError) and bool(record.get("owned_by_run"))


def remove_toxics(api: str, proxies: list[str], name: str) -> dict[str, str]:
    """Remove toxic ``name`` from each proxy; proxy -> ``removed`` | ``absent`` (404: already gone)."""
    out: dict[str, str] = {}
    for proxy in proxies:
        try:
            client.remove_toxic(api, proxy, name, timeout=API_TIMEOUT_S)
            out[proxy] = "removed"
        except ToxiproxyError as e:
            if e.status != 404:
                raise
            out[proxy] = "absent"
    return out


def undo_toxic_record(record: Mapping[str, Any]) -> str:
    """Offline undo of a toxic record: remove the named toxic from every proxy it lists."""
    api, name, proxies = record["api"], record["toxic"], list(record["proxies"])
    try:
        done = remove_toxics(api, proxies, name)
    except ToxiproxyError as e:
        if proxy_gone(e, record):
            return f"toxic {name}: the run's proxy at {api} is gone, and its toxics with it"
        raise ToxiproxyError(
            e.status, f"toxic {name} may still be on {', '.join(proxies)} at {api}: {e.message}; "
            f"remove it with DELETE {api}/proxies/<proxy>/toxics/{name}"
        ) from e
    return f"toxic {name}: " + ", ".join(f"{p} {s}" for p, s in done.items())


class ToxicInjector:
    """Adds one named toxic to the selected links on apply and removes it on recover."""

    def __init__(
        self,
        spec: FaultSpec,
        target: ProxyLinks,
        *,
        link: str,
        toxic: str,
        attributes: Mapping[str, int | str],
        stream: str,
        toxicity: float,
    ) -> None:
        self.spec = spec
        self.target = target
        self.link = link
        self.toxic = toxic
        self.attributes = dict(attributes)
        self.stream = stream
        self.toxicity = toxicity
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        record = {
            "api": proxy_api(self.target),
            "proxies": resolve_links(self.target, self.link),
            "toxic": toxic_name(self.spec, injection),
            "type": self.toxic,
            "stream": self.stream,
            "owned_by_run": self.target.owns_proxy,
        }
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        api, name = record["api"], record["toxic"]
        t = time.time()
        for proxy in record["proxies"]:
            try:
                client.add_toxic(
                    api, proxy, self.toxic, name=name, attributes=self.attributes,
                    stream=self.stream, toxicity=self.toxicity, timeout=API_TIMEOUT_S,
                )
            except ToxiproxyError as e:
                if e.status != 409:  # 409: this injection's toxic is there already (apply retried)
                    raise TargetError(f"could not add toxic {name} to link {proxy}: {e}") from e
        state = {p: proxy_state(api, p) for p in record["proxies"]}
        return FaultEvent(
            t=t,
            fault=self.spec.name,
            injection=injection,
            action="apply",
            ok=all(name in s.get("toxics", ()) for s in state.values()),
            targets=tuple(record["proxies"]),
            detail={
                "link": self.link,
                "toxic": name,
                "type": self.toxic,
                "attributes": self.attributes,
                "stream": self.stream,
                "toxicity": self.toxicity,
                "proxy_api": api,
                "links": state,
                "apply_s": round(time.time() - t, 4),
            },
        )

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:  # apply never got as far as deciding what to touch
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        removed = remove_toxics(record["api"], record["proxies"], record["toxic"])
        state = {p: proxy_state(record["api"], p) for p in record["proxies"]}
        return FaultEvent(
            t=t,
            fault=self.spec.name,
            injection=injection,
            action="recover",
            ok=all(record["toxic"] not in s.get("toxics", ()) and "error" not in s for s in state.values()),
            targets=tuple(record["proxies"]),
            detail={"toxic": record["toxic"], "removed": removed, "links": state, "recover_s": round(time.time() - t, 4)},
        )


def check_toxicity(toxicity: float) -> list[tuple[str, str]]:
    """(field, message) for a toxicity outside (0, 1]."""
    if 0 < toxicity <= 1:
        return []
    return [("toxicity", "must be in (0, 1]: the probability that a connection gets the toxic")]


def check_link_name(link: str) -> list[tuple[str, str]]:
    """(field, message) when ``link`` is not a link name at all."""
    if LINK_NAME_RE.fullmatch(link):
        return []
    return [("link", f"{link!r} is not a link name (e.g. gateway, feature-store, model or model-<i>)")]


def check_link_on_stack(link: str, facts: StackFacts, path: str = "params.link") -> list[tuple[str, str]]:
    """(path, message) when ``link`` is not a link of the experiment's stack (reference: fixed; custom: declared)."""
    if facts.stack != "custom":
        if not REFERENCE_LINK_RE.fullmatch(link):
            return [(path, f"must be one of gateway, feature-store, model or model-<i> (one replica) on the reference stack, not {link!r}")]
        n = None if facts.replicas is None or facts.platform != "local" else facts.replicas.get("model")
        if n is not None and link.startswith("model-") and int(link[len("model-"):]) >= n:
            links = ", ".join(["gateway", "feature-store", "model", *(f"model-{i}" for i in range(n))])
            return [(path, f"no link {quote(link)}: the reference stack has {plural(n, 'model replica')} (target.replicas); links: {links}")]
        return []
    if facts.links is None or link in facts.links:
        return []
    k8s = facts.platform == "kubernetes"
    return [(path, f"no link {quote(link)} on this stack; links: {', '.join(sorted(facts.links)) or 'none'} (declare target.links"
             + (", naming a proxy of your cluster's Toxiproxy)" if k8s else ", or entry.proxy: true)"))]


def link_scope(link: str, target: TargetSpec) -> tuple[int | None, int | None, str]:
    """(victims, of, words) for a proxy link of the reference stack (or a custom stack's entry service)."""
    if target.stack == "custom" and target.platform == "kubernetes":
        return 1, 1, f"the {link} proxy of the cluster's Toxiproxy: every connection through it"
    n = target.replicas
    if target.entry is not None:
        n = next((s.replicas for s in target.services if s.name == target.entry.service), target.replicas)
    if link == "gateway":
        return 1, 1, "the gateway link (client -> gateway): every request"
    if link == "feature-store":
        return 1, 1, f"the feature-store link (replicas -> redis): every feature fetch of all {n} replicas"
    if link == "model":
        return n, n, f"all {n} replica links (gateway -> model-0..{n - 1}): every request"
    if not re.fullmatch(r"model-\d+", link):
        declared = next((ln for ln in target.links if ln.name == link), None)
        dest = f" (services -> {declared.upstream})" if declared is not None and declared.upstream else ""
        return 1, 1, f"the {link} link{dest}: every connection through it"
    idx = int(link.rsplit("-", 1)[1])
    if idx >= n:
        return 0, n, f"link {link}, which does not exist with {plural(n, 'replica')}: the injection will fail"
    return 1, n, f"1 of {n} replica links ({link}: gateway -> {link}, about {round(100 / n)}% of requests)"


def share_words(toxicity: float) -> str:
    """'every connection' or 'N% of connections' for a toxicity."""
    return "every connection" if toxicity >= 1 else f"{plan_number(round(100 * toxicity, 1))}% of connections"


def link_on_cluster(link: str, target: ProxyLinks) -> str:
    """The cluster Toxiproxy's proxy a link names now (``chaosml plan`` with a cluster)."""
    links = target.links()
    shown = links.get(link) or (links.get("model") if link.startswith("model") else None)
    return f"Toxiproxy link {link}: {shown or 'not found among the Toxiproxy proxies'}"


def link_fault_on_cluster(fault: FaultSpec, target: ProxyLinks, nodes: list[dict[str, Any]]) -> str:
    """``FaultType.on_cluster`` of a fault whose params name a ``link`` (network-latency, network-toxic)."""
    return link_on_cluster(fault.params.link, target)


def check_link_fault(params: Any, facts: StackFacts) -> list[tuple[str, str]]:
    """``FaultType.check`` of a fault whose params name a ``link``: it must be a link of the stack."""
    return check_link_on_stack(params.link, facts)


class LinkParams(Protocol):
    """What the params of a link fault have: the link, the stream and the share of connections."""

    @property
    def link(self) -> str: ...

    @property
    def stream(self) -> str: ...

    @property
    def toxicity(self) -> float: ...


P = TypeVar("P", bound=LinkParams)


def check_link_params(params: LinkParams) -> list[tuple[str, str]]:
    """(field, message) for a link param that is no link name and a toxicity outside (0, 1]."""
    return check_link_name(params.link) + check_toxicity(params.toxicity)


def link_fault_type(
    name: str,
    params: type[P],
    severity: str,
    toxic: Callable[[P], tuple[str, Mapping[str, int]]],
    effect: Callable[[P], str],
) -> FaultType:
    """The FaultType of one toxic on one link, on both platforms: ``toxic(params)`` is the Toxiproxy toxic and its
    attributes, ``effect(params)`` what it does in the blast radius's words (``on the <stream> stream`` follows)."""

    def make(spec: FaultSpec, target: ProxyLinks, context: FaultContext) -> ToxicInjector:
        p: P = spec.params
        kind, attributes = toxic(p)
        return ToxicInjector(spec, target, link=p.link, toxic=kind, attributes=attributes, stream=p.stream, toxicity=p.toxicity)

    def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
        p: P = fault.params
        victims, of, where = link_scope(p.link, target)
        what = f"{effect(p)} on the {p.stream} stream"
        text = f"{what}, {share_words(p.toxicity)} of {where}; {plural(fault.repeat.count, 'injection')}"
        return BlastRadius(fault.name, fault.type, victims, of, text)

    return FaultType(
        name=name,
        params=params,
        injectors={"local": make, "kubernetes": make},
        undoers={"local": undo_toxic_record, "kubernetes": undo_toxic_record},
        capabilities={"local": (ProxyLinks,), "kubernetes": (ProxyLinks,)},
        severity=severity,
        blast_radius=blast_radius,
        check=check_link_fault,
        on_cluster=link_fault_on_cluster,
    )
