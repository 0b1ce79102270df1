"""Payload-file loading and checking for the load process (the runner may call it too); no locust.

Payload file format (JSON)::

    {"cohort": [{"body": <any JSON value>, "label": 1, "entity_id": 42, "features": {...}}, ...], ...}

``features`` (optional: clean rows of a run with a ``drift`` fault) are the row's request features
by name, in the dataset's order; the load process rebuilds the body from them while drift is active.

A body of exactly ``{"raw": "<string>"}`` is sent verbatim as the request body (still with
``Content-Type: application/json``), for malformed or garbage inputs. The string is encoded
as UTF-8 with ``surrogateescape``, so arbitrary bytes survive a JSON round trip: write them
with ``data.decode("utf-8", "surrogateescape")``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaosml.errors import LoadConfigError


@dataclass(frozen=True, slots=True)
class Payload:
    """One ready-to-send request body with its ground truth."""

    body: bytes  # exact request body
    label: int | None  # ground-truth class, None when unknown
    entity_id: int | None  # entity whose features are requested, None when not applicable
    features: dict[str, float] | None = None  # request features by name (drift rebuilds the body from them), else None


def encode_body(body: Any) -> bytes:
    """Request bytes for a payload ``body`` (``{"raw": s}`` is sent verbatim)."""
    if isinstance(body, dict) and body.keys() == {"raw"} and isinstance(body["raw"], str):
        try:
            return body["raw"].encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return body["raw"].encode("utf-8", "surrogatepass")
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _opt_int(value: Any) -> int | None | str:
    """The value as int/None, or an error message string."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be an integer or null, got {value!r}"
    return value


def parse_payloads(raw: Any, mix: Mapping[str, float], *, source: str = "payloads") -> dict[str, list[Payload]]:
    """Check a decoded payload file against ``mix``; raise LoadConfigError listing every problem.

    Every cohort with a positive weight in ``mix`` must have at least one payload. Other cohorts
    in the file with a non-empty list are returned too (the load-control file may switch to them
    during a run); their payloads are checked the same way.
    """
    if not isinstance(raw, dict):
        raise LoadConfigError([f"{source}: must be a JSON object of cohort -> list, got {type(raw).__name__}"])
    issues: list[str] = []
    out: dict[str, list[Payload]] = {}
    wanted = [c for c, w in mix.items() if w and w > 0]
    extra = [c for c, items in raw.items() if c not in wanted and isinstance(items, list) and items]
    for cohort in (*wanted, *extra):
        items = raw.get(cohort)
        if items is None:
            issues.append(f"{source}: cohort {cohort!r} from the mix has no payloads")
            continue
        if not isinstance(items, list) or not items:
            issues.append(f"{source}: {cohort}: must be a non-empty list of payloads")
            continue
        payloads: list[Payload] = []
        for i, item in enumerate(items):
            where = f"{source}: {cohort}[{i}]"
            if not isinstance(item, dict) or "body" not in item:
                issues.append(f"{where}: must be an object with a 'body'")
                continue
            unknown = item.keys() - {"body", "label", "entity_id", "features"}
            if unknown:
                issues.append(f"{where}: unknown keys {sorted(unknown)}")
            label = _opt_int(item.get("label"))
            entity = _opt_int(item.get("entity_id"))
            if isinstance(label, str):
                issues.append(f"{where}.label: {label}")
            if isinstance(entity, str):
                issues.append(f"{where}.entity_id: {entity}")
            try:
                body = encode_body(item["body"])
            except (TypeError, ValueError) as e:
                issues.append(f"{where}.body: cannot encode: {e}")
                continue
            features = item.get("features")
            if features is not None and not (isinstance(features, dict) and all(
                    isinstance(v, int | float) and not isinstance(v, bool) for v in features.values())):
                issues.append(f"{where}.features: must be an object of feature -> number")
                continue
            if not isinstance(label, str) and not isinstance(entity, str):
                payloads.append(Payload(body=body, label=label, entity_id=entity, features=features))
        out[cohort] = payloads
    if issues:
        raise LoadConfigError(issues)
    return out


def load_payloads(path: str | os.PathLike[str], mix: Mapping[str, float]) -> dict[str, list[Payload]]:
    """Read and check a payload file; LoadConfigError if missing, unreadable or incomplete."""
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise LoadConfigError([f"{source}: payload file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise LoadConfigError([f"{source}: cannot read payload file: {e}"]) from None
    except json.JSONDecodeError as e:
        raise LoadConfigError([f"{source}: not valid JSON: {e}"]) from None
    return parse_payloads(raw, mix, source=source)
