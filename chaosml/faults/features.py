"""corrupted-features and missing-features: poison or remove feature-store rows, restored byte for byte; used by the runner.

The rows are Redis hashes ``chaosml:features:<entity id>``. ``undo_record`` decides everything before
apply: which keys (seeded choice of ``fraction`` of the rows, or the listed ``entities``), which
fields, the donor rows of ``stale``, the permutation seed of ``shuffle``; and it saves every touched
key's exact bytes with ``DUMP`` (base64) and its TTL. ``apply`` rewrites the rows in one MULTI/EXEC.
``recover`` and the offline undoer run ``RESTORE key <ttl> <dump> REPLACE`` (``DEL`` for a key that did
not exist) in one MULTI/EXEC and then check that ``DUMP`` of every key equals the saved bytes.

Poisons (per field): ``nan`` -> ``nan``; ``inf`` -> ``inf``; ``out-of-range`` -> ``1e6 * (1 + |v|)``
(far outside every feature's range); ``wrong-type`` -> the number as a quoted JSON string (``"12.5"``,
a stringly-typed writer bug); ``shuffle`` -> the row's values rotated across the chosen fields in a
seeded order (every field gets another field's value); ``stale`` -> the values of another entity.
"""

from __future__ import annotations

import base64
import json
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chaosml.errors import TargetError
from chaosml.faults.base import FaultContext, injector, undoer
from chaosml.model.experiment import FaultSpec
from chaosml.records import FaultEvent
from chaosml.stack.featurestore import KEY_PREFIX, entity_key

REDIS_TIMEOUT_S = 2.0
SCAN_COUNT = 1000
MAX_SCAN_CALLS = 100_000  # bounds the key scan (far more than any feature store here)


def _client(redis_url: str) -> Any:
    import redis

    return redis.Redis.from_url(
        redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S, retry_on_timeout=False
    )


def _entity_keys(r: Any) -> list[str]:
    """Every feature row key, sorted by entity id (a deterministic order for the seeded choice)."""
    keys: set[str] = set()
    cursor, calls = 0, 0
    while calls < MAX_SCAN_CALLS:
        cursor, batch = r.scan(cursor=cursor, match=f"{KEY_PREFIX}*", count=SCAN_COUNT)
        keys.update(k.decode() for k in batch)
        calls += 1
        if cursor == 0:
            break
    return sorted(keys, key=lambda k: (len(k), k))


def dump_keys(r: Any, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """key -> ``{"dump": base64 | None (no such key), "pttl": ms | -1}``."""
    pipe = r.pipeline(transaction=True)
    for k in keys:
        pipe.dump(k)
        pipe.pttl(k)
    res = pipe.execute()
    out: dict[str, dict[str, Any]] = {}
    for i, k in enumerate(keys):
        raw, pttl = res[2 * i], res[2 * i + 1]
        out[k] = {"dump": None if raw is None else base64.b64encode(raw).decode(), "pttl": int(pttl) if raw is not None else -1}
    return out


def restore_keys(redis_url: str, saved: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Put every saved key back exactly (idempotent) and verify with DUMP; a summary for the event."""
    r = _client(redis_url)
    try:
        pipe = r.pipeline(transaction=True)
        restored = deleted = 0
        for k, s in saved.items():
            if s["dump"] is None:
                pipe.delete(k)
                deleted += 1
            else:
                ttl = int(s.get("pttl", -1))
                pipe.restore(k, max(0, ttl), base64.b64decode(s["dump"]), replace=True)
                restored += 1
        if saved:
            pipe.execute()
        after = dump_keys(r, list(saved))
    finally:
        r.close()
    mismatched = [k for k, s in saved.items() if after[k]["dump"] != s["dump"]]
    return {"restored": restored, "deleted": deleted, "identical": len(saved) - len(mismatched), "mismatched": mismatched[:20]}


def _decode(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}


def _poison(mode: str, value: str) -> str:
    try:
        v = float(value)
    except ValueError:
        v = 0.0
    if mode == "nan":
        return "nan"
    if mode == "inf":
        return "inf"
    if mode == "out-of-range":
        return repr(1e6 * (1.0 + abs(v)) if math.isfinite(v) else 1e12)
    if mode == "wrong-type":
        return json.dumps(value)
    raise ValueError(f"unknown corruption mode {mode!r}")


def _other(rng: random.Random, keys: Sequence[str], key: str) -> str:
    """A key of ``keys`` other than ``key`` (``key`` itself when it is the only one)."""
    if len(keys) < 2:
        return key
    for _ in range(100):  # almost always the first draw
        k = rng.choice(keys)
        if k != key:
            return k
    return next(k for k in keys if k != key)


class RowFault:
    """Shared by both row faults: choose and save rows before apply, restore them on recover."""

    fault_type = ""

    def __init__(self, spec: FaultSpec, target: Any, context: FaultContext) -> None:
        self.spec = spec
        self.params = spec.params
        self.target = target
        self.seed = context.seed
        self._records: dict[int, dict[str, Any]] = {}

    # --- what the record holds ---------------------------------------------------------
    def undo_record(self, injection: int) -> dict[str, Any]:
        p = self.params
        redis_url = str(self.target.redis_url)
        rng = random.Random(f"{self.seed}:{self.spec.name}:{injection}")
        r = _client(redis_url)
        try:
            all_keys = _entity_keys(r)
            if not all_keys:
                raise TargetError(f"the feature store at {redis_url} has no rows {KEY_PREFIX}* to touch")
            if p.entities is not None:
                keys = [entity_key(e) for e in p.entities]
            else:
                count = min(len(all_keys), max(1, math.ceil(p.fraction * len(all_keys))))
                keys = sorted(rng.sample(all_keys, count), key=lambda k: (len(k), k))
            known = set(_decode(r.hgetall(keys[0] if r.exists(keys[0]) else all_keys[0])))
            if p.features is not None:
                unknown = [f for f in p.features if f not in known]
                if unknown:
                    raise TargetError(
                        f"{self.spec.name}: no feature(s) {', '.join(unknown)} in the feature store; "
                        f"entity features: {', '.join(sorted(known))}"
                    )
            extra: dict[str, Any] = {}
            if getattr(p, "mode", "") == "stale":
                # each row gets the values of another entity, chosen among all rows (not only touched ones)
                extra["donors"] = {k: _other(rng, all_keys, k) for k in keys}
            if getattr(p, "mode", "") == "shuffle":
                extra["shuffle_seed"] = rng.randrange(2**31)
            saved = dump_keys(r, keys)
        finally:
            r.close()
        record = {
            "redis_url": redis_url,
            "mode": p.mode,
            "features": list(p.features) if p.features is not None else None,
            "rows_total": len(all_keys),
            "keys": saved,
            "owned_by_run": bool(getattr(self.target, "owns_redis", True)),
            **extra,
        }
        self._records[injection] = record
        return record

    # --- apply and recover -----------------------------------------------------------
    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        r = _client(record["redis_url"])
        try:
            detail = self._apply(r, record)
        finally:
            r.close()
        keys = list(record["keys"])
        detail.update(
            mode=record["mode"],
            rows=len(keys),
            rows_total=record["rows_total"],
            features=record["features"] or "all",
            entities=[int(k.rsplit(":", 1)[1]) for k in keys[:50]],
            apply_s=round(time.time() - t, 4),
        )
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=detail.get("changed", 0) > 0,
            targets=(f"{len(keys)} of {record['rows_total']} entity rows",), detail=detail,
        )

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        summary = restore_keys(record["redis_url"], record["keys"])
        summary["recover_s"] = round(time.time() - t, 4)
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=not summary["mismatched"],
            targets=(f"{len(record['keys'])} entity rows",), detail=summary,
        )


class CorruptedFeatures(RowFault):
    fault_type = "corrupted-features"

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        mode, keys = record["mode"], list(record["keys"])
        donors: dict[str, str] = record.get("donors", {})
        read = r.pipeline(transaction=False)
        for k in keys:
            read.hgetall(k)
        for k in keys:
            if k in donors:
                read.hgetall(donors[k])
        res = read.execute()
        rows = {k: _decode(res[i]) for i, k in enumerate(keys)}
        donor_rows = {k: _decode(res[len(keys) + i]) for i, k in enumerate(k for k in keys if k in donors)}
        rng = random.Random(record.get("shuffle_seed", 0))
        write = r.pipeline(transaction=True)
        changed, example = 0, None
        for k in keys:
            row = rows[k]
            if not row:
                continue  # no such entity: nothing to poison (restore deletes nothing either)
            fields = [f for f in (record["features"] or sorted(row)) if f in row]
            if mode == "shuffle":
                order = list(fields)
                rng.shuffle(order)
                new = {order[i]: row[order[(i + 1) % len(order)]] for i in range(len(order))} if len(order) > 1 else {}
            elif mode == "stale":
                donor = donor_rows.get(k, {})
                new = {f: donor[f] for f in fields if f in donor}
            else:
                new = {f: _poison(mode, row[f]) for f in fields}
            if not new:
                continue
            write.hset(k, mapping=new)
            changed += 1
            if example is None:
                f0 = next(iter(new))
                example = {"key": k, "field": f0, "before": row[f0], "after": new[f0]}
        if changed:
            write.execute()
        return {"changed": changed, "example": example}


class MissingFeatures(RowFault):
    fault_type = "missing-features"

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        keys = [k for k, s in record["keys"].items() if s["dump"] is not None]
        if not keys:
            return {"changed": 0}
        pipe = r.pipeline(transaction=True)
        for k in keys:
            if record["mode"] == "delete-row":
                pipe.delete(k)
            else:
                pipe.hdel(k, *record["features"])
        res = pipe.execute()
        return {"changed": sum(1 for n in res if n), "fields_removed": int(sum(res)) if record["mode"] == "drop-fields" else None}


def _refused(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a refused connection: nothing listens there any more."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or "connection refused" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _undo_rows(record: dict[str, Any]) -> str:
    import redis

    try:
        s = restore_keys(record["redis_url"], record["keys"])
    except (redis.exceptions.ConnectionError, OSError) as e:
        if record.get("owned_by_run") and _refused(e):
            return f"the run's Redis at {record['redis_url']} is gone (no persistence): no poisoned row is left"
        raise TargetError(
            f"could not restore {len(record['keys'])} rows at {record['redis_url']}: {e}; the ledger record holds "
            "their DUMP bytes (base64): RESTORE <key> 0 <bytes> REPLACE each"
        ) from e
    if s["mismatched"]:
        raise TargetError(f"restored rows differ from their saved bytes: {', '.join(s['mismatched'])}")
    return (
        f"{record['mode']}: {s['restored']} rows restored byte for byte"
        + (f", {s['deleted']} deleted" if s["deleted"] else "")
        + f" at {record['redis_url']}"
    )


@injector("corrupted-features")
def _make_corrupted(spec: FaultSpec, target: Any, context: FaultContext) -> CorruptedFeatures:
    return CorruptedFeatures(spec, target, context)


@injector("missing-features")
def _make_missing(spec: FaultSpec, target: Any, context: FaultContext) -> MissingFeatures:
    return MissingFeatures(spec, target, context)


@undoer("corrupted-features")
def _undo_corrupted(record: dict[str, Any]) -> str:
    return "corrupted-features " + _undo_rows(record)


@undoer("missing-features")
def _undo_missing(record: dict[str, Any]) -> str:
    return "missing-features " + _undo_rows(record)
