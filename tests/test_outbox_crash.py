"""interlock.outbox under SIGKILL and with a fleet of relay processes (SQLite and PostgreSQL)."""

# ruff: noqa: S608 - SQL in these tests names the module's constant table

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from interlock import idempotency
from interlock.outbox import TABLE, OutboxMessage, OutboxRelay, add, migrate, stats

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 15  # two children per round, each killed: 30 SIGKILLs per backend
KEYS = 6
FAR = 10.0**7  # the final drain's clock offset: every lease and backoff has run out

# The child: a web handler and a relay in one process, in a loop. Each transaction writes
# orders and their messages and commits or rolls back; then the relay publishes a batch
# into the sink, a SQLite database standing for the broker and its consumer: every
# delivery is logged, and the consumer applies the effect through an inbox keyed on the
# message id, in the same transaction as the effect. Publishing fails now and then, before
# the delivery or after it (a lost acknowledgement). The parent kills it with SIGKILL.
CHILD = r"""
import random, sqlite3, sys, time
from interlock import outbox
from interlock.idempotency import inbox

backend, target, sink_path, offset, seed = sys.argv[1:6]
offset, seed = float(offset), int(seed)
rng = random.Random(seed)
if backend == "sqlite":
    def connect():
        return sqlite3.connect(target, timeout=30)
    q = lambda sql: sql
else:
    import psycopg
    def connect():
        return psycopg.connect(target)
    q = lambda sql: sql.replace("?", "%s")

sink = sqlite3.connect(sink_path, timeout=30, isolation_level=None)

def publish(message):
    if rng.random() < 0.05:
        raise RuntimeError("refused before delivery")
    sink.execute("BEGIN IMMEDIATE")
    sink.execute(
        "INSERT INTO deliveries (message_id, key) VALUES (?, ?)", (message.message_id, message.key)
    )
    with inbox(sink, scope="crash", key=message.message_id) as entry:
        if entry.is_new:
            sink.execute("INSERT INTO effects (message_id) VALUES (?)", (message.message_id,))
            sink.execute("UPDATE total SET amount = amount + ?", (message.payload["amount"],))
    sink.execute("COMMIT")
    if rng.random() < 0.05:
        raise RuntimeError("acknowledgement lost")

relay = outbox.OutboxRelay(
    connect, publish, batch_size=rng.choice([1, 3, 10]), lease_seconds=30.0,
    max_attempts=10**6, backoff=lambda attempt: 0.5, clock=lambda: time.time() + offset,
)
writer = connect()
i = 0
while True:
    i += 1
    if backend == "sqlite":
        writer.execute("BEGIN IMMEDIATE")
    cur = writer.cursor()
    keys = sorted(rng.sample(range(KEYS), rng.choice([1, 2])))  # sorted: no lock cycles
    for key in keys:
        oid = f"{seed}-{i}-{key}"
        cur.execute(
            q("INSERT INTO orders (id, key, amount) VALUES (?, ?, ?)"), (oid, f"k{key}", key + 1)
        )
        outbox.add(writer, topic="orders", key=f"k{key}", payload={"order": oid, "amount": key + 1},
                   message_id=f"m-{oid}")
    if rng.random() < 0.25:
        writer.rollback()
    else:
        writer.commit()
    print("w", flush=True)
    relay.run_once()
    print("r", flush=True)
""".replace("KEYS", str(KEYS))


def _sink(path: Path) -> sqlite3.Connection:
    sink = sqlite3.connect(path, timeout=30, isolation_level=None)
    sink.execute("PRAGMA journal_mode=WAL")
    sink.execute(
        "CREATE TABLE IF NOT EXISTS deliveries "
        "(pos INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL, key TEXT NOT NULL)"
    )
    sink.execute("CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL)")
    sink.execute("CREATE TABLE IF NOT EXISTS total (amount INTEGER NOT NULL)")
    sink.execute("INSERT INTO total SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM total)")
    idempotency.migrate(sink)
    return sink


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill_after(child: subprocess.Popen[str], lines: int) -> None:
    """Wait for ``lines`` progress lines, then SIGKILL the child."""
    assert child.stdout is not None
    for _ in range(lines):
        if not child.stdout.readline():
            _, err = child.communicate()
            pytest.fail(f"the child ended before it was killed:\n{err}")
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    child.stdout.close()
    assert child.stderr is not None
    child.stderr.close()


def _crash_and_verify(
    backend: str, target: str, connect: Callable[[], Any], sink_path: Path, seed: int
) -> None:
    conn = connect()
    migrate(conn)
    cur = conn.cursor()
    cur.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, key TEXT NOT NULL, amount INTEGER)")
    conn.commit()
    sink = _sink(sink_path)
    rng = random.Random(seed)
    kills = 0
    for round_no in range(ROUNDS):
        offset = str(round_no * 1000.0)  # the next round's relays see these leases expired
        children = [
            _spawn(backend, target, str(sink_path), offset, str(seed * 1000 + round_no * 2 + i))
            for i in range(2)
        ]
        for child in children:
            _kill_after(child, rng.randint(1, 14))
            kills += 1
    assert kills >= 30

    def publish(message: OutboxMessage) -> None:
        sink.execute("BEGIN IMMEDIATE")
        sink.execute(
            "INSERT INTO deliveries (message_id, key) VALUES (?, ?)",
            (message.message_id, message.key),
        )
        with idempotency.inbox(sink, scope="crash", key=message.message_id) as entry:
            if entry.is_new:
                sink.execute("INSERT INTO effects (message_id) VALUES (?)", (message.message_id,))
                sink.execute("UPDATE total SET amount = amount + ?", (message.payload["amount"],))
        sink.execute("COMMIT")

    relay = OutboxRelay(connect, publish, clock=lambda: time.time() + FAR, max_attempts=10**6)
    while relay.run_once():
        pass
    relay.close()

    cur.execute(f"SELECT seq, id, aggregateid FROM {TABLE} ORDER BY seq")
    messages = cur.fetchall()
    cur.execute("SELECT id, amount FROM orders")
    orders = dict(cur.fetchall())
    counts = stats(conn, now=time.time() + FAR)
    conn.commit()
    assert len(messages) > 30  # the run did real work
    # atomicity: a message exists exactly for each committed order
    assert {mid for _, mid, _ in messages} == {f"m-{oid}" for oid in orders}
    deliveries = sink.execute("SELECT message_id, key FROM deliveries ORDER BY pos").fetchall()
    delivered = [mid for mid, _ in deliveries]
    committed = {mid for _, mid, _ in messages}
    assert set(delivered) <= committed, "a rolled-back message was published"
    assert committed <= set(delivered), "a committed message was never published"
    assert (counts.pending, counts.in_flight, counts.dead_lettered) == (0, 0, 0)
    # per-key order: the first delivery of each message follows the key's commit order
    seq_of = {mid: seq for seq, mid, _ in messages}
    first: dict[str, list[int]] = {}
    seen: set[str] = set()
    for mid, key in deliveries:
        if mid not in seen:
            seen.add(mid)
            first.setdefault(key, []).append(seq_of[mid])
    for key, seqs in first.items():
        assert seqs == sorted(seqs), f"key {key} published out of order"
    # the consumer applied each effect exactly once although deliveries repeat
    effects = sink.execute(
        "SELECT message_id, COUNT(*) FROM effects GROUP BY message_id"
    ).fetchall()
    assert dict(effects) == dict.fromkeys(committed, 1)
    (total,) = sink.execute("SELECT amount FROM total").fetchone()
    assert total == sum(orders.values())
    assert len(delivered) >= len(committed)
    sink.close()
    conn.close()


def test_sigkill_sqlite_loses_nothing_invents_nothing_keeps_order(tmp_path: Path) -> None:
    """30 SIGKILLs on SQLite: commits published, rollbacks not, key order kept, effect once."""
    path = tmp_path / "outbox.db"
    first = sqlite3.connect(path)
    first.execute("PRAGMA journal_mode=WAL")
    first.close()
    _crash_and_verify(
        "sqlite", str(path), lambda: sqlite3.connect(path, timeout=30), tmp_path / "sink.db", 1
    )


def test_sigkill_postgres_loses_nothing_invents_nothing_keeps_order(
    postgres: Any, tmp_path: Path
) -> None:
    """30 SIGKILLs on PostgreSQL: commits published, rollbacks not, key order kept, effect once."""
    _crash_and_verify("postgres", postgres.conninfo, postgres.connect, tmp_path / "sink.db", 2)


# --------------------------------------------------------------------------------------
# A fleet: 4 relay processes drain 20,000 messages over 200 keys
# --------------------------------------------------------------------------------------

FLEET = r"""
import json, sys, time
import psycopg
from interlock.outbox import OutboxRelay, stats

conninfo, out = sys.argv[1], sys.argv[2]
log = []

def publish(message):
    log.append((time.monotonic_ns(), message.message_id, message.key, message.payload["n"]))

relay = OutboxRelay(lambda: psycopg.connect(conninfo), publish, batch_size=100)
watch = psycopg.connect(conninfo, autocommit=True)
sys.stdin.readline()  # start together
while True:
    if relay.run_once() == 0:
        counts = stats(watch)
        if counts.pending == 0 and counts.in_flight == 0:
            break
relay.close()
with open(out, "w") as f:
    json.dump(log, f)
"""

MESSAGES, FLEET_KEYS, RELAYS = 20_000, 200, 4


def test_four_relay_processes_drain_20000_messages_in_order_without_duplicates(
    postgres: Any, tmp_path: Path
) -> None:
    """4 relays on PostgreSQL: 20,000 messages over 200 keys, each once, per-key order intact."""
    conn = postgres.connect()
    migrate(conn)
    per_key = MESSAGES // FLEET_KEYS
    for n in range(per_key):
        for k in range(FLEET_KEYS):
            add(conn, topic="fleet", key=f"key-{k}", payload={"n": n})
        if n % 10 == 9:
            conn.commit()
    conn.commit()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    outs = [tmp_path / f"relay-{i}.json" for i in range(RELAYS)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", FLEET, postgres.conninfo, str(out)],
            stdin=subprocess.PIPE,
            text=True,
            env=env,
        )
        for out in outs
    ]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        child.stdin.close()
    for child in children:
        assert child.wait(timeout=120) == 0
    log: list[tuple[int, str, str, int]] = []
    shares = []
    for out in outs:
        part = [tuple(item) for item in json.loads(out.read_text())]
        shares.append(len(part))
        log.extend(part)  # type: ignore[arg-type]
    ids = [mid for _, mid, _, _ in log]
    assert len(ids) == MESSAGES
    assert len(set(ids)) == MESSAGES, "a message was published twice"
    log.sort()
    by_key: dict[str, list[int]] = {}
    for _, _, key, n in log:
        by_key.setdefault(key, []).append(n)
    assert len(by_key) == FLEET_KEYS
    assert all(ns == list(range(per_key)) for ns in by_key.values())
    assert sum(1 for share in shares if share > 0) >= 2  # the work was shared
    conn.close()
