"""resource-pressure: a CPU hog or a memory balloon beside chosen replicas (local: pinned to the replica's core). Found by the fault-type registry.

Local target, per victim (chosen like pod-kill: ``service``, ``mode``, ``value``): the replica's
threads and a hog are pinned to ONE core (``sched_setaffinity``; the core is the victim's first
allowed one, the next for the next victim), so the hog competes with exactly that replica. The
hog is ``stress-ng`` (``--cpu cpu_workers --cpu-load cpu_load_pct``; memory: ``--vm 1 --vm-bytes
memory_mb --vm-hang 0``, allocated once, then idle), or, where stress-ng is not installed, the
same in Python (:data:`PY_HOG`). Where the kernel schedules by autogroup (a session's tasks share
one task's weight), the hog's session gets the weight of ``cpu_workers`` tasks (its autogroup
nice), so N workers leave the replica about 1/(N+1) of the core, as N busy threads beside it
would. This approximates cgroup-level pressure: the hog is NOT placed in the replica's cgroup (no
cpu/memory limit is shared), it shares the replica's core.

Only the hog is ever stopped: it carries the injection's own token (``CHAOSML_FAULT_TOKEN``,
written to the ledger record before apply), it leads its own session, and it is noted as a
run spawn (:func:`chaosml.procs.note_spawn`); stress-ng also ends by itself ``duration`` + 30 s
after apply. Recover and the offline undo kill the processes holding that token and give the
victims back the CPU affinity they had (only when the same process, same start time, still runs).
Recover records the hog's CPU seconds, the replicas' restarts and the host's ``oom_kill`` count
during the window: a victim that restarted while that count rose is named in ``oom_killed_victims``
(the supervisor's ``replica_exited`` event holds its exit status).

Kubernetes target: ``stress-ng`` is started by exec (as ``kubectl exec``; RBAC ``pods/exec``) in each
victim pod's container (``container``, default the first), so it runs inside the container's cgroup
and its limits; an image without stress-ng makes apply report ``no_effect`` (INCONCLUSIVE). Recover
and the offline undo exec a SIGTERM to the container's processes carrying the token.
"""

from __future__ import annotations

import contextlib
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psutil

from chaosml.faults._victims import Selection, choose, mode_errors, service_errors, service_replicas
from chaosml.model.experiment import FaultSpec, TargetSpec
from chaosml.model.faulttype import (
    BlastRadius,
    FaultContext,
    FaultType,
    StackFacts,
    plural,
)
from chaosml.procs import kill_run_processes, note_spawn, processes_of_run, spawned_now, start_time
from chaosml.records import FaultEvent
from chaosml.targets.capabilities import LedgerScope, PodExec, ReplicaGroups

NAME = "resource-pressure"
#: the environment variable holding an injection's own token (its hog's processes carry it)
FAULT_TOKEN_ENV = "CHAOSML_FAULT_TOKEN"
#: a hog ends by itself this long after its window should have ended (s)
HOG_GRACE_S = 30.0
#: the Python hog: argv[1] kind, then workers, load %, memory MB, lifetime s
PY_HOG = """
import os, sys, time
kind, workers, load, mb, life = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
end = time.monotonic() + life
if kind == "memory":
    ballast = bytearray(mb * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    while time.monotonic() < end:
        time.sleep(0.5)
    sys.exit(0)
for _ in range(workers - 1):
    if os.fork() == 0:
        break
while time.monotonic() < end:
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.001 * load:
        pass
    time.sleep(0.001 * (100 - load))
"""


@dataclass(frozen=True, slots=True)
class ResourcePressureParams(Selection):
    """A CPU hog or a memory balloon beside chosen replicas of a service (``service``, ``mode``, ``value`` as pod-kill)."""

    kind: Literal["cpu", "memory"] = "cpu"
    cpu_workers: int = 1  # kind cpu: busy workers on the replica's core
    cpu_load_pct: int = 100  # kind cpu: each worker's duty cycle, 1-100 %
    memory_mb: int = 256  # kind memory: MiB allocated and held
    container: str | None = None  # kubernetes: the container the hog runs in (default: the pod's first)

    def check(self) -> list[tuple[str, str]]:
        errors = mode_errors(self.mode, self.value)
        if self.cpu_workers < 1:
            errors.append(("cpu_workers", "must be >= 1"))
        if not 1 <= self.cpu_load_pct <= 100:
            errors.append(("cpu_load_pct", "must be in [1, 100]"))
        if self.memory_mb < 1:
            errors.append(("memory_mb", "must be >= 1"))
        return errors


def hog_argv(p: ResourcePressureParams, lifetime_s: float, stress_ng: str | None) -> list[str]:
    """The hog's command line: stress-ng when installed, else the Python hog."""
    life = max(1, round(lifetime_s))
    if stress_ng is not None:
        if p.kind == "memory":
            return [stress_ng, "--vm", "1", "--vm-bytes", f"{p.memory_mb}M", "--vm-hang", "0", "--timeout", f"{life}s", "--quiet"]
        return [stress_ng, "--cpu", str(p.cpu_workers), "--cpu-load", str(p.cpu_load_pct), "--timeout", f"{life}s", "--quiet"]
    return [sys.executable, "-c", PY_HOG, p.kind, str(p.cpu_workers), str(p.cpu_load_pct), str(p.memory_mb), str(life)]


def _pin(pid: int, cpus: list[int]) -> bool:
    """Set the CPU affinity of every thread of ``pid``; False when it is gone or refuses."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    done = False
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
            done = True
    return done


def _pin_tree(pid: int, cpus: list[int]) -> None:
    """Pin ``pid`` and its descendants (stress-ng forks its workers)."""
    _pin(pid, cpus)
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pid).children(recursive=True):
            _pin(child.pid, cpus)


#: the kernel's CFS weights of nice -20..0 (sched_prio_to_weight)
NICE_WEIGHTS = (88761, 71755, 56483, 46273, 36291, 29154, 23254, 18705, 14949, 11916,
                9548, 7620, 6100, 4904, 3906, 3121, 2501, 1991, 1586, 1277, 1024)
AUTOGROUP_ENABLED = "/proc/sys/kernel/sched_autogroup_enabled"


def autogroup_nice(workers: int) -> int:
    """The autogroup nice whose CFS weight is closest to ``workers`` tasks of nice 0 (at most nice -20)."""
    want = 1024 * workers
    return min(range(-20, 1), key=lambda n: abs(NICE_WEIGHTS[n + 20] - want))


def weigh_autogroup(pid: int, workers: int) -> str:
    """With autogroup scheduling, a session's tasks share ONE task's weight: give the hog's session the
    weight of ``workers`` tasks, so that each worker competes with the replica as a task would."""
    try:
        with open(AUTOGROUP_ENABLED) as f:
            if f.read().strip() != "1":
                return "no autogroup: each worker competes as a task"
        nice = autogroup_nice(workers)
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError as e:
        return f"autogroup left at one task's weight ({type(e).__name__}: {e})"
    return f"autogroup nice {nice}: the weight of {workers} task(s)"


def _oom_kills() -> int | None:
    """The host's ``oom_kill`` counter (/proc/vmstat), or None where it is not there."""
    try:
        with open("/proc/vmstat") as f:
            for line in f:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
    return total


def hog_processes(token: str) -> list[int]:
    """The processes of an injection's hogs: those carrying ``token``, and their sessions' later members
    (stress-ng's workers overwrite their environment with their process title)."""
    leaders = processes_of_run(token, token_env=FAULT_TOKEN_ENV)
    spawned = [s for s in (spawned_now(pid) for pid in leaders) if s is not None]
    return processes_of_run(token, spawned, token_env=FAULT_TOKEN_ENV)


def kill_hogs(token: str) -> list[int]:
    """SIGKILL every process of an injection's hogs (:func:`hog_processes`); the pids killed."""
    leaders = processes_of_run(token, token_env=FAULT_TOKEN_ENV)
    spawned = [s for s in (spawned_now(pid) for pid in leaders) if s is not None]
    return kill_run_processes(token, spawned, token_env=FAULT_TOKEN_ENV)


def _restore(victims: list[dict[str, Any]]) -> dict[str, str]:
    """Give each victim the affinity it had, when the same process still runs; name -> what happened."""
    out: dict[str, str] = {}
    for v in victims:
        if v.get("pid") is None or start_time(int(v["pid"])) != v.get("start"):
            out[v["name"]] = "gone (restarted or exited): nothing to restore"
        else:
            out[v["name"]] = "affinity restored" if _pin(int(v["pid"]), list(v["affinity"])) else "could not restore affinity"
    return out


class LocalResourcePressure:
    """Pin each victim replica and its own hog to one core; recover kills the hog and restores the affinity."""

    def __init__(self, spec: FaultSpec, target: ReplicaGroups, context: FaultContext) -> None:
        self.spec = spec
        self.params: ResourcePressureParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}
        self._hogs: dict[int, list[subprocess.Popen[bytes]]] = {}
        self._before: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        """Choose the victims and their cores; the token the hogs will carry."""
        p = self.params
        members = self.target.members(p.service)
        running = {m.name: m for m in members if m.running and m.pid}
        chosen = [running[name] for name in choose(self._rng, sorted(running), p.victim_count(len(members)))]
        victims = []
        for i, m in enumerate(chosen):
            assert m.pid is not None
            try:
                affinity = sorted(os.sched_getaffinity(m.pid))
            except OSError:
                continue
            victims.append({"name": m.name, "pid": m.pid, "start": start_time(m.pid), "affinity": affinity,
                            "core": affinity[i % len(affinity)]})
        record = {"service": p.service, "kind": p.kind, "victims": victims, "replicas": len(members),
                  "token": f"{self.spec.name}-{injection}-{uuid.uuid4().hex[:12]}"}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        p = self.params
        t = time.time()
        stress_ng = shutil.which("stress-ng")
        argv = hog_argv(p, self.spec.duration + HOG_GRACE_S, stress_ng)
        env = {**os.environ, FAULT_TOKEN_ENV: record["token"]}
        hogs: list[subprocess.Popen[bytes]] = []
        pinned: dict[str, int] = {}
        weight = ""
        for v in record["victims"]:
            core = [int(v["core"])]
            if not _pin(int(v["pid"]), core):
                continue
            hog = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=env, start_new_session=True, close_fds=True)
            note_spawn(hog.pid, f"{self.spec.name}-hog-{v['name']}", env)
            _pin_tree(hog.pid, core)
            weight = weigh_autogroup(hog.pid, p.cpu_workers) if p.kind == "cpu" else "memory: weight not changed"
            hogs.append(hog)
            pinned[v["name"]] = int(v["core"])
        self._hogs[injection] = hogs
        members = self.target.members(p.service)
        self._before[injection] = {"restarts": {m.name: m.restarts for m in members}, "oom_kill": _oom_kills()}
        time.sleep(0.2)  # stress-ng forks its workers after start (they inherit the pin, but be sure)
        for hog, cpu in zip(hogs, pinned.values(), strict=True):
            _pin_tree(hog.pid, [cpu])
        victims = [v["name"] for v in record["victims"]]
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=len(pinned) == len(victims) and bool(victims),
            targets=tuple(pinned),
            detail={"service": p.service, "kind": p.kind, "cores": pinned, "hog": "stress-ng" if stress_ng else "python",
                    "argv": argv if stress_ng else [*argv[:2], "<PY_HOG>", *argv[3:]], "hog_pids": [h.pid for h in hogs],
                    "cpu_workers": p.cpu_workers, "cpu_load_pct": p.cpu_load_pct, "memory_mb": p.memory_mb,
                    "placement": "core shared by affinity (not the replica's cgroup)", "weight": weight},
            no_effect=None if pinned else self._why_nothing(record, len(members)),
        )

    def _why_nothing(self, record: dict[str, Any], replicas: int) -> str:
        if not replicas:
            return f"pressured nothing: there are no replicas of service {self.params.service!r}"
        if not record["victims"]:
            return f"pressured nothing: none of the {replicas} replicas of service {self.params.service!r} was running"
        return "pressured nothing: the victims exited before they could be pinned"

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        hog_pids = hog_processes(record["token"])
        cpu_s = _cpu_seconds(hog_pids)
        for hog in self._hogs.get(injection, []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(hog.pid, signal.SIGKILL)
        killed = kill_hogs(record["token"])
        for hog in self._hogs.pop(injection, []):
            with contextlib.suppress(subprocess.TimeoutExpired):
                hog.wait(timeout=5.0)
        restored = _restore(record["victims"])
        left = hog_processes(record["token"])
        before = self._before.pop(injection, {"restarts": {}, "oom_kill": None})
        members = self.target.members(self.params.service)
        restarts = {m.name: m.restarts - before["restarts"].get(m.name, m.restarts) for m in members}
        oom_now = _oom_kills()
        oom_kills = None if oom_now is None or before["oom_kill"] is None else oom_now - before["oom_kill"]
        victims = {v["name"] for v in record["victims"]}
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=not left,
            targets=tuple(v["name"] for v in record["victims"]),
            detail={"hog_cpu_s": round(cpu_s, 3), "hog_processes_killed": len(set(killed) | set(hog_pids)), "left": left,
                    "restored": restored, "replica_restarts": {k: v for k, v in restarts.items() if v},
                    "host_oom_kills": oom_kills,
                    # a victim that restarted while the kernel OOM-killed something: most likely OOM-killed itself
                    "oom_killed_victims": sorted(n for n, k in restarts.items() if k and n in victims) if oom_kills else [],
                    "ready": sum(1 for m in members if m.ready), "desired": len(members)},
        )


#: kubernetes: start the hog in the container, detached, carrying the token; "no stress-ng" when the image lacks it
K8S_START = ('command -v stress-ng >/dev/null 2>&1 || {{ echo "chaosml: no stress-ng"; exit 0; }}; '
             '{env}={token} nohup {argv} >/dev/null 2>&1 & echo "chaosml: started $!"')
#: kubernetes: SIGTERM every process of the container carrying the token (stress-ng then stops its workers)
K8S_STOP = ('for d in /proc/[0-9]*; do if tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -qx {env}={token}; '
            'then kill -TERM "${{d#/proc/}}" 2>/dev/null && echo "chaosml: stopped ${{d#/proc/}}"; fi; done; true')


def k8s_start(p: ResourcePressureParams, token: str, lifetime_s: float) -> list[str]:
    """The exec command that starts the hog in a pod."""
    argv = " ".join(shlex.quote(a) for a in hog_argv(p, lifetime_s, "stress-ng"))
    return ["sh", "-c", K8S_START.format(env=FAULT_TOKEN_ENV, token=shlex.quote(token), argv=argv)]


def k8s_stop(token: str) -> list[str]:
    """The exec command that stops the hog of ``token`` in a pod (idempotent)."""
    return ["sh", "-c", K8S_STOP.format(env=FAULT_TOKEN_ENV, token=shlex.quote(token))]


def _gone(e: Exception) -> bool:
    """An API error saying the pod is not there any more (404)."""
    return getattr(e, "status", None) == 404


class KubernetesPressure(PodExec, LedgerScope, Protocol):
    """What resource-pressure needs of the kubernetes target."""


class KubernetesResourcePressure:
    """stress-ng started by exec in each victim pod's container (inside its cgroup: the container's own limits
    bound the pressure); recover and the offline undo stop it by exec (SIGTERM to the token's processes)."""

    def __init__(self, spec: FaultSpec, target: KubernetesPressure, context: FaultContext) -> None:
        self.spec = spec
        self.params: ResourcePressureParams = spec.params
        self.target = target
        self._rng = random.Random(f"{context.seed}:{spec.name}")
        self._records: dict[int, dict[str, Any]] = {}

    def undo_record(self, injection: int) -> dict[str, Any]:
        p = self.params
        members = self.target.members(p.service)
        running = sorted(m.name for m in members if m.running)
        victims = choose(self._rng, running, p.victim_count(len(members)))
        record = {**self.target.ledger_scope(), "service": p.service, "kind": p.kind, "victims": victims,
                  "replicas": len(members), "container": p.container, "token": f"rp-{injection}-{uuid.uuid4().hex[:12]}"}
        self._records[injection] = record
        return record

    def apply(self, injection: int) -> FaultEvent:
        record = self._records.get(injection) or self.undo_record(injection)
        p = self.params
        t = time.time()
        argv = k8s_start(p, record["token"], self.spec.duration + HOG_GRACE_S)
        started: dict[str, str] = {}
        missing: list[str] = []
        for pod in record["victims"]:
            out = self.target.exec_in_pod(pod, argv, p.container)
            if "chaosml: started" in out:
                started[pod] = out.rsplit(" ", 1)[-1].strip()
            elif "chaosml: no stress-ng" in out:
                missing.append(pod)
        no_effect = None
        if not record["victims"]:
            no_effect = f"pressured nothing: no running pod of service {p.service!r}"
        elif not started:
            no_effect = (f"pressured nothing: stress-ng is not in the container image of {', '.join(missing)}"
                         if missing else "pressured nothing: the hog did not start in any pod")
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="apply", ok=len(started) == len(record["victims"]) > 0,
            targets=tuple(started), detail={"service": p.service, "kind": p.kind, "hog": "stress-ng", "hog_pids": started,
                                            "no_stress_ng": missing, "argv": argv, "placement": "in the pod's container (its cgroup)"},
            no_effect=no_effect,
        )

    def recover(self, injection: int) -> FaultEvent:
        record = self._records.get(injection)
        t = time.time()
        if record is None:
            return FaultEvent(t, self.spec.name, injection, "recover", True, (), {"note": "nothing was applied"})
        stopped = _stop_in_pods(record, lambda pod, argv: self.target.exec_in_pod(pod, argv, record.get("container")))
        members = self.target.members(self.params.service)
        return FaultEvent(
            t=t, fault=self.spec.name, injection=injection, action="recover", ok=True, targets=tuple(record["victims"]),
            detail={"stopped": stopped, "restarts": {m.name: m.restarts for m in members if m.name in record["victims"]},
                    "ready": sum(1 for m in members if m.ready), "desired": len(members)},
        )


def _stop_in_pods(record: dict[str, Any], run: Callable[[str, list[str]], str]) -> dict[str, str]:
    """Stop the token's hog in every victim pod with ``run(pod, argv)``; pod -> what happened."""
    out: dict[str, str] = {}
    for pod in record["victims"]:
        try:
            text = run(pod, k8s_stop(record["token"]))
        except Exception as e:
            if not _gone(e):
                raise
            out[pod] = "pod gone, and its hog with it"
            continue
        n = text.count("chaosml: stopped")
        out[pod] = f"stopped {n} hog process(es)" if n else "no hog left"
    return out


def undo_kubernetes(record: dict[str, Any]) -> str:
    """Offline: stop the token's hog in every victim pod through the API's exec (refused on another cluster)."""
    from chaosml.targets.kubernetes import pod_exec_from_record

    with pod_exec_from_record(record) as run:
        done = _stop_in_pods(record, run)
    return f"resource-pressure {record['token']}: " + (", ".join(f"{p} {what}" for p, what in done.items()) or "no victim")


def undo(record: dict[str, Any]) -> str:
    """Offline: kill the processes carrying the injection's token (the hogs, nothing else); restore the affinity."""
    token = str(record.get("token") or "")
    if not token:
        return "resource-pressure: no token recorded; nothing to stop"
    killed = kill_hogs(token)
    left = hog_processes(token)
    if left:
        raise RuntimeError(f"resource-pressure hog processes still alive after SIGKILL: {left}")
    restored = _restore(list(record.get("victims") or []))
    done = ", ".join(f"{n} {what}" for n, what in restored.items()) or "no victim"
    return f"resource-pressure {token}: stopped {len(killed)} hog process(es); {done}"


def blast_radius(fault: FaultSpec, target: TargetSpec, dataset: str | None) -> BlastRadius:
    p: ResourcePressureParams = fault.params
    n = service_replicas(target, p.service)
    victims = p.victim_count(n)
    if target.platform == "kubernetes":  # the hog runs in the pod's container, in its cgroup
        cpu_where = mem_where = "in each victim's container"
        how = "stress-ng by exec, within the container's limits"
    else:
        cpu_where, mem_where, how = "on each victim's core", "beside each victim", "stress-ng, pinned to the replica's core"
    what = (f"{p.cpu_workers} CPU worker(s) at {p.cpu_load_pct}% {cpu_where}" if p.kind == "cpu"
            else f"a {p.memory_mb} MiB memory balloon {mem_where}")
    text = (f"{victims} of {plural(n, 'replica')} of {p.service!r} ({round(100 * victims / n) if n else 0}%): {what} "
            f"({how}), {plural(fault.repeat.count, 'injection')}")
    return BlastRadius(fault.name, fault.type, victims, n, text)


def summary(p: ResourcePressureParams) -> str:
    """The plan's one line: the selection and the params of the chosen kind only."""
    value = "" if p.value is None else f" value={p.value:g}"
    what = f"cpu_workers={p.cpu_workers} cpu_load_pct={p.cpu_load_pct}" if p.kind == "cpu" else f"memory_mb={p.memory_mb}"
    return f"service={p.service} mode={p.mode}{value} kind={p.kind} {what}"


def check(params: ResourcePressureParams, facts: StackFacts) -> list[tuple[str, str]]:
    """``service`` must be one of the stack's services; mode fixed must not ask for more replicas than it has."""
    return service_errors(params.service, None, params.mode, params.value, facts, verb="pressures")


FAULT_TYPE = FaultType(
    name=NAME,
    params=ResourcePressureParams,
    injectors={"local": LocalResourcePressure, "kubernetes": KubernetesResourcePressure},
    undoers={"local": undo, "kubernetes": undo_kubernetes},
    capabilities={"local": (ReplicaGroups,), "kubernetes": (PodExec, LedgerScope)},
    severity="medium",
    blast_radius=blast_radius,
    summary=summary,
    check=check,
)
