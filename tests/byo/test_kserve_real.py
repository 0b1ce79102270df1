"""A real third-party model server under chaosml: KServe's ModelServer (V2 protocol) serving scikit-learn.

Runs ``experiments/byo-kserve-v2.yaml`` (pod-kill of one of two replicas, then latency on one
replica's link) end to end. KServe is not a chaosml dependency: it pins older pandas/psutil/
kubernetes than chaosml's, so it lives in its own interpreter, found as ``$CHAOSML_KSERVE_PYTHON``
or ``.venv-kserve/bin/python`` (``python -m venv .venv-kserve && .venv-kserve/bin/pip install kserve
scikit-learn joblib``). Skipped with that reason when neither can import kserve.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _kserve_python() -> str | None:
    for cand in (os.environ.get("CHAOSML_KSERVE_PYTHON"), str(ROOT / ".venv-kserve" / "bin" / "python")):
        if cand and Path(cand).exists():
            ok = subprocess.run([cand, "-c", "import kserve, sklearn, joblib"], capture_output=True, timeout=60)
            if ok.returncode == 0:
                return cand
    return None


@pytest.mark.slow
def test_kserve_replica_kill_and_link_latency(tmp_path: Path) -> None:
    python = _kserve_python()
    if python is None:
        pytest.skip("no interpreter with kserve: set CHAOSML_KSERVE_PYTHON or create .venv-kserve "
                    "(python -m venv .venv-kserve && .venv-kserve/bin/pip install kserve scikit-learn joblib)")
    text = (ROOT / "experiments" / "byo-kserve-v2.yaml").read_text()
    text = text.replace(".venv-kserve/bin/python", python).replace(
        "experiments/servers/kserve_sklearn.py", str(ROOT / "experiments" / "servers" / "kserve_sklearn.py"))
    exp = tmp_path / "byo-kserve-v2.yaml"
    exp.write_text(text)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
        capture_output=True, text=True, timeout=150, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # exit 1: the fallback_ratio hypothesis is inconclusive on purpose (KServe does not expose a serving path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run,) = reports.iterdir()
    analysis = json.loads((run / "analysis.json").read_text())
    verdicts = {v["name"]: v for v in analysis["verdicts"]}
    for name in ("mostly-available-during-kill", "accurate-during-kill", "recovers-from-kill", "p99-under-latency"):
        assert verdicts[name]["verdict"] == "pass", verdicts[name]
    fb = verdicts["fallback-not-measurable"]
    assert fb["verdict"] == "inconclusive" and fb["measured"] is None and "not exposed" in fb["detail"]
    assert analysis["served_by_exposed"] is False
    kill = next(f for f in analysis["faults"] if f["fault"] == "kill-replica")
    assert kill["recovered"] == 1 and kill["mttr_s"]["max"] is not None
    slow = next(p for p in analysis["phases"] if p["name"] == "slow-replica")
    base = next(p for p in analysis["phases"] if p["name"] == "baseline")
    assert slow["slis"]["latency_p99_ms"] > base["slis"]["latency_p50_ms"] + 150  # the 200 ms link latency shows
    journal = json.loads((run / "journal.json").read_text())
    applied = [e for e in journal["fault_events"] if e["action"] == "apply"]
    assert [e["targets"] for e in applied] == [["model-1"], ["model-0"]] or len(applied) == 2
    kinds = {(e["kind"], e["subject"]) for e in journal["target_events"]}
    assert any(k == "replica_killed" for k, _ in kinds) and ("replica_ready", applied[0]["targets"][0]) in kinds
    with open(run / "samples.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert len(ok) > 300
    assert all(r["served_by"] == "" for r in rows)  # never guessed
    assert {r["model_version"] for r in ok} == {"sklearn-logreg-v1"}
    assert all(r["prediction"] in ("0", "1") and 0.5 <= float(r["confidence"]) <= 1.0 for r in ok)
