"""Per phase, each model version's answers and quality overall and per cohort (a model-rollout's canary analysis), and its
report table."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis.analyze import analyze
from chaosml.faults.modelrollout import ModelRolloutParams
from chaosml.model.experiment import FaultSpec, Repeat
from chaosml.report.blocks import Table
from chaosml.report.document import version_table


def test_versions_per_phase_and_cohort_match_the_samples() -> None:
    df = samples(30.0, 40.0, cohorts=("clean", "mid-radius"))
    inside = ((df["t"] >= T0 + 10.0) & (df["t"] < T0 + 20.0)).to_numpy()
    variant = inside & (np.arange(len(df)) % 4 != 0)  # 3 of 4 replicas serve the variant in the window
    df.loc[variant, "model_version"] = "v1+drop-cohort-mid-radius"
    wrong = variant & (df["cohort"] == "mid-radius").to_numpy() & (np.arange(len(df)) % 3 == 0)
    df.loc[wrong, "prediction"] = 1 - df.loc[wrong, "label"]
    fault = FaultSpec("rollout", "model-rollout", 10.0, 10.0, ModelRolloutParams(cohort="mid-radius", share=0.75), Repeat())
    j = journal(duration=30.0, injections=[{"fault": "rollout", "type": "model-rollout", "apply": 10.0, "recover": 20.0}])
    a = analyze(experiment(faults=(fault,)), j, df).to_dict()
    phases = {p["name"]: p for p in a["phases"]}
    assert set(phases["baseline"]["model_versions"]) == {"v1"}
    during = phases["rollout"]["model_versions"]
    v_mid = variant & (df["cohort"] == "mid-radius").to_numpy()
    assert during["v1+drop-cohort-mid-radius"]["all"]["requests"] == int(variant.sum())
    assert during["v1+drop-cohort-mid-radius"]["mid-radius"]["requests"] == int(v_mid.sum())
    assert during["v1+drop-cohort-mid-radius"]["mid-radius"]["accuracy"] == pytest.approx(1 - wrong.sum() / v_mid.sum())
    assert during["v1+drop-cohort-mid-radius"]["clean"]["accuracy"] == 1.0
    assert during["v1"]["all"]["requests"] == int((inside & ~variant).sum()) == during["v1"]["clean"]["requests"]
    assert "mid-radius" not in during["v1"]  # a cohort a version never answered has no row
    (table,) = [b for b in version_table(a) if isinstance(b, Table)]
    assert ("fault", "v1+drop-cohort-mid-radius", "mid-radius") in {r[:3] for r in table.rows}
    assert all(r[0] != "rollout" for r in table.rows)  # the phases, not each fault's windows again


def test_no_version_table_without_a_variant() -> None:
    a = analyze(experiment(), journal(duration=10.0, injections=[]), samples(10.0, 20.0)).to_dict()
    assert a["phases"][0]["model_versions"]["v1"]["all"]["requests"] > 0
    assert version_table(a) == []
