"""The public API of interlock.saga under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Any

from interlock.saga import (
    SAGA_TRANSITIONS,
    SCHEMA_VERSION,
    STEP_TRANSITIONS,
    CompensateOnFailure,
    CompensationFailure,
    DuplicateStepError,
    InMemorySagaLog,
    InvalidTransitionError,
    RecordKind,
    RetryPolicy,
    SagaConflictError,
    SagaDeadlineError,
    SagaDefinitionError,
    SagaError,
    SagaLog,
    SagaOrchestrator,
    SagaRecord,
    SagaResult,
    SagaRun,
    SagaStatus,
    SagaStep,
    SQLSagaLog,
    StepContext,
    StepFailedError,
    StepRun,
    StepStatus,
    StepTimeoutError,
    UnknownSagaError,
    idempotency_key,
    inspect_saga,
)

if TYPE_CHECKING:
    from collections.abc import Mapping


def reserve(ctx: StepContext) -> str:
    key: str = ctx.idempotency_key
    earlier: Mapping[str, Any] = ctx.results
    return f"{ctx.saga_id}/{ctx.step}/{ctx.attempt}/{key}/{len(earlier)}/{ctx.compensating}"


def release(ctx: StepContext) -> None:
    return None


async def charge(ctx: StepContext) -> int:
    return 1


conn = sqlite3.connect(":memory:")
version: int = SQLSagaLog.migrate(conn)
assert version == SCHEMA_VERSION
sql_log: SagaLog = SQLSagaLog(conn)
memory_log: SagaLog = InMemorySagaLog(keep_finished=10)

saga: SagaOrchestrator = (
    SagaOrchestrator(
        "order",
        log=memory_log,
        pass_context=True,
        compensation_retry=RetryPolicy(attempts=5, initial=0.5, multiplier=2.0, maximum=10.0),
        forward_retry=RetryPolicy(attempts=3),
        deadline=30.0,
        clock=lambda: 0.0,
        sleep=lambda seconds: None,
    )
    .add_step("stock", reserve, release, compensate_on_failure=CompensateOnFailure.ALWAYS)
    .add_step("payment", charge, pivot=True, idempotent=True, timeout=5.0)
    .add_parallel(SagaStep("mail", reserve), SagaStep("invoice", reserve, pass_context=True))
)
seed = SagaOrchestrator("seed").add_step("a", lambda: 1, lambda: None)
seed_result: SagaResult = seed.execute()

result: SagaResult = asyncio.run(saga.execute_async(saga_id="o-1"))
ok: bool = result.succeeded
failed: str | None = result.failed_step
error: BaseException | None = result.error
completed: list[str] = result.completed_steps
compensated: list[str] = result.compensated_steps
results: dict[str, Any] = result.step_results
status: SagaStatus = result.status
failures: tuple[CompensationFailure, ...] = result.compensation_failures
uncertain: tuple[str, ...] = result.uncertain_steps
stuck_reason: str | None = result.stuck_reason

resumed: SagaResult = saga.resume("o-1")
pending: list[str] = saga.pending()
stuck: list[str] = saga.stuck()
run: SagaRun = saga.inspect("o-1")
run2: SagaRun = inspect_saga(memory_log, "o-1")
steps: tuple[StepRun, ...] = run.steps
step_status: StepStatus = steps[0].status
history: tuple[SagaRecord, ...] = run.history
kind: RecordKind = history[0].kind


def operator_fix(saga_id: str) -> None:
    saga.settle(saga_id, "payment", result=1)
    saga.settle(saga_id, "stock", compensated=True)


key: str = idempotency_key("o-1", "payment", compensate=True)
delay: float = RetryPolicy().delay(2)
allowed: frozenset[SagaStatus] = SAGA_TRANSITIONS[SagaStatus.RUNNING]
step_allowed: frozenset[StepStatus] = STEP_TRANSITIONS[StepStatus.RUNNING]
defined: tuple[SagaStep, ...] = saga.steps

errors: tuple[type[SagaError], ...] = (
    DuplicateStepError,
    InvalidTransitionError,
    SagaConflictError,
    SagaDeadlineError,
    SagaDefinitionError,
    StepFailedError,
    StepTimeoutError,
    UnknownSagaError,
)
