"""The public API of interlock.outbox under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import sqlite3
import threading

from interlock.outbox import (
    SCHEMA_VERSION,
    TABLE,
    DeadLetter,
    MemoryOutbox,
    MessageState,
    OutboxError,
    OutboxMessage,
    OutboxRelay,
    OutboxStats,
    OutboxStore,
    SQLOutbox,
    add,
    dead_letters,
    default_backoff,
    migrate,
    purge,
    redrive,
    stats,
)

conn = sqlite3.connect(":memory:")
version: int = migrate(conn)
same: bool = version == SCHEMA_VERSION
table: str = TABLE
mid: str = add(conn, topic="orders", key="o-1", payload={"total": 1}, headers={"h": "v"})
add(conn, topic="orders", key="o-1", payload=None, message_id="m-2", event_type="Created")
conn.commit()


seen: list[object] = []


def publish(message: OutboxMessage) -> None:
    seen.extend([message.message_id, message.topic, message.key, message.payload, message.attempt])


async def publish_async(message: OutboxMessage) -> None:
    seen.extend([message.headers.get("h"), message.event_type, message.created_at])


relay = OutboxRelay(
    lambda: sqlite3.connect(":memory:"),
    publish,
    batch_size=50,
    lease_seconds=10.0,
    max_attempts=5,
    backoff=default_backoff,
    clock=None,
    dead_blocks_key=False,
)
published: int = relay.run_once()
with OutboxRelay(MemoryOutbox(), publish_async) as other:
    total: int = other.run(threading.Event(), idle_seconds=0.5, on_error=print)
lost: int = relay.lost_leases

letters: list[DeadLetter] = dead_letters(conn, limit=10)
errors: list[str | None] = [d.last_error for d in letters]
again: int = redrive(conn, [d.message_id for d in letters])
gone: int = purge(conn, older_than=86400.0, dead=False)
counts: OutboxStats = stats(conn)
age: float | None = counts.oldest_pending_age
store: OutboxStore = SQLOutbox(conn)
memory: OutboxStore = MemoryOutbox(clock=lambda: 0.0)
state: MessageState = MessageState.PENDING
state.check_transition(MessageState.IN_FLIGHT)
try:
    MessageState.SENT.check_transition(MessageState.PENDING)
except OutboxError as exc:
    seen.append(exc)
