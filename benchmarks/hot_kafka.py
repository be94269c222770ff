# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot path of interlock.kafka_envelope: a CloudEvent produced as a Kafka record."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness import (
    CONTACT,
    CREATED_AT,
    EVENT_ID,
    IAP,
    SCHEMA_VERSION,
    SOURCE,
    TIME_TEXT,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most,
    cloudevent_dict,
    cloudevents_attributes,
    cloudevents_sdk,
    faster_than,
    peer,
)

if TYPE_CHECKING:
    from collections.abc import Callable

TOPIC = "crm.contacts"
PARTITION_KEY = "contact:003Dn00000QX9fKIAT"


def kafka_event() -> dict[str, Any]:
    """The shared contact event as a CloudEvents dict, keyed by its aggregate."""
    return {**cloudevent_dict(CONTACT), "partitionkey": PARTITION_KEY}


def kafka_produce_record() -> HotPath:
    def floor() -> Call:
        payload = CONTACT
        return lambda: json.dumps(payload).encode()

    def interlock_binary() -> Call:
        from interlock.kafka_envelope import to_record

        event = kafka_event()
        return lambda: to_record(event, TOPIC)

    def interlock_structured() -> Call:
        from interlock.kafka_envelope import ContentMode, to_record

        event = kafka_event()
        structured = ContentMode.STRUCTURED
        return lambda: to_record(event, TOPIC, mode=structured)

    def binary_ok(record: Any) -> bool:
        headers = dict(record.headers)
        return bool(
            json.loads(record.value) == CONTACT
            and headers["ce_id"] == EVENT_ID.encode()
            and headers["ce_time"] == TIME_TEXT.encode()
            and record.key == PARTITION_KEY.encode()
        )

    def structured_ok(record: Any) -> bool:
        return bool(
            json.loads(record.value) == kafka_event() and record.key == PARTITION_KEY.encode()
        )

    def cloudevents_core() -> Call:
        cloud_event = peer("cloudevents.core.v1.event").CloudEvent
        kafka = peer("cloudevents.core.bindings.kafka")
        attributes = {**cloudevents_attributes(CREATED_AT), "partitionkey": PARTITION_KEY}

        def call() -> object:
            return kafka.to_binary_event(cloud_event(dict(attributes), CONTACT))

        return call

    def cloudevents_v1() -> Call:
        http = peer("cloudevents.v1.http")
        kafka = peer("cloudevents.v1.kafka")
        attributes = {
            **cloudevents_attributes(TIME_TEXT),
            "partitionkey": PARTITION_KEY,
            "datacontenttype": "application/json",  # its to_binary needs the attribute
        }

        def call() -> object:
            return kafka.to_binary(http.CloudEvent(dict(attributes), CONTACT))

        return call

    def sdk_ok(message: Any) -> bool:
        key = message.key if isinstance(message.key, bytes) else str(message.key).encode()
        return bool(json.loads(message.value) == CONTACT and key == PARTITION_KEY.encode())

    def iap() -> Call:
        envelope = peer("integration_automation_patterns.kafka_envelope").KafkaEventEnvelope

        def call() -> object:
            return envelope(
                event_id=EVENT_ID,
                event_type="com.example.crm.contact.updated",
                source_system=SOURCE,
                payload=CONTACT,
                topic=TOPIC,
                partition_key=PARTITION_KEY,
                schema_version=SCHEMA_VERSION,
                created_at=CREATED_AT,
            ).to_producer_record()

        return call

    def iap_ok(record: Any) -> bool:
        return bool(json.loads(record["value"])["payload"] == CONTACT)

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most(result, "interlock", 2.0),
            at_most(result, "interlock-structured", 2.0),
            faster_than(result, "interlock", "cloudevents"),
            faster_than(result, "interlock", "cloudevents-v1"),
        ]

    return HotPath(
        name="kafka-produce-record",
        summary="produce the contact event (a CloudEvents dict with partitionkey) as a Kafka "
        "record: ce_ headers, key and JSON value (binary mode), or the whole event as the "
        "value (structured mode)",
        contenders=(
            Contender("floor", "floor", "json.dumps(payload).encode()", floor),
            Contender(
                "interlock",
                "interlock",
                "to_record(event, topic): binary mode, validated",
                interlock_binary,
                check=binary_ok,
            ),
            Contender(
                "interlock-structured",
                "interlock (structured)",
                "to_record(event, topic, mode=STRUCTURED)",
                interlock_structured,
                check=structured_ok,
            ),
            *cloudevents_sdk(
                (
                    "bindings.kafka.to_binary_event(CloudEvent(attributes, data))",
                    cloudevents_core,
                    sdk_ok,
                ),
                (
                    "v1 kafka.to_binary(http.CloudEvent(attributes, data))",
                    cloudevents_v1,
                    sdk_ok,
                ),
            ),
            Contender(
                "iap",
                IAP,
                "KafkaEventEnvelope(...).to_producer_record() (its own JSON, not CloudEvents)",
                iap,
                requires="integration_automation_patterns",
                check=iap_ok,
                note="integration-automation-patterns writes its own JSON envelope with no "
                "ce_ headers and no validation: shown for scale, not a like-for-like binding.",
            ),
        ),
        goals=goals,
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (kafka_produce_record,)
