"""Frozen, typed model of experiment files (no I/O)."""

from chaosml.model.experiment import (
    AbortCondition,
    Experiment,
    FaultSpec,
    Hypothesis,
    KubernetesSpec,
    LoadSpec,
    Repeat,
    RollbackSpec,
    Slo,
    SteadyState,
    TargetSpec,
    ToxiproxySpec,
)
from chaosml.model.faults import FAULT_TYPES, PodKillParams, fault_type

__all__ = [
    "FAULT_TYPES",
    "AbortCondition",
    "Experiment",
    "FaultSpec",
    "Hypothesis",
    "KubernetesSpec",
    "LoadSpec",
    "PodKillParams",
    "Repeat",
    "RollbackSpec",
    "Slo",
    "SteadyState",
    "TargetSpec",
    "ToxiproxySpec",
    "fault_type",
]
