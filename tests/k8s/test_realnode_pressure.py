"""resource-pressure through `chaosml run` on a real node: stress-ng (in the image's Debian base) started by exec
inside the model pod's container, seen in that container's process list with its CPU use, the model's latency
rising in the fault window, and no stress-ng process left in the container after recover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from k8s_stack import wait_for
from realnode import RealCluster
from realnode_run import RUN_TIMEOUT_S, experiment

pytestmark = [pytest.mark.k8s, pytest.mark.realnode]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _model_containers(cluster: RealCluster, ns: str) -> list[tuple[Any, str]]:
    """The node and Docker container id of every model pod (one alone; two after the e2e tests scaled it over two
    nodes), once every one is Ready on a node of this cluster (a test before may have left a rollout going)."""

    def settled() -> list[tuple[Any, str]] | None:
        pods = [p for p in cluster.core_v1().list_namespaced_pod(ns, label_selector="app=model").items
                if p.metadata.deletion_timestamp is None]
        nodes = {n.name: n for n in cluster.nodes}
        if not pods or not all(p.spec.node_name in nodes and p.status.container_statuses
                               and p.status.container_statuses[0].ready for p in pods):
            return None
        return [(nodes[p.spec.node_name], p.status.container_statuses[0].container_id.removeprefix("docker://"))
                for p in pods]

    return wait_for(settled, 120, "every model pod Ready on a node of the cluster", interval=0.5)


def _processes(node: Any, container: str) -> list[tuple[int, str]]:
    """(host pid, command name) of every process in the container (``docker top``: the container's cgroup)."""
    res = node.docker("top", container, "-o", "pid,comm")
    rows = [ln.split(None, 1) for ln in res.stdout.splitlines()[1:] if ln.strip()]
    return [(int(pid), comm.strip()) for pid, comm in rows]


def _stress_pids(node: Any, container: str) -> list[int]:
    """Host pids of the stress-ng processes in the container."""
    return [pid for pid, comm in _processes(node, container) if comm.startswith("stress-ng")]


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of a host process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def test_chaosml_run_resource_pressure_in_the_model_container(
    real_cluster: RealCluster, real_stack: str, tmp_path: Path
) -> None:
    containers = _model_containers(real_cluster, real_stack)
    assert all(_stress_pids(node, container) == [] for node, container in containers)
    path = experiment(tmp_path, real_cluster, real_stack, "pressure", [
        {"name": "cpu-hog", "type": "resource-pressure", "at": "10s", "duration": "12s",
         "params": {"service": "model", "mode": "all", "kind": "cpu", "cpu_workers": 2}}], "32s")
    reports = tmp_path / "reports"
    env = {**os.environ, "KUBECONFIG": str(real_cluster.kubeconfig_path), "CHAOSML_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[2]),
                                                     os.environ.get("PYTHONPATH", "")) if p)}
    # while the run goes: the container's stress-ng processes and their CPU seconds, sampled by the host
    seen: dict[int, tuple[float, float]] = {}  # pid -> (cpu_s, t) when first seen
    last: dict[int, tuple[float, float]] = {}  # pid -> (cpu_s, t) when last seen
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not stop.is_set() and time.monotonic() < deadline:
            for node, container in containers:
                for pid in _stress_pids(node, container):
                    cpu = _cpu_s(pid)
                    if cpu is not None:
                        seen.setdefault(pid, (cpu, time.monotonic()))
                        last[pid] = (cpu, time.monotonic())
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        res = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", "--reports-dir", str(reports), str(path)],
                             env=env, capture_output=True, check=False, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path)
    finally:
        stop.set()
        watcher.join(10)
    assert res.returncode in (0, 1), f"exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    journal = json.loads((run_dir / "journal.json").read_text())
    analysis = json.loads((run_dir / "analysis.json").read_text())
    (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
    (recover,) = [e for e in journal["fault_events"] if e["action"] == "recover"]
    assert apply["ok"] and apply.get("no_effect") is None and len(apply["targets"]) == len(containers), apply
    # the hog ran in the model containers (their cgroups): stress-ng's parent and its 2 workers in each, busy
    assert len(seen) >= 3 * len(containers), seen
    span_s = max(last[p][1] - seen[p][1] for p in seen)
    assert span_s > 5, (seen, last)  # sampled across most of the 12 s window
    cores = sum(last[p][0] - seen[p][0] for p in seen) / span_s
    assert cores > 0.3, (cores, seen, last)
    # recover stopped it; nothing is left in the container
    stops = list(recover["detail"]["stopped"].values())
    assert len(stops) == len(containers) and all(x.startswith("stopped ") for x in stops) and recover["ok"], recover
    stopped = stops[0]
    for node, container in containers:
        left = _processes(node, container)
        assert left and not [c for _, c in left if c.startswith("stress-ng")], left  # the model's own processes only
    phases = {p["name"]: p["slis"] for p in analysis["phases"]}
    base, hog, after = phases["baseline"], phases["cpu-hog"], phases["after"]
    figures = {"hog_cores": round(cores, 2), "hog_processes": len(seen), "stopped": stopped,
               **{f"latency_{q}_ms (baseline, cpu-hog, after)": (base[f"latency_{q}_ms"], hog[f"latency_{q}_ms"],
                                                                 after[f"latency_{q}_ms"]) for q in ("p50", "p95", "p99")}}
    print(json.dumps({"resource_pressure": figures}))
    # the model competes with 2 busy workers for the machine's cores: its answers slow down
    assert hog["latency_p50_ms"] > base["latency_p50_ms"], figures
