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
)
from chaosml.model.faults import FAULT_TYPES, PodKillParams, fault_type

__all__ = [
    "AbortCondition",
    "Experiment",
    "FAULT_TYPES",
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
    "fault_type",
]
