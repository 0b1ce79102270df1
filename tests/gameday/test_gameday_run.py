"""Game-day runs: order, stop/continue, the report dir, the resilience score, JUnit; one real run of three short experiments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaosml.gameday import load_gameday, run_gameday
from chaosml.gameday.run import resilience_score
from chaosml.report import render_report
from chaosml.runner import RunResult

FIX = Path(__file__).resolve().parents[1] / "compare" / "fixtures"
SHORT = (Path(__file__).parent / "test_gameday_loader.py").read_text().split('SHORT = """\\\n')[1].split('"""')[0]


def _gameday(tmp_path: Path, on_failure: str = "continue", extra: str = "") -> Path:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.yaml").write_text(SHORT.format(name=name))
    p = tmp_path / "gd.yaml"
    p.write_text(
        f"name: suite\nrelease: hardened\non_failure: {on_failure}\nexperiments:\n"
        "  - a.yaml\n  - {path: b.yaml, severity: critical}\n  - {path: c.yaml, weight: 2}\n" + extra
    )
    return p


def _fake_runs(order: list[str], outcomes: dict[str, str]):
    """run_experiment stand-in: copies a real fixture run (naive fails, hardened passes) and renders it."""

    def run(entry, reports_dir: Path, out) -> RunResult:
        order.append(entry.source)
        which = outcomes[entry.source]
        run_dir = reports_dir / f"run-{len(order)}-{which}"
        run_dir.mkdir()
        for f in ("journal.json", "samples.csv"):
            shutil.copy(FIX / ("hardened" if which == "aborted" else which) / f, run_dir / f)
        analysis = render_report(run_dir)
        if which == "aborted":
            return RunResult(run_dir, "aborted", 2, "abort condition")
        return RunResult(run_dir, "completed", 0 if analysis["passed"] else 1)

    return run


def test_continue_after_a_failure_and_write_one_report(tmp_path: Path) -> None:
    gd = load_gameday(_gameday(tmp_path))
    order: list[str] = []
    runs = _fake_runs(order, {"a.yaml": "hardened", "b.yaml": "naive", "c.yaml": "hardened2"})
    res = run_gameday(gd, tmp_path / "reports", out=sys.stderr, run_experiment=runs)
    assert order == ["a.yaml", "b.yaml", "c.yaml"]
    assert res.exit_code == 1 and not res.aborted
    d = res.report_dir
    assert d.parent == tmp_path / "reports" and d.name.startswith("gameday-") and d.name.endswith("-suite")
    data = json.loads((d / "gameday.json").read_text())
    assert [e["status"] for e in data["experiments"]] == ["completed", "completed", "completed"]
    assert [e["exit_code"] for e in data["experiments"]] == [0, 1, 0]
    assert data["experiments"][1]["report"] == "run-2-naive/report.html" and (d / "run-2-naive" / "report.html").exists()
    assert data["experiments"][0]["faults"][0]["mttr_s"]["mean"] == 0.0
    # score: 4 verdicts each; b (naive, critical) fails available-during-kill (fault kill: critical = 5)
    # a: weight 1 x medium 2 x 4 verdicts = 8 passed; b: critical 5 x 4 = 20, 15 passed; c: 2 x 2 x 4 = 16 passed
    assert data["score"]["weighted_total"] == pytest.approx(44.0)
    assert data["score"]["score"] == pytest.approx(100 * 39 / 44, abs=0.01)
    assert data["score"]["litmus_score"] == pytest.approx(100 * (1 + 0.75 + 2) / 4, abs=0.01)
    md = (d / "gameday.md").read_text()
    assert "Formula: score = 100 x sum(w_v x passed_v)" in md and "run-2-naive/report.md" in md
    root = ET.parse(d / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 3 and [int(s.get("failures")) for s in suites] == [0, 1, 0]
    assert int(root.get("tests")) == 12 and int(root.get("failures")) == 1
    (failure,) = root.findall(".//failure")
    assert "success_ratio = 0.8489 (>= 0.99 required; n=225)" in failure.get("message")


def test_stop_on_failure_and_abort(tmp_path: Path) -> None:
    gd = load_gameday(_gameday(tmp_path, on_failure="stop"))
    order: list[str] = []
    res = run_gameday(gd, tmp_path / "r1", out=sys.stderr, run_experiment=_fake_runs(order, {"a.yaml": "naive", "b.yaml": "hardened", "c.yaml": "hardened"}))
    assert order == ["a.yaml"] and res.exit_code == 1
    assert [o.status for o in res.outcomes] == ["completed", "not run", "not run"]
    # experiments that did not run count every declared objective (one hypothesis each) as failed:
    # a 3 of 4 passed x medium 2 = 6 of 8; b 1 x critical 5 = 0 of 5; c weight 2 x medium 2 = 0 of 4
    assert res.score["score"] == pytest.approx(100 * 6 / 17, abs=0.01)
    root = ET.parse(res.report_dir / "junit.xml").getroot()
    assert int(root.get("failures")) == 3
    order.clear()
    gd = load_gameday(_gameday(tmp_path, on_failure="continue"))
    res = run_gameday(gd, tmp_path / "r2", out=sys.stderr, run_experiment=_fake_runs(order, {"a.yaml": "aborted", "b.yaml": "hardened", "c.yaml": "hardened"}))
    assert order == ["a.yaml"] and res.exit_code == 2 and res.aborted


def test_cohort_weights_change_the_score(tmp_path: Path) -> None:
    gd = load_gameday(_gameday(tmp_path, extra="cohort_weights: {clean: 4}\n"))
    order: list[str] = []
    res = run_gameday(gd, tmp_path / "r", out=sys.stderr, run_experiment=_fake_runs(order, {"a.yaml": "hardened", "b.yaml": "naive", "c.yaml": "hardened"}))
    # every verdict but replica-back is scoped to cohort clean: weight x4
    failed = [v for v in res.score["verdicts"] if v["verdict"] == "fail"]
    assert len(failed) == 1 and failed[0]["weight"] == 20.0 and failed[0]["severity"] == "critical"
    assert res.score == resilience_score(gd, res.outcomes)


@pytest.mark.slow
def test_real_gameday_of_three_short_experiments(tmp_path: Path) -> None:
    path = _gameday(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "gameday", "run", str(path), "--reports-dir", str(tmp_path / "reports")],
        check=False, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    (d,) = (tmp_path / "reports").iterdir()
    data = json.loads((d / "gameday.json").read_text())
    assert [e["status"] for e in data["experiments"]] == ["completed"] * 3
    for e in data["experiments"]:
        assert (d / e["report"]).exists() and e["counts"]["pass"] + e["counts"]["fail"] + e["counts"]["inconclusive"] == 1
        assert e["faults"][0]["injections"] == 1
    assert data["exit_code"] == proc.returncode and data["score"]["score"] is not None
    for name in ("gameday.md", "gameday.html", "junit.xml"):
        assert (d / name).stat().st_size > 0
    assert len(ET.parse(d / "junit.xml").getroot().findall("testsuite")) == 3
    assert "resilience score" in proc.stdout
