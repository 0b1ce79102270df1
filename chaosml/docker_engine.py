"""One way to reach the Docker engine (kind nodes, node-failure); used by chaosml.cluster and faults.nodefailure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chaosml.errors import TargetError


def docker_client(timeout_s: float, missing_sdk: str, unreachable: str, base_url: str | None = None) -> Any:
    """A pinged Docker SDK client of ``base_url`` (None: ``DOCKER_HOST`` or the local socket), or a TargetError:
    ``missing_sdk`` when the package is absent, ``unreachable`` (followed by the cause) when no engine answers."""
    try:
        import docker
    except ImportError as e:
        raise TargetError(missing_sdk) from e
    try:
        host = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if host.startswith("unix://") and not Path(host.removeprefix("unix://")).exists():
            raise FileNotFoundError(f"no Docker socket at {host.removeprefix('unix://')}")
        c = docker.DockerClient(base_url=host, timeout=timeout_s) if base_url else docker.from_env(timeout=timeout_s)
        try:
            c.ping()
        except BaseException:
            c.close()
            raise
        return c
    except Exception as e:
        raise TargetError(f"{unreachable}: {e}") from e
