"""The kubernetes target package: the stack in one namespace of an existing cluster; used by the runner, `chaosml plan`, `chaosml cluster` and the faults.

Only this package imports the ``kubernetes`` client library (lazily, where it is used). Layers:
:mod:`.context` (allowlist, kubeconfig, pinning) < :mod:`.kindconfig` < :mod:`.actions` (API
calls) < :mod:`.discovery` and :mod:`.watch` < :mod:`.target` (:class:`KubernetesTarget`);
:mod:`.undo` acts from a ledger record alone; :mod:`.cluster` is the API half of `chaosml cluster`;
:mod:`.runtime` reaches pods' containers through their node's Docker engine (container-failure).
"""

from chaosml.targets.kubernetes.context import (
    IN_CLUSTER_CONTEXT,
    ContextNotAllowedError,
    context_allowed,
    kubeconfig_facts,
    new_api_client,
)
from chaosml.targets.kubernetes.discovery import ENTRY_URL_ENV
from chaosml.targets.kubernetes.kindconfig import KIND_CONFIG_ENV
from chaosml.targets.kubernetes.target import KubernetesTarget
from chaosml.targets.kubernetes.undo import (
    client_from_record,
    pod_exec_from_record,
    scale_back_from_record,
    scale_from_record,
    undo_target,
)

__all__ = [
    "ENTRY_URL_ENV",
    "IN_CLUSTER_CONTEXT",
    "KIND_CONFIG_ENV",
    "ContextNotAllowedError",
    "KubernetesTarget",
    "client_from_record",
    "context_allowed",
    "kubeconfig_facts",
    "new_api_client",
    "pod_exec_from_record",
    "scale_back_from_record",
    "scale_from_record",
    "undo_target",
]
