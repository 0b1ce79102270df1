"""Analysis of a run from its journal and samples alone: phases, SLIs, TTD/MTTR, verdicts (public API)."""

from chaosml.analysis.analyze import ANALYSIS_SCHEMA, Analysis, PhaseResult, analyze
from chaosml.analysis.delivery import Delivery, ramp_warning
from chaosml.analysis.inputs import unmeasured_slis
from chaosml.analysis.mttr import InjectionResult
from chaosml.analysis.phases import (
    Phase,
    build_phases,
    in_flight,
    injection_windows,
    load_range,
    select,
)
from chaosml.analysis.samples import normalize_samples, read_samples
from chaosml.analysis.slis import MIX_CLASSES, compute_slis
from chaosml.analysis.verdicts import Verdict

__all__ = [
    "ANALYSIS_SCHEMA",
    "MIX_CLASSES",
    "Analysis",
    "Delivery",
    "InjectionResult",
    "Phase",
    "PhaseResult",
    "Verdict",
    "analyze",
    "build_phases",
    "compute_slis",
    "in_flight",
    "injection_windows",
    "load_range",
    "normalize_samples",
    "ramp_warning",
    "read_samples",
    "select",
    "unmeasured_slis",
]
