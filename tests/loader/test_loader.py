"""Tests for chaosml.loader: exact error lines for bad files, the model built from good ones, fuzzing."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testutil import doc_paths

from chaosml.errors import ExperimentError
from chaosml.faults.podkill import PodKillParams
from chaosml.loader import (
    MAX_FILE_BYTES,
    load_experiment,
    load_experiment_text,
    parse_duration,
)
from chaosml.model import Experiment, KubernetesSpec, Repeat
from chaosml.plan import build_plan, render_plan

HERE = Path(__file__).parent
INVALID = HERE / "invalid"
VALID = HERE / "valid"
REPO = HERE.parent.parent


def _errors(path: str) -> list[str]:
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize("name", sorted(p.stem for p in INVALID.glob("*.yaml")))
def test_invalid_file_reports_exact_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)  # the loader names the file as given: keep the lines stable
    expected = (INVALID / f"{name}.errors").read_text(encoding="utf-8").splitlines()
    assert _errors(f"{name}.yaml") == expected


def test_every_invalid_file_has_expected_errors() -> None:
    yamls = {p.stem for p in INVALID.glob("*.yaml")}
    errors = {p.stem for p in INVALID.glob("*.errors")}
    assert yamls == errors


def test_error_message_holds_every_issue_one_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    with pytest.raises(ExperimentError) as info:
        load_experiment("many_mistakes.yaml")
    assert len(info.value.issues) > 20
    assert str(info.value).splitlines() == [str(i) for i in info.value.issues]
    assert info.value.exit_code == 4


def test_alias_bomb_is_refused_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(INVALID)
    start = time.perf_counter()
    errors = _errors("alias_bomb.yaml")
    assert time.perf_counter() - start < 1.0
    assert len(errors) == 1 and "billion laughs" in errors[0]


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ExperimentError) as info:
        load_experiment_text("title: x\nloop: &a [*a]\n", "rec.yaml")
    assert [str(i) for i in info.value.issues] == [
        "rec.yaml:2:11: recursive alias: a node cannot contain itself"
    ]


def test_file_larger_than_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("title: big\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    with pytest.raises(ExperimentError) as info:
        load_experiment(big)
    assert [i.message for i in info.value.issues] == ["the file is larger than 1024 KiB; refusing to read it"]
    with pytest.raises(ExperimentError):
        load_experiment_text(big.read_text(encoding="utf-8"))


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"title: ok\nrelease: caf\xe9\n")
    with pytest.raises(ExperimentError) as info:
        load_experiment(bad)
    assert [(i.line, i.column, i.message) for i in info.value.issues] == [(2, 13, "the file is not UTF-8 text")]
    with pytest.raises(ExperimentError) as info:
        load_experiment(tmp_path / "nope.yaml")
    assert info.value.issues[0].message.startswith("cannot read the file")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("20s", 20.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        (" 2s ", 2.0),
        ("15", 15.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "invalid duration 'abc': use a number with ms, s, m or h"),
        ("-5s", "invalid duration '-5s': must not be negative"),
        (-1, "invalid duration -1: must not be negative"),
        (float("nan"), "invalid duration nan: must be a finite number"),
        (True, "invalid duration True"),
        ("5 s", "invalid duration '5 s'"),
        ("s", "invalid duration 's'"),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        parse_duration(value)


# -- valid files ---------------------------------------------------------------------------------


def test_full_example_parses_into_the_expected_model() -> None:
    exp = load_experiment(VALID / "full.yaml")
    assert isinstance(exp, Experiment)
    assert exp.title == "Replica kills and a percent kill under mixed load"
    assert exp.release == "v2-hardened"
    assert exp.target.replicas == 4 and exp.target.restart_delay == 1.5
    assert exp.target.kubernetes is None
    assert exp.load.duration == 120.0 and exp.load.spawn_rate == 20.0 and exp.load.seed == 7
    assert dict(exp.load.mix) == {"clean": 0.9, "missing-features": 0.05, "out-of-range": 0.05}
    ss = exp.steady_state
    assert (ss.window, ss.hold, ss.confidence_threshold, ss.min_samples) == (1.0, 5, 0.75, 30)
    assert [s.name for s in ss.slos] == ["availability", "p99-latency", "oor-rejected"]
    assert ss.slos[1].phases == ("baseline", "after")  # default
    assert ss.slos[2].cohort == "out-of-range" and ss.slos[2].phases == ("all",)
    h = {x.name: x for x in exp.hypotheses}
    assert h["available-during-kill"].during == "kill-one" and h["available-during-kill"].fault is None
    assert h["recovers-fast"].agg == "median" and h["recovers-fast"].target == 10.0
    assert h["detects-fast"].min_samples == 5 and h["detects-fast"].agg == "max"
    kill_one, kill_half = exp.faults
    assert kill_one.repeat == Repeat(count=3, every=30.0)
    assert kill_one.params == PodKillParams(service="model", mode="one")
    assert kill_one.windows() == [(0, 20.0, 30.0), (1, 50.0, 60.0), (2, 80.0, 90.0)]
    assert kill_half.params.mode == "percent" and kill_half.params.value == 50.0
    assert kill_half.params.signal == "SIGTERM" and kill_half.repeat == Repeat()
    assert exp.abort[0].for_ == 10.0 and exp.abort[1].for_ == 5.0
    assert dict(exp.rollbacks[0].params) == {"timeout": 30.0}
    assert dict(exp.rollbacks[1].params) == {}


def test_experiment_is_deeply_immutable() -> None:
    exp = load_experiment(VALID / "full.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.title = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        exp.faults[0].params.mode = "all"  # type: ignore[misc]
    assert isinstance(exp.faults, tuple) and isinstance(exp.hypotheses, tuple)
    assert isinstance(exp.steady_state.slos, tuple) and isinstance(exp.steady_state.slos[0].phases, tuple)
    assert isinstance(exp.load.mix, MappingProxyType)
    with pytest.raises(TypeError):
        exp.load.mix["clean"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        exp.rollbacks[0].params["timeout"] = 1.0  # type: ignore[index]
    hash(exp.faults[0].params)


def test_kubernetes_example_with_anchor_and_merge_key() -> None:
    exp = load_experiment(VALID / "kubernetes.yaml")
    assert exp.target.platform == "kubernetes"
    assert exp.target.kubernetes == KubernetesSpec(
        context="kind-chaosml", namespace="chaosml", allowed_contexts=("kind-*", "minikube")
    )
    assert [(f.name, f.at, f.duration) for f in exp.faults] == [("kill-1", 10.0, 5.0), ("kill-2", 30.0, 5.0)]
    assert exp.faults[1].params == PodKillParams(mode="fixed", value=2.0)


def test_kubernetes_nodes_name_each_nodes_docker_engine_and_commands() -> None:
    from chaosml.model import NodeAccessSpec
    from chaosml.model.codec import experiment_from_dict, experiment_to_dict

    exp = load_experiment_text(
        "title: k\ntarget:\n  platform: kubernetes\n  kubernetes:\n    nodes:\n"
        "      127.0.0.2: {docker_host: 'unix:///run/n2/docker.sock', stop: [kill, -STOP, '42'], start: [kill, -CONT, '42']}\n"
        "      worker: {docker_host: 'ssh://root@worker'}\n"
        "      kind-worker: {exec: [ssh, node-1]}\n")
    assert exp.target.kubernetes is not None
    assert dict(exp.target.kubernetes.nodes) == {
        "127.0.0.2": NodeAccessSpec("unix:///run/n2/docker.sock", ("kill", "-STOP", "42"), ("kill", "-CONT", "42")),
        "worker": NodeAccessSpec("ssh://root@worker"),
        "kind-worker": NodeAccessSpec(exec=("ssh", "node-1"))}
    assert experiment_from_dict(experiment_to_dict(exp)) == exp  # as the journal stores it


def test_minimal_file_gets_every_default() -> None:
    assert load_experiment(VALID / "minimal.yaml") == Experiment(title="Only a title")


def test_kubernetes_platform_without_settings_gets_the_defaults() -> None:
    exp = load_experiment_text("title: k\ntarget: {platform: kubernetes}\n")
    assert exp.target.kubernetes == KubernetesSpec()


def test_text_and_file_give_the_same_experiment() -> None:
    path = VALID / "full.yaml"
    assert load_experiment_text(path.read_text(encoding="utf-8"), "full.yaml") == load_experiment(path)


def test_issue_names_the_file_as_given() -> None:
    with pytest.raises(ExperimentError) as info:
        load_experiment_text("title: t\nload: {users: many}\n", "journal:experiment.yaml")
    assert str(info.value) == "journal:experiment.yaml:2:15: load.users: expected a whole number, got a string ('many')"


def test_windows_overlapping_across_faults_are_allowed() -> None:
    text = """
title: overlap
faults:
  - {name: a, type: pod-kill, at: 10s, duration: 20s}
  - {name: b, type: pod-kill, at: 15s, duration: 20s}
"""
    assert [f.name for f in load_experiment_text(text).faults] == ["a", "b"]


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path: Path) -> None:
    assert isinstance(load_experiment(path), Experiment)


# -- fuzzing ---------------------------------------------------------------------------------------

_BASE = yaml.safe_load((VALID / "full.yaml").read_text(encoding="utf-8"))
_KEYS = sorted(
    {"name", "type", "at", "duration", "repeat", "count", "every", "params", "mode", "value", "sli", "op",
     "target", "during", "fault", "agg", "phases", "cohort", "for", "mix", "clean", "kubernetes", "platform",
     "namespace", "timeout", "<<"}
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["20s", "-1s", "0", "0s", "1h", "1e309", "fast", "pod-kill", "pod-kil", "baseline", "kill-one",
         "kill-half", ">=", "", "kubernetes", "percent", "fixed", "mttr_s", "accuracy", "wait-ready", "é✓"]
    ),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(max_size=6)), children, max_size=3),
    ),
    max_leaves=8,
)


_ALL_PATHS = doc_paths(_BASE)


def _mutate(doc: object, path: tuple, op: str, value: object, key: str) -> object:
    if not path:
        return value
    import copy

    doc = copy.deepcopy(doc)
    parent = doc
    for p in path[:-1]:
        parent = parent[p]  # type: ignore[index]
    last = path[-1]
    if op == "replace":
        parent[last] = value  # type: ignore[index]
    elif op == "delete":
        del parent[last]  # type: ignore[attr-defined]
    elif isinstance(parent[last], dict):  # type: ignore[index]
        parent[last][key] = value  # type: ignore[index]
    else:
        parent[last] = value  # type: ignore[index]
    return doc


def _check_outcome(text: str) -> None:
    try:
        exp = load_experiment_text(text, "fuzz.yaml")
    except ExperimentError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.line >= 1 and issue.column >= 1 and issue.file == "fuzz.yaml"
            assert "\n" not in str(issue)
    else:
        assert isinstance(exp, Experiment)
        for f in exp.faults:
            assert f.at >= 0 and f.duration > 0 and math.isfinite(f.at)
        assert render_plan(build_plan(exp)).endswith("dry run: nothing was injected\n")


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutations=st.lists(
        st.tuples(
            st.sampled_from(_ALL_PATHS),
            st.sampled_from(["replace", "replace", "delete", "add"]),
            _VALUES,
            st.one_of(st.sampled_from(_KEYS), st.text(max_size=6)),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_documents_load_or_raise_experiment_error(mutations: list) -> None:
    doc: object = _BASE
    for path, op, value, key in mutations:
        try:
            doc = _mutate(doc, path, op, value, key)
        except (KeyError, IndexError, TypeError):
            continue  # the path vanished after an earlier mutation
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    _check_outcome(text)


@settings(max_examples=300, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=10_000),
    cut=st.integers(min_value=0, max_value=20),
    insert=st.lists(st.sampled_from([*":-[]{}&*!|>'\"#,? \n\tx0", "!!python/object ", "*a", "&a "]), max_size=6).map("".join),
)
def test_corrupted_text_loads_or_raises_experiment_error(position: int, cut: int, insert: str) -> None:
    text = (VALID / "full.yaml").read_text(encoding="utf-8")
    position %= len(text)
    _check_outcome(text[:position] + insert + text[position + cut :])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_experiment_error(text: str) -> None:
    _check_outcome(text)
