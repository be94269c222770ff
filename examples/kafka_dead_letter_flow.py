"""A poison record's way through retry topics to a dead-letter topic, without a broker.

An order service publishes CloudEvents to the topic ``orders`` in binary mode, keyed by
order so that one order's events stay on one partition (the partition is the one Kafka's
Java client would choose). The consumer accepts schema major version 1 only. One event
arrives with schema version 2: it fails, goes to ``orders-retry-0``, fails again on
``orders-retry-1`` and lands on ``orders-dlt``, carrying the original topic, partition,
offset and the error in Kafka Connect's headers. A second consumer reads the reason back.
The same failure is also shown in Spring Kafka's header dialect.

Everything runs in memory: an in-memory "broker" appends records to lists and assigns
offsets. Deterministic; no network.

Run:  python examples/kafka_dead_letter_flow.py
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from interlock.kafka_envelope import (
    DeadLetterDialect,
    DeadLetterInfo,
    KafkaEnvelopeError,
    KafkaRecord,
    RetryTopicChain,
    aggregate_key,
    dead_letter_record,
    dead_letter_topic,
    from_record,
    partition_for,
    to_record,
)

PARTITIONS = 6
CHAIN = RetryTopicChain("orders", 2)


class MemoryBroker:
    """Appends produced records to per-partition logs and hands them out with offsets."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[KafkaRecord]] = defaultdict(list)

    def produce(self, record: KafkaRecord) -> KafkaRecord:
        partition = record.partition
        if partition is None:
            partition = partition_for(record.key, PARTITIONS) if record.key else 0
        log = self.logs[record.topic, partition]
        stored = KafkaRecord(
            record.topic,
            record.value,
            key=record.key,
            headers=record.headers,
            partition=partition,
            offset=len(log),
            timestamp_ms=record.timestamp_ms,
        )
        log.append(stored)
        return stored

    def consume(self, topic: str) -> list[KafkaRecord]:
        return [r for (t, _), log in sorted(self.logs.items()) if t == topic for r in log]


def order_event(order_id: str, version: str, total: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"ord-{order_id}-created",
        "source": "/shop/orders",
        "type": "com.example.order.created",
        "time": "2026-11-22T09:00:00Z",
        "schemaversion": version,
        "data": {"order_id": order_id, "total": total},
    }


def handle(broker: MemoryBroker, topic: str, record: KafkaRecord) -> str:
    """Process one record; on failure, produce it to the next topic of the chain."""
    try:
        event = from_record(record, supported_majors={1})
    except KafkaEnvelopeError as exc:
        target = CHAIN.next_topic(topic) or CHAIN.dead_letter_topic
        failed = dead_letter_record(
            record, exc, topic=target, connector_name="orders-sink", task_id=0
        )
        broker.produce(failed)
        return f"failed -> {target}: {exc}"
    return f"processed {event['id']}"


def main() -> None:
    broker = MemoryBroker()
    print("1. Producing two order events (binary mode, keyed by order)")
    for order_id, version in (("1001", "1.4"), ("1002", "2.0")):
        key = aggregate_key("order", order_id)
        record = to_record(order_event(order_id, version, "49.90"), "orders", key=key)
        stored = broker.produce(record)
        headers = ", ".join(name for name, _ in record.headers)
        print(
            f"   key={key.decode()} -> partition {stored.partition} (murmur2); headers: {headers}"
        )

    print("\n2. Consuming with a consumer that reads schema major version 1 only")
    for topic in CHAIN.topics[:-1]:
        for record in broker.consume(topic):
            print(f"   {topic}@{record.offset}: {handle(broker, topic, record)}")

    print("\n3. Reading the dead-letter topic")
    (dead,) = broker.consume(CHAIN.dead_letter_topic)
    info = DeadLetterInfo.from_record(dead)
    print(f"   dialect:        {info.dialect.value}")
    print(f"   first seen at:  {info.topic} partition {info.partition} offset {info.offset}")
    print(f"   error:          {info.exception_class}")
    print(f"   message:        {info.exception_message}")
    original = next(r for r in broker.consume("orders") if r.key == dead.key)
    print(f"   key kept:       {dead.key!r}; value kept: {dead.value == original.value}")
    connect_headers = [name for name, _ in dead.headers if name.startswith("__connect")]
    print(f"   headers:        {', '.join(connect_headers)}")

    print("\n4. The same failure in Spring Kafka's dialect")
    spring = dead_letter_record(
        original,
        ValueError("order event of schema version 2.0"),
        topic=dead_letter_topic("orders"),
        dialect=DeadLetterDialect.SPRING_KAFKA,
        consumer_group="billing",
        same_partition=True,
        include_stacktrace=False,
    )
    for name, value in spring.headers:
        if name.startswith("kafka_dlt-"):
            shown = value.hex() if name.endswith(("partition", "offset")) else value
            print(f"   {name}: {shown!r}")
    back = DeadLetterInfo.from_record(spring)
    print(f"   read back: partition {back.partition}, offset {back.offset}", end="")
    print(f", group {back.consumer_group}")


if __name__ == "__main__":
    main()
