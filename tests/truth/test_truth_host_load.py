"""Ground truth for host load: what the journal records, what report and compare show, and when latency deltas are unreliable."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from runner_doubles import RecordingTarget, scripted_load

from chaosml.cli import main
from chaosml.compare import FailPolicy, compare_runs, failing_rows
from chaosml.hostload import HostLoad, HostLoadSampler, host_load_differs
from chaosml.journal import JournalError, load
from chaosml.ledger import Ledger
from chaosml.loader import load_experiment_text
from chaosml.report import render_report
from chaosml.runner import Runner

FIXTURES = Path(__file__).resolve().parents[1] / "compare" / "fixtures"


def _host(load1_max: float, cpus: int = 4, **kw: float) -> HostLoad:
    return HostLoad(cpus=cpus, load1_start=load1_max, load1_end=load1_max, load1_max=load1_max, samples=3, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "differs"),
    [
        (0.30, 1.00, True),  # ratio 3.3, 0.70 apart
        (0.30, 0.75, False),  # ratio 2.5 but only 0.45 apart
        (1.00, 1.90, False),  # 0.90 apart but ratio 1.9
        (0.00, 0.60, True),  # an idle host (floored at 0.05): ratio 12, 0.60 apart
        (0.01, 0.40, False),  # ratio 40 but 0.39 apart
        (2.00, 0.90, True),  # either order
    ],
)
def test_very_different_host_load_is_ratio_over_2_and_more_than_half_a_core_apart(a: float, b: float, differs: bool) -> None:
    why = host_load_differs(_host(4 * a), _host(4 * b))
    assert (why is not None) is differs, why
    assert host_load_differs(None, _host(4 * b)) is None  # unknown on a side: never "very different"


def test_the_sampler_measures_load_average_steal_and_the_load_generators_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3\n")
    loads = iter([0.5, 2.5, 1.5, 1.0])
    monkeypatch.setattr("os.getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    sampler = HostLoadSampler(cpu_stat=str(stat))  # load 0.5 at start
    sampler.sample(force=True)  # 2.5
    sampler.sample(force=True)  # 1.5
    for elapsed, cpu in ((1.0, 0.4), (2.0, 1.3), (3.0, 1.8)):  # progress lines: the busiest second used 0.9 s of CPU
        sampler.loadgen({"type": "progress", "elapsed_s": elapsed, "cpu_s": cpu})
    sampler.loadgen({"type": "done", "duration_s": 4.0, "cpu_s": 2.0})  # the stop (0.2 s in 1 s) is not a peak interval
    stat.write_text("cpu  300 0 150 1200 10 0 0 140 0 0\n")  # +200 +100 +400 idle +100 steal = 800 ticks, 100 stolen
    host = sampler.finish()  # 1.0 at the end
    assert (host.cpus, host.load1_start, host.load1_end, host.load1_max, host.samples) == (2, 0.5, 1.0, 2.5, 4)
    assert host.load_per_core == 1.25
    assert host.steal_share == 0.125
    assert (host.loadgen_cpu_s, host.loadgen_cpu, host.loadgen_cpu_peak) == (2.0, 0.5, 0.9)
    assert host.loadgen_saturated
    assert "CPU steal 12.5%" in host.describe() and "SATURATED" in host.describe()


def test_steal_is_none_when_proc_stat_does_not_expose_it(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800\n")  # an old kernel: no steal column
    sampler = HostLoadSampler(cpu_stat=str(stat))
    host = sampler.finish()
    assert host.steal_share is None and host.loadgen_cpu is None
    assert "CPU steal not exposed" in host.describe()
    assert HostLoadSampler(cpu_stat=str(tmp_path / "missing")).finish().steal_share is None


def _run_dir(tmp_path: Path, name: str, host: HostLoad | None, latency_factor: float = 1.0, src: str = "hardened") -> Path:
    run = tmp_path / name
    run.mkdir()
    shutil.copy(FIXTURES / src / "samples.csv", run / "samples.csv")
    data = json.loads((FIXTURES / src / "journal.json").read_text())
    data["run_id"] = name
    if host is not None:
        data["host_load"] = host.to_dict()
    (run / "journal.json").write_text(json.dumps(data))
    if latency_factor != 1.0:
        lines = (run / "samples.csv").read_text().splitlines()
        col = lines[0].split(",").index("latency_ms")
        out = [lines[0]]
        for line in lines[1:]:
            cells = line.split(",")
            cells[col] = repr(float(cells[col]) * latency_factor + 40.0)
            out.append(",".join(cells))
        (run / "samples.csv").write_text("\n".join(out) + "\n")
    return run


def test_the_journal_keeps_host_load_typed(tmp_path: Path) -> None:
    host = _host(3.0, steal_share=0.01, loadgen_cpu_s=5.0, loadgen_cpu=0.25, loadgen_cpu_peak=0.4)
    run = _run_dir(tmp_path, "a", host)
    record = load(run)
    assert record.host_load == host
    assert record.to_dict()["host_load"] == host.to_dict()
    assert load(_run_dir(tmp_path, "b", None)).host_load is None  # an older journal
    data = json.loads((run / "journal.json").read_text())
    data["host_load"]["cpus"] = 0
    (run / "journal.json").write_text(json.dumps(data))
    with pytest.raises(JournalError, match="host_load.cpus"):
        load(run)


def test_the_report_shows_host_load_and_a_saturated_load_generator(tmp_path: Path) -> None:
    run = _run_dir(tmp_path, "a", _host(2.0, steal_share=0.0, loadgen_cpu_s=9.0, loadgen_cpu=0.5, loadgen_cpu_peak=0.95))
    render_report(run)
    md = (run / "report.md").read_text()
    assert "| host load | load average 2.00 -> 2.00 (max 2.00, 0.50 per core of 4); CPU steal 0.0%; load generator CPU 50% of a core, peak 95%" in md
    assert "LOAD GENERATOR CPU-SATURATED" in md
    plain = _run_dir(tmp_path, "b", None)
    render_report(plain)
    assert "| host load | not recorded" in (plain / "report.md").read_text()


def test_compare_marks_latency_deltas_under_very_different_host_load_unreliable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the case: a baseline p99 "regression" that the host load of one run caused
    base = _run_dir(tmp_path, "quiet", _host(0.8))  # 0.2 per core
    cand = _run_dir(tmp_path, "busy", _host(6.0), latency_factor=3.0)  # 1.5 per core
    c = compare_runs([base], [cand])
    latency = [r for r in c.rows if r.metric.startswith("latency_")]
    assert latency and not any(r.verdict == "regressed" for r in latency)
    marked = [r for r in latency if r.verdict == "unreliable"]
    assert marked and all(r.judged == "regressed" and r.reason.startswith("unreliable (host load): host load per core 0.20 vs 1.50")
                          for r in marked)
    assert not [r for r in c.rows if r.verdict == "regressed"]  # nothing else changed
    assert failing_rows(c, [FailPolicy("any")]) == []
    assert failing_rows(c, [FailPolicy("any")], count_unreliable=True) == marked
    assert main(["compare", str(base), str(cand)]) == 0
    out = capsys.readouterr().out
    assert "host load, baseline quiet: load average 0.80 -> 0.80 (max 0.80, 0.20 per core of 4)" in out
    assert "host load, candidate busy: load average 6.00" in out
    assert "unreliable (host load)" in out
    assert main(["compare", str(base), str(cand), "--count-unreliable"]) == 1  # the explicit policy: they count


def test_compare_under_similar_host_load_still_finds_the_latency_regression(tmp_path: Path) -> None:
    base = _run_dir(tmp_path, "one", _host(0.8))
    cand = _run_dir(tmp_path, "two", _host(1.2), latency_factor=3.0)  # 0.2 vs 0.3 per core: not very different
    c = compare_runs([base], [cand])
    assert any(r.verdict == "regressed" and r.metric.startswith("latency_") for r in c.rows)
    assert not any(r.verdict == "unreliable" for r in c.rows)
    unknown = _run_dir(tmp_path, "old", None, latency_factor=3.0)  # an older journal: no host load, judged as before
    assert any(r.verdict == "regressed" for r in compare_runs([base], [unknown]).rows)


def test_the_runner_records_host_load_in_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "version: 1\ntitle: host\nload: {users: 1, duration: 1s}\n"
    lines = [{"type": "progress", "elapsed_s": 1.0, "requests": 5, "cpu_s": 0.25},
             {"type": "progress", "elapsed_s": 1.5, "requests": 7, "cpu_s": 0.3},
             {"type": "done", "duration_s": 2.0, "requests": 9, "cpu_s": 0.4}]  # the stop's 0.1 s / 0.5 s is no peak

    fake_load = scripted_load(lines, gap_s=0.3)


    monkeypatch.setattr(Runner, "_prepare_payloads", lambda self: None)
    monkeypatch.setattr(Runner, "_start_load", fake_load)
    out = io.StringIO()
    runner = Runner(load_experiment_text(text, "h.yaml"), experiment_file="h.yaml", experiment_source=text,
                    reports_dir=tmp_path / "reports", ledger=Ledger(tmp_path / "ledger.jsonl"), out=out,
                    target_factory=lambda exp, run_dir, on_event: RecordingTarget())
    result = runner.run()
    assert result.status == "completed", result.reason
    host = load(result.run_dir).host_load
    assert host is not None and host.samples >= 2 and host.cpus >= 1
    assert (host.loadgen_cpu_s, host.loadgen_cpu, host.loadgen_cpu_peak) == (0.4, 0.2, 0.25)
    assert "host load: load average" in out.getvalue()
