"""Phases from actual fault events: boundaries, closed fault windows, recovery, after, selection."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_synth import T0, journal

from chaosml.analysis.phases import (
    build_phases,
    injection_windows,
    load_range,
    merge,
    select,
    subtract,
)

TS = np.array([T0 + x for x in (0.0, 9.999, 10.0, 12.0, 12.0001, 14.9, 15.0, 59.0, 60.0, 60.5)])


def _phases(injections, recovered_offsets, duration=60.0):
    j = journal(duration=duration, injections=injections)
    load = load_range(j, TS)
    wins = injection_windows(j, load)
    rec = [None if r is None else T0 + r for r in recovered_offsets]
    return build_phases(load, wins, rec)


def names(phase):
    return [round(x - T0, 4) for x in TS[phase.select(TS)]]


def test_boundaries_single_injection():
    ph = _phases([{"fault": "kill", "apply": 10.0, "recover": 12.0}], [15.0])
    assert names(ph["baseline"]) == [0.0, 9.999]
    assert names(ph["fault"]) == [10.0, 12.0]  # [apply, recover] is closed
    assert names(ph["kill"]) == [10.0, 12.0]
    assert names(ph["recovery"]) == [12.0001, 14.9]  # (recover, recovered)
    assert names(ph["after"]) == [15.0, 59.0, 60.0]  # load end is inclusive
    assert names(ph["all"]) == [0.0, 9.999, 10.0, 12.0, 12.0001, 14.9, 15.0, 59.0, 60.0]
    assert ph["between"].intervals == ()
    # the partition covers "all" exactly once
    parts = ("baseline", "fault", "recovery", "between", "after")
    total = sum(ph[p].select(TS).astype(int) for p in parts)
    assert list(total) == list(ph["all"].select(TS).astype(int))


def test_recovered_within_the_fault_window_means_no_recovery_phase():
    ph = _phases([{"fault": "kill", "apply": 10.0, "recover": 12.0}], [10.0])
    assert ph["recovery"].intervals == ()
    assert names(ph["after"])[0] == 12.0001


def test_never_recovered_leaves_no_after():
    ph = _phases([{"fault": "kill", "apply": 10.0, "recover": 12.0}], [None])
    assert names(ph["recovery"]) == [12.0001, 14.9, 15.0, 59.0, 60.0]
    assert ph["after"].intervals == ()


def test_no_recover_event_runs_the_window_to_load_end():
    ph = _phases([{"fault": "kill", "apply": 10.0, "recover": None}], [None])
    assert names(ph["fault"]) == [10.0, 12.0, 12.0001, 14.9, 15.0, 59.0, 60.0]
    assert ph["after"].intervals == () and ph["recovery"].intervals == ()


def test_repeated_injections_and_between_phase():
    injections = [
        {"fault": "kill", "injection": 0, "apply": 10.0, "recover": 12.0},
        {"fault": "kill", "injection": 1, "apply": 40.0, "recover": 42.0},
        {"fault": "slow", "injection": 0, "apply": 50.0, "recover": 51.0},
    ]
    ph = _phases(injections, [14.0, 45.0, 51.0])
    assert ph["kill"].intervals[0][0] == T0 + 10.0 and len(ph["kill"].intervals) == 2
    assert len(ph["slow"].intervals) == 1
    assert ph["between"].intervals[0] == (T0 + 14.0, T0 + 40.0)
    assert ph["after"].intervals[0][0] > T0 + 51.0
    assert ph["kill"].kind == "fault" and ph["baseline"].kind == "phase"


def test_offsets_are_relative_to_load_start_and_journal_without_load_end():
    j = journal(duration=60, injections=[{"fault": "kill", "apply": 10.0, "recover": 12.0}], load_end=False)
    load = load_range(j, TS)
    assert not load.end_known
    assert load.end == TS.max()
    wins = injection_windows(j, load)
    assert wins[0].apply_t - load.start == 10.0 and wins[0].search_end == load.end


def test_interval_helpers():
    assert merge([(3, 4), (0, 1), (0.5, 2), (2, 2.5), (5, 5)]) == [(0, 2.5), (3, 4)]
    assert subtract([(0, 10)], [(2, 3), (5, 6)]) == [(0, 2), (3, 5), (6, 10)]
    assert subtract([(0, 1)], [(0, 1)]) == []
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert list(select(t, [(1.0, 2.0)])) == [False, True, False, False]
    assert list(select(t, [])) == [False] * 4


@pytest.mark.parametrize("recover_before_apply", [True])
def test_recover_without_matching_apply_is_ignored(recover_before_apply):
    j = journal(duration=60, injections=[{"fault": "kill", "apply": 10.0, "recover": 12.0}])
    j["fault_events"].append({"t": T0 + 5, "fault": "ghost", "injection": 0, "action": "recover", "ok": True, "targets": []})
    wins = injection_windows(j, load_range(j, TS))
    assert [w.fault for w in wins] == ["kill"]
