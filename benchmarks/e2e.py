"""Section 5, end to end: wall time of ``chaosml run experiments/quickstart.yaml`` to a rendered report, and of ``chaosml report``.

Both are the real command in a fresh process (``python -m chaosml.cli``), with an isolated
rollback ledger and reports directory. The journal splits the run's wall time into target
start, load (the experiment's configured duration), and the rest (stop, analysis, render).
``--quick`` runs the same experiment with a 14 s load and one injection.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import SectionResult, python_env
from chaosml.journal import load as load_journal
from chaosml.loader import parse_duration

QUICKSTART = Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"


def experiment_file(quick: bool, workdir: Path) -> Path:
    if not quick:
        return QUICKSTART
    data = yaml.safe_load(QUICKSTART.read_text())
    data["load"]["duration"] = "14s"
    for fault in data["faults"]:
        fault["at"] = "4s"
        fault["repeat"] = {"count": 1, "every": "15s"}
    path = workdir / "quickstart-quick.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _timed(argv: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout_s, check=False)
    return time.monotonic() - t0, proc


def run(quick: bool, workdir: Path) -> SectionResult:
    res = SectionResult("e2e", "End to end: quickstart from command to report; chaosml report on an existing run")
    workdir.mkdir(parents=True, exist_ok=True)
    reports = workdir / "e2e-reports"
    env = python_env({"CHAOSML_STATE_DIR": str(workdir / "e2e-state"), "MPLBACKEND": "Agg"})
    exp = experiment_file(quick, workdir)
    t_cmd = time.time()
    wall, proc = _timed([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                        env, workdir, 300)
    (workdir / "e2e-run.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"chaosml run exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}")
    run_dir = max(reports.iterdir(), key=lambda p: p.stat().st_mtime)
    if not (run_dir / "report.html").exists():
        raise RuntimeError(f"chaosml run left no report in {run_dir}")
    journal = load_journal(run_dir).to_dict()
    report_wall, rproc = _timed([sys.executable, "-m", "chaosml.cli", "report", str(run_dir)], env, workdir, 120)
    if rproc.returncode != 0:
        raise RuntimeError(f"chaosml report exited {rproc.returncode}: {rproc.stderr.strip()[-1500:]}")
    load = journal.get("load") or {}
    configured = parse_duration(yaml.safe_load(exp.read_text())["load"]["duration"])
    split: dict[str, Any] = {
        "command_to_run_start_s": journal["started_at"] - t_cmd,
        "target_start_s": load["started_at"] - journal["started_at"] if load.get("started_at") else None,
        "load_s": load["ended_at"] - load["started_at"] if load.get("ended_at") else None,
        "after_load_s": journal["ended_at"] - load["ended_at"] if load.get("ended_at") else None,
        "analysis_render_exit_s": t_cmd + wall - journal["ended_at"],
    }
    res.details = {"experiment": str(exp), "run_dir": str(run_dir), "exit_code": proc.returncode,
                   "requests": load.get("requests"), "split_s": split, "configured_load_s": configured,
                   "samples_rows": len((run_dir / "samples.csv").read_bytes().splitlines()) - 1}
    variant = "quick variant: 14 s load, 1 kill" if quick else "experiments/quickstart.yaml"
    res.add("quickstart_wall_time", wall, "s", note=f"chaosml run, command to report ({variant})")
    res.add("run_overhead", wall - configured, "s", "<=", 20.0,
            note=f"wall - configured load; target start {split['target_start_s']:.1f} s, "
                 f"load ran {split['load_s']:.1f} s, analysis+render+exit {split['analysis_render_exit_s']:.1f} s")
    res.add("report_rerender_time", report_wall, "s", "<=", 5.0,
            note=f"chaosml report on that run ({res.details['samples_rows']} samples), incl. interpreter start")
    return res
