"""render_report(run_dir): journal.json + samples.csv -> analysis.json, plots/*.png, report.md, report.html, junit.xml.

Called by the runner after a run and by ``chaosml report``. Reads nothing but the run directory:
the experiment is re-loaded from the source text the journal keeps.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from chaosml.analysis import analyze, read_samples
from chaosml.model.experiment import Experiment
from chaosml.report.document import build_document
from chaosml.report.html import render_html
from chaosml.report.junit import JUNIT_FILE, run_suite, write_junit
from chaosml.report.markdown import render_markdown
from chaosml.report.plots import render_plots

ANALYSIS_FILE = "analysis.json"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"
PLOTS_DIR = "plots"


def _write_text(path: Path, text: str) -> None:
    """Write atomically (temp file + rename) so a reader never sees half a report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def render_report(run_dir: str | Path, experiment: Experiment | None = None) -> dict[str, Any]:
    """Analyse a run directory and write its reports; returns the analysis dict (as in analysis.json).

    ``experiment`` defaults to the experiment re-loaded from ``journal["experiment_source"]``.
    The returned dict also holds ``files``: the paths written (report.md, report.html,
    analysis.json, plots). The runner reads ``passed`` and ``summary`` from it.
    """
    run_dir = Path(run_dir)
    journal = json.loads((run_dir / "journal.json").read_text(encoding="utf-8"))
    if experiment is None:
        from chaosml.loader import load_experiment_text

        experiment = load_experiment_text(journal["experiment_source"], journal.get("experiment_file") or "<journal>")
    samples = read_samples(run_dir / (journal.get("samples_file") or "samples.csv"))
    analysis = _json_safe(analyze(experiment, journal, samples).to_dict())
    _write_text(run_dir / ANALYSIS_FILE, json.dumps(analysis, indent=1, allow_nan=False) + "\n")
    plots = render_plots(analysis, run_dir / PLOTS_DIR)
    blocks = build_document(analysis, journal, plots)
    _write_text(run_dir / MARKDOWN_FILE, render_markdown(blocks, run_dir))
    _write_text(run_dir / HTML_FILE, render_html(blocks, f"chaosml: {analysis['title']} ({analysis['run_id']})"))
    write_junit(run_dir / JUNIT_FILE, [run_suite(analysis)])
    files = {
        "markdown": str(run_dir / MARKDOWN_FILE),
        "html": str(run_dir / HTML_FILE),
        "analysis": str(run_dir / ANALYSIS_FILE),
        "junit": str(run_dir / JUNIT_FILE),
        "plots": {name: str(p) for name, p in plots.items()},
    }
    return {**analysis, "files": files}
