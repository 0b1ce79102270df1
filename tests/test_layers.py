"""The layer contract in pyproject.toml covers every top-level module, and chaosml has no import cycle."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    return [name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")]


def test_every_top_level_module_has_a_layer() -> None:
    """import-linter's layers do not fail on a module that no layer names: this test does."""
    top = {p.stem for p in (ROOT / "chaosml").glob("*.py") if p.stem not in ("__init__", "__main__")}
    top |= {p.name for p in (ROOT / "chaosml").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    named = {name.split(".")[1] for name in _layers()}
    assert sorted(top - named) == []


def test_no_import_cycles() -> None:
    """No module imports (directly or through others) a module that imports it back (function-level imports count too)."""
    graph = grimp.build_graph("chaosml", cache_dir=None, exclude_type_checking_imports=True)  # annotations only: no cycle at run time
    cycles = set()
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.add(" -> ".join((module, *chain)))
    assert sorted(cycles) == []


@pytest.mark.skipif(not (Path(sys.executable).parent / "lint-imports").exists(), reason="import-linter is not installed (pip install -e '.[test]')")
def test_import_contracts_hold() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]


def test_no_fault_type_imports_another_fault_types_module() -> None:
    """One fault type = one file: a fault type's module shares code through the private modules (chaosml.faults._*) and base,
    never by importing another fault type's module."""
    graph = grimp.build_graph("chaosml", cache_dir=None, exclude_type_checking_imports=True)
    fault_types = {m for m in graph.find_children("chaosml.faults") if not m.rsplit(".", 1)[1].startswith("_") and m != "chaosml.faults.base"}
    found = sorted(f"{m} imports {i}" for m in fault_types for i in graph.find_modules_directly_imported_by(m) if i in fault_types)
    assert found == []
