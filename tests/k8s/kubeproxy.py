"""A simulated kube-proxy for one NodePort Service of the test control plane.

:class:`NodePortProxy` listens on a 127.0.0.1 port and forwards each new client
connection, round robin, to the next Ready, non-terminating pod selected by the
Service whose process runs under the simulated kubelet (exec pods, see kubelet.py),
at ``kubelet.endpoint(namespace, pod)`` (the pod's ``POD_PORT``: the Service's
``targetPort`` is not used, every exec pod serves on its own port).

* Endpoints: every ``poll_interval`` (0.2 s) it reads the Service (its selector and the
  chosen port's ``nodePort``) and lists the pods matching the selector; those Ready
  and without a ``deletionTimestamp`` are the endpoints. At connect time a pod is also
  skipped unless the kubelet sees it Ready, not terminating and not frozen (the
  kubelet's watch sees a deletion within milliseconds, before the next poll), so a
  terminating pod never receives a new connection once the kubelet saw its deletion.
* No endpoint: the client connection is reset at once (like a kube-proxy REJECT rule).
  A backend refusing the connection: the next endpoint is tried (each at most once).
* Bytes are copied both ways with half-close; a backend that dies mid-connection
  closes that client connection only. Idle connections close after ``idle_timeout``.
* :meth:`NodePortProxy.stop` closes the listener and every connection and joins the
  threads (bounded).

Only stdlib sockets, selectors and threads; traffic only to 127.0.0.0/8.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import itertools
import logging
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("chaosml.tests.kubeproxy")


def _is_ready(pod: Any) -> bool:
    st = pod.status
    if st is None or st.phase != "Running" or pod.metadata.deletion_timestamp:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in st.conditions or [])


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the client sees 'connection reset'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class NodePortProxy:
    """Round-robin TCP forwarder from ``listen`` to the Ready exec pods of a Service."""

    def __init__(
        self,
        client_factory: Callable[[], Any],
        kubelet: Any,
        namespace: str,
        service_name: str,
        port_name: str | None = None,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        *,
        poll_interval: float = 0.2,
        connect_timeout: float = 1.0,
        idle_timeout: float = 60.0,
        max_connections: int = 256,
    ) -> None:
        if not _loopback(listen[0]):
            raise ValueError(
                f"NodePortProxy listens on 127.0.0.0/8 only, not {listen[0]!r}"
            )
        self.kubelet = kubelet
        self.namespace = namespace
        self.service_name = service_name
        self.port_name = port_name
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self._api_client = client_factory()
        self._core = client.CoreV1Api(self._api_client)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rr = itertools.count()
        self._backends: list[tuple[str, str]] = []  # (pod name, uid), sorted by name
        self._conns: dict[threading.Thread, list[socket.socket]] = {}
        # what it did, for tests and diagnostics
        self.selector: dict[str, str] = {}
        self.node_port: int | None = None
        self.target_port: Any = None
        self.forwarded: collections.Counter[str] = collections.Counter()
        self.history: collections.deque[tuple[float, str, str]] = collections.deque(
            maxlen=10000
        )
        self.refused = 0  # connections reset: no endpoint (or none answering)
        self.backend_errors = 0  # connects refused by a backend / reset mid-connection
        self.poll_errors: collections.deque[str] = collections.deque(maxlen=50)
        self.polls = 0

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(listen)
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        try:
            self._poll_once()
        except Exception as e:  # noqa: BLE001 - the poller retries
            self.poll_errors.append(repr(e))
        self._threads = [
            threading.Thread(
                target=self._poll_loop, name="kubeproxy-poll", daemon=True
            ),
            threading.Thread(
                target=self._accept_loop, name="kubeproxy-accept", daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    # -- endpoints -------------------------------------------------------------------

    def _poll_once(self) -> None:
        try:
            svc = self._core.read_namespaced_service(
                self.service_name, self.namespace, _request_timeout=5
            )
        except ApiException as e:
            if e.status != 404:
                raise
            with self._lock:
                self._backends, self.selector = [], {}
            return
        ports = svc.spec.ports or []
        chosen = (
            next((p for p in ports if p.name == self.port_name), None)
            if self.port_name
            else None
        )
        if chosen is None and ports and self.port_name is None:
            chosen = ports[0]
        selector = dict(svc.spec.selector or {})
        backends: list[tuple[str, str]] = []
        if selector:  # a Service without selector has no endpoints here
            pods = self._core.list_namespaced_pod(
                self.namespace,
                label_selector=",".join(
                    f"{k}={v}" for k, v in sorted(selector.items())
                ),
                _request_timeout=5,
            )
            backends = sorted(
                (p.metadata.name, p.metadata.uid) for p in pods.items if _is_ready(p)
            )
        with self._lock:
            self._backends = backends
            self.selector = selector
            self.node_port = chosen.node_port if chosen is not None else None
            self.target_port = chosen.target_port if chosen is not None else None
            self.polls += 1

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self._poll_once()
            except Exception as e:  # noqa: BLE001 - keep the last endpoints, retry
                if not self._stop.is_set():
                    self.poll_errors.append(f"{time.strftime('%H:%M:%S')} {e!r}")

    def backends(self) -> list[tuple[str, str]]:
        """``(pod name, uid)`` of the Ready, non-terminating pods of the last poll."""
        with self._lock:
            return list(self._backends)

    def candidates(self) -> list[tuple[str, str, tuple[str, int]]]:
        """The endpoints a new connection may use now: ``(pod, uid, (host, port))``."""
        out = []
        for name, uid in self.backends():
            addr = self.kubelet.endpoint(self.namespace, name, ready_only=True)
            if addr is not None and _loopback(addr[0]):
                out.append((name, uid, addr))
        return out

    # -- connections -----------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)
                continue
            with self._lock:
                for t in [t for t in self._conns if not t.is_alive()]:
                    del self._conns[t]
                full = len(self._conns) >= self.max_connections
            if full or self._stop.is_set():
                self.refused += 1
                _reset(conn)
                continue
            t = threading.Thread(
                target=self._handle, args=(conn,), name="kubeproxy-conn", daemon=True
            )
            with self._lock:
                self._conns[t] = [conn]
            t.start()

    def _handle(self, conn: socket.socket) -> None:
        me = threading.current_thread()
        backend: socket.socket | None = None
        try:
            t_pick = time.monotonic()
            cands = self.candidates()
            if cands:
                k = next(self._rr)
                for i in range(len(cands)):
                    name, uid, addr = cands[(k + i) % len(cands)]
                    try:
                        backend = socket.create_connection(
                            addr, timeout=self.connect_timeout
                        )
                    except OSError:
                        self.backend_errors += 1
                        continue
                    with self._lock:
                        self.forwarded[name] += 1
                        self.history.append((t_pick, name, uid))
                        if me in self._conns:
                            self._conns[me].append(backend)
                    break
            if backend is None:
                self.refused += 1
                _reset(conn)
                return
            self._pump(conn, backend)
        except Exception as e:  # noqa: BLE001 - one connection only
            log.debug("kubeproxy connection: %r", e)
        finally:
            for s in (conn, backend):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()
            with self._lock:
                self._conns.pop(me, None)

    def _pump(self, conn: socket.socket, backend: socket.socket) -> None:
        """Copy both ways until both sides closed their writing half, an error (a
        reset: both closed) or ``idle_timeout`` without data."""
        for s in (conn, backend):
            s.settimeout(10.0)  # bounds sendall to a stuck peer
        peer = {conn: backend, backend: conn}
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            sel.register(backend, selectors.EVENT_READ)
            open_ = 2
            last = time.monotonic()
            while open_ and not self._stop.is_set():
                events = sel.select(0.2)
                if not events:
                    if time.monotonic() - last > self.idle_timeout:
                        return
                    continue
                last = time.monotonic()
                for key, _ in events:
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    dst = peer[src]
                    try:
                        data = src.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:  # reset (e.g. the backend died): close both
                        if src is backend:
                            self.backend_errors += 1
                        return
                    if not data:  # EOF: pass the half-close on
                        sel.unregister(src)
                        open_ -= 1
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            return
                        continue
                    try:
                        dst.sendall(data)
                    except OSError:
                        if dst is backend:
                            self.backend_errors += 1
                        return

    # -- stop ------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection; join the threads (bounded)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns = dict(self._conns)
        for socks in conns.values():
            for s in socks:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for t in [*self._threads, *conns]:
            t.join(max(0.05, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            self._api_client.close()
        alive = [t.name for t in [*self._threads, *conns] if t.is_alive()]
        if alive:
            raise RuntimeError(f"NodePortProxy threads did not stop: {alive}")
