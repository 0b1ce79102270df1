"""What the experiment decoder has learned so far, shared by its sections (schema.py) and its cross-checks (checks.py)."""

from __future__ import annotations

from typing import Any

from chaosml.decoding import Decoder, Node
from chaosml.model.experiment import LinkSpec, ServiceSpec


class DecodeState:
    """The decoder (``d``, with every issue) and the facts one section leaves for the checks of another."""

    def __init__(self, filename: str) -> None:
        self.d = Decoder(filename)
        self.names_complete = True  # False once a fault's name could not be read
        self.mix_cohorts: set[str] | None = None
        self.file_cohorts = False  # load.data.cohort given: user cohort names are accepted
        self.service_keys: dict[str, tuple[Node, set[str]]] = {}  # services[i] path -> (node, keys given)
        self.link_keys: dict[str, tuple[Node, set[str]]] = {}  # links[i] path -> (node, keys given)
        self.entry_keys: set[str] = set()
        self.platform = "local"
        self.custom_services: dict[str, ServiceSpec] | None = None  # set when target.services is given
        self.custom_links: set[str] | None = None
        self.custom_link_specs: tuple[LinkSpec, ...] = ()
        self.hyp_raw: list[tuple[str, dict[str, Any]]] = []
        self.slo_raw: list[tuple[str, dict[str, Any]]] = []
        self.abort_raw: list[tuple[str, dict[str, Any]]] = []
        self.fault_raw: list[tuple[str, dict[str, Any]]] = []
        self.monitoring_queries: set[str] | None = None  # the monitoring section's query names; None: no section
        self.monitoring_path = "monitoring"
        self.monitoring_values: dict[str, Any] | None = None
        self.alert_raw: list[tuple[str, dict[str, Any]]] = []

