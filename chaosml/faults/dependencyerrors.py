"""dependency-errors: a share of the HTTP responses on a proxy link replaced by an error status, an empty or a malformed body. Found by the fault-type registry.

It adds the fault proxy's ``http_errors`` toxic (a chaosml extension of the Toxiproxy API: real
Toxiproxy does not have it) on the downstream stream of ``link``. On the reference stack the HTTP
hops through the proxy are ``model`` / ``model-<i>`` (gateway -> replica: the replicas are the
gateway's dependency) and ``gateway`` (client -> gateway); the feature store speaks RESP, not HTTP.
The fault runs on the local target only (whose proxy is chaosml's); should its proxy answer
``/version`` as another implementation, apply adds nothing and says so (``no_effect``: the run is
INCONCLUSIVE, never a pass). Undo: remove the toxic by name, as every toxic fault.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from chaosml.faults._toxics import (
    API_TIMEOUT_S,
    ToxicInjector,
    check_link_fault,
    check_link_name,
    link_scope,
    undo_toxic_record,
)
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import BlastRadius, FaultContext, FaultType, StackFacts, plan_number, plural
from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import ProxyLinks

NAME = "dependency-errors"
TOXIC = "http_errors"
#: what the fault proxy's ``/version`` carries when it is chaosml's own (and so has ``http_errors``)
CHAOSML_PROXY_TAG = "chaosml"
_WHAT = {"status": "answered with status {status}", "empty": "emptied (status and headers kept, no body)",
         "malformed": "cut to half their body (malformed JSON)"}


@dataclass(frozen=True, slots=True)
class DependencyErrorsParams:
    """Replace a share of the HTTP responses on one link (downstream) by an error status, an empty or a malformed body."""

    link: str = "model"  # model | model-<i> (gateway -> replica) | gateway (client -> gateway) | a declared link
    error_share: float = 0.1  # share of responses replaced, in [0.001, 1]
    mode: Literal["status", "empty", "malformed"] = "status"
    status: int = 503  # mode status: the status code sent instead (500-599)

    @property
    def permille(self) -> int:
        return round(self.error_share * 1000)

    def check(self) -> list[tuple[str, str]]:
        errors = check_link_name(self.link)
        if not 0.001 <= self.error_share <= 1:
            errors.append(("error_share", "must be in [0.001, 1]: the share of responses replaced"))
        if not 500 <= self.status <= 599:
            errors.append(("status", "must be a 5xx status code (500-599)"))
        elif self.mode != "status" and self.status != 503:
            errors.append(("status", f"is only used with mode status, not {self.mode}"))
        return errors


class DependencyErrorsInjector(ToxicInjector):
    """The ``http_errors`` toxic on the link's proxies; refuses to pretend when the proxy is not chaosml's."""

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        try:
            version = client.version(record["api"], timeout=API_TIMEOUT_S)
        except ToxiproxyError as e:
            version = f"unknown ({e})"
        if CHAOSML_PROXY_TAG not in version:
            return FaultEvent(
                t=time.time(), fault=self.spec.name, injection=injection, action="apply", ok=True,
                targets=tuple(record["proxies"]), detail={"proxy_api": record["api"], "proxy_version": version},
                no_effect=(f"added nothing: the proxy at {record['api']} is Toxiproxy {version}, which has no "
                           f"{TOXIC} toxic (a chaosml extension; the local target's fault proxy has it)"),
            )
        return super().apply(injection)


def make(spec: FaultSpec, target: ProxyLinks, context: FaultContext) -> DependencyErrorsInjector:
    p: DependencyErrorsParams = spec.params
    attributes: dict[str, int | str] = {"permille": p.permille, "mode": p.mode, "status": p.status}
    return DependencyErrorsInjector(spec, target, link=p.link, toxic=TOXIC, attributes=attributes, stream="downstream", toxicity=1.0)


def undo(record: dict[str, Any]) -> str:
    return undo_toxic_record(record)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: DependencyErrorsParams = fault.params
    victims, of, where = link_scope(p.link, target)
    what = _WHAT[p.mode].format(status=p.status)
    share = "every HTTP response" if p.permille >= 1000 else f"{plan_number(round(100 * p.error_share, 1))}% of the HTTP responses"
    text = f"{share} {what} on {where}; {plural(fault.repeat.count, 'injection')}"
    return BlastRadius(fault.name, fault.type, victims, of, text)


def summary(p: DependencyErrorsParams) -> str:
    """The plan's one line: ``status`` only where it is used."""
    status = f" status={p.status}" if p.mode == "status" else ""
    return f"link={p.link} error_share={p.error_share:g} mode={p.mode}{status}"


def check(params: DependencyErrorsParams, facts: StackFacts) -> list[tuple[str, str]]:
    """The link must be one of the stack's, and carry HTTP (the reference stack's feature-store link carries Redis)."""
    errors = check_link_fault(params, facts)
    if not errors and facts.stack == "reference" and params.link == "feature-store":
        errors.append(("params.link", "the feature-store link carries Redis (RESP), not HTTP; use model, model-<i> or gateway"))
    return errors


FAULT_TYPE = FaultType(
    name=NAME,
    params=DependencyErrorsParams,
    injectors={"local": make},
    undoers={"local": undo},
    capabilities={"local": (ProxyLinks,)},
    severity="medium",
    blast_radius=blast_radius,
    summary=summary,
    check=check,
)
