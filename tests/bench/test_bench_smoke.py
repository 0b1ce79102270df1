"""Smoke tests of the benchmark suite (benchmarks): every figure present and numeric; not timed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import REQUIRED, SECTIONS, main, render_table, run_suite
from benchmarks.common import Figure, SectionResult, percentile
from chaosml.load.distributed import merge_samples, worker_samples_file
from chaosml.records import SAMPLE_COLUMNS


def _check_doc(doc: dict, sections: list[str]) -> None:
    assert [s["name"] for s in doc["sections"]] == sections
    for s in doc["sections"]:
        assert s["error"] is None, s["details"].get("traceback", s["error"])
        if s["skipped"]:  # a tool it needs is missing (wrk/nginx): says why, measures nothing
            assert s["skipped"].startswith("skipped: ") and s["figures"] == []
            continue
        names = {f["name"] for f in s["figures"]}
        assert set(REQUIRED[s["name"]]) <= names
        for f in s["figures"]:
            assert isinstance(f["value"], int | float) and math.isfinite(f["value"]), f
            assert f["met"] in (True, False, None)
            if f["target"] is not None:
                assert f["met"] is not None, f
        ctx = s["context"]
        assert ctx["before"]["cpu_count"] and len(ctx["before"]["loadavg"]) == 3
        assert len(ctx["after"]["loadavg"]) == 3


def test_figure_met_and_table() -> None:
    res = SectionResult("x", "x")
    res.add("fast", 0.5, "s", "<=", 1.0)
    res.add("slow", 2.0, "s", "<=", 1.0)
    res.add("info", 3, "req")
    assert [f.met for f in res.figures] == [True, False, None]
    table = render_table([res])
    assert "fast" in table and "NO" in table and "<= 1" in table
    assert Figure("x", "missing", None, "s", "<=", 1.0).met is None
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([1, 2, 3, 4], 100) == 4


def test_merge_samples_sorts_and_counts(tmp_path: Path) -> None:
    base = tmp_path / "samples.csv"
    header = ",".join(SAMPLE_COLUMNS)
    rows = {0: [3.0, 1.0, 5.0], 1: [2.0, 4.0]}
    for i, ts in rows.items():
        lines = [header] + [f"{t},1.0,200,ok,primary,1,0.9,1,clean,1,model-{i},v," for t in ts]  # drift empty
        worker_samples_file(base, i).write_text("\n".join(lines) + "\n")
    # a torn last line (worker killed mid-write) is dropped, not parsed
    with open(worker_samples_file(base, 1), "a") as f:
        f.write("6.0,1.0,20")
    out = merge_samples([worker_samples_file(base, i) for i in rows], base)
    assert out["rows"] == 5 and out["dropped_lines"] == 1
    lines = base.read_text().splitlines()
    assert lines[0] == header
    assert [float(x.split(",")[0]) for x in lines[1:]] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert worker_samples_file(base, 1).name == "samples.worker-1.csv"


#: the sections that need no reference stack; the two tests below run every section of SECTIONS once between them
WITHOUT_STACK = ["load", "proxy", "analysis", "scaleout"]


def test_quick_sections_without_the_stack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Load driver, proxy, analysis and scale-out in --quick mode (no reference stack)."""
    only = WITHOUT_STACK
    doc, path = run_suite(quick=True, only=only, out_dir=tmp_path)
    _check_doc(doc, only)
    assert json.loads(path.read_text())["mode"] == "quick"
    out = capsys.readouterr().out
    for name in only:
        for fig in REQUIRED[name]:
            assert fig in out


@pytest.mark.slow
def test_quick_suite_every_other_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every section the test above does not run (real runs on the local reference stack included) via the CLI
    entry, --quick: with it, every section of the suite once (a section run twice checked nothing new)."""
    rest = [s for s in SECTIONS if s not in WITHOUT_STACK]
    assert rest and set(rest) | set(WITHOUT_STACK) == set(SECTIONS)
    assert main(["--quick", "--only", ",".join(rest), "--out-dir", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*-quick.json")
    _check_doc(json.loads(path.read_text()), rest)
    assert "figures in" in capsys.readouterr().out


def test_load_config_record_flag(tmp_path: Path) -> None:
    from chaosml.load.config import LoadConfig

    config = LoadConfig(
        target_url="http://127.0.0.1:1", path="/predict", users=1, spawn_rate=1.0, duration_s=1.0,
        rate_per_user=None, request_timeout_s=1.0, mix={"clean": 1.0}, payloads_file="p.json",
        samples_file="s.csv", record=False,
    )
    assert LoadConfig.from_json(config.to_json()).record is False
    assert any(i.startswith("record:") for i in LoadConfig(**{**config.__dict__, "record": "no"}).validate())
