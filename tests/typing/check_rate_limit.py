"""The public API of interlock.rate_limit under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction

from interlock.rate_limit import (
    Bulkhead,
    BulkheadFullError,
    BulkheadMetrics,
    Decision,
    RateLimiter,
    RateLimitError,
    RateLimitExceeded,
)

now = [0]


def clock_ns() -> int:
    return now[0]


def fake_sleep(seconds: float) -> None:
    now[0] += round(seconds * 1_000_000_000)


async def fake_async_sleep(seconds: float) -> None:
    fake_sleep(seconds)


limiter = RateLimiter(
    10,
    per=1.0,
    burst=20,
    max_keys=10_000,
    clock_ns=clock_ns,
    sleep=fake_sleep,
    async_sleep=fake_async_sleep,
)
by_fraction = RateLimiter(Fraction(5, 3), per=Decimal("0.5"))
bucket: RateLimiter = RateLimiter.token_bucket(capacity=100, refill_rate=10.0, clock_ns=clock_ns)

decision: Decision = limiter.try_acquire("tenant-1", cost=2)
allowed: bool = decision.allowed
wait_ns: int = decision.wait_ns
retry_after: float = decision.retry_after
if not decision:
    fake_sleep(decision.retry_after)
limiter.acquire("tenant-1", timeout=0.5)
limiter.acquire(timeout=None)
left: int = limiter.remaining("tenant-1")
limiter.reset("tenant-1")
dropped: int = limiter.purge()
tracked: int = limiter.keys_tracked
burst: int = limiter.burst
cap: int | None = limiter.max_keys

try:
    limiter.acquire(("tenant", 2), cost=1, timeout=0)
except RateLimitExceeded as exc:
    seconds: float = exc.retry_after
    nanos: int = exc.retry_after_ns
except RateLimitError as root:
    message: str = str(root)

bulkhead = Bulkhead(4, max_wait=0.1, name="erp")


@bulkhead
def fetch(order_id: int) -> str:
    return f"order {order_id}"


@bulkhead
async def fetch_async(order_id: int) -> str:
    return f"order {order_id}"


text: str = fetch(1)


async def main() -> str:
    await limiter.acquire_async("tenant-2", cost=1, timeout=1.0)
    async with bulkhead:
        pass
    await bulkhead.acquire_async(timeout=None)
    bulkhead.release()
    return await fetch_async(2)


result: str = asyncio.run(main())
with bulkhead as entered:
    same: Bulkhead = entered
bulkhead.acquire(timeout=0.0)
bulkhead.release()
metrics: BulkheadMetrics = bulkhead.metrics()
in_flight: int = metrics.in_flight
try:
    bulkhead.acquire()
except BulkheadFullError as full:
    name: str = full.name
    slots: int = full.max_concurrent
