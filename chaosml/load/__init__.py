"""The load process and its config; the runner imports this package, which never imports locust.

``python -m chaosml.load CONFIG.json`` runs the locust driver (``driver.py``) in its own process.
"""

from chaosml.load.config import LoadConfig, LoadConfigError, parse_progress, start_load

__all__ = ["LoadConfig", "LoadConfigError", "parse_progress", "start_load"]
