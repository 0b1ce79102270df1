"""The report's opening summary (outcome, what failed in words, a line per fault, the timeline) and the CLI's last line; used by document.py and cli.py.

Everything here is read from the analysis dict (analysis.json); nothing is measured again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaosml.report.blocks import Block, Bullets, Image, Table, fmt_ms, fmt_ratio, fmt_s, fmt_sli

OP_WORDS = {">=": "at least", "<=": "at most", ">": "above", "<": "below", "==": "exactly"}
# The summary lists this many failing or inconclusive verdicts, then says how many more the Verdicts table holds.
MAX_LISTED = 6
TIMELINE_ALT = "Latency p50/p99, success and fallback ratio and request rate per window, faults shaded"


def _not_passed(analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdicts that did not pass: failures first, then inconclusive ones, each in the order judged."""
    verdicts = analysis.get("verdicts") or []
    return [v for v in verdicts if v["verdict"] == "fail"] + [v for v in verdicts if v["verdict"] == "inconclusive"]


def verdict_sentence(v: dict[str, Any]) -> str:
    """One verdict in words: what was measured against what it needed, and the analysis's own detail."""
    needs = f"needs {OP_WORDS.get(v['op'], v['op'])} {fmt_sli(v['sli'], v['target'])}"
    measured = "not measured" if v["measured"] is None else f"measured {fmt_sli(v['sli'], v['measured'])}"
    return f"{v['verdict'].upper()} {v['name']} ({v['kind']}, {v['scope']}): {v['sli']} {measured}, {needs}; {v['detail']}"


def failing_line(analysis: dict[str, Any]) -> str:
    """The failing and inconclusive verdicts by name, for the console's last line; "" when every verdict passed.

    e.g. ``failed: available-during-kill (success_ratio 78.67%, needs >= 99.00%); inconclusive: replica-back``.
    A name judged in several scopes is named once, with its first failing scope's figures.
    """
    parts = []
    for kind in ("fail", "inconclusive"):
        named: dict[str, dict[str, Any]] = {}
        for v in analysis.get("verdicts") or []:
            if v["verdict"] == kind:
                named.setdefault(v["name"], v)
        if not named:
            continue
        if kind == "fail":
            shown = [f"{n} ({v['sli']} {fmt_sli(v['sli'], v['measured'])}, needs {v['op']} {fmt_sli(v['sli'], v['target'])})"
                     for n, v in named.items()]
        else:
            shown = list(named)
        parts.append(f"{'failed' if kind == 'fail' else 'inconclusive'}: {', '.join(shown)}")
    return "; ".join(parts)


def fault_span(inj: dict[str, Any], analysis: dict[str, Any]) -> tuple[float, float]:
    """Offsets (s since load start) an injection's worst window is searched in.

    From apply to the later of its recover (load end when it was never recovered) and its recovery
    edge (apply + MTTR; the end of the MTTR search when the SLOs never held again).
    """
    load_end = float(analysis["load"]["duration_s"])
    start = float(inj["offset_s"])
    end = start + float(inj["duration_s"]) if inj["duration_s"] is not None else load_end
    if inj["mttr_s"] is not None:
        end = max(end, start + float(inj["mttr_s"]))
    else:
        end = max(end, min(load_end, start + int(inj.get("windows_searched") or 0) * float(analysis["window_s"])))
    return start, end


def worst_windows(analysis: dict[str, Any], fault: str) -> dict[str, tuple[float, float] | None]:
    """The worst timeline window of a fault's spans: lowest success ratio and highest p99, each as (value, window start).

    A window counts when it overlaps a span of any injection of the fault (:func:`fault_span`; the
    window holding apply counts even for a span of zero length) and holds at least one request.
    None: no such window. Ties go to the earliest window.
    """
    ts = analysis["timeseries"]
    w = float(ts["window_s"])
    spans = [fault_span(inj, analysis) for inj in analysis.get("injections") or [] if inj["fault"] == fault]
    chosen = [
        i for i, t in enumerate(ts["t"])
        if ts["requests"][i] and any(t + w > s and (t < e or t <= s) for s, e in spans)
    ]
    out: dict[str, tuple[float, float] | None] = {}
    for sli, worse in (("success_ratio", min), ("latency_p99_ms", max)):
        values = [(float(ts[sli][i]), float(ts["t"][i])) for i in chosen if ts[sli][i] is not None]
        out[sli] = worse(values, key=lambda p: p[0]) if values else None
    return out


def _ttd_cell(f: dict[str, Any], injections: Sequence[dict[str, Any]]) -> str:
    sources: dict[str, int] = {}
    for inj in injections:
        if inj.get("detected_source"):
            sources[inj["detected_source"]] = sources.get(inj["detected_source"], 0) + 1
    if not sources:
        return "nothing observable"
    n = f["injections"]
    by = ", ".join(k if c == n else f"{k} {c} of {n}" for k, c in sources.items())
    missed = n - sum(sources.values())
    return f"{fmt_s(f['ttd_s']['mean'])} mean, by {by}" + (f"; {missed} of {n} not observable" if missed else "")


def _mttr_cell(f: dict[str, Any]) -> str:
    m = f["mttr_s"]
    text = "n/a" if m["count"] == 0 else f"{fmt_s(m['mean'])} mean, {fmt_s(m['max'])} max"
    if f["not_recovered"]:
        text += f"; not recovered in {f['not_recovered']} of {f['injections']}"
    return text


def _worst_cell(worst: dict[str, tuple[float, float] | None]) -> str:
    parts = []
    success, p99 = worst.get("success_ratio"), worst.get("latency_p99_ms")
    if success is not None:
        parts.append(f"success {fmt_ratio(success[0])} at +{success[1]:g} s")
    if p99 is not None:
        parts.append(f"p99 {fmt_ms(p99[0])} at +{p99[1]:g} s")
    return ", ".join(parts) or "no requests"


def fault_lines(analysis: dict[str, Any]) -> list[Block]:
    """One row per fault: injections, TTD with who saw it first, MTTR, and its worst window."""
    faults = analysis.get("faults") or []
    if not faults:
        return []
    no_effect = analysis.get("no_effect") or {}
    rows, kinds = [], []
    for f in faults:
        injections = [i for i in analysis.get("injections") or [] if i["fault"] == f["fault"]]
        rows.append((
            f"{f['fault']} ({f['type']})",
            str(f["injections"]),
            _ttd_cell(f, injections),
            _mttr_cell(f),
            _worst_cell(worst_windows(analysis, f["fault"])),
        ))
        kinds.append("fail" if f["not_recovered"] or f["fault"] in no_effect else "")
    headers = ("fault", "injections", "TTD (first seen by)", "MTTR", f"worst {float(analysis['timeseries']['window_s']):g} s window")
    return [Table(headers, tuple(rows), tuple(kinds))]


def summary_blocks(analysis: dict[str, Any], plots: dict[str, Path]) -> list[Block]:
    """What did not pass (in words), one line per fault, and the timeline plot: the rest of the report's first screen."""
    blocks: list[Block] = []
    listed = _not_passed(analysis)
    if listed:
        shown = listed[:MAX_LISTED]
        items = [verdict_sentence(v) for v in shown]
        kinds = [v["verdict"] for v in shown]
        if len(listed) > MAX_LISTED:
            items.append(f"... and {len(listed) - MAX_LISTED} more not passed: see Verdicts below.")
            kinds.append("")
        blocks.append(Bullets(tuple(items), tuple(kinds)))
    blocks.extend(fault_lines(analysis))
    if "timeline" in plots:
        blocks.append(Image("timeline", plots["timeline"], TIMELINE_ALT))
    return blocks
