# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot path of interlock.retry: a retrying call whose first attempt succeeds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness import (
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most_of,
    peer,
    with_version,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TENACITY = with_version("tenacity")
STAMINA = with_version("stamina")
BACKOFF = with_version("backoff")


def work(x: int) -> int:
    """The retried function: trivial, so the retry machinery's own cost is what is measured."""
    return x + 1


def retry_first_try_success() -> HotPath:
    def floor() -> Call:
        return lambda: work(1)

    def interlock() -> Call:
        from interlock.retry import retry

        retried = retry(on=ConnectionError, attempts=5, timeout=30.0)(work)
        return lambda: retried(1)

    def interlock_call() -> Call:
        from interlock.retry import Retrying

        policy = Retrying(on=ConnectionError, attempts=5, timeout=30.0)
        return lambda: policy.call(work, 1)

    def tenacity() -> Call:
        t = peer("tenacity")
        retried = t.retry(
            retry=t.retry_if_exception_type(ConnectionError),
            stop=t.stop_after_attempt(5) | t.stop_after_delay(30),
            wait=t.wait_random_exponential(multiplier=0.1, max=5),
        )(work)
        return lambda: retried(1)

    def stamina() -> Call:
        retried = peer("stamina").retry(on=ConnectionError, attempts=5, timeout=30.0)(work)
        return lambda: retried(1)

    def backoff() -> Call:
        b = peer("backoff")
        retried = b.on_exception(b.expo, ConnectionError, max_tries=5, max_time=30)(work)
        return lambda: retried(1)

    def iap() -> Call:
        policy = peer("integration_automation_patterns.retry_policy").RetryPolicy(
            max_attempts=5, base_delay=0.1, max_delay=5.0, retryable_exceptions=(ConnectionError,)
        )
        return lambda: policy.execute(work, 1)

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most_of(result, "interlock", "tenacity", 1 / 10),
            at_most_of(result, "interlock", "backoff", 1 / 2),
        ]

    def two(out: object) -> bool:
        return out == 2

    return HotPath(
        name="retry-first-try-success",
        summary="call a trivial function through a retry policy; the first attempt succeeds",
        contenders=(
            Contender("floor", "floor", "work(1), a bare call", floor, check=two),
            Contender(
                "interlock",
                "interlock",
                "@retry(on=ConnectionError, attempts=5, timeout=30.0)",
                interlock,
                check=two,
            ),
            Contender(
                "interlock-call",
                "interlock (call API)",
                "Retrying(...).call(work, 1)",
                interlock_call,
                check=two,
            ),
            Contender(
                "tenacity",
                TENACITY,
                "@retry(retry_if_exception_type, stop_after_attempt(5) | stop_after_delay(30),"
                " wait_random_exponential)",
                tenacity,
                requires="tenacity",
                check=two,
            ),
            Contender(
                "stamina",
                STAMINA,
                "@retry(on=ConnectionError, attempts=5, timeout=30.0)",
                stamina,
                requires="stamina",
                check=two,
            ),
            Contender(
                "backoff",
                BACKOFF,
                "@on_exception(expo, ConnectionError, max_tries=5, max_time=30)",
                backoff,
                requires="backoff",
                check=two,
            ),
            Contender(
                "iap",
                IAP,
                "RetryPolicy(max_attempts=5, ...).execute(work, 1)",
                iap,
                requires="integration_automation_patterns",
                check=two,
            ),
        ),
        goals=goals,
        notes=(
            (
                "Every contender is configured alike: retry ConnectionError, at most 5 attempts"
                " and (where supported) 30 s in total; the first attempt succeeds."
            ),
            (
                "interlock reads its clock once per call (the deadline starts before the first"
                " attempt) and allocates nothing else until an attempt fails."
            ),
        ),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (retry_first_try_success,)
