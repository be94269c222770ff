# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot path of interlock.rate_limit: one admitted ``try_acquire`` (global and keyed)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from harness import (
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most,
    at_most_of,
    faster_than,
    peer,
    with_version,
)

if TYPE_CHECKING:
    from collections.abc import Callable

LIMITS = with_version("limits")
PYRATE = with_version("pyrate-limiter")

# A limit no benchmark can reach: every timed call is admitted (checked once before timing,
# and a call takes far longer than the 1 ns interval, so the bucket never runs dry).
PER_SECOND = 1_000_000_000
KEY = "tenant-42"
OTHER_KEYS = 1_000  # the keyed rows look their key up among this many others


def admitted(result: object) -> bool:
    """Every contender answers truthy when the call is admitted."""
    return bool(result)


# --------------------------------------------------------------------------------------
# Hot path: rate-limit-try-acquire
# --------------------------------------------------------------------------------------


def rate_limit_try_acquire() -> HotPath:
    def floor() -> Call:
        # The job with the standard library alone: read time.monotonic_ns, then under a
        # threading.Lock compare and advance one integer (GCRA inline, no key, no result
        # object, no validation). Nothing cheaper is still a thread-safe rate limiter.
        clock = time.monotonic_ns
        lock = threading.Lock()
        state = [0]
        interval, limit = 1, PER_SECOND

        def call() -> bool:
            now = clock()
            with lock:
                tat = state[0]
                new = (tat if tat > now else now) + interval
                if new - now <= limit:
                    state[0] = new
                    return True
                return False

        return call

    def interlock() -> Call:
        from interlock.rate_limit import RateLimiter

        limiter = RateLimiter(PER_SECOND, burst=PER_SECOND)
        return limiter.try_acquire

    def interlock_keyed() -> Call:
        from interlock.rate_limit import RateLimiter

        limiter = RateLimiter(PER_SECOND, burst=PER_SECOND)
        for n in range(OTHER_KEYS):
            limiter.try_acquire(f"tenant-{n + 1000}")
        return lambda: limiter.try_acquire(KEY)

    def limits_strategy(name: str) -> Callable[[], Call]:
        def prepare() -> Call:
            strategies = peer("limits.strategies")
            storage = peer("limits.storage").MemoryStorage()
            item = peer("limits").parse(f"{PER_SECOND}/second")
            limiter = getattr(strategies, name)(storage)
            for n in range(OTHER_KEYS):
                limiter.hit(item, f"tenant-{n + 1000}")
            return lambda: limiter.hit(item, KEY)

        return prepare

    def pyrate_gcra() -> Call:
        pyrate = peer("pyrate_limiter")
        rate = pyrate.Rate(PER_SECOND, pyrate.Duration.SECOND)
        limiter = pyrate.Limiter(pyrate.StateBucket([rate], algorithm=pyrate.GCRA()))
        return lambda: limiter.try_acquire(KEY, blocking=False)

    def pyrate_default() -> Call:
        pyrate = peer("pyrate_limiter")
        limiter = pyrate.Limiter(pyrate.Rate(PER_SECOND, pyrate.Duration.SECOND))
        return lambda: limiter.try_acquire(KEY, blocking=False)

    def iap() -> Call:
        bucket = peer("integration_automation_patterns.rate_limiter").TokenBucketRateLimiter
        limiter = bucket(capacity=PER_SECOND, refill_rate=PER_SECOND)
        return limiter.try_acquire  # type: ignore[no-any-return]

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most_of(result, "interlock", "limits-fixed", 0.5),
            at_most_of(result, "interlock-keyed", "limits-fixed", 0.5),
            at_most(result, "interlock", 3.0),
            faster_than(result, "interlock", "pyrate-gcra"),
            faster_than(result, "interlock", "iap"),
        ]

    def limits_row(key: str, strategy: str, what: str) -> Contender:
        return Contender(
            key,
            f"{LIMITS} {what}",
            f"{strategy}(MemoryStorage()).hit(parse('{PER_SECOND}/second'), key)",
            limits_strategy(strategy),
            requires="limits",
            check=admitted,
        )

    return HotPath(
        name="rate-limit-try-acquire",
        summary="admit one call through an in-memory rate limiter with a limit never "
        "reached (1e9 per second); keyed rows look up one key among 1 000 others",
        contenders=(
            Contender(
                "floor",
                "floor",
                "time.monotonic_ns() + Lock + inline integer GCRA (no key, no result object)",
                floor,
                check=admitted,
            ),
            Contender(
                "interlock",
                "interlock",
                "RateLimiter(1e9, burst=1e9).try_acquire() (global bucket)",
                interlock,
                check=admitted,
            ),
            Contender(
                "interlock-keyed",
                "interlock keyed",
                "RateLimiter(...).try_acquire(key) among 1 000 keys",
                interlock_keyed,
                check=admitted,
            ),
            limits_row("limits-fixed", "FixedWindowRateLimiter", "fixed window"),
            limits_row("limits-moving", "MovingWindowRateLimiter", "moving window"),
            limits_row("limits-sliding", "SlidingWindowCounterRateLimiter", "sliding counter"),
            Contender(
                "pyrate-gcra",
                f"{PYRATE} GCRA",
                "Limiter(StateBucket([Rate(1e9, SECOND)], GCRA())).try_acquire(key, "
                "blocking=False)",
                pyrate_gcra,
                requires="pyrate_limiter",
                check=admitted,
            ),
            Contender(
                "pyrate-default",
                f"{PYRATE} default",
                "Limiter(Rate(1e9, SECOND)).try_acquire(key, blocking=False) (in-memory log)",
                pyrate_default,
                requires="pyrate_limiter",
                check=admitted,
            ),
            Contender(
                "iap",
                IAP,
                "TokenBucketRateLimiter(capacity=1e9, refill_rate=1e9).try_acquire() [*]",
                iap,
                requires="integration_automation_patterns",
                check=admitted,
                note="[*] integration-automation-patterns has no keyed limiter: one global "
                "bucket, like the interlock (global) row; its clock is float time.monotonic.",
            ),
        ),
        goals=goals,
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (rate_limit_try_acquire,)
