"""network-latency and network-toxic: Toxiproxy toxics on the stack's links, added and removed by name; used by the runner.

Both speak the Toxiproxy REST API through :mod:`chaosml.proxy.client`, so they drive the fault
proxy of the local target and a real Toxiproxy alike. A target with links offers
``proxy_api_url`` and ``links()`` (proxy name -> listen/upstream); ``link: model`` means every
``model-<i>`` link. Each injection's toxic is named ``chaosml-<fault>-<injection>`` so that undo
(in the runner or offline from the ledger record) removes exactly it, and a 404 means it is gone
already. The shared helpers here are also used by :mod:`chaosml.faults.featurestore`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from chaosml.errors import TargetError
from chaosml.faults.base import FaultContext, injector, undoer
from chaosml.model.experiment import FaultSpec
from chaosml.model.faults import NetworkLatencyParams, NetworkToxicParams
from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.records import FaultEvent

#: Every proxy API call is bounded by this (seconds).
API_TIMEOUT_S = 2.0


def proxy_api(target: Any) -> str:
    """The target's Toxiproxy API URL, or a TargetError saying why network faults cannot run."""
    url = getattr(target, "proxy_api_url", None)
    if not url:
        raise TargetError("this target has no fault proxy (proxy_api_url); network faults need its links")
    return str(url)


def resolve_links(target: Any, link: str) -> list[str]:
    """Proxy names a ``link`` param selects on ``target``.

    ``model`` is every ``model-<i>`` link (local target: one proxy per replica) or, where the target
    has one proxy in front of the whole model Service (kubernetes), that ``model`` link.
    """
    links = target.links() if hasattr(target, "links") else {}
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

    fault_type = "network-toxic"

    def __init__(
        self,
        spec: FaultSpec,
        target: Any,
        *,
        link: str,
        toxic: str,
        attributes: Mapping[str, int],
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
            "owned_by_run": bool(getattr(self.target, "owns_proxy", True)),
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


@injector("network-latency")
def _make_latency(spec: FaultSpec, target: Any, context: FaultContext) -> ToxicInjector:
    p: NetworkLatencyParams = spec.params
    return ToxicInjector(
        spec, target, link=p.link, toxic="latency",
        attributes={"latency": p.latency_ms, "jitter": p.jitter_ms}, stream=p.stream, toxicity=p.toxicity,
    )


@injector("network-toxic")
def _make_toxic(spec: FaultSpec, target: Any, context: FaultContext) -> ToxicInjector:
    p: NetworkToxicParams = spec.params
    return ToxicInjector(
        spec, target, link=p.link, toxic=p.toxic, attributes=p.attributes, stream=p.stream, toxicity=p.toxicity
    )


@undoer("network-latency")
def _undo_latency(record: dict[str, Any]) -> str:
    return undo_toxic_record(record)


@undoer("network-toxic")
def _undo_toxic(record: dict[str, Any]) -> str:
    return undo_toxic_record(record)
