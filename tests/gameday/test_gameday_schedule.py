"""Cron fire times, blackouts, the bounded scheduler loop with a fake clock, and rendered CronJobs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from chaosml.cli import main
from chaosml.errors import InvalidInputError
from chaosml.gameday import (
    blackout_reason,
    load_gameday,
    next_fire_times,
    render_cronjob,
    run_loop,
)
from chaosml.gameday.model import Blackout, Schedule

REPO = Path(__file__).resolve().parents[2]
UTC = dt.UTC


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_next_fire_times_weekly_and_in_a_time_zone() -> None:
    s = Schedule(cron="0 3 * * 1")
    got = next_fire_times(s, t("2026-11-22T10:00"), 3)  # a Sunday
    assert [x.isoformat() for x in got] == ["2026-11-23T03:00:00+00:00", "2026-11-30T03:00:00+00:00", "2026-12-07T03:00:00+00:00"]
    paris = next_fire_times(Schedule(cron="0 3 * * *", timezone="Europe/Paris"), t("2026-03-28T12:00"), 2)
    # 03:00 Paris is 02:00 UTC in winter and 01:00 UTC after the DST change of 2026-03-29
    assert [x.astimezone(UTC).isoformat() for x in paris] == ["2026-03-29T01:00:00+00:00", "2026-03-30T01:00:00+00:00"]


def test_blackout_forms() -> None:
    s = Schedule(
        cron="* * * * *",
        blackouts=(
            Blackout(reason="freeze", start=t("2026-12-21T00:00"), end=t("2027-01-04T00:00")),
            Blackout(reason="monthly", cron="0 0 1 * *", duration_s=6 * 3600),
            Blackout(reason="night", weekdays=(4,), from_min=22 * 60, to_min=6 * 60),  # Fri 22:00 -> Sat 06:00
        ),
    )
    assert blackout_reason(s, t("2026-12-25T12:00")) == "2026-12-21T00:00:00+00:00 .. 2027-01-04T00:00:00+00:00 (freeze)"
    assert blackout_reason(s, t("2027-01-04T00:00")) is None  # end is exclusive
    assert "monthly" in blackout_reason(s, t("2026-11-01T05:59"))
    assert blackout_reason(s, t("2026-11-01T06:00")) is None
    assert "night" in blackout_reason(s, t("2026-11-27T23:00"))  # a Friday
    assert "night" in blackout_reason(s, t("2026-11-28T05:00"))  # the Saturday morning after
    assert blackout_reason(s, t("2026-11-28T23:00")) is None  # Saturday night is not in it
    assert blackout_reason(s, t("2026-11-26T23:00")) is None  # nor Thursday night


class FakeClock:
    def __init__(self, start: dt.datetime):
        self.t = start
        self.slept: list[float] = []

    def now(self) -> dt.datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += dt.timedelta(seconds=seconds)


class FakeRun:
    """A run that lasts ``duration`` seconds of the fake clock."""

    def __init__(self, clock: FakeClock, duration: float, code: int = 0):
        self.clock, self.end, self.code = clock, clock.now() + dt.timedelta(seconds=duration), code

    def done(self) -> bool:
        return self.clock.now() >= self.end

    def result(self) -> int:
        return self.code


def test_loop_never_overlaps_with_concurrency_forbid() -> None:
    clock = FakeClock(t("2026-11-23T00:00"))
    logs: list[str] = []
    runs: list[dt.datetime] = []

    def start(when: dt.datetime) -> FakeRun:
        runs.append(when)
        return FakeRun(clock, 150)  # 2.5 min: longer than the 1-minute period

    res = run_loop(Schedule(cron="* * * * *"), start, clock=clock, log=logs.append, max_runs=3)
    assert [x.strftime("%H:%M") for x in res.started] == ["00:01", "00:04", "00:07"]
    assert [x.strftime("%H:%M") for x, _ in res.skipped] == ["00:02", "00:03", "00:05", "00:06"]
    assert all("still running (concurrency forbid)" in line for line in logs if line.startswith("skip"))
    assert res.exit_codes == [0, 0, 0] and res.exit_code == 0
    assert clock.now() >= t("2026-11-23T00:09:30")  # waited for the last run to finish
    assert sum(1 for line in logs if line.startswith("  2026-11-23T00:0")) == 5  # next 5 fire times logged first


def test_loop_allows_overlap_when_asked_and_reports_failures() -> None:
    clock = FakeClock(t("2026-11-23T00:00"))
    res = run_loop(Schedule(cron="* * * * *", concurrency="allow"), lambda w: FakeRun(clock, 150, code=1), clock=clock, log=lambda m: None, max_runs=3)
    assert [x.strftime("%H:%M") for x in res.started] == ["00:01", "00:02", "00:03"] and res.skipped == []
    assert res.exit_code == 1


def test_loop_skips_blackouts_and_stops_at_until() -> None:
    clock = FakeClock(t("2026-11-23T21:30"))  # a Monday
    logs: list[str] = []
    s = Schedule(cron="0 * * * *", blackouts=(Blackout(reason="night", weekdays=(0,), from_min=23 * 60, to_min=2 * 60),))
    res = run_loop(s, lambda w: FakeRun(clock, 60), clock=clock, log=logs.append, until=t("2026-11-24T03:30"))
    assert [x.strftime("%H") for x in res.started] == ["22", "02", "03"]
    assert [(x.strftime("%H"), why) for x, why in res.skipped] == [(h, "blackout: mon 23:00-02:00 (night)") for h in ("23", "00", "01")]
    assert any("inside blackout" in line for line in logs)
    assert logs[-1].startswith("run started at") or any("after --until" in line for line in logs)


def test_loop_needs_a_bound() -> None:
    clock = FakeClock(t("2026-11-23T00:00"))
    with pytest.raises(InvalidInputError, match="needs a bound"):
        run_loop(Schedule(cron="* * * * *"), lambda w: FakeRun(clock, 1), clock=clock, log=lambda m: None)


def _k8s_gameday(tmp_path: Path, extra: str = "") -> Path:
    shutil.copy(REPO / "tests" / "loader" / "valid" / "kubernetes.yaml", tmp_path / "k8s.yaml")
    p = tmp_path / "gd.yaml"
    p.write_text(
        "name: nightly\nrelease: v2\nexperiments: [k8s.yaml]\n"
        "schedule: {cron: '30 2 * * *', timezone: Europe/Berlin, concurrency: forbid, history_limit: 4" + extra + "}\n"
    )
    return p


@pytest.mark.parametrize("api", ["batch/v1", "batch/v1beta1"])
def test_cronjob_manifest(tmp_path: Path, api: str) -> None:
    warnings: list[str] = []
    gd = load_gameday(_k8s_gameday(tmp_path))
    text = render_cronjob(gd, image="registry.local/chaosml:1.2", file_in_image="gamedays/gd.yaml", api_version=api, warn=warnings.append)
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == api and doc["kind"] == "CronJob"
    assert doc["metadata"]["name"] == "chaosml-gameday-nightly" and doc["metadata"]["namespace"] == "chaosml"
    spec = doc["spec"]
    assert spec["schedule"] == "30 2 * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] == 4 and spec["failedJobsHistoryLimit"] == 4
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "chaosml-runner" and pod["restartPolicy"] == "Never"
    (c,) = pod["containers"]
    assert c["image"] == "registry.local/chaosml:1.2" and c["args"] == ["gameday", "run", "gamedays/gd.yaml"]
    if api == "batch/v1":
        assert spec["timeZone"] == "Europe/Berlin" and not warnings
    else:
        assert "timeZone" not in spec and "no timeZone field" in warnings[0]


def test_cronjob_cli_with_blackouts_and_allow(tmp_path: Path, capsys) -> None:
    gd = _k8s_gameday(tmp_path, ", blackouts: [{weekdays: [sun], from: '00:00', to: '24:00'}]")
    gd.write_text(gd.read_text().replace("forbid", "allow"))
    out = tmp_path / "cj.yaml"
    assert main(["gameday", "schedule", str(gd), "--image", "img:1", "--out", str(out)]) == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["spec"]["concurrencyPolicy"] == "Allow"
    assert doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["gameday", "run", str(gd), "--respect-blackouts"]
    assert main(["gameday", "schedule", str(gd), "--api-version", "batch/v2"]) == 4
    assert "choose from batch/v1, batch/v1beta1" in capsys.readouterr().err


def test_local_gameday_has_no_cronjob() -> None:
    g = load_gameday(REPO / "experiments" / "gamedays" / "weekly.yaml")
    with pytest.raises(InvalidInputError, match="every experiment to target kubernetes"):
        render_cronjob(g, image="x", file_in_image="y")


def test_cronjob_options_on_a_local_gameday_say_when_they_apply(capsys) -> None:
    weekly = str(REPO / "experiments" / "gamedays" / "weekly.yaml")
    assert main(["gameday", "schedule", weekly, "--image", "img:1", "--max-runs", "1"]) == 4
    err = capsys.readouterr().err
    assert (f"chaosml: {weekly}: --image only apply to a game-day of kubernetes experiments, whose schedule is written as a "
            "CronJob manifest; this one's experiments run on local, so `gameday schedule` runs it here as a foreground "
            "cron loop (bounded by --max-runs/--until)") in err
    assert main(["gameday", "schedule", weekly, "--out", "x.yaml", "--namespace", "n"]) == 4
    assert "--namespace, --out only apply" in capsys.readouterr().err
