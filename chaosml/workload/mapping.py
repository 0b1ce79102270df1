"""Request/response mapping for a user's serving stack: request bodies from dataset rows, fields from responses.

Used by the runner (payload bodies, probe requests before the load) and by the load process
(``chaosml.load.driver`` extracts served_by/prediction/confidence/model_version/replica with it).
No I/O except :func:`probe`, which sends a few requests with ``urllib`` to 127.0.0.1.

Bodies: the cohorts build the reference body ``{"entity_id": int, "features": {name: value}}``;
:func:`render_body` turns it into the stack's own body by preset:

- ``reference``: unchanged;
- ``kserve-v1``: ``{"instances": [[v1, v2, ...]]}`` in the dataset's feature order;
- ``kserve-v2`` (Open Inference Protocol): ``{"inputs": [{"name", "shape": [1, n], "datatype": "FP64", "data": [...]}]}``,
  plus ``"outputs": [{"name": ...}]`` when ``outputs`` names the tensors to return (e.g. predict_proba);
- ``template``: a JSON template whose string values may be a whole placeholder, replaced by a typed
  value: ``{{features}}`` (list in feature order), ``{{features_object}}`` (name -> value),
  ``{{feature.NAME}}`` (one value), ``{{entity_id}}``, ``{{n_features}}``.

A cohort that drops features (missing-features) gives a shorter list: the stack sees a malformed
request, which is the point of that cohort. Raw bodies (``{"raw": ...}``, the hostile cohorts) are
sent unchanged.

Response fields: a JSON path (``outputs[0].data[0]``, ``outputs[name=predict_proba].data``,
``predictions[0]``, ``model_version``; see :mod:`chaosml.workload.jsonpath`), a response header
(``header:X-Model-Version``) or ``not-exposed``. A path that resolves to a list of numbers is read as
class probabilities: the prediction is its argmax, the confidence its max.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chaosml.workload.jsonpath import MISSING, format_path, parse_path, resolve

NOT_EXPOSED = "not-exposed"
HEADER_PREFIX = "header:"
BODY_PRESETS: tuple[str, ...] = ("reference", "kserve-v1", "kserve-v2", "template")
RESPONSE_FIELDS: tuple[str, ...] = ("served_by", "prediction", "confidence", "model_version", "replica")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)(?:\.([^{}]+?))?\s*\}\}")
_FIXED_PLACEHOLDERS = ("features", "features_object", "entity_id", "n_features")


class MappingError(ValueError):
    """A mapping does not fit the data or the server's answers; the message names what and where."""


# ----------------------------------------------------------------------------- response fields


def check_field_spec(spec: str) -> str | None:
    """None if ``spec`` is a valid response field spec, else the problem."""
    if spec == NOT_EXPOSED:
        return None
    if spec.startswith(HEADER_PREFIX):
        return None if spec[len(HEADER_PREFIX):].strip() else "header: needs a header name, e.g. header:X-Model-Version"
    try:
        parse_path(spec)
    except ValueError as exc:
        return str(exc)
    return None


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float | str):
        return value
    return None


def _numbers(value: Any) -> list[float] | None:
    if isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    return None


@dataclass(frozen=True)
class ResponseMapping:
    """Where each response field is: field -> spec (JSON path, ``header:NAME`` or ``not-exposed``)."""

    fields: Mapping[str, str]

    @property
    def served_by_exposed(self) -> bool:
        return self.fields.get("served_by", NOT_EXPOSED) != NOT_EXPOSED

    def compiled(self) -> dict[str, tuple[str, Any]]:
        """field -> ("json", path tuple) | ("header", lower-case name) | ("none", None)."""
        out: dict[str, tuple[str, Any]] = {}
        for name in RESPONSE_FIELDS:
            spec = self.fields.get(name, NOT_EXPOSED)
            if spec == NOT_EXPOSED:
                out[name] = ("none", None)
            elif spec.startswith(HEADER_PREFIX):
                out[name] = ("header", spec[len(HEADER_PREFIX):].strip().lower())
            else:
                out[name] = ("json", parse_path(spec))
        return out


class Extractor:
    """Pulls the mapped fields out of a response body and headers; used per request by the load process."""

    def __init__(self, mapping: ResponseMapping) -> None:
        self.plan = mapping.compiled()
        self.needs_json = any(kind == "json" for kind, _ in self.plan.values())

    def extract(self, content: bytes | None, headers: Mapping[str, str] | None) -> dict[str, Any]:
        """field -> CSV-safe scalar or None; never raises on a bad body."""
        return self.read(content, headers)[0]

    def read(self, content: bytes | None, headers: Mapping[str, str] | None) -> tuple[dict[str, Any], bool]:
        """(fields as :meth:`extract`, is it an answer); one JSON parse; never raises on a bad body.

        An answer: the body is JSON when a field is mapped to a JSON path, and the prediction is
        there (its path resolves, or its header is sent) when it is mapped. A mapping with neither
        cannot tell an answer from anything else: every response is one.
        """
        data: Any = None
        parsed = True
        if self.needs_json:
            try:
                data = json.loads(content) if content else None
            except (ValueError, UnicodeDecodeError):
                data = None
            parsed = data is not None
        lower = {str(k).lower(): v for k, v in (headers or {}).items()} if headers else {}
        out: dict[str, Any] = {}
        found: dict[str, bool] = {}
        for name, (kind, where) in self.plan.items():
            value: Any = None
            if kind == "json":
                v = resolve(data, where)
                found[name] = v is not MISSING
                value = None if v is MISSING else v
            elif kind == "header":
                found[name] = where in lower
                value = lower.get(where)
            out[name] = value
        return self._interpret(out), parsed and found.get("prediction", True)

    @staticmethod
    def _interpret(raw: dict[str, Any]) -> dict[str, Any]:
        pred, conf = raw.get("prediction"), raw.get("confidence")
        probs = _numbers(pred)
        if probs is not None:  # a probability vector: argmax is the prediction
            pred = max(range(len(probs)), key=probs.__getitem__)
            if conf is None:
                conf = max(probs)
        cprobs = _numbers(conf)
        if cprobs is not None:
            conf = max(cprobs)
        if isinstance(conf, str):
            try:
                conf = float(conf)
            except ValueError:
                conf = None
        if isinstance(pred, float) and pred.is_integer():
            pred = int(pred)
        if isinstance(pred, str) and re.fullmatch(r"-?\d+", pred.strip()):
            pred = int(pred)
        out = {k: _scalar(v) for k, v in raw.items()}
        out["prediction"] = _scalar(pred)
        out["confidence"] = _scalar(conf)
        return out

    def missing(self, content: bytes | None, headers: Mapping[str, str] | None) -> list[str]:
        """Mapped fields (not ``not-exposed``) absent from this response, as 'field (spec)'."""
        try:
            data = json.loads(content) if content else None
        except (ValueError, UnicodeDecodeError):
            data = None
        lower = {str(k).lower() for k in (headers or {})}
        out = []
        for name, (kind, where) in self.plan.items():
            if kind == "json" and resolve(data, where) is MISSING:
                out.append(f"{name} (JSON path {format_path(where)})")
            elif kind == "header" and where not in lower:
                out.append(f"{name} (header {where})")
        return out


# ----------------------------------------------------------------------------- request bodies


@dataclass(frozen=True)
class RequestMapping:
    """Where requests go and how a body is built from the reference body of a dataset row."""

    path: str = "/predict"
    method: str = "POST"
    headers: Mapping[str, str] | None = None
    body: str = "reference"  # BODY_PRESETS
    input_name: str = "input-0"  # kserve-v2: the input tensor's name
    datatype: str = "FP64"  # kserve-v2: the input tensor's datatype
    outputs: tuple[str, ...] = ()  # kserve-v2: named output tensors to request (empty: the model's defaults)
    template: Any = None  # body: template

    def render(self, body: Any, feature_order: Iterable[str]) -> Any:
        """The stack's body for one payload body (the reference form); raw and non-object bodies pass through."""
        if self.body == "reference" or not isinstance(body, dict) or "raw" in body:
            return body
        features = body.get("features")
        if not isinstance(features, dict):
            return body  # type-confusion payloads: keep them hostile
        values = [features[f] for f in feature_order if f in features]
        if self.body == "kserve-v1":
            return {"instances": [values]}
        if self.body == "kserve-v2":
            v2: dict[str, Any] = {"inputs": [{"name": self.input_name, "shape": [1, len(values)], "datatype": self.datatype, "data": values}]}
            if self.outputs:
                v2["outputs"] = [{"name": n} for n in self.outputs]
            return v2
        return _fill(self.template, {"features": values, "features_object": dict(features),
                                     "entity_id": body.get("entity_id"), "n_features": len(values)}, features)


def _fill(node: Any, fixed: dict[str, Any], features: Mapping[str, Any]) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _fill(v, fixed, features) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_fill(v, fixed, features) for v in node]
    if isinstance(node, str):
        m = _PLACEHOLDER.fullmatch(node.strip())
        if m:
            head, arg = m.group(1), m.group(2)
            if head == "feature" and arg is not None:
                return features.get(arg.strip())  # dropped by a missing-features cohort: null
            return fixed.get(head)
    return node


def template_fields(template: Any) -> tuple[list[str], list[str]]:
    """(feature names the template uses, placeholders it does not know)."""
    names: list[str] = []
    unknown: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for v in node.values():
                walk(v)
        elif isinstance(node, list | tuple):
            for v in node:
                walk(v)
        elif isinstance(node, str):
            for m in _PLACEHOLDER.finditer(node):
                head, arg = m.group(1), m.group(2)
                if head == "feature" and arg is not None:
                    names.append(arg.strip())
                elif head not in _FIXED_PLACEHOLDERS or arg is not None:
                    unknown.append(m.group(0))
                elif m.group(0) != node.strip():
                    unknown.append(f"{m.group(0)} inside other text (a placeholder must be the whole string)")

    walk(template)
    return names, unknown


def check_template(request: RequestMapping, feature_names: Iterable[str], where: str) -> None:
    """Raise MappingError naming ``where`` (the experiment and data file) for a template field the data lacks."""
    if request.body != "template":
        return
    names, unknown = template_fields(request.template)
    known = set(feature_names)
    problems = [f"placeholder {u} is not one of {{{{features}}}}, {{{{features_object}}}}, {{{{feature.NAME}}}}, "
                f"{{{{entity_id}}}}, {{{{n_features}}}}" for u in unknown]
    missing = [n for n in names if n not in known]
    if missing:
        problems.append(f"template field(s) {', '.join(repr(n) for n in missing)} not in the dataset's features "
                        f"({', '.join(sorted(known)[:12])}{', ...' if len(known) > 12 else ''})")
    if problems:
        raise MappingError(f"{where}: request.template: " + "; ".join(problems))


# ----------------------------------------------------------------------------- probing


def probe(
    base_url: str,
    request: RequestMapping,
    response: ResponseMapping,
    bodies: list[Any],
    timeout_s: float = 5.0,
) -> list[dict[str, Any]]:
    """Send each body once (bounded: one attempt each) and check the answers fit the mapping.

    Returns what each probe extracted. Raises MappingError naming the status, the missing fields and
    the start of the body the server sent when a probe is not a 2xx answer or a mapped field is absent;
    ProbeAnswerError (exit 4) when an answer's probabilities are not sane (``chaosml.workload.answers.check_answer``).
    """
    import urllib.error
    import urllib.request

    from chaosml.workload.answers import check_answer

    extractor = Extractor(response)
    results: list[dict[str, Any]] = []
    for i, body in enumerate(bodies):
        data = body["raw"].encode("utf-8", "surrogateescape") if isinstance(body, dict) and "raw" in body else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", **dict(request.headers or {})}
        req = urllib.request.Request(base_url.rstrip("/") + request.path, data=data, headers=headers, method=request.method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as r:
                status, content, rh = r.status, r.read(), dict(r.headers.items())
        except urllib.error.HTTPError as exc:
            status, content, rh = exc.code, exc.read(), dict(exc.headers.items())
        except OSError as exc:
            raise MappingError(f"probe request {i + 1} to {request.method} {base_url}{request.path} failed: {exc}") from None
        shown = content[:300].decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise MappingError(
                f"probe request {i + 1}: {request.method} {request.path} answered HTTP {status} to a clean row "
                f"(check request.path, request.body): {shown!r}"
            )
        missing = extractor.missing(content, rh)
        if missing:
            raise MappingError(
                f"probe request {i + 1}: the response has no {', '.join(missing)} "
                f"(check response: in the experiment, or set the field to not-exposed); the server sent: {shown!r}"
            )
        check_answer(content, extractor.plan, shown)  # insane probabilities stop the run: exit 4
        results.append(extractor.extract(content, rh))
    return results
