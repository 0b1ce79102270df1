"""Reports rendered from a run directory alone: Markdown, self-contained HTML, PNG plots (public API)."""

from chaosml.report.document import build_document
from chaosml.report.html import render_html
from chaosml.report.markdown import render_markdown
from chaosml.report.plots import render_plots
from chaosml.report.render import render_report, report_run

__all__ = ["build_document", "render_html", "render_markdown", "render_plots", "render_report", "report_run"]
