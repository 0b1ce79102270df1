"""The injector/undoer registry is keyed by (fault type, platform): a platform's own entry wins."""

from __future__ import annotations

from typing import Any

import pytest

from chaosml.faults import base, featurestore, scale
from chaosml.faults.base import (
    ANY_PLATFORM,
    INJECTORS,
    UNDOERS,
    injector,
    undo_fault,
    undoer,
    undoer_for,
)
from chaosml.model.experiment import FaultSpec
from chaosml.faults.featurestore import FeatureStoreOutageParams


class _Target:
    def __init__(self, platform: str) -> None:
        self.platform = platform


def _spec(mode: str) -> FaultSpec:
    return FaultSpec(name="fs", type="feature-store-outage", at=0, duration=1, params=FeatureStoreOutageParams(mode=mode))


def test_platform_entry_wins_over_the_any_platform_one() -> None:
    base.load_builtin_injectors()
    assert INJECTORS[("feature-store-outage", "kubernetes")] is scale._make
    assert INJECTORS[("feature-store-outage", ANY_PLATFORM)] is featurestore._make
    assert isinstance(base.make_injector(_spec("kill"), _Target("kubernetes")), scale.ScaleToZero)
    assert isinstance(base.make_injector(_spec("kill"), _Target("local")), featurestore.FeatureStoreOutage)
    # proxy modes use the shared injector on kubernetes too
    assert isinstance(base.make_injector(_spec("down"), _Target("kubernetes")), featurestore.FeatureStoreOutage)
    assert undoer_for("feature-store-outage", "kubernetes") is scale._undo
    assert undoer_for("feature-store-outage", "local") is featurestore.undo
    assert undoer_for("feature-store-outage", None) is featurestore.undo


def test_order_of_registration_does_not_matter() -> None:
    calls: list[str] = []
    try:
        @injector("x-test", platform="kubernetes")
        def k8s(spec: Any, target: Any, ctx: Any) -> Any:
            calls.append("k8s")

        @injector("x-test")
        def anyp(spec: Any, target: Any, ctx: Any) -> Any:
            calls.append("any")

        spec = FaultSpec(name="x", type="x-test", at=0, duration=1, params=None)
        base.make_injector(spec, _Target("kubernetes"))
        base.make_injector(spec, _Target("local"))
        base.make_injector(spec, None)
        assert calls == ["k8s", "any", "any"]
    finally:
        INJECTORS.pop(("x-test", "kubernetes"), None)
        INJECTORS.pop(("x-test", ANY_PLATFORM), None)


def test_a_second_registration_for_the_same_key_is_refused() -> None:
    @undoer("y-test")
    def one(record: dict[str, Any]) -> str:
        return "one"

    try:
        with pytest.raises(RuntimeError, match="two undoers"):
            @undoer("y-test")
            def two(record: dict[str, Any]) -> str:
                return "two"
        assert undo_fault("y-test", {"platform": "kubernetes"}) == "one"  # falls back to any-platform
        with pytest.raises(NotImplementedError):
            undo_fault("z-test", {})
    finally:
        UNDOERS.pop(("y-test", ANY_PLATFORM), None)
