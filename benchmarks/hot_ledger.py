# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.ledger: recording an attempt, and a report over 1,000,000 attempts."""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import Call, Contender, HotPath, PathResult, Verdict, at_most, peer, self_timed

if TYPE_CHECKING:
    from collections.abc import Callable

BATCH = 20  # attempts per transaction in the batched path (the floor batches the same way)
REPORT_ATTEMPTS = 1_000_000
REPORT_SECONDS = 5.0  # "within a few seconds"
DSN_VARIABLES = ("INTERLOCK_BENCH_POSTGRES_DSN", "INTERLOCK_TEST_POSTGRES_DSN")
ATTEMPT_COLUMNS = (
    "stage_id, item_id, run_id, step, attempt_no, worker, started_at, ended_at, duration,"
    " outcome, code, error"
)


def _sqlite_file(name: str) -> sqlite3.Connection:
    path = Path(tempfile.mkdtemp(prefix="hot_ledger_")) / name
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _floor_attempts(conn: Any, mark: str, per_commit: int) -> Call:
    """INSERT the same attempt row interlock writes, COMMIT every ``per_commit`` rows."""
    from interlock.ledger import migrate

    migrate(conn)
    marks = ", ".join([mark] * 12)
    sql = f"INSERT INTO ledger_attempt ({ATTEMPT_COLUMNS}) VALUES ({marks})"  # noqa: S608 - fixed
    cur = conn.cursor()
    row = (1, 1, None, "erp", 1, "bot", 1.0e9, 1.0e9, 0.0, "system_error", -1, "timeout")
    sqlite = isinstance(conn, sqlite3.Connection)

    def run() -> int:
        if sqlite:
            cur.execute("BEGIN")
        for _ in range(per_commit):
            cur.execute(sql, row)
        conn.commit()
        return per_commit

    return run


def _interlock_attempts(conn: Any, per_commit: int) -> Call:
    """claim() + complete(code=-1) on a step with unlimited immediate retries: each pair
    records one attempt through the full state machine (stage, item, history rows)."""
    from interlock.ledger import (
        Backoff,
        Ledger,
        ProcessDefinition,
        RetryPolicy,
        SQLLedgerStore,
        Step,
        migrate,
    )

    migrate(conn)
    ledger = Ledger(SQLLedgerStore(conn))
    policy = RetryPolicy(max_attempts=None, backoff=Backoff.FIXED, base_delay=0)
    ledger.define(ProcessDefinition("bench", (Step("erp", retry=policy),)))
    ledger.start_or_resume("bench", {"invoice": 1})
    store = ledger.store

    def run() -> int:
        done = 0
        with store.transaction():
            for _ in range(per_commit):
                claim = ledger.claim("bench", worker="bot")
                if claim is not None:
                    ledger.complete(claim, code=-1, error="timeout")
                    done += 1
        return done

    return run


def _rpa_tracker_attempt() -> Call:
    """rpa-tracker's complete_stage(): log_event (commit) + finish_stage (commit)."""
    sqlalchemy = peer("sqlalchemy")
    orm = peer("sqlalchemy.orm")
    tracker_mod = peer("rpa_tracker.tracking.sql_tracker")
    result_mod = peer("rpa_tracker.domain.execution_result")
    models = [peer(f"rpa_tracker.models.{m}") for m in ("tx_process", "tx_stage", "tx_event")]
    path = Path(tempfile.mkdtemp(prefix="hot_ledger_rpa_")) / "rpa.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA journal_mode=WAL")
    for module in models:
        module.Base.metadata.create_all(engine)
    session = orm.Session(engine)
    session.add(models[0].TxProcess(uuid="tx-1", process_code="invoice", state="PENDING"))
    session.commit()
    tracker = tracker_mod.SqlTransactionTracker(session)
    tracker.start_stage("tx-1", "ERP")
    result = result_mod.ExecutionResult(error_code=-1, description="timeout")

    def run() -> int:
        tracker.complete_stage("tx-1", "ERP", result)
        return 1

    return run


def _goal(result: PathResult) -> list[Verdict]:
    return [at_most(result, "interlock", 2.0)]


def ledger_attempt_sqlite() -> HotPath:
    return HotPath(
        name="ledger-attempt-sqlite",
        summary="record one attempt per transaction on SQLite (WAL, synchronous=NORMAL)",
        contenders=(
            Contender(
                "floor",
                "floor",
                "INSERT the attempt row + COMMIT",
                lambda: _floor_attempts(_sqlite_file("floor.db"), "?", 1),
                check=lambda out: out == 1,
            ),
            Contender(
                "interlock",
                "interlock",
                "claim() + complete(code=-1) in one transaction: 14 statements, 10 of them writes",
                lambda: _interlock_attempts(_sqlite_file("ledger.db"), 1),
                check=lambda out: out == 1,
            ),
            Contender(
                "rpa-tracker",
                "rpa-tracker 0.0.18",
                "SqlTransactionTracker.complete_stage(error_code=-1): 2 commits (SQLAlchemy)",
                _rpa_tracker_attempt,
                requires="rpa_tracker",
                check=lambda out: out == 1,
            ),
        ),
        goals=_goal,
        full_rounds=60,
        quick_rounds=15,
        notes=(
            "Goal: <= 2x a bare INSERT + COMMIT of the same attempt row.",
            (
                "interlock's attempt is the whole state machine: it leases the stage, starts"
                " the attempt, ends it, schedules the retry and appends the status history."
            ),
        ),
    )


def ledger_attempt_sqlite_batched() -> HotPath:
    return HotPath(
        name="ledger-attempt-sqlite-batched",
        summary=f"record {BATCH} attempts per transaction on SQLite (both sides batch)",
        contenders=(
            Contender(
                "floor",
                "floor",
                f"{BATCH} x INSERT the attempt row, one COMMIT",
                lambda: _floor_attempts(_sqlite_file("floor.db"), "?", BATCH),
                check=lambda out: out == BATCH,
            ),
            Contender(
                "interlock",
                "interlock",
                f"{BATCH} x (claim() + complete()) in one store.transaction()",
                lambda: _interlock_attempts(_sqlite_file("ledger.db"), BATCH),
                check=lambda out: out == BATCH,
            ),
        ),
        goals=_goal,
        full_rounds=40,
        quick_rounds=10,
        notes=("Goal: <= 2x the floor batching the same way.",),
    )


def _dsn() -> str | None:
    for name in DSN_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def ledger_attempt_postgres() -> HotPath:
    dsn = _dsn()

    def connect() -> Any:
        conn = peer("psycopg").connect(dsn)
        for table in (
            "ledger_run",
            "ledger_item",
            "ledger_stage",
            "ledger_attempt",
            "ledger_history",
            "ledger_dead_letter",
            "ledger_schema_version",
        ):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()
        return conn

    def goals(result: PathResult) -> list[Verdict]:
        if dsn is None:
            names = " or ".join(DSN_VARIABLES)
            return [Verdict("SKIP", f"interlock <= 2.00x the floor: set {names} to measure")]
        return _goal(result)

    contenders: tuple[Contender, ...] = ()
    if dsn is not None:
        contenders = (
            Contender(
                "floor",
                "floor",
                "INSERT the attempt row + COMMIT over psycopg",
                lambda: _floor_attempts(connect(), "%s", 1),
                requires="psycopg",
                check=lambda out: out == 1,
            ),
            Contender(
                "interlock",
                "interlock",
                "claim() + complete(code=-1) over psycopg",
                lambda: _interlock_attempts(connect(), 1),
                requires="psycopg",
                check=lambda out: out == 1,
            ),
        )
    return HotPath(
        name="ledger-attempt-postgres",
        summary="record one attempt per transaction on PostgreSQL",
        contenders=contenders,
        goals=goals,
        full_rounds=30,
        quick_rounds=8,
        notes=("Uses the database named by the DSN; drops and recreates the ledger tables.",),
    )


_REPORT_DB: list[str] = []


def _report_db() -> str:
    """Build the 1,000,000-attempt SQLite ledger once per run (executemany, one transaction)."""
    if _REPORT_DB:
        return _REPORT_DB[0]
    from interlock.ledger import migrate

    path = str(Path(tempfile.mkdtemp(prefix="hot_ledger_report_")) / "report.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    migrate(conn)
    rng = random.Random(1)
    steps = ("erp", "bank", "crm", "archive")
    errors = ("timeout", "HTTP 503", "session expired", "IBAN invalid", "vendor blocked")
    t0 = 1.7e9
    items: list[tuple[Any, ...]] = []
    stages: list[tuple[Any, ...]] = []
    attempts: list[tuple[Any, ...]] = []
    item_id = stage_id = 0
    while len(attempts) < REPORT_ATTEMPTS:
        item_id += 1
        created = t0 + item_id * 0.5
        status = "succeeded"
        for position, step in enumerate(steps):
            stage_id += 1
            tries = 1 + (rng.random() < 0.3) + (rng.random() < 0.1)
            for n in range(1, tries + 1):
                last = n == tries
                outcome = "success" if last else "system_error"
                if last and rng.random() < 0.02:
                    outcome, status = "business_error", "rejected"
                start = created + position * 10 + n
                duration = rng.lognormvariate(0.5, 0.6)
                code = 0 if outcome == "success" else (7 if outcome == "business_error" else -1)
                error = None if outcome == "success" else rng.choice(errors)
                attempts.append(
                    (
                        stage_id,
                        item_id,
                        1,
                        step,
                        n,
                        "bot",
                        start,
                        start + duration,
                        duration,
                        outcome,
                        code,
                        error,
                    )
                )
            stage_status = "succeeded" if status == "succeeded" else "rejected"
            stages.append(
                (
                    item_id,
                    step,
                    position,
                    stage_status,
                    tries,
                    0,
                    None,
                    None,
                    None,
                    None,
                    created,
                    1,
                )
            )
            if status != "succeeded":
                break
        items.append(("invoice", 1, f"k{item_id}", '{"n":1}', status, created, created, 1))
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO ledger_run (run_key, process, params, trigger_source, status, created_at,"
        " version) VALUES ('bench', 'invoice', '{}', 'manual', 'succeeded', ?, 1)",
        (t0,),
    )
    conn.executemany(
        "INSERT INTO ledger_item (process, run_id, dedup_key, payload, status, created_at,"
        " updated_at, version) VALUES (?,?,?,?,?,?,?,?)",
        items,
    )
    conn.executemany(
        "INSERT INTO ledger_stage (item_id, step, position, status, attempts, budget_base,"
        " next_attempt_at, lease_owner, lease_expires_at, last_error, updated_at, version)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        stages,
    )
    conn.executemany(
        f"INSERT INTO ledger_attempt ({ATTEMPT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
        attempts[:REPORT_ATTEMPTS],
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    _REPORT_DB.append(path)
    return path


def _floor_report() -> Call:
    """The same figures with raw SQL: GROUP BY counts, per-step aggregates, durations
    fetched and sorted for percentiles, top failures."""
    conn = sqlite3.connect(_report_db())

    def run() -> float:
        start = time.perf_counter_ns()
        counts = conn.execute("SELECT status, COUNT(*) FROM ledger_item GROUP BY status").fetchall()
        conn.execute(
            "SELECT s.status, COUNT(*) FROM ledger_stage s JOIN ledger_item i ON i.id = s.item_id"
            " GROUP BY s.status"
        ).fetchall()
        conn.execute(
            "SELECT step, COUNT(*), COUNT(DISTINCT stage_id), SUM(outcome = 'success')"
            " FROM ledger_attempt GROUP BY step"
        ).fetchall()
        by_step: dict[str, list[float]] = {}
        for step, duration in conn.execute(
            "SELECT step, duration FROM ledger_attempt WHERE duration IS NOT NULL"
        ):
            by_step.setdefault(step, []).append(duration)
        for values in by_step.values():
            values.sort()
        conn.execute(
            "SELECT step, error, COUNT(*) AS n FROM ledger_attempt WHERE outcome <> 'success'"
            " GROUP BY step, error ORDER BY n DESC LIMIT 10"
        ).fetchall()
        elapsed = time.perf_counter_ns() - start
        assert counts  # noqa: S101 - the floor did its job
        return float(elapsed)

    return run


def _interlock_report() -> Call:
    from interlock.ledger import Ledger, SQLLedgerStore

    conn = sqlite3.connect(_report_db(), isolation_level=None)
    ledger = Ledger(SQLLedgerStore(conn))

    def run() -> float:
        start = time.perf_counter_ns()
        report = ledger.report()
        elapsed = time.perf_counter_ns() - start
        assert sum(s.attempts for s in report.steps) == REPORT_ATTEMPTS  # noqa: S101
        return float(elapsed)

    return run


def ledger_report_sqlite() -> HotPath:
    def goals(result: PathResult) -> list[Verdict]:
        outcome = result.ok("interlock")
        text = f"interlock report over {REPORT_ATTEMPTS:,} attempts <= {REPORT_SECONDS:g} s"
        if outcome is None:
            return [Verdict("SKIP", f"{text}: not measured")]
        seconds = outcome.median_ns / 1e9
        status = "PASS" if seconds <= REPORT_SECONDS else "FAIL"
        return [Verdict(status, f"{text}: {seconds:.2f} s"), at_most(result, "interlock", 2.0)]

    return HotPath(
        name="ledger-report-sqlite",
        summary=f"Ledger.report() over {REPORT_ATTEMPTS:,} attempts in a SQLite file",
        contenders=(
            Contender("floor", "floor", "the same aggregates in raw SQL + sort", _floor_report),
            Contender(
                "interlock", "interlock", "Ledger(SQLLedgerStore).report()", _interlock_report
            ),
        ),
        goals=goals,
        full_rounds=5,
        quick_rounds=3,
        measure=self_timed,
        unit="ms/report",
        heavy=True,  # building the 1,000,000-attempt file takes longer than the reports
        notes=(
            "The database is built once per run (executemany in one transaction, temp file).",
            "Goal: within a few seconds (<= 5 s), and <= 2x the raw-SQL floor.",
        ),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (
    ledger_attempt_sqlite,
    ledger_attempt_sqlite_batched,
    ledger_attempt_postgres,
    ledger_report_sqlite,
)
