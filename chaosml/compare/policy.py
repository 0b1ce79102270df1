"""When `chaosml compare` exits 1 (--fail-on) and what counts as a practical change (--min-change); used by the CLI."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chaosml.compare.core import Comparison, Row, default_min_change
from chaosml.errors import InvalidInputError
from chaosml.model.catalog import INJECTION_SLIS, SAMPLE_SLIS


@dataclass(frozen=True)
class FailPolicy:
    """When compare exits 1: ``any`` regression (default), ``flip`` (pass -> fail verdict flips only),
    ``delta:METRIC=THRESHOLD`` (a regression of METRIC whose |delta| is at least THRESHOLD; ``%`` =
    relative to the baseline), or ``none`` (report only)."""

    kind: str  # any | flip | delta | none
    metric: str | None = None
    value: float = 0.0
    relative: bool = False

    @classmethod
    def parse(cls, text: str) -> FailPolicy:
        t = text.strip()
        if t in ("any", "flip", "none"):
            return cls(t)
        if t.startswith("delta:") and "=" in t:
            metric, _, value = t[len("delta:") :].partition("=")
            metric = metric.strip()
            known = (*SAMPLE_SLIS, *INJECTION_SLIS)
            if metric not in known:
                raise InvalidInputError(f"--fail-on {text!r}: unknown metric {metric!r}; choose from: {', '.join(known)}")
            rel = value.strip().endswith("%")
            try:
                v = float(value.strip().rstrip("%"))
            except ValueError:
                raise InvalidInputError(f"--fail-on {text!r}: {value!r} is not a number (e.g. 0.02 or 10%)") from None
            if not math.isfinite(v) or v < 0:
                raise InvalidInputError(f"--fail-on {text!r}: the threshold must be a number >= 0")
            return cls("delta", metric, v / 100 if rel else v, rel)
        raise InvalidInputError(f"--fail-on {text!r}: use any, flip, none or delta:METRIC=THRESHOLD (e.g. delta:mttr_s=2)")

    def triggered_by(self, row: Row) -> bool:
        if row.verdict != "regressed" or self.kind == "none":
            return False
        if self.kind == "any":
            return True
        if self.kind == "flip":
            return row.flip
        if row.metric != self.metric:
            return False
        if row.delta is None:  # e.g. not recovered any more: no number, worse than any threshold
            return True
        limit = self.value * abs(row.baseline or 0.0) if self.relative else self.value
        return abs(row.delta) >= limit


def failing_rows(comparison: Comparison, policies: Sequence[FailPolicy], *, count_unreliable: bool = False) -> list[Row]:
    """Rows that make compare exit 1 under any of the policies.

    A row marked ``unreliable`` (a latency delta under very different host load) never fails by
    default; with ``count_unreliable`` (``--count-unreliable``) it is judged as what it was judged.
    """
    out = []
    for r in comparison.rows:
        judged = dataclasses.replace(r, verdict=r.judged) if count_unreliable and r.verdict == "unreliable" and r.judged else r
        if any(p.triggered_by(judged) for p in policies):
            out.append(r)
    return out


def parse_min_change(items: Sequence[str], base: Mapping[str, tuple[float, float]] | None = None) -> dict[str, tuple[float, float]]:
    """``METRIC=VALUE`` (absolute) or ``METRIC=VALUE%`` (relative to the baseline) over the defaults."""
    out = dict(base or default_min_change())
    for item in items:
        metric, sep, value = item.partition("=")
        metric = metric.strip()
        if not sep or metric not in out:
            raise InvalidInputError(f"--min-change {item!r}: use METRIC=VALUE or METRIC=VALUE% with a metric from: {', '.join(out)}")
        rel = value.strip().endswith("%")
        try:
            v = float(value.strip().rstrip("%"))
        except ValueError:
            raise InvalidInputError(f"--min-change {item!r}: {value!r} is not a number") from None
        if not math.isfinite(v) or v < 0:
            raise InvalidInputError(f"--min-change {item!r}: must be a number >= 0")
        a, r = out[metric]
        out[metric] = (a, v / 100) if rel else (v, r)
    return out
