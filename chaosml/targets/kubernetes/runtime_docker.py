"""A pod's container through its node's Docker engine (dockershim, ``docker://`` IDs); one of runtime.py's two paths."""

from __future__ import annotations

from typing import Any

from chaosml.docker_engine import docker_client

DOCKER_TIMEOUT_S = 30


def describe(host: str | None) -> str:
    """The path in words: which engine."""
    return f"the Docker engine {host or '(DOCKER_HOST or the local socket)'}"


class DockerContainer:
    """One container of a Docker engine, opened by ID (the engine is pinged first; :meth:`close` after)."""

    resume_hint = "run `docker unpause` on its node's engine"

    def __init__(self, host: str | None, docker_id: str) -> None:
        self._client = docker_client(
            DOCKER_TIMEOUT_S,
            "container faults need the docker Python SDK: pip install 'chaosml[kubernetes]'",
            f"cannot reach the Docker engine {host or '(DOCKER_HOST or the local socket)'} of the node",
            base_url=host,
        )
        self._id = docker_id
        self._c: Any = None

    def labels(self) -> dict[str, str] | None:
        """The container's labels; None when the engine has no such container."""
        import docker.errors

        try:
            self._c = self._client.containers.get(self._id)
        except docker.errors.NotFound:
            return None
        return dict(self._c.labels or {})

    def kill(self, sig: str) -> None:
        self._c.kill(signal=sig)

    def pause(self) -> None:
        self._c.pause()

    def resume(self) -> None:
        self._c.unpause()

    def state(self) -> str:
        self._c.reload()
        return str(self._c.attrs.get("State", {}).get("Status") or self._c.status)

    def close(self) -> None:
        self._client.close()
