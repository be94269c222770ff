"""interlock.idempotency: claim then complete, fingerprints, leases, TTL, inbox, HTTP mapping."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import sqlite3
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import interlock.idempotency as idem
from interlock.idempotency import (
    MAX_KEY_LENGTH,
    Claim,
    ClaimLostError,
    IdempotencyError,
    InMemoryIdempotencyStore,
    InvalidKeyError,
    KeyInProgressError,
    KeyReusedError,
    MissingKeyError,
    RecordState,
    SQLIdempotencyStore,
    StoredFailureError,
    canonical_json,
    fingerprint,
    http_status,
    idempotent,
    inbox,
    migrate,
    parse_idempotency_key,
    problem_details,
)

T0 = 1_700_000_000.0


def _vectors_dir() -> Path:
    here = Path(__file__).resolve()
    for parent in (here.parents[2], here.parents[1]):
        candidate = parent / "shared" / "vectors" / "idempotency"
        if candidate.is_dir():
            return candidate
    return here.parents[2] / "shared" / "vectors" / "idempotency"


VECTORS = _vectors_dir()


def _vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


IETF = _vector("ietf-idempotency-key-draft.json")
STRIPE = _vector("stripe-idempotency-semantics.json")
POWERTOOLS = _vector("powertools-key-derivation.json")


class FakeClock:
    """Unix seconds that move only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A function making stores of one backend (all share one database), with a fake clock."""
    clock = FakeClock()
    made: list[SQLIdempotencyStore] = []
    if request.param == "memory":
        shared: dict[str, Any] = {}

        def make(**options: Any) -> Any:
            # Stores made by one test share their records, as SQL stores share a database.
            store = InMemoryIdempotencyStore(clock=options.pop("clock", clock), **options)
            if shared:
                store._rows, store._lock = shared["rows"], shared["lock"]
            else:
                shared.update(rows=store._rows, lock=store._lock)
            return store

    else:
        if request.param == "sqlite":
            path = tmp_path / "idem.db"

            def connect() -> Any:
                return sqlite_connect(path)

        else:
            pg = request.getfixturevalue("postgres")
            connect = pg.connect
        conn = connect()
        migrate(conn)
        conn.close()

        def make(**options: Any) -> Any:
            store = SQLIdempotencyStore(connect, clock=options.pop("clock", clock), **options)
            made.append(store)
            return store

    make.clock = clock  # type: ignore[attr-defined]
    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for store in made:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_conn(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A function opening connections to one migrated SQL database (SQLite file or PostgreSQL)."""
    opened: list[Any] = []
    if request.param == "sqlite":
        path = tmp_path / "inbox.db"

        def connect() -> Any:
            conn = sqlite_connect(path)
            conn.isolation_level = None  # explicit BEGIN IMMEDIATE below
            opened.append(conn)
            return conn

    else:
        pg = request.getfixturevalue("postgres")

        def connect() -> Any:
            conn = pg.connect()
            opened.append(conn)
            return conn

    first = connect()
    migrate(first)
    connect.kind = request.param  # type: ignore[attr-defined]
    yield connect
    for conn in opened:
        conn.close()


def begin(conn: Any) -> None:
    """Start the caller's transaction the way each database wants it."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")


# --------------------------------------------------------------------------------------
# Stores: claim, complete, release, replay, leases, TTL (every backend)
# --------------------------------------------------------------------------------------


def test_first_claim_claims_and_a_concurrent_caller_sees_in_progress(backend: Any) -> None:
    """The first claim holds the key; the next caller sees IN_PROGRESS and the lease end."""
    store = backend(lease_seconds=30)
    first = store.claim("orders", "k1", fingerprint="f")
    assert first.claimed
    assert first.is_new
    assert first.found is RecordState.ABSENT
    assert first.token
    assert first.lease_expires_at == T0 + 30
    second = backend().claim("orders", "k1", fingerprint="f")
    assert not second.claimed
    assert second.in_progress
    assert not second.is_replay
    assert second.token is None
    assert second.lease_expires_at == T0 + 30


def test_completed_result_is_replayed_as_stored(backend: Any) -> None:
    """After complete, every claim returns the stored result (a JSON copy) and claims nothing."""
    store = backend()
    claim = store.claim("orders", "k1")
    store.complete(claim, {"id": "ch_1", "items": (1, 2)})
    for _ in range(2):
        again = store.claim("orders", "k1")
        assert again.is_replay
        assert not again.claimed
        assert not again.failed
        assert again.result == {"id": "ch_1", "items": [1, 2]}
        assert again.lease_expires_at is None


def test_scopes_keep_equal_keys_apart(backend: Any) -> None:
    """The same key in two scopes is two records."""
    store = backend()
    assert store.claim("a", "k").claimed
    assert store.claim("b", "k").claimed


def test_release_lets_a_retry_claim_again(backend: Any) -> None:
    """A released claim leaves the key ABSENT: the retry claims it as new."""
    store = backend()
    claim = store.claim("orders", "k1", fingerprint="f")
    assert store.release(claim) is True
    assert store.get("orders", "k1") is None
    retry = store.claim("orders", "k1", fingerprint="other")  # released: nothing is bound
    assert retry.claimed
    assert retry.found is RecordState.ABSENT
    assert store.release(claim) is False  # the old token cannot release the new claim
    assert store.claim("orders", "k1").in_progress


def test_release_of_an_unclaimed_or_completed_claim_does_nothing(backend: Any) -> None:
    """Releasing a claim that was never claimed, or a completed key, changes nothing."""
    store = backend()
    claim = store.claim("orders", "k1")
    refused = store.claim("orders", "k1")
    assert store.release(refused) is False
    store.complete(claim, 1)
    assert store.release(claim) is False
    assert store.claim("orders", "k1").result == 1


def test_a_different_fingerprint_is_refused_in_progress_and_completed(backend: Any) -> None:
    """Same key with another fingerprint raises KeyReusedError, live or completed."""
    store = backend()
    claim = store.claim("pay", "k1", fingerprint="aaa")
    with pytest.raises(KeyReusedError) as info:
        store.claim("pay", "k1", fingerprint="bbb")
    assert (info.value.scope, info.value.key) == ("pay", "k1")
    assert (info.value.fingerprint, info.value.stored_fingerprint) == ("bbb", "aaa")
    assert info.value.status == 422
    store.complete(claim, "ok")
    with pytest.raises(KeyReusedError):
        store.claim("pay", "k1", fingerprint="bbb")
    assert store.claim("pay", "k1", fingerprint=None).result == "ok"  # None is not compared


def test_an_expired_lease_is_retaken_and_the_stale_worker_loses(backend: Any) -> None:
    """A claim past its lease reads EXPIRED, is retaken, and the old token can do nothing."""
    store = backend(lease_seconds=10)
    stale = store.claim("jobs", "k1", fingerprint="f")
    backend.clock.advance(10)
    assert store.get("jobs", "k1").state is RecordState.EXPIRED
    fresh = store.claim("jobs", "k1")  # no fingerprint: the stored one is kept
    assert fresh.claimed
    assert fresh.found is RecordState.EXPIRED
    assert fresh.token != stale.token
    assert store.get("jobs", "k1").fingerprint == "f"
    with pytest.raises(ClaimLostError) as info:
        store.complete(stale, "late")
    assert (info.value.scope, info.value.key, info.value.status) == ("jobs", "k1", 409)
    assert store.release(stale) is False
    store.complete(fresh, "done")
    assert store.claim("jobs", "k1").result == "done"


def test_an_expired_lease_still_refuses_another_fingerprint(backend: Any) -> None:
    """An EXPIRED claim stays bound to its fingerprint until its TTL."""
    store = backend(lease_seconds=10)
    store.claim("jobs", "k1", fingerprint="f")
    backend.clock.advance(11)
    with pytest.raises(KeyReusedError):
        store.claim("jobs", "k1", fingerprint="g")


def test_a_late_worker_may_complete_when_nobody_retook_its_claim(backend: Any) -> None:
    """Past its lease but not retaken, a claim can still complete: the work happened."""
    store = backend(lease_seconds=10)
    claim = store.claim("jobs", "k1")
    backend.clock.advance(60)
    store.complete(claim, [1])
    assert store.claim("jobs", "k1").result == [1]


def test_per_call_lease_overrides_the_default(backend: Any) -> None:
    """claim(lease_seconds=...) sets this claim's lease."""
    store = backend(lease_seconds=10)
    assert store.claim("jobs", "k1", lease_seconds=2.5).lease_expires_at == T0 + 2.5


def test_ttl_expiry_makes_a_key_new_and_the_sweep_deletes_it(backend: Any) -> None:
    """Past its TTL a record reads ABSENT, a claim is new, and purge_expired deletes it."""
    store = backend(ttl_seconds=100)
    done = store.claim("s", "old")
    store.complete(done, "r", now=T0)
    keep = store.claim("s", "young", now=T0 + 50)
    store.complete(keep, "r", ttl_seconds=500, now=T0 + 50)
    assert store.get("s", "old", now=T0 + 100) is None
    assert store.get("s", "young", now=T0 + 100).state is RecordState.COMPLETED
    assert store.purge_expired(now=T0 + 100) == 1
    assert store.purge_expired(now=T0 + 100) == 0
    again = store.claim("s", "old", fingerprint="new", now=T0 + 100)
    assert again.claimed
    assert again.found is RecordState.ABSENT


def test_a_record_past_its_ttl_is_overwritten_by_a_claim_before_any_sweep(backend: Any) -> None:
    """An unswept expired row does not block a claim (SQL stores overwrite it in place)."""
    store = backend(ttl_seconds=100)
    store.complete(store.claim("s", "k", fingerprint="a"), "old")
    backend.clock.advance(100)
    claim = store.claim("s", "k", fingerprint="b")
    assert claim.claimed
    assert claim.found is RecordState.ABSENT
    store.complete(claim, "new")
    assert store.claim("s", "k", fingerprint="b").result == "new"


def test_complete_after_the_ttl_passed_is_a_lost_claim(backend: Any) -> None:
    """A claim whose record passed its TTL cannot be completed."""
    store = backend(ttl_seconds=100, lease_seconds=10)
    claim = store.claim("s", "k")
    with pytest.raises(ClaimLostError):
        store.complete(claim, 1, now=T0 + 100)


def test_get_returns_the_whole_record(backend: Any) -> None:
    """get() reports state, fingerprint, times, the decoded result and the failed flag."""
    store = backend(lease_seconds=10, ttl_seconds=1000)
    assert store.get("s", "k") is None
    claim = store.claim("s", "k", fingerprint="fp")
    record = store.get("s", "k")
    assert record.state is RecordState.IN_PROGRESS
    assert (record.created_at, record.expires_at, record.lease_expires_at) == (
        T0,
        T0 + 1000,
        T0 + 10,
    )
    assert record.completed_at is None
    assert record.result is None
    assert not record.failed
    store.complete(claim, {"error": "bad"}, failed=True, now=T0 + 5)
    record = store.get("s", "k")
    assert (record.scope, record.key, record.fingerprint) == ("s", "k", "fp")
    assert record.state is RecordState.COMPLETED
    assert record.failed
    assert record.completed_at == T0 + 5
    assert record.expires_at == T0 + 1005
    assert record.lease_expires_at is None
    assert record.result == {"error": "bad"}
    replay = store.claim("s", "k")
    assert replay.failed
    assert replay.result == {"error": "bad"}


def test_keys_are_checked(backend: Any) -> None:
    """None or "" is MissingKeyError; a non-str or over-long key is InvalidKeyError (400)."""
    store = backend()
    for missing in (None, ""):
        with pytest.raises(MissingKeyError) as info:
            store.claim("s", missing)
        assert info.value.status == 400
        assert info.value.key == missing
    with pytest.raises(InvalidKeyError) as bad:
        store.claim("s", 42)
    assert bad.value.key == 42
    assert "str" in bad.value.reason
    with pytest.raises(InvalidKeyError, match="longer than 255"):
        store.claim("s", "x" * (MAX_KEY_LENGTH + 1))
    assert store.claim("s", "x" * MAX_KEY_LENGTH).claimed
    with pytest.raises(TypeError, match="scope"):
        store.claim(None, "k")
    with pytest.raises(ValueError, match="scope"):
        store.claim("", "k")
    with pytest.raises(TypeError, match="fingerprint"):
        store.claim("s", "k2", fingerprint=b"raw")
    with pytest.raises(ValueError, match="lease_seconds"):
        store.claim("s", "k2", lease_seconds=0)


def test_complete_needs_a_held_claim_and_an_encodable_result(backend: Any) -> None:
    """complete() refuses an unclaimed Claim and an unencodable result, writing nothing."""
    store = backend()
    claim = store.claim("s", "k")
    with pytest.raises(TypeError, match="claimed"):
        store.complete(store.claim("s", "k"), 1)
    with pytest.raises(TypeError, match="claimed"):
        store.complete("not a claim", 1)
    with pytest.raises(TypeError):
        store.complete(claim, object())
    with pytest.raises(ValueError, match="JSON compliant"):  # NaN is not JSON
        store.complete(claim, float("nan"))
    assert store.claim("s", "k").in_progress  # nothing was written
    with pytest.raises(ValueError, match="ttl_seconds"):
        store.complete(claim, 1, ttl_seconds=-1)
    store.complete(claim, 1)


def test_a_custom_codec_stores_and_restores_results(backend: Any) -> None:
    """encode/decode replace JSON: here tuples survive the round trip."""
    store = backend(
        encode=lambda value: json.dumps({"tuple": list(value)}),
        decode=lambda text: tuple(json.loads(text)["tuple"]),
    )
    store.complete(store.claim("s", "k"), (1, "a"))
    assert store.claim("s", "k").result == (1, "a")
    bad = backend(encode=lambda value: b"bytes")
    with pytest.raises(TypeError, match="encode must return a str"):
        bad.complete(bad.claim("s", "k2"), 1)


def test_store_configuration_is_validated() -> None:
    """Bad clocks, leases, TTLs, codecs and connections raise TypeError/ValueError by name."""
    with pytest.raises(TypeError, match="clock"):
        InMemoryIdempotencyStore(clock=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lease_seconds"):
        InMemoryIdempotencyStore(lease_seconds=True)
    with pytest.raises(TypeError, match="lease_seconds"):
        InMemoryIdempotencyStore(lease_seconds="5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl_seconds"):
        InMemoryIdempotencyStore(ttl_seconds=float("inf"))
    with pytest.raises(ValueError, match="ttl_seconds"):
        InMemoryIdempotencyStore(ttl_seconds=float("nan"))
    with pytest.raises(TypeError, match="encode"):
        InMemoryIdempotencyStore(encode=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decode"):
        InMemoryIdempotencyStore(decode="json")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connect"):
        SQLIdempotencyStore(42)
    with pytest.raises(TypeError, match="unsupported DB-API connection"):
        SQLIdempotencyStore(types.SimpleNamespace(cursor=None))


def test_memory_store_repr_and_len_count_records() -> None:
    """The in-memory store reports how many records it holds."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    store.claim("s", "a")
    store.claim("s", "b")
    assert len(store) == 2
    assert repr(store) == "InMemoryIdempotencyStore(records=2)"


def test_memory_store_threads_racing_on_one_key_claim_it_once() -> None:
    """8 threads released together on one key: exactly one claims it."""
    store = InMemoryIdempotencyStore()
    barrier = threading.Barrier(8)
    claims: list[Claim] = []

    def worker() -> None:
        barrier.wait()
        claims.append(store.claim("race", "k"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(claim.claimed for claim in claims) == 1


# --------------------------------------------------------------------------------------
# The SQL store: connections, transactions, migrate
# --------------------------------------------------------------------------------------


def test_sql_store_on_one_shared_connection_commits_and_never_closes_it(tmp_path: Path) -> None:
    """A store given a connection uses it behind a lock, commits, and close() leaves it open."""
    conn = sqlite3.connect(tmp_path / "shared.db", check_same_thread=False)
    with SQLIdempotencyStore(conn, clock=FakeClock()) as store:
        assert store.migrate() == 1
        assert repr(store) == "SQLIdempotencyStore(<connection>)"
        store.complete(store.claim("s", "k"), 7)
    assert not conn.in_transaction
    other = sqlite3.connect(tmp_path / "shared.db")
    assert other.execute("SELECT result FROM interlock_idempotency_keys").fetchall() == [("7",)]
    other.close()
    conn.execute("SELECT 1")  # still open
    conn.close()


def test_sql_store_opens_one_connection_per_thread_and_closes_them(tmp_path: Path) -> None:
    """A factory store opens a connection per thread; close() closes those it opened."""
    opened: list[sqlite3.Connection] = []

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(tmp_path / "f.db", timeout=10.0, check_same_thread=False)
        opened.append(conn)
        return conn

    store = SQLIdempotencyStore(connect, clock=FakeClock())
    assert repr(store) == "SQLIdempotencyStore(<factory>)"
    store.migrate()
    store.claim("s", "main")
    thread = threading.Thread(target=lambda: store.claim("s", "thread"))
    thread.start()
    thread.join()
    assert len(opened) == 2
    store.close()
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    assert store.get("s", "main") is not None  # a later call opens a new connection
    store.close()


def test_sql_store_rolls_back_and_stays_usable_after_a_database_error(tmp_path: Path) -> None:
    """A failing statement rolls the transaction back and the error propagates unchanged."""
    conn = sqlite3.connect(tmp_path / "x.db")
    store = SQLIdempotencyStore(conn, clock=FakeClock())
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        store.claim("s", "k")
    assert not conn.in_transaction
    store.migrate()
    assert store.claim("s", "k").claimed
    conn.close()


def test_sql_store_on_an_autocommit_postgres_connection_runs_transactions(postgres: Any) -> None:
    """An autocommit psycopg connection gets an explicit BEGIN, so a claim is atomic."""
    conn = postgres.connect(autocommit=True)
    store = SQLIdempotencyStore(conn, clock=FakeClock())
    assert store.migrate() == 1
    claim = store.claim("s", "k", fingerprint="f")
    assert store.claim("s", "k", fingerprint="f").in_progress
    store.complete(claim, {"ok": True})
    assert store.claim("s", "k").result == {"ok": True}
    conn.close()


class _RacingCursor:
    """A cursor that deletes the row just before the claim's SELECT reads it."""

    def __init__(self, owner: _RacingConnection) -> None:
        self.owner = owner
        self.cursor = owner.real.cursor()

    def execute(self, sql: str, params: Any = ()) -> _RacingCursor:
        if sql.startswith("SELECT state") and self.owner.vanish:
            self.owner.vanish = False  # another transaction releases the claim right now
            self.cursor.execute(
                "DELETE FROM interlock_idempotency_keys WHERE scope = ? AND key = ?", params
            )
        self.cursor.execute(sql, params)
        return self

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


class _RacingConnection:
    """A sqlite3 connection where a claimed row vanishes between INSERT and SELECT, as a
    concurrent release can make it do on PostgreSQL (READ COMMITTED)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real
        self.vanish = True

    @property
    def in_transaction(self) -> bool:
        return self.real.in_transaction

    def cursor(self) -> _RacingCursor:
        return _RacingCursor(self)

    def commit(self) -> None:
        self.real.commit()

    def rollback(self) -> None:
        self.real.rollback()


_RacingConnection.__module__ = "sqlite3.racing"


def test_a_claim_whose_row_vanishes_mid_claim_inserts_again(tmp_path: Path) -> None:
    """When the conflicting row is gone by the time it is read, the claim retries the insert."""
    real = sqlite3.connect(tmp_path / "race.db")
    clock = FakeClock()
    SQLIdempotencyStore(real, clock=clock).migrate()
    holder = SQLIdempotencyStore(real, clock=clock)
    holder.claim("s", "k", fingerprint="old")
    racing = SQLIdempotencyStore(_RacingConnection(real), clock=clock)
    claim = racing.claim("s", "k", fingerprint="new")
    assert claim.claimed
    assert claim.found is RecordState.ABSENT
    assert racing.get("s", "k").fingerprint == "new"
    real.close()


def test_migrate_is_idempotent_and_refuses_a_newer_schema(sql_conn: Any) -> None:
    """migrate() twice reaches version 1 once; a newer recorded version raises ValueError."""
    conn = sql_conn()
    assert migrate(conn) == 1
    assert migrate(conn) == 1
    cursor = conn.cursor()
    cursor.execute("SELECT version FROM interlock_idempotency_schema")
    assert cursor.fetchall() == [(1,)]
    cursor.execute("INSERT INTO interlock_idempotency_schema (version) VALUES (99)")
    conn.commit()
    with pytest.raises(ValueError, match="version 99"):
        migrate(conn)
    cursor = conn.cursor()
    cursor.execute("SELECT 1")  # the failed migrate rolled back: the connection works
    assert cursor.fetchone() == (1,)


def test_migrate_from_many_threads_at_once_on_postgres(postgres: Any) -> None:
    """Concurrent migrate() calls (advisory lock) all succeed and record version 1 once."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        conn = postgres.connect()
        try:
            barrier.wait()
            migrate(conn)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    conn = postgres.connect()
    assert conn.execute("SELECT version FROM interlock_idempotency_schema").fetchall() == [(1,)]
    conn.close()


class _FakeCursor:
    rowcount = 0


def _fake_connection(module: str) -> object:
    cls = type("Connection", (), {"cursor": lambda self: _FakeCursor()})
    cls.__module__ = module
    return cls()


def test_dialect_adapter_recognises_drivers_and_rewrites_placeholders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The adapter maps sqlite3, format/pyformat and numeric drivers; refuses the rest."""
    monkeypatch.setitem(sys.modules, "pg8000", types.SimpleNamespace(paramstyle="numeric"))
    monkeypatch.setitem(sys.modules, "psycopg2", types.SimpleNamespace(paramstyle="pyformat"))
    monkeypatch.setitem(sys.modules, "psycopg2cffi", types.SimpleNamespace(paramstyle="qmark"))
    numeric = idem._dialect_of(_fake_connection("pg8000.legacy"))
    assert (numeric.name, numeric.sql("a = ? AND b = ?")) == ("postgresql", "a = :1 AND b = :2")
    pyformat = idem._dialect_of(_fake_connection("psycopg2.extensions"))
    assert pyformat.sql("a = ? AND b = ?") == "a = %s AND b = %s"
    assert idem._dialect_of(sqlite3.connect(":memory:")).sql("a = ?") == "a = ?"
    for module in ("psycopg2cffi", "mysql.connector"):
        with pytest.raises(TypeError, match="unsupported DB-API connection"):
            idem._dialect_of(_fake_connection(module))
    with pytest.raises(TypeError, match="unsupported DB-API connection"):
        migrate(object())


# --------------------------------------------------------------------------------------
# The inbox: the dedup record in the caller's transaction
# --------------------------------------------------------------------------------------


def test_inbox_records_a_key_once_and_reports_duplicates(sql_conn: Any) -> None:
    """First inbox() of a key is new; later ones, in this or another transaction, duplicates."""
    conn = sql_conn()
    begin(conn)
    with inbox(conn, scope="billing", key="m1", now=T0) as entry:
        assert entry.is_new
        assert not entry.is_duplicate
    assert inbox(conn, scope="billing", key="m1", now=T0).is_duplicate
    conn.commit()
    other = sql_conn()
    begin(other)
    entry = inbox(other, scope="billing", key="m1", now=T0)
    assert entry.is_new is False
    assert inbox(other, scope="other", key="m1", now=T0).is_new
    other.commit()


def test_inbox_never_commits_so_a_rollback_forgets_the_key(sql_conn: Any) -> None:
    """The dedup row is part of the caller's transaction: rolled back with the effect."""
    conn = sql_conn()
    begin(conn)
    assert inbox(conn, scope="billing", key="m1").is_new
    conn.rollback()
    begin(conn)
    assert inbox(conn, scope="billing", key="m1").is_new
    conn.commit()


def test_inbox_effect_and_record_commit_together(sql_conn: Any) -> None:
    """The documented pattern: the effect runs once however often the message arrives."""
    conn = sql_conn()
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE ledger (message_id TEXT, amount INTEGER)")
    conn.commit()
    for message_id in ["m1", "m2", "m1", "m3", "m2"]:
        begin(conn)
        with inbox(conn, scope="ledger", key=message_id) as entry:
            if entry.is_new:
                conn.cursor().execute(
                    idem._dialect_of(conn).sql("INSERT INTO ledger VALUES (?, 10)"), (message_id,)
                )
        conn.commit()
    cursor = conn.cursor()
    cursor.execute("SELECT message_id, COUNT(*) FROM ledger GROUP BY message_id ORDER BY 1")
    assert cursor.fetchall() == [("m1", 1), ("m2", 1), ("m3", 1)]


def test_inbox_compares_fingerprints_of_duplicates(sql_conn: Any) -> None:
    """A duplicate with another fingerprint raises KeyReusedError; None is not compared."""
    conn = sql_conn()
    begin(conn)
    assert inbox(conn, scope="s", key="k", fingerprint="a", now=T0).is_new
    assert inbox(conn, scope="s", key="k", fingerprint="a", now=T0).is_duplicate
    assert inbox(conn, scope="s", key="k", now=T0).is_duplicate
    with pytest.raises(KeyReusedError):
        inbox(conn, scope="s", key="k", fingerprint="b", now=T0)
    conn.rollback()


def test_inbox_records_stay_duplicates_until_the_sweep_deletes_them(sql_conn: Any) -> None:
    """Past its TTL an inbox record still reports duplicates; after purge_expired, new."""
    conn = sql_conn()
    begin(conn)
    assert inbox(conn, scope="s", key="old", ttl_seconds=10, now=int(T0)).is_new
    assert inbox(conn, scope="s", key="young", ttl_seconds=1000, now=T0).is_new
    conn.commit()
    begin(conn)
    assert inbox(conn, scope="s", key="old", now=T0 + 50).is_duplicate
    conn.commit()
    sweeper = SQLIdempotencyStore(sql_conn(), clock=FakeClock(T0 + 50))
    assert sweeper.get("s", "old") is None  # expired for the store already
    assert sweeper.get("s", "young") is not None
    assert sweeper.purge_expired() == 1
    begin(conn)
    assert inbox(conn, scope="s", key="old", now=T0 + 50).is_new
    assert inbox(conn, scope="s", key="young", now=T0 + 50).is_duplicate
    conn.commit()


def test_inbox_validates_its_arguments(sql_conn: Any) -> None:
    """Missing keys, bad scopes, fingerprints and TTLs are refused before any SQL runs."""
    conn = sql_conn()
    with pytest.raises(MissingKeyError):
        inbox(conn, scope="s", key=None)
    with pytest.raises(TypeError, match="scope"):
        inbox(conn, scope=1, key="k")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fingerprint"):
        inbox(conn, scope="s", key="k", fingerprint=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl_seconds"):
        inbox(conn, scope="s", key="k", ttl_seconds=0)


@pytest.mark.parametrize("first_commits", [True, False])
def test_inbox_concurrent_duplicate_waits_for_the_first_transaction(
    sql_conn: Any, first_commits: bool
) -> None:
    """A second transaction on the same key sees a duplicate if the first commits, else new."""
    first, second = sql_conn(), sql_conn()
    begin(first)
    assert inbox(first, scope="s", key="k").is_new
    inserted = threading.Event()
    seen: list[bool] = []

    def other() -> None:
        inserted.set()
        begin(second)  # SQLite waits here for the write lock; PostgreSQL at the INSERT
        seen.append(inbox(second, scope="s", key="k").is_new)
        second.commit()

    thread = threading.Thread(target=other)
    thread.start()
    inserted.wait()
    if first_commits:
        first.commit()
    else:
        first.rollback()
    thread.join()
    assert seen == [not first_commits]


# --------------------------------------------------------------------------------------
# The decorator
# --------------------------------------------------------------------------------------


def test_decorated_function_runs_once_per_key_and_replays(backend: Any) -> None:
    """The function runs on the first call; later calls with the key get the stored result."""
    store = backend()
    calls: list[tuple[str, int]] = []

    @idempotent(store, scope="charge", key="request_id")
    def charge(request_id: str, amount: int, currency: str = "EUR") -> dict[str, Any]:
        calls.append((request_id, amount))
        return {"id": f"ch_{len(calls)}", "amount": amount, "currency": currency}

    first = charge("k1", 100)
    assert charge("k1", 100) == first == charge(request_id="k1", amount=100)
    assert charge("k2", 100)["id"] == "ch_2"
    assert calls == [("k1", 100), ("k2", 100)]
    assert charge.__name__ == "charge"


def test_same_key_with_other_arguments_is_refused(backend: Any) -> None:
    """The default fingerprint covers all arguments: another payload raises KeyReusedError."""
    store = backend()

    @idempotent(store, scope="charge", key=lambda request_id, amount: request_id)
    def charge(request_id: str, amount: int) -> int:
        return amount

    charge("k1", 100)
    with pytest.raises(KeyReusedError) as info:
        charge("k1", 200)
    assert http_status(info.value) == 422


def test_fingerprint_options_subset_custom_or_off() -> None:
    """fingerprint= a callable picks what must match; False turns the check off."""
    store = InMemoryIdempotencyStore(clock=FakeClock())

    @idempotent(
        store,
        scope="a",
        key=lambda body: body["id"],
        fingerprint=lambda body: fingerprint(body, fields=["amount"]),
    )
    def subset(body: dict[str, Any]) -> int:
        return int(body["amount"])

    assert subset({"id": "1", "amount": 5, "note": "x"}) == 5
    assert subset({"id": "1", "amount": 5, "note": "changed"}) == 5
    with pytest.raises(KeyReusedError):
        subset({"id": "1", "amount": 6})

    @idempotent(store, scope="b", key="key", fingerprint=False)
    def unchecked(key: str, value: int) -> int:
        return value

    assert unchecked("k", 1) == 1
    assert unchecked("k", 2) == 1  # no fingerprint: the stored result is replayed


def test_without_a_key_the_content_is_the_key() -> None:
    """key=None deduplicates by the canonical JSON of the arguments (RPA-style)."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    runs: list[dict[str, Any]] = []

    @idempotent(store, scope="invoices")
    def book(invoice: dict[str, Any]) -> int:
        runs.append(invoice)
        return len(runs)

    assert book({"no": 1, "total": 10}) == 1
    assert book({"total": 10, "no": 1}) == 1  # same content, other key order
    assert book({"no": 2, "total": 10}) == 2
    key = fingerprint({"invoice": {"no": 1, "total": 10}})
    assert store.get("invoices", key) is not None


def test_a_failed_handlers_retry_runs_again(backend: Any) -> None:
    """Regression (integration-automation-patterns 0.44 marks keys seen before the handler
    runs, so a failed handler's retry is dropped): a failure releases the claim."""
    store = backend()
    attempts: list[int] = []

    @idempotent(store, scope="webhook", key="delivery_id")
    def handle(delivery_id: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("downstream unavailable")
        return "processed"

    with pytest.raises(ConnectionError):
        handle("evt_1")
    assert store.get("webhook", "evt_1") is None
    assert handle("evt_1") == "processed"
    assert handle("evt_1") == "processed"
    assert len(attempts) == 2


class HttpError(Exception):
    """An error carrying an HTTP status, as web frameworks raise."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def test_keep_stores_chosen_failures_as_final_results(backend: Any) -> None:
    """keep() true: the failure is stored and replayed as StoredFailureError with its status."""
    store = backend()
    runs: list[int] = []

    @idempotent(store, scope="orders", key="key", keep=lambda e: getattr(e, "status", 500) < 500)
    def create(key: str, fail_with: int) -> str:
        runs.append(fail_with)
        if fail_with:
            raise HttpError(fail_with, f"failed with {fail_with}")
        return "created"

    with pytest.raises(HttpError):
        create("k4", 404)
    with pytest.raises(StoredFailureError) as info:
        create("k4", 404)
    error = info.value
    assert error.status == 404
    assert http_status(error) == 404
    assert error.error_type.endswith("HttpError")
    assert error.message == "failed with 404"
    assert error.result == {"type": error.error_type, "message": "failed with 404", "status": 404}
    assert problem_details(error)["status"] == 404
    with pytest.raises(HttpError):
        create("k5", 503)  # not kept: released
    with pytest.raises(HttpError):
        create("k5", 503)
    assert runs == [404, 503, 503]


def test_kept_failures_without_a_status_replay_as_500() -> None:
    """A kept failure with no integer status (or status_code) replays with status 500."""
    store = InMemoryIdempotencyStore(clock=FakeClock())

    class WithCodeError(Exception):
        status_code = 409

    class BoolStatusError(Exception):
        status = True

    errors = {"a": ValueError("plain"), "b": WithCodeError("coded"), "c": BoolStatusError("odd")}

    @idempotent(store, scope="s", key="key", keep=lambda e: True)
    def fail(key: str) -> None:
        raise errors[key]

    expected = {"a": 500, "b": 409, "c": 500}
    for key, status in expected.items():
        with pytest.raises(type(errors[key])):
            fail(key)
        with pytest.raises(StoredFailureError) as info:
            fail(key)
        assert info.value.status == status


def test_a_stored_failure_that_is_not_a_mapping_still_replays() -> None:
    """A failed record stored by hand with a non-mapping result replays as StoredFailureError."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    store.complete(store.claim("s", "k"), "boom", failed=True)

    @idempotent(store, scope="s", key="key", fingerprint=False)
    def work(key: str) -> None:
        raise AssertionError("must not run")

    with pytest.raises(StoredFailureError) as info:
        work("k")
    assert (info.value.error_type, info.value.message, info.value.status) == ("", "'boom'", 500)


def test_base_exceptions_always_release_even_when_keep_says_yes() -> None:
    """KeyboardInterrupt or cancellation releases the claim; keep() is not asked."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    asked: list[BaseException] = []

    def keep(error: Exception) -> bool:
        asked.append(error)
        return True

    @idempotent(store, scope="s", key="key", keep=keep)
    def work(key: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        work("k")
    assert asked == []
    assert store.get("s", "k") is None


def test_a_concurrent_call_gets_key_in_progress() -> None:
    """While one call runs, another with the same key raises KeyInProgressError (409)."""
    store = InMemoryIdempotencyStore(lease_seconds=30, clock=FakeClock())
    entered, leave = threading.Event(), threading.Event()

    @idempotent(store, scope="s", key="key")
    def slow(key: str) -> str:
        entered.set()
        leave.wait()
        return "done"

    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(slow("k")))
    thread.start()
    entered.wait()
    with pytest.raises(KeyInProgressError) as info:
        slow("k")
    assert info.value.lease_expires_at == T0 + 30
    assert info.value.scope == "s"
    assert http_status(info.value) == 409
    leave.set()
    thread.join()
    assert results == ["done"]
    assert slow("k") == "done"


def test_an_unencodable_result_releases_the_claim() -> None:
    """A result the codec cannot store: the error propagates and the claim is released."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    runs: list[int] = []

    @idempotent(store, scope="s", key="key")
    def work(key: str) -> object:
        runs.append(1)
        return {1, 2}

    with pytest.raises(TypeError):
        work("k")
    assert store.get("s", "k") is None
    with pytest.raises(TypeError):
        work("k")
    assert len(runs) == 2


def test_a_lease_that_ran_out_during_the_call_raises_claim_lost() -> None:
    """If another caller retook the key mid-run, completing raises ClaimLostError."""
    clock = FakeClock()
    store = InMemoryIdempotencyStore(lease_seconds=10, clock=clock)

    @idempotent(store, scope="s", key="key")
    def work(key: str) -> str:
        clock.advance(11)
        assert store.claim("s", key).claimed  # a second worker retakes the lapsed lease
        return "late"

    with pytest.raises(ClaimLostError):
        work("k")


def test_missing_keys_from_callables_are_refused() -> None:
    """A key callable returning None or "" raises MissingKeyError before the function runs."""
    store = InMemoryIdempotencyStore(clock=FakeClock())

    @idempotent(store, scope="s", key=lambda headers: headers.get("Idempotency-Key"))
    def work(headers: dict[str, str]) -> None:
        raise AssertionError("must not run")

    for headers in ({}, {"Idempotency-Key": ""}):
        with pytest.raises(MissingKeyError):
            work(headers)


def test_async_functions_are_decorated_as_coroutines() -> None:
    """An async def runs once per key, replays, releases on failure, reports in-progress."""
    store = InMemoryIdempotencyStore(clock=FakeClock())
    runs: list[str] = []

    @idempotent(store, scope="s", key="key", lease_seconds=5, ttl_seconds=50)
    async def work(key: str, fail: bool = False) -> str:
        runs.append(key)
        await asyncio.sleep(0)
        if fail:
            raise RuntimeError("transient")
        return key.upper()

    async def scenario() -> None:
        assert await work("a") == "A"
        assert await work("a") == "A"
        with pytest.raises(RuntimeError):
            await work("b", fail=True)
        assert await work("b") == "B"  # the failure released the key: a retry runs
        assert runs == ["a", "b", "b"]
        started = asyncio.Event()
        proceed = asyncio.Event()

        @idempotent(store, scope="t", key="key")
        async def gate(key: str) -> int:
            started.set()
            await proceed.wait()
            return 1

        task = asyncio.ensure_future(gate("g"))
        await started.wait()
        with pytest.raises(KeyInProgressError):
            await gate("g")
        proceed.set()
        assert await task == 1

    asyncio.run(scenario())
    assert store.get("s", "a").expires_at == T0 + 50


def test_decorator_configuration_is_validated() -> None:
    """Bad scopes, keys, fingerprints, keep, stores and durations raise at decoration."""
    store = InMemoryIdempotencyStore()
    with pytest.raises(TypeError, match="scope"):
        idempotent(store, scope=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        idempotent(store, scope="s", key=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fingerprint"):
        idempotent(store, scope="s", fingerprint=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keep"):
        idempotent(store, scope="s", keep="4xx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease_seconds"):
        idempotent(store, scope="s", lease_seconds=-1)
    with pytest.raises(TypeError, match="ttl_seconds"):
        idempotent(store, scope="s", ttl_seconds="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="store"):
        idempotent(object(), scope="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a parameter"):
        idempotent(store, scope="s", key="missing")(lambda key: key)
    with pytest.raises(TypeError, match="function"):
        idempotent(store, scope="s")(42)  # type: ignore[type-var]


# --------------------------------------------------------------------------------------
# Fingerprints, canonical JSON and the Powertools vector
# --------------------------------------------------------------------------------------


def test_canonical_json_is_sorted_compact_and_strict() -> None:
    """Sorted keys, no whitespace, UTF-8 kept; NaN is ValueError, other types TypeError."""
    assert (
        canonical_json({"b": [1, {"d": 1, "c": 2}], "a": "é"}) == '{"a":"é","b":[1,{"c":2,"d":1}]}'
    )
    assert canonical_json({"a": 1}, separators=(", ", ": ")) == '{"a": 1}'
    assert canonical_json("é", ensure_ascii=True) == '"\\u00e9"'
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json(float("inf"))
    with pytest.raises(TypeError):
        canonical_json({"a": object()})


def test_fingerprint_is_sha256_of_canonical_json_by_default() -> None:
    """fingerprint(v) == sha256(canonical_json(v)); fields select a subset of a mapping."""
    value = {"amount": 100, "currency": "EUR", "note": None}
    expected = hashlib.sha256(canonical_json(value).encode()).hexdigest()
    assert fingerprint(value) == expected
    assert fingerprint(value, fields=["amount", "currency"]) == fingerprint(
        {"currency": "EUR", "amount": 100}
    )
    assert fingerprint(value, fields=["amount", "absent"]) == fingerprint({"amount": 100})
    assert fingerprint({"a": 1}, fields=["a", "b"]) != fingerprint(
        {"a": 1, "b": None}, fields=["a", "b"]
    )
    assert (
        fingerprint(value, algorithm="sha512")
        == hashlib.sha512(canonical_json(value).encode()).hexdigest()
    )


def test_fingerprint_arguments_are_checked() -> None:
    """fields must be a sequence of names over a mapping; algorithm a fixed-size hashlib name."""
    with pytest.raises(TypeError, match="fields"):
        fingerprint({"a": 1}, fields="a")
    with pytest.raises(TypeError, match="fields"):
        fingerprint([1, 2], fields=["a"])
    with pytest.raises(ValueError, match="algorithm"):
        fingerprint({}, algorithm="nope")
    with pytest.raises(ValueError, match="algorithm"):
        fingerprint({}, algorithm=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fixed digest size"):
        fingerprint({}, algorithm="shake_128")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6), st.randoms())
def test_fingerprint_ignores_key_order(value: dict[str, Any], rng: Any) -> None:
    """Any reordering of a mapping's keys gives the same fingerprint."""
    items = list(value.items())
    rng.shuffle(items)
    assert fingerprint(dict(items)) == fingerprint(value)


# JMESPath expressions of the Powertools vector, as the Python selections they denote.
POWERTOOLS_SELECTORS = {
    "": lambda event: event,
    "[user_id, product_id]": lambda event: [event["user_id"], event["product_id"]],
    "powertools_json(body).order_id": lambda event: json.loads(event["body"])["order_id"],
    "order_id": lambda event: event["order_id"],
    "message_id": lambda event: event["message_id"],
    "amount": lambda event: event["amount"],
}


@pytest.mark.parametrize(
    "case", POWERTOOLS["cases"], ids=lambda c: c["event_key_jmespath"] or "whole"
)
def test_powertools_key_derivation_vector(case: dict[str, Any]) -> None:
    """fingerprint(md5, Python's default separators) reproduces Powertools' published keys."""
    assert case["env_AWS_LAMBDA_FUNCTION_NAME"] is None
    prefix = f"test-func.{case['function_name_arg']}#"
    options = {"algorithm": "md5", "separators": (", ", ": "), "ensure_ascii": True}
    selected = POWERTOOLS_SELECTORS[case["event_key_jmespath"]](case["event"])
    assert prefix + fingerprint(selected, **options) == case["idempotency_key"]
    if case["payload_validation_jmespath"]:
        validation = POWERTOOLS_SELECTORS[case["payload_validation_jmespath"]](case["event"])
        assert fingerprint(validation, **options) == case["payload_hash"]
    else:
        assert case["payload_hash"] == ""
    check = case.get("independent_check")
    if check:
        assert (
            canonical_json(selected, separators=(", ", ": "), ensure_ascii=True)
            == check["json_dumps_sort_keys"]
        )


def test_powertools_state_machine_matches_ours() -> None:
    """The vector's record machine (INPROGRESS, COMPLETED, EXPIRED) maps onto RecordState;
    a handler exception deletes the record; an existing INPROGRESS refuses the call."""
    machine = POWERTOOLS["state_machine"]
    assert set(machine["statuses"]) == {"INPROGRESS", "COMPLETED", "EXPIRED"}
    store = InMemoryIdempotencyStore(clock=FakeClock())
    claim = store.claim("s", "k")
    store.release(claim)  # "on_handler_exception": "delete record"
    assert store.get("s", "k") is None
    store.claim("s", "k")
    with pytest.raises(KeyInProgressError):
        idempotent(store, scope="s", key="key")(lambda key: None)("k")


# --------------------------------------------------------------------------------------
# The IETF Idempotency-Key draft vector
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", IETF["header_parse_cases"], ids=lambda c: c["raw"])
def test_ietf_header_parse_cases(case: dict[str, Any]) -> None:
    """Each header value of the vector parses (or is refused) as the sf-string rules say."""
    if case["ok"]:
        assert parse_idempotency_key(case["raw"]) == case["key"]
    else:
        with pytest.raises(InvalidKeyError):
            parse_idempotency_key(case["raw"])


def test_ietf_header_example_parses() -> None:
    """The draft's example header line yields its key."""
    example = IETF["header_example"]
    name, _, value = example["raw"].partition(":")
    assert name == "Idempotency-Key"
    assert parse_idempotency_key(value) == example["parsed_key"]


def test_bare_keys_are_accepted_only_when_lenient() -> None:
    """Stripe-style unquoted keys: refused by default, accepted with lenient=True."""
    bare = "8e03978e-40d5-43e8-bc93-6894a57f9324"
    with pytest.raises(InvalidKeyError, match="sf-string"):
        parse_idempotency_key(bare)
    assert parse_idempotency_key(f"  {bare} ", lenient=True) == bare
    assert parse_idempotency_key('"q"', lenient=True) == "q"
    with pytest.raises(InvalidKeyError):
        parse_idempotency_key("has space", lenient=True)
    with pytest.raises(InvalidKeyError):
        parse_idempotency_key("", lenient=True)


def test_header_parser_refusals_name_the_rule() -> None:
    """None is missing; unterminated, trailing text, bad escapes and non-str are invalid."""
    with pytest.raises(MissingKeyError):
        parse_idempotency_key(None)
    for raw, rule in (
        ('"abc', "no closing quote"),
        ('"abc\\', "escapes"),
        ('"a"b', "after the closing quote"),
        ('"tab\there"', "printable ASCII"),
    ):
        with pytest.raises(InvalidKeyError, match=re.escape(rule)):
            parse_idempotency_key(raw)
    with pytest.raises(InvalidKeyError, match="str"):
        parse_idempotency_key(b'"k"')  # type: ignore[arg-type]


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_sf_string_round_trip(key: str) -> None:
    """Any printable-ASCII key, quoted and escaped per RFC 8941, parses back to itself."""
    quoted = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert parse_idempotency_key(quoted) == key


@settings(max_examples=300)
@given(st.text(max_size=30), st.booleans())
def test_header_parser_fuzz_raises_only_its_own_errors(raw: str, lenient: bool) -> None:
    """Arbitrary text either parses to a str or raises InvalidKeyError, nothing else."""
    with contextlib.suppress(InvalidKeyError):
        assert isinstance(parse_idempotency_key(raw, lenient=lenient), str)


def _status_line(raw: str) -> tuple[int, str | None]:
    status = int(re.search(r"HTTP/1\.1 (\d{3})", raw).group(1))  # type: ignore[union-attr]
    title = re.search(r'"title": "([^"]+)"', raw)
    return status, title.group(1) if title else None


ERRORS_BY_STATUS = {
    400: MissingKeyError(),
    409: KeyInProgressError("s", "k", T0),
    422: KeyReusedError("s", "k", "a" * 64, "b" * 64),
}


@pytest.mark.parametrize("example", IETF["error_examples"], ids=lambda e: e["lines"])
def test_ietf_error_examples_map_to_our_errors(example: dict[str, Any]) -> None:
    """Each error example's status (and title, when shown) is what our error produces."""
    status, title = _status_line(example["raw"])
    error = ERRORS_BY_STATUS[status]
    assert http_status(error) == status
    body = problem_details(error, type_uri="https://developer.example.com/idempotency")
    assert body["status"] == status
    assert body["type"] == "https://developer.example.com/idempotency"
    if title is not None:
        assert body["title"] == title
    assert set(body) == {"type", "title", "status", "detail"}


def test_ietf_status_rules_hold_end_to_end() -> None:
    """The vector's status rules, driven through the decorator: 400, 409, 422, replay."""
    rules = IETF["status_rules"]
    store = InMemoryIdempotencyStore(clock=FakeClock())
    entered, leave = threading.Event(), threading.Event()

    @idempotent(store, scope="op", key=lambda key, body: key, keep=lambda e: True)
    def op(key: str | None, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("block"):
            entered.set()
            leave.wait()
        if body.get("fail"):
            raise HttpError(500, "upstream failed")
        return {"ok": body}

    def status_of(key: str | None, body: dict[str, Any]) -> int:
        try:
            op(key, body)
        except Exception as error:  # noqa: BLE001 - the status is what is checked
            return http_status(error)
        return 200

    assert status_of(None, {}) == rules["missing_key_when_required"]
    assert status_of("k1", {"n": 1}) == 200
    assert status_of("k1", {"n": 2}) == rules["key_reused_with_different_payload"]
    thread = threading.Thread(target=status_of, args=("k2", {"block": True}))
    thread.start()
    entered.wait()
    assert status_of("k2", {"block": True}) == rules["retry_while_original_in_flight"]
    leave.set()
    thread.join()
    assert rules["retry_after_completion"].startswith("replay stored result")
    assert op("k1", {"n": 1}) == {"ok": {"n": 1}}  # success replayed
    assert status_of("k3", {"fail": True}) == 500
    assert status_of("k3", {"fail": True}) == 500  # error replayed (kept)
    with pytest.raises(StoredFailureError):
        op("k3", {"fail": True})


def test_problem_details_for_other_errors() -> None:
    """Invalid keys, lost claims, replayed failures and foreign errors get bodies too."""
    invalid = problem_details(InvalidKeyError("x", "too long"))
    assert (invalid["status"], invalid["title"], invalid["detail"]) == (
        400,
        "Idempotency-Key is invalid",
        "too long",
    )
    lost = problem_details(ClaimLostError("s", "k"))
    assert lost["status"] == 409
    assert lost["type"] == "about:blank"
    assert problem_details(StoredFailureError("T", "m", 418, {}))["status"] == 418
    assert problem_details(RuntimeError("x"))["status"] == 500
    assert http_status(IdempotencyError("generic")) == 500


def test_error_messages_carry_context() -> None:
    """Errors subclass ValueError and say what went wrong; long keys are shortened."""
    assert issubclass(IdempotencyError, ValueError)
    assert "in progress" in str(KeyInProgressError("s", "k", None))
    assert "..." in str(InvalidKeyError("x" * 300, "too long"))
    assert "replayed failure T: m" in str(StoredFailureError("T", "m", None, None))


# --------------------------------------------------------------------------------------
# The Stripe semantics vector
# --------------------------------------------------------------------------------------


def _stripe_rig() -> tuple[FakeClock, Any, list[int]]:
    clock = FakeClock()
    store = InMemoryIdempotencyStore(clock=clock, ttl_seconds=24 * 3600)
    effects: list[int] = []
    outcomes: dict[str, int] = {}

    @idempotent(
        store,
        scope="charges",
        key=lambda key, params, status=200: key,
        fingerprint=lambda key, params, status=200: fingerprint(params),
        keep=lambda e: True,  # Stripe v1 saves the first response, 500s included
    )
    def post(key: str, params: dict[str, Any], status: int = 200) -> dict[str, Any]:
        effects.append(params["amount"])
        outcomes[key] = status
        if status >= 400:
            raise HttpError(status, "server error")
        return {"id": f"ch_{len(effects)}"}

    return clock, post, effects


def test_stripe_keys_up_to_255_characters() -> None:
    """Stripe's rule: keys are at most 255 characters; MAX_KEY_LENGTH matches it."""
    assert "255" in STRIPE["rules"][0]["rule"]
    assert MAX_KEY_LENGTH == 255


@pytest.mark.parametrize(
    "scenario", STRIPE["scenarios"], ids=[str(i) for i in range(len(STRIPE["scenarios"]))]
)
def test_stripe_scenarios(scenario: dict[str, Any]) -> None:
    """Each Stripe scenario: replay, cached 500, differing params, concurrency, pruning."""
    clock, post, effects = _stripe_rig()
    expect = scenario["expect"]
    if expect.startswith("200 {id:ch_1} replayed"):
        assert post("k1", {"amount": 100}) == {"id": "ch_1"}
        assert post("k1", {"amount": 100}) == {"id": "ch_1"}
        assert effects == [100]
    elif expect.startswith("500 replayed"):
        with pytest.raises(HttpError):
            post("k1", {"amount": 100}, 500)
        with pytest.raises(StoredFailureError) as info:
            post("k1", {"amount": 100})
        assert http_status(info.value) == 500
        assert effects == [100]
    elif expect.startswith("error: parameters differ"):
        post("k1", {"amount": 100})
        with pytest.raises(KeyReusedError) as reused:
            post("k1", {"amount": 200})
        assert http_status(reused.value) == 422
        assert effects == [100]
    elif expect.startswith("409 conflict"):
        store = InMemoryIdempotencyStore(clock=clock)
        store.claim("charges", "k1", fingerprint=fingerprint({"amount": 100}))
        other = store.claim("charges", "k1", fingerprint=fingerprint({"amount": 100}))
        assert other.in_progress
        assert http_status(KeyInProgressError("charges", "k1", other.lease_expires_at)) == 409
        assert len(store) == 1  # nothing stored for the second
    else:
        assert expect == "processed as a NEW request"
        post("k1", {"amount": 100})
        clock.advance(25 * 3600)
        assert post("k1", {"amount": 100}) == {"id": "ch_2"}
        assert effects == [100, 100]


# --------------------------------------------------------------------------------------
# Differential test: the SQL store behaves like the in-memory store
# --------------------------------------------------------------------------------------

operations = st.lists(
    st.tuples(
        st.sampled_from(["claim", "complete", "release", "advance", "purge", "get"]),
        st.sampled_from(["k1", "k2"]),
        st.sampled_from([None, "fa", "fb"]),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=25,
)


def _run(store: Any, clock: FakeClock, ops: list[tuple[str, str, str | None, int]]) -> list[Any]:
    claims: dict[str, Claim] = {}
    seen: list[Any] = []
    for op, key, fp, n in ops:
        try:
            if op == "claim":
                claim = store.claim("s", key, fingerprint=fp)
                if claim.claimed:
                    claims[key] = claim
                seen.append((claim.found, claim.claimed, claim.result, claim.lease_expires_at))
            elif op == "complete" and key in claims:
                store.complete(claims[key], n)
                seen.append("completed")
            elif op == "release" and key in claims:
                seen.append(store.release(claims[key]))
            elif op == "advance":
                clock.advance(n)
            elif op == "purge":
                seen.append(store.purge_expired())
            elif op == "get":
                record = store.get("s", key)
                seen.append(None if record is None else (record.state, record.result))
        except IdempotencyError as error:  # noqa: PERF203 - errors are observed behaviour
            seen.append(type(error).__name__)
    return seen


@settings(max_examples=60, deadline=None)
@given(operations)
def test_sql_store_matches_the_in_memory_store(ops: list[tuple[str, str, str | None, int]]) -> None:
    """Any sequence of claims, completions, releases, time steps and sweeps: same answers."""
    memory_clock, sql_clock = FakeClock(), FakeClock()
    memory = InMemoryIdempotencyStore(clock=memory_clock, lease_seconds=10, ttl_seconds=60)
    conn = sqlite3.connect(":memory:")
    sql = SQLIdempotencyStore(conn, clock=sql_clock, lease_seconds=10, ttl_seconds=60)
    sql.migrate()
    assert _run(memory, memory_clock, ops) == _run(sql, sql_clock, ops)
    conn.close()


def test_transition_table_names_every_move_the_stores_make() -> None:
    """Claims are allowed exactly from ABSENT and EXPIRED; COMPLETED is final until expiry."""
    table = idem._TRANSITIONS
    claimable = {state for (state, op) in table if op == "claim"}
    assert claimable == {RecordState.ABSENT, RecordState.EXPIRED}
    assert (RecordState.COMPLETED, "release") not in table
    assert (RecordState.COMPLETED, "complete") not in table
    assert table[RecordState.COMPLETED, "expire"] is RecordState.ABSENT
