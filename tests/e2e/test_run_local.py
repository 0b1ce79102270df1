"""Real runs of a short pod-kill experiment on the local target: the spine end to end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent


def _experiment(tmp_path: Path, profile: str, duration: str = "18s") -> Path:
    text = (HERE / "short.yaml.tmpl").read_text().format(profile=profile, duration=duration)
    path = tmp_path / f"short-{profile}.yaml"
    path.write_text(text)
    return path


def _chaosml(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaosml.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def _run_dir(reports: Path) -> Path:
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir()]
    return run_dir


def _leftovers(run_dir: Path) -> list[str]:
    """Processes whose command line names this run's directory (replicas, redis, gateway, load)."""
    out = subprocess.run(["pgrep", "-af", str(run_dir)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def _verdicts(run_dir: Path) -> dict[str, dict]:
    analysis = json.loads((run_dir / "analysis.json").read_text())
    return {v["name"]: v for v in analysis["verdicts"]}


@pytest.fixture(scope="module")
def hardened_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("hardened")
    proc = _chaosml("run", str(_experiment(tmp, "hardened")), "--reports-dir", str(tmp / "reports"))
    return proc, _run_dir(tmp / "reports")


@pytest.fixture(scope="module")
def naive_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp = tmp_path_factory.mktemp("naive")
    proc = _chaosml("run", str(_experiment(tmp, "naive")), "--reports-dir", str(tmp / "reports"))
    return proc, _run_dir(tmp / "reports")


def test_hardened_run_passes_and_writes_a_report(hardened_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, run_dir = hardened_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["status"] == "completed"
    assert journal["exit_code"] == 0
    applies = [e for e in journal["fault_events"] if e["action"] == "apply"]
    recovers = [e for e in journal["fault_events"] if e["action"] == "recover"]
    assert len(applies) == 2 and len(recovers) == 2
    assert all(len(e["targets"]) == 1 for e in applies)
    # the supervisor saw each kill and brought the replica back
    kinds = [e["kind"] for e in journal["target_events"]]
    assert kinds.count("replica_killed") == 2
    assert kinds.count("replica_started") >= 2
    for name in ("report.md", "report.html", "samples.csv", "analysis.json"):
        assert (run_dir / name).stat().st_size > 0, name
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html
    verdicts = _verdicts(run_dir)
    assert verdicts["available-during-kill"]["verdict"] == "pass"
    ready = verdicts["replica-back"]["measured"]
    # restart delay 1 s + process start: measured, consistent with the configured delay
    assert 1.0 <= ready <= 8.0
    assert not _leftovers(run_dir)


def test_naive_run_is_measurably_worse(
    hardened_run: tuple[subprocess.CompletedProcess[str], Path], naive_run: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    proc, run_dir = naive_run
    assert proc.returncode == 1, proc.stdout + proc.stderr
    naive = _verdicts(run_dir)["available-during-kill"]
    hardened = _verdicts(hardened_run[1])["available-during-kill"]
    assert naive["verdict"] == "fail"
    assert naive["measured"] < hardened["measured"] - 0.02
    last = proc.stdout.splitlines()[-1]  # issue 18: the last line names what failed, with its figures
    assert last.startswith("exit 1: failed: "), last  # other verdicts of the naive stack may fail too: named after it
    assert f"available-during-kill (success_ratio {100 * naive['measured']:.2f}%, needs >= 99.00%)" in last, last
    assert not _leftovers(run_dir)


def test_report_rerenders_from_disk_alone(hardened_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = hardened_run
    before = json.loads((run_dir / "analysis.json").read_text())
    (run_dir / "report.md").unlink()
    proc = _chaosml("report", str(run_dir))
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "report.md").exists()
    after = json.loads((run_dir / "analysis.json").read_text())
    assert after["verdicts"] == before["verdicts"]


def test_interrupted_run_recovers_tears_down_and_exits_2(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.cli", "run", str(_experiment(tmp_path, "hardened", "30s")), "--reports-dir", str(reports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait until the first fault is applied, then interrupt like Ctrl-C
    deadline = time.monotonic() + 90
    journal_path = None
    while time.monotonic() < deadline:
        runs = [p for p in reports.iterdir()] if reports.exists() else []
        if runs and (runs[0] / "journal.json").exists():
            journal_path = runs[0] / "journal.json"
            try:
                if json.loads(journal_path.read_text())["fault_events"]:
                    break
            except (json.JSONDecodeError, KeyError):
                pass
        time.sleep(0.2)
    assert journal_path is not None, "the run never started"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 2, out + err
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "aborted"
    assert "SIGINT" in journal["reason"]
    applied = [e for e in journal["fault_events"] if e["action"] == "apply"]
    recovered = [e for e in journal["fault_events"] if e["action"] == "recover"]
    assert len(recovered) == len(applied) >= 1
    assert not _leftovers(journal_path.parent)
    assert "Traceback" not in err
