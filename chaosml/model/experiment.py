"""The experiment file as frozen, typed data; built by chaosml.loader, read by plan, runner and analysis.

Durations are float seconds (the loader parses "250ms", "20s", "2m"). Attribute names follow the
YAML keys so that an error path (``faults[0].repeat.every``) names both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from chaosml.model.loadshape import LoadShape, LoadStage


@dataclass(frozen=True, slots=True)
class KubernetesSpec:
    """Where a kubernetes target lives and which contexts chaosml may touch."""

    context: str | None = None  # None: the kubeconfig's current context
    namespace: str = "chaosml"
    allowed_contexts: tuple[str, ...] = ("kind-*",)  # fnmatch patterns
    allow_any_context: bool = False  # must also be confirmed on the command line
    toxiproxy: ToxiproxySpec | None = None  # custom stack: where the cluster's Toxiproxy API is (network faults)
    nodes: Mapping[str, NodeAccessSpec] = field(default_factory=lambda: MappingProxyType({}))  # node name -> how to reach it


@dataclass(frozen=True, slots=True)
class NodeAccessSpec:
    """How chaosml reaches one node: its container runtime (container-failure: a Docker engine, or a command prefix
    that runs ``ctr`` on a containerd node; a node not listed uses the local Docker engine) and, optionally, the
    commands that fail and restore it (node-failure, instead of a kind node's container)."""

    docker_host: str | None = None  # the Docker engine running the node's containers (dockershim) or a kind node: unix://, tcp://, ssh://
    stop: tuple[str, ...] = ()  # argv that takes the node down (e.g. ssh NODE systemctl stop kubelet); with start
    start: tuple[str, ...] = ()  # argv that brings it back (idempotent: the offline undo may run it again)
    exec: tuple[str, ...] = ()  # argv prefix running a command on the node, for ctr (containerd://); (): docker exec <node>


@dataclass(frozen=True, slots=True)
class ToxiproxySpec:
    """A custom stack's Toxiproxy in the cluster: its API through a Service's NodePort, or a URL."""

    service: str = "toxiproxy"  # the Service in the namespace exposing the API
    port: str = "api"  # that Service's port name (or number as a string)
    url: str | None = None  # e.g. a port-forward: http://127.0.0.1:8474 (instead of service/port)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A user's service (``stack: custom``).

    Local target: an argv run without a shell, per replica. ``command`` and ``env`` values may hold
    placeholders filled per replica: ``{port}``, ``{port.NAME}``, ``{replica}``, ``{name}``, ``{python}``
    (the harness's interpreter), ``{run_dir}`` and ``{link:NAME}`` (a link's proxied ``127.0.0.1:P``).
    ``ports`` names the ports a replica listens on (e.g. http, grpc, metrics), each a free port per
    replica unless pinned to a number (one replica only); ``{port}`` is the ``health_port`` (default:
    the first), on which readiness is probed; ``entry.port`` picks the one clients call.

    Kubernetes target: ``selector`` (pod labels) picks the ONE Deployment of the namespace whose pods
    carry them; chaosml never creates, edits or deletes it (only pods, and scale for an outage).
    """

    name: str
    command: tuple[str, ...] = ()  # local
    selector: Mapping[str, str] | None = None  # kubernetes: pod labels of the service's Deployment
    health: str = "/"  # an HTTP path probed for 2xx, or "tcp" (the port accepts connections)
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str | None = None  # default: the directory chaosml runs in
    start_timeout: float = 60.0  # seconds every replica may take to become ready
    ports: Mapping[str, int | None] = field(default_factory=lambda: MappingProxyType({}))  # local: name -> pinned port, None = free per replica
    health_port: str | None = None  # local: the named port probed for readiness and filled into {port} (default: the first)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A dependency behind the fault proxy, addressed by network faults as ``link: NAME``.

    Local target: chaosml's proxy listens on 127.0.0.1:P and forwards to ``upstream``; services learn
    P through ``env`` or ``{link:NAME}``. Kubernetes target: NAME is a proxy the user configured in
    the cluster's Toxiproxy (checked at start); ``service`` names the services[] item behind it, so
    that ``feature-store-outage`` mode ``kill`` can scale that Deployment to zero.
    """

    name: str  # proxy name, used by network faults (feature-store for feature-store-outage)
    upstream: str | None = None  # local: host:port of the dependency (127.0.0.1 only)
    env: str | None = None  # local: environment variable given to every service: the link's 127.0.0.1:P
    service: str | None = None  # kubernetes: the services[] item the link leads to


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """Where clients enter a custom stack.

    Local target: a service's replicas, round-robin, through the ``gateway`` link. Kubernetes target:
    ``url`` if given, else through the Toxiproxy proxy ``link`` if given, else the NodePort of the
    Service that selects the entry service's pods (``port``: its port name), mapped to 127.0.0.1
    through the kind config's extraPortMappings.
    """

    service: str
    proxy: bool = True  # local: through the fault proxy (links gateway and model-<i>); false: round-robin only
    url: str | None = None  # kubernetes: e.g. an ingress or port-forward, http://127.0.0.1:8080
    port: str | None = None  # kubernetes: the Service port name (default: its only, or first, port); local: a services[].ports name
    link: str | None = None  # kubernetes: enter through this Toxiproxy proxy's NodePort


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """The system under test."""

    platform: str = "local"  # local | kubernetes
    stack: str = "reference"  # reference | custom (services below)
    profile: str = "hardened"  # reference stack release profile: naive | hardened
    replicas: int = 3  # model-service replicas
    restart_delay: float = 2.0  # seconds before the local supervisor restarts a dead replica
    kubernetes: KubernetesSpec | None = None
    services: tuple[ServiceSpec, ...] = ()  # stack: custom
    links: tuple[LinkSpec, ...] = ()  # stack: custom
    entry: EntrySpec | None = None  # stack: custom


@dataclass(frozen=True, slots=True)
class DataSpec:
    """A labelled dataset from a file (CSV, or Parquet with pyarrow); replaces ``load.dataset``."""

    file: str  # .csv or .parquet, relative to the directory chaosml runs in
    label: str  # the label column (integer class labels, or strings mapped to 0..k-1 in sorted order)
    features: tuple[str, ...] | None = None  # default: every numeric column but label and entity
    entity: str | None = None  # entity id column (integers); default: the row number
    ranges: Mapping[str, tuple[float, float]] | None = None  # per-feature (min, max); default: from the data
    test_fraction: float = 0.3  # held-out rows the load sends
    cohort: str | None = None  # a column assigning each row to a user cohort (normalised names; see chaosml.workload.user_dataset)


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """Where requests go and how a body is built from a dataset row (see chaosml.workload.mapping)."""

    path: str = "/predict"
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: str = "reference"  # reference | kserve-v1 | kserve-v2 | template
    input_name: str = "input-0"  # kserve-v2
    datatype: str = "FP64"  # kserve-v2
    outputs: tuple[str, ...] = ()  # kserve-v2: request these named output tensors (empty: the model's default outputs)
    template: Any = None  # body: template
    probes: int = 3  # clean requests sent before the load to check the mapping


@dataclass(frozen=True, slots=True)
class ResponseSpec:
    """Where the harness finds each field: a JSON path, ``header:NAME`` or ``not-exposed``."""

    prediction: str = "prediction"
    confidence: str = "confidence"
    model_version: str = "model_version"
    served_by: str = "served_by"
    replica: str = "replica"


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """The load profile driven for the whole run."""

    users: int = 10
    spawn_rate: float = 10.0
    duration: float = 60.0
    rate_per_user: float | None = 5.0  # requests/s per user; None = as fast as possible
    request_timeout: float = 2.0
    mix: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({"clean": 1.0}))
    dataset: str = "breast_cancer"
    seed: int = 0
    data: DataSpec | None = None  # a labelled dataset from a file instead of ``dataset``
    shape: LoadShape | None = None  # users over time (ramp, step, spike, stages); None: ``users`` at ``spawn_rate``
    locustfile: str | None = None  # a user's locustfile (its User classes send the load) instead of the dataset-driven load

    def stages(self) -> tuple[LoadStage, ...]:
        """The load as stages (chaosml.model.loadshape): the shape's, or ``users`` at ``spawn_rate`` for the whole load."""
        if self.shape is not None:
            return self.shape.stages
        return (LoadStage(self.duration, self.users, self.spawn_rate),)


@dataclass(frozen=True, slots=True)
class Slo:
    """A steady-state objective, judged in each listed phase and used to decide recovery."""

    name: str
    sli: str
    op: str
    target: float
    phases: tuple[str, ...] = ("baseline", "after")
    cohort: str | None = None


@dataclass(frozen=True, slots=True)
class SteadyState:
    """How steady state is measured."""

    window: float = 1.0  # SLI bucket (s) for recovery detection
    hold: int = 3  # windows in a row within every SLO that count as recovered
    confidence_threshold: float = 0.8  # a wrong answer at or above this confidence is "confident-wrong"
    min_samples: int = 20  # fewer samples than this make a verdict inconclusive
    slos: tuple[Slo, ...] = ()


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """What must hold.

    A sample SLI is measured over ``during`` (a fault's name = that fault's windows, or a phase);
    an injection SLI (ttd_s, mttr_s, ready_s) over ``fault``'s injections, aggregated by ``agg``.
    """

    name: str
    sli: str
    op: str
    target: float
    during: str | None = None
    fault: str | None = None
    cohort: str | None = None
    agg: str = "max"
    min_samples: int | None = None  # overrides steady_state.min_samples


@dataclass(frozen=True, slots=True)
class Repeat:
    """Inject the same fault ``count`` times, ``every`` seconds apart (start to start)."""

    count: int = 1
    every: float = 0.0


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One fault on the timeline; ``params`` is the type's own frozen params class."""

    name: str
    type: str
    at: float  # seconds after load start
    duration: float  # seconds the fault window lasts
    params: Any
    repeat: Repeat = Repeat()

    def windows(self) -> list[tuple[int, float, float]]:
        """(injection index, start, end) offsets from load start, for every repeat."""
        return [
            (i, self.at + i * self.repeat.every, self.at + i * self.repeat.every + self.duration)
            for i in range(self.repeat.count)
        ]


@dataclass(frozen=True, slots=True)
class AbortCondition:
    """Stop the run and recover at once when ``sli op target`` holds for ``for_`` seconds."""

    sli: str
    op: str
    target: float
    for_: float = 5.0  # YAML key: for
    cohort: str | None = None


@dataclass(frozen=True, slots=True)
class RollbackSpec:
    """An action run after every fault is recovered, whatever happened."""

    type: str  # wait-ready
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class PrometheusSpec:
    """Which Prometheus a run reads: the user's (``url``) or one the local target starts (``local``)."""

    url: str | None = None  # e.g. http://prometheus.monitoring:9090 (a cluster's, or any reachable one)
    local: bool = False  # local target: start Prometheus on 127.0.0.1 scraping the reference stack
    scrape_interval: float = 1.0  # local: seconds between scrapes (and rule evaluations)
    rules: str | None = None  # local: a rule file instead of the shipped chaosml/stack/alerts.yml


@dataclass(frozen=True, slots=True)
class AlertExpectation:
    """An alert (Prometheus ``alertname``) that should fire during each injection of ``faults``."""

    name: str
    faults: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MonitoringSpec:
    """``monitoring:``: named PromQL queries usable as SLIs (``prom:NAME``) and alerts expected per fault."""

    prometheus: PrometheusSpec
    queries: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    alerts: tuple[AlertExpectation, ...] = ()
    grace: float = 15.0  # seconds after a recover during which an expected alert still counts; also quiet time for false alarms
    poll_interval: float = 0.5  # seconds between reads of /api/v1/alerts during the run


@dataclass(frozen=True, slots=True)
class Experiment:
    """A whole experiment file."""

    title: str
    version: int = 1
    description: str = ""
    release: str = "unversioned"
    target: TargetSpec = TargetSpec()
    load: LoadSpec = LoadSpec()
    steady_state: SteadyState = SteadyState()
    hypotheses: tuple[Hypothesis, ...] = ()
    faults: tuple[FaultSpec, ...] = ()
    abort: tuple[AbortCondition, ...] = ()
    rollbacks: tuple[RollbackSpec, ...] = ()
    request: RequestSpec = RequestSpec()
    response: ResponseSpec = ResponseSpec()
    monitoring: MonitoringSpec | None = None

    def fault(self, name: str) -> FaultSpec:
        for f in self.faults:
            if f.name == name:
                return f
        raise KeyError(name)

    def injections(self) -> list[tuple[FaultSpec, int, float, float]]:
        """Every (fault, index, start, end) on the timeline, sorted by start."""
        out = [(f, i, s, e) for f in self.faults for (i, s, e) in f.windows()]
        return sorted(out, key=lambda x: (x[2], x[0].name, x[1]))
