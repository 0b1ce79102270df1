"""``load.shape`` -> chaosml.model.loadshape.LoadShape, and ``load.locustfile``, with located errors; used by the loader's ``load`` section.

Two steps, because a shape's defaults and limits come from its siblings (``load.users``,
``load.spawn_rate``, ``load.duration``): :func:`decode_shape` reads the mapping by its ``type``,
:func:`compile_shape` writes it as stages and checks them against the load. Every shape becomes
stages (chaosml.model.loadshape): ramp, step and spike are shorthands whose stages ``plan`` prints.

- ``ramp``: ``{from: 0, to: load.users, over: load.duration}``; ``from`` users are started at
  ``load.spawn_rate`` first, then the count moves linearly to ``to`` over ``over``, then holds;
- ``step``: ``{from, to: load.users, steps, every}``: ``steps`` equal steps from ``from`` to ``to``,
  one every ``every`` (each started at ``load.spawn_rate``), the last held;
- ``spike``: ``{base, peak: load.users, at, for, spawn_rate: load.spawn_rate}``: ``base`` users until
  ``at``, ``peak`` for ``for``, then ``base`` again;
- ``stages``: ``[{duration, users, spawn_rate: load.spawn_rate}, ...]`` (locust's stage list): each
  stage lasts ``duration``; the last one is held until the load ends.

A stage must reach its user count before it ends (``|users - previous| / spawn_rate <= its
duration``): otherwise the next stage would start from a count the shape never asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from chaosml.decoding import BAD, Decoder, Node, describe
from chaosml.model.loadshape import SHAPE_TYPES, LoadShape, LoadStage

#: Most stages a shape may have (a step shape's ``steps`` too).
MAX_STAGES = 1000


def decode_shape(d: Decoder, max_users: int) -> Callable[[Node, str], Any]:
    """The converter of ``load.shape``: a dict of its keys (values may be BAD, already reported) with ``type``."""
    users = d.integer(0, max_users)
    peak = d.integer(1, max_users)
    length = d.duration(positive=True)
    common = {"type": ("type", d.string(SHAPE_TYPES, "shape type"))}
    schemas: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
        "ramp": ({"from": ("from", users), "to": ("to", peak), "over": ("over", length)}, ()),
        "step": ({"from": ("from", users), "to": ("to", peak), "steps": ("steps", d.integer(2, MAX_STAGES)),
                  "every": ("every", length)}, ("steps", "every")),
        "spike": ({"base": ("base", users), "peak": ("peak", peak), "at": ("at", length), "for": ("for", length),
                   "spawn_rate": ("spawn_rate", d.number(0, lo_open=True))}, ("base", "at", "for")),
        "stages": ({"stages": ("stages", d.list_of(_stage(d, users), non_empty=True))}, ("stages",)),
    }

    def conv(y: Node, path: str) -> Any:
        if y.kind != "map":
            d.issue(y, path, f"expected a mapping with a type ({', '.join(SHAPE_TYPES)}), got {describe(y)}")
            return BAD
        type_node = y.value.get("type")
        if type_node is None:
            d.issue(y, path, f"missing required key 'type' (one of {', '.join(SHAPE_TYPES)})")
            return BAD
        shape_type = common["type"][1](type_node[2], f"{path}.type")
        if shape_type is BAD:
            return BAD
        schema, required = schemas[shape_type]
        values = d.fields(y, path, {**common, **schema}, required=required)
        return BAD if values is None else values

    return conv


def _stage(d: Decoder, users: Callable[[Node, str], Any]) -> Callable[[Node, str], Any]:
    schema = {"duration": ("duration", d.duration(positive=True)), "users": ("users", users),
              "spawn_rate": ("spawn_rate", d.number(0, lo_open=True))}

    def conv(y: Node, path: str) -> Any:
        values = d.fields(y, path, schema, required=("duration", "users"))
        return BAD if values is None or any(v is BAD for v in values.values()) else values

    return conv


def compile_shape(d: Decoder, raw: Mapping[str, Any], load: Mapping[str, Any], given: frozenset[str], path: str) -> LoadShape | Any:
    """The shape's stages, checked against the load (``load``: the decoded siblings, defaults where absent;
    ``given``: the load keys the file gives); BAD if wrong."""
    if any(v is BAD for v in raw.values()) or any(load.get(k) is BAD for k in ("users", "spawn_rate", "duration")):
        return BAD
    spawn, duration = float(load["spawn_rate"]), float(load["duration"])
    users = int(load["users"])
    t = raw["type"]
    ok = True
    stages: list[tuple[float, int, float, str]] = []  # (duration, users, spawn_rate, path) before the checks
    params: dict[str, float] = {}
    if t == "ramp":
        a, b, over = int(raw.get("from", 0)), int(raw.get("to", users)), float(raw.get("over", duration))
        params = {"from": a, "to": b, "over": over}
        if a > 0:
            stages.append((max(1.0, -(-a // spawn)), a, spawn, f"{path}.from"))  # whole seconds to start `from` users
        if a == b:
            d.issue_at(f"{path}.to", f"a ramp must change the user count: from and to are both {a}")
            return BAD
        stages.append((over, b, abs(b - a) / over, f"{path}.over"))
    elif t == "step":
        b, k, every = int(raw.get("to", users)), int(raw["steps"]), float(raw["every"])
        a = int(raw.get("from", round(b / k)))
        params = {"from": a, "to": b, "steps": k, "every": every}
        stages += [(every, round(a + i * (b - a) / (k - 1)), spawn, f"{path}.every") for i in range(k)]
    elif t == "spike":
        base, top, at, span = int(raw["base"]), int(raw.get("peak", users)), float(raw["at"]), float(raw["for"])
        rate = float(raw.get("spawn_rate", spawn))
        params = {"base": base, "peak": top, "at": at, "for": span, "spawn_rate": rate}
        if top <= base:
            d.issue_at(f"{path}.peak", f"the peak ({top} users) must be above the base ({base} users)")
            ok = False
        stages += [(at, base, rate, f"{path}.at"), (span, top, rate, f"{path}.for"),
                   (max(0.0, duration - at - span), base, rate, f"{path}.for")]
    else:
        for i, st in enumerate(raw["stages"]):
            stages.append((float(st["duration"]), int(st["users"]), float(st.get("spawn_rate", spawn)), f"{path}.stages[{i}]"))
    shape = _checked(d, t, stages, params, users if "users" in given and ok else None, duration, path)
    return shape if ok else BAD


def _checked(d: Decoder, t: str, stages: list[tuple[float, int, float, str]], params: dict[str, float], users: int | None,
             duration: float, path: str) -> LoadShape | Any:
    ok = True
    peak = max(u for _, u, _, _ in stages)
    if peak < 1:
        d.issue_at(path, "every stage has 0 users: the shape sends no load")
        return BAD
    end, before = 0.0, 0
    out: list[LoadStage] = []
    for i, (length, n, rate, where) in enumerate(stages):
        last = i == len(stages) - 1
        ramp = abs(n - before) / rate
        if not last and ramp > length + 1e-9:
            d.issue_at(where, f"moving from {before} to {n} users at {rate:g}/s takes {ramp:g} s, longer than the stage's "
                              f"{length:g} s: raise spawn_rate or lengthen the stage")
            ok = False
        end += length
        out.append(LoadStage(round(end, 6), n, rate))
        before = n
    if end > duration + 1e-9:
        d.issue_at(path, f"the shape lasts {end:g} s, longer than load.duration ({duration:g} s)")
        ok = False
    if users is not None and users != peak:
        d.issue_at(f"{path[: -len('.shape')]}.users", f"with load.shape the peak user count comes from the shape ({peak}); "
                                                       f"drop load.users or make it {peak}")
        ok = False
    if not ok:
        return BAD
    return LoadShape(t, tuple(out), MappingProxyType({k: float(v) for k, v in params.items()}))


def check_locustfile(d: Decoder, values: dict[str, Any], path: str) -> None:
    """``load.locustfile``: a .py file whose User classes send the load; what it decides is not also set.

    The file says what is sent (so ``mix``, ``dataset`` and ``data`` are errors beside it) and how
    often (its ``wait_time``, unless ``rate_per_user`` is given: then each user sends that many
    requests a second and the delivered rate is judged). It is read when the run starts.
    """
    f = values["locustfile"]
    if not f.endswith(".py"):
        d.issue_at(f"{path}.locustfile", f"must be a .py file (a locustfile), got {f!r}")
        values["locustfile"] = BAD
    for key in ("mix", "dataset", "data"):
        if key in values:
            d.issue_at(f"{path}.{key}", f"the locustfile decides what is sent: drop load.{key} (or load.locustfile)")
            values[key] = BAD
    values.setdefault("rate_per_user", None)  # the file's own wait_time, unless rate_per_user is given


__all__ = ["MAX_STAGES", "check_locustfile", "compile_shape", "decode_shape"]
