"""Record types shared by the runner, the load process, targets and analysis; no I/O beyond CSV rows.

A run directory (``reports/<run-id>/``) holds:

- ``journal.json``: the source of truth (schema ``JOURNAL_SCHEMA``), written by the runner;
- ``samples.csv``: one row per request, columns ``SAMPLE_COLUMNS``, appended by the load process;
- ``prometheus.json``: experiments with ``monitoring:`` only: each query's PromQL, step and raw
  series, and how the alert poller fared (chaosml.monitoring.watch);
- ``report.md``, ``report.html``, ``plots/*.png``: rendered from the two files above alone.

Times are epoch seconds (float) everywhere on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

#: the journal schema written now; 2 added ``experiment`` (the normalised experiment as data) and ``error``
JOURNAL_SCHEMA = "chaosml.journal/2"
#: the schema before it, still read (its experiment is only YAML text)
JOURNAL_SCHEMA_V1 = "chaosml.journal/1"

#: Column order of samples.csv. Empty cells are missing values.
SAMPLE_COLUMNS: tuple[str, ...] = (
    "t",  # send time, epoch seconds
    "latency_ms",  # request latency in milliseconds
    "status",  # HTTP status; 0 when no response (connection refused/reset, timeout)
    "outcome",  # ok | rejected | error | timeout | invalid (OUTCOMES)
    "served_by",  # primary | fallback | default | rejected | "" (no/unknown answer)
    "prediction",  # predicted class (int) or ""
    "confidence",  # model confidence in [0, 1] or ""
    "label",  # ground-truth class (int)
    "cohort",  # input cohort name, e.g. clean
    "entity_id",  # entity whose features were requested
    "replica",  # which replica answered, when the stack says so, else ""
    "model_version",  # model version the stack reports, else ""
    "drift",  # magnitude in [0, 1] of the drift fault active at send time (chaosml/load/drift.py), else ""
)

Outcome = Literal["ok", "rejected", "error", "timeout", "invalid"]
#: every outcome, in the order analysis codes them (``analysis.samples.OUTCOME_DTYPE``)
OUTCOMES: tuple[Outcome, ...] = ("ok", "rejected", "error", "timeout", "invalid")
ServedBy = Literal["primary", "fallback", "default", "rejected", ""]

SERVED_BY_VALUES: tuple[str, ...] = ("primary", "fallback", "default", "rejected")


def classify_outcome(status: int, timed_out: bool = False, answered: bool = True) -> Outcome:
    """Map an HTTP status (0 = no response) to a sample outcome.

    ``answered``: whether the body is an answer (the load process reads it: a JSON object with a
    prediction, by the reference stack's format or the response mapping). A 2xx without one is
    ``invalid``: the client got a success status and nothing it can use. Loads that cannot tell
    (a user's locustfile without a response mapping) pass True.
    """
    if timed_out:
        return "timeout"
    if 200 <= status < 300:
        return "ok" if answered else "invalid"
    if 400 <= status < 500:
        return "rejected"
    return "error"


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One apply or recover of one injection of a fault, with what it touched."""

    t: float
    fault: str
    injection: int  # 0-based index among the fault's repeats
    action: Literal["apply", "recover"]
    ok: bool
    targets: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)
    #: apply only: why this injection selected, changed or stopped nothing (None: it took effect).
    #: Analysis makes every verdict scoped to such a fault inconclusive, and the run cannot pass.
    no_effect: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        if self.no_effect is None:
            del d["no_effect"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultEvent:
        no_effect = d.get("no_effect")
        return cls(float(d["t"]), str(d["fault"]), int(d["injection"]), d["action"], bool(d["ok"]),
                   tuple(d.get("targets") or ()), dict(d.get("detail") or {}),
                   None if no_effect is None else str(no_effect))


class EventKind(StrEnum):
    """The catalogue of target-event kinds (``TargetEvent.kind``); the journal holds the values.

    ``subject`` names what the event is about (a replica, pod, deployment, ...); ``detail`` holds
    the listed keys. Analysis reads REPLICA_EXITED/REPLICA_UNREADY (detection), REPLICA_READY
    (recovery), POD_REPLACED (the kubernetes MTTR breakdown) and ALERT_FIRING/ALERT_RESOLVED
    (alert detection, chaosml.analysis.monitoring).
    """

    # -- every supervised or kubernetes target: one replica of a service
    REPLICA_STARTED = "replica_started"
    """A replica (process or pod) started; detail: pid/node, restarts, group."""
    REPLICA_READY = "replica_ready"
    """A replica passed its readiness probe (kubernetes: Ready, or its replacement is); detail: pid/node, group."""
    REPLICA_UNREADY = "replica_unready"
    """A replica stopped answering its probe, exited or is terminating; detail: reason."""
    REPLICA_EXITED = "replica_exited"
    """A replica's process (or container, or pod) is gone; detail: returncode or reason."""
    REPLICA_KILLED = "replica_killed"
    """chaosml killed a replica (pod-kill); detail: signal and pid, or grace_period_s, node, group."""
    REPLICA_START_FAILED = "replica_start_failed"
    """The local supervisor could not start a replica; detail: error, failures."""
    # -- local target: the fault proxy, the feature store and the reference stack's breakers
    PROXY_LINKS_RESTORED = "proxy_links_restored"
    """The fault proxy came back and its links were configured again; detail: links."""
    PROXY_LINKS_RESTORE_FAILED = "proxy_links_restore_failed"
    """The fault proxy came back but its links could not be configured; detail: error."""
    FEATURE_STORE_SEEDED = "feature_store_seeded"
    """The feature store was (re)seeded with the dataset's rows; detail: rows."""
    FEATURE_STORE_SEED_FAILED = "feature_store_seed_failed"
    """Seeding the feature store failed; detail: error."""
    BREAKER_TRANSITION = "breaker_transition"
    """A replica's circuit breaker changed state (reference stack); detail: from, to."""
    # -- kubernetes target: pods, deployments and the cluster
    POD_CREATED = "pod_created"
    """A pod of a watched group appeared; detail: group, node, replaces."""
    POD_SCHEDULED = "pod_scheduled"
    """A pod was bound to a node; detail: node, group."""
    POD_READY = "pod_ready"
    """A pod became Ready; detail: node, group, replaces, restarts, container_ids."""
    POD_DELETING = "pod_deleting"
    """A pod got its deletion timestamp; detail: node, group, requested_by_chaosml, restarts, container_ids."""
    POD_DELETED = "pod_deleted"
    """A pod is gone from the API; detail: node, group, restarts, container_ids."""
    POD_REPLACED = "pod_replaced"
    """A killed pod's replacement is Ready; detail: the MTTR breakdown (deleted, created, scheduled, ready)."""
    CONTAINER_RESTARTED = "container_restarted"
    """A pod's container restarted in place; detail: restarts, group, container_ids, previous_container_ids."""
    CONTAINER_KILLED = "container_killed"
    """chaosml killed a pod's container in place (container-failure kill); detail: container, container_id, signal, node, restarts."""
    CONTAINER_PAUSED = "container_paused"
    """chaosml froze a pod's container (container-failure pause); detail: container, container_id, node, restarts."""
    CONTAINER_UNPAUSED = "container_unpaused"
    """chaosml thawed a container it paused; detail: container, container_id, node, done."""
    CONTAINER_RECOVERED = "container_recovered"
    """A pod whose container chaosml killed or paused is Ready again; detail: the MTTR breakdown (unready, restarted, ready)."""
    DEPLOYMENT_SCALED = "deployment_scaled"
    """chaosml scaled a Deployment (feature-store-outage kill); detail: from, to."""
    CONTEXT_CHANGED = "context_changed"
    """The kube context changed under the run (the run aborts); detail: reason."""
    WATCH_ERROR = "watch_error"
    """The pod watch failed and is retried; detail: error."""
    K8S_WARNING = "k8s_warning"
    """A Warning event of the namespace; detail: reason, message, object."""
    # -- monitoring: Prometheus alerts as the run's poller saw them (subject: the alertname)
    ALERT_PENDING = "alert_pending"
    """An alert's expression became true (not yet firing for its ``for:``); detail: labels, active_at."""
    ALERT_FIRING = "alert_firing"
    """An alert was seen firing; detail: labels, active_at (when its expression first held), polled_after (s since the last poll)."""
    ALERT_RESOLVED = "alert_resolved"
    """An alert seen pending or firing is no longer active; detail: labels, was (pending | firing)."""
    ALERT_POLL_FAILED = "alert_poll_failed"
    """Reading /api/v1/alerts failed (the first failure of a run of failures); detail: error."""


@dataclass(frozen=True, slots=True)
class TargetEvent:
    """Something the target observed about itself; ``kind`` is one of :class:`EventKind`."""

    t: float
    kind: str
    subject: str  # e.g. the replica name "model-1"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEvent:
        return cls(float(d["t"]), str(d["kind"]), str(d["subject"]), dict(d.get("detail") or {}))
