"""Prometheus exposition of the reference stack's processes (prometheus-client, one registry per process); used by service and gateway.

Every series carries the process's constant labels (a replica's ``replica`` and ``profile``; the
gateway's ``profile``). Names, with ``P`` the prefix (``chaosml_replica`` or ``chaosml_gateway``):

- ``P_requests_total{served_by, status}``: answered /predict requests by the path that served them
  (primary, fallback, default, rejected; empty when the answer does not say) and HTTP status;
- ``P_request_duration_seconds``: histogram of /predict handling time;
- ``P_low_confidence_answers_total``: 2xx answers whose confidence is below the primary model's
  ``min_confidence`` (the confident-wrong proxy a dashboard can see: it needs no labels);
- ``P_<event>_total``: one counter per declared event (e.g. ``feature_fetch_failures``), present
  from the start at 0 so that rate() and alert rules have a series before the first event;
- ``P_<counter>_total{...}``: labelled counters (the gateway's ``backend_attempts`` per backend);
- gauges set at scrape time (``P_ready``, ``P_breaker_state``, ``chaosml_gateway_backend_up``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Histogram buckets of the request duration, seconds.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: The text format Prometheus 2.x scrapes (prometheus-client's default names a newer version).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StackMetrics:
    """A process's metrics in its own :class:`CollectorRegistry` (no global state: tests build many).

    ``events`` are the counters :meth:`inc` accepts (a name outside them is a bug: KeyError);
    ``gauges`` the gauges :meth:`set` accepts and ``counters`` the labelled counters :meth:`count`
    accepts, each with its extra label names.
    """

    def __init__(
        self,
        prefix: str,
        labels: Mapping[str, str],
        events: Iterable[str],
        gauges: Mapping[str, tuple[str, ...]] | None = None,
        counters: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.prefix = prefix
        self.registry = CollectorRegistry(auto_describe=True)
        self.labels = dict(labels)
        names = tuple(self.labels)
        reg = self.registry
        self._requests = Counter(f"{prefix}_requests", "answered /predict requests", (*names, "served_by", "status"), registry=reg)
        self._duration = Histogram(
            f"{prefix}_request_duration_seconds", "/predict handling time, s", names, buckets=LATENCY_BUCKETS_S, registry=reg
        ).labels(**self.labels)
        self._low_conf = Counter(
            f"{prefix}_low_confidence_answers", "2xx answers with confidence below the primary's min_confidence", names, registry=reg
        ).labels(**self.labels)
        self._events = {
            e: Counter(f"{prefix}_{e}", e.replace("_", " "), names, registry=reg).labels(**self.labels) for e in events
        }
        self._gauges = {
            g: Gauge(f"{prefix}_{g}", g.replace("_", " "), (*names, *extra), registry=reg) for g, extra in (gauges or {}).items()
        }
        self._counters = {
            c: Counter(f"{prefix}_{c}", c.replace("_", " "), (*names, *extra), registry=reg) for c, extra in (counters or {}).items()
        }

    def observe(self, served_by: str, status: int, seconds: float, confidence: float | None = None, min_confidence: float = 0.0) -> None:
        """One answered request: its path, status, handling time and (2xx) confidence."""
        self._requests.labels(**self.labels, served_by=served_by, status=str(status)).inc()
        self._duration.observe(seconds)
        if confidence is not None and 200 <= status < 300 and confidence < min_confidence:
            self._low_conf.inc()

    def inc(self, event: str, n: int = 1) -> None:
        self._events[event].inc(n)

    def count(self, counter: str, n: int = 1, **extra: str) -> None:
        self._counters[counter].labels(**self.labels, **extra).inc(n)

    def set(self, gauge: str, value: float, **extra: str) -> None:
        self._gauges[gauge].labels(**self.labels, **extra).set(value)

    def render(self) -> bytes:
        """The text exposition of every series of this process."""
        return generate_latest(self.registry)
