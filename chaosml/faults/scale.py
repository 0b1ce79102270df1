"""feature-store-outage ``mode: kill`` on the kubernetes target: scale the Redis Deployment to 0 and back; used by the runner.

One fault type name, two mechanisms: this module registers the ``kubernetes`` platform's injector
and undoer of ``feature-store-outage`` (the registry in :mod:`chaosml.faults.base` is keyed by fault
type and platform, so the platform's own entry wins whatever the import order). With ``mode: kill``
it builds :class:`ScaleToZero` for the target's feature-store group (the reference stack's Redis, or
the service behind a custom stack's ``feature-store`` link); the proxy modes down/timeout/latency
use :class:`chaosml.faults.featurestore.FeatureStoreOutage` unchanged, on either platform.

The undo record holds the Deployment, namespace, context, API server and kubeconfig, and the
ORIGINAL replica count read before apply, so that ``chaosml rollback`` scales it back from the
record alone after the harness died (refusing if the context now names another API server).
"""

from __future__ import annotations

import time
from typing import Any

from chaosml.faults import featurestore
from chaosml.faults.base import (
    FaultContext,
    Injector,
    injector,
    undoer,
)
from chaosml.model.experiment import FaultSpec
from chaosml.records import FaultEvent

FAULT_TYPE = "feature-store-outage"
GROUP = "feature-store"
#: recover waits at most this long for the scaled-back Deployment to be Ready (seconds)
READY_TIMEOUT_S = 60.0


class ScaleToZero:
    """Scale a group's Deployment to 0 replicas for the fault window, then back to its original count."""

    def __init__(self, spec: FaultSpec, target: Any, context: FaultContext, group: str = GROUP) -> None:
        self.spec = spec
        self.target = target
        self.group = group
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        deployment = self.target.deployment(self.group)
        before = self.target.desired_replicas(self.group)
        record = {
            **self.target.ledger_scope(),
            "mode": "kill",
            "mechanism": "scale-to-zero",
            "group": self.group,
            "deployment": deployment,
            "replicas_before": before,
        }
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        prev = self.target.stop_member(record["deployment"])
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=True, targets=(record["deployment"],),
            detail={"mode": "kill", "mechanism": "scale-to-zero", "deployment": record["deployment"],
                    "namespace": record["namespace"], "replicas_before": record["replicas_before"], "scaled_from": prev,
                    "apply_s": round(time.time() - t, 4)},
        )

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        want = int(record["replicas_before"])
        self.target.start_member(record["deployment"], replicas=want)
        ready = self.target.wait_group_ready(self.group, READY_TIMEOUT_S)
        now = self.target.desired_replicas(self.group)
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=ready and now == want,
            targets=(record["deployment"],),
            detail={"mode": "kill", "mechanism": "scale-to-zero", "deployment": record["deployment"],
                    "replicas": now, "replicas_before": want, "ready": ready, "ready_s": round(time.time() - t, 3)},
        )


@injector(FAULT_TYPE, platform="kubernetes")
def _make(spec: FaultSpec, target: Any, context: FaultContext) -> Injector:
    if spec.params.mode == "kill":
        return ScaleToZero(spec, target, context, group=getattr(target, "feature_store_group", GROUP))
    return featurestore.FeatureStoreOutage(spec, target, context)


@undoer(FAULT_TYPE, platform="kubernetes")
def _undo(record: dict[str, Any]) -> str:
    if record.get("mechanism") == "scale-to-zero":
        from chaosml.targets.kubernetes import scale_from_record

        return f"feature-store-outage kill (scale-to-zero): {scale_from_record(record)}"
    return featurestore.undo(record)
