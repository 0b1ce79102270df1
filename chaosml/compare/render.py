"""Render a Comparison: terminal table, compare.md, self-contained compare.html with plots, compare.json, junit.xml; called by ``chaosml compare``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chaosml.compare.core import Comparison, Row
from chaosml.hostload import HostLoad
from chaosml.report.document import (
    RATIO_SLIS,
    Banner,
    Block,
    Heading,
    Image,
    Para,
    Table,
)
from chaosml.report.html import render_html
from chaosml.report.junit import JUNIT_FILE, compare_suite, write_junit
from chaosml.report.markdown import render_markdown

JSON_FILE = "compare.json"
MARKDOWN_FILE = "compare.md"
HTML_FILE = "compare.html"
PLOTS_DIR = "plots"

#: SLIs plotted per phase.
PLOT_SLIS: tuple[str, ...] = ("success_ratio", "fallback_ratio", "accuracy", "latency_p99_ms")

_ROW_KIND = {"regressed": "fail", "improved": "pass", "changed": "", "inconclusive": "inconclusive", "unchanged": "", "not comparable": "",
             "unreliable": "inconclusive"}
_MARK = {
    "regressed": "REGRESSED",
    "improved": "improved",
    "changed": "changed",
    "unchanged": "unchanged",
    "inconclusive": "inconclusive",
    "not comparable": "n/c",
    "unreliable": "unreliable (host load)",
}


def fmt_value(metric: str, x: float | None) -> str:
    if x is None:
        return "n/a"
    if metric in RATIO_SLIS:
        return f"{100 * x:.2f}%"
    if metric.endswith("_ms"):
        return f"{x:.1f} ms"
    if metric.endswith("_s"):
        return f"{x:.2f} s"
    return f"{x:.4g}"


def fmt_delta(metric: str, x: float | None) -> str:
    if x is None:
        return "n/a"
    if metric in RATIO_SLIS:
        return f"{100 * x:+.2f} pp"
    if metric.endswith("_ms"):
        return f"{x:+.1f} ms"
    if metric.endswith("_s"):
        return f"{x:+.2f} s"
    return f"{x:+.4g}"


def fmt_ci(row: Row) -> str:
    if row.ci_low is None or row.ci_high is None:
        return "-"
    return f"[{fmt_delta(row.metric, row.ci_low)}, {fmt_delta(row.metric, row.ci_high)}]"


def _what(row: Row) -> str:
    if row.section == "verdict":
        return f"{row.name} ({row.baseline_verdict} -> {row.candidate_verdict})"
    if row.section == "fault":
        return row.name
    return row.metric


def row_cells(row: Row) -> tuple[str, ...]:
    return (
        _MARK[row.verdict],
        _what(row),
        row.scope,
        row.metric,
        fmt_value(row.metric, row.baseline),
        fmt_value(row.metric, row.candidate),
        fmt_delta(row.metric, row.delta),
        fmt_ci(row),
        f"{row.n_baseline}/{row.n_candidate}",
        row.reason,
    )


HEADERS = ("verdict", "what", "scope", "metric", "baseline", "candidate", "delta", "95% CI of delta", "n", "why")


def _side_text(c: Comparison, which: str) -> str:
    s = c.baseline if which == "baseline" else c.candidate
    return f"{s.release} ({len(s.runs)} run{'s' if len(s.runs) != 1 else ''}: {', '.join(r.run_id for r in s.runs)})"


def host_load_lines(c: Comparison) -> list[str]:
    """Each run's host load (chaosml.hostload), as compare shows it beside the rows."""
    out = []
    for label, side in (("baseline", c.baseline), ("candidate", c.candidate)):
        for r in side.runs:
            host = HostLoad.from_dict(r.journal.get("host_load"))
            out.append(f"host load, {label} {r.run_id}: " + ("not recorded (an older chaosml)" if host is None else host.describe()))
    return out


def summary_line(c: Comparison, failing: list[Row]) -> str:
    n = c.counts()
    return (
        f"{n['regressed']} regressed, {n['improved']} improved, {n['changed']} changed, {n['unchanged']} unchanged, "
        f"{n['inconclusive']} inconclusive, {n['not comparable']} not comparable"
        + (f", {n['unreliable']} unreliable (host load)" if n["unreliable"] else "")
        + (f"; {len(failing)} row(s) fail the --fail-on policy" if failing else "")
    )


def render_terminal(c: Comparison, failing: list[Row], show_all: bool = False, width: int = 60) -> str:
    """A plain-text table: every verdict and fault row, and the SLI rows that changed (all with ``show_all``)."""
    lines = [f"baseline:  {_side_text(c, 'baseline')}", f"candidate: {_side_text(c, 'candidate')}", *host_load_lines(c), ""]
    rows = [r for r in c.rows if show_all or r.section != "sli" or r.verdict in ("regressed", "improved", "changed", "unreliable")]
    table = [HEADERS[:-1]] + [row_cells(r)[:-1] for r in rows]
    widths = [min(width, max(len(t[i]) for t in table)) for i in range(len(HEADERS) - 1)]
    for k, t in enumerate(table):
        lines.append("  ".join(cell[:w].ljust(w) for cell, w in zip(t, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    hidden = len(c.rows) - len(rows)
    if hidden:
        lines.append(f"({hidden} unchanged/inconclusive phase x cohort SLI rows not shown; --all shows them)")
    lines.append("")
    lines.append(summary_line(c, failing))
    for note in c.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plots


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def plot_faults(c: Comparison, path: Path) -> Path | None:
    """MTTR per fault: bars of the mean, a dot per injection, x for injections that never recovered."""
    faults = [f for f in c.baseline.faults() if f in c.candidate.faults()]
    if not faults:
        return None
    fig = Figure(figsize=(max(5.0, 1.8 * len(faults) + 2), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    colors = {"baseline": "#868e96", "candidate": "#1c7ed6"}
    top = 1.0
    for k, (label, side) in enumerate((("baseline", c.baseline), ("candidate", c.candidate))):
        for i, f in enumerate(faults):
            vals = side.injection_values(f, "mttr_s")
            defined = [v for v in vals if v is not None]
            x = i + (k - 0.5) * 0.38
            mean = float(np.mean(defined)) if defined else 0.0
            ax.bar(x, mean, width=0.36, color=colors[label], alpha=0.55, label=label if i == 0 else None)
            ax.scatter([x] * len(defined), defined, color=colors[label], s=14, zorder=3)
            top = max([top, *defined])
            missing = len(vals) - len(defined)
            if missing:
                ax.scatter([x], [top * 1.05], marker="x", color="#e03131", s=40, zorder=4)
                ax.annotate(f"{missing} not recovered", (x, top * 1.05), fontsize=7, color="#e03131", ha="center", va="bottom")
    ax.set_xticks(range(len(faults)), faults)
    ax.set_ylabel("MTTR (s)")
    ax.set_title("Time to recover per fault (bar: mean, dots: injections)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_ylim(0, top * 1.25)
    fig.tight_layout()
    return _save(fig, path)


def plot_slis(c: Comparison, path: Path) -> Path | None:
    """Key SLIs per phase (all cohorts), baseline beside candidate; red edge = regressed."""
    rows = {(r.phase, r.metric): r for r in c.section("sli") if r.cohort is None}
    phases = list(dict.fromkeys(r.phase for r in c.section("sli") if r.cohort is None and r.phase))
    if not phases:
        return None
    fig = Figure(figsize=(max(7.0, 1.3 * len(phases) * 2), 6.0))
    for n, metric in enumerate(PLOT_SLIS):
        ax = fig.add_subplot(2, 2, n + 1)
        for k, (label, color) in enumerate((("baseline", "#868e96"), ("candidate", "#1c7ed6"))):
            xs, ys, edges = [], [], []
            for i, ph in enumerate(phases):
                r = rows.get((ph, metric))
                v = None if r is None else (r.baseline if label == "baseline" else r.candidate)
                xs.append(i + (k - 0.5) * 0.38)
                ys.append(math.nan if v is None else (100 * v if metric in RATIO_SLIS else v))
                edges.append("#e03131" if r is not None and r.verdict == "regressed" and label == "candidate" else color)
            ax.bar(xs, np.nan_to_num(ys), width=0.36, color=color, edgecolor=edges, linewidth=2, label=label)
        ax.set_xticks(range(len(phases)), phases, fontsize=7, rotation=20)
        ax.set_title(metric + (" (%)" if metric in RATIO_SLIS else ""), fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        if n == 0:
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("Key SLIs per phase, all cohorts (red edge: regressed)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ----------------------------------------------------------------------------- documents


def build_blocks(c: Comparison, failing: list[Row], plots: dict[str, Path], exit_code: int) -> list[Block]:
    n = c.counts()
    blocks: list[Block] = [
        Heading(f"chaosml compare: {c.baseline.release} -> {c.candidate.release}", 1),
        Para(f"Baseline: {_side_text(c, 'baseline')}. Candidate: {_side_text(c, 'candidate')}."),
    ]
    if failing:
        blocks.append(Banner(f"{len(failing)} regression(s) under the --fail-on policy (exit {exit_code})", "fail"))
    elif n["regressed"]:
        blocks.append(Banner(f"{n['regressed']} regression(s), none under the --fail-on policy (exit {exit_code})", "warn"))
    else:
        blocks.append(Banner(f"no regression (exit {exit_code})", "pass"))
    blocks.append(Para(summary_line(c, failing) + "."))
    blocks.append(Table(("run", "host load"), tuple(tuple(line.removeprefix("host load, ").split(": ", 1)) for line in host_load_lines(c))))
    st = c.settings
    blocks.append(
        Para(
            f"How rows are judged: {100 * st.confidence:g}% bootstrap interval of candidate - baseline "
            f"({st.resamples} resamples, seed {st.seed}; sample SLIs resample time blocks of requests, "
            f"per-injection values resample injections). A row is improved/regressed only when the interval "
            f"excludes 0 and |delta| exceeds the practical threshold max(abs, rel x |baseline|); fewer than "
            f"{st.min_samples} samples (a p99 needs 500) or {st.min_injections} injections on a side is "
            f"inconclusive. A pass -> fail verdict flip is always a regression. Lower is better for every "
            f"metric but success_ratio and accuracy (fallback_ratio too: a degraded answer)."
        )
    )
    for note in c.notes:
        blocks.append(Banner(note, "info"))
    for section, title in (("verdict", "Verdicts"), ("fault", "Faults: MTTR, TTD, ready time (mean over injections)")):
        rows = c.section(section)
        if rows:
            blocks.append(Heading(title))
            blocks.append(Table(HEADERS, tuple(row_cells(r) for r in rows), tuple(_ROW_KIND[r.verdict] for r in rows)))
    if "faults" in plots:
        blocks.append(Image("faults", plots["faults"], "MTTR per fault, baseline beside candidate"))
    rows = c.section("sli")
    if rows:
        blocks.append(Heading("SLIs per phase and cohort"))
        blocks.append(Table(HEADERS, tuple(row_cells(r) for r in rows), tuple(_ROW_KIND[r.verdict] for r in rows)))
    if "slis" in plots:
        blocks.append(Image("slis", plots["slis"], "Key SLIs per phase, baseline beside candidate"))
    return blocks


def write_outputs(c: Comparison, out_dir: str | Path, failing: list[Row], exit_code: int) -> dict[str, str]:
    """compare.json, compare.md, compare.html (plots inlined), junit.xml and plots/*.png in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    for name, fn in (("faults", plot_faults), ("slis", plot_slis)):
        p = fn(c, out / PLOTS_DIR / f"compare-{name}.png")
        if p is not None:
            plots[name] = p
    data: dict[str, Any] = c.to_dict() | {
        "exit_code": exit_code,
        "failing": [r.key for r in failing],
    }
    (out / JSON_FILE).write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    blocks = build_blocks(c, failing, plots, exit_code)
    (out / MARKDOWN_FILE).write_text(render_markdown(blocks, out), encoding="utf-8")
    (out / HTML_FILE).write_text(render_html(blocks, f"chaosml compare: {c.baseline.release} -> {c.candidate.release}"), encoding="utf-8")
    write_junit(out / JUNIT_FILE, [compare_suite(data)])
    return {
        "json": str(out / JSON_FILE),
        "markdown": str(out / MARKDOWN_FILE),
        "html": str(out / HTML_FILE),
        "junit": str(out / JUNIT_FILE),
        **{f"plot_{k}": str(v) for k, v in plots.items()},
    }
