"""Replica and gateway apps in-process against a real redis-server: routing, validation, fallbacks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from chaosml.stack import featurestore
from chaosml.stack.gateway import GatewayConfig
from chaosml.stack.gateway import create_app as create_gateway
from chaosml.stack.models import ensure_artifact
from chaosml.stack.service import ServiceConfig, create_app
from chaosml.targets.local import free_ports
from chaosml.targets.supervisor import probe
from chaosml.workload.builtin_dataset import Dataset, load_dataset


@pytest.fixture(scope="module")
def ds() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def artifact() -> Path:
    return ensure_artifact()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory, ds: Dataset) -> Iterator[str]:
    port = free_ports(1)[0]
    d = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [str(featurestore.redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(d)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not probe(f"tcp://127.0.0.1:{port}", 0.2):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}/0"
        assert featurestore.seed(url, ds) == 569
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def closed_port_url() -> str:
    return f"redis://127.0.0.1:{free_ports(1)[0]}/0"


Scenario = Callable[[TestClient[Any, Any]], Awaitable[None]]


def run_app(app: web.Application, scenario: Scenario, wait_ready: bool = True) -> None:
    async def main() -> None:
        async with TestClient(TestServer(app)) as client:
            if wait_ready:
                for _ in range(100):
                    if (await client.get("/readyz")).status == 200:
                        break
                    await asyncio.sleep(0.02)
            await scenario(client)

    asyncio.run(main())


def replica(redis_url: str, artifact: Path, profile: str) -> web.Application:
    return create_app(ServiceConfig(name="model-t", redis_url=redis_url, artifact=artifact, profile=profile))


@pytest.mark.parametrize("profile", ["naive", "hardened"])
def test_clean_rows_served_by_primary(profile: str, redis_url: str, artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        served, correct = [], 0
        for i in ds.test_idx:
            r = await c.post("/predict", json=ds.row_payload(int(i)))
            assert r.status == 200
            body = await r.json()
            assert r.headers["X-Served-By"] == body["served_by"]
            assert set(body) >= {"prediction", "confidence", "served_by", "model_version", "replica"}
            assert 0.0 <= body["confidence"] <= 1.0 and body["replica"] == "model-t"
            served.append(body["served_by"])
            correct += body["prediction"] == ds.label(int(i))
        assert served.count("primary") / len(served) >= 0.97
        assert correct / len(served) > 0.9
        text = await (await c.get("/metrics")).text()
        assert 'served_by="primary",status="200"' in text
        assert "chaosml_replica_request_duration_seconds_bucket" in text
        assert ("chaosml_replica_breaker_state" in text) == (profile == "hardened")
        assert (await c.get("/healthz")).status == 200

    run_app(replica(redis_url, artifact, profile), scenario)


BAD_BODIES: list[tuple[Any, str]] = [
    ("not json", "body"),
    ([1, 2], "body"),
    ({"features": {}}, "entity_id"),
    ({"entity_id": "7", "features": {}}, "entity_id"),
    ({"entity_id": 10**6, "features": {}}, "entity_id"),
    ({"entity_id": 7}, "features"),
]


def test_hardened_rejects_bad_input_naming_the_field(redis_url: str, artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        for body, field in BAD_BODIES:
            data = body if isinstance(body, str) else json.dumps(body)
            r = await c.post("/predict", data=data, headers={"Content-Type": "application/json"})
            got = await r.json()
            assert (r.status, got["field"], got["served_by"]) == (422, field, "rejected"), (body, got)
            assert r.headers["X-Served-By"] == "rejected"
        good = ds.row_payload(3)
        for value, why in [(None, "missing"), ("1.0", "a number"), (True, "a number"),
                           (float("nan"), "finite"), (1e9, "out of range")]:
            p = json.loads(json.dumps(good))
            if value is None:
                del p["features"]["mean_texture"]
            else:
                p["features"]["mean_texture"] = value
            r = await c.post("/predict", data=json.dumps(p), headers={"Content-Type": "application/json"})
            got = await r.json()
            assert r.status == 422 and got["field"] == "features.mean_texture" and why in got["error"], got
        r = await c.post("/predict", data=b"x" * (65 * 1024), headers={"Content-Type": "application/json"})
        assert r.status == 413 and (await r.json())["served_by"] == "rejected"

    run_app(replica(redis_url, artifact, "hardened"), scenario)


def test_naive_gives_500_on_bad_input(redis_url: str, artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        r = await c.post("/predict", json={"entity_id": 7})
        assert r.status == 500 and "error" in await r.json()

    run_app(replica(redis_url, artifact, "naive"), scenario)


def test_hardened_ood_goes_to_fallback(redis_url: str, artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        p = ds.row_payload(int(ds.test_idx[0]))
        lo, hi = ds.feature_ranges()["mean_smoothness"]
        p["features"]["mean_smoothness"] = hi + 2 * (hi - lo)  # within the accepted range, far from the data
        body = await (await c.post("/predict", json=p)).json()
        assert (body["served_by"], body["reason"]) == ("fallback", "ood")

    run_app(replica(redis_url, artifact, "hardened"), scenario)


def test_hardened_ood_answers_drifted_inputs_without_confident_mistakes(redis_url: str, artifact: Path, ds: Dataset) -> None:
    """Drift found it: the OOD route answered from the fallback alone, which sees only the (drifted) request
    features, and was confidently wrong on about 0.6 of the rows below; with the entity features fetched its
    probabilities are averaged with the primary's (calibrated confidence)."""
    rows = [int(i) for i in ds.test_idx]
    x = ds.X[ds.test_idx]
    shifted = ("mean_radius", "mean_perimeter", "mean_area", "mean_concavity")
    std = {f: float(x[:, ds.column(f)].std()) for f in shifted}

    async def scenario(c: TestClient[Any, Any]) -> None:
        ood = confident_wrong = 0
        for i in rows:
            p = ds.row_payload(i)
            for f in shifted:
                p["features"][f] += 3 * std[f]  # 3 standard deviations: the drift-hardened experiment's full magnitude
            body = await (await c.post("/predict", json=p)).json()
            ood += body.get("reason") == "ood"
            confident_wrong += body["prediction"] != ds.label(i) and body["confidence"] >= 0.8
        assert ood >= 0.5 * len(rows)  # the guard sees the drift
        assert confident_wrong <= 0.05 * len(rows), (confident_wrong, len(rows))

    run_app(replica(redis_url, artifact, "hardened"), scenario)


def test_hardened_falls_back_when_feature_store_is_down(artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        reasons = []
        for i in ds.test_idx[:20]:
            r = await c.post("/predict", json=ds.row_payload(int(i)))
            body = await r.json()
            assert r.status == 200 and body["served_by"] == "fallback"
            assert body["model_version"].startswith("fallback-")
            reasons.append(body["reason"])
        assert reasons[0] == "feature_store_error" and reasons[-1] == "breaker_open"
        assert "chaosml_replica_breaker_state{" in (text := await (await c.get("/metrics")).text())
        assert next(ln for ln in text.splitlines() if ln.startswith("chaosml_replica_breaker_state{")).endswith(" 1.0")
        assert (await c.get("/readyz")).status == 503  # never reached the store at startup

    run_app(replica(closed_port_url(), artifact, "hardened"), scenario, wait_ready=False)


def test_naive_answers_confidently_from_primary_when_store_is_down(artifact: Path, ds: Dataset) -> None:
    async def scenario(c: TestClient[Any, Any]) -> None:
        for i in ds.test_idx[:10]:
            r = await c.post("/predict", json=ds.row_payload(int(i)))
            body = await r.json()
            assert r.status == 200 and body["served_by"] == "primary"  # the silent failure

    run_app(replica(closed_port_url(), artifact, "naive"), scenario, wait_ready=False)


def test_hardened_falls_back_on_missing_entity_row(redis_url: str, artifact: Path, ds: Dataset) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    eid = int(ds.test_idx[1])
    saved = r.hgetall(featurestore.entity_key(eid))
    r.delete(featurestore.entity_key(eid))
    try:
        async def scenario(c: TestClient[Any, Any]) -> None:
            body = await (await c.post("/predict", json=ds.row_payload(eid))).json()
            assert (body["served_by"], body["reason"]) == ("fallback", "entity_features_missing")

        run_app(replica(redis_url, artifact, "hardened"), scenario)
    finally:
        r.hset(featurestore.entity_key(eid), mapping=saved)
        r.close()


@pytest.mark.parametrize("profile,status,served_by", [("naive", 502, None), ("hardened", 200, "default")])
def test_gateway_without_live_backends(profile: str, status: int, served_by: str | None, artifact: Path, ds: Dataset) -> None:
    ports = free_ports(2)
    app = create_gateway(GatewayConfig(backends=[f"http://127.0.0.1:{p}" for p in ports], artifact=artifact, profile=profile))

    async def scenario(c: TestClient[Any, Any]) -> None:
        await asyncio.sleep(0.1)
        r = await c.post("/predict", json=ds.row_payload(1))
        body = await r.json()
        assert r.status == status, body
        assert body.get("served_by") == served_by
        assert (await c.get("/readyz")).status == 503
        assert "chaosml_gateway_backend_up" in await (await c.get("/metrics")).text()

    run_app(app, scenario, wait_ready=False)


def _backend(body: bytes) -> web.Application:
    """A replica stand-in: ready, and answering every /predict with ``body`` (status 200)."""

    async def predict(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers={"X-Served-By": "primary"})

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"ready": True})

    app = web.Application()
    app.router.add_post("/predict", predict)
    app.router.add_get("/readyz", readyz)
    return app


@pytest.mark.parametrize("profile,answered", [("naive", 5), ("hardened", 10)])
@pytest.mark.parametrize("bad", [b"", b'{"prediction": 1, "confi'], ids=["empty", "malformed"])
def test_hardened_gateway_retries_a_200_without_a_json_prediction(profile: str, answered: int, bad: bytes, artifact: Path,
                                                                  ds: Dataset) -> None:
    good = json.dumps({"prediction": 1, "confidence": 0.9, "served_by": "primary"}).encode()

    async def main() -> int:
        async with TestServer(_backend(bad)) as broken, TestServer(_backend(good)) as fine:
            urls = [str(broken.make_url("")).rstrip("/"), str(fine.make_url("")).rstrip("/")]
            app = create_gateway(GatewayConfig(backends=urls, artifact=artifact, profile=profile))
            async with TestClient(TestServer(app)) as c:
                for _ in range(100):
                    if len((await (await c.get("/readyz")).json())["backends_ready"]) == 2:
                        break
                    await asyncio.sleep(0.02)
                n = 0
                for _ in range(10):
                    r = await c.post("/predict", json=ds.row_payload(1))
                    try:
                        n += r.status == 200 and "prediction" in json.loads(await r.read())
                    except ValueError:
                        pass
                return n

    # naive: round robin hands every other client the broken answer; hardened: retried on the other backend
    assert asyncio.run(main()) == answered
