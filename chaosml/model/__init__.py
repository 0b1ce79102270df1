"""Frozen, typed model of experiment files (no I/O)."""

from chaosml.model.experiment import (
    AbortCondition,
    Experiment,
    FaultSpec,
    Hypothesis,
    KubernetesSpec,
    LoadSpec,
    NodeAccessSpec,
    Repeat,
    RollbackSpec,
    Slo,
    SteadyState,
    TargetSpec,
    ToxiproxySpec,
)

__all__ = [
    "AbortCondition",
    "Experiment",
    "FaultSpec",
    "Hypothesis",
    "KubernetesSpec",
    "LoadSpec",
    "NodeAccessSpec",
    "Repeat",
    "RollbackSpec",
    "Slo",
    "SteadyState",
    "TargetSpec",
    "ToxiproxySpec",
]
