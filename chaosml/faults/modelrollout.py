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
"""

from __future__ import annotations

import json
import math
import random
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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
from chaosml.targets.capabilities import ModelVariants
from chaosml.workload.builtin_dataset import SLICES

NAME = "model-rollout"
SERVICE = "model"
ADMIN_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ModelRolloutParams:
    """Serve a degraded model variant on a share of the model replicas for the window, then roll back."""

    variant: Literal["drop-cohort", "label-noise", "stale"] = "drop-cohort"
    cohort: str | None = None  # drop-cohort: the slice cohort left out of training
    noise_share: float | None = None  # label-noise: share of training labels flipped, (0, 1)
    train_share: float | None = None  # stale: share of the training rows (the first ones) trained on, (0, 1)
    share: float | None = None  # fraction of the model replicas that get the variant (rounded up), (0, 1]
    replicas: int | None = None  # or: how many model replicas get it, >= 1

    def spec(self) -> dict[str, Any]:
        """The variant as ``chaosml.stack.models.ensure_variant`` takes it."""
        return {"variant": self.variant, "cohort": self.cohort, "noise_share": self.noise_share, "train_share": self.train_share}

    def victim_count(self, replicas: int) -> int:
        """How many of ``replicas`` serve the variant."""
        if self.replicas is not None:
            return min(self.replicas, replicas)
        return min(replicas, math.ceil(replicas * float(self.share or 0)))

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        needs = {"drop-cohort": "cohort", "label-noise": "noise_share", "stale": "train_share"}
        for kind, field in needs.items():
            value = getattr(self, field)
            if kind == self.variant and value is None:
                errors.append((field, f"is required when variant is {kind}"))
            elif kind != self.variant and value is not None:
                errors.append((field, f"is only used with variant {kind}, not {self.variant}"))
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
        victims = sorted(self._rng.sample(running, min(count, len(running))))
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
                            {"variant": p.variant, "model_version": record["model_version"], "replicas": record["replicas"],
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


def describe(params: ModelRolloutParams) -> str:
    """The variant, in words."""
    p = params
    if p.variant == "drop-cohort":
        feature, lo, hi = SLICES[str(p.cohort)]
        return f"a primary trained without the rows of cohort {p.cohort} ({feature} in [{plan_number(lo)}, {plan_number(hi)}))"
    if p.variant == "label-noise":
        return f"a primary trained with {plan_number(round(100 * float(p.noise_share or 0), 2))}% of its labels flipped"
    return f"a stale primary trained on the first {plan_number(round(100 * float(p.train_share or 0), 2))}% of the training rows"


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: ModelRolloutParams = fault.params
    n = reference_replicas(target.replicas).get(SERVICE, target.replicas)
    victims = p.victim_count(n)
    pct = round(100 * victims / n) if n else 0
    text = (f"{victims} of {plural(n, 'model replica')} ({pct}%) serve {describe(p)} per injection, "
            f"{plural(fault.repeat.count, 'injection')}; recover returns them to the base model")
    return BlastRadius(fault.name, fault.type, victims, n, text)


def check(params: ModelRolloutParams, facts: StackFacts) -> list[tuple[str, str]]:
    """``replicas`` must not ask for more replicas than the model service has (when known)."""
    n = None if facts.replicas is None else facts.replicas.get(SERVICE)
    if n is not None and params.replicas is not None and params.replicas > n:
        return [("params.replicas", f"asks for {params.replicas} replicas, but service {SERVICE!r} has {plural(n, 'replica')}; "
                 f"use replicas <= {n}, or share: 1")]
    return []


FAULT_TYPE = FaultType(
    name=NAME,
    params=ModelRolloutParams,
    injectors={"local": LocalModelRollout},
    undoers={"local": undo},
    capabilities={"local": (ModelVariants,)},
    stacks=("reference",),
    severity="medium",
    blast_radius=blast_radius,
    check=check,
)
