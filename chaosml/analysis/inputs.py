"""Which SLIs a run has the inputs for; used by analyze.

An SLI whose input the stack does not expose, or the workload does not carry, is not measured:
its verdicts are INCONCLUSIVE with the reason and its values are shown as not measured, never as
0.00% or a PASS (:func:`unmeasured_slis`):

- primary/fallback/default ratios need ``served_by`` (``response.served_by: not-exposed``);
- accuracy and confident-wrong ratio need a prediction (``response.prediction``) and a label
  (the workload's); confident-wrong also needs a confidence (``response.confidence``);
- a mapped field that no answer carried is as unmeasured as one that is not exposed.

The probe's sanity check of the answers themselves is chaosml.workload.answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from chaosml.model.experiment import Experiment

NOT_EXPOSED = "not-exposed"

#: SLIs that need the stack to say which path served each answer.
SERVED_BY_SLIS: tuple[str, ...] = ("primary_ratio", "fallback_ratio", "default_ratio")
#: SLIs that compare a prediction with a label.
QUALITY_SLIS: tuple[str, ...] = ("accuracy", "confident_wrong_ratio")



def unmeasured_slis(experiment: Experiment, samples: pd.DataFrame, served_by_exposed: bool = True) -> dict[str, str]:
    """SLI -> why it is not measured in this run (no entry: measured)."""
    out: dict[str, str] = {}
    response = experiment.response

    def miss(slis: Sequence[str], why: str) -> None:
        for s in slis:
            out.setdefault(s, why)

    if not served_by_exposed or response.served_by == NOT_EXPOSED:
        miss(SERVED_BY_SLIS, "served_by is not exposed by this stack (response.served_by: not-exposed)")
    if response.prediction == NOT_EXPOSED:
        miss(QUALITY_SLIS, "the prediction is not exposed by this stack (response.prediction: not-exposed)")
    if response.confidence == NOT_EXPOSED:
        miss(("confident_wrong_ratio",), "the confidence is not exposed by this stack (response.confidence: not-exposed)")
    answered = samples[samples["outcome"] == "ok"] if "outcome" in samples.columns else samples.iloc[0:0]
    if len(answered):
        if not _any(answered, "label"):
            miss(QUALITY_SLIS, "the workload has no labels" + (
                f" (load.locustfile: the requests of {experiment.load.locustfile} carry none)" if experiment.load.locustfile else ""))
        if not _any(answered, "prediction"):
            miss(QUALITY_SLIS, f"no answer carried a prediction (response.prediction: {response.prediction})")
        if not _any(answered, "confidence"):
            miss(("confident_wrong_ratio",), f"no answer carried a confidence (response.confidence: {response.confidence})")
    return out


def _any(df: pd.DataFrame, col: str) -> bool:
    return col in df.columns and bool(pd.to_numeric(df[col], errors="coerce").notna().any())


__all__ = [
    "QUALITY_SLIS",
    "SERVED_BY_SLIS",
    "unmeasured_slis",
]
