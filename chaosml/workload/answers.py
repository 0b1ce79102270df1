"""The mapping probe's sanity check of a model's answer before the load starts; called by chaosml.workload.mapping.probe.

A confidence outside [0, 1], a probability row that does not sum to ~1, or a prediction whose
type does not match the labels' stops the run (exit 4, the offending response shown): the
quality SLIs would otherwise be computed from numbers that are not probabilities.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from chaosml.errors import InvalidInputError
from chaosml.workload.jsonpath import MISSING, resolve

#: A probability row sums to 1 within this tolerance.
ROW_SUM_TOLERANCE = 0.01


class ProbeAnswerError(InvalidInputError):
    """The probe's answer is not a sane model output; ``str()`` says what and shows the response."""


def check_answer(
    content: bytes | None,
    plan: Mapping[str, tuple[str, object]],
    shown: str,
    labels: Sequence[object] = (),
) -> None:
    """Raise ProbeAnswerError when a probe answer is not a sane model output.

    ``content`` is the response body, ``plan`` the response mapping compiled to field ->
    ("json", path tuple) | ("header", name) | ("none", None) (``Extractor.plan``), ``shown`` the
    start of the body for the message, ``labels`` the probe rows' labels (empty: not checked).
    JSON-mapped confidence and prediction are checked as the server sent them, before a
    probability row is reduced to its max: values outside [0, 1], a row not summing to ~1, a
    prediction that is not a class when the labels are classes.
    """
    try:
        data = json.loads(content) if content else None
    except (ValueError, UnicodeDecodeError):
        return  # not JSON: the mapping probe reports the missing fields
    found = {name: resolve(data, where) for name, (kind, where) in plan.items() if kind == "json" and isinstance(where, tuple)}
    raw = {name: None if v is MISSING else v for name, v in found.items()}
    problems: list[str] = []
    for name in ("confidence", "prediction"):
        values = _floats(raw.get(name))
        if name == "prediction" and (values is None or len(values) < 2):
            continue  # a class, not a probability row
        if values is None:
            if raw.get(name) is not None:
                problems.append(f"{name} {raw[name]!r} is not a number or a row of probabilities")
            continue
        bad = [v for v in values if not 0.0 <= v <= 1.0]
        if bad:
            problems.append(f"{name} {raw[name]!r} has values outside [0, 1]: {bad[:5]}")
        elif len(values) > 1 and abs(sum(values) - 1.0) > ROW_SUM_TOLERANCE:
            problems.append(f"{name} row {raw[name]!r} sums to {sum(values):.4g}, not ~1")
    pred = raw.get("prediction")
    known = [x for x in labels if x is not None and not (isinstance(x, float) and math.isnan(x))]
    scalar = pred is not None and not isinstance(pred, list | dict)
    if known and scalar and all(_is_class(x) for x in known) and not _is_class(pred):
        problems.append(f"prediction {pred!r} is not a class like the labels (e.g. {known[0]!r})")
    if problems:
        raise ProbeAnswerError("the probe answer is not a sane model output: " + "; ".join(problems) + f"; the server sent: {shown!r}")


def _is_class(x: object) -> bool:
    """An integer class id (an int, an integral float, or a string of digits)."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int | np.integer):
        return True
    if isinstance(x, float | np.floating):
        return float(x).is_integer()
    return isinstance(x, str) and x.strip().lstrip("-").isdigit()


def _is_number(x: object) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int | float | np.integer | np.floating):
        return True
    if isinstance(x, str):
        try:
            float(x)
        except ValueError:
            return False
        return True
    return False


def _floats(x: object) -> list[float] | None:
    """A number or a flat/nested list of numbers as floats; None if anything else is in it."""
    if _is_number(x):
        return [float(x)]  # type: ignore[arg-type]
    if isinstance(x, list | tuple):
        out: list[float] = []
        for item in x:
            inner = _floats(item)
            if inner is None:
                return None
            out.extend(inner)
        return out or None
    return None
