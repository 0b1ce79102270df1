"""The per-phase table shows the share of invalid answers (a 2xx without a usable answer) beside success and errors,
in Markdown and HTML, linked to its definition; the shares are counted from the samples the test wrote."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from test_report_render import T0, experiment_model, write_run

from chaosml.report import render_report
from chaosml.report.blocks import definition_anchor

# Ground truth, from write_run's samples (100 req/s for 40 s, one request every 10 ms from +5 ms): baseline holds the
# requests sent before +10 s but the one at +9.995 s (in flight at the kill: 999), after holds +29 s .. +40 s (1,100).
# Invalid: every 10th request of the first 9 s (90) and every 4th from +30 s on (250).
INVALID_SHARES = {"baseline": "9.01%", "fault": "0.00%", "between": "0.00%", "after": "22.73%", "all": "8.50%"}


def _write_run_with_invalid_answers(run_dir: Path) -> None:
    write_run(run_dir)
    df = pd.read_csv(run_dir / "samples.csv", keep_default_na=False, dtype=str)
    i = pd.Series(range(len(df)))
    off = df["t"].astype(float) - T0
    invalid = ((off < 9) & (i % 10 == 0)) | ((off >= 30) & (i % 4 == 0))
    assert int(invalid.sum()) == 340
    df.loc[invalid, ["status", "outcome", "served_by", "prediction", "confidence", "replica"]] = ["200", "invalid", "", "", "", "model-0"]
    df.to_csv(run_dir / "samples.csv", index=False)


def _md_phase_rows(md: str) -> dict[str, dict[str, str]]:
    table = md.split("## SLIs per phase")[1].split("\n## ")[0]
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    headers = [re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", h.strip()) for h in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    return {r[0]: dict(zip(headers, r, strict=True)) for r in rows}


def _html_phase_rows(html: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    table = html.split("<h2>SLIs per phase</h2>")[1].split("</table>")[0]
    links = re.findall(r'<th>(?:<a href="#([^"]*)">)?([^<]*)', table)
    headers = [h for _, h in links]
    rows = [re.findall(r"<td>([^<]*)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]
    return [a for a, _ in links], {r[0]: dict(zip(headers, r, strict=True)) for r in rows}


def test_the_phase_table_shows_the_invalid_share_per_phase(tmp_path: Path) -> None:
    _write_run_with_invalid_answers(tmp_path)
    analysis = render_report(tmp_path, experiment=experiment_model())
    md_rows = _md_phase_rows((tmp_path / "report.md").read_text())
    anchors, html_rows = _html_phase_rows((tmp_path / "report.html").read_text())
    for phase, share in INVALID_SHARES.items():
        assert md_rows[phase]["invalid"] == share, phase
        assert html_rows[phase]["invalid"] == share, phase
    # an invalid answer is not a success and counts as an error (README "Outcomes")
    assert (md_rows["baseline"]["success"], md_rows["baseline"]["errors"]) == ("90.99%", "9.01%")
    assert {p["name"]: p["slis"]["requests"] for p in analysis["phases"]}["after"] == 1100
    # the column links to its definition row, which exists (Markdown and HTML)
    anchor = definition_anchor("invalid_ratio")
    assert f"[invalid](#{anchor})" in (tmp_path / "report.md").read_text()
    assert anchor in anchors and f'<tr id="{anchor}">' in (tmp_path / "report.html").read_text()


def test_the_cohort_table_shows_errors_and_the_invalid_share_per_cohort(tmp_path: Path) -> None:
    _write_run_with_invalid_answers(tmp_path)
    df = pd.read_csv(tmp_path / "samples.csv", keep_default_na=False, dtype=str)
    render_report(tmp_path, experiment=experiment_model())
    md = (tmp_path / "report.md").read_text()
    table = md.split("## Per cohort")[1].split("\n## ")[0]
    lines = [ln for ln in table.splitlines() if ln.startswith("|")]
    headers = [re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", h.strip()) for h in lines[0].strip("|").split("|")]
    rows = {(r["cohort"], r["phase"]): r for r in
            (dict(zip(headers, [c.strip() for c in ln.strip("|").split("|")], strict=True)) for ln in lines[2:])}
    for cohort in ("clean", "out-of-range"):
        mine = df[df["cohort"] == cohort]
        invalid = int((mine["outcome"] == "invalid").sum())
        errors = int(mine["outcome"].isin(["error", "timeout", "invalid"]).sum())
        assert invalid > 0
        assert rows[(cohort, "all")]["invalid"] == f"{100 * invalid / len(mine):.2f}%", cohort
        assert rows[(cohort, "all")]["errors"] == f"{100 * errors / len(mine):.2f}%", cohort
