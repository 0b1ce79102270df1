"""Issue 14 item 12: `chaosml history` never parses a stored run's YAML unboundedly (schema 2 not at all)."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from chaosml.history import list_runs
from chaosml.journal import JOURNAL_FILE, Journal
from chaosml.loader import load_experiment_text
from chaosml.records import JOURNAL_SCHEMA_V1

EXPERIMENT = """\
version: 1
title: bounded
load: {users: 1, duration: 1s}
faults:
  - {name: kill, type: pod-kill, at: 100ms, duration: 200ms, params: {service: model}}
"""
# billion laughs: 10 levels of 10 aliases each, 10**10 nodes once expanded
LAUGHS = 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
) + "title: *a9\n"


def _bounded_list_runs(reports: Path) -> list:
    # imported before measuring: history re-analyses a run without analysis.json
    import chaosml.analysis
    import chaosml.report.render

    assert chaosml.analysis.analyze and chaosml.report.render.report_run

    tracemalloc.start()
    t0 = time.monotonic()
    try:
        runs = list_runs(reports)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - t0 < 5.0
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MiB"
    return runs


def test_a_schema_2_journal_is_listed_from_its_data_without_parsing_its_yaml(tmp_path: Path) -> None:
    run_dir = tmp_path / "reports" / "run-2"
    run_dir.mkdir(parents=True)
    journal = Journal(run_dir, "run-2", load_experiment_text(EXPERIMENT, "e.yaml"), "e.yaml", LAUGHS)
    journal.update(status="completed", exit_code=0)
    journal.flush(force=True)
    (run,) = _bounded_list_runs(tmp_path / "reports")
    assert (run.run_id, run.title) == ("run-2", "bounded")


def test_a_crafted_schema_1_journal_goes_through_the_bounded_loader(tmp_path: Path) -> None:
    run_dir = tmp_path / "reports" / "run-1"
    run_dir.mkdir(parents=True)
    (run_dir / JOURNAL_FILE).write_text(json.dumps({
        "schema": JOURNAL_SCHEMA_V1, "run_id": "run-1", "status": "completed", "experiment_file": "e.yaml",
        "experiment_source": LAUGHS,
    }))
    assert _bounded_list_runs(tmp_path / "reports") == []  # refused (it does not validate), quickly
