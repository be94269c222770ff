"""The public API of interlock.idempotency under `mypy --strict` (checked, not run)."""

from __future__ import annotations

import asyncio
import sqlite3

from interlock.idempotency import (
    MAX_KEY_LENGTH,
    Claim,
    ClaimLostError,
    IdempotencyError,
    IdempotencyRecord,
    IdempotencyStore,
    InboxEntry,
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

limit: int = MAX_KEY_LENGTH
memory: IdempotencyStore = InMemoryIdempotencyStore(
    clock=lambda: 0.0, lease_seconds=30.0, ttl_seconds=3600.0
)
conn = sqlite3.connect(":memory:")
version: int = migrate(conn)
sql: IdempotencyStore = SQLIdempotencyStore(conn, encode=repr, decode=str)
factory_store = SQLIdempotencyStore(lambda: sqlite3.connect("idem.db"))
with factory_store as opened:
    migrated: int = opened.migrate()

claim: Claim = memory.claim("orders", "k1", fingerprint=fingerprint({"a": 1}), lease_seconds=5)
found: RecordState = claim.found
flags: tuple[bool, bool, bool] = (claim.is_new, claim.is_replay, claim.in_progress)
token: str | None = claim.token
memory.complete(claim, {"id": 1}, failed=False, ttl_seconds=60.0, now=1.0)
released: bool = memory.release(claim)
record: IdempotencyRecord | None = memory.get("orders", "k1")
if record is not None:
    state: RecordState = record.state
    stored: object = record.result
purged: int = memory.purge_expired(now=100.0)

entry: InboxEntry = inbox(conn, scope="consumer", key="m1", fingerprint=None, ttl_seconds=60.0)
new: bool = entry.is_new
with inbox(conn, scope="consumer", key="m2") as same:
    duplicate: bool = same.is_duplicate

text: str = canonical_json({"b": 1}, separators=(",", ":"), ensure_ascii=True)
digest: str = fingerprint({"a": 1, "b": 2}, fields=["a"], algorithm="md5")
key: str = parse_idempotency_key('"k"', lenient=True)
status: int = http_status(KeyReusedError("s", "k", "a", "b"))
body: dict[str, object] = problem_details(MissingKeyError(), type_uri="https://example.com/p")


@idempotent(memory, scope="charge", key="request_id", keep=lambda error: False)
def charge(request_id: str, amount: int) -> dict[str, int]:
    return {"amount": amount}


@idempotent(memory, scope="async", key=lambda item: item, fingerprint=False, lease_seconds=5.0)
async def handle(item: str) -> str:
    return item


charged: dict[str, int] = charge("k", 100)
handled: str = asyncio.run(handle("x"))

errors: tuple[type[IdempotencyError], ...] = (
    InvalidKeyError,
    MissingKeyError,
    KeyInProgressError,
    KeyReusedError,
    ClaimLostError,
    StoredFailureError,
)
lease_end: float | None = KeyInProgressError("s", "k", None).lease_expires_at
replayed: int = StoredFailureError("T", "m", None, None).status
