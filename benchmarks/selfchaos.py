"""Self-chaos soak: break the harness at random moments of real runs, roll back, check nothing is left and no bystander was harmed.

    .venv/bin/python -m benchmarks.selfchaos --trials 100            # the benchmark soak (~30 min)
    .venv/bin/python -m benchmarks.selfchaos --trials 10 --seed 7    # what CI runs (tests/selfchaos)

Each trial runs `chaosml run` on a short experiment (load 12 s: a replica kill at 3 s and 7 s; on
the reference stack also a latency toxic on the feature-store link at 2-5 s and corrupted
feature-store rows at 6-9 s) in its own session, with one adversity taken in turn from
:data:`ADVERSITIES`:

- ``sigkill``: SIGKILL the harness alone at a random moment (before the stack is up, in baseline,
  inside or between fault windows, during the report);
- ``torn-ledger``: as ``sigkill``, the ledger's last line torn (power loss) before the run starts;
- ``bystander``: as ``sigkill``, with a process the run did not start working inside the run
  directory (the user's shell); rollback must leave it alone;
- ``own-service``: as ``sigkill`` (the kill 0-14 s after the stack is up), on a user stack
  (``target.services``) whose ``cache`` service is ``redis-server`` (it rewrites its environment
  block) running in the caller's directory;
- ``signals``: 1 to 5 SIGINTs 0.25 s apart, the first close to a planned recover; the harness
  must recover every fault itself (no open ledger entry, nothing for rollback) and exit 2
  (or finish normally when the signals came after the end).

Then `chaosml rollback`, and check: it exits 0; every fault open at the kill was undone by its
offline undoer; no process is left working in the trial's directory; the ledger has no open
entry; a torn line is reported with its file and line; the bystander lives; a run that started
has a readable journal that `chaosml report` renders. A trial fails on any of these.
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
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
ECHO_SERVER = ROOT / "tests" / "byo" / "echo_server.py"

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

#: a user stack: the model is an echo server; the cache is redis-server, run where the user runs chaosml
OWN_SERVICE_EXPERIMENT = """\
version: 1
title: Self-chaos trial (own stack)
target:
  platform: local
  restart_delay: 1s
  services:
    - {{name: model, command: ["{{python}}", "{server}", "{{port}}"], health: /health, replicas: 2, start_timeout: 20s}}
    - {{name: cache, command: ["{redis}", "--port", "{{port}}", "--save", "", "--appendonly", "no"], health: tcp, start_timeout: 20s}}
  entry: {{service: model}}
request: {{path: /infer, body: kserve-v2}}
response: {{prediction: "outputs[0].data[0]", confidence: "outputs[1].data", model_version: version, served_by: not-exposed,
           replica: "header:X-Replica"}}
load: {{users: 4, spawn_rate: 20, rate_per_user: 5, duration: 12s}}
hypotheses:
  - {{name: up, during: kill, sli: success_ratio, op: ">=", target: 0.3}}
faults:
  - {{name: kill, type: pod-kill, at: 3s, duration: 3s, repeat: {{count: 2, every: 4s}}, params: {{service: model, mode: one}}}}
"""

ADVERSITIES = ("sigkill", "torn-ledger", "bystander", "own-service", "signals")
MAX_KILL_AT_S = 22.0  # the whole run (start ~3 s + load 12 s + report ~3 s) fits in this
STACK_UP_S = 60.0  # how long an own-service trial waits for the user's stack to be up before its kill clock starts
HARNESS_EXIT_S = 60.0  # how long a signalled harness may take to recover and exit
TORN_TAIL = '{"op":"open","id":"torn-by-a-power-loss","t":1,"run_id":"old","run_d'


@dataclass
class Trial:
    index: int
    adversity: str
    kill_at_s: float
    phase: str = ""
    signals: int = 0
    undone: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    bystander_harmed: bool = False

    @property
    def restored(self) -> bool:
        return not self.problems


def _chaosml(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaosml.cli", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def _ledger_lines(state: Path) -> list[dict[str, Any]]:
    path = state / "ledger.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if isinstance(d, dict):
            out.append(d)
    return out


def _open_ids(state: Path) -> set[str]:
    lines = _ledger_lines(state)
    return {d["id"] for d in lines if d.get("op") == "open"} - {d["id"] for d in lines if d.get("op") == "close"}


def _alive_in_trial(trial_dir: Path, spare_session: int | None) -> list[int]:
    """Live processes working inside the trial's directory (the run dir, the caller's dir), but the bystander's session."""
    root = str(trial_dir.resolve())
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if spare_session is not None and os.getsid(int(d.name)) == spare_session:
                continue
            cwd = os.readlink(d / "cwd").removesuffix(" (deleted)")
            stat = (d / "stat").read_text()
        except OSError:
            continue
        if (cwd == root or cwd.startswith(root + os.sep)) and stat[stat.rindex(")") + 2] != "Z":
            pids.append(int(d.name))
    return pids


def _read_journal(reports: Path) -> tuple[Path | None, dict[str, Any]]:
    runs = list(reports.iterdir()) if reports.exists() else []
    if not runs:
        return None, {}
    try:
        return runs[0], json.loads((runs[0] / "journal.json").read_text())
    except (OSError, ValueError):
        return runs[0], {}


def _experiment(adversity: str) -> str:
    if adversity == "own-service":
        from chaosml.stack.featurestore import redis_server_binary

        return OWN_SERVICE_EXPERIMENT.format(server=ECHO_SERVER, redis=redis_server_binary())
    return EXPERIMENT.format(faults=FAULTS)


def _signal_during_recover(proc: subprocess.Popen[bytes], reports: Path, trial: Trial, rng: random.Random) -> None:
    """Send ``trial.signals`` SIGINTs, the first near a planned recover; wait (bounded) for the harness to exit."""
    deadline = time.monotonic() + MAX_KILL_AT_S
    ends: list[float] = []
    while not ends and proc.poll() is None and time.monotonic() < deadline:
        ends = [float(t["planned_end"]) for t in _read_journal(reports)[1].get("timeline") or []]
        time.sleep(0.05)
    if proc.poll() is not None:
        trial.phase = f"finished before the signals (exit {proc.returncode})"
        return
    if not ends:
        trial.phase = "no fault timeline within the trial's time: signalled anyway"
    else:
        at = rng.choice(ends) + rng.uniform(-0.05, 0.15)
        time.sleep(max(0.0, at - time.time()))
    for _ in range(trial.signals):
        if proc.poll() is not None:
            break
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(0.25)
    try:
        code = proc.wait(timeout=HARNESS_EXIT_S)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        trial.problems.append(f"signal handling: the harness did not exit within {HARNESS_EXIT_S:.0f}s of {trial.signals} SIGINT(s)")
        return
    trial.phase = trial.phase or f"{trial.signals} SIGINT(s) near a recover: exit {code}"
    if code not in (0, 1, 2):
        trial.problems.append(f"signal handling: the harness exited {code} after {trial.signals} SIGINT(s) (expected 2, or 0/1 when it had finished)")


def run_trial(index: int, rng: random.Random, workdir: Path) -> Trial:
    adversity = ADVERSITIES[index % len(ADVERSITIES)]
    trial = Trial(index=index, adversity=adversity, kill_at_s=round(rng.uniform(0.3, MAX_KILL_AT_S), 2))
    tdir = workdir / f"trial-{index:03d}"
    state, reports, caller = tdir / "state", tdir / "reports", tdir / "caller"
    for d in (state, caller):
        d.mkdir(parents=True)
    if adversity == "torn-ledger":
        (state / "ledger.jsonl").write_text(TORN_TAIL)  # a power loss mid-write: no newline
    exp = tdir / "exp.yaml"
    exp.write_text(_experiment(adversity))
    env = {**os.environ, "CHAOSML_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=caller, start_new_session=True,
    )
    bystander: subprocess.Popen[bytes] | None = None
    t0 = time.monotonic()
    if adversity == "bystander":  # the user's shell, in the run directory as soon as it exists
        while proc.poll() is None and time.monotonic() - t0 < trial.kill_at_s:
            run_dir, _ = _read_journal(reports)
            if run_dir is not None:
                bystander = subprocess.Popen(["sh", "-c", "sleep 600"], cwd=run_dir, start_new_session=True)
                break
            time.sleep(0.05)
    if adversity == "own-service":  # the point is the user's services: kill once they run (bounded wait)
        trial.kill_at_s = round(rng.uniform(0.0, 14.0), 2)
        while proc.poll() is None and time.monotonic() - t0 < STACK_UP_S and not _read_journal(reports)[1].get("target"):
            time.sleep(0.05)
        t0 = time.monotonic()
    if adversity == "signals":
        trial.signals = rng.randint(1, 5)
        _signal_during_recover(proc, reports, trial, rng)
    else:
        try:
            proc.wait(timeout=max(0.0, trial.kill_at_s - (time.monotonic() - t0)))
            trial.phase = "finished before the kill"
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # the harness alone: its children live on, orphaned
            proc.wait()
    run_dir, journal = _read_journal(reports)
    if run_dir is not None and not journal:
        trial.problems.append("journal unreadable after the harness ended")
    if not trial.phase:
        events = journal.get("fault_events", [])
        applied = sum(e["action"] == "apply" for e in events) - sum(e["action"] == "recover" for e in events)
        trial.phase = (
            "before the run dir" if run_dir is None else
            "starting the target" if not journal.get("target") else
            "baseline" if not events else
            f"inside a fault window ({applied} applied)" if applied else
            "after a recover" if journal.get("status") == "running" else
            f"after the run ({journal.get('status')})"
        )
    lines = _ledger_lines(state)
    left_open = _open_ids(state)
    open_faults = [d for d in lines if d.get("op") == "open" and d.get("kind") == "fault" and d["id"] in left_open]
    if adversity == "signals" and left_open:
        trial.problems.append(f"signal handling: {len(left_open)} ledger entr(y/ies) left open by the signalled harness")

    rb = _chaosml("rollback", env=env)
    if rb.returncode != 0:
        trial.problems.append(f"rollback exited {rb.returncode}: {rb.stderr.strip()}")
    trial.undone = [line for line in rb.stdout.splitlines() if line.startswith("undone:")]
    for d in open_faults:
        label = f"{d['fault']} #{(d.get('injection') or 0) + 1} ({d['type']})"
        if not any(label in line for line in trial.undone):
            trial.problems.append(f"fault {label} open when the harness ended was not undone: {rb.stdout.strip()}")
    if adversity == "torn-ledger" and f"{state / 'ledger.jsonl'}:1:" not in rb.stderr:
        trial.problems.append(f"the torn ledger line was not reported: {rb.stderr.strip()}")
    left = _alive_in_trial(tdir, bystander.pid if bystander is not None else None)
    if left:
        trial.problems.append(f"processes left after rollback: {left}")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    if bystander is not None:
        if bystander.poll() is not None:
            trial.bystander_harmed = True
            trial.problems.append(f"the bystander in the run directory was stopped (exit {bystander.returncode})")
        else:
            os.killpg(bystander.pid, signal.SIGKILL)  # the shell and its sleep
        bystander.wait()
    if _open_ids(state):
        trial.problems.append(f"{len(_open_ids(state))} ledger entries still open")
    if run_dir is not None and journal:
        rep = _chaosml("report", str(run_dir), env=env)
        # `chaosml report` exits as the run did (0 passed, 1 failed/inconclusive, 2 interrupted or partial); 3 and 4
        # mean it could not render, and a rendered report leaves report.html
        if rep.returncode not in (0, 1, 2) or not (Path(run_dir) / "report.html").is_file():
            trial.problems.append(f"report of the run failed (exit {rep.returncode}): {rep.stderr.strip()[-300:]}")
    return trial


def soak(trials: int, seed: int, workdir: Path, out: IO[str] = sys.stdout) -> list[Trial]:
    rng = random.Random(seed)
    results = []
    for i in range(trials):
        t0 = time.monotonic()
        trial = run_trial(i, rng, workdir)
        results.append(trial)
        status = "restored" if trial.restored else "NOT RESTORED: " + "; ".join(trial.problems)
        when = f"{trial.signals} SIGINT(s)" if trial.adversity == "signals" else f"killed at {trial.kill_at_s:5.2f}s"
        print(f"trial {i + 1:3d}/{trials} [{trial.adversity}]: {when} ({trial.phase}); "
              f"{len(trial.undone)} undone; {status} [{time.monotonic() - t0:.1f}s]", file=out, flush=True)
    ok = sum(t.restored for t in results)
    harmed = sum(t.bystander_harmed for t in results)
    print(f"{ok} of {trials} trials restored; {harmed} bystander(s) harmed", file=out, flush=True)
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
