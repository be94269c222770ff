"""The public API of interlock.circuit_breaker under `mypy --strict` (checked, never run)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from interlock.circuit_breaker import (
    TRANSITIONS,
    BreakerStore,
    CircuitBreaker,
    CircuitBreakerError,
    CircuitBreakerEvent,
    CircuitBreakerMetrics,
    CircuitBreakerStats,
    CircuitOpenError,
    CircuitState,
    CircuitStoreError,
    InMemoryBreakerStore,
    Permit,
    SQLiteBreakerStore,
)

if TYPE_CHECKING:
    from pathlib import Path


def on_event(event: CircuitBreakerEvent) -> None:
    if event.kind == "state_change" and event.previous_state is not None:
        assert event.state in TRANSITIONS[event.previous_state]


breaker = CircuitBreaker(
    "crm",
    failure_threshold=5,
    recovery_timeout=30.0,
    half_open_max_calls=2,
    recovery_multiplier=2.0,
    failure_rate_threshold=0.5,
    window="time",
    window_size=60,
    minimum_calls=20,
    slow_call_duration=2.0,
    expected_exceptions=(ConnectionError, TimeoutError),
    exclude=lambda exc: isinstance(exc, LookupError),
    failure_result=lambda result: result is None,
    listeners=[on_event],
)


@breaker.call
def fetch(account_id: str) -> dict[str, str]:
    return {"id": account_id}


@breaker.call
async def fetch_async(account_id: str) -> int:
    return len(account_id)


def use_sync() -> str:
    try:
        record: dict[str, str] = fetch("001")
    except CircuitOpenError as exc:
        seconds: float = exc.remaining + exc.retry_after
        state: CircuitState = exc.state
        cause: BaseException | None = exc.__cause__
        del seconds, state, cause
        return "fallback"
    return record["id"]


async def use_async() -> int:
    count: int = await fetch_async("001")
    result: int = await breaker.execute_async(fetch_async, "002")
    async with breaker:
        count += result
    return count


def explicit() -> None:
    permit: Permit = breaker.acquire()
    probe: bool = permit.probe
    generation: int = permit.generation
    del probe, generation
    try:
        value = fetch("x")
    except Exception as exc:
        permit.record(exc)
        raise
    permit.success(value)
    with breaker.acquire() as inner:
        inner.ignore()
    with breaker:
        pass
    breaker.acquire().failure(ConnectionError("down"))
    text: str = breaker.execute(str.upper, "abc")
    del text


def control_and_observe(path: Path) -> None:
    breaker.force_open()
    breaker.disable()
    breaker.reset()
    breaker.add_listener(on_event)
    breaker.remove_listener(on_event)
    metrics: CircuitBreakerMetrics = breaker.metrics()
    stats: CircuitBreakerStats = breaker.stats()
    rate: float | None = metrics.failure_rate
    counts: tuple[int, int] = (stats.failure_count, stats.success_count)
    del rate, counts
    assert breaker.state is not CircuitState.DISABLED or math.isfinite(metrics.open_remaining)
    last: BaseException | None = breaker.last_failure
    del last
    stores: list[BreakerStore] = [InMemoryBreakerStore(), SQLiteBreakerStore(path, timeout=1.0)]
    for store in stores:
        shared = CircuitBreaker("erp", store=store, clock=lambda: 0.0)
        shared.execute(print, "hello")
    try:
        SQLiteBreakerStore(path).migrate()
    except CircuitStoreError as exc:
        name: str = exc.name
        del name
    except CircuitBreakerError:
        raise
