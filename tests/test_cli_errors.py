"""The CLI turns bad input into located errors and exit 4, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chaosml.cli import main
from chaosml.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[1]


def test_validate_ships_valid_experiments(capsys) -> None:  # type: ignore[no-untyped-def]
    files = sorted(str(p) for p in (ROOT / "experiments").glob("*.yaml"))
    assert files
    assert main(["validate", *files]) == 0


def test_validate_reports_every_problem_and_exits_4(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "title: bad\n"
        "load:\n"
        "  users: many\n"
        "  duraton: 10s\n"
        "faults:\n"
        "  - name: k\n"
        "    type: pod-kil\n"
        "    at: 1s\n"
        "    duration: 2s\n"
    )
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "validate", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 3, proc.stderr
    assert any(":4:" in line and "load.users" in line for line in lines)
    assert any(":5:" in line and "duraton" in line and "did you mean" in line for line in lines)
    assert any(":8:" in line and "pod-kill" in line for line in lines)


def test_run_with_invalid_file_injects_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntitle: [unclosed\n")
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "run", str(bad), "--reports-dir", str(reports)], capture_output=True, text=True
    )
    assert proc.returncode == 4
    assert "Traceback" not in proc.stderr
    assert not reports.exists()


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "chaosml.cli", "validate", str(tmp_path / "nope.yaml")], capture_output=True, text=True
    )
    assert proc.returncode == 4
    assert "nope.yaml" in proc.stderr and "Traceback" not in proc.stderr


def test_readme_commands_and_exit_codes_match_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash .ci/test" in readme and "bash .ci/test" in ci
    assert "bash .ci/demo" in readme
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme, code
