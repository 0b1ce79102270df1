"""Entry point of the load process: ``python -m chaosml.load CONFIG.json``; started by config.start_load.

Checks the config and payload file first (exit 4 with one line on stderr if bad), then
imports locust (which monkey-patches the interpreter with gevent) and runs the driver.
stdout carries only JSON progress lines; logs go to stderr.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from chaosml.load.config import (
    EXIT_INTERNAL,
    EXIT_INVALID_INPUT,
    LoadConfig,
    LoadConfigError,
)
from chaosml.workload.payload_file import load_payloads


def main(argv: list[str] | None = None) -> int:
    # A SIGTERM/SIGINT before the driver installs its own handlers (e.g. during the locust
    # import) is remembered and honoured as soon as the driver starts.
    early: list[str] = []

    def remember(signum: int, _frame: Any) -> None:
        early.append(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, remember)
    signal.signal(signal.SIGINT, remember)

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("chaosml.load: usage: python -m chaosml.load CONFIG.json", file=sys.stderr)
        return EXIT_INVALID_INPUT
    config_path = args[0]
    try:
        with open(config_path, encoding="utf-8") as f:
            config = LoadConfig.from_json(f.read())
        payloads = load_payloads(config.payloads_file, config.mix)
    except OSError as e:
        print(f"chaosml.load: {config_path}: cannot read config: {e.strerror or e}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except (LoadConfigError, TypeError) as e:
        print(f"chaosml.load: {config_path}: invalid config: {e}", file=sys.stderr)
        return EXIT_INVALID_INPUT

    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="chaosml.load: %(levelname)s %(name)s: %(message)s"
    )
    # Importing the driver imports locust: gevent monkey-patching happens here.
    from chaosml.load import driver

    try:
        return driver.run(config, payloads, early_signals=early)
    except LoadConfigError as e:  # e.g. samples file with a foreign header
        print(f"chaosml.load: {config_path}: invalid config: {e}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except OSError as e:  # the samples file cannot be written (a full disk ...): one line, no traceback
        print(f"chaosml.load: cannot write {config.samples_file}: {e.strerror or e}", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as e:
        logging.getLogger("chaosml.load").exception("load process failed")
        print(f"chaosml.load: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
