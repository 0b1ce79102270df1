"""Fixtures for tests against a real Kubernetes control plane: see k8s_fixtures.py.

The fixtures live in the plugin module ``k8s_fixtures`` so that they can be
registered once per session (import_plugin is a no-op if a top-level conftest
already registered it with ``pytest_plugins = ["k8s_fixtures"]``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.import_plugin("k8s_fixtures")
    config.addinivalue_line(
        "markers",
        "k8s: needs the real Kubernetes control plane (tests/k8s/build-control-plane.sh)",
    )
    config.addinivalue_line(
        "markers",
        "realnode: needs a real node (root, tests/k8s/build-node.sh): real kubelet, Docker engine, kube-proxy",
    )
