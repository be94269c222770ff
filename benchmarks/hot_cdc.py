# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot path of interlock.cdc_event: read one Debezium change event."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from harness import (
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most,
    at_most_of,
    peer,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PG_UPDATE = {
    "before": {"id": 1004, "first_name": "Anne", "last_name": "Kretchmar", "email": "ak@x.org"},
    "after": {
        "id": 1004,
        "first_name": "Anne Marie",
        "last_name": "Kretchmar",
        "email": "annek@noanswer.org",
    },
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
    "op": "u",
    "ts_ms": 1465584025523,
    "ts_us": 1465584025523514,
    "ts_ns": 1465584025523514964,
}


def cdc_parse() -> HotPath:
    raw = json.dumps(PG_UPDATE).encode("utf-8")

    def floor() -> Call:
        return lambda: json.loads(raw)

    def interlock() -> Call:
        from interlock.cdc_event import CDCEvent

        return lambda: CDCEvent.from_debezium(raw)

    def interlock_used() -> Call:
        from interlock.cdc_event import CDCEvent

        def read_and_use() -> object:
            event = CDCEvent.from_debezium(raw)
            _ = (event.source.table, event.event_id, event.captured_at, event.position)
            return event

        return read_and_use

    def iap() -> Call:
        cdc_event = peer("integration_automation_patterns.cdc_event").CDCEvent
        return lambda: cdc_event.from_debezium(json.loads(raw))

    def goals(result: PathResult) -> list[Verdict]:
        return [at_most(result, "interlock", 1.5), at_most_of(result, "interlock", "iap", 0.5)]

    return HotPath(
        name="cdc-parse",
        summary=f"read a {len(raw)}-byte Debezium PostgreSQL update (JSON bytes) into an event",
        contenders=(
            Contender("floor", "floor", "json.loads(raw)", floor),
            Contender(
                "interlock",
                "interlock",
                "CDCEvent.from_debezium(raw)",
                interlock,
                check=lambda event: event.after == PG_UPDATE["after"],
            ),
            Contender(
                "interlock-used",
                "interlock, fields used",
                "from_debezium(raw), then source, event_id, captured_at, position",
                interlock_used,
                check=lambda event: event.source.table == "customers",
                note=(
                    "interlock reads lazily: source, event_id and captured_at are built on "
                    "first use; 'fields used' times that too (no goal, for comparison)"
                ),
            ),
            Contender(
                "iap",
                IAP,
                "json.loads + CDCEvent.from_debezium(dict)",
                iap,
                requires="integration_automation_patterns",
                check=lambda event: event.after == PG_UPDATE["after"],
            ),
        ),
        goals=goals,
    )


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (cdc_parse,)
