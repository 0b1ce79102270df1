"""Mapping and data problems are reported before any load or fault: exit 4 (files) or 3 (the server answers unexpectedly)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chaosml.model.experiment import DataSpec
from chaosml.workload.user_dataset import DataFileError, load_user_dataset

HERE = Path(__file__).resolve().parent


def chaosml_run(exp: Path, reports: Path) -> tuple[int, str]:
    """``chaosml run`` in a child process (bounded), like a user; returns (exit code, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(HERE.parents[1])})
    return proc.returncode, proc.stderr

EXPERIMENT = """\
version: 1
title: byo echo
target:
  platform: local
  restart_delay: 1s
  services:
    - name: model
      command: ["{{python}}", "{server}", "{{port}}"]
      health: /health
      replicas: 1
      start_timeout: 20s
  entry: {{service: model}}
request:
  path: /infer
  body: {body}
response:
  prediction: {prediction}
  confidence: outputs[1].data
  model_version: version
  served_by: not-exposed
  replica: header:X-Replica
load:
  users: 2
  duration: 10s
{data}faults:
  - {{name: kill, type: pod-kill, at: 3s, duration: 3s, params: {{service: model}}}}
"""


def write(tmp_path: Path, body: str = "kserve-v2", prediction: str = "outputs[0].data[0]", data: str = "") -> Path:
    path = tmp_path / "e.yaml"
    path.write_text(EXPERIMENT.format(server=HERE / "echo_server.py", body=body, prediction=prediction, data=data))
    return path


def _csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=60), "b": rng.uniform(0, 5, size=60), "name": ["x"] * 60,
                       "label": ["yes", "no"] * 30, "id": np.arange(100, 160)})
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    return path


def test_user_csv_dataset(tmp_path: Path) -> None:
    path = _csv(tmp_path)
    ds = load_user_dataset(DataSpec(file=str(path), label="label", entity="id", ranges={"b": (0.0, 10.0)}))
    assert ds.feature_names == ("a", "b") and ds.request_features == ("a", "b")  # 'name' is not numeric: left out
    assert ds.class_names == ("no", "yes") and set(ds.y.tolist()) == {0, 1}
    assert ds.feature_ranges()["b"] == (0.0, 10.0)
    assert int(ds.entity_ids[0]) == 100 and len(ds.test_idx) == 18
    with pytest.raises(DataFileError, match=r"load.data.features: column\(s\) 'name' are not numeric"):
        load_user_dataset(DataSpec(file=str(path), label="label", features=("a", "name")))
    with pytest.raises(DataFileError, match=r"load.data.label: no column 'lbl'"):
        load_user_dataset(DataSpec(file=str(path), label="lbl"))


def test_parquet_file_gives_the_same_dataset_as_csv(tmp_path: Path) -> None:
    csv_path = _csv(tmp_path)
    pq_path = tmp_path / "d.parquet"
    pd.read_csv(csv_path).to_parquet(pq_path)
    spec = {"label": "label", "entity": "id"}
    a = load_user_dataset(DataSpec(file=str(csv_path), **spec))
    b = load_user_dataset(DataSpec(file=str(pq_path), **spec))
    assert a.feature_names == b.feature_names and a.class_names == b.class_names
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y) and np.array_equal(a.test_idx, b.test_idx)


def test_parquet_needs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import chaosml.workload.user_dataset

    path = tmp_path / "d.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setattr(chaosml.workload.user_dataset, "pyarrow_available", lambda: False)  # as on a machine without it
    with pytest.raises(DataFileError, match="reading Parquet needs pyarrow"):
        load_user_dataset(DataSpec(file=str(path), label="y"))


def test_missing_data_file_exits_4(tmp_path: Path) -> None:
    exp = write(tmp_path, data=f"  data: {{file: {tmp_path / 'nope.csv'}, label: y}}\n")
    code, err = chaosml_run(exp, tmp_path / "r")
    assert code == 4, err
    assert "nope.csv: load.data.file: no such file" in err
    (run,) = (tmp_path / "r").iterdir()
    assert json.loads((run / "journal.json").read_text())["status"] == "invalid"
    assert not (run / "target").exists()  # nothing was started


def test_template_field_missing_exits_4(tmp_path: Path) -> None:
    csv = _csv(tmp_path)
    exp = write(tmp_path, body="template\n  template: {inputs: ['{{feature.c}}']}", data=f"  data: {{file: {csv}, label: label}}\n")
    code, err = chaosml_run(exp, tmp_path / "r")
    assert code == 4, err
    assert f"{exp}: request.template: template field(s) 'c' not in the dataset's features (a, b, id)" in err


def test_path_matching_nothing_exits_3_and_tears_down(tmp_path: Path) -> None:
    exp = write(tmp_path, prediction="outputs[0].value")
    code, err = chaosml_run(exp, tmp_path / "r")
    assert code == 3, err
    assert "the server answered unexpectedly before the load (nothing injected)" in err
    assert "the response has no prediction (JSON path outputs[0].value)" in err  # issue 18: shown as written
    (run,) = (tmp_path / "r").iterdir()
    journal = json.loads((run / "journal.json").read_text())
    assert journal["fault_events"] == [] and journal["status"] == "failed"
    for pid in journal["target"]["pids"].values():  # every process the target started is gone
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
