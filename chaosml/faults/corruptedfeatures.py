"""corrupted-features: poison entity rows in the feature store; recover restores every touched key byte for byte. Found by the fault-type registry.

Poisons (per field): ``nan`` -> ``nan``; ``inf`` -> ``inf``; ``out-of-range`` -> ``1e6 * (1 + |v|)``
(far outside every feature's range); ``wrong-type`` -> the number as a quoted JSON string (``"12.5"``,
a stringly-typed writer bug); ``shuffle`` -> the row's values rotated across the chosen fields in a
seeded order (every field gets another field's value); ``stale`` -> the values of another entity.
Rows are chosen and saved by :class:`chaosml.faults._rows.RowFault`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from chaosml.faults._rows import (
    RowFault,
    check_features,
    check_features_on_data,
    check_rows,
    decode_row,
    rows_blast_radius,
    undo_rows,
)
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import BlastRadius, FaultContext, FaultType, StackFacts
from chaosml.targets.capabilities import FeatureRows


@dataclass(frozen=True, slots=True)
class CorruptedFeaturesParams:
    """Poison entity rows in the feature store; recover restores every touched key byte for byte."""

    mode: Literal["nan", "inf", "out-of-range", "wrong-type", "shuffle", "stale"] = "nan"  # shuffle: values permuted across fields
    fraction: float | None = None  # of entity rows, (0, 1], chosen by the run's seeded RNG
    entities: tuple[int, ...] | None = None  # or exactly these entity ids
    features: tuple[str, ...] | None = None  # fields to poison; default every entity feature

    def check(self) -> list[tuple[str, str]]:
        errors = check_rows(self.fraction, self.entities) + check_features(self.features)
        if self.mode == "shuffle" and self.features is not None and len(self.features) < 2:
            errors.append(("features", "mode shuffle permutes values across fields: list at least two"))
        return errors


def _poison(mode: str, value: str) -> str:
    try:
        v = float(value)
    except ValueError:
        v = 0.0
    if mode == "nan":
        return "nan"
    if mode == "inf":
        return "inf"
    if mode == "out-of-range":
        return repr(1e6 * (1.0 + abs(v)) if math.isfinite(v) else 1e12)
    if mode == "wrong-type":
        return json.dumps(value)
    raise ValueError(f"unknown corruption mode {mode!r}")


def _other(rng: random.Random, keys: Sequence[str], key: str) -> str:
    """A key of ``keys`` other than ``key`` (``key`` itself when it is the only one)."""
    if len(keys) < 2:
        return key
    for _ in range(100):  # almost always the first draw
        k = rng.choice(keys)
        if k != key:
            return k
    return next(k for k in keys if k != key)


class CorruptedFeatures(RowFault):
    """Poison the chosen rows' fields (see the module docstring); recover restores them byte for byte."""

    def _choices(self, rng: random.Random, all_keys: list[str], keys: list[str]) -> dict[str, Any]:
        mode = self.params.mode
        if mode == "stale":  # each row gets the values of another entity, chosen among all rows (not only touched ones)
            return {"donors": {k: _other(rng, all_keys, k) for k in keys}}
        if mode == "shuffle":
            return {"shuffle_seed": rng.randrange(2**31)}
        return {}

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        mode, keys = record["mode"], list(record["keys"])
        donors: dict[str, str] = record.get("donors", {})
        read = r.pipeline(transaction=False)
        for k in keys:
            read.hgetall(k)
        for k in keys:
            if k in donors:
                read.hgetall(donors[k])
        res = read.execute()
        rows = {k: decode_row(res[i]) for i, k in enumerate(keys)}
        donor_rows = {k: decode_row(res[len(keys) + i]) for i, k in enumerate(k for k in keys if k in donors)}
        rng = random.Random(record.get("shuffle_seed", 0))
        write = r.pipeline(transaction=True)
        changed, example = 0, None
        for k in keys:
            row = rows[k]
            if not row:
                continue  # no such entity: nothing to poison (restore deletes nothing either)
            fields = [f for f in (record["features"] or sorted(row)) if f in row]
            if mode == "shuffle":
                order = list(fields)
                rng.shuffle(order)
                new = {order[i]: row[order[(i + 1) % len(order)]] for i in range(len(order))} if len(order) > 1 else {}
            elif mode == "stale":
                donor = donor_rows.get(k, {})
                new = {f: donor[f] for f in fields if f in donor}
            else:
                new = {f: _poison(mode, row[f]) for f in fields}
            if not new:
                continue
            write.hset(k, mapping=new)
            changed += 1
            if example is None:
                f0 = next(iter(new))
                example = {"key": k, "field": f0, "before": row[f0], "after": new[f0]}
        if changed:
            write.execute()
        return {"changed": changed, "example": example}


def make(spec: FaultSpec, target: FeatureRows, context: FaultContext) -> CorruptedFeatures:
    return CorruptedFeatures(spec, target, context)


def undo(record: dict[str, Any]) -> str:
    return "corrupted-features " + undo_rows(record)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    return rows_blast_radius(fault, dataset, "{which}: {fields} poisoned (" + fault.params.mode + ")")


def check(params: CorruptedFeaturesParams, facts: StackFacts) -> list[tuple[str, str]]:
    """Every listed feature must be one the experiment's data has."""
    return check_features_on_data(params.features, facts)


FAULT_TYPE = FaultType(
    name="corrupted-features",
    params=CorruptedFeaturesParams,
    injectors={"local": make, "kubernetes": make},
    undoers={"local": undo, "kubernetes": undo},
    capabilities={"local": (FeatureRows,), "kubernetes": (FeatureRows,)},
    stacks=("reference",),
    severity="high",
    blast_radius=blast_radius,
    check=check,
)
