"""The report's drift section renders the magnitude at which the stack switched to the fallback."""

from __future__ import annotations

from chaosml.report.blocks import Para
from chaosml.report.document import drift_section


def test_drift_switch_sentence_names_the_magnitude() -> None:
    analysis = {"drift": [{"bin": "none", "requests": 10}],
                "drift_switches": [{"fault": "shift", "injection": 0, "switch_s": 2.5, "magnitude": 0.4321}]}
    paras = [b.text for b in drift_section(analysis) if isinstance(b, Para)]
    assert any(p.startswith("shift #1: the stack switched to the fallback") and p.endswith("at drift magnitude 0.43")
               for p in paras), paras
