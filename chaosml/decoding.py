"""Located YAML decoding: converters that turn a located tree into typed values and collect every issue.

Generic: knows nothing about experiments. Used by chaosml.loader (experiment files) and
chaosml.gameday.loader (game-day files). The tree comes from chaosml.yamltree (bounded safe
composer, :class:`Node` with line, column and path), re-exported here.

A :class:`Decoder` hands out converters (``Conv``: node, path -> value or :data:`BAD`). A
converter that finds a problem records one :class:`~chaosml.errors.Issue`
(``file:line:col: field.path: message [hint]``) and returns :data:`BAD`, so decoding carries on
and every problem in the file is reported at once. :meth:`Decoder.dataclass_of` derives the
converters of a frozen dataclass from its type hints (``Literal[...]`` choices, ``X | None``,
nested dataclasses, tuples, mappings; durations by field metadata).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from chaosml.errors import Issue
from chaosml.yamltree import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    BoundedLoader,
    Node,
    compose_tree,
    describe,
    join_path,
    quote,
    short,
)

__all__ = [
    "BAD",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "BoundedLoader",
    "Conv",
    "Decoder",
    "Node",
    "describe",
    "join_path",
    "parse_duration",
    "quote",
    "short",
    "suggest",
]

#: A value already reported as an issue: converters return it, and a build with it fails quietly.
BAD: Any = object()

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_DURATION_TEXT = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|s|m|h))+")
_DURATION_HINT = "use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds"


def parse_duration(value: Any) -> float:
    """Seconds from a duration: a number of seconds or a string like "250ms", "20s", "1.5m", "1h", "1m30s".

    Raises ValueError with a user-facing message for anything else (negative, nan, bool, ...).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")  # noqa: TRY004 - a user-facing message
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-") and _is_duration_text(text[1:].strip()):
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        if not _is_duration_text(text):
            raise ValueError(f"invalid duration {value!r}: {_DURATION_HINT}")
        if _DURATION_TEXT.fullmatch(text):
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
        else:
            seconds = float(text)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            raise ValueError(f"invalid duration {short(str(value))}: too large") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {short(str(value))}: must be a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"invalid duration {short(str(value))}: must not be negative")
    return seconds


def _is_duration_text(text: str) -> bool:
    return bool(_DURATION_TEXT.fullmatch(text) or re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", text))


def suggest(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of ``choices``, or "" when none is close."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


#: A converter: (node, field path) -> the decoded value, or BAD after recording an issue.
Conv = Callable[[Node, str], Any]


class Decoder:
    """Turns a located tree into values, collecting every issue (``issues``) for one file.

    ``where`` maps each field path decoded so far to its value's (line, col), so that checks
    across fields can place an issue (:meth:`issue_at`) after the converters have run.
    """

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[Issue] = []
        self.where: dict[str, tuple[int, int]] = {}

    # -- issues -------------------------------------------------------------------------

    def issue(self, at: Node | tuple[int, int], path: str, message: str) -> None:
        line, col = (at.line, at.col) if isinstance(at, Node) else at
        self.issues.append(Issue(self.filename, line, col, path, message))

    def issue_at(self, path: str, message: str) -> None:
        """An issue at the value of ``path``, or of its nearest ancestor present in the file."""
        p = path
        while p not in self.where and p:
            p = re.sub(r"(\.[^.\[\]]*|\[\d+\])$", "", p)
            if p == path:  # defensive: no progress
                p = ""
        line, col = self.where.get(p, (1, 1))
        self.issues.append(Issue(self.filename, line, col, path, message))

    # -- compose ------------------------------------------------------------------------

    def compose(self, text: str, empty: str = "the file is empty") -> Node | None:
        """The document's top-level mapping as a located tree, or None after recording why not.

        ``empty`` is the message for a document with no content.
        """
        root, issues = compose_tree(text, self.filename, empty)
        self.issues.extend(issues)
        return root

    # -- converters (each returns a value or BAD after reporting) -----------------------

    def expect_scalar(self, y: Node, path: str, what: str) -> bool:
        if y.kind == "bad":
            return False
        if y.kind != "scalar":
            self.issue(y, path, f"expected {what}, got {describe(y)}")
            return False
        return True

    def string(self, choices: Iterable[str] | None = None, what: str = "value", allow_empty: bool = False) -> Conv:
        known = tuple(choices) if choices is not None else None

        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, "a string"):
                return BAD
            v = y.value
            if not isinstance(v, str):
                hint = f"; quote it if you mean the text {y.text!r}" if y.value is not None else ""
                self.issue(y, path, f"expected a string, got {describe(y)}{hint}")
                return BAD
            if not v.strip() and not allow_empty:
                self.issue(y, path, "must not be empty")
                return BAD
            if known is not None and v not in known:
                self.issue(y, path, f"unknown {what} {quote(v)}{suggest(v, known)}; choose from: {', '.join(known)}")
                return BAD
            return v

        return conv

    def integer(self, lo: int | None = None, hi: int | None = None) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, "a whole number"):
                return BAD
            v = y.value
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                self.issue(y, path, f"expected a whole number, got {describe(y)}")
                return BAD
            if lo is not None and v < lo:
                self.issue(y, path, f"must be >= {lo}, got {short(y.text)}")
                return BAD
            if hi is not None and v > hi:
                self.issue(y, path, f"must be <= {hi}, got {short(y.text)}")
                return BAD
            return v

        return conv

    def number(self, lo: float | None = None, lo_open: bool = False, hi: float | None = None) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, "a number"):
                return BAD
            v = y.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.issue(y, path, f"expected a number, got {describe(y)}")
                return BAD
            try:
                f = float(v)
            except OverflowError:
                self.issue(y, path, f"number too large: {short(y.text)}")
                return BAD
            if not math.isfinite(f):
                self.issue(y, path, f"expected a finite number, got {y.text}")
                return BAD
            if lo is not None and (f <= lo if lo_open else f < lo):
                self.issue(y, path, f"must be {'>' if lo_open else '>='} {lo:g}, got {short(y.text)}")
                return BAD
            if hi is not None and f > hi:
                self.issue(y, path, f"must be <= {hi:g}, got {short(y.text)}")
                return BAD
            return f

        return conv

    def duration(self, positive: bool = False) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, "a duration"):
                return BAD
            v = y.value
            if v is None or isinstance(v, bool):
                self.issue(y, path, f"expected a duration, got {describe(y)}: {_DURATION_HINT}")
                return BAD
            try:
                seconds = parse_duration(v)
            except ValueError as exc:
                if isinstance(v, (int, float)):  # show the source text, not Python's rendering
                    self.issue(y, path, str(exc).replace(short(str(v)), short(y.text), 1))
                else:
                    self.issue(y, path, str(exc))
                return BAD
            if positive and seconds <= 0:
                self.issue(y, path, f"must be longer than 0s, got {short(y.text)}")
                return BAD
            return seconds

        return conv

    def boolean(self) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, "true or false"):
                return BAD
            if not isinstance(y.value, bool):
                self.issue(y, path, f"expected true or false, got {describe(y)}")
                return BAD
            return y.value

        return conv

    def optional(self, inner: Conv) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if y.kind == "scalar" and y.value is None:
                return None
            return inner(y, path)

        return conv

    def list_of(self, item: Conv, non_empty: bool = False, unique: bool = False) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if y.kind == "bad":
                return BAD
            if y.kind != "seq":
                self.issue(y, path, f"expected a list, got {describe(y)}")
                return BAD
            if non_empty and not y.value:
                self.issue(y, path, "must not be empty")
                return BAD
            out = []
            seen: dict[Any, int] = {}
            for i, iy in enumerate(y.value):
                ipath = f"{path}[{i}]"
                self.where[ipath] = (iy.line, iy.col)
                v = item(iy, ipath)
                if unique and v is not BAD:
                    try:
                        if v in seen:
                            self.issue(iy, ipath, f"{quote(str(v))} is listed twice")
                            v = BAD
                        else:
                            seen[v] = i
                    except TypeError:
                        pass
                out.append(v)
            return BAD if any(v is BAD for v in out) else tuple(out)

        return conv

    def mapping_of(self, value: Conv, keys: Iterable[str] | None = None, what: str = "key") -> Conv:
        known = tuple(keys) if keys is not None else None

        def conv(y: Node, path: str) -> Any:
            if y.kind == "bad":
                return BAD
            if y.kind != "map":
                self.issue(y, path, f"expected a mapping, got {describe(y)}")
                return BAD
            out: dict[str, Any] = {}
            ok = True
            for key, (kl, kc, vy) in y.value.items():
                cpath = join_path(path, key)
                self.where[cpath] = (vy.line, vy.col)
                if known is not None and key not in known:
                    self.issue((kl, kc), cpath, f"unknown {what} {quote(key)}{suggest(key, known)}; choose from: {', '.join(known)}")
                    ok = False
                    continue
                v = value(vy, cpath)
                ok = ok and v is not BAD
                out[key] = v
            return MappingProxyType(out) if ok else BAD

        return conv

    def plain(self) -> Conv:
        """Any plain YAML value, made immutable (tuples and read-only mappings)."""

        def conv(y: Node, path: str) -> Any:
            if y.kind == "bad":
                return BAD
            if y.kind == "seq":
                items = [conv(iy, f"{path}[{i}]") for i, iy in enumerate(y.value)]
                return BAD if any(v is BAD for v in items) else tuple(items)
            if y.kind == "map":
                d = {k: conv(vy, join_path(path, k)) for k, (_, _, vy) in y.value.items()}
                return BAD if any(v is BAD for v in d.values()) else MappingProxyType(d)
            return y.value

        return conv

    def fields(
        self,
        y: Node,
        path: str,
        schema: Mapping[str, tuple[str, Conv]],
        required: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Decode a mapping by schema (yaml key -> (attribute, converter)).

        Returns attribute -> value for every key present (``BAD`` for values already reported,
        and for missing required keys), or None when ``y`` is not a mapping.
        """
        if y.kind == "bad":
            return None
        if y.kind != "map":
            self.issue(y, path, f"expected a mapping, got {describe(y)}")
            return None
        out: dict[str, Any] = {}
        for key, (kl, kc, vy) in y.value.items():
            cpath = join_path(path, key)
            if key not in schema:
                known = ", ".join(schema)
                hint = suggest(key, schema) or f"; known keys: {known}"
                self.issue((kl, kc), cpath, f"unknown key {quote(key)}{hint}")
                continue
            self.where[cpath] = (vy.line, vy.col)
            attr, conv = schema[key]
            out[attr] = conv(vy, cpath)
        for key in required:
            if key not in y.value:
                self.issue(y, path, f"missing required key {key!r}")
                out[schema[key][0]] = BAD
        return out

    def build(self, cls: type, values: dict[str, Any] | None) -> Any:
        """``cls(**values)``, or BAD when ``values`` is None or holds a BAD (already reported)."""
        if values is None or any(v is BAD for v in values.values()):
            return BAD
        return cls(**values)

    def section_list(self, item: Callable[[Node, str, int], Any]) -> Conv:
        """A list whose items are decoded by ``item(node, path, index)``; null reads as an empty list."""

        def conv(y: Node, path: str) -> Any:
            if y.kind == "bad":
                return BAD
            if y.kind == "scalar" and y.value is None:
                return ()
            if y.kind != "seq":
                self.issue(y, path, f"expected a list, got {describe(y)}")
                return BAD
            out = []
            for i, iy in enumerate(y.value):
                ipath = f"{path}[{i}]"
                self.where[ipath] = (iy.line, iy.col)
                out.append(item(iy, ipath, i))
            return BAD if any(v is BAD for v in out) else tuple(out)

        return conv

    def choice(self, options: Iterable[object]) -> Conv:
        """One of ``options`` (a ``typing.Literal``'s values); else "must be one of ..." with did-you-mean."""
        known = tuple(options)
        shown = ", ".join(str(o) for o in known)

        def conv(y: Node, path: str) -> Any:
            if not self.expect_scalar(y, path, f"one of {shown}"):
                return BAD
            v = y.value
            if any(v == o and type(v) is type(o) for o in known):
                return v
            hint = suggest(v, [str(o) for o in known]) if isinstance(v, str) else ""
            self.issue(y, path, f"must be one of {shown}, got {describe(y)}{hint}")
            return BAD

        return conv

    # -- typed dataclasses ----------------------------------------------------------------

    def dataclass_of(self, cls: type, what: str = "value", choices: bool = True) -> Conv:
        """A mapping -> an instance of the dataclass ``cls``, each field converted by its type hint.

        ``choices=False`` reads ``Literal`` fields as plain strings, for a caller that checks the
        choices after construction together with the class's other checks (so that a bad mode and
        a bad value in one mapping are both reported).

        A field with ``metadata={"duration": True}`` reads a duration (seconds). Fields without a
        default are required; a constructor that raises TypeError/ValueError gives the issue
        "invalid <what>: <its message>".
        """
        hints = typing.get_type_hints(cls)
        schema: dict[str, tuple[str, Conv]] = {}
        required = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            conv = self.duration() if f.metadata.get("duration") else self.for_type(hints.get(f.name, Any), choices)
            schema[f.name] = (f.name, conv)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)

        def conv_obj(y: Node, path: str) -> Any:
            values = self.fields(y, path, schema, required)
            if values is None or any(v is BAD for v in values.values()):
                return BAD
            try:
                return cls(**values)
            except (TypeError, ValueError) as exc:
                self.issue(y, path, f"invalid {what}: {exc}")
                return BAD

        return conv_obj

    def for_type(self, t: object, choices: bool = True) -> Conv:
        """The converter for a type hint: str, bool, int, float, ``Literal[...]``, ``X | None``,
        ``tuple[X, ...]``, ``dict``/``Mapping[str, X]`` and nested dataclasses; anything else reads
        as a plain value."""
        if t is str:
            return self.string(allow_empty=True)
        if t is bool:
            return self.boolean()
        if t is int:
            return self.integer()
        if t is float:
            return self.number()
        if isinstance(t, type) and dataclasses.is_dataclass(t):
            return self.dataclass_of(t)
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            inner = self.for_type(rest[0], choices) if len(rest) == 1 else self.plain()
            return self.optional(inner)
        if origin is typing.Literal:
            return self.choice(args) if choices else self.string()
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return self.list_of(self.for_type(args[0]))
        if origin in (dict, Mapping) or t in (dict, Mapping):
            return self.mapping_of(self.for_type(args[1]) if len(args) == 2 else self.plain())
        return self.plain()

    # -- checked strings ------------------------------------------------------------------

    def checked(self, problem: Callable[[str], str | None]) -> Conv:
        """A string for which ``problem(value)`` is None; else that problem is the issue."""
        base = self.string()

        def conv(y: Node, path: str) -> Any:
            v = base(y, path)
            why = None if v is BAD else problem(v)
            if why:
                self.issue(y, path, why)
                return BAD
            return v

        return conv

    def matching(self, pattern: str, problem: Callable[[str], str]) -> Conv:
        """A string that fully matches ``pattern``; else the issue ``problem(value)``."""
        compiled = re.compile(pattern)
        return self.checked(lambda v: None if compiled.fullmatch(v) else problem(v))
