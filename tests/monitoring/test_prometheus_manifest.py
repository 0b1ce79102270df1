"""The optional cluster Prometheus (manifests/examples/prometheus) carries the very rules the local target loads, for the same jobs."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaosml.monitoring import server
from chaosml.monitoring.promql import check_rule_file

MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "examples" / "prometheus" / "prometheus.yaml"


def test_cluster_prometheus_has_the_shipped_rules_and_jobs(tmp_path: Path) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}
    assert {d["metadata"]["namespace"] for d in docs.values()} == {"chaosml"}
    data = docs[("ConfigMap", "prometheus-config")]["data"]
    assert yaml.safe_load(data["alerts.yml"]) == yaml.safe_load(server.shipped_rules().read_text())
    rules = tmp_path / "alerts.yml"
    rules.write_text(data["alerts.yml"])
    assert check_rule_file(rules) is None  # promtool's verdict where it is installed
    config = yaml.safe_load(data["prometheus.yml"])
    assert {j["job_name"] for j in config["scrape_configs"]} == {server.JOB_GATEWAY, server.JOB_REPLICAS}
    assert config["global"]["scrape_interval"] == "1s"  # the rules' 5 s windows need at least two scrapes
    assert docs[("Deployment", "prometheus")]["spec"]["template"]["spec"]["serviceAccountName"] == "prometheus"
    assert docs[("Service", "prometheus")]["spec"]["ports"][0]["port"] == 9090
