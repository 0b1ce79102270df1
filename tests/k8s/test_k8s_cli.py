"""`chaosml plan` against a reachable cluster, its context refusal, `chaosml cluster` errors, and the
opt-in end-to-end run against a real kind cluster (CHAOSML_KIND=1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_stack import REPO, deploy_stack

from chaosml.cli import main
from chaosml.errors import EXIT_INTERNAL, EXIT_OK

pytestmark = pytest.mark.k8s


def experiment(tmp_path: Path, ns: str, context: str, **k8s: Any) -> Path:
    data = yaml.safe_load((REPO / "experiments" / "k8s-pod-kill.yaml").read_text())
    data["target"]["kubernetes"] = {"context": context, "namespace": ns, **k8s}
    data["faults"].append({"name": "fs-down", "type": "feature-store-outage", "at": "50s", "duration": "5s",
                           "params": {"mode": "kill"}})
    data["faults"].append({"name": "canary", "type": "model-rollout", "at": "60s", "duration": "5s",
                           "params": {"canary": "app=model,track=canary", "replicas": 1}})
    data["load"]["duration"] = "75s"
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def kubeconfig_named(cluster: Any, tmp_path: Path, name: str) -> Path:
    cfg = yaml.safe_load(cluster.verified_kubeconfig_path.read_text())
    cfg["contexts"][0]["name"] = name
    cfg["current-context"] = name
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_plan_shows_resolved_pods_on_the_cluster(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy_stack(control_plane, k8s_namespace)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.verified_kubeconfig_path))
    path = experiment(tmp_path, k8s_namespace, control_plane.context)
    assert main(["plan", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"cluster: context kind-chaosml-test, namespace {k8s_namespace}" in out
    # the primary's selector holds track=stable since the reference stack has a canary Deployment (model-rollout)
    assert "kill-model-pod: 1 of 3 pods matching 'app=model,track=stable' per injection (33%), chosen at apply among: model-" in out
    assert ("canary: deployment model-canary scaled from 0 to 1 replicas (Ready first), then model from 3 to 2; "
            "recover: model back to 3, then model-canary to 0") in out
    assert "fs-down: deployment redis scaled from 1 to 0 replicas, then back to 1" in out
    assert out.rstrip().endswith("dry run: nothing was injected")
    assert main(["plan", "--offline", str(path)]) == EXIT_OK
    assert "cluster:" not in capsys.readouterr().out


def test_plan_refuses_a_context_outside_the_allowlist(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_named(control_plane, tmp_path, "prod-eu-1")))
    path = experiment(tmp_path, k8s_namespace, "prod-eu-1")
    assert main(["plan", str(path)]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("chaosml: refusing to touch kube context 'prod-eu-1' is not in allowed_contexts (kind-*)"), err
    assert "--allow-context prod-eu-1" in err
    # allow_any_context in the file + the flag on the command line: allowed
    path = experiment(tmp_path, k8s_namespace, "prod-eu-1", allow_any_context=True)
    assert main(["plan", "--allow-context", "prod-eu-1", str(path)]) == EXIT_OK
    assert f"cluster: context prod-eu-1, namespace {k8s_namespace}: nothing resolved (deployment(s) missing" in capsys.readouterr().out


def test_run_refuses_a_context_outside_the_allowlist(
    control_plane: Any, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_named(control_plane, tmp_path, "prod-eu-1")))
    monkeypatch.setenv("CHAOSML_STATE_DIR", str(tmp_path / "state"))
    path = experiment(tmp_path, k8s_namespace, "prod-eu-1", allow_any_context=True)
    code = main(["run", "--reports-dir", str(tmp_path / "reports"), "--allow-context", "prod-eu-2", str(path)])
    assert code == EXIT_INTERNAL
    assert "refusing to touch kube context 'prod-eu-1'" in capsys.readouterr().err
    assert "CHAOSML_ALLOW_CONTEXT" not in os.environ  # the flag is an argument of the target, not the environment


def test_cluster_commands_say_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert main(["cluster", "up"]) == EXIT_INTERNAL
    assert "docker is not running or not reachable" in capsys.readouterr().err
    assert main(["cluster", "down"]) == EXIT_INTERNAL
    assert "kind is not installed (no `kind` on PATH)" in capsys.readouterr().err


# ------------------------------------------------------------------------------ real kind (opt-in)
KIND = os.environ.get("CHAOSML_KIND", "") not in ("", "0")


@pytest.mark.kind
@pytest.mark.skipif(not KIND, reason="end-to-end against a real kind cluster is opt-in: CHAOSML_KIND=1 (needs docker, kind)")
def test_kind_cluster_up_run_pod_kill_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("kind") is None:
        pytest.fail("CHAOSML_KIND=1 but kind is not on PATH")
    try:
        assert main(["cluster", "up"]) == EXIT_OK
        assert main(["cluster", "status"]) == EXIT_OK
        assert "deployment model" in capsys.readouterr().out
        code = main(["run", "--reports-dir", str(tmp_path), str(REPO / "experiments" / "k8s-pod-kill.yaml")])
        assert code in (0, 1), capsys.readouterr()
        (run_dir,) = list(tmp_path.iterdir())
        import json

        journal = json.loads((run_dir / "journal.json").read_text())
        assert [e for e in journal["target_events"] if e["kind"] == "pod_replaced"]
    finally:
        if os.environ.get("CHAOSML_KIND_KEEP", "") in ("", "0"):
            main(["cluster", "down"])
