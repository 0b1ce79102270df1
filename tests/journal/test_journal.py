"""The typed journal: the experiment stored as data round-trips, schema versions are checked, readers never re-parse YAML."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from chaosml.compare.runs import load_run
from chaosml.history import summarize
from chaosml.journal import (
    JOURNAL_FILE,
    JournalError,
    load,
    mark_partial,
    write_json_atomic,
)
from chaosml.loader import load_experiment
from chaosml.model.codec import CodecError, experiment_from_dict, experiment_to_dict
from chaosml.records import JOURNAL_SCHEMA, JOURNAL_SCHEMA_V1
from chaosml.report import render_report

ROOT = Path(__file__).resolve().parents[2]
OLD_RUN = ROOT / "tests" / "compare" / "fixtures" / "hardened"  # a schema 1 run (YAML text only)


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_experiment_round_trips_through_json_data(path: Path) -> None:
    experiment = load_experiment(path)
    data = json.loads(json.dumps(experiment_to_dict(experiment)))
    assert experiment_from_dict(data) == experiment


def test_decoding_errors_name_the_field_path() -> None:
    data = experiment_to_dict(load_experiment(ROOT / "experiments" / "network-latency.yaml"))
    data["faults"][0]["params"]["latency_ms"] = "slow"
    with pytest.raises(CodecError, match=r"^experiment\.faults\[0\]\.params\.latency_ms: expected int, got str$"):
        experiment_from_dict(data)
    data["faults"][0]["type"] = "no-such-fault"
    with pytest.raises(CodecError, match=r"^experiment\.faults\[0\]\.type: unknown fault type 'no-such-fault'; known: "):
        experiment_from_dict(data)


def test_a_schema_1_journal_still_loads() -> None:
    record = load(OLD_RUN)
    assert record.schema == JOURNAL_SCHEMA_V1
    assert record.experiment.title == "Short replica kill (hardened)"
    assert record.fault_events and record.fault_events[0].fault == "kill"
    assert load(OLD_RUN / JOURNAL_FILE).run_id == record.run_id


@pytest.mark.parametrize("schema", ["chaosml.journal/0", "chaosml.journal/3"])
def test_an_unsupported_schema_version_is_a_clear_error(tmp_path: Path, schema: str) -> None:
    data = json.loads((OLD_RUN / JOURNAL_FILE).read_text())
    (tmp_path / JOURNAL_FILE).write_text(json.dumps({**data, "schema": schema}))
    with pytest.raises(JournalError) as info:
        load(tmp_path)
    assert str(info.value) == (
        f"{tmp_path / JOURNAL_FILE}: journal schema {schema!r} is not supported; "
        f"chaosml {__import__('chaosml').__version__} reads {JOURNAL_SCHEMA} and {JOURNAL_SCHEMA_V1}"
    )


def test_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / JOURNAL_FILE).write_text("{}")
    with pytest.raises(JournalError, match="not a chaosml journal"):
        load(tmp_path)
    with pytest.raises(JournalError, match="no journal here"):
        load(tmp_path / "elsewhere")


def _current_run_with_unparseable_yaml(tmp_path: Path) -> Path:
    """The old run rewritten as a schema 2 journal whose YAML text no longer parses."""
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    document = load(run).to_dict()
    document["experiment_source"] = "title: [unclosed\n\tfaults: {{{"
    write_json_atomic(run / JOURNAL_FILE, document)
    return run


def test_readers_use_the_stored_experiment_not_the_yaml(tmp_path: Path) -> None:
    run = _current_run_with_unparseable_yaml(tmp_path)
    record = load(run)
    assert record.schema == JOURNAL_SCHEMA
    assert record.experiment == load(OLD_RUN).experiment
    analysis = render_report(run)  # the report re-renders
    assert analysis["title"] == "Short replica kill (hardened)" and (run / "report.md").is_file()
    assert load_run(run).experiment.release == "hardened"  # compare
    (run / "analysis.json").unlink()
    summary = summarize(run / JOURNAL_FILE)  # history re-analyses
    assert summary is not None and summary.total > 0 and summary.release == "hardened"


def test_the_record_round_trips_through_its_document(tmp_path: Path) -> None:
    run = _current_run_with_unparseable_yaml(tmp_path)
    record = load(run)
    write_json_atomic(run / JOURNAL_FILE, record.to_dict())
    assert load(run) == record


def test_mark_partial_only_touches_a_running_journal(tmp_path: Path) -> None:
    run = _current_run_with_unparseable_yaml(tmp_path)
    assert not mark_partial(run, "why")  # completed: left alone
    assert load(run).status == "completed"
    document = json.loads((run / JOURNAL_FILE).read_text())
    write_json_atomic(run / JOURNAL_FILE, {**document, "status": "running"})
    before = load(run)
    assert mark_partial(run, "the harness died")
    after = load(run)
    assert (after.status, after.reason) == ("partial", "the harness died")
    # issue 14 item 9: a 'running' journal with no live harness reads as interrupted
    assert before.status == "interrupted"
    assert dataclasses.replace(after, status=before.status, reason=before.reason) == before  # nothing else changed
