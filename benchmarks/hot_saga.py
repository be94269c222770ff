# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.saga: a ten-step saga that succeeds, with each kind of log."""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import IAP, Call, Contender, HotPath, PathResult, Verdict, at_most, peer

if TYPE_CHECKING:
    from collections.abc import Callable

STEPS = 10
RECORDS = 2 * STEPS + 2  # saga started, (step started, step succeeded) per step, completed
DSN_VARIABLES = ("INTERLOCK_BENCH_POSTGRES_DSN", "INTERLOCK_TEST_POSTGRES_DSN")


def work() -> int:
    """A step's action: trivial, so the saga machinery's own cost is what is measured."""
    return 1


def undo() -> None:
    """A step's compensation (never called: every step succeeds)."""


def floor_steps() -> Call:
    def run() -> int:
        total = 0
        for _ in range(STEPS):
            total += work()
        return total

    return run


def interlock_saga(log: object | None) -> Any:
    from interlock.saga import SagaOrchestrator

    saga = SagaOrchestrator("bench", log=log)  # type: ignore[arg-type]
    for i in range(STEPS):
        saga.add_step(f"step-{i}", work, undo)
    return saga


def iap_saga() -> Call:
    saga = peer("integration_automation_patterns.saga").SagaOrchestrator("bench")
    for i in range(STEPS):
        saga.add_step(f"step-{i}", work, undo)
    return saga.execute  # type: ignore[no-any-return]


def succeeded(result: Any) -> bool:
    return bool(result.succeeded) and len(result.step_results) == STEPS


def per_step_overhead(result: PathResult, key: str, limit_us: float) -> Verdict:
    """PASS when (key - floor) / STEPS is at most ``limit_us`` microseconds (per round)."""
    text = f"{key} per-step overhead <= {limit_us:g} us over calling the steps directly"
    a, b = result.ok(key), result.ok("floor")
    if a is None or b is None:
        return Verdict("SKIP", f"{text}: not measured")
    per_step = [(x - y) / STEPS / 1000 for x, y in zip(a.samples, b.samples, strict=True)]
    value = statistics.median(per_step)
    return Verdict("PASS" if value <= limit_us else "FAIL", f"{text}: {value:.2f} us")


def saga_in_memory() -> HotPath:
    def interlock() -> Call:
        from interlock.saga import InMemorySagaLog

        return interlock_saga(InMemorySagaLog(keep_finished=0)).execute  # type: ignore[no-any-return]

    def goals(result: PathResult) -> list[Verdict]:
        return [per_step_overhead(result, "interlock", 5.0)]

    return HotPath(
        name="saga-in-memory",
        summary=f"a {STEPS}-step saga that succeeds, with the in-memory log",
        contenders=(
            Contender(
                "floor",
                "floor",
                f"{STEPS} step functions called in a loop",
                floor_steps,
                check=lambda out: out == STEPS,
            ),
            Contender(
                "interlock",
                "interlock",
                "SagaOrchestrator(log=InMemorySagaLog()).execute(): 22 log records",
                interlock,
                check=succeeded,
            ),
            Contender(
                "iap",
                IAP,
                "SagaOrchestrator.execute() (no log, no ids, no state machine)",
                iap_saga,
                requires="integration_automation_patterns",
                check=succeeded,
            ),
        ),
        goals=goals,
        notes=(
            "Per-step overhead = (interlock - floor) / 10 steps, the median of per-round figures.",
            (
                "interlock generates a saga id, writes 22 records (saga start, start and"
                " result of each step, completion) and checks every state transition."
            ),
        ),
    )


def _sqlite_file() -> sqlite3.Connection:
    path = Path(tempfile.mkdtemp(prefix="hot_saga_")) / "saga.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _floor_inserts(conn: Any, mark: str) -> Call:
    """One INSERT + COMMIT per record interlock writes, into a table like its own."""
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE IF NOT EXISTS floor_record (saga_id TEXT NOT NULL, seq INTEGER NOT NULL,"
        " kind TEXT NOT NULL, step TEXT, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,"
        " error TEXT, data TEXT, PRIMARY KEY (saga_id, seq))"
    )
    conn.commit()
    marks = ", ".join([mark] * 8)
    sql = f"INSERT INTO floor_record (saga_id, seq, kind, step, attempt, at, error, data) VALUES ({marks})"  # noqa: E501, S608 - fixed placeholders
    counter = [0]

    def run() -> int:
        counter[0] += 1
        saga_id = f"floor-{counter[0]}"
        for seq in range(RECORDS):
            cur.execute(sql, (saga_id, seq, "step_started", "s", 1, 0.0, None, "1"))
            conn.commit()
        return RECORDS

    return run


def saga_sqlite() -> HotPath:
    def floor() -> Call:
        return _floor_inserts(_sqlite_file(), "?")

    def interlock() -> Call:
        from interlock.saga import SQLSagaLog

        conn = _sqlite_file()
        SQLSagaLog.migrate(conn)
        return interlock_saga(SQLSagaLog(conn)).execute  # type: ignore[no-any-return]

    def goals(result: PathResult) -> list[Verdict]:
        return [at_most(result, "interlock", 2.0)]

    return HotPath(
        name="saga-sqlite",
        summary=f"a {STEPS}-step saga that succeeds, with the SQLite log (WAL, synchronous=NORMAL)",
        contenders=(
            Contender(
                "floor",
                "floor",
                f"{RECORDS} x (INSERT + COMMIT), same file settings",
                floor,
                check=lambda out: out == RECORDS,
            ),
            Contender(
                "interlock",
                "interlock",
                f"SagaOrchestrator(log=SQLSagaLog(conn)).execute(): {RECORDS} records",
                interlock,
                check=succeeded,
            ),
            Contender(
                "iap",
                IAP,
                "SagaOrchestrator.execute() in memory (it has no durable log)",
                iap_saga,
                requires="integration_automation_patterns",
                check=succeeded,
            ),
        ),
        goals=goals,
        full_rounds=60,
        quick_rounds=15,
        notes=(
            "Goal: <= 2x one INSERT + COMMIT per record interlock writes (22 per saga).",
            "Both the floor and interlock use a fresh file in WAL mode with synchronous=NORMAL.",
        ),
    )


def _dsn() -> str | None:
    for name in DSN_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def saga_postgres() -> HotPath:
    dsn = _dsn()

    def connect() -> Any:
        if dsn is None:  # shown in the table; the goal below says SKIP
            raise RuntimeError(f"not measured: no DSN in {' or '.join(DSN_VARIABLES)}")
        return peer("psycopg").connect(dsn)

    def floor() -> Call:
        conn = connect()
        conn.execute("DROP TABLE IF EXISTS floor_record")
        conn.commit()
        return _floor_inserts(conn, "%s")

    def interlock() -> Call:
        from interlock.saga import SQLSagaLog

        conn = connect()
        for table in ("interlock_saga_record", "interlock_saga", "interlock_saga_schema"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
        SQLSagaLog.migrate(conn)
        return interlock_saga(SQLSagaLog(conn)).execute  # type: ignore[no-any-return]

    def goals(result: PathResult) -> list[Verdict]:
        if dsn is None:
            names = " or ".join(DSN_VARIABLES)
            return [Verdict("SKIP", f"interlock <= 2.00x the floor: set {names} to measure")]
        return [at_most(result, "interlock", 2.0)]

    contenders = (
        Contender(
            "floor",
            "floor",
            f"{RECORDS} x (INSERT + COMMIT) over psycopg",
            floor,
            requires="psycopg",
            check=lambda out: out == RECORDS,
        ),
        Contender(
            "interlock",
            "interlock",
            f"SagaOrchestrator(log=SQLSagaLog(psycopg conn)).execute(): {RECORDS} records",
            interlock,
            requires="psycopg",
            check=succeeded,
        ),
    )
    return HotPath(
        name="saga-postgres",
        summary=f"a {STEPS}-step saga that succeeds, with the PostgreSQL log",
        contenders=contenders,
        goals=goals,
        full_rounds=30,
        quick_rounds=8,
        notes=("Uses the database named by the DSN; drops and recreates the saga tables there.",),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (saga_in_memory, saga_sqlite, saga_postgres)
