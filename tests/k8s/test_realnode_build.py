"""build-node.sh and realnode.py name the same Python base rootfs: the tar's key is the package list's
(node-rootfs-packages.txt, stress-ng among them), so a changed list builds and imports a new base once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import realnode

SCRIPT = Path(__file__).resolve().parent / "build-node.sh"


def _script_rootfs(node_cache: Path) -> dict[str, str]:
    """ROOTFS_INCLUDE and ROOTFS_TAR as build-node.sh computes them (its own lines, run alone)."""
    lines = [ln for ln in SCRIPT.read_text().splitlines() if ln.startswith(("ROOTFS_INCLUDE=", "ROOTFS_KEY=", "ROOTFS_TAR="))]
    assert len(lines) == 3, lines
    script = f'HERE={SCRIPT.parent}; NODE_CACHE={node_cache}\n' + "\n".join(lines) + '\necho "$ROOTFS_INCLUDE"; echo "$ROOTFS_TAR"'
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, check=True,
                         timeout=30).stdout.split()
    return {"include": out[0], "tar": out[1]}


def test_the_script_and_the_fixture_agree_on_the_rootfs() -> None:
    got = _script_rootfs(realnode.NODE_CACHE)
    assert got["tar"] == str(realnode.rootfs_tar())
    assert realnode.rootfs_tar().name == f"debian-python-bookworm-{realnode.rootfs_key()}.tar"
    assert "stress-ng" in got["include"].split(",") and "python3" in got["include"].split(",")
    assert realnode.python_image().endswith(realnode.rootfs_key())
