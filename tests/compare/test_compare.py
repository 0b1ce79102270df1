"""compare on fixture runs made from real short runs (naive, hardened, hardened again) and on synthetic data."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from chaosml.cli import main
from chaosml.compare import (
    FailPolicy,
    Settings,
    compare_runs,
    failing_rows,
    load_run,
    parse_min_change,
)
from chaosml.compare.bootstrap import (
    QuantileData,
    RatioData,
    injection_interval,
    quantile_interval,
    ratio_interval,
)
from chaosml.compare.core import Side, _verdict_defs, injection_row, side_verdict
from chaosml.errors import InvalidInputError

FIX = Path(__file__).parent / "fixtures"
NAIVE, HARD, HARD2 = FIX / "naive", FIX / "hardened", FIX / "hardened2"


def _row(c, section, name, metric, scope):
    (r,) = [r for r in c.rows if (r.section, r.name, r.metric, r.scope) == (section, name, metric, scope)]
    return r


@pytest.fixture(scope="module")
def naive_to_hardened():
    return compare_runs([NAIVE], [HARD])


def test_naive_to_hardened_reports_the_improvements(naive_to_hardened) -> None:
    c = naive_to_hardened
    v = _row(c, "verdict", "available-during-kill", "success_ratio", "fault kill, cohort clean")
    assert (v.baseline_verdict, v.candidate_verdict, v.verdict, v.flip) == ("fail", "pass", "improved", True)
    s = _row(c, "sli", "success_ratio", "success_ratio", "phase kill, cohort clean")
    assert s.verdict == "improved"
    assert s.baseline == pytest.approx(0.8489, abs=1e-3) and s.candidate == 1.0
    assert s.ci_low is not None and s.ci_low > 0
    e = _row(c, "sli", "error_ratio", "error_ratio", "phase kill")
    assert e.verdict == "improved" and e.delta < 0
    m = _row(c, "fault", "kill", "mttr_s", "fault kill")
    # the naive stack's last failed request was sent at +1.609 s after the kill: MTTR is that edge, not 2 whole windows
    assert (m.baseline, m.candidate, m.verdict) == (1.6572, 0.0, "improved")
    assert c.regressions() == []


def test_hardened_to_naive_is_a_regression(tmp_path: Path, capsys) -> None:
    code = main(["compare", str(HARD), str(NAIVE), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "REGRESSED" in out and "available-during-kill (pass -> fail)" in out
    data = json.loads((tmp_path / "compare.json").read_text())
    flips = [r for r in data["rows"] if r["flip"]]
    assert [(r["name"], r["verdict"]) for r in flips] == [("available-during-kill", "regressed")]
    assert data["exit_code"] == 1 and data["counts"]["regressed"] == len(data["failing"]) > 0
    # the JUnit file has one testcase per row and one failure per regression
    root = ET.parse(tmp_path / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert int(suite.get("tests")) == len(data["rows"]) == len(suite.findall("testcase"))
    assert int(suite.get("failures")) == data["counts"]["regressed"] == len(suite.findall("testcase/failure"))
    html = (tmp_path / "compare.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "http" not in html.replace("http-equiv", "")
    assert "| REGRESSED |" in (tmp_path / "compare.md").read_text()


def test_naive_to_hardened_exits_0_and_accepts_journal_paths(capsys) -> None:
    assert main(["compare", "--baseline", str(NAIVE / "journal.json"), "--candidate", str(HARD)]) == 0
    assert "0 regressed" in capsys.readouterr().out


@pytest.mark.parametrize("pair", [(HARD, HARD2), (HARD2, HARD)], ids=["h1-h2", "h2-h1"])
def test_hardened_against_hardened_is_noise(pair, capsys) -> None:
    assert main(["compare", str(pair[0]), str(pair[1])]) == 0
    c = compare_runs([pair[0]], [pair[1]])
    assert c.regressions() == [] and c.counts()["improved"] == 0


@pytest.mark.parametrize(
    ("policy", "code"),
    [
        ("any", 1),
        ("flip", 1),
        ("none", 0),
        ("delta:success_ratio=0.5", 0),
        ("delta:success_ratio=0.05", 1),
        ("delta:mttr_s=1", 1),
        ("delta:mttr_s=50%", 1),
        ("delta:accuracy=0.01", 0),
    ],
)
def test_fail_on_policies(policy: str, code: int, capsys) -> None:
    assert main(["compare", str(HARD), str(NAIVE), "--fail-on", policy]) == code


def test_bad_policy_and_inputs_are_invalid_input(tmp_path: Path, capsys) -> None:
    with pytest.raises(InvalidInputError, match="unknown metric 'succes_ratio'"):
        FailPolicy.parse("delta:succes_ratio=1")
    with pytest.raises(InvalidInputError, match="use any, flip, none"):
        FailPolicy.parse("sometimes")
    with pytest.raises(InvalidInputError, match="METRIC=VALUE"):
        parse_min_change(["latency"])
    assert main(["compare", str(tmp_path), str(HARD)]) == 4
    assert "no journal.json here" in capsys.readouterr().err
    assert main(["compare", str(HARD)]) == 4


def test_min_change_can_silence_a_change() -> None:
    c = compare_runs([HARD], [NAIVE], Settings(min_change=parse_min_change(["success_ratio=0.5", "error_ratio=0.5"])))
    r = _row(c, "sli", "success_ratio", "success_ratio", "phase kill, cohort clean")
    assert r.verdict == "unchanged" and "practical threshold 0.5" in r.reason
    # the verdict flip is still a regression whatever the threshold
    assert _row(c, "verdict", "available-during-kill", "success_ratio", "fault kill, cohort clean").verdict == "regressed"


def test_pooled_sides_match_single_runs() -> None:
    one = Side("b", [load_run(HARD)])
    two = Side("b", [load_run(HARD), load_run(HARD)])
    for d in _verdict_defs(one.runs[0]).values():
        v1, m1, n1 = side_verdict(one, d)
        v2, m2, n2 = side_verdict(two, d)
        assert v1 == v2 and m1 == pytest.approx(m2)
        assert n2 in (2 * n1,) or d.sli in ("ready_s",)
    c = compare_runs([NAIVE], [HARD, HARD2])
    # twice the candidate data makes one real change visible: the hardened release routes ~2% of
    # baseline answers to its fallback model (low-confidence routing). The serving mix has no
    # better direction of its own, so it is "changed", not a regression.
    changed = [r for r in c.rows if r.verdict == "changed"]
    assert ("fallback_ratio", "baseline") in {(r.metric, r.phase) for r in changed}
    # and users of the hardened release saw nothing of the kills (TTD: nothing observable), naive users saw errors
    assert all((r.metric == "fallback_ratio" and r.candidate > r.baseline) or (r.metric == "ttd_s" and r.candidate is None)
               for r in changed)
    assert c.regressions() == []
    assert _row(c, "sli", "success_ratio", "success_ratio", "phase kill, cohort clean").n_candidate == 450


def test_copied_run_dir_with_only_journal_and_samples(tmp_path: Path) -> None:
    for name in ("journal.json", "samples.csv"):
        shutil.copy(HARD / name, tmp_path / name)
    c = compare_runs([HARD], [tmp_path])
    assert all(r.delta in (None, 0.0) for r in c.rows)
    assert c.regressions() == [] and c.counts()["improved"] == 0


# ----------------------------------------------------------------------------- bootstrap maths


def test_ratio_interval_separates_real_differences_from_noise() -> None:
    rng = np.random.default_rng(1)
    blocks = np.repeat(np.arange(50), 20)
    a = RatioData((rng.random(1000) < 0.9).astype(float), blocks)
    b = RatioData((rng.random(1000) < 0.9).astype(float), blocks)
    worse = RatioData((rng.random(1000) < 0.7).astype(float), blocks)
    kw = {"seed": 3, "resamples": 500, "confidence": 0.95}
    assert not ratio_interval(a, b, **kw).excludes_zero()
    iv = ratio_interval(a, worse, **kw)
    assert iv.excludes_zero() and iv.high < 0 and iv.unit == "blocks"
    assert ratio_interval(a, worse, **kw) == iv  # seeded: same interval every time
    few = RatioData(np.ones(30), np.zeros(30, dtype=np.int64))
    assert ratio_interval(few, few, **kw).unit == "requests"


def test_quantile_and_injection_intervals() -> None:
    rng = np.random.default_rng(2)
    blocks = np.repeat(np.arange(40), 25)
    fast = QuantileData(rng.normal(10, 1, 1000), blocks, 0.5)
    slow = QuantileData(rng.normal(20, 1, 1000), blocks, 0.5)
    iv = quantile_interval(fast, slow, seed=0, resamples=300, confidence=0.95)
    assert 9 < iv.low < iv.high < 11
    iv = injection_interval(np.array([1.0, 1.2, 0.9]), np.array([5.0, 5.5, 4.8]), "mean", seed=0, resamples=300, confidence=0.95)
    assert iv.low > 3


class _FakeSide(Side):
    def __init__(self, values):
        super().__init__("x", [])
        self.values = values

    def injection_values(self, fault, metric):
        return list(self.values)


def test_injection_rows_not_recovered_and_too_few() -> None:
    st = Settings()
    r = injection_row("fault", "f", "mttr_s", "f", "mean", _FakeSide([1.0, 1.1, 0.9]), _FakeSide([1.0, None, 1.2]), st, "lower")
    assert r.verdict == "regressed" and "not recovered in 1 of 3" in r.reason
    r = injection_row("fault", "f", "mttr_s", "f", "mean", _FakeSide([2.0]), _FakeSide([9.0]), st, "lower")
    assert r.verdict == "inconclusive" and "too little data" in r.reason
    r = injection_row("fault", "f", "mttr_s", "f", "mean", _FakeSide([8.0, 9.0, 8.5, 9.2]), _FakeSide([2.0, 2.2, 1.9, 2.1]), st, "lower")
    assert r.verdict == "improved"


def test_p99_needs_500_samples(naive_to_hardened) -> None:
    r = _row(naive_to_hardened, "sli", "latency_p99_ms", "latency_p99_ms", "phase kill")
    assert r.n_baseline < 500 and r.verdict == "inconclusive"


def test_policy_rows() -> None:
    c = compare_runs([HARD], [NAIVE])
    flips = failing_rows(c, [FailPolicy.parse("flip")])
    assert [r.name for r in flips] == ["available-during-kill"]
    assert failing_rows(c, [FailPolicy.parse("none")]) == []


def test_invalid_answers_are_a_regression_of_success_and_errors(tmp_path: Path) -> None:
    # a candidate whose stack answers every 4th clean 200 with an empty body: success falls, errors rise by that share
    shutil.copy(HARD / "journal.json", tmp_path / "journal.json")
    lines = (HARD / "samples.csv").read_text().splitlines()
    out, clean_ok, emptied = [lines[0]], 0, 0
    for line in lines[1:]:
        cells = line.split(",")
        if cells[3] == "ok" and cells[8] == "clean":
            clean_ok += 1
            if clean_ok % 4 == 0:
                cells[3:8] = ["invalid", "", "", "", cells[7]]  # what the load records: no served_by, prediction, confidence
                emptied += 1
        out.append(",".join(cells))
    (tmp_path / "samples.csv").write_text("\n".join(out) + "\n")
    c = compare_runs([HARD], [tmp_path])
    s = _row(c, "sli", "success_ratio", "success_ratio", "phase baseline, cohort clean")
    e = _row(c, "sli", "error_ratio", "error_ratio", "phase baseline, cohort clean")
    assert s.verdict == e.verdict == "regressed"
    assert s.delta == pytest.approx(-e.delta) and 0.2 < e.delta < 0.3, (s, e)
    assert emptied > 50
