"""The experiment file's sections -> chaosml.model objects; used by chaosml.loader.load_experiment_text.

:class:`ExperimentDecoder` holds one :class:`~chaosml.decoding.Decoder` (the located tree, the
generic converters and the issues) and the state the sections share with the checks across
them (chaosml.loader.checks): the load mix, the custom stack's keys, the raw SLOs, hypotheses,
abort conditions and faults. Faults decode in two steps: the envelope, then ``params`` into
the fault type's params class (``chaosml.model.faulttype.registry()``) (:func:`~chaosml.loader.checks.fault_params`).
"""

from __future__ import annotations

import re
from functools import partial
from types import MappingProxyType
from typing import Any

from chaosml.decoding import (
    BAD,
    Conv,
    Node,
    describe,
    join_path,
    quote,
    suggest,
)
from chaosml.loader.checks import check_custom_stack, cross_checks, fault_params, fmt_s
from chaosml.loader.monitoring import decode_monitoring
from chaosml.loader.shape import check_locustfile, compile_shape, decode_shape
from chaosml.loader.state import DecodeState
from chaosml.model import catalog
from chaosml.model.experiment import (
    DataSpec,
    EntrySpec,
    Experiment,
    FaultSpec,
    KubernetesSpec,
    LinkSpec,
    LoadSpec,
    NodeAccessSpec,
    Repeat,
    RequestSpec,
    ResponseSpec,
    RollbackSpec,
    ServiceSpec,
    SteadyState,
    TargetSpec,
    ToxiproxySpec,
)
from chaosml.model.faulttype import registry

#: Most injections of one fault.
MAX_REPEAT = 1000
#: Upper bounds that keep a typo from starting a runaway run.
MAX_REPLICAS = 100
MAX_USERS = 100_000

#: Stack names the target accepts (the bundled reference stack). Declaring ``target.services`` makes
#: the stack the user's own (model value "custom"; not written in the file).
STACKS: tuple[str, ...] = ("reference",)
#: A link (fault-proxy / Toxiproxy proxy) name a custom stack may declare.
LINK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
PORT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,31}")
#: Request body presets (see chaosml.workload.mapping).
BODY_PRESETS: tuple[str, ...] = ("reference", "kserve-v1", "kserve-v2", "template")
HTTP_METHODS: tuple[str, ...] = ("POST", "PUT", "GET")
#: Params accepted per rollback type: key -> kind ("duration").
ROLLBACK_PARAMS: dict[str, dict[str, str]] = {"wait-ready": {"timeout": "duration"}}


class ExperimentDecoder(DecodeState):
    """Decodes one experiment document section by section, collecting every issue in ``d.issues``."""

    def experiment(self, root: Node) -> Experiment | None:
        """The whole document -> Experiment, or None when any issue was found (see ``self.d.issues``)."""
        self.d.where[""] = (root.line, root.col)
        schema: dict[str, tuple[str, Conv]] = {
            "version": ("version", self.d.integer()),
            "title": ("title", self.d.string()),
            "description": ("description", self.d.string(allow_empty=True)),
            "release": ("release", self.d.string()),
            "target": ("target", self.target),
            "load": ("load", self.load),
            "steady_state": ("steady_state", self.steady_state),
            "hypotheses": ("hypotheses", self.d.section_list(self.hypothesis)),
            "faults": ("faults", self.fault_list),
            "abort": ("abort", self.d.section_list(self.abort)),
            "rollbacks": ("rollbacks", self.d.section_list(self.rollback)),
            "request": ("request", self.request),
            "response": ("response", self.response),
            "monitoring": ("monitoring", self.d.optional(partial(decode_monitoring, self))),
        }
        self.file_cohorts = _declares_file_cohorts(root)
        values = self.d.fields(root, "", schema, required=("title",))
        assert values is not None
        version = values.get("version", 1)
        if version is not BAD and version != 1:
            self.d.issue_at("version", f"unsupported version {version}: this chaosml reads version 1")
            values["version"] = BAD
        if "load" not in values:
            self.mix_cohorts = set(LoadSpec().mix)
        cross_checks(self, values)
        if self.d.issues:
            return None
        experiment = self.d.build(Experiment, values)
        return None if experiment is BAD else experiment

    def fault_list(self, y: Node, path: str) -> Any:
        """``faults``: a list of faults; fault names are known only when the list itself reads."""
        if y.kind != "seq" and not (y.kind == "scalar" and y.value is None):
            self.names_complete = False
        return self.d.section_list(self.fault)(y, path)

    # -- target: platform, kubernetes, custom stacks -----------------------------------------

    def target(self, y: Node, path: str) -> Any:
        schema = {
            "platform": ("platform", self.d.string(catalog.TARGET_PLATFORMS, "platform")),
            "stack": ("stack", self.d.string(STACKS, "stack")),
            "profile": ("profile", self.d.string(catalog.PROFILES, "profile")),
            "replicas": ("replicas", self.d.integer(1, MAX_REPLICAS)),
            "restart_delay": ("restart_delay", self.d.duration()),
            "kubernetes": ("kubernetes", self.d.optional(self.kubernetes)),
            "services": ("services", self.d.section_list(self.service)),
            "links": ("links", self.d.section_list(self.link)),
            "entry": ("entry", self.d.optional(self.entry)),
        }
        values = self.d.fields(y, path, schema)
        if values is None:
            return BAD
        check_custom_stack(self, path, values)
        platform = values.get("platform", TargetSpec().platform)
        if platform == "kubernetes" and values.get("kubernetes") is None:
            values["kubernetes"] = KubernetesSpec()
        elif platform == "local" and values.get("kubernetes") not in (None, BAD):
            self.d.issue_at(f"{path}.kubernetes", "only used when platform is kubernetes (platform is local)")
            values["kubernetes"] = BAD
        return self.d.build(TargetSpec, values)

    def kubernetes(self, y: Node, path: str) -> Any:
        schema = {
            "context": ("context", self.d.optional(self.d.string())),
            "namespace": ("namespace", self.dns_label()),
            "allowed_contexts": ("allowed_contexts", self.d.list_of(self.d.string(), non_empty=True)),
            "allow_any_context": ("allow_any_context", self.d.boolean()),
            "toxiproxy": ("toxiproxy", self.d.optional(self.toxiproxy)),
            "nodes": ("nodes", self.d.mapping_of(self.node_access, what="node name")),
        }
        return self.d.build(KubernetesSpec, self.d.fields(y, path, schema))

    def node_access(self, y: Node, path: str) -> Any:
        """``target.kubernetes.nodes.NODE``: how to reach one node's container runtime."""
        docker_host = self.d.matching(r"(unix|tcp|ssh)://\S+",
                                      lambda v: f"must be a Docker endpoint (unix://, tcp:// or ssh://), got {quote(v)}")
        schema = {"docker_host": ("docker_host", self.d.optional(docker_host)),
                  "stop": ("stop", self.d.list_of(self.d.string(), non_empty=True)),
                  "start": ("start", self.d.list_of(self.d.string(), non_empty=True)),
                  "exec": ("exec", self.d.list_of(self.d.string(), non_empty=True))}
        values = self.d.fields(y, path, schema)
        if values is not None and ("stop" in values) != ("start" in values):
            given, missing = ("stop", "start") if "stop" in values else ("start", "stop")
            self.d.issue_at(f"{path}.{given}", f"needs {missing} too: node-failure brings the node back with it")
            values[given] = BAD
        return self.d.build(NodeAccessSpec, values)

    def toxiproxy(self, y: Node, path: str) -> Any:
        schema = {
            "service": ("service", self.dns_label("Service name")),
            "port": ("port", self.d.string()),
            "url": ("url", self.d.optional(self.http_url())),
        }
        values = self.d.fields(y, path, schema)
        if values is not None and values.get("url") not in (None, BAD) and ("service" in values or "port" in values):
            self.d.issue_at(f"{path}.url", "give either url or service/port, not both")
            values["url"] = BAD
        return self.d.build(ToxiproxySpec, values)

    def dns_label(self, what: str = "namespace name") -> Conv:
        return self.d.matching(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?",
                             lambda v: f"{quote(v)} is not a valid {what} (lowercase letters, digits and '-')")

    def http_url(self) -> Conv:
        return self.d.matching(r"https?://[^\s/]+(/\S*)?", lambda v: f"must be an http:// or https:// URL, got {quote(v)}")

    def label_selector(self) -> Conv:
        """A non-empty mapping of Kubernetes label key -> value (matchLabels)."""
        key_re = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
        value_re = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")

        def value(y: Node, path: str) -> Any:
            v = self.env_value()(y, path)
            if v is not BAD and not value_re.fullmatch(v):
                self.d.issue(y, path, f"{quote(v)} is not a valid label value (at most 63 letters, digits, '-', '_', '.')")
                return BAD
            return v

        base = self.d.mapping_of(value)

        def conv(y: Node, path: str) -> Any:
            out = base(y, path)
            if out is BAD:
                return BAD
            if not out:
                self.d.issue(y, path, "must name at least one label, e.g. {app: my-model}")
                return BAD
            bad = [k for k in out if not key_re.fullmatch(k)]
            if bad:
                self.d.issue(y, path, f"{quote(bad[0])} is not a valid label key")
                return BAD
            return out

        return conv

    def service(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.dns_label("service name")),
            "command": ("command", self.d.list_of(self.d.string(allow_empty=True), non_empty=True)),
            "selector": ("selector", self.label_selector()),
            "health": ("health", self.d.string()),
            "replicas": ("replicas", self.d.integer(1, MAX_REPLICAS)),
            "env": ("env", self.d.mapping_of(self.env_value())),
            "cwd": ("cwd", self.d.optional(self.d.string())),
            "start_timeout": ("start_timeout", self.d.duration(positive=True)),
            "ports": ("ports", self.named_ports),
            "health_port": ("health_port", self.d.string()),
        }
        values = self.d.fields(y, path, schema, required=("name",))
        if values is None:
            return BAD
        self.service_keys[path] = (y, set(values))
        ports, hp = values.get("ports"), values.get("health_port")
        if hp not in (None, BAD) and ports is not BAD and hp not in (ports or {}):
            known = ", ".join(ports or {}) or "none declared"
            self.d.issue_at(f"{path}.health_port", f"no port {quote(hp)} in ports{suggest(hp, ports or {})} (ports: {known})")
            values["health_port"] = BAD
        health = values.get("health")
        if health not in (None, BAD) and health != "tcp" and not health.startswith("/"):
            self.d.issue_at(f"{path}.health", f"must be an HTTP path starting with '/' (e.g. /healthz) or 'tcp', got {quote(health)}")
            values["health"] = BAD
        return self.d.build(ServiceSpec, values)

    def named_ports(self, y: Node, path: str) -> Any:
        """``[http, grpc]`` (a free port each per replica) or ``{http: auto, metrics: 9090}`` (pinned) -> name -> port | None."""
        pairs: list[tuple[str, int | None, str]] = []
        if y.kind == "seq":
            names = self.d.list_of(self.d.string(), non_empty=True, unique=True)(y, path)
            if names is BAD:
                return BAD
            pairs = [(n, None, f"{path}[{i}]") for i, n in enumerate(names)]
        elif y.kind == "map":
            ok = True
            for key, (_, _, vy) in y.value.items():
                vpath = join_path(path, key)
                self.d.where[vpath] = (vy.line, vy.col)
                if vy.kind == "scalar" and vy.value in ("auto", None):
                    pairs.append((key, None, vpath))
                elif vy.kind == "scalar" and isinstance(vy.value, int) and not isinstance(vy.value, bool) and 0 < vy.value < 65536:
                    pairs.append((key, vy.value, vpath))
                else:
                    self.d.issue(vy, vpath, f"expected a port number (1-65535) or auto, got {describe(vy)}")
                    ok = False
            if not ok:
                return BAD
        else:
            self.d.issue(y, path, f"expected a list of port names ([http, grpc, metrics]) or a mapping name -> port|auto, got {describe(y)}")
            return BAD
        bad = [(n, p) for n, _, p in pairs if not PORT_NAME_RE.fullmatch(n)]
        for name, p in bad:
            self.d.issue_at(p, f"{quote(name)} is not a port name (a letter, then letters, digits, '_' or '-', at most 32)")
        if not pairs:
            self.d.issue(y, path, "must name at least one port, e.g. [http, grpc, metrics]")
            return BAD
        return BAD if bad else MappingProxyType({n: v for n, v, _ in pairs})

    def env_value(self) -> Conv:
        def conv(y: Node, path: str) -> Any:
            if not self.d.expect_scalar(y, path, "a string"):
                return BAD
            if y.value is None or isinstance(y.value, (dict, list)):
                self.d.issue(y, path, f"expected a string, got {describe(y)}")
                return BAD
            return y.text if not isinstance(y.value, str) else y.value  # 8080 -> "8080", as written

        return conv

    def link(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.d.string()),
            "upstream": ("upstream", self.d.string()),
            "env": ("env", self.d.optional(self.d.string())),
            "service": ("service", self.d.optional(self.d.string())),
        }
        values = self.d.fields(y, path, schema, required=("name",))
        if values is None:
            return BAD
        self.link_keys[path] = (y, set(values))
        name = values.get("name", BAD)
        if name is not BAD and not LINK_NAME_RE.fullmatch(name):
            self.d.issue_at(f"{path}.name", f"{quote(name)} is not a link name (letters, digits, '-', '_' and '.', at most 64)")
            values["name"] = BAD
        up = values.get("upstream", BAD)
        if up not in (BAD, None):
            m = re.fullmatch(r"(127\.0\.0\.1|localhost):(\d{1,5})", up)
            if not m or not 0 < int(m.group(2)) < 65536:
                self.d.issue_at(f"{path}.upstream", f"must be 127.0.0.1:PORT (traffic stays on this machine), got {quote(up)}")
                values["upstream"] = BAD
        env = values.get("env")
        if env not in (None, BAD) and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):
            self.d.issue_at(f"{path}.env", f"{quote(env)} is not an environment variable name")
            values["env"] = BAD
        return self.d.build(LinkSpec, values)

    def entry(self, y: Node, path: str) -> Any:
        schema = {
            "service": ("service", self.d.string()),
            "proxy": ("proxy", self.d.boolean()),
            "url": ("url", self.d.optional(self.http_url())),
            "port": ("port", self.d.optional(self.d.string())),
            "link": ("link", self.d.optional(self.d.string())),
        }
        values = self.d.fields(y, path, schema, required=("service",))
        if values is not None:
            self.entry_keys = set(values)
            given = [k for k in ("url", "link") if values.get(k) is not None]
            if len(given) > 1:
                self.d.issue_at(f"{path}.link", "give either url or link, not both")
                values["link"] = BAD
        return self.d.build(EntrySpec, values)

    # -- workload: data files, request/response mapping, load ---------------------------------

    def data(self, y: Node, path: str) -> Any:
        schema = {
            "file": ("file", self.d.string()),
            "label": ("label", self.d.string()),
            "features": ("features", self.d.optional(self.d.list_of(self.d.string(), non_empty=True, unique=True))),
            "entity": ("entity", self.d.optional(self.d.string())),
            "ranges": ("ranges", self.d.optional(self.d.mapping_of(self.range_pair()))),
            "test_fraction": ("test_fraction", self.d.number(0, lo_open=True, hi=0.9)),
            "cohort": ("cohort", self.d.optional(self.d.string())),
        }
        values = self.d.fields(y, path, schema, required=("file", "label"))
        if values is None:
            return BAD
        cohort = values.get("cohort")
        if cohort not in (None, BAD):
            for key in ("label", "entity"):
                if values.get(key) == cohort:
                    self.d.issue_at(f"{path}.cohort", f"column {quote(cohort)} is the {key} column; name the column that holds each row's cohort")
                    values["cohort"] = BAD
                    break
            else:
                if values.get("features") not in (None, BAD) and cohort in values["features"]:
                    self.d.issue_at(f"{path}.cohort", f"column {quote(cohort)} is listed in features; a cohort column labels rows and is not sent")
                    values["cohort"] = BAD
        f = values.get("file", BAD)
        if f is not BAD and not f.lower().endswith((".csv", ".parquet", ".pq")):
            self.d.issue_at(f"{path}.file", f"must be a .csv or .parquet file, got {quote(f)}")
            values["file"] = BAD
        return self.d.build(DataSpec, values)

    def range_pair(self) -> Conv:
        num = self.d.number()

        def conv(y: Node, path: str) -> Any:
            if y.kind != "seq" or len(y.value) != 2:
                self.d.issue(y, path, f"expected [min, max], got {describe(y)}")
                return BAD
            lo, hi = num(y.value[0], f"{path}[0]"), num(y.value[1], f"{path}[1]")
            if BAD in (lo, hi):
                return BAD
            if lo >= hi:
                self.d.issue(y, path, f"min must be below max, got [{lo:g}, {hi:g}]")
                return BAD
            return (lo, hi)

        return conv

    def request(self, y: Node, path: str) -> Any:
        schema = {
            "path": ("path", self.d.string()),
            "method": ("method", self.d.string(HTTP_METHODS, "method")),
            "headers": ("headers", self.d.mapping_of(self.env_value())),
            "body": ("body", self.d.string(BODY_PRESETS, "body preset")),
            "input_name": ("input_name", self.d.string()),
            "datatype": ("datatype", self.d.string(("FP64", "FP32"), "datatype")),
            "outputs": ("outputs", self.d.list_of(self.d.string(), non_empty=True, unique=True)),
            "template": ("template", self.d.optional(self.d.plain())),
            "probes": ("probes", self.d.integer(0, 20)),
        }
        values = self.d.fields(y, path, schema)
        if values is None:
            return BAD
        p = values.get("path", BAD)
        if p is not BAD and "path" in values and (not p.startswith("/") or any(c.isspace() for c in p)):
            self.d.issue_at(f"{path}.path", f"must start with '/' and hold no spaces, got {quote(p)}")
            values["path"] = BAD
        body, template = values.get("body", "reference"), values.get("template")
        if body == "template" and template is None:
            self.d.issue_at(f"{path}.body", "body: template needs request.template (a JSON body with {{features}}-style placeholders)")
            values["body"] = BAD
        elif body not in ("template", BAD) and template is not None:
            self.d.issue_at(f"{path}.template", f"only used with body: template (body is {body})")
            values["template"] = BAD
        if values.get("outputs") not in (None, BAD) and body not in ("kserve-v2", BAD):
            self.d.issue_at(f"{path}.outputs", f"only used with body: kserve-v2 (body is {body})")
            values["outputs"] = BAD
        if values.get("outputs") not in (None, BAD):
            values["outputs"] = tuple(values["outputs"])
        if template not in (None, BAD):
            from chaosml.workload.mapping import template_fields

            _, unknown = template_fields(template)
            if unknown:
                self.d.issue_at(f"{path}.template", "unknown placeholder(s) " + ", ".join(unknown) +
                              "; known: {{features}}, {{features_object}}, {{feature.NAME}}, {{entity_id}}, {{n_features}}")
                values["template"] = BAD
        if values.get("headers") not in (None, BAD):
            values["headers"] = MappingProxyType(dict(values["headers"]))
        return self.d.build(RequestSpec, values)

    def response(self, y: Node, path: str) -> Any:
        from chaosml.workload.mapping import check_field_spec

        def problem(v: str) -> str | None:
            why = check_field_spec(v)
            return f"{why} (or header:NAME, or not-exposed)" if why else None

        spec = self.d.checked(problem)
        schema = {k: (k, spec) for k in ("prediction", "confidence", "model_version", "served_by", "replica")}
        return self.d.build(ResponseSpec, self.d.fields(y, path, schema))

    def load(self, y: Node, path: str) -> Any:
        schema = {
            "users": ("users", self.d.integer(1, MAX_USERS)),
            "spawn_rate": ("spawn_rate", self.d.number(0, lo_open=True)),
            "duration": ("duration", self.d.duration(positive=True)),
            "rate_per_user": ("rate_per_user", self.d.optional(self.d.number(0, lo_open=True))),
            "request_timeout": ("request_timeout", self.d.duration(positive=True)),
            "mix": ("mix", self.mix),
            "dataset": ("dataset", self.d.string(catalog.DATASETS, "dataset")),
            "seed": ("seed", self.d.integer(0, 2**32 - 1)),
            "data": ("data", self.d.optional(self.data)),
            "shape": ("shape", self.d.optional(decode_shape(self.d, MAX_USERS))),
            "locustfile": ("locustfile", self.d.optional(self.d.string())),
        }
        values = self.d.fields(y, path, schema)
        if values is not None and values.get("locustfile") not in (None, BAD):
            check_locustfile(self.d, values, path)
        if values is not None and values.get("shape") not in (None, BAD):
            defaults = LoadSpec()
            siblings = {k: values.get(k, getattr(defaults, k)) for k in ("users", "spawn_rate", "duration")}
            shape = compile_shape(self.d, values["shape"], siblings, frozenset(values), f"{path}.shape")
            values["shape"] = shape
            if shape is not BAD:
                values["users"] = max(st.users for st in shape.stages)  # load.users is the shape's peak
        if values is not None and values.get("data") not in (None, BAD) and "dataset" in values:
            self.d.issue_at(f"{path}.dataset", "give either load.dataset (a built-in dataset) or load.data (a file), not both")
            values["dataset"] = BAD
        if values is not None and values.get("mix", LoadSpec().mix) is not BAD:
            self.mix_cohorts = set(values.get("mix", LoadSpec().mix))
        return self.d.build(LoadSpec, values)

    def mix(self, y: Node, path: str) -> Any:
        if self.file_cohorts and y.kind == "map":  # built-in names, or names of the data file's cohorts
            bad = set()
            for key, (kl, kc, _) in y.value.items():
                problem = _file_cohort_problem(key, objective=False)
                if problem:
                    self.d.issue((kl, kc), join_path(path, key), problem)
                    bad.add(key)
            weights = self.d.mapping_of(self.d.number(0))(Node("map", {k: v for k, v in y.value.items() if k not in bad}, y.line, y.col), path)
            if bad:
                return BAD
        else:
            weights = self.d.mapping_of(self.d.number(0), catalog.COHORTS, "cohort")(y, path)
        if weights is BAD:
            return BAD
        if not weights:
            self.d.issue(y, path, "must name at least one cohort")
            return BAD
        if not any(w > 0 for w in weights.values()):
            self.d.issue(y, path, "weights must not all be zero")
            return BAD
        return weights

    # -- objectives: steady state, SLOs, hypotheses, abort conditions, rollbacks ----------------

    def steady_state(self, y: Node, path: str) -> Any:
        schema = {
            "window": ("window", self.d.duration(positive=True)),
            "hold": ("hold", self.d.integer(1, 10_000)),
            "confidence_threshold": ("confidence_threshold", self.d.number(0, hi=1)),
            "min_samples": ("min_samples", self.d.integer(1)),
            "slos": ("slos", self.d.section_list(self.slo)),
        }
        return self.d.build(SteadyState, self.d.fields(y, path, schema))

    def objective_cohort(self) -> Conv:
        """An SLO's, hypothesis' or abort condition's ``cohort``: a built-in name, or with load.data.cohort a file cohort."""
        if not self.file_cohorts:
            return self.d.string(catalog.COHORTS, "cohort")
        base = self.d.string()

        def conv(y: Node, path: str) -> Any:
            v = base(y, path)
            problem = None if v is BAD else _file_cohort_problem(v, objective=True)
            if problem:
                self.d.issue(y, path, problem)
                return BAD
            return v

        return conv

    def slo(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.d.string()),
            "sli": ("sli", self.d.string()),
            "op": ("op", self.d.string()),
            "target": ("target", self.d.number()),
            "phases": ("phases", self.d.list_of(self.d.string(catalog.PHASES, "phase"), non_empty=True, unique=True)),
            "cohort": ("cohort", self.d.optional(self.objective_cohort())),
        }
        values = self.d.fields(y, path, schema, required=("name", "sli", "op", "target"))
        if values is None:
            return BAD
        self.slo_raw.append((path, values))
        return values  # built in cross_checks, after the load mix is known

    def hypothesis(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.d.string()),
            "sli": ("sli", self.d.string()),
            "op": ("op", self.d.string()),
            "target": ("target", self.d.number()),
            "during": ("during", self.d.optional(self.d.string())),
            "fault": ("fault", self.d.optional(self.d.string())),
            "cohort": ("cohort", self.d.optional(self.objective_cohort())),
            "agg": ("agg", self.d.string(catalog.AGGREGATES, "aggregate")),
            "min_samples": ("min_samples", self.d.optional(self.d.integer(1))),
        }
        values = self.d.fields(y, path, schema, required=("name", "sli", "op", "target"))
        if values is None:
            return BAD
        self.hyp_raw.append((path, values))
        return values

    def abort(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "sli": ("sli", self.d.string()),
            "op": ("op", self.d.string()),
            "target": ("target", self.d.number()),
            "for": ("for_", self.d.duration()),
            "cohort": ("cohort", self.d.optional(self.objective_cohort())),
        }
        values = self.d.fields(y, path, schema, required=("sli", "op", "target"))
        if values is None:
            return BAD
        self.abort_raw.append((path, values))
        return values

    def rollback(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "type": ("type", self.d.string(catalog.ROLLBACK_TYPES, "rollback type")),
            "params": ("params", self.d.optional(lambda py, ppath: py)),  # decoded below, by type
        }
        values = self.d.fields(y, path, schema, required=("type",))
        if values is None:
            return BAD
        rtype, params_y = values.get("type", BAD), values.pop("params", None)
        if rtype is BAD:
            return BAD
        if params_y is not None:
            kinds = ROLLBACK_PARAMS.get(rtype)
            if kinds is None:
                values["params"] = self.d.mapping_of(self.d.plain())(params_y, f"{path}.params")
            else:
                convs = {k: self.d.duration() if kind == "duration" else self.d.plain() for k, kind in kinds.items()}
                fields = self.d.fields(params_y, f"{path}.params", {k: (k, c) for k, c in convs.items()})
                values["params"] = (
                    BAD if fields is None or BAD in fields.values() else MappingProxyType(fields)
                )
        return self.d.build(RollbackSpec, values)

    # -- faults ---------------------------------------------------------------------------

    def fault(self, y: Node, path: str, index: int) -> Any:
        schema = {
            "name": ("name", self.d.string()),
            "type": ("type", self.d.string()),
            "at": ("at", self.d.duration()),
            "duration": ("duration", self.d.duration(positive=True)),
            "repeat": ("repeat", self.repeat),
            "params": ("params", self.d.optional(lambda py, ppath: py)),  # decoded below, by type
        }
        values = self.d.fields(y, path, schema, required=("name", "type", "at", "duration"))
        if values is None:
            self.names_complete = False
            return BAD
        if values.get("name") is BAD:
            self.names_complete = False
        ftype = values.get("type", BAD)
        params_y = values.get("params")
        types = registry()
        if ftype is not BAD and ftype not in types:
            known = ", ".join(types.names())
            self.d.issue_at(f"{path}.type", f"unknown fault type {quote(ftype)}{suggest(ftype, types.names())}; known types: {known}")
            values["type"] = ftype = BAD
        if ftype is BAD:
            values["params"] = BAD
        else:
            if params_y is None:
                params_y = Node("map", {}, *self.d.where.get(f"{path}.params", (y.line, y.col)))
            values["params"] = fault_params(self.d, types[ftype].params, params_y, f"{path}.params", types[ftype].renamed)
        repeat = values.get("repeat", Repeat())
        duration = values.get("duration", BAD)
        if repeat is not BAD and duration is not BAD and repeat.count > 1 and repeat.every <= duration:
            self.d.issue_at(
                f"{path}.repeat.every",
                f"must be longer than the fault's duration ({fmt_s(duration)}) "
                f"when count > 1, so that its windows do not overlap, got {fmt_s(repeat.every)}",
            )
            values["repeat"] = BAD
        self.fault_raw.append((path, values))
        return self.d.build(FaultSpec, values)

    def repeat(self, y: Node, path: str) -> Any:
        schema = {
            "count": ("count", self.d.integer(1, MAX_REPEAT)),
            "every": ("every", self.d.duration()),
        }
        return self.d.build(Repeat, self.d.fields(y, path, schema))

def _declares_file_cohorts(root: Node) -> bool:
    """Whether the document gives load.data.cohort (a string), read from the tree before any section is decoded.

    The mix and every objective's ``cohort`` accept file cohort names only then, whatever order the
    sections (and the keys of ``load``) come in.
    """
    node = root
    for key in ("load", "data", "cohort"):
        if node.kind != "map" or key not in node.value:
            return False
        node = node.value[key][2]
    return node.kind == "scalar" and isinstance(node.value, str) and bool(node.value.strip())


def _file_cohort_problem(name: str, objective: bool) -> str | None:
    """Why ``name`` cannot be a cohort when load.data.cohort is given (None if it can)."""
    if objective and name == "clean":
        return "with load.data.cohort, clean requests are recorded under their file cohort; name a file cohort"
    if name in catalog.COHORTS or catalog.FILE_COHORT_PATTERN.fullmatch(name):
        return None
    fixed = catalog.normalise_cohort(name)
    hint = f" (did you mean {fixed!r}?)" if fixed and fixed not in catalog.COHORTS else ""
    return (f"{quote(name)} is neither a built-in cohort nor a file cohort name: file cohorts are the load.data.cohort "
            f"column's values normalised to lowercase letters and digits joined by single '-'{hint}")
