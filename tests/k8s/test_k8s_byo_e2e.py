"""End to end: `chaosml run experiments/byo-k8s-kserve.yaml` against a user's stack on the control plane.

The example manifests (manifests/examples/byo-kserve/stack.yaml) are deployed into a test
namespace; the simulated kubelet runs each KServe pod as a real process (exec pods), a simulated
NodePort proxy routes to Ready pods (kube-proxy), and chaosml's Toxiproxy-compatible server stands
in for the user's Toxiproxy with the ``model-ingress`` proxy in front of the Service. The shipped
experiment runs unchanged except for the context, the namespace and where its Toxiproxy API is:
the pod kill goes through the API server, the ReplicaSet and the kubelet, and every verdict and the
MTTR come from the KServe server's own responses.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_stack import REPO, wait_for
from kubelet import EXEC_ANNOTATION
from kubeproxy import NodePortProxy

from chaosml.cluster import apply_manifests, wait_available
from chaosml.proxy import client as toxiproxy
from chaosml.proxy.server import ProxyServer

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

EXAMPLE = REPO / "manifests" / "examples" / "byo-kserve" / "stack.yaml"
EXPERIMENT = REPO / "experiments" / "byo-k8s-kserve.yaml"
SERVER = REPO / "experiments" / "servers" / "kserve_sklearn.py"


def _kserve_python() -> str | None:
    for cand in (os.environ.get("CHAOSML_KSERVE_PYTHON"), str(REPO / ".venv-kserve" / "bin" / "python")):
        if cand and Path(cand).exists():
            return cand
    return None


def user_stack(ns: str, python: str, model_file: Path) -> list[dict[str, Any]]:
    """The example's model Deployment and Service, as the test kubelet can run them (no images here)."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d}
    dep, svc = docs[("Deployment", "bc-kserve")], docs[("Service", "bc-model")]
    for d in (dep, svc):
        d["metadata"]["namespace"] = ns
    tpl = dep["spec"]["template"]
    tpl["metadata"]["annotations"] = {EXEC_ANNOTATION: "true"}
    (c,) = tpl["spec"]["containers"]
    c["command"] = [python, str(SERVER)]
    c["args"] = ["--http_port", "$(POD_PORT)", "--model_file", str(model_file)]
    for p in svc["spec"]["ports"]:
        p.pop("nodePort", None)  # NodePorts are cluster-wide: let the API server pick one
    return [dep, svc]


def test_shipped_byo_experiment_runs_on_the_kubernetes_target(control_plane: Any, k8s_namespace: str, tmp_path: Path) -> None:
    python = _kserve_python()
    if python is None:
        pytest.skip("no KServe interpreter: create .venv-kserve (python -m venv .venv-kserve && "
                    ".venv-kserve/bin/pip install kserve scikit-learn joblib) or set CHAOSML_KSERVE_PYTHON")
    model = tmp_path / "breast_cancer.joblib"
    train = "import sys; sys.path.insert(0, sys.argv[1]); import kserve_sklearn as k; k.train(sys.argv[2])"
    proc = subprocess.run([python, "-c", train, str(SERVER.parent), str(model)], capture_output=True, text=True,
                          timeout=180, check=False)
    if proc.returncode != 0:
        pytest.skip(f"{python} cannot train the model: {proc.stderr.strip()[-300:]}")

    ns = k8s_namespace
    api = control_plane.api_client()
    apply_manifests(api, user_stack(ns, python, model))
    wait_available(api, ns, 120)
    node_port = NodePortProxy(control_plane.api_client, control_plane.kubelet, ns, "bc-model", "http")
    tox = ProxyServer("127.0.0.1", 0).start_in_thread()
    try:
        wait_for(lambda: len(node_port.candidates()) == 2, 30, "both KServe pods behind the NodePort")
        host, port = node_port.address
        toxiproxy.create_proxy(tox.url, "model-ingress", f"{host}:{port}", listen="127.0.0.1:0")

        text = EXPERIMENT.read_text()
        text = (text.replace("context: kind-chaosml", "context: kind-chaosml-test")
                .replace("namespace: ml-shop", f"namespace: {ns}")
                .replace("toxiproxy: {service: toxiproxy, port: api}", f'toxiproxy: {{url: "{tox.url}"}}'))
        assert text.count(ns) == 1 and tox.url in text
        exp = tmp_path / "byo-k8s-kserve.yaml"
        exp.write_text(text)
        reports = tmp_path / "reports"
        env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(control_plane.verified_kubeconfig_path)}
        run = subprocess.run([sys.executable, "-m", "chaosml.cli", "run", str(exp), "--reports-dir", str(reports)],
                             capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env, check=False)
        out = run.stdout + run.stderr
        assert run.returncode in (0, 1), out  # judged (0: every hypothesis held, 1: one failed), never an error
        (run_dir,) = reports.iterdir()
        analysis = json.loads((run_dir / "analysis.json").read_text())
        journal = json.loads((run_dir / "journal.json").read_text())
        verdicts = {v["name"]: v for v in analysis["verdicts"]}
        print("\n" + "\n".join(f"{n}: {v['verdict']} measured={v['measured']} ({v.get('detail', '')})" for n, v in verdicts.items()))

        # the pod kill went through the API server: one of the user's pods deleted and replaced
        applied = [e for e in journal["fault_events"] if e["action"] == "apply"]
        kill = next(e for e in applied if e["fault"] == "kill-pod")
        (victim,) = kill["targets"]
        assert victim.startswith("bc-kserve-"), kill
        replaced = [e for e in journal["target_events"] if e["kind"] == "pod_replaced" and e["subject"] == victim]
        assert replaced and replaced[0]["detail"]["group"] == "model", journal["target_events"][-10:]
        print(f"replaced: {json.dumps(replaced[0]['detail'])}")
        # every verdict is judged from the server's responses; none is left inconclusive
        for name in ("mostly-available-during-kill", "accurate-during-kill", "recovers-from-kill", "p99-under-ingress-latency"):
            assert verdicts[name]["verdict"] in ("pass", "fail") and verdicts[name]["measured"] is not None, verdicts[name]
        assert verdicts["accurate-during-kill"]["verdict"] == "pass"  # the model keeps answering right
        assert analysis["served_by_exposed"] is False
        fault = next(f for f in analysis["faults"] if f["fault"] == "kill-pod")
        assert fault["mttr_s"]["max"] is not None, fault
        # the 200 ms toxic on the ingress link shows in the latency of that window
        slow = next(p for p in analysis["phases"] if p["name"] == "slow-ingress")
        base = next(p for p in analysis["phases"] if p["name"] == "baseline")
        assert slow["slis"]["latency_p50_ms"] > base["slis"]["latency_p50_ms"] + 150, (slow["slis"], base["slis"])
        assert toxiproxy.toxics(tox.url, "model-ingress") == []  # recovered
        with (run_dir / "samples.csv").open() as f:
            rows = list(csv.DictReader(f))
        ok = [r for r in rows if r["outcome"] == "ok"]
        assert len(ok) > 300 and {r["model_version"] for r in ok} == {"sklearn-logreg-v1"}
        # the victim's process is gone (the kubelet killed it when the pod was deleted)
        assert control_plane.kubelet.endpoint(ns, victim) is None
        report = (run_dir / "report.md").read_text()
        assert "kill-pod" in report and "not exposed" in report
    finally:
        tox.stop()
        node_port.stop()
        api.close()
