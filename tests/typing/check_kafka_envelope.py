"""The public API of interlock.kafka_envelope under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

from typing import Any

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

event: dict[str, Any] = {
    "specversion": "1.0",
    "id": "1",
    "source": "/s",
    "type": "t",
    "data": {"a": 1},
}
key: bytes = aggregate_key("order", 1001)
record: KafkaRecord = to_record(event, validate_topic("orders"), key=key, mode=ContentMode.BINARY)
structured: KafkaRecord = to_record(
    event, "orders", mode=ContentMode.STRUCTURED, headers=[("h", b"1")]
)
mode: ContentMode | None = content_mode(record)
back: dict[str, Any] = from_record(record, supported_majors={1, 2}, require_schema_version=False)
major: int | None = check_schema_version("2.1", [2])
partition: int = partition_for(key, 12)
hashed: int = murmur2(b"21")
size: int = record.check_size(DEFAULT_MAX_RECORD_BYTES).size_bytes
kwargs: dict[str, Any] = record.to_producer_kwargs(client="kafka-python")
last: bytes | None = record.header("content-type")
consumed = KafkaRecord("orders", b"{}", key=None, headers=(("a", None),), partition=0, offset=5)
event_id: str = record_event_id(consumed)
namespace: str = RECORD_ID_NAMESPACE
content_type: str = STRUCTURED_CONTENT_TYPE

chain = RetryTopicChain("orders", 2, delays_ms=(1000, 5000))
topics: tuple[str, ...] = chain.topics
following: str | None = chain.next_topic("orders")
dlt: str = dead_letter_topic("orders")

info: DeadLetterInfo = DeadLetterInfo.from_exception(
    consumed, ValueError("x"), dialect=DeadLetterDialect.SPRING_KAFKA, consumer_group="g"
)
dlq: KafkaRecord = dead_letter_record(consumed, info, topic=dlt, same_partition=True)
read: DeadLetterInfo = DeadLetterInfo.from_record(dlq)
headers: tuple[tuple[str, bytes | None], ...] = read.to_headers()
offset: int | None = DeadLetterInfo.from_headers(
    headers, dialect=DeadLetterDialect.SPRING_KAFKA
).offset

errors: tuple[type[KafkaEnvelopeError], ...] = (
    InvalidRecordError,
    RecordTooLargeError,
    InvalidTopicError,
    CloudEventBindingError,
    UnsupportedSchemaVersionError,
    DeadLetterHeaderError,
)
try:
    from_record(record, supported_majors=[3])
except UnsupportedSchemaVersionError as exc:
    seen: object = exc.seen
    supported: tuple[int, ...] = exc.supported
except CloudEventBindingError as exc:
    attribute: str = exc.attribute
