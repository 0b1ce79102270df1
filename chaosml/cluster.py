"""`chaosml cluster up|down|status`: a kind cluster with the reference stack; plus the image's Redis and seeding entrypoints.

- ``up``: ``kind create cluster`` from ``kind-config.yaml`` (unless it exists), build the stack image
  from ``manifests/Dockerfile`` with the Docker SDK, ``kind load docker-image``, apply ``manifests/``
  (server-side apply), wait until every Deployment is available and the ``seed-features`` Job
  succeeded (bounded); the API calls are in :mod:`chaosml.targets.kubernetes.cluster`, the only
  package that imports the kubernetes client;
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
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from chaosml.docker_engine import docker_client
from chaosml.errors import EXIT_OK, TargetError
from chaosml.targets.kubernetes.cluster import (
    apply_manifests,
    status_lines,
    wait_available,
    wait_job,
)
from chaosml.targets.kubernetes.context import kubeconfig_facts, new_api_client
from chaosml.targets.kubernetes.kindconfig import REPO_KIND_CONFIG

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFESTS_DIR = REPO_ROOT / "manifests"
KIND_CONFIG = REPO_KIND_CONFIG
DOCKERFILE = "manifests/Dockerfile"
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
    docs: list[dict[str, Any]] = []
    for name in names or STACK_MANIFESTS:
        for doc in yaml.safe_load_all((directory / name).read_text(encoding="utf-8")):
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
def up(name: str, timeout_s: float, build: bool = True, out: Any = None) -> None:
    out = out if out is not None else sys.stdout
    require_kubernetes()
    docker_client = require_docker()
    require_kind()
    if name in kind_clusters():
        print(f"kind cluster {name!r} exists", file=out)
    else:
        print(f"creating kind cluster {name!r} from {KIND_CONFIG} ...", file=out)
        kind("create", "cluster", "--name", name, "--config", str(KIND_CONFIG), "--wait", "180s")
    if build:
        print(f"building {IMAGE} from {DOCKERFILE} ...", file=out)
        try:
            docker_client.images.build(path=str(REPO_ROOT), dockerfile=DOCKERFILE, tag=IMAGE, rm=True)
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
        applied = apply_manifests(api, load_manifests())
        print(f"applied {len(applied)} objects: {', '.join(applied)}", file=out)
        counts = wait_available(api, NAMESPACE, timeout_s)
        print("deployments available: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), file=out)
        wait_job(api, NAMESPACE, SEED_JOB, timeout_s)
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
        up(args.name, args.timeout, build=not args.no_build)
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
