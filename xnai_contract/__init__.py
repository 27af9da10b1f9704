"""The XNAi stack's contract, as numbers and names, in one place.

Source: ``shared/guides/xnai-contract.md`` (the stack's own code) and the seed
document (Phase 4.1 research).  The testbed implements these values and the
variables files hand them to the suite, so a timing is never hard-coded in a
``.robot`` file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

API_PREFIX = "/xnai/api/v1"

# The query body's numeric parameters, each with its range, both ends allowed (the stack's request schema,
# app/XNAi_rag_app/schemas/requests.py: max_tokens 1..2048, temperature 0..2, top_p 0..1).
QUERY_PARAMETER_RANGES: dict[str, tuple[float, float]] = {"max_tokens": (1, 2048), "temperature": (0.0, 2.0),
                                                          "top_p": (0.0, 1.0)}


@dataclass(frozen=True)
class BreakerSpec:
    """One registered circuit breaker: failure threshold and recovery timeout."""

    name: str
    failure_threshold: int
    recovery_timeout_s: float
    success_threshold: int = 2
    half_open_max_calls: int = 3
    call_timeout_s: float = 30.0


@dataclass(frozen=True)
class TimingProfile:
    """Timings of one profile.  ``production`` holds the contract's values."""

    name: str
    monitor_interval_s: float
    check_timeout_s: float
    unhealthy_after_failures: int
    # The contract's rag_api restart cooldown (180 s): a service still failing is not restarted again
    # before it has passed since the last restart.  The fast profile's is no multiple of the monitor's
    # interval, so a restart after it lands half an interval from the border (a second off is told apart).
    restart_cooldown_s: float
    breakers: tuple[BreakerSpec, ...]
    breaker_ttl_s: int
    token_delay_s: float
    tokens_per_answer: int
    stream_timeout_s: float
    load_duration_s: float
    first_event_delay_s: float = 0.3  # retrieval before the first frame of a stream

    def breaker(self, name: str) -> BreakerSpec:
        for spec in self.breakers:
            if spec.name == name:
                return spec
        known = ", ".join(b.name for b in self.breakers)
        raise KeyError(f"No circuit breaker named '{name}'. Known breakers: {known}.")

    def as_dict(self) -> dict:
        data = asdict(self)
        data["breakers"] = {b.name: asdict(b) for b in self.breakers}
        return data


PRODUCTION = TimingProfile(
    name="production",
    monitor_interval_s=30.0,
    check_timeout_s=5.0,
    unhealthy_after_failures=2,
    restart_cooldown_s=180.0,
    breakers=(
        BreakerSpec("rag_api", 3, 60.0),
        BreakerSpec("redis_cache", 5, 30.0),
        BreakerSpec("voice_stt", 5, 120.0),
        BreakerSpec("voice_tts", 3, 60.0),
        BreakerSpec("voice_processing", 3, 60.0),
        BreakerSpec("embeddings", 3, 60.0),  # the testbed's downstream service (KG-2 cascade), not the stack's
    ),
    breaker_ttl_s=3600,
    token_delay_s=0.02,
    tokens_per_answer=40,
    stream_timeout_s=120.0,
    load_duration_s=60.0,
    first_event_delay_s=0.5,
)

FAST = TimingProfile(
    name="fast",
    monitor_interval_s=1.0,
    check_timeout_s=1.0,
    unhealthy_after_failures=2,
    restart_cooldown_s=10.5,
    breakers=(
        BreakerSpec("rag_api", 3, 2.0),
        BreakerSpec("redis_cache", 5, 1.0),
        BreakerSpec("voice_stt", 5, 2.0),
        BreakerSpec("voice_tts", 3, 2.0),
        BreakerSpec("voice_processing", 3, 2.0),
        BreakerSpec("embeddings", 3, 2.0),
    ),
    breaker_ttl_s=300,
    token_delay_s=0.005,
    tokens_per_answer=24,
    stream_timeout_s=2.0,
    load_duration_s=3.0,
    first_event_delay_s=0.3,
)

PROFILES = {p.name: p for p in (PRODUCTION, FAST)}


def profile(name: str) -> TimingProfile:
    """Return the timing profile called ``name`` or fail naming the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        choices = ", ".join(sorted(PROFILES))
        raise ValueError(
            f"Unknown timing profile '{name}'. Choose one of: {choices} "
            "(set XNAI_PROFILE or the PROFILE variable)."
        ) from None
