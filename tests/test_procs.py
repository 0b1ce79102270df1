"""Process discovery (chaosml.procs): a run's processes by token and by recorded spawn, never a bystander; and the import layering around it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaosml.procs import (
    RUN_TOKEN_ENV,
    Spawned,
    alive,
    kill_run_processes,
    processes_of_run,
    spawned_now,
    start_time,
    zombie_or_gone,
)

CHAOSML = Path(__file__).resolve().parents[1] / "chaosml"


@contextmanager
def sleeper(cwd: Path, token: str | None) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV}
    if token:
        env[RUN_TOKEN_ENV] = token
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=cwd, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _wait_for(pid: int, token: str | None, spawned: list[Spawned]) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = processes_of_run(token, spawned)
        if pid in found:
            return found
        time.sleep(0.05)
    return processes_of_run(token, spawned)


def test_a_run_is_found_by_token_and_by_its_recorded_spawns_and_a_bystander_in_its_directory_never(tmp_path: Path) -> None:
    """Changed by issue 14 (item 5): working inside the run directory no longer makes a process the run's."""
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (run_dir / "replica").mkdir(parents=True)
    elsewhere.mkdir()
    token = f"procs-{os.getpid()}-{time.time_ns()}"
    with (
        sleeper(elsewhere, token) as by_token,
        sleeper(elsewhere, None) as by_spawn,
        sleeper(run_dir / "replica", None) as in_dir,
        sleeper(elsewhere, token + "-other") as bystander,
    ):
        spawned = [s for s in [spawned_now(by_spawn.pid, "svc")] if s is not None]
        assert spawned and spawned[0].sid == by_spawn.pid  # it leads its own session
        found = _wait_for(by_token.pid, token, spawned)
        assert by_token.pid in found and by_spawn.pid in found
        assert in_dir.pid not in found and bystander.pid not in found and os.getpid() not in found
        assert processes_of_run(None, []) == []
        assert sorted(kill_run_processes(token, spawned)) == sorted([by_token.pid, by_spawn.pid])
        assert zombie_or_gone(by_token.pid) and zombie_or_gone(by_spawn.pid)
        assert not zombie_or_gone(bystander.pid) and not zombie_or_gone(in_dir.pid)


def test_a_pid_is_tied_to_its_start_time() -> None:
    me = os.getpid()
    started = start_time(me)
    assert started is not None and alive(me, started) and alive(me, None)
    assert not alive(me, started + 1.0)  # the same pid, another process: a reused pid
    assert not alive(None, None)


def test_the_ledger_imports_no_target_and_only_the_kubernetes_package_imports_kubernetes() -> None:
    code = "import sys, chaosml.ledger; print(sorted(m for m in sys.modules if m.startswith('chaosml.targets')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(CHAOSML.parent)})
    assert out.stdout.strip() == "[]"
    importers = []
    for path in CHAOSML.rglob("*.py"):
        if (CHAOSML / "targets" / "kubernetes") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                importers.append(str(path.relative_to(CHAOSML)))
    assert importers == []


def test_a_killed_harness_not_yet_reaped_is_not_alive() -> None:
    """A SIGKILLed harness whose parent has not reaped it (a zombie) must not keep its ledger entries 'live' (issue 14)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = start_time(proc.pid)
    assert alive(proc.pid, started)
    proc.kill()
    deadline = time.monotonic() + 5
    while not zombie_or_gone(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert start_time(proc.pid) == started  # still in the process table, as a zombie
        assert not alive(proc.pid, started)
    finally:
        proc.wait()
