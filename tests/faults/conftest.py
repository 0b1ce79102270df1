"""Fixtures for the injector tests: one real LocalTarget (fault proxy, redis-server, replicas, gateway)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import Dataset, load_dataset


@pytest.fixture(scope="session")
def ds() -> Dataset:
    return load_dataset()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    """The hardened reference stack with 2 replicas, behind the fault proxy's links."""
    t = LocalTarget(tmp_path_factory.mktemp("faults-target"), profile="hardened", replicas=2, restart_delay_s=0.5)
    with t:
        yield t


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path
