"""Injectors record an injection that selected, changed or stopped nothing (``FaultEvent.no_effect``), against FakeTarget."""

from __future__ import annotations

from typing import Any

import pytest
from fake_target import FakeTarget

from chaosml.faults import featurestore
from chaosml.faults.base import FaultContext, make_injector
from chaosml.faults.featurestore import FeatureStoreOutageParams
from chaosml.faults.podkill import PodKillParams
from chaosml.model.experiment import FaultSpec
from chaosml.records import FaultEvent


def _spec(ftype: str, params: Any) -> FaultSpec:
    return FaultSpec(name="f", type=ftype, at=0.0, duration=1.0, params=params)


def test_pod_kill_of_a_service_without_replicas_records_no_effect() -> None:
    t = FakeTarget()
    inj = make_injector(_spec("pod-kill", PodKillParams(service="modle")), t, FaultContext())
    ev = inj.apply(0)
    assert ev.targets == () and ev.no_effect == "killed nothing: there are no replicas of service 'modle'"
    assert FaultEvent.from_dict(ev.to_dict()) == ev  # the journal keeps it


def test_pod_kill_with_no_running_replica_records_no_effect() -> None:
    t = FakeTarget(down={"model-0", "model-1", "model-2"})
    ev = make_injector(_spec("pod-kill", PodKillParams(mode="all")), t, FaultContext()).apply(0)
    assert ev.no_effect == "killed nothing: 0 of 3 replicas of service 'model' running"


def test_pod_kill_that_kills_has_an_effect() -> None:
    ev = make_injector(_spec("pod-kill", PodKillParams()), FakeTarget(), FaultContext()).apply(0)
    assert len(ev.targets) == 1 and ev.no_effect is None and "no_effect" not in ev.to_dict()


def test_kubernetes_pod_kill_of_a_selector_matching_nothing_records_no_effect() -> None:
    t = FakeTarget(platform="kubernetes")
    ev = make_injector(_spec("pod-kill", PodKillParams(selector="app=none")), t, FaultContext()).apply(0)
    assert ev.no_effect == "killed nothing: there are no pods matching 'app=none'"


def test_feature_store_kill_of_a_stopped_redis_stops_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(featurestore, "_redis_rows", lambda url: 569)
    t = FakeTarget(down={"redis"})
    ev = make_injector(_spec("feature-store-outage", FeatureStoreOutageParams(mode="kill")), t, FaultContext()).apply(0)
    assert ev.no_effect == "stopped nothing: redis was not running"


def test_feature_store_scale_to_zero_of_an_empty_deployment_stops_nothing() -> None:
    t = FakeTarget(platform="kubernetes", replicas={"feature-store": 0})
    ev = make_injector(_spec("feature-store-outage", FeatureStoreOutageParams(mode="kill")), t, FaultContext()).apply(0)
    assert ev.no_effect == "stopped nothing: deployment deploy-feature-store had 0 replicas already"
