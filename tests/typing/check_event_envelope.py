"""The public API of interlock.event_envelope under `mypy --strict` (checked, not run by pytest)."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

from interlock.event_envelope import (
    NO_DATA,
    CloudEventError,
    DeliveryStatus,
    EventEnvelope,
    InvalidTransitionError,
    Jitter,
    NoData,
    RetryPolicy,
    Timestamp,
    Transition,
    from_http_batch,
    from_json_batch,
    to_http_batch,
    to_json_batch,
)


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=timezone.utc)


policy: RetryPolicy = RetryPolicy(5, 2.5, True, 60.0, jitter=Jitter.FULL, rng=random.Random(1))
wait: float = policy.wait_seconds_for_attempt(0, previous=None)
base: float = policy.base_wait_seconds(3)
exhausted: bool = policy.is_exhausted(5)

env = EventEnvelope("e-1", "com.example.thing", "/source", {"k": 1}, clock=clock)
env.mark_dispatched()
env.mark_failed(reason="503")
seconds: float = env.next_retry_wait_seconds()
status: DeliveryStatus = env.status
history: tuple[Transition, ...] = env.history
terminal: bool = env.is_terminal()
reason: str | None = env.dead_letter_reason
line: str = env.to_audit_line()

event: dict[str, Any] = env.to_cloudevent()
raw: bytes = env.to_json()
again: EventEnvelope = EventEnvelope.from_cloudevent(raw, retry_policy=policy, clock=clock)
headers: dict[str, str]
body: bytes
headers, body = env.to_http(structured=False)
received: EventEnvelope = EventEnvelope.from_http(list(headers.items()), body)
batch_headers, batch_body = to_http_batch([env, again])
batch: list[EventEnvelope] = from_http_batch(batch_headers, batch_body)
parsed: list[EventEnvelope] = from_json_batch(to_json_batch(batch))

stamp: Timestamp = Timestamp.parse("2026-01-01T00:00:00.000000001Z")
nanos: int = stamp.nanosecond
moment: datetime = stamp.moment
precise = Timestamp.from_datetime(moment, nanosecond=nanos)
marker: NoData = NO_DATA
empty = EventEnvelope("e-2", "t", "/s", NO_DATA, time=precise, include_time=True)

try:
    env.mark_processed()
except InvalidTransitionError as exc:
    current: DeliveryStatus = exc.current
    target: DeliveryStatus = exc.target
except CloudEventError as exc:
    attribute: str = exc.attribute
