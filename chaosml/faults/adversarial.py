"""adversarial-payload: mix a hostile cohort into the load for the fault window. Found by the fault-type registry.

Apply writes the load-control file (``FaultContext.load_control_file``, format in
``chaosml/load/control.py``) atomically with ``{"share": {cohort: share}}``; the load process polls
it every 0.25 s and sends that share of requests from the cohort while it exists. Recover removes
this fault's entry (the file when nothing else is left). Several adversarial faults may overlap:
each keeps its own entry under ``faults`` and the shares are rebuilt from those entries.

The cohort's payloads must be in the run's payload file: the runner builds them for every cohort
``chaosml.workload.cohorts.cohorts_needed(experiment)`` names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosml.faults._control import set_entry, undo_control_file
from chaosml.model.catalog import HOSTILE_COHORTS
from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import FaultContext, FaultType, StackFacts
from chaosml.records import FaultEvent


@dataclass(frozen=True, slots=True)
class AdversarialPayloadParams:
    """Mix a hostile load cohort into the traffic for the fault window (load-control file)."""

    cohort: str = "adversarial-evasion"  # one of catalog.HOSTILE_COHORTS
    share: float = 0.2  # fraction of all requests that carry the cohort during the window, (0, 1]

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if self.cohort not in HOSTILE_COHORTS:
            errors.append(("cohort", f"must be one of {', '.join(HOSTILE_COHORTS)}, not {self.cohort!r}"))
        if not 0 < self.share <= 1:
            errors.append(("share", f"must be in (0, 1], not {self.share!r}"))
        return errors


class AdversarialPayload:
    """Send ``params.share`` of requests from ``params.cohort`` during each injection window."""

    def __init__(self, spec: FaultSpec, context: FaultContext):
        self.spec = spec
        self.params: AdversarialPayloadParams = spec.params
        if context.load_control_file is None:
            raise ValueError("adversarial-payload needs a run directory for the load-control file")
        self.path: Path = context.load_control_file

    def _key(self, injection: int) -> str:
        return f"{self.spec.name}#{injection}"

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {"control_file": str(self.path), "fault": self.spec.name, "cohort": self.params.cohort}

    def apply(self, injection: int) -> FaultEvent:
        t = time.time()
        ok, error = True, None
        try:
            set_entry(self.path, self._key(injection), {"cohort": self.params.cohort, "share": self.params.share})
        except OSError as e:
            ok, error = False, f"{type(e).__name__}: {e}"
        detail: dict[str, Any] = {"cohort": self.params.cohort, "share": self.params.share, "control_file": str(self.path)}
        if error:
            detail["error"] = error
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="apply", ok=ok,
                          targets=(), detail=detail)

    def recover(self, injection: int) -> FaultEvent:
        t = time.time()
        ok, error = True, None
        try:
            set_entry(self.path, self._key(injection), None)
        except OSError as e:
            ok, error = False, f"{type(e).__name__}: {e}"
        detail: dict[str, Any] = {"cohort": self.params.cohort, "control_file_left": self.path.exists()}
        if error:
            detail["error"] = error
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="recover", ok=ok,
                          targets=(), detail=detail)


def undo(record: dict[str, Any]) -> str:
    """Delete the load-control file (missing is fine: already undone)."""
    return undo_control_file("adversarial-payload", record)


def make(spec: FaultSpec, target: object, context: FaultContext) -> AdversarialPayload:
    """The load process carries this fault: any target will do."""
    return AdversarialPayload(spec, context)


def check(params: AdversarialPayloadParams, facts: StackFacts) -> list[tuple[str, str]]:
    """adversarial-evasion crafts inputs against the reference stack's model."""
    if facts.stack == "custom" and params.cohort == "adversarial-evasion":
        return [("params.cohort", "adversarial-evasion needs the reference stack's model; not available with target.services")]
    return []


FAULT_TYPE = FaultType(
    name="adversarial-payload",
    params=AdversarialPayloadParams,
    injectors={"local": make, "kubernetes": make},
    undoers={"local": undo, "kubernetes": undo},
    severity="high",
    check=check,
)
