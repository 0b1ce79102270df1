"""Helpers for the fault tests (a plain module, not conftest: `from conftest import` is ambiguous across test directories)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chaosml.faults.base import FaultContext, Injector, make_injector
from chaosml.model.experiment import FaultSpec
from chaosml.stack.featurestore import KEY_PREFIX
from chaosml.workload.builtin_dataset import Dataset


def injector_for(target: Any, fault_type: str, params: Any, name: str = "f", seed: int = 7) -> Injector:
    return make_injector(FaultSpec(name=name, type=fault_type, at=0.0, duration=1.0, params=params), target, FaultContext(seed=seed))


def predict(url: str, payload: dict[str, Any], timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    """POST /predict; status 0 when the connection failed."""
    req = urllib.request.Request(url + "/predict", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, json.loads(body) if body.startswith(b"{") else {}
    except (OSError, urllib.error.URLError) as e:
        return 0, {"error": str(e)}


def dump_all(redis_url: str) -> dict[bytes, bytes]:
    """DUMP of every key in the database (not only feature rows)."""
    import redis

    r = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = sorted(r.scan_iter(count=1000))
        pipe = r.pipeline(transaction=True)
        for k in keys:
            pipe.dump(k)
        return dict(zip(keys, pipe.execute(), strict=True))
    finally:
        r.close()


def row(redis_url: str, entity: int) -> dict[str, str]:
    import redis

    r = redis.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
    try:
        return r.hgetall(f"{KEY_PREFIX}{entity}")
    finally:
        r.close()


def payload_for(ds: Dataset, entity: int) -> dict[str, Any]:
    return ds.row_payload(int(entity))


def crash_copy(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the ledger has it on disk: JSON, nothing live."""
    return json.loads(json.dumps(record))
