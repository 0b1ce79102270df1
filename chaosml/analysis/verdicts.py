"""SLO and hypothesis verdicts (pass / fail / inconclusive) with measured values; used by analyze.

- Each SLO is judged in each of its phases (a phase name or a fault's name), over its cohort.
- A hypothesis on a sample SLI is judged over ``during`` (a phase or a fault's name; default: the
  hypothesis' ``fault``, else the "fault" phase), over its cohort.
- A hypothesis on an injection SLI (ttd_s, mttr_s, ready_s) is judged over the injections of its
  ``fault`` (or of ``during`` when that names a fault; default: every injection), aggregated by
  ``agg``. An injection that did not recover / was not detected / whose replicas did not come
  back has no number (measured None). For mttr_s and ttd_s it has a least value, what its search
  proved (``mttr_min_s``, ``ttd_min_s``): the aggregate with those in their place is the least
  the aggregate can be, and the verdict is fail (or pass) only when every value from there up
  fails (passes) the hypothesis; otherwise it is inconclusive: the search, ended by the next
  fault's apply or the load end, was too short to tell (e.g. ``mttr_s <= 15`` on a kill whose next
  fault came 11 s later). ready_s has no such bound: a replica not ready again fails, unless the
  run was interrupted before that could be observed (``cut_short``: the injection's search window
  was ended by the end of a run that did not complete): then it is inconclusive, as is any
  undecided one.
- A verdict scoped to a fault some injection of which took no effect (its apply event's
  ``no_effect``: it selected, changed or stopped nothing) is inconclusive with that reason, as is
  one over the "fault" phase or every injection while any fault took no effect: nothing was tested.
- ``samples`` is the count the SLI is computed over (requests, 2xx answers, predictions or
  latencies; injections for injection SLIs). Fewer than ``min_samples`` (the hypothesis' own,
  else steady_state.min_samples; injection SLIs only use the hypothesis' own, default 1) is
  inconclusive, and so is an SLI that is undefined (an empty denominator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

from chaosml.analysis.mttr import InjectionResult, aggregate_values
from chaosml.analysis.phases import Phase
from chaosml.analysis.slis import SLI_DENOMINATOR, SampleArrays, slis_of
from chaosml.model.catalog import INJECTION_SLIS, MONITORING_SLIS, OPERATORS, SAMPLE_SLIS, is_prom_sli
from chaosml.model.experiment import Experiment, Hypothesis, Slo

VERDICTS: tuple[str, ...] = ("pass", "fail", "inconclusive")

_COUNT_LABEL = {"requests": "requests", "answers": "2xx answers", "predictions": "predictions", "latencies": "latencies"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One judged objective."""

    name: str
    kind: str  # slo | hypothesis
    sli: str
    op: str
    target: float
    measured: float | None
    samples: int  # requests/answers/predictions, or injections
    verdict: str  # pass | fail | inconclusive
    scope: str  # e.g. "phase baseline", "fault fs-outage, cohort clean"
    detail: str
    phase: str | None = None
    fault: str | None = None
    cohort: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _scope(phase: str | None, cohort: str | None, phases: Mapping[str, Phase], fault: str | None = None) -> str:
    parts = []
    if fault is not None:
        parts.append(f"fault {fault}")
    elif phase is not None:
        kind = phases[phase].kind if phase in phases else "phase"
        parts.append(f"{'fault' if kind == 'fault' else 'phase'} {phase}")
    if cohort is not None:
        parts.append(f"cohort {cohort}")
    return ", ".join(parts) or "all"


def judge(measured: float, op: str, target: float) -> str:
    return "pass" if bool(OPERATORS[op](measured, target)) else "fail"


def sample_verdict(
    *,
    name: str,
    kind: str,
    sli: str,
    op: str,
    target: float,
    phase_name: str,
    cohort: str | None,
    min_samples: int,
    a: SampleArrays,
    phases: Mapping[str, Phase],
    fault_names: Sequence[str] = (),
) -> Verdict:
    """Judge a sample SLI over one phase (or fault) and cohort."""
    scope = _scope(phase_name, cohort, phases)
    is_fault = phase_name in fault_names or (phase_name in phases and phases[phase_name].kind == "fault")
    make = partial(
        Verdict,
        name=name,
        kind=kind,
        sli=sli,
        op=op,
        target=float(target),
        scope=scope,
        phase=phase_name,
        fault=phase_name if is_fault else None,
        cohort=cohort,
    )
    phase = phases.get(phase_name)
    if phase is None:
        why = f"fault {phase_name} was never applied" if phase_name in fault_names else f"no phase or fault named {phase_name}"
        return make(measured=None, samples=0, verdict="inconclusive", detail=why)
    if sli not in SAMPLE_SLIS:
        return make(measured=None, samples=0, verdict="inconclusive", detail=f"{sli} is not a sample SLI")
    mask = a.in_phase(phase)
    cm = a.cohort_mask(cohort)
    if cm is not None:
        mask &= cm
    values = slis_of(a, mask, phase.duration)
    count_name = SLI_DENOMINATOR[sli]
    n = int(values[count_name] or 0)
    measured = values[sli]
    label = _COUNT_LABEL[count_name]
    requests = int(values["requests"] or 0)
    counted = f"{n} {label}" + (f" of {requests} requests" if count_name != "requests" else "")
    if measured is None:
        return make(measured=None, samples=n, verdict="inconclusive", detail=f"undefined: {counted}")
    if n < min_samples:
        detail = f"{counted} < min_samples {min_samples}"
        return make(measured=measured, samples=n, verdict="inconclusive", detail=detail)
    return make(measured=measured, samples=n, verdict=judge(measured, op, target), detail=counted)


def slo_verdicts(experiment: Experiment, a: SampleArrays, phases: Mapping[str, Phase]) -> list[Verdict]:
    """Every SLO in every one of its phases."""
    steady = experiment.steady_state
    names = [f.name for f in experiment.faults]
    out = []
    for slo in steady.slos:
        if is_prom_sli(slo.sli):  # judged from Prometheus' points (chaosml.analysis.monitoring)
            continue
        for phase in slo.phases:
            out.append(_slo_verdict(slo, phase, steady.min_samples, a, phases, names))
    return out


def _slo_verdict(slo: Slo, phase: str, min_samples: int, a: SampleArrays, phases: Mapping[str, Phase], names: Sequence[str]) -> Verdict:
    return sample_verdict(
        name=slo.name,
        kind="slo",
        sli=slo.sli,
        op=slo.op,
        target=slo.target,
        phase_name=phase,
        cohort=slo.cohort,
        min_samples=min_samples,
        a=a,
        phases=phases,
        fault_names=names,
    )


def hypothesis_verdicts(
    experiment: Experiment,
    a: SampleArrays,
    phases: Mapping[str, Phase],
    results: Sequence[InjectionResult],
    cut_short: Mapping[tuple[str, int], str] | None = None,
) -> list[Verdict]:
    """Every hypothesis, judged once; ``cut_short`` as in :func:`injection_verdict`."""
    names = [f.name for f in experiment.faults]
    out = []
    for h in experiment.hypotheses:
        if is_prom_sli(h.sli) or h.sli in MONITORING_SLIS:  # chaosml.analysis.monitoring
            continue
        if h.sli in INJECTION_SLIS:
            out.append(injection_verdict(h, results, names, cut_short))
        else:
            min_samples = h.min_samples if h.min_samples is not None else experiment.steady_state.min_samples
            out.append(
                sample_verdict(
                    name=h.name,
                    kind="hypothesis",
                    sli=h.sli,
                    op=h.op,
                    target=h.target,
                    phase_name=h.during or h.fault or "fault",
                    cohort=h.cohort,
                    min_samples=min_samples,
                    a=a,
                    phases=phases,
                    fault_names=names,
                )
            )
    return out


_MISSING = {
    "mttr_s": "not recovered",
    "ttd_s": "nothing observable",
    "ready_s": "replicas not ready again",
}


def injection_verdict(
    h: Hypothesis,
    results: Sequence[InjectionResult],
    fault_names: Sequence[str] = (),
    cut_short: Mapping[tuple[str, int], str] | None = None,
) -> Verdict:
    """Judge an injection SLI over a fault's injections, aggregated by ``h.agg``.

    ``cut_short`` maps (fault, injection) to why its observation ended early (the run was
    interrupted): a value missing only for such injections is inconclusive, not a failure.
    """
    fault = h.fault or (h.during if h.during in fault_names or any(r.fault == h.during for r in results) else None)
    rs = [r for r in results if fault is None or r.fault == fault]
    scope = f"fault {fault}" if fault else "every injection"
    make = partial(Verdict, name=h.name, kind="hypothesis", sli=h.sli, op=h.op, target=float(h.target), scope=scope, fault=fault)
    if h.sli == "ready_s":
        rs = [r for r in rs if r.targets]
    min_n = h.min_samples if h.min_samples is not None else 1
    if not rs:
        why = "no injection named any replica" if h.sli == "ready_s" else "no injection was applied"
        return make(measured=None, samples=0, verdict="inconclusive", detail=why)
    values = [getattr(r, h.sli) for r in rs]
    n = len(rs)
    missing = sum(v is None for v in values)
    if missing:
        detail = f"{_MISSING[h.sli]} in {missing} of {n} injections"
        least = _least_values(h.sli, rs)
        if least is not None:
            low = aggregate_values(least, h.agg)
            detail += f" ({h.agg} at least {low:.3g} s: {_searched(h.sli, rs)})"
            decided = decided_from_least(low, h.op, float(h.target))
            if decided is not None:
                return make(measured=None, samples=n, verdict=decided, detail=detail)
        cut = [(cut_short or {}).get((r.fault, r.injection)) for r, v in zip(rs, values, strict=True) if v is None]
        if all(cut):
            return make(measured=None, samples=n, verdict="inconclusive", detail=f"{detail}: {cut[0]}")
        if least is not None:
            return make(measured=None, samples=n, verdict="inconclusive",
                        detail=f"{detail}; too short a search to judge {h.sli} {h.op} {h.target:g}")
        return make(measured=None, samples=n, verdict="fail", detail=detail)
    measured = aggregate_values([float(v) for v in values], h.agg)
    shown = ", ".join(f"{v:.3g}" for v in values[:10]) + (", ..." if n > 10 else "")
    detail = f"{h.agg} over {n} injections [{shown}]"
    if h.cohort is not None:
        detail += f"; cohort {h.cohort} ignored for an injection SLI"
    if n < min_n:
        return make(measured=measured, samples=n, verdict="inconclusive", detail=f"{detail}; {n} < min_samples {min_n}")
    return make(measured=measured, samples=n, verdict=judge(measured, h.op, h.target), detail=detail)


def _least_values(sli: str, rs: Sequence[InjectionResult]) -> list[float] | None:
    """Each injection's value, or for a missing one the least it can be; None when the SLI has no such bound."""
    bound = {"mttr_s": "mttr_min_s", "ttd_s": "ttd_min_s"}.get(sli)
    if bound is None:
        return None
    out = []
    for r in rs:
        v = getattr(r, sli)
        least = getattr(r, bound) if v is None else v
        if least is None:
            return None
        out.append(float(least))
    return out


def _searched(sli: str, rs: Sequence[InjectionResult]) -> str:
    """How long the injections without a value were searched, for the verdict's detail."""
    spans = [f"{r.fault}#{r.injection} searched {r.windows_searched} windows" if sli == "mttr_s"
             else f"{r.fault}#{r.injection} searched {r.ttd_min_s:.3g} s" for r in rs if getattr(r, sli) is None]
    return ", ".join(spans[:5]) + (", ..." if len(spans) > 5 else "")


def decided_from_least(low: float, op: str, target: float) -> str | None:
    """The verdict on a value known only to be >= ``low`` (unbounded above): pass when every such value
    passes, fail when every one fails, None when the bound cannot tell."""
    if op in ("<=", "<", "=="):
        return "fail" if not OPERATORS[op](low, target) and (op != "==" or low > target) else None
    return "pass" if OPERATORS[op](low, target) else None


def without_effect(verdicts: Sequence[Verdict], no_effect: Mapping[str, str]) -> list[Verdict]:
    """``verdicts`` with each one scoped to a fault of ``no_effect`` (fault name -> why) made inconclusive, saying why."""
    out = []
    for v in verdicts:
        if v.fault is not None:
            hit = [v.fault] if v.fault in no_effect else []
        elif v.phase == "fault" or (v.phase is None and v.sli in INJECTION_SLIS):
            hit = list(no_effect)  # the fault phase, or every injection: every fault is in scope
        else:
            hit = []
        if hit:
            why = "; ".join(f"fault {f} had no effect: {no_effect[f]}" for f in hit)
            v = replace(v, verdict="inconclusive", detail=f"{why}; measured: {v.detail}")
        out.append(v)
    return out


def passed(verdicts: Sequence[Verdict]) -> bool:
    """True when every verdict passed (inconclusive is not a pass); vacuously true without verdicts."""
    return all(v.verdict == "pass" for v in verdicts)


def counts(verdicts: Sequence[Verdict]) -> dict[str, int]:
    return {k: sum(v.verdict == k for v in verdicts) for k in VERDICTS}
