"""The report as a list of format-neutral blocks built from the analysis dict and the journal; rendered by markdown.py and html.py.

Building the content once keeps the Markdown and HTML reports saying the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaosml.analysis.delivery import SHORTFALL_MARGIN
from chaosml.analysis.slis import MIX_CLASSES
from chaosml.hostload import HostLoad
from chaosml.model.catalog import ALERT_INJECTION_SLIS, ALERT_RUN_SLIS, INJECTION_SLIS, PHASE_DEFINITIONS, PHASE_RULE, SAMPLE_SLIS
from chaosml.report.blocks import RATIO_SLIS as RATIO_SLIS  # re-exported: compare formats its values by it
from chaosml.report.blocks import (
    Banner,
    Block,
    Collapsed,
    Heading,
    Image,
    Para,
    Section,
    Table,
    definition_anchor,
    definition_links,
    fmt_num,
    fmt_ratio,
    fmt_s,
    fmt_sli,
    fmt_time,
)
from chaosml.report.degradation import degradation_section, switch_rule
from chaosml.report.monitoring import monitoring_section
from chaosml.report.summary import summary_blocks

PARTIAL_STATUSES = ("running", "interrupted", "partial")

# ----------------------------------------------------------------------------- sections

PHASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("requests", "requests"),
    ("throughput_rps", "req/s"),
    ("success_ratio", "success"),
    ("error_ratio", "errors"),
    ("invalid_ratio", "invalid"),
    ("fallback_ratio", "fallback"),
    ("latency_p50_ms", "p50"),
    ("latency_p99_ms", "p99"),
    ("accuracy", "accuracy"),
    ("confident_wrong_ratio", "confident wrong"),
)

COHORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("requests", "requests"),
    ("success_ratio", "success"),
    ("error_ratio", "errors"),
    ("invalid_ratio", "invalid"),
    ("fallback_ratio", "fallback"),
    ("rejected_ratio", "rejected"),
    ("latency_p99_ms", "p99"),
    ("accuracy", "accuracy"),
    ("confident_wrong_ratio", "confident wrong"),
)


def _unmeasured(analysis: dict[str, Any]) -> dict[str, str]:
    """SLI -> why this run has no input for it (an older analysis: from served_by_exposed)."""
    out = dict(analysis.get("unmeasured") or {})
    if analysis.get("served_by_exposed", True) is False:
        for k in ("primary_ratio", "fallback_ratio", "default_ratio"):
            out.setdefault(k, "served_by is not exposed by this stack")
    return out


def _cell(name: str, value: float | None, unmeasured: dict[str, str] | None = None) -> str:
    if unmeasured and name in unmeasured:
        return "not exposed" if "not exposed" in unmeasured[name] else "not measured"
    if name == "requests":
        return "0" if value is None else str(int(value))
    return fmt_sli(name, value)


def header(analysis: dict[str, Any], journal: dict[str, Any]) -> list[Block]:
    """The title and the outcome: banners for an unfinished, aborted or failed run, missing samples, and the verdict counts."""
    status = str(analysis.get("status") or "unknown")
    blocks: list[Block] = [Heading(f"chaosml report: {analysis['title']}", 1)]
    if status in PARTIAL_STATUSES:
        blocks.append(Banner(f"PARTIAL: the run did not finish (status {status}); figures cover what was recorded.", "warn"))
    elif status == "aborted":
        blocks.append(Banner(f"ABORTED: {analysis.get('reason') or 'no reason recorded'}", "warn"))
    elif status == "failed":
        blocks.append(Banner(f"FAILED RUN: {analysis.get('reason') or 'no reason recorded'}", "fail"))
    if analysis.get("samples_problem"):
        blocks.append(Banner(f"NO SAMPLES: {analysis['samples_problem']}", "fail"))
    c = analysis["counts"]
    total = sum(c.values())
    if analysis["passed"]:
        blocks.append(Banner(f"PASSED: all {total} verdicts passed", "pass"))
    else:
        blocks.append(Banner(f"NOT PASSED: {c['fail']} failed, {c['inconclusive']} inconclusive, {c['pass']} passed of {total}", "fail"))
    for fault, why in (analysis.get("no_effect") or {}).items():
        blocks.append(Banner(f"NO EFFECT: fault {fault}: {why}. Nothing was tested: every verdict scoped to it is "
                             "inconclusive and the run cannot pass.", "fail"))
    host = HostLoad.from_dict(journal.get("host_load"))
    if host is not None and host.loadgen_saturated:
        blocks.append(Banner(f"LOAD GENERATOR CPU-SATURATED: {host.describe()}; check the delivered rate per phase "
                             "before trusting latency figures.", "warn"))
    return blocks


def run_facts(analysis: dict[str, Any], journal: dict[str, Any]) -> list[Block]:
    """Release, profile, run id, status, load span and what this run could not measure."""
    status = str(analysis.get("status") or "unknown")
    load = analysis["load"]
    host = HostLoad.from_dict(journal.get("host_load"))
    rows = [
        ("release", str(analysis["release"])),
        ("profile", str(analysis["profile"])),
        ("platform", str(analysis["platform"])),
        ("run id", str(analysis["run_id"])),
        ("status", status + (f" ({analysis['reason']})" if analysis.get("reason") else "")),
        ("experiment file", str(journal.get("experiment_file", ""))),
        ("load started", fmt_time(load["started_at"])),
        ("load duration", fmt_s(load["duration_s"]) + ("" if load["ended_at"] is not None else " (so far: no load end recorded)")),
        ("requests", str(next((p["slis"]["requests"] for p in analysis["phases"] if p["name"] == "all"), 0))),
        ("host load", "not recorded (no load ran, or a run of an older chaosml)" if host is None else host.describe()),
        ("window / hold", f"{analysis['window_s']:g} s x {analysis['hold']}"),
        ("chaosml", str(journal.get("chaosml_version", ""))),
    ]
    if analysis.get("served_by_exposed", True) is False:
        rows.append(("serving path", "not exposed by this stack: fallback/primary ratios are not measured, never guessed"))
    for sli, why in _unmeasured(analysis).items():
        if sli not in ("primary_ratio", "fallback_ratio", "default_ratio"):
            rows.append((f"{sli}", f"not measured ({why}): its verdicts are inconclusive, never 0% or a pass"))
    return [Heading("Run"), Table(("", ""), tuple(rows))]


def verdict_table(analysis: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Verdicts")]
    verdicts = analysis["verdicts"]
    if not verdicts:
        return [*blocks, Para("No SLOs or hypotheses to judge.")]
    rows = []
    kinds = []
    for v in verdicts:
        rows.append(
            (
                v["verdict"].upper(),
                v["name"],
                v["kind"],
                v["scope"],
                v["sli"],
                fmt_sli(v["sli"], v["measured"]),
                f"{v['op']} {fmt_sli(v['sli'], v['target'])}",
                str(v["samples"]),
                v["detail"],
            )
        )
        kinds.append(v["verdict"])
    table = Table(("verdict", "name", "kind", "scope", "SLI", "measured", "target", "n", "detail"), tuple(rows), tuple(kinds))
    return [*blocks, table]


def fault_timeline(analysis: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Fault timeline")]
    events = analysis.get("events") or []
    if not events:
        return [*blocks, Para("No fault was applied.")]
    rows = []
    kinds = []
    for e in events:
        rows.append((f"{e['offset_s']:+.2f} s", e["source"], e["what"], "yes" if e["ok"] else "NO", ", ".join(e["subjects"]) or "-"))
        kinds.append("" if e["ok"] else "fail")
    blocks.append(Para("Offsets are seconds since load start; fault offsets in the experiment are relative to it too."))
    table = Table(("offset", "source", "event", "ok", "targets / subject"), tuple(rows), tuple(kinds))
    failed = sum(1 for e in events if not e["ok"])
    label = f"{len(events)} fault and target events" + (f", {failed} not ok" if failed else "")
    blocks.append(Collapsed(label, (table,)))
    return blocks


def injection_tables(analysis: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [Heading("Injections: detection and recovery")]
    injections = analysis.get("injections") or []
    if not injections:
        return [*blocks, Para("No injections.")]
    blocks.append(
        Para(
            "TTD: apply to the first thing users or the stack itself could observe: an error, fallback or slow answer to a "
            "request in flight during the fault (when it arrived), or the stack's own signal (a failed readiness check, a "
            "breaker event); the harness seeing the process it killed does not count. MTTR: apply to the recovery edge: "
            f"the first {analysis['hold']} windows of {analysis['window_s']:g} s in a row within every SLO bound it, and the "
            "requests of the last window that broke an SLO locate it (midpoint between the last request that broke an SLO "
            "and the next one; ± is half that gap, or the whole window when no request located it). MTTR 0.00 s = the SLOs "
            "never broke after apply. Ready: apply to the last targeted replica ready again."
        )
    )
    rows = []
    kinds = []
    for r in injections:
        rows.append(
            (
                f"{r['fault']} #{r['injection'] + 1}",
                r["type"],
                f"{r['offset_s']:.2f} s",
                fmt_s(r["duration_s"]) if r["duration_s"] is not None else "no recover",
                ", ".join(r["targets"]) or "-",
                fmt_s(r["ttd_s"]) if r["ttd_s"] is not None else "nothing observable"
                + ("" if r.get("ttd_min_s") is None else f" (TTD ≥ {fmt_s(r['ttd_min_s'])})"),
                f"{r['detected_source']}: {r['detected_by']}" if r.get("detected_source") else (r["detected_by"] or "-"),
                _fmt_mttr(r),
                fmt_s(r["ready_s"]) if r["ready_s"] is not None else ("-" if not r["targets"] else "not ready"),
                fmt_s(r["restart_delay_s"]) if r["targets"] else "-",
            )
        )
        kinds.append("" if r["recovered"] and r["apply_ok"] else "fail")
    blocks.append(
        Table(
            ("injection", "type", "apply at", "fault window", "targets", "TTD", "detected by", "MTTR", "ready", "restart delay"),
            tuple(rows),
            tuple(kinds),
            definition_links("", "", "", "", "", "ttd_s", "TTD first seen by", "mttr_s", "ready_s", ""),
        )
    )
    agg_rows = []
    sentences = []
    for f in analysis.get("faults") or []:
        m = f["mttr_s"]
        mttr = "n/a" if m["count"] == 0 else f"{fmt_s(m['mean'])} / {fmt_s(m['median'])} / {fmt_s(m['max'])}"
        agg_rows.append(
            (
                f["fault"],
                str(f["injections"]),
                f"{f['recovered']} of {f['injections']}",
                mttr,
                fmt_s(f["ttd_s"]["mean"]) + f" ({f['detected']} detected)",
                fmt_s(f["ready_s"]["mean"]) if f["with_targets"] else "-",
            )
        )
        if f["not_recovered"]:
            sentences.append(f"{f['fault']}: not recovered in {f['not_recovered']} of {f['injections']} injections.")
        if f["with_targets"]:
            if f["ready_s"]["count"]:
                sentences.append(
                    f"{f['fault']}: restart delay {f['restart_delay_s']:.1f} s vs measured replica ready "
                    f"{f['ready_s']['mean']:.1f} s (mean over {f['ready_s']['count']})."
                )
            else:
                sentences.append(f"{f['fault']}: restart delay {f['restart_delay_s']:.1f} s; no targeted replica was seen ready again.")
    blocks.append(Heading("Per fault", 3))
    blocks.append(Table(("fault", "injections", "recovered", "MTTR mean / median / max", "TTD mean", "ready mean"), tuple(agg_rows),
                        header_links=definition_links("", "", "", "mttr_s", "ttd_s", "ready_s")))
    blocks.extend(Para(s) for s in sentences)
    blocks.extend(replacement_table(analysis))
    return blocks


def _fmt_mttr(r: dict[str, Any]) -> str:
    if not r["recovered"]:
        least = r.get("mttr_min_s")
        return "not recovered" + ("" if least is None else f" (MTTR ≥ {fmt_s(least)})")
    precision = r.get("mttr_precision_s")
    if r["mttr_s"] == 0.0:
        return fmt_s(0.0) + " (SLOs never broke)"
    return fmt_s(r["mttr_s"]) + ("" if precision is None else f" ± {precision:.2f}")


def replacement_table(analysis: dict[str, Any]) -> list[Block]:
    """Kubernetes: MTTR broken into detect / reschedule / ready / SLO recovered, per killed pod (and per container)."""
    reps = analysis.get("replacements") or []
    if not reps:
        return container_table(analysis)
    rows = [
        (
            r.get("injection") or "-",
            f"{r.get('victim')} -> {r.get('replacement')}",
            fmt_s(r.get("deletion_seen_s")),
            fmt_s(r.get("created_s")),
            fmt_s(r.get("scheduled_s")),
            fmt_s(r.get("ready_s")),
            "not recovered" if r.get("injection") and r.get("slo_mttr_s") is None else fmt_s(r.get("slo_mttr_s")),
            str(r.get("node") or "-"),
        )
        for r in reps
    ]
    return [
        Heading("MTTR breakdown per replaced pod", 3),
        Para(
            "Seconds after the pod's deletion, from the Kubernetes API (pod watch): the deletion seen (detect), the "
            "replacement created by its ReplicaSet and scheduled on a node (reschedule), the replacement Ready, and the "
            "injection's MTTR from traffic (SLO recovered)."
        ),
        Table(("injection", "pod", "detect", "created", "scheduled", "ready", "SLO recovered", "node"), tuple(rows)),
        *container_table(analysis),
    ]


def container_table(analysis: dict[str, Any]) -> list[Block]:
    """Kubernetes: MTTR broken into detect / restart (back-off included) / ready / SLO recovered, per container fault."""
    rows = tuple(
        (r.get("injection") or "-", f"{r.get('pod')} ({r.get('action')}; restarts {r.get('restarts_before')} -> {r.get('restarts')})",
         fmt_s(r.get("unready_s")), "-" if r.get("restarted_s") is None else fmt_s(r["restarted_s"]), fmt_s(r.get("ready_s")),
         "not recovered" if r.get("injection") and r.get("slo_mttr_s") is None else fmt_s(r.get("slo_mttr_s")), str(r.get("node") or "-"))
        for r in analysis.get("container_recoveries") or [])
    return [Heading("MTTR breakdown per container killed or paused in place", 3), Para(
        "Seconds after chaosml killed or paused the container, from the pod watch: readiness lost (detect), the kubelet's "
        "restart in the same pod (its back-off included; - when not restarted), the pod Ready again, and the injection's "
        "MTTR from traffic (SLO recovered)."),
        Table(("injection", "pod", "detect", "restarted", "ready", "SLO recovered", "node"), rows)] if rows else []


def _phase_rows(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in analysis["phases"] if p["slis"]["requests"] or p["name"] in ("baseline", "fault", "after", "all")]


def phase_table(analysis: dict[str, Any]) -> list[Block]:
    rows = []
    for p in _phase_rows(analysis):
        name = p["name"] if p["kind"] == "phase" else f"{p['name']} (fault)"
        span = f"{p['duration_s']:.1f} s"
        rows.append((name, span, *(_cell(k, p["slis"][k], _unmeasured(analysis)) for k, _ in PHASE_COLUMNS)))
    headers = ("phase", "duration", *(label for _, label in PHASE_COLUMNS))
    return [
        Heading("SLIs per phase"),
        Para("Phases come from the recorded fault events; a request cut by a fault counts in its window (see Definitions). "
             "Latencies are over all requests, ratios as defined in the catalogue (invalid: a 2xx whose body is not an "
             "answer, counted in errors too; confident wrong: wrong at confidence >= "
             f"{analysis['confidence_threshold']:g})."),
        Table(headers, tuple(rows), header_links=definition_links("phase rule", "", *(k for k, _ in PHASE_COLUMNS))),
    ]


def _achieved(d: dict[str, Any]) -> str:
    """The achieved share of the requested load, marked SHORT and TARGET-LIMITED as the delivery check found it."""
    return (("n/a" if d["ratio"] is None else f"{100 * d['ratio']:.0f}%") + (" SHORT" if d["short"] else "")
            + (" TARGET-LIMITED" if d.get("target_limited") else ""))


def load_table(analysis: dict[str, Any]) -> list[Block]:
    """Requested vs achieved load per phase; a short phase's sample verdicts are inconclusive."""
    rows = [d for d in analysis.get("load_delivery") or [] if d["duration_s"] > 0 and d["phase"] != "between"]
    if not rows:
        return []
    return [
        Heading("Load: requested vs achieved"),
        Para("Requested: users x rate_per_user, ramping up at spawn_rate from load start. A phase that got less than "
             f"{100 * (1 - SHORTFALL_MARGIN):.0f}% of it did not get the load the experiment asked for: its sample verdicts "
             "are inconclusive. Each user waits for its answer, so a target answering slower than the pacing holds the "
             "rate down itself (TARGET-LIMITED): that is the stack's failure, judged as measured."),
        Table(("phase", "requested req/s", "achieved req/s", "achieved"),
              tuple((d["phase"], f"{d['requested_rps']:.1f}", f"{d['achieved_rps']:.1f}", _achieved(d)) for d in rows),
              tuple("fail" if d["short"] else "" for d in rows)),
    ]


def stage_table(analysis: dict[str, Any]) -> list[Block]:
    """Requested vs achieved load per stage of load.shape (by send time)."""
    rows = [d for d in analysis.get("load_stages") or [] if d["duration_s"] > 0]
    if not rows:
        return []
    return [
        Heading("Load shape: requested vs achieved per stage"),
        Para("Each stage of load.shape (see the plan) with the requests sent in it: requested is rate_per_user x the "
             f"users curve of the shape; a stage below {100 * (1 - SHORTFALL_MARGIN):.0f}% of it is SHORT."),
        Table(("stage", "duration", "requested req/s", "achieved req/s", "achieved"),
              tuple((d["phase"], f"{d['duration_s']:.1f} s", f"{d['requested_rps']:.1f}", f"{d['achieved_rps']:.1f}",
                     _achieved(d)) for d in rows),
              tuple("fail" if d["short"] else "" for d in rows)),
    ]


def file_cohorts_note(journal: dict[str, Any] | None) -> list[Block]:
    """Which cohorts the data file's ``load.data.cohort`` column gave, their test rows and share of the load."""
    info = (journal or {}).get("file_cohorts")
    if not isinstance(info, dict) or not info.get("cohorts"):
        return []
    total = sum(float(w) for w in (info.get("mix") or {}).values()) or 1.0
    parts = []
    for name, c in info["cohorts"].items():
        share = float(c.get("weight") or 0.0) / total
        parts.append(f"{name} ({c.get('test_rows', 0)} test rows, {100 * share:.3g}% of requests)")
    return [Para(f"Cohorts from the data file's column {info.get('column')!r} (clean rows are sent and judged under their "
                 f"file cohort): {', '.join(parts)}.")]


COHORTS_PLOT_ALT = "Success ratio and accuracy per cohort: change from the cohort's baseline in each phase, in points"
SERVED_BY_PLOT_ALT = "Stacked served-by mix per window, errors included"


def _plot(plots: dict[str, Path] | None, name: str, alt: str) -> list[Block]:
    """The named plot beside the table it belongs to, when it was drawn."""
    return [Image(name, plots[name], alt)] if plots and name in plots else []


def cohort_table(analysis: dict[str, Any], journal: dict[str, Any] | None = None, plots: dict[str, Path] | None = None) -> list[Block]:
    cohorts = analysis.get("cohorts") or []
    if not cohorts:
        return []
    rows = []
    for c in cohorts:
        for p in analysis["phases"]:
            if p["kind"] != "phase" or p["name"] == "between":
                continue
            s = p["cohorts"].get(c)
            if not s or not s["requests"]:
                continue
            rows.append((c, p["name"], *(_cell(k, s[k], _unmeasured(analysis)) for k, _ in COHORT_COLUMNS)))
    headers = ("cohort", "phase", *(label for _, label in COHORT_COLUMNS))
    return [Heading("Per cohort"), *file_cohorts_note(journal),
            Table(headers, tuple(rows), header_links=definition_links("", "", *(k for k, _ in COHORT_COLUMNS))), *_plot(plots, "cohorts", COHORTS_PLOT_ALT)]


VERSION_COLUMNS: tuple[tuple[str, str], ...] = (("requests", "answers"), ("accuracy", "accuracy"),
                                                ("confident_wrong_ratio", "confident wrong"))


def version_table(analysis: dict[str, Any]) -> list[Block]:
    """Per phase, each model version's answers and quality, overall and per cohort; only when some answer came from a
    model-rollout variant (a version ``<base>+<variant>``)."""
    phases = [p for p in analysis["phases"] if p.get("model_versions") and p["kind"] == "phase" and p["name"] != "between"]
    if not any("+" in v for p in phases for v in p["model_versions"]):
        return []
    unmeasured = _unmeasured(analysis)
    rows = [(p["name"], version, cohort, *(_cell(k, s[k], unmeasured) for k, _ in VERSION_COLUMNS))
            for p in phases for version, by in p["model_versions"].items() for cohort, s in by.items()]
    return [
        Heading("Model versions"),
        Para("Answers by the model version that gave them (response model_version; a variant a model-rollout served is "
             "<primary>+<variant>), per phase, over all cohorts and per cohort: did a release regress one cohort only?"),
        Table(("phase", "model version", "cohort", *(label for _, label in VERSION_COLUMNS)), tuple(rows)),
    ]


def mix_table(analysis: dict[str, Any], plots: dict[str, Path] | None = None) -> list[Block]:
    rows = []
    classes = [c for c in MIX_CLASSES if any(p["served_by"].get(c) for p in analysis["phases"])] or ["primary"]
    for p in _phase_rows(analysis):
        n = sum(p["served_by"].values())
        rows.append((p["name"], str(n), *(fmt_ratio(p["served_by"].get(c, 0) / n) if n else "n/a" for c in classes)))
    return [
        Heading("Served-by mix per phase"),
        Para("Share of requests by how they ended: the serving path for 2xx answers, else rejected, error, timeout "
             "or invalid (a 2xx whose body is not an answer)."),
        Table(("phase", "requests", *classes), tuple(rows)),
        *_plot(plots, "served_by", SERVED_BY_PLOT_ALT),
    ]


DRIFT_PLOT_ALT = "Accuracy, confident-wrong and fallback ratio per drift-magnitude bin"


def drift_section(analysis: dict[str, Any], plots: dict[str, Path] | None = None) -> list[Block]:
    """Quality per drift-magnitude bin, for a run that sent drifted requests."""
    rows = analysis.get("drift") or []
    if not rows:
        return []
    unmeasured = _unmeasured(analysis)
    keys = ("success_ratio", "accuracy", "confident_wrong_ratio", "fallback_ratio", "rejected_ratio")
    return [
        Heading("Quality vs drift"),
        Para("Requests binned by the drift magnitude at send time (samples column drift: the fraction of the "
             "declared drift reached, 0-1; none = no drift active). Does quality hold as the shift grows, and does "
             "the stack's guard react (fallback, rejected)?"),
        Table(("drift", "requests", *keys),
              tuple((r["bin"], str(r["requests"]), *(_cell(k, r.get(k), unmeasured) for k in keys)) for r in rows)),
        *(Para(f"{s['fault']} #{s['injection'] + 1}: " + (
            "the stack never switched to the fallback (see Degradation)" if s["switch_s"] is None else
            f"the stack switched to the fallback {fmt_s(s['switch_s'])} after apply, at drift magnitude {fmt_num(s['magnitude'], 2)}"))
          for s in analysis.get("drift_switches") or []),
        *_plot(plots, "drift", DRIFT_PLOT_ALT),
    ]


def environment(journal: dict[str, Any]) -> list[Block]:
    env = journal.get("environment") or {}
    rows: list[tuple[str, str]] = [("python", str(env.get("python", ""))), ("platform", str(env.get("platform", "")))]
    for name, version in sorted((env.get("packages") or {}).items()):
        rows.append((str(name), str(version)))
    for key, value in sorted((journal.get("target") or {}).items()):
        if isinstance(value, dict | list):
            continue
        rows.append((f"target.{key}", str(value)))
    return [Heading("Environment"), Table(("", ""), tuple(rows))]


def notes(analysis: dict[str, Any]) -> list[Block]:
    if not analysis.get("notes"):
        return []
    return [Heading("Notes"), *(Para(n) for n in analysis["notes"])]


def definitions(analysis: dict[str, Any]) -> list[Block]:
    """What each phase and per-injection figure means: the catalogue's one definition, quoted."""
    deg = analysis.get("degradation") or {}
    rows = [("phase rule", PHASE_RULE), *((f"phase {k}", v) for k, v in PHASE_DEFINITIONS.items())]
    rows += [(k, v) for k, v in INJECTION_SLIS.items()]
    rows.append(("MTTR ±", ("half the gap between the last request that broke an SLO and the next one; the whole window "
                            "when no request located the edge")))
    rows.append(("TTD first seen by", "users: a request's answer showed the fault first; stack: the stack's own signal "
                 "(a failed readiness check, a breaker event) did; alert: an expected Prometheus alert fired first"))
    rows.append(("worst window", ("of the timeline windows that overlap a span of an injection of the fault (apply to the "
                                  "later of its recover and its recovery edge; to the end of the MTTR search when it did not "
                                  "recover) and hold a request: the lowest success ratio and the highest p99, with the "
                                  "window's start")))
    rows.append(("switch", "a significant rise of fallback/default answers over the " + switch_rule(deg)
                 + "; delay = apply to its change point; no switch = no back to primary"))
    rows += list(SAMPLE_SLIS.items())
    if analysis.get("monitoring"):
        rows += [*ALERT_INJECTION_SLIS.items(), *ALERT_RUN_SLIS.items()]
    return [Heading("Definitions"), Table(("figure", "definition"), tuple(rows), row_ids=tuple(definition_anchor(k) for k, _ in rows))]


def build_document(analysis: dict[str, Any], journal: dict[str, Any], plots: dict[str, Path]) -> list[Block]:
    """Every section of the report, in order: the summary first (its first screen), each other plot beside its table, the
    long event table near the end, collapsed."""
    title, *outcome = header(analysis, journal)
    return [
        title,
        Section("summary", (*outcome, *summary_blocks(analysis, plots))),
        *run_facts(analysis, journal),
        *verdict_table(analysis),
        *injection_tables(analysis),
        *phase_table(analysis),
        *load_table(analysis),
        *stage_table(analysis),
        *cohort_table(analysis, journal, plots),
        *mix_table(analysis, plots),
        *version_table(analysis),
        *degradation_section(analysis),
        *drift_section(analysis, plots),
        *monitoring_section(analysis),
        *notes(analysis),
        *fault_timeline(analysis),
        *definitions(analysis),
        *environment(journal),
    ]
