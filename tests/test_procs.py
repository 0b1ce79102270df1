"""Process discovery (chaosml.procs): a run's processes by token and by directory, never a bystander; and the import layering around it."""

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
    alive,
    kill_run_processes,
    processes_of_run,
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


def _wait_for(pid: int, token: str | None, run_dir: str | None) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = processes_of_run(token, run_dir)
        if pid in found:
            return found
        time.sleep(0.05)
    return processes_of_run(token, run_dir)


def test_a_run_is_found_by_token_and_by_directory_and_a_bystander_never(tmp_path: Path) -> None:
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    (run_dir / "replica").mkdir(parents=True)
    elsewhere.mkdir()
    token = f"procs-{os.getpid()}-{time.time_ns()}"
    with (
        sleeper(elsewhere, token) as by_token,
        sleeper(run_dir / "replica", None) as by_dir,
        sleeper(elsewhere, token + "-other") as bystander,
    ):
        found = _wait_for(by_dir.pid, token, str(run_dir))
        assert by_token.pid in found and by_dir.pid in found
        assert bystander.pid not in found and os.getpid() not in found
        assert processes_of_run(None, "relative/dir") == []  # only an absolute run dir is searched
        assert sorted(kill_run_processes(token, str(run_dir))) == sorted([by_token.pid, by_dir.pid])
        assert zombie_or_gone(by_token.pid) and zombie_or_gone(by_dir.pid)
        assert not zombie_or_gone(bystander.pid)


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
