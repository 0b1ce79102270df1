"""A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager +
kube-scheduler v1.20) on free 127.0.0.1 ports, for tests.

The binaries come from ``tests/k8s/build-control-plane.sh`` (Debian bookworm's
``kubernetes`` source package). Nothing here mocks the API server: every call goes
to the real one. There is no kubelet; see ``kubelet.py`` for the simulated one.

Typical use::

    bin_dir = find_bin_dir()            # None if not built
    with ControlPlane(bin_dir) as cp:   # start() ... stop()
        api = cp.api_client()           # kubernetes.client.ApiClient
        ...

``cp.kubeconfig_path`` is a kubeconfig with context ``kind-chaosml-test``, a bearer
token in group ``system:masters`` and ``insecure-skip-tls-verify: true``.
``cp.api_client()`` does not use that file: it verifies TLS against ``cp.ca_path``,
so it raises no ``InsecureRequestWarning``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import yaml

CONTEXT_NAME = "kind-chaosml-test"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
DEFAULT_CACHE = Path.home() / ".cache" / "chaosml" / "k8s"
BUILD_HINT = "bash tests/k8s/build-control-plane.sh"
SERVICE_CIDR = "10.96.0.0/24"


class ControlPlaneError(RuntimeError):
    """The control plane could not be started (the message carries log tails)."""


# --------------------------------------------------------------------------- binaries


def cache_root() -> Path:
    return Path(os.environ.get("CHAOSML_K8S_CACHE") or DEFAULT_CACHE)


def _complete(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / c, os.X_OK) for c in COMPONENTS)


def find_etcd(bin_dir: Path | None = None) -> str | None:
    if bin_dir is not None and os.access(bin_dir / "etcd", os.X_OK):
        return str(bin_dir / "etcd")
    found = shutil.which("etcd")
    if found:
        return found
    return "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None


def find_bin_dir() -> Path | None:
    """The directory holding the three control-plane binaries, or None.

    ``$CHAOSML_K8S_BIN`` wins; otherwise the newest complete build under
    ``${CHAOSML_K8S_CACHE:-~/.cache/chaosml/k8s}/<version>/bin``.
    """
    env = os.environ.get("CHAOSML_K8S_BIN")
    if env:
        p = Path(env)
        return p if _complete(p) else None
    root = cache_root()
    if not root.is_dir():
        return None
    candidates = [d / "bin" for d in root.iterdir() if _complete(d / "bin")]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p / "kube-apiserver").stat().st_mtime)


def missing_reason() -> str | None:
    """Why the control plane cannot run here (None when it can)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        where = os.environ.get("CHAOSML_K8S_BIN") or f"{cache_root()}/<version>/bin"
        return (
            f"Kubernetes control-plane binaries not found in {where}; "
            f"build them once with `{BUILD_HINT}` (about 7 min cold)"
        )
    if find_etcd(bin_dir) is None:
        return f"etcd not found (apt-get install etcd-server, or run `{BUILD_HINT}`)"
    if shutil.which("openssl") is None:
        return "openssl not found (apt-get install openssl)"
    return None


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


_PR_SET_PDEATHSIG = 1
try:  # resolved in the parent: the child only makes one libc call
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not glibc
    _prctl = None


def _die_with_parent(sig: int = signal.SIGKILL) -> None:  # pragma: no cover - runs in the child
    """preexec_fn: send ``sig`` (default SIGKILL) to the child if the test process dies (no orphans)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["openssl", *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def make_pki(d: Path) -> dict[str, Path]:
    """CA, apiserver serving cert (127.0.0.1, localhost, kubernetes.default...),
    service-account key pair. Returns name -> path."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl("genrsa", "-out", "ca.key", "2048", cwd=d)
    _openssl(
        "req", "-x509", "-new", "-nodes", "-key", "ca.key", "-sha256", "-days", "30",
        "-subj", "/CN=chaosml-test-ca", "-out", "ca.crt", cwd=d,
    )  # fmt: skip
    _openssl("genrsa", "-out", "apiserver.key", "2048", cwd=d)
    _openssl(
        "req", "-new", "-key", "apiserver.key", "-subj", "/CN=kube-apiserver",
        "-out", "apiserver.csr", cwd=d,
    )  # fmt: skip
    (d / "apiserver.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        "DNS:kubernetes.default.svc.cluster.local\n"
    )
    _openssl(
        "x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", "apiserver.ext",
        "-out", "apiserver.crt", cwd=d,
    )  # fmt: skip
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=d)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    for key in ("ca.key", "apiserver.key", "sa.key"):
        (d / key).chmod(0o600)
    return {
        "ca_crt": d / "ca.crt",
        "ca_key": d / "ca.key",
        "tls_crt": d / "apiserver.crt",
        "tls_key": d / "apiserver.key",
        "sa_key": d / "sa.key",
        "sa_pub": d / "sa.pub",
    }


def write_kubeconfig(
    path: Path,
    server: str,
    token: str,
    context: str = CONTEXT_NAME,
    *,
    ca_path: Path | None = None,
    namespace: str = "default",
) -> Path:
    """A kubeconfig with one cluster/user/context. Without ``ca_path`` it sets
    ``insecure-skip-tls-verify: true``."""
    cluster: dict[str, Any] = {"server": server}
    if ca_path is None:
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority"] = str(ca_path)
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [
            {
                "name": context,
                "context": {
                    "cluster": context,
                    "user": context,
                    "namespace": namespace,
                },
            }
        ],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)
    return path


class _Proc:
    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str], die_signal: int = signal.SIGKILL
    ):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() signals the group
            # only a prctl() call, resolved before the fork
            preexec_fn=functools.partial(_die_with_parent, die_signal),  # noqa: PLW1509
            env=env,
            close_fds=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> bool:
        try:
            self.popen.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def close_log(self) -> None:
        with contextlib.suppress(OSError):
            self._log.close()

    def tail(self, n: int = 25) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- control plane


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler.

    Attributes after :meth:`start`: ``api_url``, ``kubeconfig_path`` (insecure,
    context ``kind-chaosml-test``), ``context``, ``token``, ``ca_path``,
    ``workdir`` (certs, data, ``logs/<component>.log``), ``startup_seconds``.
    """

    def __init__(
        self,
        bin_dir: Path | str | None = None,
        *,
        workdir: Path | str | None = None,
        context: str = CONTEXT_NAME,
        keep_workdir: bool | None = None,
        apiserver_args: Sequence[str] = (),
        controller_manager_args: Sequence[str] = (),
        scheduler_args: Sequence[str] = (),
        etcd_in_memory: bool = True,
    ) -> None:
        found = Path(bin_dir) if bin_dir is not None else find_bin_dir()
        if found is None or not _complete(found):
            raise ControlPlaneError(
                f"control-plane binaries not found; run `{BUILD_HINT}`"
            )
        self.bin_dir = found
        etcd = find_etcd(found)
        if etcd is None:
            raise ControlPlaneError("etcd not found (apt-get install etcd-server)")
        self.etcd_bin = etcd
        self.context = context
        self._own_workdir = workdir is None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        if keep_workdir is None:
            keep_workdir = os.environ.get("CHAOSML_K8S_KEEP", "") not in ("", "0")
        self.keep_workdir = keep_workdir
        self.extra_args = {
            "kube-apiserver": list(apiserver_args),
            "kube-controller-manager": list(controller_manager_args),
            "kube-scheduler": list(scheduler_args),
        }
        self.etcd_in_memory = etcd_in_memory
        self.token = secrets.token_hex(24)
        self.workdir: Path | None = None
        self.api_url = ""
        self.kubeconfig_path: Path | None = None
        self.internal_kubeconfig_path: Path | None = None
        self.ca_path: Path | None = None
        self.ports: dict[str, int] = {}
        self.startup_seconds: float | None = None
        self.phase_seconds: dict[str, float] = {}  # what -> seconds since start()
        self._procs: list[_Proc] = []
        self._etcd_data: Path | None = None
        self._t0 = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def verified_kubeconfig_path(self) -> Path | None:
        """Like ``kubeconfig_path`` but verifying TLS with ``ca_path`` (no
        InsecureRequestWarning); the controller-manager and scheduler use it."""
        return self.internal_kubeconfig_path

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.alive() for p in self._procs)

    def start(self, timeout: float = 90.0, attempts: int = 2) -> ControlPlane:
        """Start everything and wait until the API is usable: /readyz ok, the
        controller-manager created the ``default`` service account, the scheduler
        is healthy. Retries once on a failure (for example a port race)."""
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                return self
            except Exception as e:  # noqa: BLE001 - re-raised below
                last = e
                self._stop_processes()
                if attempt + 1 < attempts:
                    time.sleep(0.5)
        self._cleanup_workdir(force_keep=True)
        assert last is not None
        raise last

    def _start_once(self, timeout: float) -> None:
        t0 = self._t0 = time.monotonic()
        deadline = t0 + timeout
        self.phase_seconds = {}
        if self._workdir_arg is not None:
            self.workdir = self._workdir_arg
            self.workdir.mkdir(parents=True, exist_ok=True)
        elif self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="chaosml-k8s-"))
        wd = self.workdir
        logs = wd / "logs"
        logs.mkdir(exist_ok=True)

        pki = make_pki(wd / "pki")
        self.phase_seconds["pki"] = round(time.monotonic() - t0, 3)
        self.ca_path = pki["ca_crt"]
        token_file = wd / "tokens.csv"
        token_file.write_text(
            f'{self.token},chaosml-admin,chaosml-admin,"system:masters"\n'
        )
        token_file.chmod(0o600)

        etcd_client, etcd_peer, api_port, kcm_port, sched_port = _free_ports(5)
        self.ports = {
            "etcd-client": etcd_client,
            "etcd-peer": etcd_peer,
            "kube-apiserver": api_port,
            "kube-controller-manager": kcm_port,
            "kube-scheduler": sched_port,
        }
        self.api_url = f"https://127.0.0.1:{api_port}"
        self.kubeconfig_path = write_kubeconfig(
            wd / "kubeconfig", self.api_url, self.token, self.context
        )
        self.internal_kubeconfig_path = write_kubeconfig(
            wd / "kubeconfig.internal",
            self.api_url,
            self.token,
            self.context,
            ca_path=self.ca_path,
        )
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ETCD", "KUBE"))
        }

        # etcd (on /dev/shm when possible: fsync-heavy on a 2-core VM otherwise)
        shm = Path("/dev/shm")
        if self.etcd_in_memory and shm.is_dir() and os.access(shm, os.W_OK):
            self._etcd_data = Path(tempfile.mkdtemp(prefix="chaosml-etcd-", dir=shm))
        else:
            self._etcd_data = wd / "etcd"
            self._etcd_data.mkdir(exist_ok=True)
        c_url, p_url = (
            f"http://127.0.0.1:{etcd_client}",
            f"http://127.0.0.1:{etcd_peer}",
        )
        self._spawn(
            "etcd",
            [
                self.etcd_bin,
                "--name=chaosml",
                f"--data-dir={self._etcd_data}",
                f"--listen-client-urls={c_url}",
                f"--advertise-client-urls={c_url}",
                f"--listen-peer-urls={p_url}",
                f"--initial-advertise-peer-urls={p_url}",
                f"--initial-cluster=chaosml={p_url}",
                "--initial-cluster-state=new",
                "--log-level=warn",
                "--logger=zap",
            ],
            logs,
            env,
        )
        self._wait(
            "etcd",
            lambda: _http_json(f"{c_url}/health").get("health") == "true",
            deadline,
        )

        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={c_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--cert-dir={wd / 'apiserver-certs'}",
                f"--tls-cert-file={pki['tls_crt']}",
                f"--tls-private-key-file={pki['tls_key']}",
                f"--client-ca-file={pki['ca_crt']}",
                # fills kube-system/extension-apiserver-authentication (else the
                # controller-manager and scheduler log errors about it forever)
                f"--requestheader-client-ca-file={pki['ca_crt']}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--token-auth-file={token_file}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={pki['sa_pub']}",
                f"--service-account-signing-key-file={pki['sa_key']}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
                *self.extra_args["kube-apiserver"],
            ],
            logs,
            env,
        )
        self._wait("kube-apiserver", lambda: self._get("/readyz") == "ok", deadline)

        ikc = str(self.internal_kubeconfig_path)
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={ikc}",
                f"--authentication-kubeconfig={ikc}",
                f"--authorization-kubeconfig={ikc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={kcm_port}",
                "--port=0",
                f"--cert-dir={wd / 'kcm-certs'}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki['sa_key']}",
                f"--root-ca-file={pki['ca_crt']}",
                "--use-service-account-credentials=false",
                "--profiling=false",
                "--v=1",
                *self.extra_args["kube-controller-manager"],
            ],
            logs,
            env,
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={ikc}",
                f"--authentication-kubeconfig={ikc}",
                f"--authorization-kubeconfig={ikc}",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                "--port=0",
                f"--cert-dir={wd / 'scheduler-certs'}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
                *self.extra_args["kube-scheduler"],
            ],
            logs,
            env,
        )
        self._wait(
            "kube-controller-manager",
            lambda: _https_ok(f"https://127.0.0.1:{kcm_port}/healthz"),
            deadline,
        )
        self._wait(
            "kube-scheduler",
            lambda: _https_ok(f"https://127.0.0.1:{sched_port}/healthz"),
            deadline,
        )
        # Pods are refused until the service-account controller made `default`.
        self._wait(
            "kube-controller-manager (default service account)",
            lambda: (
                self._get("/api/v1/namespaces/default/serviceaccounts/default")
                is not None
            ),
            deadline,
        )
        self.startup_seconds = time.monotonic() - t0

    def _spawn(
        self, name: str, argv: list[str], logs: Path, env: dict[str, str]
    ) -> None:
        self._procs.append(_Proc(name, argv, logs / f"{name}.log", env))

    def _wait(self, what: str, probe: Any, deadline: float) -> None:
        delay = 0.05
        while True:
            for p in self._procs:
                if not p.alive():
                    raise ControlPlaneError(
                        f"{p.name} exited with code {p.popen.returncode} while waiting for "
                        f"{what}; log {p.log_path}:\n{p.tail()}"
                    )
            try:
                if probe():
                    self.phase_seconds[what] = round(time.monotonic() - self._t0, 3)
                    return
            except (OSError, ValueError, urllib.error.URLError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"timed out waiting for {what}\n{self.log_tails()}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _get(self, path: str, timeout: float = 5.0) -> str | None:
        """GET on the API server as the admin; None on 404."""
        assert self.ca_path is not None
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        req = urllib.request.Request(
            self.api_url + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def log_tails(self, n: int = 20) -> str:
        return "\n".join(
            f"--- {p.name} (pid {p.pid}, {'running' if p.alive() else f'exit {p.popen.returncode}'}) "
            f"{p.log_path}\n{p.tail(n)}"
            for p in self._procs
        )

    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self._procs}

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every process group (scheduler first, etcd last), SIGKILL what is
        left after ``timeout``; remove the temp dir (unless kept)."""
        self._stop_processes(timeout)
        self._cleanup_workdir()

    def _stop_processes(self, timeout: float = 10.0) -> None:
        procs = list(reversed(self._procs))
        self._procs = []
        for p in procs:
            p.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            if not p.wait(max(0.0, deadline - time.monotonic())):
                p.signal_group(signal.SIGKILL)
                p.wait(5.0)
            # the group may hold children even when the leader has exited
            p.signal_group(signal.SIGKILL)
            p.close_log()
        if self._etcd_data is not None and str(self._etcd_data).startswith("/dev/shm/"):
            shutil.rmtree(self._etcd_data, ignore_errors=True)
            self._etcd_data = None

    def _cleanup_workdir(self, force_keep: bool = False) -> None:
        if self.workdir is None or not self._own_workdir:
            return
        if self.keep_workdir or force_keep:
            return
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    # -- clients ---------------------------------------------------------------------

    def client_configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` that verifies TLS with our CA."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.api_url
        cfg.api_key = {"authorization": self.token}
        cfg.api_key_prefix = {"authorization": "Bearer"}
        cfg.ssl_ca_cert = str(self.ca_path)
        cfg.verify_ssl = True
        return cfg

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` (call ``.close()`` when done)."""
        from kubernetes import client

        return client.ApiClient(self.client_configuration())

    def env(self) -> dict[str, str]:
        """Environment for subprocesses (kubectl, the chaosml CLI)."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig_path)
        return env

    def server_version(self) -> dict[str, Any]:
        return json.loads(self._get("/version") or "{}")

    def api_versions(self, group: str) -> list[str]:
        """Versions the server offers for an API group (e.g. "batch")."""
        doc = json.loads(self._get(f"/apis/{group}") or "{}")
        return [v["version"] for v in doc.get("versions", [])]

    def cronjob_api_version(self) -> str:
        """``batch/v1`` if the server offers CronJob there (1.21+), else ``batch/v1beta1``."""
        doc = json.loads(self._get("/apis/batch/v1") or "{}")
        if any(r.get("kind") == "CronJob" for r in doc.get("resources", [])):
            return "batch/v1"
        return "batch/v1beta1"


def _http_json(url: str, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


def _https_ok(url: str, timeout: float = 2.0) -> bool:
    """GET on a component's self-signed health endpoint."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
        return r.read().decode().strip() == "ok"
