"""The report's degradation section: the served-by mix during each fault against the baseline, the fallback switch and its way back."""

from __future__ import annotations

from typing import Any

from chaosml.analysis.slis import ERROR_CLASSES, MIX_CLASSES
from chaosml.report.blocks import Block, Heading, Para, Table, definition_links, fmt_ratio, fmt_s


def _share_pair(d: dict[str, Any], key: str, cls: str) -> str:
    return f"{fmt_ratio(d[key]['fault'].get(cls))} (base {fmt_ratio(d[key]['baseline'].get(cls))})"


def degradation_section(analysis: dict[str, Any]) -> list[Block]:
    """Per fault: what served, how well, how fast it switched to the fallback and came back to the primary."""
    deg = analysis.get("degradation") or {}
    faults = [f for f in deg.get("faults") or [] if f.get("injections")]
    if not faults:
        return []
    blocks: list[Block] = [
        Heading("Degradation"),
        Para(
            "Served-by shares are of all requests in the fault windows (baseline in brackets). Switch: a significant rise "
            "of the share of fallback/default answers (of kinds the cohort did not usually get in the baseline) over the "
            + switch_rule(deg)
            + "; its delay is apply to the change point of those answers, otherwise no switch. Back (only after a switch): recover to the first "
            f"{deg.get('hold')} windows of {deg.get('window_s', 1.0):g} s in a row with a primary ratio within "
            f"{100 * float(deg.get('back_tolerance', 0.05)):.0f} points of the baseline "
            f"({fmt_ratio(deg.get('baseline_primary_ratio'))}), searched until the next fault is applied. "
            + (
                f"The baseline already gave such an answer every {fmt_s(deg['baseline_switch_interval_s'])} on average. "
                if deg.get("baseline_switch_interval_s") is not None
                else ""
            )
            + f"Circuit breaker transitions: {deg.get('breaker', 'not exposed')}."
        ),
    ]
    rows = []
    kinds = []
    for f in faults:
        for cohort, c in f["cohorts"].items():
            codes = c["status_codes"]["fault"]
            acc = c["accuracy"]["fault"]
            rows.append(
                (
                    f["fault"],
                    cohort,
                    str(c["requests"]["fault"]),
                    _share_pair(c, "served_by", "primary"),
                    f"{fmt_ratio(c['served_by']['fault'].get('fallback'))} / {fmt_ratio(c['served_by']['fault'].get('default'))}",
                    fmt_ratio(c["rejected_ratio"]["fault"])
                    + (" (" + ", ".join(f"{k}: {v}" for k, v in sorted(codes.items())) + ")" if codes else ""),
                    fmt_ratio(sum(c["served_by"]["fault"].get(k) or 0 for k in ERROR_CLASSES))
                    if c["requests"]["fault"]
                    else "n/a",
                    f"{fmt_ratio(acc['primary'])} / {fmt_ratio(acc['fallback'])}",
                    f"{fmt_ratio(c['confident_wrong_ratio']['fault'])} (base {fmt_ratio(c['confident_wrong_ratio']['baseline'])})",
                )
            )
            kinds.append("")
    blocks.append(
        Table(
            ("fault", "cohort", "requests", "primary", "fallback / default", "rejected (codes)", "errors",
             "accuracy primary / fallback", "confident wrong"),
            tuple(rows),
            tuple(kinds),
        )
    )
    trows = []
    for f in faults:
        for inj in f["per_injection"]:
            trows.append(
                (
                    f"{f['fault']} #{inj['injection'] + 1}",
                    fmt_s(inj["fallback_delay_s"]) if inj["fallback_delay_s"] is not None else "no switch",
                    inj["fallback_first"] or "-",
                    "- (no switch)" if not inj.get("switched", inj["fallback_delay_s"] is not None)
                    else fmt_s(inj["back_to_primary_s"]) if inj["back"]
                    else f"not back ({inj['windows_searched']} windows searched)",
                    str(inj["breaker_transitions"]),
                )
            )
    blocks.append(Table(("injection", "switch to fallback", "first switched answer", "back to primary", "breaker transitions"),
                        tuple(trows), header_links=definition_links("", "switch")))
    blocks.extend(Para(_degradation_sentence(f)) for f in faults)
    return blocks


def switch_rule(deg: dict[str, Any]) -> str:
    rule = deg.get("switch_rule") or {}
    if not rule:
        return "baseline"
    return (f"baseline ({rule['test']}, alpha {rule['alpha']:g}, at least {100 * float(rule['min_effect']):.0f} points more "
            "switched answers)")


def _degradation_sentence(f: dict[str, Any]) -> str:
    c = f["cohorts"]["all"]
    mix = c["served_by"]["fault"]
    parts = [f"{f['fault']} ({f['type']}, {f['injections']} injection{'s' if f['injections'] != 1 else ''}):"]
    served = ", ".join(
        f"{k} {fmt_ratio(mix.get(k))}" for k in MIX_CLASSES if k != "unknown" and mix.get(k)
    )
    parts.append(f"served {served or 'nothing'} of requests")
    acc = f["accuracy_by_path"]["fault"]
    if acc.get("fallback") is not None:
        parts.append(f"the fallback was right {fmt_ratio(acc['fallback'])} of the time vs {fmt_ratio(acc.get('primary'))} for the primary")
    elif acc.get("primary") is not None:
        parts.append(f"the primary was right {fmt_ratio(acc['primary'])} of the time")
    codes = c["status_codes"]["fault"]
    if codes:
        parts.append("rejections answered " + ", ".join(f"{k} x{v}" for k, v in sorted(codes.items())))
    parts.append(f"confident-wrong {fmt_ratio(c['confident_wrong_ratio']['fault'])} vs {fmt_ratio(c['confident_wrong_ratio']['baseline'])} in the baseline")
    d = f["fallback_delay_s"]
    parts.append(f"switched to the fallback after {fmt_s(d['mean'])} (mean)" if d["count"] else "it never switched to the fallback")
    b = f["back_to_primary_s"]
    if f["not_back"]:
        parts.append(f"not back to the primary in {f['not_back']} of {f['switched']} switched injections")
    if b["count"]:
        parts.append(f"back to the primary {fmt_s(b['mean'])} after recover (mean)")
    return parts[0] + " " + "; ".join(parts[1:]) + "."
