"""Entry point of the reference stack (``python -m chaosml.stack.gateway``): a round-robin reverse proxy for /predict.

- naive: the next backend in round-robin order gets the request, no retry, no health-based routing;
  a dead backend gives the client a 502.
- hardened: per-attempt timeout; on a connection error, timeout or 5xx one retry on another
  backend while the retry budget lasts; a failing backend is ejected for a short time (passive)
  and only backends whose ``/readyz`` answered 200 in the last check get traffic (active, every
  250 ms); when no backend can answer, 200 with the artifact's default response
  (``served_by: default``). A 200 whose body is not a JSON object with a ``prediction`` (empty,
  malformed) counts as a failed attempt too.

The backend's status, body and ``X-Served-By`` header pass through unchanged. Both profiles run the
health checker, so ``/readyz`` (200 when at least one backend is ready) means the same in each.
"""

from __future__ import annotations

import time

_T0 = time.monotonic()

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from chaosml.stack.metrics import CONTENT_TYPE, StackMetrics
from chaosml.stack.models import load_meta
from chaosml.stack.profiles import Profile, get_profile
from chaosml.stack.service import errors_as_json, serve

HEALTH_INTERVAL_S = 0.25
HEALTH_TIMEOUT_S = 0.2
MAX_BODY_BYTES = 1024**2
RETRY_BUDGET_MAX = 10.0
#: The gateway's event counters (``chaosml_gateway_<event>_total``), present from the start at 0.
GATEWAY_EVENTS = ("retries", "retries_denied", "default_responses", "ejections", "malformed_answers")


@dataclass
class Backend:
    url: str
    healthy: bool = False
    ejected_until: float = 0.0

    def eligible(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until


@dataclass
class GatewayConfig:
    backends: list[str]
    artifact: Path
    profile: str = "hardened"
    host: str = "127.0.0.1"
    port: int = 0
    name: str = "gateway"


class Gateway:
    def __init__(self, cfg: GatewayConfig) -> None:
        if not cfg.backends:
            raise ValueError("the gateway needs at least one backend")
        self.cfg = cfg
        self.profile: Profile = get_profile(cfg.profile)
        self.default = load_meta(cfg.artifact)["default"]
        self.backends = [Backend(u.rstrip("/")) for u in cfg.backends]
        self.rr = 0
        self.retry_tokens = RETRY_BUDGET_MAX
        self.metrics = StackMetrics(
            "chaosml_gateway", {"profile": self.profile.name}, GATEWAY_EVENTS,
            gauges={"retry_tokens": (), "backend_up": ("backend",), "backend_ejected": ("backend",)},
            counters={"backend_attempts": ("backend",), "backend_failures": ("backend",)},
        )
        self.session: aiohttp.ClientSession | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._announced = False

    async def on_startup(self, app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=256, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
        self._health_task = asyncio.create_task(self._health_loop())

    async def on_cleanup(self, app: web.Application) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            try:
                await self._health_task
            except asyncio.CancelledError:
                pass
        if self.session is not None:
            await self.session.close()

    # --- health ----------------------------------------------------------------------
    async def _check(self, b: Backend) -> None:
        assert self.session is not None
        try:
            async with self.session.get(
                b.url + "/readyz", timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
            ) as r:
                await r.read()
                b.healthy = r.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            b.healthy = False

    async def _health_loop(self) -> None:
        while True:  # runs for the life of the app; cancelled on cleanup
            await asyncio.gather(*(self._check(b) for b in self.backends))
            if not self._announced and any(b.healthy for b in self.backends):
                self._announced = True
                print(
                    f"gateway ready on {self.cfg.host}:{self.cfg.port} profile={self.profile.name} "
                    f"backends={len(self.backends)} startup_s={time.monotonic() - _T0:.3f}",
                    flush=True,
                )
            await asyncio.sleep(HEALTH_INTERVAL_S)

    # --- handlers --------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "replica": self.cfg.name})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = [b.url for b in self.backends if b.healthy]
        return web.json_response({"ready": bool(ready), "backends_ready": ready}, status=200 if ready else 503)

    async def metrics_handler(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        self.metrics.set("retry_tokens", self.retry_tokens)
        for b in self.backends:
            self.metrics.set("backend_up", float(b.healthy), backend=b.url)
            self.metrics.set("backend_ejected", float(now < b.ejected_until), backend=b.url)
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def predict(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        resp = await self._predict(request)
        self.metrics.observe(resp.headers.get("X-Served-By", ""), resp.status, time.perf_counter() - t0)
        return resp

    async def _predict(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(
                {"error": f"body larger than {MAX_BODY_BYTES} bytes", "field": "body", "served_by": "rejected"},
                status=413,
                headers={"X-Served-By": "rejected"},
            )
        ctype = request.headers.get("Content-Type", "application/json")
        if self.profile.retries == 0 and not self.profile.health_checks:
            b = self.backends[self.rr % len(self.backends)]
            self.rr += 1
            try:
                return await self._forward(b, body, ctype)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                return web.json_response({"error": f"upstream {b.url}: {type(e).__name__}: {e}"}, status=502)
        return await self._predict_hardened(body, ctype)

    def _pick(self, tried: set[int]) -> int | None:
        now = time.monotonic()
        n = len(self.backends)
        for k in range(n):
            i = (self.rr + k) % n
            if i not in tried and self.backends[i].eligible(now):
                self.rr = i + 1
                return i
        return None

    async def _predict_hardened(self, body: bytes, ctype: str) -> web.Response:
        self.retry_tokens = min(RETRY_BUDGET_MAX, self.retry_tokens + self.profile.retry_budget_ratio)
        tried: set[int] = set()
        last_error = "no ready backend"
        for attempt in range(1 + self.profile.retries):
            if attempt > 0:
                if self.retry_tokens < 1.0:
                    self.metrics.inc("retries_denied")
                    break
                self.retry_tokens -= 1.0
                self.metrics.inc("retries")
            i = self._pick(tried)
            if i is None:
                break
            tried.add(i)
            b = self.backends[i]
            try:
                resp = await self._forward(b, body, ctype)
            except (aiohttp.ClientError, TimeoutError, OSError) as e:
                last_error = f"upstream {b.url}: {type(e).__name__}: {e}"
                self._eject(b)
                continue
            if resp.status >= 500:
                last_error = f"upstream {b.url}: status {resp.status}"
            elif resp.status == 200 and self.profile.check_answers and not _well_formed(resp.body):
                last_error = f"upstream {b.url}: a 200 without a JSON prediction"
                self.metrics.inc("malformed_answers")
            else:
                return resp
            self._eject(b)
        if self.profile.default_on_exhaustion:
            self.metrics.inc("default_responses")
            d = self.default
            return web.json_response(
                {
                    "prediction": int(d["prediction"]),
                    "confidence": float(d["confidence"]),
                    "served_by": "default",
                    "model_version": str(d["model_version"]),
                    "replica": self.cfg.name,
                    "reason": last_error,
                },
                headers={"X-Served-By": "default"},
            )
        return web.json_response({"error": last_error}, status=503)

    def _eject(self, b: Backend) -> None:
        self.metrics.count("backend_failures", backend=b.url)
        if self.profile.eject_s > 0:
            b.ejected_until = time.monotonic() + self.profile.eject_s
            self.metrics.inc("ejections")

    async def _forward(self, b: Backend, body: bytes, ctype: str) -> web.Response:
        assert self.session is not None
        self.metrics.count("backend_attempts", backend=b.url)
        t = self.profile.attempt_timeout_s
        try:
            async with self.session.post(
                b.url + "/predict",
                data=body,
                headers={"Content-Type": ctype},
                timeout=aiohttp.ClientTimeout(total=t),
            ) as r:
                payload = await r.read()
                headers = {"X-Served-By": r.headers["X-Served-By"]} if "X-Served-By" in r.headers else {}
                return web.Response(body=payload, status=r.status, headers=headers, content_type=r.content_type)
        except (aiohttp.ClientError, TimeoutError, OSError):
            if not (self.profile.retries or self.profile.health_checks):
                self.metrics.count("backend_failures", backend=b.url)
            raise


def _well_formed(body: object) -> bool:
    """Whether a backend's 200 body is a JSON object holding a ``prediction``."""
    if not isinstance(body, bytes):
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and "prediction" in answer


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def create_app(cfg: GatewayConfig) -> web.Application:
    gw = Gateway(cfg)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors_as_json])
    app[GATEWAY_KEY] = gw
    app.on_startup.append(gw.on_startup)
    app.on_cleanup.append(gw.on_cleanup)
    app.router.add_post("/predict", gw.predict)
    app.router.add_get("/healthz", gw.healthz)
    app.router.add_get("/readyz", gw.readyz)
    app.router.add_get("/metrics", gw.metrics_handler)
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaosml.stack.gateway", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--backends", required=True, help="comma-separated base URLs")
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--profile", choices=("naive", "hardened"), default="hardened")
    a = ap.parse_args(argv)
    cfg = GatewayConfig(
        backends=[u for u in a.backends.split(",") if u.strip()],
        artifact=a.artifact,
        profile=a.profile,
        host=a.host,
        port=a.port,
    )
    asyncio.run(serve(create_app(cfg), cfg.host, cfg.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
