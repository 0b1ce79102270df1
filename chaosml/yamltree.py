"""YAML text -> a tree of located :class:`Node` values, read by a bounded safe composer; used by chaosml.decoding.

No tag is ever evaluated: the text is composed (never constructed) with :class:`BoundedLoader`,
which refuses documents nested deeper than :data:`MAX_DEPTH` or whose aliases would expand past
:data:`MAX_NODES` nodes (billion laughs) while it reads them, before anything is built. Every
value keeps its 1-based line and column and its field path; duplicate keys, non-string keys and
non-standard tags become issues.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.nodes import Node as YamlNode

from chaosml.errors import Issue

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_NODES", "BoundedLoader", "Node", "compose_tree", "describe", "join_path", "quote", "short"]

#: Larger files are refused before parsing.
MAX_FILE_BYTES = 1024 * 1024
#: Most YAML nodes a document may hold, counting every alias as the nodes it expands to.
MAX_NODES = 10_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"


class _Refused(Exception):
    """The composer stopped reading: too many nodes, too deep, or a recursive alias."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts nodes, alias expansions included, and bounds nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._count = 0
        self._depth = 0
        self._aliases = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: YamlNode | None, index: Any) -> YamlNode | None:
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
class Node:
    """A located YAML value.

    ``kind`` is "map" (``value``: key -> (key line, key column, Node)), "seq" (``value``: list of
    Node), "scalar" (``value``: str, int, float, bool or None) or "bad" (already reported).
    """

    kind: str
    value: Any
    line: int  # 1-based
    col: int  # 1-based
    text: str = ""  # a scalar's source text
    path: str = ""  # field path in the document, e.g. faults[0].params


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


def short(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters with "..." (for quoting user values in messages)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote(value: str) -> str:
    """A user value quoted for a message: repr of :func:`short`."""
    return repr(short(value))


def describe(y: Node) -> str:
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
        return f"an integer ({short(y.text)})"
    if isinstance(v, float):
        return f"a number ({short(y.text)})"
    return f"a string ({quote(v)})"


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def join_path(path: str, key: str) -> str:
    """Extend a field path; a key that is not a plain word is shown quoted (one line, unambiguous)."""
    if not _PLAIN_KEY.fullmatch(key):
        key = "[" + json.dumps(key, ensure_ascii=False) + "]"
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def compose_tree(text: str, filename: str, empty: str = "the file is empty") -> tuple[Node | None, list[Issue]]:
    """The document's top-level mapping as a located tree (None if unreadable), and the issues found.

    ``empty`` is the message for a document with no content.
    """
    builder = _TreeBuilder(filename)
    return builder.compose(text, empty), builder.issues


class _TreeBuilder:
    """Composes one document and turns its yaml nodes into :class:`Node` values, recording issues."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.issues: list[Issue] = []

    def issue(self, at: Node | tuple[int, int], path: str, message: str) -> None:
        line, col = (at.line, at.col) if isinstance(at, Node) else at
        self.issues.append(Issue(self.filename, line, col, path, message))

    def compose(self, text: str, empty: str) -> Node | None:
        try:
            node = yaml.compose(text, Loader=BoundedLoader)
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
            self.issue((1, 1), "", empty)
            return None
        root = self.tree(node, "")
        if root.kind == "bad":
            return None
        if root.kind != "map":
            self.issue(root, "", f"expected a mapping at the top of the document, got {describe(root)}")
            return None
        return root

    def tree(self, node: YamlNode, path: str) -> Node:
        """A yaml node -> Node; aliases are expanded (their size was bounded by the composer)."""
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
        if isinstance(node, ScalarNode):
            builder = _SCALAR_BUILDERS.get(node.tag)
            if builder is None:
                self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
                return Node("bad", None, line, col, node.value, path)
            try:
                value = builder(node)
            except (ValueError, KeyError, TypeError, OverflowError):  # "!!int abc", "!!bool maybe", 5000 digits
                self.issue((line, col), path, f"cannot read {quote(node.value)} as {_tag_name(node.tag)}")
                return Node("bad", None, line, col, node.value, path)
            return Node("scalar", value, line, col, node.value, path)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
                return Node("bad", None, line, col, "", path)
            return Node("seq", [self.tree(n, f"{path}[{i}]") for i, n in enumerate(node.value)], line, col, "", path)
        assert isinstance(node, MappingNode)
        if node.tag != _TAG + "map":
            self.issue((line, col), path, f"unsupported tag {_tag_name(node.tag)!r}: only plain YAML values are read")
            return Node("bad", None, line, col, "", path)
        items: dict[str, tuple[int, int, Node]] = {}
        merged: dict[str, tuple[int, int, Node]] = {}
        for key_node, value_node in node.value:
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if isinstance(key_node, ScalarNode) and key_node.tag == _TAG + "merge":
                self.merge(value_node, path, merged)
                continue
            key = self.tree(key_node, path)
            if key.kind == "bad":
                continue
            if key.kind != "scalar" or not isinstance(key.value, str):
                self.issue(kpos, path, f"keys must be strings, got {describe(key)}")
                continue
            cpath = join_path(path, key.value)
            if key.value in items:
                first = items[key.value]
                self.issue(kpos, cpath, f"duplicate key {key.value!r} (first at line {first[0]})")
                continue
            items[key.value] = (kpos[0], kpos[1], self.tree(value_node, cpath))
        for mkey, item in merged.items():
            items.setdefault(mkey, item)
        return Node("map", items, line, col, "", path)

    def merge(self, node: YamlNode, path: str, into: dict[str, tuple[int, int, Node]]) -> None:
        """A YAML merge key (``<<: *defaults``): earlier sources win, explicit keys win over all."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            y = self.tree(source, path)
            if y.kind == "bad":
                continue
            if y.kind != "map":
                self.issue(y, path, f"'<<' merges mappings only, got {describe(y)}")
                continue
            for key, item in y.value.items():
                into.setdefault(key, item)


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
