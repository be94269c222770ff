# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Rate limiting with exact integer GCRA (per client or global), and a bulkhead.

Verdict:
    Use it when one process must keep its calls to a dependency under a rate (N per
    period with a burst), globally or per client/tenant/API key, and either skip, delay
    or reject the calls over it, in threads or in asyncio; or when it must cap how many
    calls run at the same time (a bulkhead). ``try_acquire`` tells a denied caller exactly
    how long to wait, so a retry policy can honour it.
    Do not use it when the limit must hold across several processes or hosts: the state
    lives in this process's memory (put the limiter in the shared component, such as an
    API gateway or Redis, instead). Do not use it to smooth a queue you own: a scheduler
    that releases work at a fixed pace is simpler.

Prevents:
    - Rate drift: time and state are integer nanoseconds (scaled by the rate's
      denominator), never floats, so over any T seconds of saturated demand a fresh
      limiter admits exactly ``floor(rate * T) + burst`` calls, after a minute or a year.
    - Unbounded memory: one integer per key; keys whose state has expired are dropped as
      new keys arrive (at most two per insertion, so no call pays for a sweep), and an
      optional ``max_keys`` evicts the least recently admitted key.
    - Oversleeping: a blocking ``acquire(timeout=...)`` that cannot be admitted in time
      raises at once, without sleeping; it never waits longer than its timeout.
    - Lost permits: a bulkhead waiter that times out or is cancelled at the moment a
      slot is handed to it passes the slot on instead of leaking it.

References:
    - ITU-T Recommendation I.371 (2004), Annex A: the Generic Cell Rate Algorithm,
      virtual scheduling form (theoretical arrival time, limit tau).
    - B. Brandur, "Rate limiting, cells, and GCRA" (2015); the token bucket it is
      equivalent to (capacity = burst, refill = rate) for integer costs.
    - M. Nygard, *Release It!* (2nd ed., 2018), "Bulkheads".

Exceptions:
    RateLimitError (RuntimeError)               root of everything this module raises
    +-- RateLimitExceeded                       not admitted in time; .retry_after, .key
    +-- BulkheadFullError                       no slot in time; .name, .max_concurrent

    Configuration mistakes (a rate of 0, a burst of 1.5, a cost above the burst) raise
    ``ValueError`` or ``TypeError`` naming the argument and the value.

Example:
    >>> now = [0]
    >>> limiter = RateLimiter(2, per=1.0, burst=3, clock_ns=lambda: now[0])
    >>> [bool(limiter.try_acquire("tenant-a")) for _ in range(4)]
    [True, True, True, False]
    >>> limiter.try_acquire("tenant-a").retry_after
    0.5
    >>> bool(limiter.try_acquire("tenant-b"))
    True
    >>> now[0] += 500_000_000
    >>> bool(limiter.try_acquire("tenant-a"))
    True
    >>> try:
    ...     limiter.acquire("tenant-a", timeout=0.1)  # would need 0.5 s: raises, never sleeps
    ... except RateLimitExceeded as exc:
    ...     print(exc)
    rate limit exceeded for key 'tenant-a': retry after 0.5 s
    >>> bulkhead = Bulkhead(2, name="erp")
    >>> with bulkhead:
    ...     bulkhead.metrics().in_flight
    1
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

# typing, inspect, asyncio and fractions load only when needed (types, decoration time,
# the async paths and construction): importing this module stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable
    from decimal import Decimal
    from fractions import Fraction
    from types import ModuleType
    from typing import Any, TypeVar

    _F = TypeVar("_F", bound=Callable[..., Any])

__all__ = [
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadMetrics",
    "Decision",
    "RateLimitError",
    "RateLimitExceeded",
    "RateLimiter",
]

_NS_PER_SECOND = 1_000_000_000

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class RateLimitError(RuntimeError):
    """Root of every error this module raises when a call is not admitted."""


class RateLimitExceeded(RateLimitError):  # noqa: N818 - the name integration-automation-patterns used
    """A call was not admitted within its timeout (zero for a non-blocking check).

    Attributes:
        key: the limiter key (``None`` for the global bucket).
        cost: the cost of the call that was refused.
        retry_after_ns: nanoseconds from the refusal until the call would be admitted,
            if nobody else takes the capacity first.
        retry_after: the same in seconds (float), the value a retry policy should wait.
    """

    def __init__(self, key: Hashable | None, cost: int, retry_after_ns: int) -> None:
        self.key = key
        self.cost = cost
        self.retry_after_ns = retry_after_ns
        self.retry_after = retry_after_ns / _NS_PER_SECOND
        where = "" if key is None else f" for key {key!r}"
        super().__init__(f"rate limit exceeded{where}: retry after {self.retry_after:g} s")


class BulkheadFullError(RateLimitError):
    """Every slot of a bulkhead stayed busy for the whole permitted wait.

    Attributes:
        name: the bulkhead's name.
        max_concurrent: how many calls it lets run at once.
        timeout: how long this call was allowed to wait, in seconds (0.0: no wait).
    """

    def __init__(self, name: str, max_concurrent: int, timeout: float) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.timeout = timeout
        waited = f" after waiting {timeout:g} s" if timeout else ""
        super().__init__(f"bulkhead {name!r} is full ({max_concurrent} in flight){waited}")


# --------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of ``RateLimiter.try_acquire``: admitted, or how long to wait.

    A ``Decision`` is truthy when the call was admitted.

    Attributes:
        allowed: ``True`` when the call was admitted (its cost is consumed).
        wait_ns: ``0`` when admitted; otherwise the exact nanoseconds until the same call
            would be admitted, if nobody else takes the capacity first.
    """

    allowed: bool
    wait_ns: int = 0

    @property
    def retry_after(self) -> float:
        """Seconds to wait before retrying (``0.0`` when admitted)."""
        return self.wait_ns / _NS_PER_SECOND

    def __bool__(self) -> bool:
        return self.allowed


_ADMITTED = Decision(allowed=True, wait_ns=0)


@dataclass(frozen=True, slots=True)
class BulkheadMetrics:
    """A snapshot of a bulkhead's counters, taken under its lock.

    Attributes:
        name: the bulkhead's name.
        max_concurrent: the configured number of slots.
        in_flight: calls holding a slot now.
        max_in_flight: the most calls that ever held a slot at the same time.
        waiting: callers queued for a slot now.
        admitted: calls that got a slot, in total.
        rejected: calls refused (full with no wait allowed, or the wait ran out).
        waited: calls that had to queue (whether they got a slot in the end or not).
    """

    name: str
    max_concurrent: int
    in_flight: int
    max_in_flight: int
    waiting: int
    admitted: int
    rejected: int
    waited: int


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

_asyncio_module: ModuleType | None = None


def _asyncio() -> ModuleType:
    """asyncio, imported on first use only (a sync caller never pays for it)."""
    global _asyncio_module  # noqa: PLW0603 - a one-time lazy import
    if _asyncio_module is None:
        import asyncio  # noqa: PLC0415 - lazy by design

        _asyncio_module = asyncio
    return _asyncio_module


def _exact(name: str, value: object) -> Fraction:
    """A positive finite number as an exact fraction; a float is read as the decimal it prints."""
    from decimal import Decimal  # noqa: PLC0415 - only construction needs exact arithmetic
    from fractions import Fraction  # noqa: PLC0415

    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, Decimal)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        exact = Fraction(repr(value))
    elif isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    else:
        exact = Fraction(value)
    if exact <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return exact


def _timeout_ns(name: str, timeout: float | None) -> int | None:
    """A timeout in seconds (None: no limit) as whole nanoseconds."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {timeout!r}")
    if not 0 <= timeout < float("inf"):
        raise ValueError(f"{name} must be >= 0 and finite, got {timeout!r}")
    return round(timeout * _NS_PER_SECOND)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# The rate limiter
# --------------------------------------------------------------------------------------


class RateLimiter:
    """GCRA rate limiter: ``rate`` calls per ``per`` seconds, bursts up to ``burst``.

    One limiter holds a global bucket (``key=None``) and any number of keyed buckets
    (one per client, tenant, API key: any hashable), each one integer: its theoretical
    arrival time (TAT). A call of cost ``c`` at time ``now`` is admitted when
    ``max(TAT, now) + c * interval - now <= burst * interval``, and then moves the TAT
    there; a refused call changes nothing. This is the token bucket of capacity
    ``burst`` refilled at ``rate / per`` tokens per second, starting full.

    Args:
        rate: calls admitted per ``per`` seconds in the long run (int, float, Fraction
            or Decimal, > 0). A float is read as the decimal it prints (``0.1`` is 1/10).
        per: the period of ``rate``, in seconds (> 0).
        burst: calls admitted back to back by an idle bucket (int >= 1); also the
            largest cost one call may have.
        max_keys: if set, at most this many keyed buckets are kept; admitting a new key
            when full evicts the least recently admitted key (its client starts over
            with a full burst). ``None``: no cap (expired keys are still dropped).
        clock_ns: monotonic clock returning integer nanoseconds.
        sleep: blocks for a float number of seconds (``acquire``).
        async_sleep: awaitable sleep for a float number of seconds (``acquire_async``);
            ``None`` uses ``asyncio.sleep``.

    Raises:
        TypeError, ValueError: a parameter of the wrong type or out of range (the
            message names it).
    """

    __slots__ = (
        "_async_sleep",
        "_burst",
        "_clock_ns",
        "_inc",
        "_limit",
        "_lock",
        "_max_keys",
        "_per",
        "_q",
        "_rate",
        "_sleep",
        "_states",
        "_tat",
    )

    def __init__(
        self,
        rate: float | Fraction | Decimal,
        *,
        per: float | Fraction | Decimal = 1.0,
        burst: int = 1,
        max_keys: int | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        exact_rate = _exact("rate", rate)
        exact_per = _exact("per", per)
        self._burst = _positive_int("burst", burst)
        self._max_keys = None if max_keys is None else _positive_int("max_keys", max_keys)
        for name, func in (("clock_ns", clock_ns), ("sleep", sleep)):
            if not callable(func):
                raise TypeError(f"{name} must be callable, got {func!r}")
        if async_sleep is not None and not callable(async_sleep):
            raise TypeError(f"async_sleep must be callable or None, got {async_sleep!r}")
        # The emission interval per / rate in nanoseconds is the fraction p / q. Time is
        # kept in units of 1/q ns (a clock reading times q), so every quantity is an int.
        interval = exact_per * _NS_PER_SECOND / exact_rate
        self._q: int = interval.denominator
        self._inc: int = interval.numerator
        self._limit: int = self._burst * self._inc
        self._rate = rate
        self._per = per
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._tat: int | None = None
        # key -> TAT, in order of last admission (oldest first): the front expires first.
        self._states: OrderedDict[Hashable, int] = OrderedDict()

    @classmethod
    def token_bucket(
        cls,
        *,
        capacity: int,
        refill_rate: float | Fraction | Decimal,
        max_keys: int | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> RateLimiter:
        """The token bucket of ``capacity`` tokens refilled at ``refill_rate`` per second.

        The names of integration-automation-patterns' ``TokenBucketRateLimiter``; the
        same limiter as ``RateLimiter(refill_rate, per=1.0, burst=capacity)``.
        """
        return cls(
            refill_rate,
            per=1.0,
            burst=_positive_int("capacity", capacity),
            max_keys=max_keys,
            clock_ns=clock_ns,
            sleep=sleep,
            async_sleep=async_sleep,
        )

    def __repr__(self) -> str:
        return f"RateLimiter({self._rate!r}, per={self._per!r}, burst={self._burst})"

    # -- configuration ------------------------------------------------------------------

    @property
    def rate(self) -> float | Fraction | Decimal:
        """Calls admitted per ``per`` seconds, as given."""
        return self._rate

    @property
    def per(self) -> float | Fraction | Decimal:
        """The period of ``rate`` in seconds, as given."""
        return self._per

    @property
    def burst(self) -> int:
        """Calls an idle bucket admits back to back; the largest allowed cost."""
        return self._burst

    @property
    def max_keys(self) -> int | None:
        """The cap on keyed buckets, or ``None``."""
        return self._max_keys

    @property
    def keys_tracked(self) -> int:
        """How many keyed buckets hold state now (expired ones not yet dropped included)."""
        return len(self._states)

    # -- the decision -------------------------------------------------------------------

    def _increment(self, cost: object) -> int:
        """The TAT increment of a call of ``cost``, validated."""
        if isinstance(cost, bool) or not isinstance(cost, int):
            raise TypeError(f"cost must be an int, got {cost!r}")
        if not 1 <= cost <= self._burst:
            raise ValueError(f"cost must be between 1 and burst={self._burst}, got {cost!r}")
        return cost * self._inc

    def _admit(self, key: Hashable | None, inc: int, now: int) -> int:
        """Admit one call at scaled time ``now``; return 0, or how far (scaled) it is over.

        A clock reading of ``t`` ns stands for an instant in ``(t - 1, t]``: a TAT less
        than 1 ns in the past keeps its sub-nanosecond remainder instead of snapping to
        ``now``, so rounding to whole nanoseconds never slows the rate down.
        """
        q = self._q
        with self._lock:
            if key is None:
                tat = self._tat
                if tat is not None and tat > now - q:
                    new = tat + inc
                    over = new - now - self._limit
                    if over > 0:
                        return over
                else:
                    new = now + inc
                self._tat = new
                return 0
            states = self._states
            tat = states.get(key)
            if tat is None:
                self._insert_locked(key, now + inc, now - q)
                return 0
            if tat > now - q:
                new = tat + inc
                over = new - now - self._limit
                if over > 0:
                    return over
            else:
                new = now + inc
            states[key] = new
            states.move_to_end(key)
            return 0

    def _insert_locked(self, key: Hashable, tat: int, expired_at: int) -> None:
        """Add a new key; first drop up to two expired keys from the front, then evict."""
        states = self._states
        for _ in range(2):
            if not states:
                break
            oldest = next(iter(states))
            if states[oldest] > expired_at:
                break
            del states[oldest]
        if self._max_keys is not None and len(states) >= self._max_keys:
            states.popitem(last=False)
        states[key] = tat

    def try_acquire(self, key: Hashable | None = None, *, cost: int = 1) -> Decision:
        """Admit the call now if the rate allows; never blocks.

        Args:
            key: the bucket (``None``: the limiter's global bucket).
            cost: how many units the call consumes (1 to ``burst``).

        Returns:
            A ``Decision``: truthy when admitted; otherwise ``wait_ns`` (and
            ``retry_after`` in seconds) say when the same call would be admitted.
        """
        inc = self._inc if cost == 1 else self._increment(cost)
        over = self._admit(key, inc, self._clock_ns() * self._q)
        if not over:
            return _ADMITTED
        return Decision(allowed=False, wait_ns=-(-over // self._q))

    def acquire(
        self, key: Hashable | None = None, *, cost: int = 1, timeout: float | None = None
    ) -> None:
        """Block (with ``sleep``) until the call is admitted.

        Args:
            key: the bucket (``None``: the global bucket).
            cost: how many units the call consumes (1 to ``burst``).
            timeout: the longest to wait in seconds; ``0`` never sleeps; ``None`` waits
                as long as the rate requires.

        Raises:
            RateLimitExceeded: the call cannot be admitted within ``timeout``; raised
                before sleeping whenever the wait needed exceeds the time left.
        """
        inc = self._inc if cost == 1 else self._increment(cost)
        limit_ns = _timeout_ns("timeout", timeout)
        q = self._q
        deadline = None if limit_ns is None else self._clock_ns() + limit_ns
        while True:
            now = self._clock_ns()
            over = self._admit(key, inc, now * q)
            if not over:
                return
            wait_ns = -(-over // q)
            if deadline is not None and now + wait_ns > deadline:
                raise RateLimitExceeded(key, cost, wait_ns)
            self._sleep(wait_ns / _NS_PER_SECOND)

    async def acquire_async(
        self, key: Hashable | None = None, *, cost: int = 1, timeout: float | None = None
    ) -> None:
        """``acquire`` for asyncio: waits with ``async_sleep`` (default ``asyncio.sleep``).

        Cancelling the waiting task consumes nothing: a call takes capacity only when it
        is admitted.

        Raises:
            RateLimitExceeded: the call cannot be admitted within ``timeout``.
        """
        inc = self._inc if cost == 1 else self._increment(cost)
        limit_ns = _timeout_ns("timeout", timeout)
        q = self._q
        sleep = self._async_sleep or _asyncio().sleep
        deadline = None if limit_ns is None else self._clock_ns() + limit_ns
        while True:
            now = self._clock_ns()
            over = self._admit(key, inc, now * q)
            if not over:
                return
            wait_ns = -(-over // q)
            if deadline is not None and now + wait_ns > deadline:
                raise RateLimitExceeded(key, cost, wait_ns)
            await sleep(wait_ns / _NS_PER_SECOND)

    # -- inspection and housekeeping -------------------------------------------------------

    def remaining(self, key: Hashable | None = None) -> int:
        """How many cost-1 calls the bucket would admit right now (0 to ``burst``)."""
        q = self._q
        now = self._clock_ns() * q
        with self._lock:
            tat = self._tat if key is None else self._states.get(key)
        if tat is None or tat <= now - q:
            return self._burst
        return max(0, min(self._burst, (self._limit - (tat - now)) // self._inc))

    def reset(self, key: Hashable | None = None) -> None:
        """Forget one bucket's state: it admits a full burst again."""
        with self._lock:
            if key is None:
                self._tat = None
            else:
                self._states.pop(key, None)

    def purge(self) -> int:
        """Drop every keyed bucket whose state has expired now; return how many.

        Not needed for bounded memory (new keys drop expired ones as they arrive); useful
        after a burst of one-off keys, before the process goes quiet.
        """
        q = self._q
        expired_at = self._clock_ns() * q - q
        with self._lock:
            stale = [key for key, tat in self._states.items() if tat <= expired_at]
            for key in stale:
                del self._states[key]
        return len(stale)


# --------------------------------------------------------------------------------------
# The bulkhead
# --------------------------------------------------------------------------------------


class _DefaultTimeout:
    """The type of the marker for "use the bulkhead's max_wait"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<max_wait>"


_DEFAULT = _DefaultTimeout()


class _Waiter:
    """One queued caller: a held lock (thread) or a future (task); granted under the lock."""

    __slots__ = ("future", "granted", "lock", "loop")

    def __init__(self, lock: Any = None, loop: Any = None, future: Any = None) -> None:
        self.granted = False
        self.lock = lock
        self.loop = loop
        self.future = future


def _wake(future: Any) -> None:
    if not future.done():
        future.set_result(None)


class Bulkhead:
    """At most ``max_concurrent`` calls inside at once; others wait briefly or are refused.

    Use it as a context manager (``with`` or ``async with``), as a decorator (sync or
    ``async def`` functions), or with explicit ``acquire``/``release``. Threads and asyncio
    tasks may share one bulkhead. A freed slot is handed to the longest-waiting caller
    (FIFO); a newcomer never overtakes a queued one.

    Args:
        max_concurrent: the number of slots (int >= 1).
        max_wait: how long a caller may queue for a slot, in seconds; ``0.0`` (default)
            refuses at once when full; ``None`` waits without limit.
        name: shown in errors and metrics.
    """

    __slots__ = (
        "_admitted",
        "_in_flight",
        "_lock",
        "_max",
        "_max_in_flight",
        "_max_wait",
        "_name",
        "_rejected",
        "_waited",
        "_waiters",
    )

    def __init__(
        self, max_concurrent: int, *, max_wait: float | None = 0.0, name: str = "bulkhead"
    ) -> None:
        self._max = _positive_int("max_concurrent", max_concurrent)
        _timeout_ns("max_wait", max_wait)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self._max_wait = max_wait
        self._name = name
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        self._in_flight = 0
        self._max_in_flight = 0
        self._admitted = 0
        self._rejected = 0
        self._waited = 0

    def __repr__(self) -> str:
        return f"Bulkhead({self._max}, max_wait={self._max_wait!r}, name={self._name!r})"

    @property
    def name(self) -> str:
        """The bulkhead's name."""
        return self._name

    @property
    def max_concurrent(self) -> int:
        """The number of slots."""
        return self._max

    def metrics(self) -> BulkheadMetrics:
        """A consistent snapshot of the counters."""
        with self._lock:
            return BulkheadMetrics(
                self._name,
                self._max,
                self._in_flight,
                self._max_in_flight,
                len(self._waiters),
                self._admitted,
                self._rejected,
                self._waited,
            )

    # -- slots --------------------------------------------------------------------------

    def _timeout(self, timeout: float | _DefaultTimeout | None) -> float | None:
        if isinstance(timeout, _DefaultTimeout):
            return self._max_wait
        _timeout_ns("timeout", timeout)
        return timeout

    def _enter_locked(self, timeout: float | None) -> bool:
        """Take a free slot (True), or say the caller must queue (False); refuse if no wait."""
        if self._in_flight < self._max and not self._waiters:
            self._in_flight += 1
            self._admitted += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return True
        if timeout is not None and timeout <= 0:
            self._rejected += 1
            raise BulkheadFullError(self._name, self._max, 0.0)
        self._waited += 1
        return False

    def _give_up_locked(self, waiter: _Waiter) -> bool:
        """A waiter stops waiting: True if it was granted a slot meanwhile (it owns it)."""
        if waiter.granted:
            return True
        if waiter in self._waiters:  # absent only if release() skipped it (loop closed)
            self._waiters.remove(waiter)
        return False

    def acquire(self, *, timeout: float | _DefaultTimeout | None = _DEFAULT) -> None:
        """Take a slot, queueing up to ``timeout`` seconds (default: ``max_wait``).

        Raises:
            BulkheadFullError: no slot became free in time.
        """
        seconds = self._timeout(timeout)
        with self._lock:
            if self._enter_locked(seconds):
                return
            waiter = _Waiter(threading.Lock())
            waiter.lock.acquire()
            self._waiters.append(waiter)
        try:
            got = waiter.lock.acquire(timeout=-1 if seconds is None else seconds)
        except BaseException:  # KeyboardInterrupt while queued: leave, pass on a granted slot
            with self._lock:
                owned = self._give_up_locked(waiter)
            if owned:
                self.release()
            raise
        if got:
            return
        with self._lock:
            if self._give_up_locked(waiter):
                return  # granted just as the wait ran out: keep it
            self._rejected += 1
        raise BulkheadFullError(self._name, self._max, seconds or 0.0)

    async def acquire_async(self, *, timeout: float | _DefaultTimeout | None = _DEFAULT) -> None:
        """Take a slot from a coroutine, queueing up to ``timeout`` seconds.

        A task cancelled while queued leaves the queue; if a slot was handed to it at
        that moment, the slot goes to the next waiter.

        Raises:
            BulkheadFullError: no slot became free in time.
        """
        seconds = self._timeout(timeout)
        with self._lock:
            if self._enter_locked(seconds):
                return
            asyncio = _asyncio()
            loop = asyncio.get_running_loop()
            waiter = _Waiter(None, loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            if seconds is None:
                await waiter.future
            else:
                await asyncio.wait_for(waiter.future, seconds)
        except asyncio.TimeoutError:
            with self._lock:
                if self._give_up_locked(waiter):
                    return  # granted just as the wait ran out: keep it
                self._rejected += 1
            raise BulkheadFullError(self._name, self._max, seconds or 0.0) from None
        except BaseException:  # cancelled while queued: leave, pass on a granted slot
            with self._lock:
                owned = self._give_up_locked(waiter)
            if owned:
                self.release()
            raise

    def release(self) -> None:
        """Free a slot: hand it to the longest-waiting caller, if any.

        Raises:
            ValueError: more releases than acquisitions.
        """
        with self._lock:
            if self._in_flight <= 0:
                raise ValueError(f"bulkhead {self._name!r} released more times than acquired")
            while self._waiters:
                waiter = self._waiters.popleft()
                if waiter.lock is not None:
                    waiter.granted = True
                    waiter.lock.release()
                else:
                    try:
                        waiter.loop.call_soon_threadsafe(_wake, waiter.future)
                    except RuntimeError:  # its event loop is closed: it will never run
                        continue
                    waiter.granted = True
                self._admitted += 1
                return
            self._in_flight -= 1

    # -- context managers and decorator ---------------------------------------------------

    def __enter__(self) -> Bulkhead:  # noqa: PYI034 - typing.Self is 3.11+
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    async def __aenter__(self) -> Bulkhead:  # noqa: PYI034 - typing.Self is 3.11+
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release()

    def __call__(self, func: _F) -> _F:
        """Decorate ``func`` so every call runs inside the bulkhead.

        An ``async def`` function gets an async wrapper that queues without blocking the
        event loop; any other callable gets a sync wrapper. (The choice is made from the
        function, because the slot must be taken before the call.) When a call through
        the sync wrapper returns an awaitable (an object whose ``__call__`` is ``async
        def``, a function returning a coroutine, a Future or a Task), the wrapper keeps
        the slot and returns a coroutine that awaits it and then frees the slot.
        """
        import functools  # noqa: PLC0415 - decoration time only
        import inspect  # noqa: PLC0415

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                await self.acquire_async()
                try:
                    return await func(*args, **kwargs)
                finally:
                    self.release()

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.acquire()
            try:
                result = func(*args, **kwargs)
                pending = hasattr(result, "__await__") and getattr(type(result), "__await__", None)
            except BaseException:
                self.release()
                raise
            if pending:  # hold the slot until the awaitable finishes
                return self._settle(result)
            self.release()
            return result

        return wrapper  # type: ignore[return-value]

    async def _settle(self, awaitable: Awaitable[Any]) -> Any:
        """Await what a sync-wrapped call returned, holding its slot until it finishes."""
        try:
            return await awaitable
        finally:
            self.release()
