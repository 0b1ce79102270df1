"""Suite-wide isolation: the whole session (and every process it starts) uses its own rollback ledger."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("chaosml-state")
    old = os.environ.get("CHAOSML_STATE_DIR")
    os.environ["CHAOSML_STATE_DIR"] = str(state)
    yield state
    if old is None:
        os.environ.pop("CHAOSML_STATE_DIR", None)
    else:
        os.environ["CHAOSML_STATE_DIR"] = old


# pytest-xdist (`.ci/test` runs `-n 3 --dist loadgroup`). The tests that share one machine-wide resource
# run on one worker, in collection order, so their session fixtures start once:
#   "realnode": tests/k8s/test_realnode_*: the real cluster (kubelet, its dockerd, kube-proxy's
#               iptables; one per machine, under an exclusive lock);
#   "controlplane": the rest of tests/k8s (the session's control plane with its simulated kubelet,
#               the Docker engine that the node-failure tests stop and start) and the containerd
#               tests (their runc shims share /run/containerd/s with the Docker engines' shims, which
#               the test removes when empty).
# Every other test module is one unit of work (its module fixtures start once), on any worker: each
# worker has its own ports, run directories and state directory. The groups are chosen by path in
# our own scheduler, not with xdist_group marks: pytest-xdist 3.8 renames a marked test's node id,
# which pytest 9.2 no longer allows, so the marks are silently ignored there. Collection puts the
# two groups first so the longest one, the real node's, starts at once.
_GROUP_ORDER = {"realnode": 0, "controlplane": 1}


def cluster_group(nodeid: str) -> str | None:
    """The machine-wide resource a test shares with others ("realnode", "controlplane"), or None."""
    path = nodeid.split("::", 1)[0]
    name = path.rsplit("/", 1)[-1]
    if path.startswith("tests/k8s/"):
        return "realnode" if name.startswith("test_realnode_") else "controlplane"
    if name.startswith("test_containerd_"):
        return "controlplane"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: _GROUP_ORDER.get(cluster_group(item.nodeid) or "", len(_GROUP_ORDER)))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ClusterGroups(LoadScopeScheduling):  # type: ignore[misc]
        """Units of work: the two cluster groups, then one per test module (or class)."""

        def _split_scope(self, nodeid: str) -> str:
            return cluster_group(nodeid) or super()._split_scope(nodeid)

    return ClusterGroups(config, log)
