"""Real runs of the shipped drift pair on the local target: hardened passes, naive fails, and the samples carry the ramp."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosml.analysis.samples import read_samples

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def run(name: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(ROOT / "experiments" / f"{name}.yaml"),
                           "--reports-dir", str(reports)], capture_output=True, text=True, timeout=180)
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    return proc, run_dir


def verdicts(run_dir: Path) -> dict[str, str]:
    return {v["name"]: v["verdict"] for v in json.loads((run_dir / "analysis.json").read_text())["verdicts"]}


def test_hardened_passes_and_the_samples_follow_the_linear_ramp(tmp_path: Path) -> None:
    proc, run_dir = run("drift-hardened", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    journal = json.loads((run_dir / "journal.json").read_text())
    (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
    (recover,) = [e for e in journal["fault_events"] if e["action"] == "recover"]
    df = read_samples(run_dir / "samples.csv")
    drifted = df[df["drift"].notna()]
    assert len(drifted) > 200
    assert drifted["t"].min() >= apply["t"] and drifted["t"].max() <= recover["t"] + 0.5  # only in the window
    expected = ((drifted["t"] - apply["t"]) / 14.0).clip(upper=1.0)  # linear over the 14 s window
    assert float((drifted["drift"] - expected).abs().max()) < 0.01
    assert float(drifted["drift"].max()) > 0.95
    bins = {r["bin"]: r for r in json.loads((run_dir / "analysis.json").read_text())["drift"]}
    assert bins["0.75-1"]["fallback_ratio"] > bins["none"]["fallback_ratio"] + 0.1  # the guard reacts as the shift grows
    assert (run_dir / "plots" / "drift.png").stat().st_size > 0
    assert not (run_dir / "load-control.json").exists()  # recover removed the entry: nothing left behind


def test_naive_fails_because_nothing_notices(tmp_path: Path) -> None:
    proc, run_dir = run("drift-naive", tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    v = verdicts(run_dir)
    assert v["guard-reacts"] == "fail" and v["available-under-drift"] == "pass"
