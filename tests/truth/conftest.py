"""Ground-truth tests reuse the synthetic run builder of tests/analysis (analysis_synth)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "analysis"))
