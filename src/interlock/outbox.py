# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
# ruff: noqa: S608 - table names are module constants; every value is a bound parameter
"""Transactional outbox: the message commits with the business row; a relay publishes it.

Verdict:
    Use it when a service must change its database and tell another system about it,
    and losing or inventing that message is not acceptable: ``add()`` writes the message
    in the caller's open transaction on the caller's DB-API connection (SQLite or
    PostgreSQL) and never commits, and an ``OutboxRelay`` (one process, or a fleet on
    PostgreSQL) publishes every committed message at least once, in order per key,
    with retries, backoff and dead letters.
    Do not use it when the effect has no database write to ride on (call the broker
    directly), when you need exactly-once delivery without a deduplicating consumer
    (delivery is at least once: pair the consumer with an idempotency key on
    ``message_id``), or when the outbox table already feeds Debezium's Outbox Event
    Router (then Debezium is the relay; keep only ``add()``).

Prevents:
    - Dual writes: the business row committed and the message lost (or the message sent
      and the business row rolled back); a rolled-back transaction publishes nothing.
    - Every relay publishing every row: relays claim disjoint batches with lease tokens
      (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite); a dead
      relay's lease expires and another relay takes over.
    - Out-of-order delivery per key, even with many relays and with sequence numbers
      allocated out of commit order: only the oldest unfinished message of a key is
      claimable, and on PostgreSQL ``add()`` serialises writers of the same key.
    - Marking unsent messages as sent: a message is marked only after ``publish``
      returned (or its awaitable finished) without raising.
    - Poison messages retried forever: capped attempts, backoff on the database clock,
      dead letters with the last error, ``redrive`` and ``purge``.

References:
    - Chris Richardson, "Pattern: Transactional outbox" (microservices.io).
    - Debezium Outbox Event Router (transformations/outbox-event-router): the table has
      its columns ``id``, ``aggregatetype``, ``aggregateid``, ``type``, ``payload``.
    - PostgreSQL documentation: ``SELECT ... FOR UPDATE SKIP LOCKED`` and advisory locks;
      SQLite documentation: ``BEGIN IMMEDIATE`` and write-ahead logging.

Exceptions:
    OutboxError (RuntimeError)          root of everything this module raises itself
    +-- SchemaVersionError              the database schema is newer than this code; .found
    +-- MessageStateError               an illegal state transition; .current, .target

    Bad arguments raise ``TypeError`` or ``ValueError`` naming the argument. Database
    errors (a duplicate ``message_id``, a lost connection) are the driver's own.

Example:
    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> migrate(conn)
    1
    >>> _ = conn.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    >>> _ = conn.execute("INSERT INTO orders VALUES ('o-1')")
    >>> message_id = add(conn, topic="orders", key="o-1", payload={"total": 42})
    >>> conn.commit()
    >>> sent = []
    >>> relay = OutboxRelay(lambda: conn, sent.append)
    >>> relay.run_once()
    1
    >>> sent[0].message_id == message_id, sent[0].key, sent[0].payload
    (True, 'o-1', {'total': 42})
    >>> stats(conn).pending
    0
"""

from __future__ import annotations

import enum
import os
import sys
import threading
import time
from dataclasses import dataclass

# typing, json, inspect and asyncio load only for the type checker or on first use:
# importing this module stays cheap (see docs/explanation/architecture.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from types import ModuleType
    from typing import Any, Protocol

    class _Stop(Protocol):
        def is_set(self) -> bool: ...
        def wait(self, timeout: float | None = None) -> bool: ...

else:
    Protocol = object  # a runtime stand-in: OutboxStore is a Protocol for the type checker


__all__ = [
    "SCHEMA_VERSION",
    "TABLE",
    "DeadLetter",
    "MemoryOutbox",
    "MessageState",
    "MessageStateError",
    "OutboxError",
    "OutboxMessage",
    "OutboxRelay",
    "OutboxStats",
    "OutboxStore",
    "SQLOutbox",
    "SchemaVersionError",
    "add",
    "dead_letters",
    "default_backoff",
    "migrate",
    "purge",
    "redrive",
    "stats",
]

SCHEMA_VERSION = 1
"""The schema version ``migrate()`` creates."""

TABLE = "interlock_outbox"
"""The outbox table's name (its schema-version table is ``interlock_outbox_schema``)."""

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class OutboxError(RuntimeError):
    """Root of every error this module raises itself."""


class SchemaVersionError(OutboxError):
    """The database holds a newer outbox schema than this code knows.

    Attributes:
        found: the schema version recorded in the database.
    """

    def __init__(self, found: int) -> None:
        super().__init__(
            f"the outbox schema in the database is version {found}, "
            f"newer than this code's version {SCHEMA_VERSION}: upgrade interlock"
        )
        self.found = found


class MessageStateError(OutboxError):
    """A message was asked to move between two states that have no transition.

    Attributes:
        current: the state the message is in.
        target: the state it was asked to enter.
    """

    def __init__(self, current: MessageState, target: MessageState) -> None:
        super().__init__(f"an outbox message cannot go from {current.name} to {target.name}")
        self.current = current
        self.target = target


# --------------------------------------------------------------------------------------
# States and values
# --------------------------------------------------------------------------------------


class MessageState(enum.Enum):
    """Where a message is in its life (see the diagram in docs/explanation/outbox.md).

    ``PENDING`` waits for a relay (maybe until its backoff ends), ``IN_FLIGHT`` is
    leased by one relay, ``SENT`` was published, ``DEAD`` exhausted its attempts.
    """

    PENDING = "PENDING"
    IN_FLIGHT = "IN_FLIGHT"
    SENT = "SENT"
    DEAD = "DEAD"

    def check_transition(self, target: MessageState) -> None:
        """Raise :class:`MessageStateError` unless ``self -> target`` is a transition."""
        if target not in _TRANSITIONS[self]:
            raise MessageStateError(self, target)


# claim; publish ok / failed with attempts left, released or lease expired / failed for
# the last time; redrive. SENT and DEAD rows leave only through purge.
_TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.PENDING: frozenset({MessageState.IN_FLIGHT}),
    MessageState.IN_FLIGHT: frozenset({MessageState.SENT, MessageState.PENDING, MessageState.DEAD}),
    MessageState.SENT: frozenset(),
    MessageState.DEAD: frozenset({MessageState.PENDING}),
}

_PENDING, _SENT, _DEAD = 0, 1, 2  # the ``state`` column; IN_FLIGHT is PENDING with a lease


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message as a relay hands it to ``publish``.

    Attributes:
        message_id: the id ``add()`` returned (a UUID unless the caller chose one);
            consumers deduplicate on it.
        topic: where it goes (the Debezium ``aggregatetype`` column).
        key: the ordering key (the ``aggregateid`` column): messages of one key are
            published in the order their transactions committed.
        payload: the JSON value given to ``add()``, decoded.
        headers: the string headers given to ``add()`` (empty if none).
        attempt: 1 on the first delivery, 2 on the next, and so on.
        event_type: the Debezium ``type`` column (the topic unless ``add()`` got one).
        created_at: when ``add()`` ran, in seconds since the Unix epoch (database clock).
    """

    message_id: str
    topic: str
    key: str
    payload: Any
    headers: Mapping[str, str]
    attempt: int
    event_type: str
    created_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that exhausted its attempts, as :func:`dead_letters` lists it.

    Attributes:
        message_id, topic, key, payload, headers, event_type: as in :class:`OutboxMessage`.
        attempts: how many deliveries were tried.
        last_error: the last failure, as ``"ExceptionType: message"``.
        dead_at: when it was dead-lettered, in seconds since the Unix epoch.
    """

    message_id: str
    topic: str
    key: str
    payload: Any
    headers: Mapping[str, str]
    event_type: str
    attempts: int
    last_error: str | None
    dead_at: float | None


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counts for a dashboard or an alert, from :func:`stats`.

    Attributes:
        pending: messages waiting for a relay (including those in backoff).
        oldest_pending_age: seconds since the oldest waiting or in-flight message was
            added, ``None`` if there is none. Alert on this one.
        in_flight: messages leased by a relay right now (lease not expired).
        dead_lettered: messages waiting in the dead letters.
        sent: published messages not purged yet.
    """

    pending: int
    oldest_pending_age: float | None
    in_flight: int
    dead_lettered: int
    sent: int


class _Claim:
    """What a store hands the relay: a lease token and the claimed rows in order.

    A plain slotted class, not a dataclass: it is private and a dataclass costs import time.
    """

    __slots__ = ("rows", "token")

    def __init__(self, token: str, rows: list[tuple[int, OutboxMessage]]) -> None:
        self.token = token
        self.rows = rows


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def default_backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): 1, 2, 4, ... capped at 300."""
    return float(min(300, 2 ** min(attempt - 1, 9)))


def _new_id() -> str:
    """A random RFC 9562 version-4 UUID as text, without importing ``uuid``."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _json() -> ModuleType:
    import json  # noqa: PLC0415 - deferred: only reading and writing messages needs it

    return json


def _inspect() -> ModuleType:
    import inspect  # noqa: PLC0415 - deferred: only a relay needs it

    return inspect


def _asyncio() -> ModuleType:
    import asyncio  # noqa: PLC0415 - deferred: only an awaitable publish needs it

    return asyncio


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__qualname__}: {exc}"
    return text if len(text) <= 2000 else text[:1997] + "..."


def _check_text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise ValueError(f"{name} must not be empty, got {value!r}")
    return value


def _encode_headers(headers: Mapping[str, str] | None) -> str | None:
    if headers is None:
        return None
    try:
        items = dict(headers)
    except (TypeError, ValueError):
        raise TypeError(f"headers must be a mapping of str to str, got {headers!r}") from None
    for name, value in items.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"headers must map str to str, got {name!r}: {value!r}")
    return _json().dumps(items, separators=(",", ":")) if items else None


_ENCODER: list[Any] = []  # one compact JSON encoder, made on first use


def _encode_payload(payload: object) -> str:
    if not _ENCODER:
        _ENCODER.append(_json().JSONEncoder(separators=(",", ":"), allow_nan=False).encode)
    try:
        return str(_ENCODER[0](payload))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload must be a JSON value, got {payload!r}: {exc}") from None


def _decode(text: Any) -> Any:
    """JSON text (or bytes) from the database, decoded; SQL NULL is ``None``."""
    return None if text is None else _json().loads(text)


def _decode_headers(text: object) -> Mapping[str, str]:
    value = _decode(text)
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------
# DB-API adapter: the same small block in every module that stores state in SQL
# (a deliberate duplicate, see CONVENTIONS "small duplication beats coupling").
# --------------------------------------------------------------------------------------


class _Dialect:
    """What a DB-API connection speaks: ``sqlite`` or ``postgresql``, and its paramstyle.

    The module writes its SQL once with ``?`` placeholders; ``sql()`` rewrites them for
    the driver's paramstyle (qmark, format/pyformat ``%s``, numeric ``:1``).
    The driver is never imported: it is recognised from the connection's class.
    """

    __slots__ = ("name", "paramstyle")

    def __init__(self, name: str, paramstyle: str) -> None:
        self.name = name
        self.paramstyle = paramstyle

    def sql(self, text: str) -> str:
        if self.paramstyle == "qmark":
            return text
        parts = text.split("?")
        if self.paramstyle == "numeric":
            marks = [f":{i}" for i in range(1, len(parts))]
        else:  # format and pyformat
            marks = ["%s"] * (len(parts) - 1)
        out = [parts[0]]
        for mark, part in zip(marks, parts[1:]):  # noqa: B905 - the shared adapter block
            out += [mark, part]
        return "".join(out)


def _dialect_of(conn: object) -> _Dialect:
    """Recognise the connection's driver by its module; refuse what we cannot speak."""
    root = type(conn).__module__.split(".")[0]
    driver = sys.modules.get(root)
    paramstyle = getattr(driver, "paramstyle", None)
    if root in ("sqlite3", "_sqlite3"):
        return _Dialect("sqlite", "qmark")
    if root in ("psycopg", "psycopg2", "pg8000", "psycopg2cffi") and paramstyle in (
        "format",
        "pyformat",
        "numeric",
    ):
        return _Dialect("postgresql", paramstyle)
    raise TypeError(
        f"unsupported DB-API connection {type(conn).__module__}.{type(conn).__qualname__}: "
        "interlock speaks sqlite3 and PostgreSQL drivers (psycopg, psycopg2, pg8000)"
    )


# --------------------------------------------------------------------------------------
# The schema and its SQL
# --------------------------------------------------------------------------------------

# Times are seconds since the Unix epoch (float) on both databases, so the relay can
# pass its own clock (tests) or read the database's once per transaction.
_NOW = {
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
    "postgresql": "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)",
}

_SCHEMA_V1 = {
    "sqlite": (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            aggregatetype TEXT NOT NULL,
            aggregateid TEXT NOT NULL,
            type TEXT NOT NULL,
            payload TEXT,
            headers TEXT,
            state INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            available_at REAL NOT NULL DEFAULT 0,
            lease_token TEXT,
            lease_expires_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
            finished_at REAL)""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_open ON {TABLE} (aggregateid, seq) WHERE state <> 1",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_waiting ON {TABLE} (seq) WHERE state = 0",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_finished ON {TABLE} (finished_at) WHERE state <> 0",
    ),
    "postgresql": (
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            id VARCHAR(255) NOT NULL UNIQUE,
            aggregatetype VARCHAR(255) NOT NULL,
            aggregateid VARCHAR(255) NOT NULL,
            type VARCHAR(255) NOT NULL,
            payload JSONB,
            headers JSONB,
            state SMALLINT NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            available_at DOUBLE PRECISION NOT NULL DEFAULT 0,
            lease_token VARCHAR(64),
            lease_expires_at DOUBLE PRECISION,
            last_error TEXT,
            created_at DOUBLE PRECISION NOT NULL
                DEFAULT CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION),
            finished_at DOUBLE PRECISION)""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_open ON {TABLE} (aggregateid, seq) WHERE state <> 1",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_waiting ON {TABLE} (seq) WHERE state = 0",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_finished ON {TABLE} (finished_at) WHERE state <> 0",
    ),
}

# The advisory-lock class that namespaces add()'s per-key locks (pg_advisory_xact_lock(int, int)).
_LOCK_CLASS = 0x1B0C
_COLUMNS = "id, aggregatetype, aggregateid, type, payload, headers"
_ADD = {
    "sqlite": f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
    # Same-key writers queue on a transaction-scoped advisory lock taken *before* the
    # identity value is drawn, so a key's sequence numbers follow its commit order.
    "postgresql": (
        f"WITH k AS (SELECT pg_advisory_xact_lock({_LOCK_CLASS}, hashtext(?)) AS locked) "
        f"INSERT INTO {TABLE} ({_COLUMNS}) "
        "SELECT ?, ?, ?, ?, CAST(? AS JSONB), CAST(? AS JSONB) FROM k"
    ),
}
_ADD_SQL: dict[tuple[str, str], str] = {}

_ROW = (
    "seq, id, aggregatetype, aggregateid, type, CAST(payload AS TEXT), CAST(headers AS TEXT), "
    "attempts, created_at"
)


def _in(n: int) -> str:
    return "(" + ", ".join("?" * n) + ")"


def _commit(conn: Any) -> None:
    conn.commit()


def _begin(conn: Any, dialect: _Dialect) -> None:
    """Open a write transaction: ``BEGIN IMMEDIATE`` on SQLite, implicit on PostgreSQL."""
    if dialect.name == "sqlite":
        if conn.in_transaction:
            conn.commit()
        conn.execute("BEGIN IMMEDIATE")
    elif getattr(conn, "autocommit", False) is True:
        conn.cursor().execute("BEGIN")


def migrate(conn: Any) -> int:
    """Create or upgrade the outbox tables on ``conn``; commit; return the schema version.

    Idempotent: running it again (or from two processes at once) changes nothing. The
    version is recorded in ``interlock_outbox_schema``.

    Raises:
        SchemaVersionError: the database holds a newer schema than this code.
        TypeError: ``conn`` is not a sqlite3 or PostgreSQL DB-API connection.
    """
    if isinstance(conn, MemoryOutbox):
        return SCHEMA_VERSION
    dialect = _dialect_of(conn)
    _begin(conn, dialect)
    cur = conn.cursor()
    try:
        if dialect.name == "postgresql":  # two migrating processes take turns
            cur.execute(f"SELECT pg_advisory_xact_lock({_LOCK_CLASS}, 0)")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE}_schema "
            "(version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        cur.execute(f"SELECT MAX(version) FROM {TABLE}_schema")
        found = cur.fetchone()[0] or 0
        if found > SCHEMA_VERSION:
            raise SchemaVersionError(found)  # noqa: TRY301 - rolled back just below
        if found < 1:
            for statement in _SCHEMA_V1[dialect.name]:
                cur.execute(statement)
            cur.execute(_NOW[dialect.name])
            now = float(cur.fetchone()[0])
            cur.execute(
                dialect.sql(f"INSERT INTO {TABLE}_schema (version, applied_at) VALUES (?, ?)"),
                (1, now),
            )
        _commit(conn)
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()
    return SCHEMA_VERSION


def add(
    conn: Any,
    *,
    topic: str,
    key: str,
    payload: object,
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
    event_type: str | None = None,
) -> str:
    """Write one message in the caller's open transaction on ``conn``; return its id.

    Never commits: the caller's commit publishes the message together with the business
    rows, the caller's rollback discards both. On PostgreSQL it takes a transaction-level
    advisory lock on ``key`` (writers of the same key wait for each other's commit; see
    docs/explanation/outbox.md for the cost).

    Args:
        conn: an open DB-API connection (sqlite3 or a PostgreSQL driver) after
            ``migrate(conn)``, or a :class:`MemoryOutbox`.
        topic: where the message goes (stored as Debezium's ``aggregatetype``).
        key: the ordering key (``aggregateid``): one entity's messages share it.
        payload: any JSON value (stored as JSON text; ``jsonb`` on PostgreSQL).
        headers: optional ``str -> str`` headers.
        message_id: the id consumers deduplicate on; a new UUID4 if omitted. A caller
            that derives it from the business operation gets producer-side dedup: the
            table's unique constraint refuses a second message with the same id.
        event_type: Debezium's ``type`` column; the topic if omitted.

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
        The driver's IntegrityError: ``message_id`` already exists.
    """
    if isinstance(conn, MemoryOutbox):
        return conn.add(
            topic=topic,
            key=key,
            payload=payload,
            headers=headers,
            message_id=message_id,
            event_type=event_type,
        )
    _check_text("topic", topic)
    _check_text("key", key)
    kind = topic if event_type is None else _check_text("event_type", event_type)
    mid = _new_id() if message_id is None else _check_text("message_id", message_id)
    body = _encode_payload(payload)
    head = None if headers is None else _encode_headers(headers)
    dialect = _dialect_of(conn)
    ident = (dialect.name, dialect.paramstyle)
    sql = _ADD_SQL.get(ident)
    if sql is None:
        sql = _ADD_SQL[ident] = dialect.sql(_ADD[dialect.name])
    cur = conn.cursor()
    try:
        if dialect.name == "sqlite":
            cur.execute(sql, (mid, topic, key, kind, body, head))
        else:
            cur.execute(sql, (key, mid, topic, key, kind, body, head))
    finally:
        cur.close()
    return mid


# --------------------------------------------------------------------------------------
# Storage: the Protocol, the in-memory store, the SQL store
# --------------------------------------------------------------------------------------


class OutboxStore(Protocol):
    """What a relay needs from storage: claim a batch, then settle it.

    :class:`SQLOutbox` (over a DB-API connection) and :class:`MemoryOutbox` implement it.
    Times are seconds since the Unix epoch; ``now=None`` means "the store's own clock"
    (the database clock for SQL).
    """

    def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        dead_blocks_key: bool,
        now: float | None = None,
    ) -> _Claim: ...

    def settle(
        self,
        token: str,
        *,
        sent: Sequence[int],
        failed: Sequence[tuple[int, str, float | None]],
        released: Sequence[int],
        now: float | None = None,
    ) -> int: ...

    def close(self) -> None: ...


def _pick(
    candidates: Iterable[tuple[int, str, int, float, float | None]],
    heads: Sequence[int],
    *,
    limit: int,
    now: float,
    dead_blocks_key: bool,
) -> list[int]:
    """The rows to claim: each head, then its key's next claimable rows, in key order.

    ``candidates`` are ``(seq, key, state, available_at, lease_expires_at)`` of every
    unfinished row of the heads' keys, ordered by key then seq.
    """
    head_set = set(heads)
    by_key: dict[str, list[int]] = {}
    started: set[str] = set()
    closed: set[str] = set()
    for seq, key, state, available_at, lease_expires_at in candidates:
        if key in closed:
            continue
        if key not in started:
            if seq in head_set:
                started.add(key)
                by_key[key] = [seq]
            continue
        claimable = (
            state == _PENDING
            and available_at <= now
            and (lease_expires_at is None or lease_expires_at <= now)
        )
        if claimable:
            by_key[key].append(seq)
        elif state != _DEAD or dead_blocks_key:
            closed.add(key)
    chosen = list(heads[:limit])
    room = limit - len(chosen)
    for seqs in by_key.values():
        if room <= 0:
            break
        extra = seqs[1 : 1 + room]
        chosen.extend(extra)
        room -= len(extra)
    return chosen


class SQLOutbox:
    """The outbox on one DB-API connection (sqlite3 or PostgreSQL): an :class:`OutboxStore`.

    ``OutboxRelay`` makes one from ``connect()``; use it directly to drive claims in a
    custom loop. ``claim`` and ``settle`` each run and commit their own transaction.
    """

    __slots__ = ("_conn", "_dialect", "_sql")

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._dialect = _dialect_of(conn)
        self._sql: dict[str, str] = {}

    def _q(self, text: str) -> str:
        sql = self._sql.get(text)
        if sql is None:
            sql = self._sql[text] = self._dialect.sql(text)
        return sql

    def _now(self, cur: Any, now: float | None) -> float:
        if now is not None:
            return now
        cur.execute(_NOW[self._dialect.name])
        return float(cur.fetchone()[0])

    def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        dead_blocks_key: bool,
        now: float | None = None,
    ) -> _Claim:
        """Lease up to ``limit`` messages (heads of their keys first); commit; return them."""
        conn = self._conn
        _begin(conn, self._dialect)
        cur = conn.cursor()
        try:
            rows = self._claim(
                cur,
                limit=limit,
                lease_seconds=lease_seconds,
                max_attempts=max_attempts,
                dead_blocks_key=dead_blocks_key,
                now=now,
            )
            _commit(conn)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        return rows

    def _claim(
        self,
        cur: Any,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        dead_blocks_key: bool,
        now: float | None,
    ) -> _Claim:
        at = self._now(cur, now)
        # "state <> 1" (not sent) is what the partial index on (aggregateid, seq) covers.
        unfinished = "state <> 1" if dead_blocks_key else "state = 0"
        # A head: the lowest unfinished row of its key, if it is waiting and due.
        due = (
            "state = 0 AND available_at <= ? "
            "AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
        )
        if self._dialect.name == "postgresql":
            # Find the heads without locks (one pass over the unfinished rows, whatever
            # the planner's statistics say), then lock them; heads another relay is
            # claiming right now are skipped, and their keys with them. The lock re-reads
            # each row, so a head claimed and committed meanwhile fails the check.
            cur.execute(
                self._q(
                    "SELECT seq FROM (SELECT DISTINCT ON (aggregateid) seq, state, available_at, "
                    f"lease_expires_at FROM {TABLE} WHERE {unfinished} "
                    f"ORDER BY aggregateid, seq) h WHERE {due} ORDER BY seq LIMIT ?"
                ),
                (at, at, 4 * limit),  # spares for the heads other relays lock meanwhile
            )
            spares = [row[0] for row in cur.fetchall()]
            if not spares:
                return _Claim(_new_id(), [])
            cur.execute(
                self._q(
                    f"SELECT seq, attempts FROM {TABLE} WHERE seq IN {_in(len(spares))} "
                    f"AND {due} ORDER BY seq LIMIT ? FOR UPDATE SKIP LOCKED"
                ),
                (*spares, at, at, limit),
            )
        else:
            cur.execute(
                self._q(
                    f"SELECT o.seq, o.attempts FROM {TABLE} o WHERE o.state = 0 "
                    "AND o.available_at <= ? AND (o.lease_expires_at IS NULL OR "
                    f"o.lease_expires_at <= ?) AND NOT EXISTS (SELECT 1 FROM {TABLE} e "
                    f"WHERE e.aggregateid = o.aggregateid AND e.seq < o.seq AND e.{unfinished}) "
                    "ORDER BY o.seq LIMIT ?"
                ),
                (at, at, limit),
            )
        heads: list[int] = []
        exhausted: list[int] = []
        for seq, attempts in cur.fetchall():
            (exhausted if attempts >= max_attempts else heads).append(seq)
        if exhausted:  # leased max_attempts times without an outcome: relays died on it
            cur.execute(
                self._q(
                    f"UPDATE {TABLE} SET state = 2, finished_at = ?, lease_token = NULL, "
                    "lease_expires_at = NULL, last_error = COALESCE(last_error, '') || ? "
                    f"WHERE seq IN {_in(len(exhausted))}"
                ),
                (at, "[lease expired on every attempt: relay crashed or timed out]", *exhausted),
            )
        token = _new_id()
        if not heads:
            return _Claim(token, [])
        chosen = heads
        if len(heads) < limit:
            cur.execute(
                self._q(
                    "SELECT seq, aggregateid, state, available_at, lease_expires_at "
                    f"FROM {TABLE} WHERE aggregateid IN (SELECT aggregateid FROM {TABLE} "
                    f"WHERE seq IN {_in(len(heads))}) AND state IN (0, 2) "
                    "ORDER BY aggregateid, seq"
                ),
                heads,
            )
            chosen = _pick(
                cur.fetchall(), heads, limit=limit, now=at, dead_blocks_key=dead_blocks_key
            )
        marks = _in(len(chosen))
        cur.execute(
            self._q(
                f"UPDATE {TABLE} SET lease_token = ?, lease_expires_at = ?, "
                f"attempts = attempts + 1 WHERE seq IN {marks}"
            ),
            (token, at + lease_seconds, *chosen),
        )
        cur.execute(self._q(f"SELECT {_ROW} FROM {TABLE} WHERE seq IN {marks}"), chosen)
        found = {row[0]: row for row in cur.fetchall()}
        out = []
        for seq in sorted(chosen):
            _, mid, topic, key, kind, payload, headers, attempts, created = found[seq]
            message = OutboxMessage(
                mid,
                topic,
                key,
                _decode(payload),
                _decode_headers(headers),
                attempts,
                kind,
                float(created),
            )
            out.append((seq, message))
        return _Claim(token, out)

    def settle(
        self,
        token: str,
        *,
        sent: Sequence[int],
        failed: Sequence[tuple[int, str, float | None]],
        released: Sequence[int],
        now: float | None = None,
    ) -> int:
        """Record a batch's outcomes under its lease token; commit; return rows updated.

        ``failed`` holds ``(seq, error, delay)``: ``delay`` seconds of backoff, or
        ``None`` to dead-letter. Rows whose lease was lost are left alone.
        """
        conn = self._conn
        _begin(conn, self._dialect)
        cur = conn.cursor()
        changed = 0
        try:
            at = self._now(cur, now)
            if sent:
                cur.execute(
                    self._q(
                        f"UPDATE {TABLE} SET state = 1, finished_at = ?, lease_token = NULL, "
                        f"lease_expires_at = NULL WHERE lease_token = ? AND seq IN {_in(len(sent))}"
                    ),
                    (at, token, *sent),
                )
                changed += cur.rowcount
            for seq, error, delay in failed:
                if delay is None:
                    sql = (
                        f"UPDATE {TABLE} SET state = 2, finished_at = ?, last_error = ?, "
                        "lease_token = NULL, lease_expires_at = NULL "
                        "WHERE lease_token = ? AND seq = ?"
                    )
                    params: tuple[Any, ...] = (at, error, token, seq)
                else:
                    sql = (
                        f"UPDATE {TABLE} SET available_at = ?, last_error = ?, "
                        "lease_token = NULL, lease_expires_at = NULL "
                        "WHERE lease_token = ? AND seq = ?"
                    )
                    params = (at + delay, error, token, seq)
                cur.execute(self._q(sql), params)
                changed += cur.rowcount
            if released:  # never tried: the attempt does not count
                cur.execute(
                    self._q(
                        f"UPDATE {TABLE} SET lease_token = NULL, lease_expires_at = NULL, "
                        "attempts = attempts - 1 WHERE lease_token = ? "
                        f"AND seq IN {_in(len(released))}"
                    ),
                    (token, *released),
                )
                changed += cur.rowcount
            _commit(conn)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        return changed

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


class _Row:
    __slots__ = (
        "attempts",
        "available_at",
        "created_at",
        "finished_at",
        "headers",
        "key",
        "last_error",
        "lease_expires_at",
        "lease_token",
        "message_id",
        "payload",
        "seq",
        "state",
        "topic",
        "type",
    )

    def __init__(self, seq: int, message_id: str, topic: str, key: str, kind: str) -> None:
        self.seq = seq
        self.message_id = message_id
        self.topic = topic
        self.key = key
        self.type = kind
        self.payload: Any = None
        self.headers: Mapping[str, str] = {}
        self.state = MessageState.PENDING
        self.attempts = 0
        self.available_at = 0.0
        self.lease_token: str | None = None
        self.lease_expires_at: float | None = None
        self.last_error: str | None = None
        self.created_at = 0.0
        self.finished_at: float | None = None

    def move(self, target: MessageState) -> None:
        self.state.check_transition(target)
        self.state = target


class MemoryOutbox:
    """An outbox in this process's memory: the test double, and a store for a relay.

    Pass it where a connection goes: ``add(memory, ...)``, ``stats(memory)``,
    ``OutboxRelay(memory, publish)``. It has no transactions (``add`` is visible at
    once) and dies with the process: for tests and demos, not for production.

    Args:
        clock: seconds since the Unix epoch (default ``time.time``); inject a fake one
            in tests to move backoff and lease expiry without sleeping.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[int, _Row] = {}
        self._ids: set[str] = set()
        self._next = 1

    def add(
        self,
        *,
        topic: str,
        key: str,
        payload: object,
        headers: Mapping[str, str] | None = None,
        message_id: str | None = None,
        event_type: str | None = None,
    ) -> str:
        """Store one message at once (same checks as :func:`add`); return its id.

        Raises:
            ValueError: ``message_id`` already exists (the SQL store's unique constraint).
        """
        _check_text("topic", topic)
        _check_text("key", key)
        kind = topic if event_type is None else _check_text("event_type", event_type)
        mid = _new_id() if message_id is None else _check_text("message_id", message_id)
        body = _json().loads(_encode_payload(payload))  # a copy, as the database would keep
        head = _decode_headers(_encode_headers(headers))
        with self._lock:
            if mid in self._ids:
                raise ValueError(f"message_id {mid!r} already exists in the outbox")
            row = _Row(self._next, mid, topic, key, kind)
            row.payload, row.headers, row.created_at = body, head, self._clock()
            self._rows[row.seq] = row
            self._ids.add(mid)
            self._next += 1
        return mid

    def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        dead_blocks_key: bool,
        now: float | None = None,
    ) -> _Claim:
        """Lease up to ``limit`` messages, as :meth:`SQLOutbox.claim` does."""
        with self._lock:
            at = self._clock() if now is None else now
            heads: list[int] = []
            seen: set[str] = set()
            for row in self._rows.values():  # in seq order: dicts keep insertion order
                if row.key in seen or row.state is MessageState.SENT:
                    continue
                if row.state is MessageState.DEAD and not dead_blocks_key:
                    continue
                seen.add(row.key)
                if self._claimable(row, at) and row.state is not MessageState.DEAD:
                    if row.attempts >= max_attempts:
                        self._to_dead(row, at, "[lease expired on every attempt]")
                    elif len(heads) < limit:
                        heads.append(row.seq)
            candidates = [
                (
                    r.seq,
                    r.key,
                    _DEAD if r.state is MessageState.DEAD else _PENDING,
                    r.available_at,
                    r.lease_expires_at,
                )
                for r in sorted(self._rows.values(), key=lambda r: (r.key, r.seq))
                if r.state is not MessageState.SENT
            ]
            chosen = _pick(candidates, heads, limit=limit, now=at, dead_blocks_key=dead_blocks_key)
            token = _new_id()
            out = []
            for seq in sorted(chosen):
                row = self._rows[seq]
                if row.state is MessageState.IN_FLIGHT:  # its lease expired: take it over
                    row.state = MessageState.PENDING
                row.move(MessageState.IN_FLIGHT)
                row.lease_token, row.lease_expires_at = token, at + lease_seconds
                row.attempts += 1
                message = OutboxMessage(
                    row.message_id,
                    row.topic,
                    row.key,
                    row.payload,
                    row.headers,
                    row.attempts,
                    row.type,
                    row.created_at,
                )
                out.append((seq, message))
            return _Claim(token, out)

    @staticmethod
    def _claimable(row: _Row, at: float) -> bool:
        return row.available_at <= at and (
            row.lease_expires_at is None or row.lease_expires_at <= at
        )

    @staticmethod
    def _to_dead(row: _Row, at: float, error: str) -> None:
        row.state = MessageState.IN_FLIGHT if row.state is MessageState.PENDING else row.state
        row.move(MessageState.DEAD)
        row.finished_at, row.lease_token, row.lease_expires_at = at, None, None
        row.last_error = (row.last_error or "") + error

    def settle(
        self,
        token: str,
        *,
        sent: Sequence[int],
        failed: Sequence[tuple[int, str, float | None]],
        released: Sequence[int],
        now: float | None = None,
    ) -> int:
        """Record a batch's outcomes, as :meth:`SQLOutbox.settle` does."""
        with self._lock:
            at = self._clock() if now is None else now
            changed = 0
            for seq in sent:
                row = self._leased(seq, token)
                if row is not None:
                    row.move(MessageState.SENT)
                    row.finished_at, row.lease_token, row.lease_expires_at = at, None, None
                    changed += 1
            for seq, error, delay in failed:
                row = self._leased(seq, token)
                if row is None:
                    continue
                changed += 1
                if delay is None:
                    row.last_error = None
                    self._to_dead(row, at, error)
                else:
                    row.move(MessageState.PENDING)
                    row.available_at, row.last_error = at + delay, error
                    row.lease_token, row.lease_expires_at = None, None
            for seq in released:
                row = self._leased(seq, token)
                if row is not None:
                    row.move(MessageState.PENDING)
                    row.lease_token, row.lease_expires_at = None, None
                    row.attempts -= 1
                    changed += 1
            return changed

    def _leased(self, seq: int, token: str) -> _Row | None:
        row = self._rows.get(seq)
        return row if row is not None and row.lease_token == token else None

    def close(self) -> None:
        """Nothing to close (the store stays usable)."""

    # the administration side, also reachable through the module functions

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The dead letters, oldest first (see :func:`dead_letters`)."""
        with self._lock:
            rows = [r for r in self._rows.values() if r.state is MessageState.DEAD][:limit]
            return [
                DeadLetter(
                    r.message_id,
                    r.topic,
                    r.key,
                    r.payload,
                    r.headers,
                    r.type,
                    r.attempts,
                    r.last_error,
                    r.finished_at,
                )
                for r in rows
            ]

    def redrive(self, message_ids: Iterable[str]) -> int:
        """Put dead letters back to pending (see :func:`redrive`)."""
        wanted = set(message_ids)
        with self._lock:
            changed = 0
            for row in self._rows.values():
                if row.message_id in wanted and row.state is MessageState.DEAD:
                    row.move(MessageState.PENDING)
                    row.attempts, row.available_at, row.finished_at = 0, 0.0, None
                    changed += 1
            return changed

    def purge(self, *, older_than: float, dead: bool = True, now: float | None = None) -> int:
        """Delete finished messages (see :func:`purge`)."""
        with self._lock:
            at = self._clock() if now is None else now
            kinds = {MessageState.SENT, MessageState.DEAD} if dead else {MessageState.SENT}
            doomed = [
                r
                for r in self._rows.values()
                if r.state in kinds and (r.finished_at or 0.0) <= at - older_than
            ]
            for row in doomed:
                del self._rows[row.seq]
                self._ids.discard(row.message_id)
            return len(doomed)

    def stats(self, *, now: float | None = None) -> OutboxStats:
        """Counts (see :func:`stats`)."""
        with self._lock:
            at = self._clock() if now is None else now
            pending = in_flight = dead = sent = 0
            oldest: float | None = None
            for r in self._rows.values():
                if r.state is MessageState.SENT:
                    sent += 1
                    continue
                if r.state is MessageState.DEAD:
                    dead += 1
                    continue
                if r.lease_expires_at is not None and r.lease_expires_at > at:
                    in_flight += 1
                else:
                    pending += 1
                oldest = r.created_at if oldest is None else min(oldest, r.created_at)
            age = None if oldest is None else max(0.0, at - oldest)
            return OutboxStats(pending, age, in_flight, dead, sent)


# --------------------------------------------------------------------------------------
# Administration
# --------------------------------------------------------------------------------------


def _admin(conn: Any) -> tuple[Any, _Dialect]:
    return conn.cursor(), _dialect_of(conn)


def _now_of(cur: Any, dialect: _Dialect, now: float | None) -> float:
    if now is not None:
        return now
    cur.execute(_NOW[dialect.name])
    return float(cur.fetchone()[0])


def dead_letters(conn: Any, *, limit: int = 100) -> list[DeadLetter]:
    """The dead-lettered messages on ``conn`` (a connection or a MemoryOutbox), oldest first.

    Reads only; up to ``limit`` messages.
    """
    if isinstance(conn, MemoryOutbox):
        return conn.dead_letters(limit=limit)
    cur, dialect = _admin(conn)
    try:
        cur.execute(
            dialect.sql(
                "SELECT id, aggregatetype, aggregateid, CAST(payload AS TEXT), "
                "CAST(headers AS TEXT), type, attempts, "
                f"last_error, finished_at FROM {TABLE} WHERE state = 2 ORDER BY seq LIMIT ?"
            ),
            (limit,),
        )
        rows = cur.fetchall()
    finally:
        cur.close()
    return [
        DeadLetter(
            mid, topic, key, _decode(body), _decode_headers(head), kind, tries, error, dead_at
        )
        for mid, topic, key, body, head, kind, tries, error, dead_at in rows
    ]


def redrive(conn: Any, message_ids: Iterable[str]) -> int:
    """Put the named dead letters back to pending with a fresh attempt count.

    Runs in the caller's transaction and does not commit. Returns how many messages
    were dead and are now pending (ids that are not dead letters are ignored). Their
    key's later messages follow them, in order, once they are published.
    """
    ids = [_check_text("message_ids[]", mid) for mid in message_ids]
    if isinstance(conn, MemoryOutbox):
        return conn.redrive(ids)
    if not ids:
        return 0
    cur, dialect = _admin(conn)
    try:
        cur.execute(
            dialect.sql(
                f"UPDATE {TABLE} SET state = 0, attempts = 0, available_at = 0, "
                f"finished_at = NULL WHERE state = 2 AND id IN {_in(len(ids))}"
            ),
            ids,
        )
        return int(cur.rowcount)
    finally:
        cur.close()


def purge(conn: Any, *, older_than: float, dead: bool = True, now: float | None = None) -> int:
    """Delete sent rows (and dead letters, unless ``dead=False``) finished before now - older_than.

    Runs in the caller's transaction and does not commit; returns how many rows went.
    Purging a dead letter also unblocks its key. ``older_than`` is in seconds;
    ``now`` (seconds since the Unix epoch) defaults to the database clock.
    """
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)):
        raise TypeError(f"older_than must be a number of seconds, got {older_than!r}")
    if older_than < 0:
        raise ValueError(f"older_than must be >= 0 seconds, got {older_than!r}")
    if isinstance(conn, MemoryOutbox):
        return conn.purge(older_than=older_than, dead=dead, now=now)
    cur, dialect = _admin(conn)
    try:
        at = _now_of(cur, dialect, now)
        states = "(1, 2)" if dead else "(1)"
        cur.execute(
            dialect.sql(f"DELETE FROM {TABLE} WHERE state IN {states} AND finished_at <= ?"),
            (at - older_than,),
        )
        return int(cur.rowcount)
    finally:
        cur.close()


def stats(conn: Any, *, now: float | None = None) -> OutboxStats:
    """Pending, oldest pending age (seconds), in flight, dead-lettered and sent counts.

    ``now`` (seconds since the Unix epoch) defaults to the database clock. Reads only.
    """
    if isinstance(conn, MemoryOutbox):
        return conn.stats(now=now)
    cur, dialect = _admin(conn)
    try:
        at = _now_of(cur, dialect, now)
        cur.execute(
            dialect.sql(
                "SELECT "
                "SUM(CASE WHEN state = 0 AND (lease_expires_at IS NULL OR lease_expires_at <= ?) "
                "THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN state = 0 AND lease_expires_at > ? THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN state = 2 THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN state = 1 THEN 1 ELSE 0 END), "
                f"MIN(CASE WHEN state = 0 THEN created_at END) FROM {TABLE}"
            ),
            (at, at),
        )
        pending, in_flight, dead, sent, oldest = cur.fetchone()
    finally:
        cur.close()
    age = None if oldest is None else max(0.0, at - float(oldest))
    return OutboxStats(int(pending or 0), age, int(in_flight or 0), int(dead or 0), int(sent or 0))


# --------------------------------------------------------------------------------------
# The relay
# --------------------------------------------------------------------------------------


class _AwaitInLoopError(OutboxError):
    pass


class OutboxRelay:
    """Claims batches of messages, publishes them in order per key, records the outcome.

    Args:
        connect: returns a new DB-API connection (called once, again after a database
            error); or a :class:`MemoryOutbox` or another :class:`OutboxStore`.
        publish: called with each :class:`OutboxMessage`; returning (or its awaitable
            finishing) means the broker has it; raising means it failed.
        batch_size: most messages claimed per transaction.
        lease_seconds: how long a claim is held; another relay takes over a batch whose
            lease expired. Keep it well above one batch's publishing time: the relay
            stops publishing a batch (and releases the rest) once it has run this long.
        max_attempts: deliveries before a message is dead-lettered (default 10).
        backoff: ``backoff(attempt) -> seconds`` after failed attempt ``attempt``
            (default :func:`default_backoff`); added to the database clock.
        clock: seconds since the Unix epoch to use instead of the database clock (tests,
            or a fleet whose database clock is not to be trusted). ``None``: the
            database clock.
        dead_blocks_key: ``True`` (default): a dead letter holds back the later messages
            of its key until it is redriven or purged, so per-key order holds.
            ``False``: later messages go on (other keys are never held back).
        monotonic: the timer that measures how long a batch has been publishing.

    Raises:
        TypeError, ValueError: a bad argument (named in the message).
    """

    def __init__(
        self,
        connect: Callable[[], Any] | OutboxStore,
        publish: Callable[[OutboxMessage], object],
        *,
        batch_size: int = 100,
        lease_seconds: float = 30.0,
        max_attempts: int = 10,
        backoff: Callable[[int], float] = default_backoff,
        clock: Callable[[], float] | None = None,
        dead_blocks_key: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not callable(publish):
            raise TypeError(f"publish must be callable, got {publish!r}")
        for name, value in (("batch_size", batch_size), ("max_attempts", max_attempts)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value!r}")
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
            raise TypeError(f"lease_seconds must be a number, got {lease_seconds!r}")
        if not lease_seconds > 0:
            raise ValueError(f"lease_seconds must be > 0, got {lease_seconds!r}")
        for name, fn in (("backoff", backoff), ("monotonic", monotonic)):
            if not callable(fn):
                raise TypeError(f"{name} must be callable, got {fn!r}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be callable or None, got {clock!r}")
        self._store: OutboxStore | None = None
        if hasattr(connect, "claim") and hasattr(connect, "settle"):
            self._store = connect  # type: ignore[assignment]
            self._connect: Callable[[], Any] | None = None
        elif callable(connect):
            self._connect = connect
        else:
            raise TypeError(f"connect must be callable or an OutboxStore, got {connect!r}")
        self._publish = publish
        self.batch_size = batch_size
        self.lease_seconds = float(lease_seconds)
        self.max_attempts = max_attempts
        self._backoff = backoff
        self._clock = clock
        self.dead_blocks_key = dead_blocks_key
        self._monotonic = monotonic
        self._isawaitable: Callable[[object], bool] = _inspect().isawaitable
        self._loop: Any = None
        self.lost_leases = 0
        """Rows whose outcome could not be recorded because their lease had been taken over."""

    # connection handling

    def _get_store(self) -> OutboxStore:
        if self._store is None:
            self._store = SQLOutbox(self._connect())  # type: ignore[misc] # set when no store
        return self._store

    def close(self) -> None:
        """Close the relay's connection (a connection-backed relay reconnects on next use)."""
        if self._connect is not None and self._store is not None:
            store, self._store = self._store, None
            store.close()

    def __enter__(self) -> OutboxRelay:  # noqa: PYI034 - typing.Self is 3.11+
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _now(self) -> float | None:
        return None if self._clock is None else float(self._clock())

    def _claim(self) -> tuple[OutboxStore, _Claim]:
        store = self._get_store()
        try:
            claim = store.claim(
                limit=self.batch_size,
                lease_seconds=self.lease_seconds,
                max_attempts=self.max_attempts,
                dead_blocks_key=self.dead_blocks_key,
                now=self._now(),
            )
        except Exception:
            self._drop()
            raise
        return store, claim

    def _drop(self) -> None:
        """Forget a connection that failed, so the next call reconnects."""
        if self._connect is not None and self._store is not None:
            store, self._store = self._store, None
            try:  # noqa: SIM105 - no contextlib import for one call
                store.close()
            except Exception:  # noqa: BLE001, S110 - it is broken already
                pass

    def _settle(self, store: OutboxStore, claim: _Claim, outcome: _Outcome) -> None:
        try:
            changed = store.settle(
                claim.token,
                sent=outcome.sent,
                failed=outcome.failed,
                released=outcome.released,
                now=self._now(),
            )
        except Exception:
            self._drop()
            raise
        self.lost_leases += (
            len(outcome.sent) + len(outcome.failed) + len(outcome.released) - changed
        )

    def _failure(self, outcome: _Outcome, seq: int, message: OutboxMessage, exc: Exception) -> None:
        outcome.blocked.add(message.key)
        delay = (
            None if message.attempt >= self.max_attempts else float(self._backoff(message.attempt))
        )
        outcome.failed.append((seq, _error_text(exc), delay))

    # the work

    def run_once(self) -> int:
        """Claim one batch, publish it, record the outcomes; return how many were published.

        An awaitable returned by ``publish`` is run to completion on a private event
        loop; inside a running event loop use :meth:`run_once_async` instead.
        """
        return self._run_once()[1]

    def _run_once(self) -> tuple[int, int]:
        batch = self._batch(self._wait)
        try:
            batch.send(None)  # the sync wait never suspends: the batch runs to its end here
        except StopIteration as done:
            counts: tuple[int, int] = done.value
            return counts
        finally:
            if self._loop is not None:
                self._loop.close()
                self._loop = None
        raise AssertionError("a sync batch suspended")  # pragma: no cover - a bug, not an input

    async def _wait(self, awaitable: Awaitable[object]) -> None:
        """Run ``awaitable`` to completion on the batch's private loop; never suspends."""
        asyncio = _asyncio()
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if hasattr(awaitable, "close"):
                awaitable.close()
            raise _AwaitInLoopError(
                "publish returned an awaitable inside a running event loop: "
                "use await relay.run_once_async()"
            )
        if self._loop is None:  # one private loop per batch, closed when the batch ends
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(_awaited(awaitable))

    async def run_once_async(self) -> int:
        """:meth:`run_once` for an event loop: awaits what ``publish`` returns.

        The database calls are the DB-API's own, synchronous ones (short transactions).
        """
        return (await self._batch(_awaited))[1]

    async def _batch(
        self, wait: Callable[[Awaitable[object]], Awaitable[object]]
    ) -> tuple[int, int]:
        """Claim one batch, publish it, record the outcomes; return (claimed, published).

        The one body of :meth:`run_once` and :meth:`run_once_async`: an awaitable that
        ``publish`` returns goes to ``wait``, which awaits it (async) or runs it on the
        batch's private event loop without suspending (sync, driven by ``send(None)``).
        """
        store, claim = self._claim()
        outcome = _Outcome()
        started = self._monotonic()
        try:
            for seq, message in claim.rows:
                if outcome.skip(message, late=self._monotonic() - started >= self.lease_seconds):
                    outcome.released.append(seq)
                    continue
                try:
                    result = self._publish(message)
                    if self._isawaitable(result):
                        await wait(result)  # type: ignore[arg-type]
                except _AwaitInLoopError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    self._failure(outcome, seq, message, exc)
                else:
                    outcome.sent.append(seq)
        except BaseException:
            outcome.release_rest(claim)
            self._settle(store, claim, outcome)
            raise
        self._settle(store, claim, outcome)
        return len(claim.rows), len(outcome.sent)

    def run(
        self,
        stop: _Stop,
        *,
        idle_seconds: float = 1.0,
        on_error: Callable[[Exception], object] | None = None,
    ) -> int:
        """Relay until ``stop.is_set()``; return how many messages were published.

        ``stop`` is a ``threading.Event`` (anything with ``is_set()`` and
        ``wait(timeout)``): the relay waits on it for ``idle_seconds`` whenever a claim
        finds nothing, so setting it ends the loop at once. A database error is raised,
        unless ``on_error`` is given: then it is passed there, the connection is
        dropped and the loop goes on after an idle wait.
        """
        if isinstance(idle_seconds, bool) or not isinstance(idle_seconds, (int, float)):
            raise TypeError(f"idle_seconds must be a number, got {idle_seconds!r}")
        if idle_seconds < 0:
            raise ValueError(f"idle_seconds must be >= 0, got {idle_seconds!r}")
        total = 0
        while not stop.is_set():
            try:
                claimed, published = self._run_once()
            except _AwaitInLoopError:
                raise
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
                stop.wait(idle_seconds)
                continue
            total += published
            if claimed == 0:
                stop.wait(idle_seconds)
        return total


class _Outcome:
    __slots__ = ("blocked", "failed", "released", "sent", "stopped")

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.failed: list[tuple[int, str, float | None]] = []
        self.released: list[int] = []
        self.blocked: set[str] = set()
        self.stopped = False

    def skip(self, message: OutboxMessage, *, late: bool) -> bool:
        """Hold back a key after its failure, and everything once the lease ran out."""
        self.stopped = self.stopped or late
        return self.stopped or message.key in self.blocked

    def release_rest(self, claim: _Claim) -> None:
        done = set(self.sent) | set(self.released) | {seq for seq, _, _ in self.failed}
        self.released.extend(seq for seq, _ in claim.rows if seq not in done)


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable
