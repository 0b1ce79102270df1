"""PNG plots of one run from its analysis dict (Analysis.to_dict()); called by render_report.

Uses matplotlib's object API with the Agg canvas (``Figure`` + ``FigureCanvasAgg``), never pyplot:
no global figure state, no GUI backend, safe in threads and under a headless CI. Each plot is a
single small figure rendered in well under a second.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything could import pyplot; the object API below never needs it

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from chaosml.analysis.slis import MIX_CLASSES

MIX_COLORS: dict[str, str] = {
    "primary": "#2b8a3e",
    "fallback": "#f59f00",
    "default": "#ffd43b",
    "rejected": "#7048e8",
    "error": "#e03131",
    "timeout": "#862e9c",
    "invalid": "#a61e4d",
    "unknown": "#adb5bd",
}
FAULT_COLORS = ("#ff8787", "#74c0fc", "#ffa94d", "#b197fc", "#63e6be", "#faa2c1")

DPI = 100


def _arr(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _steps(ts: dict[str, Any], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Window starts plus the last window's end, and the values held over each window (steps-post)."""
    x = _arr(ts["t"])
    if not len(x):
        return x, y
    return np.append(x, x[-1] + float(ts["window_s"])), np.append(y, y[-1])


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def _fault_colors(analysis: dict[str, Any]) -> dict[str, str]:
    names: list[str] = []
    for inj in analysis.get("injections", []):
        if inj["fault"] not in names:
            names.append(inj["fault"])
    return {n: FAULT_COLORS[i % len(FAULT_COLORS)] for i, n in enumerate(names)}


def _shade_faults(axes: list[Any], analysis: dict[str, Any], label_axis: Any) -> None:
    """Shade each fault window, draw apply/recover lines and the recovered (MTTR) markers."""
    colors = _fault_colors(analysis)
    duration = float(analysis["load"]["duration_s"])
    for inj in analysis.get("injections", []):
        start = float(inj["offset_s"])
        end = start + float(inj["duration_s"]) if inj["duration_s"] is not None else duration
        color = colors[inj["fault"]]
        for ax in axes:
            ax.axvspan(start, end, color=color, alpha=0.18, lw=0)
            ax.axvline(start, color=color, lw=1.0)
            ax.axvline(end, color=color, lw=1.0, ls="--")
            if inj["mttr_s"] is not None:
                ax.axvline(start + float(inj["mttr_s"]), color="#2b8a3e", lw=1.2, ls=":")
        label = f"{inj['fault']} #{inj['injection'] + 1}"
        label_axis.annotate(label, xy=(start, 1.0), xycoords=("data", "axes fraction"), xytext=(2, 2),
                            textcoords="offset points", fontsize=7, color="#343a40", va="bottom")
        mttr = "not recovered" if inj["mttr_s"] is None else f"MTTR {float(inj['mttr_s']):.1f}s"
        axes[-1].annotate(mttr, xy=(start, 0.0), xycoords=("data", "axes fraction"), xytext=(2, 2),
                          textcoords="offset points", fontsize=7,
                          color="#c92a2a" if inj["mttr_s"] is None else "#2b8a3e", va="bottom")


def plot_timeline(analysis: dict[str, Any], path: Path) -> Path:
    """Latency p50/p99 (top), success and fallback ratio (middle), requests/s (bottom) per window."""
    ts = analysis["timeseries"]
    w = float(ts["window_s"])
    intervals = (analysis.get("monitoring") or {}).get("alert_intervals")
    alert_names = sorted({i["alert"] for i in intervals or []})
    fig = Figure(figsize=(10, 6.4 + (0.9 + 0.25 * len(alert_names) if intervals is not None else 0)), layout="constrained")
    if intervals is None:
        ax_lat, ax_ratio, ax_rps = fig.subplots(3, 1, sharex=True, height_ratios=(3, 3, 1.6))
        panels = [ax_lat, ax_ratio, ax_rps]
    else:  # an experiment with monitoring: a fourth panel with the alerts' firing intervals
        ax_lat, ax_ratio, ax_rps, ax_alerts = fig.subplots(4, 1, sharex=True, height_ratios=(3, 3, 1.6, 0.8 + 0.35 * len(alert_names)))
        panels = [ax_lat, ax_ratio, ax_rps, ax_alerts]
        _plot_alerts(ax_alerts, intervals, alert_names, float(analysis["load"]["duration_s"]))
    ax_lat.plot(*_steps(ts, _arr(ts["latency_p50_ms"])), lw=1.0, color="#1c7ed6", label="p50", drawstyle="steps-post")
    ax_lat.plot(*_steps(ts, _arr(ts["latency_p99_ms"])), lw=1.0, color="#e8590c", label="p99", drawstyle="steps-post")
    ax_lat.set_ylabel("latency (ms)")
    p99 = _arr(ts["latency_p99_ms"])
    if np.isfinite(p99).any() and np.nanmax(p99) > 20 * max(1e-9, float(np.nanmedian(p99))):
        ax_lat.set_yscale("log")
    ax_lat.legend(loc="upper right", fontsize=8)
    ax_ratio.plot(*_steps(ts, _arr(ts["success_ratio"])), lw=1.0, color="#2b8a3e", label="success ratio",
                  drawstyle="steps-post")
    ax_ratio.plot(*_steps(ts, _arr(ts["fallback_ratio"])), lw=1.0, color="#f59f00", label="fallback ratio",
                  drawstyle="steps-post")
    ax_ratio.set_ylim(-0.03, 1.03)
    ax_ratio.set_ylabel("ratio")
    ax_ratio.legend(loc="lower right", fontsize=8)
    ax_rps.plot(*_steps(ts, np.asarray(ts["requests"], dtype=np.float64) / w), lw=1.0, color="#495057",
                drawstyle="steps-post")
    ax_rps.set_ylabel("req/s")
    panels[-1].set_xlabel("seconds since load start")
    duration = float(analysis["load"]["duration_s"])
    ax_rps.set_xlim(0, max(duration, w))
    _shade_faults(panels, analysis, ax_lat)
    for ax in panels:
        ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle(f"{analysis['title']}: timeline (window {w:g}s)", fontsize=10)
    return _save(fig, path)


def _plot_alerts(ax: Any, intervals: list[dict[str, Any]], names: list[str], duration: float) -> None:
    """One row per alertname: a bar for each firing interval (to the end of the run when it never resolved)."""
    for row, name in enumerate(names):
        spans = [(float(i["start_s"]), (duration if i["end_s"] is None else float(i["end_s"])) - float(i["start_s"]))
                 for i in intervals if i["alert"] == name]
        ax.broken_barh(spans, (row - 0.35, 0.7), color="#c92a2a", alpha=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(-0.6, max(len(names), 1) - 0.4)
    ax.set_ylabel("alerts firing", fontsize=8)
    if not names:
        ax.annotate("no alert fired", xy=(0.5, 0.5), xycoords="axes fraction", ha="center", va="center", fontsize=8, color="#495057")


def plot_served_by(analysis: dict[str, Any], path: Path) -> Path:
    """Stacked area of what each request ended as (served_by mix incl. errors), requests/s per window."""
    ts = analysis["timeseries"]
    w = float(ts["window_s"])
    classes = [c for c in MIX_CLASSES if any(ts["mix"][c])] or ["primary"]
    stepped = [_steps(ts, np.asarray(ts["mix"][c], dtype=np.float64) / w) for c in classes]
    x = stepped[0][0]
    ys = [y for _, y in stepped]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.stackplot(x, *ys, labels=classes, colors=[MIX_COLORS[c] for c in classes], alpha=0.9, lw=0, step="post")
    ax.set_xlim(0, max(float(analysis["load"]["duration_s"]), w))
    ax.set_ylabel("requests/s")
    ax.set_xlabel("seconds since load start")
    ax.legend(loc="upper left", fontsize=8, ncols=len(classes), bbox_to_anchor=(0, -0.18))
    for inj in analysis.get("injections", []):
        ax.axvline(float(inj["offset_s"]), color="#212529", lw=0.8)
        if inj["duration_s"] is not None:
            ax.axvline(float(inj["offset_s"]) + float(inj["duration_s"]), color="#212529", lw=0.8, ls="--")
    ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle("served by (stacked; errors, timeouts and invalid answers included)", fontsize=10)
    return _save(fig, path)


COHORT_SLIS: tuple[tuple[str, str], ...] = (("success_ratio", "success ratio"), ("accuracy", "accuracy"))


def cohort_deltas(analysis: dict[str, Any]) -> dict[str, Any]:
    """Per SLI and cohort: its baseline value and, per later phase, the change from it in percentage points.

    Phases: every phase with requests but the baseline and "all". A change is None where the cohort
    has no baseline value or no value in that phase (shown as a gap, never as 0).
    ``{"phases": [...], "cohorts": [...], sli: {cohort: {"baseline": x, "delta_pp": {phase: d}}}}``.
    """
    cohorts = list(analysis.get("cohorts") or [])
    by_name = {p["name"]: p for p in analysis["phases"] if p["kind"] == "phase"}
    base = by_name.get("baseline", {}).get("cohorts", {})
    phases = [p for p in analysis["phases"]
              if p["kind"] == "phase" and p["name"] not in ("baseline", "all") and p["slis"]["requests"]]
    out: dict[str, Any] = {"phases": [p["name"] for p in phases], "cohorts": cohorts}
    for sli, _ in COHORT_SLIS:
        out[sli] = {}
        for c in cohorts:
            b = (base.get(c) or {}).get(sli)
            deltas: dict[str, float | None] = {}
            for ph in phases:
                v = (ph["cohorts"].get(c) or {}).get(sli)
                deltas[ph["name"]] = None if b is None or v is None else 100.0 * (float(v) - float(b))
            out[sli][c] = {"baseline": b, "delta_pp": deltas}
    return out


def plot_cohorts(analysis: dict[str, Any], path: Path) -> Path | None:
    """Change of success ratio and accuracy per cohort from its own baseline, per phase (dots on stems from 0); None without cohorts.

    Every cohort reads ~100% in absolute bars; the change from the baseline is what differs.
    """
    d = cohort_deltas(analysis)
    if not d["cohorts"] or not d["phases"]:
        return None
    cohorts, phases = d["cohorts"], d["phases"]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    width = 0.7 / max(1, len(phases))
    xs = np.arange(len(cohorts))
    colors = [FAULT_COLORS[i % len(FAULT_COLORS)] for i in range(len(phases))]
    for ax, (sli, title) in zip(axes, COHORT_SLIS, strict=True):
        ax.axhline(0.0, color="#495057", lw=0.8)
        for i, ph in enumerate(phases):
            x = xs + i * width - 0.35 + width / 2
            y = np.array([math.nan if d[sli][c]["delta_pp"][ph] is None else d[sli][c]["delta_pp"][ph] for c in cohorts])
            ax.vlines(x, 0.0, y, color=colors[i], lw=2.0)
            ax.plot(x, y, "o", color=colors[i], label=ph, markersize=5)
            for xi, yi in zip(x, y, strict=True):
                if not math.isnan(yi):
                    ax.annotate(f"{yi:+.1f}", (xi, yi), xytext=(0, 4 if yi >= 0 else -10), textcoords="offset points",
                                fontsize=7, ha="center")
        labels = [c + "\n" + ("no baseline" if d[sli][c]["baseline"] is None else f"base {100 * d[sli][c]['baseline']:.1f}%")
                  for c in cohorts]
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_title(f"{title}: change from baseline", fontsize=9)
        ax.grid(axis="y", alpha=0.3, lw=0.5)
        ax.margins(y=0.2)
    axes[0].set_ylabel("percentage points")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="phase", title_fontsize=8)
    fig.suptitle("per cohort: change from the cohort's baseline", fontsize=10)
    return _save(fig, path)


def plot_drift(analysis: dict[str, Any], path: Path) -> Path | None:
    """Accuracy, confident-wrong and fallback ratio against the drift-magnitude bins; None without drifted requests."""
    rows = analysis.get("drift") or []
    if not rows:
        return None
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    xs = np.arange(len(rows))
    for sli, label, marker in (("accuracy", "accuracy", "o"), ("confident_wrong_ratio", "confident wrong", "x"),
                               ("fallback_ratio", "fallback", "s")):
        ax.plot(xs, [math.nan if r.get(sli) is None else r[sli] for r in rows], marker=marker, label=label)
    ax.set_xticks(xs, [f"{r['bin']}\nn={r['requests']}" for r in rows], fontsize=8)
    ax.set_xlabel("drift magnitude at send time (fraction of the declared drift)", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle("quality vs drift", fontsize=10)
    return _save(fig, path)


def render_plots(analysis: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write timeline.png, served_by.png, (with cohorts) cohorts.png and (with drift) drift.png; name -> path."""
    out = {
        "timeline": plot_timeline(analysis, out_dir / "timeline.png"),
        "served_by": plot_served_by(analysis, out_dir / "served_by.png"),
    }
    cohorts = plot_cohorts(analysis, out_dir / "cohorts.png")
    if cohorts is not None:
        out["cohorts"] = cohorts
    drift = plot_drift(analysis, out_dir / "drift.png")
    if drift is not None:
        out["drift"] = drift
    return out
