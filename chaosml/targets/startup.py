"""Start-up failures that explain themselves: when to give up early, and what to say per member; used by SupervisedTarget.

A member is hopeless when it has exited :data:`CRASHLOOP_EXITS` times without becoming ready
(crash-looping: a command that exits at once, a port already in use, a missing model file) or
when it runs but its health path has answered HTTP 404 for :data:`NOT_FOUND_GIVE_UP_S` (a wrong
ready path). When every member not ready is hopeless, the start gives up before its timeout.

Per member the message says the URL probed and its last answer, the exit codes and restarts, and
the log lines that matter: lines matching :data:`ERROR_PATTERN` anywhere in the log (the first
cause is often far above the tail), then the last lines.
"""

from __future__ import annotations

import re
from pathlib import Path

from chaosml.targets.supervisor import MemberHealth

#: Exits without becoming ready after which a member is crash-looping.
CRASHLOOP_EXITS = 3
#: A running member whose health path answers 404 this long (seconds) has a wrong ready path.
NOT_FOUND_GIVE_UP_S = 10.0
#: Log lines worth showing wherever they are in the log.
ERROR_PATTERN = re.compile(
    r"address already in use|no such file|not found|traceback|error|exception|permission denied|cannot|could not|failed|refused|killed",
    re.IGNORECASE,
)
#: At most this many matching lines, and of the log's end, per member.
MAX_MATCHES = 6
TAIL_LINES = 4
#: Read at most this much of the end of a log (bytes).
MAX_LOG_BYTES = 4 << 20


def crash_looping(h: MemberHealth) -> bool:
    return not h.ready and h.exits_unready >= CRASHLOOP_EXITS


def hopeless(h: MemberHealth) -> bool:
    """The member will not become ready by waiting: crash-looping, or running with a health path that is not found."""
    wrong_path = h.running and h.last_probe == "HTTP 404" and h.last_probe_for_s >= NOT_FOUND_GIVE_UP_S
    return not h.ready and (crash_looping(h) or wrong_path)


def _read_log(path: Path) -> list[str]:
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - MAX_LOG_BYTES))
            return f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return []


def log_lines_that_matter(path: Path) -> tuple[list[str], list[str]]:
    """(distinct lines matching ERROR_PATTERN anywhere, the last lines), the supervisor's own start lines left out."""
    lines = [ln.rstrip() for ln in _read_log(path) if ln.strip() and not ln.startswith("--- ")]
    matches: list[str] = []
    for ln in lines:
        if ERROR_PATTERN.search(ln) and ln not in matches:
            matches.append(ln)
    if len(matches) > MAX_MATCHES:  # the first (the cause) and the last (the latest attempt)
        matches = matches[: MAX_MATCHES // 2] + ["..."] + matches[-(MAX_MATCHES - MAX_MATCHES // 2):]
    tail = [ln for ln in lines[-TAIL_LINES:] if ln not in matches]
    return matches, tail


def explain(h: MemberHealth, log_path: Path) -> str:
    """What is known of one member that is not ready, in a few indented lines."""
    codes = ", ".join(str(c) for c in h.exit_codes)
    if crash_looping(h):
        state = f"crash-looping: exited {h.exits_unready} times without becoming ready (exit codes {codes}; {h.restarts} restarts)"
    elif not h.running and h.exit_codes:
        state = f"not running: exited with code {h.exit_codes[-1]} ({h.restarts} restarts so far)"
    elif h.running:
        state = f"running (pid {h.pid}) but not ready" + (f"; it exited before (exit codes {codes})" if h.exit_codes else "")
    else:
        state = "not running"
    if h.ready_url is None:
        probed = "no readiness probe"
    elif h.last_probe is None:
        probed = f"{h.ready_url}: not probed yet"
    else:
        probed = f"{h.ready_url} answered {h.last_probe}" + (f" for the last {h.last_probe_for_s:.0f} s" if h.last_probe_for_s >= 1 else "")
    hint = " (is health: the right path?)" if h.last_probe == "HTTP 404" else ""
    out = [f"  {h.name}: {state}; probe {probed}{hint}"]
    matches, tail = log_lines_that_matter(log_path)
    if matches:
        out.append(f"    log lines that matter ({log_path}):")
        out += [f"      {ln}" for ln in matches]
    if tail:
        out.append(f"    last lines of {log_path}:" if not matches else "    and last:")
        out += [f"      {ln}" for ln in tail]
    if not matches and not tail:
        out.append(f"    {log_path}: empty")
    return "\n".join(out)
