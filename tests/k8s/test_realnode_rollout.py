"""model-rollout through `chaosml run` on a real node: the model-canary Deployment (its own port on the node, booted on
the drop-cohort variant) is scaled up and Ready in the window while the primary gives up a replica; the answers'
model_version shows the canary's variant in the rollout window and recovery only, never in the baseline or after;
both Deployments are back at their counts after the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realnode import RealCluster
from realnode_run import chaosml_run, experiment

from chaosml.analysis.samples import read_samples

pytestmark = [pytest.mark.k8s, pytest.mark.realnode]

VARIANT = "+drop-cohort-mid-radius"


def _replicas(cluster: RealCluster, ns: str) -> dict[str, int]:
    from kubernetes import client

    apps = client.AppsV1Api(cluster.api_client())
    return {d: int(apps.read_namespaced_deployment(d, ns).spec.replicas) for d in ("model", "model-canary")}


def test_chaosml_run_model_rollout_on_a_canary_deployment(real_cluster: RealCluster, real_stack: str, tmp_path: Path) -> None:
    before = _replicas(real_cluster, real_stack)
    n = before["model"]
    assert before["model-canary"] == 0 and n >= 1
    path = experiment(tmp_path, real_cluster, real_stack, "rollout", [
        {"name": "rollout", "type": "model-rollout", "at": "8s", "duration": "25s",
         "params": {"canary": "app=model,track=canary", "share": 0.5}}], "55s")
    journal = chaosml_run(real_cluster, tmp_path, path)
    (apply,) = [e for e in journal["fault_events"] if e["action"] == "apply"]
    (recover,) = [e for e in journal["fault_events"] if e["action"] == "recover"]
    moved = -(-n // 2)  # share 0.5, rounded up
    assert apply["ok"] and apply.get("no_effect") is None, apply
    d = apply["detail"]
    assert d["canary"] == "model-canary" and d["canary_replicas"] == [0, moved] and d["primary_replicas"] == [n, n - moved]
    # the canary's pods were Ready before the primary was scaled down: they are the event's targets
    assert len(apply["targets"]) == moved and all(p.startswith("model-canary-") for p in apply["targets"]), apply
    assert recover["ok"] and recover["detail"]["replicas"] == {"model": n, "model-canary": 0}, recover
    assert _replicas(real_cluster, real_stack) == before  # both counts restored

    (run_dir,) = [p for p in (tmp_path / "reports").iterdir() if p.is_dir()]
    df = read_samples(run_dir / "samples.csv")
    df = df[df["outcome"] == "ok"]
    versions = df["model_version"].astype(str)
    is_variant = versions.str.endswith(VARIANT).to_numpy()
    t, end = df["t"].to_numpy(), (df["t"] + df["latency_ms"] / 1000).to_numpy()
    # the canary serves until recover has the primary back and scales it down (then its endpoints go, ~1 s)
    recovered_by = recover["t"] + recover["detail"]["recover_s"] + 5.0
    figures = {"answers": len(df), "variant_answers": int(is_variant.sum()), "apply_canary_ready_s": d["canary_ready_s"],
               "recover_s": recover["detail"]["recover_s"], "versions": sorted(set(versions))}
    print(json.dumps({"model_rollout": figures}))
    assert is_variant.sum() >= 20, figures  # the hardened canary answers at least a shadow window (40) with it
    assert (end[is_variant] >= apply["t"]).all() and (t[is_variant] <= recovered_by).all(), figures
    assert (~is_variant).sum() > 0 and not versions[~is_variant].str.contains("+", regex=False).any()
    # the journal's per-phase model-version table: the variant in the rollout window, not in the baseline or after
    analysis = json.loads((run_dir / "analysis.json").read_text())
    phases = {p["name"]: p.get("model_versions", {}) for p in analysis["phases"]}
    in_window = [v for v in phases["rollout"] if v.endswith(VARIANT)]
    assert in_window and phases["rollout"][in_window[0]]["all"]["requests"] > 0, phases["rollout"]  # type: ignore[index]
    assert not [v for v in phases["baseline"] if v.endswith(VARIANT)], phases["baseline"]
    assert not [v for v in phases["after"] if v.endswith(VARIANT)], phases["after"]
