"""analyze(): JSON-safe to_dict, per-phase and per-cohort SLIs, time series, runs without faults, speed."""

from __future__ import annotations

import json
import time

from analysis_synth import T0, experiment, journal, samples, set_outcome

from chaosml.analysis import MIX_CLASSES, analyze
from chaosml.analysis.samples import normalize_samples

KILL = {"fault": "kill", "apply": 10.0, "recover": 12.0, "targets": ["model-1"]}

TOP_KEYS = {
    "schema", "run_id", "status", "reason", "title", "release", "profile", "platform", "load", "window_s", "hold",
    "confidence_threshold", "restart_delay_s", "cohorts", "phases", "injections", "faults", "verdicts", "counts",
    "passed", "summary", "timeseries", "events", "notes", "degradation", "replacements", "unmeasured", "load_delivery", "load_stages",
}


def test_to_dict_is_json_safe_and_complete():
    df = samples(60, 50, cohorts=("clean", "missing-features"))
    set_outcome(df, 10, 15)
    set_outcome(df, 40, 41, outcome="ok", served_by="fallback")
    events = [{"t": 10.01, "kind": "replica_exited", "subject": "model-1"}, {"t": 13.0, "kind": "replica_ready", "subject": "model-1"}]
    an = analyze(experiment(), journal(duration=60, injections=[KILL], target_events=events), df)
    d = an.to_dict()
    assert set(d) == TOP_KEYS
    text = json.dumps(d, allow_nan=False)  # raises on NaN/inf
    assert json.loads(text)["run_id"] == "20240101-000000-test"
    phases = {p["name"]: p for p in d["phases"]}
    assert list(phases) == ["baseline", "fault", "recovery", "between", "after", "all", "kill"]
    assert phases["baseline"]["offsets"] == [[0.0, 10.0]]
    assert phases["baseline"]["slis"]["requests"] == 500
    assert set(phases["all"]["cohorts"]) == {"clean", "missing-features"}
    assert phases["all"]["cohorts"]["clean"]["requests"] == 1500
    assert phases["all"]["served_by"]["error"] == 250 and phases["all"]["served_by"]["fallback"] == 50
    assert sum(phases["all"]["served_by"].values()) == 3000
    assert [e["what"] for e in d["events"]] == ["apply kill #1", "replica_exited", "recover kill #1", "replica_ready"]
    assert d["events"][0]["offset_s"] == 10.0
    assert d["summary"]["passed"] == d["passed"]


def test_timeseries_windows():
    df = samples(60, 50)
    set_outcome(df, 10, 15)
    an = analyze(experiment(window=1.0), journal(duration=60, injections=[KILL]), df)
    ts = an.timeseries
    assert ts["window_s"] == 1.0 and len(ts["t"]) == 60 and ts["t"][:3] == [0.0, 1.0, 2.0]
    assert sum(ts["requests"]) == 3000
    assert ts["success_ratio"][9] == 1.0 and ts["success_ratio"][10] == 0.0 and ts["success_ratio"][15] == 1.0
    assert ts["fallback_ratio"][10] is None  # no 2xx answers in that window
    assert set(ts["mix"]) == set(MIX_CLASSES)
    assert ts["mix"]["error"][12] == 50 and ts["mix"]["primary"][12] == 0
    assert ts["latency_p99_ms"][0] is not None


def test_run_without_fault_events_is_all_baseline():
    j = journal(duration=30, injections=[], status="aborted")
    j["reason"] = "abort condition success_ratio < 0.5 held for 10s"
    an = analyze(experiment(), j, samples(30, 20))
    assert an.injections == [] and an.status == "aborted"
    assert an.phase("baseline").slis["requests"] == 600
    assert an.phase("fault").phase.intervals == ()
    assert "never applied: kill" in an.notes


def test_partial_run_without_load_end():
    df = samples(40, 20)
    j = journal(duration=60, injections=[KILL], status="running", load_end=False)
    an = analyze(experiment(), j, df)
    d = an.to_dict()
    assert d["load"]["ended_at"] is None
    assert abs(d["load"]["last_seen_at"] - df["t"].max()) < 1e-6
    assert any("no load end" in n for n in an.notes)


def test_empty_samples():
    an = analyze(experiment(), journal(duration=60, injections=[KILL]), samples(0, 1))
    assert not an.injections[0].recovered
    assert all(v.verdict == "inconclusive" for v in an.verdicts)
    json.dumps(an.to_dict(), allow_nan=False)


def test_fast_on_many_samples():
    n_per_s = 2000
    df = samples(150, n_per_s, cohorts=("clean", "missing-features", "out-of-range"))
    injections = []
    for k in range(4):
        set_outcome(df, 20 + 30 * k, 24 + 30 * k)
        injections.append({"fault": "kill", "injection": k, "apply": 20.0 + 30 * k, "recover": 22.0 + 30 * k})
    df = normalize_samples(df)
    start = time.perf_counter()
    an = analyze(experiment(window=0.5), journal(duration=150, injections=injections), df)
    elapsed = time.perf_counter() - start
    assert [i.mttr_s for i in an.injections] == [4.0] * 4
    assert len(df) == 300_000
    assert elapsed < 3.0, f"analyze took {elapsed:.2f}s on 300k samples"
    assert T0 == an.load.start


def test_kubernetes_pod_replacements_are_tied_to_their_injection_and_rendered() -> None:
    from chaosml.report.document import replacement_table

    df = samples(60, 50)
    j = journal(duration=60, injections=[KILL])
    t_del = j["load"]["started_at"] + 10.0
    j["target_events"].append(
        {"t": t_del + 0.6, "kind": "pod_replaced", "subject": "model-1",
         "detail": {"victim": "model-1", "replacement": "model-7", "deleted_t": t_del, "deletion_seen_s": 0.01,
                    "created_s": 0.02, "scheduled_s": 0.04, "ready_s": 0.6, "node": "w2"}}
    )
    d = analyze(experiment(), j, df).to_dict()
    (rep,) = d["replacements"]
    assert rep["injection"] == "kill #1" and rep["slo_mttr_s"] == 0.0
    (table,) = [b for b in replacement_table(d) if hasattr(b, "rows")]
    assert table.rows[0][:6] == ("kill #1", "model-1 -> model-7", "0.01 s", "0.02 s", "0.04 s", "0.60 s")


def test_container_recoveries_are_tied_to_their_injection_and_rendered() -> None:
    from chaosml.report.document import replacement_table

    df = samples(60, 50)
    j = journal(duration=60, injections=[KILL, {"fault": "kill", "injection": 1, "apply": 30.0, "recover": 32.0,
                                                "targets": ["model-1"]}])
    t0 = j["load"]["started_at"]
    for t_hit, action, restarted in ((t0 + 10.0, "pause", None), (t0 + 30.0, "kill", 13.4)):
        j["target_events"].append(
            {"t": t_hit + 15, "kind": "container_recovered", "subject": "model-1",
             "detail": {"pod": "model-1", "action": action, "applied_t": t_hit, "unready_s": 1.1, "restarted_s": restarted,
                        "ready_s": 15.0, "restarts_before": 2, "restarts": 2 if restarted is None else 3, "node": "n1"}})
    d = analyze(experiment(), j, df).to_dict()
    assert [(r["injection"], r["slo_mttr_s"]) for r in d["container_recoveries"]] == [("kill #1", 0.0), ("kill #2", 0.0)]
    assert d["replacements"] == []
    (table,) = [b for b in replacement_table(d) if hasattr(b, "rows")]
    assert table.rows == (
        ("kill #1", "model-1 (pause; restarts 2 -> 2)", "1.10 s", "-", "15.00 s", "0.00 s", "n1"),
        ("kill #2", "model-1 (kill; restarts 2 -> 3)", "1.10 s", "13.40 s", "15.00 s", "0.00 s", "n1"),
    )


def test_a_run_without_container_faults_has_no_container_recoveries_key() -> None:
    assert "container_recoveries" not in analyze(experiment(), journal(duration=60, injections=[KILL]), samples(60, 50)).to_dict()
