"""Ground truth for MTTR: synthetic runs with exact recovery edges; MTTR within 100 ms, its precision stated."""

from __future__ import annotations

import pytest
from analysis_synth import T0, experiment, journal, samples, set_outcome

from chaosml.analysis import analyze
from chaosml.model.experiment import Slo

KILL = {"fault": "kill", "apply": 10.0, "recover": 10.5, "targets": ["model-1"]}


@pytest.mark.parametrize("edge", [1.0, 3.0, 10.0, 1.23, 3.61, 10.48, 0.5])
@pytest.mark.parametrize("rate", [20.0, 50.0])
def test_mttr_within_100_ms_of_the_recovery_edge(edge: float, rate: float) -> None:
    df = samples(60.0, rate)
    set_outcome(df, 10.0, 10.0 + edge)  # every request sent before the edge fails
    (inj,) = analyze(experiment(window=1.0, hold=3), journal(duration=60.0, injections=[KILL]), df).injections
    assert inj.recovered
    assert abs(inj.mttr_s - edge) <= 0.1, (inj.mttr_s, edge)
    assert inj.mttr_precision_s is not None and inj.mttr_precision_s <= 1.0 / rate  # half a request gap on each side
    assert abs(inj.mttr_s - edge) <= inj.mttr_precision_s + 1e-9  # the stated precision holds


def test_a_latency_slo_recovers_at_the_last_slow_answer() -> None:
    df = samples(60.0, 20.0)
    slow = (df["t"] >= T0 + 10.0) & (df["t"] < T0 + 12.7)
    df.loc[slow, "latency_ms"] = 800.0
    slos = (Slo("fast", "latency_p99_ms", "<=", 200.0, ("baseline",)),)
    (inj,) = analyze(experiment(slos=slos), journal(duration=60.0, injections=[KILL]), df).injections
    assert abs(inj.mttr_s - 2.7) <= 0.1


def test_an_unlocatable_edge_falls_back_to_the_window_with_its_precision() -> None:
    df = samples(60.0, 20.0)
    df = df[~((df["t"] >= T0 + 10.0) & (df["t"] < T0 + 13.0))]  # no traffic: nothing to locate the edge with
    (inj,) = analyze(experiment(), journal(duration=60.0, injections=[KILL]), df).injections
    assert inj.mttr_s == 3.0 and inj.mttr_precision_s == 1.0


def test_mttr_zero_means_the_slos_never_broke_and_the_report_says_so() -> None:
    from chaosml.report.document import Para, injection_tables

    an = analyze(experiment(), journal(duration=60.0, injections=[KILL]), samples(60.0, 20.0))
    assert an.injections[0].mttr_s == 0.0 and an.injections[0].mttr_precision_s == 0.0
    text = " ".join(b.text for b in injection_tables(an.to_dict()) if isinstance(b, Para))
    assert "0.00 s = the SLOs never broke" in text
    df = samples(60.0, 20.0)
    set_outcome(df, 10.0, 11.3)
    row = next(b for b in injection_tables(analyze(experiment(), journal(duration=60.0, injections=[KILL]), df).to_dict())
               if hasattr(b, "rows")).rows[0]
    assert any(cell.startswith("1.30 s ± 0.0") for cell in row), row
