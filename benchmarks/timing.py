"""Section 3, timing accuracy: fault apply jitter, and measured ready/MTTR vs the supervisor's ground truth.

Real runs of the runner on the local reference stack (profile ``naive``: the gateway round-robins
with no retries or health checks, so every request sent to the killed replica fails until it is
back) with a ``pod-kill`` of one of 2 replicas, once per configured restart delay.

Definitions (per injection; all times from the run's own journal and samples):

- apply jitter = fault event ``t`` - ``detail.planned_at`` (apply and recover events);
- ground truth ready = the supervisor's first ``replica_ready`` of the victim after the apply - apply
  ``t`` (the supervisor probes /readyz every 0.2 s, so the truth itself is late by up to 0.2 s);
- restart delay honoured = ``replica_started`` - ``replica_exited`` of the victim, vs configured;
- ``ready_s`` error = the analysis' ``ready_s`` (analysis.json) - ground truth ready;
- MTTR error = the analysis' traffic-based ``mttr_s`` (windows of ``WINDOW_S`` aligned at apply,
  ``HOLD`` healthy windows in a row, SLO success_ratio >= 0.99) - ground truth ready. MTTR is a
  whole number of windows, so it can only be exact to within one window;
- first answer from the victim = first ok sample answered by the victim replica after the apply -
  apply (traffic's own view of "back").
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import SectionResult, median, percentile
from chaosml.journal import load as load_journal
from chaosml.ledger import STATE_ENV

WINDOW_S = 0.5
HOLD = 2
AT_S = 4.0

EXPERIMENT = """\
version: 1
title: bench timing restart delay {delay:g}s
release: bench
target:
  platform: local
  stack: reference
  profile: naive
  replicas: 2
  restart_delay: {delay:g}s
load:
  users: 8
  spawn_rate: 8
  rate_per_user: 10
  duration: {duration:g}s
  request_timeout: 2s
  mix: {{clean: 1.0}}
  dataset: breast_cancer
steady_state:
  window: {window:g}s
  hold: {hold}
  confidence_threshold: 0.8
  slos:
    - {{name: availability, sli: success_ratio, op: ">=", target: 0.99}}
hypotheses:
  - {{name: ready-again, fault: kill, sli: ready_s, op: "<=", target: 60, agg: max}}
faults:
  - name: kill
    type: pod-kill
    at: {at:g}s
    duration: 1s
    repeat: {{count: {count}, every: {every:g}s}}
    params: {{service: model, mode: one, signal: SIGKILL}}
rollbacks:
  - {{type: wait-ready, params: {{timeout: 30s}}}}
"""


def experiment_text(delay: float, count: int) -> str:
    every = delay + 6.0
    duration = AT_S + (count - 1) * every + delay + 5.0
    return EXPERIMENT.format(delay=delay, duration=duration, window=WINDOW_S, hold=HOLD, at=AT_S,
                             count=count, every=every)


def run_experiment(text: str, reports_dir: Path, log_name: str) -> Path:
    """Run an experiment with the real runner (isolated ledger); returns its run directory."""
    from chaosml.loader import load_experiment_text
    from chaosml.report import report_run
    from chaosml.runner import Runner

    experiment = load_experiment_text(text, f"<bench {log_name}>")
    reports_dir.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    runner = Runner(experiment, experiment_file=f"<bench {log_name}>", experiment_source=text,
                    reports_dir=reports_dir, out=log)
    try:
        result = report_run(runner.run(), log)  # the analysis the injections are checked against
    finally:
        # the runner leaves the load process's stdout pipe to the GC (a ResourceWarning under pytest)
        proc = runner.load_proc
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
    (result.run_dir / "bench-runner.log").write_text(log.getvalue())
    if result.status != "completed":
        raise RuntimeError(f"{log_name}: run {result.status}: {result.reason} ({result.run_dir})")
    return result.run_dir


def jitters_ms(journal: dict[str, Any]) -> list[float]:
    return [
        1000.0 * (float(e["t"]) - float(e["detail"]["planned_at"]))
        for e in journal.get("fault_events") or []
        if (e.get("detail") or {}).get("planned_at") is not None
    ]


def injection_truth(run_dir: Path) -> list[dict[str, Any]]:
    """Ground truth and measured times per injection of a pod-kill run."""
    from chaosml.analysis import read_samples

    journal = load_journal(run_dir).to_dict()
    analysis = json.loads((run_dir / "analysis.json").read_text())
    samples = read_samples(run_dir / "samples.csv")
    delay = float(journal["target"]["restart_delay_s"])
    events = journal["target_events"]
    applies = [e for e in journal["fault_events"] if e["action"] == "apply"]
    by_inj = {(r["fault"], r["injection"]): r for r in analysis["injections"]}
    out = []
    for k, ap in enumerate(applies):
        victim = ap["targets"][0]
        t0 = float(ap["t"])
        bound = float(applies[k + 1]["t"]) if k + 1 < len(applies) else float("inf")

        def first(kind: str, after: float, victim: str = victim, bound: float = bound) -> float | None:
            ts = [float(e["t"]) for e in events if e["kind"] == kind and e["subject"] == victim and after <= e["t"] < bound]
            return min(ts) if ts else None

        exited, ready = first("replica_exited", t0), first("replica_ready", t0)
        started = first("replica_started", exited) if exited is not None else None
        mask = (samples["t"] >= t0) & (samples["t"] < bound) & (samples["outcome"] == "ok") & (
            samples["replica"].astype(object) == victim)
        first_ok = float(samples.loc[mask, "t"].min()) if mask.any() else None
        res = by_inj[(ap["fault"], ap["injection"])]
        truth = None if ready is None else ready - t0
        out.append({
            "restart_delay_s": delay,
            "victim": victim,
            "apply_t": t0,
            "kill_to_exit_s": None if exited is None else exited - t0,
            "restart_delay_honoured_s": None if started is None or exited is None else started - exited,
            "start_to_ready_s": None if ready is None or started is None else ready - started,
            "truth_ready_s": truth,
            "analysis_ready_s": res["ready_s"],
            "analysis_mttr_s": res["mttr_s"],
            "first_ok_from_victim_s": None if first_ok is None else first_ok - t0,
            "ready_error_ms": None if truth is None or res["ready_s"] is None else 1000 * (res["ready_s"] - truth),
            "mttr_error_ms": None if truth is None or res["mttr_s"] is None else 1000 * (res["mttr_s"] - truth),
        })
    return out


def run(quick: bool, workdir: Path) -> SectionResult:
    res = SectionResult("timing", "Timing accuracy: apply jitter; ready/MTTR vs the supervisor's ground truth")
    old_state = os.environ.get(STATE_ENV)
    os.environ[STATE_ENV] = str(workdir / "timing-state")  # an isolated rollback ledger
    try:
        return _run(res, quick, workdir)
    finally:
        if old_state is None:
            os.environ.pop(STATE_ENV, None)
        else:
            os.environ[STATE_ENV] = old_state


def _run(res: SectionResult, quick: bool, workdir: Path) -> SectionResult:
    delays = [1.0] if quick else [1.0, 3.0, 10.0]
    count = 1 if quick else 2
    injections: list[dict[str, Any]] = []
    jitter: list[float] = []
    runs: list[dict[str, Any]] = []
    for delay in delays:
        t = time.monotonic()
        run_dir = run_experiment(experiment_text(delay, count), workdir / "timing-reports", f"delay-{delay:g}s")
        journal = load_journal(run_dir).to_dict()
        jitter += jitters_ms(journal)
        inj = injection_truth(run_dir)
        injections += inj
        runs.append({"restart_delay_s": delay, "run_dir": str(run_dir), "wall_s": time.monotonic() - t,
                     "requests": journal["load"].get("requests")})
    res.details = {"window_s": WINDOW_S, "hold": HOLD, "runs": runs, "injections": injections,
                   "apply_jitter_ms": jitter}
    res.add("apply_jitter_p50", percentile(jitter, 50), "ms", "<=", 10.0,
            note=f"event t - planned_at over {len(jitter)} apply/recover events")
    res.add("apply_jitter_max", max(jitter), "ms", "<=", 100.0)
    for delay in delays:
        rows = [r for r in injections if r["restart_delay_s"] == delay]
        tag = f"{delay:g}s"
        missing = [r for r in rows if r["truth_ready_s"] is None or r["mttr_error_ms"] is None]
        if missing:
            res.add(f"mttr_error_delay_{tag}", None, "ms", note=f"{len(missing)} injection(s) without ready or MTTR")
            continue
        res.add(f"restart_delay_error_{tag}", 1000 * (median([r["restart_delay_honoured_s"] for r in rows]) - delay),
                "ms", "<=", 100.0, note=f"supervisor: replica_exited -> replica_started minus the configured {tag}")
        res.add(f"truth_ready_delay_{tag}", median([r["truth_ready_s"] for r in rows]), "s",
                note="apply -> supervisor's replica_ready (delay + process start + probe)")
        res.add(f"ready_s_error_delay_{tag}", max(abs(r["ready_error_ms"]) for r in rows), "ms", "<=", 1.0,
                note=f"max |analysis ready_s - truth| over {len(rows)} injections")
        res.add(f"mttr_error_delay_{tag}", max(abs(r["mttr_error_ms"]) for r in rows), "ms", "<=", 1000 * WINDOW_S,
                note=f"max |traffic MTTR - truth|; MTTR counts whole {WINDOW_S:g} s windows")
        lead = [r["first_ok_from_victim_s"] - r["truth_ready_s"] for r in rows if r["first_ok_from_victim_s"] is not None]
        if lead:
            res.add(f"first_ok_from_victim_minus_truth_{tag}", 1000 * median(lead), "ms",
                    note="traffic's first ok answer from the victim - supervisor ready (median)")
    return res
