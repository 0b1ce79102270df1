"""Local target: the reference stack as supervised processes on 127.0.0.1 (fault proxy, redis-server, replicas, gateway).

Used by the runner for ``platform: local``. Members and groups: ``proxy`` (``proxy``), ``redis``
(``feature-store``), ``model-0`` .. ``model-N-1`` (``model``), ``gateway`` (``gateway``) and, for
``monitoring.prometheus.local``, ``prometheus`` (``monitoring``: chaosml.monitoring.server). A killed
member is restarted by the supervisor after ``restart_delay_s``, like the kubelet. Redis runs without
persistence, so when it comes back after a kill the target re-seeds the features (standing in for a
persistent volume).

Links: the fault proxy (``python -m chaosml.proxy``, Toxiproxy API) starts first and carries every
hop of the data path, so network faults have somewhere to act:

- ``feature-store``: replicas -> redis (the replicas get the proxied Redis URL);
- ``model-<i>``: gateway -> replica i (the gateway's backends are the proxied addresses);
- ``gateway``: client -> gateway (``entry_url`` is the proxied listener).

Readiness probes, seeding and :attr:`redis_url` go DIRECT to the processes, never through a link, so
a fault on a link never makes the supervisor restart anything or the harness lose its own view.
Listen ports are fixed at start, so when the proxy process itself is restarted the target creates the
same links again (event ``proxy_links_restored``). ``proxy=False`` wires everything directly (no
links; network faults then refuse to run).
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaosml.model.experiment import PrometheusSpec
from chaosml.procs import kill_run_processes, processes_of_run, spawned_of
from chaosml.records import EventKind, TargetEvent
from chaosml.targets.base import TargetError
from chaosml.targets.supervised import SupervisedTarget
from chaosml.targets.supervisor import ProcessSpec, Supervisor
from chaosml.targets.undoers import target_undoer

log = logging.getLogger(__name__)

GROUP_FEATURE_STORE = "feature-store"
GROUP_MODEL = "model"
GROUP_GATEWAY = "gateway"
GROUP_PROXY = "proxy"
GROUP_MONITORING = "monitoring"
LINK_FEATURE_STORE = "feature-store"
LINK_GATEWAY = "gateway"
PROXY_API_TIMEOUT_S = 2.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()



#: How often the local target reads each hardened replica's circuit-breaker state.
BREAKER_POLL_S = 0.25


class LocalTarget(SupervisedTarget):
    """The reference stack on this machine; a context manager (``start`` on enter, ``stop`` on exit)."""

    _not_ready_label = "local target members"
    _name = "local target"

    def __init__(
        self,
        run_dir: Path,
        profile: str = "hardened",
        replicas: int = 3,
        restart_delay_s: float = 2.0,
        dataset: str = "breast_cancer",
        seed: int = 0,
        on_event: Callable[[TargetEvent], None] | None = None,
        cache_dir: Path | None = None,
        redis_url_for_replicas: Callable[[str], str] | None = None,
        proxy: bool = True,
        prometheus: PrometheusSpec | None = None,
    ) -> None:
        if profile not in ("naive", "hardened"):
            raise ValueError(f"unknown profile {profile!r}; known profiles: naive, hardened")
        if replicas < 1:
            raise ValueError("replicas must be >= 1")
        self.run_dir = Path(run_dir).resolve()
        self.profile = profile
        self.replicas = replicas
        self.restart_delay_s = restart_delay_s
        self.dataset = dataset
        self.seed = seed
        self.cache_dir = cache_dir
        super().__init__(on_event)
        self._redis_url_for_replicas = redis_url_for_replicas
        self.use_proxy = proxy
        self.prometheus = prometheus  # start a Prometheus scraping the stack (monitoring.prometheus.local)
        self._ports: dict[str, int] = {}
        self._artifact: Path | None = None
        self._replica_redis_url: str | None = None
        self._dataset_obj: Any = None

    # --- properties ------------------------------------------------------------------
    @property
    def entry_url(self) -> str:
        """Where clients send requests: the ``gateway`` link (or the gateway itself without the proxy)."""
        if self._links:
            return f"http://{self._links[LINK_GATEWAY]['listen']}"
        return self.gateway_url

    @property
    def gateway_url(self) -> str:
        """The gateway process itself, bypassing the ``gateway`` link."""
        return f"http://127.0.0.1:{self._port('gateway')}"

    @property
    def redis_url(self) -> str:
        """The Redis process itself (the harness's own view: seeding, feature injectors)."""
        return f"redis://127.0.0.1:{self._port('redis')}/0"

    @property
    def proxy_api_url(self) -> str | None:
        """The fault proxy's Toxiproxy-compatible API, or None when the target runs without it."""
        if not self.use_proxy:
            return None
        return f"http://127.0.0.1:{self._port('proxy')}"

    @property
    def prometheus_url(self) -> str | None:
        """The run's own Prometheus (``monitoring.prometheus.local``), or None when it starts none."""
        if self.prometheus is None:
            return None
        return f"http://127.0.0.1:{self._port('prometheus')}"

    @property
    def owns_proxy(self) -> bool:
        """The fault proxy is this run's child: when it is gone, its toxics are gone too."""
        return self.use_proxy

    @property
    def owns_redis(self) -> bool:
        """Redis is this run's child, without persistence: when it is gone, so are its rows."""
        return True

    @property
    def artifact(self) -> Path:
        if self._artifact is None:
            raise TargetError("the local target is not started")
        return self._artifact

    @property
    def replica_names(self) -> list[str]:
        return [f"model-{i}" for i in range(self.replicas)]

    def replica_urls(self) -> dict[str, str]:
        """Replica name -> its own address (not through the fault proxy): where its admin endpoints answer."""
        return {n: f"http://127.0.0.1:{self._port(n)}" for n in self.replica_names}

    def _port(self, name: str) -> int:
        try:
            return self._ports[name]
        except KeyError:
            raise TargetError("the local target is not started") from None

    # --- lifecycle -------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> None:
        """Train/load the artifact, start redis, seed it, start replicas and the gateway, wait until ready."""
        self._start_within(timeout_s)

    def _start(self, deadline: float) -> None:
        from chaosml.stack import featurestore
        from chaosml.stack.models import ensure_artifact
        from chaosml.workload.builtin_dataset import load_dataset

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._artifact = ensure_artifact(self.cache_dir, self.dataset, self.seed)
        self._dataset_obj = load_dataset(self.dataset, self.seed)
        redis_bin = featurestore.redis_server_binary()
        names = ["redis", *self.replica_names, "gateway", *(["prometheus"] if self.prometheus is not None else [])]
        link_names = [LINK_FEATURE_STORE, *self.replica_names, LINK_GATEWAY] if self.use_proxy else []
        ports = free_ports(len(names) + (1 + len(link_names) if self.use_proxy else 0))
        self._ports = dict(zip(names, ports))
        self._sup = Supervisor(self.run_dir, on_event=self._on_event)
        py_env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": _PACKAGE_ROOT}
        redis_dir = self.run_dir / "redis"
        redis_dir.mkdir(exist_ok=True)

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        if self.use_proxy:
            self._ports["proxy"] = ports[len(names)]
            upstream = {LINK_FEATURE_STORE: "redis", LINK_GATEWAY: "gateway", **{n: n for n in self.replica_names}}
            self._links = {
                link: {"listen": f"127.0.0.1:{port}", "upstream": f"127.0.0.1:{self._ports[upstream[link]]}"}
                for link, port in zip(link_names, ports[len(names) + 1 :])
            }
            self._sup.start(
                ProcessSpec(
                    name="proxy",
                    argv=[sys.executable, "-m", "chaosml.proxy", "--port", str(self._ports["proxy"])],
                    env=py_env,
                    cwd=self.run_dir,
                    ready_url=f"http://127.0.0.1:{self._ports['proxy']}/version",
                    restart_delay_s=self.restart_delay_s,
                    group=GROUP_PROXY,
                )
            )
            self._require_ready(["proxy"], left())
            self._create_links()

        self._sup.start(
            ProcessSpec(
                name="redis",
                argv=[str(redis_bin), "--port", str(self._ports["redis"]), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(redis_dir)],
                cwd=redis_dir,
                ready_url=f"tcp://127.0.0.1:{self._ports['redis']}",
                restart_delay_s=self.restart_delay_s,
                group=GROUP_FEATURE_STORE,
            )
        )
        self._require_ready(["redis"], left())
        featurestore.seed(self.redis_url, self._dataset_obj)
        base_url = (
            f"redis://{self._links[LINK_FEATURE_STORE]['listen']}/0" if self._links else self.redis_url
        )
        self._replica_redis_url = self._redis_url_for_replicas(base_url) if self._redis_url_for_replicas else base_url
        for name in self.replica_names:
            port = self._ports[name]
            self._sup.start(
                ProcessSpec(
                    name=name,
                    argv=[sys.executable, "-m", "chaosml.stack.service", "--port", str(port),
                          "--redis-url", self._replica_redis_url, "--artifact", str(self._artifact),
                          "--profile", self.profile, "--name", name],
                    env=py_env,
                    cwd=self.run_dir,
                    ready_url=f"http://127.0.0.1:{port}/readyz",
                    restart_delay_s=self.restart_delay_s,
                    group=GROUP_MODEL,
                )
            )
        backends = ",".join(
            f"http://{self._links[n]['listen']}" if self._links else f"http://127.0.0.1:{self._ports[n]}"
            for n in self.replica_names
        )
        self._sup.start(
            ProcessSpec(
                name="gateway",
                argv=[sys.executable, "-m", "chaosml.stack.gateway", "--port", str(self._ports["gateway"]),
                      "--backends", backends, "--artifact", str(self._artifact), "--profile", self.profile],
                env=py_env,
                cwd=self.run_dir,
                ready_url=f"http://127.0.0.1:{self._ports['gateway']}/readyz",
                restart_delay_s=self.restart_delay_s,
                group=GROUP_GATEWAY,
            )
        )
        self._require_ready([*self.replica_names, "gateway"], left())
        self._wait_gateway_routes_to_all(left())
        if self.prometheus is not None:
            self._start_prometheus(self.prometheus, left())
        if self.profile == "hardened":  # only the hardened replicas have a circuit breaker
            self._in_background(self._watch_breakers, "breaker-watch")

    def _start_prometheus(self, spec: PrometheusSpec, timeout_s: float) -> None:
        """Prometheus on 127.0.0.1 scraping the gateway and replicas directly (never through a link), data in the run dir."""
        from chaosml.monitoring import server

        binary = server.prometheus_binary()
        if binary is None:
            raise TargetError("monitoring.prometheus.local needs the prometheus binary on PATH (Debian: apt-get install prometheus)")
        directory = self.run_dir / "prometheus"
        rules = Path(spec.rules).resolve() if spec.rules else server.shipped_rules()
        config = server.write_config(
            directory, f"127.0.0.1:{self._ports['gateway']}",
            {n: f"127.0.0.1:{self._ports[n]}" for n in self.replica_names}, spec.scrape_interval, rules,
        )
        port = self._ports["prometheus"]
        self.supervisor.start(ProcessSpec(
            name="prometheus", argv=server.argv(binary, config, directory / "data", port), cwd=directory,
            ready_url=f"http://127.0.0.1:{port}/-/ready", restart_delay_s=self.restart_delay_s, group=GROUP_MONITORING,
        ))
        self._require_ready(["prometheus"], timeout_s)
        self._wait_first_scrapes(self.prometheus_url or "", 1 + self.replicas, timeout_s)

    @staticmethod
    def _wait_first_scrapes(url: str, targets: int, timeout_s: float) -> None:
        """Ready = every target scraped up once, so that the baseline has points from its first seconds."""
        from chaosml.monitoring.promapi import PromQueryError, PromUnreachable, query

        deadline = time.monotonic() + timeout_s
        up = 0
        while time.monotonic() < deadline:  # bounded by the start deadline
            try:
                result = query(url, "count(up == 1)", time.time(), timeout_s=1.0)["result"]
                up = int(float(result[0]["value"][1])) if result else 0
            except (PromUnreachable, PromQueryError, LookupError, ValueError):
                up = 0
            if up >= targets:
                return
            time.sleep(0.1)
        raise TargetError(f"the local Prometheus scraped {up} of {targets} targets up after start")

    def _wait_gateway_routes_to_all(self, timeout_s: float) -> None:
        """Ready = the gateway routes to every replica (its health checks go through the links), not just one."""
        import json
        import urllib.request

        want = self.replica_names
        url = f"{self.gateway_url}/readyz"  # direct, like every probe of the harness
        deadline = time.monotonic() + timeout_s
        seen: list[str] = []
        while time.monotonic() < deadline:  # bounded by the start deadline
            try:
                with urllib.request.urlopen(url, timeout=0.5) as r:
                    seen = list(json.loads(r.read()).get("backends_ready", []))
            except (OSError, ValueError):
                seen = []
            if len(seen) >= len(want):
                return
            time.sleep(0.05)
        raise TargetError(f"the gateway routes to {len(seen)} of {len(want)} replicas after start ({', '.join(seen) or 'none'})")

    def _create_links(self) -> None:
        """Create (or re-create, after a proxy restart) every link through the proxy's API."""
        from chaosml.proxy import client

        client.populate(
            self._proxy_api(),
            [{"name": n, **link, "enabled": True} for n, link in self._links.items()],
            timeout=PROXY_API_TIMEOUT_S,
        )

    def _proxy_api(self) -> str:
        url = self.proxy_api_url
        if url is None:
            raise TargetError("this local target runs without the fault proxy")
        return url

    # --- events ----------------------------------------------------------------------
    def _on_event(self, ev: TargetEvent) -> None:
        super()._on_event(ev)
        if ev.kind == EventKind.REPLICA_READY and ev.subject == "redis" and self._dataset_obj is not None and self._replica_redis_url:
            # Redis came back empty after a restart (no persistence): seed it again, off the monitor thread.
            self._in_background(self._reseed, "reseed-redis")

    def _watch_breakers(self) -> None:
        """Scrape each replica's /metrics (direct) every BREAKER_POLL_S and turn a change of its
        ``breaker_state`` gauge into a ``breaker_transition`` event; ends when the target stops."""
        import re
        import urllib.request

        from chaosml.stack.breaker import STATE_CODES

        names = {v: k for k, v in STATE_CODES.items()}
        gauge = re.compile(r"^\S*breaker_state\{[^}]*\}\s+([0-9.]+)\s*$", re.MULTILINE)
        last: dict[str, str] = {}
        while not self._stopped:  # bounded by the target's life; each request has a timeout
            for name in self.replica_names:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{self._ports[name]}/metrics", timeout=0.5) as r:
                        m = gauge.search(r.read().decode(errors="replace"))
                except (OSError, ValueError):
                    continue  # a killed or restarting replica: its breaker starts closed again
                if m is None:
                    continue
                state = names.get(int(float(m.group(1))), "unknown")
                before = last.get(name)
                last[name] = state
                if before is not None and state != before:
                    self._emit(TargetEvent(t=time.time(), kind=EventKind.BREAKER_TRANSITION, subject=name,
                                           detail={"from": before, "to": state}))
            time.sleep(BREAKER_POLL_S)

    def _reseed(self) -> None:
        from chaosml.stack import featurestore

        try:
            n = featurestore.seed(self.redis_url, self._dataset_obj)
            ev = TargetEvent(t=time.time(), kind=EventKind.FEATURE_STORE_SEEDED, subject="redis", detail={"rows": n})
        except Exception as e:  # noqa: BLE001 - reported as an event, never raised from a thread
            ev = TargetEvent(t=time.time(), kind=EventKind.FEATURE_STORE_SEED_FAILED, subject="redis", detail={"error": str(e)})
        self._emit(ev)

    # --- queries and actions ---------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        from chaosml.stack.models import load_meta

        meta = load_meta(self._artifact) if self._artifact else {}
        return {
            "platform": "local",
            "profile": self.profile,
            "entry_url": self.entry_url if self._ports else None,
            "gateway_url": self.gateway_url if self._ports else None,
            "redis_url": self.redis_url if self._ports else None,
            "replica_redis_url": self._replica_redis_url,
            "proxy_api_url": self.proxy_api_url if self._ports else None,
            "links": self.links(),
            "ports": dict(self._ports),
            "replicas": self.replica_names,
            "groups": {
                **({GROUP_PROXY: ["proxy"]} if self.use_proxy else {}),
                GROUP_FEATURE_STORE: ["redis"],
                GROUP_MODEL: self.replica_names,
                GROUP_GATEWAY: ["gateway"],
                **({GROUP_MONITORING: ["prometheus"]} if self.prometheus is not None else {}),
            },
            "prometheus_url": self.prometheus_url if self._ports else None,
            "restart_delay_s": self.restart_delay_s,
            "pids": self._sup.pids() if self._sup else {},
            "run_dir": str(self.run_dir),
            "artifact": str(self._artifact) if self._artifact else None,
            "dataset": self.dataset,
            "seed": self.seed,
            "model_versions": {
                k: meta[k]["version"] if k != "default" else meta[k]["model_version"]
                for k in ("primary", "fallback", "default")
                if k in meta
            },
            "test_accuracy": {k: meta[k]["test_accuracy"] for k in ("primary", "fallback") if k in meta},
        }


@target_undoer("local")
def undo_local_target(record: dict[str, Any]) -> str:
    """Offline undo of a local target (`chaosml rollback`): SIGKILL every process the run started, and no other.

    The run's processes are those :mod:`chaosml.procs` proves: the run token in their environment,
    or a spawn the ledger recorded (same pid and start time, or born later in the session it leads).
    """
    token = record.get("token")
    spawned = spawned_of(record)
    if not token and not spawned:
        return "local target: no run token or spawned process recorded; nothing to stop"
    pids = kill_run_processes(token and str(token), spawned)
    left = processes_of_run(token and str(token), spawned)
    if left:
        raise RuntimeError(f"processes still alive after SIGKILL: {left}")
    return f"local target: stopped {len(pids)} orphaned process(es)" if pids else "local target: no process left"
