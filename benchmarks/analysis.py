"""Section 4, analysis scale: time and peak memory of ``render_report`` on synthetic runs of 100k, 1M, 5M samples.

For each size a synthetic run directory is generated with numpy (a 20-minute run, 3 cohorts,
3 replicas, a pod-kill every 100 s whose victim answers 502 until its restart delay has passed,
journal with fault and target events), then a FRESH process (``python -m benchmarks.analysis
RUN_DIR``) runs the real ``render_report`` (read_samples, analyze: phases, SLIs per cohort,
TTD/MTTR/ready, verdicts, degradation; plots; Markdown/HTML/JUnit) with its stages timed and
reports its peak RSS (``ru_maxrss``), so peaks never accumulate across sizes.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SectionResult, python_env

DURATION_S = 1200.0
START_T = 1_790_000_000.0
REPLICAS = ("model-0", "model-1", "model-2")
COHORTS = ("clean", "missing-features", "out-of-range")
KILL_AT_S, KILL_EVERY_S, KILL_COUNT, KILL_FOR_S, RESTART_S = 60.0, 100.0, 11, 8.0, 2.0

EXPERIMENT = f"""\
version: 1
title: bench synthetic analysis run
release: bench
target:
  platform: local
  stack: reference
  profile: hardened
  replicas: 3
  restart_delay: {RESTART_S:g}s
load:
  users: 100
  spawn_rate: 100
  duration: {DURATION_S:g}s
  request_timeout: 2s
  mix: {{clean: 0.8, missing-features: 0.1, out-of-range: 0.1}}
  dataset: breast_cancer
steady_state:
  window: 1s
  hold: 3
  confidence_threshold: 0.8
  slos:
    - {{name: availability, sli: success_ratio, op: ">=", target: 0.99, phases: [baseline, after]}}
    - {{name: p99-latency, sli: latency_p99_ms, op: "<=", target: 500, phases: [baseline, after]}}
hypotheses:
  - {{name: available-during-kill, during: kill-replica, sli: success_ratio, op: ">=", target: 0.99}}
  - {{name: accurate-during-kill, during: kill-replica, sli: accuracy, op: ">=", target: 0.9}}
  - {{name: clean-accurate, during: kill-replica, sli: accuracy, op: ">=", target: 0.9, cohort: clean}}
  - {{name: slo-recovers-fast, fault: kill-replica, sli: mttr_s, op: "<=", target: 10, agg: max}}
  - {{name: replica-replaced, fault: kill-replica, sli: ready_s, op: "<=", target: 10, agg: max}}
faults:
  - name: kill-replica
    type: pod-kill
    at: {KILL_AT_S:g}s
    duration: {KILL_FOR_S:g}s
    repeat: {{count: {KILL_COUNT}, every: {KILL_EVERY_S:g}s}}
    params: {{service: model, mode: one, signal: SIGKILL}}
"""


def make_run(run_dir: Path, n: int, seed: int = 0) -> dict[str, Any]:
    """Write journal.json and samples.csv of a synthetic run with ``n`` samples."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    t = START_T + np.sort(rng.uniform(0.0, DURATION_S, n))
    replica = rng.integers(0, len(REPLICAS), n)
    fault_events, target_events = [], []
    status = np.full(n, 200, dtype=np.int32)
    for k in range(KILL_COUNT):
        t0 = START_T + KILL_AT_S + k * KILL_EVERY_S
        victim = k % len(REPLICAS)
        name = REPLICAS[victim]
        fault_events.append({"t": t0, "fault": "kill-replica", "injection": k, "action": "apply", "ok": True,
                             "targets": [name], "detail": {"planned_at": t0 - 0.001}})
        fault_events.append({"t": t0 + KILL_FOR_S, "fault": "kill-replica", "injection": k, "action": "recover",
                             "ok": True, "targets": [name], "detail": {"planned_at": t0 + KILL_FOR_S}})
        for dt, kind in ((0.0, "replica_killed"), (0.03, "replica_exited"), (0.03, "replica_unready"),
                         (RESTART_S + 0.05, "replica_started"), (RESTART_S + 0.7, "replica_ready")):
            target_events.append({"t": t0 + dt, "kind": kind, "subject": name, "detail": {}})
        down = (t >= t0) & (t < t0 + RESTART_S + 0.7) & (replica == victim)
        status[down] = 502
    ok = status == 200
    cohort = rng.choice(len(COHORTS), n, p=[0.8, 0.1, 0.1])
    label = rng.integers(0, 2, n)
    correct = rng.random(n) < np.where(cohort == 0, 0.95, 0.8)
    prediction = np.where(correct, label, 1 - label).astype(np.float64)
    confidence = np.clip(rng.beta(8, 1.5, n), 0.5, 1.0)
    served = np.where(confidence < 0.7, "fallback", "primary")
    latency = rng.lognormal(math.log(25.0), 0.35, n)
    latency[~ok] = rng.uniform(0.5, 3.0, int((~ok).sum()))
    frame = pd.DataFrame({
        "t": np.round(t, 6),
        "latency_ms": np.round(latency, 3),
        "status": status,
        "outcome": np.where(ok, "ok", "error"),
        "served_by": np.where(ok, served, ""),
        "prediction": np.where(ok, prediction, np.nan),
        "confidence": np.where(ok, np.round(confidence, 6), np.nan),
        "label": label,
        "cohort": np.array(COHORTS)[cohort],
        "entity_id": rng.integers(0, 569, n),
        "replica": np.where(ok, np.array(REPLICAS)[replica], ""),
        "model_version": np.where(ok, np.where(served == "primary", "primary-bench", "fallback-bench"), ""),
    })
    frame.to_csv(run_dir / "samples.csv", index=False, lineterminator="\n")
    journal = {
        "schema": "chaosml.journal/1", "run_id": f"bench-{n}", "status": "completed", "reason": None,
        "experiment_file": "<bench>", "experiment_source": EXPERIMENT,
        "target": {"platform": "local", "profile": "hardened", "restart_delay_s": RESTART_S},
        "started_at": START_T - 5, "ended_at": START_T + DURATION_S + 2,
        "load": {"started_at": START_T, "ended_at": START_T + DURATION_S, "requests": n},
        "timeline": [], "fault_events": fault_events, "target_events": sorted(target_events, key=lambda e: e["t"]),
        "rollbacks": [], "samples_file": "samples.csv",
    }
    (run_dir / "journal.json").write_text(json.dumps(journal))
    return {"samples": n, "csv_bytes": (run_dir / "samples.csv").stat().st_size}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure(run_dir: Path) -> dict[str, Any]:
    """In THIS process: render_report(run_dir) with its stages timed; peak RSS. Run in a fresh process."""
    from chaosml.report import render

    stages: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    for name in ("read_samples", "analyze", "render_plots", "build_document", "render_html", "render_markdown"):
        setattr(render, name, timed(name, getattr(render, name)))
    import matplotlib  # noqa: F401 - imports are not the analysis' cost

    rss_before = _maxrss_mib()
    t0 = time.perf_counter()
    out = render.render_report(run_dir)
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "stages_s": stages,
        "peak_rss_mib": _maxrss_mib(),
        "rss_after_imports_mib": rss_before,
        "injections": len(out["injections"]),
        "phases": len(out["phases"]),
        "plots": len(out["files"]["plots"]),
    }


def run(quick: bool, workdir: Path, budget_s: float = 240.0) -> SectionResult:
    res = SectionResult("analysis", "Analysis scale: render_report on synthetic runs (fresh process per size)")
    sizes = [20_000, 100_000] if quick else [100_000, 1_000_000, 5_000_000]
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in sizes:
        spent = time.monotonic() - started
        if rows and spent + (spent / sum(r["samples"] for r in rows)) * n * 1.2 > budget_s:
            rows.append({"samples": n, "skipped": f"would exceed the section budget of {budget_s:.0f}s"})
            continue
        run_dir = workdir / f"analysis-{n}"
        t0 = time.monotonic()
        info = make_run(run_dir, n)
        info["generate_s"] = time.monotonic() - t0
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.analysis", str(run_dir)], capture_output=True, text=True, check=False,
            timeout=600, env=python_env({"MPLBACKEND": "Agg"}),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"analysis of {n} samples failed: {proc.stderr.strip()[-2000:]}")
        info.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        rows.append(info)
        for p in (run_dir / "samples.csv",):
            p.unlink(missing_ok=True)  # the big CSVs are not kept
    res.details = {"duration_s": DURATION_S, "injections": KILL_COUNT, "sizes": rows}
    done = [r for r in rows if "total_s" in r]
    for r in rows:
        label = _label(r["samples"])
        if "total_s" not in r:
            res.add(f"analyze_render_time_{label}", None, "s", note=r["skipped"])
            continue
        is_1m = r["samples"] == 1_000_000
        res.add(f"analyze_render_time_{label}", r["total_s"], "s", *(("<", 5.0) if is_1m else (None, None)),
                note="render_report: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items()))
        res.add(f"analyze_render_peak_rss_{label}", r["peak_rss_mib"], "MiB",
                *(("<", 2048.0) if is_1m else (None, None)),
                note=f"ru_maxrss of a fresh process; {r['rss_after_imports_mib']:.0f} MiB after imports")
    if len(done) >= 2:
        n = np.array([r["samples"] for r in done], dtype=np.float64) / 1e6
        secs = np.array([r["total_s"] for r in done])
        rss = np.array([r["peak_rss_mib"] for r in done])
        b_t, a_t = np.polyfit(n, secs, 1)  # least squares: time = a + b * millions
        b_m, a_m = np.polyfit(n, rss, 1)
        x, y = done[-2], done[-1]
        slope = math.log(y["total_s"] / x["total_s"]) / math.log(y["samples"] / x["samples"])
        res.add("time_per_million_samples", float(b_t), "s", note=f"least-squares fit time = a + b*n over "
                f"{len(done)} sizes; fixed part a = {a_t:.2f} s (imports excluded; mostly plots)")
        res.add("memory_per_million_samples", float(b_m), "MiB", note=f"same fit of peak RSS; a = {a_m:.0f} MiB")
        res.add("time_growth_exponent", slope, "", note=f"log-log slope {_label(x['samples'])} -> "
                f"{_label(y['samples'])} (1 = linear; < 1 while fixed costs dominate)")
    return res


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def main() -> None:
    print(json.dumps(measure(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
