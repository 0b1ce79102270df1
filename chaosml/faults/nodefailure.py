"""node-failure: take a node down: a kind node's Docker container, or the node's own stop/start commands (kubernetes target). Found by the fault-type registry.

A kind node is a Docker container named like the node (``chaosml-worker``). ``action: pause``
freezes it (``docker pause``: the kubelet stops posting status, like a partitioned node);
``action: stop`` stops it (``docker stop``: like a power-off). Recover unpauses or starts it again
and waits up to ``ready_timeout_s`` for the node to be Ready. The victim is chosen in
``undo_record``: a node name, ``worker`` (the worker node running most of the namespace's pods,
first by name on a tie) or ``random`` (seeded, among workers); control-plane nodes are never picked
by ``worker``/``random``.

The undo record holds the container name, the action and the container's state before apply, so
the offline undoer (``chaosml rollback``) unpauses or starts it from the record alone, and leaves a
container alone that was not running before the fault. Docker is reached through the Docker SDK
(``docker.from_env()``: ``DOCKER_HOST`` or the local socket).

A node that is not a container (a real machine or VM) is failed by its own commands,
``target.kubernetes.nodes.<node>.stop`` and ``.start`` (argv, e.g. ``ssh NODE sudo systemctl stop
kubelet``; the target's :class:`~chaosml.targets.capabilities.NodeCommands`): apply runs ``stop``,
recover and the offline undoer run ``start`` (kept in the record; it must be idempotent), and
``action`` is not used.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from chaosml.docker_engine import docker_client as _docker_client
from chaosml.errors import TargetError
from chaosml.model.experiment import FaultSpec
from chaosml.model.faulttype import FaultContext, FaultType, plural
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import ContextGuard, LedgerScope, NodeCommands, NodeControl

STOP_TIMEOUT_S = 10  # docker stop: SIGTERM, then SIGKILL after this many seconds
DOCKER_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 60  # a node's stop/start command


@dataclass(frozen=True, slots=True)
class NodeFailureParams:
    """Take one kind node down: ``docker pause`` (frozen, like a partition) or ``docker stop`` (power-off)."""

    node: str = "worker"  # a node name, worker (the worker running most of the stack's pods) or random (seeded)
    action: Literal["pause", "stop"] = "pause"
    ready_timeout_s: float = field(default=60.0, metadata={"duration": True})  # recover waits this long for the node Ready, s

    def check(self) -> list[tuple[str, str]]:
        errors: list[tuple[str, str]] = []
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", self.node or ""):
            errors.append(("node", f"must be a node name, worker or random, not {self.node!r}"))
        if self.ready_timeout_s < 0:
            errors.append(("ready_timeout_s", "must be >= 0"))
        return errors


class ClusterNodes(NodeControl, NodeCommands, LedgerScope, ContextGuard, Protocol):
    """What node-failure needs of the kubernetes target."""


def docker_client() -> Any:
    """A Docker SDK client, or a TargetError saying that the engine cannot be reached."""
    return _docker_client(
        DOCKER_TIMEOUT_S,
        "node-failure needs the docker Python SDK: pip install 'chaosml[kubernetes]'",
        "node-failure: cannot reach the Docker engine (is docker running? DOCKER_HOST?)",
    )


def container_state(client: Any, name: str) -> str:
    """``running`` | ``paused`` | ``exited`` | ... of a container, or ``missing``."""
    import docker.errors

    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return "missing"
    return str(c.attrs.get("State", {}).get("Status") or c.status)


def run_command(argv: list[str]) -> tuple[bool, str]:
    """Run a node's stop/start command (bounded); (exit 0, the last lines of its output or why it failed)."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{argv[0]}: {e}"
    out = (res.stdout + res.stderr).strip()[-400:]
    return res.returncode == 0, (out or "no output") if res.returncode == 0 else f"exit {res.returncode}: {out}"


def _restore(client: Any, name: str, action: str, state_before: str) -> tuple[str, str]:
    """Put a node container back as it was before the fault; (state now, what was done)."""
    import docker.errors

    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return "missing", f"container {name} no longer exists: nothing to undo"
    state = c.attrs.get("State", {}).get("Status") or c.status
    if state_before != "running":
        return state, f"container {name} was {state_before} before the fault: left {state}"
    if state == "paused":
        c.unpause()
        done = f"container {name} unpaused"
    elif state in ("exited", "created", "stopped"):
        c.start()
        done = f"container {name} started"
    else:
        done = f"container {name} already {state}"
    c.reload()
    return str(c.attrs.get("State", {}).get("Status") or c.status), done


class NodeFailure:
    """Pause or stop one kind node's container per injection."""

    def __init__(self, spec: FaultSpec, target: ClusterNodes, context: FaultContext) -> None:
        self.spec = spec
        self.params: NodeFailureParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}
        self._docker: Any = None

    def _client(self) -> Any:
        if self._docker is None:
            self._docker = docker_client()
        return self._docker

    def resolve_node(self) -> str:
        p = self.params
        if p.node not in ("worker", "random"):
            return p.node
        workers = [n for n in self.target.nodes() if not n["control_plane"]]
        if not workers:
            raise TargetError("node-failure: no worker node in the cluster (kind-config.yaml has two workers)")
        if p.node == "random":
            return str(self._rng.choice(sorted(n["name"] for n in workers)))
        return str(min(workers, key=lambda n: (-n["pods"], n["name"]))["name"])

    def undo_record(self, injection: int) -> dict[str, Any]:
        node = self.resolve_node()
        commands = self.target.node_commands(node)
        if commands is not None:
            record = {**self.target.ledger_scope(), "node": node, "mechanism": "commands", "action": "commands",
                      "stop": list(commands[0]), "start": list(commands[1])}
            self._records[injection] = record
            return record
        client = self._client()
        state = container_state(client, node)
        if state == "missing":
            raise TargetError(f"node-failure: no Docker container named {node!r} (a kind node's container is named like the node)")
        record = {**self.target.ledger_scope(), "node": node, "mechanism": "container", "container": node,
                  "action": self.params.action, "state_before": state,
                  "docker_host": getattr(getattr(client, "api", None), "base_url", None)}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        self.target.guard()
        record = self._records.get(injection) or self.undo_record(injection)
        if record.get("mechanism") == "commands":
            t = time.time()
            ok, out = run_command(record["stop"])
            return FaultEvent(
                t=t, fault=self.spec.name, injection=injection, action="apply", ok=ok, targets=(record["node"],),
                detail={"node": record["node"], "mechanism": "commands", "stop": record["stop"], "output": out,
                        "apply_s": round(time.time() - t, 3)},
                no_effect=None if ok else f"failed no node: the stop command failed ({out})",
            )
        client = self._client()
        t = time.time()
        c = client.containers.get(record["container"])
        if record["state_before"] != "running":
            ok, note = False, f"container was {record['state_before']} already: not touched"
        elif record["action"] == "pause":
            c.pause()
            ok, note = True, "paused"
        else:
            c.stop(timeout=STOP_TIMEOUT_S)
            ok, note = True, "stopped"
        state = container_state(client, record["container"])
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=ok and state != "running",
            targets=(record["node"],),
            detail={"node": record["node"], "action": record["action"], "state_before": record["state_before"],
                    "state": state, "note": note, "apply_s": round(time.time() - t, 3)},
            no_effect=None if ok else f"failed no node: {note}",
        )

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        if record.get("mechanism") == "commands":
            ok, done = run_command(record["start"])
            state = "started" if ok else "start failed"
        else:
            state, done = _restore(self._client(), record["container"], record["action"], record["state_before"])
            ok = state == record["state_before"] or (state == "running" and record["state_before"] == "running")
        detail: dict[str, Any] = {"node": record["node"], "action": record["action"], "state": state, "done": done}
        node_ready = None
        if self.params.ready_timeout_s > 0:
            deadline = time.monotonic() + self.params.ready_timeout_s
            while True:
                try:
                    node_ready = bool(self.target.node_ready(record["node"]))
                except Exception as e:  # noqa: BLE001 - the node object may be gone; reported
                    detail["node_error"] = str(e)
                    node_ready = False
                if node_ready or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            detail.update(node_ready=node_ready, node_ready_s=round(time.time() - t, 3))
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="recover", ok=ok,
                          targets=(record["node"],), detail=detail)


def undo(record: dict[str, Any]) -> str:
    """Run the node's start command, or unpause/start the node container, from the record alone (idempotent)."""
    if record.get("mechanism") == "commands":
        ok, out = run_command(record["start"])
        if not ok:
            raise TargetError(f"node {record['node']}: the start command {record['start']} failed: {out}")
        return f"node-failure of {record['node']}: start command run ({out})"
    client = docker_client()
    state, done = _restore(client, record["container"], record["action"], record["state_before"])
    if record["state_before"] == "running" and state != "running":
        raise TargetError(f"node {record['node']}: container is {state} after undo; run `docker start {record['container']}`")
    return f"node-failure {record['action']} of {record['node']}: {done}"


def on_cluster(fault: FaultSpec, target: ClusterNodes, nodes: list[dict[str, Any]]) -> str:
    """The node container one injection would take down (``random``: the workers it chooses among)."""
    p: NodeFailureParams = fault.params
    workers = [n for n in nodes if not n["control_plane"]]
    if p.node == "worker":
        pick = sorted(workers, key=lambda n: (-n["pods"], n["name"]))[:1]
        which = pick[0]["name"] if pick else "no worker node"
    elif p.node == "random":
        which = "one of " + (", ".join(n["name"] for n in workers) or "no worker node") + " (seeded choice)"
    else:
        which = p.node
    on = {n["name"]: n["pods"] for n in nodes}
    extra = f", running {plural(on[which], 'pod')} of the namespace" if which in on else ""
    commands = target.node_commands(which) if which in on else None
    if commands is not None:
        return f"node {which} taken down by its stop command ({' '.join(commands[0])}){extra}"
    return f"docker {p.action} of node container {which}{extra}"


FAULT_TYPE = FaultType(
    name="node-failure",
    params=NodeFailureParams,
    injectors={"kubernetes": NodeFailure},
    undoers={"kubernetes": undo},
    capabilities={"kubernetes": (ClusterNodes,)},
    severity="critical",
    renamed={"ready_timeout": "ready_timeout_s"},
    on_cluster=on_cluster,
)
