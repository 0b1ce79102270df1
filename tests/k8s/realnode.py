"""A real Kubernetes cluster on 127.0.0.0/8: control plane, real kubelet nodes, kube-proxy.

Used by the ``real_cluster`` fixture (k8s_fixtures.py) and by hand::

    bash tests/k8s/build-node.sh                    # once (cached under ~/.cache/chaosml/)
    python tests/k8s/realnode.py up [--nodes 2]     # until Ctrl-C; prints KUBECONFIG
    python tests/k8s/realnode.py down               # restore the machine after a killed run

Each node is a Docker engine on its own socket and directories (runtime wrapper: runc without a
negative oom_score_adj, which this VM cannot set) plus a kubelet v1.20.2 (dockershim) named
``127.0.0.<i>`` with cgroup root ``/chaosml-n<i>``. One kube-proxy (iptables mode) serves the
NodePorts on 127.0.0.1. Images come from the local caches (build-node.sh); the project image is
built from ``manifests/Dockerfile`` with ``--network none``. What the machine-wide state needs
(sysctls, KUBE-* chains, cgroups, mounts) is saved and restored by hoststate.py.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controlplane import ControlPlane, _Proc, find_bin_dir, free_port, write_kubeconfig
from hoststate import RULE_COMMENT, RUN_ROOT, HostLease, kube_chains

REPO = Path(__file__).resolve().parents[2]
NODE_CACHE = Path(os.environ.get("CHAOSML_NODE_CACHE", str(Path.home() / ".cache" / "chaosml" / "node")))
BUILD_HINT = "bash tests/k8s/build-node.sh"
PAUSE_IMAGE = "local/pause:3.2"
ROOTFS_PACKAGES = Path(__file__).resolve().parent / "node-rootfs-packages.txt"
STACK_IMAGE = "chaosml/reference-stack:dev"
KSERVE_IMAGE = "chaosml-example/kserve-sklearn:dev"  # manifests/examples/byo-kserve/stack.yaml's image
KSERVE_EXAMPLE = REPO / "manifests" / "examples" / "byo-kserve"
SOURCE_LABEL = "io.chaosml.source-sha256"
RUNTIME = "chaosml-runc"
# runc without a negative oom_score_adj: dockershim asks -998 for sandboxes, and runc cannot set
# it without CAP_SYS_RESOURCE ("can't get final child's PID from pipe: EOF")
RUNC_WRAPPER = """#!/bin/sh
bundle=. ; create=0 ; prev=
for a in "$@"; do
  case "$a" in create|run) create=1 ;; esac
  case "$prev" in --bundle|-b) bundle="$a" ;; esac
  case "$a" in --bundle=*) bundle="${a#--bundle=}" ;; esac
  prev="$a"
done
if [ "$create" = 1 ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
"""


def rootfs_key() -> str:
    """The key of the Python base rootfs: its package list (node-rootfs-packages.txt), as build-node.sh computes it."""
    lines = (ln.strip() for ln in ROOTFS_PACKAGES.read_text().splitlines())
    include = ",".join(ln for ln in lines if ln and not ln.startswith("#"))
    return hashlib.sha256(include.encode()).hexdigest()[:12]


def rootfs_tar() -> Path:
    """The Python base rootfs tar build-node.sh made for the current package list."""
    return NODE_CACHE / "rootfs" / f"debian-python-bookworm-{rootfs_key()}.tar"


def python_image() -> str:
    """The base image imported from :func:`rootfs_tar` (tagged by its key: a new list, a new image)."""
    return f"local/debian-python:bookworm-{rootfs_key()}"


def wheels_dir() -> Path:
    """The wheel set build-node.sh made for the current pyproject.toml."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return NODE_CACHE / "wheels" / key


def kserve_wheels_dir() -> Path:
    """The wheel set `build-node.sh --kserve` downloaded for the example's requirements.txt."""
    key = hashlib.sha256((KSERVE_EXAMPLE / "requirements.txt").read_bytes()).hexdigest()[:16]
    return NODE_CACHE / "kserve-wheels" / key


def kserve_missing_reason() -> str | None:
    """Why the KServe example's image cannot be built here (None: it can)."""
    if not (kserve_wheels_dir() / ".complete").exists():
        return f"no KServe wheels in {kserve_wheels_dir()}: run `{BUILD_HINT} --kserve`"
    return None


def missing_reason() -> str | None:
    """Why no real node can start here (None: it can)."""
    if os.geteuid() != 0:
        return "a real node needs root (dockerd, kubelet, iptables, sysctls)"
    for tool in ("dockerd", "docker", "runc", "iptables", "iptables-save", "conntrack"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: run `{BUILD_HINT}` (installs docker.io, iptables, conntrack)"
    bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "kubelet").exists() or not (bin_dir / "kube-proxy").exists():
        return f"kubelet/kube-proxy not built: run `{BUILD_HINT}` (about 12-15 min cold, cached)"
    for path in (NODE_CACHE / "pause" / "pause.tar", rootfs_tar()):
        if not path.is_file():
            return f"{path} missing: run `{BUILD_HINT}`"
    if not (wheels_dir() / ".complete").exists():
        return f"no wheels for this pyproject.toml in {wheels_dir()}: run `{BUILD_HINT}`"
    return None


class Node:
    """One real node: a Docker engine and a kubelet, both on 127.0.0.<index>."""

    def __init__(self, index: int, bin_dir: Path) -> None:
        self.index = index
        self.ip = f"127.0.0.{index}"
        self.name = self.ip  # --hostname-override; the node's InternalIP
        self.cgroup_root = f"chaosml-n{index}"
        self.run_dir = RUN_ROOT / f"n{index}"
        self.data_root = NODE_CACHE / "docker" / f"n{index}"
        self.sock = self.run_dir / "docker.sock"
        self.bin_dir = bin_dir
        self.dockerd: _Proc | None = None
        self.kubelet: _Proc | None = None
        self.paused = False

    # ----------------------------------------------------------------- engine
    def docker(self, *args: str, check: bool = True, timeout: float = 600.0, **kw: Any) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "0",
               "DOCKER_CONFIG": str(self.run_dir / "docker-config")}
        res = subprocess.run(["docker", *args], env=env, capture_output=True, check=False, text=True, timeout=timeout, **kw)
        if check and res.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} on {self.name} failed: {res.stderr.strip()[-3000:]}")
        return res

    def start_engine(self, lease: HostLease, timeout_s: float = 60.0) -> None:
        for d in (self.run_dir / "logs", self.run_dir / "docker-config", self.data_root):
            d.mkdir(parents=True, exist_ok=True)
        wrapper = self.run_dir / "runc-wrapper"
        wrapper.write_text(RUNC_WRAPPER)
        wrapper.chmod(0o755)
        (self.run_dir / "daemon.json").write_text("{}")
        _make_cgroup(self.cgroup_root)
        self.dockerd = _Proc("dockerd", [
            "dockerd", f"--config-file={self.run_dir / 'daemon.json'}",
            f"--data-root={self.data_root}", f"--exec-root={self.run_dir / 'exec'}",
            f"--pidfile={self.run_dir / 'docker.pid'}", f"--host=unix://{self.sock}",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
            "--userland-proxy=false", "--storage-driver=overlay2", f"--cgroup-parent=/{self.cgroup_root}",
            f"--add-runtime={RUNTIME}={wrapper}", f"--default-runtime={RUNTIME}", "--log-level=warn",
        ], self.run_dir / "logs" / "dockerd.log", dict(os.environ), die_signal=signal.SIGTERM)
        lease.record_process(f"dockerd {self.name}", self.dockerd.pid)
        _wait(f"dockerd on {self.name}", lambda: self.docker("info", check=False, timeout=10).returncode == 0,
              timeout_s, self.dockerd)
        # containers a killed run left behind in the (kept) image store
        left = self.docker("ps", "-aq").stdout.split()
        if left:
            self.docker("rm", "-f", *left)

    def image_id(self, image: str) -> str | None:
        res = self.docker("image", "inspect", "-f", "{{.Id}}", image, check=False)
        return res.stdout.strip() if res.returncode == 0 else None

    # ----------------------------------------------------------------- kubelet
    def start_kubelet(self, lease: HostLease, cp: ControlPlane) -> None:
        assert cp.ca_path is not None
        kdir = self.run_dir / "kubelet"
        kdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = write_kubeconfig(kdir / "kubeconfig", cp.api_url, cp.token, ca_path=cp.ca_path)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.ip, "port": free_port(), "healthzBindAddress": self.ip, "healthzPort": free_port(),
            "readOnlyPort": 0,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(cp.ca_path)}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{self.cgroup_root}",
            "failSwapOn": False, "makeIPTablesUtilChains": False,
            "volumePluginDir": str(kdir / "volume-plugins"),
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                             "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
        }
        (kdir / "config.yaml").write_text(yaml.safe_dump(config))
        shim = kdir / "dockershim"
        self.kubelet = _Proc("kubelet", [
            str(self.bin_dir / "kubelet"), f"--config={kdir / 'config.yaml'}", f"--kubeconfig={kubeconfig}",
            "--container-runtime=docker", f"--docker-endpoint=unix://{self.sock}", f"--docker=unix://{self.sock}",
            f"--pod-infra-container-image={PAUSE_IMAGE}", f"--experimental-dockershim-root-directory={shim}",
            f"--container-runtime-endpoint=unix://{shim}/dockershim.sock",
            f"--image-service-endpoint=unix://{shim}/dockershim.sock",
            "--network-plugin=", f"--hostname-override={self.name}",
            f"--root-dir={kdir / 'root'}", f"--cert-dir={kdir / 'pki'}", "--v=1",
        ], self.run_dir / "logs" / "kubelet.log", dict(os.environ), die_signal=signal.SIGTERM)
        lease.record_process(f"kubelet {self.name}", self.kubelet.pid)

    # ----------------------------------------------------------------- node failure
    def pause(self) -> None:
        """A failed node: the kubelet frozen (no status, no lease) and its containers paused."""
        assert self.kubelet is not None
        self.kubelet.signal_group(signal.SIGSTOP)
        running = self.docker("ps", "-q").stdout.split()
        if running:
            self.docker("pause", *running)
        self.paused = True

    def fail_commands(self) -> tuple[list[str], list[str]]:
        """(stop, start) argv doing what :meth:`pause` / :meth:`resume` do, for an experiment's
        ``target.kubernetes.nodes.<node>.stop/start`` (node-failure on this node); start is idempotent."""
        assert self.kubelet is not None
        d = f"docker -H unix://{self.sock}"
        group = f"-- -{self.kubelet.pid}"  # the kubelet's process group (it runs in its own session)
        return (["sh", "-c", f"kill -s STOP {group} && {d} ps -q | xargs -r {d} pause"],
                ["sh", "-c", f"{d} ps -q --filter status=paused | xargs -r {d} unpause; kill -s CONT {group}"])

    def resume(self) -> None:
        assert self.kubelet is not None
        paused = self.docker("ps", "-q", "--filter", "status=paused").stdout.split()
        if paused:
            self.docker("unpause", *paused)
        self.kubelet.signal_group(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """kubelet first (no restarts), then every container, then the engine."""
        if self.paused:
            self.resume()
        if self.kubelet is not None:
            _stop_proc(self.kubelet, 15.0)
        if self.dockerd is not None and self.dockerd.alive():
            left = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if left:
                self.docker("rm", "-f", *left, check=False, timeout=120)
            _stop_proc(self.dockerd, 30.0)

    def log_tail(self, n: int = 20) -> str:
        return "\n".join(f"--- {p.name} on {self.name}\n{p.tail(n)}" for p in (self.dockerd, self.kubelet) if p)


class RealCluster:
    """Control plane + ``nodes`` real nodes + kube-proxy, all on 127.0.0.0/8; :meth:`down` restores."""

    def __init__(self, nodes: int = 1) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError(f"no control-plane binaries: run `{BUILD_HINT}`")
        self.bin_dir = bin_dir
        self.nodes = [Node(i, bin_dir) for i in range(1, nodes + 1)]
        self._last_index = nodes  # an added node gets a new index (name, dirs) even after another was removed
        self.lease = HostLease()
        self.control_plane: ControlPlane | None = None
        self.kube_proxy: _Proc | None = None
        self.phase_seconds: dict[str, float] = {}

    @property
    def verified_kubeconfig_path(self) -> Path:
        """The kubeconfig (TLS verified with the test CA), under the name k8s_stack.make_target uses."""
        return self.kubeconfig_path

    @property
    def kubeconfig_path(self) -> Path:
        assert self.control_plane is not None and self.control_plane.internal_kubeconfig_path is not None
        return self.control_plane.internal_kubeconfig_path

    def up(self, timeout_s: float = 300.0) -> RealCluster:
        t0 = time.monotonic()
        self.lease.acquire([n.run_dir for n in self.nodes] + [RUN_ROOT / "kube-proxy", RUN_ROOT / "control-plane"],
                           [n.data_root for n in self.nodes], [n.cgroup_root for n in self.nodes])
        try:
            self._phase("lease", t0)
            # under the run root (a tmpfs), so that a killed run's leftovers go with it
            (RUN_ROOT / "control-plane").mkdir(parents=True, exist_ok=True)
            self.control_plane = ControlPlane(self.bin_dir, workdir=RUN_ROOT / "control-plane", etcd_in_memory=False)
            self.control_plane.start()
            self._phase("control plane", t0)
            for n in self.nodes:
                n.start_engine(self.lease)
            self._phase("engines", t0)
            self._images()
            self._phase("images", t0)
            for n in self.nodes:
                n.start_kubelet(self.lease, self.control_plane)
            self._start_kube_proxy()
            core = self.core_v1()
            _wait("nodes Ready", lambda: all(_node_ready(core, n.name) for n in self.nodes), timeout_s / 2,
                  *[n.kubelet for n in self.nodes if n.kubelet], diagnose=self.log_tail)
            _wait("kube-proxy's POSTROUTING jump", _kube_postrouting_jump, 60, self.kube_proxy, diagnose=self.log_tail)
            # kube-proxy MASQUERADEs loopback NodePort traffic to the external address; keep it on lo
            subprocess.run(["iptables", "-w", "-t", "nat", "-I", "POSTROUTING", "1", "-o", "lo", "-m", "comment",
                            "--comment", RULE_COMMENT, "-j", "RETURN"], check=True)
            self._phase("nodes Ready", t0)
        except BaseException:
            self.down()
            raise
        return self

    def _phase(self, name: str, t0: float) -> None:
        self.phase_seconds[name] = round(time.monotonic() - t0, 1)

    def _images(self) -> None:
        first = self.nodes[0]
        if first.image_id(PAUSE_IMAGE) is None:
            first.docker("import", "-c", 'ENTRYPOINT ["/pause"]', str(NODE_CACHE / "pause" / "pause.tar"), PAUSE_IMAGE)
        if first.image_id(python_image()) is None:
            first.docker("import", "-c", 'CMD ["python3"]', "-c", "ENV LANG=C.UTF-8", str(rootfs_tar()), python_image())
        build_base = f"local/chaosml-build-base:{rootfs_key()}-{wheels_dir().name}"
        if first.image_id(build_base) is None:
            with tempfile.TemporaryDirectory(prefix="chaosml-base-") as ctx:
                shutil.copytree(wheels_dir(), Path(ctx) / "wheels", copy_function=_link_or_copy)
                (Path(ctx) / "Dockerfile").write_text(
                    f"FROM {python_image()}\nCOPY wheels /opt/wheels\n"
                    "ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheels PIP_BREAK_SYSTEM_PACKAGES=1\n")
                first.docker("build", "--network", "none", "-q", "-t", build_base, ctx)
        build_stack_image(first, build_base)
        for n in self.nodes[1:]:
            self._copy_images(n)

    def build_kserve_image(self) -> None:
        """The bring-your-own KServe example's image (its own Dockerfile), built offline on every node's engine
        from the wheels of `build-node.sh --kserve`; skipped where the image already has this source."""
        first = self.nodes[0]
        base = f"local/kserve-build-base:{kserve_wheels_dir().name}-{rootfs_key()}"  # on this rootfs, with these wheels
        if first.image_id(base) is None:
            with tempfile.TemporaryDirectory(prefix="chaosml-kserve-base-") as ctx:
                shutil.copytree(kserve_wheels_dir(), Path(ctx) / "wheels", copy_function=_link_or_copy)
                (Path(ctx) / "Dockerfile").write_text(
                    f"FROM {python_image()}\nCOPY wheels /opt/wheels\n"
                    "ENV PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wheels PIP_BREAK_SYSTEM_PACKAGES=1\n")
                first.docker("build", "--network", "none", "-q", "-t", base, ctx, timeout=1200)
        files = [KSERVE_EXAMPLE / "Dockerfile", KSERVE_EXAMPLE / "requirements.txt",
                 REPO / "experiments" / "servers" / "kserve_sklearn.py"]
        build_image(first, KSERVE_IMAGE, "manifests/examples/byo-kserve/Dockerfile", base, files)
        for n in self.nodes[1:]:
            self._copy_images(n, (KSERVE_IMAGE,))

    def _copy_images(self, node: Node, images: tuple[str, ...] = (PAUSE_IMAGE, STACK_IMAGE)) -> None:
        """``docker save | docker load`` from the first node's engine (skipped when already there)."""
        first = self.nodes[0]
        for image in images:
            if node.image_id(image) != first.image_id(image):
                with subprocess.Popen(["docker", "-H", f"unix://{first.sock}", "save", image],
                                      stdout=subprocess.PIPE) as save:
                    node.docker("load", "-q", stdin=save.stdout)

    def add_node(self, timeout_s: float = 120.0) -> Node:
        """One more real node (127.0.0.<i>, a new i each time), Ready; :meth:`remove_node` or :meth:`down` stops it.
        (A node added again under a removed node's name did not get the model pod Ready within 120 s.)"""
        assert self.control_plane is not None
        self._last_index += 1
        node = Node(self._last_index, self.bin_dir)
        self.lease.extend([node.run_dir], [node.data_root], [node.cgroup_root])
        self.nodes.append(node)
        node.start_engine(self.lease)
        self._copy_images(node)
        node.start_kubelet(self.lease, self.control_plane)
        core = self.core_v1()
        _wait(f"node {node.name} Ready", lambda: _node_ready(core, node.name), timeout_s, node.kubelet,
              diagnose=self.log_tail)
        return node

    def remove_node(self, node: Node) -> None:
        """Stop a node added by :meth:`add_node`, delete its Node object and force-delete the pods still bound
        to it (what the pod GC does later), so that a node added again under the same name starts clean."""
        from kubernetes.client.exceptions import ApiException

        node.stop()
        self.nodes.remove(node)
        core = self.core_v1()
        try:
            core.delete_node(node.name)
        except ApiException as e:
            if e.status != 404:
                raise
        for pod in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node.name}").items:
            try:
                core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
            except ApiException as e:
                if e.status != 404:
                    raise

    def _start_kube_proxy(self) -> None:
        assert self.control_plane is not None and self.control_plane.ca_path is not None
        d = RUN_ROOT / "kube-proxy"
        d.mkdir(parents=True, exist_ok=True)
        kubeconfig = write_kubeconfig(d / "kubeconfig", self.control_plane.api_url, self.control_plane.token,
                                      ca_path=self.control_plane.ca_path)
        self.kube_proxy = _Proc("kube-proxy", [
            str(self.bin_dir / "kube-proxy"), f"--kubeconfig={kubeconfig}", "--proxy-mode=iptables",
            "--nodeport-addresses=127.0.0.0/8", "--bind-address=127.0.0.1",
            f"--healthz-bind-address=127.0.0.1:{free_port()}", f"--metrics-bind-address=127.0.0.1:{free_port()}",
            "--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0", "--oom-score-adj=0", "--hostname-override=127.0.0.1", "--v=1",
        ], d / "kube-proxy.log", dict(os.environ), die_signal=signal.SIGTERM)
        self.lease.record_process("kube-proxy", self.kube_proxy.pid)

    def api_client(self) -> Any:
        assert self.control_plane is not None
        return self.control_plane.api_client()

    def core_v1(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def log_tail(self, n: int = 20) -> str:
        parts = [node.log_tail(n) for node in self.nodes]
        if self.kube_proxy is not None:
            parts.append(f"--- kube-proxy\n{self.kube_proxy.tail(n)}")
        if self.control_plane is not None:
            parts.append(self.control_plane.log_tails(n))
        return "\n".join(parts)

    def down(self) -> None:
        """Stop everything and restore the machine (also what the lease recorded). Idempotent."""
        t0 = time.monotonic()
        try:
            if self.kube_proxy is not None:
                _stop_proc(self.kube_proxy, 10.0)
            for n in self.nodes:
                with contextlib.suppress(Exception):
                    n.stop()
            if self.control_plane is not None:
                self.control_plane.stop()
        finally:
            self.lease.release()
        self.phase_seconds["down"] = round(time.monotonic() - t0, 1)


def stack_sources() -> list[Path]:
    """The files of the project image's build context (the Dockerfile's COPY sources)."""
    files = [REPO / "pyproject.toml", REPO / "README.md", REPO / "manifests" / "Dockerfile"]
    for top in ("chaosml", "experiments"):
        files += sorted(p for p in (REPO / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts
                        and not p.name.endswith(".pyc"))
    return files


def build_stack_image(node: Node, base: str) -> None:
    """``docker build -f manifests/Dockerfile`` offline, skipped when the image has this source."""
    build_image(node, STACK_IMAGE, "manifests/Dockerfile", base, stack_sources())


def build_image(node: Node, image: str, dockerfile: str, base: str, files: list[Path]) -> None:
    """``docker build`` of ``files`` (the context, paths from the repository root) offline with ``BASE=base``,
    skipped when ``image`` already carries this source's digest."""
    h = hashlib.sha256(base.encode())
    for f in files:
        h.update(str(f.relative_to(REPO)).encode() + b"\0" + f.read_bytes())
    digest = h.hexdigest()
    res = node.docker("image", "inspect", "-f", f'{{{{index .Config.Labels "{SOURCE_LABEL}"}}}}', image, check=False)
    if res.returncode == 0 and res.stdout.strip() == digest:
        return
    with tempfile.TemporaryDirectory(prefix="chaosml-stack-") as ctx:
        for f in files:
            dst = Path(ctx) / f.relative_to(REPO)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst)
        node.docker("build", "--network", "none", "-q", "-f", dockerfile, "--build-arg", f"BASE={base}",
                    "--label", f"{SOURCE_LABEL}={digest}", "-t", image, ctx, timeout=1200)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _make_cgroup(root: str) -> None:
    """``/<root>`` in every cgroup-v1 hierarchy (cpuset needs its cpus/mems filled in)."""
    for hier in Path("/sys/fs/cgroup").iterdir():
        if not hier.is_dir() or hier.is_symlink() or not (hier / "cgroup.procs").exists():
            continue
        d = hier / root
        d.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (d / f).exists() and not (d / f).read_text().strip():
                (d / f).write_text((hier / f).read_text())


def _node_ready(core: Any, name: str) -> bool:
    from kubernetes.client.exceptions import ApiException

    try:
        node = core.read_node(name, _request_timeout=5)
    except ApiException:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def _kube_postrouting_jump() -> bool:
    return any(" -j KUBE-POSTROUTING" in r for r in kube_chains().get("iptables/nat/rules", []))


def _wait(what: str, probe: Any, timeout_s: float, *procs: _Proc | None, diagnose: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        for p in procs:
            if p is not None and not p.alive():
                raise RuntimeError(f"{p.name} exited while waiting for {what}:\n{p.tail(30)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}"
                               + (f"\n{diagnose()}" if diagnose else ""))
        time.sleep(0.2)


def _stop_proc(p: _Proc, timeout_s: float) -> None:
    if p.alive():
        p.signal_group(signal.SIGCONT)
        p.signal_group(signal.SIGTERM)
        if not p.wait(timeout_s):
            p.signal_group(signal.SIGKILL)
            p.wait(10)
    p.close_log()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python tests/k8s/realnode.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="bring the cluster up and keep it until Ctrl-C/SIGTERM, then down")
    up.add_argument("--nodes", type=int, default=1)
    sub.add_parser("down", help="restore the machine after a killed run (processes, mounts, cgroups, iptables, sysctls)")
    a = ap.parse_args(argv)
    if a.cmd == "down":
        lease = HostLease()
        lease.acquire([], [], [], timeout_s=60)  # restores what the state file records
        lease.release()
        print("\n".join(lease.restored) or "nothing to restore")
        return 0
    reason = missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    cluster = RealCluster(a.nodes)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        cluster.up()
        print(json.dumps({"KUBECONFIG": str(cluster.kubeconfig_path), "phase_seconds": cluster.phase_seconds}), flush=True)
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
