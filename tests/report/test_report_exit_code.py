"""`chaosml report RUN` exits by the run's exit code policy, the same as `chaosml run` (issue 15 item 9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chaosml.cli import main
from chaosml.errors import EXIT_ABORTED, EXIT_FAILED, EXIT_OK

FIXTURES = Path(__file__).resolve().parents[1] / "compare" / "fixtures"


def _run_dir(tmp_path: Path, rows: int | None = None, **journal: object) -> Path:
    for f in ("journal.json", "samples.csv"):
        shutil.copy(FIXTURES / "hardened" / f, tmp_path / f)
    if rows is not None:  # keep the first rows only: the kill window gets too few samples to judge
        lines = (tmp_path / "samples.csv").read_text().splitlines(keepends=True)
        (tmp_path / "samples.csv").write_text("".join(lines[: rows + 1]))
    data = json.loads((tmp_path / "journal.json").read_text())
    data.update(journal)
    (tmp_path / "journal.json").write_text(json.dumps(data))
    return tmp_path


def test_report_exits_0_when_every_verdict_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(_run_dir(tmp_path))]) == EXIT_OK
    assert "exit 0: every hypothesis held" in capsys.readouterr().out


def test_report_exits_1_when_a_verdict_is_inconclusive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(_run_dir(tmp_path, rows=40))]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "FAIL " not in out
    assert "exit 1: a hypothesis failed or was inconclusive" in out


def test_report_of_an_aborted_run_keeps_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run_dir(tmp_path, status="aborted", reason="interrupted by SIGINT", exit_code=EXIT_ABORTED)
    assert main(["report", str(run)]) == EXIT_ABORTED
    assert "exit 2: interrupted or aborted" in capsys.readouterr().out
