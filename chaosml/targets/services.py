"""Local target for a user's own stack (``stack: custom``): declared services as supervised processes on 127.0.0.1.

Used by the runner instead of :class:`chaosml.targets.local.LocalTarget` when the experiment
declares ``target.services``. Every replica of every service is a :class:`ProcessSpec` (argv list,
never a shell) in the same kubelet-like :class:`Supervisor`: started, probed on its health path,
restarted after ``restart_delay`` when it dies, killed by ``pod-kill`` (``service:`` = the service
name; members ``<service>-<i>``) and stopped at the end. Its own env holds ``CHAOSML_RUN_TOKEN``
(inherited), so ``chaosml rollback`` finds orphans as for the reference stack.

The entry service's replicas sit behind a round-robin front (:mod:`chaosml.targets.front`, like a
kubernetes Service). With ``entry.proxy`` (default) the fault proxy carries the data path as on the
reference stack, so network faults have somewhere to act:

- ``gateway``: client -> front (``entry_url`` is this link's listener);
- ``model-<i>``: front -> replica i of the entry service (the names network faults use);
- each declared link (``feature-store``): services -> the dependency's ``upstream``; services learn
  the proxied address through the link's ``env`` variable or a ``{link:NAME}`` placeholder.

Health probes go direct to the processes, never through a link. Placeholders in ``command`` and
``env``: ``{port}``, ``{port.NAME}``, ``{replica}``, ``{name}``, ``{python}``, ``{run_dir}``, ``{link:NAME}``.

Ports: a service declaring ``ports: [http, grpc, metrics]`` gets a free port per name per replica
(``{port.http}`` ...); a port pinned to a number is used as is (one replica only, refused at start when
two replicas would share it or another process holds it). Readiness is probed on ``health_port``
(default: the first; ``{port}`` is that one), clients enter on ``entry.port`` (default: the same).
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosml.model.experiment import ServiceSpec, TargetSpec
from chaosml.records import TargetEvent
from chaosml.targets.base import TargetError
from chaosml.targets.local import LINK_GATEWAY, PROXY_API_TIMEOUT_S, free_ports
from chaosml.targets.supervised import SupervisedTarget
from chaosml.targets.supervisor import ProcessSpec, Supervisor

log = logging.getLogger(__name__)

GROUP_PROXY = "proxy"
GROUP_FRONT = "front"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_PLACEHOLDER = re.compile(r"\{(port|port\.[A-Za-z0-9_\-]+|replica|name|python|run_dir|link:[A-Za-z0-9_\-]+)\}")
DEFAULT_PORT = "port"  # the one port of a service that declares no ports


def port_names(svc: ServiceSpec) -> list[str]:
    """The names of a replica's ports: the declared ones, or the one unnamed ``{port}``."""
    return list(svc.ports) or [DEFAULT_PORT]


def health_port_name(svc: ServiceSpec) -> str:
    """The port probed for readiness and filled into ``{port}``: ``health_port``, else the first."""
    return svc.health_port or port_names(svc)[0]



class ServicesTarget(SupervisedTarget):
    """A custom stack on this machine; a context manager (``start`` on enter, ``stop`` on exit)."""

    _not_ready_label = "services"
    _name = "custom stack"

    def __init__(
        self,
        spec: TargetSpec,
        run_dir: Path,
        on_event: Callable[[TargetEvent], None] | None = None,
        served_by_exposed: bool = True,
    ) -> None:
        if not spec.services or spec.entry is None:
            raise ValueError("a custom stack needs services and an entry")
        self.spec = spec
        self.run_dir = Path(run_dir).resolve()
        self.restart_delay_s = spec.restart_delay
        self.use_proxy = spec.entry.proxy or bool(spec.links)
        self.served_by_exposed = served_by_exposed
        super().__init__(on_event)
        self._ports: dict[str, int] = {}  # member -> its health port; front, proxy -> theirs
        self._member_ports: dict[str, dict[str, int]] = {}  # member -> port name -> port

    # --- properties -------------------------------------------------------------------
    @property
    def entry_service(self) -> str:
        assert self.spec.entry is not None
        return self.spec.entry.service

    def replica_names(self, service: str) -> list[str]:
        svc = next(s for s in self.spec.services if s.name == service)
        return [f"{service}-{i}" for i in range(svc.replicas)]

    @property
    def entry_url(self) -> str:
        if LINK_GATEWAY in self._links:
            return f"http://{self._links[LINK_GATEWAY]['listen']}"
        return f"http://127.0.0.1:{self._port('front')}"

    @property
    def proxy_api_url(self) -> str | None:
        return f"http://127.0.0.1:{self._port('proxy')}" if self.use_proxy else None

    @property
    def owns_proxy(self) -> bool:
        return self.use_proxy

    @property
    def owns_redis(self) -> bool:
        return False

    @property
    def redis_url(self) -> str:
        raise TargetError("a custom stack has no feature store the harness manages")

    def _port(self, name: str) -> int:
        try:
            return self._ports[name]
        except KeyError:
            raise TargetError("the target is not started") from None

    # --- lifecycle -------------------------------------------------------------------
    def start(self, timeout_s: float | None = None) -> None:
        """Start every service's replicas (and the links and front), waiting until all are ready."""
        self._start_within(timeout_s if timeout_s is not None else max(s.start_timeout for s in self.spec.services) + 15.0)

    def _start(self, deadline: float) -> None:
        spec = self.spec
        self.run_dir.mkdir(parents=True, exist_ok=True)
        members = [(svc, f"{svc.name}-{i}", i) for svc in spec.services for i in range(svc.replicas)]
        entry_replicas = self.replica_names(self.entry_service)
        link_names: list[str] = []
        if self.use_proxy:
            link_names = [ln.name for ln in spec.links]
            if spec.entry is not None and spec.entry.proxy:
                link_names += [LINK_GATEWAY, *(f"model-{i}" for i in range(len(entry_replicas)))]
        self._member_ports = self._allocate_member_ports(members)
        own = ["front"] + (["proxy"] if self.use_proxy else [])
        ports = free_ports(len(own) + len(link_names))
        self._ports = {member: self._member_ports[member][health_port_name(svc)] for svc, member, _ in members}
        self._ports.update(zip(own, ports))
        link_ports = dict(zip(link_names, ports[len(own):]))
        self._sup = Supervisor(self.run_dir, on_event=self._on_event)
        py_env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": _PACKAGE_ROOT}

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        if self.use_proxy:
            upstream = {ln.name: (ln.upstream or "").replace("localhost", "127.0.0.1") for ln in spec.links}
            upstream[LINK_GATEWAY] = f"127.0.0.1:{self._ports['front']}"
            for i, member in enumerate(entry_replicas):
                upstream[f"model-{i}"] = f"127.0.0.1:{self._entry_port(member)}"
            self._links = {n: {"listen": f"127.0.0.1:{link_ports[n]}", "upstream": upstream[n]} for n in link_names}
            self._sup.start(
                ProcessSpec(
                    name="proxy",
                    argv=[sys.executable, "-m", "chaosml.proxy", "--port", str(self._ports["proxy"])],
                    env=py_env, cwd=self.run_dir,
                    ready_url=f"http://127.0.0.1:{self._ports['proxy']}/version",
                    restart_delay_s=self.restart_delay_s, group=GROUP_PROXY,
                )
            )
            self._require_ready(["proxy"], left())
            self._create_links()

        link_env = {ln.env: self._link_addr(ln.name, ln.upstream) for ln in spec.links if ln.env}
        for svc, member, i in members:
            values = {
                "port": str(self._ports[member]), "replica": str(i), "name": member,
                "python": sys.executable, "run_dir": str(self.run_dir),
                **{f"port.{n}": str(p) for n, p in self._member_ports[member].items()},
            }
            argv = [self._fill(a, values) for a in svc.command]
            env = {**link_env, **{k: self._fill(v, values) for k, v in svc.env.items()}}
            health = f"tcp://127.0.0.1:{self._ports[member]}" if svc.health == "tcp" else f"http://127.0.0.1:{self._ports[member]}{svc.health}"
            self._sup.start(
                ProcessSpec(
                    name=member, argv=argv, env=env, cwd=svc.cwd, ready_url=health,
                    restart_delay_s=self.restart_delay_s, group=svc.name,
                )
            )
        backends = []
        for i, member in enumerate(entry_replicas):
            svc = next(s for s in spec.services if s.name == self.entry_service)
            addr = self._links[f"model-{i}"]["listen"] if f"model-{i}" in self._links else f"127.0.0.1:{self._entry_port(member)}"
            health = f"tcp://127.0.0.1:{self._ports[member]}" if svc.health == "tcp" else f"http://127.0.0.1:{self._ports[member]}{svc.health}"
            backends += ["--backend", f"{addr}={health}"]
        self._sup.start(
            ProcessSpec(
                name="front",
                argv=[sys.executable, "-m", "chaosml.targets.front", "--port", str(self._ports["front"]), *backends],
                env=py_env, cwd=self.run_dir, ready_url=f"tcp://127.0.0.1:{self._ports['front']}",
                restart_delay_s=self.restart_delay_s, group=GROUP_FRONT,
            )
        )
        self._require_ready([m[1] for m in members] + ["front"], left())

    def _allocate_member_ports(self, members: list[tuple[ServiceSpec, str, int]]) -> dict[str, dict[str, int]]:
        """member -> port name -> port: pinned ones as declared (refused when shared or taken), the others free."""
        pinned: dict[int, str] = {}
        for svc, member, _ in members:
            for name, number in svc.ports.items():
                if number is None:
                    continue
                where = f"{member} port {name} ({svc.name}.ports.{name})"
                if number in pinned:
                    raise TargetError(f"port {number} is pinned for both {pinned[number]} and {where}: two replicas cannot "
                                      "bind one port; write auto for a free port per replica")
                pinned[number] = where
        for number, where in pinned.items():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", number))
                except OSError as exc:
                    raise TargetError(f"port {number} for {where} is not free on 127.0.0.1 ({exc.strerror or exc}): another "
                                      "process holds it; stop it, or write auto for a free port") from None
        wanted = [(member, name) for svc, member, _ in members for name in port_names(svc) if svc.ports.get(name) is None]
        free = dict(zip(wanted, free_ports(len(wanted))))
        return {member: {name: svc.ports.get(name) or free[(member, name)] for name in port_names(svc)} for svc, member, _ in members}

    def _entry_port(self, member: str) -> int:
        """The port clients reach an entry replica on: ``entry.port``, else its health port."""
        assert self.spec.entry is not None
        return self._member_ports[member][self.spec.entry.port] if self.spec.entry.port else self._ports[member]

    def _link_addr(self, name: str, upstream: str | None) -> str:
        return self._links[name]["listen"] if name in self._links else (upstream or "")

    def _fill(self, text: str, values: dict[str, str]) -> str:
        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key.startswith("link:"):
                name = key[5:]
                ln = next((x for x in self.spec.links if x.name == name), None)
                if ln is None and name not in self._links:
                    raise TargetError(f"placeholder {{{key}}}: no link {name!r} declared in target.links")
                return self._link_addr(name, ln.upstream if ln else "")
            if key not in values:
                raise TargetError(f"placeholder {{{key}}}: no port {key[5:]!r} declared in the service's ports")
            return values[key]

        return _PLACEHOLDER.sub(sub, text)

    def _create_links(self) -> None:
        from chaosml.proxy import client

        api = self.proxy_api_url
        assert api is not None
        client.populate(api, [{"name": n, **link, "enabled": True} for n, link in self._links.items()], timeout=PROXY_API_TIMEOUT_S)

    # --- queries and actions -----------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        groups: dict[str, list[str]] = {}
        if self.use_proxy:
            groups[GROUP_PROXY] = ["proxy"]
        for svc in self.spec.services:
            groups[svc.name] = self.replica_names(svc.name)
        groups[GROUP_FRONT] = ["front"]
        return {
            "platform": "local",
            "stack": "custom",
            "profile": "custom",
            "entry_url": self.entry_url if self._ports else None,
            "entry_service": self.entry_service,
            "proxy_api_url": self.proxy_api_url if self._ports else None,
            "links": self.links(),
            "ports": dict(self._ports),
            "named_ports": {m: dict(p) for m, p in self._member_ports.items()},
            "replicas": self.replica_names(self.entry_service),
            "groups": groups,
            "services": {s.name: {"command": list(s.command), "replicas": s.replicas, "health": s.health} for s in self.spec.services},
            "restart_delay_s": self.restart_delay_s,
            "pids": self._sup.pids() if self._sup else {},
            "run_dir": str(self.run_dir),
            "served_by_exposed": self.served_by_exposed,
        }
