"""Quality against drift magnitude: the samples binned by the ``drift`` column (the magnitude at send time); pure, called by analyze.

A run with a ``drift`` fault records, per request, the fraction ``m`` in [0, 1] of the declared drift
reached when it was sent (``chaosml/load/drift.py``); every other request has none. The bins are
``none`` (no drift active) and ``DRIFT_BINS``' intervals of ``m``; each bin has the sample SLIs of
its requests (accuracy, confident-wrong ratio, fallback and rejected ratio, success ratio).

When the stack reacts: :func:`drift_switches` turns each drift injection's switch delay (the
degradation analysis: apply to the change point of fallback/default answers) into the drift
magnitude reached at that moment, by the fault's own ramp.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from chaosml.analysis.phases import InjectionWindow
from chaosml.analysis.samples import normalize_samples
from chaosml.analysis.slis import SampleArrays, slis_of
from chaosml.load.drift import DriftSchedule
from chaosml.model.experiment import FaultSpec

#: (label, low, high): low < m <= high, the first bin also takes m == 0
DRIFT_BINS: tuple[tuple[str, float, float], ...] = (
    ("0-0.25", -1.0, 0.25), ("0.25-0.5", 0.25, 0.5), ("0.5-0.75", 0.5, 0.75), ("0.75-1", 0.75, 1.0),
)
DRIFT_SLIS = ("success_ratio", "accuracy", "confident_wrong_ratio", "fallback_ratio", "rejected_ratio")


def drift_quality(samples: pd.DataFrame, a: SampleArrays) -> list[dict[str, Any]]:
    """One row per bin with requests: ``{"bin", "requests", <DRIFT_SLIS>}``; [] when no request was sent under drift."""
    m = normalize_samples(samples)["drift"].to_numpy()
    if len(m) != len(a) or not np.any(~np.isnan(m)):
        return []
    masks = [("none", np.isnan(m))]
    with np.errstate(invalid="ignore"):
        masks += [(label, (m > lo) & (m <= hi)) for label, lo, hi in DRIFT_BINS]
    rows = []
    for label, mask in masks:
        if not mask.any():
            continue
        s = slis_of(a, mask)
        rows.append({"bin": label, "requests": int(mask.sum()), **{k: s[k] for k in DRIFT_SLIS}})
    return rows


def drift_switches(faults: list[FaultSpec], degradation: dict[str, Any]) -> list[dict[str, Any]]:
    """Per drift injection: ``{"fault", "injection", "switch_s", "magnitude"}``; switch_s and magnitude None when the stack never switched."""
    specs = {f.name: f for f in faults if f.type == "drift"}
    out: list[dict[str, Any]] = []
    for f in degradation.get("faults") or []:
        spec = specs.get(f.get("fault"))
        if spec is None:
            continue
        p = spec.params
        schedule = DriftSchedule(spec.name, 0.0, spec.duration, ramp=p.ramp, steps=p.steps)
        for inj in f.get("per_injection") or []:
            delay = inj.get("fallback_delay_s") if inj.get("switched") else None
            out.append({"fault": spec.name, "injection": inj["injection"], "switch_s": delay,
                        "magnitude": None if delay is None else round(schedule.magnitude(float(delay)), 4)})
    return out


def undrifted(samples: pd.DataFrame, windows: list[InjectionWindow]) -> dict[str, str]:
    """Drift fault -> why it had no effect, for one whose windows hold requests but not one drifted request
    (the load sent no clean row with features: e.g. a mix of hostile cohorts only); its verdicts are then inconclusive."""
    df = normalize_samples(samples)
    t, m = df["t"].to_numpy(), df["drift"].to_numpy()
    out: dict[str, list[int]] = {}
    for w in windows:
        if w.type != "drift" or w.recover_t is None:
            continue
        inside = (t >= w.apply_t) & (t <= w.recover_t)
        if inside.any() and not np.any(~np.isnan(m[inside])):
            out.setdefault(w.fault, []).append(w.index + 1)
    return {f: f"{'injection' if len(ns) == 1 else 'injections'} {', '.join(f'#{i}' for i in ns)} drifted no request: "
               "the load sent no clean row during the window" for f, ns in out.items()}
