"""The load-control file: cohort-mix overrides the load process polls during a run; no locust.

An ``adversarial-payload`` or ``drift`` fault writes its entry on apply and removes it on recover
(``chaosml/faults/_control.py``); the load process
(``driver.py``) polls it every ``POLL_INTERVAL_S`` and, while it exists, draws cohorts from the
effective mix computed here. Format (JSON object, at most ``MAX_BYTES``)::

    {"mix":   {"cohort": weight, ...},      # merged over the base mix (replaces those weights)
     "share": {"cohort": fraction, ...},    # this fraction of ALL requests goes to the cohort
     "faults": {...}}                       # one entry per injection; drift's are read by drift.active_schedule

Shares are applied after the merge: cohorts with a share get exactly that fraction (shares summing
over 1 are scaled down to 1), every other cohort keeps its relative weight within the rest.
Cohorts without payloads in the payload file are dropped (and reported).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

POLL_INTERVAL_S = 0.25
MAX_BYTES = 64 * 1024


class ControlError(ValueError):
    """The control file is unreadable or malformed."""


def read_control(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The decoded control file, None when it does not exist; ControlError when it is bad."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ControlError(f"cannot read: {e}") from None
    if len(data) > MAX_BYTES:
        raise ControlError(f"larger than {MAX_BYTES} bytes")
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ControlError(f"not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ControlError("must be a JSON object")
    return raw


def _weights(raw: Any, what: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ControlError(f"{what}: must be an object of cohort -> number")
    out: dict[str, float] = {}
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ControlError(f"{what}.{k}: must be a finite number >= 0, got {v!r}")
        out[str(k)] = float(v)
    return out


def effective_mix(
    base: Mapping[str, float], control: Mapping[str, Any] | None, available: set[str] | frozenset[str] | None = None
) -> tuple[dict[str, float], list[str]]:
    """(cohort -> weight, problems) for the base mix with ``control`` applied.

    ``available`` names the cohorts that have payloads; others are dropped with a problem line.
    An override that leaves no positive weight falls back to the base mix.
    """
    problems: list[str] = []
    if not control:
        return {c: float(w) for c, w in base.items() if w > 0}, problems
    merged = {c: float(w) for c, w in base.items()}
    merged.update(_weights(control.get("mix"), "mix"))
    shares = _weights(control.get("share"), "share")
    if available is not None:
        for c in [c for c in (*merged, *shares) if c not in available]:
            if merged.pop(c, 0.0) > 0 or shares.pop(c, 0.0) > 0:
                problems.append(f"cohort {c!r} has no payloads in the payload file; ignored")
    total_share = sum(shares.values())
    if total_share > 1.0:
        shares = {c: s / total_share for c, s in shares.items()}
        total_share = 1.0
    rest = {c: w for c, w in merged.items() if c not in shares and w > 0}
    rest_sum = sum(rest.values())
    out: dict[str, float] = {c: s for c, s in shares.items() if s > 0}
    if rest_sum > 0 and total_share < 1.0:
        for c, w in rest.items():
            out[c] = (1.0 - total_share) * w / rest_sum
    if not out or sum(out.values()) <= 0:
        problems.append("the override leaves no cohort with a positive weight; using the base mix")
        return {c: float(w) for c, w in base.items() if w > 0}, problems
    return out, problems
