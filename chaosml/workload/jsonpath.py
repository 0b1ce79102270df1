"""JSON paths of the response mapping: parse, resolve and show them as users write them; used by mapping and answers.

A path is keys, list indexes and list selections by a field's value::

    predictions[0]                      key, then index
    outputs[0].data[0]                  index into a list of named tensors
    outputs[name=predict_proba].data    the first item of ``outputs`` whose ``name`` is predict_proba

A selection compares the item's field as text (``[index=1]`` matches 1 and "1"). Paths in messages
are shown with :func:`format_path`, in the syntax they were written in (``outputs[1].data``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Select:
    """``[field=value]``: the first list item (an object) whose ``field`` equals ``value`` as text."""

    field: str
    value: str


Step = str | int | Select

_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d+)\]|\[\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*=\s*([^\]]*?)\s*\]")
_QUOTED = re.compile(r"""^(['"])(.*)\1$""")

#: What resolve returns for a path absent from the data (None is a JSON null that is there).
MISSING: Any = object()


def parse_path(path: str) -> tuple[Step, ...]:
    """``outputs[name=probs].data[0]`` -> ("outputs", Select("name", "probs"), "data", 0); ValueError otherwise."""
    text = path.strip()
    if not text:
        raise ValueError("empty JSON path")
    out: list[Step] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or (pos == 0 and m.group(0).startswith(".")):
            raise ValueError(
                f"invalid JSON path {path!r} at character {pos + 1}: use keys, [index] and [field=value], "
                "e.g. outputs[0].data[0] or outputs[name=predict_proba].data"
            )
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            value = m.group(4)
            q = _QUOTED.match(value)
            value = q.group(2) if q else value
            if not value:
                raise ValueError(f"invalid JSON path {path!r} at character {pos + 1}: [{m.group(3)}=] needs a value")
            out.append(Select(m.group(3), value))
        pos = m.end()
    return tuple(out)


def format_path(path: tuple[Step, ...]) -> str:
    """The path as users write it: ("outputs", 1, "data") -> ``outputs[1].data``."""
    text = ""
    for step in path:
        if isinstance(step, Select):
            text += f"[{step.field}={step.value}]"
        elif isinstance(step, int):
            text += f"[{step}]"
        else:
            text += f".{step}" if text else step
    return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(data: Any, path: tuple[Step, ...]) -> Any:
    """The value at ``path`` in ``data``, or :data:`MISSING`."""
    cur = data
    for step in path:
        if isinstance(step, Select):
            if not isinstance(cur, list):
                return MISSING
            cur = next((x for x in cur if isinstance(x, dict) and step.field in x and _text(x[step.field]) == step.value), MISSING)
            if cur is MISSING:
                return MISSING
        elif isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return MISSING
            cur = cur[step]
    return cur
