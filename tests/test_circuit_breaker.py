"""interlock.circuit_breaker: states, policies, concurrency, asyncio, listeners, stores."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import os
import pickle
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from interlock.circuit_breaker import (
    TRANSITIONS,
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
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
WAIT = 10.0  # seconds a barrier or event may wait before the test fails (never reached when green)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):  # noqa: N818 - a short name reads better in the scenarios
    """The failure the protected functions raise."""


def make(clock: FakeClock | None = None, **options: Any) -> CircuitBreaker:
    options.setdefault("failure_threshold", 2)
    options.setdefault("recovery_timeout", 10.0)
    return CircuitBreaker("dep", clock=clock or FakeClock(), **options)


def fail_times(breaker: CircuitBreaker, count: int, exc: BaseException | None = None) -> None:
    for _ in range(count):
        with pytest.raises(type(exc) if exc else Boom):
            breaker.execute(_raise, exc or Boom("down"))


def _raise(exc: BaseException) -> None:
    raise exc


def _ok() -> str:
    return "ok"


# --------------------------------------------------------------------------------------
# The basic state machine
# --------------------------------------------------------------------------------------


def test_consecutive_failures_open_and_the_tripping_call_reraises_its_own_exception() -> None:
    """The call that trips the breaker raises its own exception object; the next is rejected."""
    clock = FakeClock()
    breaker = make(clock)
    first, second = Boom("one"), Boom("two")
    with pytest.raises(Boom) as info:
        breaker.execute(_raise, first)
    assert info.value is first
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(Boom) as info:
        breaker.execute(_raise, second)
    assert info.value is second
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.execute(_ok)
    assert isinstance(rejected.value, RuntimeError)
    assert isinstance(rejected.value, CircuitBreakerError)
    assert rejected.value.name == "dep"
    assert rejected.value.remaining == 10.0
    assert rejected.value.retry_after == 10.0
    assert rejected.value.state is CircuitState.OPEN
    assert rejected.value.__cause__ is second


def test_remaining_counts_down_on_the_injected_clock() -> None:
    """CircuitOpenError.remaining is the open time left on the breaker's clock."""
    clock = FakeClock()
    breaker = make(clock)
    fail_times(breaker, 2)
    clock.advance(7.5)
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.execute(_ok)
    assert rejected.value.remaining == pytest.approx(2.5)


def test_a_success_resets_the_consecutive_count() -> None:
    """Failures separated by a success do not add up."""
    breaker = make()
    for _ in range(5):
        fail_times(breaker, 1)
        assert breaker.execute(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.metrics().failures == 5


def test_half_open_probe_success_closes_and_failure_reopens() -> None:
    """After the recovery timeout one probe decides: success closes, failure re-opens."""
    clock = FakeClock()
    breaker = make(clock)
    fail_times(breaker, 2)
    clock.advance(10.0)
    assert breaker.state is CircuitState.HALF_OPEN
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    clock.advance(10.0)
    assert breaker.execute(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    assert breaker.metrics().trips == 2


def test_success_threshold_needs_that_many_successful_probes() -> None:
    """success_threshold=3 keeps the breaker half-open until three probes succeed."""
    clock = FakeClock()
    breaker = make(clock, success_threshold=3)
    fail_times(breaker, 2)
    clock.advance(10.0)
    for expected in (CircuitState.HALF_OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED):
        breaker.execute(_ok)
        assert breaker.state is expected


def test_open_duration_grows_after_failed_probes_up_to_the_cap() -> None:
    """Each failed probe multiplies the open duration, capped; closing restores the base."""
    clock = FakeClock()
    breaker = make(clock, recovery_multiplier=2.0, max_recovery_timeout=50.0)
    fail_times(breaker, 2)
    durations = []
    for _ in range(4):
        durations.append(breaker.metrics().open_duration)
        clock.advance(durations[-1])
        fail_times(breaker, 1)  # the probe fails
    durations.append(breaker.metrics().open_duration)
    assert durations == [10.0, 20.0, 40.0, 50.0, 50.0]
    clock.advance(50.0)
    breaker.execute(_ok)
    fail_times(breaker, 2)
    assert breaker.metrics().open_duration == 10.0


def test_default_growth_cap_is_sixteen_times_the_recovery_timeout() -> None:
    """With a multiplier and no cap, the open duration stops at 16 x recovery_timeout."""
    assert make(recovery_multiplier=3.0).max_recovery_timeout == 160.0
    assert make().max_recovery_timeout == 10.0


def test_growth_never_overflows() -> None:
    """A thousand failed probes leave a finite open duration."""
    clock = FakeClock()
    breaker = make(clock, recovery_multiplier=10.0, max_recovery_timeout=1e300)
    fail_times(breaker, 2)
    for _ in range(1000):
        clock.advance(breaker.metrics().open_duration)
        fail_times(breaker, 1)
    assert math.isfinite(breaker.metrics().open_duration)


# --------------------------------------------------------------------------------------
# Half-open admission and concurrency (barriers, never sleeps)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_sixteen_threads_released_together_run_exactly_k_probes(k: int) -> None:
    """16 threads hitting a half-open breaker at once: exactly half_open_max_calls probes run."""
    clock = FakeClock()
    breaker = make(clock, half_open_max_calls=k)
    fail_times(breaker, 2)
    clock.advance(10.0)
    start = threading.Barrier(16, timeout=WAIT)
    everyone_tried = threading.Event()
    lock = threading.Lock()
    tried = [0]
    ran, rejected, errors = [], [], []

    def attempted() -> None:
        with lock:
            tried[0] += 1
            if tried[0] == 16:
                everyone_tried.set()

    @breaker.call
    def probe(index: int) -> int:
        ran.append(index)
        attempted()
        assert everyone_tried.wait(WAIT), "the other threads never finished trying"
        return index

    def worker(index: int) -> None:
        start.wait()
        try:
            probe(index)
        except CircuitOpenError as exc:
            rejected.append(exc)
            attempted()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert errors == []
    assert len(ran) == k
    assert len(rejected) == 16 - k
    assert all(exc.state is CircuitState.HALF_OPEN for exc in rejected)
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize(
    "options",
    [
        {},  # the lock-free fast path
        {"failure_rate_threshold": 0.5, "failure_threshold": None},  # the locked path
        {"listeners": [lambda event: None]},
    ],
    ids=["fast-path", "rate-policy", "with-listener"],
)
def test_eight_threads_are_inside_one_breakers_call_at_the_same_time(
    options: dict[str, Any],
) -> None:
    """No lock is held during the call: 8 threads meet at a Barrier(8) inside it."""
    breaker = make(**options)
    inside = threading.Barrier(8, timeout=WAIT)
    results: list[object] = []

    @breaker.call
    def protected() -> int:
        return inside.wait()  # raises BrokenBarrierError if fewer than 8 got in

    def worker() -> None:
        try:
            results.append(protected())
        except threading.BrokenBarrierError as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert sorted(results) == list(range(8))  # type: ignore[type-var]
    assert breaker.metrics().successes == 8


def test_a_probe_that_never_reports_reopens_after_the_probe_timeout() -> None:
    """A hung probe blocks others until probe_timeout; then the breaker re-opens."""
    clock = FakeClock()
    breaker = make(clock, probe_timeout=5.0, recovery_multiplier=2.0)
    fail_times(breaker, 2)
    clock.advance(10.0)
    hung = breaker.acquire()
    assert hung.probe
    clock.advance(3.0)
    with pytest.raises(CircuitOpenError) as busy:
        breaker.acquire()
    assert busy.value.state is CircuitState.HALF_OPEN
    assert busy.value.remaining == pytest.approx(2.0)
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as reopened:
        breaker.acquire()
    assert reopened.value.state is CircuitState.OPEN
    assert reopened.value.remaining == 20.0  # counted as a failed probe: the duration grew
    hung.success()  # the late report belongs to an old generation: dropped
    assert breaker.state is CircuitState.OPEN


def test_probe_timeout_defaults_to_the_recovery_timeout() -> None:
    """Without probe_timeout a probe may run for recovery_timeout seconds (60 if that is 0)."""
    assert make().probe_timeout == 10.0
    assert make(recovery_timeout=0).probe_timeout == 60.0


def test_a_late_outcome_from_an_old_generation_changes_nothing() -> None:
    """A permit issued before a reset or a trip cannot count against the new state."""
    clock = FakeClock()
    breaker = make(clock)
    old = breaker.acquire()
    fail_times(breaker, 2)
    clock.advance(10.0)
    breaker.execute(_ok)  # closed again, new generation
    old.failure(Boom("late"))
    other = breaker.acquire()
    breaker.reset()
    other.failure(Boom("late"))
    metrics = breaker.metrics()
    assert metrics.consecutive_failures == 0
    assert metrics.state is CircuitState.CLOSED
    assert metrics.failures == 2


def test_a_fast_path_success_that_ends_after_a_failure_resets_the_count() -> None:
    """A success finishing after another call's failure resets the consecutive count."""
    breaker = make(failure_threshold=2)
    entered, release = threading.Event(), threading.Event()

    @breaker.call
    def slow_success() -> str:
        entered.set()
        assert release.wait(WAIT)
        return "ok"

    thread = threading.Thread(target=slow_success)
    thread.start()
    assert entered.wait(WAIT)
    fail_times(breaker, 1)
    assert breaker.metrics().consecutive_failures == 1
    release.set()
    thread.join(WAIT)
    assert breaker.metrics().consecutive_failures == 0
    assert breaker.metrics().successes == 1
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.CLOSED


def test_an_awaited_success_that_ends_after_a_failure_resets_the_count() -> None:
    """The async fast path also resets the count when it succeeds after a failure."""
    breaker = make(failure_threshold=2)

    @breaker.call
    async def wait_for(event: asyncio.Event) -> str:
        await event.wait()
        return "ok"

    @breaker.call
    async def boom() -> None:
        raise Boom("down")

    async def main() -> None:
        release = asyncio.Event()
        task = asyncio.create_task(wait_for(release))
        await asyncio.sleep(0)
        with pytest.raises(Boom):
            await boom()
        assert breaker.metrics().consecutive_failures == 1
        release.set()
        assert await task == "ok"

    asyncio.run(main())
    assert breaker.metrics().consecutive_failures == 0


def test_the_locked_path_of_a_decorated_function_counts_outcomes() -> None:
    """With a rate policy, decorated sync and async calls go through permits."""
    breaker = make(failure_threshold=None, failure_rate_threshold=1.0, minimum_calls=2)

    @breaker.call
    def sync_boom() -> None:
        raise Boom("sync")

    @breaker.call
    async def async_ok() -> str:
        return "ok"

    async def ok() -> str:
        return "ok"

    with pytest.raises(Boom):
        sync_boom()
    assert asyncio.run(async_ok()) == "ok"
    assert asyncio.run(breaker.execute_async(ok)) == "ok"
    metrics = breaker.metrics()
    assert (metrics.failures, metrics.successes, metrics.window_calls) == (1, 2, 3)


def test_a_fast_path_failure_after_the_breaker_opened_is_not_counted() -> None:
    """A failure of a call admitted before the trip is stale once the breaker opened."""
    clock = FakeClock()
    breaker = make(clock, failure_threshold=1)
    entered, release = threading.Event(), threading.Event()

    @breaker.call
    def slow_failure() -> None:
        entered.set()
        assert release.wait(WAIT)
        raise Boom("late")

    errors: list[BaseException] = []

    def run() -> None:
        try:
            slow_failure()
        except Boom as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert entered.wait(WAIT)
    fail_times(breaker, 1)
    clock.advance(10.0)
    breaker.execute(_ok)  # probe closes: a new generation
    release.set()
    thread.join(WAIT)
    assert isinstance(errors[0], Boom)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.metrics().failures == 1


# --------------------------------------------------------------------------------------
# Outcomes: ignored BaseExceptions, exclusions, predicates
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), SystemExit(3), GeneratorExit()])
def test_base_exceptions_are_ignored_and_propagate(exc: BaseException) -> None:
    """KeyboardInterrupt, SystemExit, GeneratorExit: neither failure nor success, re-raised."""
    breaker = make(failure_threshold=1, expected_exceptions=BaseException)

    @breaker.call
    def interrupted() -> None:
        raise exc

    for _ in range(3):
        with pytest.raises(type(exc)):
            interrupted()
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.ignored) == (CircuitState.CLOSED, 0, 3)


def test_keyboard_interrupt_in_half_open_frees_the_probe_slot() -> None:
    """An interrupted probe releases its slot and leaves the breaker half-open."""
    clock = FakeClock()
    breaker = make(clock)
    fail_times(breaker, 2)
    clock.advance(10.0)
    with pytest.raises(KeyboardInterrupt):
        breaker.execute(_raise, KeyboardInterrupt())
    assert breaker.metrics().probes_in_flight == 0
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.execute(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_excluded_exceptions_neither_count_nor_reset() -> None:
    """fail, excluded, fail opens a threshold-2 breaker; excluded alone never does."""
    breaker = make(exclude=(KeyError,))
    fail_times(breaker, 1)
    for _ in range(5):
        fail_times(breaker, 1, KeyError("not found"))
    assert breaker.metrics().consecutive_failures == 1
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    assert breaker.metrics().ignored == 5


def test_exclude_accepts_a_predicate_and_a_single_class() -> None:
    """exclude and expected_exceptions take a class, a tuple or a predicate."""
    breaker = make(exclude=lambda exc: "ignore" in str(exc), expected_exceptions=Boom)
    fail_times(breaker, 3, Boom("please ignore"))
    fail_times(breaker, 3, ValueError("not expected"))
    assert breaker.state is CircuitState.CLOSED
    assert breaker.metrics().ignored == 6
    fail_times(breaker, 2)
    assert breaker.state is CircuitState.OPEN


def test_expected_exceptions_predicate_selects_failures() -> None:
    """A predicate on the exception decides what counts as a failure."""
    breaker = make(expected_exceptions=lambda exc: getattr(exc, "status", 0) >= 500)
    err = Boom("server")
    err.status = 503  # type: ignore[attr-defined]
    client = Boom("client")
    client.status = 404  # type: ignore[attr-defined]
    fail_times(breaker, 4, client)
    assert breaker.state is CircuitState.CLOSED
    fail_times(breaker, 2, err)
    assert breaker.state is CircuitState.OPEN


def test_failure_result_counts_a_returned_value_as_a_failure_but_returns_it() -> None:
    """A predicate on results: the value is returned and still counts as a failure."""
    breaker = make(failure_result=lambda result: result == 503)

    @breaker.call
    def status() -> int:
        return 503

    assert status() == 503
    assert status() == 503
    assert breaker.state is CircuitState.OPEN
    assert breaker.metrics().failures == 2


def test_failure_result_applies_to_awaited_results() -> None:
    """The result predicate also judges what an async def returns."""
    breaker = make(failure_result=lambda result: result is None)

    @breaker.call
    async def lookup(found: bool) -> str | None:
        return "row" if found else None

    async def main() -> list[str | None]:
        return [await lookup(True), await lookup(False), await lookup(False)]

    assert asyncio.run(main()) == ["row", None, None]
    assert breaker.state is CircuitState.OPEN
    assert (breaker.metrics().successes, breaker.metrics().failures) == (1, 2)


# --------------------------------------------------------------------------------------
# asyncio
# --------------------------------------------------------------------------------------


def test_five_awaited_failures_with_threshold_two_open_the_breaker() -> None:
    """Awaited failures count: 2 raise Boom, the 3 after the trip are rejected."""
    breaker = make(failure_threshold=2)
    calls = []

    @breaker.call
    async def fetch() -> None:
        calls.append(1)
        await asyncio.sleep(0)
        raise Boom("down")

    async def main() -> list[type[BaseException]]:
        outcomes = []
        for _ in range(5):
            try:
                await fetch()
            except (Boom, CircuitOpenError) as exc:  # noqa: PERF203 - one outcome per call
                outcomes.append(type(exc))
        return outcomes

    assert asyncio.run(main()) == [Boom, Boom] + [CircuitOpenError] * 3
    assert len(calls) == 2
    assert breaker.state is CircuitState.OPEN


def test_async_wrapper_returns_results_and_keeps_the_name() -> None:
    """The async wrapper is a coroutine function returning the wrapped result."""
    breaker = make()

    @breaker.call
    async def answer(x: int) -> int:
        """Doc."""
        await asyncio.sleep(0)
        return x * 2

    assert inspect.iscoroutinefunction(answer)
    assert answer.__name__ == "answer"
    assert answer.__doc__ == "Doc."
    assert asyncio.run(answer(21)) == 42


@pytest.mark.parametrize("fast", [True, False])
def test_a_cancelled_half_open_probe_frees_its_slot(fast: bool) -> None:
    """Cancelling the only probe frees its slot: the next caller becomes the probe."""
    clock = FakeClock()
    breaker = make(clock) if fast else make(clock, listeners=[lambda e: None])
    fail_times(breaker, 2)
    clock.advance(10.0)

    @breaker.call
    async def probe(block: bool) -> str:
        if block:
            await asyncio.Event().wait()
        return "ok"

    async def main() -> tuple[int, str, CircuitState]:
        task = asyncio.create_task(probe(block=True))
        await asyncio.sleep(0)  # the probe starts and blocks
        busy = breaker.metrics().probes_in_flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return busy, await probe(block=False), breaker.state

    assert asyncio.run(main()) == (1, "ok", CircuitState.CLOSED)
    assert breaker.metrics().ignored == 1


def test_a_cancelled_closed_call_is_ignored_on_the_fast_path() -> None:
    """Cancelling a call in CLOSED counts neither a failure nor a success."""
    breaker = make(failure_threshold=1)

    @breaker.call
    async def forever() -> None:
        await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(forever())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.ignored) == (CircuitState.CLOSED, 0, 1)


def test_execute_async_and_async_with() -> None:
    """execute_async awaits under the breaker; `async with breaker` records the block."""
    breaker = make()

    async def boom() -> None:
        raise Boom("down")

    async def main() -> None:
        with pytest.raises(Boom):
            await breaker.execute_async(boom)
        async with breaker:
            pass
        with pytest.raises(Boom):
            async with breaker:
                raise Boom("block")
        with pytest.raises(Boom):
            await breaker.execute_async(boom)
        with pytest.raises(CircuitOpenError):
            async with breaker:
                pass

    asyncio.run(main())
    assert breaker.metrics().successes == 1
    assert breaker.metrics().failures == 3


def test_importing_the_module_does_not_import_asyncio(fresh_python: Callable[[str], str]) -> None:
    """`import interlock.circuit_breaker` leaves asyncio (and inspect) unloaded."""
    code = (
        "import sys, interlock.circuit_breaker as m; "
        "m.CircuitBreaker('x').call(lambda: 1)(); print('asyncio' in sys.modules)"
    )
    assert fresh_python(code) == "False"


# --------------------------------------------------------------------------------------
# Plain callables that return an awaitable
# --------------------------------------------------------------------------------------


async def _boom() -> None:
    raise Boom("down")


async def _ok_async() -> str:
    return "ok"


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "locked path"])
def test_a_failure_is_recorded_when_the_returned_awaitable_fails(
    awaitable_returning: Callable[..., Any], fast: bool
) -> None:
    """The failure counts when the awaitable a plain callable returned raises, not before."""
    breaker = (
        make(failure_threshold=1)
        if fast
        else make(failure_threshold=1, listeners=[lambda event: None])
    )
    guarded = breaker.call(awaitable_returning(_boom))
    assert not inspect.iscoroutinefunction(guarded)

    async def main() -> CircuitState:
        pending = guarded()
        state = breaker.state
        with pytest.raises(Boom):
            await pending
        return state

    assert asyncio.run(main()) is CircuitState.CLOSED
    assert breaker.state is CircuitState.OPEN
    assert (breaker.metrics().failures, breaker.metrics().successes) == (1, 0)
    assert isinstance(breaker.last_failure, Boom)


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "locked path"])
def test_a_success_is_recorded_after_the_returned_awaitable_finishes(
    awaitable_returning: Callable[..., Any], fast: bool
) -> None:
    """The awaited value is returned and counted as a success only once it is produced."""
    breaker = make() if fast else make(listeners=[lambda event: None])
    guarded = breaker.call(awaitable_returning(_ok_async))

    async def main() -> tuple[int, str]:
        pending = guarded()
        before = breaker.metrics().successes
        return before, await pending

    assert asyncio.run(main()) == (0, "ok")
    assert breaker.metrics().successes == 1


def test_a_half_open_probe_is_held_until_the_returned_awaitable_finishes(
    async_callable: Callable[..., Any],
) -> None:
    """The probe slot stays taken while the awaitable runs: a second caller is rejected."""
    clock = FakeClock()
    breaker = make(clock)
    fail_times(breaker, 2)
    clock.advance(10.0)

    async def wait_then_ok(event: asyncio.Event) -> str:
        await event.wait()
        return "ok"

    guarded = breaker.call(async_callable(wait_then_ok))

    async def main() -> str:
        release = asyncio.Event()
        task = asyncio.ensure_future(guarded(release))
        await asyncio.sleep(0)
        assert breaker.metrics().probes_in_flight == 1
        with pytest.raises(CircuitOpenError):
            guarded(release)
        release.set()
        return await task  # type: ignore[no-any-return]

    assert asyncio.run(main()) == "ok"
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "locked path"])
def test_cancelling_the_returned_coroutine_frees_the_probe_slot(
    awaitable_returning: Callable[..., Any], fast: bool
) -> None:
    """A cancelled awaitable from a plain callable is ignored and its probe slot freed."""
    clock = FakeClock()
    breaker = make(clock) if fast else make(clock, listeners=[lambda event: None])
    fail_times(breaker, 2)
    clock.advance(10.0)

    async def forever() -> None:
        await asyncio.Event().wait()

    guarded = breaker.call(awaitable_returning(forever))

    async def main() -> int:
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        busy = breaker.metrics().probes_in_flight
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return busy

    assert asyncio.run(main()) == 1
    metrics = breaker.metrics()
    assert (metrics.probes_in_flight, metrics.ignored, metrics.failures) == (0, 1, 2)
    assert breaker.execute(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED


def test_cancelling_a_closed_call_from_a_plain_callable_is_ignored(
    awaitable_returning: Callable[..., Any],
) -> None:
    """On the fast path, a cancelled awaitable counts neither a failure nor a success."""
    breaker = make(failure_threshold=1)

    async def forever() -> None:
        await asyncio.Event().wait()

    guarded = breaker.call(awaitable_returning(forever))

    async def main() -> None:
        task = asyncio.ensure_future(guarded())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.successes, metrics.ignored) == (
        CircuitState.CLOSED,
        0,
        0,
        1,
    )


def test_an_awaited_success_from_a_plain_callable_after_a_failure_resets_the_count(
    async_callable: Callable[..., Any],
) -> None:
    """A fast-path awaitable that succeeds after another call failed still resets the count."""
    breaker = make(failure_threshold=2)

    async def wait_for(event: asyncio.Event) -> str:
        await event.wait()
        return "ok"

    guarded = breaker.call(async_callable(wait_for))

    async def main() -> None:
        release = asyncio.Event()
        task = asyncio.ensure_future(guarded(release))
        await asyncio.sleep(0)
        fail_times(breaker, 1)
        assert breaker.metrics().consecutive_failures == 1
        release.set()
        assert await task == "ok"

    asyncio.run(main())
    assert breaker.metrics().consecutive_failures == 0
    assert breaker.metrics().successes == 1


def test_failure_result_judges_the_awaited_value_of_a_plain_callable(
    async_callable: Callable[..., Any],
) -> None:
    """The result predicate sees the awaited value, not the awaitable."""
    breaker = make(failure_result=lambda result: result is None)

    async def lookup(found: bool) -> str | None:
        return "row" if found else None

    guarded = breaker.call(async_callable(lookup))

    async def main() -> list[str | None]:
        return [await guarded(True), await guarded(False), await guarded(False)]

    assert asyncio.run(main()) == ["row", None, None]
    assert breaker.state is CircuitState.OPEN
    assert (breaker.metrics().successes, breaker.metrics().failures) == (1, 2)


def test_execute_awaits_what_a_plain_callable_returns(
    awaitable_returning: Callable[..., Any],
) -> None:
    """execute() hands back a coroutine that records the awaited outcome."""
    breaker = make(failure_threshold=2)

    async def main() -> str:
        with pytest.raises(Boom):
            await breaker.execute(awaitable_returning(_boom))
        assert breaker.metrics().failures == 1
        return await breaker.execute(awaitable_returning(_ok_async))  # type: ignore[no-any-return]

    assert asyncio.run(main()) == "ok"
    assert (breaker.metrics().failures, breaker.metrics().successes) == (1, 1)
    assert breaker.metrics().consecutive_failures == 0


def test_a_plain_callable_returning_an_awaitable_leaves_asyncio_unimported(
    fresh_python: Callable[[str], str],
) -> None:
    """Detecting a returned awaitable needs neither asyncio nor inspect at call time."""
    code = (
        "import sys, interlock.circuit_breaker as m\n"
        "class Later:\n"
        "    def __await__(self):\n"
        "        return 'done'\n"
        "        yield\n"
        "pending = m.CircuitBreaker('x').call(lambda: Later())()\n"
        "try:\n"
        "    pending.send(None)\n"
        "except StopIteration as stop:\n"
        "    print(stop.value, 'asyncio' in sys.modules)\n"
    )
    assert fresh_python(code) == "done False"


# --------------------------------------------------------------------------------------
# Explicit and context-manager APIs
# --------------------------------------------------------------------------------------


def test_with_breaker_records_the_block_and_nests() -> None:
    """`with breaker:` counts the block; nested blocks each get their own permit."""
    breaker = make(failure_threshold=3)
    with breaker, breaker:
        pass
    with pytest.raises(Boom), breaker:
        raise Boom("x")
    assert breaker.metrics().successes == 2
    assert breaker.metrics().failures == 1


def test_with_breaker_in_threads_keeps_permits_apart() -> None:
    """Permits of `with breaker:` are per thread: two threads inside at once finish apart."""
    breaker = make(failure_threshold=5)
    both_inside = threading.Barrier(2, timeout=WAIT)
    errors: list[BaseException] = []

    def worker(fail: bool) -> None:
        try:
            with breaker:
                both_inside.wait()
                if fail:
                    _raise(Boom("x"))
        except Boom as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f,)) for f in (True, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert len(errors) == 1
    assert (breaker.metrics().successes, breaker.metrics().failures) == (1, 1)


def test_permit_reports_once_and_works_as_a_context_manager() -> None:
    """The first report of a permit counts; later ones do nothing."""
    breaker = make(failure_threshold=1)
    permit = breaker.acquire()
    assert isinstance(permit, Permit)
    assert not permit.probe
    permit.success()
    permit.failure(Boom("ignored, already reported"))
    permit.ignore()
    permit.record(Boom("again"))
    assert breaker.state is CircuitState.CLOSED
    with breaker.acquire() as inner:
        assert inner.generation == permit.generation
    with breaker.acquire() as inner:
        inner.ignore()
    assert breaker.metrics().successes == 2
    assert breaker.metrics().ignored == 1
    with pytest.raises(Boom), breaker.acquire():
        raise Boom("trip")
    assert breaker.state is CircuitState.OPEN


def test_permit_failure_without_an_exception_and_record_with_a_result() -> None:
    """failure() needs no exception; record(None, result) applies failure_result."""
    breaker = make(failure_threshold=2, failure_result=lambda r: r is None)
    breaker.acquire().failure()
    breaker.acquire().record(None, None)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.acquire()
    assert rejected.value.__cause__ is None


def test_decorator_keeps_metadata_and_rejects_non_callables() -> None:
    """`.call` wraps like functools.wraps and refuses what cannot be called."""
    breaker = make()

    @breaker.call
    def named(x: int) -> int:
        """Doc."""
        return x

    assert (named.__name__, named.__doc__, named(3)) == ("named", "Doc.", 3)
    with pytest.raises(TypeError, match="callable"):
        breaker.call(42)  # type: ignore[arg-type]


def test_peer_044_style_usage_keeps_working() -> None:
    """The 0.44 peer's spelling: name=, .call, .execute, stats(), reset(), retry_after."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        name="salesforce",
        failure_threshold=1,
        recovery_timeout=60,
        success_threshold=1,
        expected_exceptions=(ConnectionError,),
        clock=clock,
    )
    with pytest.raises(ConnectionError):
        breaker.execute(_raise, ConnectionError("x"))
    stats = breaker.stats()
    assert isinstance(stats, CircuitBreakerStats)
    assert stats.state is CircuitState.OPEN
    assert stats.failure_count == 0  # counting restarts in each state
    assert stats.success_count == 0
    assert CircuitState.HALF_OPEN.value == "half_open"
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.execute(_ok)
    assert rejected.value.retry_after == 60.0
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert CircuitOpenError("x", 1.5).retry_after == 1.5


# --------------------------------------------------------------------------------------
# Rate policies and slow calls
# --------------------------------------------------------------------------------------


def test_count_window_rate_trips_only_after_minimum_calls() -> None:
    """50% failures over the last 4 calls, judged once 4 calls are in the window."""
    breaker = make(
        failure_threshold=None, failure_rate_threshold=0.5, window_size=4, minimum_calls=4
    )
    fail_times(breaker, 1)
    breaker.execute(_ok)
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.CLOSED  # 2 of 3: not enough calls yet
    breaker.execute(_ok)  # 2 of 4 = 50%: a success does not trip
    assert breaker.state is CircuitState.CLOSED
    fail_times(breaker, 1)  # the window is now ok, fail, ok, fail: 50%
    assert breaker.state is CircuitState.OPEN
    metrics = breaker.metrics()
    assert (metrics.window_calls, metrics.failure_rate) == (0, None)


def test_rate_metrics_report_the_window() -> None:
    """metrics() reports the calls and failures in the window and their rate."""
    breaker = make(failure_threshold=None, failure_rate_threshold=1.0, window_size=10)
    fail_times(breaker, 1)
    for _ in range(3):
        breaker.execute(_ok)
    metrics = breaker.metrics()
    assert (metrics.window_calls, metrics.window_failures, metrics.failure_rate) == (4, 1, 0.25)


def test_time_window_forgets_calls_older_than_the_window() -> None:
    """A time window of 10 s counts only the calls of the last 10 whole seconds."""
    clock = FakeClock(100.0)
    breaker = make(
        clock,
        failure_threshold=None,
        failure_rate_threshold=0.6,
        window="time",
        window_size=10,
        minimum_calls=3,
    )
    fail_times(breaker, 2)
    clock.advance(10.0)  # those two are now out of the window
    breaker.execute(_ok)
    fail_times(breaker, 1)
    assert breaker.metrics().window_calls == 2
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN


def test_both_policies_trip_on_whichever_comes_first() -> None:
    """A consecutive threshold still trips when a rate policy is also set."""
    breaker = make(failure_threshold=3, failure_rate_threshold=0.9, minimum_calls=100)
    fail_times(breaker, 3)
    assert breaker.state is CircuitState.OPEN


def test_slow_successes_count_as_failures_for_the_rate() -> None:
    """Successful calls slower than slow_call_duration trip the rate policy."""
    clock = FakeClock()
    breaker = make(
        clock,
        failure_threshold=None,
        failure_rate_threshold=0.5,
        window_size=4,
        minimum_calls=2,
        slow_call_duration=2.0,
    )

    @breaker.call
    def call(duration: float) -> str:
        clock.advance(duration)
        return "ok"

    call(0.5)
    call(2.0)
    assert breaker.state is CircuitState.OPEN
    metrics = breaker.metrics()
    assert (metrics.slow_calls, metrics.successes, metrics.failures) == (1, 2, 0)


def _window_model(events: list[tuple[float, bool]], kind: str, size: int) -> tuple[int, int]:
    if kind == "count":
        kept = events[-size:]
    else:
        last = max(math.floor(t) for t, _ in events) if events else 0
        # a clock that steps back counts the call in the latest second seen so far
        kept = []
        latest = None
        for t, failed in events:
            second = math.floor(t)
            latest = second if latest is None else max(latest, second)
            kept.append((latest, failed))
        kept = [(s, f) for s, f in kept if s > last - size]  # type: ignore[misc]
    return len(kept), sum(1 for _, failed in kept if failed)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["count", "time"]),
    size=st.integers(1, 8),
    events=st.lists(st.tuples(st.floats(0, 5, allow_nan=False), st.booleans()), max_size=60),
)
def test_sliding_windows_match_a_naive_model(
    kind: str, size: int, events: list[tuple[float, bool]]
) -> None:
    """The O(1) windows hold exactly the calls a naive list-based window holds."""
    clock = FakeClock()
    breaker = make(
        clock,
        failure_threshold=None,
        failure_rate_threshold=1.0,
        window=kind,
        window_size=size,
        minimum_calls=1000,
    )
    seen: list[tuple[float, bool]] = []
    for step, failed in events:
        clock.advance(step)
        seen.append((clock.now, failed))
        if failed:
            fail_times(breaker, 1)
        else:
            breaker.execute(_ok)
    metrics = breaker.metrics()
    assert (metrics.window_calls, metrics.window_failures) == _window_model(seen, kind, size)


# --------------------------------------------------------------------------------------
# Control: force_open, disable, reset
# --------------------------------------------------------------------------------------


def test_force_open_rejects_with_infinite_remaining_until_reset() -> None:
    """FORCED_OPEN rejects every call, whatever the clock says, until reset()."""
    clock = FakeClock()
    breaker = make(clock)
    breaker.force_open()
    breaker.force_open()  # idempotent
    clock.advance(1e6)
    with pytest.raises(CircuitOpenError) as rejected:
        breaker.execute(_ok)
    assert rejected.value.remaining == math.inf
    assert rejected.value.state is CircuitState.FORCED_OPEN
    breaker.reset()
    assert breaker.execute(_ok) == "ok"


def test_disable_lets_everything_through_and_never_trips() -> None:
    """DISABLED passes every call and counts outcomes without tripping."""
    breaker = make(failure_threshold=1)
    breaker.disable()
    fail_times(breaker, 5)
    assert breaker.execute(_ok) == "ok"
    metrics = breaker.metrics()
    assert (metrics.state, metrics.failures, metrics.successes) == (CircuitState.DISABLED, 5, 1)
    breaker.force_open()
    assert breaker.state is CircuitState.FORCED_OPEN
    breaker.disable()
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED


def test_reset_from_open_closes_and_clears_the_last_failure() -> None:
    """reset() closes an open breaker and forgets its last failure."""
    breaker = make()
    fail_times(breaker, 2)
    assert breaker.last_failure is not None
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.last_failure is None
    assert breaker.metrics().consecutive_failures == 0


def test_reset_in_closed_clears_the_failure_count() -> None:
    """reset() while CLOSED zeroes the consecutive count (no state change event)."""
    events: list[CircuitBreakerEvent] = []
    breaker = make(listeners=[events.append])
    fail_times(breaker, 1)
    breaker.reset()
    fail_times(breaker, 1)
    assert breaker.state is CircuitState.CLOSED
    assert [e.kind for e in events] == ["failure", "failure"]


# --------------------------------------------------------------------------------------
# Listeners and metrics
# --------------------------------------------------------------------------------------


def test_listeners_see_every_outcome_and_state_change_in_order() -> None:
    """Events: failures, the trip, a rejection, half-open, a probe success, closing."""
    clock = FakeClock()
    events: list[CircuitBreakerEvent] = []
    breaker = make(clock, listeners=[events.append])
    fail_times(breaker, 2)
    with pytest.raises(CircuitOpenError):
        breaker.execute(_ok)
    clock.advance(10.0)
    breaker.execute(_ok)
    with pytest.raises(KeyboardInterrupt):
        breaker.execute(_raise, KeyboardInterrupt())
    summary = [(e.kind, e.previous_state, e.state) for e in events]
    assert summary == [
        ("failure", None, CircuitState.CLOSED),
        ("failure", None, CircuitState.CLOSED),
        ("state_change", CircuitState.CLOSED, CircuitState.OPEN),
        ("rejected", None, CircuitState.OPEN),
        ("state_change", CircuitState.OPEN, CircuitState.HALF_OPEN),
        ("success", None, CircuitState.HALF_OPEN),
        ("state_change", CircuitState.HALF_OPEN, CircuitState.CLOSED),
        ("ignored", None, CircuitState.CLOSED),
    ]
    assert isinstance(events[0].exception, Boom)
    assert isinstance(events[3].exception, CircuitOpenError)
    assert all(e.name == "dep" for e in events)


def test_a_raising_listener_changes_nothing_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A listener that raises is logged and counted; the breaker behaves as without it."""

    def bad(event: CircuitBreakerEvent) -> None:
        raise ValueError(event.kind)

    seen: list[str] = []
    breaker = make()
    breaker.add_listener(bad)
    breaker.add_listener(lambda e: seen.append(e.kind))
    with caplog.at_level(logging.ERROR, logger="interlock.circuit_breaker"):
        assert breaker.execute(_ok) == "ok"
        fail_times(breaker, 2)
    assert breaker.state is CircuitState.OPEN
    assert seen == ["success", "failure", "failure", "state_change"]
    assert breaker.metrics().listener_errors == 4
    assert "listener" in caplog.text
    breaker.remove_listener(bad)
    with pytest.raises(ValueError, match="x"):
        breaker.remove_listener(bad)
    with pytest.raises(TypeError, match="listener"):
        breaker.add_listener("not callable")  # type: ignore[arg-type]


def test_listeners_run_outside_the_lock() -> None:
    """A listener may call back into the breaker (it would deadlock under the lock)."""
    states: list[CircuitState] = []
    breaker = make()
    breaker.add_listener(lambda e: states.append(breaker.metrics().state))
    fail_times(breaker, 2)
    assert states[-1] is CircuitState.OPEN


def test_metrics_is_a_frozen_snapshot() -> None:
    """metrics() returns a frozen value that later calls do not change."""
    clock = FakeClock(5.0)
    breaker = make(clock)
    breaker.execute(_ok)
    snapshot = breaker.metrics()
    assert isinstance(snapshot, CircuitBreakerMetrics)
    fail_times(breaker, 2)
    assert snapshot.successes == 1
    assert snapshot.state is CircuitState.CLOSED
    with pytest.raises(AttributeError):
        snapshot.successes = 9  # type: ignore[misc]
    after = breaker.metrics()
    assert (after.trips, after.last_failure_time, after.last_state_change_time) == (1, 5.0, 5.0)
    assert after.open_remaining == 10.0
    assert after.generation == snapshot.generation + 1
    assert "dep" in repr(breaker)


# --------------------------------------------------------------------------------------
# Errors and configuration
# --------------------------------------------------------------------------------------


def test_errors_pickle_with_their_attributes() -> None:
    """CircuitOpenError and CircuitStoreError survive pickling (process pools, loggers)."""
    blob = pickle.dumps(CircuitOpenError("dep", 2.5, state=CircuitState.HALF_OPEN))
    error = pickle.loads(blob)  # noqa: S301 - our own bytes
    assert (error.name, error.remaining, error.state) == ("dep", 2.5, CircuitState.HALF_OPEN)
    store_error = pickle.loads(pickle.dumps(CircuitStoreError("dep", "locked")))  # noqa: S301
    assert (store_error.name, str(store_error)) == ("dep", "circuit 'dep': locked")


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"failure_threshold": 0}, ValueError, "failure_threshold"),
    ({"failure_threshold": True}, TypeError, "failure_threshold"),
    ({"failure_threshold": 2.0}, TypeError, "failure_threshold"),
    ({"recovery_timeout": -1}, ValueError, "recovery_timeout"),
    ({"recovery_timeout": math.nan}, ValueError, "recovery_timeout"),
    ({"recovery_timeout": "60"}, TypeError, "recovery_timeout"),
    ({"half_open_max_calls": 0}, ValueError, "half_open_max_calls"),
    ({"success_threshold": 0}, ValueError, "success_threshold"),
    ({"probe_timeout": 0}, ValueError, "probe_timeout"),
    ({"recovery_multiplier": 0.5}, ValueError, "recovery_multiplier"),
    ({"recovery_multiplier": math.inf}, ValueError, "recovery_multiplier"),
    ({"recovery_multiplier": "2"}, TypeError, "recovery_multiplier"),
    ({"max_recovery_timeout": 1.0}, ValueError, "max_recovery_timeout"),
    ({"failure_rate_threshold": 0}, ValueError, "failure_rate_threshold"),
    ({"failure_rate_threshold": 1.5}, ValueError, "failure_rate_threshold"),
    ({"failure_rate_threshold": "half"}, TypeError, "failure_rate_threshold"),
    ({"failure_threshold": None}, ValueError, "failure_threshold"),
    ({"window": "sliding"}, ValueError, "window"),
    ({"window_size": 0}, ValueError, "window_size"),
    ({"minimum_calls": 0}, ValueError, "minimum_calls"),
    ({"slow_call_duration": 1.0}, ValueError, "slow_call_duration"),
    (
        {"slow_call_duration": -1.0, "failure_rate_threshold": 0.5},
        ValueError,
        "slow_call_duration",
    ),
    ({"expected_exceptions": (int,)}, TypeError, "expected_exceptions"),
    ({"exclude": "KeyError"}, TypeError, "exclude"),
    ({"failure_result": 3}, TypeError, "failure_result"),
    ({"clock": 3}, TypeError, "clock"),
    ({"store": object()}, TypeError, "store"),
    ({"listeners": [1]}, TypeError, "listeners"),
]


@pytest.mark.parametrize(("options", "error", "argument"), BAD_OPTIONS)
def test_configuration_is_validated_naming_the_argument(
    options: dict[str, Any], error: type[Exception], argument: str
) -> None:
    """Bad configuration raises ValueError/TypeError naming the argument."""
    with pytest.raises(error, match=argument):
        make(**options)


@pytest.mark.parametrize("name", ["", None, 3])
def test_name_must_be_a_non_empty_string(name: object) -> None:
    """The name identifies the breaker everywhere, so it must be a real string."""
    with pytest.raises(TypeError, match="name"):
        CircuitBreaker(name)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------


def test_in_memory_store_shares_state_between_breakers_of_one_name() -> None:
    """Two breaker objects on one InMemoryBreakerStore trip and recover together."""
    clock = FakeClock()
    store = InMemoryBreakerStore()
    a = make(clock, store=store)
    b = make(clock, store=store)
    fail_times(a, 1)
    fail_times(b, 1)
    assert a.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        b.execute(_ok)
    clock.advance(10.0)
    probe = a.acquire()
    with pytest.raises(CircuitOpenError):
        b.acquire()  # the shared half-open slot is taken
    probe.success()
    assert b.state is CircuitState.CLOSED
    assert store.names() == ["dep"]


def test_store_events_reach_the_listeners_of_the_breaker_that_caused_them() -> None:
    """With a store, each breaker's listeners see the transitions its own calls made."""
    events: list[CircuitBreakerEvent] = []
    breaker = make(store=InMemoryBreakerStore(), listeners=[events.append])
    fail_times(breaker, 2)
    assert [e.kind for e in events] == ["failure", "failure", "state_change"]


def test_store_window_size_change_starts_a_new_window() -> None:
    """A process with a different window layout restarts the shared window, not crashes."""
    store = InMemoryBreakerStore()
    small = make(store=store, failure_threshold=None, failure_rate_threshold=1.0, window_size=3)
    fail_times(small, 1)
    large = make(store=store, failure_threshold=None, failure_rate_threshold=1.0, window_size=5)
    assert large.metrics().window_calls == 0
    timed = make(
        store=store,
        failure_threshold=None,
        failure_rate_threshold=1.0,
        window="time",
        window_size=5,
    )
    assert timed.metrics().window_calls == 0


@pytest.mark.parametrize(
    "record",
    [
        {"version": 99},
        {"version": 1, "state": "closed"},
        {"version": 1},
    ],
)
def test_a_malformed_store_record_raises_circuit_store_error(record: dict[str, Any]) -> None:
    """A record this module cannot read raises CircuitStoreError, not KeyError."""

    class Broken:
        def update(self, name: str, change: Callable[[Any], Any]) -> None:
            change(dict(record))

    breaker = make(store=Broken())
    with pytest.raises(CircuitStoreError) as info:
        breaker.acquire()
    assert info.value.name == "dep"


def test_a_full_record_with_a_bad_state_is_rejected() -> None:
    """An unknown state value in a record raises CircuitStoreError."""
    store = InMemoryBreakerStore()
    breaker = make(store=store)
    breaker.execute(_ok)
    store.update("dep", lambda record: {**record, "state": "melted"})
    with pytest.raises(CircuitStoreError, match="malformed"):
        breaker.execute(_ok)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def _valid_record(rate: bool) -> dict[str, Any]:
    store = InMemoryBreakerStore()
    options: dict[str, Any] = {"failure_rate_threshold": 0.5} if rate else {}
    breaker = make(store=store, half_open_max_calls=2, **options)
    fail_times(breaker, 1)
    breaker.execute(_ok)
    records: list[dict[str, Any]] = []
    store.update("dep", lambda record: records.append(record) or record)
    return records[0]


@settings(max_examples=300, deadline=None)
@given(
    rate=st.booleans(),
    field=st.sampled_from([*_valid_record(False), "missing"]),
    value=JSON,
    whole=st.one_of(st.none(), JSON),
)
def test_fuzzed_store_records_raise_only_circuit_store_error(
    rate: bool, field: str, value: object, whole: object
) -> None:
    """A corrupted shared record yields CircuitStoreError or a working breaker, nothing else."""
    record = _valid_record(rate) if whole is None else whole
    if whole is None:
        record[field] = value  # type: ignore[index]

    class Fixed:
        def update(self, name: str, change: Callable[[Any], Any]) -> None:
            change(record)

    options: dict[str, Any] = {"failure_rate_threshold": 0.5} if rate else {}
    breaker = make(store=Fixed(), half_open_max_calls=2, **options)
    for action in (breaker.acquire, breaker.metrics, lambda: breaker.execute(_ok)):
        with contextlib.suppress(CircuitStoreError, CircuitOpenError):
            action()


def test_sqlite_row_that_is_not_json_raises_circuit_store_error(tmp_path: Path) -> None:
    """A row someone overwrote with non-JSON text is reported, not a JSONDecodeError."""
    path = tmp_path / "b.db"
    store = SQLiteBreakerStore(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO interlock_circuit_breaker VALUES ('dep', '{not json')")
    conn.close()
    with pytest.raises(CircuitStoreError, match="not JSON"):
        make(store=store).execute(_ok)
    store.close()


def test_sqlite_store_persists_state_across_breaker_objects(tmp_path: Path) -> None:
    """State in an SQLite file survives a new store object (a restarted process)."""
    path = tmp_path / "breakers.db"
    clock = FakeClock()
    store = SQLiteBreakerStore(path)
    breaker = make(clock, store=store, failure_rate_threshold=0.5, minimum_calls=4)
    fail_times(breaker, 2)
    store.close()
    store.close()  # idempotent
    again = SQLiteBreakerStore(path, migrate=False)
    assert again.migrate() == 1  # idempotent
    other = make(clock, store=again)
    with pytest.raises(CircuitOpenError):
        other.execute(_ok)
    clock.advance(10.0)
    assert other.execute(_ok) == "ok"
    assert breaker.state is CircuitState.CLOSED
    with contextlib.closing(sqlite3.connect(path)) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert journal == "wal"
    again.close()


def test_sqlite_store_opens_a_new_connection_after_a_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store used in a forked child (another pid) opens its own connection."""
    store = SQLiteBreakerStore(tmp_path / "f.db")
    store.update("x", lambda record: {"n": 1})
    inherited = store._conn
    monkeypatch.setattr(os, "getpid", lambda: -1)
    seen: list[Any] = []
    store.update("x", lambda record: seen.append(record) or record)
    assert seen == [{"n": 1}]
    assert store._conn is not inherited
    monkeypatch.undo()
    assert inherited is not None
    inherited.close()
    store.close()


def test_sqlite_store_rolls_back_when_the_change_fails(tmp_path: Path) -> None:
    """A change that raises leaves the stored record as it was."""
    store = SQLiteBreakerStore(tmp_path / "b.db")
    store.update("x", lambda record: {"n": 1})

    def explode(record: Any) -> Any:
        raise Boom(record)

    with pytest.raises(Boom):
        store.update("x", explode)
    seen: list[Any] = []
    store.update("x", lambda record: seen.append(record) or record)
    assert seen == [{"n": 1}]
    store.close()


def test_sqlite_store_errors_become_circuit_store_errors(tmp_path: Path) -> None:
    """An unusable database file raises CircuitStoreError with the driver error as cause."""
    with pytest.raises(CircuitStoreError) as info:
        SQLiteBreakerStore(tmp_path)  # a directory is not a database
    assert isinstance(info.value.__cause__, sqlite3.Error)
    store = SQLiteBreakerStore(tmp_path / "later.db", migrate=False)
    with pytest.raises(CircuitStoreError) as info:
        store.update("dep", lambda record: {})  # the table was never created
    assert info.value.name == "dep"
    store.close()
    with pytest.raises(TypeError, match="path"):
        SQLiteBreakerStore(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        SQLiteBreakerStore(tmp_path / "x.db", timeout=-1)


def test_sqlite_migrate_rolls_back_a_failed_migration(tmp_path: Path) -> None:
    """A migration that fails half-way leaves none of its changes behind."""
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE interlock_circuit_breaker_schema (version INTEGER, extra TEXT NOT NULL)"
    )
    conn.commit()
    with pytest.raises(CircuitStoreError):
        SQLiteBreakerStore(path)
    rows = conn.execute("SELECT name FROM sqlite_master WHERE name = 'interlock_circuit_breaker'")
    assert rows.fetchall() == []
    conn.close()


CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from interlock.circuit_breaker import CircuitBreaker, CircuitOpenError, SQLiteBreakerStore
breaker = CircuitBreaker(
    "shared", failure_threshold=1, recovery_timeout=30.0,
    clock=lambda: 100.0, store=(store := SQLiteBreakerStore(sys.argv[1])),
)
print("ready", flush=True)
sys.stdin.readline()
try:
    permit = breaker.acquire()
    print("probe" if permit.probe else "closed", flush=True)
except CircuitOpenError:
    permit = None
    print("rejected", flush=True)
sys.stdin.readline()
if permit is not None:
    permit.success()
print(breaker.state.value, flush=True)
store.close()
"""


def test_four_processes_share_exactly_one_half_open_probe(tmp_path: Path) -> None:
    """Four processes released together on one SQLite file run one probe in total."""
    path = tmp_path / "shared.db"
    parent = CircuitBreaker(
        "shared",
        failure_threshold=1,
        recovery_timeout=30.0,
        clock=lambda: 0.0,
        store=(parent_store := SQLiteBreakerStore(path)),
    )
    with pytest.raises(Boom):
        parent.execute(_raise, Boom("down"))
    assert parent.state is CircuitState.OPEN
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(ROOT / "src")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        assert [c.stdout.readline().strip() for c in children] == ["ready"] * 4  # type: ignore[union-attr]
        for child in children:  # the barrier: nobody acquires before all are ready
            child.stdin.write("go\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
        answers = sorted(c.stdout.readline().strip() for c in children)  # type: ignore[union-attr]
        for child in children:
            child.stdin.write("finish\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
        finals = [c.stdout.readline().strip() for c in children]  # type: ignore[union-attr]
    finally:
        for child in children:
            child.stdin.close()  # type: ignore[union-attr]
            child.wait(WAIT)
            child.stdout.close()  # type: ignore[union-attr]
    assert answers == ["probe", "rejected", "rejected", "rejected"]
    assert "closed" in finals
    assert all(child.returncode == 0 for child in children)
    assert parent.metrics().state is CircuitState.CLOSED
    assert parent.metrics().rejected == 3
    parent_store.close()


# --------------------------------------------------------------------------------------
# The state machine against a model (hypothesis)
# --------------------------------------------------------------------------------------


class Model:
    """The breaker's rules, written plainly: consecutive policy, k probes, growth, timeouts."""

    def __init__(self, threshold: int, k: int, base: float, probe_timeout: float) -> None:
        self.threshold, self.k, self.base, self.probe_timeout = threshold, k, base, probe_timeout
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.duration = base
        self.probes: dict[int, float] = {}
        self.epoch = 0

    def enter(self, state: str, now: float) -> None:
        if state == "open":
            self.duration = (
                min(self.duration * 2, self.base * 8) if self.state == "half" else self.base
            )
            self.opened_at = now
        if state == "closed":
            self.duration = self.base
        self.state = state
        self.failures = 0
        self.probes = {}
        self.epoch += 1

    def tick(self, now: float) -> None:
        if self.state == "open" and now - self.opened_at >= self.duration:
            self.enter("half", now)
        if (
            self.state == "half"
            and self.probes
            and now - min(self.probes.values()) >= self.probe_timeout
        ):
            self.enter("open", now)

    def admit(self, ident: int, now: float) -> bool:
        self.tick(now)
        if self.state in ("closed", "disabled"):
            return True
        if self.state == "half" and len(self.probes) < self.k:
            self.probes[ident] = now
            return True
        return False

    def report(self, epoch: int, ident: int, outcome: str, now: float) -> None:
        if epoch != self.epoch:
            return
        self.probes.pop(ident, None)
        if outcome == "ignored" or self.state == "disabled":
            return
        if self.state == "half":
            self.enter("closed" if outcome == "success" else "open", now)
        elif outcome == "success":
            self.failures = 0
        else:
            self.failures += 1
            if self.failures >= self.threshold:
                self.enter("open", now)


NAMES = {
    "closed": CircuitState.CLOSED,
    "open": CircuitState.OPEN,
    "half": CircuitState.HALF_OPEN,
    "forced": CircuitState.FORCED_OPEN,
    "disabled": CircuitState.DISABLED,
}


class BreakerMachine(RuleBasedStateMachine):
    """Random call sequences, clock moves and controls: the breaker agrees with the model."""

    @initialize(
        threshold=st.integers(1, 3),
        k=st.integers(1, 3),
        shared=st.booleans(),
        listen=st.booleans(),
    )
    def setup(self, threshold: int, k: int, shared: bool, listen: bool) -> None:
        self.clock = FakeClock()
        self.changes: list[tuple[CircuitState | None, CircuitState]] = []
        self.breaker = CircuitBreaker(
            "model",
            failure_threshold=threshold,
            recovery_timeout=4.0,
            half_open_max_calls=k,
            probe_timeout=3.0,
            recovery_multiplier=2.0,
            max_recovery_timeout=32.0,
            clock=self.clock,
            store=InMemoryBreakerStore() if shared else None,
            listeners=[self.on_event] if listen else [],
        )
        self.model = Model(threshold, k, 4.0, 3.0)
        self.permits: list[tuple[Permit, int, int]] = []
        self.next_id = 0
        self.steps = 0

    def on_event(self, event: CircuitBreakerEvent) -> None:
        if event.kind == "state_change":
            self.changes.append((event.previous_state, event.state))

    @rule()
    def acquire(self) -> None:
        self.steps += 1
        ident = self.next_id
        self.next_id += 1
        admitted = self.model.admit(ident, self.clock.now)
        try:
            permit = self.breaker.acquire()
        except CircuitOpenError:
            assert not admitted
        else:
            assert admitted
            self.permits.append((permit, self.model.epoch, ident))

    @rule(outcome=st.sampled_from(["success", "failure", "failure", "ignored"]))
    def call(self, outcome: str) -> None:
        self.acquire()
        if self.permits and self.permits[-1][2] == self.next_id - 1:
            self.report(len(self.permits) - 1, outcome)

    @precondition(lambda self: self.permits)
    @rule(index=st.integers(0, 50), outcome=st.sampled_from(["success", "failure", "ignored"]))
    def report(self, index: int, outcome: str) -> None:
        permit, epoch, ident = self.permits.pop(index % len(self.permits))
        self.model.report(epoch, ident, outcome, self.clock.now)
        if outcome == "success":
            permit.success()
        elif outcome == "failure":
            permit.failure(Boom("x"))
        else:
            permit.ignore(KeyboardInterrupt())

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 4.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.steps += 1
        self.clock.advance(seconds)

    @precondition(lambda self: self.steps % 8 == 7)  # now and then, so trips happen
    @rule(control=st.sampled_from(["force_open", "disable", "reset"]))
    def control(self, control: str) -> None:
        self.model.tick(self.clock.now)
        target = {"force_open": "forced", "disable": "disabled", "reset": "closed"}[control]
        if target != self.model.state or target == "closed":
            if target == "closed" and self.model.state == "closed":
                self.model.failures = 0
                self.model.probes = {}
                self.model.epoch += 1
            else:
                self.model.enter(target, self.clock.now)
        self.steps += 1
        getattr(self.breaker, control)()

    @invariant()
    def agrees_with_the_model(self) -> None:
        self.model.tick(self.clock.now)
        metrics = self.breaker.metrics()
        assert metrics.state is NAMES[self.model.state]
        assert metrics.probes_in_flight == len(self.model.probes) <= self.model.k
        assert metrics.consecutive_failures == self.model.failures
        if self.model.state == "open":
            assert metrics.open_duration == self.model.duration

    @invariant()
    def every_transition_is_in_the_table(self) -> None:
        for source, target in self.changes:
            assert source is not None
            assert target in TRANSITIONS[source]


BreakerMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)
test_breaker_matches_the_model = BreakerMachine.TestCase
