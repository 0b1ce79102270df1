"""Degradation per fault and cohort on synthetic runs: served-by mix, switch delay, accuracy by path, rejections, back to primary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.faults.adversarial import AdversarialPayloadParams
from chaosml.model.experiment import FaultSpec, Repeat

ADV = FaultSpec("adv", "adversarial-payload", 10.0, 5.0, AdversarialPayloadParams("type-confusion", 0.5), Repeat())


def _run(df: pd.DataFrame, injections: list[dict], target_events: list[dict] | None = None, hold: int = 3) -> dict:
    exp = experiment(faults=(ADV,), hold=hold)
    return analyze(exp, journal(duration=40, injections=injections, target_events=target_events), df).to_dict()


def _inj(apply: float, recover: float | None, i: int = 0) -> dict:
    return {"fault": "adv", "type": "adversarial-payload", "injection": i, "apply": apply, "recover": recover}


def _where(df: pd.DataFrame, lo: float, hi: float, cohort: str | None = None) -> pd.Series:
    m = (df["t"] >= T0 + lo) & (df["t"] < T0 + hi)
    return m & (df["cohort"] == cohort) if cohort else m


def test_served_by_switch_delay_accuracy_and_back_to_primary() -> None:
    df = samples(40, 50, cohorts=("clean", "hostile"))
    # hostile cohort gets 422s from 10 s to 15 s; clean traffic goes to the fallback from 10.5 s until 17 s
    m = _where(df, 10, 15, "hostile")
    df.loc[m, ["outcome", "served_by", "status"]] = ["rejected", "rejected", 422]
    df.loc[m & (df.index % 4 == 1), "status"] = 413
    fb = _where(df, 10.5, 17, "clean")
    df.loc[fb, "served_by"] = "fallback"
    # the fallback is wrong on every third answer, confidently
    wrong = fb & (df.index % 3 == 0)
    df.loc[wrong, "prediction"] = 1 - df.loc[wrong, "label"]
    d = _run(df, [_inj(10, 15)])["degradation"]
    assert d["breaker"] == "not exposed" and d["baseline_primary_ratio"] == 1.0
    assert d["baseline_switch_interval_s"] is None  # no fallback at all in the baseline
    (f,) = d["faults"]
    assert f["fault"] == "adv" and f["injections"] == 1 and f["switched"] == 1
    (inj,) = f["per_injection"]
    assert inj["fallback_delay_s"] == pytest.approx(0.5, abs=0.05) and inj["fallback_first"] == "fallback (cohort clean)"
    # primary is back from 17 s: 2 s after recover, first whole window aligned at recover
    assert inj["back"] and inj["back_to_primary_s"] == pytest.approx(2.0)
    assert inj["breaker_transitions"] == "not exposed"
    hostile = f["cohorts"]["hostile"]
    assert hostile["rejected_ratio"] == {"fault": 1.0, "baseline": 0.0}
    codes = hostile["status_codes"]["fault"]
    assert set(codes) == {"422", "413"} and sum(codes.values()) == hostile["requests"]["fault"]
    clean = f["cohorts"]["clean"]
    assert clean["served_by"]["baseline"]["primary"] == 1.0
    assert clean["served_by"]["fault"]["fallback"] == pytest.approx(0.9, abs=0.02)
    acc = f["accuracy_by_path"]
    assert acc["fault"]["primary"] == 1.0 and acc["fault"]["fallback"] == pytest.approx(2 / 3, abs=0.02)
    assert acc["overall"]["default"] is None
    assert clean["confident_wrong_ratio"]["baseline"] == 0.0
    assert clean["confident_wrong_ratio"]["fault"] == pytest.approx(0.9 / 3, abs=0.02)
    json.dumps(d, allow_nan=False)


def test_not_back_and_no_switch_are_not_numbers() -> None:
    df = samples(40, 50)
    df.loc[_where(df, 20, 40), "served_by"] = "default"  # defaults only from 20 s, after recover at 15 s
    d = _run(df, [_inj(10, 15)])["degradation"]
    (f,) = d["faults"]
    (inj,) = f["per_injection"]
    # 15..20 s is back (primary), so it is back at 0 s; the later default flood does not undo that
    assert inj["back_to_primary_s"] == 0.0
    assert inj["fallback_delay_s"] is None  # the first default answer (20 s) is after this fault's window
    df2 = samples(40, 50)
    df2.loc[_where(df2, 10, 40), "served_by"] = "fallback"
    f2 = _run(df2, [_inj(10, 15)])["degradation"]["faults"][0]
    assert f2["per_injection"][0]["back_to_primary_s"] is None and f2["not_back"] == 1
    assert f2["back_to_primary_s"]["count"] == 0
    df3 = samples(40, 50)
    f3 = _run(df3, [_inj(10, 15)])["degradation"]["faults"][0]
    assert f3["per_injection"][0]["fallback_delay_s"] is None and f3["switched"] == 0


def test_usual_baseline_fallback_does_not_count_as_a_switch() -> None:
    df = samples(40, 50, cohorts=("clean", "ood"))
    df.loc[df["cohort"] == "ood", "served_by"] = "fallback"  # always fallback, baseline too
    df.loc[_where(df, 12, 14, "clean"), "served_by"] = "fallback"
    f = _run(df, [_inj(10, 15)])["degradation"]["faults"][0]
    assert f["per_injection"][0]["fallback_delay_s"] == pytest.approx(2.0, abs=0.03)
    assert f["per_injection"][0]["fallback_first"] == "fallback (cohort clean)"


def test_baseline_switch_interval_gives_the_noise_floor() -> None:
    df = samples(40, 50)
    base = _where(df, 0, 10) & (df.index % 50 == 0)  # one fallback answer a second in the baseline
    df.loc[base, "served_by"] = "fallback"
    d = _run(df, [_inj(10, 15)])["degradation"]
    assert d["baseline_switch_interval_s"] == pytest.approx(1.0)


def test_breaker_events_are_counted_when_the_journal_has_them() -> None:
    df = samples(40, 50)
    events = [{"t": 11.0, "kind": "breaker_open", "subject": "model-0"}, {"t": 13.0, "kind": "breaker_half_open", "subject": "model-0"},
              {"t": 30.0, "kind": "breaker_closed", "subject": "model-0"}]
    d = _run(df, [_inj(10, 15)], target_events=events)["degradation"]
    assert d["breaker"] == "exposed"
    assert d["faults"][0]["per_injection"][0]["breaker_transitions"] == 3  # searched until load end


def test_repeated_injections_and_report_section() -> None:
    from chaosml.report.document import Para, Table, degradation_section

    df = samples(40, 50)
    for lo in (10, 25):
        df.loc[_where(df, lo + 1, lo + 6), "served_by"] = "fallback"
    an = _run(df, [_inj(10, 15, 0), _inj(25, 30, 1)])
    f = an["degradation"]["faults"][0]
    assert f["injections"] == 2 and f["fallback_delay_s"]["count"] == 2
    assert f["fallback_delay_s"]["mean"] == pytest.approx(1.0, abs=0.03)
    assert f["back_to_primary_s"]["max"] == pytest.approx(1.0)
    blocks = degradation_section(an)
    tables = [b for b in blocks if isinstance(b, Table)]
    assert len(tables) == 2 and [r[0] for r in tables[1].rows] == ["adv #1", "adv #2"]
    sentence = [b.text for b in blocks if isinstance(b, Para)][-1]
    assert sentence.startswith("adv (adversarial-payload, 2 injections): served primary")
    assert "switched to the fallback after 1.01 s (mean)" in sentence and "back to the primary 1.00 s after recover" in sentence
    assert np.isfinite(f["back_to_primary_s"]["mean"])
