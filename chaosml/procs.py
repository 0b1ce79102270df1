"""Finding and stopping a run's processes (psutil); used by the ledger, the runner and the targets' offline undo.

A run's processes are found two ways, and both are needed:

- by the run token (``CHAOSML_RUN_TOKEN=...``) in their environment, which every process the run
  starts inherits;
- by their working directory inside the run directory: redis-server rewrites its process title
  over its environment block, so its environment no longer shows the token. Every process a local
  run starts works inside its run directory, and a directory is not reused by another run.

This process itself is never a match (it may carry the token too); a bystander (another token,
another directory) never is either. A pid is tied to its process start time, so a reused pid is
not mistaken for the process that was recorded.
"""

from __future__ import annotations

import os
import signal
import time

import psutil

#: every process of a run carries the run's token in this environment variable
RUN_TOKEN_ENV = "CHAOSML_RUN_TOKEN"


def start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch, stable for its life), or None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``started`` (None: any process)."""
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def zombie_or_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def processes_with_token(token: str) -> list[int]:
    """Pids of processes whose environment holds ``CHAOSML_RUN_TOKEN=token`` (not this process)."""
    me = os.getpid()
    found = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            env = p.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
        if env.get(RUN_TOKEN_ENV) == token:
            found.append(p.pid)
    return sorted(found)


def processes_in_dir(run_dir: str) -> list[int]:
    """Pids of processes whose working directory is ``run_dir`` or below it (not this process)."""
    root = os.path.realpath(run_dir)
    me = os.getpid()
    found = []
    for p in psutil.process_iter():
        if p.pid == me:
            continue
        try:
            cwd = p.cwd().removesuffix(" (deleted)")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(p.pid)
    return sorted(found)


def processes_of_run(token: str | None, run_dir: str | None) -> list[int]:
    """Every live process of a run: carrying its token, or working inside its (absolute) run dir."""
    pids = set(processes_with_token(token)) if token else set()
    if run_dir and os.path.isabs(run_dir):
        pids |= set(processes_in_dir(run_dir))
    return sorted(p for p in pids if not zombie_or_gone(p))


def kill_run_processes(token: str | None, run_dir: str | None, timeout_s: float = 5.0) -> list[int]:
    """SIGKILL every process of a run (and its process group); wait (bounded) until they are gone."""
    pids = processes_of_run(token, run_dir)
    for pid in pids:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(not zombie_or_gone(p) for p in pids):
        time.sleep(0.05)
    return pids
