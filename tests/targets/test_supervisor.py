"""Supervisor with real child processes: readiness, kill, restart after a delay, stop_all leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from chaosml.records import TargetEvent
from chaosml.targets.local import free_ports
from chaosml.targets.supervisor import ProcessSpec, Supervisor

HTTP_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Recorder:
    def __init__(self) -> None:
        self.events: list[TargetEvent] = []
        self.lock = threading.Lock()

    def __call__(self, ev: TargetEvent) -> None:
        with self.lock:
            self.events.append(ev)

    def kinds(self, subject: str) -> list[str]:
        with self.lock:
            return [e.kind for e in self.events if e.subject == subject]

    def first(self, subject: str, kind: str, after: int = 0) -> TargetEvent:
        with self.lock:
            return [e for e in self.events if e.subject == subject and e.kind == kind][after]


def wait_for(cond: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_kill_restart_ready_and_clean_stop(tmp_path: Path) -> None:
    rec = Recorder()
    port = free_ports(1)[0]
    spec = ProcessSpec(
        name="web-0",
        argv=[sys.executable, "-c", HTTP_SERVER, str(port)],
        ready_url=f"http://127.0.0.1:{port}/",
        restart_delay_s=0.5,
        group="web",
    )
    with Supervisor(tmp_path, on_event=rec) as sup:
        pid1 = sup.start(spec)
        assert sup.wait_ready(["web-0"], 10)
        (st,) = sup.status()
        assert (st.name, st.group, st.pid, st.running, st.ready, st.restarts) == ("web-0", "web", pid1, True, True, 0)
        pids = json.loads((tmp_path / "pids.json").read_text())
        assert pids["current"]["web-0"]["pid"] == pid1 and pids["supervisor_pid"] == os.getpid()

        sup.kill("web-0")
        assert wait_for(lambda: "replica_exited" in rec.kinds("web-0"), 5)
        exited = rec.first("web-0", "replica_exited")
        assert exited.detail["returncode"] == -signal.SIGKILL and exited.detail["pid"] == pid1
        assert not sup.status()[0].ready
        assert sup.wait_ready(["web-0"], 10)
        restarted = rec.first("web-0", "replica_started", 1)
        assert restarted.t - exited.t >= 0.45
        (st,) = sup.status()
        assert st.restarts == 1 and st.pid != pid1 and st.ready
        pid2 = st.pid
        assert pid2 is not None
        assert json.loads((tmp_path / "pids.json").read_text())["current"]["web-0"]["pid"] == pid2
        assert rec.kinds("web-0") == [
            "replica_started", "replica_ready", "replica_killed", "replica_exited",
            "replica_unready", "replica_started", "replica_ready",
        ]
        assert "serving" in (tmp_path / "logs" / "web-0.log").read_text()
    assert not alive(pid1) and not alive(pid2)
    assert not sup.status()[0].running
    sup.stop_all()  # idempotent


def test_stop_all_kills_stubborn_children_and_their_groups(tmp_path: Path) -> None:
    # ignores SIGTERM and has a grandchild in its process group
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    sup = Supervisor(tmp_path)
    pid = sup.start(ProcessSpec(name="stubborn", argv=[sys.executable, "-c", stubborn], restart_delay_s=0.1))
    log = tmp_path / "logs" / "stubborn.log"
    assert wait_for(lambda: len(log.read_text().splitlines()) >= 2, 10)
    grandchild = int(log.read_text().splitlines()[-1])
    assert sup.wait_ready(["stubborn"], 5)  # no ready_url: ready once running
    t0 = time.monotonic()
    sup.stop_all(timeout_s=0.5)
    assert time.monotonic() - t0 < 3
    assert not alive(pid)
    assert wait_for(lambda: not alive(grandchild), 2)  # reparented to init, reaped there
    with pytest.raises(RuntimeError):
        sup.start(ProcessSpec(name="late", argv=[sys.executable, "-c", "pass"]))


def test_hold_and_resume_and_unknown_names(tmp_path: Path) -> None:
    rec = Recorder()
    with Supervisor(tmp_path, on_event=rec) as sup:
        sup.start(ProcessSpec(name="s", argv=[sys.executable, "-c", "import time; time.sleep(60)"], restart_delay_s=0.1))
        sup.stop("s", timeout_s=2)
        time.sleep(0.4)
        assert not sup.status()[0].running  # held: not restarted
        pid = sup.resume("s")
        assert pid is not None and sup.status()[0].running
        with pytest.raises(KeyError):
            sup.kill("nope")
        with pytest.raises(KeyError):
            sup.wait_ready(["nope"], 0.1)
        with pytest.raises(ValueError):
            sup.start(ProcessSpec(name="s", argv=[sys.executable, "-c", "pass"]))
    assert rec.kinds("s").count("replica_started") == 2


def test_child_that_exits_by_itself_is_restarted_and_listener_errors_are_contained(tmp_path: Path) -> None:
    seen: list[str] = []

    def bad_listener(ev: TargetEvent) -> None:
        seen.append(ev.kind)
        raise RuntimeError("listener bug")

    with Supervisor(tmp_path, on_event=bad_listener) as sup:
        sup.start(ProcessSpec(name="flaky", argv=[sys.executable, "-c", "raise SystemExit(3)"], restart_delay_s=0.1))
        assert wait_for(lambda: sup.status()[0].restarts >= 2, 5)
    assert seen.count("replica_exited") >= 2


def test_stop_all_kills_a_child_whose_popen_never_returned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt while Popen waits for the exec (after the fork) loses the child: Popen neither returns it nor kills
    it. Seen as a fault proxy left running after a SIGINT during target start; stop_all finds it by the token."""
    import subprocess

    import chaosml.targets.supervisor as sup_mod

    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen_then_interrupt(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))  # type: ignore[call-overload]
        raise KeyboardInterrupt  # the child runs; its Popen object never reaches the supervisor

    sup = Supervisor(tmp_path)
    monkeypatch.setattr(sup_mod.subprocess, "Popen", popen_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sup.start(ProcessSpec(name="lost", argv=[sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path))
    monkeypatch.setattr(sup_mod.subprocess, "Popen", real_popen)
    (lost,) = started
    assert lost.poll() is None
    sup.stop_all(timeout_s=5.0)
    assert lost.wait(timeout=5) == -signal.SIGKILL
