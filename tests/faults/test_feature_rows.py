"""corrupted-features and missing-features against a real LocalTarget: poisoned, detected, restored byte for byte."""

from __future__ import annotations

import math
from typing import Any

import pytest
from faultkit import crash_copy, dump_all, injector_for, payload_for, predict, row
from testutil import unless_fetch_timed_out

from chaosml.errors import TargetError
from chaosml.faults.base import undo_fault
from chaosml.faults.corruptedfeatures import CorruptedFeaturesParams
from chaosml.faults.missingfeatures import MissingFeaturesParams
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import Dataset


def entity(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


def reasons(target: LocalTarget, ds: Dataset, entities: list[int]) -> set[tuple[str, Any]]:
    """How each entity is served (a fetch that timed out never saw the row: asked again)."""
    out = set()
    for e in entities:
        status, body = unless_fetch_timed_out(lambda e=e: predict(target.entry_url, payload_for(ds, e)))
        assert status == 200, body
        out.add((body["served_by"], body.get("reason")))
    return out


def in_distribution(target: LocalTarget, ds: Dataset, candidates: list[int]) -> list[int]:
    """Entities the hardened stack serves from the primary when nothing is injected."""
    return [e for e in candidates if predict(target.entry_url, payload_for(ds, e))[1].get("served_by") == "primary"]


@pytest.mark.parametrize("mode", ["nan", "inf", "out-of-range", "wrong-type"])
def test_invalid_values_are_detected_and_restored_exactly(target: LocalTarget, ds: Dataset, mode: str) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "corrupted-features", CorruptedFeaturesParams(mode=mode, fraction=0.2))
    record = inj.undo_record(0)
    keys = list(record["keys"])
    assert len(keys) == math.ceil(0.2 * 569) and all(record["keys"][k]["dump"] for k in keys)
    again = injector_for(target, "corrupted-features", CorruptedFeaturesParams(mode=mode, fraction=0.2)).undo_record(0)
    assert again["keys"].keys() == record["keys"].keys()  # seeded
    touched = in_distribution(target, ds, [entity(k) for k in keys[:12]])[:4]
    assert touched
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.detail["changed"] == len(keys) and ev.detail["rows_total"] == 569
        values = row(target.redis_url, touched[0])
        assert len(values) == 20
        if mode == "nan":
            assert set(values.values()) == {"nan"}
        elif mode == "inf":
            assert set(values.values()) == {"inf"}
        elif mode == "out-of-range":
            assert all(float(v) >= 1e6 for v in values.values())
        else:
            assert all(v.startswith('"') and v.endswith('"') for v in values.values())
        assert reasons(target, ds, touched) == {("fallback", "entity_features_invalid")}
    finally:
        rec = inj.recover(0)
    assert rec.ok and rec.detail["identical"] == len(keys) and rec.detail["mismatched"] == []
    assert dump_all(target.redis_url) == before


@pytest.mark.parametrize("mode", ["shuffle", "stale"])
def test_plausible_corruptions_change_values_and_restore_exactly(target: LocalTarget, mode: str) -> None:
    before = dump_all(target.redis_url)
    feats = ("worst_area", "worst_radius", "worst_texture")
    inj = injector_for(target, "corrupted-features", CorruptedFeaturesParams(mode=mode, entities=(5, 6, 7), features=feats))
    record = inj.undo_record(0)
    original = {e: row(target.redis_url, e) for e in (5, 6, 7)}
    try:
        assert inj.apply(0).ok
        for e in (5, 6, 7):
            now = row(target.redis_url, e)
            assert {f: now[f] for f in now if f not in feats} == {f: v for f, v in original[e].items() if f not in feats}
            changed = [f for f in feats if now[f] != original[e][f]]
            assert changed, (e, now)
            if mode == "shuffle":
                assert sorted(now[f] for f in feats) == sorted(original[e][f] for f in feats)
            else:
                donor = row(target.redis_url, entity(record["donors"][f"chaosml:features:{e}"]))
                assert all(now[f] == donor[f] for f in feats) or entity(record["donors"][f"chaosml:features:{e}"]) in (5, 6, 7)
    finally:
        assert inj.recover(0).ok
    assert dump_all(target.redis_url) == before


def test_crashed_harness_offline_undo_restores_every_key(target: LocalTarget, ds: Dataset) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "corrupted-features", CorruptedFeaturesParams(mode="nan", fraction=1.0), name="crash")
    record = crash_copy(inj.undo_record(0))
    inj.apply(0)
    assert dump_all(target.redis_url) != before
    # the harness died here: only the ledger record is left
    msg = undo_fault("corrupted-features", record)
    assert msg == f"corrupted-features nan: 569 rows restored byte for byte at {target.redis_url}"
    assert dump_all(target.redis_url) == before
    assert undo_fault("corrupted-features", record) == msg  # idempotent
    assert dump_all(target.redis_url) == before


@pytest.mark.parametrize(
    "params",
    [MissingFeaturesParams(mode="delete-row", fraction=0.1), MissingFeaturesParams(mode="drop-fields", fraction=0.1, features=("worst_area", "area_error"))],
    ids=["delete-row", "drop-fields"],
)
def test_missing_rows_and_fields_fall_back_and_restore_exactly(target: LocalTarget, ds: Dataset, params: MissingFeaturesParams) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "missing-features", params)
    record = crash_copy(inj.undo_record(0))
    keys = list(record["keys"])
    touched = in_distribution(target, ds, [entity(k) for k in keys[:12]])[:3]
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.detail["changed"] == len(keys) == 57
        now = row(target.redis_url, touched[0])
        if params.mode == "delete-row":
            assert now == {}
        else:
            assert len(now) == 18 and "worst_area" not in now
            assert ev.detail["fields_removed"] == 2 * len(keys)
        assert reasons(target, ds, touched) == {("fallback", "entity_features_missing")}
        assert undo_fault("missing-features", record).startswith(f"missing-features {params.mode}: 57 rows restored")
        assert dump_all(target.redis_url) == before
    finally:
        rec = inj.recover(0)
    assert rec.ok and rec.detail["identical"] == 57
    assert dump_all(target.redis_url) == before


def test_listed_entities_that_do_not_exist_stay_absent(target: LocalTarget) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "missing-features", MissingFeaturesParams(mode="delete-row", entities=(3, 99999)))
    record = inj.undo_record(0)
    assert record["keys"]["chaosml:features:99999"]["dump"] is None
    ev = inj.apply(0)
    assert ev.detail["changed"] == 1
    rec = inj.recover(0)
    assert rec.detail["deleted"] == 1 and rec.detail["restored"] == 1 and rec.ok
    assert dump_all(target.redis_url) == before


@pytest.mark.parametrize("ftype, params", [
    ("missing-features", MissingFeaturesParams(mode="delete-row", entities=(99998, 99999))),
    ("corrupted-features", CorruptedFeaturesParams(mode="nan", entities=(99999,))),
])
def test_rows_that_do_not_exist_are_an_injection_without_effect(target: LocalTarget, ftype: str, params: Any) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, ftype, params)
    ev = inj.apply(0)
    n = len(params.entities)
    assert ev.detail["changed"] == 0 and not ev.ok
    assert ev.no_effect == f"changed nothing in the {n} selected entity row{'s' if n > 1 else ''}: no such entity, or no such feature"
    assert inj.recover(0).ok and dump_all(target.redis_url) == before


def test_unknown_feature_is_refused_before_anything_is_touched(target: LocalTarget) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "corrupted-features", CorruptedFeaturesParams(mode="nan", fraction=0.5, features=("mean_radius",)))
    with pytest.raises(TargetError, match=r"no feature\(s\) mean_radius in the feature store; entity features: area_error"):
        inj.undo_record(0)
    assert dump_all(target.redis_url) == before


def test_offline_undo_when_the_runs_redis_is_gone() -> None:
    from chaosml.targets.local import free_ports

    (port,) = free_ports(1)
    record = {"redis_url": f"redis://127.0.0.1:{port}/0", "mode": "nan", "keys": {"chaosml:features:1": {"dump": None, "pttl": -1}}, "owned_by_run": True}
    assert "is gone (no persistence)" in undo_fault("corrupted-features", record)
    with pytest.raises(TargetError, match="could not restore 1 rows"):
        undo_fault("corrupted-features", {**record, "owned_by_run": False})
