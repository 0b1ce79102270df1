"""model-rollout: a bad release on a share of the model replicas for the window, then rolled back. Found by the fault-type registry.

During the window ``share`` (or ``replicas``) of the reference stack's model replicas serve a
degraded variant of the primary model instead of the base one; recover returns them to the base
model. The variants are trained, seeded, from the built-in dataset when the injection is recorded
(``chaosml.stack.models.ensure_variant``): ``drop-cohort`` without the training rows of a slice
cohort (``cohort``, e.g. ``mid-radius``), ``label-noise`` with ``noise_share`` of the training labels
flipped, ``stale`` on the first ``train_share`` of the training rows (an older artifact). A replica
serving the variant reports ``model_version`` ``<primary version>+<variant>`` (samples column
``model_version``). Apply and recover call each victim's ``/admin/model`` (POST, DELETE) on its own
address; offline undo sends the DELETE to the addresses in the ledger record. A replica the
supervisor restarts comes back on the base model anyway.

Kubernetes target (:class:`CanaryRollout`): the bad release is a canary Deployment the user names
(``canary``: its name, or a label selector ``k=v,...`` of its pods; the reference stack's is
``model-canary``, pods ``app=model,track=canary``, 0 replicas, booted on the drop-cohort mid-radius
variant). Apply scales the canary up by ``share``/``replicas`` of the primary's replicas (the
``primary`` service's Deployment, default ``model``), waits until it is rolled out and Ready, then
scales the primary down by as many (capacity kept; the service never has zero Ready model pods);
recover scales the primary back first, waits for it, then the canary back. The record holds both
Deployments and their replica counts before, so ``chaosml rollback`` restores them without the run.
What the canary serves is its own (its pods' ``model_version`` in the samples), so the variant
params are not used with ``canary``.
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from chaosml.errors import TargetError
from chaosml.faults._victims import choose
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    StackFacts,
    plan_number,
    plural,
    quote,
    reference_replicas,
    suggest,
)
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import CanaryDeployments, ContextGuard, LedgerScope, ModelVariants
from chaosml.workload.builtin_dataset import SLICES

NAME = "model-rollout"
SERVICE = "model"
ADMIN_TIMEOUT_S = 2.0
#: kubernetes: how long apply waits for the canary, and recover for each Deployment, to be rolled out and Ready (s)
READY_TIMEOUT_S = 120.0
VARIANT_FIELDS = ("variant", "cohort", "noise_share", "train_share")


@dataclass(frozen=True, slots=True)
class ModelRolloutParams:
    """Serve a degraded model variant on a share of the model replicas for the window, then roll back."""

    variant: Literal["drop-cohort", "label-noise", "stale"] | None = None  # default drop-cohort (not used with canary)
    cohort: str | None = None  # drop-cohort: the slice cohort left out of training
    noise_share: float | None = None  # label-noise: share of training labels flipped, (0, 1)
    train_share: float | None = None  # stale: share of the training rows (the first ones) trained on, (0, 1)
    share: float | None = None  # fraction of the model replicas that get the variant (rounded up), (0, 1]
    replicas: int | None = None  # or: how many model replicas get it, >= 1
    canary: str | None = None  # kubernetes: the canary Deployment's name, or a label selector k=v,... of its pods
    primary: str = SERVICE  # kubernetes: the service whose Deployment gives the canary its replicas

    @property
    def kind(self) -> str:
        """The variant (drop-cohort when not given)."""
        return self.variant or "drop-cohort"

    def spec(self) -> dict[str, Any]:
        """The variant as ``chaosml.stack.models.ensure_variant`` takes it."""
        return {"variant": self.kind, "cohort": self.cohort, "noise_share": self.noise_share, "train_share": self.train_share}

    def victim_count(self, replicas: int) -> int:
        """How many of ``replicas`` serve the variant."""
        if self.replicas is not None:
            return min(self.replicas, replicas)
        return min(replicas, math.ceil(replicas * float(self.share or 0)))

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        needs = {"drop-cohort": "cohort", "label-noise": "noise_share", "stale": "train_share"}
        if self.canary is not None:
            errors += [(f, "is not used with canary: the canary Deployment's pods serve their own model (the reference "
                           "stack's model-canary: the primary trained without cohort mid-radius)")
                       for f in VARIANT_FIELDS if getattr(self, f) is not None]
        else:
            for kind, field in needs.items():
                value = getattr(self, field)
                if kind == self.kind and value is None:
                    errors.append((field, f"is required when variant is {kind}"))
                elif kind != self.kind and value is not None:
                    errors.append((field, f"is only used with variant {kind}, not {self.kind}"))
        if self.cohort is not None and self.cohort not in SLICES:
            errors.append(("cohort", f"unknown slice cohort {quote(self.cohort)}{suggest(self.cohort, SLICES)}; "
                           f"slice cohorts: {', '.join(SLICES)}"))
        for field in ("noise_share", "train_share"):
            value = getattr(self, field)
            if value is not None and not 0 < value < 1:
                errors.append((field, f"must be in (0, 1), not {value!r}"))
        if (self.share is None) == (self.replicas is None):
            errors.append(("share", "set exactly one of share (fraction of the model replicas) or replicas (how many)"))
        if self.share is not None and not 0 < self.share <= 1:
            errors.append(("share", f"must be in (0, 1], not {self.share!r}"))
        if self.replicas is not None and self.replicas < 1:
            errors.append(("replicas", "must be >= 1"))
        return errors


class ModelRolloutTarget(ModelVariants, Protocol):
    """What model-rollout needs of the local target."""


class ClusterRollout(CanaryDeployments, LedgerScope, ContextGuard, Protocol):
    """What model-rollout needs of the kubernetes target: Deployments found, scaled and waited on."""


def _admin(url: str, method: str, body: dict[str, Any] | None = None) -> str:
    """Call a replica's ``/admin/model``; the model version it now serves."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{url}/admin/model", data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=ADMIN_TIMEOUT_S) as resp:
        return str(json.loads(resp.read())["model_version"])


def _send_all(urls: dict[str, str], method: str, body: dict[str, Any] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Call every replica's admin endpoint: (name -> model version now served, name -> error)."""
    served, errors = {}, {}
    for name, url in sorted(urls.items()):
        try:
            served[name] = _admin(url, method, body)
        except (OSError, ValueError, KeyError) as e:
            errors[name] = f"{type(e).__name__}: {e}"
    return served, errors


class LocalModelRollout:
    """Choose the victims (seeded) and train the variant in ``undo_record``; POST it on apply, DELETE it on recover."""

    def __init__(self, spec: FaultSpec, target: ModelRolloutTarget, context: FaultContext) -> None:
        self.spec = spec
        self.params: ModelRolloutParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        from chaosml.stack.models import ensure_variant

        members = self.target.members(SERVICE)
        running = sorted(m.name for m in members if m.running)
        count = self.params.victim_count(len(members))
        victims = choose(self._rng, running, count)
        urls = self.target.replica_urls()
        path, version = ensure_variant(self.target.artifact, self.params.spec())
        record = {"service": SERVICE, "victims": victims, "replicas": len(members), "urls": {v: urls[v] for v in victims},
                  "variant_path": str(path), "model_version": version}
        self._records[injection] = record
        return record

    def _event(self, injection: int, action: Literal["apply", "recover"], t: float, served: dict[str, str],
               errors: dict[str, str], detail: dict[str, Any]) -> FaultEvent:
        if errors:
            detail["errors"] = errors
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action=action, ok=not errors,
                          targets=tuple(sorted(served)), detail={**detail, "serving": served})

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        body = {"path": record["variant_path"], "version": record["model_version"]}
        served, errors = _send_all(record["urls"], "POST", body)
        p = self.params
        event = self._event(injection, "apply", t, served, errors,
                            {"variant": p.kind, "model_version": record["model_version"], "replicas": record["replicas"],
                             "share": p.share, "replicas_asked": p.replicas})
        if not served:
            event = FaultEvent(t=event.t, fault=event.fault, injection=injection, action="apply", ok=event.ok, targets=(),
                               detail=event.detail, no_effect=f"no replica serves {record['model_version']}: "
                               f"{len(record['victims'])} of {plural(record['replicas'], 'model replica')} chosen, "
                               f"{len(errors)} refused")
        return event

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection, {"urls": {}})
        t = time.time()
        served, errors = _send_all(record["urls"], "DELETE", None)
        return self._event(injection, "recover", t, served, errors, {})


def undo(record: dict[str, Any]) -> str:
    """Send DELETE /admin/model to every recorded replica (a replica that is gone restarts on the base model anyway)."""
    served, errors = _send_all(dict(record.get("urls", {})), "DELETE", None)
    back = ", ".join(f"{n} -> {v}" for n, v in served.items()) or "none"
    gone = f"; not reached (a restarted replica serves the base model): {', '.join(sorted(errors))}" if errors else ""
    return f"model-rollout of {record.get('model_version', '?')}: back on the base model: {back}{gone}"


def _resolve(target: ClusterRollout, p: ModelRolloutParams) -> dict[str, Any]:
    """The primary Deployment and its replicas now, how many move, and the ONE canary Deployment ``p.canary`` names
    (else ``canary`` None and ``missing``: why)."""
    primary = target.deployment(p.primary)
    n = target.deployment_replicas(primary)
    found = [d for d in target.find_deployments(str(p.canary)) if d != primary]
    out: dict[str, Any] = {"canary_ref": p.canary, "primary": primary, "primary_before": n, "moved": p.victim_count(n)}
    if len(found) == 1:
        return {**out, "canary": found[0], "canary_before": target.deployment_replicas(found[0])}
    why = (f"no Deployment other than the primary ({primary}) matches canary {p.canary!r}" if not found else
           f"canary {p.canary!r} matches {len(found)} Deployments ({', '.join(found)}): name one (or add a label)")
    return {**out, "canary": None, "missing": why}


class CanaryRollout:
    """Kubernetes: move ``share``/``replicas`` of the primary's replicas to the canary Deployment for the window
    (canary up and Ready first, then the primary down), and back (primary first); see the module docstring."""

    def __init__(self, spec: FaultSpec, target: ClusterRollout, context: FaultContext) -> None:
        self.spec = spec
        self.params: ModelRolloutParams = spec.params
        self.target = target
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        record = {**self.target.ledger_scope(), "mechanism": "canary", **_resolve(self.target, self.params)}
        self._records[injection] = record
        return record

    def _event(self, injection: int, action: Literal["apply", "recover"], t: float, ok: bool, targets: list[str],
               detail: dict[str, Any], no_effect: str | None = None) -> FaultEvent:
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action=action, ok=ok, targets=tuple(targets),
                          detail={"mechanism": "canary", **detail}, no_effect=no_effect)

    def apply(self, injection: int) -> FaultEvent:
        r = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        canary, primary, moved = r["canary"], r["primary"], int(r["moved"])
        if canary is None or moved == 0:
            why = r.get("missing") or f"the primary Deployment {primary} has 0 replicas: there is nothing to move"
            return self._event(injection, "apply", t, True, [], {"canary_ref": r["canary_ref"], "primary": primary}, why)
        self.target.guard()
        up, down = int(r["canary_before"]) + moved, max(0, int(r["primary_before"]) - moved)
        self.target.scale(canary, up)
        missing = self.target.wait_deployment_ready(canary, READY_TIMEOUT_S)
        if missing is not None:  # nothing stays scaled: the canary goes back, the primary was never touched
            self.target.scale(canary, int(r["canary_before"]))
            raise TargetError(f"model-rollout: the canary Deployment {canary} was not Ready within {READY_TIMEOUT_S:g} s "
                              f"({missing}); scaled it back to {r['canary_before']}, the primary {primary} was not changed")
        ready_s = time.time() - t
        pods = sorted(m.name for m in self.target.deployment_pods(canary) if m.ready)
        self.target.scale(primary, down)
        return self._event(injection, "apply", t, True, pods, {
            "canary": canary, "primary": primary, "canary_replicas": [r["canary_before"], up],
            "primary_replicas": [r["primary_before"], down], "canary_pods": pods, "canary_ready_s": round(ready_s, 3),
            "share": self.params.share, "replicas_asked": self.params.replicas})

    def recover(self, injection: int) -> FaultEvent:
        r = self._records.get(injection)
        t = time.time()
        if r is None or r["canary"] is None:
            return self._event(injection, "recover", t, True, [], {"note": "nothing was applied"})
        want = {r["primary"]: int(r["primary_before"]), r["canary"]: int(r["canary_before"])}
        missing = {}
        for dep, n in want.items():  # the primary first: back to full capacity before the canary goes
            self.target.scale(dep, n)
            why = self.target.wait_deployment_ready(dep, READY_TIMEOUT_S)
            if why is not None:
                missing[dep] = why
        now = {dep: self.target.deployment_replicas(dep) for dep in want}
        detail: dict[str, Any] = {"canary": r["canary"], "primary": r["primary"], "replicas": now, "replicas_before": want,
                                  "recover_s": round(time.time() - t, 3)}
        if missing:
            detail["not_ready"] = missing
        return self._event(injection, "recover", t, not missing and now == want, list(want), detail)


def undo_kubernetes(record: dict[str, Any]) -> str:
    """Scale the primary, then the canary, back to the recorded counts (idempotent; from the record alone, on one API
    client)."""
    from chaosml.targets.kubernetes import scale_back_from_record

    if record.get("canary") is None:
        return f"model-rollout (canary): nothing was scaled ({record.get('missing', 'no canary')})"
    done = scale_back_from_record(record, [(record[role], int(record[f"{role}_before"])) for role in ("primary", "canary")])
    return f"model-rollout (canary): primary {done[0]}; canary {done[1]}"


def describe(params: ModelRolloutParams) -> str:
    """The variant, in words."""
    p = params
    if p.kind == "drop-cohort":
        feature, lo, hi = SLICES[str(p.cohort)]
        return f"a primary trained without the rows of cohort {p.cohort} ({feature} in [{plan_number(lo)}, {plan_number(hi)}))"
    if p.kind == "label-noise":
        return f"a primary trained with {plan_number(round(100 * float(p.noise_share or 0), 2))}% of its labels flipped"
    return f"a stale primary trained on the first {plan_number(round(100 * float(p.train_share or 0), 2))}% of the training rows"


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: ModelRolloutParams = fault.params
    n = reference_replicas(target.replicas).get(SERVICE, target.replicas)
    victims = p.victim_count(n)
    pct = round(100 * victims / n) if n else 0
    injections = plural(fault.repeat.count, "injection")
    if target.platform == "kubernetes":
        whole = " (all of them: the whole service runs on the canary in the window)" if victims == n else ""
        text = (f"{victims} of {plural(n, 'model replica')} ({pct}%){whole} move to the canary Deployment {p.canary!r} per "
                f"injection, {injections}: the canary is scaled up by {victims} and Ready before the {p.primary} Deployment "
                f"is scaled down by as many; its pods serve their own model; recover scales {p.primary} back first, then "
                "the canary to its count before")
        return BlastRadius(fault.name, fault.type, victims, n, text)
    text = (f"{victims} of {plural(n, 'model replica')} ({pct}%) serve {describe(p)} per injection, "
            f"{injections}; recover returns them to the base model")
    return BlastRadius(fault.name, fault.type, victims, n, text)


def on_cluster(fault: FaultSpec, target: ClusterRollout, nodes: list[dict[str, Any]]) -> str:
    """The canary and primary Deployments the canary param resolves to now, and the counts one injection sets."""
    r = _resolve(target, fault.params)
    if r["canary"] is None:
        return f"NO EFFECT: {r['missing']}"
    c, cb, pr, n, k = r["canary"], r["canary_before"], r["primary"], r["primary_before"], r["moved"]
    return (f"deployment {c} scaled from {cb} to {cb + k} replicas (Ready first), then {pr} from {n} to {max(0, n - k)}; "
            f"recover: {pr} back to {n}, then {c} to {cb}")


def _canary_errors(p: ModelRolloutParams, facts: StackFacts) -> list[tuple[str, str]]:
    """canary: required on kubernetes, refused elsewhere; on the reference stack it must name model-canary."""
    from chaosml.targets.kubernetes.actions import labels_match, parse_selector
    from chaosml.targets.kubernetes.discovery import DEFAULT_GROUPS, REFERENCE_POD_LABELS

    if facts.platform != "kubernetes":
        extra = [("params.canary", "is only used on the kubernetes target (the canary Deployment)")] if p.canary else []
        return extra + ([("params.primary", "is only used on the kubernetes target, with canary")] if p.primary != SERVICE else [])
    if p.canary is None:
        return [("params.canary", "is required on kubernetes: the canary Deployment serving the release, by name or label "
                 "selector (the reference stack's: model-canary, or app=model,track=canary)")]
    errors = [("params.primary", f"unknown service {quote(p.primary)}{suggest(p.primary, facts.services)}; "
               f"services: {', '.join(facts.services)}")] if facts.services and p.primary not in facts.services else []
    try:
        want = parse_selector(p.canary) if "=" in p.canary else None
    except TargetError as e:
        return [*errors, ("params.canary", str(e))]
    if errors or facts.stack != "reference" or (want is not None and not set(want) <= {"app", "track"}):
        return errors  # else not known before the run: resolved at apply (NO EFFECT when it matches nothing)
    primary = DEFAULT_GROUPS.get(p.primary, p.primary)
    hits = [d for d, labels in REFERENCE_POD_LABELS.items() if d != primary
            and (d == p.canary if want is None else labels_match(labels, want))]
    if hits != ["model-canary"]:
        hint = suggest(p.canary, REFERENCE_POD_LABELS) if want is None else ""
        found = (f"it matches {', '.join(hits)}" if hits else
                 f"it matches no Deployment of the reference stack other than the primary{hint}")
        return [("params.canary", f"{quote(p.canary)}: {found}; the reference stack's canary is model-canary "
                 "(pods app=model,track=canary)")]
    return []


def check(params: ModelRolloutParams, facts: StackFacts) -> list[tuple[str, str]]:
    """``replicas`` must not ask for more replicas than the model service has (when known); ``canary`` is required on
    kubernetes (and names the reference stack's canary there), refused elsewhere."""
    errors = _canary_errors(params, facts)
    n = None if facts.replicas is None else facts.replicas.get(params.primary)
    if n is not None and params.replicas is not None and params.replicas > n:
        errors.append(("params.replicas", f"asks for {params.replicas} replicas, but service {params.primary!r} has "
                       f"{plural(n, 'replica')}; use replicas <= {n}, or share: 1"))
    return errors


FAULT_TYPE = FaultType(
    name=NAME,
    params=ModelRolloutParams,
    injectors={"local": LocalModelRollout, "kubernetes": CanaryRollout},
    undoers={"local": undo, "kubernetes": undo_kubernetes},
    capabilities={"local": (ModelVariants,), "kubernetes": (ClusterRollout,)},
    stacks=("reference",),
    severity="medium",
    blast_radius=blast_radius,
    check=check,
    on_cluster=on_cluster,
)
