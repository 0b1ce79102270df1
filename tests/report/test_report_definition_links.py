"""Issue 15 (done means): the report links each number to its definition, in HTML and Markdown, and no link dangles."""

from __future__ import annotations

import re
from pathlib import Path

from test_report_render import experiment_model, write_run

from chaosml.model.catalog import INJECTION_SLIS, SAMPLE_SLIS
from chaosml.report import render_report
from chaosml.report.blocks import definition_anchor


def test_every_figure_column_links_to_its_definition_row(tmp_path: Path) -> None:
    write_run(tmp_path)
    render_report(tmp_path, experiment=experiment_model())
    html = (tmp_path / "report.html").read_text()
    md = (tmp_path / "report.md").read_text()
    ids = set(re.findall(r'<tr id="([^"]+)"', html))
    links = set(re.findall(r'<th><a href="#([^"]+)">', html))
    # the per-phase, per-injection and per-fault figures all link, and every link has its row
    for figure in ("success_ratio", "latency_p99_ms", "confident_wrong_ratio", "ttd_s", "mttr_s", "ready_s", "phase rule"):
        assert definition_anchor(figure) in links, figure
    assert links <= ids, f"dangling: {sorted(links - ids)}"
    # each definition row says what the catalogue says (one definition, quoted)
    for sli, text in {**SAMPLE_SLIS, **INJECTION_SLIS}.items():
        row = re.search(rf'<tr id="{definition_anchor(sli)}"><td>{sli}</td><td>([^<]*)</td>', html)
        assert row is not None and row.group(1).replace("&gt;", ">").replace("&#x27;", "'") == text, sli
    # Markdown: the same links and anchors
    assert f"[p99](#{definition_anchor('latency_p99_ms')})" in md
    assert f'<a id="{definition_anchor("mttr_s")}"></a>mttr_s' in md
