"""Ground truth for load shapes: the stages each shape writes, the users curve, requested vs achieved per stage, and plan."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.analysis.delivery import requested_requests
from chaosml.loader import load_experiment_text
from chaosml.model.codec import experiment_from_dict, experiment_to_dict
from chaosml.model.experiment import Hypothesis, LoadSpec
from chaosml.model.loadshape import LoadShape, LoadStage, segments, user_seconds, users_at
from chaosml.plan import build_plan, render_plan

BASE = "version: 1\ntitle: shaped\nload: {duration: 60s, spawn_rate: 10, rate_per_user: 2, shape: %s}\n"


def _stages(shape: str) -> tuple[tuple[float, int, float], ...]:
    exp = load_experiment_text(BASE % shape, "s.yaml")
    assert exp.load.shape is not None
    return tuple((s.end, s.users, round(s.spawn_rate, 6)) for s in exp.load.shape.stages)


def test_each_shape_is_written_as_stages() -> None:
    assert _stages("{type: ramp, to: 30, over: 30s}") == ((30.0, 30, 1.0),)
    assert _stages("{type: ramp, from: 5, to: 35, over: 30s}") == ((1.0, 5, 10.0), (31.0, 35, 1.0))  # 5 users at 10/s first
    assert _stages("{type: step, from: 10, to: 40, steps: 4, every: 10s}") == (
        (10.0, 10, 10.0), (20.0, 20, 10.0), (30.0, 30, 10.0), (40.0, 40, 10.0))
    assert _stages("{type: spike, base: 5, peak: 50, at: 20s, for: 10s, spawn_rate: 50}") == (
        (20.0, 5, 50.0), (30.0, 50, 50.0), (60.0, 5, 50.0))
    assert _stages("{type: stages, stages: [{duration: 10s, users: 5}, {duration: 20s, users: 30, spawn_rate: 5}]}") == (
        (10.0, 5, 10.0), (30.0, 30, 5.0))
    exp = load_experiment_text(BASE % "{type: spike, base: 5, peak: 50, at: 20s, for: 10s}", "s.yaml")
    assert exp.load.users == 50  # load.users is the shape's peak


def test_the_users_curve_moves_in_locusts_batches_and_its_integral_is_exact() -> None:
    # locust's UsersDispatcher: floor(spawn_rate) users at once, one batch every batch / spawn_rate s, up and down
    spike = (LoadStage(20.0, 5, 10.0), LoadStage(30.0, 50, 10.0), LoadStage(60.0, 5, 10.0))
    assert segments(spike) == [(0.0, 20.0, 5), (20.0, 21.0, 15), (21.0, 22.0, 25), (22.0, 23.0, 35), (23.0, 24.0, 45),
                               (24.0, 30.0, 50), (30.0, 31.0, 40), (31.0, 32.0, 30), (32.0, 33.0, 20), (33.0, 34.0, 10),
                               (34.0, float("inf"), 5)]
    assert segments((LoadStage(60.0, 3, 0.5),)) == [(0.0, 2.0, 1), (2.0, 4.0, 2), (4.0, float("inf"), 3)]  # 1 user every 2 s
    assert users_at(spike, 0.0) == 5 and users_at(spike, 22.5) == 35 and users_at(spike, 45.0) == 5
    assert user_seconds(spike, 0.0, 20.0) == 100.0
    assert user_seconds(spike, 20.0, 30.0) == 15 + 25 + 35 + 45 + 6 * 50
    assert user_seconds(spike, 30.0, 60.0) == 40 + 30 + 20 + 10 + 26 * 5
    spec = LoadSpec(users=50, spawn_rate=10.0, duration=60.0, rate_per_user=2.0, shape=LoadShape("spike", spike))
    assert requested_requests(spec, 100.0, [(120.0, 130.0)]) == 2.0 * 420


def test_a_shaped_experiment_round_trips_through_the_journal_codec() -> None:
    exp = load_experiment_text(BASE % "{type: step, to: 40, steps: 4, every: 10s}", "s.yaml")
    assert experiment_from_dict(experiment_to_dict(exp)) == exp


def test_plan_shows_the_shape_with_times_users_and_rate() -> None:
    text = render_plan(build_plan(load_experiment_text(BASE % "{type: spike, base: 5, peak: 50, at: 20s, for: 10s}", "s.yaml")))
    assert "load: up to 50 users (spawn 10/s)" in text
    assert ("load shape: spike from 5 to 50 users at 20s for 10s, then back to 5 (users move to each stage's count at its "
            "spawn rate, from 0 at load start)\n"
            "  stage  from  to   users  spawn  requested rate\n"
            "  1      0s    20s  5      10/s   10 req/s\n"
            "  2      20s   30s  50     10/s   100 req/s\n"
            "  3      30s   60s  5      10/s   10 req/s\n") in text
    assert "WARNING: the ramp" not in text  # a shape is a deliberate curve


def _shaped(rate_per_user: float = 2.0) -> LoadSpec:
    stages = (LoadStage(10.0, 5, 1000.0), LoadStage(20.0, 25, 1000.0), LoadStage(40.0, 5, 1000.0))
    return LoadSpec(users=25, spawn_rate=1000.0, duration=40.0, rate_per_user=rate_per_user, shape=LoadShape("stages", stages))


def _spike_samples(peak_share: float) -> pd.DataFrame:
    """10 req/s, 50 req/s from +10 s to +20 s (``peak_share`` of it sent), then 10 req/s again."""
    parts = [samples(10.0, 10.0), samples(10.0, 50.0 * peak_share, start=T0 + 10.0, seed=1), samples(20.0, 10.0, start=T0 + 20.0, seed=2)]
    return pd.concat(parts, ignore_index=True)


def test_requested_vs_achieved_per_stage_is_reported() -> None:
    exp = dataclasses.replace(experiment(rate=10.0), load=_shaped())
    an = analyze(exp, journal(duration=40.0, injections=[{"fault": "kill", "apply": 12.0, "recover": 18.0}]), _spike_samples(1.0))
    stages = an.to_dict()["load_stages"]
    assert [s["phase"] for s in stages] == ["stage 1 (5 users)", "stage 2 (25 users)", "stage 3 (5 users)"]
    # 2 req/s per user x user-seconds; spawn rate 1000/s: each stage's users start (or stop) in one batch at its start
    assert [s["requested_rps"] for s in stages] == pytest.approx([10.0, 50.0, 10.0])
    assert [s["achieved_rps"] for s in stages] == pytest.approx([10.0, 50.0, 10.0])
    assert not any(s["short"] for s in stages)
    assert an.summary()["load_stages"][1]["achieved_rps"] == pytest.approx(50.0)  # copied into the journal


def test_a_peak_that_was_not_delivered_leaves_the_verdicts_under_it_inconclusive() -> None:
    hyp = (Hypothesis("available-during-kill", "success_ratio", ">=", 0.99, fault="kill"),)
    exp = dataclasses.replace(experiment(rate=10.0, hypotheses=hyp), load=_shaped())
    an = analyze(exp, journal(duration=40.0, injections=[{"fault": "kill", "apply": 12.0, "recover": 18.0}]), _spike_samples(0.4))
    peak = an.to_dict()["load_stages"][1]
    assert peak["short"] and peak["ratio"] == pytest.approx(0.4, abs=0.01)
    (v,) = [v for v in an.verdicts if v.name == "available-during-kill"]
    assert v.verdict == "inconclusive" and "load not delivered: 20.0 of 50.0 requested req/s" in v.detail
    assert any(n.startswith("LOAD SHAPE NOT DELIVERED: stage 2 (25 users) 20.0 of 50.0 req/s") for n in an.notes)
