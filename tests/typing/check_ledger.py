# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Type-checks the public API of interlock.ledger under ``mypy --strict``.

Not collected by pytest; run ``mypy --strict tests/typing/check_ledger.py``.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Any

from interlock.ledger import (
    ITEM_TRANSITIONS,
    RUN_TRANSITIONS,
    SCHEMA_VERSION,
    STAGE_TRANSITIONS,
    Attempt,
    AttemptOutcome,
    Backoff,
    BusinessError,
    Claim,
    DeadLetter,
    DeadLetterReason,
    Dedup,
    DueRun,
    EventKind,
    ExternalLink,
    FailureReason,
    InMemoryLedgerStore,
    Item,
    ItemStatus,
    LeaseLostError,
    Ledger,
    LedgerError,
    LedgerEvent,
    LedgerReport,
    LedgerStore,
    ManualClock,
    NotFoundError,
    Pipeline,
    ProcessDefinition,
    RetryPolicy,
    Run,
    RunKeyConflictError,
    RunStatus,
    Schedule,
    ScheduleError,
    SchemaError,
    SQLLedgerStore,
    Stage,
    StageStatus,
    StaleVersionError,
    StatusChange,
    Step,
    StepStats,
    TransitionError,
    Trigger,
    classify_code,
    connect_sqlite,
    due_runs,
    migrate,
    utc_now,
    validate_payload,
    validate_transition,
)


def on_event(event: LedgerEvent) -> None:
    kind: EventKind = event.kind
    del kind


def erp(payload: dict[str, Any]) -> int:
    return 0 if payload else -1


def engine() -> LedgerReport:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    store: LedgerStore = InMemoryLedgerStore()
    ledger = Ledger(store, clock=clock, lease_seconds=30.0)
    policy = RetryPolicy(max_attempts=3, backoff=Backoff.LINEAR, base_delay=2.0)
    definition: ProcessDefinition = ledger.define(
        ProcessDefinition(
            "invoice",
            (Step("erp", retry=policy, schema={"type": "object"}),),
            dedup=Dedup.fields("no"),
        )
    )
    del definition
    ledger.subscribe(on_event)
    run: Run
    run, created = ledger.start_run(
        "invoice", "k", trigger=Trigger.API, link=ExternalLink("argo", "wf-1", None)
    )
    status: RunStatus = run.status
    item: Item
    item, is_new = ledger.start_or_resume("invoice", {"no": 1}, run_key="k")
    istatus: ItemStatus = item.status
    claim: Claim | None = ledger.claim("invoice", worker="bot")
    if claim is not None:
        claim = ledger.heartbeat(claim)
        stage: Stage = ledger.run_stage(claim, erp)
        sstatus: StageStatus = stage.status
        del sstatus
    attempts: list[Attempt] = ledger.attempts(item.id)
    changes: list[StatusChange] = ledger.history("item", item.id)
    letters: list[DeadLetter] = ledger.dead_letters(run_key="k")
    if letters:
        reason: DeadLetterReason = letters[0].reason
        ledger.redrive(letters[0].id)
        del reason
    finished: Run = ledger.finish_run("k")
    full: dict[str, Any] = ledger.run_report("k")
    del created, status, is_new, istatus, attempts, changes, finished, full
    report = ledger.report(since=clock(), top=5)
    steps: tuple[StepStats, ...] = report.steps
    failures: tuple[FailureReason, ...] = report.failures
    del steps, failures
    return report


def pipeline() -> dict[str, Any]:
    ledger = Ledger(SQLLedgerStore(sqlite3.connect(":memory:")))
    ledger.define(ProcessDefinition("p", (Step("load"),)))
    pipe = Pipeline(ledger, "p", {"load": lambda payload: None}, sleep=lambda s: None)
    return pipe.run("k", ['{"a": 1}'], params={"day": "2026-01-01"})


def sql() -> int:
    conn = connect_sqlite("ledger.db")
    store = SQLLedgerStore(conn)
    del store
    version: int = migrate(conn)
    return version + SCHEMA_VERSION


def schedules() -> list[DueRun]:
    nightly = Schedule.daily("nightly", at="02:00")
    hourly = Schedule.hourly("h", minute=5)
    every = Schedule.every("e", minutes=15)
    del hourly, every
    key: str = nightly.run_key(utc_now())
    del key
    return due_runs(nightly, None, utc_now(), limit=10)


def helpers() -> None:
    outcome: AttemptOutcome = classify_code(-1)
    validate_payload({"type": "string"}, "x")
    validate_transition(StageStatus.RUNNING, StageStatus.EXHAUSTED)
    allowed: frozenset[StageStatus] = STAGE_TRANSITIONS[StageStatus.RUNNING]
    iallowed: frozenset[ItemStatus] = ITEM_TRANSITIONS[ItemStatus.PENDING]
    rallowed: frozenset[RunStatus] = RUN_TRANSITIONS[RunStatus.RUNNING]
    delay: float = RetryPolicy(max_attempts=None).delay(3)
    key: str = Dedup.payload().key({"a": 1})
    del outcome, allowed, iallowed, rallowed, delay, key


def errors() -> list[type[Exception]]:
    code: int = BusinessError("no", code=3).code
    del code
    return [
        LedgerError,
        TransitionError,
        StaleVersionError,
        LeaseLostError,
        NotFoundError,
        RunKeyConflictError,
        SchemaError,
        ScheduleError,
    ]
