"""Shared by corrupted-features and missing-features: choose, save, rewrite and restore feature-store rows byte for byte.

The rows are Redis hashes ``chaosml:features:<entity id>``. ``undo_record`` decides everything before
apply: which keys (seeded choice of ``fraction`` of the rows, or the listed ``entities``), which
fields, and the type's own seeded choices (:meth:`RowFault._choices`); and it saves every touched
key's exact bytes with ``DUMP`` (base64) and its TTL. ``apply`` rewrites the rows in one MULTI/EXEC.
``recover`` and the offline undoer run ``RESTORE key <ttl> <dump> REPLACE`` (``DEL`` for a key that did
not exist) in one MULTI/EXEC and then check that ``DUMP`` of every key equals the saved bytes.
"""

from __future__ import annotations

import base64
import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from chaosml.errors import TargetError
from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    StackFacts,
    plan_number,
    plural,
    quote,
    suggest,
)
from chaosml.records import FaultEvent
from chaosml.stack.featurestore import KEY_PREFIX, entity_key
from chaosml.targets.capabilities import FeatureRows

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


def decode_row(raw: Mapping[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}


class RowFault:
    """Shared by both row faults: choose and save rows before apply, restore them on recover."""

    def __init__(self, spec: FaultSpec, target: FeatureRows, context: FaultContext) -> None:
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
            known = set(decode_row(r.hgetall(keys[0] if r.exists(keys[0]) else all_keys[0])))
            if p.features is not None:
                unknown = [f for f in p.features if f not in known]
                if unknown:
                    raise TargetError(
                        f"{self.spec.name}: no feature(s) {', '.join(unknown)} in the feature store; "
                        f"entity features: {', '.join(sorted(known))}"
                    )
            extra = self._choices(rng, all_keys, keys)
            saved = dump_keys(r, keys)
        finally:
            r.close()
        record = {
            "redis_url": redis_url,
            "mode": p.mode,
            "features": list(p.features) if p.features is not None else None,
            "rows_total": len(all_keys),
            "keys": saved,
            "owned_by_run": self.target.owns_redis,
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
        changed = int(detail.get("changed", 0))
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=changed > 0,
            targets=(f"{len(keys)} of {record['rows_total']} entity rows",), detail=detail,
            no_effect=None if changed else f"changed nothing in the {plural(len(keys), 'selected entity row')}: no such entity, or no such feature",
        )

    def _choices(self, rng: random.Random, all_keys: list[str], keys: list[str]) -> dict[str, Any]:
        """Seeded choices of the fault type beyond the rows, decided before apply (kept in the record)."""
        return {}

    def _apply(self, r: Any, record: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the record's rows; a summary with ``changed`` (rows touched) for the event."""
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


def undo_rows(record: dict[str, Any]) -> str:
    """Offline undo of a row fault: RESTORE every saved key from the record, then check the bytes."""
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


#: entity rows in the feature store per bundled dataset (one row per dataset row)
DATASET_ROWS = {"breast_cancer": 569}
_BREAST_CANCER_MEASURES = ("radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave_points",
                           "symmetry", "fractal_dimension")
#: the fields of each entity row in the feature store per bundled dataset: its entity features (the
#: ``mean_*`` ones are sent in the request instead); tests check them against the dataset itself
DATASET_ENTITY_FEATURES: dict[str, tuple[str, ...]] = {
    "breast_cancer": (
        *(f"{name}_error" for name in _BREAST_CANCER_MEASURES),
        *(f"worst_{name}" for name in _BREAST_CANCER_MEASURES),
    ),
}
#: features of each bundled dataset sent in the request payload, not stored per entity
DATASET_REQUEST_FEATURES: dict[str, tuple[str, ...]] = {"breast_cancer": tuple(f"mean_{name}" for name in _BREAST_CANCER_MEASURES)}


def check_features_on_data(features: tuple[str, ...] | None, facts: StackFacts) -> list[tuple[str, str]]:
    """(path, message) for each listed feature the experiment's data lacks: the built-in dataset's
    feature-store fields, or a data file's feature columns (when the file was readable at validate time)."""
    if features is None:
        return []
    sent: tuple[str, ...] = ()
    if facts.data_file is not None:
        known, where = facts.data_features, f"data file {facts.data_file!r}"
    else:
        known, where = DATASET_ENTITY_FEATURES.get(facts.dataset or ""), f"the feature store (dataset {facts.dataset})"
        sent = DATASET_REQUEST_FEATURES.get(facts.dataset or "", ())
    if known is None:
        return []
    return [
        (f"params.features[{i}]", f"no feature {quote(f)} in {where}"
         + (" (it is sent in each request, not stored per entity)" if f in sent else suggest(f, known))
         + f"; features: {', '.join(known)}")
        for i, f in enumerate(features)
        if f not in known
    ]


def check_rows(fraction: float | None, entities: tuple[int, ...] | None) -> list[tuple[str, str]]:
    """(field, message) unless exactly one of fraction (in (0, 1]) and entities (distinct ids >= 0) is set."""
    errors: list[tuple[str, str]] = []
    if fraction is None and entities is None:
        errors.append(("fraction", "set fraction (of entity rows) or entities (a list of entity ids)"))
    elif fraction is not None and entities is not None:
        errors.append(("entities", "set fraction or entities, not both"))
    if fraction is not None and not 0 < fraction <= 1:
        errors.append(("fraction", "must be in (0, 1]"))
    if entities is not None:
        if not entities:
            errors.append(("entities", "must list at least one entity id"))
        elif any(e < 0 for e in entities):
            errors.append(("entities", "entity ids are >= 0"))
        elif len(set(entities)) != len(entities):
            errors.append(("entities", "must not repeat an entity id"))
    return errors


def check_features(features: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """(field, message) for an empty, repeating or blank feature list (None: every feature)."""
    if features is None:
        return []
    if not features:
        return [("features", "must list at least one feature (or be left out: every entity feature)")]
    if len(set(features)) != len(features):
        return [("features", "must not repeat a feature")]
    if any(not f for f in features):
        return [("features", "feature names are non-empty")]
    return []


def rows_blast_radius(fault: FaultSpec, dataset: str | None, effect: str) -> BlastRadius:
    """Which rows one injection touches; ``effect`` says what happens to them ({which} and {fields} filled in)."""
    p = fault.params
    rows = DATASET_ROWS.get(dataset or "")
    if p.entities is not None:
        victims: int | None = len(p.entities)
        which = f"{victims} listed entity rows"
    else:
        victims = max(1, math.ceil(p.fraction * rows)) if rows else None
        which = f"{plan_number(round(100 * p.fraction, 2))}% of entity rows (seeded choice)"
        if rows:
            which += f" = {victims} of {rows}"
    fields = "every entity feature" if p.features is None else f"features {', '.join(p.features)}"
    what = effect.format(which=which, fields=fields)
    return BlastRadius(
        fault.name, fault.type, victims, rows,
        f"{what}, {plural(fault.repeat.count, 'injection')}; every touched key is saved with DUMP first and restored byte for byte",
    )
