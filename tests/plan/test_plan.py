"""Tests for chaosml.plan: timeline, steps, phases, blast radius and the rendered dry run."""

from __future__ import annotations

import dataclasses

import pytest

from chaosml.faults.podkill import PodKillParams
from chaosml.loader import load_experiment_text
from chaosml.plan import PhaseSpan, Step, build_plan, render_plan

SMALL = """
title: Small plan
release: v1
target: {replicas: 3, restart_delay: 2s}
load: {users: 4, spawn_rate: 2, duration: 90s, rate_per_user: 2, mix: {clean: 3, missing-features: 1}}
steady_state:
  slos:
    - {name: availability, sli: success_ratio, op: ">=", target: 0.99}
hypotheses:
  - {name: up-during-kill, during: kill, sli: success_ratio, op: ">=", target: 0.95, cohort: clean}
  - {name: recovers, fault: kill, sli: mttr_s, op: "<=", target: 10, agg: mean}
faults:
  - name: kill
    type: pod-kill
    at: 10s
    duration: 5s
    repeat: {count: 3, every: 20s}
  - name: kill-all
    type: pod-kill
    at: 12s
    duration: 250ms
    params: {mode: all, signal: SIGTERM}
abort:
  - {sli: error_ratio, op: ">", target: 0.5, for: 3s}
rollbacks:
  - {type: wait-ready, params: {timeout: 30s}}
"""


@pytest.fixture
def plan():
    return build_plan(load_experiment_text(SMALL, "small.yaml"))


def test_timeline_rows_sorted_by_time(plan) -> None:
    text = render_plan(plan)
    assert (
        "  start  end     fault     type      injection  params\n"
        "  10s    15s     kill      pod-kill  1/3        service=model mode=one signal=SIGKILL grace_period_s=0\n"
        "  12s    12.25s  kill-all  pod-kill  1/1        service=model mode=all signal=SIGTERM grace_period_s=0\n"
        "  30s    35s     kill      pod-kill  2/3        service=model mode=one signal=SIGKILL grace_period_s=0\n"
        "  50s    55s     kill      pod-kill  3/3        service=model mode=one signal=SIGKILL grace_period_s=0\n"
    ) in text
    assert [(i.fault, i.index, i.start, i.end) for i in plan.injections] == [
        ("kill", 1, 10.0, 15.0),
        ("kill-all", 1, 12.0, 12.25),
        ("kill", 2, 30.0, 35.0),
        ("kill", 3, 50.0, 55.0),
    ]


def test_blast_radius(plan) -> None:
    text = render_plan(plan)
    assert "  kill: 1 of 3 replicas of 'model' (33%) per injection, 3 injections; killed with SIGKILL" in text
    assert "  kill-all: 3 of 3 replicas of 'model' (100%) per injection, 1 injection" in text
    assert "every replica: expect a full outage" in text
    assert [(b.fault, b.victims, b.of) for b in plan.blast_radius] == [("kill", 1, 3), ("kill-all", 3, 3)]


def test_rest_of_the_rendering(plan) -> None:
    text = render_plan(plan)
    assert text.startswith("plan: Small plan\nrelease: v1\n")
    assert "target: local, reference stack, profile hardened, 3 replicas, restart delay 2s\n" in text
    assert "load: 4 users (spawn 2/s), 2 req/s per user (about 8 req/s), for 90s" in text
    assert "mix: clean 75%, missing-features 25%\n" in text
    assert "  availability: success_ratio >= 0.99 (during baseline, after)\n" in text
    assert "  up-during-kill: success_ratio >= 0.95 (during kill) [cohort clean]\n" in text
    assert "  recovers: mttr_s <= 10 (mean over the injections of kill)\n" in text
    assert "  error_ratio > 0.5 for 3s\n" in text
    assert "  wait-ready timeout=30s\n" in text
    assert "  baseline        0s   10s\n" in text
    assert text.endswith("dry run: nothing was injected\n")


def test_plan_is_deterministic(plan) -> None:
    again = build_plan(load_experiment_text(SMALL, "other-name.yaml"))
    assert again == plan
    assert render_plan(again) == render_plan(plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.load_end = 1.0  # type: ignore[misc]


def test_steps_pair_apply_and_recover_in_time_order(plan) -> None:
    assert plan.steps[:4] == (
        Step(10.0, "apply", "kill", 1),
        Step(12.0, "apply", "kill-all", 1),
        Step(12.25, "recover", "kill-all", 1),
        Step(15.0, "recover", "kill", 1),
    )
    assert len(plan.steps) == 2 * len(plan.injections)
    assert [s.at for s in plan.steps] == sorted(s.at for s in plan.steps)


def test_phases_merge_overlapping_windows(plan) -> None:
    assert plan.phases == (
        PhaseSpan("baseline", 0.0, 10.0),
        PhaseSpan("fault", 10.0, 15.0, ("kill #1", "kill-all #1")),
        PhaseSpan("recovery/after", 15.0, 30.0, ("kill #1", "kill-all #1")),
        PhaseSpan("fault", 30.0, 35.0, ("kill #2",)),
        PhaseSpan("recovery/after", 35.0, 50.0, ("kill #2",)),
        PhaseSpan("fault", 50.0, 55.0, ("kill #3",)),
        PhaseSpan("recovery/after", 55.0, 90.0, ("kill #3",)),
    )


def test_no_faults_is_a_baseline_only_plan() -> None:
    plan = build_plan(load_experiment_text("title: calm\n"))
    assert plan.phases == (PhaseSpan("baseline", 0.0, 60.0),)
    assert plan.steps == ()
    assert "no faults: a baseline-only run" in render_plan(plan)


def test_kubernetes_blast_radius() -> None:
    text = """
title: k8s
target:
  platform: kubernetes
  replicas: 5
  kubernetes: {namespace: ml}
faults:
  - {name: half, type: pod-kill, at: 5s, duration: 5s, params: {mode: percent, value: 50, selector: "tier=model"}}
"""
    rendered = render_plan(build_plan(load_experiment_text(text)))
    assert "  half: 3 of 5 pods matching 'tier=model' in namespace 'ml' (60%) per injection" in rendered
    assert "context the kubeconfig's current context (allowed: kind-*), namespace ml" in rendered


@pytest.mark.parametrize(
    ("mode", "value", "replicas", "victims"),
    [
        ("one", None, 3, 1),
        ("all", None, 3, 3),
        ("fixed", 2, 3, 2),
        ("fixed", 5, 3, 3),
        ("percent", 33, 3, 1),
        ("percent", 34, 3, 2),
        ("percent", 100, 4, 4),
        ("one", None, 0, 0),
    ],
)
def test_pod_kill_victims(mode: str, value: float | None, replicas: int, victims: int) -> None:
    assert PodKillParams(mode=mode, value=value).victim_count(replicas) == victims


def test_blast_radius_counts_each_reference_service_s_own_replicas() -> None:
    text = SMALL.replace("    params: {mode: all, signal: SIGTERM}", "    params: {service: gateway, mode: all, signal: SIGTERM}")
    plan = build_plan(load_experiment_text(text, "small.yaml"))
    rendered = render_plan(plan)
    assert "  kill-all: 1 of 1 replica of 'gateway' (100%) per injection, 1 injection" in rendered
    assert "of 3 replicas of 'gateway'" not in rendered
    assert [(b.fault, b.victims, b.of) for b in plan.blast_radius] == [("kill", 1, 3), ("kill-all", 1, 1)]


def test_monitoring_section_says_which_prometheus_and_what_is_expected() -> None:
    from pathlib import Path

    from chaosml.loader import load_experiment

    exp = load_experiment(Path(__file__).resolve().parents[2] / "experiments" / "monitoring-hardened.yaml")
    text = render_plan(build_plan(exp))
    assert "  prometheus: local: started by the local target on 127.0.0.1, scraping every 1s, rules chaosml/stack/alerts.yml (shipped)\n" in text
    assert "  expect ChaosmlFeatureStoreErrors during fs-down\n" in text
    assert "  alerted-fast: alert_ttd_s <= 10 (max over the injections of fs-down)\n" in text
    assert "  no-false-alarm: false_alarms <= 0 (over the whole run)\n" in text
    assert "\n  PromQL " in text  # how the queries were checked (promtool, the server, or why not)
def test_the_plan_names_the_users_data_file_not_the_built_in_dataset() -> None:
    # issue 15 item 9: `plan` said "dataset breast_cancer" although load.data named the user's file
    text = SMALL.replace("mix: {clean: 3, missing-features: 1}}", "mix: {clean: 1}, data: {file: rows.csv, label: y}}")
    shown = render_plan(build_plan(load_experiment_text(text, "small.yaml")))
    assert "data file rows.csv (label 'y'), seed 0" in shown
    assert "breast_cancer" not in shown
    assert "built-in dataset breast_cancer, seed 0" in render_plan(build_plan(load_experiment_text(SMALL, "small.yaml")))


def test_validate_prints_the_ramp_warning_the_plan_prints(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    # issue 15 item 6: validate was silent where plan warned that the ramp eats most of the load
    from chaosml.cli import main

    path = tmp_path / "ramp.yaml"
    path.write_text(SMALL.replace("users: 4, spawn_rate: 2, duration: 90s", "users: 200, spawn_rate: 2, duration: 120s"))
    warning = "WARNING: the ramp (200 users at 2/s = 100 s) takes 83% of the 120 s load"
    assert warning in render_plan(build_plan(load_experiment_text(path.read_text(), "ramp.yaml")))
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"{path}: ok" in captured.out
    assert f"{path}: {warning}" in captured.err
    path.write_text(SMALL)
    assert main(["validate", str(path)]) == 0
    assert "WARNING: the ramp" not in capsys.readouterr().err


def test_plan_and_validate_warn_of_an_mttr_search_shorter_than_its_target(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """kill #1 (10 s) is searched only until kill-all's apply (12 s): 2 s, less than recovers' 10 s + hold 3 x 1 s, so a
    stack too slow for it is inconclusive, never fail (analysis/verdicts.py); kills #2 (30 s) and #3 (50 s) have 20 s and 40 s."""
    from chaosml.cli import main

    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    warning = ("WARNING: hypothesis recovers: kill #1 at 10s is searched only 2s, until the next apply at 12s; no recovery in "
               "it proves only mttr_s >= 0s, which does not fail <= 10s: a stack too slow for it would be inconclusive, not fail")
    text = render_plan(build_plan(load_experiment_text(SMALL, "small.yaml")))
    assert warning in text and text.count("WARNING: hypothesis") == 1, text
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"{path}: {warning}" in err and err.count("WARNING") == 1, err
    path.write_text(SMALL.replace("at: 12s", "at: 75s"))  # kill #1 searched 20 s now, kill #3 (50 s) until 75 s: 25 s
    assert main(["validate", str(path)]) == 0
    assert "WARNING" not in capsys.readouterr().err


@pytest.mark.parametrize(("kill_all_at", "warned"), [("23s", True), ("24s", False)])
def test_the_plan_warns_exactly_when_the_analysis_could_not_fail_the_hypothesis(kill_all_at: str, warned: bool) -> None:
    """kill #1 at 10 s searched 13 s (kill-all at 23 s): 13 whole windows - hold 3 = MTTR >= 10 s, which does not fail
    ``<= 10`` (an MTTR of exactly 10 s passes); 14 s proves >= 11 s, which does. The plan used target + hold x window
    (13 s) as enough, one window short of what the verdict needs: it said nothing where the run would be inconclusive."""
    text = SMALL.replace("at: 12s", f"at: {kill_all_at}")
    plan_text = render_plan(build_plan(load_experiment_text(text, "small.yaml")))
    assert ("WARNING: hypothesis recovers: kill #1" in plan_text) is warned, plan_text
