"""The report opens with its summary (issue 18 item 5): outcome, what did not pass in words, one line per fault, the timeline.

Also the figures of the summary (worst window, cohort deltas) against values known from the synthetic run,
and the console's last line of a failed run.
"""

from __future__ import annotations

import re

from test_report_render import experiment_model, write_run

from chaosml.report import render_report
from chaosml.report.plots import cohort_deltas
from chaosml.report.summary import MAX_LISTED, failing_line, summary_blocks, verdict_sentence, worst_windows

FAIL = {"name": "available-during-kill", "kind": "hypothesis", "sli": "success_ratio", "op": ">=", "target": 0.99,
        "measured": 0.7867, "samples": 225, "verdict": "fail", "scope": "fault kill, cohort clean", "detail": "225 requests"}
INCONCLUSIVE = {"name": "replica-back", "kind": "hypothesis", "sli": "ready_s", "op": "<=", "target": 8.0, "measured": None,
                "samples": 0, "verdict": "inconclusive", "scope": "fault kill", "detail": "no injection named a replica"}
PASS = {**FAIL, "name": "availability", "kind": "slo", "verdict": "pass", "measured": 1.0, "scope": "phase baseline"}


def test_markdown_opens_with_the_summary_and_ends_with_the_events(tmp_path):
    write_run(tmp_path)
    render_report(tmp_path, experiment=experiment_model())
    md = (tmp_path / "report.md").read_text()
    order = [
        "# chaosml report: Report test - kill a replica",
        "> ❌ **NOT PASSED: 1 failed, 0 inconclusive, 6 passed of 7**",
        "- FAIL available-during-kill (hypothesis, fault kill-replica): success_ratio measured 37.73%, needs at least 99.00%; "
        "803 requests",
        "| kill-replica (pod-kill) | 2 | 0.91 s mean, by users | 2.50 s mean, 3.00 s max | "
        "success 0.00% at +10 s, p99 900.0 ms at +10 s |",
        "](plots/timeline.png)",
        "## Run",
        "## Verdicts",
        "## Injections: detection and recovery",
        "## Per cohort",
        "](plots/cohorts.png)",
        "## Served-by mix per phase",
        "](plots/served_by.png)",
        "## Fault timeline",
        "<details><summary>8 fault and target events</summary>",
        "| +10.00 s | fault | apply kill-replica #1 |",
        "</details>",
        "## Definitions",
        "## Environment",
    ]
    at = [md.index(line) for line in order]
    assert at == sorted(at), [line for line, i, j in zip(order, at, sorted(at), strict=True) if i != j]
    assert md.count("](plots/timeline.png)") == 1  # shown once, in the summary


def test_html_keeps_the_summary_in_one_section_and_collapses_the_events(tmp_path):
    write_run(tmp_path)
    render_report(tmp_path, experiment=experiment_model())
    html = (tmp_path / "report.html").read_text()
    summary = html[html.index('<section id="summary">'):html.index("</section>")]
    assert '<div class="banner fail">NOT PASSED: 1 failed, 0 inconclusive, 6 passed of 7</div>' in summary
    assert '<li class="fail">FAIL available-during-kill (hypothesis, fault kill-replica)' in summary
    assert "<td>kill-replica (pod-kill)</td>" in summary
    assert '<img id="plot-timeline"' in summary
    details = html[html.index("<details>"):html.index("</details>")]
    assert "<summary>8 fault and target events</summary>" in details and "<td>apply kill-replica #1</td>" in details
    assert html.index("<h2>Verdicts</h2>") < html.index("<details>")


def test_worst_window_of_a_fault_is_the_outage_window(tmp_path):
    # write_run: every request sent in +10..+13 s and +25..+27 s is an error answered after 900 ms; the
    # first outage window [10, 11) s is all errors, so success 0% and p99 900 ms, both first at +10 s.
    write_run(tmp_path)
    analysis = render_report(tmp_path, experiment=experiment_model())
    assert worst_windows(analysis, "kill-replica") == {"success_ratio": (0.0, 10.0), "latency_p99_ms": (900.0, 10.0)}


def test_worst_window_counts_the_recovery_after_a_short_fault():
    # a one-shot fault (recovered 0.1 s after apply) whose SLOs broke until +3.5 s: the worst window is
    # the one at +3 s, after recover, inside the recovery edge (apply + MTTR).
    ts = {"window_s": 1.0, "t": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "requests": [10, 10, 10, 10, 10, 0],
          "success_ratio": [1.0, 1.0, 0.9, 0.5, 0.2, None], "latency_p99_ms": [10.0, 10.0, 50.0, 40.0, 30.0, None]}
    inj = {"fault": "kill", "offset_s": 2.0, "duration_s": 0.1, "mttr_s": 1.5, "windows_searched": 4}
    analysis = {"timeseries": ts, "injections": [inj], "load": {"duration_s": 6.0}, "window_s": 1.0}
    assert worst_windows(analysis, "kill") == {"success_ratio": (0.5, 3.0), "latency_p99_ms": (50.0, 2.0)}
    # never recovered: searched to the end of the MTTR search (+2 + 4 windows), the empty window left out
    assert worst_windows(analysis | {"injections": [inj | {"mttr_s": None}]}, "kill")["success_ratio"] == (0.2, 4.0)
    assert worst_windows(analysis, "other") == {"success_ratio": None, "latency_p99_ms": None}


def test_verdicts_in_words():
    assert verdict_sentence(FAIL) == ("FAIL available-during-kill (hypothesis, fault kill, cohort clean): success_ratio "
                                      "measured 78.67%, needs at least 99.00%; 225 requests")
    assert verdict_sentence(INCONCLUSIVE) == ("INCONCLUSIVE replica-back (hypothesis, fault kill): ready_s not measured, "
                                              "needs at most 8.00 s; no injection named a replica")


def test_the_summary_lists_failures_first_and_at_most_a_few():
    (bullets,) = summary_blocks({"verdicts": [INCONCLUSIVE, PASS, FAIL]}, {})
    assert [i.split(" (")[0] for i in bullets.items] == ["FAIL available-during-kill", "INCONCLUSIVE replica-back"]
    assert bullets.kinds == ("fail", "inconclusive")
    many = [FAIL | {"name": f"h{i}"} for i in range(MAX_LISTED + 3)]
    (bullets,) = summary_blocks({"verdicts": many}, {})
    assert len(bullets.items) == MAX_LISTED + 1 and bullets.items[-1] == "... and 3 more not passed: see Verdicts below."
    assert summary_blocks({"verdicts": [PASS]}, {}) == []


def test_failing_line_names_what_did_not_pass():
    twice = FAIL | {"scope": "fault kill, cohort other", "measured": 0.5}
    analysis = {"verdicts": [PASS, FAIL, twice, INCONCLUSIVE]}
    assert failing_line(analysis) == ("failed: available-during-kill (success_ratio 78.67%, needs >= 99.00%); "
                                      "inconclusive: replica-back")
    assert failing_line({"verdicts": [PASS]}) == ""


def test_cohort_deltas_are_changes_from_each_cohorts_baseline():
    def phase(name, cohorts, kind="phase"):
        return {"name": name, "kind": kind, "slis": {"requests": 10}, "cohorts": cohorts}

    analysis = {
        "cohorts": ["clean", "drifted"],
        "phases": [
            phase("baseline", {"clean": {"success_ratio": 0.99, "accuracy": 0.9}, "drifted": {"success_ratio": None, "accuracy": None}}),
            phase("fault", {"clean": {"success_ratio": 0.80, "accuracy": 0.85}, "drifted": {"success_ratio": 0.5, "accuracy": 0.4}}),
            phase("after", {"clean": {"success_ratio": 1.0, "accuracy": None}}),
            phase("all", {"clean": {"success_ratio": 0.9, "accuracy": 0.9}}),
            phase("kill", {"clean": {"success_ratio": 0.8, "accuracy": 0.85}}, kind="fault"),
        ],
    }
    d = cohort_deltas(analysis)
    assert d["phases"] == ["fault", "after"] and d["cohorts"] == ["clean", "drifted"]
    clean = d["success_ratio"]["clean"]
    assert clean["baseline"] == 0.99
    assert round(clean["delta_pp"]["fault"], 9) == -19.0 and round(clean["delta_pp"]["after"], 9) == 1.0
    assert d["accuracy"]["clean"]["delta_pp"]["after"] is None  # no value in that phase: a gap, never 0
    assert d["success_ratio"]["drifted"] == {"baseline": None, "delta_pp": {"fault": None, "after": None}}


def test_the_cohort_plot_reads_in_points_from_the_baseline(tmp_path):
    write_run(tmp_path)
    render_report(tmp_path, experiment=experiment_model())
    html = (tmp_path / "report.html").read_text()
    assert re.search(r'<img id="plot-cohorts" alt="Success ratio and accuracy per cohort: change from the cohort&#x27;s '
                     r'baseline in each phase, in points"', html)
