"""Tests for interlock.ledger: model, state machines, stores, pipelines, schedules, reports."""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import ledger as ledger_module
from interlock.ledger import (
    ITEM_TRANSITIONS,
    RUN_TRANSITIONS,
    SCHEMA_VERSION,
    STAGE_TRANSITIONS,
    AttemptOutcome,
    Backoff,
    BusinessError,
    DeadLetterReason,
    Dedup,
    EventKind,
    ExternalLink,
    InMemoryLedgerStore,
    ItemStatus,
    LeaseLostError,
    Ledger,
    LedgerError,
    ManualClock,
    NotFoundError,
    Pipeline,
    ProcessDefinition,
    RetryPolicy,
    RunKeyConflictError,
    RunStatus,
    Schedule,
    ScheduleError,
    SchemaError,
    SQLLedgerStore,
    StageStatus,
    StaleVersionError,
    Step,
    TransitionError,
    Trigger,
    classify_code,
    connect_sqlite,
    due_runs,
    migrate,
    utc_now,
    validate_payload,
    validate_transition,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Each backend in turn: in-memory, SQLite on a real file, PostgreSQL."""
    if request.param == "memory":
        yield InMemoryLedgerStore()
        return
    if request.param == "sqlite":
        conn = connect_sqlite(str(tmp_path / "ledger.db"))
        migrate(conn)
        yield SQLLedgerStore(conn)
        conn.close()
        return
    pg = request.getfixturevalue("postgres")
    conn = pg.connect()
    migrate(conn)
    yield SQLLedgerStore(conn)
    conn.close()


def two_platforms(erp_attempts: int | None = 2, bank_attempts: int | None = 5) -> ProcessDefinition:
    return ProcessDefinition(
        "invoice",
        (
            Step(
                "erp",
                retry=RetryPolicy(max_attempts=erp_attempts, backoff=Backoff.FIXED, base_delay=10),
            ),
            Step(
                "bank",
                retry=RetryPolicy(max_attempts=bank_attempts, backoff=Backoff.LINEAR, base_delay=5),
            ),
        ),
        dedup=Dedup.fields("invoice_no"),
    )


def make(
    store: Any, definition: ProcessDefinition | None = None, **kw: Any
) -> tuple[Ledger, ManualClock]:
    clock = ManualClock(T0)
    ledger = Ledger(store, clock=clock, lease_seconds=kw.pop("lease_seconds", 60), **kw)
    ledger.define(definition or two_platforms())
    return ledger, clock


def drive(
    ledger: Ledger, clock: ManualClock, codes: dict[str, list[int]], worker: str = "w"
) -> None:
    """Work every due stage with the next code of its step (0 when the list runs out)."""
    for _ in range(200):
        claim = ledger.claim("invoice", worker=worker)
        if claim is None:
            clock.advance(60)
            claim = ledger.claim("invoice", worker=worker)
            if claim is None:
                return
        queue = codes.get(claim.stage.step, [])
        ledger.complete(claim, code=queue.pop(0) if queue else 0, error="err")
    raise AssertionError("did not settle")


# ---------------------------------------------------------------------------
# state machines
# ---------------------------------------------------------------------------

ALL_TABLES = [RUN_TRANSITIONS, ITEM_TRANSITIONS, STAGE_TRANSITIONS]


@given(
    st.sampled_from(ALL_TABLES).flatmap(
        lambda t: st.tuples(st.just(t), st.sampled_from(list(t)), st.sampled_from(list(t)))
    )
)
def test_validate_transition_agrees_with_the_tables(case: Any) -> None:
    """validate_transition accepts exactly the pairs in the transition table, naming both states."""
    table, old, new = case
    if new in table[old]:
        validate_transition(old, new)
    else:
        with pytest.raises(TransitionError) as info:
            validate_transition(old, new)
        assert (info.value.old, info.value.new) == (old, new)
        assert old.value in str(info.value)
        assert new.value in str(info.value)


def test_transition_refuses_a_status_of_another_kind() -> None:
    """A stage status cannot move to an item status even when the values match."""
    with pytest.raises(TransitionError):
        validate_transition(StageStatus.PENDING, ItemStatus.IN_PROGRESS)


def test_exhausted_is_distinct_from_retry_waiting_and_rejected() -> None:
    """EXHAUSTED, RETRY_WAITING and REJECTED are three statuses; only RETRY_WAITING runs again."""
    for enum in (StageStatus, ItemStatus):
        values = {enum.EXHAUSTED.value, enum.RETRY_WAITING.value, enum.REJECTED.value}
        assert len(values) == 3
    assert StageStatus.RUNNING in STAGE_TRANSITIONS[StageStatus.RETRY_WAITING]
    assert StageStatus.RUNNING not in STAGE_TRANSITIONS[StageStatus.EXHAUSTED]
    assert StageStatus.RUNNING not in STAGE_TRANSITIONS[StageStatus.REJECTED]
    assert STAGE_TRANSITIONS[StageStatus.SUCCEEDED] == frozenset()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["claim", "advance", "redrive", "expire"]), st.integers(-3, 3)),
        max_size=40,
    )
)
def test_engine_state_machine_keeps_its_invariants(ops: list[tuple[str, int]]) -> None:
    """Random claims, codes, clock moves, lease expiries and redrives keep every invariant."""
    ledger, clock = make(InMemoryLedgerStore())
    items = [ledger.start_or_resume("invoice", {"invoice_no": n})[0].id for n in range(3)]
    for op, value in ops:
        if op == "advance":
            clock.advance(abs(value) * 7)
        elif op == "redrive":
            letters = ledger.dead_letters()
            if letters:
                ledger.redrive(letters[0].id)
        else:
            claim = ledger.claim("invoice", worker=f"w{value}")
            if claim is not None and op == "claim":
                ledger.complete(claim, code=value)
            elif claim is not None:
                clock.advance(61)  # its worker dies: the lease runs out
    for item_id in items:
        stages = ledger.stages(item_id)
        attempts = ledger.attempts(item_id)
        for stage in stages:
            chain = ledger.history("stage", stage.id)
            assert chain[0].old is None
            for prev, nxt in itertools.pairwise(chain):
                assert prev.new == nxt.old
                validate_transition(StageStatus(nxt.old), StageStatus(nxt.new))
            assert chain[-1].new == stage.status.value
            mine = [a for a in attempts if a.stage_id == stage.id]
            assert [a.attempt_no for a in mine] == list(range(1, stage.attempts + 1))
            assert sum(a.outcome is AttemptOutcome.SUCCESS for a in mine) <= 1
            assert sum(a.outcome is None for a in mine) == (stage.status is StageStatus.RUNNING)
            policy = two_platforms().step(stage.step).retry
            assert stage.attempts - stage.budget_base <= policy.max_attempts  # type: ignore[operator]
        item = ledger.get_item(item_id)
        ichain = ledger.history("item", item_id)
        assert ichain[-1].new == item.status.value
        if item.status is ItemStatus.SUCCEEDED:
            assert [s.status for s in stages] == [StageStatus.SUCCEEDED] * 2


# ---------------------------------------------------------------------------
# codes, retry policies, dedup
# ---------------------------------------------------------------------------


def test_error_code_convention() -> None:
    """0 is success, negative a system error, positive a business error; bools are refused."""
    assert classify_code(0) is AttemptOutcome.SUCCESS
    assert classify_code(-500) is AttemptOutcome.SYSTEM_ERROR
    assert classify_code(12) is AttemptOutcome.BUSINESS_ERROR
    with pytest.raises(TypeError):
        classify_code(True)
    with pytest.raises(TypeError):
        classify_code("0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        (Backoff.FIXED, [3.0, 3.0, 3.0, 3.0]),
        (Backoff.LINEAR, [3.0, 6.0, 9.0, 10.0]),
        (Backoff.EXPONENTIAL, [3.0, 6.0, 10.0, 10.0]),
    ],
)
def test_retry_policy_delays(backoff: Backoff, expected: list[float]) -> None:
    """Fixed, linear and exponential delays grow as documented and stop at max_delay."""
    policy = RetryPolicy(max_attempts=None, backoff=backoff, base_delay=3, max_delay=10)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == expected
    assert policy.delay(0) == expected[0]
    assert policy.allows(10**9)
    assert policy.to_dict()["backoff"] == backoff.value


def test_retry_policy_limited_counts_the_first_attempt() -> None:
    """max_attempts=3 allows a second and a third attempt, never a fourth; no overflow."""
    policy = RetryPolicy(max_attempts=3)
    assert [policy.allows(n) for n in (1, 2, 3)] == [True, True, False]
    assert RetryPolicy(max_attempts=None, max_delay=5).delay(10**6) == 5


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_attempts": 0}, ValueError),
        ({"max_attempts": True}, ValueError),
        ({"backoff": "fixed"}, TypeError),
        ({"base_delay": "1"}, TypeError),
        ({"base_delay": -1}, ValueError),
        ({"max_delay": float("inf")}, ValueError),
        ({"multiplier": 0.5}, ValueError),
    ],
)
def test_retry_policy_validates_its_configuration(kwargs: dict[str, Any], error: type) -> None:
    """Bad retry settings fail at construction, naming the argument."""
    with pytest.raises(error, match=next(iter(kwargs))):
        RetryPolicy(**kwargs)


def test_dedup_strategies() -> None:
    """Fields (dotted), a function and the whole payload's hash each give a stable key."""
    a = {"order": {"id": 1}, "n": 2}
    b = {"n": 2, "order": {"id": 1}}
    assert Dedup.fields("order.id").key(a) == Dedup.fields("order.id").key({"order": {"id": 1}})
    assert Dedup.payload().key(a) == Dedup.payload().key(b)
    assert Dedup.payload().key(a) != Dedup.payload().key({**a, "n": 3})
    assert Dedup.function(lambda p: p["n"] * 10).key(a) == "20"
    assert "fields" in repr(Dedup.fields("x"))
    with pytest.raises(SchemaError) as info:
        Dedup.fields("order.sku").key(a)
    assert info.value.path == "$.order.sku"
    with pytest.raises(SchemaError, match="not JSON"):
        Dedup.payload().key({"when": datetime.now(timezone.utc)})


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (Dedup.fields, ValueError),
        (lambda: Dedup.fields(""), ValueError),
        (lambda: Dedup.function("x"), TypeError),  # type: ignore[arg-type]
        (lambda: Dedup("hash"), ValueError),
    ],
)
def test_dedup_validates_its_configuration(factory: Any, error: type) -> None:
    """A bad dedup strategy fails at construction."""
    with pytest.raises(error):
        factory()


@pytest.mark.parametrize(
    ("factory", "error"),
    [
        (lambda: Step(""), ValueError),
        (lambda: Step("a", retry=3), TypeError),  # type: ignore[arg-type]
        (lambda: Step("a", schema={"type": "decimal"}), SchemaError),
        (lambda: ProcessDefinition("", (Step("a"),)), ValueError),
        (lambda: ProcessDefinition("p", ()), TypeError),
        (lambda: ProcessDefinition("p", (Step("a"), Step("a"))), ValueError),
        (lambda: ProcessDefinition("p", (Step("a"),), dedup="id"), TypeError),  # type: ignore[arg-type]
    ],
)
def test_definitions_validate_their_configuration(factory: Any, error: type) -> None:
    """Steps and process definitions refuse bad names, policies, schemas and dedup."""
    with pytest.raises(error):
        factory()


def test_process_step_lookup() -> None:
    """A process finds its steps by name and refuses unknown ones."""
    definition = two_platforms()
    assert definition.step("bank").retry.max_attempts == 5
    with pytest.raises(NotFoundError):
        definition.step("crm")


# ---------------------------------------------------------------------------
# the JSON-Schema subset
# ---------------------------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "required": ["id", "lines"],
    "properties": {
        "id": {"type": "string", "pattern": "^O-[0-9]+$", "minLength": 3, "maxLength": 8},
        "kind": {"enum": ["b2b", "b2c", 1]},
        "total": {"type": "number", "minimum": 0, "maximum": 1000},
        "lines": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["qty"],
                "properties": {
                    "qty": {"type": "integer", "minimum": 1},
                    "note": {"type": ["string", "null"]},
                },
            },
        },
    },
}


@pytest.mark.parametrize(
    ("payload", "path", "keyword"),
    [
        ([], "$", "type"),
        ({"lines": []}, "$.id", "required"),
        ({"id": 5, "lines": []}, "$.id", "type"),
        ({"id": "X-1", "lines": []}, "$.id", "pattern"),
        ({"id": "O-", "lines": []}, "$.id", "minLength"),
        ({"id": "O-123456789", "lines": []}, "$.id", "maxLength"),
        ({"id": "O-1", "kind": "gov", "lines": []}, "$.kind", "enum"),
        ({"id": "O-1", "kind": True, "lines": []}, "$.kind", "enum"),
        ({"id": "O-1", "total": -1, "lines": []}, "$.total", "minimum"),
        ({"id": "O-1", "total": 1001.5, "lines": []}, "$.total", "maximum"),
        ({"id": "O-1", "total": True, "lines": []}, "$.total", "type"),
        ({"id": "O-1", "lines": [{"qty": 1}, {}]}, "$.lines[1].qty", "required"),
        ({"id": "O-1", "lines": [{"qty": 1.5}]}, "$.lines[0].qty", "type"),
        ({"id": "O-1", "lines": [{"qty": 1, "note": 3}]}, "$.lines[0].note", "type"),
    ],
)
def test_schema_errors_name_the_path_and_keyword(payload: Any, path: str, keyword: str) -> None:
    """Each failing keyword is reported with the JSON path of the problem."""
    with pytest.raises(SchemaError) as info:
        validate_payload(ORDER_SCHEMA, payload)
    assert (info.value.path, info.value.keyword) == (path, keyword)
    assert str(info.value).startswith(path)


def test_schema_accepts_valid_payloads() -> None:
    """Valid payloads pass: integral floats are integers, enum 1 matches 1.0, tuples are arrays."""
    validate_payload(
        ORDER_SCHEMA,
        {"id": "O-1", "kind": 1.0, "total": 10, "lines": ({"qty": 2.0, "note": None},)},
    )
    validate_payload({"type": "boolean"}, False)
    validate_payload({"enum": [{"a": [1, True]}]}, {"a": [1, True]})
    validate_payload({"title": "unknown keywords are ignored"}, 1)


@pytest.mark.parametrize(
    "schema",
    [
        [],
        {"type": "decimal"},
        {"type": []},
        {"required": "id"},
        {"properties": []},
        {"properties": {"a": 3}},
        {"enum": "abc"},
        {"minimum": "0"},
        {"maxLength": -1},
        {"minLength": True},
        {"pattern": 3},
        {"pattern": "("},
        {"items": "string"},
    ],
)
def test_malformed_schemas_are_schema_errors(schema: Any) -> None:
    """A malformed schema is refused with keyword 'schema'."""
    with pytest.raises(SchemaError) as info:
        validate_payload(schema, 1)
    assert info.value.keyword == "schema"


def test_deeply_nested_payload_is_a_schema_error() -> None:
    """A payload nested past the recursion limit is a SchemaError, not a RecursionError."""
    deep: Any = 1
    schema: Any = {"type": "integer"}
    for _ in range(sys.getrecursionlimit() + 10):
        deep = [deep]
        schema = {"items": schema}
    with pytest.raises(SchemaError):
        validate_payload(schema, deep)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=10,
)
SCHEMA_KEYS = st.sampled_from(
    [
        "type",
        "required",
        "properties",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
    ]
)
SCHEMA_VALUES = st.one_of(
    JSON_VALUES,
    st.sampled_from(["string", "integer", "number", "object", "array", "null"]),
    st.sampled_from(["^a", "[", "a+b", "(x)?"]),
)
SCHEMAS = st.recursive(
    st.dictionaries(SCHEMA_KEYS, SCHEMA_VALUES, max_size=4),
    lambda kids: (
        st.dictionaries(SCHEMA_KEYS, kids | SCHEMA_VALUES, max_size=4)
        | st.dictionaries(
            st.just("properties"), st.dictionaries(st.text(max_size=2), kids, max_size=2)
        )
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(SCHEMAS, JSON_VALUES)
def test_fuzz_the_schema_validator_raises_only_schema_errors(schema: Any, payload: Any) -> None:
    """Arbitrary schemas and payloads give a pass or a SchemaError, never another exception."""
    try:
        validate_payload(schema, payload)
    except SchemaError as exc:
        error = exc
    else:
        return
    assert error.path.startswith("$")


@given(JSON_VALUES)
def test_fuzz_dedup_and_start_or_resume_raise_only_ledger_errors(payload: Any) -> None:
    """Any JSON payload is either registered or refused with a LedgerError."""
    ledger, _ = make(
        InMemoryLedgerStore(),
        ProcessDefinition(
            "invoice",
            (Step("erp", schema={"type": "object", "required": ["invoice_no"]}),),
            dedup=Dedup.fields("invoice_no"),
        ),
    )
    try:
        item, _ = ledger.start_or_resume("invoice", payload)
    except LedgerError:
        return
    assert item.payload == json.loads(json.dumps(payload))


# ---------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------


def test_run_key_is_idempotent_and_refuses_other_parameters(store: Any) -> None:
    """The same key and parameters return the existing run; other parameters are refused."""
    ledger, _ = make(store)
    link = ExternalLink("jenkins", "build-42", "https://ci.example/42")
    run, created = ledger.start_run(
        "invoice", "2026-01-05", params={"day": "2026-01-05"}, trigger=Trigger.SCHEDULED, link=link
    )
    again, created_again = ledger.start_run("invoice", "2026-01-05", params={"day": "2026-01-05"})
    assert (created, created_again) == (True, False)
    assert again.id == run.id
    assert again.link == link
    assert again.trigger is Trigger.SCHEDULED
    assert again.status is RunStatus.RUNNING
    with pytest.raises(RunKeyConflictError) as info:
        ledger.start_run("invoice", "2026-01-05", params={"day": "2026-01-06"})
    assert info.value.existing == {"day": "2026-01-05"}
    assert isinstance(info.value, ValueError)
    assert [r.run_key for r in ledger.runs(since=T0, until=T0 + timedelta(1))] == ["2026-01-05"]
    assert ledger.runs(since=T0 + timedelta(1)) == []


def test_start_run_validates_arguments() -> None:
    """Unknown processes, empty keys and bad triggers are refused."""
    ledger, _ = make(InMemoryLedgerStore())
    with pytest.raises(NotFoundError):
        ledger.start_run("payroll", "k")
    with pytest.raises(ValueError, match="run_key"):
        ledger.start_run("invoice", "")
    with pytest.raises(TypeError, match="trigger"):
        ledger.start_run("invoice", "k", trigger="manual")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        ledger.get_run("nope")
    with pytest.raises(NotFoundError):
        ledger.start_or_resume("invoice", {"invoice_no": 1}, run_key="nope")


def test_finish_run_waits_for_active_items_and_fail_run_can_be_resumed(store: Any) -> None:
    """A run with active items cannot finish; a failed run resumes under the same key."""
    ledger, clock = make(store)
    ledger.start_run("invoice", "r")
    ledger.start_or_resume("invoice", {"invoice_no": "A"}, run_key="r")
    with pytest.raises(TransitionError):
        ledger.finish_run("r")
    failed = ledger.fail_run("r", "the job crashed")
    assert failed.status is RunStatus.FAILED
    assert failed.finished_at == T0
    resumed, created = ledger.start_run("invoice", "r")
    assert (resumed.status, created, resumed.finished_at) == (RunStatus.RUNNING, False, None)
    drive(ledger, clock, {})
    assert ledger.finish_run("r").status is RunStatus.SUCCEEDED
    history = [c.new for c in ledger.history("run", resumed.id)]
    assert history == ["running", "failed", "running", "succeeded"]


# ---------------------------------------------------------------------------
# items, stages, attempts
# ---------------------------------------------------------------------------


def test_start_or_resume_deduplicates_and_stores_json(store: Any) -> None:
    """The dedup key finds the existing item; the payload round-trips as JSON."""
    ledger, _ = make(store)
    payload = {"invoice_no": "A-1", "amount": 12.5, "tags": ["x"], "ok": True, "none": None}
    item, new = ledger.start_or_resume("invoice", payload)
    same, new_again = ledger.start_or_resume("invoice", {**payload, "amount": 99})
    assert (new, new_again, same.id) == (True, False, item.id)
    assert ledger.get_item(item.id).payload == payload
    assert [s.step for s in ledger.stages(item.id)] == ["erp"]
    with pytest.raises(NotFoundError):
        ledger.get_item(10**6)


def test_regression_payloads_are_stored_as_json_not_python_repr(tmp_path: Path) -> None:
    """FlowLedger stored payloads as repr(); the ledger stores canonical JSON or refuses."""
    conn = connect_sqlite(str(tmp_path / "l.db"))
    migrate(conn)
    ledger, _ = make(SQLLedgerStore(conn))
    ledger.start_or_resume("invoice", {"invoice_no": "A-1", "ok": True, "n": None})
    raw = conn.execute("SELECT payload FROM ledger_item").fetchone()[0]
    assert json.loads(raw) == {"invoice_no": "A-1", "ok": True, "n": None}
    assert "True" not in raw
    assert "None" not in raw
    with pytest.raises(SchemaError, match="not JSON"):
        ledger.start_or_resume("invoice", {"invoice_no": "B", "at": datetime.now(timezone.utc)})
    with pytest.raises(SchemaError, match="not JSON"):
        ledger.start_or_resume("invoice", {"invoice_no": "C", "x": float("nan")})


def test_payload_schema_is_checked_at_intake(store: Any) -> None:
    """A payload failing a step's schema is refused with the path; nothing is stored."""
    definition = ProcessDefinition(
        "invoice",
        (
            Step(
                "erp",
                schema={
                    "type": "object",
                    "required": ["invoice_no", "amount"],
                    "properties": {"amount": {"type": "number", "minimum": 0}},
                },
            ),
        ),
        dedup=Dedup.fields("invoice_no"),
    )
    ledger, _ = make(store, definition)
    with pytest.raises(SchemaError) as info:
        ledger.start_or_resume("invoice", {"invoice_no": "A", "amount": -1})
    assert info.value.path == "$.amount"
    assert ledger.report().items == {}


def test_regression_per_platform_retry_limits_are_enforced(store: Any) -> None:
    """rpa-tracker ignored per-platform limits: erp stops after 2 attempts, bank after 5."""
    ledger, clock = make(store)
    erp_item, _ = ledger.start_or_resume("invoice", {"invoice_no": "E"})
    drive(ledger, clock, {"erp": [-1] * 50})
    assert [a.outcome for a in ledger.attempts(erp_item.id)] == [AttemptOutcome.SYSTEM_ERROR] * 2
    assert ledger.get_item(erp_item.id).status is ItemStatus.EXHAUSTED
    bank_item, _ = ledger.start_or_resume("invoice", {"invoice_no": "B"})
    drive(ledger, clock, {"bank": [-1] * 50})
    bank_attempts = [a for a in ledger.attempts(bank_item.id) if a.step == "bank"]
    assert len(bank_attempts) == 5
    assert ledger.stages(bank_item.id)[-1].status is StageStatus.EXHAUSTED


def test_regression_exhausted_is_told_apart_from_waiting_to_retry(store: Any) -> None:
    """rpa-tracker showed both as pending: one item waits to retry, the other is exhausted."""
    ledger, clock = make(store)
    waiting, _ = ledger.start_or_resume("invoice", {"invoice_no": "W"})
    done, _ = ledger.start_or_resume("invoice", {"invoice_no": "X"})
    for _ in range(2):
        claim = ledger.claim("invoice", worker="w", item_id=done.id)
        assert claim is not None
        ledger.complete(claim, code=-2, error="timeout")
        clock.advance(10)
    claim = ledger.claim("invoice", worker="w", item_id=waiting.id)
    assert claim is not None
    stage = ledger.complete(claim, code=-2, error="timeout")
    assert stage.status is StageStatus.RETRY_WAITING
    assert stage.next_attempt_at == clock() + timedelta(seconds=10)
    assert ledger.get_item(waiting.id).status is ItemStatus.RETRY_WAITING
    assert ledger.get_item(done.id).status is ItemStatus.EXHAUSTED
    report = ledger.report()
    assert report.items == {"retry_waiting": 1, "exhausted": 1}
    assert report.stages == {"retry_waiting": 1, "exhausted": 1}


def test_business_error_rejects_at_once_and_stops(store: Any) -> None:
    """A positive code rejects the item on the first attempt; no later step runs."""
    ledger, clock = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "R"})
    drive(ledger, clock, {"erp": [42]})
    assert [a.code for a in ledger.attempts(item.id)] == [42]
    assert [s.status for s in ledger.stages(item.id)] == [StageStatus.REJECTED]
    assert ledger.get_item(item.id).status is ItemStatus.REJECTED
    (letter,) = ledger.dead_letters()
    assert (letter.reason, letter.item_id, json.loads(letter.payload)) == (
        DeadLetterReason.REJECTED,
        item.id,
        {"invoice_no": "R"},
    )


def test_success_moves_through_every_step_and_records_durations(store: Any) -> None:
    """Each success opens the next step's stage; the last one succeeds the item."""
    ledger, clock = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "S"})
    for step in ("erp", "bank"):
        claim = ledger.claim("invoice", worker="w")
        assert claim is not None
        assert claim.stage.step == step
        clock.advance(2.5)
        ledger.complete(claim)
    assert ledger.claim("invoice", worker="w") is None
    assert ledger.get_item(item.id).status is ItemStatus.SUCCEEDED
    attempts = ledger.attempts(item.id)
    assert [(a.step, a.duration, a.outcome) for a in attempts] == [
        ("erp", 2.5, AttemptOutcome.SUCCESS),
        ("bank", 2.5, AttemptOutcome.SUCCESS),
    ]
    assert attempts[0].ended_at == T0 + timedelta(seconds=2.5)
    assert [c.new for c in ledger.history("item", item.id)] == [
        "pending",
        "in_progress",
        "succeeded",
    ]


def test_exceptions_are_classified_business_or_system(store: Any) -> None:
    """BusinessError rejects, other exceptions retry, int results are codes, others succeed."""
    ledger, clock = make(store)
    a, _ = ledger.start_or_resume("invoice", {"invoice_no": "A"})

    def raise_(exc: Exception) -> Any:
        def handler(payload: Any) -> Any:
            raise exc

        return handler

    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    stage = ledger.run_stage(claim, raise_(ConnectionError("erp down")))
    assert stage.status is StageStatus.RETRY_WAITING
    assert stage.last_error == "ConnectionError: erp down"
    clock.advance(10)
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    assert ledger.run_stage(claim, lambda p: None).status is StageStatus.SUCCEEDED
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    stage = ledger.run_stage(claim, raise_(BusinessError("IBAN invalid", code=7)))
    assert stage.status is StageStatus.REJECTED
    assert [x.code for x in ledger.attempts(a.id)] == [-1, 0, 7]
    _b, _ = ledger.start_or_resume("invoice", {"invoice_no": "B"})
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    assert ledger.run_stage(claim, lambda p: -4).status is StageStatus.RETRY_WAITING
    with pytest.raises(ValueError, match="positive"):
        BusinessError("x", code=0)


def test_classify_hook_decides_first() -> None:
    """A classify hook can make a KeyError a business error; None falls back to the rule."""

    def classify(exc: BaseException) -> AttemptOutcome | None:
        return AttemptOutcome.BUSINESS_ERROR if isinstance(exc, KeyError) else None

    ledger, _ = make(InMemoryLedgerStore(), classify=classify)
    ledger.start_or_resume("invoice", {"invoice_no": "A"})
    ledger.start_or_resume("invoice", {"invoice_no": "B"})
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    assert ledger.fail(claim, KeyError("vendor")).status is StageStatus.REJECTED
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    assert ledger.fail(claim, OSError("disk")).status is StageStatus.RETRY_WAITING


def test_ledger_validates_its_configuration() -> None:
    """Bad clocks, lease lengths, classifiers, listeners, workers and processes are refused."""
    store = InMemoryLedgerStore()
    with pytest.raises(TypeError, match="clock"):
        Ledger(store, clock=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lease_seconds"):
        Ledger(store, lease_seconds="60")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lease_seconds"):
        Ledger(store, lease_seconds=0)
    with pytest.raises(TypeError, match="classify"):
        Ledger(store, classify=1)  # type: ignore[arg-type]
    ledger, _ = make(store)
    with pytest.raises(TypeError, match="process"):
        ledger.define("invoice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="listener"):
        ledger.subscribe(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="worker"):
        ledger.claim("invoice", worker="")
    with pytest.raises(ScheduleError, match="aware"):
        ledger.claim("invoice", worker="w", now=datetime(2026, 1, 1))


# ---------------------------------------------------------------------------
# leases and optimistic locking
# ---------------------------------------------------------------------------


def test_expired_lease_is_taken_over_and_the_old_worker_cannot_advance(store: Any) -> None:
    """After the lease, another worker claims; the dead one's attempt stays, ABANDONED."""
    ledger, clock = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "L"})
    first = ledger.claim("invoice", worker="bot-a")
    assert first is not None
    clock.advance(59)
    assert ledger.claim("invoice", worker="bot-b") is None  # lease still held
    clock.advance(1)
    second = ledger.claim("invoice", worker="bot-b")
    assert second is not None
    assert second.stage.id == first.stage.id
    with pytest.raises(LeaseLostError) as info:
        ledger.complete(first)
    assert info.value.entity_id == first.stage.id
    with pytest.raises(LeaseLostError):
        ledger.heartbeat(first)
    ledger.complete(second)
    attempts = ledger.attempts(item.id)
    assert [(a.worker, a.outcome) for a in attempts] == [
        ("bot-a", AttemptOutcome.ABANDONED),
        ("bot-b", AttemptOutcome.SUCCESS),
    ]
    assert "bot-a" in (attempts[0].error or "")
    chain = [c.new for c in ledger.history("stage", first.stage.id)]
    assert chain == ["pending", "running", "retry_waiting", "running", "succeeded"]


def test_heartbeat_keeps_the_lease(store: Any) -> None:
    """A heartbeat moves the lease forward so nobody takes the stage over."""
    ledger, clock = make(store)
    ledger.start_or_resume("invoice", {"invoice_no": "H"})
    claim = ledger.claim("invoice", worker="bot-a")
    assert claim is not None
    clock.advance(50)
    claim = ledger.heartbeat(claim)
    assert claim.stage.lease_expires_at == clock() + timedelta(seconds=60)
    clock.advance(50)
    assert ledger.claim("invoice", worker="bot-b") is None
    assert ledger.complete(claim).status is StageStatus.SUCCEEDED


def test_abandoned_attempts_count_against_the_retry_budget(store: Any) -> None:
    """A stage whose workers keep dying is EXHAUSTED once its budget is spent."""
    ledger, clock = make(store, lease_seconds=30)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "D"})
    events: list[Any] = []
    ledger.subscribe(events.append)
    assert ledger.claim("invoice", worker="a") is not None
    clock.advance(31)
    assert ledger.claim("invoice", worker="b") is not None
    clock.advance(31)
    assert ledger.claim("invoice", worker="c") is None  # erp allows 2 attempts: both abandoned
    assert ledger.get_item(item.id).status is ItemStatus.EXHAUSTED
    assert [a.outcome for a in ledger.attempts(item.id)] == [AttemptOutcome.ABANDONED] * 2
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.LEASE_EXPIRED) == 2
    assert EventKind.ITEM_EXHAUSTED in kinds


def test_a_stale_version_is_refused_by_the_store(store: Any) -> None:
    """Optimistic locking: an update carrying an old version raises StaleVersionError."""
    ledger, _ = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "V"})
    stage = ledger.stages(item.id)[0]
    with store.transaction():
        store.update_stage(stage._replace(last_error="x"), stage.version)
    with pytest.raises(StaleVersionError) as info, store.transaction():
        store.update_stage(stage._replace(last_error="y"), stage.version)
    assert (info.value.entity, info.value.expected) == ("stage", stage.version)
    with pytest.raises(StaleVersionError), store.transaction():
        store.update_item(item, item.version + 5)
    run, _ = ledger.start_run("invoice", "r")
    with pytest.raises(StaleVersionError), store.transaction():
        store.update_run(run, run.version + 1)


def test_a_failed_transaction_leaves_nothing_behind(store: Any) -> None:
    """If a transaction raises, none of its writes stay (memory undo log, SQL rollback)."""
    ledger, _ = make(store)

    def doomed() -> None:
        with store.transaction():
            ledger.start_or_resume("invoice", {"invoice_no": "T"})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        doomed()
    assert ledger.report().items == {}
    _item, new = ledger.start_or_resume("invoice", {"invoice_no": "T"})
    assert new


def test_stale_update_from_a_racing_worker_becomes_lease_lost(store: Any) -> None:
    """If the stage row changes between the lease check and the update, complete refuses."""
    ledger, _ = make(store)
    ledger.start_or_resume("invoice", {"invoice_no": "Z"})
    claim = ledger.claim("invoice", worker="a")
    assert claim is not None
    real_update = store.update_stage

    def racing_update(stage: Any, expected: int) -> Any:
        raise StaleVersionError("stage", stage.id, expected)

    store.update_stage = racing_update
    try:
        with pytest.raises(LeaseLostError):
            ledger.complete(claim)
    finally:
        store.update_stage = real_update
    assert ledger.complete(claim).status is StageStatus.SUCCEEDED


def test_claim_looks_again_when_another_worker_wins_the_race() -> None:
    """A claim that loses an optimistic race retries and eventually reports nothing to do."""
    store = InMemoryLedgerStore()
    ledger, _ = make(store)
    ledger.start_or_resume("invoice", {"invoice_no": "Q"})
    real = store.update_stage
    calls = {"n": 0}

    def flaky(stage: Any, expected: int) -> Any:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise StaleVersionError("stage", stage.id, expected)
        return real(stage, expected)

    store.update_stage = flaky  # type: ignore[method-assign]
    assert ledger.claim("invoice", worker="w") is not None
    store.update_stage = lambda s, e: (_ for _ in ()).throw(StaleVersionError("stage", s.id, e))  # type: ignore[method-assign]
    ledger.start_or_resume("invoice", {"invoice_no": "Q2"})
    assert ledger.claim("invoice", worker="w") is None


def test_threads_never_claim_one_stage_twice() -> None:
    """Eight threads released together on the in-memory store claim each stage once."""
    ledger, _ = make(InMemoryLedgerStore())
    for n in range(40):
        ledger.start_or_resume("invoice", {"invoice_no": n})
    barrier = threading.Barrier(8)
    claimed: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        barrier.wait()
        while (claim := ledger.claim("invoice", worker=name)) is not None:
            with lock:
                claimed.append(claim.stage.id)
            ledger.complete(claim)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 80
    assert ledger.report().items == {"succeeded": 40}


# ---------------------------------------------------------------------------
# listeners, dead letters, redrive
# ---------------------------------------------------------------------------


def test_listeners_receive_domain_events_after_commit(store: Any) -> None:
    """Events arrive in order, after the change is committed; a rolled-back change emits none."""
    ledger, clock = make(store)
    events: list[Any] = []
    ledger.subscribe(events.append)
    ledger.start_run("invoice", "r")
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "E"}, run_key="r")
    drive(ledger, clock, {"bank": [9]})
    ledger.finish_run("r")
    kinds = [e.kind for e in events]
    assert kinds == [
        EventKind.RUN_STARTED,
        EventKind.ITEM_CREATED,
        EventKind.STAGE_STARTED,
        EventKind.STAGE_SUCCEEDED,
        EventKind.STAGE_STARTED,
        EventKind.DEAD_LETTERED,
        EventKind.ITEM_REJECTED,
        EventKind.RUN_COMPLETED,
    ]
    assert events[-1].detail == "completed_with_errors"
    assert events[-1].run_key == "r"
    assert events[1].item_id == item.id
    seen_in_store: list[Any] = []
    ledger.subscribe(lambda e: seen_in_store.append(ledger.get_item(item.id).status))
    with pytest.raises(TransitionError):
        ledger.finish_run("r")
    assert len(events) == 8


def test_redrive_gives_an_exhausted_item_a_fresh_budget(store: Any) -> None:
    """A redriven dead letter re-enters PENDING; its history keeps every attempt."""
    ledger, clock = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "X"})
    drive(ledger, clock, {"erp": [-1, -1]})
    (letter,) = ledger.dead_letters(process="invoice")
    assert letter.reason is DeadLetterReason.EXHAUSTED
    again = ledger.redrive(letter.id)
    assert again.status is ItemStatus.PENDING
    assert ledger.dead_letters() == []
    assert ledger.dead_letters(include_redriven=True)[0].redriven_at == clock()
    drive(ledger, clock, {"erp": [-1]})
    assert ledger.get_item(item.id).status is ItemStatus.SUCCEEDED
    assert [a.attempt_no for a in ledger.attempts(item.id) if a.step == "erp"] == [1, 2, 3, 4]
    with pytest.raises(LedgerError, match="already redriven"):
        ledger.redrive(letter.id)
    with pytest.raises(NotFoundError):
        ledger.redrive(10**6)


def test_redrive_a_rejected_item(store: Any) -> None:
    """A business rejection, once fixed upstream, can be redriven and succeed."""
    ledger, clock = make(store)
    item, _ = ledger.start_or_resume("invoice", {"invoice_no": "R"})
    drive(ledger, clock, {"erp": [3]})
    ledger.redrive(ledger.dead_letters()[0].id)
    drive(ledger, clock, {})
    assert ledger.get_item(item.id).status is ItemStatus.SUCCEEDED
    assert [c.new for c in ledger.history("item", item.id)][-3:] == [
        "pending",
        "in_progress",
        "succeeded",
    ]


# ---------------------------------------------------------------------------
# pipelines (the FlowLedger manner)
# ---------------------------------------------------------------------------


def pipeline_ledger(store: Any) -> tuple[Ledger, ManualClock, list[float]]:
    clock = ManualClock(T0)
    ledger = Ledger(store, clock=clock)
    linear = RetryPolicy(max_attempts=3, backoff=Backoff.LINEAR, base_delay=5)
    ledger.define(
        ProcessDefinition(
            "orders",
            tuple(Step(n, retry=linear) for n in ("ingest", "transform", "validate", "publish")),
            dedup=Dedup.fields("id"),
        )
    )
    slept: list[float] = []
    return ledger, clock, slept


def handlers(fail: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    fail = fail or {}

    def step(name: str) -> Any:
        def run(payload: Any) -> Any:
            queue = fail.get(name, [])
            if queue:
                outcome = queue.pop(0)
                if isinstance(outcome, Exception):
                    raise outcome
                return outcome
            return None

        return run

    return {n: step(n) for n in ("ingest", "transform", "validate", "publish")}


def test_regression_duplicate_key_in_one_input_is_dead_lettered_and_the_run_finishes(
    store: Any,
) -> None:
    """FlowLedger crashed on a duplicate key and left the run running; here it is dead-lettered."""
    ledger, _, slept = pipeline_ledger(store)
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)
    report = pipe.run("2026-01-05", [{"id": 1}, {"id": 2}, {"id": 1, "dup": True}])
    assert report["status"] == "completed_with_errors"
    assert report["counts"] == {"records": 3, "processed": 2, "skipped": 0, "dead_lettered": 1}
    (letter,) = report["dead_letters"]
    assert letter["reason"] == "duplicate"
    assert json.loads(letter["payload"]) == {
        "id": 1,
        "dup": True,
    }
    assert ledger.get_run("2026-01-05").status is not RunStatus.RUNNING
    json.dumps(report)


def test_regression_one_malformed_line_does_not_fail_the_run(store: Any) -> None:
    """FlowLedger failed a whole run on one bad line; here the line is dead-lettered."""
    ledger, _, slept = pipeline_ledger(store)
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)
    lines = ['{"id": 1}', "{not json", b'{"id": 2}', '{"no_id": 3}', "[1, NaN]"]
    report = pipe.run("batch", lines)
    reasons = [d["reason"] for d in report["dead_letters"]]
    assert reasons == ["malformed", "invalid", "malformed"]
    assert report["items"] == {"succeeded": 2}
    assert json.loads(report["dead_letters"][0]["payload"]) == "{not json"


def test_pipeline_retries_with_linear_backoff_and_reports(store: Any) -> None:
    """A system error is retried after 5 s then 10 s (linear); the report counts attempts."""
    ledger, clock, slept = pipeline_ledger(store)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    pipe = Pipeline(
        ledger, "orders", handlers({"publish": [-1, ConnectionError("503")]}), sleep=sleep
    )
    report = pipe.run("r", [{"id": 7}], params={"source": "sftp"}, trigger=Trigger.SCHEDULED)
    assert slept == [5.0, 10.0]
    assert report["status"] == "succeeded"
    assert report["params"] == {"source": "sftp"}
    publish = next(s for s in report["steps"] if s["step"] == "publish")
    assert (publish["attempts"], publish["system_errors"], publish["attempts_per_stage"]) == (
        3,
        2,
        3.0,
    )
    assert report["failures"][0]["step"] == "publish"


def test_pipeline_with_a_clock_that_does_not_move_claims_at_the_due_time(store: Any) -> None:
    """With a frozen clock the pipeline still retries: it claims at the stage's due time."""
    ledger, _, slept = pipeline_ledger(store)
    pipe = Pipeline(ledger, "orders", handlers({"ingest": [-1, -1, -1]}), sleep=slept.append)
    report = pipe.run("r", [{"id": 1}])
    assert slept == [5.0, 15.0]  # until T0+5, then until T0+15, as the frozen clock sees it
    assert report["items"] == {"exhausted": 1}
    assert report["dead_letters"][0]["reason"] == "exhausted"


def test_pipeline_failure_marks_the_run_failed_and_a_rerun_resumes(store: Any) -> None:
    """An input breaking mid-way fails the run (never left running); a rerun skips done items."""
    ledger, _, slept = pipeline_ledger(store)
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)

    def broken() -> Iterator[Any]:
        yield {"id": 1}
        raise OSError("sftp connection reset")

    with pytest.raises(OSError, match="reset"):
        pipe.run("r", broken())
    assert ledger.get_run("r").status is RunStatus.FAILED
    report = pipe.run("r", [{"id": 1}, {"id": 2}])
    assert report["status"] == "succeeded"
    assert report["counts"] == {"records": 2, "processed": 1, "skipped": 1, "dead_lettered": 0}
    again = pipe.run("r", [{"id": 3}])
    assert again["counts"]["records"] == 0
    assert again["status"] == "succeeded"


def test_pipeline_adopts_an_unfinished_item_from_an_earlier_run(store: Any) -> None:
    """An item left active by another run is moved into this run and finished."""
    ledger, _, slept = pipeline_ledger(store)
    ledger.start_run("orders", "old")
    item, _ = ledger.start_or_resume("orders", {"id": 5}, run_key="old")
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)
    report = pipe.run("new", [{"id": 5}, {"when": object(), "id": 6}])
    assert report["items"] == {"succeeded": 1}
    assert ledger.get_item(item.id).run_id == ledger.get_run("new").id
    assert report["dead_letters"][0]["reason"] == "malformed"


def test_pipeline_validates_handlers() -> None:
    """A pipeline needs a handler for every step."""
    ledger, _, _ = pipeline_ledger(InMemoryLedgerStore())
    with pytest.raises(ValueError, match="publish"):
        Pipeline(ledger, "orders", {k: v for k, v in handlers().items() if k != "publish"})
    assert Pipeline(ledger, "orders", handlers())._sleep is not None


# ---------------------------------------------------------------------------
# schedules
# ---------------------------------------------------------------------------


def test_regression_missed_daily_slots_are_all_caught_up() -> None:
    """FlowLedger never caught up; due_runs returns every missed slot with deterministic keys."""
    nightly = Schedule.daily("nightly", at="02:30")
    due = due_runs(nightly, utc(2026, 1, 1, 2, 30), utc(2026, 1, 4, 3, 0))
    assert [d.run_key for d in due] == [
        "nightly@2026-01-02T02:30Z",
        "nightly@2026-01-03T02:30Z",
        "nightly@2026-01-04T02:30Z",
    ]
    assert due == due_runs(nightly, utc(2026, 1, 1, 2, 30), utc(2026, 1, 4, 3, 0))
    assert due_runs(nightly, utc(2026, 1, 4, 2, 30), utc(2026, 1, 4, 3, 0)) == []
    assert due_runs(nightly, utc(2026, 1, 1, 2, 35), utc(2026, 1, 2, 2, 30))[0].slot == utc(
        2026, 1, 2, 2, 30
    )


def test_hourly_and_every_n_minutes_schedules() -> None:
    """Hourly at :15 and every 20 minutes produce their UTC slots in order."""
    hourly = Schedule.hourly("sync", minute=15)
    slots = [d.slot for d in due_runs(hourly, utc(2026, 1, 1, 9, 15), utc(2026, 1, 1, 12, 14))]
    assert slots == [utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 11, 15)]
    every = Schedule.every("poll", minutes=20)
    keys = [d.run_key for d in due_runs(every, utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 1, 0))]
    assert keys == ["poll@2026-01-01T00:20Z", "poll@2026-01-01T00:40Z", "poll@2026-01-01T01:00Z"]


def test_due_runs_first_time_limit_and_time_zones() -> None:
    """No history gives the latest slot; limit bounds a catch-up; other zones are converted."""
    nightly = Schedule.daily("n", at="02:00")
    assert [d.slot for d in due_runs(nightly, None, utc(2026, 1, 5, 1, 0))] == [
        utc(2026, 1, 4, 2, 0)
    ]
    many = due_runs(nightly, utc(2025, 1, 1, 2, 0), utc(2026, 1, 1, 2, 0), limit=3)
    assert [d.slot.day for d in many] == [2, 3, 4]
    cet = timezone(timedelta(hours=1))
    assert due_runs(
        nightly, datetime(2026, 1, 4, 3, 0, tzinfo=cet), datetime(2026, 1, 5, 3, 0, tzinfo=cet)
    ) == [ledger_module.DueRun(utc(2026, 1, 5, 2, 0), "n@2026-01-05T02:00Z")]
    assert len(due_runs(Schedule.every("p", minutes=1), utc(2026, 1, 1), utc(2026, 1, 2))) == 1440


@pytest.mark.parametrize(
    "factory",
    [
        lambda: Schedule.daily("n", at="24:00"),
        lambda: Schedule.daily("n", at="2:00"),
        lambda: Schedule.daily("n", at=200),  # type: ignore[arg-type]
        lambda: Schedule.hourly("n", minute=60),
        lambda: Schedule.hourly("n", minute=True),
        lambda: Schedule.every("n", minutes=0),
        lambda: Schedule("", 3600),
        lambda: Schedule("n", 30),
        lambda: Schedule("n", 3600, 3600),
        lambda: Schedule("n", 3600.0),  # type: ignore[arg-type]
        lambda: due_runs(Schedule.every("n", minutes=5), None, datetime(2026, 1, 1)),
        lambda: due_runs(Schedule.every("n", minutes=5), None, utc(2026, 1, 1), limit=0),
    ],
)
def test_schedules_refuse_bad_configuration_and_naive_times(factory: Any) -> None:
    """Bad times, periods and naive datetimes are ScheduleError or ValueError."""
    with pytest.raises(ValueError, match="must"):
        factory()


def test_due_runs_type_checks_its_arguments() -> None:
    """due_runs wants a Schedule and datetimes."""
    with pytest.raises(TypeError):
        due_runs("nightly", None, utc(2026, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        due_runs(Schedule.every("n", minutes=5), None, "2026-01-01")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------


def test_report_counts_rates_percentiles_and_failures(store: Any) -> None:
    """Counts by status, success rate, attempts per stage, percentiles, top failures."""
    ledger, clock = make(
        store,
        ProcessDefinition(
            "invoice",
            (
                Step(
                    "erp", retry=RetryPolicy(max_attempts=None, backoff=Backoff.FIXED, base_delay=0)
                ),
            ),
            dedup=Dedup.fields("n"),
        ),
    )
    for n in range(10):
        ledger.start_or_resume("invoice", {"n": n})
    durations = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    for d in durations:
        claim = ledger.claim("invoice", worker="w")
        assert claim is not None
        clock.advance(d)
        if d <= 3:
            ledger.complete(claim, code=-1, error="timeout" if d < 3 else "refused")
        else:
            ledger.complete(claim)
    report = ledger.report()
    (erp,) = report.steps
    assert (erp.attempts, erp.stages, erp.successes, erp.system_errors) == (10, 7, 7, 3)
    assert erp.success_rate == 0.7
    assert erp.attempts_per_stage == round(10 / 7, 6)
    assert (erp.p50, erp.p90, erp.p99, erp.max) == (5.0, 9.0, 10.0, 10.0)
    assert report.failures == (
        ledger_module.FailureReason("erp", "timeout", 2),
        ledger_module.FailureReason("erp", "refused", 1),
    )
    assert report.items == {"in_progress": 3, "succeeded": 7} or report.items["succeeded"] == 7
    assert ledger.report(top=1).failures == (ledger_module.FailureReason("erp", "timeout", 2),)
    window = ledger.report(since=T0 + timedelta(seconds=4), until=T0 + timedelta(seconds=7))
    assert window.steps[0].attempts == 1
    assert window.items == {}
    assert json.loads(json.dumps(report.to_dict()))["steps"][0]["step"] == "erp"


def test_run_report_is_json_with_everything_about_one_run(store: Any) -> None:
    """run_report gives the run, its link, items, steps, failures and dead letters."""
    ledger, clock = make(store)
    ledger.start_run("invoice", "r", link=ExternalLink("argo", "wf-1"))
    ledger.start_run("invoice", "other")
    ledger.start_or_resume("invoice", {"invoice_no": "A"}, run_key="r")
    ledger.start_or_resume("invoice", {"invoice_no": "B"}, run_key="other")
    drive(ledger, clock, {"erp": [5]})
    clock.advance(5)
    ledger.finish_run("r")
    report = ledger.run_report("r")
    assert report["status"] == "completed_with_errors"
    assert report["link"]["engine"] == "argo"
    assert report["items"] == {"rejected": 1}
    assert len(report["dead_letters"]) == 1
    assert report["duration"] == (clock() - T0).total_seconds()
    assert json.loads(json.dumps(report)) == report
    assert ledger.report(run_key="r").dead_letters == 1
    assert ledger.report().dead_letters == 1
    assert ledger.report(since=T0 + timedelta(days=1)).dead_letters == 0


def test_an_empty_ledger_reports_zeroes(store: Any) -> None:
    """A report on an empty ledger has no counts and no steps."""
    ledger, _ = make(store)
    report = ledger.report()
    assert (report.runs, report.items, report.steps, report.failures, report.dead_letters) == (
        {},
        {},
        (),
        (),
        0,
    )


def test_stats_with_no_durations() -> None:
    """A step whose only attempt is still open has attempts but no percentiles."""
    ledger, _ = make(InMemoryLedgerStore())
    ledger.start_or_resume("invoice", {"invoice_no": "O"})
    assert ledger.claim("invoice", worker="w") is not None
    (erp,) = ledger.report().steps
    assert (erp.attempts, erp.p50, erp.max, erp.success_rate) == (1, None, None, 0.0)


# ---------------------------------------------------------------------------
# SQL: migrations and the DB-API adapter
# ---------------------------------------------------------------------------


def test_migrate_is_idempotent_and_records_the_version(tmp_path: Path) -> None:
    """migrate() creates the tables once and records SCHEMA_VERSION."""
    conn = connect_sqlite(str(tmp_path / "m.db"))
    assert migrate(conn) == SCHEMA_VERSION
    assert migrate(conn) == SCHEMA_VERSION
    rows = conn.execute("SELECT version FROM ledger_schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "ledger_run",
        "ledger_item",
        "ledger_stage",
        "ledger_attempt",
        "ledger_history",
        "ledger_dead_letter",
    } <= tables


def test_migrate_on_postgres_is_idempotent(postgres: Any) -> None:
    """migrate() works twice on PostgreSQL and records one version row."""
    conn = postgres.connect()
    assert migrate(conn) == migrate(conn) == SCHEMA_VERSION
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM ledger_schema_version")
        assert cur.fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def test_migrate_rolls_back_on_error() -> None:
    """A failing migration rolls back and re-raises."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE ledger_schema_version (v INTEGER)")
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn)


def test_store_works_on_a_default_sqlite_connection(tmp_path: Path) -> None:
    """A plain sqlite3.connect() connection (implicit transactions) also works."""
    conn = sqlite3.connect(str(tmp_path / "plain.db"))
    migrate(conn)
    ledger, clock = make(SQLLedgerStore(conn))
    ledger.start_or_resume("invoice", {"invoice_no": "P"})
    drive(ledger, clock, {})
    assert ledger.report().items == {"succeeded": 1}


def test_store_on_an_autocommit_postgres_connection(postgres: Any) -> None:
    """An autocommit psycopg connection gets an explicit BEGIN per transaction."""
    conn = postgres.connect(autocommit=True)
    migrate(conn)
    ledger, clock = make(SQLLedgerStore(conn))
    ledger.start_or_resume("invoice", {"invoice_no": "P"})

    def doomed() -> None:
        with ledger.store.transaction():
            ledger.start_or_resume("invoice", {"invoice_no": "Q"})
            raise RuntimeError

    with pytest.raises(RuntimeError):
        doomed()
    drive(ledger, clock, {})
    assert ledger.report().items == {"succeeded": 1}
    conn.close()


class _FakeCursor:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def execute(self, sql: str, params: Any = ()) -> None:
        self.log.append(sql)


def _fake_connection(module: str, paramstyle: str | None) -> Any:
    driver = type(sys)(module)
    if paramstyle is not None:
        driver.paramstyle = paramstyle  # type: ignore[attr-defined]
    sys.modules[module] = driver
    cls = type("Connection", (), {"__module__": module})
    return cls()


@pytest.mark.parametrize(
    ("module", "paramstyle", "expected"),
    [
        ("pg8000", "format", "a = %s AND b = %s"),
        ("pg8000", "numeric", "a = :1 AND b = :2"),
        ("psycopg2", "pyformat", "a = %s AND b = %s"),
    ],
)
def test_dialect_rewrites_placeholders(
    module: str, paramstyle: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adapter recognises PostgreSQL drivers and rewrites ? for their paramstyle."""
    monkeypatch.setitem(sys.modules, module, sys.modules.get(module, type(sys)(module)))
    conn = _fake_connection(module, paramstyle)
    dialect = ledger_module._dialect_of(conn)
    assert dialect.name == "postgresql"
    assert dialect.sql("a = ? AND b = ?") == expected


def test_dialect_refuses_unknown_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection from an unknown driver is refused with a TypeError naming it."""
    monkeypatch.setitem(sys.modules, "mysqldb_fake", type(sys)("mysqldb_fake"))
    conn = _fake_connection("mysqldb_fake", "format")
    with pytest.raises(TypeError, match="mysqldb_fake"):
        SQLLedgerStore(conn)
    assert ledger_module._dialect_of(sqlite3.connect(":memory:")).sql("a = ?") == "a = ?"


# ---------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------


def test_clock_helpers_are_timezone_aware() -> None:
    """utc_now is aware UTC; ManualClock advances, jumps and refuses naive datetimes."""
    assert utc_now().tzinfo is timezone.utc
    clock = ManualClock(T0)
    clock.advance(1.5)
    assert clock() == T0 + timedelta(seconds=1.5)
    clock.set(utc(2027, 1, 1))
    assert clock().year == 2027
    with pytest.raises(ScheduleError):
        ManualClock(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        ManualClock("2026-01-01")  # type: ignore[arg-type]


def test_cancel_an_item_and_a_run(store: Any) -> None:
    """A waiting item can be cancelled (a running one cannot); a run can be cancelled."""
    ledger, _ = make(store)
    ledger.start_run("invoice", "r")
    waiting, _ = ledger.start_or_resume("invoice", {"invoice_no": "C"}, run_key="r")
    busy, _ = ledger.start_or_resume("invoice", {"invoice_no": "D"}, run_key="r")
    cancelled = ledger.cancel_item(waiting.id, "duplicate invoice, handled by hand")
    assert cancelled.status is ItemStatus.CANCELLED
    assert ledger.stages(waiting.id)[0].status is StageStatus.CANCELLED
    claim = ledger.claim("invoice", worker="w")
    assert claim is not None
    assert claim.item.id == busy.id
    with pytest.raises(TransitionError):
        ledger.cancel_item(busy.id, "too late")
    with pytest.raises(TransitionError):
        ledger.cancel_item(waiting.id, "twice")
    run = ledger.cancel_run("r", "operator stopped the batch")
    assert run.status is RunStatus.CANCELLED
    assert ledger.history("run", run.id)[-1].reason == "operator stopped the batch"


def test_redrive_a_dead_lettered_record(store: Any) -> None:
    """A record that never became an item is registered again, as stored or corrected."""
    ledger, _, slept = pipeline_ledger(store)
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)
    report = pipe.run(
        "r", ['{"id": 1}', '{"no_id": 2}', "{broken", b"{bad bytes", {"id": 9, "x": float("nan")}]
    )
    letters = {d["payload"]: d for d in report["dead_letters"]}
    assert set(letters) == {
        '"{\\"no_id\\": 2}"',
        '"{broken"',
        '"{bad bytes"',
        "\"{'id': 9, 'x': nan}\"",
    }
    invalid = letters['"{\\"no_id\\": 2}"']
    with pytest.raises(SchemaError):
        ledger.redrive(invalid["id"])  # as stored it still lacks the dedup field
    item = ledger.redrive(invalid["id"], payload={"id": 2, "no_id": 2}, run_key="r")
    assert item.payload == {"id": 2, "no_id": 2}
    assert ledger.dead_letters(run_key="r", include_redriven=True)[0].redriven_at is not None
    with pytest.raises(SchemaError, match="pass payload"):
        ledger.redrive(letters['"{broken"']["id"])


def test_redrive_a_stored_json_record_as_is() -> None:
    """A duplicate record's stored payload is JSON and is redriven unchanged."""
    ledger, _, slept = pipeline_ledger(InMemoryLedgerStore())
    pipe = Pipeline(ledger, "orders", handlers(), sleep=slept.append)
    report = pipe.run("r", [{"id": 1}, {"id": 1, "v": 2}])
    (letter,) = report["dead_letters"]
    item = ledger.redrive(letter["id"])
    assert item.payload == {"id": 1}  # the duplicate resolves to the item it duplicated


def test_pipeline_checks_step_schemas() -> None:
    """A record failing a step's schema is dead-lettered INVALID with the schema path."""
    clock = ManualClock(T0)
    ledger = Ledger(InMemoryLedgerStore(), clock=clock)
    ledger.define(
        ProcessDefinition("p", (Step("s", schema={"required": ["qty"]}),), dedup=Dedup.fields("id"))
    )
    report = Pipeline(ledger, "p", {"s": lambda p: None}).run("r", [{"id": 1}, {"id": 2, "qty": 1}])
    assert [d["reason"] for d in report["dead_letters"]] == ["invalid"]
    assert "$.qty" in report["dead_letters"][0]["error"]


def test_stores_look_up_runs_by_id_and_keep_processes_apart(store: Any) -> None:
    """get_run by id works; claim never returns another process's stage."""
    ledger, _ = make(store)
    ledger.define(ProcessDefinition("payroll", (Step("hr"),)))
    run, _ = ledger.start_run("invoice", "r")
    with store.transaction():
        assert store.get_run(run_id=run.id).run_key == "r"
        assert store.get_run(run_id=10**6) is None
    ledger.start_or_resume("payroll", {"emp": 1})
    assert ledger.claim("invoice", worker="w") is None
    claim = ledger.claim("payroll", worker="w")
    assert claim is not None
    assert claim.stage.step == "hr"
