"""A pod's container through its node's containerd (``containerd://`` IDs, kind): ``ctr -n k8s.io`` behind a command prefix.

The prefix reaches the node: ``target.kubernetes.nodes.<node>.exec`` (e.g. ``["ssh", "node-1"]``), else
``docker exec <node>`` (a kind node is a Docker container named like the node; the host's engine:
``docker_host`` of the node if given, else DOCKER_HOST or the local socket). One of runtime.py's two paths.
"""

from __future__ import annotations

import json
import shlex
import subprocess

from chaosml.errors import TargetError

#: the containerd namespace of the kubelet's (CRI) containers
CRI_NAMESPACE = "k8s.io"
CTR_TIMEOUT_S = 30


def node_prefix(node: str | None, node_exec: tuple[str, ...], docker_host: str | None) -> tuple[str, ...]:
    """The argv prefix that runs a command on the node: ``node_exec``, else ``docker [-H host] exec <node>``."""
    if node_exec:
        return node_exec
    if not node:
        raise TargetError("the pod has no node yet: its containerd cannot be reached")
    return ("docker", *(("-H", docker_host) if docker_host else ()), "exec", node)


def describe(prefix: tuple[str, ...]) -> str:
    """The path in words: the command that reaches containerd."""
    return f"containerd through `{shlex.join([*prefix, 'ctr', '-n', CRI_NAMESPACE])}`"


class CtrContainer:
    """One containerd container (and its task, same ID) of the CRI namespace, driven with ``ctr`` through ``prefix``."""

    def __init__(self, prefix: tuple[str, ...], container_id: str) -> None:
        self._prefix = prefix
        self._id = container_id
        self.resume_hint = f"run `{shlex.join([*prefix, 'ctr', '-n', CRI_NAMESPACE, 'task', 'resume', container_id])}`"

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [*self._prefix, "ctr", "-n", CRI_NAMESPACE, *args]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=CTR_TIMEOUT_S, check=False)
        except FileNotFoundError as e:
            raise TargetError(f"cannot run {argv[0]!r} to reach the node's containerd ({e}); "
                              "set target.kubernetes.nodes.<node>.exec to a command prefix that runs ctr on the node") from e
        except subprocess.TimeoutExpired as e:
            raise TargetError(f"`{shlex.join(argv)}` did not answer within {CTR_TIMEOUT_S} s") from e

    def _run(self, *args: str) -> str:
        done = self._ctr(*args)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            raise TargetError(f"`{shlex.join([*self._prefix, 'ctr', '-n', CRI_NAMESPACE, *args])}` failed: {why}")
        return done.stdout

    def labels(self) -> dict[str, str] | None:
        """The container's labels (the CRI's ``io.kubernetes.pod.*``); None when containerd has no such container."""
        done = self._ctr("containers", "info", self._id)
        if done.returncode != 0 and "not found" in done.stderr:
            return None
        if done.returncode != 0:
            self._run("containers", "info", self._id)  # raises with the command and its message
        try:
            info = json.loads(done.stdout)
        except ValueError as e:
            raise TargetError(f"ctr containers info {self._id}: not JSON ({e})") from e
        return {str(k): str(v) for k, v in (info.get("Labels") or {}).items()}

    def kill(self, sig: str) -> None:
        self._run("task", "kill", "-s", sig, self._id)

    def pause(self) -> None:
        self._run("task", "pause", self._id)

    def resume(self) -> None:
        self._run("task", "resume", self._id)

    def state(self) -> str:
        """The task's status in lower case (running, paused, stopped, ...); ``no task`` when it has none."""
        for line in self._run("task", "ls").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 3 and cols[0] == self._id:
                return cols[2].lower()
        return "no task"

    def close(self) -> None:
        """Nothing held open between commands."""
