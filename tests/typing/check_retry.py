"""The public API of interlock.retry under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from interlock.retry import (
    STOP,
    AsyncRetrying,
    Attempt,
    AttemptRecord,
    Backoff,
    BackoffKind,
    InvalidRetryAfterError,
    Jitter,
    RetryBudget,
    RetryError,
    RetryExhausted,
    RetryExhaustedError,
    Retrying,
    RetryStats,
    StopReason,
    delay_from_attribute,
    is_rpa_system_error,
    parse_retry_after,
    retry,
    retry_testing,
)

budget = RetryBudget(max_tokens=10, token_ratio=0.1)
backoff = Backoff(
    kind=BackoffKind.LINEAR, initial_seconds=0.5, max_seconds=4.0, jitter=Jitter.EQUAL
)
wait: float = backoff.wait_seconds_for_attempt(3, previous=1.0, rng=random.Random(1))
base: float = backoff.base_wait_seconds(10_000)


def hint(record: AttemptRecord) -> float | None:
    if record.exception is None:
        return STOP
    return None


@retry(on=(ConnectionError, TimeoutError), attempts=4, timeout=2.0, backoff=backoff, budget=budget)
def fetch(url: str, *, retries_left: int = 0) -> bytes:
    return url.encode()


@retry(on=lambda e: isinstance(e, OSError), delay_for=hint)
async def afetch(url: str) -> int:
    return len(url)


body: bytes = fetch("https://example.org", retries_left=1)

policy: Retrying = Retrying(
    on=OSError,
    on_result=is_rpa_system_error,
    delay_for=delay_from_attribute("remaining"),
    min_attempt_seconds=0.1,
    clock=lambda: 0.0,
    sleep=lambda seconds: None,
)
code: int = policy.call(lambda n: n - 1, 1)
value, stats = policy.call_with_stats(int, "3")
number: int = value
reason: StopReason | None = stats.stop_reason
history: tuple[AttemptRecord, ...] = stats.history
summary: list[str] = RetryStats(1, 0.0, 0.0, StopReason.SUCCESS, ()).describe()

for attempt in policy:
    with attempt:
        left: float | None = attempt.remaining
        deadline: float | None = attempt.deadline
        attempt.set_result(0)
last: Attempt = attempt


async def block() -> int:
    async for each in AsyncRetrying(on=OSError):
        with each:
            pass
    total: int = await afetch("x")
    result: int = await policy.acall(afetch, "y")
    pair: tuple[int, RetryStats] = await policy.acall_with_stats(afetch, "z")
    return total + result + pair[0]


with retry_testing(attempts=2):
    seconds: float = parse_retry_after(
        "Wed, 21 Oct 2015 07:28:00 GMT", now=datetime.now(timezone.utc)
    )

errors: tuple[type[RetryError], ...] = (RetryExhaustedError, RetryExhausted, InvalidRetryAfterError)
