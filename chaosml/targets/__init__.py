"""Targets: where the system under test runs (local processes; kubernetes)."""
