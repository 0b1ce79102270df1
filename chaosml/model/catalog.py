"""Names the experiment format accepts: SLIs, operators, phases, cohorts; no I/O."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

#: SLIs computed over a set of request samples (any phase, window or cohort).
SAMPLE_SLIS: dict[str, str] = {
    "success_ratio": "2xx answers (a body with a prediction where the load can tell) / requests",
    "error_ratio": "5xx, refused, reset, timed-out or invalid (2xx without an answer) requests / requests",
    "timeout_ratio": "timed-out requests / requests",
    "rejected_ratio": "4xx answers / requests",
    "invalid_ratio": "2xx responses whose body is not an answer (not JSON, or no prediction) / requests",
    "primary_ratio": "answers served by the primary model / 2xx answers",
    "fallback_ratio": "answers served by anything but the primary model / 2xx answers",
    "default_ratio": "answers served by the default response / 2xx answers",
    "accuracy": "correct predictions / 2xx answers with a prediction",
    "confident_wrong_ratio": "wrong predictions with confidence >= threshold / 2xx answers with a prediction",
    "latency_p50_ms": "median latency of all requests, ms",
    "latency_p95_ms": "95th percentile latency of all requests, ms",
    "latency_p99_ms": "99th percentile latency of all requests, ms",
    "latency_mean_ms": "mean latency of all requests, ms",
    "throughput_rps": "requests sent per second",
}

#: SLIs measured per injection of a fault, aggregated over its repeats.
INJECTION_SLIS: dict[str, str] = {
    "ttd_s": "time to detect: fault apply -> the first thing users or the stack observed (an error, fallback or slow "
    "answer arriving, a failed readiness check, a breaker event, an expected alert firing; labelled users, stack or alert), "
    "s; none = nothing observable",
    "mttr_s": "time to recover: fault apply -> the recovery edge (last request breaking an SLO before the first "
    "run of `hold` windows within all SLOs, located to half a request gap), s; 0 = the SLOs never broke",
    "ready_s": "fault apply -> every killed replica replaced and ready again, s",
}

#: SLIs from the experiment's ``monitoring:`` section, measured per injection of a fault (``fault:``).
ALERT_INJECTION_SLIS: dict[str, str] = {
    "alert_ttd_s": "time to alert: fault apply -> the first expected alert (monitoring.alerts) seen firing, s; "
    "none = no expected alert fired within the window plus monitoring.grace",
    "missed_alerts": "expected alerts (monitoring.alerts naming the fault) that never fired within the window plus grace",
}
#: SLIs from ``monitoring:`` measured over the whole run (no ``during`` nor ``fault``).
ALERT_RUN_SLIS: dict[str, str] = {
    "false_alarms": "alerts that started firing while no fault was active (outside every window plus monitoring.grace)",
}
#: A declared PromQL query used as an SLI: ``prom:NAME`` (monitoring.queries.NAME).
PROM_SLI_PREFIX = "prom:"

ALL_SLIS: tuple[str, ...] = (*SAMPLE_SLIS, *INJECTION_SLIS)
#: Accepted only in an experiment with ``monitoring:`` (besides ``prom:NAME`` for its queries).
MONITORING_SLIS: tuple[str, ...] = (*ALERT_INJECTION_SLIS, *ALERT_RUN_SLIS)


def is_prom_sli(sli: str) -> bool:
    """``prom:NAME``: a monitoring query judged like a sample SLI over a phase or fault."""
    return sli.startswith(PROM_SLI_PREFIX)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}

#: The one definition of the phases: validate accepts these names, plan prints and the analysis
#: computes them (chaosml.analysis.phases), the report and README quote these lines.
PHASE_DEFINITIONS: dict[str, str] = {
    "baseline": "from load start to the first fault's apply",
    "fault": "every fault window (apply to recover) together; a fault's own name selects its windows alone",
    "recovery": "after each recover, until every SLO holds again (the MTTR edge) or the next fault is applied",
    "between": "the rest of the time between faults: after a recovery ended and before the next apply",
    "after": "from the end of the last recovery to load end",
    "all": "the whole load, load start to load end",
}
#: A request belongs to a fault window when its lifetime overlaps it; other phases go by send time.
PHASE_RULE = (
    "a request lives from its send time to its answer, error or timeout; it belongs to a fault window when "
    "that lifetime overlaps the window (sent before the window ends and answered after it starts), "
    "otherwise to the phase it was sent in"
)
PHASES: tuple[str, ...] = tuple(PHASE_DEFINITIONS)

AGGREGATES: tuple[str, ...] = ("max", "mean", "median", "min")

#: Load cohorts the harness can generate from a labelled dataset.
COHORTS: dict[str, str] = {
    "clean": "held-out dataset rows, unchanged",
    "missing-features": "one to three request features dropped from the payload",
    "out-of-range": "one request feature pushed far outside its training range",
    # slice cohorts (chaosml/workload/cohorts.py SLICES): clean rows in a range of one request feature
    "mid-radius": "held-out rows with mean_radius in [14, 17), unchanged (a quarter of the rows, where the model is least sure)",
    # hostile cohorts (see chaosml/workload/cohorts.py); the adversarial-payload fault mixes them in
    "adversarial-evasion": "request features moved by the smallest gradient-sign step that flips the primary model "
    "(else the fallback), computed offline against the served artifact; true label kept",
    "extreme-values": "request features or entity_id set to 1e308, -1e308 or huge integers",
    "type-confusion": "strings, lists, null, booleans or objects where numbers go; features as a list; entity_id as a string",
    "oversized": "a ~1 MB body, a body with 10,000 feature keys, and a 2 MiB body",
    "deep-nesting": "JSON nested 10,000 levels deep (sent raw)",
    "garbage": "random bytes, invalid UTF-8, truncated JSON, empty or non-object bodies (sent raw)",
    "corrupted-payload": "NaN, Infinity or far out-of-range values in the request features",
}

#: A user cohort from the data file (``load.data.cohort``) is a normalised value of that column.
FILE_COHORT_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
#: Most distinct values of the ``load.data.cohort`` column.
MAX_FILE_COHORTS = 50


def normalise_cohort(value: object) -> str:
    """A file cohort name from a cell: lower case, runs of characters outside [a-z0-9] -> '-', no '-' at the ends.

    ``" EU West "`` -> ``eu-west``; ``"Enterprise (EMEA)"`` -> ``enterprise-emea``; ``"?"`` -> ``""`` (no name).
    """
    return re.sub(r"[^a-z0-9]+", "-", str(value).strip().lower()).strip("-")


#: The cohorts an ``adversarial-payload`` fault may mix into the load.
HOSTILE_COHORTS: tuple[str, ...] = (
    "adversarial-evasion",
    "extreme-values",
    "type-confusion",
    "oversized",
    "deep-nesting",
    "garbage",
    "corrupted-payload",
)

TARGET_PLATFORMS: tuple[str, ...] = ("local", "kubernetes")
PROFILES: tuple[str, ...] = ("naive", "hardened")
DATASETS: tuple[str, ...] = ("breast_cancer",)

#: Rollback actions run after every fault is recovered: type -> description of its params.
ROLLBACK_TYPES: dict[str, str] = {
    "wait-ready": "wait until every replica of the target is ready again (params: timeout, default 30s)",
}
