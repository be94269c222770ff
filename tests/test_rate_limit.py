"""interlock.rate_limit: exact GCRA under a fake clock, bounded keys, blocking waits, bulkhead."""

from __future__ import annotations

import asyncio
import inspect
import math
import random
import signal
import threading
import time
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.rate_limit import (
    Bulkhead,
    BulkheadFullError,
    BulkheadMetrics,
    Decision,
    RateLimiter,
    RateLimitError,
    RateLimitExceeded,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NS = 1_000_000_000


class FakeClock:
    """A nanosecond clock that moves only when told to; its sleeps advance it."""

    def __init__(self, start: int = 0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += round(seconds * NS)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


def limiter_on(clock: FakeClock, rate: Any, **kwargs: Any) -> RateLimiter:
    return RateLimiter(
        rate, clock_ns=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kwargs
    )


def interval_ns(rate: Any, per: Any) -> Fraction:
    """The emission interval in ns as an exact fraction (floats read as their decimal)."""

    def exact(x: Any) -> Fraction:
        return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)

    return exact(per) * NS / exact(rate)


def expected_admissions(rate: Any, per: Any, burst: int, span_ns: int) -> int:
    """floor(r * T) + b, computed independently with fractions."""
    return math.floor(span_ns / interval_ns(rate, per)) + burst


def until(predicate: Any) -> None:
    """Wait (by polling an Event with a short timeout) until predicate() holds, 10 s at most."""
    pause = threading.Event()
    for _ in range(10_000):
        if predicate():
            return
        pause.wait(0.001)
    raise AssertionError("condition never became true")


rates = st.one_of(
    st.integers(1, 5_000),
    st.fractions(min_value=Fraction(1, 997), max_value=5_000, max_denominator=997),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(5000), places=2).filter(bool),
    st.sampled_from([0.1, 0.3, 2.5, 3.0, 7.7, 33.3, 1e3]),
)
pers = st.one_of(
    st.sampled_from([1.0, 0.5, 60.0, 0.001, 3.0, 1]),
    st.fractions(min_value=Fraction(1, 10**6), max_value=100, max_denominator=10**6),
)


# --------------------------------------------------------------------------------------
# Exactness: floor of rate times T, plus the burst
# --------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    rate=rates,
    per=pers,
    burst=st.integers(1, 40),
    start=st.integers(-(10**15), 10**15),
    data=st.data(),
)
def test_saturated_demand_admits_exactly_floor_rt_plus_burst(
    rate: Any, per: Any, burst: int, start: int, data: st.DataObject
) -> None:
    """Saturated demand over [t0, t0+T] admits exactly floor(r*T) + b, for any r, b, T."""
    e = interval_ns(rate, per)
    span = data.draw(st.integers(0, math.ceil(400 * e)), label="T_ns")
    clock = FakeClock(start)
    limiter = limiter_on(clock, rate, per=per, burst=burst)
    admitted = 0
    # A refused request changes nothing, so requesting at every nanosecond is the same as
    # requesting again exactly when the previous refusal said to.
    while clock.now <= start + span:
        decision = limiter.try_acquire()
        if decision:
            admitted += 1
        else:
            assert decision.wait_ns >= 1
            clock.advance(decision.wait_ns)
    assert admitted == expected_admissions(rate, per, burst, span)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(1, 20),
    per_ns=st.integers(1, 300),
    burst=st.integers(1, 5),
    span=st.integers(0, 1_500),
    keyed=st.booleans(),
)
def test_a_request_at_every_nanosecond_tick_is_admitted_exactly(
    count: int, per_ns: int, burst: int, span: int, keyed: bool
) -> None:
    """Requests at every ns tick (fractional-ns intervals included) hit floor(r*T) + b exactly."""
    per = Fraction(per_ns, NS)
    clock = FakeClock(7)
    limiter = limiter_on(clock, count, per=per, burst=burst)
    key = "k" if keyed else None
    admitted = 0
    for tick in range(span + 1):
        clock.now = 7 + tick
        while limiter.try_acquire(key):
            admitted += 1
    assert admitted == expected_admissions(count, per, burst, span)


@settings(max_examples=150, deadline=None)
@given(rate=rates, per=pers, burst=st.integers(1, 20), data=st.data())
def test_random_request_times_never_exceed_the_bound_and_waits_are_exact(
    rate: Any, per: Any, burst: int, data: st.DataObject
) -> None:
    """Any request pattern from a fresh start admits at most floor(r*T) + b; each wait is exact."""
    e = interval_ns(rate, per)
    span = data.draw(st.integers(0, math.ceil(50 * e)), label="T_ns")
    times = sorted(data.draw(st.lists(st.integers(0, span), max_size=120), label="times"))
    clock = FakeClock()
    limiter = limiter_on(clock, rate, per=per, burst=burst)
    admitted = 0
    for t in times:
        clock.now = t
        decision = limiter.try_acquire("client")
        if decision:
            admitted += 1
            continue
        # Exact: one nanosecond earlier than promised is still refused.
        if decision.wait_ns > 1:
            clock.now = t + decision.wait_ns - 1
            late = limiter.try_acquire("client")
            assert not late
            assert late.wait_ns == 1
        clock.now = t
    assert admitted <= expected_admissions(rate, per, burst, span)


@settings(max_examples=100, deadline=None)
@given(
    interval=st.integers(1, 10**9),
    capacity=st.integers(1, 10),
    steps=st.lists(st.tuples(st.integers(0, 3 * 10**9), st.integers(1, 10)), max_size=60),
)
def test_token_bucket_constructor_matches_a_rational_token_bucket(
    interval: int, capacity: int, steps: list[tuple[int, int]]
) -> None:
    """token_bucket(capacity, refill_rate) decides exactly like a token bucket that starts full."""
    refill = Fraction(NS, interval)  # tokens per second
    clock = FakeClock()
    limiter = RateLimiter.token_bucket(capacity=capacity, refill_rate=refill, clock_ns=clock)
    tokens, last = Fraction(capacity), 0
    for gap, raw_cost in steps:
        clock.advance(gap)
        cost = min(raw_cost, capacity)
        tokens = min(Fraction(capacity), tokens + refill * Fraction(clock.now - last, NS))
        last = clock.now
        decision = limiter.try_acquire(cost=cost)
        if tokens >= cost:
            tokens -= cost
            assert decision.allowed
        else:
            assert not decision.allowed
            assert decision.wait_ns == math.ceil((cost - tokens) / refill * NS)


def test_integer_ns_arithmetic_does_not_drift_far_from_the_clock_origin() -> None:
    """Ten years into the clock, 3/s for 1000 s of saturated demand is exactly 3000 + burst."""
    start = 10 * 365 * 24 * 3600 * NS
    clock = FakeClock(start)
    limiter = limiter_on(clock, 3, burst=1)
    admitted = 0
    while clock.now <= start + 1000 * NS:
        decision = limiter.try_acquire()
        if decision:
            admitted += 1
        else:
            clock.advance(decision.wait_ns)
    assert admitted == 3001


def test_costs_consume_that_many_units() -> None:
    """A call of cost c takes c units; cost above burst or below 1 is refused with ValueError."""
    clock = FakeClock()
    limiter = limiter_on(clock, 10, burst=5)
    assert limiter.try_acquire(cost=3)
    assert limiter.remaining() == 2
    decision = limiter.try_acquire(cost=3)
    assert not decision
    assert decision.wait_ns == 100_000_000
    assert limiter.try_acquire(cost=2)
    with pytest.raises(ValueError, match=r"cost must be between 1 and burst=5, got 6"):
        limiter.try_acquire(cost=6)
    with pytest.raises(ValueError, match="cost"):
        limiter.try_acquire(cost=0)
    with pytest.raises(TypeError, match="cost must be an int"):
        limiter.try_acquire(cost=1.5)  # type: ignore[arg-type]


def test_decision_reports_allowed_and_wait_in_seconds_and_nanoseconds() -> None:
    """A denial's Decision is falsy and carries the wait as exact ns and float seconds."""
    clock = FakeClock()
    limiter = limiter_on(clock, 4, burst=1)
    first = limiter.try_acquire()
    assert first == Decision(allowed=True, wait_ns=0)
    assert first.retry_after == 0.0
    denied = limiter.try_acquire()
    assert (bool(denied), denied.wait_ns, denied.retry_after) == (False, 250_000_000, 0.25)


# --------------------------------------------------------------------------------------
# Keys: independence, bounded memory, max_keys
# --------------------------------------------------------------------------------------


def test_keys_are_independent_of_each_other_and_of_the_global_bucket() -> None:
    """Each key (and key=None) has its own bucket."""
    clock = FakeClock()
    limiter = limiter_on(clock, 1, burst=2)
    assert [bool(limiter.try_acquire("a")) for _ in range(3)] == [True, True, False]
    assert [bool(limiter.try_acquire("b")) for _ in range(3)] == [True, True, False]
    assert [bool(limiter.try_acquire()) for _ in range(3)] == [True, True, False]
    assert limiter.remaining("a") == 0
    assert limiter.remaining("never-seen") == 2
    assert limiter.keys_tracked == 2


def test_keyed_memory_stays_bounded_and_idle_keys_expire() -> None:
    """With a new key every ms, tracked keys never exceed the live keys (+1), then expire."""
    clock = FakeClock()
    limiter = limiter_on(clock, 10, burst=5)  # horizon: 5 * 100 ms = 500 ms
    peak = 0
    for i in range(5_000):
        clock.advance(1_000_000)
        assert limiter.try_acquire(f"client-{i}")
        peak = max(peak, limiter.keys_tracked)
    # One call each: a key's TAT is 100 ms after its call, so 100 keys are live at a time.
    assert peak == 101
    assert limiter.keys_tracked == 101
    clock.advance(101_000_000)  # every key has expired now
    assert limiter.keys_tracked == 101  # lazily: nothing is dropped without a call
    for i in range(30):
        assert limiter.try_acquire(f"late-{i}")
    assert limiter.keys_tracked == 101 - 2 * 30 + 30  # each new key dropped two expired ones
    for i in range(30, 300):
        assert limiter.try_acquire(f"late-{i}")
    assert limiter.keys_tracked == 300  # the 101 old keys are all gone
    clock.advance(101_000_000)
    assert limiter.purge() == 300
    assert limiter.keys_tracked == 0


@settings(max_examples=150, deadline=None)
@given(
    rate=rates,
    burst=st.integers(1, 6),
    steps=st.lists(
        st.tuples(st.integers(0, 3 * 10**9), st.integers(0, 40), st.integers(1, 6)),
        max_size=150,
    ),
)
def test_tracked_keys_never_exceed_the_keys_admitted_within_one_horizon(
    rate: Any, burst: int, steps: list[tuple[int, int, int]]
) -> None:
    """Tracked keys <= the most distinct keys ever admitted within burst*interval + 1 ns."""
    clock = FakeClock()
    limiter = limiter_on(clock, rate, burst=burst)
    horizon = burst * interval_ns(rate, 1.0) + 1  # an admission at t is live before t + horizon
    last_admitted: dict[int, int] = {}
    bound = 0
    for gap, key, raw_cost in steps:
        clock.advance(gap)
        if limiter.try_acquire(key, cost=min(raw_cost, burst)):
            last_admitted[key] = clock.now
            recent = sum(1 for t in last_admitted.values() if t > clock.now - horizon)
            bound = max(bound, recent)
        assert limiter.keys_tracked <= bound


def test_an_expired_key_that_was_not_yet_dropped_starts_with_a_full_burst() -> None:
    """A key whose TAT is in the past carries no information: it behaves like a new key."""
    clock = FakeClock()
    limiter = limiter_on(clock, 1, burst=3)
    for _ in range(3):
        assert limiter.try_acquire("a")
    assert not limiter.try_acquire("a")
    clock.advance(3 * NS)
    assert limiter.remaining("a") == 3
    assert [bool(limiter.try_acquire("a")) for _ in range(4)] == [True, True, True, False]


def test_max_keys_evicts_the_least_recently_admitted_key() -> None:
    """With max_keys, a new key evicts the oldest live key, which starts over."""
    clock = FakeClock()
    limiter = limiter_on(clock, 1, burst=1, max_keys=2)
    assert limiter.try_acquire("a")
    assert limiter.try_acquire("b")
    assert limiter.try_acquire("a").allowed is False  # a is live (refusals do not reorder)
    assert limiter.try_acquire("c")  # evicts a: the least recently admitted
    assert limiter.keys_tracked == 2
    assert not limiter.try_acquire("b")
    assert limiter.try_acquire("a")  # forgotten, so a fresh burst (evicts b)
    assert limiter.keys_tracked == 2


def test_reset_forgets_one_bucket() -> None:
    """reset(key) and reset() give back a full burst to that bucket only."""
    clock = FakeClock()
    limiter = limiter_on(clock, 1, burst=1)
    assert limiter.try_acquire("a")
    assert limiter.try_acquire()
    limiter.reset("a")
    limiter.reset("unknown")
    assert limiter.try_acquire("a")
    assert not limiter.try_acquire()
    limiter.reset()
    assert limiter.try_acquire()


# --------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [(None,), ("a", "b", "c")])
def test_threads_hammering_get_exactly_the_model_admissions(keys: tuple[str | None, ...]) -> None:
    """8 threads released by a Barrier admit exactly b + floor(r*X) per key, never more."""
    clock = FakeClock(1_000)
    burst = 3_000
    limiter = limiter_on(clock, 1_000, burst=burst)
    threads = 8
    per_thread = 1_200  # 9 600 attempts per phase for 3 000 + 500 admissions per key
    barrier = threading.Barrier(threads)
    counts: list[dict[str | None, int]] = [{} for _ in range(threads)]
    phase_done = threading.Barrier(threads + 1)
    next_phase = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        mine = counts[index]
        for _ in range(2):
            barrier.wait()
            for n in range(per_thread):
                key = keys[n % len(keys)]
                if limiter.try_acquire(key):
                    mine[key] = mine.get(key, 0) + 1
            phase_done.wait()
            next_phase.wait()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    phase_done.wait()
    clock.advance(500_000_000)  # half a second: 500 more per key
    next_phase.wait()
    phase_done.wait()
    next_phase.wait()
    for thread in pool:
        thread.join()
    for key in keys:
        assert sum(c.get(key, 0) for c in counts) == burst + 500


# --------------------------------------------------------------------------------------
# Blocking acquire, sync and async
# --------------------------------------------------------------------------------------


def test_acquire_sleeps_exactly_the_wait_and_is_then_admitted() -> None:
    """acquire() sleeps the exact wait once, then is admitted."""
    clock = FakeClock()
    limiter = limiter_on(clock, 4, burst=1)
    limiter.acquire()
    assert clock.slept == []
    limiter.acquire(timeout=1.0)
    assert clock.slept == [0.25]
    limiter.acquire("k", timeout=None)
    limiter.acquire("k")
    assert clock.slept == [0.25, 0.25]


@settings(max_examples=200, deadline=None)
@given(
    used=st.integers(0, 5),
    elapsed=st.integers(0, 3 * NS),
    timeout=st.one_of(st.just(0.0), st.floats(0, 3, allow_nan=False)),
    cost=st.integers(1, 5),
)
def test_acquire_never_waits_longer_than_its_timeout(
    used: int, elapsed: int, timeout: float, cost: int
) -> None:
    """acquire either sleeps at most timeout and is admitted, or raises without sleeping."""
    clock = FakeClock()
    probe = limiter_on(clock, 2, burst=5)
    limiter = limiter_on(clock, 2, burst=5)
    if used:
        assert probe.try_acquire(cost=used)
        assert limiter.try_acquire(cost=used)
    clock.advance(elapsed)
    needed = probe.try_acquire(cost=cost).wait_ns  # the same state, asked without waiting
    start = clock.now
    if needed <= round(timeout * NS):
        limiter.acquire(cost=cost, timeout=timeout)
        assert clock.now - start == needed
        assert len(clock.slept) == (1 if needed else 0)
    else:
        with pytest.raises(RateLimitExceeded) as info:
            limiter.acquire(cost=cost, timeout=timeout)
        assert clock.slept == []
        assert info.value.retry_after_ns == needed
        assert info.value.cost == cost
    assert clock.now - start <= round(timeout * NS)


def test_acquire_under_contention_gives_up_before_the_deadline() -> None:
    """If others keep taking the capacity, acquire stops before it would pass its timeout."""
    clock = FakeClock()
    limiter = limiter_on(clock, 10, burst=1)
    rival_wins = 0

    def contended_sleep(seconds: float) -> None:
        nonlocal rival_wins
        clock.sleep(seconds)
        if limiter.try_acquire("k"):  # another client takes the slot first
            rival_wins += 1

    limiter = RateLimiter(10, burst=1, clock_ns=clock, sleep=contended_sleep)
    assert limiter.try_acquire("k")
    with pytest.raises(RateLimitExceeded) as info:
        limiter.acquire("k", timeout=0.35)
    assert rival_wins == 3
    assert clock.now == 300_000_000  # three sleeps of 0.1 s; a fourth would pass 0.35 s
    assert info.value.key == "k"
    assert info.value.retry_after == 0.1


def test_acquire_async_waits_with_the_injected_sleep() -> None:
    """await acquire_async() sleeps the exact wait; too long a wait raises without sleeping."""
    clock = FakeClock()
    limiter = limiter_on(clock, 2, burst=1)

    async def main() -> None:
        await limiter.acquire_async("k")
        await limiter.acquire_async("k", timeout=0.5)
        assert clock.slept == [0.5]
        with pytest.raises(RateLimitExceeded):
            await limiter.acquire_async("k", timeout=0.4)
        assert clock.slept == [0.5]
        await limiter.acquire_async("k", cost=1)

    asyncio.run(main())
    assert clock.slept == [0.5, 0.5]


def test_acquire_async_defaults_to_asyncio_sleep() -> None:
    """Without async_sleep, acquire_async waits with asyncio.sleep."""
    ticks = iter(range(0, 10**12, 1_000))  # the clock moves 1 us per reading
    limiter = RateLimiter(1, per=0.000_001, burst=1, clock_ns=lambda: next(ticks))

    async def main() -> None:
        for _ in range(3):
            await limiter.acquire_async()

    asyncio.run(main())


def test_cancelled_async_acquire_consumes_nothing() -> None:
    """A task cancelled while waiting for the limiter takes no capacity."""
    clock = FakeClock()
    gate: list[asyncio.Future[None]] = []

    async def blocking_sleep(seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.append(future)
        await future

    limiter = RateLimiter(1, burst=2, clock_ns=clock, async_sleep=blocking_sleep)

    async def main() -> None:
        await limiter.acquire_async()
        await limiter.acquire_async()
        task = asyncio.ensure_future(limiter.acquire_async())
        while not gate:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    clock.advance(NS)
    assert limiter.remaining() == 1  # one unit refilled, none taken by the cancelled call


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rate": 0}, ValueError, r"rate must be > 0, got 0"),
        ({"rate": -1.5}, ValueError, r"rate must be > 0, got -1.5"),
        ({"rate": math.nan}, ValueError, r"rate must be finite, got nan"),
        ({"rate": math.inf}, ValueError, r"rate must be finite"),
        ({"rate": Decimal("NaN")}, ValueError, r"rate must be finite"),
        ({"rate": "10"}, TypeError, r"rate must be a number, got '10'"),
        ({"rate": True}, TypeError, r"rate must be a number, got True"),
        ({"rate": 1, "per": 0}, ValueError, r"per must be > 0, got 0"),
        ({"rate": 1, "burst": 0}, ValueError, r"burst must be >= 1, got 0"),
        ({"rate": 1, "burst": 2.0}, TypeError, r"burst must be an int, got 2.0"),
        ({"rate": 1, "max_keys": 0}, ValueError, r"max_keys must be >= 1, got 0"),
        ({"rate": 1, "clock_ns": 5}, TypeError, r"clock_ns must be callable, got 5"),
        ({"rate": 1, "sleep": None}, TypeError, r"sleep must be callable"),
        ({"rate": 1, "async_sleep": 1}, TypeError, r"async_sleep must be callable or None"),
    ],
)
def test_bad_configuration_names_the_argument(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    """Bad limiter configuration raises ValueError/TypeError naming the argument and value."""
    rate = kwargs.pop("rate")
    with pytest.raises(error, match=match):
        RateLimiter(rate, **kwargs)


@pytest.mark.parametrize(
    ("timeout", "error", "match"),
    [
        (-1, ValueError, r"timeout must be >= 0 and finite, got -1"),
        (math.nan, ValueError, r"timeout must be >= 0 and finite"),
        (math.inf, ValueError, r"timeout must be >= 0 and finite"),
        ("1", TypeError, r"timeout must be a number of seconds or None, got '1'"),
        (False, TypeError, r"timeout must be a number of seconds or None, got False"),
    ],
)
def test_bad_timeouts_name_the_argument(timeout: Any, error: type, match: str) -> None:
    """acquire, acquire_async and the bulkhead reject bad timeouts before waiting."""
    limiter = RateLimiter(1, clock_ns=FakeClock())
    with pytest.raises(error, match=match):
        limiter.acquire(timeout=timeout)
    with pytest.raises(error, match=match):
        asyncio.run(limiter.acquire_async(timeout=timeout))
    with pytest.raises(error, match=match):
        Bulkhead(1).acquire(timeout=timeout)
    with pytest.raises(error, match=match.replace("timeout", "max_wait")):
        Bulkhead(1, max_wait=timeout)


def test_rates_of_every_numeric_kind_mean_the_same_limit() -> None:
    """int, float (read as its decimal), Fraction and Decimal rates give the same interval."""
    for rate in (0.1, Fraction(1, 10), Decimal("0.1")):
        clock = FakeClock()
        limiter = limiter_on(clock, rate)
        assert limiter.try_acquire()
        assert limiter.try_acquire().wait_ns == 10 * NS
    clock = FakeClock()
    limiter = limiter_on(clock, 120, per=60)
    assert limiter.try_acquire()
    assert limiter.try_acquire().wait_ns == NS // 2
    assert (limiter.rate, limiter.per, limiter.burst, limiter.max_keys) == (120, 60, 1, None)
    assert repr(limiter) == "RateLimiter(120, per=60, burst=1)"


@pytest.mark.parametrize(
    ("capacity", "error"), [(2.0, TypeError), (True, TypeError), (0, ValueError)]
)
def test_token_bucket_names_capacity_in_its_errors(
    capacity: object, error: type[Exception]
) -> None:
    """A bad capacity is reported as capacity, the argument the caller wrote, not as burst."""
    with pytest.raises(error, match=r"^capacity must be"):
        RateLimiter.token_bucket(capacity=capacity, refill_rate=1.0)  # type: ignore[arg-type]


def test_token_bucket_uses_the_peer_names() -> None:
    """token_bucket(capacity=, refill_rate=) is RateLimiter(refill_rate, per=1, burst=capacity)."""
    limiter = RateLimiter.token_bucket(capacity=200, refill_rate=50.0, clock_ns=FakeClock())
    assert (limiter.rate, limiter.per, limiter.burst) == (50.0, 1.0, 200)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_errors_share_one_root_under_runtime_error() -> None:
    """Every error is a RateLimitError (a RuntimeError) with its context as attributes."""
    exc = RateLimitExceeded("tenant", 2, 1_500_000_000)
    assert isinstance(exc, RateLimitError)
    assert isinstance(exc, RuntimeError)
    assert (exc.key, exc.cost, exc.retry_after_ns, exc.retry_after) == (
        "tenant",
        2,
        1_500_000_000,
        1.5,
    )
    assert str(exc) == "rate limit exceeded for key 'tenant': retry after 1.5 s"
    assert str(RateLimitExceeded(None, 1, 1)) == "rate limit exceeded: retry after 1e-09 s"
    full = BulkheadFullError("erp", 4, 0.25)
    assert isinstance(full, RateLimitError)
    assert (full.name, full.max_concurrent, full.timeout) == ("erp", 4, 0.25)
    assert str(full) == "bulkhead 'erp' is full (4 in flight) after waiting 0.25 s"
    assert str(BulkheadFullError("erp", 4, 0.0)) == "bulkhead 'erp' is full (4 in flight)"


# --------------------------------------------------------------------------------------
# Bulkhead
# --------------------------------------------------------------------------------------


def test_bulkhead_lets_n_threads_inside_at_once_and_rejects_the_next() -> None:
    """N threads meet at a Barrier inside the protected call; the N+1th is rejected at once."""
    n = 8
    bulkhead = Bulkhead(n, name="erp")
    inside = threading.Barrier(n + 1, timeout=30)
    leave = threading.Event()

    @bulkhead
    def call(index: int) -> int:
        inside.wait()  # passes only when all N are inside together (and the main thread)
        leave.wait(30)
        return index

    results: list[int] = []
    pool = [threading.Thread(target=lambda i=i: results.append(call(i))) for i in range(n)]
    for thread in pool:
        thread.start()
    inside.wait()
    with pytest.raises(BulkheadFullError) as info:
        call(99)
    assert (info.value.name, info.value.max_concurrent, info.value.timeout) == ("erp", n, 0.0)
    leave.set()
    for thread in pool:
        thread.join()
    assert sorted(results) == list(range(n))
    assert bulkhead.metrics() == BulkheadMetrics(
        name="erp",
        max_concurrent=n,
        in_flight=0,
        max_in_flight=n,
        waiting=0,
        admitted=n,
        rejected=1,
        waited=0,
    )
    assert call.__name__ == "call"


def test_bulkhead_waiter_gives_up_after_its_timeout() -> None:
    """When full, a caller with a timeout queues, then raises BulkheadFullError and leaves."""
    bulkhead = Bulkhead(1, max_wait=0.01)
    with bulkhead:
        with pytest.raises(BulkheadFullError) as info:
            bulkhead.acquire()
        assert info.value.timeout == 0.01
    metrics = bulkhead.metrics()
    assert (metrics.waited, metrics.rejected, metrics.waiting, metrics.in_flight) == (1, 1, 0, 0)


def test_bulkhead_hands_a_freed_slot_to_waiters_in_fifo_order() -> None:
    """Queued threads get freed slots in arrival order; in-flight never exceeds N."""
    bulkhead = Bulkhead(1, max_wait=None)
    order: list[int] = []
    bulkhead.acquire()

    def waiter(index: int) -> None:
        with bulkhead:
            order.append(index)

    first = threading.Thread(target=waiter, args=(1,))
    first.start()
    until(lambda: bulkhead.metrics().waiting == 1)
    second = threading.Thread(target=waiter, args=(2,))
    second.start()
    until(lambda: bulkhead.metrics().waiting == 2)
    with pytest.raises(BulkheadFullError):  # no overtaking the queue, even with a timeout of 0
        bulkhead.acquire(timeout=0)
    bulkhead.release()
    first.join()
    second.join()
    assert order == [1, 2]
    metrics = bulkhead.metrics()
    assert (metrics.max_in_flight, metrics.in_flight, metrics.admitted, metrics.waited) == (
        1,
        0,
        3,
        2,
    )


def test_bulkhead_waiter_interrupted_by_keyboard_interrupt_leaves_the_queue() -> None:
    """A thread interrupted (SIGINT) while queued leaves the queue; no slot is lost."""
    bulkhead = Bulkhead(1, max_wait=None)
    bulkhead.acquire()
    main = threading.get_ident()

    def interrupt() -> None:
        until(lambda: bulkhead.metrics().waiting == 1)
        signal.pthread_kill(main, signal.SIGINT)

    helper = threading.Thread(target=interrupt)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        bulkhead.acquire()
    helper.join()
    assert bulkhead.metrics().waiting == 0
    bulkhead.release()
    assert bulkhead.metrics().in_flight == 0
    with bulkhead:
        assert bulkhead.metrics().in_flight == 1


def test_thread_interrupted_just_after_a_handover_passes_the_slot_on() -> None:
    """A queued thread handed a slot and interrupted before it returns frees that slot."""
    bulkhead = Bulkhead(1, max_wait=None)
    bulkhead.acquire()
    main = threading.get_ident()

    def release_then_interrupt(signum: int, frame: object) -> None:
        bulkhead.release()  # runs in the queued main thread: hands the slot to its waiter
        raise KeyboardInterrupt

    def interrupt() -> None:
        until(lambda: bulkhead.metrics().waiting == 1)
        signal.pthread_kill(main, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, release_then_interrupt)
    try:
        helper = threading.Thread(target=interrupt)
        helper.start()
        with pytest.raises(KeyboardInterrupt):
            bulkhead.acquire()
        helper.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    metrics = bulkhead.metrics()
    assert (metrics.in_flight, metrics.waiting, metrics.admitted) == (0, 0, 2)


def test_the_default_timeout_marker_reads_as_max_wait() -> None:
    """Signatures show the bulkhead's default per-call timeout as <max_wait>."""
    assert "= <max_wait>" in str(inspect.signature(Bulkhead.acquire))


def test_bulkhead_release_without_acquire_is_an_error() -> None:
    """Releasing more than acquired raises ValueError naming the bulkhead."""
    bulkhead = Bulkhead(2, name="db")
    with pytest.raises(ValueError, match="bulkhead 'db' released more times than acquired"):
        bulkhead.release()


def test_bulkhead_releases_its_slot_when_the_call_raises() -> None:
    """An exception inside the protected call still frees the slot."""
    bulkhead = Bulkhead(1)

    @bulkhead
    def boom() -> None:
        raise OSError("down")

    for _ in range(3):
        with pytest.raises(OSError, match="down"):
            boom()
    assert bulkhead.metrics().in_flight == 0


# Plain callables that return an awaitable -------------------------------------------


@pytest.mark.parametrize("fails", [False, True], ids=["success", "failure"])
def test_bulkhead_holds_the_slot_until_a_returned_awaitable_finishes(
    awaitable_returning: Callable[..., Any], fails: bool
) -> None:
    """A plain callable's awaitable keeps its slot while it runs and frees it when it ends."""
    bulkhead = Bulkhead(1)

    async def work(event: asyncio.Event) -> str:
        await event.wait()
        if fails:
            raise OSError("down")
        return "done"

    guarded = bulkhead(awaitable_returning(work))
    assert not inspect.iscoroutinefunction(guarded)

    async def main() -> str:
        release = asyncio.Event()
        task = asyncio.ensure_future(guarded(release))
        await asyncio.sleep(0)
        assert bulkhead.metrics().in_flight == 1
        with pytest.raises(BulkheadFullError):
            guarded(release)
        release.set()
        return await task  # type: ignore[no-any-return]

    if fails:
        with pytest.raises(OSError, match="down"):
            asyncio.run(main())
    else:
        assert asyncio.run(main()) == "done"
    metrics = bulkhead.metrics()
    assert (metrics.in_flight, metrics.admitted, metrics.rejected) == (0, 1, 1)


def test_bulkhead_frees_the_slot_of_a_cancelled_returned_awaitable(
    awaitable_returning: Callable[..., Any],
) -> None:
    """Cancelling the coroutine a plain callable's call handed back frees its slot."""
    bulkhead = Bulkhead(1)

    async def forever() -> None:
        await asyncio.Event().wait()

    guarded = bulkhead(awaitable_returning(forever))

    async def main() -> int:
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        busy = bulkhead.metrics().in_flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return busy

    assert asyncio.run(main()) == 1
    assert bulkhead.metrics().in_flight == 0
    with bulkhead:  # the slot is usable again
        pass


def test_bulkhead_frees_the_slot_when_inspecting_the_result_raises() -> None:
    """A result whose attribute lookup raises does not leak the slot."""

    class Hostile:
        def __getattr__(self, name: str) -> Any:
            raise LookupError(name)

    bulkhead = Bulkhead(1)
    guarded = bulkhead(Hostile)
    with pytest.raises(LookupError, match="__await__"):
        guarded()
    assert bulkhead.metrics().in_flight == 0


def test_bulkhead_treats_an_instance_level_await_attribute_as_a_plain_result() -> None:
    """Only a type's ``__await__`` makes a result awaitable; it is returned as is."""

    class Odd:
        def __init__(self) -> None:
            self.__await__ = "not a method"

    bulkhead = Bulkhead(1)
    result = bulkhead(Odd)()
    assert isinstance(result, Odd)
    assert bulkhead.metrics().in_flight == 0


def test_bulkhead_async_lets_n_tasks_inside_and_rejects_the_next() -> None:
    """N tasks are inside an async bulkhead together; the N+1th is rejected or waits."""
    n = 5
    bulkhead = Bulkhead(n, name="api")

    async def main() -> None:
        entered = 0
        all_in = asyncio.Event()
        leave = asyncio.Event()

        @bulkhead
        async def call(index: int) -> int:
            nonlocal entered
            entered += 1
            if entered == n:
                all_in.set()
            await all_in.wait()
            await leave.wait()
            return index

        tasks = [asyncio.ensure_future(call(i)) for i in range(n)]
        await all_in.wait()
        with pytest.raises(BulkheadFullError):
            await call(99)
        with pytest.raises(BulkheadFullError):
            await bulkhead.acquire_async(timeout=0.01)
        late = asyncio.ensure_future(bulkhead.acquire_async(timeout=None))
        while bulkhead.metrics().waiting == 0:
            await asyncio.sleep(0)
        leave.set()
        assert sorted(await asyncio.gather(*tasks)) == list(range(n))
        await late  # got a slot handed over
        bulkhead.release()
        async with bulkhead:
            assert bulkhead.metrics().in_flight == 1
        assert call.__name__ == "call"

    asyncio.run(main())
    metrics = bulkhead.metrics()
    assert (metrics.in_flight, metrics.max_in_flight, metrics.rejected, metrics.waited) == (
        0,
        n,
        2,
        2,
    )


def test_cancelled_async_waiter_does_not_leak_a_slot() -> None:
    """A queued task cancelled (before or after a slot is handed to it) frees the slot."""
    bulkhead = Bulkhead(1, max_wait=None)

    async def main() -> None:
        await bulkhead.acquire_async()
        plain = asyncio.ensure_future(bulkhead.acquire_async())
        await asyncio.sleep(0)
        plain.cancel()  # cancelled while queued: leaves the queue
        with pytest.raises(asyncio.CancelledError):
            await plain
        assert bulkhead.metrics().waiting == 0

        raced = asyncio.ensure_future(bulkhead.acquire_async())
        after = asyncio.ensure_future(bulkhead.acquire_async())
        await asyncio.sleep(0)
        bulkhead.release()  # hands the slot to `raced`...
        raced.cancel()  # ...which is cancelled before it runs: the slot must go on
        with pytest.raises(asyncio.CancelledError):
            await raced
        await after  # received the slot raced gave up
        assert bulkhead.metrics().in_flight == 1
        bulkhead.release()

    asyncio.run(main())
    metrics = bulkhead.metrics()
    assert (metrics.in_flight, metrics.waiting) == (0, 0)
    with bulkhead:  # all slots usable
        pass


def test_release_skips_a_waiter_whose_event_loop_is_closed() -> None:
    """A waiter on a closed event loop can never run: release passes over it."""
    bulkhead = Bulkhead(1, max_wait=None)
    bulkhead.acquire()
    loop = asyncio.new_event_loop()
    task = loop.create_task(bulkhead.acquire_async())
    loop.run_until_complete(asyncio.sleep(0))
    assert bulkhead.metrics().waiting == 1
    loop.close()
    bulkhead.release()
    assert bulkhead.metrics().in_flight == 0
    task_coro = task.get_coro()
    assert task_coro is not None
    task_coro.close()  # its cleanup runs now and finds the waiter already gone
    assert bulkhead.metrics().waiting == 0
    # The task can never finish now that its loop is closed; that is the point of the
    # test, so asyncio's "Task was destroyed but it is pending!" report is expected.
    task._log_destroy_pending = False  # type: ignore[attr-defined]


def test_threads_and_tasks_share_one_bulkhead() -> None:
    """A slot freed by a thread wakes a task waiting on an event loop."""
    bulkhead = Bulkhead(1, max_wait=5.0)
    bulkhead.acquire()

    async def main() -> None:
        waiting = asyncio.ensure_future(bulkhead.acquire_async())
        while bulkhead.metrics().waiting == 0:
            await asyncio.sleep(0)
        releaser = threading.Thread(target=bulkhead.release)
        releaser.start()
        await waiting
        releaser.join()
        bulkhead.release()

    asyncio.run(main())
    assert bulkhead.metrics().in_flight == 0


def test_bulkhead_configuration_is_validated() -> None:
    """max_concurrent and name are checked at construction; repr shows the configuration."""
    with pytest.raises(ValueError, match=r"max_concurrent must be >= 1, got 0"):
        Bulkhead(0)
    with pytest.raises(TypeError, match=r"max_concurrent must be an int"):
        Bulkhead(2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"name must be a str, got 3"):
        Bulkhead(1, name=3)  # type: ignore[arg-type]
    bulkhead = Bulkhead(3, max_wait=None, name="crm")
    assert (bulkhead.name, bulkhead.max_concurrent) == ("crm", 3)
    assert repr(bulkhead) == "Bulkhead(3, max_wait=None, name='crm')"


def test_random_bulkhead_workload_never_exceeds_n_in_flight() -> None:
    """Threads entering and leaving at random never see more than N inside."""
    n = 3
    bulkhead = Bulkhead(n, max_wait=None)
    inside = 0
    worst = 0
    guard = threading.Lock()
    start = threading.Barrier(6)

    def worker(seed: int) -> None:
        nonlocal inside, worst
        rng = random.Random(seed)
        start.wait()
        for _ in range(300):
            with bulkhead:
                with guard:
                    inside += 1
                    worst = max(worst, inside)
                for _ in range(rng.randrange(50)):
                    pass
                with guard:
                    inside -= 1

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert worst <= n
    metrics = bulkhead.metrics()
    assert (metrics.admitted, metrics.in_flight, metrics.max_in_flight <= n) == (1800, 0, True)


def test_the_default_clock_is_the_monotonic_clock() -> None:
    """Without an injected clock the limiter reads time.monotonic_ns."""
    limiter = RateLimiter(1, per=3600.0)
    assert limiter.try_acquire()
    assert 0 < limiter.try_acquire().wait_ns <= 3600 * NS
    assert time.monotonic_ns() > 0
