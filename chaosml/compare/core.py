"""compare(baseline runs, candidate runs) -> Comparison: every verdict, fault and cohort x phase SLI side by side, judged.

Called by ``chaosml compare`` and the game-day report. Each run is re-analysed from its
``journal.json`` and ``samples.csv`` (never from live objects); several runs on one side are
pooled (their requests and their injections), so repeated runs sharpen the estimate.

Rows and how each is judged (each row on its own: an aggregate improvement never hides a
regression in one cohort or one fault):

- **verdict** (every SLO x phase and hypothesis): a pass -> fail flip is always ``regressed`` and
  fail -> pass ``improved``, whatever the sample size; a side that is inconclusive makes the row
  ``inconclusive``; the same verdict on both sides is then judged like the metric it measures,
  with the better direction taken from its operator (``>=``: higher is better).
- **fault** (mttr_s, ttd_s, ready_s per fault, mean over injections): more injections that never
  recovered / whose replicas never came back is ``regressed`` (fewer is ``improved``); more or
  fewer with nothing observable (ttd_s) is ``changed``; otherwise the means of the defined values
  are compared, bootstrapping injections (ttd_s: a significant change is ``changed``).
- **sli** (success_ratio, error_ratio, fallback_ratio, accuracy, confident_wrong_ratio,
  latency_p50_ms, latency_p99_ms in every phase, overall and per cohort): bootstrapped over time
  blocks of requests (see chaosml.compare.bootstrap). A latency percentile also needs
  :data:`TAIL_SAMPLES` samples above it on each side (500 for p99), else it is inconclusive.

Host load: when the two sides ran under very different host load
(:func:`chaosml.hostload.host_load_differs`: load average per core more than 2x AND more than 0.5
apart), every latency row judged improved or regressed (verdict rows on a latency SLI too, flips
included) becomes ``unreliable`` with the reason "unreliable (host load)" and keeps what it was
judged in ``judged``: it is not a regression unless ``chaosml compare --count-unreliable`` says so.

A metric row is ``not comparable`` when the value is undefined on a side (e.g. no predictions),
``inconclusive`` when a side has fewer than ``min_samples`` requests (``min_injections`` for
per-injection values), ``improved``/``regressed`` only when the confidence interval of the
difference excludes 0 AND the difference exceeds the practical threshold
``max(abs, rel * |baseline|)`` for that metric, and ``unchanged`` otherwise.

Better direction per metric: higher success_ratio, accuracy, throughput_rps; lower errors,
latencies, MTTR/TTD/ready and confident-wrong. The serving-path mix (fallback_ratio and the like)
has no better direction of its own: more fallback is the resilience pattern working in one release
(the hardened stack routes low-confidence inputs to its fallback on purpose) and a degradation in
another, so a significant change is reported as ``changed``, never as a regression; what the mix
costs shows in accuracy and confident-wrong rows, and a hypothesis on fallback_ratio (whose
operator gives the direction) is judged like any verdict.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from chaosml.analysis.mttr import aggregate_values
from chaosml.analysis.slis import OK, OUTCOME_RATIOS, outcome_hits
from chaosml.compare.bootstrap import (
    Interval,
    QuantileData,
    RatioData,
    injection_interval,
    quantile_interval,
    ratio_interval,
)
from chaosml.compare.runs import RunData, load_run
from chaosml.errors import InvalidInputError
from chaosml.hostload import HostLoad, host_load_differs
from chaosml.model.catalog import INJECTION_SLIS, MONITORING_SLIS, OPERATORS, SAMPLE_SLIS, is_prom_sli

COMPARE_SCHEMA = "chaosml.compare/1"

VERDICTS: tuple[str, ...] = ("regressed", "improved", "changed", "unchanged", "unreliable", "inconclusive", "not comparable")
#: Metrics whose deltas a very different host load makes unreliable (chaosml.hostload.host_load_differs).
HOST_SENSITIVE_PREFIX = "latency_"

#: SLIs compared in every phase x cohort.
KEY_SLIS: tuple[str, ...] = (
    "success_ratio",
    "error_ratio",
    "fallback_ratio",
    "accuracy",
    "confident_wrong_ratio",
    "latency_p50_ms",
    "latency_p99_ms",
)
#: Per-injection values compared per fault.
FAULT_METRICS: tuple[str, ...] = ("mttr_s", "ttd_s", "ready_s")

HIGHER_IS_BETTER: frozenset[str] = frozenset({"success_ratio", "accuracy", "primary_ratio", "throughput_rps"})
#: Metrics with no better direction of their own: a significant change is "changed", never a regression.
#: ttd_s is what users or the stack observed: users seeing errors sooner, or a stack that lets nothing
#: show, is not better or worse by itself.
NEUTRAL: frozenset[str] = frozenset({"fallback_ratio", "primary_ratio", "default_ratio", "ttd_s"})

#: Phases never compared: "between" is the steady gaps between faults, "all" an aggregate of the others.
SKIPPED_PHASES: frozenset[str] = frozenset({"between", "all"})

_QUANTILES = {"latency_p50_ms": 0.50, "latency_p95_ms": 0.95, "latency_p99_ms": 0.99}
#: A percentile needs this many samples above it on each side (p99: 500 samples) before it is judged:
#: the bootstrap of an extreme percentile from a few tail samples is far too sure of itself.
TAIL_SAMPLES = 5
_MISSING_WORD = {"mttr_s": "not recovered", "ttd_s": "nothing observable", "ready_s": "replicas not ready again"}


def default_min_change() -> dict[str, tuple[float, float]]:
    """Practical thresholds per metric: (absolute, relative to |baseline|); the larger one applies."""
    out: dict[str, tuple[float, float]] = {}
    for sli in SAMPLE_SLIS:
        if sli.startswith("latency_"):
            out[sli] = (10.0, 0.20)  # ms
        elif sli == "throughput_rps":
            out[sli] = (0.0, 0.10)
        else:
            out[sli] = (0.01, 0.0)  # one percentage point
    for sli in INJECTION_SLIS:
        out[sli] = (0.5, 0.20)  # s
    return out


@dataclass(frozen=True)
class Settings:
    """How noise is judged; every field has a command-line option."""

    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    min_samples: int = 20
    min_injections: int = 2
    min_change: Mapping[str, tuple[float, float]] = field(default_factory=default_min_change)

    def threshold(self, metric: str, base: float) -> float:
        a, r = self.min_change.get(metric, (0.0, 0.0))
        return max(a, r * abs(base))


@dataclass
class Side:
    """The runs of one side (baseline or candidate), pooled."""

    label: str
    runs: list[RunData]

    @property
    def release(self) -> str:
        return ", ".join(dict.fromkeys(r.experiment.release for r in self.runs))

    def cohorts(self) -> list[str]:
        out: list[str] = []
        for r in self.runs:
            out += [c for c in r.analysis.cohorts if c not in out]
        return out

    def phases(self) -> list[str]:
        out: list[str] = []
        for r in self.runs:
            out += [p.phase.name for p in r.analysis.phases if p.phase.name not in out]
        return out

    def host_load(self) -> HostLoad | None:
        """The busiest host load (load average per core) among the side's runs; None when a run did not record it."""
        loads = [HostLoad.from_dict(r.journal.get("host_load")) for r in self.runs]
        known = [h for h in loads if h is not None]
        if not known or len(known) < len(loads):
            return None
        return max(known, key=lambda h: h.load_per_core)

    def faults(self) -> list[str]:
        out: list[str] = []
        for r in self.runs:
            out += [f["fault"] for f in r.analysis.faults if f["fault"] not in out]
        return out

    # -- pooled sample data ------------------------------------------------------------

    def _select(self, run: RunData, phase: str, cohort: str | None) -> np.ndarray | None:
        p = run.analysis.phase(phase)
        if p is None:
            return None
        mask = run.arrays.in_phase(p.phase)
        cm = run.arrays.cohort_mask(cohort)
        return mask if cm is None else mask & cm

    def sample_data(self, sli: str, phase: str, cohort: str | None) -> RatioData | QuantileData | None:
        """Pooled per-sample data of a sample SLI over a phase and cohort; None if no run has that phase."""
        hits: list[np.ndarray] = []
        blocks: list[np.ndarray] = []
        found = False
        for k, run in enumerate(self.runs):
            mask = self._select(run, phase, cohort)
            if mask is None:
                continue
            found = True
            a = run.arrays
            outcome, served, quality = a.decode()
            ok = outcome == OK
            if sli in _QUANTILES or sli == "latency_mean_ms":
                den = mask & ~np.isnan(a.latency)
                num = a.latency
            elif sli in OUTCOME_RATIOS:
                den = mask
                num = outcome_hits(outcome)[sli]
            elif sli in ("primary_ratio", "fallback_ratio", "default_ratio"):
                den = mask & ok
                num = {"primary_ratio": served == 0, "fallback_ratio": served != 0, "default_ratio": served == 2}[sli]
            elif sli in ("accuracy", "confident_wrong_ratio"):
                den = mask & ok & (quality >= 1)
                num = quality == 1 if sli == "accuracy" else quality == 3
            else:
                return None
            hits.append(np.asarray(num, dtype=np.float64)[den])
            blocks.append(run.blocks[den] + k * 10_000_000)
        if not found:
            return None
        h = np.concatenate(hits) if hits else np.zeros(0)
        b = np.concatenate(blocks) if blocks else np.zeros(0, np.int64)
        if sli in _QUANTILES:
            return QuantileData(h, b, _QUANTILES[sli])
        return RatioData(h, b)

    def injection_values(self, fault: str | None, metric: str) -> list[float | None]:
        """The metric of every injection of ``fault`` (None = every fault), pooled; None = undefined."""
        out: list[float | None] = []
        for run in self.runs:
            for r in run.analysis.injections:
                if fault is not None and r.fault != fault:
                    continue
                if metric == "ready_s" and not r.targets:
                    continue
                out.append(getattr(r, metric))
        return out


# ------------------------------------------------------------------------------------ rows


@dataclass
class Row:
    """One compared quantity."""

    section: str  # verdict | fault | sli
    scope: str  # "phase baseline, cohort clean", "fault kill", ...
    metric: str
    name: str  # verdict name, fault name, or the metric
    baseline: float | None
    candidate: float | None
    n_baseline: int
    n_candidate: int
    verdict: str
    reason: str
    better: str  # higher | lower
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_unit: str | None = None
    threshold: float | None = None
    baseline_verdict: str | None = None  # verdict rows: pass | fail | inconclusive
    candidate_verdict: str | None = None
    flip: bool = False  # a pass <-> fail verdict flip
    phase: str | None = None
    cohort: str | None = None
    fault: str | None = None
    judged: str | None = None  # an "unreliable" row: what it was judged before the host load made it unreliable

    @property
    def key(self) -> str:
        return f"{self.section}:{self.name}:{self.metric}:{self.scope}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"key": self.key}


def better_direction(metric: str, op: str | None = None) -> str:
    """'higher' or 'lower': from a verdict's operator when given (>=, > mean higher is better), else the metric."""
    if op in (">=", ">"):
        return "higher"
    if op in ("<=", "<"):
        return "lower"
    if metric in NEUTRAL:
        return "neutral"
    return "higher" if metric in HIGHER_IS_BETTER else "lower"


def _seed(settings: Settings, key: str) -> int:
    return (settings.seed * 1_000_003 + zlib.crc32(key.encode())) % (2**32)


def judge_values(
    row: Row,
    settings: Settings,
    min_n: int,
    interval: Interval | None,
) -> Row:
    """Fill delta, interval, threshold, verdict and reason of a metric row whose values and counts are set."""
    b, c = row.baseline, row.candidate
    if b is None or c is None:
        side = "baseline" if b is None else "candidate"
        if b is None and c is None:
            side = "either side"
        row.verdict, row.reason = "not comparable", f"undefined on {side}"
        return row
    row.delta = c - b
    row.threshold = settings.threshold(row.metric, b)
    if interval is not None:
        row.ci_low, row.ci_high, row.ci_unit = interval.low, interval.high, interval.unit
    if row.n_baseline < min_n or row.n_candidate < min_n:
        row.verdict = "inconclusive"
        row.reason = f"too little data: n={row.n_baseline} vs {row.n_candidate} (< {min_n})"
        return row
    if interval is None:
        row.verdict, row.reason = "inconclusive", "no bootstrap interval"
        return row
    if not interval.excludes_zero():
        row.verdict, row.reason = "unchanged", "the interval of the difference includes 0 (noise)"
        return row
    if (interval.low > 0) != (row.delta > 0):
        row.verdict, row.reason = "inconclusive", "the difference lies outside its own interval"
        return row
    if abs(row.delta) <= row.threshold:
        row.verdict, row.reason = "unchanged", f"|delta| <= practical threshold {row.threshold:.4g}"
        return row
    if row.better == "neutral":
        row.verdict = "changed"
        row.reason = f"interval excludes 0 and |delta| > {row.threshold:.4g} (no better direction: see the verdict rows)"
        return row
    good = row.delta > 0 if row.better == "higher" else row.delta < 0
    row.verdict = "improved" if good else "regressed"
    row.reason = f"interval excludes 0 and |delta| > {row.threshold:.4g} ({row.better} is better)"
    return row


def sample_row(
    section: str, name: str, metric: str, phase: str, cohort: str | None, base: Side, cand: Side, settings: Settings, better: str
) -> Row:
    scope = f"phase {phase}" + (f", cohort {cohort}" if cohort else "")
    bd = base.sample_data(metric, phase, cohort)
    cd = cand.sample_data(metric, phase, cohort)
    row = Row(section, scope, metric, name, None, None, 0, 0, "not comparable", "", better, phase=phase, cohort=cohort)
    if bd is None or cd is None:
        row.reason = f"phase {phase} only on the {'candidate' if bd is None else 'baseline'} side"
        return row
    row.baseline, row.candidate, row.n_baseline, row.n_candidate = bd.value(), cd.value(), bd.n, cd.n
    min_n = settings.min_samples
    if isinstance(bd, QuantileData):
        min_n = max(min_n, math.ceil(TAIL_SAMPLES / (1.0 - bd.q) - 1e-9))
    interval = None
    if bd.n and cd.n:
        kw = {"seed": _seed(settings, row.key), "resamples": settings.resamples, "confidence": settings.confidence}
        if isinstance(bd, QuantileData) and isinstance(cd, QuantileData):
            interval = quantile_interval(bd, cd, **kw)  # type: ignore[arg-type]
        elif isinstance(bd, RatioData) and isinstance(cd, RatioData):
            interval = ratio_interval(bd, cd, **kw)  # type: ignore[arg-type]
    return judge_values(row, settings, min_n, interval)


def injection_row(
    section: str, name: str, metric: str, fault: str | None, agg: str, base: Side, cand: Side, settings: Settings, better: str
) -> Row:
    scope = f"fault {fault}" if fault else "every injection"
    bv, cv = base.injection_values(fault, metric), cand.injection_values(fault, metric)
    row = Row(section, scope, metric, name, None, None, len(bv), len(cv), "not comparable", "", better, fault=fault)
    if not bv or not cv:
        row.reason = "no injection on the " + ("baseline" if not bv else "candidate") + " side"
        return row
    bm, cm = sum(v is None for v in bv), sum(v is None for v in cv)
    bdef = np.array([v for v in bv if v is not None], dtype=np.float64)
    cdef = np.array([v for v in cv if v is not None], dtype=np.float64)
    row.baseline = aggregate_values(bdef.tolist(), agg) if len(bdef) else None
    row.candidate = aggregate_values(cdef.tolist(), agg) if len(cdef) else None
    word = _MISSING_WORD[metric]
    if bm / len(bv) != cm / len(cv):
        worse = cm / len(cv) > bm / len(bv)
        row.verdict = "changed" if metric in NEUTRAL else "regressed" if worse else "improved"
        row.reason = f"{word} in {cm} of {len(cv)} injections (baseline {bm} of {len(bv)})"
        if row.baseline is not None and row.candidate is not None:
            row.delta = row.candidate - row.baseline
        return row
    note = f"; {word} in {bm} of {len(bv)} on both sides" if bm else ""
    row.n_baseline, row.n_candidate = len(bdef), len(cdef)
    interval = None
    if len(bdef) and len(cdef):
        interval = injection_interval(
            bdef, cdef, agg, seed=_seed(settings, row.key), resamples=settings.resamples, confidence=settings.confidence
        )
    judge_values(row, settings, settings.min_injections, interval)
    row.reason += note
    return row


@dataclass(frozen=True)
class _VerdictDef:
    kind: str
    name: str
    scope: str
    sli: str
    op: str
    target: float
    phase: str | None
    cohort: str | None
    fault: str | None
    agg: str
    min_samples: int


def _verdict_defs(run: RunData) -> dict[tuple[str, str, str], _VerdictDef]:
    exp = run.experiment
    hyps = {h.name: h for h in exp.hypotheses}
    out = {}
    for v in run.analysis.verdicts:
        h = hyps.get(v.name) if v.kind == "hypothesis" else None
        agg = h.agg if h is not None else "max"
        ms = h.min_samples if h is not None and h.min_samples is not None else exp.steady_state.min_samples
        if v.sli in INJECTION_SLIS:
            ms = h.min_samples if h is not None and h.min_samples is not None else 1
        out[(v.kind, v.name, v.scope)] = _VerdictDef(v.kind, v.name, v.scope, v.sli, v.op, v.target, v.phase, v.cohort, v.fault, agg, ms)
    return out


def side_verdict(side: Side, d: _VerdictDef) -> tuple[str, float | None, int]:
    """(verdict, measured, n) of one objective over a side: the run's own verdict, or re-judged on pooled data."""
    if len(side.runs) == 1:
        for v in side.runs[0].analysis.verdicts:
            if (v.kind, v.name, v.scope) == (d.kind, d.name, d.scope):
                return v.verdict, v.measured, v.samples
        return "inconclusive", None, 0
    if is_prom_sli(d.sli) or d.sli in MONITORING_SLIS:  # no pooled data: the runs' own verdicts, the worst of them
        own = [v for r in side.runs for v in r.analysis.verdicts if (v.kind, v.name, v.scope) == (d.kind, d.name, d.scope)]
        verdict = next((k for k in ("fail", "inconclusive") if any(v.verdict == k for v in own)), "pass" if own else "inconclusive")
        return verdict, None, sum(v.samples for v in own)
    if d.sli in INJECTION_SLIS:
        vals = side.injection_values(d.fault, d.sli)
        if not vals:
            return "inconclusive", None, 0
        if any(v is None for v in vals):
            return "fail", None, len(vals)
        measured = aggregate_values([float(v) for v in vals if v is not None], d.agg)
        n = len(vals)
    else:
        data = side.sample_data(d.sli, d.phase or "fault", d.cohort)
        if data is None or data.value() is None:
            return "inconclusive", None, 0 if data is None else data.n
        value = data.value()
        assert value is not None
        measured, n = value, data.n
    if n < d.min_samples:
        return "inconclusive", measured, n
    return ("pass" if OPERATORS[d.op](measured, d.target) else "fail"), measured, n


def verdict_row(d: _VerdictDef, base: Side, cand: Side, settings: Settings) -> Row:
    bv, bm, bn = side_verdict(base, d)
    cv, cm, cn = side_verdict(cand, d)
    better = better_direction(d.sli, d.op)
    metric_row: Row | None = None
    if d.sli in INJECTION_SLIS:
        metric_row = injection_row("verdict", d.name, d.sli, d.fault, d.agg, base, cand, settings, better)
    elif d.sli in SAMPLE_SLIS and d.sli != "throughput_rps":
        metric_row = sample_row("verdict", d.name, d.sli, d.phase or "fault", d.cohort, base, cand, settings, better)
    row = Row("verdict", d.scope, d.sli, d.name, bm, cm, bn, cn, "unchanged", "", better, baseline_verdict=bv, candidate_verdict=cv)
    row.phase, row.cohort, row.fault = d.phase, d.cohort, d.fault
    if bm is not None and cm is not None:
        row.delta = cm - bm
    if metric_row is not None:
        row.ci_low, row.ci_high, row.ci_unit, row.threshold = metric_row.ci_low, metric_row.ci_high, metric_row.ci_unit, metric_row.threshold
    target = f"{d.op} {d.target:g}"
    if bv == "pass" and cv == "fail":
        row.verdict, row.flip, row.reason = "regressed", True, f"verdict flipped pass -> fail ({target})"
    elif bv == "fail" and cv == "pass":
        row.verdict, row.flip, row.reason = "improved", True, f"verdict flipped fail -> pass ({target})"
    elif "inconclusive" in (bv, cv):
        row.verdict, row.reason = "inconclusive", f"verdict {bv} -> {cv}"
    elif metric_row is None:
        row.verdict, row.reason = "unchanged", f"verdict {bv} on both sides"
    else:
        row.verdict, row.reason = metric_row.verdict, f"verdict {bv} on both sides; {d.sli}: {metric_row.reason}"
    return row


# ------------------------------------------------------------------------------------ compare


@dataclass
class Comparison:
    baseline: Side
    candidate: Side
    settings: Settings
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "regressed"]

    def section(self, name: str) -> list[Row]:
        return [r for r in self.rows if r.section == name]

    def to_dict(self) -> dict[str, Any]:
        def side(s: Side) -> dict[str, Any]:
            return {
                "label": s.label,
                "release": s.release,
                "runs": [
                    {
                        "run_id": r.run_id,
                        "run_dir": str(r.run_dir),
                        "title": r.experiment.title,
                        "release": r.experiment.release,
                        "status": r.analysis.status,
                        "passed": r.analysis.passed,
                    }
                    for r in s.runs
                ],
            }

        st = self.settings
        return _json_safe(
            {
                "schema": COMPARE_SCHEMA,
                "baseline": side(self.baseline),
                "candidate": side(self.candidate),
                "settings": {
                    "resamples": st.resamples,
                    "confidence": st.confidence,
                    "seed": st.seed,
                    "min_samples": st.min_samples,
                    "min_injections": st.min_injections,
                    "min_change": {k: {"abs": a, "rel": r} for k, (a, r) in st.min_change.items()},
                },
                "counts": self.counts(),
                "rows": [r.to_dict() for r in self.rows],
                "notes": list(self.notes),
            }
        )


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def compare_sides(base: Side, cand: Side, settings: Settings | None = None) -> Comparison:
    """Every row present on both sides (verdicts and faults present on one side only: not comparable)."""
    settings = settings or Settings()
    rows: list[Row] = []
    notes: list[str] = []
    titles = {r.experiment.title for r in base.runs + cand.runs}
    if len(titles) > 1:
        notes.append("the runs come from experiments with different titles: " + "; ".join(sorted(titles)))
    # verdicts
    bdefs: dict[tuple[str, str, str], _VerdictDef] = {}
    for r in base.runs:
        bdefs.update({k: v for k, v in _verdict_defs(r).items() if k not in bdefs})
    cdefs: dict[tuple[str, str, str], _VerdictDef] = {}
    for r in cand.runs:
        cdefs.update({k: v for k, v in _verdict_defs(r).items() if k not in cdefs})
    for key, d in bdefs.items():
        if key in cdefs:
            rows.append(verdict_row(d, base, cand, settings))
        else:
            rows.append(_one_sided("verdict", d.name, d.sli, d.scope, "baseline"))
    for key, d in cdefs.items():
        if key not in bdefs:
            rows.append(_one_sided("verdict", d.name, d.sli, d.scope, "candidate"))
    # faults
    bf, cf = base.faults(), cand.faults()
    for f in bf + [f for f in cf if f not in bf]:
        for m in FAULT_METRICS:
            if f in bf and f in cf:
                row = injection_row("fault", f, m, f, "mean", base, cand, settings, better_direction(m))
                if not (m == "ready_s" and row.n_baseline == 0 and row.n_candidate == 0):
                    rows.append(row)
            elif m == "mttr_s":
                rows.append(_one_sided("fault", f, m, f"fault {f}", "baseline" if f in bf else "candidate"))
    # SLIs per phase x cohort
    cphases = set(cand.phases())
    phases = [p for p in base.phases() if p in cphases and p not in SKIPPED_PHASES]
    order = {"baseline": 0, "fault": 2, "recovery": 3, "after": 4}
    phases.sort(key=lambda p: order.get(p, 1))  # baseline, each fault, fault, recovery, after
    if len(set(bf) | set(cf)) == 1 and "fault" in phases:
        phases.remove("fault")  # the same windows as the one fault's own phase
    ccohorts = set(cand.cohorts())
    cohorts: list[str | None] = [None] + [c for c in base.cohorts() if c in ccohorts]
    skipped = 0
    for phase in phases:
        for cohort in cohorts:
            for m in KEY_SLIS:
                row = sample_row("sli", m, m, phase, cohort, base, cand, settings, better_direction(m))
                if row.baseline is None and row.candidate is None:
                    skipped += 1  # e.g. an empty recovery phase, or accuracy of a cohort that got no answer
                    continue
                rows.append(row)
    if skipped:
        notes.append(f"{skipped} phase x cohort SLIs undefined on both sides (no requests or no answers) were left out")
    why = host_load_differs(base.host_load(), cand.host_load())
    if why:
        marked = mark_host_load(rows, why)
        notes.append(f"very different host load: {why}; {marked} latency row(s) marked unreliable (host load), "
                     "not counted as regressions (--count-unreliable counts them)")
    return Comparison(base, cand, settings, rows, notes)


def mark_host_load(rows: Sequence[Row], why: str) -> int:
    """Latency rows judged improved/regressed become ``unreliable`` (host load); returns how many."""
    n = 0
    for r in rows:
        if r.metric.startswith(HOST_SENSITIVE_PREFIX) and r.verdict in ("regressed", "improved"):
            r.judged, r.verdict = r.verdict, "unreliable"
            r.reason = f"unreliable (host load): {why}; judged {r.judged}: {r.reason}"
            n += 1
    return n


def _one_sided(section: str, name: str, metric: str, scope: str, where: str) -> Row:
    return Row(section, scope, metric, name, None, None, 0, 0, "not comparable", f"only on the {where} side", better_direction(metric))


def compare_runs(
    baseline: Sequence[str | Path], candidate: Sequence[str | Path], settings: Settings | None = None
) -> Comparison:
    """Load and re-analyse every run, then compare the pooled sides."""
    if not baseline or not candidate:
        raise InvalidInputError("compare needs at least one baseline run and one candidate run")
    base = Side("baseline", [load_run(p) for p in baseline])
    cand = Side("candidate", [load_run(p) for p in candidate])
    return compare_sides(base, cand, settings)


# ------------------------------------------------------------------------------------ policy
