"""Every hostile cohort against a real LocalTarget (hardened and naive): an HTTP answer within a bound, nobody dies.

On a failure the assertion message carries the tail of every replica/gateway log (the traceback).
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chaosml.model.catalog import HOSTILE_COHORTS
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import load_dataset
from chaosml.workload.cohorts import build_payloads
from chaosml.workload.payload_file import encode_body

ANSWER_BOUND_S = 5.0
PER_COHORT = 40  # payloads sent per cohort (all of those with fewer)


def send(port: int, body: bytes) -> tuple[int | str, float]:
    """(HTTP status, or the exception's name when there was no answer; seconds taken)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_BOUND_S)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.monotonic() - t0
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__, time.monotonic() - t0
    finally:
        conn.close()


def logs(run_dir: Path) -> str:
    out = []
    for p in sorted(run_dir.rglob("*.log")):
        text = p.read_text(errors="replace")
        if text.strip():
            out.append(f"--- {p.name} (last 40 lines)\n" + "\n".join(text.splitlines()[-40:]))
    return "\n".join(out)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["hardened", "naive"])
def test_every_hostile_cohort_gets_an_answer_and_nothing_restarts(tmp_path: Path, profile: str) -> None:
    ds = load_dataset()
    payloads = build_payloads(ds, list(HOSTILE_COHORTS), seed=0)
    bodies = [(c, encode_body(p["body"])) for c in HOSTILE_COHORTS for p in payloads[c][:PER_COHORT]]
    run_dir = tmp_path / f"run-{profile}"
    with LocalTarget(run_dir, profile=profile, replicas=2, restart_delay_s=0.5) as t:
        port = int(t.entry_url.rsplit(":", 1)[1])
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda cb: (cb[0], *send(port, cb[1])), bodies))
        statuses: dict[str, Counter[int | str]] = {}
        for cohort, status, _ in results:
            statuses.setdefault(cohort, Counter())[status] += 1
        print(profile, json.dumps({c: {str(k): v for k, v in s.items()} for c, s in statuses.items()}))
        unanswered = [(c, s, round(dt, 2)) for c, s, dt in results if not isinstance(s, int)]
        slow = [(c, s, round(dt, 2)) for c, s, dt in results if dt > ANSWER_BOUND_S]
        members = t.supervisor.status()
        restarted = [(m.name, m.restarts, m.running) for m in members if m.restarts or not m.running]
        # the stack still serves a clean request after all that
        clean_status, _ = send(port, encode_body(ds.row_payload(int(ds.test_idx[0]))))
        problems = {"unanswered": unanswered[:10], "slow": slow[:10], "restarted": restarted, "clean": clean_status}
        assert not unanswered and not slow and not restarted and clean_status == 200, (
            f"{profile}: {problems}\n{logs(run_dir)}"
        )
        if profile == "hardened":
            # a clear 4xx for everything that is not a valid request
            for cohort in ("type-confusion", "deep-nesting", "garbage"):
                assert set(statuses[cohort]) <= {422, 413}, (cohort, statuses[cohort])
            assert set(statuses["oversized"]) <= {413}, statuses["oversized"]
            assert 500 not in statuses["extreme-values"] and 500 not in statuses["corrupted-payload"]
