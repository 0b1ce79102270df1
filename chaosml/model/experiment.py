"""The experiment file as frozen, typed data; built by chaosml.loader, read by plan, runner and analysis.

Durations are float seconds (the loader parses "250ms", "20s", "2m"). Attribute names follow the
YAML keys so that an error path (``faults[0].repeat.every``) names both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class KubernetesSpec:
    """Where a kubernetes target lives and which contexts chaosml may touch."""

    context: str | None = None  # None: the kubeconfig's current context
    namespace: str = "chaosml"
    allowed_contexts: tuple[str, ...] = ("kind-*",)  # fnmatch patterns
    allow_any_context: bool = False  # must also be confirmed on the command line


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A user's service on the local target (``stack: custom``): an argv run without a shell, per replica.

    ``command`` and ``env`` values may hold placeholders filled per replica: ``{port}``,
    ``{replica}``, ``{name}``, ``{python}`` (the harness's interpreter), ``{run_dir}`` and
    ``{link:NAME}`` (a link's proxied ``127.0.0.1:P``).
    """

    name: str
    command: tuple[str, ...]
    health: str = "/"  # an HTTP path probed for 2xx, or "tcp" (the port accepts connections)
    replicas: int = 1
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str | None = None  # default: the directory chaosml runs in
    start_timeout: float = 60.0  # seconds every replica may take to become ready


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """A dependency put behind the fault proxy: services reach ``upstream`` through the link's listen address."""

    name: str  # proxy name, used by network faults (e.g. feature-store)
    upstream: str  # host:port of the dependency (127.0.0.1 only)
    env: str | None = None  # environment variable given to every service: the link's 127.0.0.1:P


@dataclass(frozen=True, slots=True)
class EntrySpec:
    """Where clients enter a custom stack: a service's replicas, round-robin, through the ``gateway`` link."""

    service: str
    proxy: bool = True  # through the fault proxy (links gateway and model-<i>); false: round-robin only


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


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """Where requests go and how a body is built from a dataset row (see chaosml.mapping)."""

    path: str = "/predict"
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: str = "reference"  # reference | kserve-v1 | kserve-v2 | template
    input_name: str = "input-0"  # kserve-v2
    datatype: str = "FP64"  # kserve-v2
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

    def fault(self, name: str) -> FaultSpec:
        for f in self.faults:
            if f.name == name:
                return f
        raise KeyError(name)

    def injections(self) -> list[tuple[FaultSpec, int, float, float]]:
        """Every (fault, index, start, end) on the timeline, sorted by start."""
        out = [(f, i, s, e) for f in self.faults for (i, s, e) in f.windows()]
        return sorted(out, key=lambda x: (x[2], x[0].name, x[1]))
