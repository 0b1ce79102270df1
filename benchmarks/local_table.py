"""The local-target column of the real-node table (README "Real nodes in CI"): each fault's closest local equivalent, run with ``chaosml run``.

``python -m benchmarks.local_table [--repeats N] [--only ROW] [--workdir DIR] [--json]``

One real ``chaosml run`` per row (fresh process, own state and reports directory) against the
hardened reference stack with the default restart delay; each row injects its fault ``--repeats``
times (kill-twice: 2 x N kills, each 12 s after the previous one), and every injection is one
measurement. Per injection, from the run's ``analysis.json`` and journal: TTD and its source, the
supervisor's events for the injection's replicas (first ``replica_unready`` from a failed readiness
probe, ``replica_exited``, ``replica_started`` after the apply; the last of those firsts over the
replicas, as for ``ready_s``), ``ready_s`` and MTTR. The node-failure row has no local equivalent (a local target
has no node: its replicas are processes of this machine) and is not run. Every loop is bounded:
each run has a timeout of its load duration plus ``RUN_SLACK_S``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaosml.analysis.mttr import STACK_UNREADY_REASONS

PLUGIN = Path(__file__).resolve().parents[1] / "tests" / "plugins" / "chaosml_example_fault"
FIRST_AT_S = 10.0  # first apply, after the baseline windows
AFTER_S = 10.0  # load after the last fault's window: room to confirm recovery
RUN_SLACK_S = 180.0  # stack start, rollbacks, analysis and report on top of the load duration
STAGES = ("replica_unready", "replica_exited", "replica_started")


@dataclass(frozen=True, slots=True)
class Row:
    """One table row: the real-node fault it stands for and its local experiment's fault."""

    key: str
    real_node: str
    fault_type: str
    params: dict[str, Any]
    replicas: int
    duration_s: float
    every_s: float
    per_repeat: int = 1  # injections per repeat


ROWS: tuple[Row, ...] = (
    Row("pod-kill-grace-0", "pod-kill, grace 0", "pod-kill", {"mode": "one", "signal": "SIGKILL"}, 2, 8.0, 15.0),
    Row("pod-kill-all", "pod-kill mode: all", "pod-kill", {"mode": "all", "signal": "SIGKILL"}, 2, 8.0, 15.0),
    Row("pod-kill-sigterm", "pod-kill, grace 30 s", "pod-kill", {"mode": "one", "signal": "SIGTERM"}, 2, 8.0, 15.0),
    Row("kill-twice", "container-failure kill, twice 12 s apart", "pod-kill", {"mode": "one", "signal": "SIGKILL"},
        1, 6.0, 12.0, per_repeat=2),
    Row("pause-8s", "container-failure pause, 8 s", "process-pause", {"count": 1}, 2, 8.0, 20.0),
)
NOT_RUN = {"node-failure": "a local target has no node to fail: its replicas are processes of this machine"}


def experiment(row: Row, repeats: int) -> dict[str, Any]:
    """The row's experiment: hardened reference stack, about 20 requests/s, its fault ``repeats`` times."""
    count = repeats * row.per_repeat
    duration = FIRST_AT_S + (count - 1) * row.every_s + row.duration_s + AFTER_S
    return {
        "version": 1,
        "title": f"local column: {row.real_node}",
        "release": "hardened",
        "target": {"platform": "local", "stack": "reference", "profile": "hardened", "replicas": row.replicas},
        "load": {"users": 4, "spawn_rate": 10, "rate_per_user": 5, "duration": f"{duration:g}s",
                 "request_timeout": "2s", "mix": {"clean": 1.0}},
        "steady_state": {
            "window": "1s",
            "hold": 3,
            "slos": [
                {"name": "availability", "sli": "success_ratio", "op": ">=", "target": 0.99, "phases": ["baseline", "after"]},
                {"name": "p99-latency", "sli": "latency_p99_ms", "op": "<=", "target": 500, "phases": ["baseline", "after"]},
            ],
        },
        "faults": [{"name": row.key, "type": row.fault_type, "at": f"{FIRST_AT_S:g}s", "duration": f"{row.duration_s:g}s",
                    "repeat": {"count": count, "every": f"{row.every_s:g}s"},
                    "params": {"service": "model", **row.params}}],
        "rollbacks": [{"type": "wait-ready", "params": {"timeout": "30s"}}],
    }


def install_plugin(site: Path) -> None:
    """Install the example plugin (process-pause) into ``site`` as pip would: its module and a dist-info with its entry points."""
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text(encoding="utf-8"))
    project = meta["project"]
    for module in meta["tool"]["setuptools"]["py-modules"]:
        shutil.copy(PLUGIN / f"{module}.py", site / f"{module}.py")
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
                                   encoding="utf-8")
    groups = [f"[{g}]\n" + "".join(f"{n} = {v}\n" for n, v in eps.items()) for g, eps in project["entry-points"].items()]
    (dist / "entry_points.txt").write_text("\n".join(groups), encoding="utf-8")


def stages(inj: dict[str, Any], events: list[dict[str, Any]], until: float) -> dict[str, float | None]:
    """Seconds from apply to each supervisor stage for the injection's replicas (the last of their firsts; None if one never had it).

    ``replica_unready`` counts only the stack's own readiness signal (a failed probe), not the
    supervisor seeing a killed process exit (that is ``replica_exited``).
    """
    apply_t = float(inj["apply_t"])
    out: dict[str, float | None] = {}
    for kind in STAGES:
        firsts = []
        for replica in inj["targets"]:
            ts = [float(e["t"]) for e in events
                  if e["kind"] == kind and e["subject"] == replica and apply_t <= float(e["t"]) < until
                  and (kind != "replica_unready" or e["detail"].get("reason") in STACK_UNREADY_REASONS)]
            firsts.append(min(ts) if ts else None)
        out[kind] = None if not firsts or None in firsts else max(f for f in firsts if f is not None) - apply_t
    return out


def measure(row: Row, repeats: int, workdir: Path, site: Path) -> dict[str, Any]:
    """One real run of the row's experiment; its injections' figures."""
    work = workdir / row.key
    work.mkdir(parents=True, exist_ok=True)
    exp = experiment(row, repeats)
    path = work / "experiment.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath, "CHAOSML_STATE_DIR": str(work / "state"), "MPLBACKEND": "Agg"}
    reports = work / "reports"
    load_s = float(exp["load"]["duration"].rstrip("s"))
    load_before = os.getloadavg()
    proc = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(path), "--reports-dir", str(reports)],
                          capture_output=True, text=True, env=env, timeout=load_s + RUN_SLACK_S, check=False)
    (work / "run.log").write_text(proc.stdout + proc.stderr)
    dirs = [p for p in reports.iterdir() if p.is_dir()] if reports.exists() else []
    if proc.returncode not in (0, 1) or not dirs:
        raise RuntimeError(f"{row.key}: chaosml run exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[-1500:]}")
    run_dir = max(dirs, key=lambda p: p.stat().st_mtime)
    journal = json.loads((run_dir / "journal.json").read_text())
    analysis = json.loads((run_dir / "analysis.json").read_text())
    injections = sorted(analysis["injections"], key=lambda i: float(i["apply_t"]))
    load_end = float(journal["load"]["ended_at"])
    rows = []
    for k, inj in enumerate(injections):
        until = float(injections[k + 1]["apply_t"]) if k + 1 < len(injections) else load_end
        rows.append({"injection": inj["injection"], "targets": inj["targets"], "ttd_s": inj["ttd_s"],
                     "detected_source": inj["detected_source"], "detected_by": inj["detected_by"],
                     **stages(inj, journal["target_events"], until), "ready_s": inj["ready_s"],
                     "mttr_s": inj["mttr_s"], "mttr_precision_s": inj["mttr_precision_s"]})
    return {"row": row.key, "real_node": row.real_node, "experiment": exp, "exit_code": proc.returncode,
            "run_dir": str(run_dir), "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "injections": rows}


def span(values: Sequence[float | None], unit: str = " s") -> str:
    """``a-b s`` over the measured values (``a s`` when they agree to 0.01), with how many were not measured."""
    got = sorted(v for v in values if v is not None)
    missing = len(values) - len(got)
    text = "-" if not got else f"{got[0]:.2f}{unit}" if got[-1] - got[0] < 0.005 else f"{got[0]:.2f}-{got[-1]:.2f}{unit}"
    return text + (f" ({missing} of {len(values)} none)" if missing else "")


def column(result: dict[str, Any]) -> str:
    """The row's local-target cell: every figure as a range over its injections."""
    inj = result["injections"]
    sources = sorted({f"{i['detected_source']}: {i['detected_by']}" for i in inj if i["detected_source"]})
    parts = [f"TTD +{span([i['ttd_s'] for i in inj])} ({'; '.join(sources) or 'nothing observable'})"]
    labels = {"replica_unready": "NotReady (probe)", "replica_exited": "exited", "replica_started": "restarted"}
    for kind in STAGES:
        values = [i[kind] for i in inj]
        if any(v is not None for v in values):
            parts.append(f"{labels[kind]} +{span(values)}")
    parts.append(f"Ready +{span([i['ready_s'] for i in inj])}")
    parts.append(f"MTTR {span([i['mttr_s'] for i in inj])}")
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.local_table", description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="injections per row (kill-twice: pairs of kills); default 3")
    ap.add_argument("--only", action="append", choices=[r.key for r in ROWS], help="run only this row (repeatable)")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temporary directory)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    rows = [r for r in ROWS if not args.only or r.key in args.only]
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="local-table-") as tmp:
        workdir = args.workdir or Path(tmp)
        site = workdir / "site"
        site.mkdir(parents=True, exist_ok=True)
        install_plugin(site)
        results = [measure(r, args.repeats, workdir, site) for r in rows]
    if args.json:
        print(json.dumps({"repeats": args.repeats, "cpus": os.cpu_count(), "results": results, "not_run": NOT_RUN}, indent=2))
        return 0
    print(f"Local target, hardened reference stack, default restart delay; {args.repeats} repeat(s) per row; "
          f"{os.cpu_count()} CPUs; {time.time() - started:.0f} s")
    for res in results:
        load = f"load average {res['loadavg_before'][0]:.2f} -> {res['loadavg_after'][0]:.2f}"
        print(f"\n| {res['real_node']} | {column(res)} |  ({res['row']}, exit {res['exit_code']}, {load})")
        for i in res["injections"]:
            figures = ", ".join(f"{k} {'-' if i[k] is None else format(i[k], '.2f')}"
                                for k in ("ttd_s", *STAGES, "ready_s", "mttr_s"))
            print(f"    #{i['injection']} {','.join(i['targets'])}: {figures} (TTD source {i['detected_source']})")
    for key, why in NOT_RUN.items():
        print(f"\n| {key} | n/a: {why} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
