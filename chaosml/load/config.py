"""Load-process configuration, its start helper and progress parsing; used by the runner, never imports locust.

The runner builds a :class:`LoadConfig`, calls :func:`start_load` (which writes the config as
JSON and starts ``python -m chaosml.load CONFIG.json`` in its own session), reads progress
lines from the child's stdout with :func:`parse_progress`, and later reads the samples CSV.
Importing this module must stay free of locust/gevent: importing locust monkey-patches the
interpreter.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import MISSING, asdict, dataclass, fields
from typing import IO, Any

from chaosml.errors import LoadConfigError

#: Exit code of the load process for a bad config or payload file (matches "invalid input").
EXIT_INVALID_INPUT = 4
#: Exit code of the load process for an unexpected internal error.
EXIT_INTERNAL = 3

PROGRESS_TYPES = ("progress", "done")


@dataclass(frozen=True)
class LoadConfig:
    """Everything the load process needs; serialised to JSON for the child process."""

    target_url: str  # base URL, e.g. http://127.0.0.1:8080
    path: str  # request path, e.g. /predict
    users: int  # concurrent simulated users
    spawn_rate: float  # users started per second
    duration_s: float  # how long to send load, seconds
    rate_per_user: float | None  # requests/s per user (constant_throughput); None = as fast as possible
    request_timeout_s: float  # connect and network timeout per request, seconds
    mix: dict[str, float]  # cohort -> relative weight
    payloads_file: str  # JSON: {"cohort": [{"body": ..., "label": int, "entity_id": int}, ...]}
    samples_file: str  # CSV appended to, columns records.SAMPLE_COLUMNS (header written if new)
    progress_interval_s: float = 1.0  # seconds between progress lines on stdout
    seed: int = 0  # seeds cohort and payload choice
    control_file: str | None = None  # load-control JSON polled every 0.25 s (see control.py); None = off
    record: bool = True  # write one samples row per request; False only to measure recording overhead (chaosml bench)
    method: str = "POST"  # HTTP method of every request
    headers: dict[str, str] | None = None  # extra request headers (a user's stack: auth, tenant, ...)
    response: dict[str, str] | None = None  # field -> JSON path | header:NAME | not-exposed (chaosml.workload.mapping); None = reference
    request_body: dict[str, Any] | None = None  # drift rebuilds bodies: RequestMapping's body, input_name, datatype, template; None = reference
    stages: list[list[float]] | None = None  # load.shape: [end_s, users, spawn_rate] per stage (chaosml.model.loadshape); None = users at spawn_rate
    locustfile: str | None = None  # a user's locustfile: its User classes send the load (see driver.locustfile_users); None = the payloads

    def __post_init__(self) -> None:
        # Decouple from the caller's dict.
        if isinstance(self.mix, dict):
            object.__setattr__(self, "mix", dict(self.mix))

    def validate(self) -> list[str]:
        """Return every problem with this config, one message each (``field: message``)."""
        issues: list[str] = []

        def num(name: str, value: Any, *, allow_zero: bool = False) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                issues.append(f"{name}: must be a finite number, got {value!r}")
            elif value < 0 or (value == 0 and not allow_zero):
                issues.append(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")

        if not isinstance(self.target_url, str) or not self.target_url.startswith(("http://", "https://")):
            issues.append(f"target_url: must start with http:// or https://, got {self.target_url!r}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            issues.append(f"path: must start with '/', got {self.path!r}")
        if isinstance(self.users, bool) or not isinstance(self.users, int) or self.users < 1:
            issues.append(f"users: must be an integer >= 1, got {self.users!r}")
        num("spawn_rate", self.spawn_rate)
        num("duration_s", self.duration_s)
        if self.rate_per_user is not None:
            num("rate_per_user", self.rate_per_user)
        num("request_timeout_s", self.request_timeout_s)
        num("progress_interval_s", self.progress_interval_s)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            issues.append(f"seed: must be an integer, got {self.seed!r}")
        if not isinstance(self.mix, dict) or not self.mix:
            issues.append("mix: must map at least one cohort to a weight")
        else:
            for cohort, weight in self.mix.items():
                if not isinstance(cohort, str) or not cohort:
                    issues.append(f"mix: cohort names must be non-empty strings, got {cohort!r}")
                num(f"mix.{cohort}", weight, allow_zero=True)
            weights = [w for w in self.mix.values() if isinstance(w, int | float) and not isinstance(w, bool)]
            valid = len(weights) == len(self.mix) and all(math.isfinite(w) and w >= 0 for w in weights)
            if valid and sum(weights) <= 0:
                issues.append("mix: weights must sum to > 0")
        if self.method not in ("POST", "PUT", "GET"):
            issues.append(f"method: must be POST, PUT or GET, got {self.method!r}")
        if self.headers is not None and (
            not isinstance(self.headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items())
        ):
            issues.append("headers: must map header names to strings")
        if self.response is not None:
            from chaosml.workload.mapping import RESPONSE_FIELDS, check_field_spec

            if not isinstance(self.response, dict):
                issues.append("response: must map response fields to specs")
            else:
                for k, v in self.response.items():
                    problem = "unknown field" if k not in RESPONSE_FIELDS else (check_field_spec(v) if isinstance(v, str) else "not a string")
                    if problem:
                        issues.append(f"response.{k}: {problem}")
        if self.request_body is not None:
            from chaosml.workload.mapping import BODY_PRESETS

            if not isinstance(self.request_body, dict) or self.request_body.get("body") not in BODY_PRESETS:
                issues.append(f"request_body: must be an object whose body is one of {', '.join(BODY_PRESETS)}")
            elif self.request_body.keys() - {"body", "input_name", "datatype", "template"}:
                issues.append(f"request_body: unknown keys {sorted(self.request_body.keys() - {'body', 'input_name', 'datatype', 'template'})}")
        if self.stages is not None:
            issues += _stage_issues(self.stages)
        if self.locustfile is not None and (not isinstance(self.locustfile, str) or not self.locustfile.endswith(".py")):
            issues.append(f"locustfile: must be the path of a .py file or null, got {self.locustfile!r}")
        if not isinstance(self.record, bool):
            issues.append(f"record: must be true or false, got {self.record!r}")
        if self.control_file is not None and (not isinstance(self.control_file, str) or not self.control_file):
            issues.append(f"control_file: must be a non-empty path or null, got {self.control_file!r}")
        for name in ("payloads_file", "samples_file"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                issues.append(f"{name}: must be a non-empty path, got {value!r}")
        return issues

    def check(self) -> None:
        """Raise :class:`LoadConfigError` listing every problem, if there are any."""
        issues = self.validate()
        if issues:
            raise LoadConfigError(issues)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> LoadConfig:
        """Decode and validate; raises :class:`LoadConfigError` with every problem found."""
        try:
            raw = json.loads(s)
        except json.JSONDecodeError as e:
            raise LoadConfigError([f"not valid JSON: {e}"]) from None
        if not isinstance(raw, dict):
            raise LoadConfigError([f"must be a JSON object, got {type(raw).__name__}"])
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        issues = [f"{name}: missing" for name in sorted(required - raw.keys())]
        issues += [f"unknown field {k!r}" for k in sorted(raw.keys() - known)]
        if issues:
            raise LoadConfigError(issues)
        config = cls(**raw)
        config.check()
        return config


def _stage_issues(stages: Any) -> list[str]:
    """Problems with ``stages``: a non-empty list of [end_s, users, spawn_rate], ends increasing."""
    if not isinstance(stages, list) or not stages:
        return ["stages: must be a non-empty list of [end_s, users, spawn_rate]"]
    issues, last = [], 0.0
    for i, st in enumerate(stages):
        ok = isinstance(st, list) and len(st) == 3 and all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in st)
        if not ok or st[0] < last or st[1] < 0 or st[1] != int(st[1]) or st[2] <= 0:
            issues.append(f"stages[{i}]: must be [end_s >= the previous end, users (an integer >= 0), spawn_rate > 0], got {st!r}")
        else:
            last = float(st[0])
    return issues


def parse_progress(line: str | bytes) -> dict[str, Any] | None:
    """Parse one stdout line of the load process; None unless it is a progress/done record."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("type") not in PROGRESS_TYPES:
        return None
    return record


def start_load(
    config: LoadConfig,
    config_path: str | os.PathLike[str],
    *,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[str]:
    """Write ``config`` to ``config_path`` and start the load process in its own session.

    stdout is a text pipe of JSON lines (see :func:`parse_progress`); the caller must keep
    draining it (about one short line per ``progress_interval_s``) or the child eventually
    blocks on a full pipe. stderr (locust's logs, error messages) is inherited unless given. A run's ledger records
    the process (:func:`chaosml.procs.note_spawn`).
    Stop early with ``proc.terminate()`` (SIGTERM): the child stops its users, flushes the
    samples file and exits 0.
    """
    from chaosml.procs import note_spawn

    config.check()
    with open(config_path, "w", encoding="utf-8") as f:
        f.write(config.to_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaosml.load", os.fspath(config_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    note_spawn(proc.pid, "load", os.environ)  # a run's ledger records it (chaosml.procs)
    return proc
