"""A third-party fault type through the ``chaosml.faults`` entry-point group: installed, validated, applied, recovered and undone offline."""

from __future__ import annotations

import json
import shutil
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaosml.errors import ExperimentError
from chaosml.faults.base import FaultContext, make_injector, undo_fault
from chaosml.loader import load_experiment_text
from chaosml.model.faulttype import registry, reset_registry
from chaosml.targets.services import ServicesTarget

PLUGIN = Path(__file__).resolve().parent / "chaosml_example_fault"
ECHO = Path(__file__).resolve().parents[1] / "byo" / "echo_server.py"

EXPERIMENT = """
title: Pause a replica
target:
  services:
    - name: model
      command: ["{python}", "%s", "{port}"]
      health: /health
      replicas: 2
  entry: {service: model}
load: {users: 1, spawn_rate: 1, duration: 30s}
faults:
  - {name: freeze, type: process-pause, at: 5s, duration: 5s, params: {service: %s, count: 1}}
"""


def install(project: Path, site: Path) -> None:
    """Install the plugin project into ``site`` as pip would: its module plus a dist-info with its entry points.

    Written from the project's pyproject.toml (offline, no build backend needed); ``site`` then
    goes on sys.path, where ``importlib.metadata`` finds the distribution and its entry points.
    """
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    meta = pyproject["project"]
    for module in pyproject["tool"]["setuptools"]["py-modules"]:
        shutil.copy(project / f"{module}.py", site / f"{module}.py")
    dist = site / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n", encoding="utf-8")
    lines = [f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items()) for group, eps in meta["entry-points"].items()]
    (dist / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    site = tmp_path / "site"
    site.mkdir()
    install(PLUGIN, site)
    sys.path.insert(0, str(site))
    reset_registry()
    try:
        yield
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("chaosml_example_fault", None)
        reset_registry()


def _state(pid: int) -> str:
    """The process state letter from /proc (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, want: str, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    state = _state(pid)
    while (state == "T") != (want == "T") and time.monotonic() < deadline:
        time.sleep(0.02)
        state = _state(pid)
    return state


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_plugin_fault_type_validates_applies_recovers_and_undoes(plugin: None, tmp_path: Path) -> None:
    reg = registry()
    assert "process-pause" in reg and reg.origin("process-pause").startswith("entry point process-pause = chaosml_example_fault")
    with pytest.raises(ExperimentError, match="unknown service 'modle' \\(did you mean 'model'\\?\\)"):
        load_experiment_text(EXPERIMENT % (ECHO, "modle"), "x.yaml")
    exp = load_experiment_text(EXPERIMENT % (ECHO, "model"), "x.yaml")
    spec = exp.faults[0]

    with ServicesTarget(exp.target, tmp_path / "target") as target:
        inj = make_injector(spec, target, FaultContext(seed=1))
        record = inj.undo_record(0)
        (pid,) = record["pids"]
        assert inj.apply(0).ok and _wait_state(pid, "T") == "T"
        assert inj.recover(0).ok and _wait_state(pid, "R") != "T"

        # the harness dies mid-fault: rollback undoes it from the ledger record alone
        crashed = json.loads(json.dumps(inj.undo_record(1)))
        inj.apply(1)
        paused = crashed["pids"][0]
        assert _wait_state(paused, "T") == "T"
        assert "continued" in undo_fault("process-pause", crashed)
        assert _wait_state(paused, "R") != "T"
        assert "continued" in undo_fault("process-pause", crashed)  # idempotent


def test_a_plugin_type_clashing_with_a_builtin_names_both_origins(plugin: None, tmp_path: Path) -> None:
    import chaosml_example_fault as mod

    from chaosml.model.faulttype import DuplicateFaultTypeError, FaultRegistry

    reg = FaultRegistry()
    reg.add_package()
    clash = mod.FaultType(**{**{f: getattr(mod.FAULT_TYPE, f) for f in ("params", "injectors", "undoers")}, "name": "pod-kill"})
    with pytest.raises(DuplicateFaultTypeError, match="by module chaosml.faults.podkill and by entry point x"):
        reg.add(clash, "entry point x")
