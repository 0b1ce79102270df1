"""When a Deployment's rollout is complete: the rule of ``kubectl rollout status``, used by every wait on Deployments.

"Available" alone is not enough: right after a template change (or a scale), the old pods still count as
available while the new ones are Pending (with hostNetwork or a hostPort, a new pod cannot start until the old
one is gone). A wait that returns then hands its caller a pod that is about to disappear.
"""

from __future__ import annotations

from typing import Any


def rollout_pending(d: Any) -> str | None:
    """Why the Deployment ``d`` (a V1Deployment) is not rolled out yet, or None when it is complete: the controller
    observed the latest spec, every desired replica runs the latest template, no old replica is left and every
    updated replica is available (the order of ``kubectl rollout status``)."""
    want = d.spec.replicas if d.spec.replicas is not None else 1
    st = d.status
    generation = d.metadata.generation or 0
    observed = st.observed_generation or 0
    updated, total, available = st.updated_replicas or 0, st.replicas or 0, st.available_replicas or 0
    if observed < generation:
        return f"spec generation {generation} not yet observed (at {observed})"
    if updated < want:
        return f"{updated} of {want} replicas updated"
    if total > updated:
        return f"{total - updated} old replicas pending termination"
    if available < updated:
        return f"{available} of {updated} updated replicas available"
    return None
