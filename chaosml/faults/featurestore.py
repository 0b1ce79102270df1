"""feature-store-outage: take the feature store away from the replicas (proxy link or Redis process); used by the runner.

Modes:

- ``down``: the ``feature-store`` link is disabled (``enabled: false``): replicas get their connections
  closed and new ones refused. Undo: set ``enabled`` back to what it was before apply.
- ``timeout``: a ``timeout`` toxic on the link holds every reply (``timeout_ms`` 0: until recovered,
  else the connection is closed after that long). Undo: remove the toxic by name.
- ``latency``: a ``latency`` toxic (``latency_ms`` +/- ``jitter_ms``) on every reply. Undo: remove it.
- ``kill``: the Redis process is stopped and kept down; recover starts it again, waits until it is ready
  and the target has re-seeded it (Redis runs without persistence). Offline, nothing can be restarted:
  the supervisor that owned Redis died with the harness, so the undoer only reports what it finds.
"""

from __future__ import annotations

import time
from typing import Any

from chaosml.errors import TargetError
from chaosml.faults.base import FaultContext, injector, undoer
from chaosml.faults.network import (
    API_TIMEOUT_S,
    proxy_api,
    proxy_gone,
    proxy_state,
    remove_toxics,
    resolve_links,
    toxic_name,
    undo_toxic_record,
)
from chaosml.model.experiment import FaultSpec
from chaosml.model.faults import FeatureStoreOutageParams
from chaosml.proxy import client
from chaosml.proxy.client import ToxiproxyError
from chaosml.records import FaultEvent

LINK = "feature-store"
REDIS_MEMBER = "redis"
#: recover of mode kill waits at most this long for Redis to be ready and re-seeded (seconds)
KILL_RECOVER_TIMEOUT_S = 20.0
REDIS_TIMEOUT_S = 1.0


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


class FeatureStoreOutage:
    """One feature-store outage per injection, in the mode its params say."""

    def __init__(self, spec: FaultSpec, target: Any, context: FaultContext) -> None:
        self.spec = spec
        self.params: FeatureStoreOutageParams = spec.params
        self.target = target
        self._records: dict[int, dict[str, Any]] = {}

    # --- the record ------------------------------------------------------------------
    def undo_record(self, injection: int) -> dict[str, Any]:
        p = self.params
        record: dict[str, Any] = {"mode": p.mode}
        if p.mode == "kill":
            members = {m.name: m for m in self.target.members("feature-store")}
            if REDIS_MEMBER not in members:
                raise TargetError(f"no {REDIS_MEMBER!r} member in the feature-store group of this target")
            redis_url = str(self.target.redis_url)
            record.update(
                member=REDIS_MEMBER,
                redis_url=redis_url,
                pid=members[REDIS_MEMBER].pid,
                rows_before=_redis_rows(redis_url),
                run_dir=str(getattr(self.target, "run_dir", "")),
            )
        else:
            api = proxy_api(self.target)
            (proxy,) = resolve_links(self.target, LINK)
            record.update(api=api, proxies=[proxy], owned_by_run=bool(getattr(self.target, "owns_proxy", True)))
            if p.mode == "down":
                record["enabled_before"] = bool(client.get_proxy(api, proxy, timeout=API_TIMEOUT_S)["enabled"])
            else:
                record.update(toxic=toxic_name(self.spec, injection), type=p.mode, stream="downstream")
        self._records[injection] = record
        return record

    # --- apply -----------------------------------------------------------------------
    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        p = self.params
        t = time.time()
        detail: dict[str, Any] = {"mode": p.mode}
        if p.mode == "kill":
            self.target.stop_member(REDIS_MEMBER)
            running = [m for m in self.target.members("feature-store") if m.name == REDIS_MEMBER and m.running]
            detail.update(member=REDIS_MEMBER, pid_stopped=record["pid"], rows_before=record["rows_before"])
            ok, targets = not running, (REDIS_MEMBER,)
        else:
            api, (proxy,) = record["api"], record["proxies"]
            try:
                if p.mode == "down":
                    client.update_proxy(api, proxy, enabled=False, timeout=API_TIMEOUT_S)
                    detail["enabled_before"] = record["enabled_before"]
                else:
                    attrs = (
                        {"timeout": p.timeout_ms}
                        if p.mode == "timeout"
                        else {"latency": p.latency_ms, "jitter": p.jitter_ms}
                    )
                    try:
                        client.add_toxic(
                            api, proxy, p.mode, name=record["toxic"], attributes=attrs, stream="downstream",
                            timeout=API_TIMEOUT_S,
                        )
                    except ToxiproxyError as e:
                        if e.status != 409:  # 409: this injection's toxic is there already
                            raise
                    detail.update(toxic=record["toxic"], attributes=attrs, stream="downstream")
            except ToxiproxyError as e:
                raise TargetError(f"could not apply {p.mode} on link {proxy}: {e}") from e
            state = proxy_state(api, proxy)
            detail.update(link=proxy, proxy_api=api, state=state)
            ok = state.get("enabled") is False if p.mode == "down" else record["toxic"] in state.get("toxics", ())
            targets = (proxy,)
        detail["apply_s"] = round(time.time() - t, 4)
        return FaultEvent(t=t, fault=self.spec.name, injection=injection, action="apply", ok=ok, targets=targets, detail=detail)

    # --- recover ---------------------------------------------------------------------
    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        if record["mode"] == "kill":
            return self._recover_kill(injection, record, t)
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

    def _recover_kill(self, injection: int, record: dict[str, Any], t: float) -> FaultEvent:
        self.target.start_member(REDIS_MEMBER)
        ready = self.target.wait_group_ready("feature-store", KILL_RECOVER_TIMEOUT_S)
        ready_s = time.time() - t
        want = record.get("rows_before") or 1
        rows: int | None = None
        deadline = time.monotonic() + max(0.5, KILL_RECOVER_TIMEOUT_S - ready_s)
        while time.monotonic() < deadline:  # the target re-seeds on readiness, off its monitor thread
            rows = _redis_rows(record["redis_url"])
            if rows is not None and rows >= want:
                break
            time.sleep(0.05)
        pid = next((m.pid for m in self.target.members("feature-store") if m.name == REDIS_MEMBER), None)
        seeded = rows is not None and rows >= want
        return FaultEvent(
            t=t,
            fault=self.spec.name,
            injection=injection,
            action="recover",
            ok=ready and seeded,
            targets=(REDIS_MEMBER,),
            detail={
                "mode": "kill",
                "member": REDIS_MEMBER,
                "pid": pid,
                "ready": ready,
                "ready_s": round(ready_s, 3),
                "rows": rows,
                "rows_before": record.get("rows_before"),
                "reseeded": seeded,
                "reseeded_s": round(time.time() - t, 3),
            },
        )


@injector("feature-store-outage")
def _make(spec: FaultSpec, target: Any, context: FaultContext) -> FeatureStoreOutage:
    return FeatureStoreOutage(spec, target, context)


@undoer("feature-store-outage")
def undo(record: dict[str, Any]) -> str:
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
