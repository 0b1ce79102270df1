"""Kube contexts: the allowlist, kubeconfig facts, API clients and the pinned cluster; used by the kubernetes target, its undo and `chaosml cluster`.

chaosml acts only on a context matching the experiment's ``allowed_contexts`` (fnmatch, default
``kind-*``); any other context needs ``allow_any_context: true`` in the file AND the same name
confirmed on the command line (``--allow-context NAME``, handed to the target's constructor as
``allow_context``). The context and the API server it names are pinned when the target connects:
:func:`context_drift` says when the kubeconfig no longer agrees.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaosml.errors import TargetError
from chaosml.model.experiment import KubernetesSpec

log = logging.getLogger(__name__)

#: the context name used when running inside a pod (no kubeconfig; add it to allowed_contexts)
IN_CLUSTER_CONTEXT = "in-cluster"
#: the timeout of every API request (seconds)
API_TIMEOUT_S = 10.0


class ContextNotAllowedError(TargetError):
    """The kube context is not in the experiment's allowlist (nothing was touched)."""


def context_allowed(context: str, spec: KubernetesSpec, confirmed: str | None) -> tuple[bool, str]:
    """Whether chaosml may act on ``context``, and why (or why not, with how to allow it)."""
    patterns = list(spec.allowed_contexts)
    for p in patterns:
        if fnmatch.fnmatchcase(context, p):
            return True, f"context {context!r} matches allowed_contexts pattern {p!r}"
    if spec.allow_any_context and confirmed == context:
        return True, f"context {context!r} allowed by allow_any_context and --allow-context {context}"
    why = f"kube context {context!r} is not in allowed_contexts ({', '.join(patterns) or 'none'})"
    if spec.allow_any_context:
        if confirmed:
            how = f"--allow-context {confirmed!r} names another context; pass --allow-context {context}"
        else:
            how = f"allow_any_context is set in the file; confirm it on the command line with --allow-context {context}"
    else:
        how = (
            f"add a matching pattern to target.kubernetes.allowed_contexts, or set allow_any_context: true "
            f"in the experiment AND pass --allow-context {context}"
        )
    return False, f"refusing to touch {why}: {how}"


def kubeconfig_facts(kubeconfig: str | Path | None, context: str | None) -> dict[str, Any]:
    """``{"context", "current_context", "server", "namespace", "kubeconfig"}`` read from a kubeconfig file.

    ``context`` None means the file's current context. In a pod without a kubeconfig, the in-cluster
    service account is used and the context is called ``in-cluster``.
    """
    path = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
        Path.home() / ".kube" / "config"
    )
    if not Path(path).exists():
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig:
            host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            return {"context": IN_CLUSTER_CONTEXT, "current_context": IN_CLUSTER_CONTEXT,
                    "server": f"https://{host}:{port}", "namespace": None, "kubeconfig": None}
        raise TargetError(
            f"no kubeconfig at {path}: is the cluster up? (`chaosml cluster up` creates kind-chaosml; "
            "or set KUBECONFIG)"
        )
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise TargetError(f"cannot read kubeconfig {path}: {e}") from e
    current = data.get("current-context")
    name = context or current
    if not name:
        raise TargetError(f"kubeconfig {path} has no current-context; name one in target.kubernetes.context")
    contexts = {c.get("name"): c.get("context") or {} for c in data.get("contexts") or []}
    if name not in contexts:
        raise TargetError(f"context {name!r} is not in kubeconfig {path}; contexts: {', '.join(sorted(map(str, contexts)))}")
    ctx = contexts[name]
    clusters = {c.get("name"): c.get("cluster") or {} for c in data.get("clusters") or []}
    server = (clusters.get(ctx.get("cluster")) or {}).get("server")
    return {"context": name, "current_context": current, "server": server, "namespace": ctx.get("namespace"),
            "kubeconfig": path}


def new_api_client(kubeconfig: str | None, context: str) -> Any:
    """A ``kubernetes.client.ApiClient`` for one context (or the in-cluster service account)."""
    from kubernetes import client, config

    if context == IN_CLUSTER_CONTEXT and not kubeconfig:
        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except Exception as e:
        raise TargetError(f"cannot load kube context {context!r} from {kubeconfig}: {e}") from e


def context_drift(kubeconfig: str | None, spec_context: str | None, pinned: dict[str, Any]) -> str:
    """Why the kubeconfig no longer names the pinned cluster (``pinned`` are its :func:`kubeconfig_facts`), or ""."""
    try:
        now = kubeconfig_facts(kubeconfig, spec_context)
    except TargetError as e:
        return f"the kubeconfig became unreadable during the run: {e}"
    if spec_context is None and now["context"] != pinned["context"]:
        return f"the kubeconfig's current context changed from {pinned['context']!r} to {now['context']!r} during the run"
    if now["server"] != pinned["server"]:
        return f"context {pinned['context']!r} now points at {now['server']}, not {pinned['server']}"
    return ""


@dataclass
class PinnedCluster:
    """The pinned connection: one API client per thread (urllib3 pools are not shared across watches)."""

    kubeconfig: str | None
    context: str
    server: str | None
    clients: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new(self) -> Any:
        c = new_api_client(self.kubeconfig, self.context)
        with self.lock:
            self.clients.append(c)
        return c

    def close(self) -> None:
        with self.lock:
            clients, self.clients = self.clients, []
        for c in clients:
            try:
                c.close()
            except Exception:
                log.debug("closing an api client failed", exc_info=True)
