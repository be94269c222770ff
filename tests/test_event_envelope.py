"""interlock.event_envelope: seed compatibility, lifecycle, retry and the CloudEvents codec."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from interlock.event_envelope import (
    NO_DATA,
    CloudEventError,
    CloudEventWarning,
    DeliveryStatus,
    EnvelopeError,
    EventEnvelope,
    InvalidTransitionError,
    Jitter,
    RetryPolicy,
    Timestamp,
    Transition,
    UnsupportedSpecVersionError,
    from_http_batch,
    from_json_batch,
    to_http_batch,
    to_json_batch,
)

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "cloudevents"
if not VECTORS.is_dir():  # a checkout with shared/ beside it, or inside it
    VECTORS = Path(__file__).resolve().parents[1] / "shared" / "vectors" / "cloudevents"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def vector(name: str) -> Any:
    """Load one vector file from ../shared/vectors/cloudevents."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make(**overrides: Any) -> EventEnvelope:
    """An envelope with seed-style defaults and a fixed clock."""
    fields: dict[str, Any] = {
        "event_id": "evt-001",
        "event_type": "enrollment.student.updated",
        "source_system": "crm",
        "payload": {"student_id": "S-1"},
        "clock": FakeClock(),
    }
    fields.update(overrides)
    return EventEnvelope(**fields)


def without_nulls(event: dict[str, Any]) -> dict[str, Any]:
    """What a conforming reader keeps: null attributes are absent, "data": null stays."""
    return {k: v for k, v in event.items() if v is not None or k == "data"}


def parse_header_block(raw: str) -> tuple[dict[str, str], str]:
    """Split a vector's 'name: value' header block and body."""
    head, _, body = raw.partition("\n\n")
    headers = {}
    for line in head.splitlines():
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, body


# ======================================================================================
# Seed compatibility: integration-automation-patterns 0.1.0 behaviour, unchanged
# ======================================================================================


class TestSeedRetryPolicy:
    def test_defaults_match_the_seed(self) -> None:
        """RetryPolicy() keeps the seed's defaults: 3 attempts, 30 s, exponential, 3600 s cap."""
        policy = RetryPolicy()
        assert (policy.max_attempts, policy.backoff_seconds) == (3, 30)
        assert policy.exponential is True
        assert policy.max_backoff_seconds == 3600

    def test_positional_construction_still_works(self) -> None:
        """The seed's four positional fields keep their order."""
        assert RetryPolicy(5, 2, False, 10) == RetryPolicy(
            max_attempts=5, backoff_seconds=2, exponential=False, max_backoff_seconds=10
        )

    def test_is_exhausted_at_and_below_the_limit(self) -> None:
        """is_exhausted(n) is n >= max_attempts."""
        policy = RetryPolicy(max_attempts=3)
        assert policy.is_exhausted(3) is True
        assert policy.is_exhausted(4) is True
        assert policy.is_exhausted(2) is False

    def test_fixed_backoff_is_constant(self) -> None:
        """A fixed policy waits backoff_seconds before every retry."""
        policy = RetryPolicy(backoff_seconds=10, exponential=False)
        assert [policy.wait_seconds_for_attempt(n) for n in (0, 5, 50)] == [10, 10, 10]

    def test_exponential_backoff_doubles_and_caps(self) -> None:
        """Exponential waits are backoff * 2**n, capped at max_backoff_seconds."""
        policy = RetryPolicy(backoff_seconds=10, max_backoff_seconds=50)
        assert [policy.wait_seconds_for_attempt(n) for n in range(5)] == [10, 20, 40, 50, 50]

    def test_integer_configuration_gives_integer_waits(self) -> None:
        """Integer settings give integer waits, as the seed returned."""
        assert type(RetryPolicy().wait_seconds_for_attempt(2)) is int


class TestSeedEnvelope:
    def test_initial_state(self) -> None:
        """A new envelope is PENDING with no attempts and is not terminal."""
        env = make()
        assert env.status is DeliveryStatus.PENDING
        assert env.attempt_count == 0
        assert env.is_terminal() is False

    def test_status_values_match_the_seed(self) -> None:
        """DeliveryStatus keeps the seed's seven string values."""
        seed = {
            "PENDING": "pending",
            "DISPATCHED": "dispatched",
            "ACKNOWLEDGED": "acknowledged",
            "PROCESSED": "processed",
            "RETRYING": "retrying",
            "FAILED": "failed",
            "SKIPPED": "skipped",
        }
        assert {name: DeliveryStatus[name].value for name in seed} == seed

    def test_positional_fields_keep_the_seed_order(self) -> None:
        """The seed's eleven positional fields keep their order and defaults."""
        names = [f.name for f in dataclasses.fields(EventEnvelope) if not f.kw_only]
        assert names == [
            "event_id",
            "event_type",
            "source_system",
            "payload",
            "correlation_id",
            "schema_version",
            "created_at",
            "status",
            "attempt_count",
            "retry_policy",
            "tags",
        ]
        env = EventEnvelope("e", "t", "s", {})
        assert (env.correlation_id, env.schema_version, env.tags) == ("", "1.0", {})
        assert env.created_at.tzinfo is not None

    def test_fields_are_stored(self) -> None:
        """Constructor arguments are kept as given."""
        env = make(correlation_id="corr-99", schema_version="2.0")
        assert (env.event_id, env.event_type, env.source_system) == (
            "evt-001",
            "enrollment.student.updated",
            "crm",
        )
        assert (env.correlation_id, env.schema_version) == ("corr-99", "2.0")

    def test_dispatch_ack_process(self) -> None:
        """The happy path: dispatched (attempt 1), acknowledged, processed (terminal)."""
        env = make()
        env.mark_dispatched()
        assert (env.status, env.attempt_count) == (DeliveryStatus.DISPATCHED, 1)
        env.mark_acknowledged()
        assert env.status is DeliveryStatus.ACKNOWLEDGED
        env.mark_processed()
        assert env.status is DeliveryStatus.PROCESSED
        assert env.is_terminal() is True

    def test_processed_straight_after_dispatch(self) -> None:
        """A consumer that never acknowledges separately can go DISPATCHED -> PROCESSED."""
        env = make()
        env.mark_dispatched()
        env.mark_processed()
        assert env.status is DeliveryStatus.PROCESSED

    def test_failure_within_budget_retries(self) -> None:
        """mark_failed with budget left gives RETRYING, not terminal."""
        env = make()
        env.mark_dispatched()
        env.mark_failed()
        assert env.status is DeliveryStatus.RETRYING
        assert env.is_terminal() is False

    def test_failure_after_budget_fails(self) -> None:
        """Three dispatches (redeliveries included) exhaust the default budget."""
        env = make()
        for _ in range(3):
            env.mark_dispatched()
        env.mark_failed()
        assert env.status is DeliveryStatus.FAILED
        assert env.is_terminal() is True

    def test_skip_with_and_without_reason(self) -> None:
        """mark_skipped is terminal and stores a non-empty reason in tags."""
        env = make()
        env.mark_skipped(reason="duplicate")
        assert env.status is DeliveryStatus.SKIPPED
        assert env.is_terminal()
        assert env.tags["skip_reason"] == "duplicate"
        quiet = make()
        quiet.mark_skipped()
        assert "skip_reason" not in quiet.tags

    def test_next_retry_wait(self) -> None:
        """next_retry_wait_seconds is 0 unless RETRYING, positive when retrying."""
        env = make()
        assert env.next_retry_wait_seconds() == 0
        env.mark_dispatched()
        env.mark_failed()
        assert env.next_retry_wait_seconds() > 0

    def test_audit_line_format(self) -> None:
        """to_audit_line keeps the seed's exact key=value layout."""
        env = make(correlation_id="corr-1", created_at=T0)
        env.mark_dispatched()
        assert env.to_audit_line() == (
            "[INTEGRATION_EVENT] event_id=evt-001 type=enrollment.student.updated "
            "source=crm status=dispatched attempts=1 correlation=corr-1 schema=1.0 "
            "created=2026-01-02T03:04:05+00:00"
        )
        assert "correlation=none" in make().to_audit_line()


# ======================================================================================
# What the seed got wrong, fixed
# ======================================================================================


class TestRetrySchedule:
    def test_first_retry_waits_backoff_seconds(self) -> None:
        """The first retry waits backoff_seconds (the seed waited twice that)."""
        env = make(retry_policy=RetryPolicy(max_attempts=5, backoff_seconds=30))
        waits = []
        for _ in range(4):
            env.mark_dispatched()
            env.mark_failed()
            waits.append(env.next_retry_wait_seconds())
        assert waits == [30, 60, 120, 240]

    def test_unlimited_attempts_never_fail(self) -> None:
        """max_attempts=None retries forever, with waits held at the cap."""
        env = make(retry_policy=RetryPolicy(max_attempts=None, max_backoff_seconds=120))
        for _ in range(200):
            env.mark_dispatched()
            env.mark_failed()
        assert env.status is DeliveryStatus.RETRYING
        assert env.next_retry_wait_seconds() == 120
        assert RetryPolicy(max_attempts=None).is_exhausted(10**9) is False

    def test_huge_attempt_numbers_do_not_overflow(self) -> None:
        """A float backoff at retry 5000 is the cap, not an OverflowError."""
        policy = RetryPolicy(backoff_seconds=0.5, max_backoff_seconds=60.0)
        assert policy.wait_seconds_for_attempt(5000) == 60.0

    @pytest.mark.parametrize(
        ("jitter", "low", "high"),
        [(Jitter.FULL, 0.0, 40.0), (Jitter.EQUAL, 20.0, 40.0), (Jitter.DECORRELATED, 10.0, 60.0)],
    )
    def test_jitter_stays_within_its_bounds(self, jitter: Jitter, low: float, high: float) -> None:
        """Each jitter mode draws within its documented interval (retry #2, base 10, cap 100)."""
        policy = RetryPolicy(
            backoff_seconds=10, max_backoff_seconds=100, jitter=jitter, rng=random.Random(7)
        )
        draws = [policy.wait_seconds_for_attempt(2) for _ in range(500)]
        assert all(low <= d <= high for d in draws)
        assert max(draws) - min(draws) > (high - low) / 2  # actually spread out

    @pytest.mark.parametrize("jitter", [Jitter.FULL, Jitter.EQUAL, Jitter.DECORRELATED])
    def test_jitter_survives_the_cap(self, jitter: Jitter) -> None:
        """At the cap, jittered waits still differ, so clients do not retry in lock-step."""
        policy = RetryPolicy(
            backoff_seconds=1, max_backoff_seconds=8, jitter=jitter, rng=random.Random(1)
        )
        draws = {round(policy.wait_seconds_for_attempt(30, previous=8.0), 6) for _ in range(50)}
        assert len(draws) > 40
        assert all(d <= 8 for d in draws)

    def test_jitter_without_an_injected_rng_uses_a_shared_source(self) -> None:
        """Without rng=, jitter still draws (from one shared generator) within its bounds."""
        policy = RetryPolicy(backoff_seconds=4, max_backoff_seconds=4, jitter=Jitter.FULL)
        draws = {policy.wait_seconds_for_attempt(0) for _ in range(20)}
        assert len(draws) > 1
        assert all(0 <= d <= 4 for d in draws)

    def test_injected_rng_makes_jitter_reproducible(self) -> None:
        """The same seed gives the same jittered schedule."""

        def schedule(seed: int) -> list[float]:
            policy = RetryPolicy(jitter=Jitter.FULL, rng=random.Random(seed))
            return [policy.wait_seconds_for_attempt(n) for n in range(5)]

        assert schedule(3) == schedule(3)
        assert schedule(3) != schedule(4)

    def test_jitter_is_drawn_once_per_failure(self) -> None:
        """An envelope's wait is fixed when the failure is recorded, not redrawn per call."""
        env = make(retry_policy=RetryPolicy(jitter=Jitter.FULL, rng=random.Random(5)))
        env.mark_dispatched()
        env.mark_failed()
        first = env.next_retry_wait_seconds()
        assert env.next_retry_wait_seconds() == first
        assert 0 <= first <= 30

    def test_decorrelated_jitter_uses_the_previous_wait(self) -> None:
        """Decorrelated jitter grows from the wait actually used last time."""
        rng = random.Random(11)
        policy = RetryPolicy(
            backoff_seconds=1, max_backoff_seconds=1000, jitter=Jitter.DECORRELATED, rng=rng
        )
        env = make(retry_policy=dataclasses.replace(policy, max_attempts=None))
        previous = None
        for _ in range(6):
            env.mark_dispatched()
            env.mark_failed()
            wait = env.next_retry_wait_seconds()
            assert 1 <= wait <= 3 * (previous if previous is not None else 1)
            previous = wait

    def test_number_subclasses_are_accepted(self) -> None:
        """int and float subclasses (IntEnum, numpy-like scalars) are valid settings."""

        class Seconds(float):
            pass

        class Count(int):
            pass

        policy = RetryPolicy(Count(4), Seconds(1.5), max_backoff_seconds=Seconds(10.0))
        assert policy.wait_seconds_for_attempt(1) == 3.0
        assert policy.is_exhausted(4)

    def test_no_jitter_by_default(self) -> None:
        """The default schedule is exact and reproducible."""
        assert RetryPolicy().jitter is Jitter.NONE
        assert [RetryPolicy().wait_seconds_for_attempt(1) for _ in range(3)] == [60, 60, 60]

    @pytest.mark.parametrize(
        ("kwargs", "error", "needle"),
        [
            ({"max_attempts": 0}, ValueError, "max_attempts"),
            ({"max_attempts": -1}, ValueError, "max_attempts"),
            ({"max_attempts": 2.5}, ValueError, "max_attempts"),
            ({"max_attempts": True}, ValueError, "max_attempts"),
            ({"backoff_seconds": -1}, ValueError, "backoff_seconds"),
            ({"backoff_seconds": float("nan")}, ValueError, "backoff_seconds"),
            ({"backoff_seconds": "30"}, TypeError, "backoff_seconds"),
            ({"max_backoff_seconds": float("inf")}, ValueError, "max_backoff_seconds"),
            ({"backoff_seconds": 10, "max_backoff_seconds": 5}, ValueError, "max_backoff_seconds"),
            ({"exponential": 1}, TypeError, "exponential"),
            ({"jitter": "full"}, TypeError, "jitter"),
            ({"rng": 42}, TypeError, "rng"),
        ],
    )
    def test_configuration_is_validated(
        self, kwargs: dict[str, Any], error: type, needle: str
    ) -> None:
        """Each bad setting raises at construction, naming the argument."""
        with pytest.raises(error, match=needle):
            RetryPolicy(**kwargs)

    @pytest.mark.parametrize(
        ("n", "error"), [(-1, ValueError), (1.0, TypeError), (True, TypeError)]
    )
    def test_attempt_number_is_validated(self, n: Any, error: type) -> None:
        """wait_seconds_for_attempt refuses a negative or non-integer retry number."""
        with pytest.raises(error, match="attempt_number"):
            RetryPolicy().wait_seconds_for_attempt(n)


class TestEnvelopeValidation:
    @pytest.mark.parametrize(
        ("overrides", "error", "needle"),
        [
            ({"event_id": 5}, TypeError, "event_id"),
            ({"event_type": b"t"}, TypeError, "event_type"),
            ({"source_system": None}, TypeError, "source_system"),
            ({"correlation_id": None}, TypeError, "correlation_id"),
            ({"schema_version": 1}, TypeError, "schema_version"),
            ({"created_at": "2026-01-01"}, TypeError, "created_at"),
            (
                {"created_at": T0, "time": Timestamp.parse("2020-01-01T00:00:00Z")},
                ValueError,
                "disagree",
            ),
            ({"status": "pending"}, TypeError, "status"),
            ({"attempt_count": -1}, ValueError, "attempt_count"),
            ({"attempt_count": True}, ValueError, "attempt_count"),
            ({"retry_policy": {"max_attempts": 3}}, TypeError, "retry_policy"),
            ({"tags": [("a", "b")]}, TypeError, "tags"),
            ({"extensions": None}, TypeError, "extensions"),
            ({"history": []}, TypeError, "history"),
            ({"time": "2026-01-01T00:00:00Z"}, TypeError, "time"),
            ({"clock": "now"}, TypeError, "clock"),
            ({"clock": "now", "created_at": T0}, TypeError, "clock"),
        ],
    )
    def test_constructor_arguments_are_validated(
        self, overrides: dict[str, Any], error: type, needle: str
    ) -> None:
        """A bad constructor argument raises, naming the argument."""
        with pytest.raises(error, match=needle):
            make(**overrides)

    def test_no_data_marker_is_distinct_from_none(self) -> None:
        """NO_DATA is its own singleton with a readable repr."""
        assert repr(NO_DATA) == "NO_DATA"
        assert NO_DATA is not None
        assert make(payload=NO_DATA).payload is NO_DATA

    def test_string_subclasses_are_accepted(self) -> None:
        """A str subclass (an enum of event types, say) is a valid id, type or source."""

        class EventType(str):
            pass

        env = make(event_type=EventType("com.example.thing"))
        assert env.to_cloudevent()["type"] == "com.example.thing"

    def test_attributes_mutated_after_construction_are_checked_on_write(self) -> None:
        """An attribute changed to a non-string after construction is named by to_cloudevent."""
        env = make()
        env.event_id = 5  # type: ignore[assignment]
        with pytest.raises(CloudEventError) as info:
            env.to_cloudevent()
        assert info.value.attribute == "id"

    def test_wait_for_an_envelope_built_in_retrying_state(self) -> None:
        """An envelope constructed already RETRYING computes its wait from the policy."""
        env = make(status=S.RETRYING, attempt_count=3)
        assert env.next_retry_wait_seconds() == 120
        assert make(status=S.RETRYING, attempt_count=0).next_retry_wait_seconds() == 30

    def test_seed_era_values_are_accepted_until_written_as_a_cloudevent(self) -> None:
        """An empty id or a naive created_at work as in the seed; to_cloudevent names the rule."""
        naive = make(created_at=datetime(2026, 1, 1))
        naive.mark_dispatched()
        assert "created=2026-01-01T00:00:00" in naive.to_audit_line()
        with pytest.raises(CloudEventError, match="UTC offset") as info:
            naive.to_cloudevent()
        assert info.value.attribute == "time"
        empty = make(event_id="")
        with pytest.raises(CloudEventError) as info:
            empty.to_cloudevent()
        assert info.value.attribute == "id"

    def test_time_without_created_at_sets_created_at(self) -> None:
        """Given only a Timestamp, created_at is its instant (the two never disagree)."""
        stamp = Timestamp.parse("2020-01-01T00:00:00.5Z")
        assert make(time=stamp).created_at == stamp.moment

    def test_created_at_defaults_to_the_injected_clock(self) -> None:
        """Without created_at, the envelope asks its clock."""
        assert make(clock=FakeClock(T0 + timedelta(days=3))).created_at == T0 + timedelta(days=3)


# ======================================================================================
# The lifecycle state machine
# ======================================================================================

S = DeliveryStatus
ALLOWED = {
    S.PENDING: {S.DISPATCHED, S.SKIPPED, S.DEAD_LETTERED},
    S.DISPATCHED: {
        S.DISPATCHED,
        S.ACKNOWLEDGED,
        S.PROCESSED,
        S.RETRYING,
        S.FAILED,
        S.SKIPPED,
        S.DEAD_LETTERED,
    },
    S.ACKNOWLEDGED: {S.PROCESSED, S.RETRYING, S.FAILED, S.SKIPPED, S.DEAD_LETTERED},
    S.RETRYING: {S.DISPATCHED, S.SKIPPED, S.DEAD_LETTERED},
    S.PROCESSED: set(),
    S.FAILED: set(),
    S.SKIPPED: set(),
    S.DEAD_LETTERED: set(),
}


def drive(env: EventEnvelope, target: DeliveryStatus) -> None:
    """Ask the envelope to move to target through its public API."""
    if target is S.DISPATCHED:
        env.mark_dispatched()
    elif target is S.ACKNOWLEDGED:
        env.mark_acknowledged()
    elif target is S.PROCESSED:
        env.mark_processed()
    elif target is S.RETRYING:
        env.retry_policy = RetryPolicy(max_attempts=None)
        env.mark_failed()
    elif target is S.FAILED:
        env.retry_policy = RetryPolicy(max_attempts=1)
        env.mark_failed()
    elif target is S.SKIPPED:
        env.mark_skipped("why")
    elif target is S.DEAD_LETTERED:
        env.mark_dead_lettered("poison")
    else:  # pragma: no cover - PENDING is never a target
        raise AssertionError(target)


class TestTransitions:
    @pytest.mark.parametrize(
        ("current", "target"), list(itertools.product(S, [s for s in S if s is not S.PENDING]))
    )
    def test_every_pair_follows_the_table(
        self, current: DeliveryStatus, target: DeliveryStatus
    ) -> None:
        """Each (state, target) pair is allowed exactly when the table says so."""
        env = make(status=current, attempt_count=1)
        if target in ALLOWED[current]:
            drive(env, target)
            assert env.status is target
            assert env.history[-1].source is current
        else:
            with pytest.raises(InvalidTransitionError) as info:
                drive(env, target)
            assert (info.value.current, info.value.target) == (current, target)
            assert current.value in str(info.value)
            assert target.value in str(info.value)
            assert env.status is current  # nothing changed
            assert env.history == ()

    def test_error_lists_the_allowed_moves_in_declaration_order(self) -> None:
        """The message lists what the current state allows, always in the same order."""
        with pytest.raises(InvalidTransitionError) as info:
            make().mark_acknowledged()
        assert str(info.value) == (
            "event 'evt-001' cannot move from pending to acknowledged; "
            "pending allows dispatched, skipped, dead_lettered"
        )

    def test_failed_after_processed_names_both_states(self) -> None:
        """mark_failed after PROCESSED raises an error naming processed and failed."""
        env = make()
        env.mark_dispatched()
        env.mark_processed()
        with pytest.raises(InvalidTransitionError, match=r"from processed to (retrying|failed)"):
            env.mark_failed()
        assert isinstance(InvalidTransitionError("e", S.PENDING, S.FAILED), ValueError)

    @pytest.mark.parametrize("terminal", [S.PROCESSED, S.FAILED, S.SKIPPED, S.DEAD_LETTERED])
    def test_terminal_states_accept_nothing(self, terminal: DeliveryStatus) -> None:
        """A terminal envelope refuses every further move and says it is terminal."""
        env = make(status=terminal)
        assert env.is_terminal()
        for target in S:
            if target is S.PENDING:
                continue
            with pytest.raises(InvalidTransitionError, match="terminal"):
                drive(env, target)

    def test_history_records_each_move_with_the_clock_time(self) -> None:
        """Every move is appended to an immutable history stamped by the injected clock."""
        clock = FakeClock()
        env = make(clock=clock)
        env.mark_dispatched()
        clock.advance(5)
        env.mark_failed(reason="HTTP 503")
        clock.advance(30)
        env.mark_dispatched()
        env.mark_processed()
        assert env.history == (
            Transition(S.PENDING, S.DISPATCHED, T0),
            Transition(S.DISPATCHED, S.RETRYING, T0 + timedelta(seconds=5), "HTTP 503"),
            Transition(S.RETRYING, S.DISPATCHED, T0 + timedelta(seconds=35)),
            Transition(S.DISPATCHED, S.PROCESSED, T0 + timedelta(seconds=35)),
        )
        with pytest.raises(dataclasses.FrozenInstanceError):
            env.history[0].reason = "rewritten"  # type: ignore[misc]

    def test_an_exhausted_failure_can_dead_letter_directly(self) -> None:
        """mark_failed(dead_letter=True) ends an exhausted event DEAD_LETTERED, not FAILED."""
        env = make(retry_policy=RetryPolicy(max_attempts=1))
        env.mark_dispatched()
        env.mark_failed(reason="HTTP 500", dead_letter=True)
        assert env.status is S.DEAD_LETTERED
        assert env.dead_letter_reason == "HTTP 500"
        quiet = make(retry_policy=RetryPolicy(max_attempts=1))
        quiet.mark_dispatched()
        quiet.mark_failed(dead_letter=True)
        assert quiet.dead_letter_reason == "retry budget exhausted"
        spare = make()
        spare.mark_dispatched()
        spare.mark_failed(dead_letter=True)  # budget left: an ordinary retry
        assert spare.status is S.RETRYING

    def test_dead_lettering_is_terminal_and_keeps_its_reason(self) -> None:
        """mark_dead_lettered is an explicit terminal outcome with a required reason."""
        env = make()
        assert env.dead_letter_reason is None
        env.mark_dead_lettered("schema validation failed")
        assert env.status is S.DEAD_LETTERED
        assert env.is_terminal()
        assert env.dead_letter_reason == "schema validation failed"
        assert env.history[-1].reason == "schema validation failed"
        for reason in ("", "   ", None):
            with pytest.raises(ValueError, match="reason"):
                make().mark_dead_lettered(reason)  # type: ignore[arg-type]


class LifecycleMachine(RuleBasedStateMachine):
    """Random sequences of lifecycle calls keep the envelope's invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.env = make(clock=self.clock, retry_policy=RetryPolicy(max_attempts=4))

    def _try(self, call: Any) -> None:
        before = (self.env.status, self.env.attempt_count, self.env.history)
        refused: InvalidTransitionError | None = None
        try:
            call()
        except InvalidTransitionError as exc:
            refused = exc
        if refused is not None:
            assert refused.target not in ALLOWED[before[0]]
            assert (self.env.status, self.env.attempt_count, self.env.history) == before

    @rule()
    def dispatch(self) -> None:
        self._try(self.env.mark_dispatched)

    @rule()
    def acknowledge(self) -> None:
        self._try(self.env.mark_acknowledged)

    @rule()
    def process(self) -> None:
        self._try(self.env.mark_processed)

    @rule()
    def fail(self) -> None:
        self._try(self.env.mark_failed)

    @rule()
    def skip(self) -> None:
        self._try(self.env.mark_skipped)

    @rule()
    def dead_letter(self) -> None:
        self._try(lambda: self.env.mark_dead_lettered("gave up"))

    @rule(seconds=st.integers(min_value=0, max_value=3600))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def history_is_a_chain_from_pending(self) -> None:
        status = S.PENDING
        for step in self.env.history:
            assert step.source is status
            assert step.target in ALLOWED[step.source]
            status = step.target
        assert status is self.env.status

    @invariant()
    def attempts_count_dispatches(self) -> None:
        dispatches = sum(step.target is S.DISPATCHED for step in self.env.history)
        assert self.env.attempt_count == dispatches

    @invariant()
    def history_times_never_go_backwards(self) -> None:
        times = [step.at for step in self.env.history]
        assert times == sorted(times)

    @invariant()
    def failed_only_when_exhausted(self) -> None:
        if self.env.status is S.FAILED:
            assert self.env.attempt_count >= 4

    @precondition(lambda self: self.env.status is S.RETRYING)
    @invariant()
    def retry_wait_follows_the_policy(self) -> None:
        assert self.env.next_retry_wait_seconds() == min(
            30 * 2 ** (self.env.attempt_count - 1), 3600
        )


TestLifecycleMachine = LifecycleMachine.TestCase
TestLifecycleMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


# ======================================================================================
# RFC 3339 timestamps
# ======================================================================================


class TestTimestamp:
    @pytest.mark.parametrize(
        "case", vector("ce-derived-validation-cases.json")["rfc3339_time"], ids=lambda c: c["s"]
    )
    def test_rfc3339_vectors(self, case: dict[str, Any]) -> None:
        """Each RFC 3339 vector is accepted or refused as the RFC says, unlike fromisoformat."""
        if case["valid"]:
            stamp = Timestamp.parse(case["s"])
            assert stamp.text.upper() == case["s"].upper()
        else:
            with pytest.raises(CloudEventError) as info:
                Timestamp.parse(case["s"])
            assert info.value.attribute == "time"

    def test_nanoseconds_are_kept_exactly(self) -> None:
        """Nanoseconds (and any further digits) survive parse and write."""
        stamp = Timestamp.parse("2018-04-05T17:31:00.123456789Z")
        assert stamp.nanosecond == 123456789
        assert stamp.moment.microsecond == 123456
        assert stamp.text == "2018-04-05T17:31:00.123456789Z"
        longer = Timestamp.parse("2018-04-05T17:31:00.1234567891234+02:00")
        assert longer.text.endswith(".1234567891234+02:00")
        assert longer.nanosecond == 123456789

    def test_lower_case_separators_are_normalised(self) -> None:
        """RFC 3339 allows t and z; the canonical text uses T and Z."""
        assert Timestamp.parse("2018-04-05t17:31:00.5z").text == "2018-04-05T17:31:00.5Z"

    def test_leap_second_is_accepted_on_the_last_utc_minute_only(self) -> None:
        """23:59:60Z (and 15:59:60-08:00) parse; a leap second elsewhere is refused."""
        assert Timestamp.parse("1990-12-31T23:59:60Z").moment.second == 59
        assert Timestamp.parse("1990-12-31T15:59:60-08:00").text == "1990-12-31T15:59:60-08:00"
        assert Timestamp.parse("1992-06-30T23:59:60Z").text == "1992-06-30T23:59:60Z"
        for text in (
            "1990-12-31T23:58:60Z",  # not the last minute
            "2021-03-15T12:59:60Z",  # the last minute of an hour, not of a day
            "1990-12-30T23:59:60Z",  # the last minute of a day, not of a month
            "1990-12-31T23:59:60+01:00",  # 22:59:60 UTC
        ):
            with pytest.raises(CloudEventError, match="leap second"):
                Timestamp.parse(text)
        with pytest.raises(CloudEventError, match="does not exist"):
            Timestamp.parse("2019-02-29T23:59:60Z")
        # At the edge of datetime's range: no OverflowError, only the module's own error.
        assert Timestamp.parse("9999-12-31T23:59:60Z").moment.year == 9999
        for text in ("9999-12-31T22:59:60-01:00", "0001-01-01T00:59:60+01:00"):
            with pytest.raises(CloudEventError):
                Timestamp.parse(text)

    @pytest.mark.parametrize(
        "text",
        [
            "2019-02-29T00:00:00Z",
            "2018-13-01T00:00:00Z",
            "2018-04-31T00:00:00Z",
            "2018-04-05T24:00:00Z",
            "2018-04-05T23:60:00Z",
            "2018-04-05T17:31:00+24:00",
            "2018-04-05T17:31:00+01:60",
            "２０１８-04-05T17:31:00Z",
            "2018-04-05T17:31:00.Z",
            "0000-01-01T00:00:00Z",
        ],
    )
    def test_impossible_dates_and_times_are_refused(self, text: str) -> None:
        """Out-of-range fields and non-ASCII digits raise CloudEventError."""
        with pytest.raises(CloudEventError):
            Timestamp.parse(text)

    def test_leap_day_and_offsets(self) -> None:
        """A leap day parses, and an offset keeps its instant."""
        stamp = Timestamp.parse("2024-02-29T10:00:00+05:30")
        assert stamp.moment == datetime(2024, 2, 29, 4, 30, tzinfo=timezone.utc)
        assert Timestamp.parse("2024-02-29T10:00:00-00:00").moment.utcoffset() == timedelta(0)

    def test_non_string_is_refused(self) -> None:
        """A number for time is a CloudEventError naming the attribute."""
        with pytest.raises(CloudEventError, match="time"):
            Timestamp.parse(1234)  # type: ignore[arg-type]

    def test_from_datetime(self) -> None:
        """from_datetime writes Z for UTC, keeps offsets, and adds nanoseconds on request."""
        assert Timestamp.from_datetime(T0).text == "2026-01-02T03:04:05Z"
        with_micro = T0.replace(microsecond=5)
        assert Timestamp.from_datetime(with_micro).text == "2026-01-02T03:04:05.000005Z"
        assert (
            Timestamp.from_datetime(with_micro, nanosecond=5123).text
            == "2026-01-02T03:04:05.000005123Z"
        )
        assert Timestamp.from_datetime(T0, nanosecond=999).nanosecond == 999
        tz = timezone(timedelta(hours=-8))
        assert Timestamp.from_datetime(T0.astimezone(tz)).text == "2026-01-01T19:04:05-08:00"
        assert str(Timestamp.from_datetime(T0)) == "2026-01-02T03:04:05Z"

    @pytest.mark.parametrize(
        ("moment", "nanosecond", "error"),
        [
            (datetime(2026, 1, 1), None, ValueError),
            ("2026-01-01", None, TypeError),
            (T0.replace(tzinfo=timezone(timedelta(seconds=30))), None, ValueError),
            (T0, 1_000_000_000, ValueError),
            (T0.replace(microsecond=1), 5, ValueError),
            (T0, 1.5, TypeError),
        ],
    )
    def test_from_datetime_validates(self, moment: Any, nanosecond: Any, error: type) -> None:
        """Naive datetimes, odd offsets and inconsistent nanoseconds are refused."""
        with pytest.raises(error):
            Timestamp.from_datetime(moment, nanosecond=nanosecond)

    def test_direct_construction_is_validated(self) -> None:
        """Timestamp(text, moment) checks the text, its canonical form and the instant."""
        assert Timestamp("2026-01-02T03:04:05Z", T0).nanosecond == 0
        with pytest.raises(ValueError, match="text"):
            Timestamp("yesterday", T0)
        with pytest.raises(ValueError, match="text"):
            Timestamp("2026-13-45T03:04:05Z", T0)
        with pytest.raises(ValueError, match="canonical"):
            Timestamp("2026-01-02t03:04:05z", T0)
        with pytest.raises(ValueError, match="moment"):
            Timestamp("2026-01-02T03:04:05Z", datetime(2026, 1, 2))
        with pytest.raises(ValueError, match="moment"):
            Timestamp("2026-01-02T03:04:05Z", T0 + timedelta(seconds=1))

    @given(
        st.datetimes(
            min_value=datetime(1, 1, 1),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(
                [
                    timezone.utc,
                    timezone(timedelta(hours=5, minutes=45)),
                    timezone(timedelta(hours=-11)),
                ]
            ),
        ),
        st.integers(min_value=0, max_value=999),
    )
    def test_write_then_parse_round_trips(self, moment: datetime, extra_nanos: int) -> None:
        """An aware datetime written with nanoseconds parses back to the same instant and digits."""
        nanos = moment.microsecond * 1000 + extra_nanos
        stamp = Timestamp.from_datetime(moment, nanosecond=nanos)
        again = Timestamp.parse(stamp.text)
        assert again == stamp
        assert again.nanosecond == nanos

    @given(st.text(max_size=40))
    def test_parse_fuzz_raises_only_its_own_error(self, text: str) -> None:
        """Arbitrary text either parses or raises CloudEventError, nothing else."""
        with contextlib.suppress(CloudEventError):
            Timestamp.parse(text)

    @given(
        st.from_regex(
            r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
        )
    )
    def test_parse_fuzz_on_the_grammar(self, text: str) -> None:
        """Grammar-shaped text with random digits parses or raises CloudEventError only."""
        try:
            stamp = Timestamp.parse(text)
        except CloudEventError:
            return
        assert Timestamp.parse(stamp.text) == stamp


# ======================================================================================
# CloudEvents JSON format: vectors
# ======================================================================================

STRUCTURED_VECTORS = [
    "ce-1.0.2-spec-example.json",
    "ce-1.0.2-json-xml-data.json",
    "ce-1.0.2-json-object-data.json",
    "ce-1.0.2-json-string-data-no-dct.json",
    "ce-wip-data-base64-no-dct.json",
    "ce-wip-json-number-data.json",
]


class TestJsonFormatVectors:
    @pytest.mark.parametrize("name", STRUCTURED_VECTORS)
    def test_valid_example_round_trips(self, name: str) -> None:
        """Each valid example reads and writes back to the same event (nulls dropped)."""
        vec = vector(name)
        env = EventEnvelope.from_cloudevent(vec["raw"])
        assert env.to_cloudevent() == without_nulls(vec["parsed"])
        assert EventEnvelope.from_cloudevent(vec["parsed"]).to_cloudevent() == without_nulls(
            vec["parsed"]
        )
        assert json.loads(env.to_json()) == without_nulls(vec["parsed"])

    def test_spec_example_maps_onto_envelope_fields(self) -> None:
        """The spec example maps id/type/source/data and keeps extensions with their types."""
        env = EventEnvelope.from_cloudevent(vector("ce-1.0.2-spec-example.json")["raw"])
        assert env.event_id == "A234-1234-1234"
        assert env.event_type == "com.github.pull_request.opened"
        assert env.source_system == "https://github.com/cloudevents/spec/pull"
        assert env.subject == "123"
        assert env.data_content_type == "text/xml"
        assert env.payload == '<much wow="xml"/>'
        assert env.extensions == {"comexampleextension1": "value", "comexampleothervalue": 5}
        assert env.created_at == datetime(2018, 4, 5, 17, 31, tzinfo=timezone.utc)
        assert env.correlation_id == ""
        assert env.schema_version == ""
        assert env.status is S.PENDING

    def test_binary_data_vector_placeholder_is_refused(self) -> None:
        """The spec's '... base64 encoded string ...' placeholder is not Base64: refused."""
        with pytest.raises(CloudEventError) as info:
            EventEnvelope.from_cloudevent(vector("ce-1.0.2-json-binary-data.json")["raw"])
        assert info.value.attribute == "data_base64"

    def test_binary_data_vector_with_real_base64_round_trips(self) -> None:
        """With real Base64 in place, the binary example round-trips as bytes."""
        event = dict(vector("ce-1.0.2-json-binary-data.json")["parsed"])
        event["data_base64"] = base64.b64encode(b"\x00\x01thrift\xff").decode()
        env = EventEnvelope.from_cloudevent(event)
        assert env.payload == b"\x00\x01thrift\xff"
        assert env.to_cloudevent() == event

    def test_unset_extension_null_is_absent(self) -> None:
        """ "unsetextension": null is treated as absent and not written back."""
        env = EventEnvelope.from_cloudevent(vector("ce-1.0.2-json-xml-data.json")["raw"])
        assert "unsetextension" not in env.extensions
        assert "unsetextension" not in env.to_cloudevent()

    def test_json_batch_vector(self) -> None:
        """The batch example's structure reads (with real Base64) and round-trips; [] is valid."""
        vec = vector("ce-1.0.2-json-batch.json")
        with pytest.raises(CloudEventError, match="batch event #0"):
            from_json_batch(vec["raw"])
        events = [dict(e) for e in vec["parsed"]]
        events[0]["data_base64"] = base64.b64encode(b"thrift").decode()
        envs = from_json_batch(json.dumps(events))
        assert len(envs) == vec["expect"]["count"]
        assert json.loads(to_json_batch(envs)) == events
        assert from_json_batch(vec["empty_batch_raw"]) == []
        assert from_json_batch(events) == envs

    def test_json_schema_examples_are_accepted(self) -> None:
        """Every source and datacontenttype example in the official JSON Schema is valid."""
        schema = vector("ce-1.0.2-jsonschema.json")["parsed"]
        for source in schema["properties"]["source"]["examples"]:
            env = EventEnvelope.from_cloudevent(
                {"specversion": "1.0", "id": "1", "source": source, "type": "t"}
            )
            assert env.source_system == source
        for media in schema["properties"]["datacontenttype"]["examples"]:
            event = {
                "specversion": "1.0",
                "id": "1",
                "source": "/s",
                "type": "t",
                "datacontenttype": media,
            }
            assert EventEnvelope.from_cloudevent(event).to_cloudevent() == event
        for required in schema["required"]:
            event = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
            del event[required]
            with pytest.raises(CloudEventError) as info:
                EventEnvelope.from_cloudevent(event)
            assert info.value.attribute == required

    @pytest.mark.parametrize(
        "case", vector("ce-derived-validation-cases.json")["events"], ids=lambda c: c["case"]
    )
    def test_derived_validation_cases(self, case: dict[str, Any]) -> None:
        """Each derived case is accepted, refused, or refused as unsupported, per its verdict."""
        if case["verdict"] == "valid":
            env = EventEnvelope.from_cloudevent(case["json"])
            written = env.to_cloudevent()
            assert written == without_nulls(case["json"])
            if "roundtrip_must_keep" in case:
                assert case["roundtrip_must_keep"].replace(" ", "") in json.dumps(written).replace(
                    " ", ""
                )
        elif case["verdict"] == "unsupported":
            with pytest.raises(UnsupportedSpecVersionError):
                EventEnvelope.from_cloudevent(case["json"])
        else:
            with pytest.raises(CloudEventError) as info:
                EventEnvelope.from_cloudevent(case["json"])
            assert info.value.rule

    @pytest.mark.parametrize(
        "case",
        vector("ce-derived-validation-cases.json")["attribute_names"],
        ids=lambda c: c["name"] or "empty",
    )
    def test_attribute_name_cases(self, case: dict[str, Any]) -> None:
        """Extension names: valid pass, 'warn' ones warn on write, invalid ones are refused."""
        name = case["name"]
        event = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", name: "v"}
        env = make(source_system="/s", extensions={name: "v"})
        if case["verdict"] == "invalid":
            if name != "data":  # on read, "data" is the payload member, not an extension
                with pytest.raises(CloudEventError):
                    EventEnvelope.from_cloudevent(event)
            with pytest.raises(CloudEventError):
                env.to_cloudevent()
            return
        assert EventEnvelope.from_cloudevent(event).extensions == {name: "v"}
        if case["verdict"] == "warn":
            with pytest.warns(CloudEventWarning):
                env.to_cloudevent()
        else:
            assert env.to_cloudevent()[name] == "v"


# ======================================================================================
# The official Python SDK's 17 recorded divergences: interlock does what the spec says
# ======================================================================================

BASE = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


class TestSdkDivergences:
    def test_divergence_list_has_seventeen_entries(self) -> None:
        """The recorded list is the one these tests answer, one by one."""
        assert len(vector("sdk-2.2.0-divergences.json")["observations"]) == 17

    def test_01_subject_null_is_unset(self) -> None:
        """1: "subject": null is valid and means unset."""
        env = EventEnvelope.from_cloudevent(vector("ce-1.0.2-json-object-data.json")["raw"])
        assert env.subject is None

    def test_02_time_settable_from_an_rfc3339_string(self) -> None:
        """2: time is accepted as an RFC 3339 string."""
        env = EventEnvelope.from_cloudevent({**BASE, "time": "2018-04-05T17:31:00Z"})
        assert env.time is not None
        assert env.time.text == "2018-04-05T17:31:00Z"

    def test_03_time_null_is_unset(self) -> None:
        """3: "time": null is unset, not a crash, and is not invented on write."""
        env = EventEnvelope.from_cloudevent({**BASE, "time": None})
        assert env.include_time is False
        assert "time" not in env.to_cloudevent()

    @pytest.mark.parametrize("missing", ["time", "id", "specversion"])
    def test_04_reader_invents_nothing(self, missing: str) -> None:
        """4: missing time stays missing; missing id or specversion is an error."""
        event = {**BASE, "time": "2018-04-05T17:31:00Z"}
        del event[missing]
        if missing == "time":
            assert EventEnvelope.from_cloudevent(event).to_cloudevent() == event
        else:
            with pytest.raises(CloudEventError) as info:
                EventEnvelope.from_cloudevent(event)
            assert info.value.attribute == missing

    def test_05_data_null_distinct_from_absent(self) -> None:
        """5: "data": null round-trips as null; no data round-trips as no data."""
        with_null = EventEnvelope.from_cloudevent({**BASE, "data": None})
        assert with_null.payload is None
        assert with_null.to_cloudevent() == {**BASE, "data": None}
        without = EventEnvelope.from_cloudevent(BASE)
        assert without.payload is NO_DATA
        assert without.to_cloudevent() == BASE

    def test_06_long_extension_name_warns(self) -> None:
        """6: a 25-character name is allowed but flagged (SHOULD NOT), never silently."""
        name = "a" * 25
        assert EventEnvelope.from_cloudevent({**BASE, name: "x"}).extensions[name] == "x"
        with pytest.warns(CloudEventWarning, match="20 characters"):
            make(extensions={name: "x"}).to_cloudevent()

    @pytest.mark.parametrize("value", [{"a": 1}, [1], 1.5])
    def test_07_extension_value_types_are_enforced(self, value: Any) -> None:
        """7: an object, array or fraction as an extension value is refused."""
        with pytest.raises(CloudEventError, match="ext"):
            EventEnvelope.from_cloudevent({**BASE, "ext": value})
        with pytest.raises(CloudEventError, match="ext"):
            make(extensions={"ext": value}).to_cloudevent()

    def test_08_dataschema_absolute_and_source_uri_reference(self) -> None:
        """8: dataschema "rel/path" and source "a b c" are refused."""
        with pytest.raises(CloudEventError, match="dataschema"):
            EventEnvelope.from_cloudevent({**BASE, "dataschema": "rel/path"})
        with pytest.raises(CloudEventError, match="source"):
            EventEnvelope.from_cloudevent({**BASE, "source": "a b c"})

    def test_09_overlong_utf8_header_is_refused(self) -> None:
        """9: ce-id: %C0%A0 (overlong UTF-8) is refused."""
        headers = {"ce-specversion": "1.0", "ce-id": "%C0%A0", "ce-source": "/s", "ce-type": "t"}
        with pytest.raises(CloudEventError, match="UTF-8"):
            EventEnvelope.from_http(headers, b"")

    def test_10_quoted_string_header_is_unescaped(self) -> None:
        """10: ce-subject: "a b" reads as a b."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "/s",
            "ce-type": "t",
            "ce-subject": '"a b"',
        }
        assert EventEnvelope.from_http(headers, b"").subject == "a b"

    def test_11_string_data_without_dct_is_json_in_binary_mode(self) -> None:
        """11: string data without datacontenttype goes out as application/json, quoted."""
        env = EventEnvelope.from_cloudevent({**BASE, "data": "I'm just a string"})
        headers, body = env.to_http()
        assert headers["content-type"] == "application/json"
        assert body == b'"I\'m just a string"'

    def test_12_media_type_is_case_insensitive(self) -> None:
        """12: APPLICATION/JSON with dict data is written as a JSON value, not a repr."""
        env = make(data_content_type="APPLICATION/JSON", payload={"a": 1})
        assert env.to_cloudevent()["data"] == {"a": 1}
        assert json.loads(env.to_json())["data"] == {"a": 1}

    def test_13_integer_extension_in_binary_mode(self) -> None:
        """13: an Integer extension goes on the wire as its canonical string, typed in JSON."""
        env = make(extensions={"count": 5})
        headers, _ = env.to_http()
        assert headers["ce-count"] == "5"
        assert EventEnvelope.from_cloudevent(env.to_json()).extensions["count"] == 5
        assert EventEnvelope.from_http(headers, b"").extensions["count"] == "5"

    def test_14_json_batch_format_is_implemented(self) -> None:
        """14: the JSON batch format reads and writes."""
        envs = [make(event_id="a"), make(event_id="b")]
        assert [e.event_id for e in from_json_batch(to_json_batch(envs))] == ["a", "b"]

    def test_15_data_and_data_base64_error_names_the_rule(self) -> None:
        """15: data plus data_base64 is refused as mutually exclusive, not as a bad extension."""
        with pytest.raises(CloudEventError, match="mutually exclusive"):
            EventEnvelope.from_cloudevent({**BASE, "data": "x", "data_base64": "eA=="})

    @pytest.mark.parametrize("prefix", ["ce-", "CE-"])
    def test_16_structured_mode_wins_over_mirrored_headers(self, prefix: str) -> None:
        """16: application/cloudevents+json is structured even when ce- headers are mirrored."""
        body = json.dumps({**BASE, "data": {"k": 1}}).encode()
        headers = {"Content-Type": "application/cloudevents+json", f"{prefix}id": "1"}
        env = EventEnvelope.from_http(headers, body)
        assert (env.event_id, env.payload) == ("1", {"k": 1})

    def test_17_batched_mode_is_detected(self) -> None:
        """17: application/cloudevents-batch+json is read as a batch."""
        headers, body = to_http_batch([make(event_id="a"), make(event_id="b")])
        assert headers["content-type"].startswith("application/cloudevents-batch+json")
        assert [e.event_id for e in from_http_batch(headers, body)] == ["a", "b"]
        with pytest.raises(CloudEventError, match="from_http_batch"):
            EventEnvelope.from_http(headers, body)


# ======================================================================================
# HTTP binding
# ======================================================================================


class TestHttpBinding:
    @pytest.mark.parametrize(
        "case",
        [c for c in vector("conformance-features.json")["cases"] if c["binding"] == "http"],
        ids=lambda c: c["name"],
    )
    def test_conformance_suite_cases(self, case: dict[str, Any]) -> None:
        """The official conformance scenarios parse to the expected attributes and data."""
        env = EventEnvelope.from_http(case["headers"], case["body"].encode())
        ce = env.to_cloudevent()
        attributes = {k: v for k, v in ce.items() if k not in ("data", "data_base64")}
        assert attributes == case["expect_attributes"]
        assert env.payload == case["expect_data_json"]

    @pytest.mark.parametrize(
        "name",
        [
            "ce-1.0.2-json-xml-data.json",
            "ce-1.0.2-json-object-data.json",
            "ce-1.0.2-json-string-data-no-dct.json",
            "ce-wip-data-base64-no-dct.json",
            "ce-wip-json-number-data.json",
        ],
    )
    def test_binary_rendering_matches_the_spec(self, name: str) -> None:
        """Each JSON-format example renders in binary mode exactly as the spec shows."""
        vec = vector(name)
        expected_headers, expected_body = parse_header_block(vec["http_binary_raw"])
        headers, body = EventEnvelope.from_cloudevent(vec["raw"]).to_http()
        assert headers == expected_headers
        if expected_headers.get("content-type", "").endswith("json"):
            assert json.loads(body) == json.loads(expected_body)
        else:
            assert body == expected_body.encode()

    @pytest.mark.parametrize("name", STRUCTURED_VECTORS)
    def test_binary_mode_round_trip(self, name: str) -> None:
        """to_http then from_http gives back the same event (extension values as strings)."""
        env = EventEnvelope.from_cloudevent(vector(name)["raw"])
        again = EventEnvelope.from_http(*env.to_http())
        assert again.event_id == env.event_id
        assert again.payload == env.payload
        assert again.time == env.time
        assert again.extensions == {k: str(v) for k, v in env.extensions.items()}

    @pytest.mark.parametrize("name", STRUCTURED_VECTORS)
    def test_structured_mode_round_trip(self, name: str) -> None:
        """to_http(structured=True) then from_http gives back the identical event."""
        env = EventEnvelope.from_cloudevent(vector(name)["raw"])
        headers, body = env.to_http(structured=True)
        assert headers == {"content-type": "application/cloudevents+json; charset=utf-8"}
        assert EventEnvelope.from_http(headers, body).to_cloudevent() == env.to_cloudevent()

    @pytest.mark.parametrize(
        "example",
        vector("ce-1.0.2-http-binding-examples.json")["examples"],
        ids=lambda e: e["lines"],
    )
    def test_binding_examples_choose_the_documented_mode(self, example: dict[str, Any]) -> None:
        """The spec's illustrative messages: the Content-Type alone decides the mode."""
        content_types = [
            line.split(":", 1)[1].strip()
            for line in example["raw"].splitlines()
            if line.lower().startswith("content-type:")
        ]
        assert len(content_types) == 1
        ce = {**BASE, "data": {"k": 1}}
        essence = content_types[0].split(";")[0].lower()
        if essence == "application/cloudevents-batch+json":
            body = json.dumps([ce, {**ce, "id": "2"}]).encode()
            assert len(from_http_batch({"Content-Type": content_types[0]}, body)) == 2
        elif essence == "application/cloudevents+json":
            body = json.dumps(ce).encode()
            assert EventEnvelope.from_http({"Content-Type": content_types[0]}, body).event_id == "1"
        else:
            headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
            env = EventEnvelope.from_http(
                {**headers, "Content-Type": content_types[0]}, b'{"k": 1}'
            )
            assert env.payload == {"k": 1}

    @pytest.mark.parametrize("case", vector("ce-1.0.2-http-header-percent-encoding.json")["encode"])
    def test_percent_encoding_vectors(self, case: dict[str, Any]) -> None:
        """Header values are percent-encoded as the spec shows (upper-case hex)."""
        headers, _ = make(subject=case["value"]).to_http()
        assert headers["ce-subject"] == case["header"]

    @pytest.mark.parametrize("case", vector("ce-1.0.2-http-header-percent-encoding.json")["decode"])
    def test_percent_decoding_vectors(self, case: dict[str, Any]) -> None:
        """Header values decode per the spec: lower-case hex, quoted-strings, no overlong UTF-8."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "/s",
            "ce-type": "t",
            "ce-subject": case["header"],
        }
        if case.get("error"):
            with pytest.raises(CloudEventError) as info:
                EventEnvelope.from_http(headers, b"")
            assert info.value.attribute == "ce-subject"
        else:
            assert EventEnvelope.from_http(headers, b"").subject == case["value"]

    def test_characters_that_must_be_encoded(self) -> None:
        """Space, double quote, percent and non-ASCII are encoded; other printable ASCII is not."""
        headers, _ = make(subject='a "b" 100% é!#$&').to_http()
        assert headers["ce-subject"] == "a%20%22b%22%20100%25%20%C3%A9!#$&"
        assert EventEnvelope.from_http(headers, b"").subject == 'a "b" 100% é!#$&'

    @pytest.mark.parametrize(
        ("value", "needle"),
        [
            ("%4", "two-digit"),
            ("100%", "two-digit"),
            ("%zz", "two-digit"),
            ('"a\\"', "backslash"),
            ('"a"b"', "double quote"),
            ('"open', "closing"),
            ('"', "closing"),
        ],
    )
    def test_malformed_header_values_are_refused(self, value: str, needle: str) -> None:
        """Broken escapes and broken quoted-strings raise CloudEventError."""
        headers = {"ce-specversion": "1.0", "ce-id": value, "ce-source": "/s", "ce-type": "t"}
        with pytest.raises(CloudEventError, match=needle):
            EventEnvelope.from_http(headers, b"")

    def test_headers_as_pairs_and_case_insensitive(self) -> None:
        """Headers may be a list of pairs with any case."""
        pairs = [("CE-SpecVersion", "1.0"), ("Ce-Id", "7"), ("ce-SOURCE", "/s"), ("ce-type", "t")]
        assert EventEnvelope.from_http(pairs, b"").event_id == "7"

    def test_duplicate_attribute_headers_are_refused(self) -> None:
        """The same ce- attribute twice (in any case) is ambiguous and refused."""
        pairs = [
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("CE-ID", "2"),
            ("ce-source", "/s"),
            ("ce-type", "t"),
        ]
        with pytest.raises(CloudEventError, match="more than once"):
            EventEnvelope.from_http(pairs, b"")
        with pytest.raises(CloudEventError, match="more than once"):
            EventEnvelope.from_http(
                [*pairs[:2], ("content-type", "a/b"), ("Content-Type", "a/b")], b""
            )

    @pytest.mark.parametrize("name", ["ce-datacontenttype", "ce-data", "ce-data_base64"])
    def test_reserved_headers_are_refused(self, name: str) -> None:
        """datacontenttype travels as Content-Type; data never travels in a header."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "/s",
            "ce-type": "t",
            name: "x",
        }
        with pytest.raises(CloudEventError, match="not carried"):
            EventEnvelope.from_http(headers, b"")

    def test_binary_body_kinds(self) -> None:
        """JSON bodies parse, textual ones decode to str, others stay bytes, empty means no data."""
        base = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
        assert EventEnvelope.from_http(
            {**base, "content-type": "application/vnd.x+json"}, b"[1]"
        ).payload == [1]
        assert (
            EventEnvelope.from_http({**base, "content-type": "text/plain"}, b"hi").payload == "hi"
        )
        assert (
            EventEnvelope.from_http({**base, "content-type": "application/xml"}, b"<a/>").payload
            == "<a/>"
        )
        latin = EventEnvelope.from_http(
            {**base, "content-type": "text/plain; format=flowed; charset=latin-1"},
            "é".encode("latin-1"),
        )
        assert latin.payload == "é"
        assert (
            EventEnvelope.from_http({**base, "content-type": "image/png"}, b"\x89PNG").payload
            == b"\x89PNG"
        )
        assert EventEnvelope.from_http(base, b"\x00\x01").payload == b"\x00\x01"
        assert EventEnvelope.from_http(base, b"").payload is NO_DATA

    @pytest.mark.parametrize(
        ("content_type", "body", "needle"),
        [
            ("application/json", b"{not json", "not valid JSON"),
            ("application/json; charset=latin-1", b"{}", "UTF-8"),
            ("text/plain; charset=nonesuch", b"x", "does not decode"),
            ("text/plain", b"\xff\xfe\xfa", "does not decode"),
            ("application/cloudevents+avro", b"x", "not supported"),
            ("application/cloudevents+json; charset=utf-16", b"{}", "UTF-8"),
        ],
    )
    def test_bad_bodies_are_refused(self, content_type: str, body: bytes, needle: str) -> None:
        """Undecodable bodies and unsupported formats raise CloudEventError."""
        headers = {
            "ce-specversion": "1.0",
            "ce-id": "1",
            "ce-source": "/s",
            "ce-type": "t",
            "content-type": content_type,
        }
        with pytest.raises(CloudEventError, match=needle):
            EventEnvelope.from_http(headers, body)

    @pytest.mark.parametrize("headers", ["ce-id: 1", 42, [("ce-id",)], [("ce-id", 1)]])
    def test_header_argument_types(self, headers: Any) -> None:
        """A wrong headers argument is a TypeError explaining the expected shape."""
        with pytest.raises(TypeError, match="header"):
            EventEnvelope.from_http(headers, b"")

    def test_body_must_be_bytes(self) -> None:
        """A str body is refused: the binding reads the raw bytes received."""
        with pytest.raises(TypeError, match="raw bytes"):
            EventEnvelope.from_http({}, "{}")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="raw bytes"):
            from_http_batch({}, "[]")  # type: ignore[arg-type]

    def test_binary_output_for_each_payload_kind(self) -> None:
        """Bytes go raw, text goes in its charset, null goes as JSON null, no data is empty."""
        headers, body = make(
            payload=b"\x00raw", data_content_type="application/octet-stream"
        ).to_http()
        assert (headers["content-type"], body) == ("application/octet-stream", b"\x00raw")
        headers, body = make(payload="é", data_content_type="text/plain; charset=latin-1").to_http()
        assert body == "é".encode("latin-1")
        headers, body = make(payload=None).to_http()
        assert (headers["content-type"], body) == ("application/json", b"null")
        headers, body = make(payload=NO_DATA).to_http()
        assert "content-type" not in headers
        assert body == b""
        headers, _ = make(extensions={"flag": True, "off": False}).to_http()
        assert (headers["ce-flag"], headers["ce-off"]) == ("true", "false")

    def test_lone_surrogates_in_data_are_a_clear_error_on_write(self) -> None:
        """Data read with a lone surrogate escape cannot be written as UTF-8: CloudEventError."""
        env = EventEnvelope.from_cloudevent(
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"\\ud800"}'
        )
        assert env.payload == "\ud800"
        with pytest.raises(CloudEventError, match="surrogate"):
            env.to_json()
        with pytest.raises(CloudEventError, match="surrogate"):
            env.to_http()

    def test_bytes_declared_as_json_must_be_json_in_binary_mode(self) -> None:
        """Raw bytes sent as application/json must parse, since a reader will parse them."""
        with pytest.raises(CloudEventError, match="JSON text"):
            make(payload=b"\x00\x01", data_content_type="application/json").to_http()
        headers, body = make(payload=b'{"a": 1}', data_content_type="application/json").to_http()
        assert EventEnvelope.from_http(headers, body).payload == {"a": 1}

    def test_json_with_a_non_utf8_charset_is_refused_on_write(self) -> None:
        """A JSON datacontenttype asking for latin-1 cannot be honoured (JSON is UTF-8)."""
        env = make(data_content_type="application/json; charset=latin-1")
        with pytest.raises(CloudEventError) as info:
            env.to_http()
        assert info.value.attribute == "datacontenttype"
        headers, body = make(data_content_type="application/json; charset=UTF-8").to_http()
        assert EventEnvelope.from_http(headers, body).payload == {"student_id": "S-1"}

    def test_explicit_null_with_a_non_json_type(self) -> None:
        """ "data": null with text/xml round-trips in JSON; binary mode cannot carry it."""
        event = {**BASE, "datacontenttype": "text/xml", "data": None}
        env = EventEnvelope.from_cloudevent(event)
        assert env.to_cloudevent() == event
        with pytest.raises(CloudEventError, match="explicit null"):
            env.to_http()

    def test_codec_errors_are_clear(self) -> None:
        """A charset whose codec raises a UnicodeError (idna) gives CloudEventError."""
        headers = {
            **dict.fromkeys(["ce-id", "ce-type"], "1"),
            "ce-specversion": "1.0",
            "ce-source": "/s",
        }
        with pytest.raises(CloudEventError, match="does not decode"):
            EventEnvelope.from_http(
                {**headers, "content-type": "text/plain; charset=idna"}, b"xn--abc-"
            )

    def test_unencodable_text_is_refused(self) -> None:
        """Text that the declared charset cannot hold raises CloudEventError."""
        with pytest.raises(CloudEventError, match="data"):
            make(payload="€", data_content_type="text/plain; charset=ascii").to_http()
        with pytest.raises(CloudEventError, match="data"):
            make(payload="x", data_content_type="text/plain; charset=nonesuch").to_http()

    def test_batch_reader_accepts_single_event_messages(self) -> None:
        """from_http_batch returns a one-element list for a binary or structured message."""
        env = make()
        assert [e.event_id for e in from_http_batch(*env.to_http())] == ["evt-001"]
        assert [e.event_id for e in from_http_batch(*env.to_http(structured=True))] == ["evt-001"]

    def test_batch_charset_is_checked(self) -> None:
        """A batch in a non-UTF-8 charset is refused."""
        with pytest.raises(CloudEventError, match="UTF-8"):
            from_http_batch(
                {"content-type": "application/cloudevents-batch+json; charset=latin-1"}, b"[]"
            )


# ======================================================================================
# Writing CloudEvents: mapping and validation
# ======================================================================================


class TestWriting:
    def test_envelope_fields_map_to_attributes(self) -> None:
        """Seed fields map to id/type/source/data and the two extensions."""
        env = make(
            correlation_id="corr-7", schema_version="2.1", created_at=T0, source_system="/crm"
        )
        assert env.to_cloudevent() == {
            "specversion": "1.0",
            "id": "evt-001",
            "source": "/crm",
            "type": "enrollment.student.updated",
            "time": "2026-01-02T03:04:05Z",
            "correlationid": "corr-7",
            "schemaversion": "2.1",
            "data": {"student_id": "S-1"},
        }

    def test_optional_attributes_are_written(self) -> None:
        """subject, datacontenttype, dataschema and extensions are written when set."""
        env = make(
            subject="contact/7",
            data_content_type="application/json",
            data_schema="https://schemas.example.com/contact.json",
            extensions={"tenant": "acme", "priority": 2, "urgent": False},
        )
        ce = env.to_cloudevent()
        assert ce["subject"] == "contact/7"
        assert ce["dataschema"] == "https://schemas.example.com/contact.json"
        assert (ce["tenant"], ce["priority"], ce["urgent"]) == ("acme", 2, False)

    def test_nanosecond_time_is_written_exactly(self) -> None:
        """An explicit Timestamp with nanoseconds is written digit for digit."""
        stamp = Timestamp.parse("2026-01-02T03:04:05.123456789Z")
        env = make(created_at=stamp.moment, time=stamp)
        assert env.to_cloudevent()["time"] == "2026-01-02T03:04:05.123456789Z"
        assert EventEnvelope.from_cloudevent(env.to_json()).time == stamp

    def test_bytes_payload_becomes_data_base64(self) -> None:
        """bytes, bytearray and memoryview payloads are written as data_base64."""
        for payload in (b"\x00\xff", bytearray(b"\x00\xff"), memoryview(b"\x00\xff")):
            ce = make(payload=payload).to_cloudevent()
            assert ce["data_base64"] == "AP8="
            assert "data" not in ce

    @pytest.mark.parametrize(
        ("overrides", "attribute"),
        [
            ({"source_system": "CRM System"}, "source"),
            ({"source_system": ":nope"}, "source"),
            ({"source_system": "/a%zz"}, "source"),
            ({"source_system": "/a#b#c"}, "source"),
            ({"event_id": "bad\nid"}, "id"),
            ({"event_type": "t\x00"}, "type"),
            ({"subject": ""}, "subject"),
            ({"data_content_type": "json"}, "datacontenttype"),
            ({"data_schema": "rel/path"}, "dataschema"),
            ({"data_schema": "https://x/schema.json#frag"}, "dataschema"),
            ({"data_schema": "1http://x"}, "dataschema"),
            ({"correlation_id": "a\x7fb"}, "correlationid"),
            ({"schema_version": "\ud800"}, "schemaversion"),
            ({"extensions": {"Bad": "x"}}, "Bad"),
            ({"extensions": {"data": "x"}}, "data"),
            ({"extensions": {"id": "x"}}, "id"),
            ({"correlation_id": "c", "extensions": {"correlationid": "x"}}, "correlationid"),
            ({"extensions": {"big": 2**31}}, "big"),
            ({"extensions": {"none": None}}, "none"),
            ({"data_content_type": "text/plain", "payload": {"a": 1}}, "data"),
            ({"created_at": T0.replace(tzinfo=timezone(timedelta(seconds=90)))}, None),
        ],
    )
    def test_invalid_attributes_are_refused_on_write(
        self, overrides: dict[str, Any], attribute: str | None
    ) -> None:
        """to_cloudevent refuses what the spec forbids, naming the attribute."""
        env = make(**overrides)
        if attribute is None:
            with pytest.raises(CloudEventError, match="whole number of minutes") as info:
                env.to_cloudevent()
            assert info.value.attribute == "time"
            return
        with pytest.raises(CloudEventError) as info:
            env.to_cloudevent()
        assert info.value.attribute == attribute
        assert attribute in str(info.value)

    def test_unserialisable_payload_is_a_clear_error(self) -> None:
        """to_json of a payload JSON cannot hold (NaN, a set) names data."""
        for payload in ({"x": float("nan")}, {"x": {1, 2}}):
            with pytest.raises(CloudEventError, match="data"):
                make(payload=payload).to_json()
            with pytest.raises(CloudEventError, match="data"):
                make(payload=payload).to_http()

    def test_unicode_strings_are_allowed(self) -> None:
        """Non-ASCII text (not controls or noncharacters) is a valid String."""
        env = make(subject="café ☕ 😀", correlation_id="\u00a0nbsp")
        assert EventEnvelope.from_cloudevent(env.to_json()).subject == "café ☕ 😀"

    @pytest.mark.parametrize("char", ["\x85", "\ufdd0", "\ufffe", "\U0001ffff", "\U0010ffff"])
    def test_forbidden_unicode_is_refused(self, char: str) -> None:
        """C1 controls and noncharacters are refused in String attributes."""
        with pytest.raises(CloudEventError, match="forbids"):
            make(subject=f"a{char}b").to_cloudevent()

    def test_batch_writer_takes_only_envelopes(self) -> None:
        """to_json_batch refuses something that is not an envelope."""
        with pytest.raises(TypeError, match="EventEnvelope"):
            to_json_batch([{"id": "1"}])  # type: ignore[list-item]


# ======================================================================================
# Reading CloudEvents: validation and robustness
# ======================================================================================


class TestReading:
    @pytest.mark.parametrize(
        ("event", "attribute"),
        [
            ({**BASE, "specversion": 1.0}, "specversion"),
            ({**BASE, "id": 5}, "id"),
            ({**BASE, "type": ""}, "type"),
            ({**BASE, "subject": 3}, "subject"),
            ({**BASE, "datacontenttype": "nonsense"}, "datacontenttype"),
            ({**BASE, "time": "yesterday"}, "time"),
            ({**BASE, "correlationid": {"a": 1}}, "correlationid"),
            ({**BASE, "schemaversion": ["1"]}, "schemaversion"),
            ({**BASE, "schemaversion": 2**31}, "schemaversion"),
            ({**BASE, "Ext": "x"}, "Ext"),
            ({**BASE, "ext": 2**40}, "ext"),
            ({**BASE, "data_base64": 5}, "data_base64"),
            ({**BASE, "data_base64": "not base64!"}, "data_base64"),
            ({**BASE, "data_base64": "é"}, "data_base64"),
            ({**BASE, "datacontenttype": "text/plain", "data": {"a": 1}}, "data"),
        ],
    )
    def test_invalid_members_name_the_attribute(
        self, event: dict[str, Any], attribute: str
    ) -> None:
        """Each invalid member raises CloudEventError naming it."""
        with pytest.raises(CloudEventError) as info:
            EventEnvelope.from_cloudevent(event)
        assert info.value.attribute == attribute

    def test_unsupported_specversion_is_a_distinct_error(self) -> None:
        """specversion 0.3 raises UnsupportedSpecVersionError (a CloudEventError)."""
        with pytest.raises(UnsupportedSpecVersionError) as info:
            EventEnvelope.from_cloudevent({**BASE, "specversion": "0.3"})
        assert info.value.specversion == "0.3"
        assert isinstance(info.value, CloudEventError)
        with pytest.raises(UnsupportedSpecVersionError, match="batch event #1"):
            from_json_batch([BASE, {**BASE, "specversion": "0.3"}])

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":NaN}',
            b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":[Infinity]}',
            '{"specversion":"1.0","id":"1","source":"/s","type":"t"}'.encode("utf-16"),
            b"\xef\xbb\xbf{}",
        ],
    )
    def test_json_is_read_strictly(self, raw: bytes) -> None:
        """NaN, Infinity, UTF-16 and a byte-order mark are refused: CloudEvents JSON is UTF-8."""
        with pytest.raises(CloudEventError, match="not valid JSON"):
            EventEnvelope.from_cloudevent(raw)

    def test_invalid_extension_name_is_refused_even_when_null(self) -> None:
        """A badly named member is refused even if its value is null."""
        with pytest.raises(CloudEventError) as info:
            EventEnvelope.from_cloudevent({**BASE, "Bad-Name": None})
        assert info.value.attribute == "Bad-Name"

    @pytest.mark.parametrize("value", ["", 5, True])
    def test_envelope_extensions_of_other_types_round_trip(self, value: object) -> None:
        """correlationid/schemaversion that are not non-empty Strings stay extensions, exactly."""
        for name in ("correlationid", "schemaversion"):
            event = {**BASE, name: value}
            env = EventEnvelope.from_cloudevent(event)
            assert env.extensions == {name: value}
            assert env.to_cloudevent() == event

    def test_extension_order_is_kept(self) -> None:
        """Extensions are written back in the order they were read, so rewrites are stable."""
        names = ["zeta", "alpha", "mid", "beta9", "a1"]
        event = {**BASE, **{name: name for name in names}}
        assert list(EventEnvelope.from_cloudevent(event).to_cloudevent())[4:] == names

    def test_clock_must_return_an_aware_datetime(self) -> None:
        """A reader clock that returns a naive datetime is refused, not stored."""
        with pytest.raises(TypeError, match="aware"):
            EventEnvelope.from_cloudevent(BASE, clock=lambda: datetime(2026, 1, 1))

    @pytest.mark.parametrize(
        "raw", ["[1]", "5", "null", b"\xff\xfe{", "{", "", b'{"a": 1' + b"]" * 3]
    )
    def test_non_object_documents_are_refused(self, raw: str | bytes) -> None:
        """JSON that is not an object, or not JSON, raises CloudEventError."""
        with pytest.raises(CloudEventError):
            EventEnvelope.from_cloudevent(raw)

    @pytest.mark.parametrize("raw", ['{"a": 1}', "5", b"\xff"])
    def test_batch_must_be_an_array(self, raw: str | bytes) -> None:
        """A batch that is not a JSON array of objects raises CloudEventError."""
        with pytest.raises(CloudEventError):
            from_json_batch(raw)
        with pytest.raises(CloudEventError, match="#0"):
            from_json_batch([5])  # type: ignore[list-item]
        with pytest.raises(CloudEventError, match="#1"):
            from_json_batch(iter([BASE, {**BASE, "id": ""}]))

    def test_deeply_nested_json_is_a_clear_error(self) -> None:
        """A document nested past the parser's recursion limit is a CloudEventError."""
        with pytest.raises(CloudEventError):
            EventEnvelope.from_cloudevent('{"data":' + "[" * 100_000 + "]" * 100_000 + "}")

    def test_reading_uses_the_injected_clock_only_when_time_is_absent(self) -> None:
        """created_at is the event time when present, else the injected clock."""
        clock = FakeClock(T0)
        assert EventEnvelope.from_cloudevent(BASE, clock=clock).created_at == T0
        timed = EventEnvelope.from_cloudevent({**BASE, "time": "2020-01-01T00:00:00Z"}, clock=clock)
        assert timed.created_at == datetime(2020, 1, 1, tzinfo=timezone.utc)

    def test_retry_policy_can_be_given(self) -> None:
        """from_cloudevent takes the retry policy the new envelope should use."""
        policy = RetryPolicy(max_attempts=9)
        assert EventEnvelope.from_cloudevent(BASE, retry_policy=policy).retry_policy is policy
        with pytest.raises(TypeError, match="retry_policy"):
            EventEnvelope.from_cloudevent(BASE, retry_policy="9")  # type: ignore[arg-type]

    def test_fast_path_builds_the_same_envelope_as_the_constructor(self) -> None:
        """The reader's trusted construction yields exactly what the constructor would."""
        env = EventEnvelope.from_cloudevent(
            vector("ce-1.0.2-spec-example.json")["raw"], clock=FakeClock()
        )
        rebuilt = EventEnvelope(
            **{f.name: getattr(env, f.name) for f in dataclasses.fields(env) if f.init}
        )
        assert rebuilt == env
        assert set(vars(env)) == set(vars(rebuilt))

    def test_subclasses_are_built_through_their_constructor(self) -> None:
        """A subclass's __post_init__ runs when it reads a CloudEvent."""

        class Strict(EventEnvelope):
            def __post_init__(self) -> None:
                super().__post_init__()
                if not self.event_type.startswith("com."):
                    raise ValueError("event_type must be reverse-DNS")

        assert isinstance(Strict.from_cloudevent({**BASE, "type": "com.x"}), Strict)
        with pytest.raises(ValueError, match="reverse-DNS"):
            Strict.from_cloudevent(BASE)

    def test_errors_share_one_root_that_is_a_value_error(self) -> None:
        """Every error class derives from EnvelopeError, a ValueError."""
        for cls in (CloudEventError, InvalidTransitionError, UnsupportedSpecVersionError):
            assert issubclass(cls, EnvelopeError)
        assert issubclass(EnvelopeError, ValueError)


# ======================================================================================
# Properties: round trips and fuzzing
# ======================================================================================

NAME = st.from_regex(r"\A[a-z][a-z0-9]{0,15}\Z")
TEXT = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=20,
)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
SOURCE = st.sampled_from(
    ["/crm", "https://erp.example.com/orders", "urn:uuid:6e8bc430", "1-555-123-4567", "a/b?c=d#e"]
)
EXT_VALUE = (
    st.booleans()
    | st.integers(-(2**31), 2**31 - 1)
    | st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
        max_size=10,
    )
)
EXT_NAME = st.from_regex(r"\A[a-z][a-z0-9]{0,12}\Z").filter(
    lambda n: (
        n
        not in {
            "id",
            "source",
            "type",
            "subject",
            "time",
            "data",
            "specversion",
            "dataschema",
            "correlationid",
            "schemaversion",
            "datacontenttype",
        }
    )
)


@st.composite
def envelopes(draw: st.DrawFn) -> EventEnvelope:
    """Arbitrary valid envelopes."""
    payload = draw(st.one_of(JSON_VALUE, st.binary(max_size=20), st.just(NO_DATA)))
    micros = draw(st.integers(0, 999_999))
    created = T0.replace(microsecond=micros)
    nanos = draw(st.none() | st.integers(0, 999))
    return EventEnvelope(
        draw(TEXT),
        draw(TEXT),
        draw(SOURCE),
        payload,
        draw(st.just("") | TEXT),
        draw(st.just("") | TEXT),
        created,
        subject=draw(st.none() | TEXT),
        time=None
        if nanos is None
        else Timestamp.from_datetime(created, nanosecond=micros * 1000 + nanos),
        extensions=draw(st.dictionaries(EXT_NAME, EXT_VALUE, max_size=3)),
        clock=FakeClock(),
    )


def same_event(a: EventEnvelope, b: EventEnvelope) -> None:
    """The CloudEvents-visible parts of two envelopes agree."""
    assert a.to_cloudevent() == b.to_cloudevent()


class TestProperties:
    @given(envelopes())
    def test_json_round_trip(self, env: EventEnvelope) -> None:
        """to_json then from_cloudevent preserves every CloudEvents-visible field."""
        again = EventEnvelope.from_cloudevent(env.to_json())
        same_event(env, again)
        assert again.payload == env.payload or (env.payload is NO_DATA and again.payload is NO_DATA)

    @given(envelopes())
    def test_structured_http_round_trip(self, env: EventEnvelope) -> None:
        """Structured HTTP mode round-trips exactly."""
        same_event(env, EventEnvelope.from_http(*env.to_http(structured=True)))

    @given(envelopes())
    def test_binary_http_round_trip(self, env: EventEnvelope) -> None:
        """Binary HTTP mode round-trips, with extension values as their canonical strings."""
        again = EventEnvelope.from_http(*env.to_http())
        ce, back = env.to_cloudevent(), again.to_cloudevent()
        for name, value in env.extensions.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            assert back.pop(name) == text
            ce.pop(name)
        if env.payload is not NO_DATA and not isinstance(env.payload, (bytes, bytearray)):
            ce.setdefault("datacontenttype", "application/json")
        if env.payload == b"":  # binary mode cannot tell an empty body from no data
            assert again.payload is NO_DATA
            del ce["data_base64"]
        assert back == ce

    @given(st.lists(envelopes(), max_size=4))
    def test_batch_round_trip(self, envs: list[EventEnvelope]) -> None:
        """A JSON batch round-trips every event in order."""
        again = from_http_batch(*to_http_batch(envs))
        assert [e.to_cloudevent() for e in again] == [e.to_cloudevent() for e in envs]

    @settings(max_examples=300)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "specversion",
                    "id",
                    "source",
                    "type",
                    "time",
                    "subject",
                    "datacontenttype",
                    "dataschema",
                    "data",
                    "data_base64",
                    "correlationid",
                    "ext",
                    "Ext",
                    "x_y",
                ]
            ),
            JSON_VALUE
            | st.sampled_from(
                [
                    "1.0",
                    "2018-04-05T17:31:00Z",
                    "application/json",
                    "text/plain",
                    "eA==",
                    "/s",
                    "http://x",
                ]
            ),
        )
    )
    def test_reader_fuzz_raises_only_its_own_errors(self, event: dict[str, Any]) -> None:
        """Arbitrary objects either read or raise an EnvelopeError, never another exception."""
        try:
            env = EventEnvelope.from_cloudevent(event)
        except EnvelopeError:
            return
        EventEnvelope.from_cloudevent(env.to_json())

    @settings(max_examples=300)
    @given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
    def test_reader_fuzz_on_raw_bytes(self, raw: bytes) -> None:
        """Arbitrary bytes either read or raise an EnvelopeError."""
        with contextlib.suppress(EnvelopeError):
            EventEnvelope.from_cloudevent(raw)
        with contextlib.suppress(EnvelopeError):
            from_json_batch(raw)

    @settings(max_examples=300)
    @given(
        st.dictionaries(
            st.sampled_from(
                [
                    "ce-specversion",
                    "ce-id",
                    "ce-source",
                    "ce-type",
                    "ce-time",
                    "ce-subject",
                    "ce-ext",
                    "content-type",
                    "ce-dataschema",
                ]
            ),
            st.text(max_size=30)
            | st.sampled_from(
                [
                    "1.0",
                    "%C0%A0",
                    '"quoted"',
                    "application/json",
                    "text/plain; charset=x",
                    "application/cloudevents+json",
                    "application/cloudevents-batch+json",
                ]
            ),
        ),
        st.binary(max_size=60),
    )
    def test_http_reader_fuzz_raises_only_its_own_errors(
        self, headers: dict[str, str], body: bytes
    ) -> None:
        """Arbitrary HTTP messages either read or raise an EnvelopeError."""
        with contextlib.suppress(EnvelopeError):
            from_http_batch(headers, body)
