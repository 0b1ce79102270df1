"""missing-features: delete entity rows, or drop some fields of them; recover restores every touched key byte for byte. Found by the fault-type registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chaosml.faults._rows import (
    RowFault,
    check_features,
    check_features_on_data,
    check_rows,
    rows_blast_radius,
    undo_rows,
)
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import BlastRadius, FaultContext, FaultType, StackFacts
from chaosml.targets.capabilities import FeatureRows


@dataclass(frozen=True, slots=True)
class MissingFeaturesParams:
    """Delete entity rows, or drop some fields of them; recover restores every touched key byte for byte."""

    mode: Literal["delete-row", "drop-fields"] = "delete-row"
    fraction: float | None = None  # of entity rows, (0, 1], chosen by the run's seeded RNG
    entities: tuple[int, ...] | None = None  # or exactly these entity ids
    features: tuple[str, ...] | None = None  # drop-fields: the fields to drop (required)

    def check(self) -> list[tuple[str, str]]:
        errors = check_rows(self.fraction, self.entities) + check_features(self.features)
        if self.mode == "drop-fields" and self.features is None:
            errors.append(("features", "is required when mode is drop-fields"))
        elif self.mode == "delete-row" and self.features is not None:
            errors.append(("features", "is only used with mode drop-fields (delete-row deletes the whole row)"))
        return errors


class MissingFeatures(RowFault):
    """Delete the chosen rows, or drop some fields of them; recover restores them byte for byte."""

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        keys = [k for k, s in record["keys"].items() if s["dump"] is not None]
        if not keys:
            return {"changed": 0}
        pipe = r.pipeline(transaction=True)
        for k in keys:
            if record["mode"] == "delete-row":
                pipe.delete(k)
            else:
                pipe.hdel(k, *record["features"])
        res = pipe.execute()
        return {"changed": sum(1 for n in res if n), "fields_removed": int(sum(res)) if record["mode"] == "drop-fields" else None}


def make(spec: FaultSpec, target: FeatureRows, context: FaultContext) -> MissingFeatures:
    return MissingFeatures(spec, target, context)


def undo(record: dict[str, Any]) -> str:
    return "missing-features " + undo_rows(record)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    effect = "{which} deleted" if fault.params.mode == "delete-row" else "{which}: {fields} dropped"
    return rows_blast_radius(fault, dataset, effect)


def check(params: MissingFeaturesParams, facts: StackFacts) -> list[tuple[str, str]]:
    """Every listed feature must be one the experiment's data has."""
    return check_features_on_data(params.features, facts)


FAULT_TYPE = FaultType(
    name="missing-features",
    params=MissingFeaturesParams,
    injectors={"local": make, "kubernetes": make},
    undoers={"local": undo, "kubernetes": undo},
    capabilities={"local": (FeatureRows,), "kubernetes": (FeatureRows,)},
    stacks=("reference",),
    severity="medium",
    blast_radius=blast_radius,
    check=check,
)
