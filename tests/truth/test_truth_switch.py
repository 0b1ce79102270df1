"""Ground truth for the fallback switch: baseline noise is "no switch"; a real switch is found at its edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_synth import T0, experiment, journal, samples

from chaosml.analysis import analyze
from chaosml.analysis.degradation import SWITCH_ALPHA, SWITCH_MIN_EFFECT

KILL = [{"fault": "kill", "apply": 10.0, "recover": 15.0}]


def _noisy(seed: int, share: float = 0.014) -> pd.DataFrame:
    """30 s at 20 req/s; every request independently served by the fallback with probability ``share``."""
    df = samples(30.0, 20.0, seed=seed)
    rng = np.random.default_rng(1000 + seed)
    df.loc[rng.random(len(df)) < share, "served_by"] = "fallback"
    return df


def _degradation(df: pd.DataFrame) -> dict:
    return analyze(experiment(), journal(duration=30.0, injections=KILL), df).to_dict()["degradation"]


def test_a_fault_with_no_effect_on_a_1_4_percent_fallback_baseline_is_no_switch() -> None:
    switched = 0
    for seed in range(100):
        inj = _degradation(_noisy(seed))["faults"][0]["per_injection"][0]
        switched += inj["switched"]
        if not inj["switched"]:
            assert inj["fallback_delay_s"] is None and inj["switch_test"]["significant"] is False
    assert switched <= 5, f"{switched} of 100 no-effect runs reported a switch"


@pytest.mark.parametrize("seed", range(5))
def test_a_real_switch_from_0_to_80_percent_is_found_at_its_edge(seed: int) -> None:
    df = _noisy(seed, share=0.0)
    rng = np.random.default_rng(seed)
    edge = 12.0 + 0.37 * seed / 5  # not on a whole second
    after = (df["t"] >= T0 + edge) & (df["t"] < T0 + 15.0)
    df.loc[after & (rng.random(len(df)) < 0.8), "served_by"] = "fallback"
    d = _degradation(df)
    assert d["switch_rule"] == {"test": "one-sided two-proportion z-test", "alpha": SWITCH_ALPHA, "min_effect": SWITCH_MIN_EFFECT}
    inj = d["faults"][0]["per_injection"][0]
    assert inj["switched"] and inj["switch_test"]["p_value"] < SWITCH_ALPHA
    assert inj["fallback_delay_s"] == pytest.approx(edge - 10.0, abs=0.1)


def test_noise_before_a_real_switch_does_not_move_its_edge() -> None:
    df = _noisy(3)  # 1.4% stray fallback answers everywhere, also between apply and the edge
    after = (df["t"] >= T0 + 13.0) & (df["t"] < T0 + 15.0)
    df.loc[after, "served_by"] = "fallback"
    inj = _degradation(df)["faults"][0]["per_injection"][0]
    assert inj["fallback_delay_s"] == pytest.approx(3.0, abs=0.1)


def test_no_back_to_primary_is_printed_for_a_switch_that_never_happened() -> None:
    from chaosml.report.document import Para, Table, degradation_section

    an = analyze(experiment(), journal(duration=30.0, injections=KILL), _noisy(0)).to_dict()
    assert an["degradation"]["faults"][0]["switched"] == 0
    blocks = degradation_section(an)
    (row,) = [b for b in blocks if isinstance(b, Table)][1].rows
    assert row[1] == "no switch" and row[3] == "- (no switch)"
    sentence = [b.text for b in blocks if isinstance(b, Para)][-1]
    assert "never switched" in sentence and "back to the primary" not in sentence
