"""`chaosml cluster up|down|status`: a kind cluster with the reference stack; plus the image's Redis and seeding entrypoints.

- ``up``: ``kind create cluster`` from ``kind-config.yaml`` (unless it exists), build the stack image
  from ``manifests/Dockerfile`` with the Docker SDK, ``kind load docker-image``, apply ``manifests/``
  (server-side apply), wait until every Deployment is available and the ``seed-features`` Job
  succeeded (bounded); the API calls are in :mod:`chaosml.targets.kubernetes.cluster`, the only
  package that imports the kubernetes client. The files come from the checkout, or from the package
  data of a wheel install (:mod:`chaosml.resources`); ``--manifests DIR`` applies the user's own
  manifests and ``--kind-config FILE`` creates the cluster from the user's config
  (:func:`cluster_files` resolves them: a dry run of what ``up`` would use);
- ``status``: nodes, Deployments and their ready counts;
- ``down``: ``kind delete cluster``.

The kind CLI runs as a subprocess with an argv list (never a shell). A missing docker engine, kind
binary or cluster is a :class:`~chaosml.errors.TargetError` (exit 3) naming what is missing.

``python -m chaosml.cluster redis|seed`` are the container entrypoints of manifests/stack.yaml and
manifests/seed-job.yaml (they need only redis and the bundled dataset, not kubernetes).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chaosml.docker_engine import docker_client
from chaosml.errors import EXIT_OK, InvalidInputError, TargetError
from chaosml.resources import checkout_root, shipped
from chaosml.targets.kubernetes.cluster import (
    apply_manifests,
    status_lines,
    wait_available,
    wait_job,
)
from chaosml.targets.kubernetes.context import kubeconfig_facts, new_api_client
from chaosml.targets.kubernetes.kindconfig import REPO_KIND_CONFIG

MANIFESTS_DIR = shipped("manifests")  # the checkout's, else the package copy
KIND_CONFIG = REPO_KIND_CONFIG
DOCKERFILE = "manifests/Dockerfile"  # relative to the build context
CRONJOB_TEMPLATE = "gameday-cronjob.yaml"  # a template for `gameday schedule`, never applied
IMAGE = "chaosml/reference-stack:dev"
TOXIPROXY_IMAGE = "ghcr.io/shopify/toxiproxy:2.9.0"
NAMESPACE = "chaosml"
#: applied by `cluster up`, in this order (gameday-cronjob.yaml is a template for `gameday schedule`)
STACK_MANIFESTS = ("namespace.yaml", "rbac.yaml", "stack.yaml", "seed-job.yaml")
SEED_JOB = "seed-features"
KIND_TIMEOUT_S = 600


# ------------------------------------------------------------------------------ manifests
def load_manifests(names: Iterable[str] | None = None, directory: Path = MANIFESTS_DIR) -> list[dict[str, Any]]:
    """Every document of the named manifest files (default: the stack's), parsed safely."""
    return load_files(directory / name for name in (names or STACK_MANIFESTS))


def load_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every non-empty document of the manifest files, in order, parsed safely."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                docs.append(doc)
    return docs


def in_namespace(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A copy of a manifest moved to another namespace (metadata and RoleBinding subjects)."""
    out = copy.deepcopy(doc)
    if out.get("kind") == "Namespace":
        out["metadata"]["name"] = namespace
        return out
    out.setdefault("metadata", {})["namespace"] = namespace
    for s in out.get("subjects") or []:
        if s.get("kind") == "ServiceAccount":
            s["namespace"] = namespace
    return out


@dataclass(frozen=True)
class ClusterFiles:
    """What ``cluster up`` uses: the manifest files applied (in order), the kind config and the image's Dockerfile."""

    manifests: tuple[Path, ...]
    kind_config: Path
    dockerfile: Path
    checkout: Path | None  # the build context; None: assembled from the installed package (a wheel install)


def cluster_files(manifests: Path | None = None, kind_config: Path | None = None) -> ClusterFiles:
    """Resolve ``cluster up``'s files without touching docker or a cluster; a missing user file is InvalidInputError (exit 4).

    ``manifests``: a directory of the user's own manifests: the reference stack's file names first in
    their order (namespace, rbac, stack, seed job), then every other ``*.yaml``/``*.yml`` by name.
    """
    if manifests is None:
        files = tuple(MANIFESTS_DIR / n for n in STACK_MANIFESTS)
    else:
        if not manifests.is_dir():
            raise InvalidInputError(f"--manifests {manifests}: no such directory")
        found = {p.name: p for p in sorted([*manifests.glob("*.yaml"), *manifests.glob("*.yml")]) if p.name != CRONJOB_TEMPLATE}
        files = tuple([found.pop(n) for n in STACK_MANIFESTS if n in found] + list(found.values()))
        if not files:
            raise InvalidInputError(f"--manifests {manifests}: no *.yaml manifests in it")
    config = kind_config if kind_config is not None else KIND_CONFIG
    if not config.is_file():
        raise InvalidInputError(f"kind config {config}: no such file")
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise InvalidInputError(f"manifest {missing[0]}: no such file")
    return ClusterFiles(manifests=files, kind_config=config, dockerfile=shipped(DOCKERFILE), checkout=checkout_root())


@contextmanager
def build_context(files: ClusterFiles) -> Iterator[Path]:
    """The image's build context: the checkout, or (a wheel install) a temporary copy of the installed package and its data."""
    if files.checkout is not None:
        yield files.checkout
        return
    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="chaosml-image-") as tmp:
        root = Path(tmp)
        shutil.copytree(package, root / "chaosml", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy2(shipped("pyproject.toml"), root / "pyproject.toml")
        (root / "README.md").write_text("chaosml: built from an installed wheel\n", encoding="utf-8")
        shutil.copytree(shipped("experiments"), root / "experiments")
        (root / "manifests").mkdir()
        shutil.copy2(files.dockerfile, root / DOCKERFILE)
        yield root


def _namespaces(docs: list[dict[str, Any]]) -> list[str]:
    """The namespaces the documents create or live in (where ``up`` waits for Deployments)."""
    seen: dict[str, None] = {}
    for d in docs:
        meta = d.get("metadata") or {}
        ns = meta.get("name") if d.get("kind") == "Namespace" else meta.get("namespace")
        if ns:
            seen.setdefault(str(ns), None)
    return list(seen) or ["default"]


# ------------------------------------------------------------------------------ prerequisites
def require_kind() -> str:
    path = shutil.which("kind")
    if path is None:
        raise TargetError(
            "kind is not installed (no `kind` on PATH): install it from https://kind.sigs.k8s.io/docs/user/quick-start/ "
            "(a single binary), then run `chaosml cluster up` again"
        )
    return path


def require_docker() -> Any:
    return docker_client(
        120,
        "the docker Python SDK is missing: pip install 'chaosml[kubernetes]'",
        "docker is not running or not reachable (kind runs its nodes as Docker containers)",
    )


def kind(*args: str, timeout: float = KIND_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [require_kind(), *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise TargetError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from e
    if check and proc.returncode != 0:
        raise TargetError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc


def kind_clusters() -> list[str]:
    return [line.strip() for line in kind("get", "clusters").stdout.splitlines() if line.strip()]


def require_kubernetes() -> None:
    """The kubernetes Python client, or a TargetError that says which extra to install.

    Found, not imported: only chaosml.targets.kubernetes imports the client (checked by the tests).
    """
    try:
        found = importlib.util.find_spec("kubernetes") is not None
    except (ImportError, ValueError):  # hidden or half-installed
        found = False
    if not found:
        raise TargetError("the kubernetes Python client is missing: pip install 'chaosml[kubernetes]'")


def kube_client(name: str) -> Any:
    facts = kubeconfig_facts(None, f"kind-{name}")
    return new_api_client(facts["kubeconfig"], f"kind-{name}")


# ------------------------------------------------------------------------------ commands
def up(name: str, timeout_s: float, build: bool = True, out: Any = None, files: ClusterFiles | None = None) -> None:
    out = out if out is not None else sys.stdout
    files = files if files is not None else cluster_files()
    require_kubernetes()
    docker_client = require_docker()
    require_kind()
    if name in kind_clusters():
        print(f"kind cluster {name!r} exists", file=out)
    else:
        print(f"creating kind cluster {name!r} from {files.kind_config} ...", file=out)
        kind("create", "cluster", "--name", name, "--config", str(files.kind_config), "--wait", "180s")
    if build:
        print(f"building {IMAGE} from {files.dockerfile} ...", file=out)
        try:
            with build_context(files) as context:
                docker_client.images.build(path=str(context), dockerfile=DOCKERFILE, tag=IMAGE, rm=True)
        except Exception as e:
            raise TargetError(f"building {IMAGE} failed: {e}") from e
    print(f"loading {IMAGE} into the kind nodes ...", file=out)
    kind("load", "docker-image", IMAGE, "--name", name)
    try:  # Toxiproxy from the host's docker when it can be pulled there; else the nodes pull it
        docker_client.images.pull(TOXIPROXY_IMAGE)
        kind("load", "docker-image", TOXIPROXY_IMAGE, "--name", name)
    except Exception as e:  # noqa: BLE001 - the nodes pull it themselves
        print(f"note: {TOXIPROXY_IMAGE} not preloaded ({e}); the nodes pull it", file=out)
    api = kube_client(name)
    try:
        docs = load_files(files.manifests)
        applied = apply_manifests(api, docs)
        print(f"applied {len(applied)} objects: {', '.join(applied)}", file=out)
        for namespace in _namespaces(docs):
            counts = wait_available(api, namespace, timeout_s)
            print(f"deployments available in {namespace}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=out)
        seed_jobs = [d for d in docs if d.get("kind") == "Job" and (d.get("metadata") or {}).get("name") == SEED_JOB]
        for job in seed_jobs:
            wait_job(api, job["metadata"].get("namespace") or NAMESPACE, SEED_JOB, timeout_s)
            print("feature store seeded (job seed-features succeeded)", file=out)
    finally:
        api.close()
    print(f"ready: context kind-{name}, namespace {NAMESPACE}; entry http://127.0.0.1:30081 (gateway via Toxiproxy)", file=out)


def status(name: str, out: Any = None) -> None:
    out = out if out is not None else sys.stdout
    require_kubernetes()
    if shutil.which("kind") and name not in kind_clusters():
        raise TargetError(f"no kind cluster {name!r}: `chaosml cluster up` creates it")
    api = kube_client(name)
    try:
        for line in status_lines(api, f"kind-{name}", NAMESPACE):
            print(line, file=out)
    finally:
        api.close()


def down(name: str, out: Any = None) -> None:
    out = out if out is not None else sys.stdout
    if name not in kind_clusters():
        print(f"no kind cluster {name!r}: nothing to delete", file=out)
        return
    kind("delete", "cluster", "--name", name)
    print(f"deleted kind cluster {name!r}", file=out)


def command(sub: str, args: argparse.Namespace) -> int:
    """Entry of `chaosml cluster`; errors are TargetError (exit 3)."""
    if sub == "up":
        files = cluster_files(Path(args.manifests) if args.manifests else None, Path(args.kind_config) if args.kind_config else None)
        up(args.name, args.timeout, build=not args.no_build, files=files)
    elif sub == "down":
        down(args.name)
    else:
        status(args.name)
    return EXIT_OK


# ------------------------------------------------------------------------------ container entrypoints
def seed(redis_url: str, wait_s: float = 60.0, dataset: str = "breast_cancer", seed_value: int = 0) -> int:
    """Seed the feature store at ``redis_url``, waiting for it to answer (bounded); returns the rows written."""
    import redis

    from chaosml.stack import featurestore
    from chaosml.workload.builtin_dataset import load_dataset

    deadline = time.monotonic() + wait_s
    while True:
        try:
            r = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
            r.ping()
            r.close()
            break
        except (redis.exceptions.RedisError, OSError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    return featurestore.seed(redis_url, load_dataset(dataset, seed_value))


def run_redis(port: int, do_seed: bool, marker: Path = Path("/tmp/seeded")) -> int:
    """redis-server as a child (no persistence), seeded, then ``marker`` is written (the readiness probe)."""
    from chaosml.stack.featurestore import redis_server_binary

    marker.unlink(missing_ok=True)
    proc = subprocess.Popen([str(redis_server_binary()), "--port", str(port), "--bind", "0.0.0.0", "--protected-mode", "no",
                             "--save", "", "--appendonly", "no", "--daemonize", "no"])

    def forward(signum: int, _frame: Any) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if do_seed:
        rows = seed(f"redis://127.0.0.1:{port}/0", wait_s=60)
        print(f"seeded {rows} rows", flush=True)
    marker.write_text("ok")
    return proc.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaosml.cluster", description="container entrypoints of the reference stack")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("redis", help="redis-server that seeds itself before it is Ready")
    r.add_argument("--port", type=int, default=6379)
    r.add_argument("--seed", action="store_true")
    s = sub.add_parser("seed", help="seed the feature store")
    s.add_argument("--redis-url", required=True)
    s.add_argument("--wait", type=float, default=60.0)
    a = ap.parse_args(argv)
    if a.cmd == "redis":
        return run_redis(a.port, a.seed)
    rows = seed(a.redis_url, wait_s=a.wait)
    print(f"seeded {rows} rows into {a.redis_url}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
