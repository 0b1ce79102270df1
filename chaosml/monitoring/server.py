"""The Prometheus server the local target starts for ``monitoring.prometheus.local``: binary, config, argv.

The local target (chaosml.targets.local) runs it as a supervised member on a free 127.0.0.1 port with
its own data directory under the run directory (nothing outside the run is written, nothing is left
running: it is one of the run's processes, stopped with the target and killed by `chaosml rollback`).
It scrapes the gateway (job ``chaosml-gateway``) and every replica (job ``chaosml-replicas``, label
``replica``) DIRECTLY, never through the fault proxy, every ``scrape_interval`` seconds, and
evaluates the rule file (default: the shipped chaosml/stack/alerts.yml) at the same interval.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

#: Debian's package (bookworm: 2.42) installs it here; any prometheus 2.x on PATH works.
BINARY = "prometheus"
JOB_GATEWAY = "chaosml-gateway"
JOB_REPLICAS = "chaosml-replicas"


def shipped_rules() -> Path:
    """The reference stack's alert rules (chaosml/stack/alerts.yml)."""
    return Path(str(resources.files("chaosml.stack").joinpath("alerts.yml")))


def prometheus_binary() -> Path | None:
    """The ``prometheus`` executable on PATH, or None (install Debian's ``prometheus`` package)."""
    found = shutil.which(BINARY)
    return Path(found) if found else None


def promtool_binary() -> Path | None:
    """``promtool`` (shipped beside prometheus), used to check PromQL and rule files offline."""
    found = shutil.which("promtool")
    return Path(found) if found else None


def write_config(
    directory: Path,
    gateway: str,
    replicas: Mapping[str, str],
    scrape_interval_s: float,
    rules_file: Path,
) -> Path:
    """prometheus.yml in ``directory`` (JSON is YAML): scrape ``gateway`` and ``replicas`` (name -> host:port)."""
    interval = f"{max(1, round(scrape_interval_s * 1000))}ms"
    timeout = f"{max(1, round(min(scrape_interval_s, 10.0) * 800))}ms"  # below the interval, as Prometheus requires
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": timeout},
        "rule_files": [str(rules_file.resolve())],
        "scrape_configs": [
            {"job_name": JOB_GATEWAY, "static_configs": [{"targets": [gateway]}]},
            {
                "job_name": JOB_REPLICAS,
                "static_configs": [{"targets": [addr], "labels": {"replica": name}} for name, addr in replicas.items()],
            },
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def argv(binary: Path, config: Path, data_dir: Path, port: int) -> list[str]:
    """The command line: listen on 127.0.0.1 only, data in the run directory, no lifecycle/admin API."""
    return [
        str(binary),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn",
    ]
