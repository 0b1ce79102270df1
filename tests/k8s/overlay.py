"""The loopback overlay of ``manifests/``: the reference stack for the real-node cluster (realnode.py).

``manifests/`` stay the kind manifests users apply. On the real-node cluster no pod network may be
used (traffic only to 127.0.0.0/8), so this generated variant changes, per Deployment/Job pod:

- ``hostNetwork: true``, ``dnsPolicy: Default``, ``enableServiceLinks: false``, and ``POD_IP``
  from the downward API (127.0.0.1 on node 1, 127.0.0.2 on node 2);
- ports: every app port moves to a distinct 28xxx port (below the ephemeral range, so no test's
  free port collides); with hostNetwork a containerPort is a hostPort, so the scheduler puts one
  model replica per node. The model-canary Deployment (model-rollout) listens on its own port, so a
  canary pod runs next to a primary one on the same node; the model Service's targetPort is the port
  name ``http``, which each pod resolves to its own. Apps bind ``$(POD_IP)`` (Redis binds 0.0.0.0: its entrypoint does);
- addresses: no Service DNS or ClusterIP. Hops go to 127.0.0.1:<port> or to a NodePort (kube-proxy
  on 127.0.0.1): the proxy's "model" link reaches the model replicas through the model Service's
  NodePort, so kube-proxy spreads it over the nodes;
- NodePorts: 32xxx numbers no other test uses (kube-proxy's iptables catch every 127.0.0.1:<nodePort>);
- the fault proxy: chaosml's own Toxiproxy-compatible proxy (``python -m chaosml.proxy``) from the
  project image instead of ``ghcr.io/shopify/toxiproxy`` (no registry here), same API, same
  ConfigMap format;
- rolling updates replace a pod before starting its successor (``maxSurge: 0, maxUnavailable: 1``):
  a hostNetwork pod holds its ports on the node, so with the default surge the new pod stays Pending
  beside the old one on a single node and the rollout never completes (the old pod keeps serving,
  but every wait for the rollout times out);
- redis, the proxy and the gateway are pinned to node 1 (``kubernetes.io/hostname: 127.0.0.1``), so
  a failed second node takes only model replicas.

:func:`loopback_byo_kserve` does the same for the bring-your-own example
(``manifests/examples/byo-kserve/stack.yaml``): the KServe server on its own 28090 port (KServe's
ModelServer has no host option: it binds 0.0.0.0, on hostNetwork the node's; traffic still goes only to
127.0.0.x), one replica per node (a hostPort), the owner's Toxiproxy replaced by chaosml's proxy with
the "model-ingress" link to the KServe NodePort, and NodePorts 3219x/32475.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaosml.cluster import MANIFESTS_DIR, STACK_MANIFESTS, in_namespace, load_files, load_manifests

NODE1 = "127.0.0.1"
PORTS = {"redis": 28379, "model": 28080, "model-canary": 28082, "gateway": 28081, "proxy-api": 28474,
         "link-gateway": 28000, "link-model": 28880, "link-feature-store": 28016}
NODE_PORTS = {"redis": 32380, "model": 32088, "gateway": 32080, "proxy-api": 32474,
              "link-gateway": 32081, "link-model": 32180, "link-feature-store": 32379}
PROXY_LINKS = [
    {"name": "gateway", "listen": f"{NODE1}:{PORTS['link-gateway']}", "upstream": f"{NODE1}:{PORTS['gateway']}"},
    {"name": "model", "listen": f"{NODE1}:{PORTS['link-model']}", "upstream": f"{NODE1}:{NODE_PORTS['model']}"},
    {"name": "feature-store", "listen": f"{NODE1}:{PORTS['link-feature-store']}",
     "upstream": f"{NODE1}:{PORTS['redis']}"},
]
POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _args(name: str, manifest: list[str]) -> list[str]:
    """Each container's arguments on loopback (what manifests/stack.yaml runs, re-addressed; the model canary keeps
    its manifest's ``--variant``)."""
    features = f"redis://{NODE1}:{PORTS['link-feature-store']}/0"

    def model(port: int) -> list[str]:
        return ["python", "-m", "chaosml.stack.service", "--host", "$(POD_IP)", "--port", str(port),
                "--redis-url", features, "--artifact", "/opt/chaosml/artifact", "--profile", "hardened",
                "--name", "$(POD_NAME)"]

    variant = manifest[manifest.index("--variant"):][:2] if "--variant" in manifest else []
    return {
        "redis": ["python", "-m", "chaosml.cluster", "redis", "--port", str(PORTS["redis"]), "--seed"],
        "model": model(PORTS["model"]),
        "model-canary": model(PORTS["model-canary"]) + variant,
        "gateway": ["python", "-m", "chaosml.stack.gateway", "--host", "$(POD_IP)", "--port", str(PORTS["gateway"]),
                    "--backends", f"http://{NODE1}:{PORTS['link-model']}", "--artifact", "/opt/chaosml/artifact",
                    "--profile", "hardened"],
        "toxiproxy": ["python", "-m", "chaosml.proxy", "--host", "$(POD_IP)", "--port", str(PORTS["proxy-api"]),
                      "--config", "/config/toxiproxy.json"],
        "seed-features": ["python", "-m", "chaosml.cluster", "seed", "--redis-url",
                          f"redis://{NODE1}:{PORTS['redis']}/0", "--wait", "120"],
    }[name]


# container port name -> overlay port key, per workload
_CONTAINER_PORTS = {
    "redis": {"redis": "redis"},
    "model": {"http": "model"},
    "model-canary": {"http": "model-canary"},
    "gateway": {"http": "gateway"},
    "toxiproxy": {"api": "proxy-api", "gateway-link": "link-gateway", "model-link": "link-model",
                  "redis-link": "link-feature-store"},
}
# Service port name -> overlay port key
_SERVICE_PORTS = {
    "redis": {"redis": "redis"},
    "model": {"http": "model"},
    "gateway": {"http": "gateway"},
    "toxiproxy": {"api": "proxy-api", "gateway-link": "link-gateway", "model-link": "link-model",
                  "redis-link": "link-feature-store"},
}


def _host_network(spec: dict[str, Any]) -> None:
    spec["hostNetwork"] = True
    spec["dnsPolicy"] = "Default"
    spec["enableServiceLinks"] = False


def _replace_then_start(deployment: dict[str, Any]) -> None:
    """A rolling update that stops a pod before starting its successor: the two would need the same host ports."""
    deployment["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}


def _pod_spec(spec: dict[str, Any], workload: str, stack_image: str) -> None:
    _host_network(spec)
    if workload in ("redis", "gateway", "toxiproxy"):
        spec["nodeSelector"] = {"kubernetes.io/hostname": NODE1}
    for c in spec["containers"]:
        c["image"] = stack_image
        c["imagePullPolicy"] = "Never"
        c.pop("command", None)
        c["args"] = _args(workload, list(c.get("args", [])))
        env = [e for e in c.get("env", []) if e["name"] != "POD_IP"]
        c["env"] = [POD_IP_ENV, *env]
        names = _CONTAINER_PORTS.get(workload, {})
        for p in c.get("ports", []):
            p["containerPort"] = PORTS[names[p["name"]]]


def loopback_stack(namespace: str = "chaosml", *, model_replicas: int = 1,
                   stack_image: str = "chaosml/reference-stack:dev") -> list[dict[str, Any]]:
    """The stack's manifests (``STACK_MANIFESTS``) adapted to the real-node cluster, in ``namespace``."""
    out = []
    for doc in load_manifests(STACK_MANIFESTS):
        d = in_namespace(doc, namespace)
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Deployment":
            _pod_spec(d["spec"]["template"]["spec"], name, stack_image)
            _replace_then_start(d)
            if name == "model":
                d["spec"]["replicas"] = model_replicas
        elif kind == "Job":
            _pod_spec(d["spec"]["template"]["spec"], name, stack_image)
        elif kind == "Service":
            d["spec"]["type"] = "NodePort"
            for p in d["spec"]["ports"]:
                key = _SERVICE_PORTS[name][p["name"]]
                p["port"] = p["targetPort"] = PORTS[key]
                p["nodePort"] = NODE_PORTS[key]
                if name == "model":  # by name: the primary's pods listen on 28080, the canary's on 28082
                    p["targetPort"] = p["name"]
        elif kind == "ConfigMap" and name == "toxiproxy-config":
            d["data"]["toxiproxy.json"] = json.dumps(PROXY_LINKS, indent=1)
        out.append(d)
    return out


# ------------------------------------------------------------------ the bring-your-own KServe example
BYO_KSERVE = MANIFESTS_DIR / "examples" / "byo-kserve" / "stack.yaml"
KSERVE_PORTS = {"kserve": 28090, "proxy-api": 28475, "link-ingress": 28890}
KSERVE_NODE_PORTS = {"kserve": 32190, "proxy-api": 32475, "link-ingress": 32191}
# the example's container/Service port names -> overlay port keys
_KSERVE_PORT_NAMES = {"http": "kserve", "api": "proxy-api", "ingress-link": "link-ingress"}


def loopback_byo_kserve(namespace: str = "ml-shop", *, replicas: int = 1, stack_image: str = "chaosml/reference-stack:dev",
                        manifest: Path = BYO_KSERVE) -> list[dict[str, Any]]:
    """The byo-kserve example's manifests adapted to the real-node cluster, in ``namespace``: the KServe
    Deployment (its own image, ``replicas``: at most one per node), its NodePort Service, and chaosml's proxy
    from ``stack_image`` as the owner's Toxiproxy (same API, same ConfigMap format)."""
    links = [{"name": "model-ingress", "listen": f"{NODE1}:{KSERVE_PORTS['link-ingress']}",
              "upstream": f"{NODE1}:{KSERVE_NODE_PORTS['kserve']}"}]
    out = []
    for doc in load_files([manifest]):
        d = in_namespace(doc, namespace)
        kind, name = d["kind"], d["metadata"]["name"]
        if kind == "Deployment":
            spec = d["spec"]["template"]["spec"]
            _host_network(spec)
            _replace_then_start(d)
            (c,) = spec["containers"]
            for p in c.get("ports", []):
                p["containerPort"] = KSERVE_PORTS[_KSERVE_PORT_NAMES[p["name"]]]
            if name == "toxiproxy":
                spec["nodeSelector"] = {"kubernetes.io/hostname": NODE1}
                c.update(image=stack_image, imagePullPolicy="Never", env=[POD_IP_ENV],
                         args=["python", "-m", "chaosml.proxy", "--host", "$(POD_IP)",
                               "--port", str(KSERVE_PORTS["proxy-api"]), "--config", "/config/toxiproxy.json"])
            else:
                d["spec"]["replicas"] = replicas
                c["imagePullPolicy"] = "Never"
                args = list(c["args"])
                args[args.index("--http_port") + 1] = str(KSERVE_PORTS["kserve"])
                c["args"] = args
        elif kind == "Service":
            for p in d["spec"]["ports"]:
                key = _KSERVE_PORT_NAMES[p["name"]]
                p["port"] = p["targetPort"] = KSERVE_PORTS[key]
                p["nodePort"] = KSERVE_NODE_PORTS[key]
        elif kind == "ConfigMap":
            d["data"]["toxiproxy.json"] = json.dumps(links, indent=1)
        out.append(d)
    return out
