"""Run a game-day: each experiment in order with the Runner, then one report dir with a resilience score; called by ``chaosml gameday run``.

``reports/gameday-<ts>-<name>/`` holds one run directory per experiment (each with its own
report) and ``gameday.json``, ``gameday.md``, ``gameday.html``, ``junit.xml``.

Resilience score (written into every game-day report)::

    score = 100 * sum_v(w_v * passed_v) / sum_v(w_v)
    w_v   = weight(experiment) * severity(fault of v) * cohort_weight(cohort of v)

over every verdict v (hypotheses and SLOs in each of their phases) of every experiment;
passed_v is 1 for pass and 0 for fail or inconclusive (not proven is not resilient). severity is
low 1, medium 2, high 3, critical 5, from the game-day file or the fault type's default; a verdict
not tied to one fault (an SLO in the baseline or after phase) takes the experiment's highest fault
severity. cohort_weight comes from ``cohort_weights`` (default 1; a verdict over all cohorts has
weight 1). A file cohort (``load.data.cohort``: a name that is not built in) not listed in
``cohort_weights`` takes the weight of ``clean`` (its rows are the file's clean rows), else 1.
An experiment that was not run (stopped after a failure, or the target never started)
counts with every objective it declares as failed.

Litmus's score, shown beside it for reference, is ``sum_e(weight_e * passed_e / total_e) /
sum_e(weight_e)``: every experiment counts the same however many hypotheses it judges, so a
failed hypothesis on a critical fault weighs no more than a passed one on a harmless fault, and a
verdict on a rare cohort is diluted by the aggregate ones. Weighting each verdict by its fault's
severity and its cohort fixes both.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from chaosml.errors import (
    EXIT_ABORTED,
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    RecoveryError,
    TargetError,
)
from chaosml.gameday.model import SEVERITIES, GameDay, GameDayExperiment
from chaosml.gameday.result import ExperimentOutcome, GameDayResult
from chaosml.journal import JOURNAL_FILE

SCORE_FORMULA = (
    "score = 100 x sum(w_v x passed_v) / sum(w_v) over every verdict v of every experiment; "
    "w_v = experiment weight x severity of v's fault (low 1, medium 2, high 3, critical 5; "
    "verdicts not tied to one fault take the experiment's highest) x cohort weight of v's cohort "
    "(default 1; a file cohort not listed takes clean's); passed_v = 1 for pass, 0 for fail or inconclusive; experiments that did not run "
    "count every declared objective as failed."
)
LITMUS_FORMULA = "litmus_score = 100 x sum_e(weight_e x passed_e / total_e) / sum_e(weight_e)"


def new_report_dir(reports_dir: Path, name: str) -> Path:
    base = reports_dir / f"gameday-{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


RunFn = Callable[[GameDayExperiment, Path, IO[str]], Any]


def _default_run(entry: GameDayExperiment, reports_dir: Path, out: IO[str]) -> Any:
    from chaosml.report import report_run
    from chaosml.runner import Runner

    runner = Runner(
        entry.experiment,
        experiment_file=str(entry.path),
        experiment_source=entry.text,  # the text the game-day loader validated
        reports_dir=reports_dir,
        out=out,
    )
    return report_run(runner.run(), out)


def run_gameday(
    gameday: GameDay,
    reports_dir: Path = Path("reports"),
    *,
    out: IO[str] | None = None,
    run_experiment: RunFn = _default_run,
) -> GameDayResult:
    """Run every experiment in order (stop or continue after a failure; always stop after an abort), then write the report."""
    out = out if out is not None else sys.stderr  # per call: the stream may have been replaced since import
    report_dir = new_report_dir(reports_dir, gameday.name)
    outcomes: list[ExperimentOutcome] = []
    aborted = False
    halt: str | None = None
    recovery_error: RecoveryError | None = None
    total = len(gameday.experiments)
    for i, entry in enumerate(gameday.experiments):
        if halt is not None:
            outcomes.append(ExperimentOutcome(i, entry, "not run", None, halt))
            continue
        print(f"[game-day {gameday.name}] {i + 1}/{total}: {entry.experiment.title} ({entry.source})", file=out, flush=True)
        oc = ExperimentOutcome(i, entry, "error", EXIT_INTERNAL, started_at=time.time())
        try:
            result = run_experiment(entry, report_dir, out)
            oc.status, oc.exit_code, oc.reason, oc.run_dir = result.status, result.exit_code, result.reason, Path(result.run_dir)
        except RecoveryError as exc:
            oc.status, oc.exit_code, oc.reason = "failed", exc.exit_code, str(exc)
            recovery_error = exc
        except TargetError as exc:
            oc.status, oc.reason = "error", f"target error: {exc}"
        except KeyboardInterrupt:
            oc.status, oc.exit_code, oc.reason = "aborted", EXIT_ABORTED, "interrupted"
        oc.ended_at = time.time()
        if oc.run_dir is None:
            oc.run_dir = _find_run_dir(report_dir, outcomes)
        oc.analysis = _read_analysis(oc.run_dir)
        outcomes.append(oc)
        print(f"[game-day {gameday.name}] {entry.source}: {oc.status}, exit {oc.exit_code}", file=out, flush=True)
        if recovery_error is not None:
            halt = "not run: a fault could not be recovered"
        elif oc.status == "aborted":
            aborted = True
            halt = "not run: the game-day was aborted"
        elif oc.exit_code != EXIT_OK and gameday.on_failure == "stop":
            halt = f"not run: on_failure is stop and {entry.source} failed"
    if aborted:
        code = EXIT_ABORTED
    elif any(o.exit_code != EXIT_OK for o in outcomes):
        code = EXIT_FAILED
    else:
        code = EXIT_OK
    result = GameDayResult(gameday, report_dir, outcomes, aborted, code)
    result.score = resilience_score(gameday, outcomes)
    from chaosml.gameday.report import write_gameday_report

    result.files = write_gameday_report(result)
    if recovery_error is not None:
        raise RecoveryError(f"{recovery_error} (game-day report: {report_dir})")
    return result


def _find_run_dir(report_dir: Path, earlier: list[ExperimentOutcome]) -> Path | None:
    """The run directory a Runner created before it raised (the newest one not already claimed)."""
    claimed = {o.run_dir for o in earlier}
    cands = [p for p in report_dir.iterdir() if p.is_dir() and (p / JOURNAL_FILE).exists() and p not in claimed]
    return max(cands, key=lambda p: p.stat().st_mtime) if cands else None


def _read_analysis(run_dir: Path | None) -> dict[str, Any] | None:
    if run_dir is None:
        return None
    path = run_dir / "analysis.json"
    if not path.exists() and (run_dir / "samples.csv").exists():
        try:
            from chaosml.report import render_report

            render_report(run_dir)
        except Exception:  # noqa: BLE001 - a run without a report still appears in the game-day, without verdicts
            return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# ------------------------------------------------------------------------------ score


def _objectives(entry: GameDayExperiment) -> list[dict[str, Any]]:
    """What an experiment declares it will judge: (name, fault, cohort), for experiments that produced no verdicts."""
    exp = entry.experiment
    names = {f.name for f in exp.faults}
    out = []
    for slo in exp.steady_state.slos:
        for phase in slo.phases:
            out.append({"name": slo.name, "kind": "slo", "scope": f"phase {phase}", "fault": phase if phase in names else None, "cohort": slo.cohort})
    for h in exp.hypotheses:
        fault = h.fault or (h.during if h.during in names else None)
        out.append({"name": h.name, "kind": "hypothesis", "scope": f"fault {fault}" if fault else "", "fault": fault, "cohort": h.cohort})
    return out


def cohort_weight(gameday: GameDay, cohort: str | None) -> float:
    """The weight of a verdict scoped to ``cohort``: ``cohort_weights[cohort]``; a file cohort not listed takes clean's; else 1."""
    from chaosml.model.catalog import COHORTS

    if not cohort:
        return 1.0
    if cohort in gameday.cohort_weights:
        return float(gameday.cohort_weights[cohort])
    if cohort not in COHORTS:  # a user cohort from load.data.cohort: clean rows of the file
        return float(gameday.cohort_weights.get("clean", 1.0))
    return 1.0


def resilience_score(gameday: GameDay, outcomes: list[ExperimentOutcome]) -> dict[str, Any]:
    """The weighted score (see the module docstring), Litmus's score, and every weighted verdict."""
    items: list[dict[str, Any]] = []
    num = den = 0.0
    lit_num = lit_den = 0.0
    for oc in outcomes:
        e = oc.entry
        verdicts = (oc.analysis or {}).get("verdicts") if oc.analysis else None
        ran = verdicts is not None
        entries = verdicts if ran else _objectives(e)
        passed_e = 0
        for v in entries or []:
            sev = e.severity_of(v.get("fault")) if v.get("fault") else e.max_severity()
            cw = cohort_weight(gameday, v.get("cohort"))
            w = e.weight * SEVERITIES[sev] * cw
            ok = ran and v.get("verdict") == "pass"
            passed_e += ok
            num += w * ok
            den += w
            items.append(
                {
                    "experiment": oc.index,
                    "name": v["name"],
                    "kind": v.get("kind"),
                    "scope": v.get("scope", ""),
                    "verdict": v.get("verdict", "not run") if ran else "not run",
                    "severity": sev,
                    "cohort_weight": cw,
                    "weight": w,
                }
            )
        n_e = len(entries or [])
        if n_e:
            lit_num += e.weight * passed_e / n_e
            lit_den += e.weight
    return {
        "score": None if den == 0 else round(100.0 * num / den, 2),
        "litmus_score": None if lit_den == 0 else round(100.0 * lit_num / lit_den, 2),
        "weighted_passed": num,
        "weighted_total": den,
        "formula": SCORE_FORMULA,
        "litmus_formula": LITMUS_FORMULA,
        "severities": dict(SEVERITIES),
        "verdicts": items,
    }
