"""container faults on containerd (``containerd://`` IDs, kind): ctr through the node's exec prefix against a real
containerd (its own socket, tmp dirs), the owner check from the CRI labels, and the runtime choice by ID scheme."""

from __future__ import annotations

import pytest
from containerd_node import Containerd, containerd  # noqa: F401 - the fixture

from chaosml.errors import TargetError
from chaosml.targets.capabilities import PodContainer
from chaosml.targets.kubernetes import runtime

NS = "chaosml"


def _ref(cid: str, pod: str, prefix: list[str], node: str | None = "node-1") -> PodContainer:
    return PodContainer(pod=pod, node=node, container="main", container_id=f"containerd://{cid}", restarts=0, ready=True,
                        docker_host=None, node_exec=tuple(prefix))


# --- the path: chosen by the ID scheme, said in words, refused for other runtimes (no containerd needed) ----------


def test_the_id_scheme_chooses_the_runtime_path_and_says_it() -> None:
    kind = PodContainer("model-0", "kind-worker", "model", "containerd://abc", 0, True, None)
    assert runtime.path(kind) == "containerd through `docker exec kind-worker ctr -n k8s.io`"
    remote = PodContainer("model-0", "kind-worker", "model", "containerd://abc", 0, True, "ssh://me@host")
    assert runtime.path(remote) == "containerd through `docker -H ssh://me@host exec kind-worker ctr -n k8s.io`"
    ssh = PodContainer("model-0", "n1", "model", "containerd://abc", 0, True, None, ("ssh", "node-1"))
    assert runtime.path(ssh) == "containerd through `ssh node-1 ctr -n k8s.io`"
    docker = PodContainer("model-0", "n1", "model", "docker://abc", 0, True, "unix:///run/n1/docker.sock")
    assert runtime.path(docker) == "the Docker engine unix:///run/n1/docker.sock"


def test_a_runtime_no_path_reaches_is_refused_with_its_name() -> None:
    crio = PodContainer("model-0", "n1", "model", "cri-o://abc", 0, True, None)
    with pytest.raises(TargetError, match=r"pod model-0: its container runs on cri-o \(cri-o://abc\).*not supported"):
        runtime.path(crio)
    with pytest.raises(TargetError, match="runs on cri-o"):
        runtime.kill(crio, NS, "SIGKILL")


def test_a_containerd_pod_on_no_node_and_no_exec_is_refused() -> None:
    with pytest.raises(TargetError, match="no node"):
        runtime.path(_ref("abc", "model-0", [], node=None))


def test_an_exec_prefix_that_cannot_run_says_how_to_set_it() -> None:
    with pytest.raises(TargetError, match=r"cannot run '/nonexistent/chaosml-ssh'.*nodes\.<node>\.exec"):
        runtime.pause(_ref("abc", "model-0", ["/nonexistent/chaosml-ssh"]), NS)


# --- a real containerd ---------------------------------------------------------------------------------------------


def test_sigkill_stops_the_task_of_the_pods_container(containerd: Containerd) -> None:  # noqa: F811
    cid = containerd.run("k1", "model-0", NS)
    assert containerd.wait_status(cid, "RUNNING") == "RUNNING"
    runtime.kill(_ref(cid, "model-0", containerd.prefix), NS, "SIGKILL")
    assert containerd.wait_status(cid, "STOPPED") == "STOPPED"


def test_pause_freezes_the_task_and_unpause_resumes_it_idempotently(containerd: Containerd) -> None:  # noqa: F811
    cid = containerd.run("p1", "model-1", NS)
    ref = _ref(cid, "model-1", containerd.prefix)
    assert runtime.pause(ref, NS) == "paused"
    assert containerd.status(cid) == "PAUSED"
    assert runtime.unpause(ref, NS) == f"container containerd://{cid} of model-1 unpaused"
    assert containerd.status(cid) == "RUNNING"
    assert runtime.unpause(ref, NS) == f"container containerd://{cid} of model-1 is running: nothing to unpause"
    assert containerd.status(cid) == "RUNNING"


def test_a_container_labelled_for_another_pod_is_refused_and_untouched(containerd: Containerd) -> None:  # noqa: F811
    cid = containerd.run("o1", "other-pod", "elsewhere")
    ref = _ref(cid, "model-0", containerd.prefix)
    for act in (lambda: runtime.kill(ref, NS, "SIGKILL"), lambda: runtime.pause(ref, NS), lambda: runtime.unpause(ref, NS)):
        with pytest.raises(TargetError, match=rf"containerd://{cid} belongs to elsewhere/other-pod, not chaosml/model-0: not touched"):
            act()
    assert containerd.status(cid) == "RUNNING"


def test_a_container_containerd_does_not_have_is_missing(containerd: Containerd) -> None:  # noqa: F811
    ref = _ref("gone", "model-0", containerd.prefix)
    assert runtime.kill(ref, NS, "SIGKILL") == "missing"
    assert runtime.pause(ref, NS) == "missing"
    assert runtime.unpause(ref, NS) == "container containerd://gone of model-0 is gone: nothing to unpause"
