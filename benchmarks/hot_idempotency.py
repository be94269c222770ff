# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.idempotency: the inbox record in an open transaction, and claims."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import Call, Contender, HotPath, PathResult, Verdict, at_most, peer

if TYPE_CHECKING:
    from collections.abc import Callable

DSN_VARIABLES = ("INTERLOCK_BENCH_POSTGRES_DSN", "INTERLOCK_TEST_POSTGRES_DSN")
BENCH_SCHEMA = "interlock_bench_idempotency"
INBOX_LIMIT = 1.5  # inbox() <= 1.5x the bare statement it wraps
MEMORY_LIMIT = 12.0  # claim + complete (validation, token, lease, JSON result) vs dict + lock
NOW = 1_767_225_600.0
FLOOR_SQL = (
    "INSERT INTO interlock_idempotency_keys (scope, key, state, fingerprint, token,"
    " lease_expires_at, created_at, completed_at, expires_at, result, failed)"
    " VALUES ({m}, {m}, 'completed', NULL, NULL, NULL, {m}, {m}, {m}, NULL, 0)"
    " ON CONFLICT (scope, key) DO NOTHING"
)


def _sqlite_file(name: str) -> sqlite3.Connection:
    """A migrated SQLite file (WAL) with a transaction left open, as a consumer holds one."""
    from interlock.idempotency import migrate

    path = Path(tempfile.mkdtemp(prefix="hot_idempotency_")) / name
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    migrate(conn)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _dsn() -> str | None:
    for name in DSN_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _postgres(name: str) -> Any:
    """A psycopg connection on a schema of its own with fresh tables, a transaction open.

    Each contender gets its own schema: the floor's open transaction holds its row lock
    for the whole run, and the other contender must not wait on it.
    """
    from interlock.idempotency import migrate

    dsn = _dsn()
    if dsn is None:  # the row shows why; the goal line says SKIP
        raise RuntimeError(f"no PostgreSQL: set {' or '.join(DSN_VARIABLES)}")
    schema = f"{BENCH_SCHEMA}_{name.removesuffix('.db')}"
    conn = peer("psycopg").connect(dsn)
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(f"SET search_path TO {schema}")
    conn.execute("DROP TABLE IF EXISTS interlock_idempotency_keys")
    conn.execute("DROP TABLE IF EXISTS interlock_idempotency_schema")
    conn.commit()
    migrate(conn)
    return conn


def _floor_inbox(conn: Any, mark: str) -> Call:
    """The bare statement: INSERT the same row ON CONFLICT DO NOTHING, in the open transaction."""
    sql = FLOOR_SQL.format(m=mark)
    cursor = conn.cursor()
    row = ("consumer", "message-1", NOW, NOW, NOW + 86400.0)

    def run() -> bool:
        cursor.execute(sql, row)
        return bool(cursor.rowcount == 1)

    cursor.execute(sql, row)  # the row exists from now on: every timed call is a duplicate
    return run


def _interlock_inbox(conn: Any) -> Call:
    """inbox() of the same key in the open transaction: a duplicate each time."""
    from interlock.idempotency import inbox

    inbox(conn, scope="consumer", key="message-1", now=NOW)

    def run() -> bool:
        return inbox(conn, scope="consumer", key="message-1", now=NOW).is_new

    return run


def _inbox_path(name: str, summary: str, connect: Callable[[str], Any], mark: str) -> HotPath:
    dsn_needed = mark != "?"

    def goals(result: PathResult) -> list[Verdict]:
        goal = f"interlock <= {INBOX_LIMIT:.2f}x the floor"
        if dsn_needed and _dsn() is None:
            return [Verdict("SKIP", f"{goal}: set {' or '.join(DSN_VARIABLES)} to measure")]
        return [at_most(result, "interlock", INBOX_LIMIT)]

    requires = "psycopg" if dsn_needed else None
    contenders = (
        Contender(
            "floor",
            "floor",
            "INSERT ... ON CONFLICT DO NOTHING of the same row, open transaction",
            lambda: _floor_inbox(connect("floor.db"), mark),
            requires=requires,
            check=lambda out: out is False,
        ),
        Contender(
            "interlock",
            "interlock",
            "inbox(conn, scope=, key=) of the same key, open transaction",
            lambda: _interlock_inbox(connect("inbox.db")),
            requires=requires,
            check=lambda out: out is False,
        ),
    )
    return HotPath(
        name=name,
        summary=summary,
        contenders=contenders,
        goals=goals,
        full_rounds=100,
        quick_rounds=20,
        notes=(
            (
                f"Goal: <= {INBOX_LIMIT}x the one statement inbox() runs (validation, the"
                " dialect check and the cursor are interlock's share)."
            ),
        ),
    )


def idempotency_inbox_sqlite() -> HotPath:
    return _inbox_path(
        "idempotency-inbox-sqlite",
        "record a message id in the consumer's open SQLite transaction (a redelivery)",
        _sqlite_file,
        "?",
    )


def idempotency_inbox_postgres() -> HotPath:
    return _inbox_path(
        "idempotency-inbox-postgres",
        "record a message id in the consumer's open PostgreSQL transaction (a redelivery)",
        _postgres,
        "%s",
    )


class _Keys:
    """New keys for every call; the record maps are emptied now and then to bound memory."""

    def __init__(self, records: dict[Any, Any]) -> None:
        self.n = 0
        self.records = records

    def next(self) -> str:
        self.n += 1
        if self.n % 100_000 == 0:
            self.records.clear()
        return f"k{self.n}"


def _floor_memory() -> Call:
    """A dict behind a lock: mark the key in progress if absent, then store the result."""
    lock = threading.Lock()
    records: dict[tuple[str, str], object] = {}
    keys = _Keys(records)
    result = {"id": 1}

    def run() -> bool:
        key = ("charge", keys.next())
        with lock:
            if key in records:
                return False
            records[key] = None
        with lock:
            records[key] = result
        return True

    return run


def _interlock_memory() -> Call:
    from interlock.idempotency import InMemoryIdempotencyStore

    store = InMemoryIdempotencyStore(clock=lambda: NOW)
    keys = _Keys(store._rows)  # noqa: SLF001 - bound the benchmark's memory
    result = {"id": 1}

    def run() -> bool:
        claim = store.claim("charge", keys.next())
        store.complete(claim, result)
        return claim.claimed

    return run


def idempotency_memory_claim() -> HotPath:
    return HotPath(
        name="idempotency-memory-claim",
        summary="claim a new key and complete it with a small result, in memory",
        contenders=(
            Contender(
                "floor",
                "floor",
                "dict + threading.Lock: check-and-set, then store the result",
                _floor_memory,
                check=lambda out: out is True,
            ),
            Contender(
                "interlock",
                "interlock",
                "InMemoryIdempotencyStore.claim() + complete()",
                _interlock_memory,
                check=lambda out: out is True,
            ),
        ),
        goals=lambda result: [at_most(result, "interlock", MEMORY_LIMIT)],
        full_rounds=100,
        quick_rounds=20,
        notes=(
            (
                "interlock also validates the key, draws a claim token, sets the lease and"
                " TTL, and stores the result as JSON text (as its SQL store does)."
            ),
        ),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (
    idempotency_inbox_sqlite,
    idempotency_inbox_postgres,
    idempotency_memory_claim,
)
