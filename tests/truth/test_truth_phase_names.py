"""One definition of the phases: validate accepts every phase the analysis reports (``between`` included), plan prints the same definitions."""

from __future__ import annotations

from pathlib import Path

from analysis_synth import experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.analysis.phases import STANDARD_PHASES
from chaosml.loader import load_experiment_text
from chaosml.model.catalog import PHASE_DEFINITIONS, PHASES
from chaosml.plan import build_plan, render_plan

QUICKSTART = Path(__file__).resolve().parents[2] / "experiments" / "quickstart.yaml"


def test_the_analysis_reports_exactly_the_phases_validate_accepts() -> None:
    assert STANDARD_PHASES == PHASES == tuple(PHASE_DEFINITIONS)
    an = analyze(experiment(), journal(duration=60.0, injections=[{"fault": "kill", "apply": 10.0, "recover": 15.0}]),
                 samples(60.0, 20.0))
    assert [p.phase.name for p in an.phases if p.phase.kind == "phase"] == list(PHASES)


def test_validate_accepts_between_and_plan_prints_the_definitions() -> None:
    text = QUICKSTART.read_text().replace("phases: [baseline, after]", "phases: [baseline, between, after]")
    exp = load_experiment_text(text, "quickstart-between.yaml")
    assert "between" in exp.steady_state.slos[0].phases
    shown = render_plan(build_plan(exp))
    for name, definition in PHASE_DEFINITIONS.items():
        assert f"{name}: {definition}" in shown
