"""Record types shared by the runner, the load process, targets and analysis; no I/O beyond CSV rows.

A run directory (``reports/<run-id>/``) holds:

- ``journal.json``: the source of truth (schema ``JOURNAL_SCHEMA``), written by the runner;
- ``samples.csv``: one row per request, columns ``SAMPLE_COLUMNS``, appended by the load process;
- ``report.md``, ``report.html``, ``plots/*.png``: rendered from the two files above alone.

Times are epoch seconds (float) everywhere on disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    "outcome",  # ok | rejected | error | timeout
    "served_by",  # primary | fallback | default | rejected | "" (no/unknown answer)
    "prediction",  # predicted class (int) or ""
    "confidence",  # model confidence in [0, 1] or ""
    "label",  # ground-truth class (int)
    "cohort",  # input cohort name, e.g. clean
    "entity_id",  # entity whose features were requested
    "replica",  # which replica answered, when the stack says so, else ""
    "model_version",  # model version the stack reports, else ""
)

Outcome = Literal["ok", "rejected", "error", "timeout"]
ServedBy = Literal["primary", "fallback", "default", "rejected", ""]

SERVED_BY_VALUES: tuple[str, ...] = ("primary", "fallback", "default", "rejected")


def classify_outcome(status: int, timed_out: bool = False) -> Outcome:
    """Map an HTTP status (0 = no response) to a sample outcome."""
    if timed_out:
        return "timeout"
    if 200 <= status < 300:
        return "ok"
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FaultEvent:
        return cls(float(d["t"]), str(d["fault"]), int(d["injection"]), d["action"], bool(d["ok"]),
                   tuple(d.get("targets") or ()), dict(d.get("detail") or {}))


@dataclass(frozen=True, slots=True)
class TargetEvent:
    """Something the target observed about itself (replica killed/started/ready/unready, ...).

    ``kind`` values used by the local target: ``replica_killed``, ``replica_exited``,
    ``replica_started``, ``replica_ready``, ``replica_unready``.
    """

    t: float
    kind: str
    subject: str  # e.g. the replica name "model-1"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TargetEvent:
        return cls(float(d["t"]), str(d["kind"]), str(d["subject"]), dict(d.get("detail") or {}))
