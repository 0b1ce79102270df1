"""What the runner says and how it ends before the load: the target it really starts, and a probe answer that is no model output (exit 4)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from testutil import json_server

from chaosml.errors import EXIT_INVALID
from chaosml.journal import load
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.runner import Runner

CUSTOM = """\
version: 1
title: own stack
target:
  platform: local
  services:
    - name: scorer
      command: ["{python}", server.py, "{port}"]
      replicas: 2
    - name: features
      command: ["{python}", fs.py, "{port}"]
  entry: {service: scorer}
response:
  prediction: prediction
  confidence: confidence
  served_by: not-exposed
  model_version: not-exposed
  replica: not-exposed
load: {users: 1, duration: 2s}
"""


class ServingTarget:
    """A target that starts nothing: its entry is a server the test runs."""

    platform = "local"

    def __init__(self, entry_url: str) -> None:
        self.entry_url = entry_url
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def describe(self) -> dict[str, Any]:
        return {"platform": "test"}

    def groups(self) -> list[str]:
        return []


def _run(tmp_path: Path, answer: bytes, out: io.StringIO) -> tuple[Runner, Any]:
    started: list[str] = []
    with json_server(answer) as srv:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        runner = Runner(
            load_experiment_text(CUSTOM, "own.yaml"), experiment_file="own.yaml", experiment_source=CUSTOM,
            reports_dir=tmp_path / "reports", ledger=Ledger(tmp_path / "ledger.jsonl"), out=out,
            target_factory=lambda exp, run_dir, on_event: ServingTarget(url),
        )
        runner._start_load = lambda: started.append("load")  # type: ignore[method-assign]
        runner._drive = lambda: None  # type: ignore[method-assign]
        result = runner.run()
    return runner, (result, started)


def test_the_console_names_the_users_own_stack_not_the_reference_profile(tmp_path: Path) -> None:
    # issue 15 item 9: "starting target (local, profile hardened)" was said for a user's own services
    out = io.StringIO()
    _run(tmp_path, b'{"prediction": 1, "confidence": 0.9}', out)
    said = out.getvalue()
    assert "starting target (local, your own stack: scorer x2, features x1) ..." in said, said
    assert "profile" not in said


def test_a_probe_answer_that_is_no_model_output_ends_the_run_with_exit_4_and_the_response(tmp_path: Path) -> None:
    # issue 15 item 4: the probe's answer fails the sanity checks -> exit 4 with the offending response, no load
    out = io.StringIO()
    bad = b'{"prediction": 1, "confidence": 2.0}'
    runner, (result, started) = _run(tmp_path, bad, out)
    assert result.exit_code == EXIT_INVALID and result.status == "invalid", result
    assert "outside [0, 1]" in (result.reason or "") and bad.decode() in (result.reason or "")
    assert "nothing was injected" in (result.reason or "")
    assert started == []  # the load never started
    record = load(result.run_dir)
    assert record.status == "invalid" and record.exit_code == EXIT_INVALID and record.error is None
    assert bad.decode() in out.getvalue()


def test_the_cli_exits_4_for_a_probe_answer_that_is_no_model_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from chaosml import cli

    runner, _ = _run(tmp_path, b'{"prediction": 1, "confidence": [0.7, 0.9]}', io.StringIO())
    monkeypatch.setattr(runner, "run", lambda: runner.result)
    assert cli._run_and_report(runner, debug=False) == EXIT_INVALID
    printed = capsys.readouterr().out
    assert "exit 4: invalid input; nothing was injected" in printed
    assert json.loads((runner.run_dir / "journal.json").read_text())["exit_code"] == EXIT_INVALID
