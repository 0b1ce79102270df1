"""Offline undo on kubernetes from a ledger record alone (after the harness died); used by `chaosml rollback` and the fault undoers.

An undo record carries what :meth:`KubernetesTarget.ledger_scope` gave (kubeconfig, context, API
server, namespace); acting on it is refused when the context now names another API server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chaosml.errors import TargetError
from chaosml.procs import kill_run_processes, spawned_of
from chaosml.targets.kubernetes.actions import exec_in_pod, scale_deployment
from chaosml.targets.kubernetes.context import kubeconfig_facts, new_api_client
from chaosml.targets.undoers import target_undoer


def client_from_record(record: dict[str, Any]) -> Any:
    """An ApiClient for the cluster an undo record names, refusing if the context now points elsewhere."""
    facts = kubeconfig_facts(record.get("kubeconfig"), record["context"])
    if record.get("server") and facts["server"] != record["server"]:
        raise TargetError(
            f"context {record['context']!r} now points at {facts['server']}, not {record['server']} as during the run: "
            "refusing to act on another cluster"
        )
    return new_api_client(facts["kubeconfig"], record["context"])


@contextmanager
def _api_from_record(record: dict[str, Any]) -> Iterator[Any]:
    """One ApiClient for the record's cluster (see :func:`client_from_record`), closed when the block ends."""
    api = client_from_record(record)
    try:
        yield api
    finally:
        api.close()


def scale_back_from_record(record: dict[str, Any], deployments: list[tuple[str, int]]) -> list[str]:
    """Scale each ``(deployment, replicas_before)`` back, in order, in the record's namespace on one API client
    (idempotent); what each one did. Used by offline undoers."""
    from kubernetes import client

    with _api_from_record(record) as api:
        apps = client.AppsV1Api(api)
        return [_scale_back(apps, record["namespace"], name, want) for name, want in deployments]


def _scale_back(apps: Any, ns: str, name: str, want: int) -> str:
    from kubernetes.client.exceptions import ApiException

    try:
        now = scale_deployment(apps, ns, name, want)
    except ApiException as e:
        if e.status == 404:
            return f"deployment {ns}/{name} no longer exists: nothing to scale back"
        raise
    if now == want:
        return f"deployment {ns}/{name} already at {want} replica(s)"
    return f"deployment {ns}/{name} scaled back from {now} to {want} replica(s)"


def scale_from_record(record: dict[str, Any]) -> str:
    """Scale ``record["deployment"]`` back to ``record["replicas_before"]`` (idempotent); used by offline undoers."""
    return scale_back_from_record(record, [(record["deployment"], int(record["replicas_before"]))])[0]


@contextmanager
def pod_exec_from_record(record: dict[str, Any]) -> Iterator[Callable[[str, list[str]], str]]:
    """``run(pod, argv) -> output``: exec in a pod of the record's namespace (its ``container``, if any), on the
    record's cluster only; used by offline undoers that act inside pods."""
    from kubernetes import client

    with _api_from_record(record) as api:
        core = client.CoreV1Api(api)
        yield lambda pod, argv: exec_in_pod(core, record["namespace"], pod, argv, record.get("container"))


@target_undoer("kubernetes")
def undo_target(record: dict[str, Any]) -> str:
    """Offline undo of a kubernetes target: stop the run's orphaned processes (the load driver); the
    stack itself was never created by the run and is left as it is (faults are undone by their own
    records)."""
    token, spawned = record.get("token"), spawned_of(record)
    pids = kill_run_processes(token and str(token), spawned) if token or spawned else []
    left = f"stopped {len(pids)} orphaned process(es)" if pids else "no process left"
    return f"kubernetes target: {left}; the stack in the cluster is left running (it belongs to `chaosml cluster`)"
