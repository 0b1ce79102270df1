"""List past runs found under a reports dir (their journal.json files) and plot trends; called by ``chaosml history``.

Reads journals (:func:`chaosml.journal.load`) and the analysis.json beside them (re-analysing a
run that has none, from the experiment its journal stores); game-day report dirs are searched
too, since their runs live inside them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.journal import JOURNAL_FILE, JournalError, RunRecord, load

#: How deep under the reports dir journals are looked for (reports/<run>/, reports/gameday-*/<run>/).
MAX_DEPTH = 3
#: Most runs listed.
MAX_RUNS = 10_000


@dataclass
class RunSummary:
    run_dir: Path
    run_id: str
    started_at: float | None
    title: str
    release: str
    status: str
    exit_code: int | None
    passed: int
    total: int
    mttr_mean: dict[str, float | None] = field(default_factory=dict)  # per applied fault; None = none recovered
    not_applied: tuple[str, ...] = ()  # faults of the experiment that no injection applied (killed before, target down)
    slis: dict[str, float | None] = field(default_factory=dict)  # key SLIs over the fault phase

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "started_at": self.started_at,
            "title": self.title,
            "release": self.release,
            "status": self.status,
            "exit_code": self.exit_code,
            "passed": self.passed,
            "total": self.total,
            "mttr_mean": self.mttr_mean,
            "not_applied": list(self.not_applied),
            "slis": self.slis,
        }


def find_journals(reports_dir: Path) -> list[Path]:
    out: list[Path] = []
    frontier = [reports_dir]
    for _ in range(MAX_DEPTH):
        nxt = []
        for d in frontier:
            try:
                children = sorted(p for p in d.iterdir() if p.is_dir())
            except OSError:
                continue
            for c in children:
                if (c / JOURNAL_FILE).is_file():
                    out.append(c / JOURNAL_FILE)
                else:
                    nxt.append(c)
        frontier = nxt
        if len(out) >= MAX_RUNS:
            break
    return out[:MAX_RUNS]


def summarize(journal_path: Path) -> RunSummary | None:
    """One line of the history from a run's journal; None when it is not a journal this chaosml reads."""
    try:
        record = load(journal_path)
    except JournalError:
        return None
    analysis = _analysis(record)
    title, release = record.experiment.title, record.experiment.release
    if analysis:
        title, release = analysis.get("title", title), analysis.get("release", release)
    counts = (analysis or {}).get("counts") or {}
    applied = {e.fault for e in record.fault_events if e.action == "apply" and e.ok}
    not_applied = tuple(f.name for f in record.experiment.faults if f.name not in applied)
    mttr = {f["fault"]: (f.get("mttr_s") or {}).get("mean") for f in (analysis or {}).get("faults", [])
            if f["fault"] in applied}
    slis: dict[str, float | None] = {}
    for p in (analysis or {}).get("phases", []):
        if p.get("name") == "fault":
            for k in ("success_ratio", "fallback_ratio", "accuracy", "latency_p99_ms"):
                slis[k] = p.get("slis", {}).get(k)
    return RunSummary(
        run_dir=record.run_dir,
        run_id=record.run_id,
        started_at=record.started_at,
        title=title,
        release=release,
        status=record.status,
        exit_code=record.exit_code,
        passed=int(counts.get("pass", 0)),
        total=int(sum(counts.values())) if counts else 0,
        mttr_mean=mttr,
        not_applied=not_applied,
        slis=slis,
    )


def _analysis(record: RunRecord) -> dict[str, Any] | None:
    path = record.run_dir / "analysis.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None
    try:  # no analysis.json (e.g. copied journal + samples only): analyse again, write nothing
        from chaosml.analysis import analyze, read_samples
        from chaosml.report.render import _json_safe

        samples = read_samples(record.samples_path)
        return _json_safe(analyze(record.experiment, record.to_dict(), samples).to_dict())
    except Exception:  # noqa: BLE001 - listed without verdicts rather than not listed
        return None


def list_runs(reports_dir: Path, release: str | None = None) -> list[RunSummary]:
    """Every run under ``reports_dir``, oldest first; only ``release`` when given."""
    runs = [s for s in (summarize(p) for p in find_journals(reports_dir)) if s is not None]
    if release is not None:
        runs = [r for r in runs if r.release == release]
    return sorted(runs, key=lambda r: (r.started_at or 0.0, r.run_id))


def _when(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def render_table(runs: list[RunSummary]) -> str:
    headers = ("time (UTC)", "title", "release", "status", "passed", "MTTR mean per fault", "run")
    rows = []
    for r in runs:
        mttr = ", ".join([*(f"{k} {'not recovered' if v is None else f'{v:.2f}s'}" for k, v in r.mttr_mean.items()),
                          *(f"{k} not applied" for k in r.not_applied)]) or "-"
        rows.append((_when(r.started_at), r.title, r.release, r.status, f"{r.passed}/{r.total}", mttr, str(r.run_dir)))
    table = [headers, *rows]
    widths = [min(60, max(len(t[i]) for t in table)) for i in range(len(headers) - 1)]
    widths.append(max(len(t[-1]) for t in table))  # the run directory, whole: it is copied into `chaosml report`
    lines = ["  ".join(c[:w].ljust(w) for c, w in zip(t, widths, strict=True)).rstrip() for t in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_history(runs: list[RunSummary], path: Path) -> Path:
    """A PNG trend: MTTR mean per fault, and success ratio / fallback ratio / accuracy / p99 during faults, per run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6.5))
    x = list(range(len(runs)))
    labels = [f"{_when(r.started_at)[5:16]}\n{r.release}" for r in runs]
    ax = fig.add_subplot(3, 1, 1)
    faults = list(dict.fromkeys(f for r in runs for f in r.mttr_mean))
    for f in faults:
        ys = [r.mttr_mean.get(f) for r in runs]
        ax.plot(x, [_nan(y) for y in ys], marker="o", label=f)
    ax.set_ylabel("MTTR mean (s)")
    if faults:
        ax.legend(fontsize=7)
    ax2 = fig.add_subplot(3, 1, 2)
    for k in ("success_ratio", "fallback_ratio", "accuracy"):
        ax2.plot(x, [_nan(r.slis.get(k)) for r in runs], marker="o", label=k)
    ax2.set_ylabel("during faults")
    ax2.legend(fontsize=7)
    ax3 = fig.add_subplot(3, 1, 3)
    ax3.plot(x, [_nan(r.slis.get("latency_p99_ms")) for r in runs], marker="o", color="#e8590c")
    ax3.set_ylabel("p99 during faults (ms)")
    for a in (ax, ax2, ax3):
        a.set_xticks(x, labels if a is ax3 else [""] * len(x), fontsize=7)
        a.grid(alpha=0.3)
    fig.suptitle(f"chaosml history: {len(runs)} run(s)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def _nan(value: float | None) -> float:
    """A missing value as NaN, so that matplotlib leaves a gap."""
    return float("nan") if value is None else value
