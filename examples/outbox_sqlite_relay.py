# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""An order service on SQLite: orders and their messages commit together; a relay publishes them.

Shows: a rolled-back order publishes nothing, a flaky broker is retried with backoff (on a
fake clock) while other keys go on, and per-key order holds (alice's o-1 before o-4).
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from interlock.outbox import OutboxMessage, OutboxRelay, add, migrate, stats


def main() -> None:
    path = Path(tempfile.mkdtemp()) / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    migrate(conn)
    conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY, customer TEXT)")
    conn.commit()

    for order, customer, commit in [
        ("o-1", "alice", True),
        ("o-2", "bob", True),
        ("o-3", "alice", False),  # the handler fails: rolled back with its message
        ("o-4", "alice", True),
    ]:
        conn.execute("INSERT INTO orders VALUES (?, ?)", (order, customer))
        add(conn, topic="orders", key=customer, payload={"order": order})
        conn.commit() if commit else conn.rollback()
    print("committed orders:", [r[0] for r in conn.execute("SELECT id FROM orders")])

    now = [1_800_000_000.0]
    applied: dict[str, str] = {}  # the consumer's inbox: message_id -> order
    flaky = {"calls": 0}

    def publish(message: OutboxMessage) -> None:
        flaky["calls"] += 1
        if flaky["calls"] == 1:
            raise ConnectionError("broker timeout")
        if message.message_id in applied:
            print(f"  duplicate {message.payload['order']} ignored by the consumer")
            return
        applied[message.message_id] = message.payload["order"]
        print(f"  published {message.key}: {message.payload['order']} (attempt {message.attempt})")

    relay = OutboxRelay(lambda: sqlite3.connect(path), publish, clock=lambda: now[0])
    print("relay, broker fails once:")
    relay.run_once()
    now[0] += 1.0  # the first backoff is 1 second
    print("relay, one second later:")
    relay.run_once()
    relay.close()
    print("stats:", stats(conn, now=now[0]))
    if list(applied.values()) != ["o-2", "o-1", "o-4"]:
        raise SystemExit("unexpected order")
    conn.close()


if __name__ == "__main__":
    main()
