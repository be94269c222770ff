"""interlock.retry: classification, backoff, the hard deadline, budgets, testing mode, asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import math
import pickle
import random
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

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


class DownError(ConnectionError):
    """The transient failure the fakes below raise."""


class FakeClock:
    """A monotonic clock that only moves when a sleep or an attempt moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Flaky:
    """A callable that raises the given errors in turn, then returns ``value``."""

    def __init__(self, *errors: BaseException, value: object = "ok") -> None:
        self.errors = list(errors)
        self.calls = 0
        self.value = value

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class ConstantRng:
    """A random source whose ``random()`` always returns one value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def run_block(p: Retrying, body: Callable[[Attempt], object]) -> Attempt:
    """Run ``body`` in the block form (``for attempt in p: with attempt: ...``)."""
    for attempt in p:
        with attempt:
            body(attempt)
    return attempt


async def arun_block(p: Retrying, body: Callable[[Attempt], object]) -> Attempt:
    """Run ``body`` in the async block form (``async for attempt in p: ...``)."""
    async for attempt in p:
        with attempt:
            body(attempt)
    return attempt


def raiser(error: BaseException | type[BaseException]) -> Callable[[Attempt], object]:
    """A block body that always raises ``error``."""

    def body(attempt: Attempt) -> object:
        raise error

    return body


def policy(clock: FakeClock, **kwargs: Any) -> Retrying:
    kwargs.setdefault("on", OSError)
    kwargs.setdefault("rng", random.Random(7))
    return Retrying(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kwargs)


# --------------------------------------------------------------------------------------
# The decorator and classification
# --------------------------------------------------------------------------------------


def test_first_try_success_neither_sleeps_nor_touches_the_result() -> None:
    """A call that succeeds at once returns its value untouched and never sleeps."""
    clock = FakeClock()
    value = object()
    fn = policy(clock)(Flaky(value=value))
    assert fn() is value
    assert clock.sleeps == []


def test_decorator_keeps_the_function_name_and_passes_arguments() -> None:
    """The wrapper looks like the function and forwards positional and keyword arguments."""
    clock = FakeClock()

    @policy(clock)
    def add(a: int, b: int = 0) -> int:
        """Add two numbers."""
        return a + b

    assert add(1, b=2) == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Add two numbers."


def test_retries_until_success_with_a_sleep_before_each_retry() -> None:
    """Two failures then a success: three calls, two sleeps, the final value returned."""
    clock = FakeClock()
    flaky = Flaky(DownError("a"), DownError("b"))
    assert policy(clock)(flaky)() == "ok"
    assert flaky.calls == 3
    assert len(clock.sleeps) == 2


def test_on_is_required() -> None:
    """retry() without on= is refused: dangerous defaults are not defaults."""
    with pytest.raises(TypeError, match="on"):
        retry()  # type: ignore[call-arg]


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
def test_on_refuses_exceptions_that_are_never_retried(kind: type[BaseException]) -> None:
    """on= naming a non-Exception BaseException is a configuration error naming it."""
    with pytest.raises(ValueError, match=kind.__name__):
        retry(on=kind)
    with pytest.raises(ValueError, match=kind.__name__):
        retry(on=(OSError, kind))


@pytest.mark.parametrize("bad", [42, (OSError, "x"), "OSError", (int,)])
def test_on_refuses_what_is_not_an_exception_type_or_predicate(bad: object) -> None:
    """on= must be exception types or a predicate; anything else is a TypeError."""
    with pytest.raises(TypeError, match="on"):
        retry(on=bad)  # type: ignore[arg-type]


def test_predicate_classifies_exceptions() -> None:
    """A predicate on= retries what it accepts and lets the rest through at once."""
    clock = FakeClock()
    fn = Flaky(ValueError("retry me"), ValueError("stop"))
    wrapped = policy(clock, on=lambda e: str(e) == "retry me")(fn)
    with pytest.raises(ValueError, match="stop"):
        wrapped()
    assert fn.calls == 2


def test_non_retryable_error_propagates_at_once_without_notes() -> None:
    """An error on= does not match is re-raised after one call, untouched but for stats."""
    clock = FakeClock()
    error = ValueError("bad input")
    fn = Flaky(error)
    with pytest.raises(ValueError, match="bad input") as info:
        policy(clock)(fn)()
    assert info.value is error
    assert fn.calls == 1
    assert clock.sleeps == []
    assert getattr(error, "__notes__", []) == []
    assert error.retry_stats.stop_reason is StopReason.NOT_RETRYABLE  # type: ignore[attr-defined]


def test_exhaustion_reraises_the_original_exception_with_its_history() -> None:
    """After the last attempt, the LAST original exception is raised with the history."""
    clock = FakeClock()
    errors = [DownError(f"e{i}") for i in range(3)]
    with pytest.raises(DownError) as info:
        policy(clock, attempts=3)(Flaky(*errors))()
    assert info.value is errors[-1]
    stats: RetryStats = info.value.retry_stats  # type: ignore[attr-defined]
    assert stats.attempts == 3
    assert stats.stop_reason is StopReason.ATTEMPTS
    assert [r.exception for r in stats.history] == errors
    assert [r.number for r in stats.history] == [1, 2, 3]
    assert stats.history[-1].delay_seconds is None
    assert stats.slept_seconds == pytest.approx(sum(clock.sleeps))
    if sys.version_info >= (3, 11):
        notes = info.value.__notes__
        assert "gave up after 3 attempt(s)" in notes[0]
        assert "attempts exhausted" in notes[0]
        assert "DownError('e0')" in notes[1]


def test_attempts_do_not_chain_to_each_other() -> None:
    """The final error's __context__ is not the previous attempt's error."""
    clock = FakeClock()
    with pytest.raises(DownError) as info:
        policy(clock, attempts=3)(Flaky(DownError(1), DownError(2), DownError(3)))()
    assert info.value.__context__ is None


def test_history_is_an_attribute_where_notes_do_not_exist() -> None:
    """Without add_note (Python 3.10), the history is still attached as retry_stats."""

    class OldStyleError(OSError):
        add_note = None  # what Python 3.10 exceptions look like to retry

    clock = FakeClock()
    with pytest.raises(OldStyleError) as info:
        policy(clock, attempts=2)(Flaky(OldStyleError(), OldStyleError()))()
    assert info.value.retry_stats.attempts == 2  # type: ignore[attr-defined]
    assert getattr(info.value, "__notes__", None) is None


def test_exception_that_refuses_attributes_is_still_reraised() -> None:
    """An exception type whose __setattr__ refuses still comes out, with its notes."""

    class FrozenError(OSError):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "retry_stats":
                raise AttributeError(name)
            super().__setattr__(name, value)

    clock = FakeClock()
    error = FrozenError("no attributes")
    with pytest.raises(FrozenError) as info:
        policy(clock, attempts=2)(Flaky(FrozenError("first"), error))()
    assert info.value is error
    assert not hasattr(error, "retry_stats")


def test_long_histories_are_shortened_in_the_notes() -> None:
    """A run of many attempts keeps the first and last ones in its notes, not all."""
    clock = FakeClock()
    fn = Flaky(*[DownError(i) for i in range(30)])
    with pytest.raises(DownError) as info:
        policy(clock, attempts=30, timeout=None)(fn)()
    lines = info.value.retry_stats.describe()  # type: ignore[attr-defined]
    assert len(lines) == 1 + 20 + 1
    assert "10 more attempt(s)" in lines[11]
    assert "attempt 30 " in lines[-1]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_never_retried(interrupt: type[BaseException]) -> None:
    """KeyboardInterrupt and SystemExit pass through after one call, unslept, unannotated."""
    clock = FakeClock()
    fn = Flaky(interrupt())
    with pytest.raises(interrupt) as info:
        policy(clock, on=lambda e: True)(fn)()
    assert fn.calls == 1
    assert clock.sleeps == []
    assert not hasattr(info.value, "retry_stats")


def test_on_retry_sees_each_failure_and_its_delay() -> None:
    """on_retry is called before each wait with the failed attempt and the wait chosen."""
    clock = FakeClock()
    seen: list[tuple[int, float]] = []
    fn = Flaky(DownError(), DownError())
    policy(clock, on_retry=lambda r, d: seen.append((r.number, d)))(fn)()
    assert seen == [(1, clock.sleeps[0]), (2, clock.sleeps[1])]


def test_call_and_execute_run_a_function_under_the_policy() -> None:
    """call() (and execute(), the 0.44 name) retry a function without decorating it."""
    clock = FakeClock()
    p = policy(clock)
    assert p.call(Flaky(DownError()), 1, k=2) == "ok"
    assert p.execute(Flaky(DownError())) == "ok"


def test_call_with_stats_reports_each_call_alone() -> None:
    """Two calls through one policy get separate, immutable statistics."""
    clock = FakeClock()
    p = policy(clock)
    value, first = p.call_with_stats(Flaky(DownError(), DownError()))
    _, second = p.call_with_stats(Flaky())
    assert value == "ok"
    assert (first.attempts, first.stop_reason) == (3, StopReason.SUCCESS)
    assert len(first.history) == 2
    assert (second.attempts, second.history) == (1, ())
    with pytest.raises(AttributeError):
        first.attempts = 9  # type: ignore[misc]


def test_policies_validate_their_configuration() -> None:
    """Bad configuration raises ValueError/TypeError naming the argument and the value."""
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"attempts": 0}, ValueError, "attempts"),
        ({"attempts": True}, ValueError, "attempts"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": "1"}, TypeError, "timeout"),
        ({"timeout": math.inf}, ValueError, "timeout"),
        ({"min_attempt_seconds": -1.0}, ValueError, "min_attempt_seconds"),
        ({"min_attempt_seconds": 2.0, "timeout": 1.0}, ValueError, "min_attempt_seconds"),
        ({"backoff": 1.0}, TypeError, "backoff"),
        ({"on_result": 1}, TypeError, "on_result"),
        ({"delay_for": 1}, TypeError, "delay_for"),
        ({"on_retry": "x"}, TypeError, "on_retry"),
        ({"async_sleep": 3}, TypeError, "async_sleep"),
        ({"budget": 3}, TypeError, "budget"),
        ({"clock": 3}, TypeError, "clock"),
        ({"sleep": None}, TypeError, "sleep"),
        ({"rng": 3}, TypeError, "rng"),
    ]
    for kwargs, error, name in cases:
        with pytest.raises(error, match=name):
            Retrying(on=OSError, **kwargs)
    with pytest.raises(TypeError, match="callable"):
        retry(on=OSError)(42)  # type: ignore[type-var]


def test_unlimited_attempts_and_time_are_available_when_asked_for() -> None:
    """attempts=None with timeout=None retries as long as the failures last."""
    clock = FakeClock()
    fn = Flaky(*[DownError() for _ in range(12)])
    assert policy(clock, attempts=None, timeout=None)(fn)() == "ok"
    assert fn.calls == 13


def test_repr_names_the_configuration() -> None:
    """The policy's repr shows what it retries and its limits."""
    text = repr(Retrying(on=OSError, attempts=4, timeout=2.0))
    assert "OSError" in text
    assert "attempts=4" in text
    assert "timeout=2.0" in text
    assert AsyncRetrying is Retrying


# --------------------------------------------------------------------------------------
# Backoff
# --------------------------------------------------------------------------------------


def test_backoff_curves_before_the_cap() -> None:
    """Fixed, linear and exponential waits, capped, with no jitter."""
    fixed = Backoff(kind=BackoffKind.FIXED, initial_seconds=2.0, max_seconds=9.0)
    linear = Backoff(kind=BackoffKind.LINEAR, initial_seconds=2.0, max_seconds=7.0)
    exponential = Backoff(initial_seconds=1.0, max_seconds=10.0, multiplier=3.0)
    assert [fixed.base_wait_seconds(n) for n in range(4)] == [2.0, 2.0, 2.0, 2.0]
    assert [linear.base_wait_seconds(n) for n in range(5)] == [2.0, 4.0, 6.0, 7.0, 7.0]
    assert [exponential.base_wait_seconds(n) for n in range(4)] == [1.0, 3.0, 9.0, 10.0]


@pytest.mark.parametrize("kind", list(BackoffKind))
@pytest.mark.parametrize("jitter", list(Jitter))
@pytest.mark.parametrize("attempt", [10_000, 2**64, 10**400])
def test_no_overflow_at_any_attempt_number(kind: BackoffKind, jitter: Jitter, attempt: int) -> None:
    """Attempt 10_000 (or 10**400) gives a delay within the cap, never OverflowError."""
    backoff = Backoff(kind=kind, initial_seconds=0.5, max_seconds=30.0, jitter=jitter)
    delay = backoff.wait_seconds_for_attempt(attempt, rng=random.Random(1))
    assert 0 <= delay <= 30.0
    assert backoff.base_wait_seconds(attempt) == (0.5 if kind is BackoffKind.FIXED else 30.0)


def test_backoff_validates_its_configuration() -> None:
    """Negative, inverted or non-numeric settings are refused, naming the field."""
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"initial_seconds": -1.0}, ValueError, "initial_seconds"),
        ({"max_seconds": math.nan}, ValueError, "max_seconds"),
        ({"initial_seconds": 5.0, "max_seconds": 1.0}, ValueError, "max_seconds"),
        ({"multiplier": 0.5}, ValueError, "multiplier"),
        ({"multiplier": math.inf}, ValueError, "multiplier"),
        ({"kind": "exponential"}, TypeError, "kind"),
        ({"jitter": "full"}, TypeError, "jitter"),
        ({"initial_seconds": "1"}, TypeError, "initial_seconds"),
    ]
    for kwargs, error, name in cases:
        with pytest.raises(error, match=name):
            Backoff(**kwargs)
    backoff = Backoff()
    with pytest.raises(TypeError, match="attempt_number"):
        backoff.base_wait_seconds(True)
    with pytest.raises(ValueError, match="attempt_number"):
        backoff.base_wait_seconds(-1)


@settings(deadline=None)
@given(
    kind=st.sampled_from(BackoffKind),
    jitter=st.sampled_from(Jitter),
    initial=st.floats(0, 100),
    extra=st.floats(0, 1000),
    multiplier=st.floats(1, 10),
    attempt=st.integers(0, 5000),
    previous=st.none() | st.floats(0, 2000),
    seed=st.integers(0, 2**32),
)
def test_every_delay_is_within_zero_and_the_cap(  # noqa: PLR0917 - hypothesis arguments
    kind: BackoffKind,
    jitter: Jitter,
    initial: float,
    extra: float,
    multiplier: float,
    attempt: int,
    previous: float | None,
    seed: int,
) -> None:
    """Whatever the curve, jitter and attempt, the wait lies in [0, max_seconds]."""
    cap = initial + extra
    backoff = Backoff(
        kind=kind, initial_seconds=initial, max_seconds=cap, multiplier=multiplier, jitter=jitter
    )
    delay = backoff.wait_seconds_for_attempt(attempt, previous=previous, rng=random.Random(seed))
    assert 0 <= delay <= cap
    if jitter is Jitter.DECORRELATED:
        assert initial <= delay


@settings(deadline=None)
@given(draw=st.floats(0, 1, exclude_max=True), attempt=st.integers(0, 200))
def test_full_jitter_maps_the_random_draw_onto_the_whole_range(draw: float, attempt: int) -> None:
    """Full jitter is draw * d: 0 gives 0, draws near 1 give d, nothing is clipped."""
    backoff = Backoff(initial_seconds=0.25, max_seconds=20.0)
    d = backoff.base_wait_seconds(attempt)
    assert backoff.wait_seconds_for_attempt(attempt, rng=ConstantRng(draw)) == d * draw


def test_full_jitter_covers_the_range_at_the_cap() -> None:
    """Seeded draws at the cap reach both ends of [0, cap], not a narrow band."""
    backoff = Backoff(initial_seconds=1.0, max_seconds=10.0)
    rng = random.Random(3)
    delays = [backoff.wait_seconds_for_attempt(60, rng=rng) for _ in range(1000)]
    assert min(delays) < 0.1
    assert max(delays) > 9.9


@pytest.mark.parametrize("jitter", [Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED])
def test_jitter_at_attempt_50_still_spreads(jitter: Jitter) -> None:
    """100 clients at attempt 50 (far past the cap) wait at least 90 different times."""
    backoff = Backoff(initial_seconds=0.1, max_seconds=5.0, jitter=jitter)
    rng = random.Random(50)
    delays = {backoff.wait_seconds_for_attempt(50, previous=5.0, rng=rng) for _ in range(100)}
    assert len(delays) >= 90


def test_equal_and_decorrelated_jitter_formulas() -> None:
    """Equal jitter keeps half the wait; decorrelated grows from the previous wait."""
    equal = Backoff(initial_seconds=1.0, max_seconds=8.0, jitter=Jitter.EQUAL)
    assert equal.wait_seconds_for_attempt(2, rng=ConstantRng(0.0)) == 2.0
    assert equal.wait_seconds_for_attempt(2, rng=ConstantRng(0.5)) == 3.0
    decorrelated = Backoff(initial_seconds=1.0, max_seconds=8.0, jitter=Jitter.DECORRELATED)
    top = ConstantRng(1.0)
    assert decorrelated.wait_seconds_for_attempt(0, rng=top) == 3.0  # uniform(1, 3 * 1)
    assert decorrelated.wait_seconds_for_attempt(0, previous=2.0, rng=top) == 6.0
    assert decorrelated.wait_seconds_for_attempt(3, rng=top) == 8.0  # 3 * 4 capped at 8
    assert decorrelated.wait_seconds_for_attempt(0, previous=0.0, rng=top) == 1.0


def test_decorrelated_jitter_feeds_back_the_wait_actually_used() -> None:
    """In a retry loop, decorrelated jitter grows from the previous sleep, not the curve."""
    clock = FakeClock()
    backoff = Backoff(initial_seconds=1.0, max_seconds=100.0, jitter=Jitter.DECORRELATED)
    fn = Flaky(*[DownError() for _ in range(4)])
    policy(clock, backoff=backoff, rng=ConstantRng(1.0), timeout=None)(fn)()
    assert clock.sleeps == [3.0, 9.0, 27.0, 81.0]


def test_default_rng_is_used_when_none_is_injected() -> None:
    """Without rng=, jitter draws from a shared random source and stays in range."""
    delays = {Backoff().wait_seconds_for_attempt(3) for _ in range(20)}
    assert all(0 <= d <= 0.8 for d in delays)
    assert len(delays) > 1


# --------------------------------------------------------------------------------------
# The hard deadline
# --------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.lists(st.booleans(), max_size=40),
    durations=st.lists(st.floats(0, 1), min_size=1, max_size=40),
    minimum=st.floats(0, 0.4),
    hints=st.lists(st.none() | st.floats(0.01, 1.5), min_size=1, max_size=10),
    jitter=st.sampled_from(Jitter),
    seed=st.integers(0, 2**32),
)
def test_a_one_second_deadline_never_overshoots(  # noqa: PLR0917 - hypothesis arguments
    pattern: list[bool],
    durations: list[float],
    minimum: float,
    hints: list[float | None],
    jitter: Jitter,
    seed: int,
) -> None:
    """No attempt starts with less than its minimum left; the call ends by 1.0 s exactly.

    Each attempt takes at least min_attempt_seconds and is cut at the deadline (as an
    operation given the remaining time as its own timeout is).
    """
    clock = FakeClock()
    starts: list[float] = []
    failures = itertools.chain(pattern, itertools.repeat(True))
    taken = itertools.cycle(durations)
    advice = itertools.cycle(hints)

    class BusyError(OSError):
        pass

    def attempt() -> str:
        starts.append(clock.now)
        clock.now = min(clock.now + max(next(taken), minimum), 1.0)
        if next(failures):
            error = BusyError()
            error.retry_after = next(advice)  # type: ignore[attr-defined]
            raise error
        return "done"

    backoff = Backoff(initial_seconds=0.05, max_seconds=0.6, jitter=jitter)
    p = policy(
        clock,
        attempts=None,  # only the deadline ends a run of failures
        timeout=1.0,
        min_attempt_seconds=minimum,
        backoff=backoff,
        rng=random.Random(seed),
    )
    reason = StopReason.SUCCESS
    try:
        p.call(attempt)
    except BusyError as exc:
        reason = exc.retry_stats.stop_reason  # type: ignore[attr-defined]
    assert reason in {StopReason.SUCCESS, StopReason.DEADLINE}
    assert clock.now <= 1.0
    assert all(start < 1.0 and start + minimum <= 1.0 for start in starts)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.lists(st.booleans(), max_size=40),
    durations=st.lists(st.floats(0, 2), min_size=1, max_size=40),
    jitter=st.sampled_from(Jitter),
    seed=st.integers(0, 2**32),
)
def test_attempts_that_honour_their_deadline_keep_the_call_within_it(
    pattern: list[bool], durations: list[float], jitter: Jitter, seed: int
) -> None:
    """Attempts of any length that stop at attempt.deadline: the block ends by 1.0 s."""
    clock = FakeClock()
    failures = itertools.chain(pattern, itertools.repeat(True))
    taken = itertools.cycle(durations)
    backoff = Backoff(initial_seconds=0.05, max_seconds=0.6, jitter=jitter)
    p = policy(clock, attempts=1000, timeout=1.0, backoff=backoff, rng=random.Random(seed))

    def body(attempt: Attempt) -> None:
        assert attempt.deadline == 1.0
        remaining = attempt.remaining
        assert remaining is not None
        assert remaining > 0
        clock.now = min(clock.now + next(taken), attempt.deadline)
        if next(failures) or clock.now == attempt.deadline:
            raise TimeoutError

    with contextlib.suppress(TimeoutError):
        run_block(p, body)
    assert clock.now <= 1.0


def test_backoff_sleeps_are_truncated_to_the_latest_useful_start() -> None:
    """With 0.2 s per attempt, a 0.6 s wait after 0.5 s shrinks to 0.3 s: start at 0.8 s."""
    clock = FakeClock()
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=0.6, max_seconds=0.6, jitter=Jitter.NONE
    )
    p = policy(clock, timeout=1.0, min_attempt_seconds=0.2, backoff=backoff, attempts=None)
    starts: list[float] = []

    def failure() -> None:
        starts.append(clock.now)
        clock.now += 0.2 if clock.now else 0.5
        raise DownError

    with pytest.raises(DownError) as info:
        p.call(failure)
    assert clock.sleeps == [pytest.approx(0.3)]  # truncated from 0.6
    assert starts == [0.0, pytest.approx(0.8)]
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]
    assert clock.now <= 1.0


def test_without_a_minimum_a_wait_that_reaches_the_deadline_stops_at_once() -> None:
    """min_attempt_seconds=0: no attempt starts at the deadline, so retry stops unslept."""
    clock = FakeClock()
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=2.0, max_seconds=2.0, jitter=Jitter.NONE
    )
    with pytest.raises(DownError) as info:
        policy(clock, timeout=1.0, backoff=backoff)(Flaky(DownError()))()
    assert clock.sleeps == []
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]


def test_a_hinted_wait_longer_than_the_time_left_stops_without_sleeping() -> None:
    """Retry-After 30 s with 1 s left: give up now instead of sleeping to fail."""
    clock = FakeClock()
    error = DownError("429")
    error.retry_after = 30  # type: ignore[attr-defined]
    with pytest.raises(DownError) as info:
        policy(clock, timeout=1.0)(Flaky(error))()
    assert clock.sleeps == []
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]


def test_a_sleep_that_overruns_ends_the_call_before_another_attempt() -> None:
    """A sleep that wakes past the deadline: no further attempt, the last error is raised."""
    clock = FakeClock()

    def oversleep(seconds: float) -> None:
        clock.now += seconds + 5.0

    fn = Flaky(DownError("first"), DownError("second"))
    p = Retrying(on=OSError, timeout=1.0, clock=clock, sleep=oversleep)
    with pytest.raises(OSError, match="first") as info:
        p.call(fn)
    assert fn.calls == 1
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]


def test_block_form_stops_when_a_sleep_overruns() -> None:
    """The block form raises the last error from the loop when the wait overran."""
    clock = FakeClock()

    def oversleep(seconds: float) -> None:
        clock.now += seconds + 5.0

    p = Retrying(on=OSError, timeout=1.0, clock=clock, sleep=oversleep)
    with pytest.raises(DownError, match="only"):
        run_block(p, raiser(DownError("only")))


def test_remaining_time_is_visible_to_each_attempt() -> None:
    """attempt.remaining counts down on the injected clock and never goes negative."""
    clock = FakeClock()
    seen: list[float | None] = []
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=0.25, max_seconds=0.25, jitter=Jitter.NONE
    )
    for attempt in policy(clock, timeout=2.0, backoff=backoff):
        with attempt:
            seen.append(attempt.remaining)
            clock.now += 0.5
            if attempt.number < 3:
                raise DownError
    assert seen == [2.0, 1.25, 0.5]
    clock.now = 10.0
    assert attempt.remaining == 0.0
    for attempt in policy(clock, timeout=None):
        with attempt:
            assert attempt.remaining is None
            assert attempt.deadline is None


# --------------------------------------------------------------------------------------
# Retry-After and delay hints
# --------------------------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("  7\t", 7.0),
        (b"0", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", 60.0),
        ("Wed Oct 21 07:28:00 2015", 60.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", 60.0),
        ("Tue, 20 Oct 2015 07:28:00 GMT", 0.0),
        ("9" * 400, math.inf),
    ],
)
def test_parse_retry_after_reads_both_forms(value: str | bytes, seconds: float) -> None:
    """delay-seconds and the three HTTP-date forms give seconds; the past gives 0."""
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_defaults_to_the_current_time() -> None:
    """Without now=, an HTTP-date is measured from the current UTC time."""
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    text = future.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 3500 < parse_retry_after(text) <= 3600


@pytest.mark.parametrize(
    "value", ["", "  ", "-1", "+5", "1.5", "soon", "Wed, 32 Oct 2015 07:28:00 GMT", b"\xff1", "١٢"]
)
def test_parse_retry_after_rejects_other_values_with_its_own_error(value: str | bytes) -> None:
    """Anything else is an InvalidRetryAfterError (a ValueError) carrying the value."""
    with pytest.raises(InvalidRetryAfterError) as info:
        parse_retry_after(value, now=NOW)
    assert info.value.value == value
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, RetryError)


def test_parse_retry_after_type_errors() -> None:
    """A non-text value or a naive now= is a TypeError naming the argument."""
    with pytest.raises(TypeError, match="value"):
        parse_retry_after(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="now"):
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=datetime(2015, 1, 1))


@settings(max_examples=500, deadline=None)
@given(
    value=st.text()
    | st.binary()
    | st.from_regex(
        r"\A[A-Za-z]{3}, [0-9 ]{1,3} [A-Za-z]{3} -?[0-9]{1,6} [0-9:]{1,9} [A-Z+\-0-9]{1,5}\Z"
    )
)
def test_parse_retry_after_fuzz(value: str | bytes) -> None:
    """Any text or bytes: seconds >= 0 out, or InvalidRetryAfterError, nothing else."""
    try:
        seconds = parse_retry_after(value, now=NOW)
    except InvalidRetryAfterError:
        return
    assert seconds >= 0


def test_exception_retry_after_attribute_sets_the_wait() -> None:
    """An exception carrying retry_after (seconds or header text) chooses the wait."""
    clock = FakeClock()
    first, second = DownError("429"), DownError("503")
    first.retry_after = 0.75  # type: ignore[attr-defined]
    second.retry_after = "2"  # type: ignore[attr-defined]
    assert policy(clock, timeout=10.0)(Flaky(first, second))() == "ok"
    assert clock.sleeps == [0.75, 2.0]


@pytest.mark.parametrize("hint", [-1, math.nan, "soon", object(), True])
def test_unusable_retry_after_falls_back_to_the_backoff(hint: object) -> None:
    """A negative, NaN, unreadable or foreign retry_after leaves the wait to the backoff."""
    clock = FakeClock()
    error = DownError()
    error.retry_after = hint  # type: ignore[attr-defined]
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=0.5, max_seconds=0.5, jitter=Jitter.NONE
    )
    policy(clock, backoff=backoff)(Flaky(error))()
    assert clock.sleeps == [0.5]


def test_delay_for_hook_chooses_the_wait_from_a_result() -> None:
    """delay_for sees the failed attempt (here a result) and picks the next wait."""
    clock = FakeClock()
    responses = iter([(503, "3"), (503, None), (200, None)])

    def hook(record: AttemptRecord) -> float | None:
        _status, header = record.result  # type: ignore[misc]
        return parse_retry_after(header) if header is not None else None

    p = policy(clock, on=(), on_result=lambda r: r[0] == 503, delay_for=hook)
    assert p.call(lambda: next(responses)) == (200, None)
    assert clock.sleeps[0] == 3.0
    assert len(clock.sleeps) == 2


def test_delay_for_can_stop_retrying() -> None:
    """A hook returning STOP ends retrying at once with the hook as the reason."""
    clock = FakeClock()
    fn = Flaky(DownError("fatal"), DownError())
    with pytest.raises(OSError, match="fatal") as info:
        policy(clock, delay_for=lambda r: STOP)(fn)()
    assert fn.calls == 1
    assert clock.sleeps == []
    assert info.value.retry_stats.stop_reason is StopReason.HOOK  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", [-0.5, math.nan, "1", True])
def test_delay_for_must_return_seconds(bad: object) -> None:
    """A hook returning a non-number or a negative is a ValueError naming delay_for."""
    clock = FakeClock()
    with pytest.raises(ValueError, match="delay_for") as info:
        policy(clock, delay_for=lambda r: bad)(Flaky(DownError("x")))()
    assert isinstance(info.value.__cause__, OSError)


class CircuitOpenError(RuntimeError):
    """A local stand-in for a circuit breaker's rejection: it carries .remaining."""

    def __init__(self, remaining: float) -> None:
        super().__init__(f"circuit open for {remaining} s")
        self.remaining = remaining


def test_breaker_rejection_is_classified_by_on_like_any_error() -> None:
    """By default a rejection carrying .remaining is not retried unless on= names it."""
    clock = FakeClock()
    fn = Flaky(CircuitOpenError(4.0))
    with pytest.raises(CircuitOpenError):
        policy(clock, on=ConnectionError)(fn)()
    assert fn.calls == 1
    assert clock.sleeps == []


def test_breaker_rejection_in_on_uses_the_backoff_not_remaining() -> None:
    """When on= includes the rejection, the backoff (not .remaining) picks the wait."""
    clock = FakeClock()
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=0.1, max_seconds=0.1, jitter=Jitter.NONE
    )
    policy(clock, on=(ConnectionError, CircuitOpenError), backoff=backoff)(
        Flaky(CircuitOpenError(4.0))
    )()
    assert clock.sleeps == [0.1]


def test_breaker_rejection_with_retry_after_is_waited_out_by_default() -> None:
    """A rejection exposing retry_after (as interlock's does) sets the wait without a hook."""

    class OpenError(CircuitOpenError):
        @property
        def retry_after(self) -> float:
            return self.remaining

    clock = FakeClock()
    p = policy(clock, on=OpenError, timeout=10.0)
    assert p.call(Flaky(OpenError(2.5))) == "ok"
    assert clock.sleeps == [2.5]
    fn = Flaky(OpenError(math.inf))  # forced open: an infinite wait stops retrying
    with pytest.raises(OpenError) as info:
        p.call(fn)
    assert info.value.retry_stats.stop_reason is StopReason.HOOK  # type: ignore[attr-defined]
    assert fn.calls == 1


def test_delay_from_attribute_waits_out_the_open_breaker() -> None:
    """delay_from_attribute('remaining') waits exactly what the rejection says is left."""
    clock = FakeClock()
    p = policy(
        clock, on=CircuitOpenError, delay_for=delay_from_attribute("remaining"), timeout=10.0
    )
    assert p.call(Flaky(CircuitOpenError(4.0), CircuitOpenError(1.5))) == "ok"
    assert clock.sleeps == [4.0, 1.5]
    with pytest.raises(ValueError, match="name"):
        delay_from_attribute("not a name")


def test_a_breaker_open_longer_than_the_deadline_fails_fast() -> None:
    """A rejection open for 60 s under a 2 s deadline is re-raised at once, unslept."""
    clock = FakeClock()
    p = policy(clock, on=CircuitOpenError, delay_for=delay_from_attribute("remaining"), timeout=2.0)
    with pytest.raises(CircuitOpenError) as info:
        p.call(Flaky(CircuitOpenError(60.0)))
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------
# Results and the RPA classifier
# --------------------------------------------------------------------------------------


def test_results_can_ask_for_a_retry() -> None:
    """on_result retries a returned value it rejects and returns the first it accepts."""
    clock = FakeClock()
    values = iter([None, None, 42])
    assert policy(clock, on=(), on_result=lambda v: v is None).call(lambda: next(values)) == 42
    assert len(clock.sleeps) == 2


def test_results_that_never_improve_raise_retry_exhausted() -> None:
    """When attempts run out on a rejected result, RetryExhaustedError carries it."""
    clock = FakeClock()
    with pytest.raises(RetryExhaustedError) as info:
        policy(clock, on=(), on_result=lambda v: v < 0, attempts=3).call(lambda: -7)
    assert info.value.last_result == -7
    assert info.value.attempts == 3
    assert info.value.stats.stop_reason is StopReason.ATTEMPTS
    assert "-7" in str(info.value)
    assert RetryExhausted is RetryExhaustedError


def test_rpa_error_codes_are_classified_by_sign() -> None:
    """0 success, negative system error (retried), positive business error (returned)."""
    clock = FakeClock()
    codes = iter([-3, -1, 0])
    p = policy(clock, on=(), on_result=is_rpa_system_error)
    assert p.call(lambda: next(codes)) == 0
    business = iter([-2, 5, 0])
    assert p.call(lambda: next(business)) == 5  # a business error is not retried

    class RobotError(Exception):
        def __init__(self, error_code: int) -> None:
            self.error_code = error_code

    assert is_rpa_system_error(RobotError(-10))
    assert not is_rpa_system_error(RobotError(10))
    assert not is_rpa_system_error(True)
    assert not is_rpa_system_error("-1")
    fn = Flaky(RobotError(-1), RobotError(7))
    with pytest.raises(RobotError):
        policy(clock, on=is_rpa_system_error)(fn)()
    assert fn.calls == 2


def test_results_in_the_block_form() -> None:
    """attempt.set_result offers a value to on_result; a rejected one is retried."""
    clock = FakeClock()
    values = iter(["", "", "data"])
    for attempt in policy(clock, on=(), on_result=lambda v: v == ""):
        with attempt:
            value = next(values)
            attempt.set_result(value)
    assert value == "data"
    assert attempt.number == 3
    with pytest.raises(RetryExhaustedError):
        run_block(
            policy(clock, on=(), on_result=lambda v: v == "", attempts=2),
            lambda attempt: attempt.set_result(""),
        )


# --------------------------------------------------------------------------------------
# The block form
# --------------------------------------------------------------------------------------


def test_block_form_retries_the_block_and_ends_after_success() -> None:
    """for/with runs the block until it succeeds, then the loop ends."""
    clock = FakeClock()
    numbers = []
    for attempt in policy(clock):
        with attempt:
            numbers.append(attempt.number)
            if attempt.number < 3:
                raise DownError
    assert numbers == [1, 2, 3]
    assert repr(attempt) == "<Attempt 3>"
    assert isinstance(attempt, Attempt)
    assert attempt.stats.stop_reason is StopReason.SUCCESS


def test_block_form_propagates_a_non_retryable_error() -> None:
    """An error on= does not match leaves the loop at once."""
    clock = FakeClock()
    body = Flaky(KeyError("x"))
    with pytest.raises(KeyError):
        run_block(policy(clock), body)
    assert body.calls == 1


def test_block_form_ends_after_an_error_caught_inside_the_loop() -> None:
    """An error caught inside the loop body, outside the with, ends the iteration."""
    clock = FakeClock()
    runs = 0
    for attempt in policy(clock):
        runs += 1
        with contextlib.suppress(KeyError), attempt:
            raise KeyError("x")
    assert runs == 1


def test_block_form_requires_with_attempt() -> None:
    """Skipping `with attempt:` or reusing an attempt is a RuntimeError, not a silent pass."""
    clock = FakeClock()
    with pytest.raises(RuntimeError, match="with attempt"):
        for _attempt in policy(clock):
            pass
    with pytest.raises(RuntimeError, match="already used"):
        run_block(policy(clock), lambda attempt: attempt.__exit__(None, None, None))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_block_form_never_retries_interrupts(interrupt: type[BaseException]) -> None:
    """KeyboardInterrupt inside the block leaves the loop after one attempt."""
    clock = FakeClock()
    body = Flaky(interrupt(), interrupt())
    runs = policy(clock, on=lambda e: True)
    with pytest.raises(interrupt):
        run_block(runs, body)
    assert body.calls == 1
    assert clock.sleeps == []


# --------------------------------------------------------------------------------------
# Retry budget
# --------------------------------------------------------------------------------------


def test_budget_bounds_retries_under_total_failure_and_later_calls_fail_fast() -> None:
    """100% failure: at most max_tokens/2 retries in total, then one unslept attempt each."""
    clock = FakeClock()
    budget = RetryBudget(max_tokens=10)
    fn = Flaky(*[DownError() for _ in range(1000)])
    wrapped = policy(clock, budget=budget, attempts=5, timeout=None)(fn)
    reasons = []
    for _ in range(50):
        with pytest.raises(DownError) as info:
            wrapped()
        reasons.append(info.value.retry_stats.stop_reason)  # type: ignore[attr-defined]
    assert fn.calls - 50 <= 5
    assert len(clock.sleeps) == fn.calls - 50
    assert reasons[-40:] == [StopReason.BUDGET] * 40
    sleeps_before = len(clock.sleeps)
    with pytest.raises(DownError):
        wrapped()
    assert len(clock.sleeps) == sleeps_before  # failed fast, without sleeping


def test_budget_is_shared_safely_by_threads() -> None:
    """8 threads failing together still make at most max_tokens/2 retries in total."""
    budget = RetryBudget(max_tokens=20, token_ratio=0.1)
    calls = itertools.count()
    barrier = threading.Barrier(8)
    sleeps = itertools.count()

    @retry(on=OSError, attempts=10, budget=budget, sleep=lambda s: next(sleeps), timeout=None)
    def down() -> None:
        next(calls)
        raise DownError

    def worker() -> None:
        barrier.wait()
        for _ in range(25):
            with pytest.raises(DownError):
                down()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    retries = next(calls) - 8 * 25
    assert 0 < retries <= 10
    assert next(sleeps) == retries
    assert budget.tokens == 0.0
    assert not budget.allows_retry


def test_budget_refills_with_successes() -> None:
    """Successes put tokens back, up to max_tokens, until retries are allowed again."""
    budget = RetryBudget(max_tokens=4, token_ratio=0.5)
    while budget.record_failure():
        pass
    assert not budget.allows_retry
    for _ in range(3):
        budget.record_success()
    assert budget.allows_retry
    for _ in range(20):
        budget.record_success()
    assert budget.tokens == 4.0
    assert "tokens=4.0" in repr(budget)


def test_successful_calls_through_a_budget_refill_it() -> None:
    """Each successful call (decorator, result check or async) puts tokens back."""
    clock = FakeClock()
    budget = RetryBudget(max_tokens=10, token_ratio=1)
    for _ in range(3):
        budget.record_failure()
    p = policy(clock, budget=budget)
    p(Flaky())()
    p.call(Flaky())
    asyncio.run(p(_async_value)())
    assert budget.tokens == 10.0


async def _async_value() -> str:
    return "v"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1001}, "max_tokens"),
        ({"token_ratio": 0}, "token_ratio"),
        ({"token_ratio": "1"}, "token_ratio"),
    ],
)
def test_budget_validates_its_configuration(kwargs: dict[str, Any], name: str) -> None:
    """Out-of-range budgets are refused, naming the argument."""
    with pytest.raises(ValueError, match=name):
        RetryBudget(**kwargs)


# --------------------------------------------------------------------------------------
# Testing mode
# --------------------------------------------------------------------------------------


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}")


def test_testing_mode_removes_sleeps_and_caps_attempts() -> None:
    """Inside testing(): no sleep is called and attempts stop at the cap."""
    fn = Flaky(*[DownError() for _ in range(10)])
    wrapped = retry(on=OSError, attempts=8, sleep=_never_sleep)(fn)
    with retry_testing(attempts=3), pytest.raises(DownError) as info:
        wrapped()
    assert fn.calls == 3
    assert info.value.retry_stats.slept_seconds == 0  # type: ignore[attr-defined]


def test_testing_mode_without_a_cap_keeps_the_policy_limit() -> None:
    """retry_testing(attempts=None) keeps each policy's own attempts, still without sleeping."""
    fn = Flaky(*[DownError() for _ in range(10)])
    with retry_testing(attempts=None), pytest.raises(DownError):
        retry(on=OSError, attempts=4, sleep=_never_sleep)(fn)()
    assert fn.calls == 4
    fn = Flaky(*[DownError() for _ in range(10)])
    with (
        retry_testing(attempts=6),
        pytest.raises(DownError),
    ):  # a cap above the limit changes nothing
        retry(on=OSError, attempts=2, sleep=_never_sleep)(fn)()
    assert fn.calls == 2


def test_testing_mode_nests_and_unwinds_in_any_order() -> None:
    """The innermost active block wins; leaving blocks out of order restores the other."""
    outer, inner = retry_testing(attempts=2), retry_testing(attempts=5)

    def attempts_made() -> int:
        fn = Flaky(*[DownError() for _ in range(10)])
        with pytest.raises(DownError):
            retry(on=OSError, attempts=9, sleep=_never_sleep)(fn)()
        return fn.calls

    outer.__enter__()
    inner.__enter__()
    assert attempts_made() == 5
    outer.__exit__(None, None, None)
    assert attempts_made() == 5
    inner.__exit__(None, None, None)
    fn = Flaky(DownError(), DownError())
    clock = FakeClock()
    policy(clock)(fn)()
    assert len(clock.sleeps) == 2  # outside testing mode, sleeps are back


def test_testing_mode_applies_to_threads_and_tasks_started_inside() -> None:
    """A thread and an asyncio task started in the block see testing mode too."""
    seen: list[int] = []
    barrier = threading.Barrier(2)

    def attempts_in_thread() -> None:
        barrier.wait()
        fn = Flaky(*[DownError() for _ in range(10)])
        with pytest.raises(DownError):
            retry(on=OSError, sleep=_never_sleep)(fn)()
        seen.append(fn.calls)

    async def attempts_in_task() -> int:
        fn = Flaky(*[DownError() for _ in range(10)])

        @retry(on=OSError, async_sleep=_async_never_sleep)
        async def call() -> object:
            return fn()

        with pytest.raises(DownError):
            await call()
        return fn.calls

    with retry_testing(attempts=2):
        thread = threading.Thread(target=attempts_in_thread)
        thread.start()
        barrier.wait()
        thread.join()
        assert asyncio.run(attempts_in_task()) == 2
    assert seen == [2]


async def _async_never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}")


def test_testing_mode_validates_attempts() -> None:
    """retry_testing(attempts=0) is refused."""
    with pytest.raises(ValueError, match="attempts"):
        retry_testing(attempts=0)


# --------------------------------------------------------------------------------------
# asyncio
# --------------------------------------------------------------------------------------


def test_async_functions_are_retried_with_the_async_sleep() -> None:
    """An async def function gets an async wrapper that awaits the injected sleep."""
    clock = FakeClock()
    fn = Flaky(DownError(), DownError())

    @policy(clock)
    async def call(x: int) -> object:
        return (fn(), x)

    assert asyncio.run(call(1)) == ("ok", 1)
    assert fn.calls == 3
    assert len(clock.sleeps) == 2


def test_async_exhaustion_and_results() -> None:
    """The async wrapper re-raises the original error and retries rejected results."""
    clock = FakeClock()
    error = DownError("last")

    @policy(clock, attempts=2)
    async def failing() -> None:
        raise error

    with pytest.raises(DownError) as info:
        asyncio.run(failing())
    assert info.value is error
    values = iter([None, 3])

    @policy(clock, on=(), on_result=lambda v: v is None)
    async def eventually() -> int | None:
        return next(values)

    assert asyncio.run(eventually()) == 3

    @policy(clock, on=(), on_result=lambda v: True, attempts=2)
    async def never() -> int:
        return 1

    with pytest.raises(RetryExhaustedError):
        asyncio.run(never())


def test_async_block_form_and_acall() -> None:
    """async for retries a block; acall and acall_with_stats retry a coroutine function."""
    clock = FakeClock()

    async def main() -> tuple[list[int], object, RetryStats]:
        numbers = []
        async for attempt in AsyncRetrying(
            on=OSError, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep
        ):
            with attempt:
                numbers.append(attempt.number)
                if attempt.number < 2:
                    raise DownError
        fn = Flaky(DownError())

        async def call() -> object:
            return fn()

        p = policy(clock)
        value = await p.acall(call)
        _, stats = await p.acall_with_stats(call)
        return numbers, value, stats

    numbers, value, stats = asyncio.run(main())
    assert numbers == [1, 2]
    assert value == "ok"
    assert stats.attempts == 1


def test_async_block_form_misuse_and_overrun() -> None:
    """async for also refuses a skipped `with` and stops when a wait overran."""
    clock = FakeClock()

    async def overslept(seconds: float) -> None:
        clock.now += seconds + 5

    async def main() -> None:
        with pytest.raises(RuntimeError, match="with attempt"):
            async for _attempt in policy(clock):
                pass
        runs = 0
        async for attempt in policy(clock):
            runs += 1
            with attempt:
                pass
        assert runs == 1
        p = Retrying(on=OSError, timeout=1.0, clock=clock, async_sleep=overslept)
        with pytest.raises(DownError, match="once"):
            await arun_block(p, raiser(DownError("once")))

    asyncio.run(main())


def test_default_async_sleep_is_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without async_sleep=, the async path awaits asyncio.sleep (looked up on use)."""
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    fn = Flaky(DownError())

    @retry(on=OSError, rng=ConstantRng(0.5))
    async def call() -> object:
        return fn()

    assert asyncio.run(call()) == "ok"
    assert waits == [0.05]


def test_cancellation_interrupts_the_backoff_sleep_at_once() -> None:
    """Cancelling a task during its backoff sleep raises CancelledError; no retry follows."""
    calls = 0

    async def main() -> None:
        nonlocal calls
        sleeping, never = asyncio.Event(), asyncio.Event()

        async def blocking_sleep(seconds: float) -> None:
            sleeping.set()
            await never.wait()

        @retry(on=Exception, async_sleep=blocking_sleep, timeout=None)
        async def down() -> None:
            nonlocal calls
            calls += 1
            raise DownError("down")

        task = asyncio.create_task(down())
        await sleeping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not never.is_set()

    asyncio.run(main())
    assert calls == 1


def test_cancelled_error_from_the_function_is_never_retried() -> None:
    """A CancelledError raised by the attempt itself passes through after one call."""
    calls = 0

    @retry(on=lambda e: True, async_sleep=_async_never_sleep)
    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await cancelled()

    asyncio.run(main())
    assert calls == 1


def test_importing_and_using_sync_retry_does_not_import_asyncio(
    fresh_python: Callable[[str], str],
) -> None:
    """Importing interlock.retry and retrying a sync function leaves asyncio unloaded."""
    code = (
        "import sys\n"
        "from interlock.retry import retry\n"
        "n = []\n"
        "@retry(on=OSError, sleep=n.append)\n"
        "def f():\n"
        "    n.append(0)\n"
        "    if len(n) < 3: raise OSError\n"
        "    return len(n)\n"
        "f()\n"
        "print('asyncio' in sys.modules)\n"
    )
    assert fresh_python(code) == "False"


# --------------------------------------------------------------------------------------
# Plain callables that return an awaitable
# --------------------------------------------------------------------------------------

APIS = ["decorator", "checked decorator", "call", "call_with_stats"]


def awaited_flaky(*errors: BaseException, value: object = "ok") -> tuple[Flaky, Any]:
    """A Flaky and an async def that calls it: the errors surface when awaited."""
    flaky = Flaky(*errors, value=value)

    async def body() -> object:
        return flaky()

    return flaky, body


def through(api: str, p: Retrying, fn: Callable[[], Any]) -> Any:
    """Call ``fn`` once through ``p`` by the sync API ``api``; what the caller gets back."""
    if api == "decorator":
        return p(fn)()
    if api == "checked decorator":
        return Retrying(on=p.on, on_result=lambda value: False, **_injected(p))(fn)()
    if api == "call":
        return p.call(fn)
    return _result_of(p.call_with_stats(fn))


def _injected(p: Retrying) -> dict[str, Any]:
    return {
        "clock": p.clock,
        "sleep": p.sleep,
        "async_sleep": p.async_sleep,
        "rng": p.rng,
        "budget": p.budget,
    }


async def _result_of(pending: Awaitable[tuple[Any, RetryStats]]) -> Any:
    result, _ = await pending
    return result


@pytest.mark.parametrize("api", APIS)
def test_failures_of_a_returned_awaitable_are_retried_with_the_async_sleep(
    awaitable_returning: Callable[..., Any], api: str
) -> None:
    """A plain callable whose awaitable fails is retried asynchronously, never blocking."""
    clock = FakeClock()
    flaky, body = awaited_flaky(DownError(), DownError())
    p = Retrying(
        on=OSError,
        clock=clock,
        sleep=_never_sleep,
        async_sleep=clock.async_sleep,
        rng=random.Random(7),
    )

    async def main() -> tuple[int, object]:
        pending = through(api, p, awaitable_returning(body))
        before = flaky.calls
        return before, await pending

    assert asyncio.run(main()) == (0, "ok")
    assert flaky.calls == 3
    assert len(clock.sleeps) == 2


async def _awaited(pending: Awaitable[Any]) -> Any:
    return await pending


def test_an_exhausted_returned_awaitable_reraises_its_last_error_with_history(
    awaitable_returning: Callable[..., Any],
) -> None:
    """The last awaited error is re-raised with the history of every attempt."""
    clock = FakeClock()
    last = DownError("last")
    flaky, body = awaited_flaky(DownError(), last)
    guarded = policy(clock, attempts=2)(awaitable_returning(body))

    async def main() -> None:
        await guarded()

    with pytest.raises(DownError) as info:
        asyncio.run(main())
    assert info.value is last
    assert info.value.retry_stats.attempts == 2  # type: ignore[attr-defined]
    assert flaky.calls == 2


@pytest.mark.parametrize("api", APIS)
def test_a_non_retryable_awaited_error_propagates_after_one_call(
    api: str, async_callable: Callable[..., Any]
) -> None:
    """An awaited error that `on=` does not select ends the call at once."""
    clock = FakeClock()
    flaky, body = awaited_flaky(ValueError("bad"))
    pending = through(api, policy(clock), async_callable(body))
    with pytest.raises(ValueError, match="bad"):
        asyncio.run(_awaited(pending))
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_on_result_judges_the_awaited_value_of_a_plain_callable(
    async_callable: Callable[..., Any],
) -> None:
    """A rejected awaited value is retried; the accepted one is returned."""
    clock = FakeClock()
    values = iter([None, None, 3])

    async def lookup() -> int | None:
        return next(values)

    guarded = policy(clock, on=(), on_result=lambda value: value is None)(async_callable(lookup))
    assert asyncio.run(_awaited(guarded())) == 3
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("api", APIS)
def test_cancelling_a_returned_awaitable_is_never_retried(
    awaitable_returning: Callable[..., Any], api: str
) -> None:
    """Cancelling the coroutine handed back ends the call: no retry, no sleep."""
    clock = FakeClock()
    calls = 0

    async def forever() -> None:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.ensure_future(through(api, policy(clock), awaitable_returning(forever)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert (calls, clock.sleeps) == (1, [])


def test_cancelling_during_the_async_backoff_of_a_plain_callable_stops_at_once(
    async_callable: Callable[..., Any],
) -> None:
    """A cancellation during the awaited backoff wait raises CancelledError; no retry."""
    flaky, body = awaited_flaky(DownError(), DownError())

    async def main() -> None:
        sleeping, never = asyncio.Event(), asyncio.Event()

        async def blocking_sleep(seconds: float) -> None:
            sleeping.set()
            await never.wait()

        guarded = retry(on=OSError, sleep=_never_sleep, async_sleep=blocking_sleep)(
            async_callable(body)
        )
        task = asyncio.ensure_future(guarded())
        await sleeping.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert flaky.calls == 1


@pytest.mark.parametrize("awaited_failures", [0, 1])
@pytest.mark.parametrize("api", APIS)
def test_a_call_that_first_fails_at_once_then_returns_an_awaitable_keeps_one_history(
    api: str, awaited_failures: int
) -> None:
    """A sync failure, then awaited attempts: one run, one deadline, one history."""
    clock = FakeClock()
    flaky, body = awaited_flaky(*[DownError() for _ in range(awaited_failures)])
    calls = 0

    def connect() -> Awaitable[object]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise DownError("refused")
        return body()  # type: ignore[no-any-return]

    p = policy(clock)
    if api == "call_with_stats":
        value, stats = asyncio.run(_awaited(p.call_with_stats(connect)))
        assert (stats.attempts, stats.stop_reason, len(stats.history)) == (
            2 + awaited_failures,
            StopReason.SUCCESS,
            1 + awaited_failures,
        )
    else:
        value = asyncio.run(_awaited(through(api, p, connect)))
    assert value == "ok"
    n = awaited_failures
    assert (calls, flaky.calls, len(clock.sleeps)) == (2 + n, 1 + n, 1 + n)


def test_a_plain_callable_exhausted_after_a_sync_failure_reports_every_attempt() -> None:
    """The history spans the sync attempt and the awaited ones."""
    clock = FakeClock()
    calls = 0

    async def down() -> None:
        raise DownError("awaited")

    def connect() -> Awaitable[None]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise DownError("refused")
        return down()

    with pytest.raises(DownError, match="awaited") as info:
        asyncio.run(_awaited(policy(clock, attempts=3).call(connect)))
    assert info.value.retry_stats.attempts == 3  # type: ignore[attr-defined]
    assert calls == 3


def test_call_with_stats_of_a_plain_callable_returns_result_and_stats_when_awaited(
    async_callable: Callable[..., Any],
) -> None:
    """call_with_stats hands back a coroutine giving (result, stats) for the whole call."""
    clock = FakeClock()
    _, body = awaited_flaky(DownError(), value="row")
    pending = policy(clock).call_with_stats(async_callable(body))
    value, stats = asyncio.run(_awaited(pending))
    assert value == "row"
    assert (stats.attempts, stats.stop_reason, len(stats.history)) == (2, StopReason.SUCCESS, 1)
    assert isinstance(stats.history[0].exception, DownError)


def test_awaited_successes_of_a_plain_callable_refill_the_budget(
    async_callable: Callable[..., Any],
) -> None:
    """A first-try awaited success puts a token back, as a sync success does."""
    clock = FakeClock()
    budget = RetryBudget(max_tokens=10, token_ratio=1)
    for _ in range(3):
        budget.record_failure()
    _, body = awaited_flaky()
    p = policy(clock, budget=budget)
    for api in ("checked decorator", "call", "call_with_stats"):
        assert asyncio.run(_awaited(through(api, p, async_callable(body)))) == "ok"
    assert budget.tokens == 10.0


@pytest.mark.parametrize("api", APIS)
def test_a_first_try_awaited_success_is_returned_without_sleeping(
    api: str, async_callable: Callable[..., Any]
) -> None:
    """An awaitable that succeeds at once gives its value; nothing sleeps or retries."""
    clock = FakeClock()
    flaky, body = awaited_flaky(value="row")
    assert asyncio.run(_awaited(through(api, policy(clock), async_callable(body)))) == "row"
    assert (flaky.calls, clock.sleeps) == (1, [])


def test_a_result_with_an_instance_level_await_attribute_is_returned_as_is() -> None:
    """Only a type's ``__await__`` makes a result awaitable."""

    class Odd:
        def __init__(self) -> None:
            self.__await__ = "not a method"

    result = policy(FakeClock())(Odd)()
    assert isinstance(result, Odd)


def test_retrying_a_plain_callable_returning_an_awaitable_leaves_asyncio_unimported(
    fresh_python: Callable[[str], str],
) -> None:
    """Detecting and awaiting a custom awaitable needs neither asyncio nor inspect."""
    code = (
        "import sys\n"
        "from interlock.retry import retry\n"
        "class Later:\n"
        "    def __await__(self):\n"
        "        return 'done'\n"
        "        yield\n"
        "pending = retry(on=OSError)(lambda: Later())()\n"
        "try:\n"
        "    pending.send(None)\n"
        "except StopIteration as stop:\n"
        "    print(stop.value, 'asyncio' in sys.modules)\n"
    )
    assert fresh_python(code) == "done False"


def test_async_decorator_succeeds_at_once_and_stops_when_a_sleep_overruns() -> None:
    """The async wrapper returns a first success as is, and never retries past a late wake."""
    clock = FakeClock()

    async def overslept(seconds: float) -> None:
        clock.now += seconds + 5

    fn = Flaky(DownError("first"))

    @retry(on=DownError, timeout=1.0, clock=clock, async_sleep=overslept)
    async def call() -> object:
        return fn()

    with pytest.raises(DownError, match="first"):
        asyncio.run(call())
    assert fn.calls == 1
    assert asyncio.run(call()) == "ok"


def test_block_forms_skip_sleeps_in_testing_mode() -> None:
    """Inside retry_testing(), the sync and async block forms retry without sleeping."""
    p = Retrying(on=DownError, sleep=_never_sleep, async_sleep=_async_never_sleep)
    with retry_testing(attempts=3):
        body = Flaky(DownError(), DownError())
        assert run_block(p, body).number == 3
        body = Flaky(DownError(), DownError())
        assert asyncio.run(arun_block(p, body)).number == 3


def test_leaving_a_testing_block_twice_is_harmless() -> None:
    """A second exit of the same block changes nothing (the other blocks stay active)."""
    outer, inner = retry_testing(attempts=2), retry_testing(attempts=3)
    with outer:
        inner.__enter__()
        inner.__exit__(None, None, None)
        inner.__exit__(None, None, None)
        fn = Flaky(*[DownError() for _ in range(5)])
        with pytest.raises(DownError):
            retry(on=DownError, sleep=_never_sleep)(fn)()
        assert fn.calls == 2


def test_call_with_stats_refills_the_budget_on_success() -> None:
    """A successful call_with_stats puts tokens back into the shared budget."""
    clock = FakeClock()
    budget = RetryBudget(max_tokens=10, token_ratio=1)
    budget.record_failure()
    policy(clock, budget=budget).call_with_stats(Flaky(DownError()))
    assert budget.tokens == 9.0  # one failure taken, one success returned


def test_an_attempt_after_a_shortened_wait_is_the_last() -> None:
    """After a wait cut short by the deadline, a failure ends retrying: no zero-wait loop."""
    clock = FakeClock()
    backoff = Backoff(
        kind=BackoffKind.FIXED, initial_seconds=0.6, max_seconds=0.6, jitter=Jitter.NONE
    )
    p = policy(clock, timeout=1.0, min_attempt_seconds=0.2, backoff=backoff, attempts=None)

    def quick_after_first() -> None:
        clock.now += 0.0 if clock.now else 0.5  # faster than its declared minimum
        raise DownError

    fn = Flaky()
    with pytest.raises(DownError) as info:
        p.call(lambda: (fn(), quick_after_first()))
    assert fn.calls == 2
    assert clock.now == pytest.approx(0.8)
    assert info.value.retry_stats.stop_reason is StopReason.DEADLINE  # type: ignore[attr-defined]


def test_decorated_function_with_a_result_check_retries_results_and_errors() -> None:
    """A decorated function with on_result retries rejected results and retryable errors."""
    clock = FakeClock()
    outcomes = iter([None, DownError("x"), 5])

    @policy(clock, on=DownError, on_result=lambda v: v is None)
    def fetch() -> int | None:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    assert fetch() == 5
    assert len(clock.sleeps) == 2
    assert fetch.__name__ == "fetch"
    assert policy(clock, on_result=lambda v: v is None)(Flaky(value=7))() == 7
    assert len(clock.sleeps) == 2  # an accepted first result: no retry

    budget = RetryBudget()
    budgeted = policy(clock, budget=budget)(Flaky(DownError()))
    assert budgeted() == "ok"
    assert budget.tokens == 9.1


def test_values_compare_hash_pickle_and_refuse_changes() -> None:
    """Backoff, AttemptRecord and RetryStats are immutable values, equal by their fields."""
    backoff = Backoff(initial_seconds=0.5, max_seconds=2.0, jitter=Jitter.EQUAL)
    record = AttemptRecord(1, 0.0, 0.25, None, "busy", 0.5)
    stats = RetryStats(2, 1.0, 0.5, StopReason.SUCCESS, (record,))
    for value in (backoff, record, stats):
        assert pickle.loads(pickle.dumps(value)) == value  # noqa: S301 - our own bytes
        assert hash(copy.copy(value)) == hash(value)
        assert value != object()
        with pytest.raises(AttributeError, match="immutable"):
            delattr(value, value._fields[0])
    assert backoff != Backoff(initial_seconds=0.5, max_seconds=2.0)
    assert repr(record) == (
        "AttemptRecord(number=1, offset_seconds=0.0, duration_seconds=0.25, exception=None,"
        " result='busy', delay_seconds=0.5)"
    )
    assert "attempt 1 at +0.000 s: result 'busy' after 0.250 s, then waited 0.500 s" in (
        record.describe()
    )


def test_methods_can_be_decorated() -> None:
    """A decorated method still binds self, sync and async alike."""
    clock = FakeClock()

    class Client:
        def __init__(self) -> None:
            self.flaky = Flaky(DownError(), value="sync")
            self.aflaky = Flaky(DownError(), value="async")

        @policy(clock)
        def get(self) -> object:
            return self.flaky()

        @policy(clock)
        async def aget(self) -> object:
            return self.aflaky()

    client = Client()
    assert client.get() == "sync"
    assert asyncio.run(client.aget()) == "async"
    assert len(clock.sleeps) == 2
