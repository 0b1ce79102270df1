"""feature-store-outage: take the feature store away from the replicas (proxy link, Redis process or Deployment). Found by the fault-type registry.

Modes:

- ``down``: the ``feature-store`` link is disabled (``enabled: false``): replicas get their connections
  closed and new ones refused. Undo: set ``enabled`` back to what it was before apply.
- ``timeout``: a ``timeout`` toxic on the link holds every reply (``timeout_ms`` 0: until recovered,
  else the connection is closed after that long). Undo: remove the toxic by name.
- ``latency``: a ``latency`` toxic (``latency_ms`` +/- ``jitter_ms``) on every reply. Undo: remove it.
- ``kill``, two mechanisms. Local target (:class:`StopRedis`): the Redis process is stopped and kept
  down; recover starts it again, waits until it is ready and the target has re-seeded it (Redis runs
  without persistence). Offline, nothing can be restarted: the supervisor that owned Redis died with
  the harness, so the undoer only reports what it finds. Kubernetes target (:class:`ScaleToZero`):
  the feature-store group's Deployment (the reference stack's Redis, or the service behind a custom
  stack's ``feature-store`` link) is scaled to 0 and back; the record holds the ORIGINAL replica
  count, so ``chaosml rollback`` scales it back from the record alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from chaosml.errors import TargetError
from chaosml.faults._toxics import (
    API_TIMEOUT_S,
    check_link_on_stack,
    link_on_cluster,
    proxy_api,
    proxy_gone,
    proxy_state,
    remove_toxics,
    resolve_links,
    toxic_name,
    undo_toxic_record,
)
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    Injector,
    StackFacts,
    plural,
)
from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import (
    DeploymentScaling,
    FeatureRows,
    LedgerScope,
    ProcessControl,
    ProxyLinks,
)

NAME = "feature-store-outage"
LINK = "feature-store"
GROUP = "feature-store"
REDIS_MEMBER = "redis"
#: recover of mode kill waits at most this long for Redis to be ready and re-seeded (seconds)
KILL_RECOVER_TIMEOUT_S = 20.0
#: recover of mode kill on kubernetes waits at most this long for the Deployment to be Ready (seconds)
READY_TIMEOUT_S = 60.0
REDIS_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class FeatureStoreOutageParams:
    """Take the feature store away from the replicas (the ``feature-store`` link, or the Redis process)."""

    mode: Literal["down", "timeout", "latency", "kill"] = "down"  # down: refused; timeout: data held; kill: Redis stopped
    timeout_ms: int = 0  # mode timeout: close held connections after this, ms; 0 = hold until recovered
    latency_ms: int = 0  # mode latency: added to every reply, ms
    jitter_ms: int = 0  # mode latency: +/- this, ms

    def check(self) -> list[tuple[str, str]]:
        values = {"timeout_ms": self.timeout_ms, "latency_ms": self.latency_ms, "jitter_ms": self.jitter_ms}
        errors = [(name, "must be >= 0") for name, v in values.items() if v < 0]
        if self.mode == "latency" and self.latency_ms <= 0:
            errors.append(("latency_ms", "must be > 0 when mode is latency"))
        if self.mode != "latency":
            errors += [(n, f"is only used with mode latency, not {self.mode}") for n in ("latency_ms", "jitter_ms") if values[n]]
        if self.mode != "timeout" and self.timeout_ms:
            errors.append(("timeout_ms", f"is only used with mode timeout, not {self.mode}"))
        return errors


class LocalStore(ProxyLinks, ProcessControl, FeatureRows, Protocol):
    """What feature-store-outage needs of a local target: the link, and the Redis process for kill."""

    run_dir: Path


class ClusterStore(ProxyLinks, DeploymentScaling, LedgerScope, Protocol):
    """What feature-store-outage needs of the kubernetes target: the link, and the Deployment for kill."""


def _redis_rows(redis_url: str) -> int | None:
    """DBSIZE of the Redis at ``redis_url``, or None when it does not answer."""
    import redis

    r = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    try:
        return int(r.dbsize())
    except (redis.exceptions.RedisError, OSError):
        return None
    finally:
        r.close()


def _nothing(spec: FaultSpec, injection: int, t: float) -> FaultEvent:
    return FaultEvent(t, spec.name, injection, "recover", True, (), {"note": "nothing was applied"})


class ProxyOutage:
    """Modes down, timeout and latency: the ``feature-store`` link of the target's proxy (either platform)."""

    def __init__(self, spec: FaultSpec, target: ProxyLinks, context: FaultContext) -> None:
        self.spec = spec
        self.params: FeatureStoreOutageParams = spec.params
        self.target = target
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        p = self.params
        api = proxy_api(self.target)
        (proxy,) = resolve_links(self.target, LINK)
        record: dict[str, Any] = {"mode": p.mode, "api": api, "proxies": [proxy], "owned_by_run": self.target.owns_proxy}
        if p.mode == "down":
            record["enabled_before"] = bool(client.get_proxy(api, proxy, timeout=API_TIMEOUT_S)["enabled"])
        else:
            record.update(toxic=toxic_name(self.spec, injection), type=p.mode, stream="downstream")
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        p = self.params
        t = time.time()
        detail: dict[str, Any] = {"mode": p.mode}
        api, (proxy,) = record["api"], record["proxies"]
        try:
            if p.mode == "down":
                client.update_proxy(api, proxy, enabled=False, timeout=API_TIMEOUT_S)
                detail["enabled_before"] = record["enabled_before"]
            else:
                attrs = {"timeout": p.timeout_ms} if p.mode == "timeout" else {"latency": p.latency_ms, "jitter": p.jitter_ms}
                try:
                    client.add_toxic(api, proxy, p.mode, name=record["toxic"], attributes=attrs, stream="downstream",
                                     timeout=API_TIMEOUT_S)
                except ToxiproxyError as e:
                    if e.status != 409:  # 409: this injection's toxic is there already
                        raise
                detail.update(toxic=record["toxic"], attributes=attrs, stream="downstream")
        except ToxiproxyError as e:
            raise TargetError(f"could not apply {p.mode} on link {proxy}: {e}") from e
        state = proxy_state(api, proxy)
        detail.update(link=proxy, proxy_api=api, state=state, apply_s=round(time.time() - t, 4))
        ok = state.get("enabled") is False if p.mode == "down" else record["toxic"] in state.get("toxics", ())
        stopped_nothing = p.mode == "down" and record["enabled_before"] is False
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="apply", ok=ok, targets=(proxy,), detail=detail,
                          no_effect=f"stopped nothing: link {proxy} was disabled already" if stopped_nothing else None)

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return _nothing(self.spec, injection, t)
        api, (proxy,) = record["api"], record["proxies"]
        detail: dict[str, Any] = {"mode": record["mode"], "link": proxy}
        if record["mode"] == "down":
            client.update_proxy(api, proxy, enabled=record["enabled_before"], timeout=API_TIMEOUT_S)
            detail["enabled"] = record["enabled_before"]
        else:
            detail.update(toxic=record["toxic"], removed=remove_toxics(api, [proxy], record["toxic"])[proxy])
        state = proxy_state(api, proxy)
        detail.update(state=state, recover_s=round(time.time() - t, 4))
        if record["mode"] == "down":
            ok = state.get("enabled") == record["enabled_before"]
        else:
            ok = "error" not in state and record["toxic"] not in state.get("toxics", ())
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="recover", ok=ok, targets=(proxy,), detail=detail)


class StopRedis:
    """Mode kill on a local target: hold the Redis process stopped; recover restarts it and waits for the re-seed."""

    def __init__(self, spec: FaultSpec, target: LocalStore, context: FaultContext) -> None:
        self.spec = spec
        self.target = target
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        members = {m.name: m for m in self.target.members(GROUP)}
        if REDIS_MEMBER not in members:
            raise TargetError(f"no {REDIS_MEMBER!r} member in the feature-store group of this target")
        redis_url = str(self.target.redis_url)
        record = {"mode": "kill", "member": REDIS_MEMBER, "redis_url": redis_url, "pid": members[REDIS_MEMBER].pid,
                  "running_before": members[REDIS_MEMBER].running, "rows_before": _redis_rows(redis_url),
                  "run_dir": str(self.target.run_dir)}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        self.target.stop_member(REDIS_MEMBER)
        running = [m for m in self.target.members(GROUP) if m.name == REDIS_MEMBER and m.running]
        detail = {"mode": "kill", "member": REDIS_MEMBER, "pid_stopped": record["pid"], "rows_before": record["rows_before"],
                  "apply_s": round(time.time() - t, 4)}
        stopped_nothing = record.get("running_before") is False
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="apply", ok=not running,
                          targets=(REDIS_MEMBER,), detail=detail,
                          no_effect=f"stopped nothing: {REDIS_MEMBER} was not running" if stopped_nothing else None)

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return _nothing(self.spec, injection, t)
        self.target.start_member(REDIS_MEMBER)
        ready = self.target.wait_group_ready(GROUP, KILL_RECOVER_TIMEOUT_S)
        ready_s = time.time() - t
        want = record.get("rows_before") or 1
        rows: int | None = None
        deadline = time.monotonic() + max(0.5, KILL_RECOVER_TIMEOUT_S - ready_s)
        while time.monotonic() < deadline:  # the target re-seeds on readiness, off its monitor thread
            rows = _redis_rows(record["redis_url"])
            if rows is not None and rows >= want:
                break
            time.sleep(0.05)
        pid = next((m.pid for m in self.target.members(GROUP) if m.name == REDIS_MEMBER), None)
        seeded = rows is not None and rows >= want
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=ready and seeded, targets=(REDIS_MEMBER,),
            detail={"mode": "kill", "member": REDIS_MEMBER, "pid": pid, "ready": ready, "ready_s": round(ready_s, 3),
                    "rows": rows, "rows_before": record.get("rows_before"), "reseeded": seeded,
                    "reseeded_s": round(time.time() - t, 3)},
        )


class ScaleToZero:
    """Mode kill on kubernetes: scale a group's Deployment to 0 replicas for the window, then back to its original count."""

    def __init__(self, spec: FaultSpec, target: ClusterStore, context: FaultContext) -> None:
        self.spec = spec
        self.target = target
        self.group = target.feature_store_group
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        record = {
            **self.target.ledger_scope(),
            "mode": "kill",
            "mechanism": "scale-to-zero",
            "group": self.group,
            "deployment": self.target.deployment(self.group),
            "replicas_before": self.target.desired_replicas(self.group),
        }
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        t = time.time()
        prev = self.target.stop_member(record["deployment"])
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=True, targets=(record["deployment"],),
            detail={"mode": "kill", "mechanism": "scale-to-zero", "deployment": record["deployment"],
                    "namespace": record["namespace"], "replicas_before": record["replicas_before"], "scaled_from": prev,
                    "apply_s": round(time.time() - t, 4)},
            no_effect=None if prev else f"stopped nothing: deployment {record['deployment']} had 0 replicas already",
        )

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return _nothing(self.spec, injection, t)
        want = int(record["replicas_before"])
        self.target.start_member(record["deployment"], replicas=want)
        ready = self.target.wait_group_ready(self.group, READY_TIMEOUT_S)
        now = self.target.desired_replicas(self.group)
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=ready and now == want,
            targets=(record["deployment"],),
            detail={"mode": "kill", "mechanism": "scale-to-zero", "deployment": record["deployment"],
                    "replicas": now, "replicas_before": want, "ready": ready, "ready_s": round(time.time() - t, 3)},
        )


def make_local(spec: FaultSpec, target: LocalStore, context: FaultContext) -> Injector:
    if spec.params.mode == "kill":
        return StopRedis(spec, target, context)
    return ProxyOutage(spec, target, context)


def make_kubernetes(spec: FaultSpec, target: ClusterStore, context: FaultContext) -> Injector:
    if spec.params.mode == "kill":
        return ScaleToZero(spec, target, context)
    return ProxyOutage(spec, target, context)


def undo_local(record: dict[str, Any]) -> str:
    """Undo from the record alone: re-enable the link, remove the toxic, or report on a killed Redis."""
    mode = record["mode"]
    if mode == "kill":
        rows = _redis_rows(record["redis_url"])
        state = "not answering" if rows is None else f"up with {rows} keys"
        return (
            f"feature-store-outage kill: Redis ({record['redis_url']}) is {state}; it ran under the local "
            "target's supervisor, which ended with the harness, so nothing can be restarted offline: "
            "start a new run (the target starts and seeds its own Redis)"
        )
    if mode in ("timeout", "latency"):
        return "feature-store-outage " + undo_toxic_record(record)
    api, proxy, enabled = record["api"], record["proxies"][0], bool(record["enabled_before"])
    try:
        client.update_proxy(api, proxy, enabled=enabled, timeout=API_TIMEOUT_S)
    except ToxiproxyError as e:
        if proxy_gone(e, record):
            return f"feature-store-outage down: the run's proxy at {api} is gone (nothing is blocked any more)"
        if e.status == 404:
            return f"feature-store-outage down: link {proxy} no longer exists at {api}"
        raise ToxiproxyError(
            e.status, f"link {proxy} at {api} may still be disabled: {e.message}; "
            f"re-enable it with POST {api}/proxies/{proxy} {{\"enabled\": {str(enabled).lower()}}}"
        ) from e
    return f"feature-store-outage down: link {proxy} enabled={str(enabled).lower()} again"


def undo_kubernetes(record: dict[str, Any]) -> str:
    """Scale the Deployment back from the record (scale-to-zero), else as on the local target (the link)."""
    if record.get("mechanism") == "scale-to-zero":
        from chaosml.targets.kubernetes import scale_from_record

        return f"feature-store-outage kill (scale-to-zero): {scale_from_record(record)}"
    return undo_local(record)


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: FeatureStoreOutageParams = fault.params
    injections = plural(fault.repeat.count, "injection")
    how = {
        "down": "the feature-store link disabled (replicas get connection refused)",
        "timeout": "the feature-store link holds all data "
        + ("until recovered" if not p.timeout_ms else f"and closes connections after {p.timeout_ms} ms"),
        "latency": f"every feature fetch delayed by {p.latency_ms} ms +/- {p.jitter_ms} ms",
        "kill": "the redis process stopped and kept down until recovered (then restarted and re-seeded)",
    }[p.mode]
    if target.stack == "custom":
        behind = next((ln.service for ln in target.links if ln.name == LINK), None)
        if p.mode == "kill":
            how = f"the Deployment of service {behind!r} scaled to 0 and back to its original replicas"
        return BlastRadius(fault.name, fault.type, 1, 1, f"{how}: every connection through the feature-store link, {injections}")
    if target.platform == "kubernetes" and p.mode == "kill":
        how = "the redis Deployment scaled to 0 and back to its original replicas (then re-seeded)"
    return BlastRadius(
        fault.name, fault.type, 1, 1,
        f"{how}: every feature fetch of all {target.replicas} replicas, {injections}; "
        "expect fallback answers (hardened) or zero-filled/failed answers (naive)",
    )


def on_cluster(fault: FaultSpec, target: ClusterStore, nodes: list[dict[str, Any]]) -> str:
    """Kill: the Deployment and its pods now; the other modes: the cluster Toxiproxy's feature-store proxy."""
    if fault.params.mode != "kill":
        return link_on_cluster(LINK, target)
    g = target.feature_store_group
    n = target.desired_replicas(g)
    return (f"deployment {target.deployment(g)} scaled from {n} to 0 replicas, "
            f"then back to {n} (pods now: {', '.join(m.name for m in target.members(g)) or 'none'})")


def check(params: FeatureStoreOutageParams, facts: StackFacts) -> list[tuple[str, str]]:
    """On a custom stack: kill needs kubernetes and a service behind the feature-store link; the link must exist."""
    if facts.stack != "custom":
        return []
    errors: list[tuple[str, str]] = []
    if params.mode == "kill":
        declared = next((ln for ln in facts.link_specs if ln.name == LINK), None)
        if facts.platform != "kubernetes":
            errors.append(("params.mode", "mode kill stops the reference stack's Redis; on a custom stack use down, timeout or latency"))
        elif declared is not None and declared.service is None:
            errors.append(("params.mode", ("mode kill scales the service behind the feature-store link to zero: "
                                           "name it in target.links (service: ...), or use down, timeout or latency")))
    return errors + check_link_on_stack(LINK, facts, path="type")


FAULT_TYPE = FaultType(
    name=NAME,
    params=FeatureStoreOutageParams,
    injectors={"local": make_local, "kubernetes": make_kubernetes},
    undoers={"local": undo_local, "kubernetes": undo_kubernetes},
    capabilities={"local": (LocalStore,), "kubernetes": (ClusterStore,)},
    severity="high",
    blast_radius=blast_radius,
    check=check,
    on_cluster=on_cluster,
)
