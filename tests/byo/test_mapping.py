"""chaosml.workload.mapping: JSON paths, response extraction, request body presets and templates."""

import json

import pytest

from chaosml.workload.mapping import (
    Extractor,
    MappingError,
    RequestMapping,
    ResponseMapping,
    check_field_spec,
    check_template,
    parse_path,
)

V2 = {"model_version": "v7", "outputs": [{"name": "predict", "data": [1]}, {"name": "probabilities", "data": [0.2, 0.8]}]}
REF = {"entity_id": 3, "features": {"a": 1.0, "b": 2.5, "c": -1.0}}


def test_parse_path() -> None:
    assert parse_path("outputs[0].data[0]") == ("outputs", 0, "data", 0)
    assert parse_path("predictions[1]") == ("predictions", 1)
    for bad in ("", ".a", "a..b", "a[x]", "a[0"):
        with pytest.raises(ValueError):
            parse_path(bad)
    assert check_field_spec("header:X-Version") is None
    assert check_field_spec("not-exposed") is None
    assert "invalid JSON path" in (check_field_spec("a[") or "")


def test_extract_json_header_and_probabilities() -> None:
    ex = Extractor(ResponseMapping({"prediction": "outputs[0].data[0]", "confidence": "outputs[1].data",
                                    "model_version": "header:X-Model", "served_by": "not-exposed", "replica": "nope"}))
    out = ex.extract(json.dumps(V2).encode(), {"x-model": "m1"})
    assert out == {"prediction": 1, "confidence": 0.8, "model_version": "m1", "served_by": None, "replica": None}
    assert ex.missing(json.dumps(V2).encode(), {}) == ["model_version (header x-model)", "replica (JSON path nope)"]
    # a probability vector as the prediction: argmax and max
    ex2 = Extractor(ResponseMapping({"prediction": "predictions[0]", "confidence": "not-exposed"}))
    assert ex2.extract(b'{"predictions": [[0.7, 0.3]]}', None)["prediction"] == 0
    assert ex2.extract(b'{"predictions": [[0.7, 0.3]]}', None)["confidence"] == 0.7
    assert ex2.extract(b"not json", None)["prediction"] is None


def test_body_presets() -> None:
    order = ("a", "b", "c")
    assert RequestMapping(body="reference").render(REF, order) is REF
    assert RequestMapping(body="kserve-v1").render(REF, order) == {"instances": [[1.0, 2.5, -1.0]]}
    assert RequestMapping(body="kserve-v2", input_name="x").render(REF, order) == {
        "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.5, -1.0]}]
    }
    missing = {"entity_id": 3, "features": {"a": 1.0, "c": -1.0}}
    assert RequestMapping(body="kserve-v2").render(missing, order)["inputs"][0]["shape"] == [1, 2]
    raw = {"raw": "garbage"}
    assert RequestMapping(body="kserve-v2").render(raw, order) is raw


def test_template() -> None:
    t = {"id": "{{entity_id}}", "x": "{{features}}", "b": "{{feature.b}}", "obj": {"all": "{{features_object}}"}, "k": "keep"}
    req = RequestMapping(body="template", template=t)
    assert req.render(REF, ("a", "b", "c")) == {
        "id": 3, "x": [1.0, 2.5, -1.0], "b": 2.5, "obj": {"all": REF["features"]}, "k": "keep"
    }
    check_template(req, ["a", "b", "c"], "exp.yaml")
    bad = RequestMapping(body="template", template={"z": "{{feature.zeta}}"})
    with pytest.raises(MappingError, match=r"exp.yaml: request.template: template field\(s\) 'zeta' not in the dataset's features"):
        check_template(bad, ["a", "b"], "exp.yaml")


def test_select_list_item_by_field_value() -> None:
    from chaosml.workload.jsonpath import Select

    assert parse_path("outputs[name=predict_proba].data") == ("outputs", Select("name", "predict_proba"), "data")
    assert parse_path("outputs[ name = 'probabilities' ].data[1]") == ("outputs", Select("name", "probabilities"), "data", 1)
    with pytest.raises(ValueError, match=r"\[name=\] needs a value"):
        parse_path("outputs[name=].data")
    ex = Extractor(ResponseMapping({"prediction": "outputs[name=predict].data[0]", "confidence": "outputs[name=probabilities].data",
                                    "model_version": "model_version"}))
    reordered = {**V2, "outputs": list(reversed(V2["outputs"]))}  # by name, the order of the tensors does not matter
    for body in (V2, reordered):
        assert ex.extract(json.dumps(body).encode(), None)["prediction"] == 1
        assert ex.extract(json.dumps(body).encode(), None)["confidence"] == 0.8
    # the first match wins; a field compared as text; no match and a non-list are missing, never an error
    xs = b'{"xs": [{"id": 1, "v": 5}, {"id": 2, "v": 6}, {"id": 2, "v": 7}]}'
    assert Extractor(ResponseMapping({"prediction": "xs[id=2].v"})).extract(xs, None)["prediction"] == 6
    miss = Extractor(ResponseMapping({"prediction": "outputs[name=predict_proba].data", "confidence": "outputs[name=x].data",
                                      "model_version": "not-exposed", "served_by": "not-exposed", "replica": "not-exposed"}))
    assert miss.missing(json.dumps(V2).encode(), None) == [
        "prediction (JSON path outputs[name=predict_proba].data)", "confidence (JSON path outputs[name=x].data)"]
    assert miss.missing(b'{"outputs": {"name": "predict_proba"}}', None)[0] == "prediction (JSON path outputs[name=predict_proba].data)"


def test_missing_fields_are_shown_in_the_syntax_users_write() -> None:
    ex = Extractor(ResponseMapping({"prediction": "outputs[1].data[0]", "confidence": "predictions[0].scores",
                                    "model_version": "not-exposed", "served_by": "not-exposed", "replica": "not-exposed"}))
    assert ex.missing(b'{"outputs": [{"data": [1]}]}', None) == [
        "prediction (JSON path outputs[1].data[0])", "confidence (JSON path predictions[0].scores)"]


def test_kserve_v2_requests_named_outputs() -> None:
    req = RequestMapping(body="kserve-v2", input_name="input-0", outputs=("predict_proba",))
    assert req.render(REF, ["a", "b", "c"]) == {
        "inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.5, -1.0]}],
        "outputs": [{"name": "predict_proba"}],
    }
    assert "outputs" not in RequestMapping(body="kserve-v2").render(REF, ["a", "b", "c"])


@pytest.mark.parametrize(
    ("fields", "content", "headers", "answer"),
    [
        # the prediction read from the body: the body must be JSON and the path must resolve
        ({"prediction": "predictions[0]"}, b'{"predictions": [[0.7, 0.3]]}', None, True),
        ({"prediction": "predictions[0]"}, b'{"predictions": [null]}', None, True),  # there, even if null
        ({"prediction": "predictions[0]"}, b"", None, False),  # emptied body
        ({"prediction": "predictions[0]"}, b'{"predictions": [[0.7', None, False),  # cut body
        ({"prediction": "predictions[0]"}, b'{"error": "no model"}', None, False),  # JSON, no prediction
        ({"prediction": "predictions[0]"}, b"null", None, False),
        # the prediction from a header: it must be sent; a JSON field mapped too: the body must parse
        ({"prediction": "header:X-Class"}, b"", {"X-Class": "1"}, True),
        ({"prediction": "header:X-Class"}, b"", {}, False),
        ({"prediction": "header:X-Class", "model_version": "version"}, b"garbage", {"X-Class": "1"}, False),
        # no prediction mapped: a body the mapping reads must parse; nothing read, nothing to tell
        ({"prediction": "not-exposed", "model_version": "version"}, b'{"version": "v1"}', None, True),
        ({"prediction": "not-exposed", "model_version": "version"}, b"<html>", None, False),
        ({"prediction": "not-exposed", "model_version": "header:X-Version"}, b"", None, True),
    ],
)
def test_read_says_whether_the_body_is_an_answer(fields: dict[str, str], content: bytes, headers: dict[str, str] | None,
                                                 answer: bool) -> None:
    ex = Extractor(ResponseMapping(fields))
    got, is_answer = ex.read(content, headers)
    assert is_answer is answer
    assert got == ex.extract(content, headers)  # the same fields, from the one parse
