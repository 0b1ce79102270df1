"""network-latency and network-toxic against a real LocalTarget: toxics present on apply, gone on recover and offline undo."""

from __future__ import annotations

import time
import urllib.request

import pytest
from faultkit import crash_copy, injector_for, payload_for, predict

from chaosml.errors import TargetError
from chaosml.faults.base import undo_fault
from chaosml.faults.networklatency import NetworkLatencyParams
from chaosml.faults.networktoxic import NetworkToxicParams
from chaosml.proxy import client
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import Dataset


def toxic_names(target: LocalTarget, proxy: str) -> list[str]:
    return [t["name"] for t in client.toxics(target.proxy_api_url or "", proxy, timeout=2)]


def timed_predict(url: str, ds: Dataset) -> tuple[float, int]:
    t0 = time.monotonic()
    status, _ = predict(url, payload_for(ds, int(ds.test_idx[0])))
    return time.monotonic() - t0, status


def test_target_exposes_links(target: LocalTarget) -> None:
    links = target.links()
    assert set(links) == {"feature-store", "model-0", "model-1", "gateway"}
    d = target.describe()
    assert d["proxy_api_url"] == target.proxy_api_url and d["links"] == links
    assert target.entry_url == f"http://{links['gateway']['listen']}"
    assert d["replica_redis_url"] == f"redis://{links['feature-store']['listen']}/0"
    assert links["gateway"]["upstream"] == target.gateway_url.removeprefix("http://")
    assert {p: v["listen"] for p, v in client.proxies(target.proxy_api_url or "").items()} == {
        p: v["listen"] for p, v in links.items()
    }


def test_latency_on_every_model_link_then_removed(target: LocalTarget, ds: Dataset) -> None:
    inj = injector_for(target, "network-latency", NetworkLatencyParams(link="model", latency_ms=300))
    record = inj.undo_record(0)
    assert record["proxies"] == ["model-0", "model-1"] and record["toxic"] == "chaosml-f-0"
    direct = f"http://{target.links()['model-1']['listen']}"
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.action == "apply" and ev.targets == ("model-0", "model-1")
        assert ev.detail["attributes"] == {"latency": 300, "jitter": 0} and ev.t > 0
        assert all(toxic_names(target, p) == ["chaosml-f-0"] for p in ("model-0", "model-1"))
        assert toxic_names(target, "gateway") == []
        slow, status = timed_predict(direct, ds)
        assert status == 200 and slow >= 0.3
    finally:
        rec = inj.recover(0)
    assert rec.ok and rec.detail["removed"] == {"model-0": "removed", "model-1": "removed"}
    assert toxic_names(target, "model-0") == toxic_names(target, "model-1") == []
    fast, status = timed_predict(direct, ds)
    assert status == 200 and fast < 0.25
    assert inj.recover(0).ok  # twice is fine: 404 = already gone


def test_offline_undo_removes_the_toxic_from_the_record_alone(target: LocalTarget) -> None:
    inj = injector_for(target, "network-latency", NetworkLatencyParams(link="feature-store", latency_ms=50), name="crash")
    record = crash_copy(inj.undo_record(3))
    inj.apply(3)
    assert toxic_names(target, "feature-store") == ["chaosml-crash-3"]
    # the harness "crashed": only the ledger record is left
    msg = undo_fault("network-latency", record)
    assert msg == "toxic chaosml-crash-3: feature-store removed"
    assert toxic_names(target, "feature-store") == []
    assert undo_fault("network-latency", record) == "toxic chaosml-crash-3: feature-store absent"  # idempotent


def test_reset_peer_on_the_gateway_link_fails_requests_until_recovered(target: LocalTarget, ds: Dataset) -> None:
    params = NetworkToxicParams(toxic="reset_peer", link="gateway", attributes={"timeout": 0})
    inj = injector_for(target, "network-toxic", params)
    record = crash_copy(inj.undo_record(0))
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.detail["type"] == "reset_peer" and ev.targets == ("gateway",)
        assert predict(target.entry_url, payload_for(ds, 1))[0] == 0  # reset by peer
        assert predict(target.gateway_url, payload_for(ds, 1))[0] == 200  # the gateway itself is fine
        assert undo_fault("network-toxic", record) == "toxic chaosml-f-0: gateway removed"
    finally:
        inj.recover(0)
    assert predict(target.entry_url, payload_for(ds, 1))[0] == 200


def test_bandwidth_toxic_slows_a_link(target: LocalTarget) -> None:
    inj = injector_for(target, "network-toxic", NetworkToxicParams(toxic="bandwidth", link="gateway", attributes={"rate": 1}))
    url = target.entry_url + "/metrics"  # a few KB of text
    try:
        inj.apply(0)
        t0 = time.monotonic()
        with urllib.request.urlopen(url, timeout=10) as r:
            size = len(r.read())
        assert size > 1000 and time.monotonic() - t0 >= 0.9 * size / 1000 - 0.2
    finally:
        assert inj.recover(0).ok


def test_unknown_link_is_refused_before_anything_is_applied(target: LocalTarget) -> None:
    inj = injector_for(target, "network-latency", NetworkLatencyParams(link="model-7", latency_ms=10))
    with pytest.raises(TargetError, match="no link 'model-7'"):
        inj.undo_record(0)
    assert all(not toxic_names(target, p) for p in target.links())


def test_offline_undo_of_a_gone_proxy_is_success_only_when_the_run_owned_it() -> None:
    from chaosml.faults.base import load_builtin_injectors
    from chaosml.targets.local import free_ports

    load_builtin_injectors()  # the registry is filled on first use; this test may run first

    (port,) = free_ports(1)
    record = {"api": f"http://127.0.0.1:{port}", "proxies": ["gateway"], "toxic": "chaosml-x-0", "owned_by_run": True}
    assert "is gone" in undo_fault("network-toxic", record)
    with pytest.raises(client.ToxiproxyError, match="may still be on gateway"):
        undo_fault("network-toxic", {**record, "owned_by_run": False})


def test_link_model_selects_one_service_wide_model_proxy_when_there_are_no_replica_links() -> None:
    """Kubernetes puts one Toxiproxy link in front of the model Service, named 'model'."""
    from chaosml.faults._toxics import resolve_links

    class OneModelLink:
        def links(self) -> dict[str, dict[str, str]]:
            return {"gateway": {}, "feature-store": {}, "model": {}}

    assert resolve_links(OneModelLink(), "model") == ["model"]
