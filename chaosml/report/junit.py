"""JUnit XML for CI systems: a run's verdicts, a game-day's experiments, a comparison's rows; called by render_report, gameday and compare.

The shape is the common JUnit schema that Jenkins, GitLab, GitHub Actions reporters and
pytest's ``--junitxml`` agree on::

    <testsuites name tests failures errors skipped time>
      <testsuite name tests failures errors skipped time timestamp>
        <properties><property name value/></properties>
        <testcase name classname time>
          <failure message type>details</failure>   (a failed verdict, a regression)
          <skipped message/>                         (inconclusive, not comparable)
        </testcase>

A failure's or skip's message carries the measured value, the threshold and the sample count.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JUNIT_FILE = "junit.xml"


@dataclass(frozen=True)
class Case:
    """One testcase: passed unless ``failure`` or ``skipped`` holds a message."""

    name: str
    classname: str
    time: float = 0.0
    failure: str | None = None
    failure_type: str = "failure"
    skipped: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Suite:
    name: str
    cases: Sequence[Case]
    time: float = 0.0
    timestamp: float | None = None  # epoch seconds
    properties: Mapping[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(c.failure is not None for c in self.cases)

    @property
    def skipped(self) -> int:
        return sum(c.failure is None and c.skipped is not None for c in self.cases)


def _t(x: float) -> str:
    return f"{max(0.0, float(x)):.3f}"


def to_element(suites: Sequence[Suite], name: str = "chaosml") -> ET.Element:
    root = ET.Element(
        "testsuites",
        name=name,
        tests=str(sum(len(s.cases) for s in suites)),
        failures=str(sum(s.failures for s in suites)),
        errors="0",
        skipped=str(sum(s.skipped for s in suites)),
        time=_t(sum(s.time for s in suites)),
    )
    for s in suites:
        attrs = {
            "name": s.name,
            "tests": str(len(s.cases)),
            "failures": str(s.failures),
            "errors": "0",
            "skipped": str(s.skipped),
            "time": _t(s.time),
        }
        if s.timestamp is not None:
            attrs["timestamp"] = dt.datetime.fromtimestamp(s.timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        se = ET.SubElement(root, "testsuite", attrs)
        if s.properties:
            props = ET.SubElement(se, "properties")
            for k, v in s.properties.items():
                ET.SubElement(props, "property", name=str(k), value=str(v))
        for c in s.cases:
            ce = ET.SubElement(se, "testcase", name=c.name, classname=c.classname, time=_t(c.time))
            if c.failure is not None:
                fe = ET.SubElement(ce, "failure", message=c.failure, type=c.failure_type)
                fe.text = c.detail or c.failure
            elif c.skipped is not None:
                ET.SubElement(ce, "skipped", message=c.skipped)
    return root


def render_junit(suites: Sequence[Suite], name: str = "chaosml") -> str:
    root = to_element(suites, name)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | Path, suites: Sequence[Suite], name: str = "chaosml") -> Path:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(render_junit(suites, name), encoding="utf-8")
    tmp.replace(p)
    return p


# ------------------------------------------------------------------------------ builders


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):.4g}"


def verdict_message(v: Mapping[str, Any]) -> str:
    """'success_ratio = 0.8489 (>= 0.99 required; n=225) fault kill, cohort clean: 225 requests'."""
    msg = f"{v['sli']} = {_fmt(v.get('measured'))} ({v['op']} {float(v['target']):g} required; n={v.get('samples', 0)}) {v.get('scope', '')}"
    if v.get("detail"):
        msg += f": {v['detail']}"
    return msg


def run_suite(analysis: Mapping[str, Any], name: str | None = None) -> Suite:
    """A run's verdicts (analysis.json dict): failure for fail, skipped for inconclusive; and a failure
    per fault that took no effect (its verdicts are only skipped, but the run did not test it)."""
    cases = []
    classname = f"chaosml.{analysis.get('release', 'run')}.{analysis.get('run_id', '')}".rstrip(".")
    for v in analysis.get("verdicts", []):
        msg = verdict_message(v)
        verdict = v.get("verdict")
        cases.append(
            Case(
                name=f"{v['kind']} {v['name']} [{v.get('scope', '')}]",
                classname=classname,
                failure=msg if verdict == "fail" else None,
                failure_type="HypothesisFailed" if v.get("kind") == "hypothesis" else "SloViolated",
                skipped=msg if verdict == "inconclusive" else None,
            )
        )
    for fault, why in (analysis.get("no_effect") or {}).items():
        cases.append(Case(name=f"fault {fault} took effect", classname=classname, failure=f"no effect: {why}",
                          failure_type="FaultHadNoEffect"))
    if analysis.get("status") not in (None, "completed"):
        reason = analysis.get("reason") or analysis.get("status")
        cases.append(Case(name="run completed", classname=classname, failure=f"run {analysis.get('status')}: {reason}", failure_type="RunNotCompleted"))
    load = analysis.get("load") or {}
    return Suite(
        name=name or f"{analysis.get('title', 'run')} ({analysis.get('run_id', '')})",
        cases=cases,
        time=float(load.get("duration_s") or 0.0),
        timestamp=load.get("started_at"),
        properties={"run_id": str(analysis.get("run_id", "")), "release": str(analysis.get("release", "")), "status": str(analysis.get("status", ""))},
    )


def compare_suite(comparison: Mapping[str, Any], name: str = "compare") -> Suite:
    """A comparison (compare.json dict): one testcase per row; failure for regressed, skipped for inconclusive / not comparable."""
    cases = []
    for r in comparison.get("rows", []):
        msg = (
            f"{r['metric']}: baseline {_fmt(r.get('baseline'))} -> candidate {_fmt(r.get('candidate'))}"
            f" (delta {_fmt(r.get('delta'))}, CI [{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}],"
            f" threshold {_fmt(r.get('threshold'))}, n={r.get('n_baseline')}/{r.get('n_candidate')}): {r.get('reason', '')}"
        )
        verdict = r.get("verdict")
        cases.append(
            Case(
                name=f"{r['name']} {r['metric']} [{r['scope']}]" if r["name"] != r["metric"] else f"{r['metric']} [{r['scope']}]",
                classname=f"chaosml.compare.{r['section']}",
                failure=msg if verdict == "regressed" else None,
                failure_type="VerdictFlip" if r.get("flip") else "Regression",
                skipped=f"{verdict}: {msg}" if verdict in ("inconclusive", "not comparable", "unreliable") else None,
            )
        )
    base = comparison.get("baseline", {}).get("release", "")
    cand = comparison.get("candidate", {}).get("release", "")
    return Suite(name=f"{name}: {base} -> {cand}", cases=cases, properties={"baseline": str(base), "candidate": str(cand)})


__all__ = ["JUNIT_FILE", "Case", "Suite", "compare_suite", "render_junit", "run_suite", "to_element", "verdict_message", "write_junit"]
