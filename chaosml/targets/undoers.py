"""Offline undo of a target from its ledger record, by platform: filled by the target modules, used by `chaosml rollback`.

A target module registers its undo with ``@target_undoer("platform")``; the ledger looks one up
with :func:`target_undoer_for` only when it rolls back, so importing the ledger imports no target
(the same way fault undoers are found through :mod:`chaosml.faults.base`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

#: undo(record) -> a one-line summary; raises when something is left
TargetUndo = Callable[[dict[str, Any]], str]

#: target platform -> its offline undo
TARGET_UNDOERS: dict[str, TargetUndo] = {}

#: the modules whose import registers the built-in targets' undoers
BUILTIN_TARGET_MODULES = ("chaosml.targets.local", "chaosml.targets.kubernetes.undo")


def target_undoer(platform: str) -> Callable[[TargetUndo], TargetUndo]:
    """Register the offline undo of the targets of one platform."""

    def register(fn: TargetUndo) -> TargetUndo:
        if TARGET_UNDOERS.get(platform, fn) is not fn:
            raise RuntimeError(f"two undoers registered for target platform {platform!r}")
        TARGET_UNDOERS[platform] = fn
        return fn

    return register


def target_undoer_for(platform: str) -> TargetUndo | None:
    """The offline undo of a target platform (importing the built-in target modules first)."""
    for name in BUILTIN_TARGET_MODULES:
        importlib.import_module(name)
    return TARGET_UNDOERS.get(platform)
