"""The ``invalid`` outcome (a 2xx whose body is not an answer) through the SLIs, the mix and the per-request SLO failures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from chaosml.analysis.mttr import slo_failures
from chaosml.analysis.samples import normalize_samples
from chaosml.analysis.slis import MIX_CLASSES, SampleArrays, compute_slis, mix_counts
from chaosml.model.catalog import SAMPLE_SLIS
from chaosml.model.experiment import Slo
from chaosml.records import classify_outcome

COLS = ["t", "latency_ms", "status", "outcome", "served_by", "prediction", "confidence", "label", "cohort"]
ROWS = [
    # t, latency, status, outcome, served_by, prediction, confidence, label, cohort
    (0.0, 10.0, 200, "ok", "primary", 1, 0.95, 1, "clean"),
    (1.0, 10.0, 200, "ok", "fallback", 1, 0.95, 1, "clean"),
    (2.0, 10.0, 200, "invalid", "", None, None, 1, "clean"),  # empty body
    (3.0, 10.0, 200, "invalid", "primary", None, None, 1, "clean"),  # JSON without a prediction
    (4.0, 10.0, 503, "error", "", None, None, 1, "clean"),
    (5.0, 10.0, 422, "rejected", "rejected", None, None, 0, "clean"),
]


def arrays() -> SampleArrays:
    return SampleArrays.from_frame(pd.DataFrame(ROWS, columns=COLS), 0.8)


def test_classify_outcome() -> None:
    assert classify_outcome(200) == "ok"
    assert classify_outcome(204, answered=True) == "ok"
    assert classify_outcome(200, answered=False) == "invalid"
    assert classify_outcome(299, answered=False) == "invalid"
    # only a 2xx can be invalid: other statuses keep their outcome whatever the body
    assert classify_outcome(422, answered=False) == "rejected"
    assert classify_outcome(503, answered=False) == "error"
    assert classify_outcome(0, answered=False) == "error"
    assert classify_outcome(0, timed_out=True, answered=False) == "timeout"


def test_invalid_is_read_back_from_samples() -> None:
    df = normalize_samples(pd.DataFrame(ROWS, columns=COLS))
    assert df["outcome"].tolist() == ["ok", "ok", "invalid", "invalid", "error", "rejected"]


def test_invalid_is_no_success_an_error_and_not_an_answer() -> None:
    s = compute_slis(pd.DataFrame(ROWS, columns=COLS), 0.8)
    assert "invalid_ratio" in SAMPLE_SLIS
    assert s["requests"] == 6
    assert s["success_ratio"] == 2 / 6
    assert s["invalid_ratio"] == 2 / 6
    assert s["error_ratio"] == 3 / 6  # the 503 and the two invalid answers
    assert s["rejected_ratio"] == 1 / 6
    assert math.isclose(s["success_ratio"] + s["error_ratio"] + s["rejected_ratio"], 1.0)
    assert s["timeout_ratio"] == 0.0
    # served_by and accuracy count answers only: an invalid body served_by primary is no primary answer
    assert s["answers"] == 2
    assert s["primary_ratio"] == 1 / 2
    assert s["accuracy"] == 1.0


def test_invalid_has_its_own_mix_class() -> None:
    counts = mix_counts(arrays(), None)
    assert "invalid" in MIX_CLASSES
    assert counts == {"primary": 1, "fallback": 1, "default": 0, "rejected": 1, "error": 1, "timeout": 0, "invalid": 2, "unknown": 0}


def test_an_invalid_answer_breaks_success_error_and_invalid_slos() -> None:
    a = arrays()
    invalid = np.array([False, False, True, True, False, False])
    for sli in ("success_ratio", "error_ratio", "invalid_ratio"):
        fails = slo_failures(a, Slo("s", sli, ">=", 0.99))
        assert fails is not None
        assert (fails & invalid).sum() == 2, sli
    primary = slo_failures(a, Slo("p", "primary_ratio", ">=", 0.99))
    assert primary is not None and not (primary & invalid).any()  # not an answer: no serving path to judge
