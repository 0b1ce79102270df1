"""chaosml history over the committed fixture runs (journal + samples only: analysed again in memory)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from chaosml.cli import main
from chaosml.history import list_runs
from chaosml.report import render_report

FIX = Path(__file__).resolve().parents[1] / "compare" / "fixtures"


def test_lists_fixture_runs_oldest_first() -> None:
    runs = list_runs(FIX)
    assert [r.release for r in runs] == ["naive", "hardened", "hardened"]
    assert [(r.passed, r.total) for r in runs] == [(3, 4), (4, 4), (4, 4)]
    assert runs[0].mttr_mean == {"kill": 1.6572} and runs[1].mttr_mean == {"kill": 0.0}
    assert all(r.status == "completed" for r in runs)
    assert [r.release for r in list_runs(FIX, release="hardened")] == ["hardened", "hardened"]


def test_cli_table_filter_and_plot(tmp_path: Path, capsys) -> None:
    png = tmp_path / "trend.png"
    assert main(["history", "--reports-dir", str(FIX), "--release", "naive", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "Short replica kill (naive)" in out and "kill 1.66s" in out and "3/4" in out and "(hardened)" not in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["history", "--reports-dir", str(tmp_path / "nope")]) == 4


def test_finds_runs_inside_gameday_dirs(tmp_path: Path) -> None:
    run = tmp_path / "gameday-20260101-000000-x" / "run-1"
    run.mkdir(parents=True)
    for f in ("journal.json", "samples.csv"):
        shutil.copy(FIX / "naive" / f, run / f)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "journal.json").write_text("{}")
    assert [r.run_dir for r in list_runs(tmp_path)] == [run]


def test_run_report_writes_junit(tmp_path: Path) -> None:
    for f in ("journal.json", "samples.csv"):
        shutil.copy(FIX / "naive" / f, tmp_path / f)
    analysis = render_report(tmp_path)
    root = ET.parse(analysis["files"]["junit"]).getroot()
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == ("4", "1", "0", "0")
    assert float(suite.get("time")) > 17
    (case,) = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert case.get("name") == "hypothesis available-during-kill [fault kill, cohort clean]"
    assert case.find("failure").get("message").startswith("success_ratio = 0.8489 (>= 0.99 required; n=225)")


def test_fault_never_applied_says_not_applied_and_run_ids_are_whole(tmp_path: Path, capsys) -> None:
    # issue 14 item 15: a run killed before its fault (or whose target never started) showed
    # "kill not recovered", and the run column was cut at 60 characters so it could not be copied.
    import json

    run = tmp_path / ("20260101-000000-a-run-with-a-rather-long-title-that-goes-on-" + "x" * 30)
    run.mkdir()
    journal = json.loads((FIX / "naive" / "journal.json").read_text())
    journal.update(status="failed", fault_events=[], target_events=[])
    (run / "journal.json").write_text(json.dumps(journal))
    shutil.copy(FIX / "naive" / "samples.csv", run / "samples.csv")
    assert main(["history", "--reports-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "kill not applied" in out and "not recovered" not in out
    assert str(run) in out
