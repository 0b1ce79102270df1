"""The ``chaosml bench`` command's arguments and its hand-off to the benchmark suite of the source tree; called by cli.py.

The suite (``benchmarks/``, also ``python -m benchmarks``) is not part of the installed package: it
needs a checkout. :func:`run_from_args` imports it from the source tree this ``chaosml`` was
imported from, else from a checkout in the current directory, and otherwise raises
:class:`~chaosml.errors.ChaosmlError` saying so (exit 3). Only the stdlib is imported here, so
building the ``chaosml`` parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from chaosml.errors import ChaosmlError

SUITE_PACKAGE = "benchmarks"


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add the bench options to ``parser`` (the ``chaosml bench`` subparser), or make the ``python -m benchmarks`` parser."""
    p = parser or argparse.ArgumentParser(
        prog="python -m benchmarks", description="The benchmark suite: does the harness distort what it measures?"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and short runs (smoke test, about 2 minutes)")
    p.add_argument("--only", action="append", metavar="SECTION",
                   help="run only this section (repeatable): load, proxy, wrk, timing, mttr, analysis, e2e, scaleout")
    p.add_argument("--out-dir", default="benchmarks/results", help="where <timestamp>.json goes (default benchmarks/results)")
    p.add_argument("--keep-workdir", action="store_true", help="keep the temporary run directories")
    return p


def _source_tree() -> Path | None:
    """The checkout holding ``benchmarks/`` beside ``chaosml/``: this package's own, else the current directory."""
    for root in (Path(__file__).resolve().parents[1], Path.cwd()):
        if (root / SUITE_PACKAGE / "__init__.py").is_file() and (root / "chaosml" / "__init__.py").is_file():
            return root
    return None


def run_from_args(args: argparse.Namespace) -> int:
    """Run the suite with the parsed options; its exit code (0 every section ran, 3 a section failed)."""
    if SUITE_PACKAGE not in sys.modules:
        root = _source_tree()
        if root is None:
            raise ChaosmlError(
                "bench: the benchmark suite ships with the source tree (benchmarks/), not with the installed "
                "package; run `chaosml bench` or `python -m benchmarks` from a checkout of chaosml"
            )
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    suite = importlib.import_module(SUITE_PACKAGE)
    return int(suite.run_from_args(args))
