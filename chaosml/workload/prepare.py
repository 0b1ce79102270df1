"""What one run sends, prepared before anything starts, and the mapping probe once the target answers; called by the runner.

:func:`prepare_workload`: the dataset (built-in or the user's file) -> the cohorts the mix and the
adversarial faults need -> request bodies rendered by the experiment's request mapping, and the mix
the load process draws from. :func:`probe_mapping`: a few clean requests to a custom stack, so
that a response mapping that does not fit the server's answers stops the run before the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaosml.errors import InvalidInputError
from chaosml.model.codec import to_data
from chaosml.model.experiment import Experiment
from chaosml.workload.cohorts import build_payloads, cohorts_needed, expand_mix, file_cohort_shares
from chaosml.workload.mapping import MappingError, RequestMapping, ResponseMapping, check_template, probe
from chaosml.workload.user_dataset import dataset_for


@dataclass(frozen=True)
class Workload:
    """Request bodies per cohort, the mix over them, and where clean rows go (``clean``, or the file cohorts)."""

    payloads: dict[str, list[dict[str, Any]]]
    mix: dict[str, float]
    clean_cohorts: list[str] = field(default_factory=lambda: ["clean"])
    file_cohorts: dict[str, Any] | None = None  # which file cohorts existed and the weight each got (for the journal)


def request_mapping(experiment: Experiment) -> RequestMapping:
    """The experiment's ``request`` section as the mapping that renders bodies."""
    r = experiment.request
    return RequestMapping(path=r.path, method=r.method, headers=dict(r.headers), body=r.body,
                          input_name=r.input_name, datatype=r.datatype, outputs=r.outputs, template=r.template)


def response_fields(experiment: Experiment) -> dict[str, str]:
    """The experiment's ``response`` section: field -> JSON path, header or not-exposed."""
    r = experiment.response
    return {"prediction": r.prediction, "confidence": r.confidence, "model_version": r.model_version,
            "served_by": r.served_by, "replica": r.replica}


def request_body(experiment: Experiment) -> dict[str, Any] | None:
    """How the load process renders a body it rebuilds (drift) as JSON data; None for the reference body."""
    r = experiment.request
    if r.body == "reference":
        return None
    return {"body": r.body, "input_name": r.input_name, "datatype": r.datatype, "template": to_data(r.template)}


def prepare_workload(experiment: Experiment, source: str = "experiment") -> Workload:
    """Dataset -> cohorts -> request bodies; a template the dataset cannot fill, or a load.locustfile that cannot be
    read or compiled, is InvalidInputError (exit 4)."""
    if experiment.load.locustfile is not None:
        check_locustfile(experiment.load.locustfile)
    ds = dataset_for(experiment)
    request = request_mapping(experiment)
    try:
        check_template(request, ds.request_features, source)
    except MappingError as exc:
        raise InvalidInputError(str(exc)) from None
    cohorts = cohorts_needed(experiment, ds)  # the mix's (clean split into file cohorts), plus those adversarial faults switch to
    payloads = build_payloads(ds, cohorts, seed=experiment.load.seed)
    mix = expand_mix(experiment.load.mix, ds)
    file_cohorts = None
    if ds.cohorts is not None:
        rows, shares = ds.test_cohort_rows(), file_cohort_shares(ds)
        file_cohorts = {
            "column": ds.cohort_column,
            "cohorts": {c: {"test_rows": n, "share": shares.get(c, 0.0), "weight": mix.get(c, 0.0)} for c, n in rows.items()},
            "mix": dict(mix),  # what the load process draws from
        }
    clean = ["clean"] if ds.cohorts is None else list(file_cohort_shares(ds))
    if any(f.type == "drift" for f in experiment.faults):  # the load process rebuilds these bodies while drift is active
        for c in clean:
            for item in payloads.get(c, []):
                if isinstance(item["body"], dict) and isinstance(item["body"].get("features"), dict):
                    item["features"] = dict(item["body"]["features"])
    if request.body != "reference":
        for items in payloads.values():
            for item in items:
                item["body"] = request.render(item["body"], ds.request_features)
    return Workload(payloads, dict(mix), clean, file_cohorts)


def write_payloads(path: Path, workload: Workload) -> Path:
    """The payload file the load process reads (chaosml.workload.payload_file)."""
    path.write_text(json.dumps(workload.payloads))
    return path


def probe_mapping(experiment: Experiment, workload: Workload, entry_url: str) -> list[dict[str, Any]] | None:
    """Send ``request.probes`` clean requests to a custom stack and check each answer against the response
    mapping; None when there is nothing to probe. Raises MappingError (and ProbeAnswerError, exit 4)."""
    clean = [p for c in workload.clean_cohorts for p in workload.payloads.get(c) or []]
    n = experiment.request.probes
    if experiment.target.stack != "custom" or not clean or n <= 0:
        return None
    response = ResponseMapping(response_fields(experiment))
    return probe(entry_url, request_mapping(experiment), response, [p["body"] for p in clean[:n]],
                 timeout_s=max(5.0, experiment.load.request_timeout))


def check_locustfile(path: str) -> None:
    """A locustfile that cannot be read or does not compile is invalid input (exit 4) before anything starts.

    Only compiled here, never imported: importing it would import locust (and gevent's patching)
    into the harness. Its User classes are found by the load process.
    """
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"load.locustfile {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        compile(source, path, "exec")
    except SyntaxError as exc:
        raise InvalidInputError(f"{path}:{exc.lineno}:{(exc.offset or 0)}: load.locustfile: {exc.msg}") from None
