"""During and after a run: poll Prometheus' active alerts into journal events, then store the queries' raw series.

Used by the runner for experiments with ``monitoring:``. :class:`AlertPoller` reads
``/api/v1/alerts`` every ``poll_interval`` seconds on its own thread and turns each change of an
alert's state (by alertname and labels) into an ``alert_pending`` / ``alert_firing`` /
``alert_resolved`` target event; a firing alert is therefore seen at most one poll interval after
Prometheus fired it (a rule fires at an evaluation, so the poll interval, not the scrape interval,
bounds the error). :func:`collect` runs once after the load: one range query per named query over
the whole load (+ grace), step = the steady-state window, stored with the query text in
``prometheus.json``, so that the report re-renders offline.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from chaosml.model.experiment import MonitoringSpec
from chaosml.monitoring.promapi import PromQueryError, PromUnreachable, alerts, query_range
from chaosml.records import EventKind, TargetEvent

PROMETHEUS_FILE = "prometheus.json"


def _rfc3339(value: Any) -> float | None:
    """Prometheus' activeAt (RFC 3339, up to nanoseconds) -> epoch seconds; None when it is not one."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value) if isinstance(value, str) else None
    if m is None:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3))).timestamp()
    return base + float("0" + (m.group(2) or ".0"))


class AlertPoller:
    """Polls active alerts until :meth:`stop`; ``emit`` receives each transition as a TargetEvent."""

    def __init__(self, url: str, interval_s: float, emit: Callable[[TargetEvent], None]) -> None:
        self.url = url
        self.interval_s = interval_s
        self.emit = emit
        self.polls = 0
        self.failures = 0
        self.last_error: str | None = None
        self._state: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok: float | None = None
        self._failing = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="alert-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Poll once more (the state at the end of the run), then end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.poll_once()

    def _loop(self) -> None:
        while not self._stop.is_set():  # bounded by the run: stop() ends it
            self.poll_once()
            self._stop.wait(self.interval_s)

    def poll_once(self) -> None:
        now = time.time()
        try:
            active = alerts(self.url, timeout_s=max(1.0, self.interval_s * 2))
        except (PromUnreachable, PromQueryError) as e:
            self.failures += 1
            self.last_error = str(e)
            if not self._failing:  # the first failure of a run of failures
                self.emit(TargetEvent(t=now, kind=EventKind.ALERT_POLL_FAILED, subject="prometheus", detail={"error": str(e)}))
            self._failing = True
            return
        self.polls += 1
        self._failing = False
        since = now - (self._last_ok if self._last_ok is not None else now)
        self._last_ok = now
        seen: dict[tuple[str, str], tuple[str, dict[str, str], float | None]] = {}
        for a in active:
            labels = {str(k): str(v) for k, v in (a.get("labels") or {}).items()}
            name = labels.get("alertname", "")
            key = (name, ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k != "alertname"))
            seen[key] = (str(a.get("state", "")), labels, _rfc3339(a.get("activeAt")))
        for key, (state, labels, active_at) in seen.items():
            before = self._state.get(key, ("inactive", {}))[0]
            if state != before and state in ("pending", "firing"):
                kind = EventKind.ALERT_FIRING if state == "firing" else EventKind.ALERT_PENDING
                self.emit(TargetEvent(t=now, kind=kind, subject=key[0],
                                      detail={"labels": labels, "active_at": active_at, "polled_after": round(since, 3)}))
        for key, (state, labels) in list(self._state.items()):
            if key not in seen:
                self.emit(TargetEvent(t=now, kind=EventKind.ALERT_RESOLVED, subject=key[0], detail={"labels": labels, "was": state}))
        self._state = {k: (st, lab) for k, (st, lab, _) in seen.items()}

    def record(self) -> dict[str, Any]:
        return {"polls": self.polls, "failures": self.failures, "last_error": self.last_error, "interval_s": self.interval_s,
                "last_poll_t": self._last_ok}


def collect(url: str, queries: Mapping[str, str], start: float, end: float, step: float) -> dict[str, Any]:
    """Every query's raw matrix over [start, end] at ``step``: ``{name: {query, step, start, end, series | error}}``."""
    out: dict[str, Any] = {}
    for name, expr in queries.items():
        entry: dict[str, Any] = {"query": expr, "step": step, "start": start, "end": end}
        try:
            entry["series"] = query_range(url, expr, start, end, step, timeout_s=30.0)
        except (PromUnreachable, PromQueryError) as e:
            entry["error"] = str(e)
        out[name] = entry
    return out


class RunMonitor:
    """One run's monitoring: the alert poller from target start to the end of the load, then the collection."""

    def __init__(self, url: str, spec: MonitoringSpec, step_s: float, emit: Callable[[TargetEvent], None]) -> None:
        self.url = url
        self.queries = dict(spec.queries)
        self.step_s = step_s
        self.poller = AlertPoller(url, spec.poll_interval, emit)

    def start(self) -> None:
        self.poller.start()

    def finish(self, run_dir: Path, load_start: float | None, load_end: float | None) -> str | None:
        """Stop polling, range-query every query over the load, write ``run_dir/prometheus.json``; a problem, or None.

        Never raises: the runner calls it in its cleanup, before the target stops.
        """
        try:
            self.poller.stop()
            doc: dict[str, Any] = {"url": self.url, "alert_polls": self.poller.record(), "queries": {}}
            if load_start is None:
                doc["error"] = "the load never started: nothing to query"
            else:
                end = load_end if load_end is not None else time.time()
                doc["queries"] = collect(self.url, self.queries, float(load_start), float(end), self.step_s)
            tmp = run_dir / (PROMETHEUS_FILE + ".tmp")
            tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, run_dir / PROMETHEUS_FILE)
        except Exception as e:  # noqa: BLE001 - said by the runner; the analysis finds no data and says inconclusive
            return f"could not store the Prometheus data: {type(e).__name__}: {e}"
        failed = [n for n, q in doc["queries"].items() if q.get("error")]
        return f"queries failed: {', '.join(failed)}" if failed else None
