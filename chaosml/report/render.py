"""render_report(run_dir): journal.json + samples.csv -> analysis.json, plots/*.png, report.md, report.html, junit.xml.

Called after a run (:func:`report_run`, by the CLI and game-days) and by ``chaosml report``. Reads
nothing but the run directory: the experiment is the normalised one the journal stores
(:func:`chaosml.journal.load`), never re-parsed from its YAML text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import IO, Any

from chaosml.analysis import analyze, read_samples
from chaosml.errors import EXIT_ABORTED, EXIT_FAILED, EXIT_INTERNAL, EXIT_INVALID, EXIT_OK
from chaosml.journal import RunResult, record_verdicts, samples_problem
from chaosml.journal import load as load_journal
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
    """Write atomically (temp file + rename) so a reader never sees half a report.

    The temporary file is created 0666 less the umask, like every other file of the run directory
    (``mkstemp`` would make it 0600, and a CI artifact server could not read the report).
    """
    tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
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

    ``experiment`` defaults to the experiment stored in the journal. The returned dict also holds
    ``files``: the paths written (report.md, report.html, analysis.json, plots).
    :func:`report_run` reads ``passed`` and ``summary`` from it.
    """
    run_dir = Path(run_dir)
    record = load_journal(run_dir)
    journal = record.to_dict()
    if experiment is None:
        experiment = record.experiment
    samples = read_samples(record.samples_path)
    analysis = _json_safe(analyze(experiment, journal, samples).to_dict())
    problem = samples_problem(record.samples_path, journal)
    if problem:  # said in analysis.json, on top of the report and by the CLI
        analysis["samples_problem"] = problem
        analysis["notes"] = [problem, *analysis.get("notes", [])]
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


#: the exit code of a run that did not complete, by its journal status, when the journal recorded none
_STATUS_CODES = {"aborted": EXIT_ABORTED, "interrupted": EXIT_ABORTED, "partial": EXIT_ABORTED,
                 "failed": EXIT_INTERNAL, "invalid": EXIT_INVALID}


def settled_exit_code(status: str, recorded: int | None, passed: bool) -> int:
    """A run's exit code, the same for ``chaosml run`` and ``chaosml report``: a completed run exits 0 when
    every verdict passed, else 1 (a failed or INCONCLUSIVE verdict is no pass); any other outcome keeps
    the code the runner recorded (2 aborted, 3 failed, 5 recovery failed), or the status's code."""
    if status == "completed":
        return EXIT_OK if passed else EXIT_FAILED
    if recorded is not None:
        return recorded
    return _STATUS_CODES.get(status, EXIT_FAILED)


def report_run(result: RunResult, out: IO[str] | None = None) -> RunResult:
    """Render a finished run's report and settle its exit code from the verdicts; called by the CLI and game-days.

    A completed run exits 0 when every verdict passed, else 1; other outcomes keep the runner's
    code. No samples: nothing to render. A rendering error is said on ``out`` (the journal and
    samples stay; ``chaosml report`` can retry) and leaves the code as the runner set it.
    """
    out = out if out is not None else sys.stderr  # looked up per call: the stream may have been replaced since import
    record = load_journal(result.run_dir)
    if not record.samples_path.exists() and record.load.get("started_at") is None:
        return result  # no load was sent (the target did not start, ...): nothing to render
    try:
        analysis = render_report(result.run_dir)
    except Exception as exc:  # noqa: BLE001 - the journal and samples stay; `chaosml report` can retry
        out.write(f"report could not be rendered: {type(exc).__name__}: {exc}\n")
        out.flush()
        return result
    if analysis.get("samples_problem"):
        out.write(f"chaosml: {analysis['samples_problem']}\n")
        out.flush()
    code = settled_exit_code(result.status, result.exit_code, bool(analysis.get("passed")))
    record_verdicts(result.run_dir, analysis.get("summary"), code)
    return dataclasses.replace(result, exit_code=code)
