"""``chaosml bench`` (chaosml/bench.py): its options match the suite's sections; without a source tree it says so."""

from __future__ import annotations

import sys

import pytest

import benchmarks
import chaosml.bench
from chaosml.bench import build_parser
from chaosml.cli import main as cli_main
from chaosml.errors import EXIT_INTERNAL


def test_only_help_names_every_section() -> None:
    only = next(a for a in build_parser()._actions if a.dest == "only")
    assert only.help is not None
    assert only.help.split(": ", 1)[1].split(", ") == list(benchmarks.SECTIONS)


def test_without_a_source_tree_bench_says_where_the_suite_is(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "benchmarks")
    monkeypatch.setattr(chaosml.bench, "_source_tree", lambda: None)  # as for an installed package
    assert cli_main(["bench", "--quick", "--only", "proxy"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err == (
        "chaosml: bench: the benchmark suite ships with the source tree (benchmarks/), not with the installed "
        "package; run `chaosml bench` or `python -m benchmarks` from a checkout of chaosml\n"
    )
