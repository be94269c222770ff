"""interlock.saga: ordering, compensation, pivot, groups, timeouts, the durable log, resume."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Iterator

from interlock.saga import (
    SAGA_TRANSITIONS,
    SCHEMA_VERSION,
    STEP_TRANSITIONS,
    CompensateOnFailure,
    DuplicateStepError,
    InMemorySagaLog,
    InvalidTransitionError,
    RecordKind,
    RetryPolicy,
    SagaConflictError,
    SagaDeadlineError,
    SagaDefinitionError,
    SagaError,
    SagaOrchestrator,
    SagaRecord,
    SagaResult,
    SagaStatus,
    SagaStep,
    SQLSagaLog,
    StepContext,
    StepFailedError,
    StepStatus,
    StepTimeoutError,
    UnknownSagaError,
    _dialect_of,
    idempotency_key,
    inspect_saga,
)


def _vectors() -> Path:
    here = Path(__file__).resolve()
    for base in (here.parents[2], here.parents[1]):
        candidate = base / "shared" / "vectors" / "sagas"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/vectors/sagas")


SCENARIOS = json.loads((_vectors() / "compensation-order-scenarios.json").read_text("utf-8"))


class Clock:
    """A fake clock that tests advance by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Sleeps(list[float]):
    """An injected sleep that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Crash(BaseException):
    """A simulated process death (not an Exception: nothing in the saga may catch it)."""


class CrashingLog:
    """Wraps a log; raises Crash right after the k-th append is durable."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after, self.count = inner, after, 0

    def append(self, record: SagaRecord) -> None:
        self.inner.append(record)
        self.count += 1
        if self.count == self.after:
            raise Crash(self.count)

    def records(self, saga_id: str) -> list[SagaRecord]:
        return self.inner.records(saga_id)

    def pending(self, name: str | None = None) -> list[str]:
        return self.inner.pending(name)

    def stuck(self, name: str | None = None) -> list[str]:
        return self.inner.stuck(name)


def sqlite_conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of logs over one shared store: memory, SQLite file, or PostgreSQL."""
    opened: list[Any] = []
    memory = InMemorySagaLog()
    if request.param == "memory":

        def connect() -> Any:
            return None

    elif request.param == "sqlite":
        path = tmp_path / "saga.db"

        def connect() -> Any:
            opened.append(sqlite_conn(path))
            return opened[-1]

    else:
        pg = request.getfixturevalue("postgres")

        def connect() -> Any:
            opened.append(pg.connect())
            return opened[-1]

    def factory() -> Any:
        return memory if request.param == "memory" else SQLSagaLog(connect())

    if request.param != "memory":
        SQLSagaLog.migrate(connect())
    yield factory
    for conn in opened:
        conn.close()


class Shop:
    """Three recording services: what ran, with which idempotency key."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.keys: list[str] = []
        self.fail: set[str] = set()

    def action(self, name: str) -> Any:
        def run(ctx: StepContext) -> str:
            self.calls.append(name)
            self.keys.append(ctx.idempotency_key)
            if name in self.fail:
                raise ConnectionError(f"{name} down")
            return f"{name}-ok"

        return run

    def undo(self, name: str) -> Any:
        def run(ctx: StepContext) -> None:
            self.calls.append(f"undo-{name}")
            self.keys.append(ctx.idempotency_key)

        return run


def order_saga(shop: Shop, log: Any, **kwargs: Any) -> SagaOrchestrator:
    saga = SagaOrchestrator("order", log=log, pass_context=True, sleep=Sleeps(), **kwargs)
    for name in ("stock", "payment", "shipping"):
        saga.add_step(name, shop.action(name), shop.undo(name))
    return saga


# --------------------------------------------------------------------------------------
# The 0.44 API and its defects
# --------------------------------------------------------------------------------------


def test_seed_style_steps_are_called_without_arguments() -> None:
    """add_step(name, action, compensate) with zero-argument callables works as in 0.44."""
    saga = (
        SagaOrchestrator("s")
        .add_step("a", lambda: 1, lambda: None)
        .add_step("b", lambda: 2, lambda: None)
    )
    result = saga.execute()
    assert result.succeeded
    assert result.completed_steps == ["a", "b"]
    assert result.step_results == {"a": 1, "b": 2}
    assert (result.failed_step, result.error, result.compensated_steps) == (None, None, [])
    assert result.status is SagaStatus.COMPLETED


def test_failure_compensates_completed_steps_in_reverse_order() -> None:
    """A failing step makes the completed steps compensate in reverse; it is not compensated."""
    undone: list[str] = []
    saga = SagaOrchestrator("s")
    for name in ("a", "b"):
        saga.add_step(name, lambda: None, lambda n=name: undone.append(n))  # type: ignore[misc]
    saga.add_step("c", lambda: 1 / 0, lambda: undone.append("c"))
    result = saga.execute()
    assert undone == ["b", "a"]
    assert result.compensated_steps == ["b", "a"]
    assert result.failed_step == "c"
    assert isinstance(result.error, ZeroDivisionError)
    assert result.status is SagaStatus.COMPENSATED


def test_duplicate_step_names_are_refused_at_add_step() -> None:
    """Regression (0.44 compensated the wrong step): a repeated name raises ValueError."""
    saga = SagaOrchestrator("s").add_step("charge", lambda: 1, lambda: None)
    with pytest.raises(DuplicateStepError) as info:
        saga.add_step("charge", lambda: 2, lambda: None)
    assert isinstance(info.value, ValueError)
    assert info.value.name == "charge"
    with pytest.raises(DuplicateStepError):
        saga.add_parallel(SagaStep("x", lambda: 1), SagaStep("charge", lambda: 1))
    with pytest.raises(DuplicateStepError):
        saga.add_parallel(SagaStep("y", lambda: 1), SagaStep("y", lambda: 1))


def test_compensation_failures_are_reported_and_the_saga_is_stuck() -> None:
    """Regression (0.44 hid them): a compensation that keeps failing -> STUCK with every attempt."""
    sleeps = Sleeps()
    saga = SagaOrchestrator(
        "s", sleep=sleeps, compensation_retry=RetryPolicy(attempts=3, initial=0.5, multiplier=2)
    )

    def bad_undo() -> None:
        raise OSError("refund API down")

    saga.add_step("pay", lambda: "p", bad_undo)
    saga.add_step("ship", lambda: 1 / 0)
    result = saga.execute()
    assert result.status is SagaStatus.STUCK
    assert not result.succeeded
    assert [(f.step, f.attempt, type(f.error)) for f in result.compensation_failures] == [
        ("pay", 1, OSError),
        ("pay", 2, OSError),
        ("pay", 3, OSError),
    ]
    assert sleeps == [0.5, 1.0]
    assert result.stuck_reason is not None
    assert "pay" in result.stuck_reason
    assert "refund API down" in result.stuck_reason
    assert result.failed_step == "ship"
    assert isinstance(result.error, ZeroDivisionError)
    assert saga.stuck() == [result.saga_id]
    run = saga.inspect(result.saga_id)
    assert run.status is SagaStatus.STUCK
    assert run.steps[0].status is StepStatus.COMPENSATION_FAILED
    assert run.steps[0].compensation_error == "OSError: refund API down"


def test_a_compensation_that_recovers_on_retry_is_still_reported() -> None:
    """A failed attempt followed by a success: COMPENSATED, and the failure is in the result."""
    attempts: list[int] = []

    def flaky_undo(ctx: StepContext) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise OSError("blip")

    saga = SagaOrchestrator("s", pass_context=True, sleep=Sleeps())
    saga.add_step("a", lambda ctx: 1, flaky_undo).add_step("b", lambda ctx: 1 / 0)
    result = saga.execute()
    assert result.status is SagaStatus.COMPENSATED
    assert attempts == [1, 2]
    assert [f.attempt for f in result.compensation_failures] == [1]
    assert result.compensated_steps == ["a"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit])
def test_interrupt_during_a_step_leaves_the_saga_resumable(interrupt: type[BaseException]) -> None:
    """Regression (0.44 skipped compensation): interrupted step stays started; resume undoes."""
    undone: list[str] = []

    def boom() -> None:
        raise interrupt

    saga = SagaOrchestrator("s")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", boom, lambda: undone.append("b"))
    with pytest.raises(interrupt):
        saga.execute(saga_id="x")
    records = saga.log.records("x")
    assert [r.kind for r in records][-1] is RecordKind.STEP_STARTED
    assert records[-1].step == "b"
    assert saga.pending() == ["x"]
    result = saga.resume("x")
    assert result.status is SagaStatus.COMPENSATED
    assert undone == ["b", "a"]  # b's outcome is unknown: IF_UNCERTAIN compensates it
    assert saga.pending() == []


def test_interrupted_step_with_never_is_left_uncertain_and_reported() -> None:
    """compensate_on_failure=NEVER: an interrupted step is not compensated but is listed."""

    def boom() -> None:
        raise KeyboardInterrupt

    saga = SagaOrchestrator("s")
    saga.add_step("a", lambda: 1, lambda: None)
    saga.add_step("b", boom, lambda: None, compensate_on_failure="never")
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="x")
    result = saga.resume("x")
    assert result.status is SagaStatus.COMPENSATED
    assert result.compensated_steps == ["a"]
    assert result.uncertain_steps == ("b",)
    assert isinstance(result.error, StepFailedError)
    assert "outcome unknown" in str(result.error)


def test_an_interrupted_idempotent_step_is_rerun_with_the_same_key() -> None:
    """resume re-runs an idempotent step whose outcome is unknown, with the same key."""
    keys: list[str] = []
    first = [True]

    def charge(ctx: StepContext) -> str:
        keys.append(ctx.idempotency_key)
        if first.pop() if first else False:
            raise KeyboardInterrupt
        return "charged"

    saga = SagaOrchestrator("s", pass_context=True)
    saga.add_step("charge", charge, lambda ctx: None, idempotent=True)
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="x")
    result = saga.resume("x")
    assert result.succeeded
    assert keys == [idempotency_key("x", "charge")] * 2
    assert saga.inspect("x").steps[0].attempts == 2


def test_task_cancellation_during_an_async_step_leaves_the_saga_resumable() -> None:
    """Cancelling execute_async mid-step propagates; the step stays started; resume undoes."""
    undone: list[str] = []
    saga = SagaOrchestrator("s")

    async def main() -> None:
        entered = asyncio.Event()

        async def slow() -> None:
            entered.set()
            await asyncio.Event().wait()

        async def undo_a() -> None:
            undone.append("a")

        saga.add_step("a", lambda: 1, undo_a)
        saga.add_step("b", slow, lambda: undone.append("b"))
        task = asyncio.ensure_future(saga.execute_async(saga_id="x"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert saga.pending() == ["x"]
        result = await saga.resume_async("x")
        assert result.status is SagaStatus.COMPENSATED

    asyncio.run(main())
    assert undone == ["b", "a"]


# --------------------------------------------------------------------------------------
# Context, async, awaitables
# --------------------------------------------------------------------------------------


def test_context_carries_saga_id_earlier_results_and_deterministic_keys() -> None:
    """Steps see the saga id, earlier results and keys derived from (saga id, step)."""
    seen: list[StepContext] = []

    def step(ctx: StepContext) -> int:
        seen.append(ctx)
        return len(ctx.results)

    saga = SagaOrchestrator("s", pass_context=True).add_step("a", step).add_step("b", step)
    result = saga.execute(saga_id="order-7")
    assert result.step_results == {"a": 0, "b": 1}
    assert [c.saga_id for c in seen] == ["order-7", "order-7"]
    assert seen[1].idempotency_key == idempotency_key("order-7", "b")
    assert seen[1].idempotency_key == seen[1].idempotency_key  # cached
    assert idempotency_key("order-7", "b") != idempotency_key("order-8", "b")
    assert idempotency_key("order-7", "b") != idempotency_key("order-7", "b", compensate=True)
    assert "order-7" in repr(seen[0])
    assert seen[0].attempt == 1
    assert not seen[0].compensating
    with pytest.raises(TypeError):
        seen[1].results["x"] = 1  # type: ignore[index]


def test_async_steps_and_compensations_are_awaited() -> None:
    """execute_async awaits awaitable actions and compensations and runs sync ones inline."""
    undone: list[str] = []

    async def ok(ctx: StepContext) -> str:
        return ctx.step

    async def undo(ctx: StepContext) -> None:
        undone.append(ctx.step)

    async def bad(ctx: StepContext) -> None:
        raise ValueError("no")

    saga = SagaOrchestrator("s", pass_context=True)
    saga.add_step("a", ok, undo).add_step("b", lambda ctx: "sync", undo).add_step("c", bad, undo)
    result = asyncio.run(saga.execute_async())
    assert result.completed_steps == ["a", "b"]
    assert undone == ["b", "a"]
    assert isinstance(result.error, ValueError)


def test_sync_execute_refuses_an_async_step_without_leaking_a_coroutine() -> None:
    """An awaitable returned to execute() fails the step with TypeError; no warning leaks."""

    async def step() -> None:  # pragma: no cover - never awaited, by design
        return None

    saga = SagaOrchestrator("s").add_step("a", lambda: 1, lambda: None).add_step("b", step)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = saga.execute()
    assert isinstance(result.error, TypeError)
    assert "execute_async" in str(result.error)
    assert result.status is SagaStatus.COMPENSATED


# --------------------------------------------------------------------------------------
# Failed-step policy, pivot, groups, timeouts, deadline
# --------------------------------------------------------------------------------------


def test_always_compensates_the_failed_step_itself() -> None:
    """compensate_on_failure=ALWAYS runs the failed step's own compensation first."""
    undone: list[str] = []
    saga = SagaOrchestrator("s")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", lambda: 1 / 0, lambda: undone.append("b"), compensate_on_failure="always")
    assert saga.execute().compensated_steps == ["b", "a"]
    assert undone == ["b", "a"]


def test_a_step_raising_timeout_error_counts_as_uncertain() -> None:
    """A step's own TimeoutError means "may have taken effect": IF_UNCERTAIN compensates it."""

    def slow() -> None:
        raise TimeoutError("gateway timeout")

    saga = (
        SagaOrchestrator("s")
        .add_step("a", lambda: 1, lambda: None)
        .add_step("b", slow, lambda: None)
    )
    result = saga.execute()
    assert result.compensated_steps == ["b", "a"]


def test_failure_after_the_pivot_is_retried_forward_not_compensated() -> None:
    """After the pivot, a failing step is retried under forward_retry; nothing is undone."""
    tries: list[int] = []
    undone: list[str] = []
    sleeps = Sleeps()

    def ship(ctx: StepContext) -> str:
        tries.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("carrier down")
        return "shipped"

    saga = SagaOrchestrator(
        "s", pass_context=True, sleep=sleeps, forward_retry=RetryPolicy(attempts=3, initial=1.0)
    )
    saga.add_step("reserve", lambda ctx: 1, lambda ctx: undone.append("reserve"))
    saga.add_step("charge", lambda ctx: 2, pivot=True)
    saga.add_step("ship", ship)
    result = saga.execute()
    assert result.succeeded
    assert tries == [1, 2, 3]
    assert undone == []
    assert sleeps == [1.0, 2.0]


def test_forward_retries_exhausted_after_the_pivot_leave_the_saga_stuck() -> None:
    """A step after the pivot failing every attempt makes the saga STUCK, never compensated."""
    undone: list[str] = []

    def ship() -> None:
        raise ConnectionError("carrier down")

    saga = SagaOrchestrator("s", sleep=Sleeps(), forward_retry=RetryPolicy(attempts=2))
    saga.add_step("reserve", lambda: 1, lambda: undone.append("reserve"))
    saga.add_step("charge", lambda: 2, pivot=True)
    saga.add_step("ship", ship)
    result = saga.execute(saga_id="x")
    assert result.status is SagaStatus.STUCK
    assert undone == []
    assert result.failed_step == "ship"
    assert isinstance(result.error, ConnectionError)
    assert "failed 2 times" in (result.stuck_reason or "")
    # The carrier is back: an operator resumes and the saga completes.
    saga._steps[2] = SagaStep("ship", lambda: "ok")
    saga._units[2] = (saga._steps[2],)
    assert saga.resume("x").succeeded


def test_a_failing_pivot_compensates_the_steps_before_it() -> None:
    """The pivot is the go/no-go step: its certain failure compensates earlier steps."""
    undone: list[str] = []
    saga = SagaOrchestrator("s")
    saga.add_step("reserve", lambda: 1, lambda: undone.append("reserve"))
    saga.add_step("charge", lambda: 1 / 0, pivot=True)
    saga.add_step("ship", lambda: 3)
    assert saga.execute().status is SagaStatus.COMPENSATED
    assert undone == ["reserve"]


def test_an_uncertain_pivot_is_rerun_when_idempotent_and_stuck_otherwise() -> None:
    """A pivot with an unknown outcome is never compensated around: re-run or STUCK."""
    for idempotent, expected in ((True, SagaStatus.COMPLETED), (False, SagaStatus.STUCK)):
        calls: list[int] = []

        def charge(calls: list[int] = calls) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise TimeoutError("lost reply")
            return 2

        saga = SagaOrchestrator("s", sleep=Sleeps())
        saga.add_step("reserve", lambda: 1, lambda: None)
        saga.add_step("charge", charge, pivot=True, idempotent=idempotent)
        assert saga.execute().status is expected


def test_uncertain_non_idempotent_step_after_the_pivot_is_settled_by_an_operator() -> None:
    """STUCK on an unknown outcome after the pivot; settle() records the finding; resume ends."""

    def ship() -> None:
        raise TimeoutError("no answer")

    saga = SagaOrchestrator("s")
    saga.add_step("charge", lambda: 2, pivot=True).add_step("ship", ship).add_step(
        "mail", lambda: 3
    )
    result = saga.execute(saga_id="x")
    assert result.status is SagaStatus.STUCK
    assert "not idempotent" in (result.stuck_reason or "")
    saga.settle("x", "ship", result="SHIP-9")
    final = saga.resume("x")
    assert final.succeeded
    assert final.step_results["ship"] == "SHIP-9"
    with pytest.raises(InvalidTransitionError):
        saga.settle("x", "ship", result=1)


def test_settle_a_stuck_compensation_then_resume_finishes_compensating() -> None:
    """An operator fixes a refund by hand: settle(compensated=True) and resume completes."""

    def bad() -> None:
        raise OSError("down")

    saga = SagaOrchestrator("s", sleep=Sleeps(), compensation_retry=RetryPolicy(attempts=1))
    saga.add_step("a", lambda: 1, lambda: None).add_step("b", lambda: 1, bad).add_step(
        "c", lambda: 1 / 0
    )
    assert saga.execute(saga_id="x").status is SagaStatus.STUCK
    with pytest.raises(ValueError, match="step must be"):
        saga.settle("x", "nope", compensated=True)
    with pytest.raises(InvalidTransitionError):
        saga.settle("x", "a", result=None)
    saga.settle("x", "b", compensated=True)
    result = saga.resume("x")
    assert result.status is SagaStatus.COMPENSATED
    assert result.compensated_steps == ["b", "a"]


def test_settle_marks_a_pending_compensation_done() -> None:
    """settle(compensated=True) on a step that never started compensating records both records."""
    saga = SagaOrchestrator("s", sleep=Sleeps(), compensation_retry=RetryPolicy(attempts=1))

    def bad() -> None:
        raise OSError("down")

    saga.add_step("a", lambda: 1, lambda: None).add_step("b", lambda: 1, bad).add_step(
        "c", lambda: 1 / 0
    )
    saga.execute(saga_id="x")
    saga.settle("x", "a", compensated=True)
    saga.settle("x", "b", compensated=True)
    with pytest.raises(InvalidTransitionError):
        saga.settle("x", "a", compensated=True)
    assert saga.resume("x").compensated_steps == ["a", "b"]


def test_parallel_members_run_at_the_same_time_and_completed_ones_are_compensated() -> None:
    """A group runs in threads (a barrier proves it); one failing undoes the others and earlier."""
    barrier = threading.Barrier(3, timeout=10)
    undone: list[str] = []
    lock = threading.Lock()

    def member(name: str, fail: bool) -> Any:
        def run() -> str:
            barrier.wait()
            if fail:
                raise ConnectionError(name)
            return name

        return run

    def undo(name: str) -> Any:
        def run() -> None:
            with lock:
                undone.append(name)

        return run

    saga = SagaOrchestrator("s")
    saga.add_step("first", lambda: 0, undo("first"))
    saga.add_parallel(
        SagaStep("x", member("x", False), undo("x")),
        SagaStep("y", member("y", True), undo("y")),
        SagaStep("z", member("z", False), undo("z")),
    )
    result = saga.execute()
    assert result.failed_step == "y"
    assert undone == ["z", "x", "first"]
    assert result.completed_steps == ["first", "x", "z"]


def test_parallel_async_members_run_concurrently_with_gather() -> None:
    """An async group: each member waits for the other's event, so only concurrency finishes."""

    async def main() -> Any:
        a_ready, b_ready = asyncio.Event(), asyncio.Event()

        async def a() -> str:
            a_ready.set()
            await b_ready.wait()
            return "a"

        async def b() -> str:
            b_ready.set()
            await a_ready.wait()
            return "b"

        saga = SagaOrchestrator("s").add_parallel(SagaStep("a", a), SagaStep("b", b))
        return await asyncio.wait_for(saga.execute_async(), 10)

    assert asyncio.run(main()).step_results == {"a": "a", "b": "b"}


def test_interrupt_inside_a_parallel_member_propagates() -> None:
    """KeyboardInterrupt in a worker thread is re-raised in the orchestrating thread."""

    def boom() -> None:
        raise KeyboardInterrupt

    saga = SagaOrchestrator("s").add_parallel(SagaStep("a", lambda: 1), SagaStep("b", boom))
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="x")
    assert saga.pending() == ["x"]


def test_parallel_group_with_an_async_member_in_execute_fails_it_cleanly() -> None:
    """In execute(), a group member returning an awaitable fails with TypeError."""

    async def step() -> None:  # pragma: no cover - never awaited, by design
        return None

    saga = SagaOrchestrator("s").add_parallel(SagaStep("a", lambda: 1), SagaStep("b", step))
    result = saga.execute()
    assert isinstance(result.error, TypeError)
    assert result.status is SagaStatus.COMPENSATED


def test_a_sync_step_over_its_timeout_is_uncertain_and_compensated() -> None:
    """A blocked sync step times out in its worker thread: StepTimeoutError, compensated."""
    release = threading.Event()
    undone: list[str] = []

    saga = SagaOrchestrator("s")
    saga.add_step("a", lambda: 1, lambda: undone.append("a"))
    saga.add_step("b", release.wait, lambda: undone.append("b"), timeout=0.01)
    saga.add_step("c", lambda: 1, lambda: undone.append("c"), compensate_on_failure="never")
    try:
        result = saga.execute()
    finally:
        release.set()
    assert isinstance(result.error, StepTimeoutError)
    assert result.error.step == "b"
    assert result.error.timeout == 0.01
    assert undone == ["b", "a"]


def test_a_timed_step_that_finishes_in_time_succeeds() -> None:
    """A step with a timeout runs in a worker and its result comes back; failures too."""
    saga = SagaOrchestrator("s").add_step("a", lambda: 5, timeout=30)
    saga.add_step("b", lambda: 1 / 0, timeout=30)
    result = saga.execute()
    assert result.step_results == {"a": 5}
    assert isinstance(result.error, ZeroDivisionError)


def test_an_async_step_over_its_timeout_is_cancelled_and_uncertain() -> None:
    """execute_async bounds awaitable steps with asyncio.wait_for."""

    async def main() -> Any:
        async def hang() -> None:
            await asyncio.Event().wait()

        async def quick() -> int:
            return 1

        saga = SagaOrchestrator("s", sleep=Sleeps())
        saga.add_step("q", quick, timeout=5).add_step("a", hang, lambda: None, timeout=0.01)
        return await saga.execute_async()

    result = asyncio.run(main())
    assert isinstance(result.error, StepTimeoutError)
    assert result.compensated_steps == ["a"]


def test_the_deadline_stops_new_steps_and_compensates() -> None:
    """Past the saga deadline (injected clock) no step before the pivot starts; it compensates."""
    clock = Clock()
    undone: list[str] = []

    def slow() -> int:
        clock.now += 10
        return 1

    saga = SagaOrchestrator("s", clock=clock, deadline=5)
    saga.add_step("a", slow, lambda: undone.append("a")).add_step("b", lambda: 2, lambda: None)
    result = saga.execute()
    assert isinstance(result.error, SagaDeadlineError)
    assert result.failed_step is None
    assert undone == ["a"]
    assert result.error.deadline_at == 1005.0


def test_the_deadline_caps_a_step_timeout() -> None:
    """Before the pivot a step's timeout is at most the time left until the deadline."""
    release = threading.Event()
    saga = SagaOrchestrator("s", deadline=0.01).add_step("a", release.wait, lambda: None)
    try:
        result = saga.execute()
    finally:
        release.set()
    assert isinstance(result.error, StepTimeoutError)


def test_the_deadline_does_not_apply_after_the_pivot() -> None:
    """After the pivot the saga is committed: the deadline no longer stops steps."""
    clock = Clock()

    def pivot() -> int:
        clock.now += 100
        return 1

    saga = SagaOrchestrator("s", clock=clock, deadline=5)
    saga.add_step("a", lambda: 0, lambda: None).add_step("p", pivot, pivot=True)
    saga.add_step("after", lambda: 2)
    assert saga.execute().succeeded


# --------------------------------------------------------------------------------------
# The vectors: how engines differ, and what interlock does
# --------------------------------------------------------------------------------------

# For each engine in the vector file: interlock's setting for the failed step S3 that
# reproduces it, and the compensations interlock runs. Interlock always compensates in
# strict reverse order, one at a time (Temporal's parallel mode fires them together).
INTERLOCK_CHOICE = {
    "temporal-java-Saga (sequential, register after success)": ("never", ["C2", "C1"]),
    "temporal-java-Saga (parallel)": ("never", ["C2", "C1"]),
    "temporal pattern: register C3 BEFORE calling S3": ("always", ["C3", "C2", "C1"]),
    "eventuate-tram-sagas simple DSL": ("if_uncertain", ["C2", "C1"]),
    "saga_py 1.1.0": ("always", ["C3", "C2", "C1"]),
    "natsaga 0.2.0": ("never", ["C2", "C1"]),
    "celery-saga 0.1.1": ("if_uncertain", ["C2", "C1"]),
}


@pytest.mark.parametrize("outcome", SCENARIOS["outcomes"], ids=lambda o: o["anchor"])
def test_vector_compensation_order(outcome: dict[str, Any]) -> None:
    """Each engine's S1,S2 ok / S3 fails scenario, with interlock's per-step choice."""
    policy, expected = INTERLOCK_CHOICE[outcome["anchor"]]
    ran: list[str] = []
    saga = SagaOrchestrator("v")
    for i in (1, 2, 3, 4):
        fail = i == 3

        def action(fail: bool = fail) -> None:
            if fail:
                raise RuntimeError("S3 failed")

        saga.add_step(
            f"S{i}", action, lambda i=i, ran=ran: ran.append(f"C{i}"), compensate_on_failure=policy
        )  # type: ignore[misc]
    result = saga.execute()
    assert ran == expected
    assert [c.removeprefix("S") for c in result.compensated_steps] == [c[1:] for c in expected]
    engine_order = [c.split()[0] for c in outcome["compensations_run"]]
    if "parallel" not in outcome["anchor"]:
        assert engine_order == expected  # same set and order as the engine
    else:
        assert sorted(engine_order) == sorted(expected)  # same set; interlock is sequential


@pytest.mark.parametrize(
    "outcome",
    [o for o in SCENARIOS["outcomes"] if "on_compensation_error" in o],
    ids=lambda o: o["anchor"],
)
def test_vector_compensation_errors_are_never_lost(outcome: dict[str, Any]) -> None:
    """Where engines rethrow, swallow or fail, interlock retries, then STUCK with every error."""
    policy, _ = INTERLOCK_CHOICE[outcome["anchor"]]
    saga = SagaOrchestrator("v", sleep=Sleeps(), compensation_retry=RetryPolicy(attempts=2))

    def c2() -> None:
        raise OSError("C2 broken")

    saga.add_step("S1", lambda: 1, lambda: None).add_step("S2", lambda: 1, c2)
    saga.add_step("S3", lambda: 1 / 0, lambda: None, compensate_on_failure=policy)
    result = saga.execute()
    assert result.status is SagaStatus.STUCK
    assert len(result.compensation_failures) == 2
    assert "S1" not in result.compensated_steps  # reverse order holds: S1 waits for S2


def test_vector_timed_out_step_choice() -> None:
    """natsaga leaves a timed-out step alone (NEVER); interlock's default compensates it."""
    for policy, expected in (("never", ["C1"]), ("if_uncertain", ["C2", "C1"])):
        ran: list[str] = []

        def s2() -> None:
            raise StepTimeoutError("S2", 1.0)

        saga = SagaOrchestrator("v")
        saga.add_step("S1", lambda: 1, lambda ran=ran: ran.append("C1"))  # type: ignore[misc]
        saga.add_step(
            "S2",
            s2,
            lambda ran=ran: ran.append("C2"),  # type: ignore[misc]
            compensate_on_failure=policy,
        )
        saga.execute()
        assert ran == expected


def test_vector_target_semantics_are_the_ones_implemented() -> None:
    """The suggested semantics name the choices interlock offers."""
    target = SCENARIOS["target_semantics_suggestion"]
    assert {p.value for p in CompensateOnFailure} == {"never", "always", "if_uncertain"}
    assert "none | always | if_uncertain" in target["failed_step_compensation"]
    assert "STUCK" in target["compensation_failure"]
    assert SagaStatus.STUCK.value == "stuck"
    assert set(INTERLOCK_CHOICE) == {o["anchor"] for o in SCENARIOS["outcomes"]}


# --------------------------------------------------------------------------------------
# The durable log on every backend
# --------------------------------------------------------------------------------------


def test_every_transition_is_logged_in_order(make_log: Any) -> None:
    """A compensated run writes start, results, failure and compensation records in order."""
    shop, log = Shop(), make_log()
    shop.fail.add("shipping")
    result = order_saga(shop, log).execute(saga_id="o-1")
    kinds = [(r.kind.value, r.step) for r in make_log().records("o-1")]
    assert kinds == [
        ("saga_started", None),
        ("step_started", "stock"),
        ("step_succeeded", "stock"),
        ("step_started", "payment"),
        ("step_succeeded", "payment"),
        ("step_started", "shipping"),
        ("step_failed", "shipping"),
        ("saga_compensating", "shipping"),
        ("compensation_started", "payment"),
        ("compensation_succeeded", "payment"),
        ("compensation_started", "stock"),
        ("compensation_succeeded", "stock"),
        ("saga_compensated", None),
    ]
    assert result.compensated_steps == ["payment", "stock"]
    run = inspect_saga(make_log(), "o-1")
    assert run.status is SagaStatus.COMPENSATED
    assert run.name == "order"
    assert run.failed_step == "shipping"
    assert run.error == "ConnectionError: shipping down"
    assert run.started_at is not None
    assert run.finished_at is not None
    assert [s.status for s in run.steps] == [
        StepStatus.COMPENSATED,
        StepStatus.COMPENSATED,
        StepStatus.FAILED,
    ]
    assert run.steps[0].result == "stock-ok"
    assert len(run.history) == 13
    assert make_log().pending() == []
    assert make_log().stuck() == []


@pytest.mark.parametrize("scenario", ["success", "failure"])
def test_a_crash_after_every_record_resumes_without_running_anything_twice(
    make_log: Any, scenario: str
) -> None:
    """For every k, a crash right after the k-th durable record; resume ends the saga exactly."""
    shop0 = Shop()
    if scenario == "failure":
        shop0.fail.add("shipping")
    baseline = InMemorySagaLog()
    order_saga(shop0, baseline).execute(saga_id="probe")
    total = len(baseline.records("probe"))
    for k in range(1, total):
        shop = Shop()
        shop.fail = set(shop0.fail)
        saga_id = f"{scenario}-{k}"
        crashing = CrashingLog(make_log(), k)
        with pytest.raises(Crash):
            order_saga(shop, crashing).execute(saga_id=saga_id)
        log = make_log()
        assert saga_id in log.pending("order")
        result = order_saga(shop, log).resume(saga_id)
        last = baseline.records("probe")[k - 1].kind
        # A crash right after a step started leaves its outcome unknown: not idempotent,
        # so the saga compensates; after any other record a successful saga completes.
        if scenario == "success" and last is not RecordKind.STEP_STARTED:
            assert result.status is SagaStatus.COMPLETED
        else:
            assert result.status is SagaStatus.COMPENSATED
        # No action and no compensation ran twice: every idempotency key is used once,
        # except a step or compensation the crash left "started" (it was never called).
        assert len(shop.keys) == len(set(shop.keys)), (k, shop.calls)
        assert saga_id not in log.pending()
        assert inspect_saga(log, saga_id).status is result.status


def test_resume_refuses_an_unknown_saga_and_other_definitions(make_log: Any) -> None:
    """resume checks the id exists and that the steps re-registered match the log."""
    shop = Shop()
    saga = order_saga(shop, make_log())
    with pytest.raises(UnknownSagaError) as info:
        saga.resume("nope")
    assert isinstance(info.value, LookupError)
    assert info.value.saga_id == "nope"
    saga.execute(saga_id="o-1")
    other = SagaOrchestrator("order", log=make_log()).add_step("stock", lambda: 1)
    with pytest.raises(SagaDefinitionError):
        other.resume("o-1")
    assert saga.resume("o-1").succeeded  # finished: only reported, nothing runs
    assert shop.calls == ["stock", "payment", "shipping"]


def test_the_same_saga_id_cannot_run_twice(make_log: Any) -> None:
    """A second execute with an existing id, or a racing resume, gets SagaConflictError."""
    saga = order_saga(Shop(), make_log())
    saga.execute(saga_id="o-1")
    with pytest.raises(SagaConflictError) as info:
        order_saga(Shop(), make_log()).execute(saga_id="o-1")
    assert info.value.saga_id == "o-1"
    assert info.value.seq == 0


def test_results_round_trip_through_the_log(make_log: Any) -> None:
    """JSON results survive the log, and a resumed step sees them in ctx.results."""
    seen: dict[str, Any] = {}

    def second(ctx: StepContext) -> None:
        seen.update(ctx.results)
        raise KeyboardInterrupt

    saga = SagaOrchestrator("j", log=make_log(), pass_context=True)
    saga.add_step("first", lambda ctx: {"id": 7, "tags": ["a"]}, lambda ctx: None)
    saga.add_step("second", second, lambda ctx: None, idempotent=True)
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="j-1")
    resumed = SagaOrchestrator("j", log=make_log(), pass_context=True)
    resumed.add_step("first", lambda ctx: 1 / 0, lambda ctx: None)
    resumed.add_step("second", lambda ctx: dict(ctx.results), lambda ctx: None, idempotent=True)
    result = resumed.resume("j-1")
    assert result.step_results["second"] == {"first": {"id": 7, "tags": ["a"]}}
    assert seen == {"first": {"id": 7, "tags": ["a"]}}


def test_pending_lists_only_unfinished_runs_of_that_saga(make_log: Any) -> None:
    """pending() names RUNNING/COMPENSATING runs, filtered by saga name, oldest first."""
    clock = Clock()

    def boom() -> None:
        raise KeyboardInterrupt

    a = SagaOrchestrator("a", log=make_log(), clock=clock).add_step("x", boom, lambda: None)
    b = SagaOrchestrator("b", log=make_log(), clock=clock).add_step("x", boom, lambda: None)
    for saga, saga_id in ((a, "a-1"), (b, "b-1"), (a, "a-2")):
        clock.now += 1
        with pytest.raises(KeyboardInterrupt):
            saga.execute(saga_id=saga_id)
    assert a.pending() == ["a-1", "a-2"]
    assert make_log().pending() == ["a-1", "b-1", "a-2"]
    a.resume("a-1")
    assert a.pending() == ["a-2"]


def test_an_interrupted_compensation_is_run_again_on_resume(make_log: Any) -> None:
    """A compensation started but not finished is re-run (compensations are idempotent)."""
    calls: list[str] = []
    first = [True]

    def undo(ctx: StepContext) -> None:
        calls.append(ctx.idempotency_key)
        if first and first.pop():
            raise KeyboardInterrupt

    saga = SagaOrchestrator("c", log=make_log(), pass_context=True)
    saga.add_step("a", lambda ctx: 1, undo).add_step("b", lambda ctx: 1 / 0)
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="c-1")
    result = saga.resume("c-1")
    assert result.status is SagaStatus.COMPENSATED
    assert calls == [idempotency_key("c-1", "a", compensate=True)] * 2
    kinds = [r.kind for r in make_log().records("c-1")]
    assert kinds.count(RecordKind.COMPENSATION_FAILED) == 1  # "interrupted" is on record


def test_sql_log_migrate_is_idempotent_and_versioned(tmp_path: Path) -> None:
    """migrate() creates the tables once and records the schema version."""
    conn = sqlite_conn(tmp_path / "m.db")
    assert SQLSagaLog.migrate(conn) == SCHEMA_VERSION
    assert SQLSagaLog.migrate(conn) == SCHEMA_VERSION
    assert conn.execute("SELECT count(*) FROM interlock_saga_schema").fetchone() == (1,)


def test_sql_log_rolls_back_a_failed_append(tmp_path: Path) -> None:
    """A result that is not JSON fails the append, leaves nothing half-written."""
    conn = sqlite_conn(tmp_path / "r.db")
    SQLSagaLog.migrate(conn)
    saga = SagaOrchestrator("r", log=SQLSagaLog(conn)).add_step("a", object, lambda: None)
    with pytest.raises(TypeError):
        saga.execute(saga_id="r-1")
    assert [r.kind for r in saga.log.records("r-1")][-1] is RecordKind.STEP_STARTED
    assert saga.resume("r-1").status is SagaStatus.COMPENSATED


def test_migrate_rolls_back_on_error(tmp_path: Path) -> None:
    """A failing migration leaves no transaction open and re-raises."""
    conn = sqlite_conn(tmp_path / "x.db")
    conn.execute("CREATE TABLE interlock_saga_schema (other TEXT)")
    with pytest.raises(sqlite3.OperationalError):
        SQLSagaLog.migrate(conn)
    assert not conn.in_transaction


def test_in_memory_log_forgets_the_oldest_finished_runs() -> None:
    """keep_finished bounds memory: finished runs beyond it are dropped, unfinished kept."""
    log = InMemorySagaLog(keep_finished=1)
    saga = SagaOrchestrator("k", log=log).add_step("a", lambda: 1)
    saga.execute(saga_id="1")
    saga.execute(saga_id="2")
    assert log.records("1") == []
    assert len(log.records("2")) == 4
    with pytest.raises(ValueError, match="keep_finished"):
        InMemorySagaLog(keep_finished=-1)


# --------------------------------------------------------------------------------------
# State machines and replay
# --------------------------------------------------------------------------------------


def test_transition_tables_cover_every_state_and_terminal_states_are_final() -> None:
    """Every state has a row; COMPLETED, COMPENSATED and a compensated step go nowhere."""
    assert set(SAGA_TRANSITIONS) == set(SagaStatus)
    assert set(STEP_TRANSITIONS) == set(StepStatus)
    assert SAGA_TRANSITIONS[SagaStatus.COMPLETED] == frozenset()
    assert SAGA_TRANSITIONS[SagaStatus.COMPENSATED] == frozenset()
    assert STEP_TRANSITIONS[StepStatus.COMPENSATED] == frozenset()
    assert SagaStatus.COMPENSATING in SAGA_TRANSITIONS[SagaStatus.STUCK]


def test_a_corrupt_log_names_both_states_of_the_illegal_transition() -> None:
    """Replaying a success after a compensation raises InvalidTransitionError naming both."""
    log = InMemorySagaLog()
    saga = SagaOrchestrator("t", log=log).add_step("a", lambda: 1, lambda: None)
    saga.add_step("b", lambda: 1 / 0)
    saga.execute(saga_id="t")
    records = log.records("t")
    bad = InMemorySagaLog()
    for rec in records:
        bad.append(rec)
    bad.append(SagaRecord("t", len(records), RecordKind.STEP_SUCCEEDED, "a", 1))
    with pytest.raises(InvalidTransitionError) as info:
        inspect_saga(bad, "t")
    assert info.value.source is StepStatus.COMPENSATED
    assert info.value.target is StepStatus.SUCCEEDED
    assert "COMPENSATED -> SUCCEEDED" in str(info.value)


def test_replay_refuses_gaps_and_unknown_steps() -> None:
    """A missing sequence number or a step not in the definition is a SagaError."""

    class Raw(InMemorySagaLog):
        def records(self, saga_id: str) -> list[SagaRecord]:
            return [
                SagaRecord(saga_id, 1, RecordKind.SAGA_STARTED, data={"name": "n", "steps": []})
            ]

    with pytest.raises(SagaConflictError):
        inspect_saga(Raw(), "g")
    log = InMemorySagaLog()
    log.append(SagaRecord("u", 0, RecordKind.SAGA_STARTED, data={"name": "n", "steps": ["a"]}))
    log.append(SagaRecord("u", 1, RecordKind.STEP_STARTED, "zzz", 1))
    with pytest.raises(SagaDefinitionError):
        inspect_saga(log, "u")
    with pytest.raises(SagaConflictError):
        log.append(SagaRecord("u", 5, RecordKind.STEP_STARTED, "a", 1))


KINDS = list(RecordKind)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KINDS),
            st.sampled_from(["a", "b", None]),
            st.one_of(st.none(), st.fixed_dictionaries({"uncertain": st.booleans()})),
        ),
        max_size=12,
    )
)
def test_replaying_arbitrary_records_raises_only_saga_errors(
    rows: list[tuple[RecordKind, str | None, Any]],
) -> None:
    """Fuzz: any record sequence replays into a run or raises a SagaError, nothing else."""
    log = InMemorySagaLog()
    log.append(SagaRecord("f", 0, RecordKind.SAGA_STARTED, data={"name": "n", "steps": ["a", "b"]}))
    for seq, (kind, step, data) in enumerate(rows, start=1):
        meta = {"name": "n", "steps": ["a", "b"]} if kind is RecordKind.SAGA_STARTED else data
        log.append(SagaRecord("f", seq, kind, step, 1, 0.0, None, meta))
    try:
        run = inspect_saga(log, "f")
    except SagaError:
        return
    assert run.status in set(SagaStatus)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ok", "fail", "timeout"]), min_size=1, max_size=5), st.data())
def test_property_every_run_ends_completed_compensated_or_stuck(
    outcomes: list[str], data: st.DataObject
) -> None:
    """Any mix of step outcomes ends COMPLETED, or every completed step is compensated once."""
    undone: list[str] = []
    saga = SagaOrchestrator("p", sleep=Sleeps())
    for i, outcome in enumerate(outcomes):

        def action(outcome: str = outcome) -> int:
            if outcome == "fail":
                raise ValueError(outcome)
            if outcome == "timeout":
                raise TimeoutError(outcome)
            return 1

        policy = data.draw(st.sampled_from(list(CompensateOnFailure)))
        saga.add_step(
            f"s{i}", action, lambda i=i: undone.append(f"s{i}"), compensate_on_failure=policy
        )  # type: ignore[misc]
    result = saga.execute()
    if all(o == "ok" for o in outcomes):
        assert result.status is SagaStatus.COMPLETED
        assert undone == []
    else:
        assert result.status is SagaStatus.COMPENSATED
        assert len(undone) == len(set(undone))
        assert set(result.completed_steps) <= set(undone)
        assert undone == sorted(undone, reverse=True)


# --------------------------------------------------------------------------------------
# Configuration and the DB-API adapter
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "word"),
    [
        ({"name": ""}, ValueError, "name"),
        ({"compensation_retry": 3}, TypeError, "compensation_retry"),
        ({"forward_retry": "x"}, TypeError, "forward_retry"),
        ({"deadline": 0}, ValueError, "deadline"),
        ({"deadline": float("inf")}, ValueError, "deadline"),
        ({"clock": 5}, TypeError, "clock"),
        ({"sleep": 5}, TypeError, "sleep"),
    ],
)
def test_orchestrator_configuration_is_validated(
    kwargs: dict[str, Any], exc: type, word: str
) -> None:
    """Bad constructor arguments raise ValueError/TypeError naming the argument."""
    args = {"name": "s", **kwargs}
    name = args.pop("name")
    with pytest.raises(exc, match=word):
        SagaOrchestrator(name, **args)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "word"),
    [
        (("", print), {}, ValueError, "name"),
        (("a", 5), {}, TypeError, "action"),
        (("a", print, 5), {}, TypeError, "compensate"),
        (("a", print), {"compensate_on_failure": "sometimes"}, ValueError, "compensate_on_failure"),
        (("a", print), {"timeout": -1}, ValueError, "timeout"),
        (("a", print, print), {"pivot": True}, ValueError, "pivot"),
    ],
)
def test_add_step_arguments_are_validated(
    args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, word: str
) -> None:
    """add_step rejects bad names, callables, policies and timeouts by name."""
    with pytest.raises(exc, match=word):
        SagaOrchestrator("s").add_step(*args, **kwargs)


def test_pivot_rules_are_enforced_at_definition() -> None:
    """One pivot; no compensation at or after it; never inside a parallel group."""
    saga = SagaOrchestrator("s").add_step("p", print, pivot=True)
    with pytest.raises(ValueError, match="already has a pivot"):
        saga.add_step("q", print, pivot=True)
    with pytest.raises(ValueError, match="not compensated"):
        saga.add_step("r", print, print)
    with pytest.raises(ValueError, match="pivot cannot"):
        SagaOrchestrator("s").add_parallel(SagaStep("a", print, pivot=True), SagaStep("b", print))
    with pytest.raises(ValueError, match="at least two"):
        SagaOrchestrator("s").add_parallel(SagaStep("a", print))
    with pytest.raises(TypeError, match="SagaStep"):
        SagaOrchestrator("s").add_parallel(SagaStep("a", print), "b")  # type: ignore[arg-type]
    assert [s.name for s in saga.steps] == ["p"]


def test_execute_validation() -> None:
    """An empty saga or an empty saga id are refused."""
    with pytest.raises(ValueError, match="no steps"):
        SagaOrchestrator("s").execute()
    with pytest.raises(ValueError, match="saga_id"):
        SagaOrchestrator("s").add_step("a", print).execute(saga_id="")


def test_retry_policy_validation_and_delays() -> None:
    """RetryPolicy checks its numbers and grows delays up to the maximum."""
    policy = RetryPolicy(attempts=5, initial=1, multiplier=3, maximum=5)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="initial"):
        RetryPolicy(initial=float("nan"))
    with pytest.raises(ValueError, match="maximum"):
        RetryPolicy(maximum=-1)


def test_async_sleep_injection_is_awaited() -> None:
    """In execute_async an injected sleep returning an awaitable is awaited; default is real."""
    waited: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waited.append(seconds)

    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise OSError("x")

    saga = SagaOrchestrator("s", sleep=fake_sleep, compensation_retry=RetryPolicy(initial=0.25))
    saga.add_step("a", lambda: 1, flaky).add_step("b", lambda: 1 / 0)
    assert asyncio.run(saga.execute_async()).status is SagaStatus.COMPENSATED
    assert waited == [0.25]
    calls.clear()
    real = SagaOrchestrator("s", compensation_retry=RetryPolicy(initial=0))
    real.add_step("a", lambda: 1, flaky).add_step("b", lambda: 1 / 0)
    assert asyncio.run(real.execute_async()).status is SagaStatus.COMPENSATED


def test_default_sync_sleep_is_used_without_injection() -> None:
    """Without sleep=, execute waits with time.sleep (here zero seconds)."""
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise OSError("x")

    saga = SagaOrchestrator("s", compensation_retry=RetryPolicy(initial=0))
    saga.add_step("a", lambda: 1, flaky).add_step("b", lambda: 1 / 0)
    assert saga.execute().status is SagaStatus.COMPENSATED


def _fake_connection(module: str) -> object:  # a class whose module names a driver
    return type("Connection", (), {"__module__": module})()


def test_dialect_adapter_speaks_qmark_format_and_numeric(monkeypatch: pytest.MonkeyPatch) -> None:
    """The DB-API adapter rewrites ? for format and numeric drivers and refuses others."""

    sql = "SELECT ? , ?"
    conn = sqlite3.connect(":memory:")
    assert _dialect_of(conn).sql(sql) == sql
    conn.close()
    for root, style in (("psycopg", "pyformat"), ("pg8000", "numeric"), ("mysql", "format")):
        fake = types.ModuleType(root)
        fake.paramstyle = style  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, root, fake)
    pg = _dialect_of(_fake_connection("psycopg.connection"))
    assert (pg.name, pg.sql(sql)) == ("postgresql", "SELECT %s , %s")
    assert _dialect_of(_fake_connection("pg8000.core")).sql(sql) == "SELECT :1 , :2"
    with pytest.raises(TypeError, match="unsupported DB-API"):
        _dialect_of(_fake_connection("mysql.connector"))
    with pytest.raises(TypeError):
        SQLSagaLog(object())


def test_errors_carry_their_context() -> None:
    """Exceptions keep their fields and subclass the builtins callers catch."""
    assert isinstance(StepTimeoutError("a", 1.0), TimeoutError)
    assert isinstance(SagaDeadlineError(1.0), TimeoutError)
    assert isinstance(SagaDefinitionError("x"), ValueError)
    err = StepFailedError("a", "ValueError: x")
    assert (err.step, err.detail) == ("a", "ValueError: x")
    assert issubclass(SagaError, RuntimeError)


def test_a_log_write_error_propagates_and_rolls_back(tmp_path: Path) -> None:
    """A failing INSERT (the table is gone) is raised as the driver's error, not swallowed."""
    conn = sqlite_conn(tmp_path / "gone.db")
    SQLSagaLog.migrate(conn)
    conn.execute("DROP TABLE interlock_saga_record")
    conn.commit()
    saga = SagaOrchestrator("g", log=SQLSagaLog(conn)).add_step("a", lambda: 1)
    with pytest.raises(sqlite3.OperationalError):
        saga.execute(saga_id="g-1")
    assert not conn.in_transaction
    conn.close()


def test_settle_an_interrupted_step_and_an_interrupted_compensation() -> None:
    """settle() records the outcome of a call that was started and never finished."""

    def boom() -> None:
        raise KeyboardInterrupt

    saga = SagaOrchestrator("s").add_step("a", boom, lambda: None)
    with pytest.raises(KeyboardInterrupt):
        saga.execute(saga_id="x")
    saga.settle("x", "a", result="found it")
    assert saga.resume("x").step_results == {"a": "found it"}

    other = SagaOrchestrator("t").add_step("a", lambda: 1, boom).add_step("b", lambda: 1 / 0)
    with pytest.raises(KeyboardInterrupt):
        other.execute(saga_id="y")
    assert other.inspect("y").steps[0].status is StepStatus.COMPENSATING
    other.settle("y", "a", compensated=True)
    assert other.resume("y").status is SagaStatus.COMPENSATED


def test_a_crash_between_group_outcomes_is_settled_by_compensation() -> None:
    """Crash after one member's failure is recorded, before the other's outcome: resume undoes."""
    inner = InMemorySagaLog()
    undone: list[str] = []

    def build(log: Any) -> SagaOrchestrator:
        saga = SagaOrchestrator("g", log=log)
        saga.add_step("first", lambda: 0, lambda: undone.append("first"))
        saga.add_parallel(
            SagaStep("a", lambda: 1 / 0, lambda: undone.append("a")),
            SagaStep("b", lambda: 2, lambda: undone.append("b")),
            SagaStep("c", lambda: 3),
        )
        return saga

    # records: started(1) first(2) a,b,c started (3) a failed -> crash after record 6
    with pytest.raises(Crash):
        build(CrashingLog(inner, 7)).execute(saga_id="g-1")
    assert [r.kind for r in inner.records("g-1")][-1] is RecordKind.STEP_FAILED
    result = build(inner).resume("g-1")
    assert result.status is SagaStatus.COMPENSATED
    assert undone == ["b", "first"]  # b's outcome is unknown: compensated; a failed: not
    assert set(result.uncertain_steps) == {"c"}  # c has no compensation: left, and reported


def test_an_async_compensation_in_execute_fails_and_is_reported() -> None:
    """In execute(), a compensation returning an awaitable fails with TypeError each attempt."""

    async def undo() -> None:  # pragma: no cover - never awaited, by design
        return None

    class Pending:
        """An awaitable without close(): refused as well."""

        def __await__(self) -> Any:  # pragma: no cover - never awaited
            yield None

    saga = SagaOrchestrator("s", sleep=Sleeps(), compensation_retry=RetryPolicy(attempts=1))
    saga.add_step("a", lambda: 1, undo).add_step("b", Pending).add_step("c", lambda: 1 / 0)
    result = saga.execute()
    assert isinstance(result.error, TypeError)
    assert result.failed_step == "b"
    saga2 = SagaOrchestrator("s2", sleep=Sleeps(), compensation_retry=RetryPolicy(attempts=1))
    saga2.add_step("a", lambda: 1, undo).add_step("c", lambda: 1 / 0)
    stuck = saga2.execute()
    assert stuck.status is SagaStatus.STUCK
    assert isinstance(stuck.compensation_failures[0].error, TypeError)


def test_a_sync_sleep_injected_into_execute_async_is_called() -> None:
    """execute_async calls an injected sync sleep and does not await its None."""
    sleeps = Sleeps()
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) < 2:
            raise OSError("x")

    saga = SagaOrchestrator("s", sleep=sleeps, compensation_retry=RetryPolicy(initial=0.5))
    saga.add_step("a", lambda: 1, flaky).add_step("b", lambda: 1 / 0)
    assert asyncio.run(saga.execute_async()).status is SagaStatus.COMPENSATED
    assert sleeps == [0.5]


def test_the_fast_path_transitions_are_in_the_table() -> None:
    """The hot path's PENDING -> RUNNING -> SUCCEEDED steps are allowed by STEP_TRANSITIONS."""
    assert StepStatus.RUNNING in STEP_TRANSITIONS[StepStatus.PENDING]
    assert StepStatus.SUCCEEDED in STEP_TRANSITIONS[StepStatus.RUNNING]


def test_saga_result_builds_like_the_044_one() -> None:
    """SagaResult(succeeded=...) alone works, with empty lists as in 0.44."""
    result = SagaResult(succeeded=False)
    assert result.completed_steps == []
    assert result.step_results == {}
    assert result.status is SagaStatus.PENDING


def test_value_classes_compare_hash_print_and_stay_immutable() -> None:
    """SagaStep and RetryPolicy are immutable values; SagaResult compares but is mutable."""
    step = SagaStep("a", print)
    assert step == SagaStep("a", print)
    assert step != SagaStep("b", print)
    assert step != ("a", print)
    assert hash(step) == hash(SagaStep("a", print))
    assert repr(step).startswith("SagaStep(name='a', action=")
    with pytest.raises(AttributeError, match="immutable"):
        step.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del step.name  # type: ignore[misc]
    assert {RetryPolicy(): 1}[RetryPolicy(3, 0.1, 2.0, 30.0)] == 1
    result = SagaResult(succeeded=True)
    result.saga_id = "x"
    assert result == SagaResult(True, saga_id="x")
    assert "succeeded=True" in repr(result)
    with pytest.raises(TypeError):
        hash(result)
