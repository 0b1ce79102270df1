"""A fault that took no effect is loud in the report: a banner in the document and a failing JUnit testcase."""

from __future__ import annotations

from chaosml.report.document import Banner, header
from chaosml.report.junit import run_suite

WHY = "injection #1 killed nothing: there are no replicas of service 'modle'"
ANALYSIS = {
    "run_id": "r1", "release": "hardened", "title": "t", "status": "completed", "reason": None, "profile": "hardened",
    "platform": "local", "window_s": 1.0, "hold": 3, "phases": [],
    "load": {"started_at": 0.0, "ended_at": 10.0, "duration_s": 10.0},
    "counts": {"pass": 1, "fail": 0, "inconclusive": 1}, "passed": False, "no_effect": {"kill": WHY},
    "verdicts": [
        {"name": "up", "kind": "hypothesis", "sli": "success_ratio", "op": ">=", "target": 0.99, "measured": 1.0,
         "samples": 50, "verdict": "inconclusive", "scope": "fault kill", "detail": f"fault kill had no effect: {WHY}; measured: 50 requests"},
        {"name": "availability", "kind": "slo", "sli": "success_ratio", "op": ">=", "target": 0.99, "measured": 1.0,
         "samples": 50, "verdict": "pass", "scope": "phase baseline", "detail": "50 requests"},
    ],
}


def test_the_report_header_says_no_effect() -> None:
    banners = [b.text for b in header(ANALYSIS, {}) if isinstance(b, Banner)]
    assert f"NO EFFECT: fault kill: {WHY}. Nothing was tested: every verdict scoped to it is inconclusive and the run cannot pass." in banners


def test_junit_fails_a_fault_that_took_no_effect() -> None:
    cases = {c.name: c for c in run_suite(ANALYSIS).cases}
    assert cases["fault kill took effect"].failure == f"no effect: {WHY}"
    assert cases["fault kill took effect"].failure_type == "FaultHadNoEffect"
