"""dependency-errors against a real LocalTarget: the declared share of a replica's responses is replaced; undone on recover and offline."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fake_target import FakeTarget
from faultkit import crash_copy, injector_for, payload_for, predict
from testutil import serving

from chaosml.faults.base import undo_fault
from chaosml.faults.dependencyerrors import DependencyErrorsParams
from chaosml.model.faulttype import StackFacts, registry
from chaosml.proxy import client
from chaosml.targets.local import LocalTarget
from chaosml.workload.builtin_dataset import Dataset

REQUESTS = 200


def _outcomes(url: str, ds: Dataset, n: int) -> dict[str, int]:
    counts = {"ok": 0, "503": 0, "other": 0}
    payload = payload_for(ds, int(ds.test_idx[0]))
    for _ in range(n):
        status, body = predict(url, payload)
        if status == 200 and "prediction" in body:
            counts["ok"] += 1
        elif status == 503 and body.get("served_by") == "http_errors":
            counts["503"] += 1
        else:
            counts["other"] += 1
    return counts


def test_the_declared_share_of_one_replicas_answers_is_a_503(target: LocalTarget, ds: Dataset) -> None:
    inj = injector_for(target, "dependency-errors", DependencyErrorsParams(link="model-1", error_share=0.3))
    record = crash_copy(inj.undo_record(0))
    assert record["proxies"] == ["model-1"] and record["type"] == "http_errors"
    direct = f"http://{target.links()['model-1']['listen']}"  # gateway -> model-1, as the gateway calls it
    try:
        ev = inj.apply(0)
        assert ev.ok and ev.no_effect is None and ev.detail["attributes"] == {"permille": 300, "mode": "status", "status": 503}
        counts = _outcomes(direct, ds, REQUESTS)
    finally:
        rec = inj.recover(0)
    # binomial(200, 0.3): mean 60, sd 6.5; +/- 4 sd
    assert 34 <= counts["503"] <= 86 and counts["other"] == 0, counts
    assert rec.ok and rec.detail["removed"] == {"model-1": "removed"}
    assert _outcomes(direct, ds, 20) == {"ok": 20, "503": 0, "other": 0}
    assert undo_fault("dependency-errors", record) == "toxic chaosml-f-0: model-1 absent"


def test_offline_undo_removes_the_toxic_from_the_record_alone(target: LocalTarget) -> None:
    inj = injector_for(target, "dependency-errors", DependencyErrorsParams(link="model", error_share=1.0, mode="empty"), name="crash")
    record = crash_copy(inj.undo_record(2))
    inj.apply(2)
    api = target.proxy_api_url or ""
    assert all([t["name"] for t in client.toxics(api, p)] == ["chaosml-crash-2"] for p in ("model-0", "model-1"))
    assert undo_fault("dependency-errors", record) == "toxic chaosml-crash-2: model-0 removed, model-1 removed"
    assert all(client.toxics(api, p) == [] for p in ("model-0", "model-1"))


@pytest.fixture
def real_toxiproxy_version() -> Iterator[str]:
    """An API that answers /version as real Toxiproxy does (no chaosml tag) and lists one proxy."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = b"2.12.0" if self.path == "/version" else json.dumps({"name": "model-0", "enabled": True, "toxics": []}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def test_a_real_toxiproxy_is_no_effect_never_a_pass(real_toxiproxy_version: str) -> None:
    fake = FakeTarget(proxy_api_url=real_toxiproxy_version)
    inj = injector_for(fake, "dependency-errors", DependencyErrorsParams(link="model-0"))
    ev = inj.apply(0)
    assert ev.no_effect == (f"added nothing: the proxy at {real_toxiproxy_version} is Toxiproxy 2.12.0, which has no "
                            "http_errors toxic (a chaosml extension; the local target's fault proxy has it)")


@pytest.mark.parametrize(
    ("params", "facts", "errors"),
    [
        (DependencyErrorsParams(link="feature-store"), StackFacts("local", "reference"),
         [("params.link", "the feature-store link carries Redis (RESP), not HTTP; use model, model-<i> or gateway")]),
        (DependencyErrorsParams(link="model-1"), StackFacts("local", "reference"), []),
    ],
)
def test_check(params: DependencyErrorsParams, facts: StackFacts, errors: list[tuple[str, str]]) -> None:
    assert registry()["dependency-errors"].check(params, facts) == errors


def test_only_the_local_target_has_it() -> None:
    issue = registry()["dependency-errors"].support_issue("kubernetes", "custom")
    assert issue == "dependency-errors is not available on the kubernetes target; it runs on: local"


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        (DependencyErrorsParams(error_share=0), [("error_share", "must be in [0.001, 1]: the share of responses replaced")]),
        (DependencyErrorsParams(status=404), [("status", "must be a 5xx status code (500-599)")]),
        (DependencyErrorsParams(mode="empty", status=500), [("status", "is only used with mode status, not empty")]),
    ],
)
def test_params_check(params: DependencyErrorsParams, errors: list[tuple[str, str]]) -> None:
    assert params.check() == errors
