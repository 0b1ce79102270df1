"""Experiment YAML -> validated, frozen chaosml.model.Experiment (or one ExperimentError with every issue).

Called by the CLI (validate, plan, run), the game-day runner and the report (which re-loads the
source text stored in a run's journal).

How it works:

1. The text is composed (never constructed) with a bounded ``yaml.SafeLoader``: no tag is ever
   evaluated, and the composer refuses documents nested too deeply or whose aliases would expand
   past :data:`MAX_NODES` nodes (billion laughs) while it reads them, before anything is built.
2. The node tree becomes a small located tree (:class:`_Y`): every value keeps its 1-based line
   and column; duplicate keys, non-string keys and non-standard tags become issues here.
3. Each section is decoded by a schema of converters; unknown keys, missing required keys, wrong
   types and out-of-range values become issues with the field path (``faults[0].repeat.every``).
   Faults decode in two steps: the envelope, then ``params`` into ``FAULT_TYPES[type]`` from the
   params dataclass annotations, then the class's own ``check()``.
4. Cross-field checks (references between hypotheses and faults, the timeline against the load
   duration, baseline availability, unique names) run on whatever decoded cleanly, so one mistake
   does not hide another and does not cause spurious follow-up issues.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from chaosml.errors import ExperimentError, Issue
from chaosml.model import catalog
from chaosml.model.experiment import (
    AbortCondition,
    DataSpec,
    EntrySpec,
    Experiment,
    FaultSpec,
    Hypothesis,
    KubernetesSpec,
    LinkSpec,
    LoadSpec,
    Repeat,
    RequestSpec,
    ResponseSpec,
    RollbackSpec,
    ServiceSpec,
    Slo,
    SteadyState,
    TargetSpec,
    ToxiproxySpec,
)
from chaosml.model.faults import FAULT_TYPES

__all__ = ["MAX_FILE_BYTES", "MAX_NODES", "load_experiment", "load_experiment_text", "parse_duration"]

#: Larger files are refused before parsing.
MAX_FILE_BYTES = 1024 * 1024
#: Most YAML nodes a document may hold, counting every alias as the nodes it expands to.
MAX_NODES = 10_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64
#: Most injections of one fault.
MAX_REPEAT = 1000
#: Upper bounds that keep a typo from starting a runaway run.
MAX_REPLICAS = 100
MAX_USERS = 100_000

#: Stack names the target accepts (the bundled reference stack). Declaring ``target.services`` makes
#: the stack the user's own (model value "custom"; not written in the file).
STACKS: tuple[str, ...] = ("reference",)
#: A link (fault-proxy / Toxiproxy proxy) name a custom stack may declare.
LINK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
#: The reference stack's links: client -> gateway, gateway -> each replica, replicas -> feature store.
REFERENCE_LINK_RE = re.compile(r"gateway|feature-store|model|model-(0|[1-9][0-9]{0,3})")
#: Request body presets (see chaosml.mapping).
BODY_PRESETS: tuple[str, ...] = ("reference", "kserve-v1", "kserve-v2", "template")
HTTP_METHODS: tuple[str, ...] = ("POST", "PUT", "GET")
#: Most services, links and replicas of a custom stack.
MAX_SERVICES = 20
#: Params accepted per rollback type: key -> kind ("duration").
ROLLBACK_PARAMS: dict[str, dict[str, str]] = {"wait-ready": {"timeout": "duration"}}
#: Operators as the SLO/hypothesis/abort ``op`` key accepts them.
OPERATORS: tuple[str, ...] = tuple(catalog.OPERATORS)
#: SLIs whose value is a fraction: targets must lie in [0, 1].
RATIO_SLIS: frozenset[str] = frozenset(s for s in catalog.SAMPLE_SLIS if s.endswith("_ratio") or s == "accuracy")

_TAG = "tag:yaml.org,2002:"
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)")
_DURATION_TEXT = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|s|m|h))+")
_DURATION_HINT = "use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds"


# --------------------------------------------------------------------------------------------
# public API


def load_experiment(path: str | Path) -> Experiment:
    """Load and validate an experiment file; raise ExperimentError holding every issue."""
    filename = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ExperimentError([Issue(filename, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExperimentError([_too_large(filename)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ExperimentError([Issue(filename, line, column, "", "the file is not UTF-8 text")]) from None
    return load_experiment_text(text, filename)


def load_experiment_text(text: str, filename: str = "<string>") -> Experiment:
    """Validate experiment YAML given as text; raise ExperimentError holding every issue."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ExperimentError([_too_large(filename)])
    decoder = _Decoder(filename)
    root = decoder.compose(text)
    if root is None:
        raise ExperimentError(decoder.issues)
    experiment = decoder.experiment(root)
    if experiment is None:
        raise ExperimentError(decoder.issues or [Issue(filename, 1, 1, "", "invalid experiment")])
    return experiment


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
            raise ValueError(f"invalid duration {_short(str(value))}: too large") from None
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration {_short(str(value))}: must be a finite number of seconds")
    if seconds < 0:
        raise ValueError(f"invalid duration {_short(str(value))}: must not be negative")
    return seconds


def _is_duration_text(text: str) -> bool:
    return bool(_DURATION_TEXT.fullmatch(text) or re.fullmatch(r"\d+(?:\.\d*)?|\.\d+", text))


def _too_large(filename: str) -> Issue:
    return Issue(filename, 1, 1, "", f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; refusing to read it")


# --------------------------------------------------------------------------------------------
# YAML -> located tree


class _Refused(Exception):
    """The composer stopped reading: too many nodes, too deep, or a recursive alias."""

    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.message = message
        self.mark = mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts nodes, alias expansions included, and bounds nesting."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._count = 0
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise _Refused("recursive alias: a node cannot contain itself", mark)
            self._aliases += 1
            self._add(size, mark)
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep; refusing to read it", mark)
        before = self._count
        self._add(1, mark)
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._sizes[id(node)] = self._count - before
        return node

    def _add(self, n: int, mark: Any) -> None:
        self._count += n
        if self._count > MAX_NODES:
            if self._aliases:
                raise _Refused(
                    f"aliases expand to more than {MAX_NODES} nodes (a 'billion laughs' document?); "
                    "refusing to read it",
                    mark,
                )
            raise _Refused(f"the document has more than {MAX_NODES} nodes; refusing to read it", mark)


@dataclass(slots=True)
class _Y:
    """A located YAML value: kind map (dict key -> (key line, key column, _Y)), seq, scalar or bad."""

    kind: str
    value: Any
    line: int  # 1-based
    col: int  # 1-based
    text: str = ""  # a scalar's source text


_BAD: Any = object()  # a value already reported as an issue
_MISSING: Any = object()
_constructor = SafeConstructor()

_SCALAR_BUILDERS: dict[str, Callable[[ScalarNode], Any]] = {
    _TAG + "str": lambda n: n.value,
    _TAG + "timestamp": lambda n: n.value,  # dates stay text: no field takes a date
    _TAG + "null": lambda n: None,
    _TAG + "bool": _constructor.construct_yaml_bool,
    _TAG + "int": _constructor.construct_yaml_int,
    _TAG + "float": _constructor.construct_yaml_float,
}


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(value: str) -> str:
    return repr(_short(value))


def _describe(y: _Y) -> str:
    """'a string ('fast')', 'an integer (5)', 'a list', ... for type-mismatch messages."""
    if y.kind == "map":
        return "a mapping"
    if y.kind == "seq":
        return "a list"
    v = y.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"a boolean ({y.text})"
    if isinstance(v, int):
        return f"an integer ({_short(y.text)})"
    if isinstance(v, float):
        return f"a number ({_short(y.text)})"
    return f"a string ({_quote(v)})"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def _join(path: str, key: str) -> str:
    """Extend a field path; a key that is not a plain word is shown quoted (one line, unambiguous)."""
    if not _PLAIN_KEY.fullmatch(key):
        key = "[" + json.dumps(key, ensure_ascii=False) + "]"
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def _suggest(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}s"


Conv = Callable[["_Y", str], Any]


class _Decoder:
    """Turns a located tree into model objects, collecting every issue."""

    def __init__(self, filename: str):
        self.filename = filename
        self.issues: list[Issue] = []
        self.where: dict[str, tuple[int, int]] = {}

    # -- issues -------------------------------------------------------------------------

    def issue(self, at: _Y | tuple[int, int], path: str, message: str) -> None:
        line, col = (at.line, at.col) if isinstance(at, _Y) else at
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

    def compose(self, text: str) -> _Y | None:
        try:
            node = yaml.compose(text, Loader=_BoundedLoader)
        except _Refused as exc:
            self.issue((exc.mark.line + 1, exc.mark.column + 1), "", exc.message)
            return None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            self.issue((line, col), "", _syntax_message(exc))
            return None
        except yaml.reader.ReaderError as exc:
            before = text[: exc.position]
            line = before.count("\n") + 1
            col = exc.position - (before.rfind("\n") + 1) + 1
            self.issue((line, col), "", f"invalid YAML: unacceptable character {exc.character!r}")
            return None
        except yaml.YAMLError as exc:
            self.issue((1, 1), "", f"invalid YAML: {exc}")
            return None
        except RecursionError:
            self.issue((1, 1), "", "invalid YAML: nested too deeply")
            return None
        if node is None or (isinstance(node, ScalarNode) and node.tag == _TAG + "null" and not node.value):
            self.issue((1, 1), "", "the file is empty: expected a mapping with at least 'title'")
            return None
        root = self.tree(node, "")
        if root.kind == "bad":
            return None
        if root.kind != "map":
            self.issue(root, "", f"expected a mapping at the top of the document, got {_describe(root)}")
            return None
        return root

    def tree(self, node: Node, path: str) -> _Y:
        """Node -> _Y; aliases are expanded (their size was bounded by the composer)."""
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, ScalarNode):
            builder = _SCALAR_BUILDERS.get(node.tag)
            if builder is None:
                self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
                return _Y("bad", None, line, col, node.value)
            try:
                value = builder(node)
            except (ValueError, KeyError, TypeError, OverflowError):  # "!!int abc", "!!bool maybe", 5000 digits
                self.issue((line, col), path, f"cannot read {_quote(node.value)} as {_tag_name(node.tag)}")
                return _Y("bad", None, line, col, node.value)
            return _Y("scalar", value, line, col, node.value)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
                return _Y("bad", None, line, col)
            return _Y("seq", [self.tree(n, f"{path}[{i}]") for i, n in enumerate(node.value)], line, col)
        assert isinstance(node, MappingNode)
        if node.tag != _TAG + "map":
            self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
            return _Y("bad", None, line, col)
        items: dict[str, tuple[int, int, _Y]] = {}
        merged: dict[str, tuple[int, int, _Y]] = {}
        for key_node, value_node in node.value:
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "merge":
                self.merge(value_node, path, merged)
                continue
            key = self.tree(key_node, path)
            if key.kind == "bad":
                continue
            if key.kind != "scalar" or not isinstance(key.value, str):
                self.issue(kpos, path, f"keys must be strings, got {_describe(key)}")
                continue
            cpath = _join(path, key.value)
            if key.value in items:
                first = items[key.value]
                self.issue(kpos, cpath, f"duplicate key {key.value!r} (first at line {first[0]})")
                continue
            items[key.value] = (kpos[0], kpos[1], self.tree(value_node, cpath))
        for mkey, item in merged.items():
            items.setdefault(mkey, item)
        return _Y("map", items, line, col)

    def merge(self, node: Node, path: str, into: dict[str, tuple[int, int, _Y]]) -> None:
        """A YAML merge key (``<<: *defaults``): earlier sources win, explicit keys win over all."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            y = self.tree(source, path)
            if y.kind == "bad":
                continue
            if y.kind != "map":
                self.issue(y, path, f"'<<' merges mappings only, got {_describe(y)}")
                continue
            for key, item in y.value.items():
                into.setdefault(key, item)

    # -- converters (each returns a value or _BAD after reporting) -----------------------

    def expect_scalar(self, y: _Y, path: str, what: str) -> bool:
        if y.kind == "bad":
            return False
        if y.kind != "scalar":
            self.issue(y, path, f"expected {what}, got {_describe(y)}")
            return False
        return True

    def string(self, choices: Iterable[str] | None = None, what: str = "value", allow_empty: bool = False) -> Conv:
        known = tuple(choices) if choices is not None else None

        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "a string"):
                return _BAD
            v = y.value
            if not isinstance(v, str):
                hint = f"; quote it if you mean the text {y.text!r}" if y.value is not None else ""
                self.issue(y, path, f"expected a string, got {_describe(y)}{hint}")
                return _BAD
            if not v.strip() and not allow_empty:
                self.issue(y, path, "must not be empty")
                return _BAD
            if known is not None and v not in known:
                self.issue(y, path, f"unknown {what} {_quote(v)}{_suggest(v, known)}; choose from: {', '.join(known)}")
                return _BAD
            return v

        return conv

    def integer(self, lo: int | None = None, hi: int | None = None) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "a whole number"):
                return _BAD
            v = y.value
            if isinstance(v, float) and math.isfinite(v) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, int):
                self.issue(y, path, f"expected a whole number, got {_describe(y)}")
                return _BAD
            if lo is not None and v < lo:
                self.issue(y, path, f"must be >= {lo}, got {_short(y.text)}")
                return _BAD
            if hi is not None and v > hi:
                self.issue(y, path, f"must be <= {hi}, got {_short(y.text)}")
                return _BAD
            return v

        return conv

    def number(self, lo: float | None = None, lo_open: bool = False, hi: float | None = None) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "a number"):
                return _BAD
            v = y.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                self.issue(y, path, f"expected a number, got {_describe(y)}")
                return _BAD
            try:
                f = float(v)
            except OverflowError:
                self.issue(y, path, f"number too large: {_short(y.text)}")
                return _BAD
            if not math.isfinite(f):
                self.issue(y, path, f"expected a finite number, got {y.text}")
                return _BAD
            if lo is not None and (f <= lo if lo_open else f < lo):
                self.issue(y, path, f"must be {'>' if lo_open else '>='} {lo:g}, got {_short(y.text)}")
                return _BAD
            if hi is not None and f > hi:
                self.issue(y, path, f"must be <= {hi:g}, got {_short(y.text)}")
                return _BAD
            return f

        return conv

    def duration(self, positive: bool = False) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "a duration"):
                return _BAD
            v = y.value
            if v is None or isinstance(v, bool):
                self.issue(y, path, f"expected a duration, got {_describe(y)}: {_DURATION_HINT}")
                return _BAD
            try:
                seconds = parse_duration(v)
            except ValueError as exc:
                if isinstance(v, (int, float)):  # show the source text, not Python's rendering
                    self.issue(y, path, str(exc).replace(_short(str(v)), _short(y.text), 1))
                else:
                    self.issue(y, path, str(exc))
                return _BAD
            if positive and seconds <= 0:
                self.issue(y, path, f"must be longer than 0s, got {_short(y.text)}")
                return _BAD
            return seconds

        return conv

    def boolean(self) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "true or false"):
                return _BAD
            if not isinstance(y.value, bool):
                self.issue(y, path, f"expected true or false, got {_describe(y)}")
                return _BAD
            return y.value

        return conv

    def optional(self, inner: Conv) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if y.kind == "scalar" and y.value is None:
                return None
            return inner(y, path)

        return conv

    def list_of(self, item: Conv, non_empty: bool = False, unique: bool = False) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if y.kind == "bad":
                return _BAD
            if y.kind != "seq":
                self.issue(y, path, f"expected a list, got {_describe(y)}")
                return _BAD
            if non_empty and not y.value:
                self.issue(y, path, "must not be empty")
                return _BAD
            out = []
            seen: dict[Any, int] = {}
            for i, iy in enumerate(y.value):
                ipath = f"{path}[{i}]"
                self.where[ipath] = (iy.line, iy.col)
                v = item(iy, ipath)
                if unique and v is not _BAD:
                    try:
                        if v in seen:
                            self.issue(iy, ipath, f"{_quote(str(v))} is listed twice")
                            v = _BAD
                        else:
                            seen[v] = i
                    except TypeError:
                        pass
                out.append(v)
            return _BAD if any(v is _BAD for v in out) else tuple(out)

        return conv

    def mapping_of(self, value: Conv, keys: Iterable[str] | None = None, what: str = "key") -> Conv:
        known = tuple(keys) if keys is not None else None

        def conv(y: _Y, path: str) -> Any:
            if y.kind == "bad":
                return _BAD
            if y.kind != "map":
                self.issue(y, path, f"expected a mapping, got {_describe(y)}")
                return _BAD
            out: dict[str, Any] = {}
            ok = True
            for key, (kl, kc, vy) in y.value.items():
                cpath = _join(path, key)
                self.where[cpath] = (vy.line, vy.col)
                if known is not None and key not in known:
                    self.issue((kl, kc), cpath, f"unknown {what} {_quote(key)}{_suggest(key, known)}; choose from: {', '.join(known)}")
                    ok = False
                    continue
                v = value(vy, cpath)
                ok = ok and v is not _BAD
                out[key] = v
            return MappingProxyType(out) if ok else _BAD

        return conv

    def plain(self) -> Conv:
        """Any plain YAML value, made immutable (tuples and read-only mappings)."""

        def conv(y: _Y, path: str) -> Any:
            if y.kind == "bad":
                return _BAD
            if y.kind == "seq":
                items = [conv(iy, f"{path}[{i}]") for i, iy in enumerate(y.value)]
                return _BAD if any(v is _BAD for v in items) else tuple(items)
            if y.kind == "map":
                d = {k: conv(vy, _join(path, k)) for k, (_, _, vy) in y.value.items()}
                return _BAD if any(v is _BAD for v in d.values()) else MappingProxyType(d)
            return y.value

        return conv

    def fields(
        self,
        y: _Y,
        path: str,
        schema: Mapping[str, tuple[str, Conv]],
        required: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Decode a mapping by schema (yaml key -> (attribute, converter)).

        Returns attribute -> value for every key present (``_BAD`` for values already reported,
        and for missing required keys), or None when ``y`` is not a mapping.
        """
        if y.kind == "bad":
            return None
        if y.kind != "map":
            self.issue(y, path, f"expected a mapping, got {_describe(y)}")
            return None
        out: dict[str, Any] = {}
        for key, (kl, kc, vy) in y.value.items():
            cpath = _join(path, key)
            if key not in schema:
                known = ", ".join(schema)
                hint = _suggest(key, schema) or f"; known keys: {known}"
                self.issue((kl, kc), cpath, f"unknown key {_quote(key)}{hint}")
                continue
            self.where[cpath] = (vy.line, vy.col)
            attr, conv = schema[key]
            out[attr] = conv(vy, cpath)
        for key in required:
            if key not in y.value:
                self.issue(y, path, f"missing required key {key!r}")
                out[schema[key][0]] = _BAD
        return out

    def build(self, cls: type, values: dict[str, Any] | None) -> Any:
        if values is None or any(v is _BAD for v in values.values()):
            return _BAD
        return cls(**values)

    # -- sections -----------------------------------------------------------------------

    def experiment(self, root: _Y) -> Experiment | None:
        self.where[""] = (root.line, root.col)
        schema: dict[str, tuple[str, Conv]] = {
            "version": ("version", self.integer()),
            "title": ("title", self.string()),
            "description": ("description", self.string(allow_empty=True)),
            "release": ("release", self.string()),
            "target": ("target", self.target),
            "load": ("load", self.load),
            "steady_state": ("steady_state", self.steady_state),
            "hypotheses": ("hypotheses", self.section_list(self.hypothesis)),
            "faults": ("faults", self.section_list(self.fault)),
            "abort": ("abort", self.section_list(self.abort)),
            "rollbacks": ("rollbacks", self.section_list(self.rollback)),
            "request": ("request", self.request),
            "response": ("response", self.response),
        }
        self.names_complete = True  # False once a fault's name could not be read
        self.mix_cohorts: set[str] | None = None
        self.file_cohorts = _declares_file_cohorts(root)  # load.data.cohort: user cohort names are accepted
        self.service_keys: dict[str, tuple[_Y, set[str]]] = {}  # services[i] path -> (node, keys given)
        self.link_keys: dict[str, tuple[_Y, set[str]]] = {}  # links[i] path -> (node, keys given)
        self.entry_keys: set[str] = set()
        self.platform = "local"
        self.hyp_raw: list[tuple[str, dict[str, Any]]] = []
        self.slo_raw: list[tuple[str, dict[str, Any]]] = []
        self.abort_raw: list[tuple[str, dict[str, Any]]] = []
        self.fault_raw: list[tuple[str, dict[str, Any]]] = []
        values = self.fields(root, "", schema, required=("title",))
        assert values is not None
        version = values.get("version", 1)
        if version is not _BAD and version != 1:
            self.issue_at("version", f"unsupported version {version}: this chaosml reads version 1")
            values["version"] = _BAD
        if "load" not in values:
            self.mix_cohorts = set(LoadSpec().mix)
        self.cross_checks(values)
        if self.issues:
            return None
        experiment = self.build(Experiment, values)
        return None if experiment is _BAD else experiment

    def section_list(self, item: Callable[[_Y, str, int], Any]) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if y.kind == "bad":
                if path == "faults":
                    self.names_complete = False
                return _BAD
            if y.kind == "scalar" and y.value is None:
                return ()
            if y.kind != "seq":
                self.issue(y, path, f"expected a list, got {_describe(y)}")
                if path == "faults":
                    self.names_complete = False
                return _BAD
            out = []
            for i, iy in enumerate(y.value):
                ipath = f"{path}[{i}]"
                self.where[ipath] = (iy.line, iy.col)
                out.append(item(iy, ipath, i))
            return _BAD if any(v is _BAD for v in out) else tuple(out)

        return conv

    def target(self, y: _Y, path: str) -> Any:
        schema = {
            "platform": ("platform", self.string(catalog.TARGET_PLATFORMS, "platform")),
            "stack": ("stack", self.string(STACKS, "stack")),
            "profile": ("profile", self.string(catalog.PROFILES, "profile")),
            "replicas": ("replicas", self.integer(1, MAX_REPLICAS)),
            "restart_delay": ("restart_delay", self.duration()),
            "kubernetes": ("kubernetes", self.optional(self.kubernetes)),
            "services": ("services", self.section_list(self.service)),
            "links": ("links", self.section_list(self.link)),
            "entry": ("entry", self.optional(self.entry)),
        }
        values = self.fields(y, path, schema)
        if values is None:
            return _BAD
        self.check_custom_stack(path, values)
        platform = values.get("platform", TargetSpec().platform)
        if platform == "kubernetes" and values.get("kubernetes") is None:
            values["kubernetes"] = KubernetesSpec()
        elif platform == "local" and values.get("kubernetes") not in (None, _BAD):
            self.issue_at(f"{path}.kubernetes", "only used when platform is kubernetes (platform is local)")
            values["kubernetes"] = _BAD
        return self.build(TargetSpec, values)

    def kubernetes(self, y: _Y, path: str) -> Any:
        schema = {
            "context": ("context", self.optional(self.string())),
            "namespace": ("namespace", self.dns_label()),
            "allowed_contexts": ("allowed_contexts", self.list_of(self.string(), non_empty=True)),
            "allow_any_context": ("allow_any_context", self.boolean()),
            "toxiproxy": ("toxiproxy", self.optional(self.toxiproxy)),
        }
        return self.build(KubernetesSpec, self.fields(y, path, schema))

    def toxiproxy(self, y: _Y, path: str) -> Any:
        schema = {
            "service": ("service", self.dns_label("Service name")),
            "port": ("port", self.string()),
            "url": ("url", self.optional(self.http_url())),
        }
        values = self.fields(y, path, schema)
        if values is not None and values.get("url") not in (None, _BAD) and ("service" in values or "port" in values):
            self.issue_at(f"{path}.url", "give either url or service/port, not both")
            values["url"] = _BAD
        return self.build(ToxiproxySpec, values)

    def checked(self, problem: Callable[[str], str | None]) -> Conv:
        """A string for which ``problem(value)`` is None; else that problem is the issue."""
        base = self.string()

        def conv(y: _Y, path: str) -> Any:
            v = base(y, path)
            why = None if v is _BAD else problem(v)
            if why:
                self.issue(y, path, why)
                return _BAD
            return v

        return conv

    def matching(self, pattern: str, problem: Callable[[str], str]) -> Conv:
        """A string that fully matches ``pattern``; else the issue ``problem(value)``."""
        compiled = re.compile(pattern)
        return self.checked(lambda v: None if compiled.fullmatch(v) else problem(v))

    def http_url(self) -> Conv:
        return self.matching(r"https?://[^\s/]+(/\S*)?", lambda v: f"must be an http:// or https:// URL, got {_quote(v)}")

    def label_selector(self) -> Conv:
        """A non-empty mapping of Kubernetes label key -> value (matchLabels)."""
        key_re = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
        value_re = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

        def value(y: _Y, path: str) -> Any:
            v = self.env_value()(y, path)
            if v is not _BAD and not value_re.fullmatch(v):
                self.issue(y, path, f"{_quote(v)} is not a valid label value (at most 63 letters, digits, '-', '_', '.')")
                return _BAD
            return v

        base = self.mapping_of(value)

        def conv(y: _Y, path: str) -> Any:
            out = base(y, path)
            if out is _BAD:
                return _BAD
            if not out:
                self.issue(y, path, "must name at least one label, e.g. {app: my-model}")
                return _BAD
            bad = [k for k in out if not key_re.fullmatch(k)]
            if bad:
                self.issue(y, path, f"{_quote(bad[0])} is not a valid label key")
                return _BAD
            return out

        return conv

    # -- custom stacks, data files, request/response mapping ---------------------------------

    def service(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.dns_label("service name")),
            "command": ("command", self.list_of(self.string(allow_empty=True), non_empty=True)),
            "selector": ("selector", self.label_selector()),
            "health": ("health", self.string()),
            "replicas": ("replicas", self.integer(1, MAX_REPLICAS)),
            "env": ("env", self.mapping_of(self.env_value())),
            "cwd": ("cwd", self.optional(self.string())),
            "start_timeout": ("start_timeout", self.duration(positive=True)),
        }
        values = self.fields(y, path, schema, required=("name",))
        if values is None:
            return _BAD
        self.service_keys[path] = (y, set(values))
        health = values.get("health")
        if health not in (None, _BAD) and health != "tcp" and not health.startswith("/"):
            self.issue_at(f"{path}.health", f"must be an HTTP path starting with '/' (e.g. /healthz) or 'tcp', got {_quote(health)}")
            values["health"] = _BAD
        return self.build(ServiceSpec, values)

    def env_value(self) -> Conv:
        def conv(y: _Y, path: str) -> Any:
            if not self.expect_scalar(y, path, "a string"):
                return _BAD
            if y.value is None or isinstance(y.value, (dict, list)):
                self.issue(y, path, f"expected a string, got {_describe(y)}")
                return _BAD
            return y.text if not isinstance(y.value, str) else y.value  # 8080 -> "8080", as written

        return conv

    def link(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.string()),
            "upstream": ("upstream", self.string()),
            "env": ("env", self.optional(self.string())),
            "service": ("service", self.optional(self.string())),
        }
        values = self.fields(y, path, schema, required=("name",))
        if values is None:
            return _BAD
        self.link_keys[path] = (y, set(values))
        name = values.get("name", _BAD)
        if name is not _BAD and not LINK_NAME_RE.fullmatch(name):
            self.issue_at(f"{path}.name", f"{_quote(name)} is not a link name (letters, digits, '-', '_' and '.', at most 64)")
            values["name"] = _BAD
        up = values.get("upstream", _BAD)
        if up not in (_BAD, None):
            m = re.fullmatch(r"(127\.0\.0\.1|localhost):(\d{1,5})", up)
            if not m or not 0 < int(m.group(2)) < 65536:
                self.issue_at(f"{path}.upstream", f"must be 127.0.0.1:PORT (traffic stays on this machine), got {_quote(up)}")
                values["upstream"] = _BAD
        env = values.get("env")
        if env not in (None, _BAD) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            self.issue_at(f"{path}.env", f"{_quote(env)} is not an environment variable name")
            values["env"] = _BAD
        return self.build(LinkSpec, values)

    def entry(self, y: _Y, path: str) -> Any:
        schema = {
            "service": ("service", self.string()),
            "proxy": ("proxy", self.boolean()),
            "url": ("url", self.optional(self.http_url())),
            "port": ("port", self.optional(self.string())),
            "link": ("link", self.optional(self.string())),
        }
        values = self.fields(y, path, schema, required=("service",))
        if values is not None:
            self.entry_keys = set(values)
            given = [k for k in ("url", "link") if values.get(k) is not None]
            if len(given) > 1:
                self.issue_at(f"{path}.link", "give either url or link, not both")
                values["link"] = _BAD
        return self.build(EntrySpec, values)

    def check_custom_stack(self, path: str, values: dict[str, Any]) -> None:
        services, links, entry = values.get("services"), values.get("links"), values.get("entry")
        platform = values.get("platform", TargetSpec().platform)
        self.platform = platform if platform is not _BAD else "local"
        self.custom_services: dict[str, ServiceSpec] | None = None
        self.custom_links: set[str] | None = None
        if "services" not in values:
            for key in ("links", "entry"):
                if values.get(key) not in (None, (), _BAD):
                    self.issue_at(f"{path}.{key}", "only used with target.services (your own stack)")
                    values[key] = _BAD
            return
        if "stack" in values:
            self.issue_at(f"{path}.stack", "leave out 'stack': declaring target.services makes the stack your own")
            values["stack"] = _BAD
        else:
            values["stack"] = "custom"
        own = "services[].selector" if self.platform == "kubernetes" else "services[].replicas"
        for key in ("profile", "replicas") + (("restart_delay",) if self.platform == "kubernetes" else ()):
            if key in values:
                self.issue_at(f"{path}.{key}", f"only used with the reference stack; your services set their own ({own})")
                values[key] = _BAD
        if services is None or services == ():
            self.issue_at(f"{path}.services", "must declare at least one service")
            values["services"] = _BAD
            return
        self.check_platform_keys(path, values)
        if services is _BAD:
            return
        names: dict[str, int] = {}
        for i, svc in enumerate(services):
            if svc.name in names:
                self.issue_at(f"{path}.services[{i}].name", f"duplicate service name {svc.name!r} (also services[{names[svc.name]}])")
                values["services"] = _BAD
            names.setdefault(svc.name, i)
        if len(services) > MAX_SERVICES:
            self.issue_at(f"{path}.services", f"at most {MAX_SERVICES} services")
            values["services"] = _BAD
        self.custom_services = {s.name: s for s in services}
        self.custom_link_specs = links if links not in (None, _BAD) else ()
        if links not in (None, _BAD):
            seen: set[str] = set()
            for i, ln in enumerate(links):
                if ln.name in seen:
                    self.issue_at(f"{path}.links[{i}].name", f"duplicate link name {ln.name!r}")
                    values["links"] = _BAD
                seen.add(ln.name)
                if self.platform == "local" and (ln.name == "gateway" or re.fullmatch(r"model(-\d+)?", ln.name)):
                    self.issue_at(f"{path}.links[{i}].name", f"{_quote(ln.name)} is the entry's link name (gateway, model-<i>); choose another, e.g. feature-store")
                    values["links"] = _BAD
                if ln.service is not None and ln.service not in names:
                    self.issue_at(f"{path}.links[{i}].service", f"unknown service {_quote(ln.service)}{_suggest(ln.service, names)}; services: {', '.join(names)}")
                    values["links"] = _BAD
        if entry is None:
            self.issue_at(path, "missing required key 'entry': which service clients call, e.g. entry: {service: model}")
            values["entry"] = _BAD
        elif entry is not _BAD and entry.service not in names:
            self.issue_at(f"{path}.entry.service", f"unknown service {_quote(entry.service)}{_suggest(entry.service, names)}; services: {', '.join(names)}")
            values["entry"] = _BAD
        if entry not in (None, _BAD) and links is not _BAD:
            lk = {ln.name for ln in links or ()}
            if self.platform == "kubernetes":
                if entry.link is not None and entry.link not in lk:
                    self.issue_at(f"{path}.entry.link", f"no link {_quote(entry.link)}{_suggest(entry.link, lk)}; declare it in target.links")
                    values["entry"] = _BAD
            elif entry.proxy:
                n = self.custom_services[entry.service].replicas if entry.service in self.custom_services else 0
                lk |= {"gateway", "model", *(f"model-{i}" for i in range(n))}
            self.custom_links = lk

    #: keys of services[], links[] and entry that only one platform uses
    _LOCAL_ONLY: ClassVar[dict[str, tuple[str, ...]]] = {
        "services": ("command", "health", "replicas", "env", "cwd", "start_timeout"),
        "links": ("upstream", "env"),
        "entry": ("proxy",),
    }
    _K8S_ONLY: ClassVar[dict[str, tuple[str, ...]]] = {"services": ("selector",), "links": ("service",), "entry": ("url", "port", "link")}

    def check_platform_keys(self, path: str, values: dict[str, Any]) -> None:
        """Keys of a custom stack that the other platform uses are errors; required ones per platform."""
        k8s = self.platform == "kubernetes"
        other = self._LOCAL_ONLY if k8s else self._K8S_ONLY
        here = "kubernetes" if k8s else "local"
        groups = (("services", self.service_keys), ("links", self.link_keys))
        for section, table in groups:
            for ipath, (node, keys) in table.items():
                for key in other[section]:
                    if key in keys:
                        self.issue_at(f"{ipath}.{key}", f"not used on the {here} target" + (
                            " (chaosml does not start your pods: select their Deployment with selector)" if k8s and section == "services"
                            else " (links on kubernetes name proxies of your cluster's Toxiproxy)" if k8s
                            else ""))
                        values[section] = _BAD
                need = ("selector",) if k8s and section == "services" else ("command",) if section == "services" else (
                    () if k8s else ("upstream",))
                for key in need:
                    if key not in keys:
                        self.issue(node, ipath, f"missing required key {key!r}" + (
                            ": the labels of your Deployment's pods, e.g. selector: {app: my-model}" if key == "selector" else ""))
                        values[section] = _BAD
        for key in other["entry"]:
            if key in self.entry_keys:
                self.issue_at(f"{path}.entry.{key}", f"not used on the {here} target")
                values["entry"] = _BAD

    def check_custom_faults(self, values: dict[str, Any]) -> None:
        """pod-kill services and network-fault links must exist on the stack (reference or custom)."""
        services = getattr(self, "custom_services", None)
        links = getattr(self, "custom_links", None)
        if services is None:
            self.check_reference_links(values)
            return
        k8s = self.platform == "kubernetes"
        if self.mix_cohorts and "adversarial-evasion" in self.mix_cohorts:
            self.issue_at("load.mix.adversarial-evasion", "adversarial-evasion needs the reference stack's model; not available with target.services")
            values["load"] = _BAD
        for path, fv in self.fault_raw:
            params = fv.get("params")
            ftype = fv.get("type")
            if ftype == "adversarial-payload" and params not in (None, _BAD) and getattr(params, "cohort", "") == "adversarial-evasion":
                self.issue_at(f"{path}.params.cohort", "adversarial-evasion needs the reference stack's model; not available with target.services")
                values["faults"] = _BAD
            if params in (None, _BAD):
                continue
            if ftype == "pod-kill" and params.service not in services:
                self.issue_at(f"{path}.params.service", f"unknown service {_quote(params.service)}{_suggest(params.service, services)}; services: {', '.join(services)}")
                values["faults"] = _BAD
            link = getattr(params, "link", None) if ftype in ("network-latency", "network-toxic") else None
            if ftype == "feature-store-outage":
                link = "feature-store"
                if params.mode == "kill":
                    declared = next((ln for ln in (getattr(self, "custom_link_specs", None) or ()) if ln.name == "feature-store"), None)
                    if not k8s:
                        self.issue_at(f"{path}.params.mode", "mode kill stops the reference stack's Redis; on a custom stack use down, timeout or latency")
                        values["faults"] = _BAD
                    elif declared is not None and declared.service is None:
                        self.issue_at(f"{path}.params.mode", "mode kill scales the service behind the feature-store link to zero: "
                                      "name it in target.links (service: ...), or use down, timeout or latency")
                        values["faults"] = _BAD
            if ftype in ("corrupted-features", "missing-features"):
                self.issue_at(f"{path}.type", f"{ftype} edits the reference stack's feature store; not available with stack: custom")
                values["faults"] = _BAD
            if ftype == "node-failure" and not k8s:
                continue
            if link is not None and links is not None and link not in links:
                self.issue_at(f"{path}.params.link" if ftype != "feature-store-outage" else f"{path}.type",
                              f"no link {_quote(link)} on this stack; links: {', '.join(sorted(links)) or 'none'} (declare target.links"
                              + (", naming a proxy of your cluster's Toxiproxy)" if k8s else ", or entry.proxy: true)"))
                values["faults"] = _BAD

    def check_reference_links(self, values: dict[str, Any]) -> None:
        """The reference stack's links are fixed: gateway, feature-store, model and model-<i>."""
        for path, fv in self.fault_raw:
            params = fv.get("params")
            if fv.get("type") not in ("network-latency", "network-toxic") or params in (None, _BAD):
                continue
            if not REFERENCE_LINK_RE.fullmatch(params.link):
                self.issue_at(f"{path}.params.link", f"must be one of gateway, feature-store, model or model-<i> (one replica) "
                              f"on the reference stack, not {params.link!r}")
                values["faults"] = _BAD

    def data(self, y: _Y, path: str) -> Any:
        schema = {
            "file": ("file", self.string()),
            "label": ("label", self.string()),
            "features": ("features", self.optional(self.list_of(self.string(), non_empty=True, unique=True))),
            "entity": ("entity", self.optional(self.string())),
            "ranges": ("ranges", self.optional(self.mapping_of(self.range_pair()))),
            "test_fraction": ("test_fraction", self.number(0, lo_open=True, hi=0.9)),
            "cohort": ("cohort", self.optional(self.string())),
        }
        values = self.fields(y, path, schema, required=("file", "label"))
        if values is None:
            return _BAD
        cohort = values.get("cohort")
        if cohort not in (None, _BAD):
            for key in ("label", "entity"):
                if values.get(key) == cohort:
                    self.issue_at(f"{path}.cohort", f"column {_quote(cohort)} is the {key} column; name the column that holds each row's cohort")
                    values["cohort"] = _BAD
                    break
            else:
                if values.get("features") not in (None, _BAD) and cohort in values["features"]:
                    self.issue_at(f"{path}.cohort", f"column {_quote(cohort)} is listed in features; a cohort column labels rows and is not sent")
                    values["cohort"] = _BAD
        f = values.get("file", _BAD)
        if f is not _BAD and not f.lower().endswith((".csv", ".parquet", ".pq")):
            self.issue_at(f"{path}.file", f"must be a .csv or .parquet file, got {_quote(f)}")
            values["file"] = _BAD
        return self.build(DataSpec, values)

    def range_pair(self) -> Conv:
        num = self.number()

        def conv(y: _Y, path: str) -> Any:
            if y.kind != "seq" or len(y.value) != 2:
                self.issue(y, path, f"expected [min, max], got {_describe(y)}")
                return _BAD
            lo, hi = num(y.value[0], f"{path}[0]"), num(y.value[1], f"{path}[1]")
            if _BAD in (lo, hi):
                return _BAD
            if lo >= hi:
                self.issue(y, path, f"min must be below max, got [{lo:g}, {hi:g}]")
                return _BAD
            return (lo, hi)

        return conv

    def request(self, y: _Y, path: str) -> Any:
        schema = {
            "path": ("path", self.string()),
            "method": ("method", self.string(HTTP_METHODS, "method")),
            "headers": ("headers", self.mapping_of(self.env_value())),
            "body": ("body", self.string(BODY_PRESETS, "body preset")),
            "input_name": ("input_name", self.string()),
            "datatype": ("datatype", self.string(("FP64", "FP32"), "datatype")),
            "template": ("template", self.optional(self.plain())),
            "probes": ("probes", self.integer(0, 20)),
        }
        values = self.fields(y, path, schema)
        if values is None:
            return _BAD
        p = values.get("path", _BAD)
        if p is not _BAD and "path" in values and (not p.startswith("/") or any(c.isspace() for c in p)):
            self.issue_at(f"{path}.path", f"must start with '/' and hold no spaces, got {_quote(p)}")
            values["path"] = _BAD
        body, template = values.get("body", "reference"), values.get("template")
        if body == "template" and template is None:
            self.issue_at(f"{path}.body", "body: template needs request.template (a JSON body with {{features}}-style placeholders)")
            values["body"] = _BAD
        elif body not in ("template", _BAD) and template is not None:
            self.issue_at(f"{path}.template", f"only used with body: template (body is {body})")
            values["template"] = _BAD
        if template not in (None, _BAD):
            from chaosml.workload.mapping import template_fields

            _, unknown = template_fields(template)
            if unknown:
                self.issue_at(f"{path}.template", "unknown placeholder(s) " + ", ".join(unknown) +
                              "; known: {{features}}, {{features_object}}, {{feature.NAME}}, {{entity_id}}, {{n_features}}")
                values["template"] = _BAD
        if values.get("headers") not in (None, _BAD):
            values["headers"] = MappingProxyType(dict(values["headers"]))
        return self.build(RequestSpec, values)

    def response(self, y: _Y, path: str) -> Any:
        from chaosml.workload.mapping import check_field_spec

        def problem(v: str) -> str | None:
            why = check_field_spec(v)
            return f"{why} (or header:NAME, or not-exposed)" if why else None

        spec = self.checked(problem)
        schema = {k: (k, spec) for k in ("prediction", "confidence", "model_version", "served_by", "replica")}
        return self.build(ResponseSpec, self.fields(y, path, schema))

    def dns_label(self, what: str = "namespace name") -> Conv:
        return self.matching(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
                             lambda v: f"{_quote(v)} is not a valid {what} (lowercase letters, digits and '-')")

    def load(self, y: _Y, path: str) -> Any:
        schema = {
            "users": ("users", self.integer(1, MAX_USERS)),
            "spawn_rate": ("spawn_rate", self.number(0, lo_open=True)),
            "duration": ("duration", self.duration(positive=True)),
            "rate_per_user": ("rate_per_user", self.optional(self.number(0, lo_open=True))),
            "request_timeout": ("request_timeout", self.duration(positive=True)),
            "mix": ("mix", self.mix),
            "dataset": ("dataset", self.string(catalog.DATASETS, "dataset")),
            "seed": ("seed", self.integer(0, 2**32 - 1)),
            "data": ("data", self.optional(self.data)),
        }
        values = self.fields(y, path, schema)
        if values is not None and values.get("data") not in (None, _BAD) and "dataset" in values:
            self.issue_at(f"{path}.dataset", "give either load.dataset (a built-in dataset) or load.data (a file), not both")
            values["dataset"] = _BAD
        if values is not None and values.get("mix", LoadSpec().mix) is not _BAD:
            self.mix_cohorts = set(values.get("mix", LoadSpec().mix))
        return self.build(LoadSpec, values)

    def mix(self, y: _Y, path: str) -> Any:
        if self.file_cohorts and y.kind == "map":  # built-in names, or names of the data file's cohorts
            bad = set()
            for key, (kl, kc, _) in y.value.items():
                problem = _file_cohort_problem(key, objective=False)
                if problem:
                    self.issue((kl, kc), _join(path, key), problem)
                    bad.add(key)
            weights = self.mapping_of(self.number(0))(_Y("map", {k: v for k, v in y.value.items() if k not in bad}, y.line, y.col), path)
            if bad:
                return _BAD
        else:
            weights = self.mapping_of(self.number(0), catalog.COHORTS, "cohort")(y, path)
        if weights is _BAD:
            return _BAD
        if not weights:
            self.issue(y, path, "must name at least one cohort")
            return _BAD
        if not any(w > 0 for w in weights.values()):
            self.issue(y, path, "weights must not all be zero")
            return _BAD
        return weights

    def steady_state(self, y: _Y, path: str) -> Any:
        schema = {
            "window": ("window", self.duration(positive=True)),
            "hold": ("hold", self.integer(1, 10_000)),
            "confidence_threshold": ("confidence_threshold", self.number(0, hi=1)),
            "min_samples": ("min_samples", self.integer(1)),
            "slos": ("slos", self.section_list(self.slo)),
        }
        return self.build(SteadyState, self.fields(y, path, schema))

    def objective_cohort(self) -> Conv:
        """An SLO's, hypothesis' or abort condition's ``cohort``: a built-in name, or with load.data.cohort a file cohort."""
        if not self.file_cohorts:
            return self.string(catalog.COHORTS, "cohort")
        base = self.string()

        def conv(y: _Y, path: str) -> Any:
            v = base(y, path)
            problem = None if v is _BAD else _file_cohort_problem(v, objective=True)
            if problem:
                self.issue(y, path, problem)
                return _BAD
            return v

        return conv

    def check_common(self, path: str, values: dict[str, Any], kind: str) -> None:
        """sli/op/target/cohort checks shared by SLOs, hypotheses and abort conditions."""
        sli = values.get("sli", _BAD)
        if sli is not _BAD:
            if sli not in catalog.ALL_SLIS:
                hint = _suggest(sli, catalog.ALL_SLIS) or f"; choose from: {', '.join(catalog.ALL_SLIS)}"
                self.issue_at(f"{path}.sli", f"unknown SLI {_quote(sli)}{hint}")
                values["sli"] = sli = _BAD
            elif kind != "hypothesis" and sli in catalog.INJECTION_SLIS:
                self.issue_at(
                    f"{path}.sli",
                    f"{sli} is measured per fault injection, not over samples; use it in a hypothesis with 'fault:'",
                )
                values["sli"] = sli = _BAD
        op = values.get("op", _BAD)
        if op is not _BAD and op not in OPERATORS:
            self.issue_at(f"{path}.op", f"unknown operator {_quote(op)}; choose from: {', '.join(OPERATORS)}")
            values["op"] = _BAD
        target = values.get("target", _BAD)
        if sli is not _BAD and target is not _BAD:
            if sli in RATIO_SLIS and not 0 <= target <= 1:
                self.issue_at(f"{path}.target", f"{sli} is a ratio: the target must be within [0, 1], got {target:g}")
                values["target"] = _BAD
            elif sli not in RATIO_SLIS and target < 0:
                self.issue_at(f"{path}.target", f"{sli} is never negative: the target must be >= 0, got {target:g}")
                values["target"] = _BAD
        cohort = values.get("cohort")
        mix = self.mix_cohorts
        if cohort not in (None, _BAD) and mix is not None and cohort not in mix:
            if self.file_cohorts and cohort not in catalog.COHORTS:  # a file cohort: sent by name, or as part of clean
                if "clean" not in mix:
                    self.issue_at(f"{path}.cohort", f"cohort {_quote(cohort)} is not in load.mix, nor is clean (whose rows are "
                                  "sent under their file cohorts), so it would have no samples")
                    values["cohort"] = _BAD
            else:
                self.issue_at(f"{path}.cohort", f"cohort {_quote(cohort)} is not in load.mix, so it would have no samples")
                values["cohort"] = _BAD

    def slo(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.string()),
            "sli": ("sli", self.string()),
            "op": ("op", self.string()),
            "target": ("target", self.number()),
            "phases": ("phases", self.list_of(self.string(catalog.PHASES, "phase"), non_empty=True, unique=True)),
            "cohort": ("cohort", self.optional(self.objective_cohort())),
        }
        values = self.fields(y, path, schema, required=("name", "sli", "op", "target"))
        if values is None:
            return _BAD
        self.slo_raw.append((path, values))
        return values  # built in cross_checks, after the load mix is known

    def hypothesis(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.string()),
            "sli": ("sli", self.string()),
            "op": ("op", self.string()),
            "target": ("target", self.number()),
            "during": ("during", self.optional(self.string())),
            "fault": ("fault", self.optional(self.string())),
            "cohort": ("cohort", self.optional(self.objective_cohort())),
            "agg": ("agg", self.string(catalog.AGGREGATES, "aggregate")),
            "min_samples": ("min_samples", self.optional(self.integer(1))),
        }
        values = self.fields(y, path, schema, required=("name", "sli", "op", "target"))
        if values is None:
            return _BAD
        self.hyp_raw.append((path, values))
        return values

    def abort(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "sli": ("sli", self.string()),
            "op": ("op", self.string()),
            "target": ("target", self.number()),
            "for": ("for_", self.duration()),
            "cohort": ("cohort", self.optional(self.objective_cohort())),
        }
        values = self.fields(y, path, schema, required=("sli", "op", "target"))
        if values is None:
            return _BAD
        self.abort_raw.append((path, values))
        return values

    def rollback(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "type": ("type", self.string(catalog.ROLLBACK_TYPES, "rollback type")),
            "params": ("params", self.optional(lambda py, ppath: py)),  # decoded below, by type
        }
        values = self.fields(y, path, schema, required=("type",))
        if values is None:
            return _BAD
        rtype, params_y = values.get("type", _BAD), values.pop("params", None)
        if rtype is _BAD:
            return _BAD
        if params_y is not None:
            kinds = ROLLBACK_PARAMS.get(rtype)
            if kinds is None:
                values["params"] = self.mapping_of(self.plain())(params_y, f"{path}.params")
            else:
                convs = {k: self.duration() if kind == "duration" else self.plain() for k, kind in kinds.items()}
                fields = self.fields(params_y, f"{path}.params", {k: (k, c) for k, c in convs.items()})
                values["params"] = (
                    _BAD if fields is None or _BAD in fields.values() else MappingProxyType(fields)
                )
        return self.build(RollbackSpec, values)

    # -- faults ---------------------------------------------------------------------------

    def fault(self, y: _Y, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.string()),
            "type": ("type", self.string()),
            "at": ("at", self.duration()),
            "duration": ("duration", self.duration(positive=True)),
            "repeat": ("repeat", self.repeat),
            "params": ("params", self.optional(lambda py, ppath: py)),  # decoded below, by type
        }
        values = self.fields(y, path, schema, required=("name", "type", "at", "duration"))
        if values is None:
            self.names_complete = False
            return _BAD
        if values.get("name") is _BAD:
            self.names_complete = False
        ftype = values.get("type", _BAD)
        params_y = values.get("params")
        if ftype is not _BAD and ftype not in FAULT_TYPES:
            known = ", ".join(sorted(FAULT_TYPES))
            self.issue_at(f"{path}.type", f"unknown fault type {_quote(ftype)}{_suggest(ftype, FAULT_TYPES)}; known types: {known}")
            values["type"] = ftype = _BAD
        if ftype is _BAD:
            values["params"] = _BAD
        else:
            if params_y is None:
                params_y = _Y("map", {}, *self.where.get(f"{path}.params", (y.line, y.col)))
            values["params"] = self.params(FAULT_TYPES[ftype], params_y, f"{path}.params")
        repeat = values.get("repeat", Repeat())
        duration = values.get("duration", _BAD)
        if repeat is not _BAD and duration is not _BAD and repeat.count > 1 and repeat.every <= duration:
            self.issue_at(
                f"{path}.repeat.every",
                f"must be longer than the fault's duration ({_fmt_s(duration)}) "
                f"when count > 1, so that its windows do not overlap, got {_fmt_s(repeat.every)}",
            )
            values["repeat"] = _BAD
        self.fault_raw.append((path, values))
        return self.build(FaultSpec, values)

    def repeat(self, y: _Y, path: str) -> Any:
        schema = {
            "count": ("count", self.integer(1, MAX_REPEAT)),
            "every": ("every", self.duration()),
        }
        return self.build(Repeat, self.fields(y, path, schema))

    def params(self, cls: type, y: _Y, path: str) -> Any:
        """A fault's params mapping -> its params dataclass, typed from the annotations."""
        hints = typing.get_type_hints(cls)
        schema: dict[str, tuple[str, Conv]] = {}
        required = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            conv = self.duration() if f.metadata.get("duration") else self.for_type(hints.get(f.name, Any))
            schema[f.name] = (f.name, conv)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
        values = self.fields(y, path, schema, required)
        if values is None or any(v is _BAD for v in values.values()):
            return _BAD
        try:
            obj = cls(**values)
        except (TypeError, ValueError) as exc:
            self.issue(y, path, f"invalid params: {exc}")
            return _BAD
        check = getattr(obj, "check", None)
        problems = list(check()) if callable(check) else []
        for field_name, message in problems:
            self.issue_at(_join(path, field_name) if field_name else path, message)
        return _BAD if problems else obj

    def for_type(self, t: Any) -> Conv:
        if t is str:
            return self.string(allow_empty=True)
        if t is bool:
            return self.boolean()
        if t is int:
            return self.integer()
        if t is float:
            return self.number()
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin in (typing.Union, types.UnionType) and type(None) in args:
            rest = [a for a in args if a is not type(None)]
            inner = self.for_type(rest[0]) if len(rest) == 1 else self.plain()
            return self.optional(inner)
        if origin is typing.Literal:
            return self.string(tuple(str(a) for a in args))
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return self.list_of(self.for_type(args[0]))
        if origin in (dict, Mapping) or t in (dict, Mapping):
            return self.mapping_of(self.for_type(args[1]) if len(args) == 2 else self.plain())
        return self.plain()

    # -- checks across sections -------------------------------------------------------------

    def cross_checks(self, values: dict[str, Any]) -> None:
        # fault names: unique, not phase names; all known only when every fault's name was read
        names: dict[str, str] = {}
        for path, fv in self.fault_raw:
            name = fv.get("name", _BAD)
            if name is _BAD:
                continue
            if name in names:
                self.issue_at(f"{path}.name", f"duplicate fault name {name!r} (also {names[name]})")
                values["faults"] = _BAD
            elif name in catalog.PHASES:
                self.issue_at(f"{path}.name", f"{name!r} is a phase name; choose another fault name")
                values["faults"] = _BAD
            names.setdefault(name, path)
        fault_names = set(names) if self.names_complete else None

        # SLOs and hypotheses (built here, now that the load mix and fault names are known)
        for kind, raw in (("slo", self.slo_raw), ("hypothesis", self.hyp_raw), ("abort", self.abort_raw)):
            seen: dict[str, str] = {}
            for path, hv in raw:
                self.check_common(path, hv, kind)
                name = hv.get("name", _BAD)
                if kind != "abort" and name is not _BAD:
                    if name in seen:
                        self.issue_at(f"{path}.name", f"duplicate {'SLO' if kind == 'slo' else kind} name {name!r} (also {seen[name]})")
                        hv["name"] = _BAD
                    seen[name] = path
                if kind == "hypothesis":
                    self.check_hypothesis(path, hv, fault_names)

        ss = values.get("steady_state")
        if ss is not None and ss is not _BAD:
            slos = tuple(self.build(Slo, v) for _, v in self.slo_raw)
            values["steady_state"] = _BAD if _BAD in slos else dataclasses.replace(ss, slos=slos)
        elif ss is _BAD:
            for _, v in self.slo_raw:
                self.build(Slo, v)
        if values.get("hypotheses") not in (None, _BAD):
            hyps = tuple(self.build(Hypothesis, v) for _, v in self.hyp_raw)
            values["hypotheses"] = _BAD if _BAD in hyps else hyps
        if values.get("abort") not in (None, _BAD):
            aborts = tuple(self.build(AbortCondition, v) for _, v in self.abort_raw)
            values["abort"] = _BAD if _BAD in aborts else aborts

        self.check_timeline(values)
        self.check_custom_faults(values)

    def check_hypothesis(self, path: str, hv: dict[str, Any], fault_names: set[str] | None) -> None:
        sli = hv.get("sli", _BAD)
        if sli is _BAD:
            return
        during, fault = hv.get("during"), hv.get("fault")
        injection = ", ".join(catalog.INJECTION_SLIS)
        if sli in catalog.SAMPLE_SLIS:
            if "fault" in hv and fault is not None:
                self.issue_at(f"{path}.fault", f"'fault' is for injection SLIs ({injection}); {sli} is measured 'during' a fault or phase")
                hv["fault"] = _BAD
            if "agg" in hv and hv["agg"] is not _BAD:
                self.issue_at(f"{path}.agg", f"'agg' is for injection SLIs ({injection}), not {sli}")
                hv["agg"] = _BAD
            if "during" not in hv or during is None:
                if "fault" not in hv:
                    self.issue_at(path, f"missing required key 'during': {sli} is measured during a fault (its name) or a phase ({', '.join(catalog.PHASES)})")
                    hv["during"] = _BAD
            elif during is not _BAD and fault_names is not None and during not in catalog.PHASES and during not in fault_names:
                choices = [*catalog.PHASES, *sorted(fault_names)]
                self.issue_at(
                    f"{path}.during",
                    f"{_quote(during)} is neither a phase nor a declared fault{_suggest(during, choices)}; "
                    f"choose from: {', '.join(choices)}",
                )
                hv["during"] = _BAD
        else:
            if "during" in hv and during is not None:
                self.issue_at(f"{path}.during", f"{sli} is measured per injection of a fault: use 'fault:', not 'during:'")
                hv["during"] = _BAD
            if "fault" not in hv or fault is None:
                if "during" not in hv:
                    self.issue_at(path, f"missing required key 'fault': {sli} is measured per injection of the named fault")
                    hv["fault"] = _BAD
            elif fault is not _BAD and fault_names is not None and fault not in fault_names:
                declared = ", ".join(sorted(fault_names)) or "none"
                self.issue_at(f"{path}.fault", f"unknown fault {_quote(fault)}{_suggest(fault, fault_names)}; declared faults: {declared}")
                hv["fault"] = _BAD

    def check_timeline(self, values: dict[str, Any]) -> None:
        load = values.get("load", LoadSpec())
        load_end = None if load is _BAD else load.duration
        starts: list[tuple[float, str]] = []
        for path, fv in self.fault_raw:
            at, dur, rep = fv.get("at", _BAD), fv.get("duration", _BAD), fv.get("repeat", Repeat())
            if _BAD in (at, dur, rep):
                continue
            starts.append((at, path))
            if load_end is None:
                continue
            name = fv.get("name", "?")
            for i in range(rep.count):
                end = at + i * rep.every + dur
                if end >= load_end:
                    where = f"{path}.duration" if i == 0 else f"{path}.repeat"
                    label = f"fault window {i + 1} of {name!r}" if rep.count > 1 else f"fault {name!r}"
                    verb = "after the load ends" if end > load_end else "just as the load ends"
                    tail = "" if end > load_end else ", leaving no time to observe recovery"
                    self.issue_at(where, f"{label} ends at {_fmt_s(end)}, {verb} at {_fmt_s(load_end)}{tail}")
                    values["faults"] = _BAD
                    break
        if not starts:
            return
        first, first_path = min(starts)
        if first > 0:
            return
        users = []
        for path, sv in self.slo_raw:
            phases = sv.get("phases", Slo.__dataclass_fields__["phases"].default)
            if phases is not _BAD and "baseline" in phases:
                users.append(f"SLO {sv.get('name', path)!r}")
        for path, hv in self.hyp_raw:
            if hv.get("during") == "baseline":
                users.append(f"hypothesis {hv.get('name', path)!r}")
        if users:
            shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
            self.issue_at(
                f"{first_path}.at",
                f"a fault at 0s leaves no baseline, but the baseline phase is used by {shown}; start the first fault later",
            )


def _declares_file_cohorts(root: _Y) -> bool:
    """Whether the document gives load.data.cohort (a string), read from the tree before any section is decoded.

    The mix and every objective's ``cohort`` accept file cohort names only then, whatever order the
    sections (and the keys of ``load``) come in.
    """
    node = root
    for key in ("load", "data", "cohort"):
        if node.kind != "map" or key not in node.value:
            return False
        node = node.value[key][2]
    return node.kind == "scalar" and isinstance(node.value, str) and bool(node.value.strip())


def _file_cohort_problem(name: str, objective: bool) -> str | None:
    """Why ``name`` cannot be a cohort when load.data.cohort is given (None if it can)."""
    if objective and name == "clean":
        return "with load.data.cohort, clean requests are recorded under their file cohort; name a file cohort"
    if name in catalog.COHORTS or catalog.FILE_COHORT_PATTERN.fullmatch(name):
        return None
    fixed = catalog.normalise_cohort(name)
    hint = f" (did you mean {fixed!r}?)" if fixed and fixed not in catalog.COHORTS else ""
    return (f"{_quote(name)} is neither a built-in cohort nor a file cohort name: file cohorts are the load.data.cohort "
            f"column's values normalised to lowercase letters and digits joined by single '-'{hint}")


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    if context == "expected a single document in the stream":
        return "invalid YAML: expected a single document, found another one (remove the extra '---')"
    message = f"invalid YAML: {problem or context}"
    if problem and context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        message += f" ({context}{where})"
    return message
