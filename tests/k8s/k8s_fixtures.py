"""pytest fixtures for the real Kubernetes control plane (a pytest plugin module).

Registered by ``tests/k8s/conftest.py``; to use the fixtures from another test
directory in the same session, register this module once as a plugin (it is
idempotent) from a top-level conftest::

    sys.path.insert(0, str(Path(__file__).parent / "k8s"))
    pytest_plugins = ["k8s_fixtures"]

Fixtures:

``control_plane`` (session): a :class:`K8sCluster` (control plane + simulated
kubelet with node ``chaosml-worker``). Skips when the binaries are missing (set
``CHAOSML_K8S_REQUIRE=1`` to fail instead, e.g. in CI after the build step).

``k8s_namespace`` (function): a fresh namespace name whose ``default`` service
account exists; deleted after the test.

``real_cluster`` (session): a :class:`realnode.RealCluster` (control plane + real kubelet
nodes + kube-proxy on 127.0.0.0/8; ``CHAOSML_REALNODE_NODES`` nodes, default 1), torn down and
the machine restored at the end. Skips with the reason when not root or not built
(``bash tests/k8s/build-node.sh``); ``CHAOSML_REALNODE_REQUIRE=1`` makes that a failure.

``real_stack`` (session): the namespace (``chaosml``) where the loopback overlay of the
reference stack (overlay.py) runs on ``real_cluster``, every Deployment available.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controlplane import ControlPlane, find_bin_dir, missing_reason
from realnode import RealCluster


@dataclass
class K8sCluster:
    """What the ``control_plane`` fixture yields."""

    control_plane: ControlPlane
    kubelet: Any  # kubelet.SimulatedKubelet
    _clients: list[Any] = field(default_factory=list)

    @property
    def kubeconfig_path(self) -> Path:
        assert self.control_plane.kubeconfig_path is not None
        return self.control_plane.kubeconfig_path

    @property
    def verified_kubeconfig_path(self) -> Path:
        """Same cluster/user/context, but ``certificate-authority: <ca_path>``
        instead of ``insecure-skip-tls-verify`` (no urllib3 InsecureRequestWarning,
        which pytest's ``filterwarnings = error`` turns into an exception)."""
        assert self.control_plane.internal_kubeconfig_path is not None
        return self.control_plane.internal_kubeconfig_path

    @property
    def context(self) -> str:
        return self.control_plane.context

    @property
    def api_url(self) -> str:
        return self.control_plane.api_url

    @property
    def token(self) -> str:
        return self.control_plane.token

    @property
    def ca_path(self) -> Path:
        assert self.control_plane.ca_path is not None
        return self.control_plane.ca_path

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` (TLS verified with the test CA, so
        no InsecureRequestWarning); closed at the end of the session."""
        c = self.control_plane.api_client()
        self._clients.append(c)
        return c

    def core_v1(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    def apps_v1(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.api_client())

    def env(self) -> dict[str, str]:
        """os.environ plus KUBECONFIG=<kubeconfig_path> (for subprocesses)."""
        return self.control_plane.env()

    def cronjob_api_version(self) -> str:
        return self.control_plane.cronjob_api_version()

    def close_clients(self) -> None:
        for c in self._clients:
            c.close()
        self._clients.clear()


@pytest.fixture(scope="session")
def control_plane() -> Iterator[K8sCluster]:
    reason = missing_reason()
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        reason = (
            reason or "the kubernetes python client is missing (pip install kubernetes)"
        )
    if reason is not None:
        if os.environ.get("CHAOSML_K8S_REQUIRE", "") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)
    from kubelet import SimulatedKubelet

    cp = ControlPlane(find_bin_dir())
    cp.start()
    kubelet = None
    cluster = None
    try:
        kubelet = SimulatedKubelet(cp.api_client)
        kubelet.start()
        cluster = K8sCluster(cp, kubelet)
        yield cluster
    finally:
        try:
            if kubelet is not None:
                kubelet.stop()
            if cluster is not None:
                cluster.close_clients()
        finally:
            cp.stop()


@pytest.fixture
def k8s_namespace(control_plane: K8sCluster) -> Iterator[str]:
    from kubernetes.client.exceptions import ApiException

    core = control_plane.core_v1()
    name = f"chaosml-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"chaosml.io/test": "true"}}}
    )
    deadline = time.monotonic() + 30
    while True:  # pods are refused until the service-account controller ran
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    import realnode

    reason = missing_reason() or realnode.missing_reason()
    if reason is not None:
        if os.environ.get("CHAOSML_REALNODE_REQUIRE", "") not in ("", "0"):
            pytest.fail(reason)
        pytest.skip(reason)
    cluster = RealCluster(int(os.environ.get("CHAOSML_REALNODE_NODES", "1")))
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def real_stack(real_cluster: RealCluster) -> str:
    from overlay import loopback_stack

    from chaosml.cluster import apply_manifests, wait_available

    namespace = "chaosml"
    api = real_cluster.api_client()
    try:
        apply_manifests(api, loopback_stack(namespace, model_replicas=len(real_cluster.nodes)))
        wait_available(api, namespace, 180)
    except BaseException:
        print(real_cluster.log_tail(40), file=sys.stderr)
        raise
    finally:
        api.close()
    return namespace
