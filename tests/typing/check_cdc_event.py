"""The public API of interlock.cdc_event under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal

from interlock.cdc_event import (
    ABSENT,
    DROPPED,
    BsonTimestamp,
    CDCError,
    CDCEvent,
    CDCMarker,
    CDCMessage,
    CDCOperation,
    CDCParseError,
    CDCPosition,
    CDCSourceMetadata,
    CDCTransaction,
    CDCTransactionEvent,
    CDCUpdateDescription,
    DeleteHandling,
    IncomparablePositionError,
    SnapshotMarker,
    TransactionStatus,
    decode_extended_json,
    iter_jsonl,
    parse_record,
)

value: dict[str, Any] = {
    "op": "u",
    "before": {"id": 1, "email": "a@example.com"},
    "after": {"id": 1, "email": "b@example.com"},
    "source": {"connector": "postgresql", "name": "shop", "lsn": 100, "ts_ms": 1},
}
event: CDCEvent = CDCEvent.from_debezium(value, key=b'{"id": 1}')
tombstone: CDCEvent = CDCEvent.from_debezium(None, key={"id": 1}, follows=event)
operation: CDCOperation = event.operation
code: str | None = operation.code
source: CDCSourceMetadata = event.source
engine: str = source.engine
snapshot: SnapshotMarker = source.snapshot
in_snapshot: bool = snapshot.is_snapshot or event.is_snapshot or event.is_tombstone
ts_ns: int | None = event.ts_ns
captured: str | None = None if event.captured_at is None else event.captured_at.isoformat()
tx: CDCTransaction | None = event.transaction
message: CDCMessage | None = event.message
described: CDCUpdateDescription | None = event.update_description
raw_fields: dict[str, Any] = source.fields
sequence: tuple[int | None, ...] | None = source.sequence

position: CDCPosition = event.position
ordered: bool = position.ordered and position < CDCPosition("postgresql", "shop", (200, 200))
key: tuple[int, ...] = position.key

changed: set[str] = event.changed_fields()
diff: dict[str, tuple[Any, Any]] = event.diff()
missing: bool = diff["email"][0] is ABSENT
audit: dict[str, Any] = event.to_audit_dict(include_values=True, mask={"email"})

row = event.flatten(delete_handling=DeleteHandling.REWRITE, add_fields=["op", "source.ts_ms"])
if row is DROPPED:
    dropped: Literal[CDCMarker.DROPPED] = row
elif row is None:
    tombstone_out: None = row
else:
    flat: dict[str, Any] = row
row_by_name = tombstone.flatten(delete_handling="rewrite-with-tombstone")

ce: dict[str, Any] = event.to_cloudevent()
again: CDCEvent = CDCEvent.from_cloudevent(ce)
from_text: CDCEvent = CDCEvent.from_cloudevent(b'{"specversion": "1.0"}')

record: CDCEvent | CDCTransactionEvent = parse_record(value)
boundary: CDCTransactionEvent = CDCTransactionEvent.from_debezium(
    {"status": "END", "id": "571:53195832", "event_count": 2, "data_collections": []}
)
status: TransactionStatus = boundary.status
collections: tuple[tuple[str, int], ...] = boundary.data_collections

errors: list[CDCParseError] = []
for item in iter_jsonl(io.StringIO("null\n"), on_error=errors.append):
    if isinstance(item, CDCEvent):
        event_id: str = item.event_id
from_path: list[CDCEvent | CDCTransactionEvent] = list(iter_jsonl(Path("events.jsonl")))
from_bytes: list[CDCEvent | CDCTransactionEvent] = list(iter_jsonl([b"null"]))

decoded: Any = decode_extended_json('{"$timestamp": {"t": 1, "i": 2}}')
stamp = BsonTimestamp(1, 2)
later: bool = stamp < BsonTimestamp(1, 3)

built = CDCEvent(
    CDCOperation.INSERT,
    CDCSourceMetadata("db", "public", "t", "debezium", "100", engine="postgresql", name="p"),
    None,
    {"id": 1},
    key={"id": 1},
    ts_ms=1,
)

try:
    _ = position < built.position
except IncomparablePositionError as exc:
    left: CDCPosition = exc.left
    right: CDCPosition = exc.right
except CDCParseError as exc:
    path: str = exc.path
    rule: str = exc.rule
    line: int | None = exc.line
except CDCError:
    pass
