"""Load cohorts: labelled request payloads built from a dataset's held-out rows; used by the runner.

Each payload is ``{"body": <JSON body>, "label": int | None, "entity_id": int | None}``; the load
process samples them by the experiment's mix (and by the load-control file an
``adversarial-payload`` fault writes) and sends ``body``. A body ``{"raw": "..."}`` is sent verbatim
(bytes through ``surrogateescape``), for payloads that are not JSON or that ``json.dumps`` cannot
make (10,000 levels deep, NaN). ``label``/``entity_id`` are None where meaningless (garbage).

The hostile cohorts (``catalog.HOSTILE_COHORTS``) are built here too; ``adversarial-evasion``
comes from :mod:`chaosml.workload.evasion`. Cohorts with big bodies keep only a few payloads
(``COHORT_LIMITS``) so the payload file stays small.

Slice cohorts (``builtin_dataset.SLICES``) are clean payloads of the held-out rows whose request feature lies in a
range: ``mid-radius`` (``mean_radius`` in [14, 17), about a quarter of the rows, where the model is
least sure) is the cohort a ``model-rollout`` ``drop-cohort`` variant is trained without.

File cohorts (``load.data.cohort``; ``Dataset.cohorts``): a clean row is sent under its file
cohort, never under ``clean``. :func:`expand_mix` turns the experiment's mix into the one the load
process draws from (``clean: w`` -> ``w * share`` for each file cohort, by its share of the test
rows, added to weights the mix gives file cohorts by name), and :func:`build_payloads` builds a
file cohort's payloads with the clean builder over that cohort's test rows. The generated cohorts
(missing-features, out-of-range, hostile ones) draw from every test row and keep their names.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chaosml.workload.builtin_dataset import SLICES, Dataset, slice_rows

if TYPE_CHECKING:
    from chaosml.model.experiment import Experiment

Payload = dict[str, Any]

#: cohort name -> builder(dataset, row index, rng) -> payload
COHORT_BUILDERS: dict[str, Callable[[Dataset, int, random.Random], Payload]] = {}


def cohort(name: str) -> Callable[[Callable[[Dataset, int, random.Random], Payload]], Callable[[Dataset, int, random.Random], Payload]]:
    def register(fn: Callable[[Dataset, int, random.Random], Payload]) -> Callable[[Dataset, int, random.Random], Payload]:
        COHORT_BUILDERS[name] = fn
        return fn

    return register


def _payload(ds: Dataset, i: int, body: dict[str, Any]) -> Payload:
    return {"body": body, "label": int(ds.label(i)), "entity_id": int(ds.entity_ids[i])}


@cohort("clean")
def _clean(ds: Dataset, i: int, rng: random.Random) -> Payload:
    return _payload(ds, i, ds.row_payload(i))


COHORT_BUILDERS.update(dict.fromkeys(SLICES, _clean))  # a slice cohort's rows are sent clean; build_payloads keeps the slice's rows


@cohort("missing-features")
def _missing(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features = dict(body["features"])
    for name in rng.sample(sorted(features), rng.randint(1, 3)):
        del features[name]
    return _payload(ds, i, {**body, "features": features})


@cohort("out-of-range")
def _out_of_range(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features = dict(body["features"])
    name = rng.choice(sorted(features))
    lo, hi = ds.feature_ranges()[name]
    features[name] = float(hi + 10 * (hi - lo))
    return _payload(ds, i, {**body, "features": features})


# ----------------------------------------------------------------------------- hostile cohorts

#: cohort -> most payloads built (the first held-out rows); big bodies would bloat the payload file.
COHORT_LIMITS: dict[str, int] = {"oversized": 6, "deep-nesting": 8, "garbage": 48}

NESTING_DEPTH = 10_000
OVERSIZED_BYTES = 1_000_000  # under the gateway's 1 MiB limit: the replica decides
OVERSIZED_HUGE_BYTES = 2 * 1024 * 1024  # over every limit
OVERSIZED_KEYS = 10_000
HUGE_INTS: tuple[int, ...] = (2**63, -(2**63) - 1, 2**64 + 1, 10**30, 10**400)


def _raw(text: str | bytes) -> dict[str, str]:
    """A body sent verbatim: bytes survive JSON through ``surrogateescape``."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    return {"raw": text}


def _hostile(body: Any, label: int | None, entity_id: int | None) -> Payload:
    return {"body": body, "label": label, "entity_id": entity_id}


@cohort("adversarial-evasion")
def _evasion(ds: Dataset, i: int, rng: random.Random) -> Payload:
    from chaosml.workload.evasion import evasion_for

    ev = evasion_for(ds)
    pos = {int(r): k for k, r in enumerate(ev.rows)}
    body = ds.row_payload(i)
    x = ev.x_request[pos[int(i)]]
    body["features"] = {f: float(x[j]) for j, f in enumerate(ds.request_features)}
    return _payload(ds, i, body)


@cohort("extreme-values")
def _extreme(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features: dict[str, Any] = dict(body["features"])
    kind = rng.randrange(4)
    if kind == 3:  # a huge entity id
        eid: Any = rng.choice(HUGE_INTS)
        return _hostile({**body, "entity_id": eid}, ds.label(i), None)
    for name in rng.sample(sorted(features), rng.randint(1, 3)):
        features[name] = (1e308, -1e308, rng.choice(HUGE_INTS))[kind]
    return _payload(ds, i, {**body, "features": features})


_WRONG_TYPES: tuple[Callable[[float], Any], ...] = (
    lambda v: repr(v),  # "12.5"
    lambda v: [v],
    lambda v: None,
    lambda v: True,
    lambda v: False,
    lambda v: {"value": v},
    lambda v: "",
    lambda v: "NaN",
)


@cohort("type-confusion")
def _type_confusion(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    eid = int(body["entity_id"])
    label = ds.label(i)
    kind = rng.randrange(6)
    if kind == 0:  # features as a list of values
        return _hostile({**body, "features": list(body["features"].values())}, label, eid)
    if kind == 1:  # entity_id as a string
        return _hostile({**body, "entity_id": str(eid)}, label, None)
    if kind == 2:  # entity_id as a float, a boolean or a list
        return _hostile({**body, "entity_id": rng.choice([float(eid) + 0.5, True, [eid]])}, label, None)
    if kind == 3:  # the whole body is not an object
        return _hostile(rng.choice([list(body["features"].values()), str(body), None, 42]), label, None)
    features: dict[str, Any] = dict(body["features"])
    for name in rng.sample(sorted(features), rng.randint(1, 3)):
        features[name] = rng.choice(_WRONG_TYPES)(features[name])
    if kind == 5:
        return _hostile({**body, "features": json.dumps(features)}, label, eid)  # an object as a JSON string
    return _hostile({**body, "features": features}, label, eid)


@cohort("oversized")
def _oversized(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    kind = int(i) % 3
    if kind == 0:  # ~1 MB: a valid request plus padding
        base = len(json.dumps(body, separators=(",", ":")))
        pad = max(0, OVERSIZED_BYTES - base - len(',"padding":""'))
        return _payload(ds, i, {**body, "padding": "x" * pad})
    if kind == 1:  # 10,000 keys in features
        features = dict(body["features"])
        features.update({f"extra_{k:05d}": float(k) for k in range(OVERSIZED_KEYS)})
        return _payload(ds, i, {**body, "features": features})
    return _payload(ds, i, {**body, "padding": "y" * OVERSIZED_HUGE_BYTES})


@cohort("deep-nesting")
def _deep(ds: Dataset, i: int, rng: random.Random) -> Payload:
    d = NESTING_DEPTH
    eid = int(ds.entity_ids[i])
    kind = rng.randrange(4)
    if kind == 0:  # features nested in lists
        text = f'{{"entity_id":{eid},"features":' + "[" * d + "]" * d + "}"
    elif kind == 1:  # nested objects all the way down
        text = '{"a":' * d + "1" + "}" * d
    elif kind == 2:  # a feature value nested deep inside valid features
        first = ds.request_features[0]
        text = f'{{"entity_id":{eid},"features":{{"{first}":' + '{"v":' * d + "1" + "}" * d + "}}"
    else:  # unclosed nesting
        text = "[" * d
    return _hostile(_raw(text), None, None)


@cohort("garbage")
def _garbage(ds: Dataset, i: int, rng: random.Random) -> Payload:
    valid = json.dumps(ds.row_payload(i), separators=(",", ":"))
    kind = rng.randrange(6)
    if kind == 0:  # random bytes
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 512)))
    elif kind == 1:  # invalid UTF-8 around JSON syntax
        data = b'{"entity_id": \xff\xfe, "features": {"\xc3\x28": 1}}'
    elif kind == 2:  # truncated JSON
        data = valid[: rng.randint(1, len(valid) - 1)].encode()
    elif kind == 3:  # empty body
        data = b""
    elif kind == 4:  # NUL bytes and control characters
        data = b"\x00" * rng.randint(1, 64) + valid.encode() + b"\x00\x1b[2J"
    else:  # not JSON at all
        data = rng.choice([b"null", b"undefined", b"<xml>1</xml>", b"entity_id=1&features=2", b"{}}", b"\xef\xbb\xbf{}"])
    return _hostile(_raw(data), None, None)


def _json_number(v: float) -> str:
    return json.dumps(v, allow_nan=True)


@cohort("corrupted-payload")
def _corrupted(ds: Dataset, i: int, rng: random.Random) -> Payload:
    body = ds.row_payload(i)
    features = dict(body["features"])
    ranges = ds.feature_ranges()
    kind = rng.randrange(3)
    names = rng.sample(sorted(features), rng.randint(1, 3))
    if kind == 2:  # valid JSON, values far out of range (negative, x1000)
        for name in names:
            lo, hi = ranges[name]
            features[name] = rng.choice([-abs(hi) * 1000.0, hi * 1000.0, lo - 1e6])
        return _payload(ds, i, {**body, "features": features})
    special = (float("nan"), float("inf"), float("-inf"))
    for name in names:
        features[name] = rng.choice(special)
    # NaN/Infinity are not JSON: Python's parser takes them, others refuse; sent as raw text
    items = ",".join(f"{json.dumps(k)}:{_json_number(v)}" for k, v in features.items())
    return _payload(ds, i, _raw(f'{{"entity_id":{int(body["entity_id"])},"features":{{{items}}}}}'))


# ----------------------------------------------------------------------------- building


def build_payloads(ds: Dataset, cohorts: list[str], seed: int = 0) -> dict[str, list[Payload]]:
    """One payload per held-out row for every cohort named (deterministic for a seed).

    Cohorts in ``COHORT_LIMITS`` keep only that many payloads (from the first held-out rows). A
    file cohort (a value of ``ds.cohorts``) gets the clean payload of each of its held-out rows.
    """
    out: dict[str, list[Payload]] = {}
    file_cohorts = set(ds.cohorts.tolist()) if ds.cohorts is not None else set()
    for name in cohorts:
        if name in out:
            continue
        rng = random.Random(f"{seed}:{name}")
        if name not in COHORT_BUILDERS and name in file_cohorts:
            assert ds.cohorts is not None
            rows = ds.test_idx[ds.cohorts[ds.test_idx] == name]
            out[name] = [_clean(ds, int(i), rng) for i in rows]
            continue
        builder = COHORT_BUILDERS[name]
        rows = ds.test_idx[: COHORT_LIMITS[name]] if name in COHORT_LIMITS else ds.test_idx
        if name in SLICES:
            rows = slice_rows(ds, name, rows)
        out[name] = [builder(ds, int(i), rng) for i in rows]
    return out


def file_cohort_shares(ds: Dataset) -> dict[str, float]:
    """File cohort -> its share of the held-out rows (cohorts with none left out); {} without file cohorts."""
    rows = ds.test_cohort_rows()
    total = sum(rows.values())
    return {c: n / total for c, n in rows.items() if n > 0} if total else {}


def expand_mix(mix: Mapping[str, float], ds: Dataset | None = None) -> dict[str, float]:
    """The mix the load process draws from: positive weights only, ``clean`` split over file cohorts.

    Without file cohorts this is the experiment's mix. With them, ``clean: w`` becomes
    ``{c: w * share_c}`` over the file cohorts (``share_c``: c's share of the test rows), added to
    the weight the mix gives ``c`` by name; other cohorts keep their weights and names.
    """
    if ds is None or ds.cohorts is None:
        return {c: float(w) for c, w in mix.items() if w > 0}
    shares = file_cohort_shares(ds)
    out: dict[str, float] = {}
    for name, w in mix.items():
        if w <= 0:
            continue
        if name == "clean":
            for c, share in shares.items():
                out[c] = out.get(c, 0.0) + float(w) * share
        else:
            out[name] = out.get(name, 0.0) + float(w)
    return {c: w for c, w in out.items() if w > 0}


def cohorts_needed(experiment: Experiment, ds: Dataset | None = None) -> list[str]:
    """Every cohort the load process may send in this experiment, in a stable order.

    The mix's cohorts with a positive weight (``clean`` split into file cohorts when ``ds`` has
    them, see :func:`expand_mix`), then the cohort of every ``adversarial-payload``
    fault (the fault switches the load to it through the load-control file, so its payloads must
    already be in the payload file).
    """
    out = list(expand_mix(experiment.load.mix, ds))
    for spec in experiment.faults:
        if spec.type == "adversarial-payload":
            name = str(getattr(spec.params, "cohort", ""))
            if name and name not in out:
                out.append(name)
    return out
