"""Load cohorts: labelled request payloads built from a dataset's held-out rows; used by the runner.

Each payload is ``{"body": <JSON body>, "label": int, "entity_id": int}``; the load process
samples them by the experiment's mix and sends ``body``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from chaosml.dataset import Dataset

Payload = dict[str, Any]

#: cohort name -> builder(dataset, row index, rng) -> payload
COHORT_BUILDERS: dict[str, Callable[[Dataset, int, random.Random], Payload]] = {}


def cohort(name: str) -> Callable[[Callable[[Dataset, int, random.Random], Payload]], Callable[[Dataset, int, random.Random], Payload]]:
    def register(fn: Callable[[Dataset, int, random.Random], Payload]) -> Callable[[Dataset, int, random.Random], Payload]:
        COHORT_BUILDERS[name] = fn
        return fn

    return register


def _payload(ds: Dataset, i: int, body: dict[str, Any]) -> Payload:
    return {"body": body, "label": int(ds.label(i)), "entity_id": int(ds.entity_ids[i])}


@cohort("clean")
def _clean(ds: Dataset, i: int, rng: random.Random) -> Payload:
    return _payload(ds, i, ds.row_payload(i))


@cohort("missing-features")
def _missing(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features = dict(body["features"])
    for name in rng.sample(sorted(features), rng.randint(1, 3)):
        del features[name]
    return _payload(ds, i, {**body, "features": features})


@cohort("out-of-range")
def _out_of_range(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features = dict(body["features"])
    name = rng.choice(sorted(features))
    lo, hi = ds.feature_ranges()[name]
    features[name] = float(hi + 10 * (hi - lo))
    return _payload(ds, i, {**body, "features": features})


def build_payloads(ds: Dataset, cohorts: list[str], seed: int = 0) -> dict[str, list[Payload]]:
    """One payload per held-out row for every cohort named (deterministic for a seed)."""
    out: dict[str, list[Payload]] = {}
    for name in cohorts:
        builder = COHORT_BUILDERS[name]
        rng = random.Random(f"{seed}:{name}")
        out[name] = [builder(ds, int(i), rng) for i in ds.test_idx]
    return out
