"""tests/k8s/start-docker.sh (issue 18 item 11) with stand-in docker/dockerd/pgrep on PATH: no real engine is touched.

Another dockerd (pgrep finds one; the default socket does not answer) is no reason to give up: the
script starts the project's own dockerd on its own socket, data root and log, says DOCKER_HOST, is
idempotent, and points at a log that exists when its dockerd does not answer.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "start-docker.sh"

FAKE_DOCKER = """#!/usr/bin/env bash
# docker -H unix://PATH info: answers when PATH exists
[ "$1" = -H ] || exit 1
[ -e "${2#unix://}" ]
"""
FAKE_DOCKERD = """#!/usr/bin/env bash
echo "fake dockerd $*"
for a in "$@"; do
  case "$a" in --host=unix://*) sock="${a#--host=unix://}";; --pidfile=*) pidfile="${a#--pidfile=}";; esac
done
echo $$ > "$pidfile"
[ "${FAKE_DOCKERD_MUTE:-0}" = 1 ] || { sleep 0.5; : > "$sock"; }
exec sleep 60
"""


@pytest.fixture
def env(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("the script starts dockerd only as root")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", FAKE_DOCKERD), ("pgrep", "#!/bin/sh\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    state = tmp_path / "state"
    e = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CHAOSML_DOCKER_STATE": str(state),
         "CHAOSML_DOCKER_ROOT": str(tmp_path / "data"), "DOCKER_HOST": f"unix://{tmp_path}/someone-elses.sock",
         "CHAOSML_DOCKER_INSTALL": "0", "CHAOSML_DOCKERD_WAIT_S": "5"}
    yield e, state
    pid = (state / "docker.pid").read_text().strip() if (state / "docker.pid").exists() else ""
    if pid:
        try:
            os.kill(int(pid), signal.SIGKILL)  # the stand-in dockerd this test started
        except ProcessLookupError:
            pass


def run(e: dict) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], env=e, capture_output=True, text=True, timeout=60)


def test_starts_its_own_dockerd_and_is_idempotent(env) -> None:
    e, state = env
    first = run(e)
    assert first.returncode == 0, first.stderr
    sock = state / "docker.sock"
    assert first.stdout.splitlines() == [f"DOCKER_HOST=unix://{sock}"]
    log = (state / "dockerd.log").read_text()
    assert f"--host=unix://{sock}" in log and f"--data-root={e['CHAOSML_DOCKER_ROOT']}" in log
    assert f"--exec-root={state}/exec" in log and f"--pidfile={state}/docker.pid" in log
    pid = (state / "docker.pid").read_text()
    again = run(e)
    assert again.returncode == 0 and again.stdout.splitlines() == [f"DOCKER_HOST=unix://{sock}"]
    assert (state / "docker.pid").read_text() == pid  # not started twice
    assert (state / "dockerd.log").read_text().count("fake dockerd") == 1


def test_a_dockerd_that_does_not_answer_names_a_log_that_exists(env) -> None:
    e, state = env
    proc = run({**e, "FAKE_DOCKERD_MUTE": "1"})
    assert proc.returncode == 1 and proc.stdout == ""
    log = state / "dockerd.log"
    assert f"docker: dockerd did not start; last lines of {log}:" in proc.stderr
    assert log.is_file() and "fake dockerd" in log.read_text()
