"""The README's worked examples for five model servers: each `request:`/`response:` validates and maps a recorded answer.

Each example is the text the README shows; it is loaded as part of an experiment, its request body
is rendered from a dataset row and compared with what that server expects, and a response recorded
from (the documented shape of) that server is mapped to prediction, confidence and model version.
"""

import json
from typing import Any

import pytest

from chaosml.loader import load_experiment_text
from chaosml.workload.answers import check_answer
from chaosml.workload.mapping import Extractor, ResponseMapping
from chaosml.workload.prepare import request_mapping, response_fields

HEAD = """\
version: 1
title: worked example
target:
  platform: local
  services:
    - name: model
      command: ["{python}", server.py, "{port}"]
      health: /health
  entry: {service: model}
load: {duration: 20s}
faults:
  - {name: kill, type: pod-kill, at: 5s, duration: 5s, params: {service: model}}
"""

EXAMPLES: dict[str, tuple[str, dict[str, Any], dict[str, Any], tuple[int, float, str | None]]] = {
    # name: (README text, the body the server expects for features [1.0, 2.5], a recorded answer, (prediction, confidence, version))
    "kserve-v2": (
        """\
request:
  path: /v2/models/breast-cancer/infer
  body: kserve-v2                      # {"inputs": [{"name": "input-0", "shape": [1, n], "datatype": "FP64", "data": [...]}]}
response:
  prediction: outputs[name=predict].data[0]
  confidence: outputs[name=probabilities].data   # class probabilities: the max is the confidence
  model_version: model_version
  served_by: not-exposed
  replica: not-exposed
""",
        {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.5]}]},
        {"model_name": "breast-cancer", "model_version": "sklearn-logreg-v1", "id": "5f0c", "parameters": None,
         "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "parameters": None, "data": [1]},
                     {"name": "probabilities", "shape": [1, 2], "datatype": "FP64", "parameters": None, "data": [0.03, 0.97]}]},
        (1, 0.97, "sklearn-logreg-v1"),
    ),
    "mlserver": (
        """\
request:
  path: /v2/models/breast-cancer/infer
  body: kserve-v2
  outputs: [predict_proba]             # MLServer's scikit-learn runtime returns the probabilities when asked by name
response:
  prediction: outputs[name=predict_proba].data   # a probability row: argmax = prediction, max = confidence
  confidence: outputs[name=predict_proba].data
  model_version: model_version
  served_by: not-exposed
  replica: not-exposed
""",
        {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.5]}],
         "outputs": [{"name": "predict_proba"}]},
        {"model_name": "breast-cancer", "model_version": "v1", "id": "e1b2", "parameters": {"content_type": "np"},
         "outputs": [{"name": "predict_proba", "shape": [1, 2], "datatype": "FP64", "parameters": {"content_type": "np"},
                      "data": [0.91, 0.09]}]},
        (0, 0.91, "v1"),
    ),
    "triton": (
        """\
request:
  path: /v2/models/breast_cancer/infer  # Triton's HTTP endpoint (V2); gRPC is not used by the load
  body: kserve-v2
  input_name: input__0                 # the input's name in the model's config.pbtxt
  datatype: FP32
  outputs: [probabilities]
response:
  prediction: outputs[name=probabilities].data
  confidence: outputs[name=probabilities].data
  model_version: model_version         # Triton answers the version it served ("1")
  served_by: not-exposed
  replica: not-exposed
""",
        {"inputs": [{"name": "input__0", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.5]}],
         "outputs": [{"name": "probabilities"}]},
        {"model_name": "breast_cancer", "model_version": "1",
         "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]}]},
        (1, 0.75, "1"),
    ),
    "bentoml-fastapi": (
        """\
request:
  path: /predict
  body: template                       # the service's own JSON: features by name
  template: {features: "{{features_object}}", request_id: "{{entity_id}}"}
response:
  prediction: label
  confidence: probability
  model_version: header:X-Model-Version
  served_by: not-exposed
  replica: not-exposed
""",
        {"features": {"a": 1.0, "b": 2.5}, "request_id": 7},
        {"label": 1, "probability": 0.88},
        (1, 0.88, "2024-06-01"),
    ),
    "torchserve": (
        """\
request:
  path: /v1/models/breast-cancer:predict  # TorchServe's KServe v1 API (or /predictions/NAME with a template)
  body: kserve-v1                      # {"instances": [[v1, v2, ...]]}
response:
  prediction: predictions[0]           # one probability row per instance
  confidence: predictions[0]
  model_version: not-exposed
  served_by: not-exposed
  replica: not-exposed
""",
        {"instances": [[1.0, 2.5]]},
        {"predictions": [[0.4, 0.6]]},
        (1, 0.6, None),
    ),
}


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_worked_example_validates_and_maps_a_recorded_answer(name: str) -> None:
    text, expected_body, answer, (prediction, confidence, version) = EXAMPLES[name]
    exp = load_experiment_text(HEAD + text, f"{name}.yaml")
    body = request_mapping(exp).render({"entity_id": 7, "features": {"a": 1.0, "b": 2.5}}, ["a", "b"])
    assert body == expected_body
    mapping = ResponseMapping(response_fields(exp))
    extractor = Extractor(mapping)
    content = json.dumps(answer).encode()
    headers = {"X-Model-Version": "2024-06-01"}
    assert extractor.missing(content, headers) == []
    check_answer(content, extractor.plan, content.decode()[:300])  # a sane model answer: no exception
    out = extractor.extract(content, headers)
    assert (out["prediction"], out["confidence"], out["model_version"]) == (prediction, confidence, version)


def test_outputs_only_with_the_kserve_v2_body() -> None:
    from chaosml.errors import ExperimentError

    text = "request:\n  path: /predict\n  body: kserve-v1\n  outputs: [predict_proba]\n"
    with pytest.raises(ExperimentError) as exc:
        load_experiment_text(HEAD + text, "e.yaml")
    assert [str(i) for i in exc.value.issues] == ["e.yaml:16:12: request.outputs: only used with body: kserve-v2 (body is kserve-v1)"]
