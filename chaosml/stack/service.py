"""Model replica HTTP app of the reference stack (``python -m chaosml.stack.service``); run by the local target.

``POST /predict`` takes ``{"entity_id": int, "features": {<request feature>: float}}``, fetches the
entity's features from Redis and answers ``{"prediction", "confidence", "served_by", "model_version",
"replica"}``. The profile decides the resilience patterns (see ``profiles.py``):

- naive: no validation (a bad body gives a 500 or garbage); the feature fetch has no timeout and no
  breaker; when it fails the entity features are filled with 0.0 and the primary still answers,
  confidently and possibly wrong (the silent failure).
- hardened: validation (422 naming the field, 413 over 64 KiB); routing in this order:
  1. request features out of distribution (Mahalanobis distance above the artifact's threshold)
     -> fallback (reason ``ood``), its probabilities averaged with the primary's when the entity
     features could be fetched (step 2): the fallback sees only the request features, the very ones
     that drifted, and alone answers drifted inputs confidently wrong (the drift fault showed it);
  2. feature fetch with a timeout behind a circuit breaker; an error, timeout, open breaker
     (``feature_store_error``, ``breaker_open``), a missing row or field (``entity_features_missing``)
     or a stored value that is not a finite number within the training range
     (``entity_features_invalid``: NaN, inf, out of range, not a number) -> fallback;
  3. primary on all features; confidence below ``min_confidence`` -> fallback (``low_confidence``),
     its probabilities averaged with the primary's (calibrated confidence: when the primary is
     unsure, the answer is never more confident than both models together; an input crafted to
     fool the fallback cannot come back confidently wrong through this path);
  4. fallback failing -> the default response (majority class, prior as confidence).

``POST /admin/model`` ``{"path": <variant npz>, "version": <model version>}`` serves a degraded
primary variant (``chaosml.stack.models.ensure_variant``, the ``model-rollout`` fault) instead of the
base one, reported as ``model_version``; ``DELETE /admin/model`` returns to the base primary (a
restarted replica starts on it anyway). ``--variant <spec JSON>`` serves a variant from the start (trained
before the replica listens: the kubernetes reference stack's ``model-canary`` Deployment). The hardened profile's shadow guard also runs the base
primary on every request the variant answers and rolls the variant back by itself once, over the
last ``SHADOW_WINDOW`` variant answers, more than ``SHADOW_MAX_DISAGREEMENT`` of the predictions
differ from the base's.

``/readyz`` turns 200 once the artifact is loaded and Redis answered a PING; it then stays ready
during feature-store outages, because the replica can still serve through the fallback.
"""

from __future__ import annotations

import time

_T0 = time.monotonic()

import argparse
import asyncio
import json
import math
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from chaosml.stack.breaker import CircuitBreaker
from chaosml.stack.featurestore import FeatureStoreError, fetch
from chaosml.stack.metrics import CONTENT_TYPE, StackMetrics
from chaosml.stack.models import Artifact, TreeEnsemble, ensure_variant, load_artifact, load_variant
from chaosml.stack.profiles import Profile, get_profile

MAX_BODY_BYTES = 64 * 1024
RANGE_MARGIN = 3.0  # accepted values: [min - 3*range, max + 3*range] of the training rows
STORE_WAIT_S = 600.0
#: The replica's event counters (``chaosml_replica_<event>_total``), present from the start at 0.
FALLBACK_REASONS = ("ood", "feature_store_error", "breaker_open", "entity_features_missing", "entity_features_invalid", "low_confidence")
REPLICA_EVENTS = (
    "bad_requests", "rejected", "feature_fetch_failures", "breaker_rejections", "feature_rows_missing",
    "feature_rows_invalid", "default_responses", "startup_store_ping_failures", "variant_applies", "variant_rollbacks",
    *(f"fallback_{r}" for r in FALLBACK_REASONS),
)  # give up waiting for the feature store at startup after this long
SHADOW_WINDOW = 40  # hardened shadow guard: variant answers compared with the base primary's
SHADOW_MAX_DISAGREEMENT = 0.05  # ... rolled back when more than this share of them disagree


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    name: str
    redis_url: str
    artifact: Path
    profile: str = "hardened"
    host: str = "127.0.0.1"
    port: int = 0
    variant: dict[str, Any] | None = None  # serve this degraded variant from the start (ensure_variant's spec)


class Rejected(Exception):
    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status


class Replica:
    """One replica's state and request handling."""

    def __init__(self, cfg: ServiceConfig, artifact: Artifact) -> None:
        self.cfg = cfg
        self.profile: Profile = get_profile(cfg.profile)
        self.art = artifact
        self.meta = artifact.meta
        self.feature_names = artifact.feature_names
        self.request_features = artifact.request_features
        self.entity_features = artifact.entity_features
        self.col = {f: i for i, f in enumerate(self.feature_names)}
        self.req_cols = [self.col[f] for f in self.request_features]
        self.n_entities = int(self.meta["n_entities"])
        self.min_confidence = float(self.meta["primary"]["min_confidence"])
        self.bounds: dict[str, tuple[float, float]] = {}
        for f, (lo, hi) in self.meta["train_ranges"].items():
            span = max(hi - lo, abs(hi), 1e-12)
            self.bounds[f] = (lo - RANGE_MARGIN * span, hi + RANGE_MARGIN * span)
        p = self.profile
        self.breaker = CircuitBreaker(p.breaker_failure_threshold, p.breaker_open_s) if p.breaker else None
        self.metrics = StackMetrics(
            "chaosml_replica", {"replica": cfg.name, "profile": self.profile.name}, REPLICA_EVENTS,
            {"ready": (), **({"breaker_state": (), "breaker_opens": ()} if self.breaker is not None else {})},
        )
        self.ready = False
        self.redis: Any = None
        self._store_task: asyncio.Task[None] | None = None
        self.variant: TreeEnsemble | None = None
        self.variant_version = ""
        self._shadow: list[bool] = []  # the last SHADOW_WINDOW variant answers: disagreed with the base primary
        if cfg.variant is not None:
            path, self.variant_version = ensure_variant(cfg.artifact, cfg.variant)
            self.variant = load_variant(path)

    # --- lifecycle -----------------------------------------------------------------------
    async def on_startup(self, app: web.Application) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        t = self.profile.fetch_timeout_s
        self.redis = aioredis.Redis.from_url(
            self.cfg.redis_url,
            socket_timeout=t,
            socket_connect_timeout=t,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._store_task = asyncio.create_task(self._wait_store())

    async def on_cleanup(self, app: web.Application) -> None:
        if self._store_task is not None:
            self._store_task.cancel()
            try:
                await self._store_task
            except asyncio.CancelledError:
                pass
        if self.redis is not None:
            await self.redis.aclose()

    async def _wait_store(self) -> None:
        deadline = time.monotonic() + STORE_WAIT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.redis.ping(), 0.5)
                self.ready = True
                print(
                    f"replica {self.cfg.name} ready on {self.cfg.host}:{self.cfg.port} profile={self.profile.name} "
                    f"model={self.art.primary_version} startup_s={time.monotonic() - _T0:.3f}",
                    flush=True,
                )
                return
            except Exception as e:  # noqa: BLE001 - any failure means "not yet"
                self.metrics.inc("startup_store_ping_failures")
                last = e
            await asyncio.sleep(0.2)
        print(f"replica {self.cfg.name}: feature store never answered: {last!r}", file=sys.stderr, flush=True)

    # --- handlers -----------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "replica": self.cfg.name})

    async def readyz(self, request: web.Request) -> web.Response:
        status = 200 if self.ready else 503
        return web.json_response({"ready": self.ready, "replica": self.cfg.name}, status=status)

    async def metrics_handler(self, request: web.Request) -> web.Response:
        self.metrics.set("ready", 1.0 if self.ready else 0.0)
        if self.breaker is not None:
            self.metrics.set("breaker_state", float(self.breaker.state_code))
            self.metrics.set("breaker_opens", float(self.breaker.opens))
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def predict(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        status, body = 500, {"error": "internal error"}
        try:
            if self.profile.validate_input:
                status, body = await self._predict_hardened(request)
            else:
                status, body = await self._predict_naive(request)
        finally:
            conf = body.get("confidence")
            self.metrics.observe(str(body.get("served_by", "")), status, time.perf_counter() - t0,
                                 float(conf) if isinstance(conf, float | int) else None, self.min_confidence)
        headers = {"X-Served-By": str(body["served_by"])} if "served_by" in body else {}
        return web.json_response(body, status=status, headers=headers)

    async def set_model(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            self.variant, self.variant_version = load_variant(Path(spec["path"])), str(spec["version"])
        except Exception as e:  # noqa: BLE001 - any bad spec is the caller's error
            return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=400)
        self._shadow = []
        self.metrics.inc("variant_applies")
        print(f"replica {self.cfg.name} serving model variant {self.variant_version}", flush=True)
        return web.json_response({"model_version": self.variant_version, "replica": self.cfg.name})

    async def clear_model(self, request: web.Request) -> web.Response:
        self.variant, self.variant_version, self._shadow = None, "", []
        return web.json_response({"model_version": self.art.primary_version, "replica": self.cfg.name})

    def _primary(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        """The serving primary's probabilities and version: the variant while one is set, else the base primary."""
        variant = self.variant
        if variant is None:
            return self.art.primary.predict_proba(x)[0], self.art.primary_version
        proba, version = variant.predict_proba(x)[0], self.variant_version
        if self.profile.shadow_guard:
            base = self.art.primary.predict_proba(x)[0]
            self._shadow = [*self._shadow[-(SHADOW_WINDOW - 1):], bool(np.argmax(base) != np.argmax(proba))]
            if len(self._shadow) >= SHADOW_WINDOW and sum(self._shadow) > SHADOW_MAX_DISAGREEMENT * len(self._shadow):
                self.metrics.inc("variant_rollbacks")
                print(f"replica {self.cfg.name}: shadow guard rolled back {version} "
                      f"({sum(self._shadow)} of {len(self._shadow)} answers disagreed with the base)", flush=True)
                self.variant, self.variant_version, self._shadow = None, "", []
        return proba, version

    # --- naive -----------------------------------------------------------------------
    async def _predict_naive(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        try:
            req = await request.json()
            eid = req["entity_id"]
            feats = req["features"]
            x = np.zeros(len(self.feature_names))
            for f in self.request_features:
                x[self.col[f]] = float(feats[f])
        except Exception as e:  # noqa: BLE001 - naive: no validation, any bad body is a 500
            self.metrics.inc("bad_requests")
            return 500, {"error": f"{type(e).__name__}: {e}"}
        try:
            row = await fetch(self.redis, eid, self.entity_features, None)
        except FeatureStoreError:
            self.metrics.inc("feature_fetch_failures")
            row = None
        for f in self.entity_features:
            v = row.get(f) if row else None
            x[self.col[f]] = v if v is not None else 0.0
        proba, version = self._primary(x)
        return 200, self._answer(proba, "primary", version)

    # --- hardened ---------------------------------------------------------------------
    async def _predict_hardened(self, request: web.Request) -> tuple[int, dict[str, Any]]:
        try:
            eid, x_req = await self._validate(request)
        except Rejected as r:
            self.metrics.inc("rejected")
            return r.status, {"error": r.message, "field": r.field, "served_by": "rejected", "replica": self.cfg.name}
        x = np.zeros(len(self.feature_names))
        x[self.req_cols] = x_req
        ood = self.profile.ood_routing and float(self.art.ood_distance(x_req)[0]) > self.art.ood_threshold
        reason = await self._fetch_into(eid, x)
        if ood:  # the fallback alone sees only the shifted request features: averaged with the primary when it can answer
            return 200, self._fallback(x_req, "ood", with_primary=None if reason else self._primary(x)[0])
        if reason is not None:
            return 200, self._fallback(x_req, reason)
        proba, version = self._primary(x)
        if self.profile.ood_routing and float(proba.max()) < self.min_confidence:
            return 200, self._fallback(x_req, "low_confidence", with_primary=proba)
        return 200, self._answer(proba, "primary", version)

    async def _fetch_into(self, eid: int, x: np.ndarray) -> str | None:
        """Fill the entity features into ``x``; return why not (a fallback reason), or None."""
        br = self.breaker
        if br is not None and not br.allow():
            self.metrics.inc("breaker_rejections")
            return "breaker_open"
        try:
            row = await fetch(self.redis, eid, self.entity_features, self.profile.fetch_timeout_s)
        except FeatureStoreError:
            self.metrics.inc("feature_fetch_failures")
            if br is not None:
                br.record_failure()
            return "feature_store_error"
        if br is not None:
            br.record_success()
        if row is None or len(row) < len(self.entity_features):  # no row, or fields dropped from it
            self.metrics.inc("feature_rows_missing")
            return "entity_features_missing"
        for f in self.entity_features:
            v = row.get(f)
            lo, hi = self.bounds[f]
            if v is None or not math.isfinite(v) or not lo <= v <= hi:
                self.metrics.inc("feature_rows_invalid")
                return "entity_features_invalid"
            x[self.col[f]] = v
        return None

    async def _validate(self, request: web.Request) -> tuple[int, np.ndarray]:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise Rejected("body", f"body larger than {MAX_BODY_BYTES} bytes", 413)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Rejected("body", f"body larger than {MAX_BODY_BYTES} bytes", 413) from None
        try:
            req = json.loads(raw)
        except (ValueError, RecursionError):
            raise Rejected("body", "body is not valid JSON") from None
        if not isinstance(req, dict):
            raise Rejected("body", "body must be a JSON object")
        eid = req.get("entity_id")
        if "entity_id" not in req:
            raise Rejected("entity_id", "missing field")
        if isinstance(eid, bool) or not isinstance(eid, int):
            raise Rejected("entity_id", "must be an integer")
        if not 0 <= eid < self.n_entities:
            raise Rejected("entity_id", f"unknown entity {eid}")
        feats = req.get("features")
        if not isinstance(feats, dict):
            raise Rejected("features", "missing field" if feats is None else "must be an object")
        x_req = np.zeros(len(self.request_features))
        for j, f in enumerate(self.request_features):
            field = f"features.{f}"
            if f not in feats:
                raise Rejected(field, "missing field")
            v = feats[f]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Rejected(field, "must be a number")
            try:
                v = float(v)
            except OverflowError:  # a JSON integer too large for a float (e.g. 10**400)
                raise Rejected(field, "must be finite") from None
            if not math.isfinite(v):
                raise Rejected(field, "must be finite")
            lo, hi = self.bounds[f]
            if not lo <= v <= hi:
                raise Rejected(field, f"out of range [{lo:.6g}, {hi:.6g}]")
            x_req[j] = v
        return eid, x_req

    def _fallback(self, x_req: np.ndarray, reason: str, with_primary: np.ndarray | None = None) -> dict[str, Any]:
        self.metrics.inc(f"fallback_{reason}")
        try:
            proba = self.art.fallback.predict_proba(x_req)[0]
            if not np.all(np.isfinite(proba)):
                raise ValueError("non-finite fallback probabilities")
            if with_primary is not None:
                proba = (proba + with_primary) / 2.0
            return self._answer(proba, "fallback", self.art.fallback_version, reason)
        except Exception:  # noqa: BLE001 - any fallback failure degrades to the default
            self.metrics.inc("default_responses")
            d = self.art.default_response
            return {
                "prediction": int(d["prediction"]),
                "confidence": float(d["confidence"]),
                "served_by": "default",
                "model_version": str(d["model_version"]),
                "replica": self.cfg.name,
                "reason": reason,
            }

    def _answer(self, proba: np.ndarray, served_by: str, version: str, reason: str | None = None) -> dict[str, Any]:
        pred = int(np.argmax(proba))
        out: dict[str, Any] = {
            "prediction": pred,
            "confidence": min(1.0, max(0.0, float(proba[pred]))),
            "served_by": served_by,
            "model_version": version,
            "replica": self.cfg.name,
        }
        if reason is not None:
            out["reason"] = reason
        return out


@web.middleware
async def errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as e:  # noqa: BLE001 - every unexpected error becomes a JSON 500
        return web.json_response({"error": f"{type(e).__name__}: {e}"}, status=500)


REPLICA_KEY = web.AppKey("replica", Replica)


def create_app(cfg: ServiceConfig, artifact: Artifact | None = None) -> web.Application:
    """The replica's aiohttp application (used by ``main`` and by in-process tests)."""
    art = artifact if artifact is not None else load_artifact(cfg.artifact)
    replica = Replica(cfg, art)
    max_size = MAX_BODY_BYTES if replica.profile.validate_input else 1024**2
    app = web.Application(client_max_size=max_size, middlewares=[errors_as_json])
    app[REPLICA_KEY] = replica
    app.on_startup.append(replica.on_startup)
    app.on_cleanup.append(replica.on_cleanup)
    app.router.add_post("/predict", replica.predict)
    app.router.add_get("/healthz", replica.healthz)
    app.router.add_get("/readyz", replica.readyz)
    app.router.add_get("/metrics", replica.metrics_handler)
    app.router.add_post("/admin/model", replica.set_model)
    app.router.add_delete("/admin/model", replica.clear_model)
    return app


async def serve(app: web.Application, host: str, port: int) -> None:
    """Run ``app`` until SIGTERM/SIGINT, then shut down cleanly."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaosml.stack.service", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--artifact", type=Path, required=True)
    ap.add_argument("--profile", choices=("naive", "hardened"), default="hardened")
    ap.add_argument("--name", default="model-0")
    ap.add_argument("--variant", type=json.loads, default=None,
                    help='serve this degraded variant from the start, e.g. \'{"variant": "drop-cohort", "cohort": "mid-radius"}\'')
    a = ap.parse_args(argv)
    cfg = ServiceConfig(name=a.name, redis_url=a.redis_url, artifact=a.artifact, profile=a.profile, host=a.host, port=a.port,
                        variant=a.variant)
    asyncio.run(serve(create_app(cfg), cfg.host, cfg.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
