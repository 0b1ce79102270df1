"""The fault-type registry: discovery, duplicates, per-platform dispatch and declared capabilities."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from fake_target import FakeTarget

from chaosml.errors import TargetError
from chaosml.faults import featurestore
from chaosml.faults.base import make_injector, undo_fault, undoer_for
from chaosml.faults.featurestore import FeatureStoreOutageParams
from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import (
    DuplicateFaultTypeError,
    FaultContext,
    FaultRegistry,
    FaultType,
    missing_capabilities,
    protocol_members,
    registry,
)
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import TARGET_CLASSES, capability_issue, missing_for

BUILTIN = ("adversarial-payload", "container-failure", "corrupted-features", "dependency-errors", "drift", "feature-store-outage",
           "missing-features", "model-rollout", "network-latency", "network-toxic", "node-failure", "pod-kill", "resource-pressure")


@dataclass(frozen=True, slots=True)
class _Params:
    n: int = 1


class _Noop:
    def __init__(self, spec: FaultSpec, target: object, context: FaultContext) -> None:
        self.spec = spec

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {}

    def apply(self, injection: int) -> FaultEvent:
        return FaultEvent(0.0, self.spec.name, injection, "apply", True, (), {})

    def recover(self, injection: int) -> FaultEvent:
        return FaultEvent(0.0, self.spec.name, injection, "recover", True, (), {})


def _type(name: str = "x-test", **kw: Any) -> FaultType:
    return FaultType(name=name, params=_Params, injectors={"local": _Noop}, undoers={"local": lambda r: "undone"}, **kw)


def _spec(mode: str) -> FaultSpec:
    return FaultSpec(name="fs", type="feature-store-outage", at=0, duration=1, params=FeatureStoreOutageParams(mode=mode))


def test_every_builtin_type_is_discovered_from_its_own_module() -> None:
    reg = FaultRegistry()
    reg.add_package()
    assert reg.names() == sorted(BUILTIN)
    assert reg.origin("pod-kill") == "module chaosml.faults.podkill"


@pytest.mark.parametrize("name", BUILTIN)
def test_every_platform_claimed_has_an_injector_an_undoer_and_its_capabilities(name: str) -> None:
    ft = registry()[name]
    assert ft.platforms
    for platform in ft.platforms:
        assert callable(ft.injectors[platform]) and callable(ft.undoers[platform])
        for stack in ft.stacks:
            assert (platform, stack) in TARGET_CLASSES
            assert missing_for(ft, platform, stack) == [], (platform, stack)
            assert capability_issue(ft, platform, stack) is None


def test_the_fake_target_implements_every_declared_capability() -> None:
    for ft in registry():
        for platform in ft.platforms:
            assert missing_capabilities(ft.capabilities.get(platform, ()), FakeTarget) == [], ft.name


def test_a_duplicate_name_is_refused_naming_both_origins() -> None:
    reg = FaultRegistry()
    reg.add(_type(), "module one")
    reg.add(reg["x-test"], "module one")  # the same object again is not a duplicate
    with pytest.raises(DuplicateFaultTypeError, match="'x-test' is defined twice: by module one and by module two"):
        reg.add(_type(), "module two")


def test_a_module_offers_its_types_as_fault_type_or_fault_types() -> None:
    mod = types.ModuleType("plugin_mod")
    mod.FAULT_TYPES = (_type("a-test"), _type("b-test"))  # type: ignore[attr-defined]
    reg = FaultRegistry()
    reg.add_module(mod)
    assert reg.names() == ["a-test", "b-test"] and reg.origin("a-test") == "module plugin_mod"
    bad = types.ModuleType("bad_mod")
    bad.FAULT_TYPE = "pod-kill"  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="bad_mod: FAULT_TYPE"):
        reg.add_module(bad)


def test_the_platform_mechanism_is_chosen_by_the_target() -> None:
    assert isinstance(make_injector(_spec("kill"), FakeTarget(platform="kubernetes")), featurestore.ScaleToZero)
    assert isinstance(make_injector(_spec("kill"), FakeTarget(platform="local")), featurestore.StopRedis)
    assert isinstance(make_injector(_spec("down"), FakeTarget(platform="kubernetes")), featurestore.ProxyOutage)
    assert isinstance(make_injector(_spec("down"), object()), featurestore.ProxyOutage)  # no platform: local
    assert undoer_for("feature-store-outage", "kubernetes") is featurestore.undo_kubernetes
    assert undoer_for("feature-store-outage", "local") is featurestore.undo_local
    assert undoer_for("feature-store-outage", None) is featurestore.undo_local


def test_a_platform_the_type_does_not_support_is_refused_naming_the_supported_ones() -> None:
    spec = FaultSpec(name="n", type="node-failure", at=0, duration=1, params=registry()["node-failure"].params())
    with pytest.raises(TargetError, match="node-failure is not available on the local target; it runs on: kubernetes"):
        make_injector(spec, FakeTarget(platform="local"))
    assert capability_issue(registry()["node-failure"], "local", "reference") == (
        "node-failure is not available on the local target; it runs on: kubernetes")
    assert "needs stack: reference" in (capability_issue(registry()["corrupted-features"], "local", "custom") or "")


def test_a_target_class_lacking_a_capability_is_named() -> None:
    class Pausable(Protocol):
        def pause(self, name: str) -> None: ...

        @property
        def paused(self) -> list[str]: ...

    class Partial:
        def pause(self, name: str) -> None:
            pass

    assert protocol_members(Pausable) == ("pause", "paused")
    assert missing_capabilities((Pausable,), Partial) == ["Pausable.paused"]


def test_a_fresh_registry_dispatches_injectors_and_undoers() -> None:
    reg = FaultRegistry()
    reg.add(_type(), "test")
    spec = FaultSpec(name="x", type="x-test", at=0, duration=1, params=_Params())
    assert isinstance(make_injector(spec, FakeTarget(), types=reg), _Noop)
    assert undo_fault("x-test", {}, types=reg) == "undone"
    with pytest.raises(NotImplementedError, match="on platform kubernetes"):
        undo_fault("x-test", {"platform": "kubernetes"}, types=reg)
    with pytest.raises(NotImplementedError):
        undo_fault("z-test", {}, types=reg)


def test_a_descriptor_is_checked_when_built() -> None:
    with pytest.raises(ValueError, match="severity"):
        _type(severity="apocalyptic")
    with pytest.raises(ValueError, match="undoer for platform"):
        FaultType(name="y", params=_Params, injectors={"local": _Noop}, undoers={"kubernetes": lambda r: ""})
