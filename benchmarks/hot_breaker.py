# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.circuit_breaker: a call through a closed breaker, sync and awaited."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from harness import (
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Sampler,
    Settings,
    Verdict,
    at_most,
    at_most_of,
    peer,
    timed_batches,
    with_version,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

PYBREAKER = with_version("pybreaker")
CIRCUITBREAKER = with_version("circuitbreaker")


def work(x: int) -> int:
    """The protected function: trivial, so the breaker's own cost is what is measured."""
    return x + 1


async def awork(x: int) -> int:
    """The awaited protected function."""
    return x + 1


# --------------------------------------------------------------------------------------
# Hot path 1: a successful call through a closed breaker
# --------------------------------------------------------------------------------------


def breaker_closed_call() -> HotPath:
    def floor() -> Call:
        return lambda: work(1)

    def interlock() -> Call:
        from interlock.circuit_breaker import CircuitBreaker

        guarded = CircuitBreaker("bench", failure_threshold=5, recovery_timeout=60.0).call(work)
        return lambda: guarded(1)

    def interlock_with() -> Call:
        from interlock.circuit_breaker import CircuitBreaker

        breaker = CircuitBreaker(
            "bench", failure_threshold=None, failure_rate_threshold=0.5, window_size=100
        )
        guarded = breaker.call(work)
        return lambda: guarded(1)

    def pybreaker() -> Call:
        guarded = peer("pybreaker").CircuitBreaker(fail_max=5, reset_timeout=60)(work)
        return lambda: guarded(1)

    def circuitbreaker() -> Call:
        breaker = peer("circuitbreaker").CircuitBreaker(
            failure_threshold=5, recovery_timeout=60, name="bench"
        )
        guarded = breaker(work)
        return lambda: guarded(1)

    def iap() -> Call:
        breaker = peer("integration_automation_patterns.circuit_breaker").CircuitBreaker(
            name="bench", failure_threshold=5, recovery_timeout=60.0
        )
        guarded = breaker.call(work)
        return lambda: guarded(1)

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most_of(result, "interlock", "pybreaker", 1 / 3),
            at_most_of(result, "interlock", "circuitbreaker", 1.0),
            at_most(result, "interlock", 6.0),
        ]

    def two(out: object) -> bool:
        return out == 2

    return HotPath(
        name="breaker-closed-call",
        summary="call a trivial function through a closed breaker (decorator), success",
        contenders=(
            Contender("floor", "floor", "work(1), a bare call", floor, check=two),
            Contender(
                "interlock",
                "interlock",
                "@breaker.call, consecutive policy (thread-safe, lock-free success)",
                interlock,
                check=two,
            ),
            Contender(
                "interlock-rate",
                "interlock (rate policy)",
                "@breaker.call, failure-rate policy over 100 calls (locked path)",
                interlock_with,
                check=two,
            ),
            Contender(
                "pybreaker",
                PYBREAKER,
                "@breaker (holds its lock during the call)",
                pybreaker,
                requires="pybreaker",
                check=two,
            ),
            Contender(
                "circuitbreaker",
                CIRCUITBREAKER,
                "@breaker (no lock)",
                circuitbreaker,
                requires="circuitbreaker",
                check=two,
            ),
            Contender(
                "iap",
                IAP,
                "@breaker.call (locks around the state check and each outcome)",
                iap,
                requires="integration_automation_patterns",
                check=two,
            ),
        ),
        goals=goals,
        notes=(
            (
                "interlock-rate is interlock's locked path (every outcome recorded in a window);"
                " it is what rate policies, listeners and stores cost."
            ),
        ),
    )


# --------------------------------------------------------------------------------------
# Hot path 2: an awaited call through a closed breaker
# --------------------------------------------------------------------------------------

AWAITS = 200  # awaited calls per run of the event loop; results are per awaited call


def per_await(call: Call, settings: Settings) -> Sampler:
    """Time batches of loop runs, each awaiting AWAITS calls; report ns per awaited call."""
    sampler = timed_batches(call, settings)
    return Sampler(lambda: sampler.sample() / AWAITS, sampler.calls_per_batch * AWAITS)


def looped(fn: Callable[[int], Awaitable[int]]) -> Call:
    """One event loop per contender; the timed call runs AWAITS awaits of ``fn`` in it."""
    loop = asyncio.new_event_loop()

    async def batch() -> int:
        total = 0
        for _ in range(AWAITS):
            total += await fn(1)
        return total

    return lambda: loop.run_until_complete(batch())


def breaker_async_call() -> HotPath:
    def floor() -> Call:
        return looped(awork)

    def interlock() -> Call:
        from interlock.circuit_breaker import CircuitBreaker

        breaker = CircuitBreaker("bench", failure_threshold=5, recovery_timeout=60.0)
        return looped(breaker.call(awork))

    def circuitbreaker() -> Call:
        breaker = peer("circuitbreaker").CircuitBreaker(
            failure_threshold=5, recovery_timeout=60, name="bench-async"
        )
        return looped(breaker(awork))

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most_of(result, "interlock", "circuitbreaker", 1.0),
            at_most(result, "interlock", 3.5),
        ]

    def all_two(out: object) -> bool:
        return out == 2 * AWAITS

    return HotPath(
        name="breaker-async-call",
        summary=f"await a trivial coroutine through a closed breaker ({AWAITS} per loop run)",
        contenders=(
            Contender("floor", "floor", "await awork(1)", floor, check=all_two),
            Contender(
                "interlock",
                "interlock",
                "await (@breaker.call on an async def)",
                interlock,
                check=all_two,
            ),
            Contender(
                "circuitbreaker",
                CIRCUITBREAKER,
                "await (@breaker on an async def)",
                circuitbreaker,
                requires="circuitbreaker",
                check=all_two,
            ),
        ),
        goals=goals,
        measure=per_await,
        notes=(
            (
                "Times are per awaited call; the event loop run is in every contender, floor"
                " included."
            ),
            (
                f"{PYBREAKER} and {IAP} are absent: their decorators do not await an async def,"
                " they return its coroutine unguarded."
            ),
        ),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (breaker_closed_call, breaker_async_call)
