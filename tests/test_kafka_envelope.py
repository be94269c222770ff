"""interlock.kafka_envelope: records, the CloudEvents Kafka binding, murmur2, dead letters."""

from __future__ import annotations

import base64
import contextlib
import json
import pickle
import struct
import uuid
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interlock.kafka_envelope import (
    DEFAULT_MAX_RECORD_BYTES,
    RECORD_ID_NAMESPACE,
    STRUCTURED_CONTENT_TYPE,
    CloudEventBindingError,
    ContentMode,
    DeadLetterDialect,
    DeadLetterHeaderError,
    DeadLetterInfo,
    InvalidRecordError,
    InvalidTopicError,
    KafkaEnvelopeError,
    KafkaRecord,
    RecordTooLargeError,
    RetryTopicChain,
    UnsupportedSchemaVersionError,
    aggregate_key,
    check_schema_version,
    content_mode,
    dead_letter_record,
    dead_letter_topic,
    from_record,
    murmur2,
    partition_for,
    record_event_id,
    to_record,
    validate_topic,
)

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
if not VECTORS.is_dir():  # a checkout with shared/ beside it, or inside it
    VECTORS = Path(__file__).resolve().parents[1] / "shared" / "vectors"


def vector(name: str) -> Any:
    """Load one vector file from ../shared/vectors."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


DEAD_LETTER = vector("brokers/dead-letter-headers.json")
KAFKA_EXAMPLES = vector("cloudevents/ce-1.0.2-kafka-binding-examples.json")
CONFORMANCE_KAFKA = [
    c for c in vector("cloudevents/conformance-features.json")["cases"] if c["binding"] == "kafka"
]

EVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "ord-1001",
    "source": "/shop/orders",
    "type": "com.example.order.created",
    "time": "2026-11-22T09:00:00Z",
    "datacontenttype": "application/json",
    "data": {"order_id": "1001", "total": "49.90"},
}


def headers_of(record: KafkaRecord) -> dict[str, bytes | None]:
    """The record's headers as a dict (the tests only use this when names are unique)."""
    return dict(record.headers)


# --------------------------------------------------------------------------------------
# Vectors: CloudEvents Kafka binding examples and conformance features
# --------------------------------------------------------------------------------------


def test_binding_example_binary_mode_reads_the_spec_headers() -> None:
    """The spec's binary-mode example: ce_ headers become attributes, Avro data stays bytes."""
    expect = KAFKA_EXAMPLES["expect"]
    avro = b"\x02\x06abc"  # "... application data encoded in Avro ..."
    record = KafkaRecord(
        expect["topic"],
        avro,
        key=expect["key"].encode(),
        headers=[(k, v.encode()) for k, v in expect["binary_mode_headers"].items()],
    )
    assert content_mode(record) is ContentMode.BINARY
    event = from_record(record)
    headers = expect["binary_mode_headers"]
    assert event == {
        "specversion": headers["ce_specversion"],
        "type": headers["ce_type"],
        "source": headers["ce_source"],
        "id": headers["ce_id"],
        "time": headers["ce_time"],
        "datacontenttype": headers["content-type"],
        "data_base64": base64.b64encode(avro).decode(),
    }


def test_binding_example_binary_mode_is_written_with_the_spec_headers() -> None:
    """Writing the example event in binary mode gives exactly the spec's header set and key."""
    expect = KAFKA_EXAMPLES["expect"]
    h = expect["binary_mode_headers"]
    event = {
        "specversion": h["ce_specversion"],
        "type": h["ce_type"],
        "source": h["ce_source"],
        "id": h["ce_id"],
        "time": h["ce_time"],
        "datacontenttype": h["content-type"],
        "data_base64": base64.b64encode(b"avro").decode(),
    }
    record = to_record(event, expect["topic"], key=expect["key"])
    assert record.topic == "mytopic"
    assert record.key == b"mykey"
    assert record.value == b"avro"
    assert {k: v.decode() for k, v in record.headers if v is not None} == h


def test_binding_example_structured_content_type_is_the_spec_value() -> None:
    """Structured mode writes the content type of the spec's example, and reads it back."""
    expect = KAFKA_EXAMPLES["expect"]
    assert expect["structured_content_type"] == STRUCTURED_CONTENT_TYPE
    event = {
        "specversion": "1.0",
        "type": "com.example.someevent",
        "source": "/mycontext/subcontext",
        "id": "1234-1234-1234",
        "time": "2018-04-05T03:56:24Z",
        "datacontenttype": "application/xml",
        "data": '<much wow="xml"/>',
    }
    record = to_record(event, expect["topic"], key=expect["key"], mode=ContentMode.STRUCTURED)
    assert headers_of(record) == {"content-type": STRUCTURED_CONTENT_TYPE.encode()}
    assert content_mode(record) is ContentMode.STRUCTURED
    assert json.loads(record.value or b"") == event
    assert from_record(record) == event


@pytest.mark.parametrize("case", CONFORMANCE_KAFKA, ids=[c["name"] for c in CONFORMANCE_KAFKA])
def test_conformance_kafka_case(case: dict[str, Any]) -> None:
    """Each Kafka scenario of the CloudEvents conformance suite reads as the suite expects."""
    record = KafkaRecord(
        "mytopic",
        case["value"].encode(),
        headers=[(k, v.encode()) for k, v in case["headers"].items()],
    )
    assert content_mode(record).value == case["mode"]  # type: ignore[union-attr]
    event = from_record(record)
    data = event.pop("data")
    assert event == case["expect_attributes"]
    assert data == case["expect_data_json"]


@pytest.mark.parametrize("case", CONFORMANCE_KAFKA, ids=[c["name"] for c in CONFORMANCE_KAFKA])
def test_conformance_kafka_case_round_trips_in_both_modes(case: dict[str, Any]) -> None:
    """The conformance events survive being written again in binary and in structured mode."""
    record = KafkaRecord(
        "mytopic",
        case["value"].encode(),
        headers=[(k, v.encode()) for k, v in case["headers"].items()],
    )
    event = from_record(record)
    for mode in ContentMode:
        assert from_record(to_record(event, "mytopic", mode=mode)) == event


# --------------------------------------------------------------------------------------
# Binary and structured mode behaviour
# --------------------------------------------------------------------------------------


def test_binary_mode_puts_attributes_in_ce_headers_and_data_in_the_value() -> None:
    """Binary mode: ce_ headers with UTF-8 values, content-type, compact JSON data."""
    record = to_record({**EVENT, "sequence": 7, "sampled": True}, "orders")
    assert record.value == b'{"order_id":"1001","total":"49.90"}'
    assert record.headers == (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"ord-1001"),
        ("ce_source", b"/shop/orders"),
        ("ce_type", b"com.example.order.created"),
        ("ce_time", b"2026-11-22T09:00:00Z"),
        ("ce_sequence", b"7"),
        ("ce_sampled", b"true"),
        ("content-type", b"application/json"),
    )
    back = from_record(record)
    assert back["sequence"] == "7"  # binary headers are strings: the canonical text
    assert back["sampled"] == "true"


def test_binary_mode_without_data_is_a_tombstone_but_structured_is_not() -> None:
    """No data: a None value in binary mode (a tombstone), a full value in structured mode."""
    event = {k: v for k, v in EVENT.items() if k != "data"}
    binary = to_record(event, "orders")
    assert binary.value is None
    assert from_record(binary) == event
    structured = to_record(event, "orders", mode=ContentMode.STRUCTURED)
    assert structured.value is not None
    assert from_record(structured) == event


def test_binary_mode_keeps_explicit_null_json_data_apart_from_no_data() -> None:
    """ "data": null with a JSON type is the value b"null", distinct from no data at all."""
    record = to_record({**EVENT, "data": None}, "orders")
    assert record.value == b"null"
    assert from_record(record) == {**EVENT, "data": None}


def test_binary_mode_sends_json_data_without_datacontenttype_as_application_json() -> None:
    """JSON data without datacontenttype gets content-type application/json (made explicit)."""
    event = {k: v for k, v in EVENT.items() if k != "datacontenttype"}
    record = to_record(event, "orders")
    assert headers_of(record)["content-type"] == b"application/json"
    assert from_record(record) == {**event, "datacontenttype": "application/json"}
    structured = to_record(event, "orders", mode=ContentMode.STRUCTURED)
    assert from_record(structured) == event  # structured mode is exact


def test_binary_mode_text_data_uses_its_charset() -> None:
    """str data with a textual type is encoded in its charset and decoded back to str."""
    event = {**EVENT, "datacontenttype": "text/plain; charset=latin-1", "data": "café"}
    record = to_record(event, "orders")
    assert record.value == "café".encode("latin-1")
    assert from_record(record) == event


def test_binary_mode_bytes_without_content_type_stay_base64() -> None:
    """data_base64 without datacontenttype: raw value, no content-type, read back as Base64."""
    event = {k: v for k, v in EVENT.items() if k not in ("data", "datacontenttype")}
    event["data_base64"] = base64.b64encode(b"\x00\xff").decode()
    record = to_record(event, "orders")
    assert record.value == b"\x00\xff"
    assert "content-type" not in headers_of(record)
    assert from_record(record) == event


@pytest.mark.parametrize(
    ("event", "attribute"),
    [
        ({**EVENT, "datacontenttype": "text/plain", "data": None}, "data"),
        ({**EVENT, "datacontenttype": "application/json; charset=utf-16"}, "datacontenttype"),
        ({**EVENT, "datacontenttype": "text/plain; charset=ascii", "data": "é"}, "data"),
        ({**EVENT, "datacontenttype": "text/plain; charset=nope", "data": "x"}, "data"),
        ({**EVENT, "data": float("nan")}, "data"),
    ],
)
def test_binary_mode_refuses_what_it_cannot_carry(event: dict[str, Any], attribute: str) -> None:
    """Events binary mode cannot carry are refused with the attribute named."""
    with pytest.raises(CloudEventBindingError) as info:
        to_record(event, "orders")
    assert info.value.attribute == attribute


def test_partitionkey_becomes_the_record_key_and_stays_in_the_event() -> None:
    """The partitionkey extension is the default key and is still sent as an attribute."""
    record = to_record({**EVENT, "partitionkey": "order:1001"}, "orders")
    assert record.key == b"order:1001"
    assert headers_of(record)["ce_partitionkey"] == b"order:1001"
    assert to_record({**EVENT, "partitionkey": "x"}, "orders", key=b"k").key == b"k"
    assert to_record(EVENT, "orders", key="ключ").key == "ключ".encode()
    assert to_record(EVENT, "orders").key is None


def test_to_record_places_extra_headers_partition_and_timestamp() -> None:
    """Extra headers follow the binding's; partition and timestamp are kept."""
    record = to_record(
        EVENT, "orders", headers=[("traceparent", b"00-ab")], partition=2, timestamp_ms=5
    )
    assert record.headers[-1] == ("traceparent", b"00-ab")
    assert (record.partition, record.timestamp_ms) == (2, 5)
    structured = to_record(
        EVENT, "orders", mode=ContentMode.STRUCTURED, headers={"traceparent": b"00-ab"}
    )
    assert structured.headers == (
        ("content-type", STRUCTURED_CONTENT_TYPE.encode()),
        ("traceparent", b"00-ab"),
    )


@pytest.mark.parametrize("name", ["content-type", "ce_id", "ce_extra"])
def test_to_record_refuses_extra_headers_that_belong_to_the_binding(name: str) -> None:
    """content-type and ce_ headers cannot be smuggled in beside the event."""
    with pytest.raises(CloudEventBindingError) as info:
        to_record(EVENT, "orders", headers=[(name, b"x")])
    assert info.value.attribute == name


@pytest.mark.parametrize(
    ("change", "attribute"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"specversion": None}, "specversion"),
        ({"id": None}, "id"),
        ({"id": ""}, "id"),
        ({"id": 5}, "id"),
        ({"type": "a\x00b"}, "type"),
        ({"source": "http://exa mple"}, "source"),
        ({"source": "1http:x"}, "source"),
        ({"time": "yesterday"}, "time"),
        ({"datacontenttype": "json"}, "datacontenttype"),
        ({"dataschema": "/relative"}, "dataschema"),
        ({"subject": ""}, "subject"),
        ({"subject": None}, "subject"),
        ({"Bad": "x"}, "Bad"),
        ({"n": 2**31}, "n"),
        ({"n": 1.5}, "n"),
        ({"n": "\ud800"}, "n"),
        ({"data_base64": "AA=="}, "data_base64"),
        ({"datacontenttype": "text/plain", "data": {"a": 1}}, "data"),
    ],
)
def test_invalid_events_are_refused_naming_the_attribute(
    change: dict[str, Any], attribute: str
) -> None:
    """Each CloudEvents rule broken gives CloudEventBindingError naming the attribute."""
    event = {**EVENT, **change}
    for mode in ContentMode:
        with pytest.raises(CloudEventBindingError) as info:
            to_record(event, "orders", mode=mode)
        assert info.value.attribute == attribute


def test_invalid_base64_and_non_mapping_events_are_refused() -> None:
    """Malformed data_base64 and an event that is not a mapping are binding errors."""
    event = {k: v for k, v in EVENT.items() if k != "data"}
    with pytest.raises(CloudEventBindingError, match="Base64"):
        to_record({**event, "data_base64": "!!"}, "orders")
    with pytest.raises(CloudEventBindingError, match="Base64"):
        to_record({**event, "data_base64": 5}, "orders")
    with pytest.raises(CloudEventBindingError, match="mapping"):
        to_record(["not", "an", "event"], "orders")  # type: ignore[arg-type]
    with pytest.raises(CloudEventBindingError, match="must be str"):
        to_record({**EVENT, 1: "x"}, "orders")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="ContentMode"):
        to_record(EVENT, "orders", mode="binary")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "value", "attribute"),
    [
        ([("content-type", b"application/cloudevents-batch+json")], b"[]", "content-type"),
        ([("content-type", b"application/cloudevents+avro")], b"x", "content-type"),
        (
            [("content-type", b"application/cloudevents+json; charset=latin-1")],
            b"{}",
            "content-type",
        ),
        ([("content-type", b"application/cloudevents+json")], None, "value"),
        ([("content-type", b"application/cloudevents+json")], b"[1]", "value"),
        ([("content-type", b"application/cloudevents+json")], b"{bad", "value"),
        ([("content-type", b"application/cloudevents+json")], b'{"a": NaN}', "value"),
        ([("content-type", b"a/b"), ("content-type", b"a/b")], b"x", "content-type"),
        ([("content-type", None)], b"x", "content-type"),
        ([("content-type", b"\xff")], b"x", "content-type"),
        ([("ce_id", b"1"), ("ce_id", b"2")], None, "ce_id"),
        ([("ce_data", b"1")], None, "ce_data"),
        ([("ce_datacontenttype", b"a/b")], None, "ce_datacontenttype"),
        ([("ce_id", None)], None, "ce_id"),
        ([("ce_id", b"\xc3")], None, "ce_id"),
        ([("ce_specversion", b"1.0"), ("content-type", b"application/json")], b"{", "value"),
        (
            [("ce_specversion", b"1.0"), ("content-type", b"application/json; charset=utf-16")],
            b"{}",
            "content-type",
        ),
        ([("ce_specversion", b"1.0"), ("content-type", b"text/plain")], b"\xff", "value"),
        (
            [("ce_specversion", b"1.0"), ("content-type", b"text/plain; charset=nope")],
            b"x",
            "value",
        ),
        ([("ce_specversion", b"1.0")], None, "id"),
        ([], b"plain bytes", "specversion"),
    ],
)
def test_from_record_refuses_records_that_are_not_valid_cloudevents(
    headers: list[tuple[str, bytes | None]], value: bytes | None, attribute: str
) -> None:
    """Each malformed record is refused with the header or attribute at fault named."""
    with pytest.raises(CloudEventBindingError) as info:
        from_record(KafkaRecord("orders", value, headers=headers))
    assert info.value.attribute == attribute


def test_structured_mode_reads_null_attributes_as_absent_and_keeps_null_data() -> None:
    """A null attribute is absent; "data": null is kept."""
    body = json.dumps({**EVENT, "subject": None, "data": None}).encode()
    record = KafkaRecord(
        "orders", body, headers=[("content-type", b"application/cloudevents+json")]
    )
    assert from_record(record) == {**EVENT, "data": None}


def test_content_mode_detects_the_mode_or_none() -> None:
    """content_mode: CloudEvents media type -> structured, ce_specversion -> binary, else None."""
    assert content_mode(
        KafkaRecord("t", headers=[("content-type", b"APPLICATION/CloudEvents+json")])
    ) is (ContentMode.STRUCTURED)
    assert (
        content_mode(KafkaRecord("t", headers=[("ce_specversion", b"1.0")])) is ContentMode.BINARY
    )
    assert (
        content_mode(KafkaRecord("t", b"{}", headers=[("content-type", b"application/json")]))
        is None
    )


def test_from_record_needs_a_record() -> None:
    """from_record refuses anything but a KafkaRecord with a TypeError pointing to from_client."""
    with pytest.raises(TypeError, match="from_client"):
        from_record({"topic": "x"})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Hypothesis: every valid event round-trips
# --------------------------------------------------------------------------------------

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn")),
    min_size=1,
    max_size=12,
)
SOURCES = st.sampled_from(["/shop/orders", "https://example.com/x?y=1#f", "urn:isbn:123", "a%20b"])
TIMES = st.datetimes(timezones=st.just(timezone.utc)).map(
    lambda d: (
        f"{d.year:04d}-"
        + d.strftime("%m-%dT%H:%M:%S")
        + (f".{d.microsecond:06d}" if d.microsecond else "")
        + "Z"
    )
)
EXT_NAMES = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(
    lambda n: (
        n
        not in {
            "specversion",
            "id",
            "source",
            "type",
            "datacontenttype",
            "dataschema",
            "subject",
            "time",
            "data",
        }
    )
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def events(draw: st.DrawFn, *, binary: bool) -> dict[str, Any]:
    """Valid events; with binary=True, in the canonical form binary mode keeps exactly."""
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(TEXT),
        "source": draw(SOURCES),
        "type": draw(TEXT),
    }
    if draw(st.booleans()):
        event["time"] = draw(TIMES)
    if draw(st.booleans()):
        event["subject"] = draw(TEXT)
    if draw(st.booleans()):
        event["dataschema"] = "https://example.com/schema.json"
    values = TEXT if binary else TEXT | st.integers(-(2**31), 2**31 - 1) | st.booleans()
    event.update(draw(st.dictionaries(EXT_NAMES, values, max_size=3)))
    kind = draw(st.sampled_from(["json", "text", "bytes", "none"]))
    if kind == "json":
        if binary or draw(st.booleans()):
            event["datacontenttype"] = draw(
                st.sampled_from(["application/json", "application/vnd.x+json; charset=utf-8"])
            )
        event["data"] = draw(JSON_VALUES)
    elif kind == "text":
        event["datacontenttype"] = draw(st.sampled_from(["text/plain", "application/xml"]))
        event["data"] = draw(st.text(st.characters(codec="utf-8"), max_size=10))
    elif kind == "bytes":
        if draw(st.booleans()):
            event["datacontenttype"] = "application/octet-stream"
        event["data_base64"] = base64.b64encode(draw(st.binary(max_size=20))).decode()
    elif draw(st.booleans()):
        event["datacontenttype"] = "application/json"
    return event


@settings(max_examples=300, deadline=None)
@given(events(binary=True))
def test_binary_mode_round_trips_every_canonical_event(event: dict[str, Any]) -> None:
    """from_record(to_record(e)) == e in binary mode, for every event in canonical form."""
    record = to_record(event, "orders")
    assert from_record(record) == event
    assert from_record(KafkaRecord(**record.to_producer_kwargs())) == event


@settings(max_examples=300, deadline=None)
@given(events(binary=False))
def test_structured_mode_round_trips_every_valid_event(event: dict[str, Any]) -> None:
    """from_record(to_record(e, STRUCTURED)) == e exactly, typed extensions included."""
    assert from_record(to_record(event, "orders", mode=ContentMode.STRUCTURED)) == event


@settings(max_examples=200, deadline=None)
@given(events(binary=False))
def test_binary_mode_keeps_every_event_up_to_its_canonical_form(event: dict[str, Any]) -> None:
    """Any valid event read back from binary mode re-encodes to the same record."""
    record = to_record(event, "orders")
    again = to_record(from_record(record), "orders")
    assert again.value == record.value
    assert again.headers == record.headers


# --------------------------------------------------------------------------------------
# Fuzz: consume parsers raise only the module's own errors
# --------------------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_x", "content-type", "other"]
) | st.text(min_size=1, max_size=6)
HEADER_VALUES = (
    st.none()
    | st.binary(max_size=12)
    | st.sampled_from(
        [
            b"1.0",
            b"/s",
            b"application/json",
            b"application/cloudevents+json",
            b"text/plain; charset=utf-16",
            b"2018-04-05T03:56:24Z",
        ]
    )
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8),
    st.none() | st.binary(max_size=30) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.booleans(),
)
def test_fuzz_from_record_raises_only_module_errors(
    headers: list[tuple[str, bytes | None]], value: bytes | None, fill: bool
) -> None:
    """Arbitrary headers and values give an event or a KafkaEnvelopeError, nothing else."""
    try:
        record = KafkaRecord("t", value, headers=headers, partition=0, offset=1)
    except InvalidRecordError:
        return
    try:
        event = from_record(record, supported_majors={1}, fill_missing_id=fill)
    except KafkaEnvelopeError:
        return
    assert event["specversion"] == "1.0"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    *(f"__connect.errors.{h}" for h in ("topic", "partition", "offset", "task.id")),
                    *DEAD_LETTER["spring_kafka"]["headers"],
                    "x",
                ]
            ),
            st.none() | st.binary(max_size=9) | st.sampled_from([b"orders", b"12", b"-1"]),
        ),
        max_size=8,
    ),
    st.sampled_from([None, *DeadLetterDialect]),
)
def test_fuzz_dead_letter_headers_raise_only_module_errors(
    headers: list[tuple[str, bytes | None]], dialect: DeadLetterDialect | None
) -> None:
    """Arbitrary dead-letter headers give a DeadLetterInfo or a KafkaEnvelopeError."""
    try:
        info = DeadLetterInfo.from_headers(headers, dialect=dialect)
    except KafkaEnvelopeError:
        return
    assert info.topic


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=8))
def test_fuzz_to_record_raises_only_module_errors(event: dict[str, Any]) -> None:
    """Arbitrary dicts given as events give a record or a KafkaEnvelopeError."""
    full = {"specversion": "1.0", "id": "i", "source": "/s", "type": "t", **event}
    for mode in ContentMode:
        with contextlib.suppress(KafkaEnvelopeError):
            to_record(full, "t", mode=mode)


# --------------------------------------------------------------------------------------
# Schema version
# --------------------------------------------------------------------------------------


def test_schema_version_of_a_known_major_is_accepted_in_both_modes() -> None:
    """A schemaversion whose major is supported passes; minor and patch do not matter."""
    for version in ("2", "2.1", "2.1.9", "v2"):
        for mode in ContentMode:
            record = to_record({**EVENT, "schemaversion": version}, "orders", mode=mode)
            assert from_record(record, supported_majors={1, 2})["schemaversion"] == version
    assert check_schema_version(2, [2]) == 2
    assert check_schema_version(None, [2]) is None


def test_unknown_major_is_refused_naming_seen_and_supported() -> None:
    """An unknown major raises UnsupportedSchemaVersionError with the versions named."""
    record = to_record({**EVENT, "schemaversion": "3.0"}, "orders")
    with pytest.raises(UnsupportedSchemaVersionError) as info:
        from_record(record, supported_majors=[2, 1])
    assert info.value.seen == "3.0"
    assert info.value.supported == (1, 2)
    assert "'3.0'" in str(info.value)
    assert "1, 2" in str(info.value)
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.supported == (1, 2)


@pytest.mark.parametrize("version", ["two", "2.x", "", "1.2.3.4", -1, True, 1.5])
def test_malformed_schema_versions_are_refused(version: object) -> None:
    """A version that is not MAJOR[.MINOR[.PATCH]] is refused, never guessed."""
    with pytest.raises(UnsupportedSchemaVersionError, match="MAJOR"):
        check_schema_version(version, {1, 2})


def test_missing_schema_version_is_refused_only_when_required() -> None:
    """No schemaversion passes, unless require_schema_version is set."""
    record = to_record(EVENT, "orders")
    assert from_record(record, supported_majors={1}) == EVENT
    with pytest.raises(UnsupportedSchemaVersionError, match="no schema version") as info:
        from_record(record, supported_majors={1}, require_schema_version=True)
    assert info.value.seen is None


@pytest.mark.parametrize("majors", ["12", 5, [1, "2"], [True]])
def test_supported_majors_must_be_ints(majors: object) -> None:
    """supported_majors that is not a collection of ints is a TypeError."""
    with pytest.raises(TypeError, match="supported_majors"):
        check_schema_version("1", majors)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# Partitioning
# --------------------------------------------------------------------------------------

# org.apache.kafka.common.utils.UtilsTest.testMurmur2, apache/kafka commit
# f55581dc73953c3509a4702433aeeeddc2970779, clients/src/test/java/org/apache/kafka/common/
# utils/UtilsTest.java (the values the Java client must return).
KAFKA_MURMUR2 = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (bytes([ord("a"), ord("b"), ord("c")]), 479470107),
]


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2)
def test_murmur2_matches_kafkas_own_test_values(data: bytes, expected: int) -> None:
    """murmur2 returns exactly the signed values of Kafka's UtilsTest.testMurmur2."""
    assert murmur2(data) == expected
    assert murmur2(bytearray(data)) == expected


@pytest.mark.parametrize(("data", "expected"), KAFKA_MURMUR2)
def test_partition_for_is_to_positive_modulo(data: bytes, expected: int) -> None:
    """partition_for = (murmur2 & 0x7fffffff) % partitions, for several partition counts."""
    for partitions in (1, 3, 12, 50, 1000):
        assert partition_for(data, partitions) == (expected & 0x7FFFFFFF) % partitions
    assert partition_for(b"foobar", 10) == 6  # 1357151166 % 10


def test_partition_for_checks_its_arguments() -> None:
    """No key, a non-int or a zero partition count are refused."""
    with pytest.raises(TypeError, match="keyless"):
        partition_for(None, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="partitions"):
        partition_for(b"k", 0)
    with pytest.raises(TypeError, match="partitions"):
        partition_for(b"k", True)
    with pytest.raises(TypeError, match="bytes"):
        murmur2("text")  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.binary(max_size=64), st.integers(1, 500))
def test_partition_for_is_always_in_range(key: bytes, partitions: int) -> None:
    """Every key maps into [0, partitions), and murmur2 fits a signed 32-bit int."""
    assert 0 <= partition_for(key, partitions) < partitions
    assert -(2**31) <= murmur2(key) < 2**31


def test_aggregate_key_is_stable_and_injective() -> None:
    """aggregate_key joins escaped parts, so different part lists never collide."""
    assert aggregate_key("order", 1001) == b"order:1001"
    assert aggregate_key("a:b", "c") != aggregate_key("a", "b:c")
    assert aggregate_key("a%3Ab") != aggregate_key("a:b")
    assert aggregate_key("é") == "é".encode()


@settings(deadline=None)
@given(st.lists(st.text(max_size=5) | st.integers(), min_size=1, max_size=4))
def test_aggregate_key_never_collides(parts: list[str | int]) -> None:
    """Unescaping the key gives back the parts' text (hence no collisions)."""
    try:
        key = aggregate_key(*parts)
    except ValueError:  # a lone surrogate cannot be UTF-8
        return
    pieces = [p.replace("%3A", ":").replace("%25", "%") for p in key.decode().split(":")]
    assert pieces == [str(p) for p in parts]


@pytest.mark.parametrize("parts", [(), (1.5,), (True,), (None,)])
def test_aggregate_key_refuses_unstable_parts(parts: tuple[Any, ...]) -> None:
    """No parts, floats, bools and None are refused."""
    with pytest.raises((TypeError, ValueError)):
        aggregate_key(*parts)


# --------------------------------------------------------------------------------------
# Records, topics, ids, sizes
# --------------------------------------------------------------------------------------


def test_record_keeps_duplicate_headers_in_order() -> None:
    """Headers are a tuple of pairs: duplicates kept, order kept; header() is the last."""
    record = KafkaRecord("t", b"v", headers=[("a", b"1"), ("b", None), ("a", bytearray(b"2"))])
    assert record.headers == (("a", b"1"), ("b", None), ("a", b"2"))
    assert record.header("a") == b"2"
    assert record.header_values("a") == [b"1", b"2"]
    assert record.header("zz") is None
    assert KafkaRecord("t", memoryview(b"v")).value == b"v"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"value": "text"}, "value"),
        ({"key": 5}, "key"),
        ({"headers": "ab"}, "headers"),
        ({"headers": [("a",)]}, "headers[0]"),
        ({"headers": [(1, b"x")]}, "headers[0]"),
        ({"headers": [("", b"x")]}, "headers[0]"),
        ({"headers": [("\ud800", b"x")]}, "headers[0]"),
        ({"headers": [("a", "text")]}, "headers[0]"),
        ({"partition": -1}, "partition"),
        ({"offset": "1"}, "offset"),
        ({"timestamp_ms": True}, "timestamp_ms"),
        ({"timestamp_type": "Later"}, "timestamp_type"),
    ],
)
def test_record_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A malformed record field raises InvalidRecordError naming it."""
    with pytest.raises(InvalidRecordError) as info:
        KafkaRecord("t", **kwargs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.field == field


@pytest.mark.parametrize(
    ("topic", "ok"),
    [
        ("orders", True),
        ("a.b_c-D9", True),
        ("x" * 249, True),
        ("x" * 250, False),
        ("", False),
        (".", False),
        ("..", False),
        ("...", True),
        ("a b", False),
        ("ordérs", False),
        ("a/b", False),
    ],
)
def test_topic_names_follow_kafkas_rules(topic: str, ok: bool) -> None:
    """Legal chars [a-zA-Z0-9._-], at most 249, not '.' or '..'."""
    if ok:
        assert validate_topic(topic) == topic
        KafkaRecord(topic)
    else:
        with pytest.raises(InvalidTopicError) as info:
            validate_topic(topic)
        assert info.value.topic == topic
        with pytest.raises(InvalidTopicError):
            KafkaRecord(topic)


def test_non_str_topic_is_refused() -> None:
    """A topic that is not a str is an InvalidTopicError (pickles with its attributes)."""
    with pytest.raises(InvalidTopicError, match="str") as info:
        validate_topic(b"orders")  # type: ignore[arg-type]
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.rule == info.value.rule


def test_size_limit_counts_key_value_and_headers() -> None:
    """size_bytes counts key, value, UTF-8 header keys and values; check_size enforces it."""
    record = KafkaRecord("t", b"12345", key=b"k", headers=[("é", b"xy"), ("n", None)])
    assert record.size_bytes == 5 + 1 + 2 + 2 + 1
    assert record.check_size(11) is record
    with pytest.raises(RecordTooLargeError) as info:
        record.check_size(10)
    assert (info.value.size, info.value.limit) == (11, 10)
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.limit == 10
    with pytest.raises(ValueError, match="max_record_bytes"):
        record.check_size(0)


def test_to_record_enforces_the_size_limit() -> None:
    """A record over max_record_bytes (default 1 MiB) is refused before it reaches a client."""
    big = {**EVENT, "data": "x" * DEFAULT_MAX_RECORD_BYTES}
    with pytest.raises(RecordTooLargeError):
        to_record(big, "orders")
    with pytest.raises(RecordTooLargeError):
        to_record(EVENT, "orders", max_record_bytes=50, headers=[("é", b"x")])
    with pytest.raises(ValueError, match="max_record_bytes"):
        to_record(EVENT, "orders", max_record_bytes=-1)


def test_to_record_validates_key_partition_and_timestamp() -> None:
    """A bad key, partition or timestamp is an InvalidRecordError naming it."""
    with pytest.raises(InvalidRecordError, match="key"):
        to_record(EVENT, "orders", key="\ud800")
    with pytest.raises(InvalidRecordError, match="key"):
        to_record(EVENT, "orders", key=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidRecordError, match="partition"):
        to_record(EVENT, "orders", partition=-2)
    with pytest.raises(InvalidRecordError, match="timestamp_ms"):
        to_record(EVENT, "orders", timestamp_ms=-2)
    with pytest.raises(InvalidTopicError):
        to_record(EVENT, "bad topic")


def test_record_event_id_is_a_uuid5_of_the_coordinates() -> None:
    """The derived id is uuid5(RECORD_ID_NAMESPACE, "topic/partition/offset"), stable."""
    record = KafkaRecord("orders", b"{}", partition=3, offset=42)
    expected = str(uuid.uuid5(uuid.UUID(RECORD_ID_NAMESPACE), "orders/3/42"))
    assert record_event_id(record) == expected
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "urn:interlock:kafka_envelope:record")
    assert str(namespace) == RECORD_ID_NAMESPACE
    assert record_event_id(KafkaRecord("orders", partition=3, offset=43)) != expected
    with pytest.raises(InvalidRecordError, match="partition"):
        record_event_id(KafkaRecord("orders"))
    with pytest.raises(InvalidRecordError) as info:
        record_event_id(KafkaRecord("orders", partition=1))
    assert info.value.field == "offset"
    with pytest.raises(TypeError):
        record_event_id("orders")  # type: ignore[arg-type]


def test_fill_missing_id_uses_the_derived_id() -> None:
    """A consumed record without ce_id gets the deterministic id when asked, else is refused."""
    event = {k: v for k, v in EVENT.items() if k != "id"}
    headers = [
        (f"ce_{k}", v.encode()) for k, v in event.items() if k not in ("data", "datacontenttype")
    ]
    record = KafkaRecord(
        "orders",
        b"{}",
        headers=[*headers, ("content-type", b"application/json")],
        partition=0,
        offset=7,
    )
    with pytest.raises(CloudEventBindingError, match="id"):
        from_record(record)
    first = from_record(record, fill_missing_id=True)
    assert first["id"] == record_event_id(record) == from_record(record, fill_missing_id=True)["id"]


# --------------------------------------------------------------------------------------
# Client shapes
# --------------------------------------------------------------------------------------


class FakeConfluentMessage:
    """The methods of a confluent_kafka.Message that from_client reads."""

    def __init__(
        self, *, error: object = None, stamp: tuple[int, int] = (1, 1700000000000)
    ) -> None:
        self._error = error
        self._stamp = stamp

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 10

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> list[tuple[str, bytes]] | None:
        return [("h", b"1")]

    def timestamp(self) -> tuple[int, int]:
        return self._stamp

    def error(self) -> object:
        return self._error


class FakeConsumerRecord:
    """The attributes of a kafka-python / aiokafka ConsumerRecord."""

    def __init__(self, **changes: Any) -> None:
        self.topic = "orders"
        self.partition = 1
        self.offset = 5
        self.timestamp = 1700000000000
        self.timestamp_type = 1
        self.key = None
        self.value = b"v"
        self.headers = [("h", b"1")]
        self.__dict__.update(changes)


def test_from_client_reads_a_confluent_message() -> None:
    """A confluent-kafka Message (methods) becomes a KafkaRecord with the timestamp type."""
    record = KafkaRecord.from_client(FakeConfluentMessage())
    assert record == KafkaRecord(
        "orders",
        b"v",
        key=b"k",
        headers=(("h", b"1"),),
        partition=2,
        offset=10,
        timestamp_ms=1700000000000,
        timestamp_type="CreateTime",
    )
    log_append = KafkaRecord.from_client(FakeConfluentMessage(stamp=(2, 5)))
    assert (log_append.timestamp_ms, log_append.timestamp_type) == (5, "LogAppendTime")
    none = KafkaRecord.from_client(FakeConfluentMessage(stamp=(0, -1)))
    assert (none.timestamp_ms, none.timestamp_type) == (None, None)


def test_from_client_refuses_a_confluent_error_event() -> None:
    """A confluent Message carrying an error is not a record."""
    with pytest.raises(InvalidRecordError, match="_PARTITION_EOF"):
        KafkaRecord.from_client(FakeConfluentMessage(error="KafkaError{_PARTITION_EOF}"))


def test_from_client_reads_a_kafka_python_consumer_record() -> None:
    """A kafka-python ConsumerRecord (attributes) becomes a KafkaRecord; -1 means unknown."""
    record = KafkaRecord.from_client(FakeConsumerRecord())
    assert (record.topic, record.partition, record.offset, record.value) == ("orders", 1, 5, b"v")
    assert (record.timestamp_ms, record.timestamp_type) == (1700000000000, "LogAppendTime")
    unknown = KafkaRecord.from_client(
        FakeConsumerRecord(timestamp=-1, timestamp_type=0, headers=None)
    )
    assert (unknown.timestamp_ms, unknown.timestamp_type, unknown.headers) == (None, None, ())
    with pytest.raises(InvalidRecordError, match="value"):
        KafkaRecord.from_client(FakeConsumerRecord(value="deserialized"))
    with pytest.raises(TypeError, match="no topic"):
        KafkaRecord.from_client(object())


def test_to_producer_kwargs_fits_both_clients() -> None:
    """confluent-kafka gets `timestamp`, kafka-python `timestamp_ms`; unset fields are left out."""
    record = KafkaRecord(
        "orders", b"v", key=b"k", headers=[("h", b"1")], partition=3, timestamp_ms=9
    )
    assert record.to_producer_kwargs() == {
        "topic": "orders",
        "value": b"v",
        "key": b"k",
        "headers": [("h", b"1")],
        "partition": 3,
        "timestamp": 9,
    }
    assert record.to_producer_kwargs(client="kafka-python")["timestamp_ms"] == 9
    assert "partition" not in KafkaRecord("orders").to_producer_kwargs()
    with pytest.raises(ValueError, match="client"):
        record.to_producer_kwargs(client="pykafka")


# --------------------------------------------------------------------------------------
# Dead letters: vectors
# --------------------------------------------------------------------------------------

CONNECT_INFO = DeadLetterInfo(
    DeadLetterDialect.KAFKA_CONNECT,
    "orders",
    3,
    42,
    "org.apache.kafka.connect.errors.DataException",
    "Converting byte[] to Kafka Connect data failed",
    "org.apache.kafka.connect.errors.DataException: ...\n\tat ...",
    connector_name="orders-sink",
    task_id=0,
    stage="VALUE_CONVERTER",
    class_name="org.apache.kafka.connect.json.JsonConverter",
)
SPRING_INFO = DeadLetterInfo(
    DeadLetterDialect.SPRING_KAFKA,
    "orders",
    3,
    42,
    "org.springframework.kafka.listener.ListenerExecutionFailedException",
    "Listener failed",
    "stack",
    timestamp_ms=1700000000000,
    timestamp_type="CreateTime",
    consumer_group="billing",
    cause_class="java.lang.IllegalStateException",
)


@pytest.mark.parametrize("header", DEAD_LETTER["kafka_connect"]["headers"])
def test_connect_vector_header_is_written_and_read(header: str) -> None:
    """Each Kafka Connect header of the vector is written as UTF-8 text and read back."""
    headers = dict(CONNECT_INFO.to_headers())
    assert header in headers
    value = headers[header]
    assert value is not None
    text = value.decode("utf-8")
    if header.endswith((".partition", ".offset", ".task.id")):
        assert text.isdigit()  # "partition/offset as decimal text"
    assert DeadLetterInfo.from_headers([(header, value), ("__connect.errors.topic", b"orders")])


def test_connect_vector_headers_are_exactly_the_dialect() -> None:
    """A full Connect info writes exactly the vector's headers, in the vector's order."""
    names = [name for name, _ in CONNECT_INFO.to_headers()]
    assert names == DEAD_LETTER["kafka_connect"]["headers"]
    assert DeadLetterInfo.from_headers(CONNECT_INFO.to_headers()) == CONNECT_INFO


@pytest.mark.parametrize("header", DEAD_LETTER["spring_kafka"]["headers"])
def test_spring_vector_header_is_written_and_read(header: str) -> None:
    """Each Spring Kafka header of the vector is written (key errors with key_error=True)."""
    info = SPRING_INFO
    if "key-exception" in header:
        info = DeadLetterInfo(**{**_fields(SPRING_INFO), "key_error": True})
    headers = dict(info.to_headers())
    assert header in headers
    read = DeadLetterInfo.from_headers(info.to_headers())
    assert read == info


def _fields(info: DeadLetterInfo) -> dict[str, Any]:
    """The constructor arguments of a DeadLetterInfo."""
    return {name: getattr(info, name) for name in info.__dataclass_fields__ if name != "_"}


def test_spring_vector_binary_encodings() -> None:
    """Partition is a 4-byte, offset and timestamp 8-byte big-endian ints (not text)."""
    assert "4-byte big-endian" in DEAD_LETTER["spring_kafka"]["value_encoding"]
    headers = dict(SPRING_INFO.to_headers())
    assert headers["kafka_dlt-original-partition"] == struct.pack(">i", 3) == b"\x00\x00\x00\x03"
    assert headers["kafka_dlt-original-offset"] == struct.pack(">q", 42)
    assert headers["kafka_dlt-original-timestamp"] == struct.pack(">q", 1700000000000)
    assert headers["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert headers["kafka_dlt-original-topic"] == b"orders"


def test_spring_vector_default_topic_and_partition() -> None:
    """The vector's default DLT is <topic>.DLT on the same partition; -dlt for retry topics."""
    assert DEAD_LETTER["spring_kafka"]["default_topic"].startswith("<topic>.DLT, same partition")
    assert dead_letter_topic("orders") == "orders.DLT"
    assert RetryTopicChain("orders", 2).dead_letter_topic == "orders-dlt"
    failed = KafkaRecord("orders", b"x", partition=5, offset=1)
    dlq = dead_letter_record(
        failed,
        ValueError("x"),
        topic=dead_letter_topic("orders"),
        dialect=DeadLetterDialect.SPRING_KAFKA,
        same_partition=True,
    )
    assert (dlq.topic, dlq.partition) == ("orders.DLT", 5)


# --------------------------------------------------------------------------------------
# Dead letters: behaviour
# --------------------------------------------------------------------------------------


def _fail() -> ValueError:
    """A raised-and-caught error with a traceback and a cause."""
    try:
        try:
            json.loads("{bad")
        except json.JSONDecodeError as exc:
            raise ValueError("poison record: not JSON") from exc
    except ValueError as exc:
        return exc
    raise AssertionError  # pragma: no cover


def test_dead_letter_record_keeps_the_record_and_adds_connect_headers() -> None:
    """Key, value, other headers and timestamp are kept; Connect headers carry the failure."""
    failed = KafkaRecord(
        "orders",
        b"{bad",
        key=b"k",
        headers=[("trace", b"1")],
        partition=3,
        offset=42,
        timestamp_ms=7,
    )
    dlq = dead_letter_record(
        failed,
        _fail(),
        topic="orders.DLQ",
        connector_name="sink",
        task_id=1,
        stage="TASK_PUT",
        class_name="my.Task",
    )
    assert (dlq.topic, dlq.key, dlq.value, dlq.timestamp_ms, dlq.partition) == (
        "orders.DLQ",
        b"k",
        b"{bad",
        7,
        None,
    )
    assert dlq.headers[0] == ("trace", b"1")
    info = DeadLetterInfo.from_record(dlq)
    assert info.dialect is DeadLetterDialect.KAFKA_CONNECT
    assert (info.topic, info.partition, info.offset) == ("orders", 3, 42)
    assert (info.connector_name, info.task_id, info.stage, info.class_name) == (
        "sink",
        1,
        "TASK_PUT",
        "my.Task",
    )
    assert info.exception_class == "ValueError"
    assert info.exception_message == "poison record: not JSON"
    assert info.stacktrace is not None
    assert "JSONDecodeError" in info.stacktrace


def test_dead_letter_record_spring_dialect_names_the_cause() -> None:
    """Spring headers carry the cause class, consumer group and the record's timestamp."""
    failed = KafkaRecord(
        "orders", b"x", partition=0, offset=1, timestamp_ms=99, timestamp_type="CreateTime"
    )
    dlq = dead_letter_record(
        failed,
        _fail(),
        topic="orders.DLT",
        dialect=DeadLetterDialect.SPRING_KAFKA,
        consumer_group="g",
        include_stacktrace=False,
    )
    info = DeadLetterInfo.from_record(dlq)
    assert info.cause_class == "json.decoder.JSONDecodeError"
    assert (info.consumer_group, info.timestamp_ms, info.timestamp_type) == ("g", 99, "CreateTime")
    assert info.stacktrace is None
    key_dlq = dead_letter_record(
        failed, _fail(), topic="orders.DLT", dialect=DeadLetterDialect.SPRING_KAFKA, key_error=True
    )
    assert "kafka_dlt-key-exception-fqcn" in dict(key_dlq.headers)
    assert DeadLetterInfo.from_record(key_dlq).key_error


def test_dead_lettering_again_keeps_the_first_origin_and_replaces_the_error() -> None:
    """Through a retry chain, the original topic/partition/offset survive; the error is the last."""
    chain = RetryTopicChain("orders", 2)
    record = KafkaRecord("orders", b"x", partition=4, offset=100)
    for topic in chain.topics[1:]:
        record = dead_letter_record(record, RuntimeError(f"failed before {topic}"), topic=topic)
        record = KafkaRecord(
            record.topic, record.value, headers=record.headers, partition=0, offset=1
        )
    info = DeadLetterInfo.from_record(record)
    assert (info.topic, info.partition, info.offset) == ("orders", 4, 100)
    assert info.exception_message == "failed before orders-dlt"
    assert len([n for n, _ in record.headers if n == "__connect.errors.topic"]) == 1
    fresh = dead_letter_record(record, RuntimeError("x"), topic="t2", keep_original=False)
    assert DeadLetterInfo.from_record(fresh).topic == "orders-dlt"


def test_dead_letter_record_accepts_a_ready_info_and_checks_size() -> None:
    """A DeadLetterInfo is used as given; the size limit applies to the dead-letter record."""
    failed = KafkaRecord("orders", b"x" * 100)
    dlq = dead_letter_record(failed, SPRING_INFO, topic="orders.DLT")
    assert DeadLetterInfo.from_record(dlq) == SPRING_INFO
    with pytest.raises(RecordTooLargeError):
        dead_letter_record(failed, SPRING_INFO, topic="orders.DLT", max_record_bytes=120)
    with pytest.raises(InvalidTopicError):
        dead_letter_record(failed, SPRING_INFO, topic="bad topic")
    with pytest.raises(TypeError):
        dead_letter_record("x", SPRING_INFO, topic="t")  # type: ignore[arg-type]


def test_unreadable_earlier_headers_do_not_block_dead_lettering() -> None:
    """A record with broken earlier dead-letter headers is still dead-lettered, from itself."""
    failed = KafkaRecord(
        "orders", b"x", headers=[("__connect.errors.partition", b"x")], partition=1, offset=2
    )
    info = DeadLetterInfo.from_record(dead_letter_record(failed, ValueError("v"), topic="dlq"))
    assert (info.topic, info.partition, info.offset) == ("orders", 1, 2)


def test_connect_writes_null_message_headers_when_unknown() -> None:
    """With an exception class but no message, Connect's message header has a null value."""
    info = DeadLetterInfo(DeadLetterDialect.KAFKA_CONNECT, "t", exception_class="E")
    headers = dict(info.to_headers())
    assert headers["__connect.errors.exception.message"] is None
    assert DeadLetterInfo.from_headers(info.to_headers()) == info
    assert DeadLetterInfo.from_exception(KafkaRecord("t"), ValueError()).exception_message is None


@pytest.mark.parametrize(
    ("headers", "header"),
    [
        ([], "headers"),
        ([("x", b"1")], "headers"),
        ([("__connect.errors.topic", b"t"), ("kafka_dlt-original-topic", b"t")], "headers"),
        ([("__connect.errors.partition", b"1")], "__connect.errors.topic"),
        ([("__connect.errors.topic", b"")], "__connect.errors.topic"),
        (
            [("__connect.errors.topic", b"t"), ("__connect.errors.offset", b"1e3")],
            "__connect.errors.offset",
        ),
        ([("__connect.errors.topic", b"\xff")], "__connect.errors.topic"),
        (
            [("__connect.errors.topic", b"t"), ("__connect.errors.task.id", b"9999999999")],
            "headers",
        ),
        (
            [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-partition", b"1")],
            "kafka_dlt-original-partition",
        ),
        (
            [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-offset", b"1234")],
            "kafka_dlt-original-offset",
        ),
    ],
)
def test_malformed_dead_letter_headers_name_the_header(
    headers: list[tuple[str, bytes | None]], header: str
) -> None:
    """Missing or malformed dead-letter headers raise DeadLetterHeaderError naming one."""
    with pytest.raises(DeadLetterHeaderError) as info:
        DeadLetterInfo.from_headers(headers)
    assert info.value.header == header
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.header == header


def test_both_dialects_can_be_read_when_named() -> None:
    """A record carrying both dialects is read in the one asked for; last duplicate wins."""
    headers = [
        *CONNECT_INFO.to_headers(),
        *SPRING_INFO.to_headers(),
        ("__connect.errors.topic", b"later"),
    ]
    assert (
        DeadLetterInfo.from_headers(headers, dialect=DeadLetterDialect.SPRING_KAFKA) == SPRING_INFO
    )
    assert (
        DeadLetterInfo.from_headers(headers, dialect=DeadLetterDialect.KAFKA_CONNECT).topic
        == "later"
    )
    with pytest.raises(TypeError, match="dialect"):
        DeadLetterInfo.from_headers(headers, dialect="spring")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DeadLetterInfo.from_record(headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"dialect": "spring"},
        {"topic": ""},
        {"exception_class": 5},
        {"exception_message": "\ud800"},
        {"partition": 2**31},
        {"offset": "1"},
        {"key_error": 1},
        {"key_error": True},
        {"key_error": True, "dialect": DeadLetterDialect.SPRING_KAFKA, "exception_class": None},
    ],
)
def test_dead_letter_info_validates_its_fields(change: dict[str, Any]) -> None:
    """Wrong field types or values raise TypeError or ValueError naming the field."""
    with pytest.raises((TypeError, ValueError)):
        DeadLetterInfo(**{**_fields(CONNECT_INFO), **change})


def test_from_exception_checks_and_escapes() -> None:
    """from_exception refuses non-records and non-exceptions; lone surrogates are escaped."""
    with pytest.raises(TypeError):
        DeadLetterInfo.from_exception("r", ValueError())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        DeadLetterInfo.from_exception(KafkaRecord("t"), "boom")  # type: ignore[arg-type]
    info = DeadLetterInfo.from_exception(KafkaRecord("t"), ValueError("bad \udcff byte"))
    assert info.exception_message == "bad \\udcff byte"
    assert DeadLetterInfo.from_headers(info.to_headers()) == info


TEXTS = st.none() | st.text(st.characters(codec="utf-8"), max_size=10)


@st.composite
def dead_letter_infos(draw: st.DrawFn, dialect: DeadLetterDialect) -> DeadLetterInfo:
    """Valid infos of one dialect: only that dialect's fields are set."""
    common: dict[str, Any] = {
        "dialect": dialect,
        "topic": draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=10)),
        "partition": draw(st.none() | st.integers(-(2**31), 2**31 - 1)),
        "offset": draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
        "exception_class": draw(TEXTS),
        "exception_message": draw(TEXTS),
        "stacktrace": draw(TEXTS),
    }
    if dialect is DeadLetterDialect.KAFKA_CONNECT:
        common.update(
            connector_name=draw(TEXTS),
            task_id=draw(st.none() | st.integers(0, 2**31 - 1)),
            stage=draw(TEXTS),
            class_name=draw(TEXTS),
        )
    else:
        common.update(
            timestamp_ms=draw(st.none() | st.integers(-(2**63), 2**63 - 1)),
            timestamp_type=draw(TEXTS),
            consumer_group=draw(TEXTS),
            cause_class=draw(TEXTS),
            key_error=common["exception_class"] is not None and draw(st.booleans()),
        )
    return DeadLetterInfo(**common)


@settings(max_examples=300, deadline=None)
@given(
    dead_letter_infos(DeadLetterDialect.KAFKA_CONNECT)
    | dead_letter_infos(DeadLetterDialect.SPRING_KAFKA)
)
def test_dead_letter_dialects_round_trip(info: DeadLetterInfo) -> None:
    """from_headers(info.to_headers()) == info for every valid info of either dialect."""
    assert DeadLetterInfo.from_headers(info.to_headers()) == info
    dlq = dead_letter_record(KafkaRecord("orders", b"v"), info, topic="orders.DLT")
    assert DeadLetterInfo.from_record(dlq) == info


# --------------------------------------------------------------------------------------
# Retry topics
# --------------------------------------------------------------------------------------


def test_retry_chain_uses_springs_default_suffixes() -> None:
    """orders -> orders-retry-0 -> orders-retry-1 -> orders-dlt, then nothing."""
    chain = RetryTopicChain("orders", 2)
    assert chain.topics == ("orders", "orders-retry-0", "orders-retry-1", "orders-dlt")
    assert chain.retry_topics == ("orders-retry-0", "orders-retry-1")
    assert [chain.next_topic(t) for t in chain.topics] == [*chain.topics[1:], None]
    with pytest.raises(ValueError, match="not a topic"):
        chain.next_topic("payments")
    assert RetryTopicChain("orders", 0).topics == ("orders", "orders-dlt")


def test_retry_chain_can_name_topics_by_delay_and_custom_suffixes() -> None:
    """delays_ms names topics by delay (SUFFIX_WITH_DELAY_VALUE); suffixes are configurable."""
    chain = RetryTopicChain(
        "orders", 2, delays_ms=[1000, 5000], retry_suffix=".retry", dlt_suffix=".DLT"
    )
    assert chain.topics == ("orders", "orders.retry-1000", "orders.retry-5000", "orders.DLT")
    assert chain.delays_ms == (1000, 5000)


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (("bad topic", 1), {}, InvalidTopicError),
        (("orders", -1), {}, ValueError),
        (("orders", True), {}, TypeError),
        (("orders", 1), {"retry_suffix": ""}, ValueError),
        (("orders", 1), {"retry_suffix": "-x", "dlt_suffix": "-x"}, ValueError),
        (("orders", 2), {"delays_ms": [1000]}, ValueError),
        (("orders", 2), {"delays_ms": [1000, 1000]}, ValueError),
        (("orders", 1), {"delays_ms": [-5]}, ValueError),
        (("x" * 245, 1), {}, InvalidTopicError),
    ],
)
def test_retry_chain_validates_its_configuration(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Bad chains are refused at construction, naming the argument."""
    with pytest.raises(error):
        RetryTopicChain(*args, **kwargs)


def test_dead_letter_topic_checks_the_name() -> None:
    """dead_letter_topic validates both names and its suffix."""
    assert dead_letter_topic("orders", suffix="-dlt") == "orders-dlt"
    with pytest.raises(InvalidTopicError):
        dead_letter_topic("x" * 247)
    with pytest.raises(TypeError):
        dead_letter_topic("orders", suffix=None)  # type: ignore[arg-type]


def test_binding_errors_pickle_and_other_media_parameters_are_skipped() -> None:
    """CloudEventBindingError pickles; a non-charset parameter does not change the charset."""
    with pytest.raises(CloudEventBindingError) as info:
        to_record({**EVENT, "id": ""}, "orders")
    assert pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own object.attribute == "id"
    event = {**EVENT, "datacontenttype": "text/plain; format=flowed; charset=latin-1", "data": "é"}
    assert to_record(event, "orders").value == b"\xe9"


def test_aggregate_key_refuses_a_lone_surrogate() -> None:
    """A part that UTF-8 cannot encode is a ValueError, not a UnicodeEncodeError."""
    with pytest.raises(ValueError, match="UTF-8"):
        aggregate_key("\ud800")


def test_many_extension_names_are_all_still_validated() -> None:
    """Past the cache of known-good names, every extension name is still checked each time."""
    import interlock.kafka_envelope as ke  # noqa: PLC0415 - reaching the private cache bound

    for i in range(ke._PLAIN_NAMES_MAX + 5):
        to_record({**EVENT, f"ext{i}": "v"}, "orders")
    assert len(ke._PLAIN_NAMES) <= ke._PLAIN_NAMES_MAX
    with pytest.raises(CloudEventBindingError):
        to_record({**EVENT, "Ext": "v"}, "orders")


@settings(max_examples=300, deadline=None)
@given(events(binary=False))
def test_the_one_pass_binary_path_agrees_with_the_general_path(event: dict[str, Any]) -> None:
    """The fast binary encoder gives exactly the general path's record, or defers to it."""
    import interlock.kafka_envelope as ke  # noqa: PLC0415 - comparing the two private paths

    to_record(event, "orders")  # the general path has seen (and cached) the names
    fast = ke._binary_fast(event)
    if fast is not None:
        assert fast == ke._binary_parts(event)


@pytest.mark.parametrize(
    "change",
    [
        {"source": "bad source"},
        {"time": "today"},
        {"datacontenttype": "json"},
        {"datacontenttype": "application/json; charset=utf-16"},
        {"dataschema": "https://example.com/s"},
        {"data": float("nan")},
    ],
)
def test_the_one_pass_binary_path_defers_on_anything_unusual(change: dict[str, Any]) -> None:
    """The fast path returns None rather than deciding an unusual or invalid event."""
    import interlock.kafka_envelope as ke  # noqa: PLC0415 - the private fast path

    assert ke._binary_fast({**EVENT, **change}) is None


def test_fast_lane_defers_an_oversized_record_to_the_general_error() -> None:
    """A plain event over the limit still raises RecordTooLargeError (not a silent pass)."""
    to_record(EVENT, "orders")  # the topic and the shape are known now
    with pytest.raises(RecordTooLargeError):
        to_record({**EVENT, "partitionkey": "k"}, "orders", max_record_bytes=60)
    with pytest.raises(RecordTooLargeError):
        to_record({**EVENT, "data": "x" * 100}, "orders", max_record_bytes=60)


def test_the_fast_path_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Topic and shape caches stop growing at their bound; records stay correct past it."""
    import interlock.kafka_envelope as ke  # noqa: PLC0415 - the private caches

    monkeypatch.setattr(ke, "_TOPICS_SEEN", set(range(1024)))
    monkeypatch.setattr(ke, "_SHAPES", {(i,): None for i in range(256)})
    record = to_record({**EVENT, "partitionkey": "k"}, "fresh-topic")
    assert from_record(record) == {**EVENT, "partitionkey": "k"}
    assert "fresh-topic" not in ke._TOPICS_SEEN
    assert len(ke._SHAPES) == 256


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "x1"]
        ),
        st.sampled_from(
            ["1.0", "", "a", "/s", "bad source", "2018-04-05T03:56:24Z", "application/json", "é"]
        )
        | st.integers(-3, 3),
    ),
    JSON_VALUES,
)
def test_the_cheap_check_accepts_only_valid_events(event: dict[str, Any], data: Any) -> None:
    """Whatever the cheap check accepts, the full validation accepts too (never the reverse)."""
    import interlock.kafka_envelope as ke  # noqa: PLC0415 - the private checks

    ke._PLAIN_NAMES.add("x1")
    event = {**event, "data": data}
    if ke._fast_check(event) is not None:
        ke._check_event(event)  # must not raise


def test_unencodable_data_is_refused_in_both_modes_after_warm_up() -> None:
    """NaN or a cycle in data is a CloudEventBindingError on the common path too."""
    cycle: list[Any] = []
    cycle.append(cycle)
    for mode in ContentMode:
        to_record(EVENT, "orders", mode=mode)  # topic and shape known: the common lane
        for data in (float("nan"), cycle):
            with pytest.raises(CloudEventBindingError, match="JSON"):
                to_record({**EVENT, "data": data}, "orders", mode=mode)
