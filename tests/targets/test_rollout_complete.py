"""rollout_pending: a Deployment counts as rolled out only as ``kubectl rollout status`` would say, so that a wait
does not return while a template change still has a Pending new pod beside the old, still-available one (the
state that made a real-node test find a model pod on no node)."""

from __future__ import annotations

from types import SimpleNamespace as NS
from typing import Any

import pytest

from chaosml.errors import TargetError
from chaosml.targets.kubernetes.cluster import wait_available
from chaosml.targets.kubernetes.rollout import rollout_pending

kubernetes = pytest.importorskip("kubernetes")


def deployment(replicas: int = 1, generation: int = 2, observed: int = 2, updated: int = 1, total: int = 1,
               available: int = 1, ready: int = 1, name: str = "model") -> Any:
    """The fields of a V1Deployment that the rule reads."""
    return NS(metadata=NS(name=name, generation=generation), spec=NS(replicas=replicas),
              status=NS(observed_generation=observed, updated_replicas=updated, replicas=total,
                        available_replicas=available, ready_replicas=ready))


def test_a_rolled_out_deployment_is_complete() -> None:
    assert rollout_pending(deployment()) is None
    assert rollout_pending(deployment(replicas=0, updated=0, total=0, available=0, ready=0)) is None


def test_the_state_right_after_a_template_change_is_not_complete() -> None:
    # the old pod is still available (available 1 >= replicas 1), the new one Pending: "available" said done
    d = deployment(updated=1, total=2, available=1, ready=1)
    assert rollout_pending(d) == "1 old replicas pending termination"


def test_an_unobserved_spec_is_not_complete() -> None:
    assert rollout_pending(deployment(generation=3, observed=2)) == "spec generation 3 not yet observed (at 2)"


def test_a_scale_up_not_yet_updated_or_available() -> None:
    assert rollout_pending(deployment(replicas=2, updated=1, total=1)) == "1 of 2 replicas updated"
    assert rollout_pending(deployment(replicas=2, updated=2, total=2, available=1)) == "1 of 2 updated replicas available"


class _Apps:
    def __init__(self, states: list[list[Any]]) -> None:
        self.states = states

    def list_namespaced_deployment(self, namespace: str, _request_timeout: float) -> Any:
        class _List:
            items = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return _List()


def test_wait_available_waits_for_the_old_replica_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    mid = [deployment(updated=1, total=2, available=1)]
    done = [deployment()]
    apps = _Apps([mid, mid, done])
    monkeypatch.setattr(kubernetes.client, "AppsV1Api", lambda api: apps)
    monkeypatch.setattr("chaosml.targets.kubernetes.cluster.time.sleep", lambda s: None)
    assert wait_available(object(), "ns", 30) == {"model": "1/1"}
    assert apps.states == [done]  # it polled through both mid-rollout states


def test_wait_available_names_what_it_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubernetes.client, "AppsV1Api", lambda api: _Apps([[deployment(updated=1, total=2)]]))
    with pytest.raises(TargetError, match="model: 1 old replicas pending termination"):
        wait_available(object(), "ns", 0)
