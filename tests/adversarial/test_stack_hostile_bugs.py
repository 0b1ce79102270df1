"""Regression tests for stack bugs the hostile cohorts found (fixed).

1. The hardened replica's validation called ``float(v)`` on a JSON integer feature value; an
   integer beyond the float range (``10**400``, ``2**1100``) raised OverflowError, a 500 instead of
   a 422 naming the field (chaosml/stack/service.py, Replica._validate).
2. Because the hardened gateway ejects a backend for ``eject_s`` on a 5xx, a handful of such
   requests (each retried on a second replica) ejected every replica and clean traffic got the
   default response for a second: one bad client degraded everyone.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest
from testutil import unless_fetch_timed_out

from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import load_dataset

DS = load_dataset()


def post(port: int, body: bytes) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data.startswith(b"{") else {}
    finally:
        conn.close()


def huge_int_body() -> bytes:
    body = DS.row_payload(int(DS.test_idx[0]))
    body["features"]["mean_radius"] = 10**400
    return json.dumps(body).encode()


@pytest.mark.slow
def test_hardened_replica_rejects_a_huge_integer_feature_with_422(tmp_path: Path) -> None:
    with LocalTarget(tmp_path / "run", profile="hardened", replicas=1, restart_delay_s=0.5) as t:
        status, body = post(t._port("model-0"), huge_int_body())
        assert status == 422 and body.get("field") == "features.mean_radius", (status, body)


@pytest.mark.slow
def test_hostile_requests_do_not_push_clean_traffic_to_the_default(tmp_path: Path) -> None:
    with LocalTarget(tmp_path / "run", profile="hardened", replicas=2, restart_delay_s=0.5) as t:
        port = int(t.entry_url.rsplit(":", 1)[1])
        clean = json.dumps(DS.row_payload(int(DS.test_idx[0]))).encode()
        assert unless_fetch_timed_out(lambda: post(port, clean))[1].get("served_by") == "primary"
        for _ in range(4):
            post(port, huge_int_body())
        status, body = unless_fetch_timed_out(lambda: post(port, clean))
        assert status == 200 and body.get("served_by") == "primary", body
