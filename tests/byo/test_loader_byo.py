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
        "e.yaml:15:15: response.prediction: invalid JSON path 'outputs[0' at character 8: use keys, [index] and [field=value], "
        "e.g. outputs[0].data[0] or outputs[name=predict_proba].data (or header:NAME, or not-exposed)",
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
    text = BASE.replace("  entry: {service: model}\n", "  entry: {service: model}\n  links:\n    - {name: 'red is', upstream: '10.0.0.1:6379'}\n")
    got = issues(text)
    assert any("target.links[0].name: 'red is' is not a link name" in i for i in got)
    assert any("target.links[0].upstream: must be 127.0.0.1:PORT" in i for i in got)
    text = BASE.replace("  entry: {service: model}\n", "  entry: {service: model}\n  links:\n    - {name: gateway, upstream: '127.0.0.1:1'}\n")
    assert any("target.links[0].name: 'gateway' is the entry's link name" in i for i in issues(text))
    text = BASE.replace("  body: kserve-v2\n", "  body: template\n  template: {x: '{{featurez}}'}\n")
    assert any("request.template: unknown placeholder(s) {{featurez}}" in i for i in issues(text))


def test_load_data_section() -> None:
    text = BASE.replace("load: {duration: 30s}", "load: {duration: 30s, data: {file: d.csv, label: y, ranges: {a: [0, 1]}}}")
    exp = load_experiment_text(text, "e.yaml")
    assert exp.load.data is not None and exp.load.data.ranges == {"a": (0.0, 1.0)}
    text = BASE.replace("load: {duration: 30s}", "load: {duration: 30s, data: {file: d.txt, label: y}}")
    assert any("load.data.file: must be a .csv or .parquet file" in i for i in issues(text))


def test_several_dependency_links_with_any_names() -> None:
    text = BASE.replace("  entry: {service: model}\n", "  entry: {service: model}\n  links:\n"
                        "    - {name: feature-store, upstream: '127.0.0.1:6379', env: REDIS_ADDR}\n"
                        "    - {name: payments-db, upstream: '127.0.0.1:5432'}\n")
    text = text.replace("link: model-1", "link: payments-db")
    exp = load_experiment_text(text, "e.yaml")
    assert [ln.name for ln in exp.target.links] == ["feature-store", "payments-db"]
    assert exp.faults[1].params.link == "payments-db"
    got = issues(text.replace("link: payments-db", "link: payment-db"))
    assert any("faults[1].params.link: no link 'payment-db' on this stack; links: feature-store, gateway, model, model-0, model-1, "
               "payments-db" in i for i in got)


def test_reference_stack_links_stay_fixed() -> None:
    text = """\
version: 1
title: ref
target: {platform: local}
faults:
  - {name: slow, type: network-latency, at: 5s, duration: 5s, params: {link: payments-db, latency_ms: 50}}
"""
    assert issues(text) == ["e.yaml:5:78: faults[0].params.link: must be one of gateway, feature-store, model or model-<i> "
                            "(one replica) on the reference stack, not 'payments-db'"]


K8S = """\
version: 1
title: byo on kubernetes
target:
  platform: kubernetes
  kubernetes: {namespace: shop, toxiproxy: {service: toxiproxy, port: api}}
  services:
    - name: model
      selector: {app: iris, tier: serving}
    - name: redis
      selector: {app: redis}
  links:
    - {name: feature-store, service: redis}
    - {name: gateway}
  entry: {service: model, port: http}
request: {path: /v2/models/iris/infer, body: kserve-v2}
response: {prediction: "outputs[0].data[0]", served_by: not-exposed}
load: {duration: 30s}
faults:
  - {name: kill, type: pod-kill, at: 5s, duration: 5s, params: {service: model}}
  - {name: fs, type: feature-store-outage, at: 12s, duration: 5s, params: {mode: kill}}
  - {name: slow, type: network-latency, at: 20s, duration: 5s, params: {link: gateway, latency_ms: 50}}
"""


def test_custom_stack_on_kubernetes() -> None:
    exp = load_experiment_text(K8S, "e.yaml")
    t = exp.target
    assert t.platform == "kubernetes" and t.stack == "custom"
    assert dict(t.services[0].selector or {}) == {"app": "iris", "tier": "serving"} and t.services[0].command == ()
    assert t.links[0].service == "redis" and t.links[0].upstream is None
    assert t.entry is not None and t.entry.port == "http"
    assert t.kubernetes is not None and t.kubernetes.toxiproxy is not None and t.kubernetes.toxiproxy.service == "toxiproxy"


def test_custom_stack_on_kubernetes_errors_are_located() -> None:
    text = (K8S.replace("      selector: {app: redis}\n", "      command: [redis-server]\n")
            .replace("{name: feature-store, service: redis}", "{name: feature-store, service: rediss, upstream: '127.0.0.1:1'}")
            .replace("entry: {service: model, port: http}", "entry: {service: model, port: http, url: 'ftp://x', proxy: false}")
            .replace("link: gateway, latency", "link: gatewya, latency"))
    assert issues(text) == [
        "e.yaml:9:7: target.services[1]: missing required key 'selector': the labels of your Deployment's pods, e.g. "
        "selector: {app: my-model}",
        "e.yaml:10:16: target.services[1].command: not used on the kubernetes target (chaosml does not start your pods: "
        "select their Deployment with selector)",
        "e.yaml:12:38: target.links[0].service: unknown service 'rediss' (did you mean 'redis'?); services: model, redis",
        "e.yaml:12:56: target.links[0].upstream: not used on the kubernetes target (links on kubernetes name proxies of your "
        "cluster's Toxiproxy)",
        "e.yaml:14:44: target.entry.url: must be an http:// or https:// URL, got 'ftp://x'",
        "e.yaml:14:62: target.entry.proxy: not used on the kubernetes target",
    ]
    assert issues(K8S.replace("link: gateway, latency", "link: gatewya, latency")) == [
        "e.yaml:21:79: faults[2].params.link: no link 'gatewya' on this stack; links: feature-store, gateway (declare "
        "target.links, naming a proxy of your cluster's Toxiproxy)",
    ]
    assert issues(K8S.replace("entry: {service: model, port: http}", "entry: {service: model, link: gate}")) == [
        "e.yaml:14:33: target.entry.link: no link 'gate' (did you mean 'gateway'?); declare it in target.links",
    ]


def test_feature_store_kill_on_kubernetes_needs_the_service_behind_the_link() -> None:
    got = issues(K8S.replace("{name: feature-store, service: redis}", "{name: feature-store}"))
    assert any("faults[1].params.mode: mode kill scales the service behind the feature-store link to zero" in i for i in got)
    got = issues(K8S.replace("{name: feature-store, service: redis}", "{name: feature-store, service: redsi}"))
    assert any("target.links[0].service: unknown service 'redsi' (did you mean 'redis'?)" in i for i in got)


def test_local_only_and_kubernetes_only_keys() -> None:
    text = BASE.replace("      replicas: 2\n", "      replicas: 2\n      selector: {app: x}\n")
    assert any("target.services[0].selector: not used on the local target" in i for i in issues(text))
    got = issues(K8S.replace("  kubernetes: {namespace: shop, toxiproxy: {service: toxiproxy, port: api}}\n",
                             "  kubernetes: {namespace: shop}\n  restart_delay: 1s\n"))
    assert any("target.restart_delay: only used with the reference stack" in i for i in got)
    got = issues(K8S.replace("      selector: {app: iris, tier: serving}", "      selector: {}"))
    assert any("target.services[0].selector: must name at least one label" in i for i in got)
