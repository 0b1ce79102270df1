"""kind's extraPortMappings: which 127.0.0.1 port reaches a NodePort; used by the kubernetes target's discovery and `chaosml cluster`."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from chaosml.resources import shipped

#: the kind config whose extraPortMappings map NodePorts to 127.0.0.1 (default: the repo's)
KIND_CONFIG_ENV = "CHAOSML_KIND_CONFIG"
#: chaosml's kind config (``chaosml cluster up`` creates the cluster from it): the checkout's, else the package copy
REPO_KIND_CONFIG = shipped("kind-config.yaml")


def kind_port_map(kind_config: str | Path | None) -> dict[int, tuple[str, int]]:
    """containerPort (= NodePort) -> (listenAddress, hostPort) from a kind config's extraPortMappings."""
    if kind_config is None or not Path(kind_config).exists():
        return {}
    data = yaml.safe_load(Path(kind_config).read_text()) or {}
    out: dict[int, tuple[str, int]] = {}
    for node in data.get("nodes") or []:
        for m in node.get("extraPortMappings") or []:
            out[int(m["containerPort"])] = (str(m.get("listenAddress") or "127.0.0.1"), int(m.get("hostPort") or m["containerPort"]))
    return out


def default_kind_config() -> Path | None:
    """``$CHAOSML_KIND_CONFIG``, else the repository's kind-config.yaml when it exists."""
    env = os.environ.get(KIND_CONFIG_ENV)
    if env:
        return Path(env)
    return REPO_KIND_CONFIG if REPO_KIND_CONFIG.exists() else None


def host_of(kind_config: str | Path | None, node_port: int) -> str:
    """``HOST:PORT`` on this machine that reaches ``node_port`` (its mapping, else 127.0.0.1:node_port)."""
    addr, port = kind_port_map(kind_config).get(node_port, ("127.0.0.1", node_port))
    return f"{'127.0.0.1' if addr in ('0.0.0.0', '') else addr}:{port}"
