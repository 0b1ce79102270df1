"""Synthetic runs for analysis tests: samples frames and journals built directly, no stack, no loader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from chaosml.faults.podkill import PodKillParams
from chaosml.model.experiment import (
    Experiment,
    FaultSpec,
    Hypothesis,
    LoadSpec,
    Repeat,
    Slo,
    SteadyState,
    TargetSpec,
)

T0 = 1_700_000_000.0


def samples(
    duration: float,
    rate: float,
    *,
    start: float = T0,
    cohorts: tuple[str, ...] = ("clean",),
    seed: int = 0,
) -> pd.DataFrame:
    """Healthy traffic: ``rate`` requests/s for ``duration`` s, evenly spaced, all primary and correct."""
    n = round(duration * rate)
    rng = np.random.default_rng(seed)
    t = start + (np.arange(n) + 0.5) / rate
    label = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "t": t,
            "latency_ms": rng.uniform(5.0, 15.0, n),
            "status": np.full(n, 200),
            "outcome": ["ok"] * n,
            "served_by": ["primary"] * n,
            "prediction": label.astype(float),
            "confidence": np.full(n, 0.9),
            "label": label,
            "cohort": [cohorts[i % len(cohorts)] for i in range(n)],
            "entity_id": np.arange(n) % 100,
            "replica": [f"model-{i % 3}" for i in range(n)],
            "model_version": ["v1"] * n,
        }
    )


def set_outcome(df: pd.DataFrame, lo: float, hi: float, outcome: str = "error", served_by: str | None = None, status: int = 503) -> None:
    """Make every request sent in [T0 + lo, T0 + hi) fail (or be served another way)."""
    m = (df["t"] >= T0 + lo) & (df["t"] < T0 + hi)
    df.loc[m, "outcome"] = outcome
    df.loc[m, "served_by"] = served_by if served_by is not None else ""
    df.loc[m, "status"] = status if outcome != "ok" else 200


def journal(
    *,
    duration: float,
    injections: list[dict[str, Any]],
    target_events: list[dict[str, Any]] | None = None,
    status: str = "completed",
    start: float = T0,
    load_end: bool = True,
) -> dict[str, Any]:
    """A journal: ``injections`` items are {fault, type, injection, apply, recover (offset or None), targets}."""
    fault_events: list[dict[str, Any]] = []
    timeline = []
    for inj in injections:
        i = inj.get("injection", 0)
        fault_events.append(
            {"t": start + inj["apply"], "fault": inj["fault"], "injection": i, "action": "apply", "ok": True,
             "targets": list(inj.get("targets", [])), "detail": {}}
        )
        if inj.get("recover") is not None:
            fault_events.append(
                {"t": start + inj["recover"], "fault": inj["fault"], "injection": i, "action": "recover", "ok": True,
                 "targets": list(inj.get("targets", [])), "detail": {}}
            )
        timeline.append({"fault": inj["fault"], "type": inj.get("type", "pod-kill"), "injection": i,
                         "planned_start": start + inj["apply"], "planned_end": start + (inj.get("recover") or inj["apply"])})
    return {
        "schema": "chaosml.journal/1",
        "run_id": "20240101-000000-test",
        "status": status,
        "reason": None,
        "chaosml_version": "0.1.0",
        "experiment_file": "test.yaml",
        "experiment_source": "",
        "environment": {"python": "3.11", "platform": "linux", "packages": {"pandas": pd.__version__}},
        "target": {"platform": "local", "profile": "hardened", "replicas": 3},
        "started_at": start - 5,
        "ended_at": start + duration + 1 if load_end else None,
        "load": {"started_at": start, "ended_at": start + duration if load_end else None, "requests": 0},
        "timeline": timeline,
        "fault_events": sorted(fault_events, key=lambda e: e["t"]),
        "target_events": [dict(e, t=start + e["t"]) for e in target_events or []],
        "samples_file": "samples.csv",
        "analysis": None,
        "exit_code": None,
    }


def experiment(
    *,
    slos: tuple[Slo, ...] = (Slo("availability", "success_ratio", ">=", 0.99, ("baseline", "after")),),
    hypotheses: tuple[Hypothesis, ...] = (),
    faults: tuple[FaultSpec, ...] = (),
    window: float = 1.0,
    hold: int = 3,
    min_samples: int = 20,
    restart_delay: float = 2.0,
    rate: float = 50.0,
) -> Experiment:
    """``rate``: the requested load in requests/s (10 users; the default matches most synthetic samples)."""
    if not faults:
        faults = (FaultSpec("kill", "pod-kill", 10.0, 5.0, PodKillParams(), Repeat()),)
    return Experiment(
        title="synthetic",
        release="test-release",
        target=TargetSpec(restart_delay=restart_delay),
        steady_state=SteadyState(window=window, hold=hold, min_samples=min_samples, slos=slos),
        hypotheses=hypotheses,
        faults=faults,
        load=LoadSpec(users=10, rate_per_user=rate / 10),
    )
