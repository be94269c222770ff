"""interlock.cdc_event: seed compatibility, every Debezium vector, connectors, ids, positions."""

from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
import math
import pickle
import random
import re
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from interlock import cdc_event
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

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "debezium"
if not VECTORS.is_dir():  # a checkout with shared/ beside it, or inside it
    VECTORS = Path(__file__).resolve().parents[1] / "shared" / "vectors" / "debezium"
VECTOR_FILES = sorted(p.name for p in VECTORS.glob("*.json"))
SRC = Path(__file__).resolve().parents[1] / "src"


def vector(name: str) -> Any:
    """Load one vector file from ../shared/vectors/debezium."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def payload_of(name: str) -> dict[str, Any]:
    """The Debezium payload of a vector (the schema wrapper removed)."""
    parsed = vector(name)["parsed"]
    return parsed.get("payload", parsed) if "op" not in parsed else parsed


def pg(**source: Any) -> dict[str, Any]:
    """A PostgreSQL update event with the given source fields."""
    base = {
        "connector": "postgresql",
        "name": "shop",
        "db": "shop",
        "schema": "public",
        "table": "customers",
        "lsn": 100,
        "txId": 7,
        "ts_ms": 1_700_000_000_000,
    }
    base.update(source)
    return {
        "op": "u",
        "before": {"id": 1, "email": "a@example.com"},
        "after": {"id": 1, "email": "b@example.com"},
        "source": base,
    }


def mysql(file: str = "mysql-bin.000003", pos: int = 154, row: int = 0, **extra: Any) -> dict:
    """A MySQL insert event at a binlog position."""
    source = {
        "connector": "mysql",
        "name": "m1",
        "db": "inventory",
        "table": "customers",
        "server_id": 223344,
        "file": file,
        "pos": pos,
        "row": row,
        "ts_ms": 1_465_491_411_000,
    }
    source.update(extra)
    return {"op": "c", "before": None, "after": {"id": 1}, "source": source}


def sqlserver(commit: str | None, change: str | None, serial: int | None = 1) -> dict:
    """A SQL Server insert event at an LSN pair."""
    return {
        "op": "c",
        "after": {"id": 1},
        "source": {
            "connector": "sqlserver",
            "name": "mssql",
            "db": "testDB",
            "schema": "dbo",
            "table": "customers",
            "commit_lsn": commit,
            "change_lsn": change,
            "event_serial_no": serial,
        },
    }


def mongo(ts_ms: int = 1_558_965_508_000, ord_: int = 1, **payload: Any) -> dict:
    """A MongoDB insert event at a cluster time."""
    value = {
        "op": "c",
        "after": '{"_id": {"$oid": "596e275826f08b2730779e1f"}, "n": {"$numberLong": "5"}}',
        "source": {
            "connector": "mongodb",
            "name": "fulfillment",
            "db": "inventory",
            "rs": "rs0",
            "collection": "customers",
            "ord": ord_,
            "ts_ms": ts_ms,
        },
    }
    value.update(payload)
    return value


# ======================================================================================
# Every vector file is a test case
# ======================================================================================


def check_expect(event: CDCEvent, expect: dict[str, Any], raw: dict[str, Any]) -> None:
    """Assert each entry of a vector's expect block on the parsed event."""
    for name, wanted in expect.items():
        if name == "op":
            assert event.operation.code == wanted
        elif name in ("before", "after"):
            assert getattr(event, name) == wanted
        elif name.startswith(("before.", "after.")):
            image, _, member = name.partition(".")
            assert getattr(event, image)[member] == wanted
        elif name == "source.connector":
            assert event.source.engine == wanted
            assert event.source.fields["connector"] == wanted
        elif name == "source.snapshot":
            assert event.source.snapshot is (
                SnapshotMarker.TRUE if wanted else SnapshotMarker.FALSE
            )
        elif name == "source.file":
            assert event.source.binlog_file == wanted
        elif name == "source.pos":
            assert event.source.binlog_pos == wanted
        elif name == "after_is_string":
            assert isinstance(raw["after"], str) is wanted
            assert isinstance(event.after, dict)  # decoded from Extended JSON
        elif name == "followed_by_tombstone":
            tombstone = CDCEvent.from_debezium(None, key={"id": 1}, follows=event)
            assert tombstone.is_tombstone is wanted
            assert tombstone.event_id != event.event_id
        elif name == "key":
            assert event.key == wanted
        elif name == "message.content_base64":
            assert event.message is not None
            assert base64.b64encode(event.message.content).decode() == wanted
        elif name == "transaction":
            assert event.transaction == CDCTransaction(
                wanted["id"], int(wanted["total_order"]), int(wanted["data_collection_order"])
            )
            assert event.transaction_id == wanted["id"]
        else:
            pytest.fail(f"expect entry {name!r} has no check: add one")


def normalised_raw(vec: dict[str, Any]) -> str:
    """The raw text with the doc-attribute substitutions its normalization lists applied."""
    raw: str = vec["raw"]
    for note in vec.get("normalization", []):
        match = re.fullmatch(r"substituted doc attribute `(.+)` -> `(.+)` in `parsed` only", note)
        if match is None:
            pytest.fail(f"{vec['id']}: unknown normalization {note!r} for a strict raw")
        raw = raw.replace(match.group(1), match.group(2))
    return raw


def run_change_event_vector(vec: dict[str, Any]) -> None:
    """Parse a change event vector (parsed, and raw when strict JSON) and check expect."""
    event = CDCEvent.from_debezium(vec["parsed"])
    assert isinstance(event, CDCEvent)
    assert event == CDCEvent.from_debezium(json.dumps(vec["parsed"]).encode())
    if vec.get("raw_is_strict_json"):
        assert CDCEvent.from_debezium(normalised_raw(vec)) == event
    raw = vec["parsed"].get("payload", vec["parsed"])
    check_expect(event, vec.get("expect", {}), raw)
    # What every event must survive: auditing, flattening and a CloudEvents round trip.
    json.dumps(event.to_audit_dict(include_values=True))
    event.flatten(delete_handling=DeleteHandling.REWRITE_WITH_TOMBSTONE)
    again = CDCEvent.from_cloudevent(json.dumps(event.to_cloudevent()))
    assert again == event


def run_key_vector(vec: dict[str, Any]) -> None:
    """A record key vector: the wrapper is removed and the payload kept, alone or with a value."""
    wanted = vec["expect"]["payload"]
    tombstone = CDCEvent.from_debezium(None, key=vec["parsed"])
    assert tombstone.key == wanted
    if vec.get("raw_is_strict_json"):
        assert CDCEvent.from_debezium(None, key=vec["raw"]).key == wanted
    event = CDCEvent.from_debezium(mysql(), key=json.dumps(vec["parsed"]).encode())
    assert event.key == wanted
    # A key alone is not a change event.
    with pytest.raises(CDCParseError) as info:
        CDCEvent.from_debezium(vec["parsed"])
    assert info.value.path == "payload.op"


def run_transaction_vector(vec: dict[str, Any]) -> None:
    """Transaction boundary documents become CDCTransactionEvent values, BEGIN then END."""
    events = [parse_record(doc) for doc in vec["parsed_documents"]]
    assert all(isinstance(e, CDCTransactionEvent) for e in events)
    statuses = [e.status.value for e in events if isinstance(e, CDCTransactionEvent)]
    assert statuses == vec.get("expect", {}).get("statuses", ["BEGIN", "END"])
    begin, end = events
    assert isinstance(begin, CDCTransactionEvent)
    assert isinstance(end, CDCTransactionEvent)
    assert (begin.event_count, begin.data_collections) == (None, ())
    assert end.event_count == sum(count for _name, count in end.data_collections)
    assert begin.event_id != end.event_id
    assert vec.get("parsed") is None  # the raw block holds two documents, not one


def run_mongodb_key_encoding_vector(vec: dict[str, Any]) -> None:
    """Each MongoDB key id (Extended JSON text inside the key) decodes to its BSON type."""
    decoded = {
        row["type"]: decode_extended_json(json.loads(row["key_payload_raw"])["id"])
        for row in vec["rows"]
    }
    assert decoded == {
        "Integer": 1234,
        "Float": 12.34,
        "String": "1234",  # the quotes inside the key string are JSON, not part of the id
        "Document": {"hi": "kafka", "nums": [10.0, 100.0, 1000.0]},
        "ObjectId": "596e275826f08b2730779e1f",
        "Binary": b"kafka",
    }


def run_unwrapped_vector(vec: dict[str, Any]) -> None:
    """A flattened row is not an envelope; it is what flatten() makes of the serde fixture."""
    with pytest.raises(CDCParseError) as info:
        CDCEvent.from_debezium(vec["parsed"])
    assert info.value.path == "op"
    event = CDCEvent.from_debezium(vector("fixture-serde-with-schema.json")["parsed"])
    assert event.flatten() == vec["parsed"]
    if vec.get("raw_is_strict_json"):
        assert json.loads(vec["raw"]) == vec["parsed"]


def run_outbox_vector(vec: dict[str, Any]) -> None:
    """The outbox router's input is an ordinary PostgreSQL insert; its key is kept.

    Routing (topic, output key, the id header, the payload string) belongs to the outbox
    module's tests; only reading the captured outbox row is cdc_event's job.
    """
    expect = vec["expect"]
    key = json.dumps(expect["input_key"])
    event = CDCEvent.from_debezium(vec["input_parsed"], key=key)
    assert event.operation is CDCOperation.INSERT
    assert event.key == expect["input_key"]
    assert event.after is not None
    assert event.after["id"] == expect["input_key"]
    assert event.source.table == "outboxevent"
    assert event.source.fields["ts_usec"] == 1556890294448870  # legacy member kept as sent
    assert event.ts_ms == expect["output_timestamp_ms"]
    assert event.position == CDCPosition("postgresql", "dbserver1-bare", (24064704, 24064704))
    row = event.flatten(add_fields=["op", "source.ts_ms"])
    assert isinstance(row, dict)
    assert row["payload"] == expect["output_value_string"]
    assert (row["__op"], row["__source_ts_ms"]) == ("c", None)


def run_cloudevents_vector(vec: dict[str, Any]) -> None:
    """Debezium's CloudEvents: JSON data is read; what we write obeys the naming rules.

    The attribute names the vector's findings flag are Debezium's writing mistakes; the
    reader accepts them, the writer never produces them. The CloudEvents codec itself is
    event_envelope's; here only the CDC mapping is tested.
    """
    parsed = vec["parsed"]
    findings = vec["findings"]
    flagged = set(findings["attribute_names_violating_MUST_lowercase_alnum"]) | set(
        findings["attribute_names_over_20_chars_SHOULD"]
    )
    assert flagged <= set(parsed)
    if parsed.get("datacontenttype") != "application/json":
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_cloudevent(parsed)
        assert info.value.path == "datacontenttype"
        return
    event = CDCEvent.from_cloudevent(parsed)
    assert event.operation is CDCOperation.SNAPSHOT
    assert event.after == parsed["data"]["after"]
    assert event.source.engine == parsed["iodebeziumconnector"]
    assert event.source.name == parsed["iodebeziumname"]
    assert event.source.lsn == parsed["iodebeziumlsn"]
    assert event.source.ts_ms == int(parsed["iodebeziumtsms"])
    assert event.source.snapshot is SnapshotMarker.TRUE
    assert (event.source.database, event.source.schema, event.source.table) == (
        "postgres",
        "s1",
        "a",
    )
    assert event.transaction == CDCTransaction("565", 1, 1)
    assert (event.source.xmin, "xmin" in event.source.fields) == (None, False)  # null is absent
    written = event.to_cloudevent()
    names = [n for n in written if n not in ("data", "specversion", "datacontenttype")]
    assert all(n.isascii() and n.isalnum() and n.islower() and len(n) <= 20 for n in names)
    assert not flagged & set(written)
    assert written["time"] == parsed["time"]
    assert CDCEvent.from_cloudevent(written) == event


def run_vector(name: str) -> None:
    """Dispatch a vector file on its shape; an unknown shape fails (nothing is skipped)."""
    vec = vector(name)
    if vec["id"].startswith("dbz-cloudevents"):
        run_cloudevents_vector(vec)
    elif "parsed_documents" in vec:
        run_transaction_vector(vec)
    elif "rows" in vec:
        run_mongodb_key_encoding_vector(vec)
    elif "input_parsed" in vec:
        run_outbox_vector(vec)
    elif set(vec.get("expect", {})) == {"payload"}:
        run_key_vector(vec)
    elif isinstance(vec.get("parsed"), dict) and "op" not in payload_of(name):
        run_unwrapped_vector(vec)
    elif isinstance(vec.get("parsed"), dict):
        run_change_event_vector(vec)
    else:
        pytest.fail(f"{name}: no handler for this vector shape; add one")


def test_the_vector_directory_is_found_and_full() -> None:
    """The Debezium vectors are found (an empty list would pass vacuously)."""
    assert len(VECTOR_FILES) >= 27
    assert "pg-create-value.json" in VECTOR_FILES


@pytest.mark.parametrize("name", VECTOR_FILES)
def test_vector(name: str) -> None:
    """Each Debezium vector file is read as its kind demands and its expect block holds."""
    run_vector(name)


def test_serde_fixtures_with_and_without_schemas_read_alike() -> None:
    """Debezium's serde fixtures: the wrapped and the bare record give one change, any form."""
    wrapped, bare = (
        vector(f"fixture-serde-{kind}.json") for kind in ("with-schema", "without-schema")
    )
    assert set(wrapped["parsed"]) == {"schema", "payload"}
    assert "schema" not in bare["parsed"]
    events = [
        CDCEvent.from_debezium(form)
        for vec in (wrapped, bare)
        for form in (vec["parsed"], vec["raw"], vec["raw"].encode())
    ]
    first = events[0]
    for event in events[1:]:
        assert (event.event_id, event.operation, event.source, event.before, event.after) == (
            first.event_id,
            first.operation,
            first.source,
            first.before,
            first.after,
        )
    assert events[:3] == [first] * 3  # each fixture alone: every form gives an equal event


def test_vector_ids_are_distinct_for_distinct_positions() -> None:
    """Change event vectors at different positions get different ids; wrappers do not matter."""
    by_position: dict[tuple[Any, ...], set[str]] = {}
    for name in VECTOR_FILES:
        vec = vector(name)
        parsed = vec.get("parsed")
        if not isinstance(parsed, dict) or "op" not in payload_of(name):
            continue
        if vec["id"].startswith("dbz-cloudevents"):
            continue
        event = CDCEvent.from_debezium(parsed)
        spot = (event.position, event.operation, event.source.tx_id, event.source.table)
        by_position.setdefault(spot, set()).add(event.event_id)
    assert all(len(ids) == 1 for ids in by_position.values())
    all_ids = [next(iter(ids)) for ids in by_position.values()]
    assert len(all_ids) == len(set(all_ids))


# ======================================================================================
# The seed package (integration-automation-patterns 0.44.2): names kept, bugs fixed
# ======================================================================================


class TestSeedCompatibility:
    def test_operation_values_match_the_seed(self) -> None:
        """CDCOperation keeps the seed's five values; MESSAGE and TOMBSTONE are added."""
        seed = {"INSERT", "UPDATE", "DELETE", "SNAPSHOT", "TRUNCATE"}
        assert seed <= {op.value for op in CDCOperation}
        assert all(CDCOperation[v].value == v for v in seed)
        assert CDCOperation.MESSAGE.code == "m"
        assert CDCOperation.TOMBSTONE.code is None

    def test_positional_construction_keeps_the_seed_order(self) -> None:
        """CDCEvent and CDCSourceMetadata take the seed's positional fields in its order."""
        at = datetime(2026, 1, 1, tzinfo=timezone.utc)
        source = CDCSourceMetadata("shop", "public", "orders", "debezium", "100", "5")
        event = CDCEvent(CDCOperation.UPDATE, source, {"a": 1}, {"a": 2}, "evt-1", at, "tx-9")
        assert (event.event_id, event.captured_at, event.transaction_id) == ("evt-1", at, "tx-9")
        assert (source.database, source.schema, source.table) == ("shop", "public", "orders")
        assert (source.connector, source.lsn, source.server_id) == ("debezium", "100", "5")
        assert CDCSourceMetadata("d", "s", "t").connector == "unknown"

    def test_payload_keyword_still_works(self) -> None:
        """from_debezium(payload=...) works as in the seed."""
        assert CDCEvent.from_debezium(payload=pg()).operation is CDCOperation.UPDATE

    def test_parsed_events_name_debezium_as_the_connector(self) -> None:
        """source.connector is "debezium" as the seed set it; Debezium's name is .engine."""
        event = CDCEvent.from_debezium(pg())
        assert (event.source.connector, event.source.engine) == ("debezium", "postgresql")

    def test_lsn_and_server_id_are_text_as_in_the_seed(self) -> None:
        """lsn and server_id are str(value), as the seed stored them."""
        assert CDCEvent.from_debezium(pg(lsn=24023128)).source.lsn == "24023128"
        assert CDCEvent.from_debezium(mysql()).source.server_id == "223344"

    def test_unknown_op_is_a_value_error(self) -> None:
        """An unknown op raises a ValueError, as the seed did (now a CDCParseError)."""
        with pytest.raises(ValueError, match="'x' is not a Debezium operation") as info:
            CDCEvent.from_debezium({**pg(), "op": "x"})
        assert isinstance(info.value, CDCParseError)

    def test_audit_dict_keeps_the_seed_keys_first(self) -> None:
        """to_audit_dict() starts with the seed's nine keys, in its order and format."""
        audit = CDCEvent.from_debezium(pg(ts_ms=1_700_000_000_000)).to_audit_dict()
        assert list(audit)[:9] == [
            "event_id",
            "operation",
            "table",
            "database",
            "connector",
            "captured_at",
            "transaction_id",
            "changed_fields",
            "lsn",
        ]
        assert audit["table"] == "public.customers"
        assert audit["captured_at"] == "2023-11-14T22:13:20+00:00"
        assert (audit["operation"], audit["connector"], audit["lsn"]) == (
            "UPDATE",
            "debezium",
            "100",
        )

    def test_changed_fields_is_a_set_and_empty_for_inserts(self) -> None:
        """changed_fields() returns a set; non-updates give an empty set, as in the seed."""
        assert CDCEvent.from_debezium(pg()).changed_fields() == {"email"}
        assert CDCEvent.from_debezium(mysql()).changed_fields() == set()

    def test_direct_construction_defaults_captured_at_to_now(self) -> None:
        """Without captured_at, a constructed event gets the current time, as in the seed."""
        before = datetime.now(timezone.utc)
        event = CDCEvent(CDCOperation.INSERT, CDCSourceMetadata("d", "s", "t"), None, {"a": 1})
        assert event.captured_at is not None
        assert before <= event.captured_at <= datetime.now(timezone.utc)


class TestSeedBugs:
    """Regression tests: what crashed or misbehaved in integration-automation-patterns 0.44.2."""

    def test_tombstone_is_a_result_not_a_crash(self) -> None:
        """A null record value (the tombstone after a delete) is a TOMBSTONE event."""
        for value in (None, "null", b"null", {"schema": None, "payload": None}):
            event = CDCEvent.from_debezium(value, key={"id": 1})
            assert event.operation is CDCOperation.TOMBSTONE
            assert event.is_tombstone
            assert event.key == {"id": 1}
            assert (event.before, event.after, event.captured_at) == (None, None, None)

    def test_null_transaction_does_not_crash(self) -> None:
        """ "transaction": null gives transaction_id None (the seed raised AttributeError)."""
        event = CDCEvent.from_debezium({**pg(), "transaction": None})
        assert (event.transaction_id, event.transaction) == (None, None)

    def test_null_source_does_not_crash(self) -> None:
        """ "source": null gives an empty source block (the seed raised AttributeError)."""
        event = CDCEvent.from_debezium({"op": "c", "after": {"id": 1}, "source": None})
        assert (event.source.database, event.source.table, event.source.engine) == ("", "", "")
        assert event.captured_at is None
        assert not event.position.ordered

    def test_the_same_record_gets_the_same_id(self) -> None:
        """Parsing a record twice gives the same event_id (the seed drew a random uuid4)."""
        first = CDCEvent.from_debezium(pg())
        assert first.event_id == CDCEvent.from_debezium(json.dumps(pg())).event_id
        assert uuid.UUID(first.event_id).version == 5

    def test_the_id_is_the_same_in_another_process(self) -> None:
        """A fresh interpreter with another hash seed derives the same id."""
        code = (
            "import json, sys; from interlock.cdc_event import CDCEvent; "
            "print(CDCEvent.from_debezium(json.loads(sys.stdin.read())).event_id)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(pg()),
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SRC), "PYTHONHASHSEED": "12345"},
            check=True,
        )
        assert proc.stdout.strip() == CDCEvent.from_debezium(pg()).event_id

    def test_ids_are_pinned(self) -> None:
        """The derivation is fixed: these ids must never change across versions."""
        assert CDCEvent.from_debezium(pg()).event_id == PINNED_PG_ID
        assert CDCEvent.from_debezium(mysql()).event_id == PINNED_MYSQL_ID
        assert CDCEvent.from_debezium(None, key={"id": 1}).event_id == PINNED_TOMBSTONE_ID

    def test_the_id_recipe_is_the_documented_one(self) -> None:
        """event_id is uuid5 of the documented namespace and canonical JSON list."""
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, "interlock.cdc_event/1")
        parts = ["postgresql", "shop", "u", "shop", "public", "customers", [100, 100], 7]
        text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        assert CDCEvent.from_debezium(pg()).event_id == str(uuid.uuid5(namespace, text))

    def test_captured_at_is_exact(self) -> None:
        """captured_at comes from integer microseconds, without float rounding."""
        event = CDCEvent.from_debezium(pg(ts_ms=1559033904863, ts_us=1559033904863123))
        assert event.captured_at == datetime(2019, 5, 28, 8, 58, 24, 863123, tzinfo=timezone.utc)


PINNED_PG_ID = "fa1b3457-ad6a-5cc3-b478-d732db5f140f"
PINNED_MYSQL_ID = "d7c066f3-4b5f-57c7-a570-5a961c9b37ba"
PINNED_TOMBSTONE_ID = "8cc1faab-627b-52c1-bdb7-8df860bdee4d"


# ======================================================================================
# Record shapes
# ======================================================================================


class TestRecordShapes:
    def test_schema_wrapper_is_optional(self) -> None:
        """The same payload with or without the schema wrapper gives the same event."""
        payload = pg()
        wrapped = {"schema": {"type": "struct"}, "payload": payload}
        assert CDCEvent.from_debezium(wrapped) == CDCEvent.from_debezium(payload)
        assert CDCEvent.from_debezium({"payload": payload}) == CDCEvent.from_debezium(payload)

    def test_text_and_bytes_are_json(self) -> None:
        """str and bytes values are JSON text; bytearray and memoryview too."""
        raw = json.dumps(pg()).encode()
        event = CDCEvent.from_debezium(raw)
        assert CDCEvent.from_debezium(raw.decode()) == event
        assert CDCEvent.from_debezium(bytearray(raw)) == event
        assert CDCEvent.from_debezium(memoryview(raw)) == event

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            (b"\xff", "value"),
            ("", "value"),
            ("{", "value"),
            ('{"op": NaN}', "value"),
            ("[1]", "value"),
            ("5", "value"),
            ({"schema": {}, "payload": 5}, "payload"),
            ({"before": None}, "op"),
            ({"op": 5}, "op"),
            ({"op": "x"}, "op"),
            ({"op": "c", "source": []}, "source"),
            ({"op": "c", "after": 5}, "after"),
            ({"op": "c", "after": "[1]"}, "after"),
            ({"op": "c", "after": "{"}, "after"),
            ({"op": "c", "ts_ms": 1.5}, "ts_ms"),
            ({"op": "c", "ts_ms": True}, "ts_ms"),
            ({"op": "c", "ts_us": "12a"}, "ts_us"),
            ({"op": "c", "transaction": "t"}, "transaction"),
            ({"op": "c", "transaction": {"total_order": 1}}, "transaction.id"),
            (
                {"op": "c", "transaction": {"id": "t", "total_order": "x"}},
                "transaction.total_order",
            ),
            ({"op": "m"}, "message"),
            ({"op": "m", "message": {"prefix": 5}}, "message.prefix"),
            ({"op": "m", "message": {"prefix": "p", "content": 5}}, "message.content"),
            ({"op": "m", "message": {"prefix": "p", "content": "***"}}, "message.content"),
            ({"op": "m", "message": {"prefix": "p", "content": "é"}}, "message.content"),
            ({"schema": {}, "payload": {"op": "c", "source": {"lsn": [1]}}}, "payload.source.lsn"),
            ({"op": "c", "source": {"connector": 5}}, "source.connector"),
            ({"op": "c", "source": {"snapshot": 5}}, "source.snapshot"),
            ({"op": "c", "source": {"server_id": 1.5}}, "source.server_id"),
            ({"op": "c", "source": {"connector": "postgresql", "lsn": "x"}}, "source.lsn"),
            ({"op": "c", "source": {"connector": "postgresql", "sequence": 5}}, "source.sequence"),
            (
                {"op": "c", "source": {"connector": "postgresql", "sequence": "{"}},
                "source.sequence",
            ),
            (
                {"op": "c", "source": {"connector": "postgresql", "sequence": "{}"}},
                "source.sequence",
            ),
            (
                {"op": "c", "source": {"connector": "postgresql", "sequence": "[[1]]"}},
                "source.sequence",
            ),
            ({"op": "c", "source": {"connector": "mysql", "file": "binlog"}}, "source.file"),
            ({"op": "c", "source": {"connector": "mysql", "pos": "x"}}, "source.pos"),
            (
                {"op": "c", "source": {"connector": "sqlserver", "commit_lsn": "zz"}},
                "source.commit_lsn",
            ),
            (
                {"op": "c", "source": {"connector": "sqlserver", "change_lsn": 5}},
                "source.change_lsn",
            ),
            ({"op": "c", "source": {"connector": "mongodb", "ord": "first"}}, "source.ord"),
            ({"op": "c", "updateDescription": 5}, "updateDescription"),
            (
                {"op": "u", "updateDescription": {"updatedFields": 5}},
                "updateDescription.updatedFields",
            ),
            (
                {"op": "u", "updateDescription": {"removedFields": [1]}},
                "updateDescription.removedFields",
            ),
            (
                {"op": "u", "updateDescription": {"truncatedArrays": 5}},
                "updateDescription.truncatedArrays",
            ),
            (
                {"op": "u", "updateDescription": {"truncatedArrays": [5]}},
                "updateDescription.truncatedArrays[0]",
            ),
            (
                {"op": "u", "updateDescription": {"truncatedArrays": [{"field": "a"}]}},
                "updateDescription.truncatedArrays[0]",
            ),
            (
                {"op": "u", "updateDescription": {"updatedFields": '{"a": {"$oid": 1}}'}},
                "updateDescription.updatedFields.a.$oid",
            ),
        ],
    )
    def test_bad_records_name_the_path(self, value: Any, path: str) -> None:
        """A malformed record raises CDCParseError whose path names the bad member."""
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_debezium(value)
        assert info.value.path == path
        assert str(info.value).startswith(f"{path}: ")
        assert info.value.line is None

    def test_integer_subclasses_are_integers(self) -> None:
        """An int subclass (an IntEnum, a numpy-like scalar) counts as an integer; bool does not."""
        import enum  # noqa: PLC0415

        class Lsn(enum.IntEnum):
            HERE = 100

        assert CDCEvent.from_debezium(pg(lsn=Lsn.HERE)).position.key == (100, 100)
        with pytest.raises(CDCParseError):
            CDCEvent.from_debezium(pg(lsn=True))

    def test_digit_strings_are_integers(self) -> None:
        """Timestamps and orders sent as digit strings (as in the docs) are read as ints."""
        vec = vector("pg-tx-enriched-create.json")["parsed"]
        event = CDCEvent.from_debezium(vec)
        assert (event.ts_ms, event.ts_us, event.ts_ns) == (
            1580390884335,
            1580390884335451,
            1580390884335451325,
        )
        assert event.transaction == CDCTransaction("571:53195832", 1, 1)

    def test_nanosecond_timestamps_are_kept_exactly(self) -> None:
        """ts_ns values beyond float precision stay exact integers."""
        event = CDCEvent.from_debezium(payload_of("pg-create-value.json"))
        assert event.ts_ns == 1559033904863841257
        assert event.source.ts_ns == 1559033904863123000
        assert event.ts_ns != int(float(1559033904863841257))

    def test_mappings_that_are_not_dicts_are_accepted(self) -> None:
        """Any Mapping works as a value, a row, a source or a key."""
        from types import MappingProxyType  # noqa: PLC0415

        value = MappingProxyType(
            {
                "op": "c",
                "after": MappingProxyType({"id": 1}),
                "source": MappingProxyType({"connector": "x", "db": "d"}),
            }
        )
        event = CDCEvent.from_debezium(value, key=MappingProxyType({"id": 1}))
        assert (event.after, event.key, event.source.fields) == (
            {"id": 1},
            {"id": 1},
            {"connector": "x", "db": "d"},
        )

    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            ('{"id": 5}', {"id": 5}),
            (b'{"schema": {"type": "struct"}, "payload": {"id": 5}}', {"id": 5}),
            ('"abc"', "abc"),
            ({"schema": {"type": "string"}, "payload": "abc"}, "abc"),
            ({"payload": {"schema": None, "payload": 5}}, 5),
            ("17", 17),
            ([1, 2], [1, 2]),
            (2.5, 2.5),
            (None, None),
        ],
    )
    def test_keys(self, key: Any, expected: Any) -> None:
        """Keys are JSON values; text and bytes are parsed; a wrapper is removed."""
        assert CDCEvent.from_debezium(pg(), key=key).key == expected

    @pytest.mark.parametrize("key", ["{", b"\xff", {1, 2}, object()])
    def test_bad_keys_raise(self, key: Any) -> None:
        """A key that is not JSON raises CDCParseError naming "key"."""
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_debezium(pg(), key=key)
        assert info.value.path == "key"

    def test_the_key_does_not_change_a_change_events_id(self) -> None:
        """Giving the key or not leaves a change event's id alone."""
        assert CDCEvent.from_debezium(pg(), key={"id": 1}).event_id == (
            CDCEvent.from_debezium(pg()).event_id
        )

    def test_a_transaction_event_is_not_a_change_event(self) -> None:
        """CDCEvent.from_debezium refuses a BEGIN record and says what to use."""
        begin = {"status": "BEGIN", "id": "1", "event_count": None}
        with pytest.raises(CDCParseError, match="CDCTransactionEvent") as info:
            CDCEvent.from_debezium(begin)
        assert info.value.path == "status"

    def test_truncate_events(self) -> None:
        """A truncate has no rows, no changed fields, and its table in the source."""
        event = CDCEvent.from_debezium(payload_of("pg-truncate-value.json"))
        assert event.operation is CDCOperation.TRUNCATE
        assert (event.before, event.after, event.key) == (None, None, None)
        assert event.changed_fields() == set()
        assert event.diff() == {}
        assert event.source.table == "customers"

    def test_message_events(self) -> None:
        """op m gives a MESSAGE with the decoded content, and the prefix as its key."""
        event = CDCEvent.from_debezium(payload_of("pg-message-transactional.json"))
        assert event.message == CDCMessage("foo", base64.b64decode("Ymfy"))
        assert event.key == {"prefix": "foo"}
        assert event.source.tx_id == 556
        other = CDCEvent.from_debezium(payload_of("pg-message-nontransactional.json"))
        assert other.source.tx_id is None
        assert other.event_id != event.event_id
        given = CDCEvent.from_debezium(payload_of("pg-message-transactional.json"), key={"k": 1})
        assert given.key == {"k": 1}

    def test_message_with_null_content(self) -> None:
        """A message without content has empty bytes."""
        value = {"op": "m", "message": {"prefix": "p", "content": None}}
        assert CDCEvent.from_debezium(value).message == CDCMessage("p", b"")

    @pytest.mark.parametrize(
        ("sent", "marker"),
        [
            (True, SnapshotMarker.TRUE),
            (False, SnapshotMarker.FALSE),
            (None, SnapshotMarker.FALSE),
            ("true", SnapshotMarker.TRUE),
            ("false", SnapshotMarker.FALSE),
            ("first", SnapshotMarker.FIRST),
            ("last", SnapshotMarker.LAST),
            ("first_in_data_collection", SnapshotMarker.FIRST_IN_DATA_COLLECTION),
            ("last_in_data_collection", SnapshotMarker.LAST_IN_DATA_COLLECTION),
            ("incremental", SnapshotMarker.INCREMENTAL),
            ("some_future_marker", SnapshotMarker.TRUE),
            ("", SnapshotMarker.FALSE),
        ],
    )
    def test_snapshot_markers_are_normalised(self, sent: Any, marker: SnapshotMarker) -> None:
        """source.snapshot, boolean or string, becomes one SnapshotMarker."""
        event = CDCEvent.from_debezium(pg(snapshot=sent))
        assert event.source.snapshot is marker
        assert event.source.snapshot.is_snapshot is (marker is not SnapshotMarker.FALSE)
        assert event.is_snapshot is marker.is_snapshot
        if isinstance(sent, str):
            assert event.source.fields["snapshot"] == sent  # the raw value stays

    def test_legacy_last_snapshot_record(self) -> None:
        """The legacy last_snapshot_record flag marks the LAST snapshot row."""
        event = CDCEvent.from_debezium(pg(snapshot=True, last_snapshot_record=True))
        assert event.source.snapshot is SnapshotMarker.LAST

    def test_snapshot_reads_are_snapshots(self) -> None:
        """op r is SNAPSHOT and is_snapshot, whatever source.snapshot says."""
        event = CDCEvent.from_debezium({**pg(), "op": "r"})
        assert event.operation is CDCOperation.SNAPSHOT
        assert event.is_snapshot

    def test_unknown_connectors_still_parse(self) -> None:
        """An unknown connector's source is kept in .fields; its position is unordered."""
        value = {
            "op": "c",
            "after": {"ID": 1},
            "source": {
                "connector": "oracle",
                "name": "ora",
                "db": "ORCLPDB1",
                "schema": "DEBEZIUM",
                "table": "CUSTOMERS",
                "scn": "2868546",
                "commit_scn": "2868547",
                "txId": "0a001b00d3040000",
                "lsn": 77,
                "server_id": "x",
            },
        }
        event = CDCEvent.from_debezium(value)
        assert event.source.engine == "oracle"
        assert event.source.fields["scn"] == "2868546"
        assert (event.source.lsn, event.source.server_id, event.source.tx_id) == ("77", "x", None)
        assert event.position == CDCPosition("oracle", "ora", ())
        assert event.event_id == CDCEvent.from_debezium(value).event_id
        changed = {**value, "after": {"ID": 2}}
        assert CDCEvent.from_debezium(changed).event_id != event.event_id

    def test_every_connector_field_is_typed(self) -> None:
        """Connector-specific source fields are available as typed attributes."""
        p = CDCEvent.from_debezium(pg(xmin=12, sequence='["90", "100"]')).source
        assert (p.tx_id, p.xmin, p.sequence) == (7, 12, (90, 100))
        m = CDCEvent.from_debezium(mysql(gtid="g:1", thread=7, query="INSERT ...")).source
        assert (m.binlog_file, m.binlog_pos, m.binlog_row) == ("mysql-bin.000003", 154, 0)
        assert (m.gtid, m.thread, m.query) == ("g:1", 7, "INSERT ...")
        s = CDCEvent.from_debezium(
            sqlserver("00000027:00000758:0005", "00000027:00000758:0003")
        ).source
        assert (s.commit_lsn, s.change_lsn, s.event_serial_no) == (
            "00000027:00000758:0005",
            "00000027:00000758:0003",
            1,
        )
        g = CDCEvent.from_debezium(mongo()).source
        assert (g.replica_set, g.ord, g.table, g.schema) == ("rs0", 1, "customers", "")


# ======================================================================================
# Transaction metadata events
# ======================================================================================


class TestTransactionEvents:
    def test_begin_and_end(self) -> None:
        """BEGIN and END records read into CDCTransactionEvent, counts and collections kept."""
        docs = vector("pg-tx-boundary-begin-end.json")["parsed_documents"]
        begin = CDCTransactionEvent.from_debezium(docs[0])
        end = CDCTransactionEvent.from_debezium(json.dumps({"schema": {}, "payload": docs[1]}))
        assert begin.status is TransactionStatus.BEGIN
        assert (end.status, end.id, end.ts_ms, end.event_count) == (
            TransactionStatus.END,
            "571:53195832",
            1486500577691,
            2,
        )
        assert end.data_collections == (("s1.a", 1), ("s2.a", 1))
        assert end.event_id == CDCTransactionEvent.from_debezium(docs[1]).event_id

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            (None, "value"),
            ({"status": "OPEN", "id": "1"}, "status"),
            ({"status": 5, "id": "1"}, "status"),
            ({"status": "BEGIN"}, "id"),
            ({"status": "END", "id": "1", "data_collections": 5}, "data_collections"),
            ({"status": "END", "id": "1", "data_collections": [5]}, "data_collections[0]"),
            (
                {"status": "END", "id": "1", "data_collections": [{"data_collection": "a"}]},
                "data_collections[0]",
            ),
            ({"status": "END", "id": "1", "event_count": "many"}, "event_count"),
            ({"payload": {"op": "c"}}, "payload.op"),
        ],
    )
    def test_bad_transaction_events(self, value: Any, path: str) -> None:
        """A malformed transaction event raises CDCParseError naming the member."""
        with pytest.raises(CDCParseError) as info:
            CDCTransactionEvent.from_debezium(value)
        assert info.value.path == path

    def test_numeric_transaction_ids_are_text(self) -> None:
        """A numeric transaction id is kept as its text."""
        event = CDCTransactionEvent.from_debezium({"status": "BEGIN", "id": 571})
        assert event.id == "571"

    def test_direct_construction_is_checked(self) -> None:
        """The constructor checks status and id types and derives the id."""
        event = CDCTransactionEvent(TransactionStatus.BEGIN, "t1")
        assert uuid.UUID(event.event_id).version == 5
        with pytest.raises(TypeError, match="status"):
            CDCTransactionEvent("BEGIN", "t1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="id"):
            CDCTransactionEvent(TransactionStatus.END, 5)  # type: ignore[arg-type]

    def test_explicit_ids_are_kept(self) -> None:
        """An event_id given to the constructor is kept."""
        assert CDCTransactionEvent(TransactionStatus.END, "t1", event_id="mine").event_id == "mine"

    def test_parse_record_dispatches(self) -> None:
        """parse_record returns a transaction event, a change event or a tombstone."""
        assert isinstance(parse_record({"status": "BEGIN", "id": "1"}), CDCTransactionEvent)
        assert isinstance(parse_record(pg()), CDCEvent)
        record = parse_record(None, key='{"id": 1}')
        assert isinstance(record, CDCEvent)
        assert record.is_tombstone
        assert record.key == {"id": 1}


# ======================================================================================
# Tombstones
# ======================================================================================


class TestTombstones:
    def test_tombstone_id_derives_from_the_delete_it_follows(self) -> None:
        """With follows=, two tombstones for one key after different deletes differ."""
        first = CDCEvent.from_debezium(payload_of("pg-delete-value.json"))
        second = CDCEvent.from_debezium(pg(lsn=999), key={"id": 1})
        a = CDCEvent.from_debezium(None, key={"id": 1}, follows=first)
        b = CDCEvent.from_debezium(None, key={"id": 1}, follows=second)
        assert a.event_id != b.event_id
        assert a.event_id == CDCEvent.from_debezium(None, key={"id": 1}, follows=first).event_id

    def test_deeply_nested_tombstone_keys_are_parse_errors(self) -> None:
        """A key nested deeper than the recursion limit is a CDCParseError naming "key"."""
        deep: Any = 1
        for _ in range(sys.getrecursionlimit() + 100):
            deep = [deep]
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_debezium(None, key=deep)
        assert info.value.path == "key"

    def test_tombstone_without_follows_derives_from_its_key(self) -> None:
        """Without follows=, a tombstone's id depends on its key alone."""
        a = CDCEvent.from_debezium(None, key={"id": 1})
        assert a.event_id == CDCEvent.from_debezium("null", key=b'{"id": 1}').event_id
        assert a.event_id != CDCEvent.from_debezium(None, key={"id": 2}).event_id

    def test_follows_must_be_an_event(self) -> None:
        """follows= refuses what is not a CDCEvent."""
        with pytest.raises(TypeError, match="follows"):
            CDCEvent.from_debezium(None, follows="evt")  # type: ignore[arg-type]

    def test_tombstones_have_no_cloudevent_form(self) -> None:
        """to_cloudevent() of a tombstone raises CDCError."""
        with pytest.raises(CDCError, match="tombstone"):
            CDCEvent.from_debezium(None).to_cloudevent()

    def test_tombstones_audit_and_diff_cleanly(self) -> None:
        """A tombstone audits with its operation and no changed fields."""
        audit = CDCEvent.from_debezium(None, key={"id": 1}).to_audit_dict(include_values=True)
        assert (audit["operation"], audit["changed_fields"], audit["key"]) == (
            "TOMBSTONE",
            [],
            {"id": 1},
        )
        assert audit["position"] == "unknown/unknown@unordered"


# ======================================================================================
# Positions and ordering
# ======================================================================================


class TestPositions:
    def test_postgresql_orders_by_commit_then_lsn(self) -> None:
        """PostgreSQL positions order by the last commit LSN in sequence, then the LSN."""
        # Transaction A wrote at LSN 300 but committed after B (which wrote at 400).
        b = CDCEvent.from_debezium(pg(lsn=400, sequence='["100", "400"]'))
        a = CDCEvent.from_debezium(pg(lsn=300, sequence='["450", "300"]'))
        assert b.position < a.position  # stream order, although 300 < 400
        assert b.position.key == (100, 400)
        assert CDCEvent.from_debezium(pg(lsn=5, sequence='[null, "5"]')).position.key == (5, 5)
        assert CDCEvent.from_debezium(pg(lsn=None)).position.key == ()

    def test_mysql_orders_by_file_number_pos_row(self) -> None:
        """MySQL positions compare the binlog file number numerically, then pos and row."""
        events = [
            CDCEvent.from_debezium(mysql("mysql-bin.000010", 4, 0)),
            CDCEvent.from_debezium(mysql("mysql-bin.000003", 900, 1)),
            CDCEvent.from_debezium(mysql("mysql-bin.000003", 900, 0)),
            CDCEvent.from_debezium(mysql("mysql-bin.000003", 154, 0)),
        ]
        ordered = sorted(events, key=lambda e: e.position)
        assert [e.position.key for e in ordered] == [
            (3, 154, 0),
            (3, 900, 0),
            (3, 900, 1),
            (10, 4, 0),
        ]
        assert CDCEvent.from_debezium(mysql(pos=None)).position.key == ()  # type: ignore[arg-type]
        maria = CDCEvent.from_debezium(mysql(connector="mariadb"))
        assert maria.position.key == (3, 154, 0)

    def test_sqlserver_orders_by_commit_change_serial(self) -> None:
        """SQL Server positions order by commit_lsn, change_lsn, then event_serial_no."""
        a = CDCEvent.from_debezium(sqlserver("00000027:00000758:0005", "00000027:00000758:0003", 1))
        b = CDCEvent.from_debezium(sqlserver("00000027:00000758:0005", "00000027:00000758:0003", 2))
        c = CDCEvent.from_debezium(sqlserver("00000027:00000a00:0001", "00000027:00000900:0001"))
        assert a.position < b.position < c.position
        snap = CDCEvent.from_debezium(sqlserver("00000027:00000758:0005", None, None))
        assert snap.position.key == (0x27, 0x758, 5, -1, -1, -1, -1)
        assert snap.position < a.position
        assert CDCEvent.from_debezium(sqlserver(None, None)).position.key == ()

    def test_mongodb_orders_by_cluster_time_then_ord(self) -> None:
        """MongoDB positions order by ts_ms (the cluster time), then ord."""
        a = CDCEvent.from_debezium(mongo(1000, 2))
        b = CDCEvent.from_debezium(mongo(1000, 3))
        c = CDCEvent.from_debezium(mongo(2000, 1))
        assert a.position < b.position < c.position
        assert a.position <= a.position
        assert c.position >= b.position
        assert c.position > a.position
        assert CDCEvent.from_debezium(mongo(1000, None)).position.key == ()  # type: ignore[arg-type]

    def test_different_connectors_do_not_compare(self) -> None:
        """Comparing positions of two connectors raises IncomparablePositionError (a TypeError)."""
        a = CDCEvent.from_debezium(pg()).position
        b = CDCEvent.from_debezium(mysql()).position
        with pytest.raises(IncomparablePositionError, match="different connectors") as info:
            _ = a < b
        assert (info.value.left, info.value.right) == (a, b)
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, CDCError)
        with pytest.raises(TypeError):
            sorted([a, b])

    def test_different_servers_do_not_compare(self) -> None:
        """Positions of two servers of one connector type do not compare either."""
        a = CDCEvent.from_debezium(pg(name="east")).position
        b = CDCEvent.from_debezium(pg(name="west")).position
        with pytest.raises(IncomparablePositionError, match="different servers"):
            _ = a <= b

    def test_unordered_positions_do_not_compare(self) -> None:
        """A position without its fields refuses < but still tests equality."""
        a = CDCPosition("oracle", "ora", ())
        b = CDCPosition("oracle", "ora", ())
        assert a == b
        assert not a.ordered
        for compare in (lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b):
            with pytest.raises(IncomparablePositionError, match="no stream order"):
                compare()

    def test_comparing_with_other_types_is_a_type_error(self) -> None:
        """A position compared with a non-position raises the usual TypeError."""
        position = CDCPosition("mysql", "m", (1, 2, 3))
        for compare in (
            lambda: position < 5,
            lambda: position <= 5,
            lambda: position > 5,
            lambda: position >= 5,
        ):
            with pytest.raises(TypeError):
                compare()
        assert position != (1, 2, 3)

    def test_positions_print_readably(self) -> None:
        """str(position) names the connector, the server and the key."""
        assert str(CDCPosition("mysql", "m1", (3, 154, 0))) == "mysql/m1@3,154,0"
        assert str(CDCPosition("", "", ())) == "unknown/unknown@unordered"

    def test_positions_are_hashable_values(self) -> None:
        """Equal positions hash equally (usable as dict keys)."""
        a = CDCEvent.from_debezium(mysql()).position
        b = CDCEvent.from_debezium(mysql()).position
        assert {a: 1}[b] == 1

    @settings(max_examples=200)
    @given(
        st.lists(
            st.tuples(st.integers(1, 20), st.integers(4, 10**6), st.integers(0, 5)), min_size=2
        )
    )
    def test_sorting_by_position_is_binlog_order(self, spots: list[tuple[int, int, int]]) -> None:
        """Sorting MySQL events by position equals sorting their (file, pos, row)."""
        events = [CDCEvent.from_debezium(mysql(f"bin.{f:06d}", p, r)) for f, p, r in spots]
        assert [e.position.key for e in sorted(events, key=lambda e: e.position)] == sorted(spots)


# ======================================================================================
# Deterministic ids
# ======================================================================================


class TestIds:
    def test_snapshot_rows_at_one_position_get_different_ids(self) -> None:
        """Snapshot reads share a position; their rows tell their ids apart."""
        a = CDCEvent.from_debezium({**mysql(), "op": "r", "after": {"id": 1}})
        b = CDCEvent.from_debezium({**mysql(), "op": "r", "after": {"id": 2}})
        assert a.position == b.position
        assert a.event_id != b.event_id

    def test_processing_time_is_not_part_of_the_id(self) -> None:
        """A record re-emitted later (another envelope ts_ms) keeps its id."""
        assert CDCEvent.from_debezium({**pg(), "ts_ms": 1}).event_id == (
            CDCEvent.from_debezium({**pg(), "ts_ms": 2}).event_id
        )

    def test_positionless_events_are_identified_by_content(self) -> None:
        """Without a position, the content decides: equal copies agree, others differ."""
        a = {"op": "c", "after": {"id": 1}, "source": {"connector": "x"}, "ts_ms": 5}
        assert CDCEvent.from_debezium(a).event_id == CDCEvent.from_debezium(dict(a)).event_id
        assert CDCEvent.from_debezium({**a, "ts_ms": 6}).event_id != (
            CDCEvent.from_debezium(a).event_id
        )
        message = {"op": "m", "message": {"prefix": "p", "content": "AA=="}, "source": None}
        described = {"op": "u", "updateDescription": {"removedFields": ["a"]}}
        tx = {**a, "transaction": {"id": "t", "total_order": 1}}
        ids = {CDCEvent.from_debezium(v).event_id for v in (a, message, described, tx)}
        assert len(ids) == 4

    def test_explicit_ids_are_kept(self) -> None:
        """An event_id given to the constructor is kept as is."""
        event = CDCEvent(CDCOperation.INSERT, CDCSourceMetadata("d", "s", "t"), event_id="mine")
        assert event.event_id == "mine"

    def test_constructed_events_derive_the_same_id_as_parsed_ones(self) -> None:
        """A constructed event without an id gets the id its fields imply."""
        parsed = CDCEvent.from_debezium(pg())
        built = CDCEvent(
            parsed.operation, parsed.source, parsed.before, parsed.after, captured_at=None
        )
        assert built.event_id == parsed.event_id

    def test_events_hash_by_id(self) -> None:
        """Events are hashable by event_id, so a set deduplicates redeliveries."""
        events = {CDCEvent.from_debezium(pg()), CDCEvent.from_debezium(json.dumps(pg()))}
        assert len(events) == 1

    @settings(max_examples=150)
    @given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
    def test_different_positions_give_different_ids(self, lsn_a: int, lsn_b: int) -> None:
        """Two PostgreSQL events at different LSNs never share an id."""
        assume(lsn_a != lsn_b)
        a = CDCEvent.from_debezium(pg(lsn=lsn_a))
        b = CDCEvent.from_debezium(pg(lsn=lsn_b))
        assert a.event_id != b.event_id

    @settings(max_examples=150)
    @given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=6))
    def test_ids_ignore_member_order(self, row: dict[str, Any]) -> None:
        """A snapshot row with its members in another order gets the same id."""
        shuffled = dict(random.Random(0).sample(list(row.items()), len(row)))
        a = CDCEvent.from_debezium({**mysql(), "op": "r", "after": row})
        b = CDCEvent.from_debezium({**mysql(), "op": "r", "after": shuffled})
        assert a.event_id == b.event_id


# ======================================================================================
# Changed fields, diff and audit
# ======================================================================================


class TestChanges:
    def test_added_and_removed_keys_are_changes(self) -> None:
        """changed_fields() counts altered, added and removed keys."""
        value = {
            "op": "u",
            "before": {"id": 1, "a": 1, "gone": 0, "same": None},
            "after": {"id": 1, "a": 2, "new": None, "same": None},
        }
        event = CDCEvent.from_debezium(value)
        assert event.changed_fields() == {"a", "gone", "new"}
        assert event.diff() == {"a": (1, 2), "gone": (0, ABSENT), "new": (ABSENT, None)}

    def test_partial_before_image_reports_every_other_column(self) -> None:
        """With PostgreSQL's default replica identity, non-key columns count as changed."""
        event = CDCEvent.from_debezium(payload_of("pg-update-value.json"))
        assert event.changed_fields() == {"first_name", "last_name", "email"}
        assert event.diff()["first_name"] == (ABSENT, "Anne Marie")

    def test_missing_image_gives_no_changes(self) -> None:
        """An update without before (or after) reports nothing, as the seed did."""
        event = CDCEvent.from_debezium({"op": "u", "before": None, "after": {"a": 1}})
        assert (event.changed_fields(), event.diff()) == (set(), {})

    def test_mongodb_update_description_decides(self) -> None:
        """MongoDB's updateDescription lists updated, removed and truncated paths."""
        value = {
            "op": "u",
            "before": '{"_id": 1, "a": {"b": 1}, "tags": [1, 2, 3], "x": 5}',
            "after": None,
            "updateDescription": {
                "updatedFields": {"a.b": {"$numberLong": "2"}},
                "removedFields": ["x"],
                "truncatedArrays": [{"field": "tags", "newSize": 1}],
            },
            "source": {
                "connector": "mongodb",
                "name": "m",
                "collection": "c",
                "ord": 1,
                "ts_ms": 5,
            },
        }
        event = CDCEvent.from_debezium(value)
        assert event.update_description == CDCUpdateDescription({"a.b": 2}, ("x",), (("tags", 1),))
        assert event.changed_fields() == {"a.b", "x", "tags"}
        assert event.diff() == {
            "a.b": (1, 2),
            "tags": ([1, 2, 3], ABSENT),
            "x": (5, ABSENT),
        }

    def test_mongodb_paths_go_through_arrays(self) -> None:
        """A dotted path with an index reads inside an array; a miss is ABSENT."""
        value = {
            "op": "u",
            "before": {"items": [{"q": 1}, {"q": 2}]},
            "after": {"items": [{"q": 1}, {"q": 3}]},
            "updateDescription": {"updatedFields": {"items.1.q": 3, "items.9.q": 1, "n.m": 1}},
            "source": {"connector": "mongodb"},
        }
        diff = CDCEvent.from_debezium(value).diff()
        assert diff["items.1.q"] == (2, 3)
        assert diff["items.9.q"] == (ABSENT, 1)
        assert diff["n.m"] == (ABSENT, 1)

    def test_mongodb_vector_update(self) -> None:
        """The MongoDB update vector: strings decoded, one changed field."""
        event = CDCEvent.from_debezium(payload_of("mongodb-update-value.json"))
        assert event.changed_fields() == {"first_name"}
        assert event.diff() == {"first_name": ("unknown", "Anne Marie")}
        assert event.before is not None
        assert event.before["_id"] == 1004

    def test_audit_without_values_by_default(self) -> None:
        """to_audit_dict() has field names but no row values unless asked."""
        audit = CDCEvent.from_debezium(pg()).to_audit_dict()
        assert "a@example.com" not in json.dumps(audit)
        assert audit["changed_fields"] == ["email"]
        assert (audit["engine"], audit["server"], audit["snapshot"]) == (
            "postgresql",
            "shop",
            "false",
        )
        assert audit["position"] == "postgresql/shop@100,100"

    def test_audit_with_masked_values(self) -> None:
        """include_values adds key and rows, masking the named fields."""
        audit = CDCEvent.from_debezium(pg(), key={"id": 1}).to_audit_dict(
            include_values=True, mask=["email"]
        )
        assert audit["before"] == {"id": 1, "email": "***"}
        assert audit["after"] == {"id": 1, "email": "***"}
        assert audit["key"] == {"id": 1}
        assert "example.com" not in json.dumps(audit)

    def test_audit_values_are_json_safe(self) -> None:
        """Decoded MongoDB values become JSON-safe text in an audit record."""
        after = {
            "_id": {"$oid": "596e275826f08b2730779e1f"},
            "price": {"$numberDecimal": "9.99"},
            "blob": {"$binary": {"base64": "AQI=", "subType": "00"}},
            "at": {"$date": {"$numberLong": "0"}},
            "u": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"},
            "ts": {"$timestamp": {"t": 5, "i": 1}},
            "list": [1, {"$numberLong": "2"}],
        }
        event = CDCEvent.from_debezium(mongo(after=after))
        audit = event.to_audit_dict(include_values=True)
        assert json.loads(json.dumps(audit))["after"] == {
            "_id": "596e275826f08b2730779e1f",
            "price": "9.99",
            "blob": "AQI=",
            "at": "1970-01-01T00:00:00+00:00",
            "u": "00112233-4455-6677-8899-aabbccddeeff",
            "ts": {"t": 5, "i": 1},
            "list": [1, 2],
        }

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"include_values": 1}, TypeError),
            ({"mask": "email"}, TypeError),
            ({"mask": 5}, TypeError),
        ],
    )
    def test_audit_arguments_are_checked(self, kwargs: dict[str, Any], error: type) -> None:
        """include_values must be a bool and mask an iterable of names."""
        with pytest.raises(error):
            CDCEvent.from_debezium(pg()).to_audit_dict(**kwargs)


# ======================================================================================
# flatten(): ExtractNewRecordState
# ======================================================================================


class TestFlatten:
    DELETE = CDCEvent.from_debezium(payload_of("mysql-delete-value.json"))
    TOMBSTONE = CDCEvent.from_debezium(None, key={"id": 1004})
    INSERT = CDCEvent.from_debezium(payload_of("mysql-create-value.json"))

    @pytest.mark.parametrize(
        ("mode", "delete", "tombstone"),
        [
            (DeleteHandling.DROP, DROPPED, DROPPED),
            (DeleteHandling.TOMBSTONE, DROPPED, None),
            (DeleteHandling.REWRITE, "rewritten", DROPPED),
            (DeleteHandling.REWRITE_WITH_TOMBSTONE, "rewritten", None),
            (DeleteHandling.DELETE_TO_TOMBSTONE, None, DROPPED),
        ],
    )
    def test_delete_handling_modes(self, mode: DeleteHandling, delete: Any, tombstone: Any) -> None:
        """Each mode treats deletes and tombstones as the documented table says."""
        got = self.DELETE.flatten(delete_handling=mode)
        if delete == "rewritten":
            assert got == {**(self.DELETE.before or {}), "__deleted": "true"}
        else:
            assert got is delete
        assert self.TOMBSTONE.flatten(delete_handling=mode) is tombstone
        assert self.TOMBSTONE.flatten(delete_handling=mode.value) is tombstone

    def test_rows_flatten_to_after(self) -> None:
        """Inserts give a copy of after; the rewrite modes add __deleted: false."""
        row = self.INSERT.flatten()
        assert row == self.INSERT.after
        assert row is not self.INSERT.after
        assert self.INSERT.flatten(delete_handling="rewrite") == {
            **(self.INSERT.after or {}),
            "__deleted": "false",
        }

    def test_default_is_the_smts_default(self) -> None:
        """The default mode is TOMBSTONE, as Debezium's."""
        assert self.DELETE.flatten() is DROPPED
        assert self.TOMBSTONE.flatten() is None

    def test_add_fields(self) -> None:
        """add_fields adds envelope, source and transaction metadata with __ names."""
        event = CDCEvent.from_debezium(
            {**payload_of("pg-create-value.json"), "transaction": {"id": "t", "total_order": 3}}
        )
        row = event.flatten(
            add_fields=[
                "op",
                "ts_ms",
                "table",
                "lsn",
                "source.ts_ms",
                "transaction.total_order",
                "transaction.nope",
                "missing",
            ]
        )
        assert isinstance(row, dict)
        assert row["__op"] == "c"
        assert row["__ts_ms"] == 1559033904863
        assert (row["__table"], row["__lsn"]) == ("customers", 24023128)
        assert row["__source_ts_ms"] == 1559033904863
        assert (row["__transaction_total_order"], row["__transaction_nope"]) == (3, None)
        assert row["__missing"] is None
        no_tx = CDCEvent.from_debezium(pg()).flatten(add_fields=["transaction.id"])
        assert isinstance(no_tx, dict)
        assert no_tx["__transaction_id"] is None

    def test_rewritten_deletes_carry_added_fields(self) -> None:
        """A rewritten delete gets the added fields before __deleted."""
        row = self.DELETE.flatten(delete_handling="rewrite", add_fields=["op"])
        assert isinstance(row, dict)
        assert list(row)[-2:] == ["__op", "__deleted"]
        assert row["__op"] == "d"

    def test_truncates_and_messages_are_dropped(self) -> None:
        """Events without a row flatten to DROPPED."""
        assert CDCEvent.from_debezium(payload_of("pg-truncate-value.json")).flatten() is DROPPED
        message = CDCEvent.from_debezium(payload_of("pg-message-transactional.json"))
        assert message.flatten(delete_handling="rewrite") is DROPPED

    def test_missing_images_raise(self) -> None:
        """An update without after, or a delete to rewrite without before, raises CDCError."""
        update = CDCEvent.from_debezium({"op": "u", "updateDescription": {"removedFields": ["a"]}})
        with pytest.raises(CDCError, match="no after image"):
            update.flatten()
        delete = CDCEvent.from_debezium({"op": "d", "before": None})
        with pytest.raises(CDCError, match="no before image"):
            delete.flatten(delete_handling="rewrite")

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"delete_handling": "none"}, ValueError),
            ({"delete_handling": 5}, ValueError),
            ({"add_fields": "op"}, TypeError),
            ({"add_fields": 5}, TypeError),
            ({"add_fields": [""]}, ValueError),
            ({"add_fields": [5]}, ValueError),
        ],
    )
    def test_arguments_are_checked(self, kwargs: dict[str, Any], error: type) -> None:
        """flatten() refuses unknown modes and malformed field lists."""
        with pytest.raises(error):
            self.INSERT.flatten(**kwargs)

    def test_markers_repr(self) -> None:
        """The markers print as their names and are distinct from None."""
        assert (repr(ABSENT), repr(DROPPED)) == ("ABSENT", "DROPPED")
        assert ABSENT is CDCMarker.ABSENT
        assert DROPPED is not None


# ======================================================================================
# MongoDB Extended JSON
# ======================================================================================


class TestExtendedJson:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ('{"$oid": "596e275826f08b2730779e1f"}', "596e275826f08b2730779e1f"),
            ('{"$numberInt": "-42"}', -42),
            ('{"$numberLong": "9223372036854775807"}', 2**63 - 1),
            ('{"$numberDouble": "1.5E+3"}', 1500.0),
            ('{"$numberDouble": "-Infinity"}', float("-inf")),
            ('{"$numberDecimal": "1234.5678901234567890"}', Decimal("1234.5678901234567890")),
            ('{"$numberDecimal": "-Infinity"}', Decimal("-Infinity")),
            ('{"$binary": {"base64": "a2Fma2E=", "subType": "00"}}', b"kafka"),
            ('{"$binary": "a2Fma2E=", "$type": "80"}', b"kafka"),
            ('{"$type": "0", "$binary": ""}', b""),
            (
                '{"$binary": {"base64": "ABEiM0RVZneImaq7zN3u/w==", "subType": "04"}}',
                uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
            ),
            (
                '{"$uuid": "00112233-4455-6677-8899-aabbccddeeff"}',
                uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
            ),
            ('{"$binary": {"base64": "AQ==", "subType": "4"}}', b"\x01"),
            (
                '{"$date": {"$numberLong": "1558965508000"}}',
                datetime(2019, 5, 27, 13, 58, 28, tzinfo=timezone.utc),
            ),
            ('{"$date": -1000}', datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
            (
                '{"$date": "2019-05-27T13:58:28.123Z"}',
                datetime(2019, 5, 27, 13, 58, 28, 123000, tzinfo=timezone.utc),
            ),
            (
                '{"$date": "2019-05-27T15:58:28+02:00"}',
                datetime(2019, 5, 27, 13, 58, 28, tzinfo=timezone.utc),
            ),
            (
                '{"$date": "2019-05-27T10:58:28.5-0300"}',
                datetime(2019, 5, 27, 13, 58, 28, 500000, tzinfo=timezone.utc),
            ),
            (
                '{"$date": "2019-05-27t13:58:28.123456789z"}',
                datetime(2019, 5, 27, 13, 58, 28, 123456, tzinfo=timezone.utc),
            ),
            ('{"$timestamp": {"t": 1558965508, "i": 31}}', BsonTimestamp(1558965508, 31)),
            ('{"$symbol": "sym"}', "sym"),
            ('{"$undefined": true}', None),
            (
                '{"$regularExpression": {"pattern": "^a", "options": "i"}}',
                {"$regularExpression": {"pattern": "^a", "options": "i"}},
            ),
            ('{"$minKey": 1}', {"$minKey": 1}),
            (
                '{"$oid": "596e275826f08b2730779e1f", "x": 1}',
                {"$oid": "596e275826f08b2730779e1f", "x": 1},
            ),
            (
                '{"$code": "f()", "$scope": {"n": {"$numberInt": "1"}}}',
                {"$code": "f()", "$scope": {"n": 1}},
            ),
            ('[{"$numberLong": "1"}, [{"$numberInt": "2"}]]', [1, [2]]),
            ('"plain"', "plain"),
        ],
    )
    def test_wrappers_decode(self, text: str, value: Any) -> None:
        """Each Extended JSON wrapper decodes to its Python type; others stay dicts."""
        decoded = decode_extended_json(text)
        assert decoded == value
        assert type(decoded) is type(value)

    def test_nan_double(self) -> None:
        """$numberDouble NaN decodes to a float NaN."""
        assert math.isnan(decode_extended_json({"$numberDouble": "NaN"}))

    def test_huge_decimal_exponents_are_parse_errors(self) -> None:
        """A $numberDecimal beyond the decimal module's exponent range raises CDCParseError."""
        with pytest.raises(CDCParseError) as info:
            decode_extended_json({"$numberDecimal": "1E+999999999999999999999"})
        assert info.value.path == "value.$numberDecimal"

    def test_decoded_values_are_written_back_as_extended_json(self) -> None:
        """Decoded MongoDB values are written back as Extended JSON and read back equal."""
        after = {
            "nan": {"$numberDouble": "NaN"},
            "inf": {"$numberDouble": "Infinity"},
            "ninf": {"$numberDouble": "-Infinity"},
            "old": {"$date": {"$numberLong": "-86400000"}},
            "micro": {"$date": "2020-01-01T00:00:00.000001Z"},
            "milli": {"$date": "2020-01-01T00:00:00.123Z"},
            "f": {"$numberDouble": "1.5"},
            "b": {"$binary": "AQI=", "$type": "00"},
            "t": {"$timestamp": {"t": 5, "i": 1}},
            "d": {"$numberDecimal": "9.99"},
            "u": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"},
        }
        ce = CDCEvent.from_debezium(mongo(after=after)).to_cloudevent()
        written = ce["data"]["after"]
        assert written == {
            "nan": {"$numberDouble": "NaN"},
            "inf": {"$numberDouble": "Infinity"},
            "ninf": {"$numberDouble": "-Infinity"},
            "old": {"$date": {"$numberLong": "-86400000"}},
            "micro": {"$date": "2020-01-01T00:00:00.000001Z"},
            "milli": {"$date": "2020-01-01T00:00:00.123Z"},
            "f": 1.5,
            "b": {"$binary": {"base64": "AQI=", "subType": "00"}},
            "t": {"$timestamp": {"t": 5, "i": 1}},
            "d": {"$numberDecimal": "9.99"},
            "u": {"$binary": {"base64": "ABEiM0RVZneImaq7zN3u/w==", "subType": "04"}},
        }
        again = CDCEvent.from_cloudevent(json.dumps(ce)).after
        assert again is not None
        assert (again["inf"], again["ninf"]) == (float("inf"), float("-inf"))
        assert again["old"] == datetime(1969, 12, 31, tzinfo=timezone.utc)
        assert {name: again[name] for name in ("f", "b", "t", "d", "u")} == {
            "f": 1.5,
            "b": b"\x01\x02",
            "t": BsonTimestamp(5, 1),
            "d": Decimal("9.99"),
            "u": uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
        }

    def test_snapshot_ids_cover_every_decoded_type(self) -> None:
        """A MongoDB snapshot row holding every decoded type has a stable, distinct id."""
        after = {
            "_id": {"$oid": "596e275826f08b2730779e1f"},
            "d": {"$numberDecimal": "1.5"},
            "b": {"$binary": {"base64": "AQI=", "subType": "00"}},
            "u": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"},
            "t": {"$timestamp": {"t": 1, "i": 2}},
            "at": {"$date": {"$numberLong": "5"}},
        }
        a = CDCEvent.from_debezium(mongo(op="r", after=after))
        assert a.event_id == CDCEvent.from_debezium(mongo(op="r", after=json.dumps(after))).event_id
        for name in after:
            changed = {**after, name: None}
            assert CDCEvent.from_debezium(mongo(op="r", after=changed)).event_id != a.event_id

    @pytest.mark.parametrize(
        ("value", "path"),
        [
            ({"$oid": "xyz"}, "value.$oid"),
            ({"a": {"$numberInt": "2147483648"}}, "value.a.$numberInt"),
            ({"a": [1, {"$numberLong": "1.5"}]}, "value.a[1].$numberLong"),
            ({"$numberLong": 5}, "value.$numberLong"),
            ({"$numberDouble": "1e"}, "value.$numberDouble"),
            ({"$numberDouble": 1.5}, "value.$numberDouble"),
            ({"$numberDecimal": "1,5"}, "value.$numberDecimal"),
            ({"$binary": "AQ=="}, "value.$binary"),
            ({"$binary": {"base64": "***", "subType": "00"}}, "value.$binary"),
            ({"$binary": {"base64": "é", "subType": "00"}}, "value.$binary"),
            ({"$binary": {"base64": 5, "subType": "00"}}, "value.$binary"),
            ({"$binary": {"base64": "AQ==", "subType": "xyz"}}, "value.$binary"),
            ({"$binary": "AQ==", "$type": 0}, "value"),
            ({"$uuid": "0011"}, "value.$uuid"),
            ({"$date": {"$numberLong": "x"}}, "value.$date"),
            ({"$date": {"$numberLong": "9223372036854775807"}}, "value.$date"),
            ({"$date": "2019-02-30T00:00:00Z"}, "value.$date"),
            ({"$date": "yesterday"}, "value.$date"),
            ({"$date": "2019-05-27T13:58:28+25:00"}, "value.$date"),
            ({"$date": [1]}, "value.$date"),
            ({"$date": True}, "value.$date"),
            ({"$timestamp": {"t": -1, "i": 0}}, "value.$timestamp"),
            ({"$timestamp": {"t": 1}}, "value.$timestamp"),
            ({"$timestamp": 5}, "value.$timestamp"),
            ({"$symbol": 5}, "value.$symbol"),
            ({"$undefined": False}, "value.$undefined"),
        ],
    )
    def test_malformed_wrappers_raise_with_their_path(self, value: Any, path: str) -> None:
        """A malformed wrapper raises CDCParseError naming its path."""
        with pytest.raises(CDCParseError) as info:
            decode_extended_json(value)
        assert info.value.path == path

    def test_invalid_text_raises(self) -> None:
        """Invalid JSON text raises CDCParseError at "value"."""
        with pytest.raises(CDCParseError) as info:
            decode_extended_json(b"{")
        assert info.value.path == "value"

    def test_deep_nesting_raises_a_parse_error(self) -> None:
        """A document nested deeper than the recursion limit is a CDCParseError."""
        deep: Any = 1
        for _ in range(sys.getrecursionlimit() + 100):
            deep = [deep]
        with pytest.raises(CDCParseError, match="nested too deeply"):
            decode_extended_json(deep)
        with pytest.raises(CDCParseError):
            CDCEvent.from_debezium({**mysql(), "op": "r", "after": {"a": deep}})

    def test_mongodb_documents_as_text_or_objects_agree(self) -> None:
        """after as Extended JSON text or as a document gives the same event and id."""
        doc = {"_id": {"$oid": "596e275826f08b2730779e1f"}, "n": {"$numberLong": "5"}}
        as_text = CDCEvent.from_debezium(mongo(after=json.dumps(doc)))
        as_object = CDCEvent.from_debezium(mongo(after=doc))
        assert as_text == as_object
        assert as_text.after == {"_id": "596e275826f08b2730779e1f", "n": 5}
        assert CDCEvent.from_debezium(mongo(after="null")).after is None

    def test_other_connectors_are_not_decoded(self) -> None:
        """A relational row that happens to hold $-keys is left as it is."""
        event = CDCEvent.from_debezium({**pg(), "after": {"doc": {"$oid": "nothex"}}})
        assert event.after == {"doc": {"$oid": "nothex"}}
        as_text = CDCEvent.from_debezium({**pg(), "after": '{"n": {"$numberLong": "5"}}'})
        assert as_text.after == {"n": {"$numberLong": "5"}}

    def test_mongodb_vectors_decode(self) -> None:
        """The MongoDB create and delete vectors decode their $numberLong ids."""
        create = CDCEvent.from_debezium(payload_of("mongodb-create-value.json"))
        assert create.after == {
            "_id": 1004,
            "first_name": "Anne",
            "last_name": "Kretchmar",
            "email": "annek@noanswer.org",
        }
        assert create.captured_at is None  # the doc's duplicate ts_ms is out of range
        delete = CDCEvent.from_debezium(payload_of("mongodb-delete-value.json"))
        assert delete.before is not None
        assert delete.before["first_name"] == "Anne Marie"
        assert delete.is_snapshot

    def test_mongodb_bad_documents_name_the_path(self) -> None:
        """A malformed wrapper inside a MongoDB document names the full path."""
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_debezium(
                {"schema": {}, "payload": mongo(after='{"items": [{"$oid": 1}]}')}
            )
        assert info.value.path == "payload.after.items[0].$oid"


def decoded_values() -> st.SearchStrategy[Any]:
    """Values decode_extended_json produces (NaN excluded: it is never equal to itself)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.binary(max_size=8),
        st.uuids(),
        st.decimals(allow_nan=False),
        st.builds(BsonTimestamp, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
        st.datetimes(timezones=st.just(timezone.utc)),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text(max_size=6).filter(lambda k: not k.startswith("$")), inner, max_size=4
            )
        ),
        max_leaves=12,
    )


def json_values(*, finite: bool = True) -> st.SearchStrategy[Any]:
    """Arbitrary JSON-like values."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=not finite, allow_infinity=not finite),
        st.text(max_size=10),
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        ),
        max_leaves=20,
    )


class TestExtendedJsonProperties:
    @settings(max_examples=300, deadline=None)
    @given(decoded_values())
    def test_decoding_what_we_encode_gives_the_value_back(self, value: Any) -> None:
        """A MongoDB event's rows survive to_cloudevent() and back exactly."""
        event = CDCEvent.from_debezium(mongo(after={"v": value}))
        assert event.after == {"v": value}
        again = CDCEvent.from_cloudevent(json.loads(json.dumps(event.to_cloudevent())))
        assert again.after == event.after
        assert again == event

    @settings(max_examples=300)
    @given(st.integers(-(2**63), 2**63 - 1), st.integers(-(2**31), 2**31 - 1))
    def test_canonical_numbers_decode_exactly(self, long: int, int32: int) -> None:
        """Canonical $numberLong and $numberInt decode to the exact integers."""
        text = json.dumps({"l": {"$numberLong": str(long)}, "i": {"$numberInt": str(int32)}})
        assert decode_extended_json(text) == {"l": long, "i": int32}

    @settings(max_examples=300)
    @given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    def test_dates_decode_to_the_millisecond(self, moment: datetime) -> None:
        """A canonical $date of any millisecond in datetime's range decodes to that instant."""
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=timezone.utc)
        millis = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)
        assert decode_extended_json({"$date": {"$numberLong": str(millis)}}) == moment

    @settings(max_examples=300)
    @given(json_values(finite=False))
    def test_fuzz_raises_only_parse_errors(self, value: Any) -> None:
        """decode_extended_json on anything raises nothing but CDCParseError."""
        with _anything():
            decode_extended_json(value)

    @settings(max_examples=300)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "$oid",
                    "$numberInt",
                    "$numberLong",
                    "$numberDouble",
                    "$numberDecimal",
                    "$binary",
                    "$type",
                    "$uuid",
                    "$date",
                    "$timestamp",
                    "$symbol",
                    "$undefined",
                    "base64",
                    "subType",
                    "t",
                    "i",
                ]
            ),
            json_values(finite=False)
            | st.text(alphabet="0123456789abcdefABCDEF-.:TZe+=/", max_size=40),
            min_size=1,
            max_size=2,
        )
    )
    def test_wrapper_fuzz_raises_only_parse_errors(self, value: dict[str, Any]) -> None:
        """Wrapper-shaped dicts with arbitrary contents raise only CDCParseError."""
        with _anything():
            decode_extended_json({"x": value, "y": [value]})


class _anything:  # noqa: N801 - reads as a context manager name
    """Accept success or CDCParseError; let any other exception through."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, CDCParseError)


# ======================================================================================
# CloudEvents
# ======================================================================================


class TestCloudEvents:
    def test_written_events_are_valid_for_the_envelope_reader(self) -> None:
        """interlock's own CloudEvents reader accepts what to_cloudevent() writes."""
        from interlock.event_envelope import EventEnvelope  # noqa: PLC0415

        for name in (
            "pg-create-value.json",
            "mysql-update-value.json",
            "mongodb-update-value.json",
        ):
            ce = CDCEvent.from_debezium(vector(name)["parsed"], key={"id": 1}).to_cloudevent()
            envelope = EventEnvelope.from_cloudevent(json.dumps(ce))
            assert envelope.event_id == ce["id"]
            assert envelope.payload == ce["data"]

    def test_attributes(self) -> None:
        """id, source, type, time, subject and the extensions are as documented."""
        event = CDCEvent.from_debezium(payload_of("pg-create-value.json"), key={"id": 1})
        ce = event.to_cloudevent()
        assert ce["id"] == event.event_id
        assert ce["source"] == "/debezium/postgresql/PostgreSQL_server"
        assert ce["type"] == "io.debezium.connector.postgresql.DataChangeEvent"
        assert ce["time"] == "2019-05-28T08:58:24.863123000Z"  # ts_ns, to the nanosecond
        assert ce["subject"] == '{"id":1}'
        assert ce["iodebeziumop"] == "c"
        assert ce["iodebeziumtsms"] == "1559033904863"
        assert "iodebeziumtxid" not in ce
        assert ce["data"]["source"] == event.source.fields

    def test_time_uses_the_finest_timestamp(self) -> None:
        """time is written from ts_ns, else ts_us, else ts_ms, else omitted."""
        assert CDCEvent.from_debezium(pg(ts_us=1_700_000_000_000_001)).to_cloudevent()["time"] == (
            "2023-11-14T22:13:20.000001Z"
        )
        assert CDCEvent.from_debezium(pg()).to_cloudevent()["time"] == "2023-11-14T22:13:20.000Z"
        assert "time" not in CDCEvent.from_debezium(pg(ts_ms=None)).to_cloudevent()
        assert "time" not in CDCEvent.from_debezium(pg(ts_ms=10**30)).to_cloudevent()
        before_1970 = CDCEvent.from_debezium(pg(ts_ms=-1)).to_cloudevent()
        assert before_1970["time"] == "1969-12-31T23:59:59.999Z"

    def test_awkward_names_are_percent_encoded_or_left_out(self) -> None:
        """Server names with spaces are percent-encoded; control characters are not written."""
        event = CDCEvent.from_debezium(pg(name="east side/1", table="a\nb"))
        ce = event.to_cloudevent()
        assert ce["source"] == "/debezium/postgresql/east%20side%2F1"
        assert "iodebeziumtable" not in ce
        assert CDCEvent.from_cloudevent(ce) == event

    def test_keys_with_control_characters_stay_valid_strings(self) -> None:
        """A key holding DEL is escaped in subject and read back equal."""
        event = CDCEvent.from_debezium(pg(), key={"k": "a\x7fb\n"})
        ce = event.to_cloudevent()
        assert ce["subject"].isprintable()
        assert CDCEvent.from_cloudevent(ce).key == {"k": "a\x7fb\n"}

    def test_round_trips_every_kind(self) -> None:
        """Messages, transactions, update descriptions and unknown sources round-trip."""
        values = [
            payload_of("pg-message-transactional.json"),
            vector("pg-tx-enriched-create.json")["parsed"],
            payload_of("mongodb-update-value.json"),
            {"op": "c", "after": {"id": 1}, "source": None},
            {"op": "t", "source": {"connector": "sqlserver", "commit_lsn": "0:0:1"}},
        ]
        for value in values:
            event = CDCEvent.from_debezium(value)
            assert CDCEvent.from_cloudevent(json.dumps(event.to_cloudevent())) == event

    def test_constructed_events_write_their_typed_source(self) -> None:
        """A constructed event without raw source fields writes its typed ones."""
        source = CDCSourceMetadata(
            "inventory",
            "",
            "customers",
            "debezium",
            None,
            "5",
            engine="mysql",
            name="m1",
            snapshot=SnapshotMarker.LAST,
            binlog_file="bin.000002",
            binlog_pos=10,
            binlog_row=1,
            gtid="g",
            thread=3,
            query="q",
            ts_ms=5,
        )
        event = CDCEvent(CDCOperation.INSERT, source, None, {"id": 1}, captured_at=None)
        again = CDCEvent.from_cloudevent(event.to_cloudevent())
        assert again.source.position == event.source.position
        assert again.source.snapshot is SnapshotMarker.LAST
        assert (again.source.gtid, again.source.server_id) == ("g", "5")
        pg_source = CDCSourceMetadata(
            "db",
            "public",
            "t",
            "debezium",
            "100",
            engine="postgresql",
            name="p",
            tx_id=7,
            xmin=1,
            sequence=(90, None),
        )
        pg_event = CDCEvent(CDCOperation.DELETE, pg_source, {"id": 1}, None, captured_at=None)
        pg_again = CDCEvent.from_cloudevent(pg_event.to_cloudevent())
        assert pg_again.source.sequence == (90, None)
        assert pg_again.event_id == pg_event.event_id
        mongo_source = CDCSourceMetadata(
            "db", "", "coll", engine="mongodb", name="m", replica_set="rs0", ord=2, ts_ms=9
        )
        mongo_event = CDCEvent(
            CDCOperation.INSERT, mongo_source, None, {"_id": 1}, captured_at=None
        )
        assert (
            CDCEvent.from_cloudevent(mongo_event.to_cloudevent()).position == mongo_event.position
        )

    def test_debezium_extension_form_maps_back(self) -> None:
        """Debezium's converter form: MySQL and SQL Server fields come back from extensions."""
        ce = {
            "specversion": "1.0",
            "id": "x",
            "source": "/debezium/mysql/m1",
            "type": "io.debezium.connector.mysql.DataChangeEvent",
            "iodebeziumop": "u",
            "iodebeziumconnector": "mysql",
            "iodebeziumname": "m1",
            "iodebeziumfile": "mysql-bin.000003",
            "iodebeziumpos": "154",
            "iodebeziumrow": "1",
            "iodebeziumserverid": "223344",
            "iodebeziumtxId": "9",
            "iodebeziumxmin": None,
            "other": "ignored",
            "data": {"before": {"a": 1}, "after": {"a": 2}},
        }
        event = CDCEvent.from_cloudevent(ce)
        assert event.position.key == (3, 154, 1)
        assert event.source.server_id == "223344"
        assert event.source.fields["txId"] == "9"
        assert event.changed_fields() == {"a"}

    @pytest.mark.parametrize(
        ("change", "path"),
        [
            ({"iodebeziumpos": "x"}, "iodebeziumpos"),
            ({"iodebeziumtxtotalorder": "x", "iodebeziumtxid": "t"}, "iodebeziumtxtotalorder"),
            ({"data": {"after": 5}}, "data.after"),
            ({"iodebeziumop": None}, "iodebeziumop"),
            ({"iodebeziumop": "z"}, "iodebeziumop"),
            (
                {"iodebeziumconnector": "mongodb", "data": {"after": '{"$oid": 1}'}},
                "data.after.$oid",
            ),
        ],
    )
    def test_debezium_form_errors_name_the_attribute(
        self, change: dict[str, Any], path: str
    ) -> None:
        """An error in Debezium's form names the extension attribute or data member."""
        ce = {
            "specversion": "1.0",
            "id": "x",
            "source": "/s",
            "type": "t",
            "iodebeziumop": "c",
            "iodebeziumconnector": "mysql",
            "iodebeziumfile": "b.000001",
            "data": {"after": {"a": 1}},
        }
        ce.update(change)
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_cloudevent(ce)
        assert info.value.path == path

    @pytest.mark.parametrize(
        ("event", "path"),
        [
            ("{", "event"),
            ([], "event"),
            ({"id": "x"}, "specversion"),
            ({"specversion": "0.3"}, "specversion"),
            ({"specversion": "1.0", "source": "/s", "type": "t"}, "id"),
            ({"specversion": "1.0", "id": "x", "source": "", "type": "t"}, "source"),
            ({"specversion": "1.0", "id": "x", "source": "/s", "type": 5}, "type"),
            (
                {
                    "specversion": "1.0",
                    "id": "x",
                    "source": "/s",
                    "type": "t",
                    "datacontenttype": 5,
                },
                "datacontenttype",
            ),
            (
                {
                    "specversion": "1.0",
                    "id": "x",
                    "source": "/s",
                    "type": "t",
                    "data_base64": "AA==",
                },
                "data_base64",
            ),
            ({"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "data": "x"}, "data"),
            (
                {
                    "specversion": "1.0",
                    "id": "x",
                    "source": "/s",
                    "type": "t",
                    "data": {"op": "c"},
                    "subject": 5,
                },
                "subject",
            ),
            (
                {
                    "specversion": "1.0",
                    "id": "x",
                    "source": "/s",
                    "type": "t",
                    "data": {"op": "c", "source": 5},
                },
                "data.source",
            ),
        ],
    )
    def test_bad_cloudevents_name_the_attribute(self, event: Any, path: str) -> None:
        """A malformed CloudEvent raises CDCParseError naming the attribute."""
        with pytest.raises(CDCParseError) as info:
            CDCEvent.from_cloudevent(event)
        assert info.value.path == path

    def test_foreign_subjects_are_kept_as_text(self) -> None:
        """A subject that is not JSON text (another producer's) is kept as the key text."""
        ce = CDCEvent.from_debezium(pg()).to_cloudevent()
        ce["subject"] = "orders/1001"
        assert CDCEvent.from_cloudevent(ce).key == "orders/1001"

    def test_json_media_types_with_parameters(self) -> None:
        """application/json with a charset, and +json types, are JSON."""
        ce = CDCEvent.from_debezium(pg()).to_cloudevent()
        for media in ("application/json; charset=utf-8", "application/vnd.debezium+json", None):
            ce["datacontenttype"] = media
            assert CDCEvent.from_cloudevent(ce).operation is CDCOperation.UPDATE

    @settings(max_examples=200, deadline=None)
    @given(json_values(), st.sampled_from(["c", "u", "d", "r", "t"]), st.integers(0, 2**40))
    def test_round_trip_property(self, row: Any, op: str, lsn: int) -> None:
        """Any parsed change event survives to_cloudevent() and from_cloudevent() equal."""
        value = {**pg(lsn=lsn), "op": op, "after": {"v": row}, "before": {"v": [row]}}
        event = CDCEvent.from_debezium(value, key={"k": row})
        assert CDCEvent.from_cloudevent(json.dumps(event.to_cloudevent())) == event

    @settings(max_examples=300)
    @given(json_values(finite=False))
    def test_from_cloudevent_fuzz(self, value: Any) -> None:
        """from_cloudevent on anything raises nothing but CDCParseError."""
        base = {"specversion": "1.0", "id": "x", "source": "/s", "type": "t"}
        for candidate in (
            value,
            {**base, "data": value},
            {**base, "data": {"op": "c", "after": value}},
        ):
            with _anything():
                CDCEvent.from_cloudevent(candidate)


# ======================================================================================
# iter_jsonl
# ======================================================================================

LINES = [
    json.dumps(payload_of("pg-create-value.json")),
    "",
    "{not json",
    json.dumps(payload_of("pg-delete-value.json")),
    "null",
    json.dumps({"status": "BEGIN", "id": "1"}),
    '{"op": "x"}',
    json.dumps(pg()),
]


class TestIterJsonl:
    def test_bad_lines_are_reported_and_good_ones_kept(self) -> None:
        """on_error receives each bad line's error with its number; good records still come."""
        errors: list[CDCParseError] = []
        records = list(iter_jsonl(io.StringIO("\n".join(LINES) + "\n"), on_error=errors.append))
        assert [(e.line, e.path) for e in errors] == [(3, "value"), (7, "op")]
        assert str(errors[1]).startswith("line 7: op: ")
        kinds = [r.operation if isinstance(r, CDCEvent) else r.status for r in records]
        assert kinds == [
            CDCOperation.INSERT,
            CDCOperation.DELETE,
            CDCOperation.TOMBSTONE,
            TransactionStatus.BEGIN,
            CDCOperation.UPDATE,
        ]

    def test_a_tombstone_after_a_delete_follows_it(self) -> None:
        """The tombstone right after a delete gets the id derived from that delete."""
        records = list(iter_jsonl(LINES[3:5]))
        delete, tombstone = records
        assert isinstance(delete, CDCEvent)
        assert tombstone == CDCEvent.from_debezium(None, follows=delete)
        lone = next(iter_jsonl(["null"]))
        assert lone == CDCEvent.from_debezium(None)
        assert lone.event_id != tombstone.event_id

    def test_without_on_error_the_first_bad_line_raises(self) -> None:
        """Without on_error, a bad line raises CDCParseError with .line set."""
        reader = iter_jsonl(LINES)
        assert isinstance(next(reader), CDCEvent)
        with pytest.raises(CDCParseError) as info:
            next(reader)
        assert (info.value.line, info.value.path) == (3, "value")

    def test_binary_files_and_paths(self, tmp_path: Path) -> None:
        """Binary file objects and paths (str or Path) are read; bad UTF-8 is one bad line."""
        data = ("\r\n".join(LINES[:2]) + "\r\n").encode() + b"\xff\xfe\n" + LINES[7].encode()
        path = tmp_path / "events.jsonl"
        path.write_bytes(data)
        for source in (io.BytesIO(data), path, str(path)):
            errors: list[CDCParseError] = []
            records = list(iter_jsonl(source, on_error=errors.append))
            assert len(records) == 2
            assert [e.line for e in errors] == [3]

    def test_non_text_lines_are_bad_lines(self) -> None:
        """An iterable yielding something other than str or bytes reports that line."""
        errors: list[CDCParseError] = []
        records = list(iter_jsonl([LINES[7], 5, LINES[7]], on_error=errors.append))  # type: ignore[list-item]
        assert len(records) == 2
        assert [(e.line, e.path) for e in errors] == [(2, "line")]

    @pytest.mark.parametrize(
        ("source", "kwargs", "error"),
        [
            (b"{}", {}, TypeError),
            (5, {}, TypeError),
            ([], {"on_error": "print"}, TypeError),
        ],
    )
    def test_arguments_are_checked_at_the_call(
        self, source: Any, kwargs: dict[str, Any], error: type
    ) -> None:
        """A bad source or on_error raises when iter_jsonl is called, not later."""
        with pytest.raises(error):
            iter_jsonl(source, **kwargs)

    # No deadline: on a loaded machine one slow example is not a failure (it flaked once).
    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.one_of(st.sampled_from(LINES), st.text(max_size=30), st.binary(max_size=30)),
            max_size=12,
        )
    )
    def test_every_line_is_either_a_record_or_an_error(self, lines: list[Any]) -> None:
        """With on_error, each non-blank line yields a record or exactly one error."""
        errors: list[CDCParseError] = []
        records = list(iter_jsonl(lines, on_error=errors.append))
        blank = sum(
            1
            for line in lines
            if not line.strip(" \t\r\n" if isinstance(line, str) else b" \t\r\n")
        )
        assert len(records) + len(errors) == len(lines) - blank
        assert all(isinstance(e.line, int) and 1 <= e.line <= len(lines) for e in errors)


# ======================================================================================
# Fuzzing: only CDCParseError comes out
# ======================================================================================

ENGINES = ["postgresql", "mysql", "mariadb", "sqlserver", "mongodb", "oracle", None]
SOURCE_MEMBERS = [
    "name",
    "version",
    "db",
    "schema",
    "table",
    "collection",
    "snapshot",
    "last_snapshot_record",
    "ts_ms",
    "ts_us",
    "ts_ns",
    "lsn",
    "txId",
    "xmin",
    "sequence",
    "file",
    "pos",
    "row",
    "gtid",
    "thread",
    "query",
    "server_id",
    "change_lsn",
    "commit_lsn",
    "event_serial_no",
    "rs",
    "ord",
]


def plausible() -> st.SearchStrategy[Any]:
    """Values that look like what Debezium sends, and values that do not."""
    return st.one_of(
        json_values(finite=False),
        st.integers(-5, 10**20),
        st.from_regex(r"-?[0-9]{1,25}", fullmatch=True),
        st.sampled_from(
            [
                "mysql-bin.000003",
                "0000002a:00000b10:0003",
                "zz:1:1",
                '["1", "2"]',
                "[null, 5]",
                "true",
                "first",
                "incremental",
                "",
                "AAAA",
                "Ymfy",
                "***",
                '{"_id": 1}',
                '{"_id": {"$oid": 5}}',
                '{"a": {"$numberLong": "1"}}',
            ]
        ),
    )


def debezium_like() -> st.SearchStrategy[dict[str, Any]]:
    """Payloads shaped like Debezium's, with arbitrary members anywhere."""
    source = st.fixed_dictionaries(
        {"connector": st.sampled_from(ENGINES)},
        optional={name: plausible() for name in SOURCE_MEMBERS},
    )
    return st.fixed_dictionaries(
        {"op": st.sampled_from(["c", "u", "d", "r", "t", "m", "x", None]) | json_values()},
        optional={
            "source": st.one_of(st.none(), source, json_values()),
            "before": st.one_of(st.none(), json_values(finite=False), plausible()),
            "after": st.one_of(st.none(), json_values(finite=False), plausible()),
            "ts_ms": plausible(),
            "ts_ns": plausible(),
            "transaction": st.one_of(
                st.none(),
                st.fixed_dictionaries({}, optional={"id": plausible(), "total_order": plausible()}),
                json_values(),
            ),
            "message": st.one_of(
                st.none(),
                st.fixed_dictionaries({}, optional={"prefix": plausible(), "content": plausible()}),
            ),
            "updateDescription": st.one_of(
                st.none(),
                json_values(),
                st.fixed_dictionaries(
                    {},
                    optional={
                        "updatedFields": plausible(),
                        "removedFields": plausible(),
                        "truncatedArrays": st.lists(
                            st.fixed_dictionaries(
                                {}, optional={"field": plausible(), "newSize": plausible()}
                            )
                        )
                        | plausible(),
                    },
                ),
            ),
            "status": plausible(),
        },
    )


def flatten_outcome(record: CDCEvent, mode: DeleteHandling) -> object:
    """What flatten() returns, or the CDCError it raises (a missing row image)."""
    try:
        return record.flatten(delete_handling=mode, add_fields=["op", "lsn", "transaction.id"])
    except CDCError as exc:
        return exc


def exercise(record: CDCEvent | CDCTransactionEvent) -> None:
    """Use every derived value of a parsed record; none may raise."""
    if isinstance(record, CDCTransactionEvent):
        assert record.event_id
        return
    if not record.is_tombstone:
        assert CDCEvent.from_cloudevent(record.to_cloudevent()).event_id == record.event_id
    json.dumps(record.to_audit_dict(include_values=True, mask={"a"}))
    record.diff()
    _ = record.position
    for mode in DeleteHandling:
        outcome = flatten_outcome(record, mode)
        assert not isinstance(outcome, CDCParseError)


class TestFuzz:
    @settings(max_examples=250, deadline=None)
    @given(json_values(finite=False))
    def test_arbitrary_json_values(self, value: Any) -> None:
        """from_debezium and parse_record on any JSON-like value raise only CDCParseError."""
        with _anything():
            exercise(parse_record(value))
        with _anything():
            CDCEvent.from_debezium(value, key=value)

    @settings(max_examples=250, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes(self, raw: bytes) -> None:
        """from_debezium on any bytes raises only CDCParseError."""
        with _anything():
            CDCEvent.from_debezium(raw, key=raw)
        with _anything():
            CDCTransactionEvent.from_debezium(raw)

    @settings(max_examples=250, deadline=None)
    @given(debezium_like())
    def test_debezium_shaped_payloads(self, value: dict[str, Any]) -> None:
        """Debezium-shaped payloads with arbitrary members raise only CDCParseError."""
        with _anything():
            exercise(parse_record(value))
        with _anything():
            exercise(parse_record(json.dumps(value, allow_nan=True)))
        with _anything():
            exercise(parse_record({"schema": None, "payload": value}))

    @settings(max_examples=300, deadline=None)
    @given(debezium_like())
    def test_parsed_events_are_deterministic(self, value: dict[str, Any]) -> None:
        """Whatever parses, parses to the same id twice."""
        try:
            first = parse_record(value)
        except CDCParseError:
            return
        assert parse_record(value).event_id == first.event_id


# ======================================================================================
# Errors and direct construction; the cost of importing
# ======================================================================================


class TestErrorsAndConstruction:
    def test_parse_errors_pickle(self) -> None:
        """CDCParseError survives pickling with its path, rule and line."""
        error = CDCParseError("payload.source.lsn", "must be an integer", line=4)
        again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
        assert (again.path, again.rule, again.line, str(again)) == (
            "payload.source.lsn",
            "must be an integer",
            4,
            "line 4: payload.source.lsn: must be an integer",
        )
        assert isinstance(again, ValueError)

    def test_position_errors_pickle(self) -> None:
        """IncomparablePositionError survives pickling with both positions."""
        error = IncomparablePositionError(
            CDCPosition("a", "s", (1,)), CDCPosition("b", "s", (1,)), "why"
        )
        again = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
        assert (again.left, again.right, str(again)) == (error.left, error.right, str(error))

    @pytest.mark.parametrize(
        ("kwargs", "error", "match"),
        [
            ({"operation": "INSERT"}, TypeError, "operation"),
            ({"source": None}, TypeError, "source"),
            ({"after": [1]}, TypeError, "after"),
            ({"event_id": 5}, TypeError, "event_id"),
            ({"captured_at": datetime(2026, 1, 1)}, ValueError, "captured_at"),
            ({"captured_at": "now"}, ValueError, "captured_at"),
            ({"after": {"x": object()}}, TypeError, "event_id"),
        ],
    )
    def test_event_construction_is_checked(
        self, kwargs: dict[str, Any], error: type, match: str
    ) -> None:
        """The CDCEvent constructor names the argument it refuses."""
        fields: dict[str, Any] = {
            "operation": CDCOperation.SNAPSHOT,
            "source": CDCSourceMetadata(
                "d", "s", "t", engine="mysql", binlog_file="b.1", binlog_pos=1
            ),
        }
        fields.update(kwargs)
        with pytest.raises(error, match=match):
            CDCEvent(**fields)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"database": 5}, "database"),
            ({"engine": None}, "engine"),
            ({"snapshot": "true"}, "snapshot"),
            ({"engine": "postgresql", "lsn": "x"}, "lsn"),
            ({"engine": "mysql", "binlog_file": "binlog", "binlog_pos": 1}, "binlog_file"),
            ({"engine": "sqlserver", "commit_lsn": "x"}, "commit_lsn"),
            ({"engine": "sqlserver", "commit_lsn": "0:0:1", "change_lsn": "y"}, "change_lsn"),
        ],
    )
    def test_source_construction_is_checked(self, kwargs: dict[str, Any], match: str) -> None:
        """The CDCSourceMetadata constructor names the field it refuses."""
        fields: dict[str, Any] = {"database": "d", "schema": "s", "table": "t"}
        fields.update(kwargs)
        with pytest.raises((TypeError, ValueError), match=match):
            CDCSourceMetadata(**fields)

    def test_writers_refuse_values_nested_too_deeply(self) -> None:
        """to_audit_dict and to_cloudevent raise CDCError for a row deeper than the stack."""
        deep: Any = 1
        for _ in range(sys.getrecursionlimit() + 100):
            deep = [deep]
        event = CDCEvent(
            CDCOperation.INSERT, CDCSourceMetadata("d", "s", "t"), None, {"x": deep}, "i"
        )
        with pytest.raises(CDCError, match="nested too deeply"):
            event.to_audit_dict(include_values=True)
        with pytest.raises(CDCError, match="nested too deeply"):
            event.to_cloudevent()
        assert event.to_audit_dict()["operation"] == "INSERT"

    def test_unknown_row_values_are_written_as_they_are(self) -> None:
        """A constructed event with a non-JSON row value keeps it in the CloudEvent data."""
        marker = object()
        event = CDCEvent(
            CDCOperation.INSERT, CDCSourceMetadata("d", "s", "t"), None, {"x": marker}, "id-1"
        )
        assert event.to_cloudevent()["data"]["after"] == {"x": marker}

    def test_values_are_frozen(self) -> None:
        """Events and their parts cannot be modified."""
        event = CDCEvent.from_debezium(pg())
        for target, name in ((event, "after"), (event.source, "lsn"), (event.position, "key")):
            with pytest.raises(AttributeError):
                setattr(target, name, None)

    def test_import_defers_heavy_modules(self) -> None:
        """Importing the module loads neither json, decimal, uuid nor asyncio."""
        code = (
            "import sys, interlock.cdc_event; "
            "heavy = ('json', 'decimal', 'uuid', 'asyncio', 'base64'); "
            "print(sorted(m for m in heavy if m in sys.modules))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(SRC)},
            check=True,
        )
        assert proc.stdout.strip() == "[]"


# ======================================================================================
# Speed without a change in meaning: lazily built fields, hand-written value classes
# ======================================================================================

# Source blocks the reader takes without converting anything (the parser's fast path)
# next to ones it must convert or refuse, for every connector.
SCREEN_CASES: list[dict[str, Any]] = [
    {"connector": "postgresql", "lsn": 5, "sequence": '["24023040","24023128"]', "txId": 1},
    {"connector": "postgresql", "lsn": 5, "sequence": '[null,"7"]', "xmin": None},
    {"connector": "postgresql", "lsn": 5, "sequence": '["1", "2"]'},  # spaces: converted
    {"connector": "postgresql", "lsn": 5, "sequence": '["",""]'},  # refused
    {"connector": "postgresql", "lsn": "5"},  # digits as text: converted
    {"connector": "postgresql", "lsn": True},  # refused
    {"connector": "postgresql", "server_id": 3, "snapshot": True, "last_snapshot_record": True},
    {"connector": "mysql", "file": "mysql-bin.000003", "pos": 154, "row": 0, "server_id": 22},
    {"connector": "mysql", "file": "binlog", "pos": 1},  # refused
    {"connector": "mariadb", "file": "m.000001", "pos": 4, "lsn": 9, "sequence": [1]},
    {"connector": "sqlserver", "commit_lsn": "0000002a:00000b10:0003", "change_lsn": None},
    {"connector": "sqlserver", "commit_lsn": "0000002a:00000b10:0003", "change_lsn": "zz"},
    {"connector": "sqlserver", "commit_lsn": "zz"},
    {"connector": "sqlserver", "change_lsn": "0000002a:00000b10:0003"},
    {"connector": "mongodb", "collection": "c", "rs": "rs0", "ord": 1, "ts_ms": 5, "table": 1},
    {"connector": "mongodb", "collection": 5},  # refused
    {"connector": "oracle", "scn": "1", "lsn": "text", "snapshot": "incremental"},
    {"connector": None, "name": "n", "version": ["x"]},  # refused
    {"connector": 5},  # refused
    {"connector": "postgresql", "lsn": 5, "ts_ms": 1.5},  # refused
]


def outcome(value: Any) -> tuple[Any, ...]:
    """A parse result to compare across input forms: the error, or the event and its values."""
    try:
        record = parse_record(value)
    except CDCParseError as exc:
        return ("error", exc.path, exc.rule)
    if isinstance(record, CDCTransactionEvent):
        return ("transaction", record)
    derived = (record.event_id, record.captured_at, record.source, record.position)
    return ("event", record, repr(record), derived)


def three_forms(value: dict[str, Any]) -> list[Any]:
    """The same record as JSON bytes, as a dict, and with a source block read the slow way.

    JSON bytes are parsed by the module, which then builds the source block on first
    use; a dict is read at once; a source block that is a Mapping but not a dict always
    goes through the member-by-member reader. All three must agree.
    """
    forms: list[Any] = [json.dumps(value, allow_nan=False).encode(), value]
    source = value.get("source")
    if isinstance(source, dict):
        forms.append({**value, "source": MappingProxyType(source)})
    return forms


def screened_sources() -> st.SearchStrategy[dict[str, Any]]:
    """Source blocks that mostly pass the reader's fast path, and some that do not."""
    member = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 2**64),
        st.text(max_size=5),
        st.sampled_from(
            [
                '["24023040","24023128"]',
                '[null,"5"]',
                '["1"]',
                '["",""]',
                '["1",null,"2"]',
                "mysql-bin.000003",
                "a.1",
                "0000002a:00000b10:0003",
                "first",
                "false",
                "-7",
            ]
        ),
    )
    return st.fixed_dictionaries(
        {"connector": st.sampled_from(ENGINES)},
        optional=dict.fromkeys(SOURCE_MEMBERS, member),
    )


class TestLaziness:
    @pytest.mark.parametrize("source", SCREEN_CASES)
    def test_every_input_form_reads_a_source_block_alike(self, source: dict[str, Any]) -> None:
        """Bytes (built on first use), a dict and a Mapping give one event or one error."""
        value = {"op": "u", "before": {"a": 1}, "after": {"a": 2}, "source": source}
        results = [outcome(form) for form in three_forms(value)]
        assert results[0] == results[1] == results[2]

    @settings(max_examples=250, deadline=None)
    @given(screened_sources(), st.sampled_from(["c", "u", "d", "r", "t"]))
    def test_source_blocks_read_alike_in_every_form(self, source: dict[str, Any], op: str) -> None:
        """Any source block: the fast path and the member-by-member reader agree."""
        value = {"op": op, "after": {"id": 1}, "source": source, "ts_ms": 1}
        results = [outcome(form) for form in three_forms(value)]
        assert results[0] == results[1] == results[2]

    @settings(max_examples=300, deadline=None)
    @given(debezium_like())
    def test_debezium_shaped_payloads_read_alike_in_every_form(self, value: dict[str, Any]) -> None:
        """Whole Debezium-shaped payloads: bytes and dicts give the same event or error."""
        try:
            forms = three_forms(value)
        except ValueError:  # NaN or an infinity: not JSON, so no bytes form
            return
        results = [outcome(form) for form in forms]
        assert all(result == results[0] for result in results)

    def test_bad_members_are_refused_when_read_not_when_used(self) -> None:
        """A malformed source member raises from from_debezium(bytes), naming its path."""
        for member, bad in (("lsn", "x"), ("sequence", '["a"]'), ("ts_ms", 1.5)):
            value = pg(**{member: bad})
            with pytest.raises(CDCParseError) as info:
                CDCEvent.from_debezium(json.dumps({"payload": value}).encode())
            assert info.value.path == f"payload.source.{member}"

    def test_lazy_fields_are_computed_once_and_kept(self) -> None:
        """source, event_id, captured_at and position are computed on first use, then kept."""
        event = CDCEvent.from_debezium(json.dumps(pg()).encode())
        assert event.source is event.source
        assert event.event_id is event.event_id
        assert event.captured_at is event.captured_at
        assert event.position is event.position
        assert event == CDCEvent.from_debezium(pg())

    def test_a_null_source_is_built_on_first_use(self) -> None:
        """A record with "source": null read from bytes has the same empty source block."""
        value = {"op": "c", "after": {"id": 1}, "source": None}
        event = CDCEvent.from_debezium(json.dumps(value))
        assert event.source == CDCSourceMetadata("", "", "", "debezium")
        assert event == CDCEvent.from_debezium(value)
        assert event.captured_at is None

    @pytest.mark.parametrize(
        "value",
        [
            pg(sequence='["90","100"]'),
            mysql(),
            sqlserver("0000002a:00000b10:0003", "0000002a:00000b10:0002"),
            mongo(),
            pg(connector="oracle"),
        ],
    )
    def test_concurrent_first_use_gives_equal_values(self, value: dict[str, Any]) -> None:
        """Threads reading the lazy fields of one event at the same moment all see equal values."""
        threads_count = 8
        for _ in range(20):
            event = CDCEvent.from_debezium(json.dumps(value).encode())
            barrier = threading.Barrier(threads_count)
            seen: list[tuple[Any, ...]] = []
            lock = threading.Lock()

            def read(
                event: CDCEvent = event,
                barrier: threading.Barrier = barrier,
                seen: list[tuple[Any, ...]] = seen,
                lock: threading.Lock = lock,
            ) -> None:
                barrier.wait()
                values = (event.event_id, event.source, event.captured_at, event.position)
                with lock:
                    seen.append(values)

            workers = [threading.Thread(target=read) for _ in range(threads_count)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            assert len(seen) == threads_count
            assert all(values == seen[0] for values in seen)
            assert seen[0][0] == CDCEvent.from_debezium(value).event_id

    def test_ids_are_those_of_earlier_versions(self) -> None:
        """Ids are unchanged by the faster reader: pinned values from the first release."""
        value = {
            "op": "u",
            "before": {"id": 1004},
            "after": {"id": 1004, "first_name": "Anne Marie"},
            "source": {
                "version": "2.7.0.Final",
                "connector": "postgresql",
                "name": "PostgreSQL_server",
                "ts_ms": 1559033904863,
                "snapshot": "false",
                "db": "postgres",
                "sequence": '["24023040","24023128"]',
                "schema": "public",
                "table": "customers",
                "txId": 556,
                "lsn": 24023128,
                "xmin": None,
            },
        }
        expected = "67be4852-ff96-51a0-b50e-0e51d7f957da"
        assert CDCEvent.from_debezium(value).event_id == expected
        assert CDCEvent.from_debezium(json.dumps(value).encode()).event_id == expected

    @settings(max_examples=200, deadline=None)
    @given(st.text(max_size=40))
    def test_ids_are_uuid5_as_the_uuid_module_computes_them(self, name: str) -> None:
        """The module's own UUID 5 code gives exactly uuid.uuid5's result."""
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, "interlock.cdc_event/1")
        canonical = json.dumps([name], sort_keys=True, separators=(",", ":"))
        assert cdc_event._uuid5([name]) == str(uuid.uuid5(namespace, canonical))

    @pytest.mark.parametrize(
        "raw",
        [
            b' {"op": "c", "after": {"id": 1}} \n',
            bytearray(b'{"op": "c", "after": {"id": 1}}'),
            memoryview(b'{"op": "c", "after": {"id": 1}}'),
            '\t{"op": "c", "after": {"id": 1}}',
        ],
    )
    def test_json_text_of_every_kind_is_read(self, raw: Any) -> None:
        """Whitespace around the document and bytes-like values are read as before."""
        event = CDCEvent.from_debezium(raw)
        assert event.after == {"id": 1}
        assert event == CDCEvent.from_debezium({"op": "c", "after": {"id": 1}})

    @pytest.mark.parametrize(
        ("raw", "message"),
        [
            (b'{"op": "c"} x', "Extra data"),
            (b"\xff", "utf-8"),
            (b'{"op": NaN}', "NaN"),
            ("[" * 100_000, "valid JSON"),
            (b"", "Expecting value"),
        ],
    )
    def test_bad_json_text_is_reported_as_before(self, raw: Any, message: str) -> None:
        """Invalid JSON text raises CDCParseError at "value" with the decoder's reason."""
        with pytest.raises(CDCParseError, match=message) as info:
            CDCEvent.from_debezium(raw)
        assert info.value.path == "value"


SAMPLE_VALUES: list[Any] = [
    BsonTimestamp(5, 1),
    CDCPosition("mysql", "m1", (3, 154, 0)),
    CDCTransaction("tx", 1, 2),
    CDCMessage("p", b"x"),
    CDCUpdateDescription({"a": 1}, ("b",), (("c", 1),)),
    CDCSourceMetadata("d", "s", "t", "debezium", "5", engine="postgresql", name="n"),
    CDCTransactionEvent(TransactionStatus.END, "t1", 5, 1, (("s.t", 1),)),
    CDCEvent.from_debezium(json.dumps(pg()).encode(), key={"id": 1}),
    CDCEvent.from_debezium(None, key={"id": 1}),
]


class TestValueClasses:
    @pytest.mark.parametrize("value", SAMPLE_VALUES, ids=lambda v: type(v).__name__)
    def test_values_are_frozen_dataclasses_to_the_dataclasses_module(self, value: Any) -> None:
        """fields(), asdict(), replace() and is_dataclass() work on every value type."""
        assert dataclasses.is_dataclass(value)
        names = [f.name for f in dataclasses.fields(value)]
        assert names == list(type(value)._fields)
        copied = dataclasses.replace(value)
        assert copied == value
        assert copied is not value
        assert dataclasses.asdict(value).keys() == set(names)
        with pytest.raises(dataclasses.FrozenInstanceError, match=f"'{names[0]}'"):
            setattr(value, names[0], None)
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete"):
            delattr(value, names[0])

    @pytest.mark.parametrize("value", SAMPLE_VALUES, ids=lambda v: type(v).__name__)
    def test_values_copy_and_pickle(self, value: Any) -> None:
        """copy, deepcopy and pickle give equal values with equal hashes (updated_fields aside)."""
        for again in (
            copy.copy(value),
            copy.deepcopy(value),
            pickle.loads(pickle.dumps(value)),  # noqa: S301 - our own object
            pickle.loads(pickle.dumps(value, protocol=0)),  # noqa: S301 - our own object
        ):
            assert again == value
            assert hash(again) == hash(value)
            assert repr(again) == repr(value)

    @pytest.mark.parametrize("value", SAMPLE_VALUES, ids=lambda v: type(v).__name__)
    def test_values_print_and_compare_as_dataclasses(self, value: Any) -> None:
        """repr is Name(field=value, ...); values of other types are never equal."""
        shown = repr(value)
        assert shown.startswith(f"{type(value).__name__}(")
        first = dataclasses.fields(value)[0].name
        assert f"{first}={getattr(value, first)!r}" in shown
        assert value != object()
        assert (value == object()) is False

    def test_replace_changes_a_field_and_keeps_the_rest(self) -> None:
        """dataclasses.replace() builds a changed copy, as the how-to says."""
        event = CDCEvent.from_debezium(json.dumps(pg()).encode())
        changed = dataclasses.replace(event, after={"id": 1, "email": "c@example.com"})
        assert changed.after == {"id": 1, "email": "c@example.com"}
        assert (changed.event_id, changed.source, changed.captured_at) == (
            event.event_id,
            event.source,
            event.captured_at,
        )
        source = dataclasses.replace(event.source, table="orders")
        assert (source.table, source.position) == ("orders", event.position)

    def test_match_statements_see_the_seed_fields(self) -> None:
        """Positional patterns match the seed's field order."""
        event = CDCEvent.from_debezium(pg())
        assert CDCEvent.__match_args__[:4] == ("operation", "source", "before", "after")
        assert CDCSourceMetadata.__match_args__ == (
            "database",
            "schema",
            "table",
            "connector",
            "lsn",
            "server_id",
        )
        match event:
            case CDCEvent(CDCOperation.UPDATE, CDCSourceMetadata(_, _, table)):
                assert table == "customers"
            case _:
                pytest.fail("the positional pattern did not match")

    def test_timestamps_order_only_among_themselves(self) -> None:
        """BsonTimestamp orders by (time, increment) and refuses other types."""
        early, late = BsonTimestamp(1, 5), BsonTimestamp(2, 0)
        assert early < late
        assert early <= late
        assert late > early
        assert late >= early
        assert sorted([late, early]) == [early, late]
        for compare in (
            lambda: early < 1,
            lambda: early <= 1,
            lambda: early > 1,
            lambda: early >= 1,
        ):
            with pytest.raises(TypeError):
                compare()

    def test_updated_fields_are_not_hashed(self) -> None:
        """CDCUpdateDescription hashes by its tuples; its dict of values is left out."""
        described = CDCUpdateDescription({"a": [1]}, ("b",))
        assert hash(described) == hash(CDCUpdateDescription({"z": 2}, ("b",)))
        assert CDCUpdateDescription().updated_fields == {}
