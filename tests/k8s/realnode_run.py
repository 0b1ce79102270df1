"""`chaosml run` against the real-node cluster as a user runs it: the experiment file (from
experiments/k8s-pod-kill.yaml, with the cluster's context, namespace and each node's Docker engine)
and the journal; used by the test_realnode_*.py tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from k8s_stack import REPO
from realnode import RealCluster

RUN_TIMEOUT_S = 300


def experiment(tmp_path: Path, cluster: RealCluster, ns: str, name: str, faults: list[dict[str, Any]],
               duration: str, failable: tuple[str, ...] = ()) -> Path:
    """The experiment file; the nodes named in ``failable`` get their stop/start commands (node-failure)."""
    data = yaml.safe_load((REPO / "experiments" / "k8s-pod-kill.yaml").read_text())
    data["title"] = f"real node: {name}"
    data["target"]["replicas"] = len(cluster.nodes)
    # each node's Docker engine, for container-failure (the kubelets run dockershim on these sockets)
    nodes: dict[str, dict[str, Any]] = {n.name: {"docker_host": f"unix://{n.sock}"} for n in cluster.nodes}
    for n in cluster.nodes:
        if n.name in failable:
            nodes[n.name]["stop"], nodes[n.name]["start"] = n.fail_commands()
    data["target"]["kubernetes"] = {"context": cluster.control_plane.context, "namespace": ns, "nodes": nodes}
    data["load"].update(duration=duration, users=4, spawn_rate=4, rate_per_user=5)
    data["faults"] = faults
    data["hypotheses"] = []
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def chaosml_run(cluster: RealCluster, tmp_path: Path, path: Path) -> dict[str, Any]:
    """`chaosml run` in a subprocess, as a user runs it (KUBECONFIG of the real cluster); the journal."""
    reports = tmp_path / "reports"
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path), "CHAOSML_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    res = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", "--reports-dir", str(reports), str(path)],
                         env=env, capture_output=True, check=False, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path)
    assert res.returncode in (0, 1), f"exit {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (run_dir,) = [d for d in reports.iterdir() if d.is_dir()]
    journal = json.loads((run_dir / "journal.json").read_text())
    faults = (journal.get("analysis") or {}).get("faults", [])
    print(json.dumps({"faults": faults}))  # recovered, mttr_s_max (SLO-based) in the test log
    return journal


def events(journal: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in journal["target_events"] if e["kind"] == kind]
