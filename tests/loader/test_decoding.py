"""Tests for chaosml.decoding: typed dataclasses (Literal, optional, nested), durations, composer limits, issue lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from chaosml.decoding import BAD, MAX_DEPTH, MAX_NODES, Decoder, Node, parse_duration


@dataclass(frozen=True)
class Inner:
    mode: Literal["one", "all", "fixed"] = "one"
    value: float | None = None


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = Inner()
    count: int = 1
    wait: float = field(default=0.0, metadata={"duration": True})
    tags: tuple[str, ...] = ()


def _decode(text: str, cls: type = Outer) -> tuple[object, list[str]]:
    d = Decoder("f.yaml")
    root = d.compose(text)
    assert root is not None, [str(i) for i in d.issues]
    return d.dataclass_of(cls)(root, ""), [str(i) for i in d.issues]


def test_dataclass_from_type_hints() -> None:
    value, issues = _decode("name: a\ninner: {mode: all, value: 2}\ncount: 3\nwait: 1m30s\ntags: [x, y]\n")
    assert issues == []
    assert value == Outer(name="a", inner=Inner(mode="all", value=2.0), count=3, wait=90.0, tags=("x", "y"))


def test_literal_choice_with_did_you_mean() -> None:
    value, issues = _decode("name: a\ninner:\n  mode: al\n")
    assert value is BAD
    assert issues == ["f.yaml:3:9: inner.mode: must be one of one, all, fixed, got a string ('al') (did you mean 'all'?)"]
    _, issues = _decode("name: a\ninner: {mode: 5}\n")
    assert issues == ["f.yaml:2:15: inner.mode: must be one of one, all, fixed, got an integer (5)"]


def test_optional_accepts_null_and_checks_the_inner_type() -> None:
    value, issues = _decode("name: a\ninner: {value: null}\n")
    assert issues == [] and value == Outer(name="a")
    _, issues = _decode("name: a\ninner: {value: lots}\n")
    assert issues == ["f.yaml:2:16: inner.value: expected a number, got a string ('lots')"]


def test_every_issue_is_collected_at_once() -> None:
    value, issues = _decode("nme: a\ncount: many\nwait: 5 parsecs\ninner: {mode: fixd, valu: 1}\ntags: [x, [y]]\n")
    assert value is BAD
    assert issues == [
        "f.yaml:1:1: nme: unknown key 'nme' (did you mean 'name'?)",
        "f.yaml:2:8: count: expected a whole number, got a string ('many')",
        "f.yaml:3:7: wait: invalid duration '5 parsecs': use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds",
        "f.yaml:4:15: inner.mode: must be one of one, all, fixed, got a string ('fixd') (did you mean 'fixed'?)",
        "f.yaml:4:21: inner.valu: unknown key 'valu' (did you mean 'value'?)",
        "f.yaml:5:11: tags[1]: expected a string, got a list",
        "f.yaml:1:1: missing required key 'name'",
    ]


def test_nodes_carry_line_column_and_path() -> None:
    d = Decoder("f.yaml")
    root = d.compose("a:\n  b: [1, x]\n")
    assert root is not None and root.kind == "map"
    b = root.value["a"][2].value["b"][2]
    assert (b.kind, b.line, b.col, b.path) == ("seq", 2, 6, "a.b")
    assert b.value[1] == Node("scalar", "x", 2, 10, "x", "a.b[1]")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("20s", 20.0), ("1.5m", 90.0), ("1h", 3600.0), ("1m30s", 90.0), (7, 7.0), ("0.5", 0.5)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5s", "invalid duration '-5s': must not be negative"),
        ("5 days", "invalid duration '5 days': use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds"),
        (float("nan"), "invalid duration nan: must be a finite number of seconds"),
        (True, "invalid duration True: use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds"),
    ],
)
def test_parse_duration_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


def test_duration_converter_rejects_zero_when_positive() -> None:
    d = Decoder("f.yaml")
    root = d.compose("t: 0s\n")
    assert root is not None
    assert d.duration(positive=True)(root.value["t"][2], "t") is BAD
    assert [str(i) for i in d.issues] == ["f.yaml:1:4: t: must be longer than 0s, got 0s"]


def test_composer_refuses_alias_bombs_and_deep_nesting() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 6):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    d = Decoder("f.yaml")
    assert d.compose("\n".join(lines) + "\n") is None
    assert len(d.issues) == 1
    assert d.issues[0].message == (
        f"aliases expand to more than {MAX_NODES} nodes (a 'billion laughs' document?); refusing to read it"
    )

    d = Decoder("f.yaml")
    assert d.compose("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)) is None
    assert [str(i) for i in d.issues] == [f"f.yaml:1:{MAX_DEPTH + 1}: nested more than {MAX_DEPTH} levels deep; refusing to read it"]


def test_tags_duplicate_keys_and_merge_keys() -> None:
    d = Decoder("f.yaml")
    root = d.compose("base: &b {x: 1}\nuse:\n  <<: *b\n  y: 2\nuse2: !!python/object x\nbase: 3\n")
    assert root is not None
    assert [str(i) for i in d.issues] == [
        "f.yaml:5:7: use2: unsupported tag '!!python/object': only plain YAML values are read",
        "f.yaml:6:1: base: duplicate key 'base' (first at line 1)",
    ]
    assert d.plain()(root.value["use"][2], "use") == {"y": 2, "x": 1}
