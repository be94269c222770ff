# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.outbox: add() in an open transaction, relay throughput, a PG fleet."""

# ruff: noqa: S608 - table names are constants; values are bound parameters

from __future__ import annotations

import importlib.util
import json
import os
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from harness import (
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most,
    at_most_of,
    self_timed,
)

DSN_VARIABLE = "INTERLOCK_TEST_POSTGRES_DSN"
PAYLOAD = {"order_id": "o-1", "total": 4200, "currency": "EUR", "lines": [1, 2, 3]}
INSERT = (
    "INSERT INTO interlock_outbox (id, aggregatetype, aggregateid, type, payload, headers) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def _sqlite_db() -> sqlite3.Connection:
    from interlock.outbox import migrate

    path = Path(tempfile.mkdtemp()) / "outbox.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    migrate(conn)
    return conn


def _in_open_transaction(conn: sqlite3.Connection, call: Call) -> Call:
    """Run ``call`` inside one long open transaction, rolled back every 5,000 rows."""
    count = [0]

    def run() -> object:
        count[0] += 1
        if count[0] % 5000 == 0:
            conn.rollback()
        return call()

    return run


# --------------------------------------------------------------------------------------
# Hot path 1: add() inside an open transaction vs a bare INSERT of the same row
# --------------------------------------------------------------------------------------


def outbox_add() -> HotPath:
    def floor() -> Call:
        conn = _sqlite_db()

        def insert() -> str:
            mid = str(uuid.uuid4())
            body = json.dumps(PAYLOAD, separators=(",", ":"))
            conn.execute(INSERT, (mid, "orders", "o-1", "orders", body, None))
            return mid

        return _in_open_transaction(conn, insert)

    def bare() -> Call:
        conn = _sqlite_db()
        body = json.dumps(PAYLOAD, separators=(",", ":"))
        ids = iter(range(10**12))

        def insert() -> str:
            mid = f"m-{next(ids)}"
            conn.execute(INSERT, (mid, "orders", "o-1", "orders", body, None))
            return mid

        return _in_open_transaction(conn, insert)

    def interlock() -> Call:
        from interlock.outbox import add

        conn = _sqlite_db()
        return _in_open_transaction(
            conn, lambda: add(conn, topic="orders", key="o-1", payload=PAYLOAD)
        )

    def iap() -> Call:
        from integration_automation_patterns.sqlite_outbox import SQLiteOutbox

        box = SQLiteOutbox(Path(tempfile.mkdtemp()) / "iap.db")
        return lambda: box.enqueue(str(uuid.uuid4()), PAYLOAD)

    def is_id(result: Any) -> bool:
        return isinstance(result, (str, bool))

    def goals(result: PathResult) -> list[Verdict]:
        ratios = result.ratios("interlock", "insert")
        info = (
            f"interlock vs the INSERT alone (id and JSON made in advance): "
            f"{statistics.median(ratios):.2f}x"
            if ratios
            else "interlock vs the INSERT alone: not measured"
        )
        return [at_most(result, "interlock", 1.3), Verdict("info", info)]

    return HotPath(
        "outbox-add",
        "one message written in an open SQLite transaction (WAL, synchronous=NORMAL)",
        (
            Contender(
                "floor",
                "floor",
                "uuid4 + json.dumps + one INSERT of the same row into the same table",
                floor,
                check=is_id,
            ),
            Contender(
                "insert",
                "INSERT alone",
                "the INSERT only: a counter id, the JSON body made once in advance",
                bare,
                check=is_id,
            ),
            Contender("interlock", "interlock", "outbox.add(conn, ...)", interlock, check=is_id),
            Contender(
                "iap",
                IAP,
                "SQLiteOutbox.enqueue (opens a connection and commits per call)",
                iap,
                requires="integration_automation_patterns",
                check=is_id,
            ),
        ),
        goals=goals,
        notes=("The peer cannot write in the caller's transaction: it commits each message.",),
    )


# --------------------------------------------------------------------------------------
# Hot path 2: relay throughput on SQLite with a no-op publisher
# --------------------------------------------------------------------------------------

BATCH_MESSAGES = 2000


def _fill(conn: sqlite3.Connection) -> None:
    from interlock.outbox import add

    for n in range(BATCH_MESSAGES):
        add(conn, topic="orders", key=f"key-{n % 200}", payload=PAYLOAD)
    conn.commit()


def _check(done: int, wanted: int) -> None:
    if done != wanted:
        raise RuntimeError(f"drained {done} messages, not {wanted}")


def _floor_drain(conn: sqlite3.Connection) -> float:
    """The stdlib alone: claim 100 waiting rows, decode them, mark them sent."""
    _fill(conn)
    start = perf_counter_ns()
    done = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT seq, id, payload FROM interlock_outbox WHERE state = 0 ORDER BY seq LIMIT 100"
        ).fetchall()
        for _, _, payload in rows:
            json.loads(payload)
        if rows:
            conn.execute(
                f"UPDATE interlock_outbox SET state = 1 WHERE seq IN ({','.join('?' * len(rows))})",
                [r[0] for r in rows],
            )
        conn.commit()
        done += len(rows)
        if not rows:
            break
    _check(done, BATCH_MESSAGES)
    return (perf_counter_ns() - start) / done


def outbox_relay_sqlite() -> HotPath:
    def floor() -> Call:
        conn = _sqlite_db()
        return lambda: _floor_drain(conn)

    def interlock() -> Call:
        from interlock.outbox import OutboxRelay

        conn = _sqlite_db()
        path = conn.execute("PRAGMA database_list").fetchone()[2]

        def connect() -> sqlite3.Connection:
            relay_conn = sqlite3.connect(path)
            relay_conn.execute("PRAGMA synchronous=NORMAL")
            return relay_conn

        relay = OutboxRelay(connect, lambda _message: None, batch_size=100)

        def drain() -> float:
            _fill(conn)
            start = perf_counter_ns()
            done = 0
            while count := relay.run_once():
                done += count
            _check(done, BATCH_MESSAGES)
            return (perf_counter_ns() - start) / done

        return drain

    def iap() -> Call:
        from integration_automation_patterns.sqlite_outbox import SQLiteOutbox

        box = SQLiteOutbox(Path(tempfile.mkdtemp()) / "iap.db")

        def drain() -> float:
            for _ in range(BATCH_MESSAGES):
                box.enqueue(str(uuid.uuid4()), PAYLOAD)
            start = perf_counter_ns()
            pending = box.pending()
            for event_id, _ in pending:
                box.mark_published(event_id)
            _check(len(pending), BATCH_MESSAGES)
            return (perf_counter_ns() - start) / len(pending)

        return drain

    def goals(result: PathResult) -> list[Verdict]:
        outcome = result.ok("interlock")
        if outcome is None:
            return [Verdict("SKIP", "relay throughput >= 20,000 messages/s: not measured")]
        per_second = 1e9 / statistics.median(outcome.samples)
        status = "PASS" if per_second >= 20_000 else "FAIL"
        text = f"interlock relay throughput >= 20,000 messages/s: {per_second:,.0f} messages/s"
        return [Verdict(status, text), at_most_of(result, "interlock", "iap", 1.0)]

    return HotPath(
        "outbox-relay-sqlite",
        f"drain {BATCH_MESSAGES} messages over 200 keys with a no-op publisher (ns per message)",
        (
            Contender(
                "floor",
                "floor",
                "SELECT 100 waiting rows, json.loads, UPDATE them sent (no leases, no order)",
                floor,
            ),
            Contender(
                "interlock",
                "interlock",
                "OutboxRelay.run_once() until empty (batch 100, leases, per-key heads)",
                interlock,
            ),
            Contender(
                "iap",
                IAP,
                "SQLiteOutbox.pending() + mark_published() per message",
                iap,
                requires="integration_automation_patterns",
            ),
        ),
        goals=goals,
        full_rounds=8,
        quick_rounds=3,
        measure=self_timed,
        unit="us/call",
        heavy=True,  # the peer commits each of its 2,000 messages with a full fsync
    )


# --------------------------------------------------------------------------------------
# Hot path 3: 4 relays vs 1 relay on PostgreSQL (publish models a broker round trip)
# --------------------------------------------------------------------------------------

FLEET_MESSAGES = 2000
BROKER_SECONDS = 0.0005  # one simulated broker round trip per message


def _postgres_ready() -> str | None:
    """Why the PostgreSQL path cannot run, or None."""
    if not os.environ.get(DSN_VARIABLE):
        return f"{DSN_VARIABLE} is unset"
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed"
    return None


def _fleet(relays: int) -> Call:
    import psycopg

    from interlock.outbox import OutboxRelay, add, migrate

    dsn = os.environ[DSN_VARIABLE]
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    conninfo = f"{dsn} options='-c search_path={schema}'"
    conn = psycopg.connect(conninfo)
    migrate(conn)

    def publish(_message: object) -> None:
        time.sleep(BROKER_SECONDS)

    fleet = [
        OutboxRelay(lambda: psycopg.connect(conninfo), publish, batch_size=50)
        for _ in range(relays)
    ]

    def drain() -> float:
        for n in range(FLEET_MESSAGES):
            add(conn, topic="orders", key=f"key-{n % 200}", payload=PAYLOAD)
        conn.commit()
        counts = [0] * relays

        def work(i: int) -> None:
            while sum(counts) < FLEET_MESSAGES:  # a claim may come back empty under contention
                counts[i] += fleet[i].run_once()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(relays)]
        start = perf_counter_ns()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = perf_counter_ns() - start
        _check(sum(counts), FLEET_MESSAGES)
        conn.execute("DELETE FROM interlock_outbox")
        conn.commit()
        return elapsed / FLEET_MESSAGES

    _SCHEMAS.append((dsn, schema, conn, fleet))
    return drain


_SCHEMAS: list[tuple[str, str, Any, list[Any]]] = []


def _drop_schemas() -> None:
    import psycopg

    while _SCHEMAS:
        dsn, schema, conn, fleet = _SCHEMAS.pop()
        for relay in fleet:
            relay.close()
        conn.close()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def outbox_fleet_postgres() -> HotPath:
    def one() -> Call:
        why = _postgres_ready()
        if why:
            raise RuntimeError(why)
        return _fleet(1)

    def four() -> Call:
        why = _postgres_ready()
        if why:
            raise RuntimeError(why)
        return _fleet(4)

    def goals(result: PathResult) -> list[Verdict]:
        why = _postgres_ready()
        if why:
            return [Verdict("SKIP", f"4 relays >= 2.5x one relay's throughput: {why}")]
        try:
            ratios = result.ratios("interlock")
            if not ratios:
                return [Verdict("SKIP", "4 relays >= 2.5x one relay's throughput: not measured")]
            speedup = 1 / statistics.median(ratios)
            status = "PASS" if speedup >= 2.5 else "FAIL"
            text = f"4 relays >= 2.5x one relay's throughput on PostgreSQL: {speedup:.2f}x"
            return [Verdict(status, text)]
        finally:
            _drop_schemas()

    return HotPath(
        "outbox-fleet-postgres",
        f"drain {FLEET_MESSAGES} messages over 200 keys, publish sleeps "
        f"{BROKER_SECONDS * 1000:.1f} ms per message (a broker round trip), ns per message",
        (
            Contender("floor", "1 relay", "one OutboxRelay thread, batch 50", one),
            Contender("interlock", "4 relays", "four OutboxRelay threads, batch 50", four),
        ),
        goals=goals,
        full_rounds=5,
        quick_rounds=2,
        measure=self_timed,
        notes=(
            (
                "Relays are threads in one process (the GIL is released during DB and broker "
                "waits); each has its own connection and leases its own batches."
            ),
        ),
    )


HOT_PATHS = (outbox_add, outbox_relay_sqlite, outbox_fleet_postgres)
