"""Write a game-day's report dir: gameday.json, gameday.md, gameday.html, junit.xml; called by run_gameday."""

from __future__ import annotations

from typing import Any

from chaosml.gameday.result import GameDayResult, gameday_dict, write_json
from chaosml.report.document import Banner, Block, Heading, Para, Table, fmt_s
from chaosml.report.html import render_html
from chaosml.report.junit import JUNIT_FILE, Case, Suite, run_suite, write_junit
from chaosml.report.markdown import render_markdown

JSON_FILE = "gameday.json"
MARKDOWN_FILE = "gameday.md"
HTML_FILE = "gameday.html"

_KIND = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive", "not run": "fail"}


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4g}"


def build_blocks(data: dict[str, Any], link_ext: str) -> list[Block]:
    score = data["score"]
    blocks: list[Block] = [Heading(f"Game-day {data['name']}: release {data['release']}", 1)]
    status = "aborted" if data["aborted"] else ("every experiment passed" if data["exit_code"] == 0 else "an experiment failed")
    blocks.append(Banner(f"{status} (exit {data['exit_code']})", "pass" if data["exit_code"] == 0 else "fail"))
    shown = "n/a" if score["score"] is None else f"{score['score']:.1f} / 100"
    lit = "n/a" if score["litmus_score"] is None else f"{score['litmus_score']:.1f}"
    blocks.append(Heading("Resilience score"))
    blocks.append(Banner(f"resilience score {shown} (Litmus-style weighted pass ratio: {lit})", "info"))
    blocks.append(Para("Formula: " + score["formula"]))
    blocks.append(
        Para(
            "Why not Litmus's score alone (" + score["litmus_formula"] + "): it counts every experiment "
            "the same however many objectives it judges, so a failed hypothesis on a critical fault weighs no "
            "more than a passed one on a harmless fault, and a verdict on a rare cohort is diluted by the "
            "aggregate ones. Here each verdict carries its fault's severity and its cohort's weight."
        )
    )
    rows = []
    kinds = []
    for e in data["experiments"]:
        c = e.get("counts") or {}
        link = e.get("report" if link_ext == "html" else "report_md") or e.get("run_dir") or "-"
        rows.append(
            (
                str(e["index"] + 1),
                e["title"],
                e["source"],
                e["status"],
                "-" if e["exit_code"] is None else str(e["exit_code"]),
                f"{c.get('pass', 0)}/{sum(c.values())}" if c else "-",
                f"{e['weight']:g}",
                e["severity"],
                link,
            )
        )
        kinds.append("pass" if e["exit_code"] == 0 else "fail")
    blocks.append(Heading("Experiments"))
    blocks.append(Table(("#", "experiment", "file", "status", "exit", "passed", "weight", "severity", "report"), tuple(rows), tuple(kinds)))
    for e in data["experiments"]:
        blocks.append(Heading(f"{e['index'] + 1}. {e['title']}", 3))
        if e.get("reason"):
            blocks.append(Para(f"{e['status']}: {e['reason']}"))
        link = e.get("report" if link_ext == "html" else "report_md")
        if link:
            blocks.append(Para(f"Full report: {link}"))
        weights = {(v["name"], v["scope"]): v for v in score["verdicts"] if v["experiment"] == e["index"]}
        vrows, vkinds = [], []
        for v in e.get("verdicts") or []:
            w = weights.get((v["name"], v.get("scope", "")), {})
            vrows.append(
                (
                    v["verdict"].upper(),
                    v["name"],
                    v.get("scope", ""),
                    f"{v['sli']} = {_fmt(v.get('measured'))}",
                    f"{v['op']} {float(v['target']):g}",
                    str(v.get("samples", "")),
                    str(w.get("severity", "")),
                    _fmt(w.get("weight")),
                )
            )
            vkinds.append(_KIND.get(v["verdict"], ""))
        if vrows:
            blocks.append(Table(("verdict", "objective", "scope", "measured", "threshold", "n", "severity", "weight"), tuple(vrows), tuple(vkinds)))
        frows = []
        for f in e.get("faults") or []:
            m = f.get("mttr_s") or {}
            frows.append(
                (
                    f["fault"],
                    f.get("type", ""),
                    str(f.get("injections", 0)),
                    f"{f.get('recovered', 0)}/{f.get('injections', 0)}",
                    fmt_s(m.get("mean")),
                    fmt_s(m.get("max")),
                )
            )
        if frows:
            blocks.append(Table(("fault", "type", "injections", "recovered", "MTTR mean", "MTTR max"), tuple(frows)))
    return blocks


def gameday_suites(data: dict[str, Any], result: GameDayResult) -> list[Suite]:
    """One testsuite per experiment: its verdicts, or one failing case if it did not run or produced none."""
    suites = []
    for e, oc in zip(data["experiments"], result.outcomes, strict=True):
        name = f"{data['name']} {e['index'] + 1}. {e['title']}"
        if oc.analysis:
            suites.append(run_suite(oc.analysis, name=name))
        else:
            why = e.get("reason") or e["status"]
            case = Case(name="experiment ran", classname=f"chaosml.gameday.{data['name']}", failure=f"{e['status']}: {why}", failure_type="NotRun")
            suites.append(Suite(name=name, cases=[case], properties={"status": e["status"]}))
    return suites


def write_gameday_report(result: GameDayResult) -> dict[str, str]:
    d = result.report_dir
    data = gameday_dict(result)
    write_json(d / JSON_FILE, data)
    (d / MARKDOWN_FILE).write_text(render_markdown(build_blocks(data, "md"), d), encoding="utf-8")
    (d / HTML_FILE).write_text(render_html(build_blocks(data, "html"), f"chaosml game-day {data['name']}"), encoding="utf-8")
    write_junit(d / JUNIT_FILE, gameday_suites(data, result), name=f"chaosml game-day {data['name']}")
    return {"json": str(d / JSON_FILE), "markdown": str(d / MARKDOWN_FILE), "html": str(d / HTML_FILE), "junit": str(d / JUNIT_FILE)}
