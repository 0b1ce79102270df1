"""Cohorts from the user's data file (``load.data.cohort``): loader, reading, run-time checks, mix, payloads, a real run."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

from chaosml.analysis.samples import read_samples
from chaosml.analysis.slis import SampleArrays
from chaosml.errors import ExperimentError
from chaosml.gameday.model import GameDay, GameDayExperiment
from chaosml.gameday.run import ExperimentOutcome, cohort_weight, resilience_score
from chaosml.loader import load_experiment_text
from chaosml.model.catalog import COHORTS, normalise_cohort
from chaosml.model.experiment import DataSpec
from chaosml.plan import build_plan, render_plan
from chaosml.records import SAMPLE_COLUMNS
from chaosml.workload.cohorts import (
    build_payloads,
    cohorts_needed,
    expand_mix,
    file_cohort_shares,
)
from chaosml.workload.user_dataset import (
    DataFileError,
    check_file_cohorts,
    dataset_for,
    load_user_dataset,
    pyarrow_available,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# -- the experiment format -------------------------------------------------------------------------

DOC = """\
version: 1
title: file cohorts
hypotheses:
  - {{name: h, sli: success_ratio, op: ">=", target: 0.9, during: baseline, cohort: {hyp}}}
steady_state:
  slos:
    - {{name: s, sli: success_ratio, op: ">=", target: 0.9, cohort: {slo}}}
abort:
  - {{sli: success_ratio, op: "<", target: 0.1, cohort: {abort}}}
load:
{load}
"""
MIX = "  mix: {mix}"
DATA = "  data: {{file: d.csv, label: y{cohort}}}"


def doc(hyp: str = "eu-west", slo: str = "us-east", abort: str = "eu-west", mix: str = "{clean: 0.9, missing-features: 0.1}",
        cohort: str = ", cohort: region", data_first: bool = False) -> str:
    lines = [MIX.format(mix=mix), DATA.format(cohort=cohort)]
    return DOC.format(hyp=hyp, slo=slo, abort=abort, load="\n".join(lines[::-1] if data_first else lines))


NOT_A_NAME = ("is neither a built-in cohort nor a file cohort name: file cohorts are the load.data.cohort column's values "
              "normalised to lowercase letters and digits joined by single '-'")
NOT_CLEAN = "with load.data.cohort, clean requests are recorded under their file cohort; name a file cohort"
NO_SAMPLES = "is not in load.mix, nor is clean (whose rows are sent under their file cohorts), so it would have no samples"


def issues(text: str) -> list[str]:
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(text, "e.yaml")
    return [str(i) for i in exc.value.issues]


@pytest.mark.parametrize("data_first", [False, True])
def test_file_cohort_names_accepted_with_load_data_cohort(data_first: bool) -> None:
    exp = load_experiment_text(doc(mix="{clean: 0.5, us-east: 0.3, extreme-values: 0.2}", data_first=data_first), "e.yaml")
    assert exp.load.data is not None and exp.load.data.cohort == "region"
    assert dict(exp.load.mix) == {"clean": 0.5, "us-east": 0.3, "extreme-values": 0.2}
    assert exp.hypotheses[0].cohort == "eu-west" and exp.steady_state.slos[0].cohort == "us-east"
    assert exp.abort[0].cohort == "eu-west"
    # built-in names other than clean still work beside file cohorts
    exp = load_experiment_text(doc(hyp="missing-features", slo="eu-west", abort="missing-features"), "e.yaml")
    assert exp.hypotheses[0].cohort == "missing-features"
    plan = render_plan(build_plan(exp))
    assert "file cohorts: each clean row is sent and judged under its 'region' value" in plan


def test_hypotheses_before_load_are_checked_with_the_cohort_column() -> None:
    # hypotheses come before load in the file: the column is known anyway
    assert doc().index("hypotheses:") < doc().index("load:")
    load_experiment_text(doc(), "e.yaml")
    assert issues(doc(hyp="clean", data_first=True)) == [f"e.yaml:4:84: hypotheses[0].cohort: {NOT_CLEAN}"]


def test_file_cohort_names_refused_without_load_data_cohort() -> None:
    got = issues(doc(cohort="", mix="{clean: 1, eu-west: 1}"))
    known = ", ".join(COHORTS)
    assert got == [
        f"e.yaml:4:84: hypotheses[0].cohort: unknown cohort 'eu-west'; choose from: {known}",
        f"e.yaml:7:68: steady_state.slos[0].cohort: unknown cohort 'us-east'; choose from: {known}",
        f"e.yaml:9:56: abort[0].cohort: unknown cohort 'eu-west'; choose from: {known}",
        f"e.yaml:11:19: load.mix.eu-west: unknown cohort 'eu-west'; choose from: {known}",
    ]
    # and a plain built-in experiment is unchanged: clean is fine
    load_experiment_text(doc(hyp="clean", slo="clean", abort="clean", cohort="", mix="{clean: 1}"), "e.yaml")


def test_clean_refused_and_invalid_names_located() -> None:
    got = issues(doc(hyp="EU West", slo="clean", abort="-x", mix="{clean: 1, Us_East: 2, ok-1: 1}"))
    assert got == [
        f"e.yaml:4:84: hypotheses[0].cohort: 'EU West' {NOT_A_NAME} (did you mean 'eu-west'?)",
        f"e.yaml:7:68: steady_state.slos[0].cohort: {NOT_CLEAN}",
        f"e.yaml:9:56: abort[0].cohort: '-x' {NOT_A_NAME} (did you mean 'x'?)",
        f"e.yaml:11:19: load.mix.Us_East: 'Us_East' {NOT_A_NAME} (did you mean 'us-east'?)",
    ]


def test_file_cohort_needs_its_name_or_clean_in_the_mix() -> None:
    got = issues(doc(mix="{us-east: 1, missing-features: 1}"))
    assert got == [
        f"e.yaml:4:84: hypotheses[0].cohort: cohort 'eu-west' {NO_SAMPLES}",
        f"e.yaml:9:56: abort[0].cohort: cohort 'eu-west' {NO_SAMPLES}",
    ]
    got = issues(doc(hyp="out-of-range"))
    assert got == ["e.yaml:4:84: hypotheses[0].cohort: cohort 'out-of-range' is not in load.mix, so it would have no samples"]


def test_cohort_column_is_not_label_entity_or_feature() -> None:
    assert issues(doc(cohort=", cohort: y")) == [
        "e.yaml:12:41: load.data.cohort: column 'y' is the label column; name the column that holds each row's cohort",
    ]
    assert issues(doc(cohort=", features: [a, region], cohort: region")) == [
        "e.yaml:12:64: load.data.cohort: column 'region' is listed in features; a cohort column labels rows and is not sent",
    ]
    assert any("load.data.cohort: expected a string" in i for i in issues(doc(cohort=", cohort: [region]")))


# -- reading the data file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [(" EU West ", "eu-west"), ("eu_west", "eu-west"), ("Enterprise (EMEA)", "enterprise-emea"), ("NA", "na"),
     (7, "7"), ("--a--b--", "a-b"), ("Zürich", "z-rich"), ("?", "")],
)
def test_normalise_cohort(raw: object, name: str) -> None:
    assert normalise_cohort(raw) == name


def _frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    regions = ["EU West"] * 30 + ["eu_west"] * 18 + ["NA"] * 36 + ["apac "] * 36
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n),
                         "region": regions[:n], "y": (["no", "yes"] * n)[:n], "id": np.arange(1000, 1000 + n)})


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "d.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_cohorts_normalised_merged_and_not_features(tmp_path: Path) -> None:
    df = _frame()
    path = _write(tmp_path, df)
    ds = load_user_dataset(DataSpec(file=str(path), label="y", entity="id", cohort="region"))
    assert ds.feature_names == ("a", "b", "c") and ds.cohort_column == "region"  # the cohort column is not sent
    assert ds.cohorts is not None and len(ds.cohorts) == len(df)
    assert Counter(ds.cohorts.tolist()) == {"eu-west": 48, "na": 36, "apac": 36}  # 'EU West' + 'eu_west'; NA is a name
    row = {int(e): c for e, c in zip(ds.entity_ids, ds.cohorts)}
    assert row[1000] == "eu-west" and row[1000 + 40] == "eu-west" and row[1000 + 50] == "na"
    # the split is stratified by (label, cohort): each cohort holds its share of the test rows
    test_rows = ds.test_cohort_rows()
    assert list(test_rows) == ["apac", "eu-west", "na"] and sum(test_rows.values()) == len(ds.test_idx) == 36
    # each (label, cohort) stratum gets its share rounded up or down: within 1 per label of the cohort's share
    assert all(abs(test_rows[c] - 36 * k / 120) <= 2 for c, k in (("apac", 36), ("eu-west", 48), ("na", 36))), test_rows
    # without the key the column is just an ignored text column, and there are no file cohorts
    plain = load_user_dataset(DataSpec(file=str(path), label="y", entity="id"))
    assert plain.cohorts is None and plain.test_cohort_rows() == {}


def test_empty_value_is_an_error_with_its_row(tmp_path: Path) -> None:
    df = _frame()
    df.loc[57, "region"] = ""
    df.loc[90, "region"] = None
    path = _write(tmp_path, df)
    with pytest.raises(DataFileError) as exc:
        load_user_dataset(DataSpec(file=str(path), label="y", cohort="region"))
    assert str(exc.value) == (f"{path}: load.data.cohort: column 'region' has an empty value at row 58 (rows count from 1 "
                              "after the header); every row needs a cohort")
    df.loc[57, "region"] = "?!"
    path = _write(tmp_path, df)
    with pytest.raises(DataFileError, match=r"column 'region' has the value '\?!', which has no letter or digit, at row 58 "):
        load_user_dataset(DataSpec(file=str(path), label="y", cohort="region"))


def test_built_in_name_and_too_many_values_are_errors(tmp_path: Path) -> None:
    df = _frame()
    df.loc[3, "region"] = " Missing Features"
    path = _write(tmp_path, df)
    with pytest.raises(DataFileError) as exc:
        load_user_dataset(DataSpec(file=str(path), label="y", cohort="region"))
    assert str(exc.value).startswith(f"{path}: load.data.cohort: column 'region': the value ' Missing Features' (row 4) is the "
                                     "built-in cohort name 'missing-features'; rename it in the file")
    df = _frame()
    df["region"] = [f"shop {i % 51}" for i in range(len(df))]
    path = _write(tmp_path, df)
    with pytest.raises(DataFileError) as exc:
        load_user_dataset(DataSpec(file=str(path), label="y", cohort="region"))
    assert str(exc.value) == (f"{path}: load.data.cohort: column 'region' has 51 distinct values; at most 50 cohorts are "
                              "supported (is it an id column?)")
    df["region"] = [f"shop {i % 50}" for i in range(len(df))]
    assert len(set(load_user_dataset(DataSpec(file=str(_write(tmp_path, df)), label="y", cohort="region")).cohorts)) == 50
    with pytest.raises(DataFileError, match="load.data.cohort: no column 'segment'"):
        load_user_dataset(DataSpec(file=str(path), label="y", cohort="segment"))


def test_parquet_cohort_column(tmp_path: Path) -> None:
    assert pyarrow_available()  # a test dependency (pyproject: test extra)
    df = _frame()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    ds = load_user_dataset(DataSpec(file=str(path), label="y", cohort="region"))
    assert set(ds.cohorts.tolist()) == {"eu-west", "na", "apac"}


def test_all_digit_file_cohorts_keep_their_names_in_the_samples(tmp_path: Path) -> None:
    # region codes as cohorts: "007" must not come back from samples.csv as the number 7
    path = tmp_path / "samples.csv"
    cells = ["007", "10", "007", "007", "10"]
    path.write_text(",".join(SAMPLE_COLUMNS) + "\n" + "".join(
        f"17000000{i:02d}.5,10.0,200,ok,,1,0.9,{i % 2},{c},{i},model-0,v1\n" for i, c in enumerate(cells)))
    df = read_samples(path)
    assert sorted(df["cohort"].cat.categories) == ["007", "10"]
    a = SampleArrays.from_frame(df, 0.8)
    assert a.cohorts == ("007", "10") and int(a.cohort_mask("007").sum()) == 3 and int(a.cohort_mask("10").sum()) == 2


# -- run-time checks, the mix and the payloads -----------------------------------------------------


def _experiment(path: Path, mix: str = "{clean: 0.8, missing-features: 0.2}", hyp: str = "eu-west", extra: str = "") -> object:
    text = doc(hyp=hyp, slo="na", abort="apac", mix=mix).replace("file: d.csv", f"file: {path}").replace("label: y", "label: y, entity: id")
    return load_experiment_text(text + extra, "e.yaml")


def test_a_named_file_cohort_without_test_rows_stops_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path, _frame())
    exp = _experiment(path, mix="{clean: 1, latam: 1}")
    with pytest.raises(DataFileError) as exc:
        dataset_for(exp)
    assert str(exc.value) == f"{path}: load.mix.latam: no test rows with region = latam; cohorts in the file: apac, eu-west, na"
    with pytest.raises(DataFileError, match=r": hypotheses\[0\]\.cohort: no test rows with region = emea; cohorts in the file: "):
        dataset_for(_experiment(path, hyp="emea"))
    # a cohort of the file whose rows all went to training counts as missing too
    exp = _experiment(path)
    ds = dataset_for(exp)
    assert ds.cohorts is not None
    only_train = dataclasses.replace(ds, test_idx=ds.test_idx[ds.cohorts[ds.test_idx] != "apac"])
    with pytest.raises(DataFileError) as exc:
        check_file_cohorts(exp, only_train)
    assert str(exc.value) == (f"{path}: abort[0].cohort: no test rows with region = apac; cohorts in the file: apac, eu-west, na "
                              "(no test rows: apac)")


def test_mix_expansion_and_payloads(tmp_path: Path) -> None:
    path = _write(tmp_path, _frame())
    exp = _experiment(path, mix="{clean: 0.8, na: 0.1, missing-features: 0.2, out-of-range: 0}",
                      extra="faults:\n  - {name: adv, type: adversarial-payload, at: 5s, duration: 5s, "
                            "params: {cohort: garbage, share: 0.5}}\n")
    ds = dataset_for(exp)
    rows = ds.test_cohort_rows()
    n = sum(rows.values())
    assert file_cohort_shares(ds) == pytest.approx({c: k / n for c, k in rows.items()})
    mix = expand_mix(exp.load.mix, ds)
    assert list(mix) == ["apac", "eu-west", "na", "missing-features"]  # clean is gone; zero weights left out
    assert mix["apac"] == pytest.approx(0.8 * rows["apac"] / n)
    assert mix["eu-west"] == pytest.approx(0.8 * rows["eu-west"] / n)
    assert mix["na"] == pytest.approx(0.8 * rows["na"] / n + 0.1)  # its share of clean plus its own weight
    assert mix["missing-features"] == 0.2 and sum(v for c, v in mix.items() if c in rows) == pytest.approx(0.9)
    needed = cohorts_needed(exp, ds)
    assert needed == ["apac", "eu-west", "na", "missing-features", "garbage"]
    payloads = build_payloads(ds, needed, seed=3)
    cohort_of = {int(e): c for e, c in zip(ds.entity_ids, ds.cohorts)}
    for c in rows:  # one clean payload per test row of the cohort, every one from that cohort
        assert len(payloads[c]) == rows[c]
        assert {cohort_of[p["entity_id"]] for p in payloads[c]} == {c}
        assert all(set(p["body"]["features"]) == {"a", "b", "c"} for p in payloads[c])
    # generated cohorts draw from every test row, under their own names
    assert len(payloads["missing-features"]) == len(ds.test_idx)
    assert {cohort_of[p["entity_id"]] for p in payloads["missing-features"]} == set(rows)
    assert "clean" not in payloads and len(payloads["garbage"]) == min(48, len(ds.test_idx))
    # the expansion is deterministic and the built-in path is unchanged
    assert build_payloads(ds, needed, seed=3) == payloads
    plain = dataclasses.replace(ds, cohorts=None, cohort_column=None)
    assert expand_mix(exp.load.mix, plain) == {"clean": 0.8, "na": 0.1, "missing-features": 0.2}
    assert expand_mix(exp.load.mix) == expand_mix(exp.load.mix, plain)


def test_a_file_cohort_without_weight_takes_cleans_game_day_weight(tmp_path: Path) -> None:
    gd = GameDay(name="g", file=tmp_path / "g.yaml", experiments=(), cohort_weights=MappingProxyType({"clean": 3.0, "na": 2.0}))
    assert cohort_weight(gd, "eu-west") == 3.0  # a file cohort: clean's weight
    assert cohort_weight(gd, "na") == 2.0  # listed by name
    assert cohort_weight(gd, "missing-features") == 1.0  # built-in, not listed: default
    assert cohort_weight(gd, None) == 1.0
    bare = GameDay(name="g", file=tmp_path / "g.yaml", experiments=())
    assert cohort_weight(bare, "eu-west") == 1.0
    path = _write(tmp_path, _frame())
    entry = GameDayExperiment(path=tmp_path / "e.yaml", source="e.yaml", experiment=_experiment(path))
    verdicts = [{"name": "h", "kind": "hypothesis", "verdict": "fail", "cohort": "eu-west", "fault": None},
                {"name": "s", "kind": "slo", "verdict": "pass", "cohort": None, "fault": None}]
    score = resilience_score(dataclasses.replace(gd, experiments=(entry,)),
                             [ExperimentOutcome(0, entry, "completed", 1, analysis={"verdicts": verdicts})])
    assert [v["cohort_weight"] for v in score["verdicts"]] == [3.0, 1.0]
    assert score["score"] == pytest.approx(100 * 1 / 4)


# -- end to end ------------------------------------------------------------------------------------

E2E = """\
version: 1
title: byo file cohorts
target:
  platform: local
  restart_delay: 1s
  services:
    - name: model
      command: ["{{python}}", "{server}", "{{port}}"]
      health: /health
      replicas: 2
      start_timeout: 20s
  entry: {{service: model}}
request:
  path: /infer
  body: kserve-v2
response:
  prediction: outputs[0].data[0]
  confidence: outputs[1].data
  model_version: version
  served_by: not-exposed
  replica: header:X-Replica
load:
  users: 4
  duration: 10s
  mix: {mix}
  data: {{file: {data}, label: y, entity: id, cohort: region}}
steady_state:
  min_samples: 10
  slos:
    - {{name: na-up, sli: success_ratio, op: ">=", target: 0.5, cohort: na}}
hypotheses:
  - {{name: eu-up-in-baseline, sli: success_ratio, op: ">=", target: 0.9, during: baseline, cohort: eu-west}}
faults:
  - {{name: slow, type: network-latency, at: 5s, duration: 2s, params: {{link: model-1, latency_ms: 50}}}}
"""


def _run(tmp_path: Path, mix: str = "{clean: 1}") -> tuple[subprocess.CompletedProcess[str], Path]:
    data = _write(tmp_path, _frame())
    exp = tmp_path / "e.yaml"
    exp.write_text(E2E.format(server=HERE / "echo_server.py", data=data, mix=mix))
    reports = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                          check=False, capture_output=True, text=True, timeout=150, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc, reports


def test_unknown_file_cohort_exits_4_before_anything_starts(tmp_path: Path) -> None:
    proc, reports = _run(tmp_path, mix="{clean: 1, emea: 1}")
    assert proc.returncode == 4, proc.stderr
    assert "load.mix.emea: no test rows with region = emea; cohorts in the file: apac, eu-west, na" in proc.stderr
    (run,) = reports.iterdir()
    assert json.loads((run / "journal.json").read_text())["status"] == "invalid"
    assert not (run / "target").exists() and not (run / "samples.csv").exists()  # nothing was started


@pytest.mark.slow
def test_real_run_records_and_judges_file_cohorts(tmp_path: Path) -> None:
    proc, reports = _run(tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (run,) = reports.iterdir()
    with open(run / "samples.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen = Counter(r["cohort"] for r in rows)
    assert set(seen) == {"apac", "eu-west", "na"}, seen  # never "clean": each row under its file cohort
    assert seen["eu-west"] > seen["apac"] / 2 and len(rows) > 100
    journal = json.loads((run / "journal.json").read_text())
    fc = journal["file_cohorts"]
    assert fc["column"] == "region" and set(fc["cohorts"]) == {"apac", "eu-west", "na"}
    assert sum(c["weight"] for c in fc["cohorts"].values()) == pytest.approx(1.0) and set(fc["mix"]) == set(fc["cohorts"])
    analysis = json.loads((run / "analysis.json").read_text())
    assert set(analysis["cohorts"]) == {"apac", "eu-west", "na"}
    baseline = next(p for p in analysis["phases"] if p["name"] == "baseline")
    for c in ("apac", "eu-west", "na"):
        assert baseline["cohorts"][c]["requests"] > 0 and baseline["cohorts"][c]["success_ratio"] is not None
    verdicts = {v["name"]: v for v in analysis["verdicts"]}
    hyp = verdicts["eu-up-in-baseline"]
    assert hyp["verdict"] == "pass", hyp  # judged on eu-west's own samples, not inconclusive for lack of them
    assert hyp["cohort"] == "eu-west" and "cohort eu-west" in hyp["scope"]
    assert hyp["samples"] == baseline["cohorts"]["eu-west"]["requests"] >= 10
    slo = [v for v in analysis["verdicts"] if v["name"] == "na-up"]
    assert slo and all(v["verdict"] != "inconclusive" for v in slo)
    report = (run / "report.md").read_text()
    assert "Cohorts from the data file's column 'region'" in report and "| eu-west | baseline |" in report
