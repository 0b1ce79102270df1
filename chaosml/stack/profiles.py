"""Release profiles of the reference stack: which resilience patterns are on; read by the replica and gateway."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    """Knobs of one release profile. Times are seconds."""

    name: str
    # replica
    validate_input: bool  # 422 naming the field on a bad request (413 when too large)
    fetch_timeout_s: float | None  # feature store socket timeout; None = wait forever
    breaker: bool  # circuit breaker around the feature store
    breaker_failure_threshold: int
    breaker_open_s: float
    fallback: bool  # fallback model on request-time features, then the default response
    ood_routing: bool  # out-of-distribution or low-confidence primary answers go to the fallback
    shadow_guard: bool  # a model variant is shadowed by the base primary and rolled back when they disagree too often
    # gateway
    attempt_timeout_s: float | None  # per upstream attempt
    retries: int  # extra attempts on another backend
    retry_budget_ratio: float  # retries may add at most this fraction of requests
    health_checks: bool  # route only to backends whose /readyz answered 200
    eject_s: float  # passive ejection after a failed attempt
    default_on_exhaustion: bool  # 200 with the default response when no backend can answer
    check_answers: bool  # a 200 whose body is not a JSON object with a prediction counts as a failed attempt


NAIVE = Profile(
    name="naive",
    validate_input=False,
    fetch_timeout_s=None,
    breaker=False,
    breaker_failure_threshold=0,
    breaker_open_s=0.0,
    fallback=False,
    ood_routing=False,
    shadow_guard=False,
    attempt_timeout_s=30.0,  # a generous proxy default; a hung replica still stalls the client
    retries=0,
    retry_budget_ratio=0.0,
    health_checks=False,
    eject_s=0.0,
    default_on_exhaustion=False,
    check_answers=False,
)

HARDENED = Profile(
    name="hardened",
    validate_input=True,
    fetch_timeout_s=0.05,
    breaker=True,
    breaker_failure_threshold=5,
    breaker_open_s=1.0,
    fallback=True,
    ood_routing=True,
    shadow_guard=True,
    attempt_timeout_s=0.5,
    retries=1,
    retry_budget_ratio=0.2,
    health_checks=True,
    eject_s=1.0,
    default_on_exhaustion=True,
    check_answers=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (NAIVE, HARDENED)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(PROFILES)}") from None
