"""Files chaosml ships as package data: starter experiments for ``chaosml init``, and copies of the checkout's manifests, kind config and experiments.

Used by ``chaosml init``, ``chaosml cluster up``, ``gameday schedule`` and the kubernetes target's
kind-config lookup. In a source checkout the top-level files (``manifests/``, ``kind-config.yaml``,
``experiments/``, ``pyproject.toml``) are the source of truth and are used directly; installed from a
wheel there is no checkout, and the copies under ``bundled/`` (package data, read with
:mod:`importlib.resources`) are used instead. The build hook (chaosml.resources.buildhook) writes the copies into the
wheel; the repository holds only the top-level files.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

#: ``chaosml init --kind``: a commented starter experiment each (``starters/<kind>.yaml``).
STARTER_KINDS: tuple[str, ...] = ("reference", "local-command", "v2", "kubernetes")
#: What is bundled, as globs relative to the checkout root (the copies keep the same relative paths).
BUNDLED_GLOBS: tuple[str, ...] = (
    "manifests/*.yaml", "manifests/Dockerfile", "manifests/examples/*/*", "kind-config.yaml", "pyproject.toml",
    "experiments/*.yaml", "experiments/gamedays/*.yaml",
)
#: The checkout root, when chaosml runs from one (the package's parent holds pyproject.toml and manifests/).
_CHECKOUT = Path(__file__).resolve().parents[2]


def package_dir() -> Path:
    """This package's directory on disk (wheels install unpacked)."""
    return Path(str(files(__name__)))


def checkout_root() -> Path | None:
    """The source checkout chaosml runs from, or None when installed (e.g. from a wheel)."""
    root = _CHECKOUT
    return root if (root / "pyproject.toml").is_file() and (root / "manifests").is_dir() and (root / "chaosml").is_dir() else None


def shipped(relpath: str) -> Path:
    """A bundled file or directory (e.g. ``manifests``, ``kind-config.yaml``): the checkout's, else the package copy."""
    root = checkout_root()
    return (root if root is not None else package_dir() / "bundled") / relpath


def starter_text(kind: str, path: str) -> str:
    """The commented starter experiment of ``kind``, its comments naming the file it is written to."""
    if kind not in STARTER_KINDS:
        raise ValueError(f"unknown starter {kind!r}; choose from {', '.join(STARTER_KINDS)}")
    return (package_dir() / "starters" / f"{kind}.yaml").read_text(encoding="utf-8").replace("{file}", path)


def bundle_files(root: Path) -> dict[str, Path]:
    """relative path -> file under ``root`` for every file :data:`BUNDLED_GLOBS` matches."""
    return {p.relative_to(root).as_posix(): p for pattern in BUNDLED_GLOBS for p in sorted(root.glob(pattern)) if p.is_file()}


def write_bundle(dest: Path, overwrite: bool = False) -> list[Path]:
    """Write the bundled manifests, kind config and experiments under ``dest`` for editing; refuse to overwrite."""
    source = checkout_root() or package_dir() / "bundled"
    items = {rel: src for rel, src in bundle_files(source).items() if rel != "pyproject.toml"}
    clashes = [dest / rel for rel in items if (dest / rel).exists()]
    if clashes and not overwrite:
        raise FileExistsError(f"{clashes[0]} exists" + (f" (and {len(clashes) - 1} more)" if len(clashes) > 1 else ""))
    for rel, src in items.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return [dest / rel for rel in items]
