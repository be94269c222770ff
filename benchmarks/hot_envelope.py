# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.event_envelope: CloudEvents JSON out, JSON in, HTTP binary mode."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from harness import (
    CONTACT,
    CONTACT_1KB,
    CORRELATION_ID,
    CREATED_AT,
    EVENT_ID,
    EVENT_TYPE,
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
    cloudevents_v1_api,
    faster_than,
    peer,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# --------------------------------------------------------------------------------------
# Hot path 1: create an envelope and write it as CloudEvents JSON
# --------------------------------------------------------------------------------------


def envelope_create_to_json() -> HotPath:
    expected = cloudevent_dict(CONTACT)

    def same_event(out: str | bytes) -> bool:
        return bool(json.loads(out) == expected)

    def floor() -> Call:
        d = cloudevent_dict(CONTACT)
        return lambda: json.dumps(d)

    def interlock() -> Call:
        from interlock.event_envelope import EventEnvelope

        def call() -> str:
            env = EventEnvelope(
                event_id=EVENT_ID,
                event_type=EVENT_TYPE,
                source_system=SOURCE,
                payload=CONTACT,
                correlation_id=CORRELATION_ID,
                schema_version=SCHEMA_VERSION,
                created_at=CREATED_AT,
            )
            return json.dumps(env.to_cloudevent())

        return call

    def interlock_to_json() -> Call:
        from interlock.event_envelope import EventEnvelope

        def call() -> bytes:
            return EventEnvelope(
                event_id=EVENT_ID,
                event_type=EVENT_TYPE,
                source_system=SOURCE,
                payload=CONTACT,
                correlation_id=CORRELATION_ID,
                schema_version=SCHEMA_VERSION,
                created_at=CREATED_AT,
            ).to_json()

        return call

    def cloudevents_core() -> Call:
        cloud_event = peer("cloudevents.core.v1.event").CloudEvent
        json_format = peer("cloudevents.core.formats.json").JSONFormat()

        def call() -> object:
            event = cloud_event(cloudevents_attributes(CREATED_AT), CONTACT)
            return json_format.write(event)

        return call

    def cloudevents_v1() -> Call:
        http, conversion = cloudevents_v1_api()
        return lambda: conversion.to_json(
            http.CloudEvent(cloudevents_attributes(TIME_TEXT), CONTACT)
        )

    def iap() -> Call:
        envelope = peer("integration_automation_patterns.event_envelope").EventEnvelope

        def call() -> str:
            env = envelope(
                event_id=EVENT_ID,
                event_type=EVENT_TYPE,
                source_system=SOURCE,
                payload=CONTACT,
                correlation_id=CORRELATION_ID,
                schema_version=SCHEMA_VERSION,
                created_at=CREATED_AT,
            )
            return json.dumps(
                {
                    "event_id": env.event_id,
                    "event_type": env.event_type,
                    "source_system": env.source_system,
                    "correlation_id": env.correlation_id,
                    "schema_version": env.schema_version,
                    "created_at": env.created_at.isoformat(),
                    "payload": env.payload,
                }
            )

        return call

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most(result, "interlock", 2.0),
            faster_than(result, "interlock", "cloudevents"),
            faster_than(result, "interlock", "cloudevents-v1"),
        ]

    return HotPath(
        name="envelope-create-to-json",
        summary="create an event envelope for a CRM contact update (11 fields, nested "
        "address) and write it as a structured-mode CloudEvents JSON document",
        contenders=(
            Contender("floor", "floor", "json.dumps(CloudEvents dict built by hand)", floor),
            Contender(
                "interlock",
                "interlock",
                "EventEnvelope(...).to_cloudevent() + json.dumps",
                interlock,
                check=same_event,
            ),
            Contender(
                "interlock-to_json",
                "interlock .to_json()",
                "EventEnvelope(...).to_json() (compact separators, UTF-8 bytes)",
                interlock_to_json,
                check=same_event,
            ),
            *cloudevents_sdk(
                (
                    "core.v1.event.CloudEvent(...) + formats.json.JSONFormat().write(event)",
                    cloudevents_core,
                    same_event,
                ),
                ("v1 http.CloudEvent(...) + conversion.to_json(event)", cloudevents_v1, same_event),
            ),
            Contender(
                "iap",
                IAP,
                "EventEnvelope(...) + json.dumps(dict of its fields) [*]",
                iap,
                requires="integration_automation_patterns",
                check=lambda out: json.loads(out)["payload"] == CONTACT,
                note="[*] integration-automation-patterns has no CloudEvents (or any dict/JSON) "
                "output for EventEnvelope; a dict of its fields is built by hand and "
                "json.dumps'd. Its own schema, not CloudEvents.",
            ),
        ),
        goals=goals,
    )


# --------------------------------------------------------------------------------------
# Hot path 2: parse a 1 KB structured CloudEvent
# --------------------------------------------------------------------------------------


def cloudevent_parse_1kb() -> HotPath:
    raw = json.dumps(cloudevent_dict(CONTACT_1KB)).encode("utf-8")
    if not 1000 <= len(raw) <= 1100:
        raise RuntimeError(f"the 1 KB document is {len(raw)} bytes; adjust CONTACT_1KB")

    def floor() -> Call:
        return lambda: json.loads(raw)

    def interlock() -> Call:
        from interlock.event_envelope import EventEnvelope

        return lambda: EventEnvelope.from_cloudevent(raw)

    def cloudevents_core() -> Call:
        cloud_event = peer("cloudevents.core.v1.event").CloudEvent
        json_format = peer("cloudevents.core.formats.json").JSONFormat()
        return lambda: json_format.read(cloud_event, raw)

    def cloudevents_v1() -> Call:
        http, _ = cloudevents_v1_api()
        return lambda: http.from_json(raw)

    def iap() -> Call:
        envelope = peer("integration_automation_patterns.event_envelope").EventEnvelope

        def call() -> object:
            d = json.loads(raw)
            return envelope(
                event_id=d["id"],
                event_type=d["type"],
                source_system=d["source"],
                payload=d["data"],
                correlation_id=d.get("correlationid", ""),
                schema_version=d.get("schemaversion", "1.0"),
                created_at=datetime.fromisoformat(d["time"].replace("Z", "+00:00")),
            )

        return call

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most(result, "interlock", 2.0),
            faster_than(result, "interlock", "cloudevents"),
            faster_than(result, "interlock", "cloudevents-v1"),
        ]

    return HotPath(
        name="cloudevent-parse-1kb",
        summary=f"read a {len(raw)}-byte structured-mode CloudEvent (JSON bytes) into an "
        "event object",
        contenders=(
            Contender("floor", "floor", "json.loads(raw)", floor),
            Contender(
                "interlock",
                "interlock",
                "EventEnvelope.from_cloudevent(raw)",
                interlock,
                check=lambda env: env.payload == CONTACT_1KB and env.event_id == EVENT_ID,
            ),
            *cloudevents_sdk(
                (
                    "JSONFormat().read(CloudEvent, raw)",
                    cloudevents_core,
                    lambda event: event.get_data() == CONTACT_1KB,
                ),
                ("v1 http.from_json(raw)", cloudevents_v1, lambda event: event.data == CONTACT_1KB),
            ),
            Contender(
                "iap",
                IAP,
                "json.loads + EventEnvelope(...) [*]",
                iap,
                requires="integration_automation_patterns",
                check=lambda env: env.payload == CONTACT_1KB,
                note="[*] integration-automation-patterns has no CloudEvents reader; the "
                "members are mapped onto its constructor by hand, without validation.",
            ),
        ),
        goals=goals,
    )


# --------------------------------------------------------------------------------------
# Hot path 3: HTTP binary-mode round trip
# --------------------------------------------------------------------------------------


def http_binary_roundtrip() -> HotPath:
    def floor() -> Call:
        def call() -> object:
            headers = {
                "ce-specversion": "1.0",
                "ce-id": EVENT_ID,
                "ce-source": SOURCE,
                "ce-type": EVENT_TYPE,
                "ce-time": TIME_TEXT,
                "ce-correlationid": CORRELATION_ID,
                "ce-schemaversion": SCHEMA_VERSION,
                "content-type": "application/json",
            }
            body = json.dumps(CONTACT).encode("utf-8")
            attributes = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
            return attributes, json.loads(body)

        return call

    def interlock() -> Call:
        from interlock.event_envelope import EventEnvelope

        env = EventEnvelope(
            event_id=EVENT_ID,
            event_type=EVENT_TYPE,
            source_system=SOURCE,
            payload=CONTACT,
            correlation_id=CORRELATION_ID,
            schema_version=SCHEMA_VERSION,
            created_at=CREATED_AT,
        )

        def call() -> object:
            headers, body = env.to_http()
            return EventEnvelope.from_http(headers, body)

        return call

    def cloudevents_core() -> Call:
        cloud_event = peer("cloudevents.core.v1.event").CloudEvent
        json_format = peer("cloudevents.core.formats.json").JSONFormat()
        http = peer("cloudevents.core.bindings.http")
        event = cloud_event(cloudevents_attributes(CREATED_AT), CONTACT)
        return lambda: http.from_http(http.to_binary(event, json_format), json_format, cloud_event)

    def cloudevents_v1() -> Call:
        http, conversion = cloudevents_v1_api()
        event = http.CloudEvent(cloudevents_attributes(TIME_TEXT), CONTACT)

        def call() -> object:
            headers, body = conversion.to_binary(event)
            return http.from_http(headers, body)

        return call

    return HotPath(
        name="http-binary-roundtrip",
        summary="write the contact event as an HTTP binary-mode message (ce- headers, JSON "
        "body) and read it back",
        contenders=(
            Contender("floor", "floor", "ce- header dict + json.dumps, then json.loads", floor),
            Contender(
                "interlock",
                "interlock",
                "to_http() then EventEnvelope.from_http(...)",
                interlock,
                check=lambda env: env.payload == CONTACT and env.time.text == TIME_TEXT,
            ),
            *cloudevents_sdk(
                (
                    "bindings.http.to_binary(event, fmt) then from_http(message, fmt, CloudEvent)",
                    cloudevents_core,
                    lambda event: event.get_data() == CONTACT,
                ),
                (
                    "v1 conversion.to_binary(event) then http.from_http(headers, body)",
                    cloudevents_v1,
                    lambda event: event.data == CONTACT,
                ),
            ),
        ),
        notes=("integration-automation-patterns: not compared (it has no HTTP binding).",),
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (
    envelope_create_to_json,
    cloudevent_parse_1kb,
    http_binary_roundtrip,
)
