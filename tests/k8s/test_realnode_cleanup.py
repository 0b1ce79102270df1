"""Nothing is left on the machine after a real cluster: no process, container, mount, cgroup,
iptables chain or changed sysctl, after a normal teardown and after a SIGKILLed pytest run (then the
next set-up or ``python tests/k8s/realnode.py down`` restores). Runs the cluster in pytest
subprocesses (realnode_victim.py), so it needs the machine-wide lock free: run it before (or
without) the tests that use the session's ``real_cluster``."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from controlplane import find_bin_dir
from hoststate import LOCK_PATH, RUN_ROOT, kube_chains, leftovers, read_sysctls
from realnode import NODE_CACHE, REPO, missing_reason

pytestmark = [pytest.mark.k8s, pytest.mark.realnode]
HERE = Path(__file__).resolve().parent


def _lock_free() -> bool:
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _down() -> str:
    res = subprocess.run([sys.executable, str(HERE / "realnode.py"), "down"], capture_output=True, check=False, text=True,
                         timeout=180, cwd=REPO)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _victim(tmp_path: Path, hold: bool) -> tuple[subprocess.Popen[bytes], Path]:
    marker = tmp_path / f"up-{int(hold)}"
    env = {**os.environ, "CHAOSML_VICTIM_MARKER": str(marker), "CHAOSML_VICTIM_HOLD": "1" if hold else "0",
           "CHAOSML_REALNODE_REQUIRE": "1", "CHAOSML_REALNODE_NODES": "1"}
    log = open(tmp_path / f"victim-{int(hold)}.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                             str(HERE / "realnode_victim.py")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, marker


def test_nothing_is_left_after_a_normal_and_a_killed_run(tmp_path: Path) -> None:
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CHAOSML_REALNODE_REQUIRE", "") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)
    if not _lock_free():
        pytest.skip(f"a real cluster holds {LOCK_PATH} (this session's real_cluster?): run this test on its own")
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    paths = [RUN_ROOT, NODE_CACHE / "docker", bin_dir / "kubelet", bin_dir / "kube-proxy"]
    _down()  # whatever an earlier killed run left
    before = read_sysctls()
    assert leftovers(before, paths) == []

    proc, _ = _victim(tmp_path, hold=False)
    assert proc.wait(timeout=600) == 0, (tmp_path / "victim-0.log").read_text()[-3000:]
    assert leftovers(before, paths) == []

    proc, marker = _victim(tmp_path, hold=True)
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert proc.poll() is None, (tmp_path / "victim-1.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the victim run did not come up"
        time.sleep(0.5)
    assert kube_chains() and leftovers(before, paths)  # the check sees a live cluster
    proc.kill()
    proc.wait(timeout=30)
    restored = _down()
    assert "restored sysctls" in restored and "iptables" in restored, restored
    assert leftovers(before, paths) == []
