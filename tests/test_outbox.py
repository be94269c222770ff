"""interlock.outbox: add in the caller's transaction, claims, key order, retries, dead letters."""

# ruff: noqa: S608 - SQL in these tests names the module's constant table

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import outbox
from interlock.outbox import (
    SCHEMA_VERSION,
    TABLE,
    MemoryOutbox,
    MessageState,
    MessageStateError,
    OutboxError,
    OutboxMessage,
    OutboxRelay,
    SchemaVersionError,
    SQLOutbox,
    add,
    dead_letters,
    default_backoff,
    migrate,
    purge,
    redrive,
    stats,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "outbox"
if not VECTORS.is_dir():  # pragma: no cover - the layout of a standalone checkout
    VECTORS = Path(__file__).resolve().parents[1] / "shared" / "vectors" / "outbox"
T0 = 1_800_000_000.0  # the fake clock's start, seconds since the Unix epoch


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):  # noqa: N818 - a short name reads better in the scenarios
    """The failure the publishers raise."""


class Backend:
    """One storage backend: how to get a connection and commit on it."""

    def __init__(self, name: str, connect: Callable[[], Any], clock: FakeClock) -> None:
        self.name = name
        self._connect = connect
        self.clock = clock
        self.opened: list[Any] = []
        self.relays: list[OutboxRelay] = []

    def connect(self) -> Any:
        conn = self._connect()
        self.opened.append(conn)
        return conn

    def relay(self, publish: Callable[[OutboxMessage], object], **options: Any) -> OutboxRelay:
        options.setdefault("clock", self.clock)
        source = self._connect() if self.name == "memory" else self.connect
        relay = OutboxRelay(source, publish, **options)
        self.relays.append(relay)
        return relay

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
        for conn in self.opened:
            if not isinstance(conn, MemoryOutbox):
                conn.close()


def _sqlite_connect(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    return connect


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The same behaviour on each store: in memory, SQLite on a file, PostgreSQL."""
    clock = FakeClock()
    if request.param == "memory":
        memory = MemoryOutbox(clock=clock)
        result = Backend("memory", lambda: memory, clock)
    elif request.param == "sqlite":
        result = Backend("sqlite", _sqlite_connect(tmp_path / "outbox.db"), clock)
    else:
        postgres = request.getfixturevalue("postgres")
        result = Backend("postgres", postgres.connect, clock)
    conn = result.connect()
    migrate(conn)
    yield result
    result.close()


@pytest.fixture
def pg(postgres: Any) -> Iterator[Callable[..., Any]]:
    """Opens PostgreSQL connections to the test's schema and closes them all afterwards."""
    opened: list[Any] = []

    def connect(**kwargs: Any) -> Any:
        conn = postgres.connect(**kwargs)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def commit(conn: Any) -> None:
    if not isinstance(conn, MemoryOutbox):
        conn.commit()


def put(conn: Any, key: str, n: int, **extra: Any) -> str:
    """Add message ``n`` of ``key`` and commit."""
    mid = add(conn, topic="orders", key=key, payload={"n": n}, **extra)
    commit(conn)
    return mid


def collect() -> tuple[list[OutboxMessage], Callable[[OutboxMessage], None]]:
    got: list[OutboxMessage] = []
    return got, got.append


# --------------------------------------------------------------------------------------
# Schema, migrate, vectors
# --------------------------------------------------------------------------------------


def _columns(conn: Any) -> dict[str, tuple[str, bool]]:
    """Column name -> (declared type, not null) of the outbox table."""
    if isinstance(conn, sqlite3.Connection):
        rows = conn.execute(f"PRAGMA table_info({TABLE})").fetchall()
        return {r[1]: (r[2].lower(), bool(r[3]) or bool(r[5])) for r in rows}
    cur = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = %s AND table_schema = current_schema()",
        (TABLE,),
    )
    return {name: (kind.lower(), nullable == "NO") for name, kind, nullable in cur.fetchall()}


def test_migrate_is_idempotent_and_records_its_version(backend: Backend) -> None:
    """migrate() twice changes nothing and records schema version 1 once."""
    conn = backend.connect()
    assert migrate(conn) == SCHEMA_VERSION == migrate(conn)
    if backend.name != "memory":
        cur = conn.cursor()
        cur.execute(f"SELECT version FROM {TABLE}_schema")
        assert cur.fetchall() == [(1,)]


@pytest.fixture(params=["sqlite", "postgres"])
def sql_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The SQL stores only: SQLite on a file, PostgreSQL."""
    clock = FakeClock()
    if request.param == "sqlite":
        result = Backend("sqlite", _sqlite_connect(tmp_path / "outbox.db"), clock)
    else:
        result = Backend("postgres", request.getfixturevalue("postgres").connect, clock)
    migrate(result.connect())
    yield result
    result.close()


def test_migrate_refuses_a_newer_schema(sql_backend: Backend) -> None:
    """A database migrated by newer code is refused with the version found."""
    conn = sql_backend.connect()
    cur = conn.cursor()
    cur.execute(f"INSERT INTO {TABLE}_schema (version, applied_at) VALUES (7, 0)")
    conn.commit()
    with pytest.raises(SchemaVersionError) as caught:
        migrate(conn)
    assert caught.value.found == 7
    assert isinstance(caught.value, OutboxError)
    assert isinstance(caught.value, RuntimeError)


VECTOR_FILE = VECTORS / "reference-schemas.json"


def _vector() -> dict[str, Any]:
    return json.loads(VECTOR_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_reference_schema_vectors_are_found() -> None:
    """The vector file exists and names the Debezium outbox table (not a vacuous pass)."""
    assert "debezium_outbox_table" in _vector()


# Which outbox columns play the part of each reference schema's columns.
EQUIVALENTS: dict[str, dict[str, str]] = {
    "eventuate_message_table": {
        "id": "id",
        "destination": "aggregatetype",
        "headers": "headers",
        "payload": "payload",
        "message_partition": "aggregateid",
        "creation_time": "created_at",
    },
    "faststream_outbox_columns": {
        "id": "seq",
        "queue": "aggregatetype",
        "payload": "payload",
        "headers": "headers",
        "attempts_count": "attempts",
        "created_at": "created_at",
        "next_attempt_at": "available_at",
        "acquired_at": "lease_expires_at",
        "acquired_token": "lease_token",
    },
    "eventuate_message_headers": {
        "id": "id",
        "partition_id": "aggregateid",
        "destination": "aggregatetype",
        "date": "created_at",
    },
}
NOT_OUTBOX = {
    "id": "the vector's own id",
    "pattern": "a label",
    "copy_exact": "a flag",
    "source": "where the schemas come from",
    "eventuate_saga_tables": "saga state, not an outbox (no outbox column depends on it)",
    "eventuate_duplicate_detection": "the consumer side: see test_the_consumer_dedup_vectors",
    "microservices_io_inbox": "the consumer side: see test_the_consumer_dedup_vectors",
    "faststream_claim": "the claim protocol: see test_the_faststream_claim_vector",
}


def test_every_vector_key_has_a_case() -> None:
    """Each entry of the reference-schema vector is checked by a case or named as not ours."""
    covered = {"debezium_outbox_table", *EQUIVALENTS}
    assert set(_vector()) == covered | set(NOT_OUTBOX)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_the_debezium_outbox_router_columns_exist(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The table has the Debezium router's columns with its types and NOT NULLs."""
    if engine == "sqlite":
        conn: Any = sqlite3.connect(tmp_path / "d.db")
    else:
        conn = request.getfixturevalue("postgres").connect()
    migrate(conn)
    columns = _columns(conn)
    for spec in _vector()["debezium_outbox_table"].split("|"):
        name, kind, *rest = spec.split()
        assert name in columns, name
        assert columns[name][1] == ("not null" in " ".join(rest)), name
        if engine == "postgres" and kind == "jsonb":
            assert columns[name][0] == "jsonb"
    conn.close()


@pytest.mark.parametrize("case", sorted(EQUIVALENTS))
def test_the_other_reference_schemas_map_onto_outbox_columns(case: str, tmp_path: Path) -> None:
    """Each column of Eventuate's and faststream's outbox has its counterpart here."""
    conn = sqlite3.connect(tmp_path / "d.db")
    migrate(conn)
    columns = _columns(conn)
    value = _vector()[case]
    if isinstance(value, str):
        body = value.split("CREATE TABLE eventuate.message (")[1].split(");")[0]
        names = [line.split()[0].lower() for line in body.strip().splitlines()]
    else:
        names = [item.split()[0].lower() for item in value if not item.startswith("CHECK")]
    mapping = EQUIVALENTS[case]
    wanted = [
        n
        for n in names
        if n not in ("deliveries_count", "first_attempt_at", "last_attempt_at", "timer_id")
    ]
    for name in wanted:
        assert mapping[name] in columns, (case, name)
    conn.close()


def test_the_faststream_claim_vector(tmp_path: Path) -> None:
    """A lease token guards the terminal update: a settle under another token changes nothing."""
    assert "acquired_token=:token" in _vector()["faststream_claim"]
    conn = sqlite3.connect(tmp_path / "d.db")
    migrate(conn)
    put(conn, "k", 1)
    store = SQLOutbox(sqlite3.connect(tmp_path / "d.db"))
    claim = store.claim(limit=10, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
    assert len(claim.rows) == 1
    assert store.settle("not-the-token", sent=[claim.rows[0][0]], failed=[], released=[]) == 0
    assert store.settle(claim.token, sent=[claim.rows[0][0]], failed=[], released=[]) == 1
    store.close()


def test_the_consumer_dedup_vectors(backend: Backend) -> None:
    """An inbox keyed on message_id works: ids are unique and survive redelivery unchanged."""
    vector = _vector()
    assert "PK violation" in vector["microservices_io_inbox"]
    assert "duplicate-key" in vector["eventuate_duplicate_detection"]
    conn = backend.connect()
    put(conn, "k", 1)
    seen: list[str] = []

    def flaky(message: OutboxMessage) -> None:
        seen.append(message.message_id)
        if len(seen) == 1:
            raise Boom

    relay = backend.relay(flaky, backoff=lambda attempt: 0.0)
    relay.run_once()
    relay.run_once()
    assert len(seen) == 2
    assert seen[0] == seen[1]


# --------------------------------------------------------------------------------------
# The add function
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_add_never_commits_and_rolls_back_with_the_business_row(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """add() writes in the caller's transaction: invisible until commit, gone on rollback."""
    if engine == "sqlite":
        connect: Callable[[], Any] = _sqlite_connect(tmp_path / "a.db")
    else:
        connect = request.getfixturevalue("postgres").connect
    writer, reader = connect(), connect()
    migrate(writer)
    cur = writer.cursor()
    cur.execute("CREATE TABLE orders (id TEXT PRIMARY KEY)")
    writer.commit()
    cur.execute("INSERT INTO orders VALUES ('o-1')")
    add(writer, topic="orders", key="o-1", payload={"x": 1})
    assert stats(reader).pending == 0  # not committed
    reader.commit()
    writer.rollback()
    assert stats(reader).pending == 0
    reader.commit()
    cur.execute("INSERT INTO orders VALUES ('o-2')")
    add(writer, topic="orders", key="o-2", payload={"x": 2})
    writer.commit()
    assert stats(reader).pending == 1
    writer.close()
    reader.close()


def test_add_returns_a_uuid4_or_the_callers_id(backend: Backend) -> None:
    """Generated ids are version-4 UUIDs; a caller-given id is kept and delivered."""
    conn = backend.connect()
    generated = put(conn, "k", 1)
    assert uuid.UUID(generated).version == 4
    assert put(conn, "k", 2, message_id="order-7-created") == "order-7-created"
    got, publish = collect()
    backend.relay(publish).run_once()
    assert [m.message_id for m in got] == [generated, "order-7-created"]


def test_a_duplicate_message_id_is_refused(backend: Backend) -> None:
    """The same message_id twice is refused (producer-side dedup)."""
    conn = backend.connect()
    put(conn, "k", 1, message_id="same")
    errors: tuple[type[BaseException], ...] = (ValueError, sqlite3.IntegrityError)
    if backend.name == "postgres":
        import psycopg  # noqa: PLC0415 - only the PostgreSQL cases need the driver

        errors = (psycopg.errors.UniqueViolation,)
    with pytest.raises(errors):
        add(conn, topic="t", key="k", payload=2, message_id="same")


def test_payload_headers_and_type_round_trip(backend: Backend) -> None:
    """Any JSON payload, string headers and the event type reach publish unchanged."""
    conn = backend.connect()
    payloads: list[Any] = [{"a": [1, 2.5, None, True]}, "text", 7, None, ["é", {"x": {}}]]
    for i, payload in enumerate(payloads):
        add(conn, topic="t", key=f"k{i}", payload=payload, headers={"trace": f"t{i}"})
    add(conn, topic="t", key="typed", payload=1, event_type="OrderCreated", headers={})
    commit(conn)
    got, publish = collect()
    backend.relay(publish).run_once()
    assert [m.payload for m in got[:5]] == payloads
    assert [m.headers for m in got[:5]] == [{"trace": f"t{i}"} for i in range(5)]
    assert (got[5].event_type, got[5].headers, got[0].event_type) == ("OrderCreated", {}, "t")
    assert all(m.attempt == 1 and m.topic == "t" for m in got)


@pytest.mark.parametrize(
    ("arguments", "error", "name"),
    [
        ({"topic": 1}, TypeError, "topic"),
        ({"topic": ""}, ValueError, "topic"),
        ({"key": None}, TypeError, "key"),
        ({"key": ""}, ValueError, "key"),
        ({"payload": float("nan")}, TypeError, "payload"),
        ({"payload": object()}, TypeError, "payload"),
        ({"headers": {"a": 1}}, TypeError, "headers"),
        ({"headers": 5}, TypeError, "headers"),
        ({"message_id": ""}, ValueError, "message_id"),
        ({"event_type": 3}, TypeError, "event_type"),
    ],
)
def test_add_validates_its_arguments(
    arguments: dict[str, Any], error: type[Exception], name: str, tmp_path: Path
) -> None:
    """Bad arguments raise TypeError/ValueError naming the argument, on both stores."""
    conn = sqlite3.connect(tmp_path / "v.db")
    migrate(conn)
    call = {"topic": "t", "key": "k", "payload": 1, **arguments}
    for target in (conn, MemoryOutbox()):
        with pytest.raises(error, match=name):
            add(target, **call)
    conn.close()


def test_add_refuses_an_unknown_connection() -> None:
    """A connection of an unknown driver is refused with TypeError."""
    with pytest.raises(TypeError, match="unsupported DB-API connection"):
        add(object(), topic="t", key="k", payload=1)


# --------------------------------------------------------------------------------------
# The DB-API adapter
# --------------------------------------------------------------------------------------


def _fake_connection(module: str, paramstyle: str | None) -> object:
    fake = type("Connection", (), {})
    fake.__module__ = f"{module}.connection"
    if paramstyle is not None:
        sys.modules.setdefault(module, type(sys)(module))
        sys.modules[module].paramstyle = paramstyle  # type: ignore[attr-defined]
    return fake()


@pytest.mark.parametrize(
    ("module", "paramstyle", "sql"),
    [
        ("pg8000", "numeric", "SELECT :1, :2"),
        ("psycopg2cffi", "format", "SELECT %s, %s"),
        ("psycopg2cffi", "pyformat", "SELECT %s, %s"),
    ],
)
def test_the_adapter_rewrites_placeholders_per_driver(
    module: str, paramstyle: str, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numeric becomes :1, format and pyformat become %s; the dialect is PostgreSQL."""
    monkeypatch.setitem(sys.modules, module, type(sys)(module))
    dialect = outbox._dialect_of(_fake_connection(module, paramstyle))
    assert (dialect.name, dialect.sql("SELECT ?, ?")) == ("postgresql", sql)


def test_the_adapter_refuses_a_postgres_driver_with_an_unknown_paramstyle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known driver module with a paramstyle it cannot rewrite is refused."""
    monkeypatch.setitem(sys.modules, "pg8000", type(sys)("pg8000"))
    with pytest.raises(TypeError, match="unsupported"):
        outbox._dialect_of(_fake_connection("pg8000", "named"))


# --------------------------------------------------------------------------------------
# The relay: claims, order, async, leases
# --------------------------------------------------------------------------------------


def test_relay_publishes_each_message_once_in_order_per_key(backend: Backend) -> None:
    """Messages of each key come out in the order they were added; each is marked sent once."""
    conn = backend.connect()
    for n in range(5):
        for key in ("a", "b", "c"):
            add(conn, topic="t", key=key, payload=n)
    commit(conn)
    got, publish = collect()
    relay = backend.relay(publish, batch_size=4)
    counts = []
    while (count := relay.run_once()) > 0:
        counts.append(count)
    assert sum(counts) == 15
    assert max(counts) <= 4
    for key in ("a", "b", "c"):
        assert [m.payload for m in got if m.key == key] == list(range(5))
    assert stats(conn, now=backend.clock.now).sent == 15
    relay.close()


def test_two_relays_claim_disjoint_batches(backend: Backend) -> None:
    """Regression (peer 0.44): two relays never receive the same rows while a lease holds."""
    conn = backend.connect()
    for n in range(6):
        put(conn, f"k{n}", n)
    stores = []
    for _ in range(2):
        source = backend.connect()
        stores.append(source if isinstance(source, MemoryOutbox) else SQLOutbox(source))
    first, second = (
        s.claim(limit=3, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
        for s in stores
    )
    ids = [m.message_id for _, m in first.rows] + [m.message_id for _, m in second.rows]
    assert len(first.rows) == len(second.rows) == 3
    assert len(set(ids)) == 6
    third = stores[0].claim(limit=3, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
    assert third.rows == []


def test_a_key_in_flight_is_not_claimed_by_another_relay(backend: Backend) -> None:
    """While one relay holds a key's head, another relay claims none of that key's messages."""
    conn = backend.connect()
    for n in range(3):
        put(conn, "k", n)
    put(conn, "other", 0)
    store_a = backend.connect()
    store_a = store_a if isinstance(store_a, MemoryOutbox) else SQLOutbox(store_a)
    held = store_a.claim(limit=1, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
    assert [m.payload for _, m in held.rows] == [{"n": 0}]
    got, publish = collect()
    backend.relay(publish).run_once()
    assert [(m.key, m.payload) for m in got] == [("other", {"n": 0})]


def test_async_publish_is_awaited_before_marking(backend: Backend) -> None:
    """An awaitable publish runs to the end before the message counts as sent."""
    conn = backend.connect()
    put(conn, "k", 1)
    done: list[int] = []

    async def publish(message: OutboxMessage) -> None:
        await asyncio.sleep(0)
        done.append(message.payload["n"])

    assert backend.relay(publish).run_once() == 1
    assert done == [1]
    assert stats(conn, now=T0).sent == 1


def test_async_publish_that_fails_is_not_marked_published(backend: Backend) -> None:
    """Regression (peer 0.44): a failing coroutine's message stays pending, with its error."""
    conn = backend.connect()
    put(conn, "k", 1)

    async def publish(message: OutboxMessage) -> None:
        await asyncio.sleep(0)
        raise Boom("broker down")

    relay = backend.relay(publish, max_attempts=1)
    assert relay.run_once() == 0
    counts = stats(conn, now=T0)
    assert (counts.sent, counts.dead_lettered) == (0, 1)
    assert dead_letters(conn)[0].last_error == "Boom: broker down"
    relay.close()


def test_run_once_async_awaits_publish_in_a_running_loop(backend: Backend) -> None:
    """run_once_async() publishes sync and async results from inside an event loop."""
    conn = backend.connect()
    put(conn, "a", 1)
    put(conn, "b", 2)
    seen: list[str] = []

    async def publish(message: OutboxMessage) -> None:
        seen.append(message.key)

    def sync_publish(message: OutboxMessage) -> None:
        raise Boom

    async def main() -> tuple[int, int]:
        failing = backend.relay(sync_publish, batch_size=1)
        return await failing.run_once_async(), await backend.relay(publish).run_once_async()

    assert asyncio.run(main()) == (0, 1)
    assert seen == ["b"]  # "a" failed once and waits for its backoff


def test_run_once_with_an_awaitable_inside_a_running_loop_is_refused(backend: Backend) -> None:
    """Sync run_once() inside an event loop refuses an awaitable and releases the batch."""
    conn = backend.connect()
    put(conn, "k", 1)

    async def publish(message: OutboxMessage) -> None:  # pragma: no cover - closed unawaited
        pass

    async def main() -> None:
        backend.relay(publish).run_once()

    with pytest.raises(OutboxError, match="run_once_async"):
        asyncio.run(main())
    got, sync_publish = collect()
    backend.relay(sync_publish).run_once()
    assert [m.attempt for m in got] == [1]  # the refused claim did not count as an attempt


def test_an_exception_escaping_async_publish_releases_the_batch(backend: Backend) -> None:
    """A BaseException (cancellation) in run_once_async releases the unpublished rows."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)

    async def publish(message: OutboxMessage) -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(backend.relay(publish).run_once_async())
    got, sync_publish = collect()
    backend.relay(sync_publish).run_once()
    assert [(m.payload["n"], m.attempt) for m in got] == [(1, 1), (2, 1)]


def test_a_keyboard_interrupt_in_publish_releases_the_batch(backend: Backend) -> None:
    """A BaseException escaping publish releases the rows, which are then delivered again."""
    conn = backend.connect()
    put(conn, "k", 1)

    def publish(message: OutboxMessage) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend.relay(publish).run_once()
    assert stats(conn, now=T0).pending == 1


def test_a_dead_relays_lease_expires_and_another_takes_over(backend: Backend) -> None:
    """A claimed batch that is never settled is delivered again after lease expiry."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)
    dead = backend.connect()
    dead = dead if isinstance(dead, MemoryOutbox) else SQLOutbox(dead)
    lost = dead.claim(limit=10, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
    assert len(lost.rows) == 2
    got, publish = collect()
    relay = backend.relay(publish, lease_seconds=30)
    assert relay.run_once() == 0
    assert stats(conn, now=T0).in_flight == 2
    backend.clock.advance(30)
    assert relay.run_once() == 2
    assert [(m.payload["n"], m.attempt) for m in got] == [(1, 2), (2, 2)]
    assert dead.settle(lost.token, sent=[s for s, _ in lost.rows], failed=[], released=[]) == 0


def test_the_old_relays_outcome_is_ignored_and_counted_as_a_lost_lease(backend: Backend) -> None:
    """A relay whose lease was taken over during publish records nothing and counts lost leases."""
    conn = backend.connect()
    put(conn, "k", 1)
    other = backend.connect()
    other = other if isinstance(other, MemoryOutbox) else SQLOutbox(other)

    def slow_publish(message: OutboxMessage) -> None:
        backend.clock.advance(31)  # meanwhile the lease runs out and another relay claims
        other.claim(
            limit=10, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=backend.clock.now
        )

    relay = backend.relay(slow_publish, lease_seconds=30)
    assert relay.run_once() == 1
    assert relay.lost_leases == 1
    assert stats(conn, now=backend.clock.now).in_flight == 1


def test_leases_that_expire_on_every_attempt_end_in_the_dead_letters(backend: Backend) -> None:
    """A message whose relays keep dying is dead-lettered after max_attempts claims."""
    conn = backend.connect()
    put(conn, "k", 1)
    store = backend.connect()
    store = store if isinstance(store, MemoryOutbox) else SQLOutbox(store)
    for i in range(3):
        claim = store.claim(
            limit=5, lease_seconds=1, max_attempts=3, dead_blocks_key=True, now=T0 + 2 * i
        )
        assert len(claim.rows) == 1
    assert (
        store.claim(limit=5, lease_seconds=1, max_attempts=3, dead_blocks_key=True, now=T0 + 9).rows
        == []
    )
    (letter,) = dead_letters(conn)
    assert "lease expired" in (letter.last_error or "")


def test_a_batch_that_outlives_its_lease_stops_and_releases_the_rest(backend: Backend) -> None:
    """A batch that has run for lease_seconds stops publishing and releases the rest."""
    conn = backend.connect()
    for key in ("a", "b", "c"):
        put(conn, key, 0)
    ticks = iter([0.0, 0.0, 5.0, 11.0, 11.0])
    _, publish = collect()
    relay = backend.relay(publish, lease_seconds=10, monotonic=lambda: next(ticks))
    assert relay.run_once() == 2
    again, publish_again = collect()
    backend.relay(publish_again).run_once()
    assert [(m.key, m.attempt) for m in again] == [("c", 1)]


# --------------------------------------------------------------------------------------
# Failures, backoff, dead letters
# --------------------------------------------------------------------------------------


def test_a_failure_retries_after_backoff_on_the_clock(backend: Backend) -> None:
    """A failed message waits backoff(attempt) seconds, then comes back with attempt 2."""
    conn = backend.connect()
    put(conn, "k", 1)
    attempts: list[int] = []

    def publish(message: OutboxMessage) -> None:
        attempts.append(message.attempt)
        if message.attempt == 1:
            raise Boom

    relay = backend.relay(publish, backoff=lambda attempt: 5.0 * attempt)
    assert relay.run_once() == 0
    backend.clock.advance(4.9)
    assert relay.run_once() == 0
    backend.clock.advance(0.1)
    assert relay.run_once() == 1
    assert attempts == [1, 2]


def test_a_failed_message_holds_back_its_key_but_not_other_keys(backend: Backend) -> None:
    """After k#1 fails, k#2 is not published before k#1; other keys go on."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)
    put(conn, "other", 1)
    log: list[tuple[str, int]] = []

    def publish(message: OutboxMessage) -> None:
        if (message.key, message.payload["n"], message.attempt) == ("k", 1, 1):
            raise Boom
        log.append((message.key, message.payload["n"]))

    relay = backend.relay(publish, backoff=lambda attempt: 1.0)
    assert relay.run_once() == 1
    assert log == [("other", 1)]
    backend.clock.advance(1)
    relay.run_once()
    assert log == [("other", 1), ("k", 1), ("k", 2)]


@pytest.mark.parametrize("blocks", [True, False])
def test_dead_letters_redrive_and_purge(backend: Backend, blocks: bool) -> None:
    """After max_attempts a message is dead with its error; its key waits (or not); redrive."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)
    put(conn, "other", 1)
    broken = {"k": True}
    log: list[tuple[str, int]] = []

    def publish(message: OutboxMessage) -> None:
        if message.key == "k" and message.payload["n"] == 1 and broken["k"]:
            raise Boom(f"attempt {message.attempt}")
        log.append((message.key, message.payload["n"]))

    relay = backend.relay(publish, max_attempts=2, backoff=lambda a: 0.0, dead_blocks_key=blocks)
    for _ in range(4):
        relay.run_once()
    (letter,) = dead_letters(conn)
    assert (letter.key, letter.attempts, letter.last_error) == ("k", 2, "Boom: attempt 2")
    assert letter.dead_at == backend.clock.now
    assert letter.payload == {"n": 1}
    assert stats(conn, now=backend.clock.now).dead_lettered == 1
    expected = [("other", 1)] if blocks else [("other", 1), ("k", 2)]
    assert log == expected
    broken["k"] = False
    assert redrive(conn, [letter.message_id, "not-there"]) == 1
    commit(conn)
    assert redrive(conn, []) == 0
    relay.run_once()
    relay.run_once()
    assert log == [*expected, ("k", 1)] + ([("k", 2)] if blocks else [])
    backend.clock.advance(100)
    assert purge(conn, older_than=50, dead=False, now=backend.clock.now) == 3
    commit(conn)
    assert stats(conn, now=backend.clock.now).sent == 0


def test_purging_a_dead_letter_unblocks_its_key(backend: Backend) -> None:
    """With dead_blocks_key, purging the dead message lets the key's next message go."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)
    log: list[int] = []

    def publish(message: OutboxMessage) -> None:
        if message.payload["n"] == 1:
            raise Boom
        log.append(message.payload["n"])

    relay = backend.relay(publish, max_attempts=1)
    relay.run_once()
    assert log == []
    assert purge(conn, older_than=0, now=backend.clock.now) == 1
    commit(conn)
    relay.run_once()
    assert log == [2]


def test_purge_keeps_recent_rows_and_validates_older_than(backend: Backend) -> None:
    """Only rows finished before now - older_than go; older_than must be seconds >= 0."""
    conn = backend.connect()
    put(conn, "k", 1)
    backend.relay(lambda m: None).run_once()
    assert purge(conn, older_than=10, now=T0 + 5) == 0
    assert purge(conn, older_than=10, now=T0 + 10) == 1
    commit(conn)
    with pytest.raises(TypeError, match="older_than"):
        purge(conn, older_than="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="older_than"):
        purge(conn, older_than=-1)


def test_stats_counts_and_oldest_pending_age(backend: Backend) -> None:
    """stats() reports pending, in flight, dead, sent and the oldest pending age in seconds."""
    conn = backend.connect()
    assert stats(conn, now=T0) == outbox.OutboxStats(0, None, 0, 0, 0)
    put(conn, "a", 1)
    put(conn, "b", 1)
    store = backend.connect()
    store = store if isinstance(store, MemoryOutbox) else SQLOutbox(store)
    store.claim(limit=1, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=T0)
    counts = stats(conn, now=T0 + 10**6)
    assert (counts.pending, counts.in_flight) == (2, 0)  # the lease ran out
    counts = stats(conn, now=T0)
    assert (counts.pending, counts.in_flight, counts.dead_lettered, counts.sent) == (1, 1, 0, 0)
    real = stats(conn)  # the store's own clock: the fake one for memory, the database's for SQL
    assert real.oldest_pending_age is not None
    assert real.oldest_pending_age >= 0


def test_the_database_clock_is_used_without_an_injected_clock(sql_backend: Backend) -> None:
    """With clock=None the relay reads the database clock: a message added now is claimable."""
    conn = sql_backend.connect()
    put(conn, "k", 1)
    _, publish = collect()
    relay = OutboxRelay(sql_backend.connect, publish)
    assert relay.run_once() == 1
    relay.close()
    relay.close()
    assert relay.run_once() == 0  # reconnects
    relay.close()


# --------------------------------------------------------------------------------------
# The run loop, reconnects, configuration
# --------------------------------------------------------------------------------------


def test_run_publishes_until_stopped(backend: Backend) -> None:
    """run(stop) keeps relaying, waits on stop when idle and returns the count published."""
    conn = backend.connect()
    for n in range(5):
        put(conn, "k", n)
    stop = threading.Event()
    waits: list[float | None] = []

    class Stop:
        def is_set(self) -> bool:
            return stop.is_set()

        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            stop.set()
            return True

    relay = backend.relay(lambda m: None, batch_size=2)
    assert relay.run(Stop(), idle_seconds=0.5) == 5
    assert waits == [0.5]


def test_run_reports_database_errors_and_reconnects(tmp_path: Path) -> None:
    """A failing connection goes to on_error (or is raised); the relay reconnects next time."""
    path = tmp_path / "r.db"
    good = _sqlite_connect(path)
    conn = good()
    migrate(conn)
    put(conn, "k", 1)
    calls = {"n": 0}

    def connect() -> sqlite3.Connection:
        calls["n"] += 1
        if calls["n"] == 1:
            return sqlite3.connect(tmp_path / "empty.db")  # no outbox table: claim fails
        return good()

    errors: list[Exception] = []
    stop = threading.Event()
    relay = OutboxRelay(connect, lambda m: stop.set(), clock=FakeClock())
    with relay:
        relay.run(stop, idle_seconds=0, on_error=errors.append)
    assert len(errors) == 1
    assert isinstance(errors[0], sqlite3.OperationalError)
    assert calls["n"] == 2
    calls["n"] = 0
    with pytest.raises(sqlite3.OperationalError):
        OutboxRelay(connect, lambda m: None).run(threading.Event())


def test_a_settle_that_fails_drops_the_connection(tmp_path: Path) -> None:
    """If recording outcomes fails the error is raised and the next run reconnects."""
    path = tmp_path / "s.db"
    connect = _sqlite_connect(path)
    conn = connect()
    migrate(conn)
    put(conn, "k", 1)
    opened: list[int] = []

    def counting_connect() -> sqlite3.Connection:
        opened.append(1)
        return connect()

    def publish(message: OutboxMessage) -> None:
        conn.execute(f"DROP TABLE {TABLE}")  # the settle's UPDATE will fail

    relay = OutboxRelay(counting_connect, publish, clock=FakeClock())
    with pytest.raises(sqlite3.OperationalError):
        relay.run_once()
    with pytest.raises(sqlite3.OperationalError):
        relay.run_once()
    assert len(opened) == 2


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"max_attempts": 1.5}, TypeError, "max_attempts"),
        ({"lease_seconds": 0}, ValueError, "lease_seconds"),
        ({"lease_seconds": "1"}, TypeError, "lease_seconds"),
        ({"backoff": 3}, TypeError, "backoff"),
        ({"monotonic": None}, TypeError, "monotonic"),
        ({"clock": 1.0}, TypeError, "clock"),
    ],
)
def test_relay_validates_its_configuration(
    options: dict[str, Any], error: type[Exception], name: str
) -> None:
    """Bad relay options raise TypeError/ValueError naming the option."""
    with pytest.raises(error, match=name):
        OutboxRelay(MemoryOutbox(), lambda m: None, **options)


def test_relay_validates_connect_publish_and_idle_seconds() -> None:
    """connect must be callable or a store; publish callable; idle_seconds a number >= 0."""
    with pytest.raises(TypeError, match="publish"):
        OutboxRelay(MemoryOutbox(), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connect"):
        OutboxRelay(42, lambda m: None)  # type: ignore[arg-type]
    relay = OutboxRelay(MemoryOutbox(), lambda m: None)
    with pytest.raises(TypeError, match="idle_seconds"):
        relay.run(threading.Event(), idle_seconds="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idle_seconds"):
        relay.run(threading.Event(), idle_seconds=-1)
    with pytest.raises(TypeError, match="clock"):
        MemoryOutbox(clock=5)  # type: ignore[arg-type]


def test_default_backoff_doubles_and_caps() -> None:
    """1, 2, 4, ... seconds, capped at 300."""
    assert [default_backoff(a) for a in (1, 2, 3, 9, 10, 50)] == [
        1.0,
        2.0,
        4.0,
        256.0,
        300.0,
        300.0,
    ]


def test_message_states_allow_only_their_transitions() -> None:
    """The transition table: claim, publish/fail/release, dead, redrive; nothing leaves SENT."""
    MessageState.PENDING.check_transition(MessageState.IN_FLIGHT)
    MessageState.DEAD.check_transition(MessageState.PENDING)
    with pytest.raises(MessageStateError, match="SENT to PENDING") as caught:
        MessageState.SENT.check_transition(MessageState.PENDING)
    assert (caught.value.current, caught.value.target) == (MessageState.SENT, MessageState.PENDING)
    with pytest.raises(MessageStateError):
        MessageState.PENDING.check_transition(MessageState.SENT)


def test_a_psycopg_autocommit_connection_still_claims_in_one_transaction(
    pg: Callable[..., Any],
) -> None:
    """On an autocommit psycopg connection the store opens its own transaction."""
    conn = pg()
    migrate(conn)
    put(conn, "k", 1)
    auto = pg(autocommit=True)
    _, publish = collect()
    assert OutboxRelay(lambda: auto, publish).run_once() == 1
    assert migrate(auto) == 1


# --------------------------------------------------------------------------------------
# PostgreSQL: sequence numbers allocated out of commit order
# --------------------------------------------------------------------------------------


def test_same_key_writers_are_serialised_until_commit_on_postgres(pg: Callable[..., Any]) -> None:
    """A second writer of key K waits for the first's commit; writers of other keys do not."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL cases need the driver

    setup = pg()
    migrate(setup)
    first, second = pg(), pg()
    add(first, topic="t", key="K", payload=1)  # open transaction, holds K's lock
    second.execute("SET lock_timeout = '200ms'")
    add(second, topic="t", key="L", payload=1)  # another key: no wait
    with pytest.raises(psycopg.errors.LockNotAvailable):
        add(second, topic="t", key="K", payload=2)
    second.rollback()
    first.commit()
    add(second, topic="t", key="K", payload=2)
    second.commit()


def test_the_key_lock_is_taken_before_the_sequence_number_is_drawn(
    pg: Callable[..., Any],
) -> None:
    """A writer waiting for K's lock has not drawn a sequence number yet (else order could flip)."""
    import psycopg  # noqa: PLC0415 - only the PostgreSQL cases need the driver

    setup = pg(autocommit=True)
    migrate(setup)
    holder, waiter = pg(), pg()
    holder.execute("SELECT pg_advisory_xact_lock(%s, hashtext('K'))", (outbox._LOCK_CLASS,))
    waiter.execute("SET lock_timeout = '200ms'")
    with pytest.raises(psycopg.errors.LockNotAvailable):
        add(waiter, topic="t", key="K", payload=1)
    waiter.rollback()
    sequence = setup.execute(f"SELECT pg_get_serial_sequence('{TABLE}', 'seq')").fetchone()[0]
    (drawn,) = setup.execute(f"SELECT is_called FROM {sequence}").fetchone()
    assert drawn is False  # sequences do not roll back: a drawn number would show here
    holder.rollback()


def test_a_later_commit_of_an_earlier_sequence_cannot_reorder_a_key_on_postgres(
    pg: Callable[..., Any],
) -> None:
    """Out of commit order: K#2 cannot take a sequence number before K#1 commits, so order holds."""
    setup = pg()
    migrate(setup)
    first, second = pg(), pg()
    add(first, topic="t", key="K", payload=1)
    started = threading.Event()
    finished = threading.Event()

    def later_writer() -> None:
        started.set()
        add(second, topic="t", key="K", payload=2)  # blocks on K until `first` commits
        second.commit()
        finished.set()

    thread = threading.Thread(target=later_writer)
    thread.start()
    assert started.wait(10)
    got, publish = collect()
    relay = OutboxRelay(pg, publish)
    relay.run_once()
    assert got == []  # neither is visible: K#1 is uncommitted and K#2 is still waiting
    first.commit()
    assert finished.wait(10)
    thread.join()
    while relay.run_once():
        pass
    assert [m.payload for m in got] == [1, 2]
    cur = setup.execute(f"SELECT payload::text FROM {TABLE} ORDER BY seq")
    assert [row[0] for row in cur.fetchall()] == ["1", "2"]
    relay.close()


# --------------------------------------------------------------------------------------
# A property: any interleaving of adds, failures and relays keeps the guarantees
# --------------------------------------------------------------------------------------

OPERATION = st.one_of(
    st.tuples(st.just("add"), st.sampled_from("abc")),
    st.tuples(st.just("relay"), st.integers(1, 4)),
    st.tuples(st.just("fail"), st.sampled_from("abc")),
    st.tuples(st.just("tick"), st.floats(0, 40)),
    st.tuples(st.just("crash"), st.integers(1, 4)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPERATION, max_size=40))
def test_any_schedule_delivers_everything_in_order_per_key(
    operations: list[tuple[str, Any]],
) -> None:
    """Adds, failures, crashed claims, lease expiry: all delivered, first deliveries in order."""
    clock = FakeClock()
    memory = MemoryOutbox(clock=clock)
    added: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    failing: set[str] = set()
    first: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()

    def publish(message: OutboxMessage) -> None:
        if message.key in failing:
            failing.discard(message.key)
            raise Boom
        item = (message.key, message.payload)
        if item not in seen:
            seen.add(item)
            first.append(item)

    relay = OutboxRelay(
        memory, publish, clock=clock, lease_seconds=30, max_attempts=1000, backoff=lambda a: 1.0
    )
    for op, arg in operations:
        if op == "add":
            added[arg].append(len(added[arg]))
            add(memory, topic="t", key=arg, payload=added[arg][-1])
        elif op == "relay":
            relay.batch_size = arg
            relay.run_once()
        elif op == "fail":
            failing.add(arg)
        elif op == "tick":
            clock.advance(arg)
        else:
            memory.claim(limit=arg, lease_seconds=30, max_attempts=1000, dead_blocks_key=True)
    failing.clear()
    clock.advance(10**6)
    while relay.run_once():
        clock.advance(10**6)
    for key, numbers in added.items():
        assert [n for k, n in first if k == key] == numbers
    assert stats(memory).pending == stats(memory).in_flight == 0


# --------------------------------------------------------------------------------------
# Edges: lost leases on failure, awaitables, stores that fail, the batch rule
# --------------------------------------------------------------------------------------


def test_migrate_commits_what_the_connection_had_open(tmp_path: Path) -> None:
    """migrate() commits (documented): an open transaction on the connection is committed."""
    conn = sqlite3.connect(tmp_path / "m.db")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert conn.in_transaction
    migrate(conn)
    other = sqlite3.connect(tmp_path / "m.db")
    assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()
    conn.close()


@pytest.mark.parametrize("fail", [True, False])
def test_a_lost_lease_ignores_failures_and_releases(backend: Backend, fail: bool) -> None:
    """A taken-over batch records neither its failures nor its releases."""
    conn = backend.connect()
    put(conn, "k", 1)
    put(conn, "k", 2)
    other = backend.connect()
    other = other if isinstance(other, MemoryOutbox) else SQLOutbox(other)

    def publish(message: OutboxMessage) -> None:
        backend.clock.advance(31)
        other.claim(
            limit=10, lease_seconds=30, max_attempts=5, dead_blocks_key=True, now=backend.clock.now
        )
        if fail:
            raise Boom

    relay = backend.relay(publish, lease_seconds=30, max_attempts=1 if fail else 5)
    relay.run_once()
    assert relay.lost_leases == 2
    assert stats(conn, now=backend.clock.now).in_flight == 2
    assert dead_letters(conn) == []


def test_the_batch_rule_takes_contiguous_claimable_rows_per_key() -> None:
    """After a key's head: claimable rows in order; a blocking row closes the key."""
    now = 10.0
    candidates = [
        (1, "a", 0, 0.0, None),
        (2, "a", 0, 0.0, None),
        (3, "a", 2, 0.0, None),  # dead
        (4, "a", 0, 0.0, None),
        (5, "b", 0, 0.0, None),
        (6, "b", 0, 99.0, None),  # in backoff: closes b
        (7, "b", 0, 0.0, None),
        (8, "c", 0, 0.0, None),  # not a head this time
        (9, "c", 0, 0.0, None),
    ]
    blocking = outbox._pick(candidates, [1, 5], limit=10, now=now, dead_blocks_key=True)
    skipping = outbox._pick(candidates, [1, 5], limit=10, now=now, dead_blocks_key=False)
    assert sorted(blocking) == [1, 2, 5]
    assert sorted(skipping) == [1, 2, 4, 5]
    assert outbox._pick(candidates, [1, 5], limit=3, now=now, dead_blocks_key=False) == [1, 5, 2]


class _Awaitable:
    """An awaitable that is not a coroutine (no close method)."""

    def __await__(self) -> Any:
        return iter(())


def test_sync_run_once_runs_several_awaitables_on_one_private_loop(backend: Backend) -> None:
    """Two awaitables in one batch both finish; a non-coroutine awaitable works too."""
    conn = backend.connect()
    put(conn, "a", 1)
    put(conn, "b", 2)
    done: list[str] = []

    def publish(message: OutboxMessage) -> object:
        done.append(message.key)
        return _Awaitable() if message.key == "a" else asyncio.sleep(0)

    assert backend.relay(publish).run_once() == 2
    assert done == ["a", "b"]


def test_an_awaitable_without_close_inside_a_loop_is_refused(backend: Backend) -> None:
    """The refusal inside a running loop also works for awaitables that cannot be closed."""
    conn = backend.connect()
    put(conn, "k", 1)

    async def main() -> None:
        backend.relay(lambda m: _Awaitable()).run_once()

    with pytest.raises(OutboxError):
        asyncio.run(main())


def test_run_inside_a_loop_raises_the_refusal(backend: Backend) -> None:
    """run() does not swallow the awaitable-in-a-running-loop refusal into on_error."""
    conn = backend.connect()
    put(conn, "k", 1)
    errors: list[Exception] = []

    async def main() -> None:
        backend.relay(lambda m: _Awaitable()).run(threading.Event(), on_error=errors.append)

    with pytest.raises(OutboxError):
        asyncio.run(main())
    assert errors == []


def test_run_once_async_handles_sync_results_and_lease_expiry(backend: Backend) -> None:
    """run_once_async accepts plain results and stops a batch that outlived its lease."""
    conn = backend.connect()
    for key in ("a", "b", "c"):
        put(conn, key, 0)
    ticks = iter([0.0, 0.0, 5.0, 11.0, 11.0])
    got, publish = collect()
    relay = backend.relay(publish, lease_seconds=10, monotonic=lambda: next(ticks))
    assert asyncio.run(relay.run_once_async()) == 2
    assert [m.key for m in got] == ["a", "b"]


def test_a_store_that_fails_to_claim_is_raised_and_kept(backend: Backend) -> None:
    """A store given directly is not dropped when its claim fails; the error is raised."""

    class Failing(MemoryOutbox):
        def claim(self, **options: Any) -> Any:
            raise Boom("store down")

    relay = OutboxRelay(Failing(), lambda m: None)
    with pytest.raises(Boom):
        relay.run_once()
    with pytest.raises(Boom):
        relay.run_once()


def test_a_connection_that_fails_to_close_is_dropped_anyway(tmp_path: Path) -> None:
    """After a database error the relay drops its connection even if closing it fails."""

    class Unclosable(sqlite3.Connection):
        def close(self) -> None:
            raise sqlite3.ProgrammingError("cannot close")

    Unclosable.__module__ = "sqlite3"
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "none.db", factory=Unclosable)
        opened.append(conn)
        return conn

    relay = OutboxRelay(connect, lambda m: None)
    for _ in range(2):
        with pytest.raises(sqlite3.OperationalError):
            relay.run_once()
    assert len(opened) == 2
    for conn in opened:
        sqlite3.Connection.close(conn)
