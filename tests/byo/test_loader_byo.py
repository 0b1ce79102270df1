"""The experiment format for a user's own stack: target.services/links/entry, request, response, load.data."""

from pathlib import Path

import pytest

from chaosml.errors import ExperimentError
from chaosml.loader import load_experiment, load_experiment_text

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
version: 1
title: byo
target:
  platform: local
  services:
    - name: model
      command: ["{python}", server.py, "{port}"]
      health: /health
      replicas: 2
  entry: {service: model}
request:
  path: /infer
  body: kserve-v2
response:
  prediction: outputs[0].data[0]
  served_by: not-exposed
load: {duration: 30s}
faults:
  - {name: kill, type: pod-kill, at: 5s, duration: 5s, params: {service: model}}
  - {name: slow, type: network-latency, at: 15s, duration: 5s, params: {link: model-1, latency_ms: 50}}
"""


def issues(text: str) -> list[str]:
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(text, "e.yaml")
    return [str(i) for i in exc.value.issues]


def test_shipped_byo_experiments_validate() -> None:
    for path in sorted((ROOT / "experiments").glob("byo-*.yaml")):
        exp = load_experiment(path)
        assert exp.target.stack == "custom"


def test_valid_custom_stack() -> None:
    exp = load_experiment_text(BASE, "e.yaml")
    assert exp.target.services[0].command == ("{python}", "server.py", "{port}")
    assert exp.target.entry is not None and exp.target.entry.service == "model"
    assert exp.request.body == "kserve-v2" and exp.response.served_by == "not-exposed"


def test_errors_are_located() -> None:
    text = (BASE.replace("params: {service: model}", "params: {service: modle}")
            .replace("link: model-1", "link: model-2")
            .replace("outputs[0].data[0]", "outputs[0"))
    assert issues(text) == [
        "e.yaml:15:15: response.prediction: invalid JSON path 'outputs[0' at character 8: use keys and [index], "
        "e.g. outputs[0].data[0] (or header:NAME, or not-exposed)",
        "e.yaml:19:74: faults[0].params.service: unknown service 'modle' (did you mean 'model'?); services: model",
        "e.yaml:20:79: faults[1].params.link: no link 'model-2' on this stack; links: gateway, model, model-0, model-1 "
        "(declare target.links, or entry.proxy: true)",
    ]


def test_custom_stack_needs_services_and_entry() -> None:
    text = BASE.replace("  entry: {service: model}\n", "")
    assert any("missing required key 'entry'" in i for i in issues(text))
    text = BASE.replace("  platform: local\n", "  platform: local\n  stack: reference\n")
    assert any("target.stack: leave out 'stack': declaring target.services makes the stack your own" in i for i in issues(text))
    text = BASE.replace("  services:", "  links: [{name: feature-store, upstream: '127.0.0.1:6379'}]\n  xservices:")
    assert any("target.links: only used with target.services" in i for i in issues(text))


def test_links_and_template_checks() -> None:
    text = BASE.replace("  entry: {service: model}\n", "  entry: {service: model}\n  links:\n    - {name: redis, upstream: '10.0.0.1:6379'}\n")
    got = issues(text)
    assert any("target.links[0].name: unknown link name 'redis'" in i for i in got)
    assert any("target.links[0].upstream: must be 127.0.0.1:PORT" in i for i in got)
    text = BASE.replace("  body: kserve-v2\n", "  body: template\n  template: {x: '{{featurez}}'}\n")
    assert any("request.template: unknown placeholder(s) {{featurez}}" in i for i in issues(text))


def test_load_data_section() -> None:
    text = BASE.replace("load: {duration: 30s}", "load: {duration: 30s, data: {file: d.csv, label: y, ranges: {a: [0, 1]}}}")
    exp = load_experiment_text(text, "e.yaml")
    assert exp.load.data is not None and exp.load.data.ranges == {"a": (0.0, 1.0)}
    text = BASE.replace("load: {duration: 30s}", "load: {duration: 30s, data: {file: d.txt, label: y}}")
    assert any("load.data.file: must be a .csv or .parquet file" in i for i in issues(text))
