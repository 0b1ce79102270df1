"""Run only by test_realnode_cleanup.py, in a pytest subprocess: a real cluster with a running pod.

Brings the cluster up (``real_cluster``), runs a pod with volumes (so there are containers, mounts
and cgroups), writes ``$CHAOSML_VICTIM_MARKER``, then returns (normal teardown) or, with
``CHAOSML_VICTIM_HOLD=1``, waits to be SIGKILLed (bounded: 300 s).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from k8s_stack import wait_for
from realnode import STACK_IMAGE, RealCluster


def test_victim(real_cluster: RealCluster) -> None:
    from chaosml.cluster import apply_manifests

    core = real_cluster.core_v1()
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim", "namespace": "default"},
        "spec": {
            "hostNetwork": True, "dnsPolicy": "Default", "terminationGracePeriodSeconds": 30,
            "containers": [{
                "name": "sleeper", "image": STACK_IMAGE, "imagePullPolicy": "Never",
                "args": ["python", "-c",
                         ("import signal, time; signal.signal(signal.SIGTERM, lambda *a: exit(0)); time.sleep(600)")],
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }],
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
        },
    }
    wait_for(lambda: core.read_namespaced_service_account("default", "default"), 30, "default service account",
             interval=0.5)
    apply_manifests(real_cluster.api_client(), [pod])
    wait_for(lambda: (core.read_namespaced_pod("victim", "default").status.container_statuses or [None])[0]
             and core.read_namespaced_pod("victim", "default").status.container_statuses[0].ready, 120, "victim Ready",
             interval=0.5)
    Path(os.environ["CHAOSML_VICTIM_MARKER"]).write_text("up")
    if os.environ.get("CHAOSML_VICTIM_HOLD") == "1":
        time.sleep(300)
