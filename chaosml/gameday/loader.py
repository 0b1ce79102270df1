"""Game-day YAML -> validated GameDay, or one ExperimentError holding every issue; called by ``chaosml gameday``.

Decodes with chaosml.decoding's located YAML tree and converters, as the experiment loader does: the
same bounded safe composer, the same ``file:line:col: field.path: message`` issues, unknown keys
with "did you mean". Every referenced experiment file is loaded with ``load_experiment``; its
issues keep their own file and line.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chaosml.decoding import BAD, MAX_FILE_BYTES, Conv, Decoder, Node, describe
from chaosml.errors import ExperimentError, Issue
from chaosml.gameday.model import (
    CONCURRENCY,
    ON_FAILURE,
    SEVERITIES,
    WEEKDAYS,
    Blackout,
    GameDay,
    GameDayExperiment,
    Schedule,
)
from chaosml.loader import EMPTY, document_kind, load_experiment_text, read_experiment_text

__all__ = ["load_gameday", "load_gameday_text", "valid_cron"]

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,50}[a-z0-9])?")
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")
MAX_EXPERIMENTS = 100


def valid_cron(expr: str) -> str | None:
    """None if ``expr`` is a valid 5-field cron expression, else why not."""
    from croniter import croniter

    if len(expr.split()) != 5:
        return f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(expr.split())}"
    try:
        croniter(expr)
    except (ValueError, KeyError) as exc:
        return f"invalid cron expression: {exc}"
    return None


def load_gameday(path: str | Path) -> GameDay:
    filename = str(path)
    try:
        data = Path(path).read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise ExperimentError([Issue(filename, 1, 1, "", f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise ExperimentError([Issue(filename, 1, 1, "", f"the file is larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExperimentError([Issue(filename, 1, 1, "", "the file is not UTF-8 text")]) from None
    return load_gameday_text(text, filename, base_dir=Path(path).parent)


def load_gameday_text(text: str, filename: str = "<string>", base_dir: Path | None = None) -> GameDay:
    """Validate game-day YAML; experiment paths are relative to ``base_dir`` (default: the file's folder)."""
    d = _GameDayDecoder(filename, base_dir if base_dir is not None else Path(filename).parent)
    root = d.d.compose(text, empty=EMPTY)
    if root is None:
        raise ExperimentError(d.d.issues)
    if document_kind(root) == "experiment":
        raise ExperimentError([Issue(filename, root.line, root.col, "", "this is an experiment file, not a game-day: "
                                     f"`chaosml run {filename}` runs it; a game-day file lists experiments: [{{path: ...}}] and has a name:")])
    gameday = d.gameday(root)
    if gameday is None or d.d.issues:
        raise ExperimentError(d.d.issues or [Issue(filename, 1, 1, "", "invalid game-day file")])
    return gameday


class _GameDayDecoder:
    """Decodes one game-day document with a generic located-YAML :class:`~chaosml.decoding.Decoder`."""

    def __init__(self, filename: str, base_dir: Path) -> None:
        self.d = Decoder(filename)
        self.base_dir = base_dir
        self.nested: list[Issue] = []  # issues inside experiment files
        self.tz = "UTC"  # the schedule's time zone, for absolute blackouts

    def gameday(self, root: Node) -> GameDay | None:
        self.d.where[""] = (root.line, root.col)
        schema = {
            "version": ("version", self.d.integer(1, 1)),
            "name": ("name", self.name_conv()),
            "release": ("release", self.d.string()),
            "description": ("description", self.d.string(allow_empty=True)),
            "on_failure": ("on_failure", self.d.string(ON_FAILURE, "on_failure")),
            "experiments": ("experiments", self.experiments),
            "cohort_weights": ("cohort_weights", self.d.mapping_of(self.d.number(lo=0, lo_open=True))),
            "schedule": ("schedule", self.schedule),
        }
        values = self.d.fields(root, "", schema, required=("name", "experiments"))
        assert values is not None
        self.d.issues.extend(self.nested)
        if self.d.issues or any(v is BAD for v in values.values()):
            return None
        cw = values.pop("cohort_weights", None)
        return GameDay(file=Path(self.d.filename), cohort_weights=MappingProxyType(dict(cw or {})), **values)

    def name_conv(self) -> Conv:
        inner = self.d.string()

        def conv(y: Node, path: str) -> Any:
            v = inner(y, path)
            if v is not BAD and not _NAME.fullmatch(v):
                self.d.issue(y, path, f"{v!r} is not a valid name: lower-case letters, digits and '-', at most 52 characters")
                return BAD
            return v

        return conv

    # -- experiments -----------------------------------------------------------------

    def experiments(self, y: Node, path: str) -> Any:
        if y.kind == "bad":
            return BAD
        if y.kind != "seq":
            self.d.issue(y, path, f"expected a list of experiment files, got {describe(y)}")
            return BAD
        if not y.value:
            self.d.issue(y, path, "must list at least one experiment")
            return BAD
        if len(y.value) > MAX_EXPERIMENTS:
            self.d.issue(y, path, f"at most {MAX_EXPERIMENTS} experiments")
            return BAD
        out = []
        for i, iy in enumerate(y.value):
            ipath = f"{path}[{i}]"
            self.d.where[ipath] = (iy.line, iy.col)
            out.append(self.experiment_entry(iy, ipath))
        return BAD if any(v is BAD for v in out) else tuple(out)

    def experiment_entry(self, y: Node, path: str) -> Any:
        if y.kind == "scalar":
            source = self.d.string(what="path")(y, path)
            values: dict[str, Any] = {"source": source}
            at: Node = y
        else:
            schema = {
                "path": ("source", self.d.string(what="path")),
                "weight": ("weight", self.d.number(lo=0, lo_open=True, hi=1000)),
                "severity": ("severity", self.severity),
            }
            got = self.d.fields(y, path, schema, required=("path",))
            if got is None:
                return BAD
            values = got
            at = y.value["path"][2] if y.kind == "map" and "path" in y.value else y
        if any(v is BAD for v in values.values()):
            return BAD
        source = values.pop("source")
        spath = f"{path}.path" if y.kind == "map" else path
        file = (self.base_dir / source).resolve() if not Path(source).is_absolute() else Path(source)
        if not file.is_file():
            self.d.issue(at, spath, f"no experiment file {source!r} (looked for {file})")
            return BAD
        try:
            text = read_experiment_text(file)
            experiment = load_experiment_text(text, str(file))
        except ExperimentError as exc:
            self.nested.extend(exc.issues)
            self.d.issue(at, spath, f"{source!r} is not a valid experiment: {len(exc.issues)} problem(s), listed with its own lines")
            return BAD
        sev = values.pop("severity", None)
        level, per_fault = (sev, {}) if isinstance(sev, str) or sev is None else (None, dict(sev))
        unknown = [f for f in per_fault if f not in {x.name for x in experiment.faults}]
        if unknown:
            self.d.issue_at(f"{path}.severity", f"no fault named {', '.join(map(repr, unknown))} in {source!r}")
            return BAD
        return GameDayExperiment(
            path=file,
            source=source,
            experiment=experiment,
            text=text,
            weight=float(values.get("weight", 1.0)),
            severity=level,
            fault_severity=MappingProxyType(per_fault),
        )

    def severity(self, y: Node, path: str) -> Any:
        if y.kind == "map":
            return self.d.mapping_of(self.d.string(SEVERITIES, "severity"))(y, path)
        return self.d.string(SEVERITIES, "severity")(y, path)

    # -- schedule --------------------------------------------------------------------

    def schedule(self, y: Node, path: str) -> Any:
        schema = {
            "cron": ("cron", self.cron_conv()),
            "timezone": ("timezone", self.tz_conv()),
            "concurrency": ("concurrency", self.d.string(CONCURRENCY, "concurrency policy")),
            "history_limit": ("history_limit", self.d.integer(0, 100)),
            "blackouts": ("blackouts", self.d.section_list(self.blackout)),
        }
        # absolute blackouts are read in the schedule's zone: peek at it before decoding them
        self.tz = "UTC"
        if y.kind == "map" and "timezone" in y.value:
            tz = y.value["timezone"][2]
            if tz.kind == "scalar" and isinstance(tz.value, str):
                try:
                    ZoneInfo(tz.value)
                    self.tz = tz.value
                except (ZoneInfoNotFoundError, ValueError):
                    pass
        values = self.d.fields(y, path, schema, required=("cron",))
        if values is None:
            return BAD
        return self.d.build(Schedule, values)

    def cron_conv(self) -> Conv:
        return self.d.checked(valid_cron)

    def tz_conv(self) -> Conv:
        def problem(v: str) -> str | None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                return f"unknown time zone {v!r}: use an IANA name such as UTC or Europe/Paris"
            return None

        return self.d.checked(problem)

    def blackout(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "reason": ("reason", self.d.string(allow_empty=True)),
            "cron": ("cron", self.cron_conv()),
            "duration": ("duration_s", self.d.duration(positive=True)),
            "start": ("start", self.d.string()),
            "end": ("end", self.d.string()),
            "weekdays": ("weekdays", self.d.list_of(self.d.string(WEEKDAYS, "weekday"), non_empty=True, unique=True)),
            "from": ("from", self.clock()),
            "to": ("to", self.clock()),
        }
        values = self.d.fields(y, path, schema)
        if values is None or any(v is BAD for v in values.values()):
            return BAD
        forms = [k for k, keys in (("cron", ("cron",)), ("range", ("start", "end")), ("weekly", ("weekdays",))) if any(x in values for x in keys)]
        if len(forms) != 1:
            self.d.issue(y, path, "give exactly one of: cron + duration, start + end, or weekdays + from + to")
            return BAD
        need = {"cron": ("cron", "duration_s"), "range": ("start", "end"), "weekly": ("weekdays", "from", "to")}[forms[0]]
        extra = {
            "cron": ("start", "end", "weekdays", "from", "to"),
            "range": ("cron", "duration_s", "weekdays", "from", "to"),
            "weekly": ("cron", "duration_s", "start", "end"),
        }[forms[0]]
        names = {"duration_s": "duration"}
        missing = [names.get(k, k) for k in need if k not in values]
        if missing:
            self.d.issue(y, path, f"missing required key {missing[0]!r} for this kind of blackout")
            return BAD
        stray = [names.get(k, k) for k in extra if k in values]
        if stray:
            self.d.issue_at(f"{path}.{stray[0]}", f"{stray[0]!r} does not go with this kind of blackout")
            return BAD
        reason = values.get("reason", "")
        if forms[0] == "cron":
            return Blackout(reason=reason, cron=values["cron"], duration_s=values["duration_s"])
        if forms[0] == "weekly":
            days = tuple(WEEKDAYS.index(d) for d in values["weekdays"])
            return Blackout(reason=reason, weekdays=days, from_min=values["from"], to_min=values["to"])
        return self.absolute_range(path, reason, values["start"], values["end"])

    def absolute_range(self, path: str, reason: str, start: str, end: str) -> Any:
        zone = ZoneInfo(self.tz)
        out = []
        for key, text in (("start", start), ("end", end)):
            try:
                t = dt.datetime.fromisoformat(text.strip())
            except ValueError:
                self.d.issue_at(f"{path}.{key}", f"expected an ISO date-time like 2026-12-24T00:00, got {text!r}")
                return BAD
            out.append(t if t.tzinfo else t.replace(tzinfo=zone))
        if out[1] <= out[0]:
            self.d.issue_at(f"{path}.end", "must be after start")
            return BAD
        return Blackout(reason=reason, start=out[0], end=out[1])

    def clock(self) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if y.kind == "scalar" and isinstance(y.value, int) and not isinstance(y.value, bool) and ":" in y.text:
                self.d.issue(y, path, f"YAML reads {y.text} as a number: quote it (\"{y.text}\")")
                return BAD
            v = self.d.string()(y, path)
            if v is BAD:
                return BAD
            m = _HHMM.fullmatch(v.strip())
            if not m or int(m.group(2)) > 59 or int(m.group(1)) * 60 + int(m.group(2)) > 24 * 60:
                self.d.issue(y, path, f"expected a time of day HH:MM (00:00 to 24:00), got {v!r}")
                return BAD
            return int(m.group(1)) * 60 + int(m.group(2))

        return conv
