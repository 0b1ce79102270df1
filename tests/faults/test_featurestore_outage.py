"""feature-store-outage against a real LocalTarget: link down/up, toxics on/off, Redis killed and re-seeded."""

from __future__ import annotations

import time

import redis
from faultkit import crash_copy, dump_all, injector_for, payload_for, predict

from chaosml.faults.base import undo_fault
from chaosml.faults.featurestore import FeatureStoreOutageParams
from chaosml.proxy import client
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import Dataset


def link(target: LocalTarget) -> client.ProxyJSON:
    return client.get_proxy(target.proxy_api_url or "", "feature-store", timeout=2)


def served(target: LocalTarget, ds: Dataset, n: int = 6) -> list[tuple[str, str | None]]:
    """(served_by, reason) of ``n`` answers for test rows the primary normally serves."""
    out = []
    for i in ds.test_idx[:n]:
        status, body = predict(target.entry_url, payload_for(ds, int(i)))
        assert status == 200, body
        out.append((body["served_by"], body.get("reason")))
    return out


def wait_primary(target: LocalTarget, ds: Dataset, timeout_s: float = 8.0) -> bool:
    """The breaker closes again after its open time; bounded wait for a primary answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predict(target.entry_url, payload_for(ds, int(ds.test_idx[0])))[1].get("served_by") == "primary":
            return True
        time.sleep(0.1)
    return False


def test_down_disables_the_link_and_recover_enables_it(target: LocalTarget, ds: Dataset) -> None:
    assert wait_primary(target, ds)
    inj = injector_for(target, "feature-store-outage", FeatureStoreOutageParams(mode="down"))
    record = inj.undo_record(0)
    assert record["enabled_before"] is True and record["proxies"] == ["feature-store"]
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.detail["state"] == {"enabled": False, "toxics": []}
        assert link(target)["enabled"] is False
        answers = served(target, ds)
        assert all(sb == "fallback" and reason in ("feature_store_error", "breaker_open") for sb, reason in answers), answers
        # the harness's own view of Redis is direct, not through the link
        assert redis.Redis.from_url(target.redis_url, socket_timeout=2).ping()
    finally:
        rec = inj.recover(0)
    assert rec.ok and rec.detail["enabled"] is True and link(target)["enabled"] is True
    assert wait_primary(target, ds)


def test_down_undone_offline_from_the_record_alone(target: LocalTarget) -> None:
    inj = injector_for(target, "feature-store-outage", FeatureStoreOutageParams(mode="down"), name="crash")
    record = crash_copy(inj.undo_record(0))
    inj.apply(0)
    assert link(target)["enabled"] is False
    assert undo_fault("feature-store-outage", record) == "feature-store-outage down: link feature-store enabled=true again"
    assert link(target)["enabled"] is True
    assert undo_fault("feature-store-outage", record).endswith("enabled=true again")  # idempotent


def test_timeout_hangs_the_store_but_hardened_answers_fast(target: LocalTarget, ds: Dataset) -> None:
    inj = injector_for(target, "feature-store-outage", FeatureStoreOutageParams(mode="timeout"))
    record = crash_copy(inj.undo_record(1))
    try:
        ev = inj.apply(1)
        assert ev.ok and ev.detail["attributes"] == {"timeout": 0}
        assert [t["name"] for t in link(target)["toxics"]] == ["chaosml-f-1"]
        t0 = time.monotonic()
        answers = served(target, ds)
        assert all(sb == "fallback" for sb, _ in answers), answers
        assert (time.monotonic() - t0) / len(answers) < 0.3  # 50 ms fetch timeout, then the breaker
        msg = undo_fault("feature-store-outage", record)  # crash: undo from the record alone
        assert msg == "feature-store-outage toxic chaosml-f-1: feature-store removed"
        assert link(target)["toxics"] == []
    finally:
        rec = inj.recover(1)
    assert rec.ok and rec.detail["removed"] == "absent"  # the offline undo got there first
    assert wait_primary(target, ds)


def test_latency_mode_adds_a_latency_toxic(target: LocalTarget, ds: Dataset) -> None:
    inj = injector_for(target, "feature-store-outage", FeatureStoreOutageParams(mode="latency", latency_ms=200, jitter_ms=10))
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.detail["attributes"] == {"latency": 200, "jitter": 10}
        assert [(t["type"], t["attributes"]) for t in link(target)["toxics"]] == [("latency", {"latency": 200, "jitter": 10})]
        assert all(sb == "fallback" for sb, _ in served(target, ds, 3))  # slower than the 50 ms fetch timeout
    finally:
        assert inj.recover(0).ok
    assert link(target)["toxics"] == []
    assert wait_primary(target, ds)


def test_kill_stops_redis_and_recover_restarts_and_reseeds_it(target: LocalTarget, ds: Dataset) -> None:
    before = dump_all(target.redis_url)
    inj = injector_for(target, "feature-store-outage", FeatureStoreOutageParams(mode="kill"))
    record = crash_copy(inj.undo_record(0))
    assert record["rows_before"] == len(before) == 569
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.targets == ("redis",)
        assert not [m for m in target.members("feature-store") if m.running]
        time.sleep(1.0)  # longer than the restart delay: kept down on purpose, not restarted
        assert not [m for m in target.members("feature-store") if m.running]
        assert all(sb == "fallback" for sb, _ in served(target, ds, 3))
        msg = undo_fault("feature-store-outage", record)
        assert "is not answering" in msg and "nothing can be restarted offline" in msg
    finally:
        rec = inj.recover(0)
    assert rec.ok and rec.detail["ready"] and rec.detail["reseeded"] and rec.detail["rows"] == 569
    assert rec.detail["pid"] != record["pid"]
    assert dump_all(target.redis_url) == before  # re-seeded to the same bytes
    assert wait_primary(target, ds)
