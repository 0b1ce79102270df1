"""The small protocol a target (local processes, kubernetes) offers the runner and fault injectors."""

from __future__ import annotations

import signal
from typing import Any, Protocol, runtime_checkable

from chaosml.errors import TargetError
from chaosml.targets.supervisor import ReplicaStatus

__all__ = ["Target", "TargetError"]


@runtime_checkable
class Target(Protocol):
    """A running reference stack. Groups: ``feature-store``, ``model``, ``gateway``."""

    @property
    def entry_url(self) -> str:
        """Base URL of the stack's entry point (the gateway), e.g. ``http://127.0.0.1:8080``."""
        ...

    @property
    def redis_url(self) -> str:
        """URL of the feature store as the harness reaches it."""
        ...

    def start(self, timeout_s: float = 60.0) -> None:
        """Bring the stack up and wait until every member is ready; raise TargetError otherwise."""
        ...

    def stop(self) -> None:
        """Tear everything down; idempotent."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for the journal (profile, endpoints, members, pids)."""
        ...

    def members(self, group: str) -> list[ReplicaStatus]:
        ...

    def groups(self) -> list[str]:
        ...

    def kill(self, names: list[str], sig: int = signal.SIGKILL) -> None:
        ...

    def wait_group_ready(self, group: str, timeout_s: float) -> bool:
        ...
