"""Ground truth for the request count: every request the load sent is counted, also one sent before the recorded load start."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pandas as pd
from analysis_synth import T0, experiment, journal, samples
from runner_doubles import RecordingTarget, scripted_load

from chaosml.analysis import analyze
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.runner import Runner


def test_a_request_sent_before_the_recorded_load_start_is_counted_not_dropped() -> None:
    # issue 15 item 9: the console said N requests and the report N - 1 (a sample sent before the recorded start)
    df = samples(30.0, 20.0)
    early = df.iloc[[0]].assign(t=T0 - 0.004)  # 4 ms before the start the journal recorded
    df = pd.concat([early, df], ignore_index=True)
    an = analyze(experiment(rate=20.0), journal(duration=30.0, injections=[{"fault": "kill", "apply": 10.0, "recover": 15.0}]), df)
    phases = {p.phase.name: p for p in an.phases}
    assert phases["all"].slis["requests"] == len(df) == 601
    assert phases["baseline"].slis["requests"] == 201  # the early request is baseline traffic


def test_the_runner_takes_the_load_start_the_load_process_recorded(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the runner computed time.time() - elapsed_s when it READ the first progress line: late by the pipe's delay
    text = "version: 1\ntitle: start\nload: {users: 1, duration: 1s}\n"
    started = time.time() - 0.25  # as the load process recorded it, 250 ms before it says elapsed 0

    fake_load = scripted_load([{"type": "progress", "started_at": started, "elapsed_s": 0.0, "requests": 0}], tail_s=1.0)


    monkeypatch.setattr(Runner, "_prepare_payloads", lambda self: None)
    monkeypatch.setattr(Runner, "_start_load", fake_load)
    runner = Runner(load_experiment_text(text, "s.yaml"), experiment_file="s.yaml", experiment_source=text,
                    reports_dir=tmp_path / "reports", ledger=Ledger(tmp_path / "ledger.jsonl"), out=io.StringIO(),
                    target_factory=lambda exp, run_dir, on_event: RecordingTarget())
    result = runner.run()
    assert result.status == "completed", result.reason
    assert json.loads((result.run_dir / "journal.json").read_text())["load"]["started_at"] == started
