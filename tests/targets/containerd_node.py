"""A real containerd for tests: its own socket, root, state and cgroup parent under a tmp dir (no CRI plugin), and
containers in namespace k8s.io labelled like the kubelet's, running a static pause binary; everything removed after."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PAUSE_CACHE = Path.home() / ".cache" / "chaosml" / "node" / "pause" / "root" / "pause"
PAUSE_C = """#include <signal.h>
#include <unistd.h>
static void done(int sig) { (void)sig; _exit(0); }
int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }
"""
#: created by the runc shim of containerd 1.6 for its sockets whatever the config says; removed after when empty
SHIM_DIRS = (Path("/run/containerd/s"), Path("/run/containerd"))
START_TIMEOUT_S = 20.0
CTR_TIMEOUT_S = 20.0


@dataclass
class Containerd:
    """One running containerd: ``prefix`` is the exec prefix that makes ``ctr`` talk to it."""

    dir: Path
    sock: Path
    cgroup_parent: str
    rootfs: Path
    proc: subprocess.Popen[bytes]
    containers: list[str] = field(default_factory=list)

    @property
    def prefix(self) -> list[str]:
        return ["env", f"CONTAINERD_ADDRESS={self.sock}"]

    def ctr(self, *args: str, check: bool = True) -> str:
        done = subprocess.run([*self.prefix, "ctr", "-n", "k8s.io", *args], capture_output=True, text=True,
                              timeout=CTR_TIMEOUT_S, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def run(self, cid: str, pod: str, namespace: str) -> str:
        """Start a container labelled as ``namespace/pod``'s (the CRI labels); its ID."""
        self.containers.append(cid)
        self.ctr("run", "-d", "--null-io", "--runc-root", str(self.dir / "runc"), "--cgroup", f"/{self.cgroup_parent}/{cid}",
                 "--label", f"io.kubernetes.pod.name={pod}", "--label", f"io.kubernetes.pod.namespace={namespace}",
                 "--label", "io.kubernetes.container.name=main", "--rootfs", str(self.rootfs), cid, "/pause")
        return cid

    def status(self, cid: str) -> str:
        """The task's STATUS column (RUNNING, PAUSED, STOPPED), or "" without a task."""
        for line in self.ctr("task", "ls").splitlines()[1:]:
            cols = line.split()
            if cols and cols[0] == cid:
                return cols[2]
        return ""

    def wait_status(self, cid: str, want: str, timeout_s: float = 10.0) -> str:
        deadline = time.monotonic() + timeout_s
        while (status := self.status(cid)) != want and time.monotonic() < deadline:
            time.sleep(0.05)
        return status


def _pause_binary(work: Path) -> Path:
    """The static pause binary of the real-node cache, or one built here with gcc; a skip when neither can be had."""
    if PAUSE_CACHE.is_file():
        return PAUSE_CACHE
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip(f"no static pause binary: {PAUSE_CACHE} is missing (bash tests/k8s/build-node.sh) and gcc is absent")
    (work / "pause.c").write_text(PAUSE_C)
    out = work / "pause"
    done = subprocess.run([cc, "-static", "-O2", "-o", str(out), str(work / "pause.c")], capture_output=True, text=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot build a static pause binary: {done.stderr.strip()[-300:]}")
    return out


def _config(work: Path) -> str:
    """``containerd config default`` with every path under ``work``, its own socket and no CRI plugin."""
    text = subprocess.run(["containerd", "config", "default"], capture_output=True, text=True, timeout=30, check=True).stdout
    changes = {
        'root = "/var/lib/containerd"': f'root = "{work}/root"',
        'state = "/run/containerd"': f'state = "{work}/state"',
        'address = "/run/containerd/containerd.sock"': f'address = "{work}/c.sock"',
        'disabled_plugins = []': 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        'path = "/opt/containerd"': f'path = "{work}/opt"',
    }
    for old, new in changes.items():
        assert old in text, f"containerd config default has no {old!r}"
        text = text.replace(old, new)
    return text


def _stop(c: Containerd) -> None:
    """Delete every task and container (their shims exit), stop containerd, remove the cgroups and dirs."""
    for cid in c.containers:
        if c.proc.poll() is None:
            c.ctr("task", "rm", "-f", cid, check=False)
            c.ctr("containers", "rm", cid, check=False)
    if c.proc.poll() is None:
        c.proc.send_signal(signal.SIGTERM)
        try:
            c.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait(timeout=10)
    for ctrl in Path("/sys/fs/cgroup").iterdir():
        parent = ctrl / c.cgroup_parent
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    child.rmdir()
            parent.rmdir()
    shutil.rmtree(c.dir, ignore_errors=True)


@pytest.fixture
def containerd() -> Iterator[Containerd]:
    """A private containerd (root only; skipped with the reason otherwise), stopped and removed after."""
    if os.geteuid() != 0:
        pytest.skip("a private containerd needs root (runc, cgroups)")
    missing = [b for b in ("containerd", "ctr", "runc") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian: apt-get install containerd)")
    work = Path(tempfile.mkdtemp(prefix="chaosml-ctrd-", dir="/tmp"))  # short: a unix socket path has 108 bytes
    shim_dirs_before = {d: d.exists() for d in SHIM_DIRS}
    rootfs = work / "rootfs"
    rootfs.mkdir()
    shutil.copy2(_pause_binary(work), rootfs / "pause")
    (work / "config.toml").write_text(_config(work))
    log = (work / "containerd.log").open("wb")
    proc = subprocess.Popen(["containerd", "--config", str(work / "config.toml")], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    c = Containerd(dir=work, sock=work / "c.sock", cgroup_parent=f"chaosml-ctrd-{uuid.uuid4().hex[:12]}", rootfs=rootfs,
                   proc=proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run([*c.prefix, "ctr", "version"], capture_output=True, timeout=CTR_TIMEOUT_S).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = (work / "containerd.log").read_text(errors="replace")[-1500:]
                pytest.skip(f"containerd did not start: {why}")
            time.sleep(0.1)
        yield c
    finally:
        _stop(c)
        for d, existed in shim_dirs_before.items():
            if not existed and d.is_dir() and not any(d.iterdir()):
                d.rmdir()
