# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Retry with a hard deadline, jitter that survives the cap, a shared budget and honest failures.

Verdict:
    Use it when a call fails transiently (a reset connection, a 503, a lock timeout, an
    RPA robot's system error) and trying again after a short, randomised wait is safe:
    the call is idempotent or carries an idempotency key. It works on sync functions,
    ``async def`` functions and blocks of code, and never outlives its total deadline.
    Do not use it when the failure is permanent (bad input, a business rule, an auth
    error), when repeating the call has side effects you cannot undo, or when the thing
    you call is already down for everyone: put a circuit breaker inside the retry and
    a retry budget around it so retries do not turn an outage into a retry storm.

Prevents:
    - Retrying forever or retrying everything: ``on=`` is required, attempts and total
      time have finite defaults, and ``KeyboardInterrupt``, ``SystemExit`` and
      ``asyncio.CancelledError`` are never retried (a cancellation also ends a backoff
      sleep at once, because the sleep is simply awaited).
    - Lock-step retries: jitter (full by default) is applied after the cap, so clients
      that reached the cap keep spreading out; no ``OverflowError`` at any attempt number.
    - Deadline overshoot: ``timeout=1.0`` means nothing starts after 1.0 s on the
      injected clock; sleeps are shortened, an attempt starts only when its declared
      minimum duration still fits, and each attempt can read its ``remaining`` time.
    - Retry storms in an outage: a :class:`RetryBudget` (gRPC retry throttling) shared
      across calls bounds the total number of retries; later calls fail fast, unslept.
    - Lost errors: the caller gets the ORIGINAL exception, with the attempt history in
      its notes (Python 3.11+) and in ``exc.retry_stats`` (every version).

References:
    - M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015 (full,
      equal and decorrelated jitter).
    - gRPC A6 "Client Retries", retry throttling (``maxTokens``, ``tokenRatio``).
    - RFC 9110 section 10.2.3 (``Retry-After``: delay-seconds or HTTP-date) and
      section 5.6.7 (HTTP-date, IMF-fixdate plus two obsolete formats).
    - M. Nygard, *Release It!*, 2nd ed., 2018 (timeouts, circuit breakers, retries).

Exceptions:
    RetryError (Exception)              root of everything this module raises
    +-- RetryExhaustedError             results kept asking for a retry; .last_result, .stats
    +-- InvalidRetryAfterError          a bad Retry-After value (also a ValueError); .value

    When an exception ends the retrying, that ORIGINAL exception is re-raised (never
    wrapped), with ``.retry_stats`` attached. Configuration mistakes raise ``ValueError``
    or ``TypeError`` naming the argument and the bad value.

Example:
    >>> calls = []
    >>> @retry(on=ConnectionError, attempts=3, sleep=calls.append)
    ... def flaky():
    ...     if len(calls) < 2:
    ...         raise ConnectionError("reset")
    ...     return "ok"
    >>> flaky()
    'ok'
    >>> len(calls)  # two backoff sleeps, each within [0, cap]
    2
    >>> policy = Retrying(on=OSError, attempts=2, sleep=lambda s: None)
    >>> for attempt in policy:
    ...     with attempt:
    ...         if attempt.number == 1:
    ...             raise OSError("first try fails")
    >>> attempt.number, attempt.stats.stop_reason
    (2, <StopReason.SUCCESS: 'success'>)
    >>> Backoff(initial_seconds=1.0, max_seconds=8.0).base_wait_seconds(10_000)
    8.0
    >>> parse_retry_after("120")
    120.0
"""

from __future__ import annotations

import enum
import time
from _thread import allocate_lock
from functools import cache, wraps

# typing, random, inspect, email.utils and asyncio load only when a path needs
# them (or only for the type checker): importing this module stays cheap and never
# imports asyncio.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
    from contextlib import AbstractContextManager
    from datetime import datetime
    from types import ModuleType, TracebackType
    from typing import Any, ParamSpec, TypeVar

    P = ParamSpec("P")
    T = TypeVar("T")
    F = TypeVar("F", bound=Callable[..., Any])
    Classifier = type[BaseException] | tuple[type[BaseException], ...] | Callable[[Exception], bool]

__all__ = [
    "STOP",
    "AsyncRetrying",
    "Attempt",
    "AttemptRecord",
    "Backoff",
    "BackoffKind",
    "InvalidRetryAfterError",
    "Jitter",
    "RetryBudget",
    "RetryError",
    "RetryExhausted",
    "RetryExhaustedError",
    "RetryStats",
    "Retrying",
    "StopReason",
    "delay_from_attribute",
    "is_rpa_system_error",
    "parse_retry_after",
    "retry",
    "retry_testing",
]

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class RetryError(Exception):
    """Root of every error this module raises itself (it never wraps your exceptions)."""


class RetryExhaustedError(RetryError):
    """Retrying stopped while the last RESULT still asked for a retry (``on_result``).

    An exception that ends the retrying is re-raised as it is; this error exists only
    because a result has no exception to re-raise.

    Attributes:
        last_result: the value the last attempt returned.
        stats: the :class:`RetryStats` of the call (its ``stop_reason`` says why).
        attempts: the number of attempts made (``stats.attempts``).
    """

    def __init__(self, last_result: object, stats: RetryStats) -> None:
        self.last_result = last_result
        self.stats = stats
        self.attempts = stats.attempts
        reason = stats.stop_reason.value if stats.stop_reason is not None else "running"
        super().__init__(
            f"gave up after {stats.attempts} attempt(s) in {stats.elapsed_seconds:.3f} s "
            f"({reason}); the last result {last_result!r} still asked "
            "for a retry"
        )


RetryExhausted = RetryExhaustedError
"""Alias kept for code written against integration-automation-patterns 0.44's name."""


class InvalidRetryAfterError(RetryError, ValueError):
    """A ``Retry-After`` value that is neither delay-seconds nor an HTTP-date.

    Attributes:
        value: the value as received.
    """

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        super().__init__(f"Retry-After {value!r}: {reason}")


# --------------------------------------------------------------------------------------
# Enums and value types
# --------------------------------------------------------------------------------------


class BackoffKind(enum.Enum):
    """How the un-jittered wait grows with each retry (before the cap)."""

    FIXED = "fixed"  # initial
    LINEAR = "linear"  # initial * (n + 1)
    EXPONENTIAL = "exponential"  # initial * multiplier ** n


class Jitter(enum.Enum):
    """How a retry delay is randomised (Brooker, 2015). ``NONE`` keeps schedules exact."""

    NONE = "none"
    FULL = "full"  # uniform(0, delay)
    EQUAL = "equal"  # delay/2 + uniform(0, delay/2)
    DECORRELATED = "decorrelated"  # uniform(base, min(cap, 3 * previous))


class StopReason(enum.Enum):
    """Why a call's retrying ended."""

    SUCCESS = "success"  # an attempt succeeded
    NOT_RETRYABLE = "not retryable"  # ``on=`` (or ``on_result=``) said no
    ATTEMPTS = "attempts exhausted"  # ``attempts`` (or the testing cap) reached
    DEADLINE = "deadline"  # the next attempt could not start and finish before ``timeout``
    BUDGET = "retry budget exhausted"  # the shared RetryBudget refused a retry
    HOOK = "stopped by a delay hint"  # delay_for (or retry_after) said STOP (infinity)


STOP = float("inf")
"""What a ``delay_for`` hook returns to stop retrying at once (an infinite delay)."""

_INFINITY = STOP
_SECONDS_TYPES = (int, float)


def _check_seconds(name: str, value: object) -> None:
    if type(value) not in _SECONDS_TYPES:
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not 0 <= value < _INFINITY:  # type: ignore[operator]
        raise ValueError(f"{name} must be finite and >= 0 seconds, got {value!r}")


class _Value:
    """An immutable value: slotted, compared, hashed and pickled by its fields.

    Hand-written rather than a frozen dataclass: three dataclasses cost more import time
    than the rest of the module (and ``dataclasses`` pulls in ``inspect``).
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to {name!r}: {type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete {name!r}: {type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), self._values()


_set_field = object.__setattr__


class Backoff(_Value):
    """The wait before each retry: a curve, a cap, then jitter (applied after the cap).

    Attributes:
        kind: fixed, linear or exponential growth of the un-jittered wait.
        initial_seconds: the un-jittered wait before the first retry, in seconds.
        max_seconds: the cap on the un-jittered wait, in seconds.
        multiplier: the growth factor of exponential backoff (>= 1).
        jitter: randomisation applied after the cap (default full jitter).

    >>> b = Backoff(initial_seconds=0.5, max_seconds=4.0, jitter=Jitter.NONE)
    >>> [b.wait_seconds_for_attempt(n) for n in range(5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """

    __slots__ = ("initial_seconds", "jitter", "kind", "max_seconds", "multiplier")
    _fields = ("kind", "initial_seconds", "max_seconds", "multiplier", "jitter")
    kind: BackoffKind
    initial_seconds: float
    max_seconds: float
    multiplier: float
    jitter: Jitter

    def __init__(
        self,
        kind: BackoffKind = BackoffKind.EXPONENTIAL,
        initial_seconds: float = 0.1,
        max_seconds: float = 5.0,
        multiplier: float = 2.0,
        jitter: Jitter = Jitter.FULL,
    ) -> None:
        _set_field(self, "kind", kind)
        _set_field(self, "initial_seconds", initial_seconds)
        _set_field(self, "max_seconds", max_seconds)
        _set_field(self, "multiplier", multiplier)
        _set_field(self, "jitter", jitter)
        if not isinstance(self.kind, BackoffKind):
            raise TypeError(f"kind must be a BackoffKind, got {self.kind!r}")
        _check_seconds("initial_seconds", self.initial_seconds)
        _check_seconds("max_seconds", self.max_seconds)
        if self.max_seconds < self.initial_seconds:
            raise ValueError(
                f"max_seconds={self.max_seconds!r} is below initial_seconds="
                f"{self.initial_seconds!r}"
            )
        m = self.multiplier
        if type(m) not in _SECONDS_TYPES or not 1 <= m < _INFINITY:
            raise ValueError(f"multiplier must be a finite number >= 1, got {m!r}")
        if not isinstance(self.jitter, Jitter):
            raise TypeError(f"jitter must be a Jitter, got {self.jitter!r}")

    def base_wait_seconds(self, attempt_number: int) -> float:
        """The un-jittered, capped wait before retry ``attempt_number`` (zero-based).

        Never raises ``OverflowError``: past the point where the curve meets the cap,
        the cap is returned, whatever the attempt number.
        """
        if isinstance(attempt_number, bool) or not isinstance(attempt_number, int):
            raise TypeError(f"attempt_number must be an int, got {attempt_number!r}")
        if attempt_number < 0:
            raise ValueError(f"attempt_number must be >= 0, got {attempt_number!r}")
        kind, low, cap = self.kind, self.initial_seconds, self.max_seconds
        if kind is BackoffKind.FIXED:
            return low
        try:
            if kind is BackoffKind.LINEAR:
                delay = low * (attempt_number + 1)
            else:
                delay = low * self.multiplier**attempt_number
        except OverflowError:  # int too large for a float, or the power overflows
            return cap
        return delay if delay < cap else cap

    def wait_seconds_for_attempt(
        self,
        attempt_number: int,
        *,
        previous: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """The wait before retry ``attempt_number`` (0 is the first retry), jitter applied.

        Full: ``uniform(0, d)``; equal: ``d/2 + uniform(0, d/2)``; decorrelated:
        ``uniform(initial, min(cap, max(initial, 3 * previous)))``, where ``d`` is
        :meth:`base_wait_seconds`. Jitter comes after the cap, so capped clients stay
        spread out. Every result lies in ``[0, max_seconds]``.

        Args:
            attempt_number: zero-based retry number.
            previous: the wait actually used before the previous retry, for decorrelated
                jitter (default: the un-jittered previous wait).
            rng: the random source (anything with ``random()``); default a shared
                ``random.Random``.
        """
        delay = self.base_wait_seconds(attempt_number)
        jitter = self.jitter
        if jitter is Jitter.NONE:
            return delay
        draw = (rng if rng is not None else _shared_rng()).random()
        if jitter is Jitter.FULL:
            return delay * draw
        if jitter is Jitter.EQUAL:
            return delay / 2 + delay / 2 * draw
        base = self.initial_seconds
        if previous is None:
            previous = base if attempt_number == 0 else self.base_wait_seconds(attempt_number - 1)
        upper = min(self.max_seconds, max(base, previous * 3))
        return base + (upper - base) * draw


_DEFAULT_BACKOFF = Backoff()


class AttemptRecord(_Value):
    """One failed attempt, as the history keeps it (and as ``delay_for`` sees it).

    Attributes:
        number: the attempt number, 1 for the first call.
        offset_seconds: when it started, in seconds after the call began.
        duration_seconds: how long it ran, on the injected clock.
        exception: what it raised, or ``None`` when its result asked for a retry.
        result: what it returned (``None`` when it raised).
        delay_seconds: the wait chosen after it; ``None`` when retrying stopped there
            (and always ``None`` in the record a ``delay_for`` hook receives).
    """

    __slots__ = (
        "delay_seconds",
        "duration_seconds",
        "exception",
        "number",
        "offset_seconds",
        "result",
    )
    _fields = (
        "number",
        "offset_seconds",
        "duration_seconds",
        "exception",
        "result",
        "delay_seconds",
    )
    number: int
    offset_seconds: float
    duration_seconds: float
    exception: BaseException | None
    result: object
    delay_seconds: float | None

    def __init__(  # noqa: PLR0917 - the positional order of the fields, as a dataclass has
        self,
        number: int,
        offset_seconds: float,
        duration_seconds: float,
        exception: BaseException | None,
        result: object = None,
        delay_seconds: float | None = None,
    ) -> None:
        _set_field(self, "number", number)
        _set_field(self, "offset_seconds", offset_seconds)
        _set_field(self, "duration_seconds", duration_seconds)
        _set_field(self, "exception", exception)
        _set_field(self, "result", result)
        _set_field(self, "delay_seconds", delay_seconds)

    def describe(self) -> str:
        """One line for an exception note: what failed, how long it ran, the wait after."""
        what = repr(self.exception) if self.exception is not None else f"result {self.result!r}"
        text = (
            f"attempt {self.number} at +{self.offset_seconds:.3f} s: {what} "
            f"after {self.duration_seconds:.3f} s"
        )
        if self.delay_seconds is not None:
            text += f", then waited {self.delay_seconds:.3f} s"
        return text


class RetryStats(_Value):
    """What one call did: a snapshot that belongs to that call alone.

    Attributes:
        attempts: attempts started, the first included.
        elapsed_seconds: from the call's start to the end of retrying (or to now, for a
            call still running), on the injected clock.
        slept_seconds: the total of the backoff waits requested.
        stop_reason: why retrying ended (``None`` while the call is still running).
        history: the failed attempts, oldest first.
    """

    __slots__ = ("attempts", "elapsed_seconds", "history", "slept_seconds", "stop_reason")
    _fields = ("attempts", "elapsed_seconds", "slept_seconds", "stop_reason", "history")
    attempts: int
    elapsed_seconds: float
    slept_seconds: float
    stop_reason: StopReason | None
    history: tuple[AttemptRecord, ...]

    def __init__(
        self,
        attempts: int,
        elapsed_seconds: float,
        slept_seconds: float,
        stop_reason: StopReason | None,
        history: tuple[AttemptRecord, ...],
    ) -> None:
        _set_field(self, "attempts", attempts)
        _set_field(self, "elapsed_seconds", elapsed_seconds)
        _set_field(self, "slept_seconds", slept_seconds)
        _set_field(self, "stop_reason", stop_reason)
        _set_field(self, "history", history)

    def describe(self) -> list[str]:
        """The lines added as exception notes when retrying gives up."""
        reason = self.stop_reason.value if self.stop_reason is not None else "running"
        lines = [
            (
                f"interlock.retry: gave up after {self.attempts} attempt(s) in "
                f"{self.elapsed_seconds:.3f} s ({reason})"
            )
        ]
        history = self.history
        if len(history) > _NOTE_LINES:  # keep the first and last attempts of a long run
            half = _NOTE_LINES // 2
            lines += ["  " + r.describe() for r in history[:half]]
            lines.append(f"  ... {len(history) - 2 * half} more attempt(s) ...")
            lines += ["  " + r.describe() for r in history[-half:]]
        else:
            lines += ["  " + r.describe() for r in history]
        return lines


_NOTE_LINES = 20


# --------------------------------------------------------------------------------------
# Classifiers, hints and Retry-After
# --------------------------------------------------------------------------------------


def is_rpa_system_error(value: object) -> bool:
    """True for a negative RPA error code: a system error, worth retrying.

    The convention of RPA work-queue trackers: ``0`` is success, a negative code is a
    system error (an application did not answer, a selector timed out: retryable), a
    positive code is a business error (bad data, a rule said no: retrying cannot help).
    Accepts an ``int`` result (for ``on_result=``) or an exception or object with an
    ``int`` ``error_code`` attribute (for ``on=``); anything else is not a system error.

    >>> [is_rpa_system_error(code) for code in (0, -2, 3)]
    [False, True, False]
    """
    code = value if type(value) is int else getattr(value, "error_code", None)
    return type(code) is int and code < 0


def parse_retry_after(value: str | bytes, *, now: datetime | None = None) -> float:
    """Seconds to wait, from an HTTP ``Retry-After`` value (RFC 9110 section 10.2.3).

    Accepts delay-seconds (ASCII digits) or an HTTP-date (IMF-fixdate, or the obsolete
    RFC 850 and asctime forms); surrounding whitespace is ignored. A date in the past
    gives ``0.0``; a number too large for a float gives ``inf`` (which no deadline fits).

    Args:
        value: the header value, as ``str`` or ``bytes``.
        now: the current time for an HTTP-date (an aware datetime; default: UTC now).

    Raises:
        InvalidRetryAfterError: the value is neither form (a ``ValueError``).
        TypeError: ``value`` is not ``str``/``bytes``, or ``now`` is not an aware datetime.

    >>> parse_retry_after(" 3 ")
    3.0
    """
    if isinstance(value, bytes):
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidRetryAfterError(value, "not ASCII") from None
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"value must be str or bytes, got {value!r}")
    text = text.strip(" \t")
    if not text:
        raise InvalidRetryAfterError(value, "empty")
    if text.isascii() and text.isdigit():
        if len(text) > 300:  # beyond any float; int() would also refuse > 4300 digits
            return _INFINITY
        return float(int(text))
    if text[:1] in "+-" or text.replace(".", "", 1).isdigit():
        raise InvalidRetryAfterError(value, "delay-seconds must be a whole number >= 0")
    when = _parse_http_date(value, text)
    if now is None:
        now = _datetime_now()
    elif getattr(now, "tzinfo", None) is None or now.utcoffset() is None:
        raise TypeError(f"now must be an aware datetime, got {now!r}")
    seconds: float = (when - now).total_seconds()
    return seconds if seconds > 0 else 0.0


def _parse_http_date(value: object, text: str) -> datetime:
    utils = _email_utils()
    try:
        when: datetime = utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise InvalidRetryAfterError(
            value, "neither delay-seconds nor an HTTP-date such as 'Wed, 21 Oct 2015 07:28:00 GMT'"
        ) from None
    if when.tzinfo is None:  # "-0000": RFC 9110 dates are always UTC
        when = when.replace(tzinfo=_utc())
    return when


def delay_from_attribute(name: str) -> Callable[[AttemptRecord], float | None]:
    """A ``delay_for`` hook that waits what the exception's attribute ``name`` says.

    The attribute may hold seconds (``int``/``float``) or a ``Retry-After`` string. Use
    ``delay_from_attribute("remaining")`` to wait out a circuit breaker's open period
    (when ``on=`` retries its rejection), or ``"retry_after"`` (what retry reads by
    default when no ``delay_for`` is given). A missing, negative or unreadable value
    gives ``None``: the backoff decides.

    >>> class Busy(Exception):
    ...     remaining = 2.5
    >>> delay_from_attribute("remaining")(AttemptRecord(1, 0.0, 0.1, Busy()))
    2.5
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an attribute name, got {name!r}")

    def delay_for(record: AttemptRecord) -> float | None:
        return _hint(getattr(record.exception, name, None))

    return delay_for


def _hint(value: object) -> float | None:
    """Seconds from an attribute value (number or Retry-After text), else None."""
    if value is None:
        return None
    if type(value) in _SECONDS_TYPES:
        seconds = float(value)  # type: ignore[arg-type]
        return seconds if seconds >= 0 else None  # NaN and negatives fall back to backoff
    if isinstance(value, (str, bytes)):
        try:
            return parse_retry_after(value)
        except InvalidRetryAfterError:
            return None
    return None


def _default_delay_for(record: AttemptRecord) -> float | None:
    return _hint(getattr(record.exception, "retry_after", None))


# --------------------------------------------------------------------------------------
# Retry budget
# --------------------------------------------------------------------------------------


class RetryBudget:
    """A token bucket shared across calls that bounds retries in an outage (gRPC style).

    The bucket starts full at ``max_tokens``. Every retryable failure takes one token;
    every success puts back ``token_ratio``. A retry is allowed only while more than
    half of ``max_tokens`` remain, so under 100% failure the whole process makes at
    most about ``max_tokens / 2`` retries, after which every call fails after its first
    attempt, without sleeping, until successes refill the bucket. Thread-safe.

    >>> budget = RetryBudget(max_tokens=4, token_ratio=0.5)
    >>> [budget.record_failure() for _ in range(3)]
    [True, False, False]
    """

    __slots__ = ("_lock", "_tokens", "max_tokens", "threshold", "token_ratio")

    def __init__(self, *, max_tokens: float = 10.0, token_ratio: float = 0.1) -> None:
        if type(max_tokens) not in _SECONDS_TYPES or not 0 < max_tokens <= 1000:
            raise ValueError(f"max_tokens must be a number in (0, 1000], got {max_tokens!r}")
        if type(token_ratio) not in _SECONDS_TYPES or not 0 < token_ratio <= 1:
            raise ValueError(f"token_ratio must be a number in (0, 1], got {token_ratio!r}")
        self.max_tokens = float(max_tokens)
        self.token_ratio = float(token_ratio)
        self.threshold = self.max_tokens / 2
        self._tokens = self.max_tokens
        self._lock = allocate_lock()

    @property
    def tokens(self) -> float:
        """The tokens left now."""
        return self._tokens

    @property
    def allows_retry(self) -> bool:
        """Whether a retry would be allowed now (more than half the tokens left)."""
        return self._tokens > self.threshold

    def record_failure(self) -> bool:
        """Take one token for a retryable failure; True when a retry is still allowed."""
        with self._lock:
            tokens = self._tokens - 1
            self._tokens = tokens = tokens if tokens > 0 else 0.0
            return tokens > self.threshold

    def record_success(self) -> None:
        """Put back ``token_ratio`` tokens (up to ``max_tokens``) for a success."""
        with self._lock:
            tokens = self._tokens + self.token_ratio
            self._tokens = tokens if tokens < self.max_tokens else self.max_tokens

    def __repr__(self) -> str:
        return (
            f"RetryBudget(max_tokens={self.max_tokens!r}, token_ratio={self.token_ratio!r}, "
            f"tokens={self._tokens!r})"
        )


# --------------------------------------------------------------------------------------
# Testing mode
# --------------------------------------------------------------------------------------

# The active testing settings: None, or the attempts cap (an int, or 0 for "no cap").
# Read without a lock on the failure path (one global load); written under _TESTING_LOCK.
# The name does not start with "test": pytest would collect it from a test module.
_testing_cap: int | None = None
_testing_stack: list[_TestingMode] = []
_TESTING_LOCK = allocate_lock()


class _TestingMode:
    __slots__ = ("attempts",)

    def __init__(self, attempts: int | None) -> None:
        self.attempts = attempts

    def __enter__(self) -> None:
        with _TESTING_LOCK:
            _testing_stack.append(self)
            _set_testing_cap()

    def __exit__(self, *exc_info: object) -> None:
        with _TESTING_LOCK:
            for index in range(len(_testing_stack) - 1, -1, -1):
                if _testing_stack[index] is self:
                    del _testing_stack[index]
                    break
            _set_testing_cap()


def _set_testing_cap() -> None:
    global _testing_cap  # noqa: PLW0603 - the one process-wide switch, written under a lock
    if not _testing_stack:
        _testing_cap = None
    else:
        attempts = _testing_stack[-1].attempts
        _testing_cap = 0 if attempts is None else attempts


def retry_testing(*, attempts: int | None = 1) -> AbstractContextManager[None]:
    """A context manager that removes every backoff sleep and caps attempts, for tests.

    Process-wide: while any ``retry_testing()`` block is active, every retry in every thread
    and asyncio task of the process skips its sleeps (the sleep function is not called)
    and makes at most ``attempts`` attempts (``None``: each policy's own limit). Blocks
    nest; the most recently entered active block wins, and leaving a block (in any
    order, from any thread) restores the one entered before it. Entering and leaving
    take a lock; the retry path reads one global. Deadlines still apply on the clock.

    >>> @retry(on=OSError, sleep=lambda s: 1 / 0)
    ... def broken():
    ...     raise OSError("down")
    >>> with retry_testing(attempts=2):
    ...     try:
    ...         broken()
    ...     except OSError as exc:
    ...         print(exc.retry_stats.attempts)
    2
    """
    if attempts is not None and (type(attempts) is not int or attempts < 1):
        raise ValueError(f"attempts must be an int >= 1 or None, got {attempts!r}")
    return _TestingMode(attempts)


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


class _Run:
    """The state of one call: attempts, history and the deadline. Never shared."""

    __slots__ = (
        "attempt_started",
        "deadline",
        "ended",
        "history",
        "last_chance",
        "last_delay",
        "number",
        "pending",
        "phase",
        "policy",
        "slept",
        "started",
        "stop_reason",
    )

    def __init__(self, policy: Retrying, started: float) -> None:
        self.policy = policy
        self.started = started
        self.attempt_started = started
        timeout = policy.timeout
        self.deadline = None if timeout is None else started + timeout
        self.number = 1
        self.history: list[AttemptRecord] = []
        self.slept = 0.0
        self.last_delay: float | None = None
        self.last_chance = False
        self.stop_reason: StopReason | None = None
        self.ended: float | None = None
        self.pending = 0.0
        self.phase = _READY

    # -- decisions ---------------------------------------------------------------------

    def fits(self, start: float) -> bool:
        """May an attempt start at ``start``? Before the deadline, with its minimum left."""
        deadline = self.deadline
        return deadline is None or (
            start < deadline and start + self.policy.min_attempt_seconds <= deadline
        )

    def failed(self, error: Exception | None, result: object) -> float | None:
        """Record a failed attempt; the delay before the next one, or None to stop."""
        policy = self.policy
        now = policy.clock()
        number = self.number
        record = AttemptRecord(
            number, self.attempt_started - self.started, now - self.attempt_started, error, result
        )
        history = self.history
        history.append(record)
        if error is not None and not policy._retryable(error):  # noqa: SLF001 - the engine's own state
            self.stop(StopReason.NOT_RETRYABLE, now)
            return None
        budget = policy.budget
        allowed = budget.record_failure() if budget is not None else True
        cap = _testing_cap
        attempts = policy.attempts
        if cap is not None and cap and (attempts is None or cap < attempts):
            attempts = cap
        if attempts is not None and number >= attempts:
            self.stop(StopReason.ATTEMPTS, now)
            return None
        if not allowed:
            self.stop(StopReason.BUDGET, now)
            return None
        if self.last_chance:  # it had the time left after a shortened wait: no more
            self.stop(StopReason.DEADLINE, now)
            return None
        hint = policy.delay_for(record)
        if hint is None:
            hinted = False
            delay = policy.backoff.wait_seconds_for_attempt(
                number - 1, previous=self.last_delay, rng=policy.rng
            )
        else:
            if type(hint) not in _SECONDS_TYPES or not hint >= 0:
                raise ValueError(
                    f"delay_for must return seconds >= 0, STOP or None, got {hint!r}"
                ) from error
            if hint == _INFINITY:
                self.stop(StopReason.HOOK, now)
                return None
            hinted, delay = True, float(hint)
        if cap is not None:
            delay = 0.0  # testing mode: no sleeps at all
        deadline = self.deadline
        if deadline is not None:
            start = now + delay
            if not self.fits(start):
                minimum = policy.min_attempt_seconds
                # A hinted wait is never shortened (the server asked for it); without a
                # minimum, the latest useful start is the deadline, where nothing starts.
                if hinted or not minimum:
                    self.stop(StopReason.DEADLINE, now)
                    return None
                delay = deadline - minimum - now  # shortened to the latest useful start
                if delay < 0 or not self.fits(now + delay):
                    self.stop(StopReason.DEADLINE, now)
                    return None
                self.last_chance = True
        history[-1] = AttemptRecord(
            number, record.offset_seconds, record.duration_seconds, error, result, delay
        )
        self.last_delay = delay
        self.slept += delay
        if policy.on_retry is not None:
            policy.on_retry(history[-1], delay)
        return delay

    def stop(self, reason: StopReason, now: float) -> None:
        self.stop_reason = reason
        self.ended = now
        self.phase = _DONE

    def begin(self, now: float) -> None:
        """Start the next attempt at ``now``."""
        self.number += 1
        self.attempt_started = now

    def succeeded(self) -> None:
        budget = self.policy.budget
        if budget is not None:
            budget.record_success()
        self.stop(StopReason.SUCCESS, self.policy.clock())

    def after_sleep(self) -> bool:
        """Read the clock after a wait; start the next attempt if it still fits."""
        now = self.policy.clock()
        if not self.fits(now):  # the sleep overran the deadline
            self.stop(StopReason.DEADLINE, now)
            return False
        self.begin(now)
        return True

    def stats(self) -> RetryStats:
        ended = self.ended if self.ended is not None else self.policy.clock()
        return RetryStats(
            self.number, ended - self.started, self.slept, self.stop_reason, tuple(self.history)
        )

    def give_up(self, error: Exception | None, result: object) -> Exception:
        """The exception to raise now: ``error`` annotated, or RetryExhaustedError."""
        stats = self.stats()
        if error is None:
            return RetryExhaustedError(result, stats)
        _attach(error, stats)
        return error

    # -- the block form ----------------------------------------------------------------

    def __iter__(self) -> Iterator[Attempt]:
        return self

    def __next__(self) -> Attempt:
        phase = self.phase
        if phase == _WAITING:
            delay = self.pending
            if delay > 0:
                self.policy.sleep(delay)
            if not self.after_sleep():
                raise self._last_error()
        elif phase != _READY:
            self._check_not_running(phase)
            raise StopIteration
        self.phase = _RUNNING
        return Attempt(self)

    def __aiter__(self) -> AsyncIterator[Attempt]:
        return self

    async def __anext__(self) -> Attempt:
        phase = self.phase
        if phase == _WAITING:
            delay = self.pending
            if delay > 0:
                await self.policy._async_sleep()(delay)  # noqa: SLF001
            if not self.after_sleep():
                raise self._last_error()
        elif phase != _READY:
            self._check_not_running(phase)
            raise StopAsyncIteration
        self.phase = _RUNNING
        return Attempt(self)

    @staticmethod
    def _check_not_running(phase: int) -> None:
        if phase == _RUNNING:
            raise RuntimeError(
                "each attempt must be used as a context manager: `with attempt: ...`"
            )

    def _last_error(self) -> Exception:
        last = self.history[-1]
        return self.give_up(
            last.exception if isinstance(last.exception, Exception) else None, last.result
        )


# The phases of a block-form run: READY -> RUNNING -> (WAITING -> RUNNING)* -> DONE.
_READY, _RUNNING, _WAITING, _DONE = 0, 1, 2, 3


def _attach(error: BaseException, stats: RetryStats) -> None:
    """Attach the history: ``retry_stats`` always, exception notes on Python 3.11+."""
    try:  # noqa: SIM105 - contextlib is not worth importing for this
        error.retry_stats = stats  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type that refuses attributes
        pass
    add_note = getattr(error, "add_note", None)  # Python 3.11+ (PEP 678)
    if add_note is not None and (
        stats.attempts > 1 or stats.stop_reason is not StopReason.NOT_RETRYABLE
    ):
        for line in stats.describe():
            add_note(line)


class Attempt:
    """One attempt of a block-form retry: ``with attempt: ...`` runs it.

    Attributes:
        number: the attempt number, 1 for the first.
    """

    __slots__ = ("_result", "_run", "number")

    def __init__(self, run: _Run) -> None:
        self._run = run
        self.number = run.number
        self._result: object = _NO_RESULT

    @property
    def deadline(self) -> float | None:
        """The call's deadline on the injected clock, or ``None`` without a timeout."""
        return self._run.deadline

    @property
    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or ``None`` without one.

        Pass it on as the attempt's own timeout so the attempt cannot overrun the call.
        """
        deadline = self._run.deadline
        if deadline is None:
            return None
        left = deadline - self._run.policy.clock()
        return left if left > 0 else 0.0

    @property
    def stats(self) -> RetryStats:
        """The statistics of the whole call so far (final once the loop has ended)."""
        return self._run.stats()

    def set_result(self, value: object) -> None:
        """Offer the attempt's result to ``on_result=``: a result it rejects is retried."""
        self._result = value

    def __enter__(self) -> Attempt:  # noqa: PYI034 - Attempt is not meant to be subclassed
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        run = self._run
        if run.phase != _RUNNING or run.number != self.number:
            raise RuntimeError(f"attempt {self.number} was already used")
        policy = run.policy
        if exc is None:
            result = self._result
            if result is _HANDOFF:  # call_with_stats goes on awaiting: still running
                return False
            on_result = policy.on_result
            if result is _NO_RESULT or on_result is None or not on_result(result):
                run.succeeded()
                return False
            delay = run.failed(None, result)
            if delay is None:
                raise run.give_up(None, result)
        elif not isinstance(exc, Exception):  # KeyboardInterrupt, CancelledError, ...
            run.stop(StopReason.NOT_RETRYABLE, policy.clock())
            return False
        else:
            delay = run.failed(exc, None)
            if delay is None:
                run.give_up(exc, None)
                return False
        run.pending = delay
        run.phase = _WAITING
        return True

    def __repr__(self) -> str:
        return f"<Attempt {self.number}>"


_NO_RESULT = object()
_HANDOFF = object()


class Retrying:
    """A reusable retry policy: a decorator, a block-form iterator and a ``call`` API.

    ``retry(...)`` returns one of these. Each call (or each ``for``/``async for`` over
    the policy) gets its own state, so one policy can serve many threads and tasks.

    Args:
        on: what to retry: an ``Exception`` subclass, a tuple of them (``()`` for none,
            when only results are retried), or a predicate on the exception. Required.
        on_result: a predicate on a returned value; ``True`` means "retry".
        attempts: the most attempts per call, the first included (``None``: no limit).
        timeout: the total deadline per call in seconds, from the first attempt's
            start, on ``clock`` (``None``: no deadline).
        backoff: the wait before each retry (default exponential 0.1 s to 5 s, full
            jitter).
        min_attempt_seconds: the least time one attempt needs; an attempt starts only
            if it fits before the deadline.
        delay_for: a hook ``(AttemptRecord) -> seconds | STOP | None`` that chooses the
            next wait (``None``: use the backoff). Default: the exception's
            ``retry_after`` attribute (seconds or a Retry-After string), if any.
        budget: a :class:`RetryBudget` shared across calls.
        on_retry: called as ``on_retry(record, delay)`` before each wait (for logging).
        clock: monotonic seconds (default ``time.monotonic``).
        sleep: the blocking sleep (default ``time.sleep``).
        async_sleep: the awaitable sleep (default ``asyncio.sleep``, imported on use).
        rng: the random source for jitter (anything with ``random()``).
    """

    __slots__ = (
        "_retryable",
        "async_sleep",
        "attempts",
        "backoff",
        "budget",
        "clock",
        "delay_for",
        "min_attempt_seconds",
        "on",
        "on_result",
        "on_retry",
        "rng",
        "sleep",
        "timeout",
    )

    def __init__(
        self,
        *,
        on: Classifier,
        on_result: Callable[[Any], bool] | None = None,
        attempts: int | None = 5,
        timeout: float | None = 30.0,
        backoff: Backoff = _DEFAULT_BACKOFF,
        min_attempt_seconds: float = 0.0,
        delay_for: Callable[[AttemptRecord], float | None] | None = None,
        budget: RetryBudget | None = None,
        on_retry: Callable[[AttemptRecord, float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.on = on
        self._retryable = _classifier(on)
        if on_result is not None and not callable(on_result):
            raise TypeError(f"on_result must be callable or None, got {on_result!r}")
        self.on_result = on_result
        if attempts is not None and (type(attempts) is not int or attempts < 1):
            raise ValueError(f"attempts must be an int >= 1 or None, got {attempts!r}")
        self.attempts = attempts
        if timeout is not None:
            _check_seconds("timeout", timeout)
            if timeout <= 0:
                raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        self.timeout = timeout
        if not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {backoff!r}")
        self.backoff = backoff
        _check_seconds("min_attempt_seconds", min_attempt_seconds)
        if timeout is not None and min_attempt_seconds > timeout:
            raise ValueError(
                f"min_attempt_seconds={min_attempt_seconds!r} exceeds timeout={timeout!r}"
            )
        self.min_attempt_seconds = min_attempt_seconds
        hooks: tuple[tuple[str, object], ...] = (
            ("delay_for", delay_for),
            ("on_retry", on_retry),
            ("async_sleep", async_sleep),
        )
        for name, value in hooks:
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable or None, got {value!r}")
        self.delay_for = delay_for if delay_for is not None else _default_delay_for
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget or None, got {budget!r}")
        self.budget = budget
        self.on_retry = on_retry
        required: tuple[tuple[str, object], ...] = (("clock", clock), ("sleep", sleep))
        for name, value in required:
            if not callable(value):
                raise TypeError(f"{name} must be callable, got {value!r}")
        self.clock = clock
        self.sleep = sleep
        self.async_sleep = async_sleep
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise TypeError(f"rng must have a random() method, got {rng!r}")
        self.rng = rng

    def __repr__(self) -> str:
        return (
            f"Retrying(on={self.on!r}, attempts={self.attempts!r}, timeout={self.timeout!r}, "
            f"backoff={self.backoff!r})"
        )

    def _async_sleep(self) -> Callable[[float], Awaitable[object]]:
        sleep = self.async_sleep
        return sleep if sleep is not None else _asyncio().sleep

    # -- block form --------------------------------------------------------------------

    def __iter__(self) -> Iterator[Attempt]:
        """Retry a block: ``for attempt in policy: with attempt: ...``."""
        return _Run(self, self.clock())

    def __aiter__(self) -> AsyncIterator[Attempt]:
        """Retry a block in a coroutine: ``async for attempt in policy: with attempt: ...``."""
        return _Run(self, self.clock())

    # -- decorator ---------------------------------------------------------------------

    def __call__(self, fn: F) -> F:
        """Decorate a sync function or an ``async def`` function (chosen once, here).

        When a call through the sync wrapper returns an awaitable (an object whose
        ``__call__`` is ``async def``, a function returning a coroutine, a Future or a
        Task), the wrapper returns a coroutine that awaits it and runs any further
        attempts asynchronously, waiting with ``async_sleep``.
        """
        if not callable(fn):
            raise TypeError(f"retry decorates a callable, got {fn!r}")
        if _inspect().iscoroutinefunction(fn):
            return self._wrap_async(fn)  # type: ignore[return-value]
        clock = self.clock
        slow = self._retry_sync
        settle = self._settle
        if self.on_result is None and self.budget is None:

            @wraps(fn)
            def lean(*args: Any, **kwargs: Any) -> Any:
                started = clock()
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - classified by `on=` in the slow path
                    error = exc
                else:
                    if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                        return settle(result, fn, args, kwargs, started, None)
                    return result
                return slow(fn, args, kwargs, started, error, None)

            return lean  # type: ignore[return-value]

        first = self._first_sync

        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return first(fn, args, kwargs)

        return wrapper  # type: ignore[return-value]

    def _wrap_async(self, fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
        clock = self.clock
        slow = self._retry_async
        on_result = self.on_result
        budget = self.budget

        @wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified by `on=` in the slow path
                error = exc  # leave the except block: later failures must not chain to it
            else:
                if on_result is None or not on_result(result):
                    if budget is not None:
                        budget.record_success()
                    return result
                return await slow(fn, args, kwargs, started, None, result)
            return await slow(fn, args, kwargs, started, error, None)

        return wrapper

    # -- call API ----------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` under this policy; its result, or its last error.

        If ``fn`` returns an awaitable, this returns a coroutine that awaits it and runs
        any further attempts asynchronously (as ``acall`` would).
        """
        started = self.clock()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified by `on=` in the slow path
            error = exc  # leave the except block: later failures must not chain to this one
        else:
            if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                return self._settle(result, fn, args, kwargs, started, None)  # type: ignore[return-value]
            on_result = self.on_result
            if on_result is None or not on_result(result):
                budget = self.budget
                if budget is not None:
                    budget.record_success()
                return result
            retried: T = self._retry_sync(fn, args, kwargs, started, None, result)
            return retried
        retried = self._retry_sync(fn, args, kwargs, started, error, None)
        return retried  # noqa: RET504 - the annotation above types the Any it holds

    execute = call  # the name integration-automation-patterns 0.44's RetryPolicy used

    def call_with_stats(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T, RetryStats]:
        """Like :meth:`call`, returning ``(result, stats)`` for this call alone.

        If ``fn`` returns an awaitable, this returns a coroutine that awaits it, runs any
        further attempts asynchronously and returns ``(result, stats)``.
        """
        run = _Run(self, self.clock())
        for attempt in run:
            with attempt:
                result = fn(*args, **kwargs)
                if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                    attempt.set_result(_HANDOFF)
                    return self._settle_with_stats(  # type: ignore[return-value]
                        run, attempt, result, fn, args, kwargs
                    )
                attempt.set_result(result)
        return result, run.stats()

    async def _settle_with_stats(  # noqa: PLR0917 - internal
        self,
        run: _Run,
        first: Attempt,
        awaitable: Any,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
    ) -> tuple[Any, RetryStats]:
        """``call_with_stats`` once the first attempt returned an awaitable."""
        with first:
            result = await awaitable
            first.set_result(result)
        async for attempt in run:
            with attempt:
                result = await fn(*args, **kwargs)
                attempt.set_result(result)
        return result, run.stats()

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` under this policy; its result, or its last error."""
        result, _ = await self.acall_with_stats(fn, *args, **kwargs)
        return result

    async def acall_with_stats(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> tuple[T, RetryStats]:
        """Like :meth:`acall`, returning ``(result, stats)`` for this call alone."""
        run = _Run(self, self.clock())
        async for attempt in run:
            with attempt:
                result = await fn(*args, **kwargs)
                attempt.set_result(result)
        return result, run.stats()

    # -- the retry loops (entered only once an attempt has failed) -----------------------

    def _first_sync(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        """:meth:`call` for the decorator, which holds ``args`` and ``kwargs`` packed.

        The same steps as :meth:`call` on purpose: one shared body costs either ``call``
        an extra frame or the decorator a repacking of its arguments on every call.
        """
        started = self.clock()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified by `on=` in the slow path
            error = exc  # leave the except block: later failures must not chain to this one
        else:
            if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                return self._settle(result, fn, args, kwargs, started, None)
            on_result = self.on_result
            if on_result is None or not on_result(result):
                budget = self.budget
                if budget is not None:
                    budget.record_success()
                return result
            return self._retry_sync(fn, args, kwargs, started, None, result)
        return self._retry_sync(fn, args, kwargs, started, error, None)

    def _retry_sync(  # noqa: PLR0917 - internal, positional for speed
        self,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        started: float,
        error: Exception | None,
        result: object,
    ) -> Any:
        run = _Run(self, started)
        on_result = self.on_result
        sleep = self.sleep
        while True:
            delay = run.failed(error, result)
            if delay is None:
                raise run.give_up(error, result)
            if delay > 0:
                sleep(delay)
            if not run.after_sleep():
                raise run.give_up(error, result)
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified by `on=` in run.failed
                error, result = exc, None
                continue
            if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                return self._settle(result, fn, args, kwargs, started, run)
            if on_result is None or not on_result(result):
                run.succeeded()
                return result
            error = None

    async def _settle(  # noqa: PLR0917 - internal, positional for speed
        self,
        awaitable: Any,
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        started: float,
        run: _Run | None,
    ) -> Any:
        """Await what a sync call returned; go on as the async path would (``run``: so far)."""
        try:
            result = await awaitable
        except Exception as exc:  # noqa: BLE001 - classified by `on=` in run.failed
            error = exc  # leave the except block: later failures must not chain to this one
        else:
            on_result = self.on_result
            if on_result is None or not on_result(result):
                if run is not None:
                    run.succeeded()
                elif self.budget is not None:
                    self.budget.record_success()
                return result
            return await self._retry_async(fn, args, kwargs, started, None, result, run)
        return await self._retry_async(fn, args, kwargs, started, error, None, run)

    async def _retry_async(  # noqa: PLR0917 - internal, positional for speed
        self,
        fn: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: Any,
        started: float,
        error: Exception | None,
        result: object,
        run: _Run | None = None,
    ) -> Any:
        if run is None:
            run = _Run(self, started)
        on_result = self.on_result
        sleep = self._async_sleep()
        while True:
            delay = run.failed(error, result)
            if delay is None:
                raise run.give_up(error, result)
            if delay > 0:
                await sleep(delay)  # a cancellation ends the wait (and the call) at once
            if not run.after_sleep():
                raise run.give_up(error, result)
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified by `on=` in run.failed
                error, result = exc, None
                continue
            if on_result is None or not on_result(result):
                run.succeeded()
                return result
            error = None


AsyncRetrying = Retrying
"""The same class: ``async for attempt in AsyncRetrying(...)`` reads like its sync twin."""


def retry(
    *,
    on: Classifier,
    on_result: Callable[[Any], bool] | None = None,
    attempts: int | None = 5,
    timeout: float | None = 30.0,
    backoff: Backoff = _DEFAULT_BACKOFF,
    min_attempt_seconds: float = 0.0,
    delay_for: Callable[[AttemptRecord], float | None] | None = None,
    budget: RetryBudget | None = None,
    on_retry: Callable[[AttemptRecord, float], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    async_sleep: Callable[[float], Awaitable[object]] | None = None,
    rng: random.Random | None = None,
) -> Retrying:
    """A decorator that retries a sync or ``async def`` function; see :class:`Retrying`.

    >>> @retry(on=TimeoutError, attempts=2, sleep=lambda s: None)
    ... def always_late():
    ...     raise TimeoutError("slow upstream")
    >>> try:
    ...     always_late()
    ... except TimeoutError as exc:
    ...     print(exc.retry_stats.attempts, exc.retry_stats.stop_reason.value)
    2 attempts exhausted
    """
    return Retrying(
        on=on,
        on_result=on_result,
        attempts=attempts,
        timeout=timeout,
        backoff=backoff,
        min_attempt_seconds=min_attempt_seconds,
        delay_for=delay_for,
        budget=budget,
        on_retry=on_retry,
        clock=clock,
        sleep=sleep,
        async_sleep=async_sleep,
        rng=rng,
    )


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _classifier(on: object) -> Callable[[Exception], bool]:
    """Validate ``on=`` and turn it into a predicate on an exception."""
    if isinstance(on, type):
        types: tuple[type, ...] = (on,)
    elif isinstance(on, tuple):
        types = on
    elif callable(on):
        return on
    else:
        raise TypeError(f"on must be an exception type, a tuple of them or a predicate, got {on!r}")
    for kind in types:
        if not isinstance(kind, type) or not issubclass(kind, BaseException):
            raise TypeError(f"on must hold exception types, got {kind!r}")
        if not issubclass(kind, Exception):
            raise ValueError(  # noqa: TRY004 - a type, but one that is never retried
                f"on={kind.__name__} cannot be retried: KeyboardInterrupt, SystemExit and "
                "asyncio.CancelledError never are (use on=Exception to retry every error)"
            )

    def retryable(error: Exception) -> bool:
        return isinstance(error, types)

    return retryable


@cache
def _shared_rng() -> random.Random:
    """The random source for jitter when none is injected (not a secret, so not secrets)."""
    import random  # noqa: PLC0415 - deferred: only jitter needs it

    return random.Random()  # noqa: S311 - jitter, not cryptography


@cache
def _inspect() -> ModuleType:
    import inspect  # noqa: PLC0415 - deferred: only decorating needs it

    return inspect


@cache
def _asyncio() -> ModuleType:
    import asyncio  # noqa: PLC0415 - deferred: never imported by sync code

    return asyncio


@cache
def _email_utils() -> ModuleType:
    import email.utils  # noqa: PLC0415 - deferred: only HTTP-dates need it

    return email.utils


def _utc() -> Any:
    from datetime import timezone  # noqa: PLC0415 - deferred: only HTTP-dates need it

    return timezone.utc


def _datetime_now() -> datetime:
    from datetime import datetime, timezone  # noqa: PLC0415 - deferred: see _utc

    return datetime.now(timezone.utc)
