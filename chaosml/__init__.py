"""chaosml: chaos engineering for ML serving stacks (public API)."""

__version__ = "0.1.0"
