"""Game-day files: valid ones load; every problem is reported at once with file:line:col and field path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from chaosml.cli import main
from chaosml.errors import ExperimentError
from chaosml.gameday import load_gameday

REPO = Path(__file__).resolve().parents[2]
SHORT = """\
version: 1
title: Short {name}
release: hardened
target: {{platform: local, profile: hardened, replicas: 3, restart_delay: 1s}}
load: {{users: 4, spawn_rate: 20, rate_per_user: 5, duration: 12s}}
hypotheses:
  - {{name: available, during: kill, sli: success_ratio, op: ">=", target: 0.95}}
faults:
  - {{name: kill, type: pod-kill, at: 4s, duration: 3s, params: {{service: model, mode: one}}}}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _errors(path: Path) -> list[str]:
    with pytest.raises(ExperimentError) as info:
        load_gameday(path)
    return [str(i) for i in info.value.issues]


@pytest.mark.parametrize("path", sorted((REPO / "experiments" / "gamedays").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_gamedays_load(path: Path) -> None:
    g = load_gameday(path)
    assert g.experiments and g.schedule is not None


def test_valid_gameday(tmp_path: Path) -> None:
    _write(tmp_path, "exp/a.yaml", SHORT.format(name="a"))
    _write(tmp_path, "exp/b.yaml", SHORT.format(name="b"))
    g = load_gameday(
        _write(
            tmp_path,
            "gd/day.yaml",
            "name: day\nrelease: r1\non_failure: stop\nexperiments:\n  - ../exp/a.yaml\n"
            "  - {path: ../exp/b.yaml, weight: 2, severity: {kill: critical}}\n"
            "cohort_weights: {missing-features: 3}\n"
            "schedule:\n  cron: '*/5 * * * *'\n  timezone: Europe/Paris\n  concurrency: allow\n  history_limit: 5\n"
            "  blackouts:\n    - {start: '2026-01-01T00:00', end: '2026-01-02T00:00'}\n"
            "    - {weekdays: [fri], from: '22:00', to: '06:00', reason: night}\n",
        )
    )
    assert [e.source for e in g.experiments] == ["../exp/a.yaml", "../exp/b.yaml"]
    assert g.experiments[0].path == (tmp_path / "exp" / "a.yaml").resolve()
    assert g.experiments[0].severity_of("kill") == "medium"  # pod-kill's default
    assert g.experiments[1].severity_of("kill") == "critical" and g.experiments[1].weight == 2
    assert g.on_failure == "stop" and g.cohort_weights["missing-features"] == 3
    s = g.schedule
    assert (s.cron, s.timezone, s.concurrency, s.history_limit) == ("*/5 * * * *", "Europe/Paris", "allow", 5)
    assert str(s.blackouts[0].start.tzinfo) == "Europe/Paris"
    assert (s.blackouts[1].weekdays, s.blackouts[1].from_min, s.blackouts[1].to_min) == ((4,), 22 * 60, 6 * 60)


def test_every_error_located(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", SHORT.format(name="a"))
    path = _write(
        tmp_path,
        "bad.yaml",
        "name: Bad Name\n"  # 1
        "on_failre: stop\n"  # 2
        "experiments:\n"  # 3
        "  - missing.yaml\n"  # 4
        "  - {path: a.yaml, weight: 0, severity: fatal}\n"  # 5
        "  - {path: a.yaml, severity: {nokill: high}}\n"  # 6
        "schedule:\n"  # 7
        "  cron: '61 * * * *'\n"  # 8
        "  timezone: Mars/Olympus\n"  # 9
        "  concurrency: replace\n"  # 10
        "  blackouts:\n"  # 11
        "    - {weekdays: [sat], from: 22:00, to: '25:00'}\n"  # 12
        "    - {cron: '0 0 * * *'}\n"  # 13
        "    - {start: 'tomorrow', end: '2026-01-01'}\n",  # 14
    )
    f = str(path)
    assert _errors(path) == [
        f"{f}:1:7: name: 'Bad Name' is not a valid name: lower-case letters, digits and '-', at most 52 characters",
        f"{f}:2:1: on_failre: unknown key 'on_failre' (did you mean 'on_failure'?)",
        f"{f}:4:5: experiments[0]: no experiment file 'missing.yaml' (looked for {(tmp_path / 'missing.yaml').resolve()})",
        f"{f}:5:28: experiments[1].weight: must be > 0, got 0",
        f"{f}:5:41: experiments[1].severity: unknown severity 'fatal'; choose from: low, medium, high, critical",
        f"{f}:6:30: experiments[2].severity: no fault named 'nokill' in 'a.yaml'",
        f"{f}:8:9: schedule.cron: invalid cron expression: [61 * * * *] is not acceptable, out of range",
        f"{f}:9:13: schedule.timezone: unknown time zone 'Mars/Olympus': use an IANA name such as UTC or Europe/Paris",
        f"{f}:10:16: schedule.concurrency: unknown concurrency policy 'replace'; choose from: forbid, allow",
        f'{f}:12:31: schedule.blackouts[0].from: YAML reads 22:00 as a number: quote it ("22:00")',
        f"{f}:12:42: schedule.blackouts[0].to: expected a time of day HH:MM (00:00 to 24:00), got '25:00'",
        f"{f}:13:7: schedule.blackouts[1]: missing required key 'duration' for this kind of blackout",
        f"{f}:14:15: schedule.blackouts[2].start: expected an ISO date-time like 2026-12-24T00:00, got 'tomorrow'",
    ]


def test_experiment_errors_keep_their_own_file_and_line(tmp_path: Path, capsys) -> None:
    bad = _write(tmp_path, "exp.yaml", SHORT.format(name="x").replace("duration: 3s", "duration: 3 parsecs"))
    path = _write(tmp_path, "gd.yaml", "name: gd\nexperiments:\n  - exp.yaml\n")
    errors = _errors(path)
    assert errors[0] == (
        f"{bad}:9:52: faults[0].duration: invalid duration '3 parsecs': use a number with ms, s, m or h (e.g. 250ms, 20s, 1.5m) or plain seconds"
    )
    assert errors[1] == f"{path}:3:5: experiments[0]: 'exp.yaml' is not a valid experiment: 1 problem(s), listed with its own lines"
    assert main(["gameday", "run", str(path)]) == 4
    assert "2 problem(s) found; nothing was run" in capsys.readouterr().err


def test_missing_keys_and_empty(tmp_path: Path) -> None:
    path = _write(tmp_path, "gd.yaml", "release: x\nexperiments: []\n")
    assert _errors(path) == [
        f"{path}:1:1: missing required key 'name'",
        f"{path}:2:14: experiments: must list at least one experiment",
    ]
    path = _write(tmp_path, "empty.yaml", "")
    assert _errors(path) == [f"{path}:1:1: the file is empty: expected a mapping with at least 'title'"]


def test_shipped_weekly_copy_still_loads_elsewhere(tmp_path: Path) -> None:
    shutil.copy(REPO / "experiments" / "quickstart.yaml", tmp_path / "quickstart.yaml")
    text = (REPO / "experiments" / "gamedays" / "weekly.yaml").read_text().replace("../quickstart.yaml", "quickstart.yaml")
    g = load_gameday(_write(tmp_path, "w.yaml", text))
    assert g.experiments[0].experiment.title.startswith("Quickstart")


def test_experiment_and_gameday_files_are_told_apart(capsys) -> None:
    from chaosml.cli import main

    weekly = REPO / "experiments" / "gamedays" / "weekly.yaml"
    quickstart = REPO / "experiments" / "quickstart.yaml"
    # validate checks a game-day as one (not five "unknown key" errors)
    assert main(["validate", str(weekly), str(quickstart)]) == 0
    out = capsys.readouterr().out
    assert f"{weekly}: ok (a game-day of 1 experiment(s); run it with chaosml gameday run {weekly})" in out
    assert f"{quickstart}: ok" in out
    # plan and run are given a game-day: one line saying what it is
    for command in (["plan", str(weekly)], ["run", str(weekly)]):
        assert main(command) == 4
        err = capsys.readouterr().err.splitlines()
        assert err == [f"{weekly}:5:1: this is a game-day file (it lists experiments:), not an experiment: "
                       f"`chaosml gameday run {weekly}` runs it; `chaosml validate` checks it as one",
                       "1 problem(s) found; nothing was run"]
    # gameday run is given an experiment: one line saying what it is
    assert main(["gameday", "run", str(quickstart)]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{quickstart}:") and err[0].endswith(
        f": this is an experiment file, not a game-day: `chaosml run {quickstart}` runs it; "
        "a game-day file lists experiments: [{path: ...}] and has a name:")
    assert len(err) == 2
