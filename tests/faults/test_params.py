"""Params of the network and feature-store fault types: every problem reported with its field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaosml.errors import ExperimentError
from chaosml.faults.networktoxic import NetworkToxicParams
from chaosml.loader import load_experiment, load_experiment_text
from chaosml.model.faulttype import registry
from chaosml.plan import build_plan, render_plan

REPO = Path(__file__).resolve().parents[2]
MINE = ("feature-store-outage", "network-latency", "network-toxic", "corrupted-features", "missing-features")

EXPERIMENT = """version: 1
title: t
target: {{platform: local, profile: hardened, replicas: 3}}
load: {{users: 1, spawn_rate: 1, duration: 30s}}
faults:
  - name: f
    type: {type}
    at: 5s
    duration: 5s
    params: {params}
"""


def errors(fault_type: str, params: str) -> list[str]:
    with pytest.raises(ExperimentError) as info:
        load_experiment_text(EXPERIMENT.format(type=fault_type, params=params), "x.yaml")
    return sorted(str(i).split(": ", 1)[1] for i in info.value.issues)


def ok(fault_type: str, params: str) -> object:
    return load_experiment_text(EXPERIMENT.format(type=fault_type, params=params), "x.yaml").faults[0].params


@pytest.mark.parametrize("name", MINE)
def test_registered(name: str) -> None:
    assert name in registry()


@pytest.mark.parametrize("name", MINE)
def test_shipped_experiments_load_and_plan(name: str) -> None:
    for path in (REPO / "experiments" / f"{name}.yaml", REPO / "experiments" / f"{name}-naive.yaml"):
        exp = load_experiment(path)
        assert {f.type for f in exp.faults} == {name}
        assert exp.target.profile == ("naive" if path.stem.endswith("-naive") else "hardened")
        text = render_plan(build_plan(exp))
        assert "dry run: nothing was injected" in text


def test_network_toxic_attributes_are_checked_per_toxic() -> None:
    assert errors("network-toxic", "{toxic: slicer, attributes: {average_size: 10, latency: 5}}") == [
        "faults[0].params.attributes: unknown attribute 'latency' of toxic slicer; known: average_size, size_variation, delay"
    ]
    assert errors("network-toxic", "{toxic: bandwidth}") == [
        "faults[0].params.attributes: toxic bandwidth needs attribute 'rate' (KB/s; 0 = nothing gets through)"
    ]
    assert errors("network-toxic", "{toxic: latency, attributes: {latency: 5}}") == [
        (
            "faults[0].params.toxic: must be one of bandwidth, reset_peer, slicer, limit_data, slow_close, timeout, "
            "not 'latency' (use type network-latency for latency)"
        )
    ]
    assert errors("network-toxic", "{toxic: slicer, attributes: {average_size: 4, size_variation: 9}, link: 'd b'}") == [
        "faults[0].params.attributes: slicer needs average_size >= 1 and size_variation < average_size",
        "faults[0].params.link: 'd b' is not a link name (e.g. gateway, feature-store, model or model-<i>)",
    ]
    # a well-formed name the reference stack does not have (a custom stack may declare it)
    assert errors("network-toxic", "{toxic: slicer, attributes: {average_size: 4}, link: db}") == [
        "faults[0].params.link: must be one of gateway, feature-store, model or model-<i> (one replica) on the reference stack, not 'db'",
    ]
    p = ok("network-toxic", "{toxic: limit_data, link: model-2, attributes: {bytes: 100}, toxicity: 0.5}")
    assert isinstance(p, NetworkToxicParams) and dict(p.attributes) == {"bytes": 100} and p.toxicity == 0.5


def test_network_latency_checks() -> None:
    assert errors("network-latency", "{latency_ms: 0, stream: sideways, toxicity: 2}") == [
        "faults[0].params.latency_ms: must be > 0",
        "faults[0].params.stream: must be one of downstream, upstream, not 'sideways'",
        "faults[0].params.toxicity: must be in (0, 1]: the probability that a connection gets the toxic",
    ]
    assert errors("network-latency", "{latency_ms: 10, jitter_ms: 20}") == ["faults[0].params.jitter_ms: must be <= latency_ms (10)"]


def test_feature_store_outage_checks() -> None:
    assert errors("feature-store-outage", "{mode: latency}") == ["faults[0].params.latency_ms: must be > 0 when mode is latency"]
    assert errors("feature-store-outage", "{mode: down, timeout_ms: 5}") == [
        "faults[0].params.timeout_ms: is only used with mode timeout, not down"
    ]
    assert errors("feature-store-outage", "{mode: gone}") == [
        "faults[0].params.mode: must be one of down, timeout, latency, kill, not 'gone'"
    ]


def test_row_fault_checks() -> None:
    assert errors("corrupted-features", "{mode: nan}") == [
        "faults[0].params.fraction: set fraction (of entity rows) or entities (a list of entity ids)"
    ]
    assert errors("corrupted-features", "{mode: shuffle, fraction: 0, features: [a]}") == [
        "faults[0].params.features: mode shuffle permutes values across fields: list at least two",
        "faults[0].params.fraction: must be in (0, 1]",
    ]
    assert errors("missing-features", "{mode: drop-fields, entities: [1, 1]}") == [
        "faults[0].params.entities: must not repeat an entity id",
        "faults[0].params.features: is required when mode is drop-fields",
    ]
    p = ok("corrupted-features", "{mode: stale, entities: [3, 4], features: [worst_area]}")
    assert p.entities == (3, 4) and p.features == ("worst_area",)


def test_blast_radius_is_data() -> None:
    text = EXPERIMENT.format(type="network-latency", params="{link: model-1, latency_ms: 100, toxicity: 0.25}")
    (br,) = build_plan(load_experiment_text(text, "x.yaml")).blast_radius
    assert (br.victims, br.of) == (1, 3)
    assert "25% of connections of 1 of 3 replica links (model-1" in br.description
    text = EXPERIMENT.format(type="missing-features", params="{mode: delete-row, fraction: 0.1}")
    (br,) = build_plan(load_experiment_text(text, "x.yaml")).blast_radius
    assert (br.victims, br.of) == (57, 569) and br.description.startswith("10% of entity rows (seeded choice) = 57 of 569 deleted")
