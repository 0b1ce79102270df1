"""Prometheus as a source of SLIs and of detection: its HTTP API, PromQL checks, the local server's config, alert polling."""
