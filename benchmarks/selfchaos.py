"""Self-chaos soak: SIGKILL the harness at random moments of real runs, roll back, check nothing is left.

    .venv/bin/python tests/selfchaos/selfchaos_soak.py --trials 100            # the long soak (~15 min)
    .venv/bin/python tests/selfchaos/selfchaos_soak.py --trials 10 --seed 7    # what CI runs (via the test)

Each trial: `chaosml run` a short experiment (load 12 s: a replica kill at 3 s and 7 s, a latency
toxic on the feature-store link at 2-5 s, corrupted feature-store rows at 6-9 s) in its own
session; SIGKILL the harness process alone at a random moment between its start and the end of
the run (before the stack is up, during baseline, inside or between fault windows, during the
report); then `chaosml rollback`, and check: it exits 0; every fault open at the kill was undone by its
offline undoer (the toxic removed by name, the rows restored with RESTORE and their DUMP bytes
checked equal) before the stack itself was stopped; no process carrying the run's token is left;
the ledger has no open entry; a run that had started has a readable journal that `chaosml
report` renders. A trial fails on any of these.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

EXPERIMENT = """\
version: 1
title: Self-chaos trial
target: {{platform: local, profile: hardened, replicas: 2, restart_delay: 1s}}
load: {{users: 4, spawn_rate: 20, rate_per_user: 5, duration: 12s}}
steady_state:
  slos:
    - {{name: availability, sli: success_ratio, op: ">=", target: 0.9, phases: [baseline]}}
hypotheses:
  - {{name: up, during: kill, sli: success_ratio, op: ">=", target: 0.5}}
faults:
{faults}
"""

FAULTS = """\
  - {name: kill, type: pod-kill, at: 3s, duration: 3s, repeat: {count: 2, every: 4s}, params: {mode: one}}
  - {name: slow-store, type: network-latency, at: 2s, duration: 3s, params: {link: feature-store, latency_ms: 50}}
  - {name: poison, type: corrupted-features, at: 6s, duration: 3s, params: {mode: nan, fraction: 0.2}}
"""

MAX_KILL_AT_S = 22.0  # the whole run (start ~3 s + load 12 s + report ~3 s) fits in this


@dataclass
class Trial:
    index: int
    kill_at_s: float
    phase: str = ""
    undone: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def restored(self) -> bool:
        return not self.problems


def _chaosml(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaosml.cli", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def _ledger_lines(state: Path) -> list[dict]:
    path = state / "ledger.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def _alive_in_trial(trial_dir: Path) -> list[int]:
    """Live processes working inside the trial's directory (every process a run starts does; the
    environment token alone misses redis-server, which rewrites its environment block)."""
    root = str(trial_dir.resolve())
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(d / "cwd").removesuffix(" (deleted)")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + os.sep)) and stat[stat.rindex(")") + 2] != "Z":
            pids.append(int(d.name))
    return pids


def run_trial(index: int, rng: random.Random, workdir: Path, faults: str = FAULTS) -> Trial:
    trial = Trial(index=index, kill_at_s=round(rng.uniform(0.3, MAX_KILL_AT_S), 2))
    tdir = workdir / f"trial-{index:03d}"
    state = tdir / "state"
    reports = tdir / "reports"
    state.mkdir(parents=True)
    exp = tdir / "exp.yaml"
    exp.write_text(EXPERIMENT.format(faults=faults))
    env = {**os.environ, "CHAOSML_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )
    try:
        proc.wait(timeout=trial.kill_at_s)
        trial.phase = "finished before the kill"
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)  # the harness alone: its children live on, orphaned
        proc.wait()
    runs = [p for p in reports.iterdir()] if reports.exists() else []
    journal: dict = {}
    if runs:
        try:
            journal = json.loads((runs[0] / "journal.json").read_text())
        except (OSError, ValueError) as exc:
            trial.problems.append(f"journal unreadable after the kill: {exc}")
    if not trial.phase:
        events = journal.get("fault_events", [])
        applied = sum(e["action"] == "apply" for e in events) - sum(e["action"] == "recover" for e in events)
        trial.phase = (
            "before the run dir" if not runs else
            "starting the target" if not journal.get("target") else
            "baseline" if not events else
            f"inside a fault window ({applied} applied)" if applied else
            "after a recover" if journal.get("status") == "running" else
            f"after the run ({journal.get('status')})"
        )
    lines = _ledger_lines(state)
    closed_before = {d["id"] for d in lines if d.get("op") == "close"}
    open_faults = [d for d in lines if d.get("op") == "open" and d.get("kind") == "fault" and d["id"] not in closed_before]

    rb = _chaosml("rollback", env=env)
    if rb.returncode != 0:
        trial.problems.append(f"rollback exited {rb.returncode}: {rb.stderr.strip()}")
    trial.undone = [line for line in rb.stdout.splitlines() if line.startswith("undone:")]
    for d in open_faults:
        label = f"{d['fault']} #{(d.get('injection') or 0) + 1} ({d['type']})"
        if not any(label in line for line in trial.undone):
            trial.problems.append(f"fault {label} open at the kill was not undone: {rb.stdout.strip()}")
    left = _alive_in_trial(tdir)
    if left:
        trial.problems.append(f"processes left after rollback: {left}")
        for pid in left:
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    opened = {d["id"] for d in _ledger_lines(state) if d.get("op") == "open"}
    closed = {d["id"] for d in _ledger_lines(state) if d.get("op") == "close"}
    if opened - closed:
        trial.problems.append(f"{len(opened - closed)} ledger entries still open")
    if runs and journal:
        rep = _chaosml("report", str(runs[0]), env=env)
        if rep.returncode != 0:
            trial.problems.append(f"report of the killed run failed: {rep.stderr.strip()[-300:]}")
    return trial


def soak(trials: int, seed: int, workdir: Path, faults: str = FAULTS, out=sys.stdout) -> list[Trial]:
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        t0 = time.monotonic()
        trial = run_trial(i, rng, workdir, faults)
        results.append(trial)
        status = "restored" if trial.restored else "NOT RESTORED: " + "; ".join(trial.problems)
        print(f"trial {i + 1:3d}/{trials}: killed at {trial.kill_at_s:5.2f}s ({trial.phase}); "
              f"{len(trial.undone)} undone; {status} [{time.monotonic() - t0:.1f}s]", file=out, flush=True)
    ok = sum(t.restored for t in results)
    print(f"{ok} of {trials} trials restored", file=out, flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaosml-soak-") as tmp:
        results = soak(args.trials, args.seed, Path(tmp))
    return 0 if all(t.restored for t in results) else 1


if __name__ == "__main__":
    sys.exit(main())
