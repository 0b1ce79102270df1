"""MTTR against ground truth on real runs: kill the only replica of the naive local stack with known restart delays.

``python -m benchmarks.mttr_truth [--delays 1,3,10] [--workdir DIR] [--json]``, or the suite's
section ``mttr`` (``chaosml bench --only mttr``).

For each restart delay, one real ``chaosml run`` (fresh process, isolated state and reports
directory): one model replica behind the naive gateway, so every request fails from the kill until
the replica answers again, and the recovery edge is sharp. Ground truth comes from outside the run:
this process probes the stack's entry URL every ``PROBE_EVERY_S`` with a clean payload while the
load runs; the edge is the midpoint between the last failed probe and the first answered one after
the kill (+- half their gap). The supervisor's ``replica_ready`` event (polled every 0.2 s, so up to
that late) is shown beside it. The figure is ``|MTTR - ground truth|`` per delay, against the goal
of at most 100 ms, with the precision the analysis states for each MTTR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import SectionResult

GOAL_S = 0.1
KILL_AT_S = 5.0
AFTER_S = 8.0  # load after the replica is back: enough healthy windows to confirm recovery
PROBE_EVERY_S = 0.02
PROBE_TIMEOUT_S = 0.5


class Prober:
    """Probes a run's entry URL from the moment its load starts until stopped: (send time, answered 2xx)."""

    def __init__(self, reports: Path) -> None:
        self.reports = reports
        self.results: list[tuple[float, bool]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _target(self) -> tuple[str, bytes] | None:
        """(URL, body) once a run's load has started: its load config names both."""
        for config in self.reports.glob("*/load-config.json"):
            try:
                cfg = json.loads(config.read_text())
                body = json.loads(Path(cfg["payloads_file"]).read_text())["clean"][0]["body"]
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                continue
            return str(cfg["target_url"]).rstrip("/") + str(cfg["path"]), json.dumps(body).encode()
        return None

    def _run(self) -> None:
        target = None
        while target is None and not self.stop.wait(0.1):
            target = self._target()
        while target is not None and not self.stop.is_set():
            t = time.time()
            req = urllib.request.Request(target[0], data=target[1], headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=PROBE_TIMEOUT_S) as r:
                    ok = 200 <= r.status < 300
                    r.read()
            except (urllib.error.URLError, OSError, ValueError):
                ok = False
            self.results.append((t, ok))
            self.stop.wait(max(0.0, PROBE_EVERY_S - (time.time() - t)))

    def edge(self, apply_t: float, load_end: float) -> tuple[float | None, float | None]:
        """(seconds from apply to the end of the first outage after it, +- precision); None when the
        probes saw no outage, or it lasted to load end (the stack is stopped then)."""
        after = [(t, ok) for t, ok in self.results if apply_t <= t <= load_end]
        first_bad = next((i for i, (_, ok) in enumerate(after) if not ok), None)
        if first_bad is None:
            return None, None
        back = next((i for i in range(first_bad, len(after)) if after[i][1]), None)
        if back is None:
            return None, None
        t_bad, t_ok = after[back - 1][0], after[back][0]
        return (t_bad + t_ok) / 2.0 - apply_t, (t_ok - t_bad) / 2.0


def experiment(delay_s: float) -> dict[str, Any]:
    """One replica, naive gateway, killed once at KILL_AT_S; 40 requests/s."""
    return {
        "version": 1,
        "title": f"MTTR ground truth, restart delay {delay_s:g} s",
        "release": "naive",
        "target": {"platform": "local", "profile": "naive", "replicas": 1, "restart_delay": f"{delay_s:g}s"},
        "load": {
            "users": 4,
            "spawn_rate": 20,
            "rate_per_user": 10,
            "duration": f"{KILL_AT_S + delay_s + AFTER_S:g}s",
            "request_timeout": "1s",
            "mix": {"clean": 1.0},
        },
        "steady_state": {
            "window": "1s",
            "hold": 2,
            "slos": [{"name": "availability", "sli": "success_ratio", "op": ">=", "target": 0.95, "phases": ["baseline", "after"]}],
        },
        "faults": [
            {"name": "kill", "type": "pod-kill", "at": f"{KILL_AT_S:g}s", "duration": "1s",
             "params": {"service": "model", "mode": "one", "signal": "SIGKILL"}},
        ],
        "rollbacks": [{"type": "wait-ready", "params": {"timeout": "30s"}}],
    }


def measure(delay_s: float, workdir: Path) -> dict[str, Any]:
    """One real run with this restart delay; its MTTR, ground truth and error."""
    work = workdir / f"delay-{delay_s:g}"
    work.mkdir(parents=True, exist_ok=True)
    exp = work / "experiment.yaml"
    exp.write_text(yaml.safe_dump(experiment(delay_s), sort_keys=False))
    env = {**os.environ, "CHAOSML_STATE_DIR": str(work / "state"), "MPLBACKEND": "Agg"}
    reports = work / "reports"
    prober = Prober(reports)
    try:
        proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                              capture_output=True, text=True, env=env, timeout=180 + 2 * delay_s, check=False)
    finally:
        prober.stop.set()
        prober.thread.join(timeout=5)
    (work / "run.log").write_text(proc.stdout + proc.stderr)
    (work / "probes.json").write_text(json.dumps(prober.results))
    dirs = [p for p in reports.iterdir() if p.is_dir()] if reports.exists() else []
    if proc.returncode not in (0, 1) or not dirs:
        raise RuntimeError(f"chaosml run exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}")
    run_dir = max(dirs, key=lambda p: p.stat().st_mtime)
    journal = json.loads((run_dir / "journal.json").read_text())
    analysis = json.loads((run_dir / "analysis.json").read_text())
    (inj,) = analysis["injections"]
    apply_t = float(inj["apply_t"])
    ready = sorted(float(e["t"]) for e in journal["target_events"] if e.get("kind") == "replica_ready" and float(e["t"]) > apply_t)
    truth, truth_precision = prober.edge(apply_t, float(journal["load"]["ended_at"]))
    mttr = inj["mttr_s"]
    error = None if mttr is None or truth is None else abs(mttr - truth)
    return {
        "restart_delay_s": delay_s,
        "ground_truth_s": truth,
        "ground_truth_precision_s": truth_precision,
        "probes": len(prober.results),
        "replica_ready_s": ready[0] - apply_t if ready else None,
        "mttr_s": mttr,
        "mttr_precision_s": inj.get("mttr_precision_s"),
        "error_s": error,
        "within_goal": error is not None and error <= GOAL_S,
        "run_dir": str(run_dir),
    }


def run(quick: bool, workdir: Path) -> SectionResult:
    """Section ``mttr`` of the suite: the MTTR error per restart delay (1 s in --quick; 1, 3, 10 s otherwise)."""
    res = SectionResult("mttr", "MTTR vs an outside probe on real restarts of the only replica")
    delays = [1.0] if quick else [1.0, 3.0, 10.0]
    rows = [measure(d, workdir / "mttr") for d in delays]
    res.details = {"goal_s": GOAL_S, "probe_every_s": PROBE_EVERY_S, "results": rows}
    for r in rows:
        tag = f"{r['restart_delay_s']:g}s"
        truth = r["ground_truth_s"]
        res.add(f"mttr_delay_{tag}", r["mttr_s"], "s",
                note=f"analysis MTTR +- {r['mttr_precision_s']} s (its stated precision)")
        res.add(f"mttr_truth_delay_{tag}", truth, "s",
                note=f"outside probe every {PROBE_EVERY_S * 1000:g} ms: last failed / first answered midpoint"
                f" +- {r['ground_truth_precision_s']} s")
        error = r["error_s"]
        res.add(f"mttr_error_delay_{tag}", None if error is None else 1000 * error, "ms", "<=", 1000 * GOAL_S,
                note="|MTTR - ground truth|" if error is not None
                else "NOT MEASURED: " + ("no MTTR" if r["mttr_s"] is None else "the probe saw no recovery edge"))
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mttr_truth", description=__doc__.splitlines()[0])
    ap.add_argument("--delays", default="1,3,10", help="restart delays in seconds, comma-separated (default 1,3,10)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    delays = [float(x) for x in args.delays.split(",") if x.strip()]
    with tempfile.TemporaryDirectory(prefix="mttr-truth-") as tmp:
        workdir = args.workdir or Path(tmp)
        rows = [measure(d, workdir) for d in delays]
    if args.json:
        print(json.dumps({"goal_s": GOAL_S, "results": rows}, indent=2))
    else:
        print(f"MTTR vs ground truth (probes every {PROBE_EVERY_S * 1000:.0f} ms from outside the run); "
              f"goal: error <= {GOAL_S * 1000:.0f} ms")
        print(f"{'delay':>7} {'truth':>8} {'+-':>6} {'ready ev':>8} {'MTTR':>8} {'+-':>6} {'error':>8}  goal")
        for r in rows:
            def f(x: float | None) -> str:
                return "n/a" if x is None else f"{x:.3f}"
            err = "n/a" if r["error_s"] is None else f"{r['error_s'] * 1000:.0f} ms"
            print(f"{r['restart_delay_s']:>6g}s {f(r['ground_truth_s']):>8} {f(r['ground_truth_precision_s']):>6} "
                  f"{f(r['replica_ready_s']):>8} {f(r['mttr_s']):>8} {f(r['mttr_precision_s']):>6} {err:>8}  "
                  f"{'ok' if r['within_goal'] else 'MISSED'}")
    return 0 if all(r["within_goal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
