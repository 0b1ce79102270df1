"""The runner walks Plan.steps, builds every injector before the target starts, and keeps internal tracebacks."""

from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path
from typing import Any

import pytest
from runner_doubles import RecordingTarget, fake_load

from chaosml import runner as runner_mod
from chaosml.errors import EXIT_INTERNAL, TargetError
from chaosml.journal import load
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment, load_experiment_text
from chaosml.plan import Step, build_plan
from chaosml.records import FaultEvent
from chaosml.runner import Runner

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = """\
version: 1
title: plan walk
load: {users: 1, duration: 2s}
faults:
  - {name: a, type: pod-kill, at: 200ms, duration: 300ms, params: {service: model}}
  - {name: b, type: pod-kill, at: 300ms, duration: 300ms, params: {service: model}}
"""


class FakeInjector:
    def __init__(self, spec: Any, calls: list[str]) -> None:
        self.spec = spec
        self.calls = calls

    def undo_record(self, injection: int) -> dict[str, Any]:
        return {}

    def apply(self, injection: int) -> FaultEvent:
        self.calls.append(f"apply {self.spec.name}#{injection}")
        return FaultEvent(time.time(), self.spec.name, injection, "apply", True)

    def recover(self, injection: int) -> FaultEvent:
        self.calls.append(f"recover {self.spec.name}#{injection}")
        return FaultEvent(time.time(), self.spec.name, injection, "recover", True)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    monkeypatch.setattr(Runner, "_prepare_payloads", lambda self: None)
    monkeypatch.setattr(Runner, "_start_load", fake_load)
    monkeypatch.setattr(runner_mod, "make_injector", lambda spec, target, context: FakeInjector(spec, seen))
    return seen


def _runner(tmp_path: Path, calls: list[str], **kw: Any) -> Runner:
    experiment = load_experiment_text(EXPERIMENT, "e.yaml")
    return Runner(
        experiment, experiment_file="e.yaml", experiment_source=EXPERIMENT, reports_dir=tmp_path / "reports",
        target_factory=lambda exp, run_dir, on_event: RecordingTarget(calls), ledger=Ledger(tmp_path / "ledger.jsonl"),
        out=io.StringIO(), **kw,
    )


def test_the_runner_executes_the_plans_steps_in_the_plans_order(tmp_path: Path, calls: list[str]) -> None:
    plan = build_plan(load_experiment_text(EXPERIMENT, "e.yaml"))
    # reordered (b before a at the same instant) and one extra injection of a that the experiment does not have
    steps = (Step(0.1, "apply", "b", 1), Step(0.1, "apply", "a", 1), Step(0.3, "recover", "a", 1),
             Step(0.4, "apply", "a", 2), Step(0.5, "recover", "b", 1), Step(0.6, "recover", "a", 2))
    result = _runner(tmp_path, calls, plan=dataclasses.replace(plan, steps=steps)).run()
    assert result.status == "completed", result.reason
    assert [c for c in calls if c.startswith(("apply", "recover"))] == [
        "apply b#0", "apply a#0", "recover a#0", "apply a#1", "recover b#0", "recover a#1"]
    record = load(result.run_dir)
    assert [(e.action, e.fault, e.injection) for e in record.fault_events] == [
        ("apply", "b", 0), ("apply", "a", 0), ("recover", "a", 0), ("apply", "a", 1), ("recover", "b", 0), ("recover", "a", 1)]


def test_the_default_plan_is_build_plan_and_the_target_starts_after_the_injectors_exist(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def factory(spec: Any, target: Any, context: Any) -> Any:
        calls.append(f"injector {spec.name}")
        return FakeInjector(spec, calls)

    monkeypatch.setattr(runner_mod, "make_injector", factory)
    result = _runner(tmp_path, calls).run()
    assert result.status == "completed"
    assert calls.index("target constructed") < calls.index("injector a") < calls.index("injector b") < calls.index("target started")
    assert [c for c in calls if c.startswith(("apply", "recover"))] == ["apply a#0", "apply b#0", "recover a#0", "recover b#0"]


def test_an_injector_that_fails_its_check_stops_the_run_before_the_target_starts(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def factory(spec: Any, target: Any, context: Any) -> Any:
        if spec.name == "b":
            raise ValueError("this target cannot do that")
        return FakeInjector(spec, calls)

    monkeypatch.setattr(runner_mod, "make_injector", factory)
    runner = _runner(tmp_path, calls)
    with pytest.raises(TargetError, match=r"fault 'b' \(pod-kill\) cannot be injected on this target: ValueError: this target cannot do that"):
        runner.run()
    assert calls == ["target constructed"]  # never started, never stopped, nothing applied
    record = load(runner.run_dir)
    assert record.status == "failed" and record.exit_code == EXIT_INTERNAL
    assert record.error is not None and "ValueError: this target cannot do that" in record.error.traceback


def test_an_internal_error_keeps_its_traceback_in_the_journal_and_debug_prints_it(
    tmp_path: Path, calls: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken_load(self: Runner) -> None:
        raise RuntimeError("the load process could not start")

    monkeypatch.setattr(Runner, "_start_load", broken_load)
    result = _runner(tmp_path, calls).run()
    assert (result.status, result.exit_code) == ("failed", EXIT_INTERNAL)
    assert calls == ["target constructed", "target started", "target stopped"]
    error = load(result.run_dir).error
    assert error is not None
    assert (error.type, error.message) == ("RuntimeError", "the load process could not start")
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert "in broken_load" in error.traceback

    from chaosml.cli import _print_run_error

    _print_run_error(result.run_dir, debug=False)
    assert capsys.readouterr().err == ""
    _print_run_error(result.run_dir, debug=True)
    assert capsys.readouterr().err == error.traceback


def test_allow_context_reaches_the_kubernetes_target_as_an_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAOSML_ALLOW_CONTEXT", raising=False)
    experiment = load_experiment(ROOT / "experiments" / "k8s-pod-kill.yaml")
    target = runner_mod.make_target(experiment, tmp_path, lambda ev: None, allow_context="kind-other")
    assert (target.platform, target.allow_context) == ("kubernetes", "kind-other")

    seen: dict[str, Any] = {}
    monkeypatch.setattr(runner_mod, "make_target", lambda exp, run_dir, on_event, **kw: seen.update(kw))
    runner = Runner(experiment, experiment_file="k.yaml", experiment_source="", reports_dir=tmp_path / "reports",
                    allow_context="kind-other", ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO())
    runner.target_factory(experiment, runner.run_dir, lambda ev: None)
    assert seen == {"allow_context": "kind-other"}


def test_a_run_dir_never_exists_without_its_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed while the journal is first written (here: interrupted in it), the harness leaves no run dir
    without a journal.json (the self-chaos soak found one: 'journal unreadable after the kill')."""
    import chaosml.journal as journal_mod

    def interrupted() -> dict[str, Any]:
        raise KeyboardInterrupt

    monkeypatch.setattr(journal_mod, "environment", interrupted)
    experiment = load_experiment(ROOT / "experiments" / "quickstart.yaml")
    reports = tmp_path / "reports"
    with pytest.raises(KeyboardInterrupt):
        Runner(experiment, experiment_file="q.yaml", experiment_source="", reports_dir=reports,
               ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO())
    assert [p.name for p in reports.iterdir() if not p.name.startswith(".")] == []
    monkeypatch.undo()
    runner = Runner(experiment, experiment_file="q.yaml", experiment_source="", reports_dir=reports,
                    ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO())
    assert (runner.run_dir / "journal.json").is_file() and not runner.run_dir.name.startswith(".")
    runner.journal.update(status="probe")
    runner.journal.flush(force=True)
    assert '"status": "probe"' in (runner.run_dir / "journal.json").read_text()
