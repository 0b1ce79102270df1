"""PromQL and rule checks before a run (validate/plan): bad expressions and unknown alert names become located issues.

How an expression is checked, first that works:

1. against the experiment's server (``monitoring.prometheus.url``) when it answers: ``/api/v1/query``
   with the expression and ``time`` (Prometheus 2.42 has no ``/api/v1/parse_query``); a 400
   ``bad_data`` is a parse or type error of the expression;
2. offline with ``promtool check rules`` (beside the prometheus binary) on a temporary rule file
   holding each expression as a recording rule.

When neither is possible the expressions are not checked and :func:`check_queries` says so (plan
prints it); a bad expression then surfaces at run time as an INCONCLUSIVE verdict naming the query.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from chaosml.monitoring.promapi import PromQueryError, PromUnreachable, query, rules
from chaosml.monitoring.server import promtool_binary

#: Seconds promtool may take.
PROMTOOL_TIMEOUT_S = 20.0
#: Seconds one check may wait for the server (validate must stay quick when it is far or gone).
SERVER_TIMEOUT_S = 2.0
_RULE_ERROR = re.compile(r'rule (\d+), "q(\d+)": (.*)$')


def check_queries(exprs: Mapping[str, str], url: str | None) -> tuple[dict[str, str], str]:
    """(name -> problem for each bad expression, how they were checked)."""
    if not exprs:
        return {}, "no queries"
    unreachable = ""
    if url is not None:
        try:
            return _check_on_server(exprs, url), f"checked against {url}"
        except PromUnreachable as e:
            unreachable = f"{url} did not answer ({e})"
    tool = promtool_binary()
    if tool is None:
        why = "; ".join(w for w in (unreachable, "promtool not found (install Debian's prometheus package)") if w)
        return {}, f"not checked: {why}"
    return _check_with_promtool(exprs, tool), "checked offline with promtool" + (f" ({unreachable})" if unreachable else "")


def _check_on_server(exprs: Mapping[str, str], url: str) -> dict[str, str]:
    out = {}
    now = time.time()
    for name, expr in exprs.items():
        try:
            query(url, expr, now, timeout_s=SERVER_TIMEOUT_S)
        except PromQueryError as e:
            if e.error_type == "bad_data":
                out[name] = e.message.removeprefix('invalid parameter "query": ')
    return out


def _check_with_promtool(exprs: Mapping[str, str], tool: Path) -> dict[str, str]:
    names = list(exprs)
    rules = {"groups": [{"name": "chaosml-check", "rules": [{"record": f"q{i}", "expr": exprs[n]} for i, n in enumerate(names)]}]}
    with tempfile.TemporaryDirectory(prefix="chaosml-promql-") as d:
        path = Path(d) / "rules.yml"
        path.write_text(json.dumps(rules))
        out = _promtool(tool, path)
    problems = {}
    for line in out.splitlines():
        m = _RULE_ERROR.search(line)
        if m:
            problems[names[int(m.group(2))]] = m.group(3).removeprefix("could not parse expression: ")
    return problems


def _promtool(tool: Path, rules: Path) -> str:
    try:
        r = subprocess.run([str(tool), "check", "rules", str(rules)], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"promtool failed: {e}"
    return r.stdout + r.stderr


def check_rule_file(path: Path) -> str | None:
    """Why ``path`` is not a valid Prometheus rule file (promtool's words), or None (also when promtool is absent)."""
    if not path.is_file():
        return f"no such file: {path}"
    tool = promtool_binary()
    if tool is None:
        return None
    out = _promtool(tool, path)
    return None if "SUCCESS" in out and "FAILED" not in out else " ".join(out.split())[:500]


def alert_names_in_rules(path: Path) -> set[str] | None:
    """The ``alert:`` names of a rule file, or None when it cannot be read as one."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    names: set[str] = set()
    groups: Any = doc.get("groups") if isinstance(doc, dict) else None
    for g in groups if isinstance(groups, list) else []:
        for r in g.get("rules") or [] if isinstance(g, dict) else []:
            if isinstance(r, dict) and isinstance(r.get("alert"), str):
                names.add(r["alert"])
    return names


def alert_names_on_server(url: str) -> set[str] | None:
    """The alerting rules' names a server evaluates (``/api/v1/rules?type=alert``), or None when it does not answer."""
    try:
        groups = rules(url, timeout_s=SERVER_TIMEOUT_S)
    except (PromUnreachable, PromQueryError):
        return None
    return {str(r.get("name")) for g in groups for r in g.get("rules") or [] if r.get("type") == "alerting"}
