"""The reference stack's /metrics through prometheus-client: counts equal what was sent, every event series exists at 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from chaosml.stack.gateway import GATEWAY_EVENTS, GatewayConfig
from chaosml.stack.gateway import create_app as create_gateway
from chaosml.stack.metrics import StackMetrics
from chaosml.stack.service import REPLICA_EVENTS, REPLICA_KEY
from chaosml.targets.local import free_ports
from chaosml.workload.builtin_dataset import Dataset
from tests.stack.test_stack_service import artifact, closed_port_url, ds, redis_url, replica, run_app  # noqa: F401 - fixtures

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """(sample name, sorted labels) -> value, parsed by prometheus-client's own parser (the format is valid)."""
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, tuple(sorted(labels.items())))]


def test_replica_counts_requests_low_confidence_and_events(redis_url: str, artifact: Path, ds: Dataset) -> None:  # noqa: F811
    async def scenario(c: TestClient[Any, Any]) -> None:
        r0 = await c.get("/metrics")
        assert r0.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        before = samples(await r0.text())
        base = {"replica": "model-t", "profile": "hardened"}
        for event in REPLICA_EVENTS:  # every event series exists before its first event, at 0
            assert value(before, f"chaosml_replica_{event}_total", **base) == 0.0
        low = 0
        n = 30
        for i in ds.test_idx[:n]:
            body = await (await c.post("/predict", json=ds.row_payload(int(i)))).json()
            low += body["confidence"] < app[REPLICA_KEY].min_confidence  # the replica's own threshold
        r = await c.post("/predict", json={"entity_id": "x"})
        assert r.status == 422
        got = samples(await (await c.get("/metrics")).text())
        answered = sum(v for (name, lab), v in got.items() if name == "chaosml_replica_requests_total")
        assert answered == n + 1
        assert value(got, "chaosml_replica_requests_total", **base, served_by="rejected", status="422") == 1.0
        assert value(got, "chaosml_replica_rejected_total", **base) == 1.0
        assert value(got, "chaosml_replica_request_duration_seconds_count", **base) == n + 1
        assert value(got, "chaosml_replica_low_confidence_answers_total", **base) == low
        assert value(got, "chaosml_replica_ready", **base) == 1.0

    app = replica(redis_url, artifact, "hardened")
    run_app(app, scenario)


def test_naive_replica_counts_feature_store_errors(artifact: Path, ds: Dataset) -> None:  # noqa: F811
    async def scenario(c: TestClient[Any, Any]) -> None:
        for i in ds.test_idx[:5]:
            assert (await c.post("/predict", json=ds.row_payload(int(i)))).status == 200
        got = samples(await (await c.get("/metrics")).text())
        base = {"replica": "model-t", "profile": "naive"}
        assert value(got, "chaosml_replica_feature_fetch_failures_total", **base) == 5.0
        assert value(got, "chaosml_replica_requests_total", **base, served_by="primary", status="200") == 5.0
        assert not any(name == "chaosml_replica_breaker_state" for name, _ in got)

    run_app(replica(closed_port_url(), artifact, "naive"), scenario, wait_ready=False)


def test_gateway_exposes_backends_and_events(artifact: Path, ds: Dataset) -> None:  # noqa: F811
    urls = [f"http://127.0.0.1:{p}" for p in free_ports(2)]
    app = create_gateway(GatewayConfig(backends=urls, artifact=artifact, profile="hardened"))

    async def scenario(c: TestClient[Any, Any]) -> None:
        assert (await c.post("/predict", json=ds.row_payload(1))).status == 200  # the default response
        got = samples(await (await c.get("/metrics")).text())
        for event in GATEWAY_EVENTS:
            assert ("chaosml_gateway_" + event + "_total", (("profile", "hardened"),)) in got
        assert value(got, "chaosml_gateway_default_responses_total", profile="hardened") == 1.0
        assert value(got, "chaosml_gateway_requests_total", profile="hardened", served_by="default", status="200") == 1.0
        for u in urls:
            assert value(got, "chaosml_gateway_backend_up", profile="hardened", backend=u) == 0.0

    run_app(app, scenario, wait_ready=False)


def test_each_process_object_has_its_own_registry() -> None:
    a = StackMetrics("chaosml_t", {"replica": "a"}, ("x",))
    b = StackMetrics("chaosml_t", {"replica": "b"}, ("x",))  # the same names twice: no clash in a global registry
    a.inc("x", 3)
    sa, sb = samples(a.render().decode()), samples(b.render().decode())
    assert value(sa, "chaosml_t_x_total", replica="a") == 3.0 and value(sb, "chaosml_t_x_total", replica="b") == 0.0
