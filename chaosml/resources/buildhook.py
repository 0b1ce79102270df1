"""The wheel build's hook (pyproject ``[tool.setuptools] cmdclass``): build_py also copies the bundled checkout files.

The files chaosml.resources.BUNDLED_GLOBS names (manifests/, kind-config.yaml, experiments/,
pyproject.toml) go into chaosml/resources/bundled/ of the build, so the repository keeps one copy.
Imported only by setuptools while building.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parents[2]
# setuptools loads this file by its path, not as a module of an importable chaosml (a clean build
# environment, e.g. the image's `pip install .`, has none): the checkout being built comes first
sys.path.insert(0, str(ROOT))
from chaosml.resources import bundle_files  # noqa: E402


class BuildWithBundle(build_py):
    """build_py, then the bundled copies beside the package's own files."""

    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "chaosml" / "resources" / "bundled"
        shutil.rmtree(dest, ignore_errors=True)
        for rel, src in bundle_files(ROOT).items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
