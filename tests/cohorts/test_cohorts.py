"""Cohort builders: every hostile cohort, determinism, limits, labels, and cohorts_needed."""

from __future__ import annotations

import json
import math

import pytest

from chaosml.loader import load_experiment_text
from chaosml.model.catalog import COHORTS, HOSTILE_COHORTS
from chaosml.workload.builtin_dataset import load_dataset
from chaosml.workload.cohorts import (
    COHORT_BUILDERS,
    COHORT_LIMITS,
    build_payloads,
    cohorts_needed,
)
from chaosml.workload.payload_file import encode_body, parse_payloads

DS = load_dataset()


@pytest.fixture(scope="module")
def hostile() -> dict[str, list[dict]]:
    return build_payloads(DS, list(HOSTILE_COHORTS), seed=3)


def test_catalog_and_builders_agree() -> None:
    assert set(COHORT_BUILDERS) == set(COHORTS)
    assert set(HOSTILE_COHORTS) <= set(COHORTS)


def test_every_hostile_payload_survives_the_payload_file_round_trip(hostile: dict[str, list[dict]]) -> None:
    raw = json.loads(json.dumps(hostile))  # what the runner writes and the load process reads
    loaded = parse_payloads(raw, {c: 1.0 for c in HOSTILE_COHORTS})
    for c in HOSTILE_COHORTS:
        assert len(loaded[c]) == COHORT_LIMITS.get(c, len(DS.test_idx))
        for p, item in zip(loaded[c], hostile[c]):
            assert set(item) == {"body", "label", "entity_id"}
            assert p.body == encode_body(item["body"])


def test_deterministic_for_a_seed(hostile: dict[str, list[dict]]) -> None:
    again = build_payloads(DS, list(HOSTILE_COHORTS), seed=3)
    assert json.dumps(again) == json.dumps(hostile)
    other = build_payloads(DS, ["garbage"], seed=4)
    assert json.dumps(other["garbage"]) != json.dumps(hostile["garbage"])


def test_labels_and_entities(hostile: dict[str, list[dict]]) -> None:
    for c in ("adversarial-evasion", "corrupted-payload", "oversized"):
        for i, p in zip(DS.test_idx, hostile[c]):
            assert p["label"] == DS.label(int(i)) and p["entity_id"] == int(i)
    for c in ("garbage", "deep-nesting"):
        assert all(p["label"] is None and p["entity_id"] is None for p in hostile[c])


def test_hostile_shapes(hostile: dict[str, list[dict]]) -> None:
    sizes = [len(encode_body(p["body"])) for p in hostile["oversized"]]
    assert any(900_000 <= s < 1024**2 for s in sizes) and any(s > 2 * 1024**2 for s in sizes)
    keys = [len(p["body"]["features"]) for p in hostile["oversized"] if isinstance(p["body"].get("features"), dict)]
    assert max(keys) >= 10_000
    deep = [p["body"]["raw"] for p in hostile["deep-nesting"]]
    assert all(t.count("[") + t.count("{") >= 10_000 for t in deep)
    for text in deep:  # too deep for Python's own parser: a naive server must survive this
        with pytest.raises((RecursionError, ValueError)):
            json.loads(text)
    garbage = [encode_body(p["body"]) for p in hostile["garbage"]]
    assert any(_not_utf8(b) for b in garbage) and b"" in garbage
    extreme = json.dumps([p["body"] for p in hostile["extreme-values"]])
    assert "1e+308" in extreme and "-1e+308" in extreme and str(10**400) in extreme
    types = {type(v).__name__ for p in hostile["type-confusion"] if isinstance(p["body"], dict)
             for v in (p["body"].get("features"), p["body"].get("entity_id"))}
    assert {"list", "str", "dict"} <= types
    corrupted = [encode_body(p["body"]) for p in hostile["corrupted-payload"]]
    assert any(b"NaN" in b for b in corrupted) and any(b"Infinity" in b for b in corrupted)
    for b in corrupted:  # Python's parser takes NaN/Infinity: the replica sees real non-finite floats
        features = json.loads(b)["features"]
        ranges = DS.feature_ranges()
        assert any(not math.isfinite(v) or not ranges[f][0] <= v <= ranges[f][1] for f, v in features.items())


def _not_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_evasion_keeps_values_in_the_training_range() -> None:
    # (its build time is not asserted here: a timed bound in a unit test fails on a busy machine, CI: 2.6 s)
    from chaosml.workload import evasion

    evasion._CACHE.clear()
    payloads = build_payloads(DS, ["adversarial-evasion"], seed=0)["adversarial-evasion"]
    ranges = DS.feature_ranges()
    for p in payloads:
        for f, v in p["body"]["features"].items():
            lo, hi = ranges[f]
            assert lo <= v <= hi


EXPERIMENT = """
version: 1
title: t
load:
  mix: {clean: 0.9, missing-features: 0.1, garbage: 0}
faults:
  - {name: a, type: adversarial-payload, at: 1s, duration: 1s, params: {cohort: type-confusion, share: 0.5}}
  - {name: b, type: adversarial-payload, at: 3s, duration: 1s, params: {cohort: garbage, share: 0.5}}
  - {name: c, type: adversarial-payload, at: 5s, duration: 1s, params: {cohort: type-confusion, share: 1}}
"""


def test_cohorts_needed_adds_every_adversarial_cohort() -> None:
    exp = load_experiment_text(EXPERIMENT, "t.yaml")
    assert cohorts_needed(exp) == ["clean", "missing-features", "type-confusion", "garbage"]
