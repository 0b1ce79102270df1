"""Machine state that a real node changes, saved before and restored after (used by realnode.py).

A kubelet and kube-proxy change machine-wide settings: sysctls (``vm.overcommit_memory``,
``kernel.panic``, ``kernel.panic_on_oops``, ``net.ipv4.conf.all.route_localnet``), iptables chains
(``KUBE-*`` in nat/filter/mangle, IPv4 and IPv6), cgroups (under the nodes' cgroup roots), mounts
(volumes, overlay2 layers) and ``/var/log/pods``. kube-proxy's chains are global, so only one real
cluster runs on a machine at a time: :class:`HostLease` holds a machine-wide lock for that.

Before anything changes, :meth:`HostLease.acquire` writes a state file (the original sysctls, the
``/var/log/pods`` entries that existed, the run directories and cgroup roots it will use); every
process started is recorded in it. :func:`restore` puts the machine back from that file alone, so
the next set-up (or ``python tests/k8s/realnode.py down``) also cleans up after a killed run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RUN_ROOT = Path(os.environ.get("CHAOSML_REALNODE_RUN", "/run/chaosml-realnode"))
LOCK_PATH = RUN_ROOT.with_name(RUN_ROOT.name + ".lock")
STATE_PATH = RUN_ROOT / "state.json"
SYSCTLS = (
    "vm.overcommit_memory",
    "kernel.panic",
    "kernel.panic_on_oops",
    "net.ipv4.conf.all.route_localnet",
)
POD_LOGS = Path("/var/log/pods")
CONTAINER_LOGS = Path("/var/log/containers")
CGROUP_FS = Path("/sys/fs/cgroup")
RULE_COMMENT = "chaosml-realnode"
IPTABLES = ("iptables", "ip6tables")
TABLES = ("nat", "filter", "mangle")


class HostStateError(RuntimeError):
    """The machine cannot be prepared for (or restored after) a real node."""


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    return {n: _sysctl_path(n).read_text().strip() for n in SYSCTLS}


def write_sysctls(values: dict[str, str]) -> None:
    for name, value in values.items():
        _sysctl_path(name).write_text(value + "\n")


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in ticks): a pid + start time names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass
class HostState:
    """What the state file holds."""

    sysctls: dict[str, str]
    pod_logs_before: list[str]
    dirs: list[str] = field(default_factory=list)  # removed on restore
    keep_dirs: list[str] = field(default_factory=list)  # unmounted but kept (the engines' image stores)
    cgroup_roots: list[str] = field(default_factory=list)  # e.g. "chaosml-n1": /sys/fs/cgroup/*/chaosml-n1
    processes: list[dict[str, Any]] = field(default_factory=list)  # {"name", "pid", "start"}

    def save(self) -> None:
        RUN_ROOT.mkdir(parents=True, exist_ok=True)
        tmp = STATE_PATH.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        tmp.replace(STATE_PATH)

    @classmethod
    def load(cls) -> HostState | None:
        try:
            return cls(**json.loads(STATE_PATH.read_text()))
        except FileNotFoundError:
            return None


class HostLease:
    """The machine-wide lock plus the state file of the run holding it."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self.state: HostState | None = None
        self.restored: list[str] = []  # what acquire() undid of a killed run

    def acquire(
        self, dirs: list[Path], keep_dirs: list[Path], cgroup_roots: list[str], timeout_s: float = 600.0
    ) -> HostState:
        """Wait (bounded) for the lock, restore what a killed run left, save the state, return it."""
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise HostStateError(f"another real cluster holds {LOCK_PATH} for more than {timeout_s:.0f} s") from None
                time.sleep(1.0)
        self._fd = fd
        self.restored = restore()
        self.state = HostState(
            sysctls=read_sysctls(),
            pod_logs_before=sorted(p.name for p in POD_LOGS.iterdir()) if POD_LOGS.is_dir() else [],
            dirs=[str(d) for d in dirs],
            keep_dirs=[str(d) for d in keep_dirs],
            cgroup_roots=list(cgroup_roots),
        )
        self.state.save()
        return self.state

    def extend(self, dirs: list[Path], keep_dirs: list[Path], cgroup_roots: list[str]) -> None:
        """Record more run directories, image stores and cgroup roots (a node added later)."""
        assert self.state is not None
        self.state.dirs += [str(d) for d in dirs]
        self.state.keep_dirs += [str(d) for d in keep_dirs]
        self.state.cgroup_roots += cgroup_roots
        self.state.save()

    def record_process(self, name: str, pid: int) -> None:
        assert self.state is not None
        self.state.processes.append({"name": name, "pid": pid, "start": _proc_start_time(pid)})
        self.state.save()

    def release(self) -> None:
        """Restore the machine, then drop the lock. Idempotent."""
        if self._fd is None:
            return
        try:
            restore()
        finally:
            os.close(self._fd)
            self._fd = None
            self.state = None


def restore() -> list[str]:
    """Undo everything the state file records (the caller holds the lock); returns what was done."""
    state = HostState.load()
    done: list[str] = []
    if state is None:
        return done
    for p in reversed(state.processes):
        if _kill_recorded(p):
            done.append(f"killed {p['name']} (pid {p['pid']})")
    for root in state.cgroup_roots:
        n = _kill_cgroup_tree(root)
        if n:
            done.append(f"killed {n} processes in cgroup {root}")
    for d in state.dirs + state.keep_dirs:
        n = _kill_processes_mentioning(d)
        if n:
            done.append(f"killed {n} processes under {d}")
    for d in state.dirs + state.keep_dirs:
        n = unmount_under(Path(d))
        if n:
            done.append(f"unmounted {n} mounts under {d}")
    for root in state.cgroup_roots:
        if remove_cgroup_tree(root):
            done.append(f"removed cgroup {root}")
    n = flush_kube_chains()
    if n:
        done.append(f"removed {n} iptables chains/rules")
    now = read_sysctls()
    changed = {k: v for k, v in state.sysctls.items() if now.get(k) != v}
    if changed:
        write_sysctls(changed)
        done.append("restored sysctls " + ", ".join(f"{k}={v}" for k, v in changed.items()))
    _remove_new_pod_logs(set(state.pod_logs_before))
    for d in state.dirs:
        shutil.rmtree(d, ignore_errors=True)
    STATE_PATH.unlink(missing_ok=True)
    return done


def _kill_recorded(p: dict[str, Any]) -> bool:
    pid = int(p["pid"])
    if p.get("start") is None or _proc_start_time(pid) != p["start"]:
        return False  # gone, or the pid now names another process
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while _proc_start_time(pid) == p["start"] and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if _proc_start_time(pid) != p["start"]:
            return True
    return True


def _cgroup_dirs(root: str) -> list[Path]:
    """Every directory of cgroup ``root`` in every mounted v1 hierarchy, deepest first."""
    out: list[Path] = []
    if not CGROUP_FS.is_dir():
        return out
    for hier in CGROUP_FS.iterdir():
        top = hier / root
        if top.is_dir() and not top.is_symlink():
            out.extend(Path(dp) for dp, _dn, _fn in os.walk(top))
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _kill_cgroup_tree(root: str) -> int:
    killed = 0
    for _ in range(3):
        pids = set()
        for d in _cgroup_dirs(root):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in (d / "cgroup.procs").read_text().split())
        pids.discard(os.getpid())
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed += len(pids)
        time.sleep(0.5)
    return killed


def _kill_processes_mentioning(path: str) -> int:
    """SIGKILL processes whose command line names ``path`` (containerd shims of a dead dockerd)."""
    killed = 0
    needle = path.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
    if killed:
        time.sleep(0.5)
    return killed


def mounts_under(path: Path) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].encode().decode("unicode_escape")
        if mp == str(path) or mp.startswith(prefix):
            out.append(mp)
    return out


def unmount_under(path: Path) -> int:
    n = 0
    for _ in range(3):
        mps = sorted(set(mounts_under(path)), key=len, reverse=True)
        if not mps:
            break
        for mp in mps:
            if subprocess.run(["umount", "-l", mp], capture_output=True, check=False).returncode == 0:
                n += 1
    return n


def remove_cgroup_tree(root: str) -> bool:
    dirs = _cgroup_dirs(root)
    for _ in range(20):
        left = [d for d in dirs if d.exists()]
        if not left:
            break
        for d in left:
            with contextlib.suppress(OSError):
                d.rmdir()
        time.sleep(0.1)
    return bool(dirs)


def cgroups_left(roots: list[str]) -> list[str]:
    return [str(d) for r in roots for d in _cgroup_dirs(r)]


def kube_chains() -> dict[str, list[str]]:
    """``"iptables/nat"`` -> the KUBE-* chains there, plus ``"…/rules"`` for jumps/our rules."""
    out: dict[str, list[str]] = {}
    for cmd in IPTABLES:
        if shutil.which(cmd + "-save") is None:
            continue
        for table in TABLES:
            res = subprocess.run([cmd + "-save", "-t", table], capture_output=True, check=False, text=True)
            if res.returncode != 0:
                continue
            chains = [ln[1:].split()[0] for ln in res.stdout.splitlines() if ln.startswith(":KUBE-")]
            rules = [
                ln for ln in res.stdout.splitlines()
                if ln.startswith("-A ") and not ln.split()[1].startswith("KUBE-")
                and (" -j KUBE-" in ln or RULE_COMMENT in ln)
            ]
            if chains:
                out[f"{cmd}/{table}"] = chains
            if rules:
                out[f"{cmd}/{table}/rules"] = rules
    return out


def flush_kube_chains() -> int:
    """Delete the jumps into KUBE-* chains (and our own rules), then flush and delete the chains."""
    n = 0
    for key, items in kube_chains().items():
        cmd, table = key.split("/")[:2]
        if key.endswith("/rules"):
            for rule in items:
                args = shlex.split(rule)[1:]  # drop "-A"
                if subprocess.run([cmd, "-w", "-t", table, "-D", *args], capture_output=True, check=False).returncode == 0:
                    n += 1
    for key, chains in kube_chains().items():
        if key.endswith("/rules"):
            continue
        cmd, table = key.split("/")
        for c in chains:
            subprocess.run([cmd, "-w", "-t", table, "-F", c], capture_output=True, check=False)
        for c in chains:
            if subprocess.run([cmd, "-w", "-t", table, "-X", c], capture_output=True, check=False).returncode == 0:
                n += 1
    return n


def _remove_new_pod_logs(before: set[str]) -> None:
    if POD_LOGS.is_dir():
        for p in POD_LOGS.iterdir():
            if p.name not in before:
                shutil.rmtree(p, ignore_errors=True)
        with contextlib.suppress(OSError):
            POD_LOGS.rmdir()  # only when empty (it did not exist before, or was empty)
    if CONTAINER_LOGS.is_dir():
        for p in CONTAINER_LOGS.iterdir():
            if p.is_symlink() and not p.exists():
                p.unlink()
        with contextlib.suppress(OSError):
            CONTAINER_LOGS.rmdir()


def leftovers(sysctls_before: dict[str, str], paths: list[Path], cgroup_prefix: str = "chaosml-n") -> list[str]:
    """Everything a real cluster could leave on the machine that is still there: processes naming
    ``paths`` (run dirs, image stores, the kubelet/kube-proxy binaries), mounts under them, cgroups
    named ``<cgroup_prefix>*``, KUBE-* iptables chains and rules, sysctls that differ from
    ``sysctls_before``, the state file. Empty when the machine is clean."""
    found: list[str] = []
    needles = [str(p).encode() for p in paths]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            args = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"process {entry.name}: {args[:200]}")
    for p in paths:
        found += [f"mount {m}" for m in mounts_under(p)]
    if CGROUP_FS.is_dir():
        for hier in CGROUP_FS.iterdir():
            with contextlib.suppress(OSError):
                found += [f"cgroup {d}" for d in hier.iterdir() if d.is_dir() and d.name.startswith(cgroup_prefix)]
    found += [f"iptables {k}: {v}" for k, v in kube_chains().items()]
    now = read_sysctls()
    found += [f"sysctl {k}={now[k]} (was {v})" for k, v in sysctls_before.items() if now.get(k) != v]
    if STATE_PATH.exists():
        found.append(f"state file {STATE_PATH}")
    return found
