"""drift: a scheduled shift of the load's input distribution over the fault window. Found by the fault-type registry.

Covariate shift (``features`` moved by ``shift_std`` standard deviations and/or spread by
``scale``), prior shift (``class_mix``) and an out-of-distribution share (``ood_share``), reached
along ``ramp`` (linear, step, sudden) over the window. Apply puts this injection's entry
``{"drift": {...}}`` into the load-control file (``chaosml/faults/_control.py``); the load process
rebuilds every clean request from its row's features at the magnitude reached at send time and
records that magnitude per sample (samples column ``drift``; the formulas are in
``chaosml/load/drift.py``). Recover removes the entry: the load returns to the base distribution
at once. Offline undo deletes the load-control file, as for adversarial-payload.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chaosml.faults._control import set_entry, undo_control_file
from chaosml.faults._rows import DATASET_REQUEST_FEATURES
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    StackFacts,
    plan_number,
    plan_seconds,
    plural,
    quote,
    suggest,
)
from chaosml.records import FaultEvent

NAME = "drift"
#: the class labels of each bundled dataset
DATASET_CLASSES: dict[str, tuple[int, ...]] = {"breast_cancer": (0, 1)}


@dataclass(frozen=True, slots=True)
class DriftParams:
    """Shift the load's clean inputs over the window: covariate shift, prior shift, out-of-distribution share."""

    features: tuple[str, ...] = ()  # request features to shift and/or scale
    shift_std: float = 0.0  # mean shift at full magnitude, in standard deviations of the feature (sign = direction)
    scale: float = 1.0  # spread about the mean at full magnitude (1 = unchanged, 2 = twice as wide), > 0
    ramp: Literal["linear", "step", "sudden"] = "linear"  # how the magnitude grows from 0 to 1 over the window
    steps: int = 4  # ramp step: equal steps, the first at apply
    class_mix: Mapping[str, float] | None = None  # class label -> proportion at full magnitude (prior shift)
    ood_share: float = 0.0  # fraction of requests out of distribution at full magnitude, [0, 1]

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        moves = self.shift_std != 0 or self.scale != 1
        if self.scale <= 0:
            errors.append(("scale", f"must be > 0, not {self.scale!r}"))
        if moves and not self.features:
            errors.append(("features", "list the request features to shift or scale"))
        if self.features and not moves:
            errors.append(("shift_std", "set shift_std (or scale) to move the listed features"))
        if len(set(self.features)) != len(self.features):
            errors.append(("features", "must not repeat a feature"))
        if not 0 <= self.ood_share <= 1:
            errors.append(("ood_share", f"must be in [0, 1], not {self.ood_share!r}"))
        if self.steps < 1:
            errors.append(("steps", "must be >= 1"))
        if self.class_mix is not None:
            for k, v in self.class_mix.items():
                if not str(k).isdigit():
                    errors.append((f"class_mix.{k}", "class labels are integers >= 0"))
                if v < 0:
                    errors.append((f"class_mix.{k}", "proportions are >= 0"))
            if sum(self.class_mix.values()) <= 0:
                errors.append(("class_mix", "proportions must sum to > 0"))
        if not self.features and not moves and self.class_mix is None and self.ood_share == 0:
            errors.append(("features", "nothing drifts: set features with shift_std or scale, class_mix, or ood_share"))
        return errors


class Drift:
    """Put this injection's drift schedule into the load-control file; remove it on recover."""

    def __init__(self, spec: FaultSpec, context: FaultContext):
        self.spec = spec
        self.params: DriftParams = spec.params
        if context.load_control_file is None:
            raise ValueError("drift needs a run directory for the load-control file")
        self.path = context.load_control_file

    def _key(self, injection: int) -> str:
        return f"{self.spec.name}#{injection}"

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {"control_file": str(self.path), "fault": self.spec.name}

    def _schedule(self, t: float) -> dict[str, Any]:
        p = self.params
        return {"fault": self.spec.name, "start_t": t, "duration_s": self.spec.duration, "features": list(p.features),
                "shift_std": p.shift_std, "scale": p.scale, "ramp": p.ramp, "steps": p.steps,
                "class_mix": None if p.class_mix is None else dict(p.class_mix), "ood_share": p.ood_share}

    def _event(self, injection: int, action: Literal["apply", "recover"], t: float, error: str | None, detail: dict[str, Any]) -> FaultEvent:
        if error:
            detail["error"] = error
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action=action, ok=error is None,
                          targets=(), detail=detail)

    def apply(self, injection: int) -> FaultEvent:
        t = time.time()
        schedule, error = self._schedule(t), None
        try:
            set_entry(self.path, self._key(injection), {"drift": schedule})
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        return self._event(injection, "apply", t, error, {**schedule, "control_file": str(self.path)})

    def recover(self, injection: int) -> FaultEvent:
        t, error = time.time(), None
        try:
            set_entry(self.path, self._key(injection), None)
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        return self._event(injection, "recover", t, error, {"control_file_left": self.path.exists()})


def undo(record: dict[str, Any]) -> str:
    """Delete the load-control file: the load returns to its base distribution."""
    return undo_control_file(NAME, record)


def make(spec: FaultSpec, target: object, context: FaultContext) -> Drift:
    """The load process carries this fault: any target will do."""
    return Drift(spec, context)


def describe(params: DriftParams) -> str:
    """What full magnitude means, in words (the plan's blast radius)."""
    p = params
    parts = []
    if p.features:
        moves = []
        if p.shift_std:
            moves.append(f"shifted by {plan_number(p.shift_std)} std")
        if p.scale != 1:
            moves.append(f"spread x{plan_number(p.scale)}")
        parts.append(f"{', '.join(p.features)} {' and '.join(moves)}")
    if p.class_mix is not None:
        parts.append("class mix -> " + ", ".join(f"{k}: {plan_number(v)}" for k, v in p.class_mix.items()))
    if p.ood_share:
        parts.append(f"{plan_number(round(100 * p.ood_share, 2))}% of requests out of distribution")
    return "; ".join(parts)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: DriftParams = fault.params
    ramp = f"{p.ramp} ramp" + (f" in {p.steps} steps" if p.ramp == "step" else "")
    text = (f"every clean request of the load, {ramp} over {plan_seconds(fault.duration)} to: {describe(p)}; "
            f"{plural(fault.repeat.count, 'injection')}; recover returns the load to its base distribution")
    return BlastRadius(fault.name, fault.type, None, None, text)


def check(params: DriftParams, facts: StackFacts) -> list[tuple[str, str]]:
    """The features must be request features of the experiment's data; the classes its labels (when known)."""
    errors: list[tuple[str, str]] = []
    if facts.data_file is not None:
        known, where = facts.data_features, f"data file {facts.data_file!r}"
    else:
        known, where = DATASET_REQUEST_FEATURES.get(facts.dataset or ""), f"the requests of dataset {facts.dataset}"
    if known is not None:
        errors += [(f"params.features[{i}]", f"no feature {quote(f)} in {where}{suggest(f, known)}; features: {', '.join(known)}")
                   for i, f in enumerate(params.features) if f not in known]
    classes = DATASET_CLASSES.get(facts.dataset or "") if facts.data_file is None else None
    if classes is not None and params.class_mix is not None:
        errors += [(f"params.class_mix.{k}", f"no class {quote(k)} in dataset {facts.dataset}; classes: {', '.join(map(str, classes))}")
                   for k in params.class_mix if str(k).isdigit() and int(k) not in classes]
    return errors


FAULT_TYPE = FaultType(
    name=NAME,
    params=DriftParams,
    injectors={"local": make, "kubernetes": make},
    undoers={"local": undo, "kubernetes": undo},
    severity="medium",
    blast_radius=blast_radius,
    check=check,
)
