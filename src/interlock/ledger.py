# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
# ruff: noqa: S608 - SQL is built from fixed column lists; values are always bound parameters
"""Execution ledger: runs, items, stages and attempts; retries, leases, dead letters, reports.

Verdict:
    Use it when RPA bots or batch jobs push transactions through several systems
    (platforms or steps) and you must know what happened to every transaction in
    every system: which attempt failed how, what is waiting to retry, what ran out
    of retries, what a business rule rejected, and what a crashed worker left
    behind; with one process's SQLite file or a PostgreSQL database shared by many
    workers.
    Do not use it when you need a workflow engine with branching, timers and human
    tasks (use Temporal, Airflow or Camunda and link their ids here), when the
    steps need distributed atomicity (a saga compensates, a ledger only records),
    or for message-by-message streaming at broker rates (it writes a row per
    attempt).

Prevents:
    - Per-step retry limits that are configured but never enforced.
    - "Exhausted" indistinguishable from "waiting to retry" (``EXHAUSTED`` is its own
      status, distinct from ``RETRY_WAITING`` and ``REJECTED``).
    - Retrying business rejections (positive error codes, ``BusinessError``) or giving
      up on system errors (negative codes, other exceptions) after one try.
    - The same record processed twice: items are deduplicated by selected fields, a
      function or the whole payload's hash; a run key is idempotent.
    - A crashed worker's stage stuck RUNNING forever: a lease expires and another
      worker takes over, the abandoned attempt stays in the history.
    - Two workers advancing one item: every update checks a version column.
    - One malformed or duplicate record failing a whole batch, and a run left
      "running" after a crash: records are dead-lettered, runs always finish.
    - Payloads stored as Python ``repr``: they are stored as JSON, or refused.
    - Missed schedule slots silently skipped: ``due_runs`` returns every one of them.

References:
    - Hohpe and Woolf, Enterprise Integration Patterns (2003): Dead Letter Channel,
      Idempotent Receiver, Message Store.
    - Gray and Cheriton, "Leases: An Efficient Fault-Tolerant Mechanism for Distributed
      File Cache Consistency" (SOSP 1989).
    - Kung and Robinson, "On Optimistic Methods for Concurrency Control" (1981).
    - JSON Schema Validation, draft 2020-12 (the subset: type, required, properties,
      enum, minimum, maximum, minLength, maxLength, pattern, items).
    - The error-code convention of RPA trackers: 0 success, negative system error
      (retryable), positive business error (rejected).

Exceptions:
    Exception
        BusinessError               raised by step code: a business rejection (.code > 0)
    RuntimeError
        LedgerError                 root; catch it for anything this module raises
            TransitionError         an illegal status change: .entity, .old, .new
            StaleVersionError       optimistic lock lost: .entity, .entity_id, .expected
                LeaseLostError      the claim's lease was taken over or released
            NotFoundError           no such run, item, stage or dead letter (also LookupError)
            RunKeyConflictError     run_key reused with other parameters (also ValueError)
            SchemaError             payload or schema invalid: .path, .keyword (also ValueError)
            ScheduleError           bad schedule or naive datetime (also ValueError)

Example:
    Two platforms, a retry policy each, an in-memory store and a manual clock:

    >>> clock = ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    >>> ledger = Ledger(InMemoryLedgerStore(), clock=clock, lease_seconds=60)
    >>> _ = ledger.define(
    ...     ProcessDefinition(
    ...         "invoice",
    ...         (
    ...             Step(
    ...                 "erp",
    ...                 retry=RetryPolicy(max_attempts=2, backoff=Backoff.FIXED, base_delay=30),
    ...             ),
    ...             Step("bank"),
    ...         ),
    ...         dedup=Dedup.fields("invoice_no"),
    ...     )
    ... )
    >>> item, is_new = ledger.start_or_resume("invoice", {"invoice_no": "A-1", "amount": 12})
    >>> is_new, ledger.start_or_resume("invoice", {"invoice_no": "A-1", "amount": 12})[1]
    (True, False)
    >>> claim = ledger.claim("invoice", worker="bot-1")
    >>> ledger.complete(claim, code=-3, error="ERP timeout").status
    <StageStatus.RETRY_WAITING: 'retry_waiting'>
    >>> ledger.claim("invoice", worker="bot-1") is None  # backoff: 30 s
    True
    >>> clock.advance(30)
    >>> claim = ledger.claim("invoice", worker="bot-1")
    >>> ledger.complete(claim, code=-3, error="ERP timeout").status
    <StageStatus.EXHAUSTED: 'exhausted'>
    >>> ledger.get_item(item.id).status
    <ItemStatus.EXHAUSTED: 'exhausted'>
    >>> [d.reason for d in ledger.dead_letters()]
    [<DeadLetterReason.EXHAUSTED: 'exhausted'>]

    A missed nightly slot is caught up with a deterministic run key:

    >>> nightly = Schedule.daily("nightly", at="02:00")
    >>> [
    ...     d.run_key
    ...     for d in due_runs(
    ...         nightly,
    ...         datetime(2026, 1, 3, 2, 0, tzinfo=timezone.utc),
    ...         datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc),
    ...     )
    ... ]
    ['nightly@2026-01-04T02:00Z', 'nightly@2026-01-05T02:00Z']
"""

from __future__ import annotations

__all__ = [
    "ITEM_TRANSITIONS",
    "RUN_TRANSITIONS",
    "SCHEMA_VERSION",
    "STAGE_TRANSITIONS",
    "Attempt",
    "AttemptOutcome",
    "Backoff",
    "BusinessError",
    "Claim",
    "DeadLetter",
    "DeadLetterReason",
    "Dedup",
    "DueRun",
    "EventKind",
    "ExternalLink",
    "FailureReason",
    "InMemoryLedgerStore",
    "Item",
    "ItemStatus",
    "LeaseLostError",
    "Ledger",
    "LedgerError",
    "LedgerEvent",
    "LedgerReport",
    "LedgerStore",
    "ManualClock",
    "NotFoundError",
    "Pipeline",
    "ProcessDefinition",
    "RetryPolicy",
    "Run",
    "RunKeyConflictError",
    "RunStatus",
    "SQLLedgerStore",
    "Schedule",
    "ScheduleError",
    "SchemaError",
    "Stage",
    "StageStatus",
    "StaleVersionError",
    "StatusChange",
    "Step",
    "StepStats",
    "TransitionError",
    "Trigger",
    "classify_code",
    "connect_sqlite",
    "due_runs",
    "migrate",
    "utc_now",
    "validate_payload",
    "validate_transition",
]

import hashlib
import json
import math
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SCHEMA_VERSION: Final = 1
"""The version ``migrate(conn)`` brings a database to (recorded in ``ledger_schema_version``)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class BusinessError(Exception):
    """Raise it from step code to reject the item for a business reason (never retried).

    Attributes:
        code: A positive business error code (default 1).
    """

    def __init__(self, message: str = "", *, code: int = 1) -> None:
        super().__init__(message)
        if isinstance(code, bool) or not isinstance(code, int) or code <= 0:
            raise ValueError(f"code must be a positive int, got {code!r}")
        self.code = code


class LedgerError(RuntimeError):
    """Root of every error this module raises."""


class TransitionError(LedgerError):
    """An illegal status change; names both states.

    Attributes:
        entity: ``"run"``, ``"item"`` or ``"stage"``.
        old: The current status.
        new: The refused status.
    """

    def __init__(self, entity: str, old: Enum, new: Enum) -> None:
        super().__init__(f"illegal {entity} transition {old.value} -> {new.value}")
        self.entity = entity
        self.old = old
        self.new = new


class StaleVersionError(LedgerError):
    """Another writer changed the row first (optimistic locking).

    Attributes:
        entity: ``"run"``, ``"item"``, ``"stage"`` or ``"dead_letter"``.
        entity_id: The row id.
        expected: The version the writer read.
    """

    def __init__(self, entity: str, entity_id: int, expected: int, message: str = "") -> None:
        super().__init__(
            message or f"{entity} {entity_id} changed since version {expected} was read"
        )
        self.entity = entity
        self.entity_id = entity_id
        self.expected = expected


class LeaseLostError(StaleVersionError):
    """The claim is no longer the stage's current lease (it expired and was taken over)."""


class NotFoundError(LedgerError, LookupError):
    """No run, item, stage, process or dead letter with that key."""


class RunKeyConflictError(LedgerError, ValueError):
    """A run key already exists with different parameters.

    Attributes:
        run_key: The key.
        existing: The stored parameters.
        requested: The parameters of the refused call.
    """

    def __init__(self, run_key: str, existing: object, requested: object) -> None:
        super().__init__(
            f"run {run_key!r} already exists with parameters {existing!r}, not {requested!r}"
        )
        self.run_key = run_key
        self.existing = existing
        self.requested = requested


class SchemaError(LedgerError, ValueError):
    """A payload does not match its schema, is not JSON, or a schema is malformed.

    Attributes:
        path: Where the problem is: ``"$"`` is the root, ``"$.lines[2].sku"`` deeper.
        keyword: The failing keyword (``"type"``, ``"required"``, ...), ``"json"``,
            ``"dedup"`` or ``"schema"`` (the schema itself is malformed).
    """

    def __init__(self, message: str, *, path: str = "$", keyword: str = "") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.keyword = keyword


class ScheduleError(LedgerError, ValueError):
    """A schedule is malformed, or a datetime is naive."""


# ---------------------------------------------------------------------------
# Enums and transition tables
# ---------------------------------------------------------------------------


class RunStatus(Enum):
    """The status of a run (one execution of a process, identified by its run key)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ItemStatus(Enum):
    """The status of an item (one transaction going through the process's steps)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    RETRY_WAITING = "retry_waiting"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"


class StageStatus(Enum):
    """The status of a stage (one item in one step).

    ``RETRY_WAITING``: a system error, another attempt is due at ``next_attempt_at``.
    ``EXHAUSTED``: a system error and the step's retry budget is spent.
    ``REJECTED``: a business error; never retried.
    """

    PENDING = "pending"
    RUNNING = "running"
    RETRY_WAITING = "retry_waiting"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    EXHAUSTED = "exhausted"
    CANCELLED = "cancelled"


def _table(pairs: dict[Enum, tuple[Enum, ...]]) -> Mapping[Any, frozenset[Any]]:
    return MappingProxyType({k: frozenset(v) for k, v in pairs.items()})


_R, _I, _S = RunStatus, ItemStatus, StageStatus
RUN_TRANSITIONS: Final[Mapping[RunStatus, frozenset[RunStatus]]] = _table(
    {
        _R.PENDING: (_R.RUNNING, _R.SUCCEEDED, _R.COMPLETED_WITH_ERRORS, _R.FAILED, _R.CANCELLED),
        _R.RUNNING: (_R.SUCCEEDED, _R.COMPLETED_WITH_ERRORS, _R.FAILED, _R.CANCELLED),
        _R.SUCCEEDED: (),
        _R.COMPLETED_WITH_ERRORS: (_R.RUNNING,),
        _R.FAILED: (_R.RUNNING,),
        _R.CANCELLED: (),
    }
)
"""Allowed run status changes: a finished run with errors, or a failed one, can be resumed."""

ITEM_TRANSITIONS: Final[Mapping[ItemStatus, frozenset[ItemStatus]]] = _table(
    {
        _I.PENDING: (_I.IN_PROGRESS, _I.CANCELLED),
        _I.IN_PROGRESS: (_I.RETRY_WAITING, _I.SUCCEEDED, _I.REJECTED, _I.EXHAUSTED, _I.CANCELLED),
        _I.RETRY_WAITING: (_I.IN_PROGRESS, _I.EXHAUSTED, _I.CANCELLED),
        _I.SUCCEEDED: (),
        _I.REJECTED: (_I.PENDING,),
        _I.EXHAUSTED: (_I.PENDING,),
        _I.CANCELLED: (),
    }
)
"""Allowed item status changes; ``REJECTED``/``EXHAUSTED`` -> ``PENDING`` is a redrive."""

STAGE_TRANSITIONS: Final[Mapping[StageStatus, frozenset[StageStatus]]] = _table(
    {
        _S.PENDING: (_S.RUNNING, _S.CANCELLED),
        _S.RUNNING: (_S.SUCCEEDED, _S.RETRY_WAITING, _S.REJECTED, _S.EXHAUSTED),
        _S.RETRY_WAITING: (_S.RUNNING, _S.CANCELLED),
        _S.SUCCEEDED: (),
        _S.REJECTED: (_S.PENDING,),
        _S.EXHAUSTED: (_S.PENDING,),
        _S.CANCELLED: (),
    }
)
"""Allowed stage status changes; ``REJECTED``/``EXHAUSTED`` -> ``PENDING`` is a redrive."""

_TABLES: Final[dict[type, tuple[str, Mapping[Any, frozenset[Any]]]]] = {
    RunStatus: ("run", RUN_TRANSITIONS),
    ItemStatus: ("item", ITEM_TRANSITIONS),
    StageStatus: ("stage", STAGE_TRANSITIONS),
}
_ITEM_ACTIVE: Final = frozenset({_I.PENDING, _I.IN_PROGRESS, _I.RETRY_WAITING})
del _R, _I, _S


def validate_transition(old: RunStatus | ItemStatus | StageStatus, new: Enum) -> None:
    """Raise :class:`TransitionError` unless ``old -> new`` is in the transition table.

    >>> validate_transition(StageStatus.RUNNING, StageStatus.EXHAUSTED)
    >>> try:
    ...     validate_transition(StageStatus.SUCCEEDED, StageStatus.RUNNING)
    ... except TransitionError as exc:
    ...     print(exc)
    illegal stage transition succeeded -> running
    """
    entity, table = _TABLES[type(old)]
    if type(new) is not type(old) or new not in table[old]:
        raise TransitionError(entity, old, new)


class Trigger(Enum):
    """What started a run."""

    MANUAL = "manual"
    SCHEDULED = "scheduled"
    API = "api"


class AttemptOutcome(Enum):
    """How an attempt ended; ``ABANDONED``: its worker's lease expired (a system error)."""

    SUCCESS = "success"
    SYSTEM_ERROR = "system_error"
    BUSINESS_ERROR = "business_error"
    ABANDONED = "abandoned"


class Backoff(Enum):
    """How the delay before a retry grows with the attempt number."""

    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class DeadLetterReason(Enum):
    """Why a record or item was dead-lettered."""

    EXHAUSTED = "exhausted"
    REJECTED = "rejected"
    MALFORMED = "malformed"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


class EventKind(Enum):
    """Domain events delivered to listeners after the change is committed."""

    RUN_STARTED = "run_started"
    RUN_COMPLETED = "run_completed"
    ITEM_CREATED = "item_created"
    STAGE_STARTED = "stage_started"
    STAGE_SUCCEEDED = "stage_succeeded"
    STAGE_RETRY_SCHEDULED = "stage_retry_scheduled"
    LEASE_EXPIRED = "lease_expired"
    ITEM_SUCCEEDED = "item_succeeded"
    ITEM_REJECTED = "item_rejected"
    ITEM_EXHAUSTED = "item_exhausted"
    DEAD_LETTERED = "dead_lettered"
    REDRIVEN = "redriven"


def classify_code(code: int) -> AttemptOutcome:
    """The error-code convention: 0 success, negative system error, positive business error.

    >>> classify_code(0).value, classify_code(-2).value, classify_code(7).value
    ('success', 'system_error', 'business_error')
    """
    if isinstance(code, bool) or not isinstance(code, int):
        raise TypeError(f"code must be an int, got {code!r}")
    if code == 0:
        return AttemptOutcome.SUCCESS
    return AttemptOutcome.SYSTEM_ERROR if code < 0 else AttemptOutcome.BUSINESS_ERROR


# ---------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (the default clock)."""
    return datetime.now(timezone.utc)


class ManualClock:
    """A clock for tests and docs: returns a fixed UTC time until ``advance()`` moves it."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start, "start")

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += timedelta(seconds=seconds)

    def set(self, now: datetime) -> None:
        """Jump to ``now`` (timezone-aware)."""
        self._now = _aware(now, "now")


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ScheduleError(f"{name} must be timezone-aware, got naive {value!r}")
    return value.astimezone(timezone.utc)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else (value - _EPOCH).total_seconds()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(seconds=float(value))


def _at(value: float) -> datetime:
    return _EPOCH + timedelta(seconds=float(value))


# ---------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------


class ExternalLink(NamedTuple):
    """A link to the orchestrator that started a run (Jenkins, Argo, UiPath Orchestrator...)."""

    engine: str
    external_id: str
    url: str | None = None


class Run(NamedTuple):
    """One execution of a process, unique by ``run_key``."""

    id: int
    run_key: str
    process: str
    params: Any
    trigger: Trigger
    link: ExternalLink | None
    status: RunStatus
    created_at: datetime
    finished_at: datetime | None
    version: int


class Item(NamedTuple):
    """One transaction; ``payload`` is the decoded JSON, ``dedup_key`` its identity."""

    id: int
    process: str
    run_id: int | None
    dedup_key: str
    payload: Any
    status: ItemStatus
    created_at: datetime
    updated_at: datetime
    version: int


class Stage(NamedTuple):
    """One item in one step. ``attempts`` counts every attempt; ``budget_base`` is the
    count at the last redrive (the retry budget covers ``attempts - budget_base``)."""

    id: int
    item_id: int
    step: str
    position: int
    status: StageStatus
    attempts: int
    budget_base: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    updated_at: datetime
    version: int


class Attempt(NamedTuple):
    """One try of a stage; ``outcome`` is None while it runs. ``duration`` in seconds."""

    id: int
    stage_id: int
    item_id: int
    run_id: int | None
    step: str
    attempt_no: int
    worker: str
    started_at: datetime
    ended_at: datetime | None
    duration: float | None
    outcome: AttemptOutcome | None
    code: int | None
    error: str | None


class StatusChange(NamedTuple):
    """One entry of the immutable audit trail of an item, stage or run."""

    id: int
    entity: str
    entity_id: int
    old: str | None
    new: str
    at: datetime
    reason: str | None


class DeadLetter(NamedTuple):
    """A record or item set aside with its reason, error and JSON payload text."""

    id: int
    process: str
    run_id: int | None
    item_id: int | None
    reason: DeadLetterReason
    error: str | None
    payload: str
    created_at: datetime
    redriven_at: datetime | None


class LedgerEvent(NamedTuple):
    """A domain event: ``kind``, when, and the ids it concerns."""

    kind: EventKind
    at: datetime
    process: str
    item_id: int | None = None
    step: str | None = None
    run_key: str | None = None
    detail: str | None = None


class Claim(NamedTuple):
    """A worker's lease on a stage: pass it back to ``complete()`` or ``heartbeat()``."""

    worker: str
    item: Item
    stage: Stage
    attempt: Attempt


class DueRun(NamedTuple):
    """A schedule slot that is due, with its deterministic run key."""

    slot: datetime
    run_key: str


class StepStats(NamedTuple):
    """Per-step figures of a report. Durations in seconds (nearest-rank percentiles)."""

    step: str
    attempts: int
    stages: int
    successes: int
    system_errors: int
    business_errors: int
    success_rate: float
    attempts_per_stage: float
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None


class FailureReason(NamedTuple):
    """An error text and how many attempts of a step ended with it (``attempts``)."""

    step: str
    error: str
    attempts: int


class LedgerReport(NamedTuple):
    """Counts by status, per-step statistics and top failures over a time range."""

    since: datetime | None
    until: datetime | None
    runs: dict[str, int]
    items: dict[str, int]
    stages: dict[str, int]
    steps: tuple[StepStats, ...]
    failures: tuple[FailureReason, ...]
    dead_letters: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (datetimes in ISO 8601)."""
        return {
            "since": _iso(self.since),
            "until": _iso(self.until),
            "runs": self.runs,
            "items": self.items,
            "stages": self.stages,
            "steps": [s._asdict() for s in self.steps],
            "failures": [f._asdict() for f in self.failures],
            "dead_letters": self.dead_letters,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how soon a step's system errors are retried.

    ``max_attempts`` counts every attempt including the first; ``None`` is unlimited and
    must be asked for. Delays in seconds: fixed ``base_delay``; linear ``base_delay * n``;
    exponential ``base_delay * multiplier ** (n - 1)``; all capped at ``max_delay``
    (``n`` is the number of attempts made so far).

    >>> p = RetryPolicy(max_attempts=4, backoff=Backoff.EXPONENTIAL, base_delay=2, max_delay=5)
    >>> [p.delay(n) for n in (1, 2, 3)], p.allows(3), p.allows(4)
    ([2.0, 4.0, 5.0], True, False)
    """

    max_attempts: int | None = 3
    backoff: Backoff = Backoff.EXPONENTIAL
    base_delay: float = 1.0
    max_delay: float = 3600.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        m = self.max_attempts
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ValueError(f"max_attempts must be an int >= 1 or None, got {m!r}")
        if not isinstance(self.backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff, got {self.backoff!r}")
        for name in ("base_delay", "max_delay", "multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier!r}")

    def allows(self, attempts_made: int) -> bool:
        """True if another attempt may follow ``attempts_made`` attempts."""
        return self.max_attempts is None or attempts_made < self.max_attempts

    def delay(self, attempts_made: int) -> float:
        """Seconds to wait after ``attempts_made`` attempts (>= 1) before the next one."""
        n = max(1, attempts_made)
        if self.backoff is Backoff.FIXED:
            value = float(self.base_delay)
        elif self.backoff is Backoff.LINEAR:
            value = float(self.base_delay) * n
        else:
            value = float(self.base_delay) * float(self.multiplier) ** min(n - 1, 1000)
        return min(value, float(self.max_delay))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff.value,
            "base_delay": self.base_delay,
            "max_delay": self.max_delay,
            "multiplier": self.multiplier,
        }


class Dedup:
    """How an item's identity is derived from its payload.

    ``Dedup.fields("a", "b.c")``: the selected (dotted) fields; ``Dedup.function(fn)``:
    ``str(fn(payload))``; ``Dedup.payload()``: a SHA-256 of the whole canonical JSON.

    >>> Dedup.fields("id").key({"id": 7, "x": 1}) == Dedup.fields("id").key({"x": 2, "id": 7})
    True
    """

    __slots__ = ("_fields", "_fn", "kind")

    def __init__(
        self,
        kind: str,
        fields: tuple[str, ...] = (),
        fn: Callable[[Any], object] | None = None,
    ) -> None:
        if kind not in ("fields", "function", "payload"):
            raise ValueError(f"kind must be 'fields', 'function' or 'payload', got {kind!r}")
        self.kind = kind
        self._fields = fields
        self._fn = fn

    @classmethod
    def fields(cls, *names: str) -> Dedup:
        """Identity from the selected fields (dotted paths into nested objects)."""
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"fields needs one or more non-empty names, got {names!r}")
        return cls("fields", tuple(names))

    @classmethod
    def function(cls, fn: Callable[[Any], object]) -> Dedup:
        """Identity from ``str(fn(payload))``."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {fn!r}")
        return cls("function", fn=fn)

    @classmethod
    def payload(cls) -> Dedup:
        """Identity from the hash of the whole payload."""
        return cls("payload")

    def key(self, payload: Any) -> str:
        """The item's dedup key for ``payload``; :class:`SchemaError` if a field is missing."""
        if self._fn is not None:
            return str(self._fn(payload))
        if self.kind == "payload":
            return "sha256:" + hashlib.sha256(_canonical(payload).encode()).hexdigest()
        values = []
        for name in self._fields:
            value = payload
            for part in name.split("."):
                if not isinstance(value, Mapping) or part not in value:
                    raise SchemaError(
                        f"dedup field {name!r} is missing", path="$." + name, keyword="dedup"
                    )
                value = value[part]
            values.append(value)
        return _canonical(values)

    def __repr__(self) -> str:
        return f"Dedup.{self.kind}({', '.join(map(repr, self._fields))})"


def _canonical(value: Any) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise SchemaError(f"payload is not JSON: {exc}", keyword="json") from None


@dataclass(frozen=True, slots=True)
class Step:
    """A platform or step of a process: its name, retry policy and optional payload schema."""

    name: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    schema: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {self.retry!r}")
        if self.schema is not None:
            _check_schema(self.schema, "$")


@dataclass(frozen=True, slots=True)
class ProcessDefinition:
    """An ordered list of steps, with the dedup strategy of its items."""

    name: str
    steps: tuple[Step, ...]
    dedup: Dedup = field(default_factory=Dedup.payload)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        steps = tuple(self.steps)
        object.__setattr__(self, "steps", steps)
        if not steps or not all(isinstance(s, Step) for s in steps):
            raise TypeError(f"steps must be a non-empty sequence of Step, got {self.steps!r}")
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"steps must have distinct names, got {names!r}")
        if not isinstance(self.dedup, Dedup):
            raise TypeError(f"dedup must be a Dedup, got {self.dedup!r}")

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFoundError(f"process {self.name!r} has no step {name!r}")


# ---------------------------------------------------------------------------
# JSON-Schema subset
# ---------------------------------------------------------------------------

_KEYWORDS: Final = frozenset(
    {
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
    }
)
_TYPE_NAMES: Final = frozenset(
    {
        "string",
        "integer",
        "number",
        "boolean",
        "object",
        "array",
        "null",
    }
)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_schema(schema: object, path: str) -> None:
    def bad(message: str) -> SchemaError:
        return SchemaError(message, path=path, keyword="schema")

    if not isinstance(schema, Mapping):
        raise bad(f"a schema must be an object, got {type(schema).__name__}")
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else kind
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(isinstance(k, str) and k in _TYPE_NAMES for k in kinds)
        ):
            raise bad(f"type must be one of {sorted(_TYPE_NAMES)} or a list of them")
    req = schema.get("required", [])
    if not isinstance(req, list) or not all(isinstance(r, str) for r in req):
        raise bad("required must be a list of strings")
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        raise bad("properties must be an object")
    for name, sub in props.items():
        _check_schema(sub, f"{path}.properties.{name}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise bad("enum must be a list")
    for name in ("minimum", "maximum"):
        if name in schema and not _is_number(schema[name]):
            raise bad(f"{name} must be a number")
    for name in ("minLength", "maxLength"):
        value = schema.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(f"{name} must be a non-negative integer")
    if "pattern" in schema:
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            raise bad("pattern must be a string")
        try:
            re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:
            raise bad(f"pattern is not a regular expression: {exc}") from None
    if "items" in schema:
        _check_schema(schema["items"], f"{path}.items")


def _type_ok(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return _is_number(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, (list, tuple))
    return value is None


def _json_equal(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _validate(schema: Mapping[str, Any], value: object, path: str) -> None:
    def fail(message: str, keyword: str) -> SchemaError:
        return SchemaError(message, path=path, keyword=keyword)

    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else kind
        if not any(_type_ok(k, value) for k in kinds):
            raise fail(f"expected {' or '.join(kinds)}, got {type(value).__name__}", "type")
    if "enum" in schema and not any(_json_equal(value, e) for e in schema["enum"]):
        raise fail(f"{value!r} is not one of {schema['enum']!r}", "enum")
    if _is_number(value):
        number: float = value  # type: ignore[assignment]
        if "minimum" in schema and number < schema["minimum"]:
            raise fail(f"{number!r} is less than the minimum {schema['minimum']!r}", "minimum")
        if "maximum" in schema and number > schema["maximum"]:
            raise fail(f"{number!r} is more than the maximum {schema['maximum']!r}", "maximum")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise fail(f"shorter than {schema['minLength']} characters", "minLength")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise fail(f"longer than {schema['maxLength']} characters", "maxLength")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            raise fail(f"{value!r} does not match {schema['pattern']!r}", "pattern")
    if isinstance(value, Mapping):
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaError(
                    f"required property {name!r} is missing",
                    path=f"{path}.{name}",
                    keyword="required",
                )
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _validate(sub, value[name], f"{path}.{name}")
    if isinstance(value, (list, tuple)) and "items" in schema:
        for index, element in enumerate(value):
            _validate(schema["items"], element, f"{path}[{index}]")


def validate_payload(schema: Mapping[str, Any], payload: object) -> None:
    """Check ``payload`` against a JSON-Schema subset; :class:`SchemaError` names the path.

    Supported keywords: type, required, properties, enum, minimum, maximum, minLength,
    maxLength, pattern (``re.search``), items; other keywords are ignored.

    >>> schema = {
    ...     "type": "object",
    ...     "required": ["lines"],
    ...     "properties": {
    ...         "lines": {
    ...             "type": "array",
    ...             "items": {
    ...                 "type": "object",
    ...                 "properties": {"qty": {"type": "integer", "minimum": 1}},
    ...             },
    ...         }
    ...     },
    ... }
    >>> try:
    ...     validate_payload(schema, {"lines": [{"qty": 2}, {"qty": 0}]})
    ... except SchemaError as exc:
    ...     print(exc.path, exc.keyword)
    $.lines[1].qty minimum
    """
    try:
        _check_schema(schema, "$")
        _validate(schema, payload, "$")
    except RecursionError:
        raise SchemaError("schema or payload nested too deeply", keyword="schema") from None


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """A UTC schedule: every ``period`` seconds at ``offset`` seconds past the period start.

    Build one with :meth:`hourly`, :meth:`daily` or :meth:`every`.
    """

    name: str
    period: int
    offset: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ScheduleError(f"name must be a non-empty str, got {self.name!r}")
        for name in ("period", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScheduleError(f"{name} must be an int (seconds), got {value!r}")
        if self.period < 60 or not 0 <= self.offset < self.period:
            raise ScheduleError(
                f"period must be >= 60 s and 0 <= offset < period, "
                f"got period={self.period!r} offset={self.offset!r}"
            )

    @classmethod
    def hourly(cls, name: str, *, minute: int = 0) -> Schedule:
        """At ``minute`` past every hour (UTC)."""
        if isinstance(minute, bool) or not isinstance(minute, int) or not 0 <= minute < 60:
            raise ScheduleError(f"minute must be an int in 0..59, got {minute!r}")
        return cls(name, 3600, minute * 60)

    @classmethod
    def daily(cls, name: str, *, at: str) -> Schedule:
        """Every day at ``at`` (``"HH:MM"``, UTC)."""
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", at) if isinstance(at, str) else None
        if match is None:
            raise ScheduleError(f"at must be 'HH:MM' (UTC), got {at!r}")
        return cls(name, 86400, int(match[1]) * 3600 + int(match[2]) * 60)

    @classmethod
    def every(cls, name: str, *, minutes: int) -> Schedule:
        """Every ``minutes`` minutes, counted from 1970-01-01T00:00Z."""
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            raise ScheduleError(f"minutes must be an int >= 1, got {minutes!r}")
        return cls(name, minutes * 60, 0)

    def run_key(self, slot: datetime) -> str:
        """The deterministic run key of ``slot``."""
        return f"{self.name}@{_aware(slot, 'slot'):%Y-%m-%dT%H:%M}Z"


def due_runs(
    schedule: Schedule,
    last_completed: datetime | None,
    now: datetime,
    *,
    limit: int | None = None,
) -> list[DueRun]:
    """Every slot after ``last_completed`` and at or before ``now``, oldest first.

    ``last_completed`` is the slot (or the finish time) of the last run that completed;
    ``None`` returns only the latest slot. ``limit`` keeps the oldest ``limit`` slots so
    a long outage is caught up in bounded batches.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule, got {schedule!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")
    period, offset = schedule.period, schedule.offset
    now_s = math.floor(_ts(_aware(now, "now")))  # type: ignore[arg-type]
    latest = (now_s - offset) // period * period + offset
    if last_completed is None:
        first = latest
    else:
        done_s = math.floor(_ts(_aware(last_completed, "last_completed")))  # type: ignore[arg-type]
        first = (done_s - offset) // period * period + offset + period
    out: list[DueRun] = []
    slot = first
    while slot <= latest and (limit is None or len(out) < limit):
        when = _EPOCH + timedelta(seconds=slot)
        out.append(DueRun(when, schedule.run_key(when)))
        slot += period
    return out


# ---------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------


class LedgerStore(Protocol):
    """Persistence of a ledger. Every method but ``transaction()`` runs inside one.

    ``insert_*`` return the record with its id (``insert_run``/``insert_item`` return
    None when the run key / dedup key exists); ``update_*`` write the record if the
    stored version equals ``expected`` (then version + 1) or raise StaleVersionError.
    """

    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[None]: ...
    def insert_run(self, run: Run) -> Run | None: ...
    def get_run(self, *, run_key: str | None = None, run_id: int | None = None) -> Run | None: ...
    def update_run(self, run: Run, expected: int) -> Run: ...
    def list_runs(self, since: float | None, until: float | None) -> list[Run]: ...
    def insert_item(self, item: Item) -> Item | None: ...
    def find_item(self, process: str, dedup_key: str) -> Item | None: ...
    def get_item(self, item_id: int) -> Item | None: ...
    def update_item(self, item: Item, expected: int) -> Item: ...
    def item_counts(self, run_id: int) -> dict[str, int]: ...
    def insert_stage(self, stage: Stage) -> Stage: ...
    def get_stage(self, stage_id: int) -> Stage | None: ...
    def stages_of(self, item_id: int) -> list[Stage]: ...
    def update_stage(self, stage: Stage, expected: int) -> Stage: ...
    def claimable(
        self, process: str, now: float, limit: int, item_id: int | None
    ) -> list[Stage]: ...
    def insert_attempt(self, attempt: Attempt) -> Attempt: ...
    def update_attempt(self, attempt: Attempt) -> None: ...
    def attempts_of(self, item_id: int) -> list[Attempt]: ...
    def insert_change(self, change: StatusChange) -> None: ...
    def history(self, entity: str, entity_id: int) -> list[StatusChange]: ...
    def insert_dead_letter(self, letter: DeadLetter) -> DeadLetter: ...
    def get_dead_letter(self, letter_id: int) -> DeadLetter | None: ...
    def mark_redriven(self, letter_id: int, at: float) -> bool: ...
    def dead_letters(self, process: str | None, run_id: int | None) -> list[DeadLetter]: ...
    def report_counts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> list[tuple[str, str, int]]: ...
    def report_attempts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> Iterable[tuple[str, str | None, float | None, int, str | None]]: ...


def _in_range(at: datetime, since: float | None, until: float | None) -> bool:
    t = _ts(at)
    return (since is None or t >= since) and (until is None or t < until)  # type: ignore[operator]


class InMemoryLedgerStore:
    """A thread-safe in-memory :class:`LedgerStore` (also the test double).

    A transaction holds a lock; if it raises, its writes are undone.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._depth = 0
        self._undo: list[Callable[[], object]] = []
        self._ids = 0
        self._runs: dict[int, Run] = {}
        self._run_keys: dict[str, int] = {}
        self._items: dict[int, Item] = {}
        self._dedup: dict[tuple[str, str], int] = {}
        self._stages: dict[int, Stage] = {}
        self._attempts: dict[int, Attempt] = {}
        self._changes: list[StatusChange] = []
        self._letters: dict[int, DeadLetter] = {}

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[None]:
        del read_only  # the lock serialises readers too
        with self._lock:
            self._depth += 1
            mark = len(self._undo)
            try:
                yield
            except BaseException:
                while len(self._undo) > mark:
                    self._undo.pop()()
                raise
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._undo.clear()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        missing = object()
        old = table.get(key, missing)
        table[key] = value
        if old is missing:
            self._undo.append(lambda: table.pop(key, None))
        else:
            self._undo.append(lambda: table.__setitem__(key, old))

    def _update(self, table: dict[int, Any], entity: str, record: Any, expected: int) -> Any:
        current = table.get(record.id)
        if current is None or current.version != expected:
            raise StaleVersionError(entity, record.id, expected)
        new = record._replace(version=expected + 1)
        self._put(table, record.id, new)
        return new

    def insert_run(self, run: Run) -> Run | None:
        if run.run_key in self._run_keys:
            return None
        run = run._replace(id=self._next_id())
        self._put(self._runs, run.id, run)
        self._put(self._run_keys, run.run_key, run.id)
        return run

    def get_run(self, *, run_key: str | None = None, run_id: int | None = None) -> Run | None:
        if run_key is not None:
            run_id = self._run_keys.get(run_key)
        return None if run_id is None else self._runs.get(run_id)

    def update_run(self, run: Run, expected: int) -> Run:
        return self._update(self._runs, "run", run, expected)  # type: ignore[no-any-return]

    def list_runs(self, since: float | None, until: float | None) -> list[Run]:
        return [r for r in self._runs.values() if _in_range(r.created_at, since, until)]

    def insert_item(self, item: Item) -> Item | None:
        key = (item.process, item.dedup_key)
        if key in self._dedup:
            return None
        item = item._replace(id=self._next_id())
        self._put(self._items, item.id, item)
        self._put(self._dedup, key, item.id)
        return item

    def find_item(self, process: str, dedup_key: str) -> Item | None:
        item_id = self._dedup.get((process, dedup_key))
        return None if item_id is None else self._items[item_id]

    def get_item(self, item_id: int) -> Item | None:
        return self._items.get(item_id)

    def update_item(self, item: Item, expected: int) -> Item:
        return self._update(self._items, "item", item, expected)  # type: ignore[no-any-return]

    def item_counts(self, run_id: int) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self._items.values():
            if item.run_id == run_id:
                counts[item.status.value] = counts.get(item.status.value, 0) + 1
        return counts

    def insert_stage(self, stage: Stage) -> Stage:
        stage = stage._replace(id=self._next_id())
        self._put(self._stages, stage.id, stage)
        return stage

    def get_stage(self, stage_id: int) -> Stage | None:
        return self._stages.get(stage_id)

    def stages_of(self, item_id: int) -> list[Stage]:
        return sorted(
            (s for s in self._stages.values() if s.item_id == item_id), key=lambda s: s.position
        )

    def update_stage(self, stage: Stage, expected: int) -> Stage:
        return self._update(self._stages, "stage", stage, expected)  # type: ignore[no-any-return]

    def claimable(self, process: str, now: float, limit: int, item_id: int | None) -> list[Stage]:
        out = []
        for stage in self._stages.values():
            if item_id is not None and stage.item_id != item_id:
                continue
            if self._items[stage.item_id].process != process:
                continue
            if _claimable(stage, now):
                out.append(stage)
                if len(out) == limit:
                    break
        return out

    def insert_attempt(self, attempt: Attempt) -> Attempt:
        attempt = attempt._replace(id=self._next_id())
        self._put(self._attempts, attempt.id, attempt)
        return attempt

    def update_attempt(self, attempt: Attempt) -> None:
        self._put(self._attempts, attempt.id, attempt)

    def attempts_of(self, item_id: int) -> list[Attempt]:
        return [a for a in self._attempts.values() if a.item_id == item_id]

    def insert_change(self, change: StatusChange) -> None:
        self._changes.append(change._replace(id=len(self._changes) + 1))
        self._undo.append(self._changes.pop)

    def history(self, entity: str, entity_id: int) -> list[StatusChange]:
        return [c for c in self._changes if c.entity == entity and c.entity_id == entity_id]

    def insert_dead_letter(self, letter: DeadLetter) -> DeadLetter:
        letter = letter._replace(id=self._next_id())
        self._put(self._letters, letter.id, letter)
        return letter

    def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        return self._letters.get(letter_id)

    def mark_redriven(self, letter_id: int, at: float) -> bool:
        letter = self._letters[letter_id]
        if letter.redriven_at is not None:
            return False
        self._put(self._letters, letter_id, letter._replace(redriven_at=_dt(at)))
        return True

    def dead_letters(self, process: str | None, run_id: int | None) -> list[DeadLetter]:
        return [
            d
            for d in self._letters.values()
            if (process is None or d.process == process) and (run_id is None or d.run_id == run_id)
        ]

    def _attempts_in(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> Iterator[Attempt]:
        for a in self._attempts.values():
            if (run_id is None or a.run_id == run_id) and _in_range(a.started_at, since, until):
                yield a

    def report_counts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> list[tuple[str, str, int]]:
        counts: dict[tuple[str, str], int] = {}
        rows: list[tuple[str, Any, datetime]] = []
        rows += [
            ("run", r.status, r.created_at)
            for r in self._runs.values()
            if run_id is None or r.id == run_id
        ]
        items = {i.id: i for i in self._items.values() if run_id is None or i.run_id == run_id}
        rows += [("item", i.status, i.created_at) for i in items.values()]
        rows += [
            ("stage", s.status, items[s.item_id].created_at)
            for s in self._stages.values()
            if s.item_id in items
        ]
        for kind, status, at in rows:
            if _in_range(at, since, until):
                counts[kind, status.value] = counts.get((kind, status.value), 0) + 1
        return [(k, s, n) for (k, s), n in sorted(counts.items())]

    def report_attempts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> Iterator[tuple[str, str | None, float | None, int, str | None]]:
        for a in self._attempts_in(since, until, run_id):
            outcome = None if a.outcome is None else a.outcome.value
            yield a.step, outcome, a.duration, a.attempt_no, a.error


def _claimable(stage: Stage, now: float) -> bool:
    if stage.status in (StageStatus.PENDING, StageStatus.RETRY_WAITING):
        due = _ts(stage.next_attempt_at)
        return due is None or due <= now
    return stage.status is StageStatus.RUNNING and _ts(stage.lease_expires_at) <= now  # type: ignore[operator]


# --------------------------------------------------------------------------------------
# DB-API adapter: the same small block in every module that stores state in SQL
# (a deliberate duplicate, see CONVENTIONS "small duplication beats coupling").
# --------------------------------------------------------------------------------------


class _Dialect:
    """What a DB-API connection speaks: ``sqlite`` or ``postgresql``, and its paramstyle.

    The module writes its SQL once with ``?`` placeholders; ``sql()`` rewrites them for
    the driver's paramstyle (qmark, format/pyformat ``%s``, numeric ``:1``).
    The driver is never imported: it is recognised from the connection's class.
    """

    __slots__ = ("name", "paramstyle")

    def __init__(self, name: str, paramstyle: str) -> None:
        self.name = name
        self.paramstyle = paramstyle

    def sql(self, text: str) -> str:
        if self.paramstyle == "qmark":
            return text
        parts = text.split("?")
        if self.paramstyle == "numeric":
            marks = [f":{i}" for i in range(1, len(parts))]
        else:  # format and pyformat
            marks = ["%s"] * (len(parts) - 1)
        out = [parts[0]]
        for mark, part in zip(marks, parts[1:]):  # noqa: B905 - the shared adapter block
            out += [mark, part]
        return "".join(out)


def _dialect_of(conn: object) -> _Dialect:
    """Recognise the connection's driver by its module; refuse what we cannot speak."""
    root = type(conn).__module__.split(".")[0]
    driver = sys.modules.get(root)
    paramstyle = getattr(driver, "paramstyle", None)
    if root in ("sqlite3", "_sqlite3"):
        return _Dialect("sqlite", "qmark")
    if root in ("psycopg", "psycopg2", "pg8000", "psycopg2cffi") and paramstyle in (
        "format",
        "pyformat",
        "numeric",
    ):
        return _Dialect("postgresql", paramstyle)
    raise TypeError(
        f"unsupported DB-API connection {type(conn).__module__}.{type(conn).__qualname__}: "
        "interlock speaks sqlite3 and PostgreSQL drivers (psycopg, psycopg2, pg8000)"
    )


_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS ledger_run (
        id {id}, run_key TEXT NOT NULL UNIQUE, process TEXT NOT NULL, params TEXT NOT NULL,
        trigger_source TEXT NOT NULL, engine TEXT, external_id TEXT, url TEXT,
        status TEXT NOT NULL, created_at {real} NOT NULL, finished_at {real},
        version INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS ledger_item (
        id {id}, process TEXT NOT NULL, run_id BIGINT, dedup_key TEXT NOT NULL,
        payload TEXT NOT NULL, status TEXT NOT NULL, created_at {real} NOT NULL,
        updated_at {real} NOT NULL, version INTEGER NOT NULL, UNIQUE (process, dedup_key))""",
    "CREATE INDEX IF NOT EXISTS ledger_item_run ON ledger_item (run_id)",
    """CREATE TABLE IF NOT EXISTS ledger_stage (
        id {id}, item_id BIGINT NOT NULL, step TEXT NOT NULL, position INTEGER NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL, budget_base INTEGER NOT NULL,
        next_attempt_at {real}, lease_owner TEXT, lease_expires_at {real}, last_error TEXT,
        updated_at {real} NOT NULL, version INTEGER NOT NULL, UNIQUE (item_id, step))""",
    "CREATE INDEX IF NOT EXISTS ledger_stage_status ON ledger_stage (status)",
    """CREATE TABLE IF NOT EXISTS ledger_attempt (
        id {id}, stage_id BIGINT NOT NULL, item_id BIGINT NOT NULL, run_id BIGINT,
        step TEXT NOT NULL, attempt_no INTEGER NOT NULL, worker TEXT NOT NULL,
        started_at {real} NOT NULL, ended_at {real}, duration {real}, outcome TEXT,
        code INTEGER, error TEXT)""",
    "CREATE INDEX IF NOT EXISTS ledger_attempt_item ON ledger_attempt (item_id)",
    "CREATE INDEX IF NOT EXISTS ledger_attempt_started ON ledger_attempt (started_at)",
    "CREATE INDEX IF NOT EXISTS ledger_attempt_run ON ledger_attempt (run_id)",
    """CREATE TABLE IF NOT EXISTS ledger_history (
        id {id}, entity TEXT NOT NULL, entity_id BIGINT NOT NULL, old_status TEXT,
        new_status TEXT NOT NULL, at {real} NOT NULL, reason TEXT)""",
    "CREATE INDEX IF NOT EXISTS ledger_history_entity ON ledger_history (entity, entity_id)",
    """CREATE TABLE IF NOT EXISTS ledger_dead_letter (
        id {id}, process TEXT NOT NULL, run_id BIGINT, item_id BIGINT, reason TEXT NOT NULL,
        error TEXT, payload TEXT NOT NULL, created_at {real} NOT NULL, redriven_at {real})""",
)


def migrate(conn: Any) -> int:
    """Create or upgrade the ledger tables on a DB-API connection; idempotent.

    Records the version in ``ledger_schema_version`` and commits; returns the version.
    """
    dialect = _dialect_of(conn)
    if dialect.name == "sqlite":
        id_type, real = "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL"
    else:
        id_type, real = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION"
    cur = conn.cursor()
    try:
        cur.execute("CREATE TABLE IF NOT EXISTS ledger_schema_version (version INTEGER NOT NULL)")
        cur.execute("SELECT MAX(version) FROM ledger_schema_version")
        current = cur.fetchone()[0] or 0
        if current < 1:
            for statement in _DDL:
                cur.execute(statement.format(id=id_type, real=real))
            cur.execute(
                dialect.sql("INSERT INTO ledger_schema_version (version) VALUES (?)"),
                (SCHEMA_VERSION,),
            )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        cur.close()
    return max(current, SCHEMA_VERSION)


def connect_sqlite(path: str, *, timeout: float = 30.0) -> Any:
    """Open a SQLite ledger file the way the SQL store wants it.

    Autocommit mode (the store issues ``BEGIN IMMEDIATE``), WAL journal, a busy timeout of
    ``timeout`` seconds. One connection per thread or process.
    """
    import sqlite3  # noqa: PLC0415 - only needed when the module opens a file itself

    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


_RUN_COLS: Final = (
    "id, run_key, process, params, trigger_source, engine, external_id, url, "
    "status, created_at, finished_at, version"
)
_ITEM_COLS: Final = (
    "id, process, run_id, dedup_key, payload, status, created_at, updated_at, version"
)
_STAGE_COLS: Final = (
    "id, item_id, step, position, status, attempts, budget_base, "
    "next_attempt_at, lease_owner, lease_expires_at, last_error, updated_at, "
    "version"
)
_ATTEMPT_COLS: Final = (
    "id, stage_id, item_id, run_id, step, attempt_no, worker, started_at, "
    "ended_at, duration, outcome, code, error"
)
_LETTER_COLS: Final = (
    "id, process, run_id, item_id, reason, error, payload, created_at, redriven_at"
)


def _run_of(r: Sequence[Any]) -> Run:
    link = None if r[5] is None else ExternalLink(r[5], r[6], r[7])
    return Run(
        r[0],
        r[1],
        r[2],
        json.loads(r[3]),
        Trigger(r[4]),
        link,
        RunStatus(r[8]),
        _at(r[9]),
        _dt(r[10]),
        r[11],
    )


def _item_of(r: Sequence[Any]) -> Item:
    return Item(
        r[0], r[1], r[2], r[3], json.loads(r[4]), ItemStatus(r[5]), _at(r[6]), _at(r[7]), r[8]
    )


def _stage_of(r: Sequence[Any]) -> Stage:
    return Stage(
        r[0],
        r[1],
        r[2],
        r[3],
        StageStatus(r[4]),
        r[5],
        r[6],
        _dt(r[7]),
        r[8],
        _dt(r[9]),
        r[10],
        _at(r[11]),
        r[12],
    )


def _stage_state(stage: Stage) -> tuple[Any, ...]:
    """A stage's changing columns, ``status`` to ``updated_at``: what INSERT and UPDATE write."""
    return (
        stage.status.value,
        stage.attempts,
        stage.budget_base,
        _ts(stage.next_attempt_at),
        stage.lease_owner,
        _ts(stage.lease_expires_at),
        stage.last_error,
        _ts(stage.updated_at),
    )


def _attempt_of(r: Sequence[Any]) -> Attempt:
    outcome = None if r[10] is None else AttemptOutcome(r[10])
    return Attempt(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        _at(r[7]),
        _dt(r[8]),
        r[9],
        outcome,
        r[11],
        r[12],
    )


def _attempt_end(a: Attempt) -> tuple[Any, ...]:
    """An attempt's closing columns, ``ended_at`` to ``error``: what INSERT and UPDATE write."""
    return (
        _ts(a.ended_at),
        a.duration,
        None if a.outcome is None else a.outcome.value,
        a.code,
        a.error,
    )


def _letter_of(r: Sequence[Any]) -> DeadLetter:
    return DeadLetter(
        r[0],
        r[1],
        r[2],
        r[3],
        DeadLetterReason(r[4]),
        r[5],
        r[6],
        _at(r[7]),
        _dt(r[8]),
    )


def _range_sql(
    column: str,
    since: float | None,
    until: float | None,
    run_id: int | None,
    run_column: str = "run_id",
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1=1"]
    params: list[Any] = []
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(until)
    if run_id is not None:
        clauses.append(f"{run_column} = ?")
        params.append(run_id)
    return " AND ".join(clauses), params


class SQLLedgerStore:
    """A :class:`LedgerStore` over one DB-API connection (sqlite3 or a PostgreSQL driver).

    Call :func:`migrate` first. On SQLite a transaction is ``BEGIN IMMEDIATE`` (open the
    file with :func:`connect_sqlite`); on PostgreSQL claims use ``FOR UPDATE SKIP LOCKED``.
    Every update checks the row's version. Use one store (one connection) per thread.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._dialect = _dialect_of(conn)
        self._sql: dict[str, str] = {}
        self._depth = 0

    def _q(self, text: str, params: Sequence[Any] = ()) -> Any:
        sql = self._sql.get(text)
        if sql is None:
            sql = self._sql[text] = self._dialect.sql(text)
        cur = self._conn.cursor()
        cur.execute(sql, tuple(params))
        return cur

    def _one(self, text: str, params: Sequence[Any] = ()) -> Any:
        cur = self._q(text, params)
        row = cur.fetchone()
        cur.close()
        return row

    def _all(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = self._q(text, params)
        rows = cur.fetchall()
        cur.close()
        return list(rows)

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        conn = self._conn
        if self._dialect.name == "sqlite":
            if not conn.in_transaction:
                conn.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
        elif getattr(conn, "autocommit", False):
            self._q("BEGIN").close()
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            conn.rollback()
            raise
        self._depth = 0
        conn.commit()

    def _insert(self, text: str, params: Sequence[Any]) -> int | None:
        row = self._one(text + " RETURNING id", params)
        return None if row is None else int(row[0])

    def _new_id(self, text: str, params: Sequence[Any]) -> int:
        row = self._one(text + " RETURNING id", params)
        return int(row[0])

    def insert_run(self, run: Run) -> Run | None:
        link = run.link or ExternalLink(None, None, None)  # type: ignore[arg-type]
        new_id = self._insert(
            f"INSERT INTO ledger_run ({_RUN_COLS[4:]}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (run_key) DO NOTHING",
            (
                run.run_key,
                run.process,
                _canonical(run.params),
                run.trigger.value,
                link.engine,
                link.external_id,
                link.url,
                run.status.value,
                _ts(run.created_at),
                _ts(run.finished_at),
                run.version,
            ),
        )
        return None if new_id is None else run._replace(id=new_id)

    def get_run(self, *, run_key: str | None = None, run_id: int | None = None) -> Run | None:
        if run_key is not None:
            row = self._one(f"SELECT {_RUN_COLS} FROM ledger_run WHERE run_key = ?", (run_key,))
        else:
            row = self._one(f"SELECT {_RUN_COLS} FROM ledger_run WHERE id = ?", (run_id,))
        return None if row is None else _run_of(row)

    def _check(self, cur: Any, entity: str, entity_id: int, expected: int) -> None:
        count = cur.rowcount
        cur.close()
        if count != 1:
            raise StaleVersionError(entity, entity_id, expected)

    def update_run(self, run: Run, expected: int) -> Run:
        cur = self._q(
            "UPDATE ledger_run SET status = ?, finished_at = ?, version = ? "
            "WHERE id = ? AND version = ?",
            (run.status.value, _ts(run.finished_at), expected + 1, run.id, expected),
        )
        self._check(cur, "run", run.id, expected)
        return run._replace(version=expected + 1)

    def list_runs(self, since: float | None, until: float | None) -> list[Run]:
        where, params = _range_sql("created_at", since, until, None)
        rows = self._all(f"SELECT {_RUN_COLS} FROM ledger_run WHERE {where} ORDER BY id", params)
        return [_run_of(r) for r in rows]

    def insert_item(self, item: Item) -> Item | None:
        new_id = self._insert(
            f"INSERT INTO ledger_item ({_ITEM_COLS[4:]}) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT (process, dedup_key) DO NOTHING",
            (
                item.process,
                item.run_id,
                item.dedup_key,
                _canonical(item.payload),
                item.status.value,
                _ts(item.created_at),
                _ts(item.updated_at),
                item.version,
            ),
        )
        return None if new_id is None else item._replace(id=new_id)

    def find_item(self, process: str, dedup_key: str) -> Item | None:
        row = self._one(
            f"SELECT {_ITEM_COLS} FROM ledger_item WHERE process = ? AND dedup_key = ?",
            (process, dedup_key),
        )
        return None if row is None else _item_of(row)

    def get_item(self, item_id: int) -> Item | None:
        row = self._one(f"SELECT {_ITEM_COLS} FROM ledger_item WHERE id = ?", (item_id,))
        return None if row is None else _item_of(row)

    def update_item(self, item: Item, expected: int) -> Item:
        cur = self._q(
            "UPDATE ledger_item SET status = ?, run_id = ?, updated_at = ?, version = ? "
            "WHERE id = ? AND version = ?",
            (item.status.value, item.run_id, _ts(item.updated_at), expected + 1, item.id, expected),
        )
        self._check(cur, "item", item.id, expected)
        return item._replace(version=expected + 1)

    def item_counts(self, run_id: int) -> dict[str, int]:
        rows = self._all(
            "SELECT status, COUNT(*) FROM ledger_item WHERE run_id = ? GROUP BY status", (run_id,)
        )
        return {r[0]: int(r[1]) for r in rows}

    def insert_stage(self, stage: Stage) -> Stage:
        new_id = self._new_id(
            f"INSERT INTO ledger_stage ({_STAGE_COLS[4:]}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (stage.item_id, stage.step, stage.position, *_stage_state(stage), stage.version),
        )
        return stage._replace(id=new_id)

    def get_stage(self, stage_id: int) -> Stage | None:
        row = self._one(f"SELECT {_STAGE_COLS} FROM ledger_stage WHERE id = ?", (stage_id,))
        return None if row is None else _stage_of(row)

    def stages_of(self, item_id: int) -> list[Stage]:
        rows = self._all(
            f"SELECT {_STAGE_COLS} FROM ledger_stage WHERE item_id = ? ORDER BY position",
            (item_id,),
        )
        return [_stage_of(r) for r in rows]

    def update_stage(self, stage: Stage, expected: int) -> Stage:
        cur = self._q(
            "UPDATE ledger_stage SET status = ?, attempts = ?, budget_base = ?, "
            "next_attempt_at = ?, lease_owner = ?, lease_expires_at = ?, last_error = ?, "
            "updated_at = ?, version = ? WHERE id = ? AND version = ?",
            (*_stage_state(stage), expected + 1, stage.id, expected),
        )
        self._check(cur, "stage", stage.id, expected)
        return stage._replace(version=expected + 1)

    def claimable(self, process: str, now: float, limit: int, item_id: int | None) -> list[Stage]:
        cols = ", ".join("s." + c.strip() for c in _STAGE_COLS.split(","))
        sql = (
            f"SELECT {cols} FROM ledger_stage s JOIN ledger_item i ON i.id = s.item_id "
            "WHERE i.process = ? AND ((s.status IN ('pending', 'retry_waiting') AND "
            "(s.next_attempt_at IS NULL OR s.next_attempt_at <= ?)) OR "
            "(s.status = 'running' AND s.lease_expires_at <= ?))"
        )
        params: list[Any] = [process, now, now]
        if item_id is not None:
            sql += " AND s.item_id = ?"
            params.append(item_id)
        sql += f" ORDER BY s.id LIMIT {int(limit)}"
        if self._dialect.name == "postgresql":
            sql += " FOR UPDATE OF s SKIP LOCKED"
        return [_stage_of(r) for r in self._all(sql, params)]

    def insert_attempt(self, attempt: Attempt) -> Attempt:
        a = attempt
        new_id = self._new_id(
            f"INSERT INTO ledger_attempt ({_ATTEMPT_COLS[4:]}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                a.stage_id,
                a.item_id,
                a.run_id,
                a.step,
                a.attempt_no,
                a.worker,
                _ts(a.started_at),
                *_attempt_end(a),
            ),
        )
        return a._replace(id=new_id)

    def update_attempt(self, attempt: Attempt) -> None:
        a = attempt
        self._q(
            "UPDATE ledger_attempt SET ended_at = ?, duration = ?, outcome = ?, code = ?, "
            "error = ? WHERE id = ?",
            (*_attempt_end(a), a.id),
        ).close()

    def attempts_of(self, item_id: int) -> list[Attempt]:
        rows = self._all(
            f"SELECT {_ATTEMPT_COLS} FROM ledger_attempt WHERE item_id = ? ORDER BY id",
            (item_id,),
        )
        return [_attempt_of(r) for r in rows]

    def insert_change(self, change: StatusChange) -> None:
        self._q(
            "INSERT INTO ledger_history (entity, entity_id, old_status, new_status, at, reason) "
            "VALUES (?,?,?,?,?,?)",
            (
                change.entity,
                change.entity_id,
                change.old,
                change.new,
                _ts(change.at),
                change.reason,
            ),
        ).close()

    def history(self, entity: str, entity_id: int) -> list[StatusChange]:
        rows = self._all(
            "SELECT id, entity, entity_id, old_status, new_status, at, reason FROM ledger_history "
            "WHERE entity = ? AND entity_id = ? ORDER BY id",
            (entity, entity_id),
        )
        return [StatusChange(r[0], r[1], r[2], r[3], r[4], _at(r[5]), r[6]) for r in rows]

    def insert_dead_letter(self, letter: DeadLetter) -> DeadLetter:
        d = letter
        new_id = self._new_id(
            f"INSERT INTO ledger_dead_letter ({_LETTER_COLS[4:]}) VALUES (?,?,?,?,?,?,?,?)",
            (
                d.process,
                d.run_id,
                d.item_id,
                d.reason.value,
                d.error,
                d.payload,
                _ts(d.created_at),
                _ts(d.redriven_at),
            ),
        )
        return d._replace(id=new_id)

    def get_dead_letter(self, letter_id: int) -> DeadLetter | None:
        row = self._one(f"SELECT {_LETTER_COLS} FROM ledger_dead_letter WHERE id = ?", (letter_id,))
        return None if row is None else _letter_of(row)

    def mark_redriven(self, letter_id: int, at: float) -> bool:
        cur = self._q(
            "UPDATE ledger_dead_letter SET redriven_at = ? WHERE id = ? AND redriven_at IS NULL",
            (at, letter_id),
        )
        count = cur.rowcount
        cur.close()
        return bool(count == 1)

    def dead_letters(self, process: str | None, run_id: int | None) -> list[DeadLetter]:
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        if process is not None:
            clauses.append("process = ?")
            params.append(process)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        rows = self._all(
            f"SELECT {_LETTER_COLS} FROM ledger_dead_letter WHERE {' AND '.join(clauses)} "
            "ORDER BY id",
            params,
        )
        return [_letter_of(r) for r in rows]

    def report_counts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> list[tuple[str, str, int]]:
        out: list[tuple[str, str, int]] = []
        where, params = _range_sql("created_at", since, until, run_id, "id")
        rows = self._all(
            f"SELECT status, COUNT(*) FROM ledger_run WHERE {where} GROUP BY status", params
        )
        out += [("run", r[0], int(r[1])) for r in rows]
        where, params = _range_sql("created_at", since, until, run_id)
        rows = self._all(
            f"SELECT status, COUNT(*) FROM ledger_item WHERE {where} GROUP BY status", params
        )
        out += [("item", r[0], int(r[1])) for r in rows]
        if since is None and until is None and run_id is None:
            rows = self._all("SELECT status, COUNT(*) FROM ledger_stage GROUP BY status")
        else:
            where, params = _range_sql("i.created_at", since, until, run_id, "i.run_id")
            rows = self._all(
                "SELECT s.status, COUNT(*) FROM ledger_stage s JOIN ledger_item i "
                f"ON i.id = s.item_id WHERE {where} GROUP BY s.status",
                params,
            )
        out += [("stage", r[0], int(r[1])) for r in rows]
        return sorted(out)

    def report_attempts(
        self, since: float | None, until: float | None, run_id: int | None
    ) -> Iterator[tuple[str, str | None, float | None, int, str | None]]:
        where, params = _range_sql("started_at", since, until, run_id)
        cur = self._q(
            f"SELECT step, outcome, duration, attempt_no, error FROM ledger_attempt WHERE {where}",
            params,
        )
        try:
            while rows := cur.fetchmany(4096):
                yield from rows
        finally:
            cur.close()


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


def _error_text(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:500]


def _percentile(values: list[float], p: float) -> float:
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


class Ledger:
    """The execution ledger: processes, runs, items, stages, attempts, leases, reports.

    Args:
        store: A :class:`LedgerStore` (:class:`InMemoryLedgerStore`, :class:`SQLLedgerStore`).
        clock: Returns the current timezone-aware datetime (default :func:`utc_now`).
        lease_seconds: How long a claim holds a stage without a heartbeat.
        classify: Optional ``exc -> AttemptOutcome | None`` deciding whether an exception
            from step code is a business or a system error (None: the default rule,
            :class:`BusinessError` is business, anything else system).
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        clock: Callable[[], datetime] = utc_now,
        lease_seconds: float = 300.0,
        classify: Callable[[BaseException], AttemptOutcome | None] | None = None,
    ) -> None:
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
            raise TypeError(f"lease_seconds must be a number, got {lease_seconds!r}")
        if not math.isfinite(lease_seconds) or lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be finite and > 0, got {lease_seconds!r}")
        if classify is not None and not callable(classify):
            raise TypeError(f"classify must be callable or None, got {classify!r}")
        self.store = store
        self._clock = clock
        self.lease_seconds = float(lease_seconds)
        self._classify = classify
        self._processes: dict[str, ProcessDefinition] = {}
        self._listeners: list[Callable[[LedgerEvent], object]] = []
        self._events: list[LedgerEvent] = []
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------

    def define(self, process: ProcessDefinition) -> ProcessDefinition:
        """Register a process definition (replacing one of the same name)."""
        if not isinstance(process, ProcessDefinition):
            raise TypeError(f"process must be a ProcessDefinition, got {process!r}")
        self._processes[process.name] = process
        return process

    def process(self, name: str) -> ProcessDefinition:
        """The registered process ``name``; :class:`NotFoundError` otherwise."""
        try:
            return self._processes[name]
        except KeyError:
            raise NotFoundError(f"no process {name!r} is defined") from None

    def subscribe(self, listener: Callable[[LedgerEvent], object]) -> None:
        """Call ``listener(event)`` for every domain event, after its change is committed."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        self._listeners.append(listener)

    # -- plumbing ------------------------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        return _aware(self._clock() if now is None else now, "now")

    @contextmanager
    def _tx(self) -> Iterator[list[LedgerEvent]]:
        events: list[LedgerEvent] = []
        with self.store.transaction():
            yield events
        for event in events:
            for listener in self._listeners:
                listener(event)

    def _change(  # noqa: PLR0917 - internal
        self,
        entity: str,
        entity_id: int,
        old: Enum | None,
        new: Enum,
        at: datetime,
        reason: str | None,
    ) -> None:
        if old is not None:
            validate_transition(old, new)  # type: ignore[arg-type]
        self.store.insert_change(
            StatusChange(
                0, entity, entity_id, None if old is None else old.value, new.value, at, reason
            )
        )

    def _stage_to(
        self,
        stage: Stage,
        new: StageStatus,
        at: datetime,
        reason: str | None = None,
        **changes: Any,
    ) -> Stage:
        self._change("stage", stage.id, stage.status, new, at, reason)
        return self.store.update_stage(
            stage._replace(status=new, updated_at=at, **changes), stage.version
        )

    def _item_to(
        self, item: Item, new: ItemStatus, at: datetime, reason: str | None = None, **changes: Any
    ) -> Item:
        if item.status is new and not changes:
            return item
        if item.status is not new:
            self._change("item", item.id, item.status, new, at, reason)
        return self.store.update_item(
            item._replace(status=new, updated_at=at, **changes), item.version
        )

    def _run_to(
        self, run: Run, new: RunStatus, at: datetime, reason: str | None = None, **changes: Any
    ) -> Run:
        self._change("run", run.id, run.status, new, at, reason)
        return self.store.update_run(run._replace(status=new, **changes), run.version)

    def _item(self, item_id: int) -> Item:
        item = self.store.get_item(item_id)
        if item is None:
            raise NotFoundError(f"no item {item_id!r}")
        return item

    def _run(self, run_key: str) -> Run:
        run = self.store.get_run(run_key=run_key)
        if run is None:
            raise NotFoundError(f"no run {run_key!r}")
        return run

    # -- runs ----------------------------------------------------------------------

    def start_run(
        self,
        process: str,
        run_key: str,
        *,
        params: Mapping[str, Any] | None = None,
        trigger: Trigger = Trigger.MANUAL,
        link: ExternalLink | None = None,
        now: datetime | None = None,
    ) -> tuple[Run, bool]:
        """Create the run ``run_key`` or return the existing one: ``(run, created)``.

        The same key with the same ``params`` returns the existing run; with different
        parameters it raises :class:`RunKeyConflictError`. A run that FAILED or
        COMPLETED_WITH_ERRORS is resumed (back to RUNNING).
        """
        self.process(process)
        if not isinstance(run_key, str) or not run_key:
            raise ValueError(f"run_key must be a non-empty str, got {run_key!r}")
        if not isinstance(trigger, Trigger):
            raise TypeError(f"trigger must be a Trigger, got {trigger!r}")
        wanted = json.loads(_canonical(dict(params or {})))
        at = self._now(now)
        with self._tx() as events:
            run = self.store.insert_run(
                Run(0, run_key, process, wanted, trigger, link, RunStatus.RUNNING, at, None, 0)
            )
            if run is not None:
                self._change("run", run.id, None, RunStatus.RUNNING, at, trigger.value)
                events.append(LedgerEvent(EventKind.RUN_STARTED, at, process, run_key=run_key))
                return run, True
            run = self._run(run_key)
            if run.process != process or _canonical(run.params) != _canonical(wanted):
                raise RunKeyConflictError(run_key, run.params, wanted)
            if run.status in (RunStatus.FAILED, RunStatus.COMPLETED_WITH_ERRORS):
                run = self._run_to(run, RunStatus.RUNNING, at, "resumed", finished_at=None)
            return run, False

    def get_run(self, run_key: str) -> Run:
        """The run ``run_key``; :class:`NotFoundError` otherwise."""
        with self.store.transaction():
            return self._run(run_key)

    def finish_run(self, run_key: str, *, now: datetime | None = None) -> Run:
        """Close a run whose items are all final: SUCCEEDED, or COMPLETED_WITH_ERRORS when an
        item was rejected, exhausted or cancelled or a record was dead-lettered.

        :class:`TransitionError` if an item is still active (the run stays RUNNING).
        """
        at = self._now(now)
        with self._tx() as events:
            run = self._run(run_key)
            counts = self.store.item_counts(run.id)
            if any(counts.get(s.value) for s in _ITEM_ACTIVE):
                raise TransitionError("run", run.status, RunStatus.SUCCEEDED)
            letters = [d for d in self.store.dead_letters(None, run.id) if d.redriven_at is None]
            clean = set(counts) <= {ItemStatus.SUCCEEDED.value} and not letters
            new = RunStatus.SUCCEEDED if clean else RunStatus.COMPLETED_WITH_ERRORS
            run = self._run_to(run, new, at, None, finished_at=at)
            events.append(
                LedgerEvent(
                    EventKind.RUN_COMPLETED, at, run.process, run_key=run_key, detail=new.value
                )
            )
            return run

    def fail_run(self, run_key: str, reason: str, *, now: datetime | None = None) -> Run:
        """Mark a run FAILED (a crash of the job itself), with ``reason`` in its history."""
        at = self._now(now)
        with self._tx() as events:
            run = self._run(run_key)
            run = self._run_to(run, RunStatus.FAILED, at, reason, finished_at=at)
            events.append(
                LedgerEvent(
                    EventKind.RUN_COMPLETED,
                    at,
                    run.process,
                    run_key=run_key,
                    detail=RunStatus.FAILED.value,
                )
            )
            return run

    def cancel_run(self, run_key: str, reason: str, *, now: datetime | None = None) -> Run:
        """Mark a run CANCELLED (its items are left as they are; cancel them one by one)."""
        at = self._now(now)
        with self._tx() as events:
            run = self._run_to(self._run(run_key), RunStatus.CANCELLED, at, reason, finished_at=at)
            events.append(
                LedgerEvent(
                    EventKind.RUN_COMPLETED, at, run.process, run_key=run_key, detail="cancelled"
                )
            )
            return run

    def cancel_item(self, item_id: int, reason: str, *, now: datetime | None = None) -> Item:
        """Cancel an item that is not being worked on: its current stage (PENDING or
        RETRY_WAITING) and the item become CANCELLED. :class:`TransitionError` if the
        stage is RUNNING or the item is already final."""
        at = self._now(now)
        with self._tx():
            item = self._item(item_id)
            stage = self.store.stages_of(item_id)[-1]
            self._stage_to(stage, StageStatus.CANCELLED, at, reason)
            return self._item_to(item, ItemStatus.CANCELLED, at, reason)

    def runs(self, *, since: datetime | None = None, until: datetime | None = None) -> list[Run]:
        """Runs created in ``[since, until)``."""
        with self.store.transaction():
            return self.store.list_runs(
                _ts(since and _aware(since, "since")), _ts(until and _aware(until, "until"))
            )

    # -- items ---------------------------------------------------------------------

    def start_or_resume(
        self,
        process: str,
        payload: Any,
        *,
        run_key: str | None = None,
        now: datetime | None = None,
    ) -> tuple[Item, bool]:
        """Register a transaction or find the existing one: ``(item, is_new)``.

        The payload must be JSON and match every step's schema (:class:`SchemaError`
        names the path); its identity comes from the process's :class:`Dedup`.
        """
        definition = self.process(process)
        text = _canonical(payload)
        for step in definition.steps:
            if step.schema is not None:
                _validate(step.schema, payload, "$")
        key = definition.dedup.key(payload)
        at = self._now(now)
        with self._tx() as events:
            run = None if run_key is None else self._run(run_key)
            run_id = None if run is None else run.id
            item = self.store.insert_item(
                Item(0, process, run_id, key, json.loads(text), ItemStatus.PENDING, at, at, 0)
            )
            if item is None:
                existing = self.store.find_item(process, key)
                assert existing is not None  # noqa: S101 - the insert just conflicted on it
                return existing, False
            self._change("item", item.id, None, ItemStatus.PENDING, at, run_key)
            self._new_stage(item, definition.steps[0].name, 0, at)
            events.append(
                LedgerEvent(EventKind.ITEM_CREATED, at, process, item.id, run_key=run_key)
            )
            return item, True

    def _new_stage(self, item: Item, step: str, position: int, at: datetime) -> Stage:
        stage = self.store.insert_stage(
            Stage(
                0, item.id, step, position, StageStatus.PENDING, 0, 0, None, None, None, None, at, 0
            )
        )
        self._change("stage", stage.id, None, StageStatus.PENDING, at, None)
        return stage

    def get_item(self, item_id: int) -> Item:
        """The item ``item_id``; :class:`NotFoundError` otherwise."""
        with self.store.transaction():
            return self._item(item_id)

    def stages(self, item_id: int) -> list[Stage]:
        """The item's stages, in step order (only reached steps have a stage)."""
        with self.store.transaction():
            return self.store.stages_of(item_id)

    def attempts(self, item_id: int) -> list[Attempt]:
        """Every attempt of the item, oldest first (abandoned ones included)."""
        with self.store.transaction():
            return sorted(self.store.attempts_of(item_id), key=lambda a: a.id)

    def history(self, entity: str, entity_id: int) -> list[StatusChange]:
        """The audit trail of a ``"run"``, ``"item"`` or ``"stage"``, oldest first."""
        with self.store.transaction():
            return self.store.history(entity, entity_id)

    # -- stages --------------------------------------------------------------------

    def claim(
        self,
        process: str,
        *,
        worker: str,
        item_id: int | None = None,
        now: datetime | None = None,
    ) -> Claim | None:
        """Lease the next due stage of ``process`` (or of ``item_id``), or None.

        Due: PENDING, RETRY_WAITING whose ``next_attempt_at`` has come, or RUNNING whose
        lease expired; the expired attempt is closed as ABANDONED (a system error that
        counts against the step's retry budget) before the new one starts.
        """
        definition = self.process(process)
        if not isinstance(worker, str) or not worker:
            raise ValueError(f"worker must be a non-empty str, got {worker!r}")
        at = self._now(now)
        for _ in range(8):
            try:
                with self._tx() as events:
                    for stage in self.store.claimable(process, _ts(at), 4, item_id):  # type: ignore[arg-type]
                        claim = self._try_claim(definition, stage, worker, at, events)
                        if claim is not None:
                            return claim
                    return None
            except StaleVersionError:  # noqa: PERF203 - another worker got there first: look again
                continue
        return None

    def _try_claim(
        self,
        definition: ProcessDefinition,
        stage: Stage,
        worker: str,
        at: datetime,
        events: list[LedgerEvent],
    ) -> Claim | None:
        item = self._item(stage.item_id)
        if stage.status is StageStatus.RUNNING:
            stage, item = self._abandon(definition, stage, item, at, events)
            if stage.status is StageStatus.EXHAUSTED:
                return None
        stage = self._stage_to(
            stage,
            StageStatus.RUNNING,
            at,
            worker,
            attempts=stage.attempts + 1,
            lease_owner=worker,
            lease_expires_at=at + timedelta(seconds=self.lease_seconds),
            next_attempt_at=None,
        )
        if item.status is not ItemStatus.IN_PROGRESS:
            item = self._item_to(item, ItemStatus.IN_PROGRESS, at, stage.step)
        attempt = self.store.insert_attempt(
            Attempt(
                0,
                stage.id,
                item.id,
                item.run_id,
                stage.step,
                stage.attempts,
                worker,
                at,
                None,
                None,
                None,
                None,
                None,
            )
        )
        events.append(
            LedgerEvent(
                EventKind.STAGE_STARTED, at, definition.name, item.id, stage.step, detail=worker
            )
        )
        return Claim(worker, item, stage, attempt)

    def _open_attempt(self, stage: Stage) -> Attempt | None:
        for attempt in self.store.attempts_of(stage.item_id):
            if attempt.stage_id == stage.id and attempt.outcome is None:
                return attempt
        return None

    def _abandon(
        self,
        definition: ProcessDefinition,
        stage: Stage,
        item: Item,
        at: datetime,
        events: list[LedgerEvent],
    ) -> tuple[Stage, Item]:
        error = f"lease of {stage.lease_owner} expired at {_iso(stage.lease_expires_at)}"
        attempt = self._open_attempt(stage)
        result = self._after_failure(definition, stage, item, at, error, events, retry_now=True)
        if attempt is not None:
            self.store.update_attempt(
                attempt._replace(
                    ended_at=at,
                    duration=(at - attempt.started_at).total_seconds(),
                    outcome=AttemptOutcome.ABANDONED,
                    code=None,
                    error=error,
                )
            )
        events.append(
            LedgerEvent(
                EventKind.LEASE_EXPIRED,
                at,
                definition.name,
                item.id,
                stage.step,
                detail=stage.lease_owner,
            )
        )
        return result

    def _after_failure(  # noqa: PLR0917 - internal
        self,
        definition: ProcessDefinition,
        stage: Stage,
        item: Item,
        at: datetime,
        error: str,
        events: list[LedgerEvent],
        *,
        retry_now: bool = False,
    ) -> tuple[Stage, Item]:
        policy = definition.step(stage.step).retry
        used = stage.attempts - stage.budget_base
        clear = {"lease_owner": None, "lease_expires_at": None, "last_error": error}
        if policy.allows(used):
            due = at if retry_now else at + timedelta(seconds=policy.delay(used))
            stage = self._stage_to(
                stage, StageStatus.RETRY_WAITING, at, error, next_attempt_at=due, **clear
            )
            item = self._item_to(item, ItemStatus.RETRY_WAITING, at, stage.step)
            events.append(
                LedgerEvent(
                    EventKind.STAGE_RETRY_SCHEDULED,
                    at,
                    definition.name,
                    item.id,
                    stage.step,
                    detail=_iso(due),
                )
            )
            return stage, item
        stage = self._stage_to(stage, StageStatus.EXHAUSTED, at, error, **clear)
        item = self._item_to(item, ItemStatus.EXHAUSTED, at, stage.step)
        self._dead_letter(
            definition.name,
            item.run_id,
            item.id,
            DeadLetterReason.EXHAUSTED,
            error,
            _canonical(item.payload),
            at,
            events,
        )
        events.append(
            LedgerEvent(
                EventKind.ITEM_EXHAUSTED, at, definition.name, item.id, stage.step, detail=error
            )
        )
        return stage, item

    def _dead_letter(  # noqa: PLR0917 - internal
        self,
        process: str,
        run_id: int | None,
        item_id: int | None,
        reason: DeadLetterReason,
        error: str | None,
        payload: str,
        at: datetime,
        events: list[LedgerEvent],
    ) -> DeadLetter:
        letter = self.store.insert_dead_letter(
            DeadLetter(0, process, run_id, item_id, reason, error, payload, at, None)
        )
        events.append(
            LedgerEvent(EventKind.DEAD_LETTERED, at, process, item_id, detail=reason.value)
        )
        return letter

    @contextmanager
    def _leased(self, claim: Claim) -> Iterator[list[LedgerEvent]]:
        try:
            with self._tx() as events:
                yield events
        except StaleVersionError as exc:
            if isinstance(exc, LeaseLostError) or exc.entity != "stage":
                raise
            raise LeaseLostError(
                "stage",
                claim.stage.id,
                claim.stage.version,
                f"stage {claim.stage.id} ({claim.stage.step}) was changed by another worker",
            ) from exc

    def _current(self, claim: Claim) -> Stage:
        stage = self.store.get_stage(claim.stage.id)
        if (
            stage is None
            or stage.version != claim.stage.version
            or stage.status is not StageStatus.RUNNING
            or stage.lease_owner != claim.worker
        ):
            raise LeaseLostError(
                "stage",
                claim.stage.id,
                claim.stage.version,
                f"stage {claim.stage.id} ({claim.stage.step}) is no longer leased to "
                f"{claim.worker} at version {claim.stage.version}",
            )
        return stage

    def heartbeat(self, claim: Claim, *, now: datetime | None = None) -> Claim:
        """Extend the claim's lease by ``lease_seconds`` from now; returns the new claim.

        :class:`LeaseLostError` if the lease was taken over.
        """
        at = self._now(now)
        with self._leased(claim):
            stage = self._current(claim)
            stage = self.store.update_stage(
                stage._replace(lease_expires_at=at + timedelta(seconds=self.lease_seconds)),
                stage.version,
            )
            return claim._replace(stage=stage)

    def complete(
        self,
        claim: Claim,
        *,
        code: int = 0,
        error: str | None = None,
        now: datetime | None = None,
    ) -> Stage:
        """Record the claim's attempt with an error code and advance the stage.

        0: SUCCEEDED and the next step's stage is created (or the item SUCCEEDED);
        negative: RETRY_WAITING with backoff, or EXHAUSTED (dead-lettered) when the step's
        budget is spent; positive: REJECTED (dead-lettered, never retried).
        :class:`LeaseLostError` if the lease was taken over: nothing is recorded.
        """
        return self._record(claim, classify_code(code), code, error, now)

    def fail(self, claim: Claim, exc: BaseException, *, now: datetime | None = None) -> Stage:
        """Record the claim's attempt as failed by ``exc`` (business or system, see classify)."""
        outcome = self._outcome_of(exc)
        code = getattr(exc, "code", None) if outcome is AttemptOutcome.BUSINESS_ERROR else -1
        if isinstance(code, bool) or not isinstance(code, int) or code == 0:
            code = 1 if outcome is AttemptOutcome.BUSINESS_ERROR else -1
        return self._record(claim, outcome, code, _error_text(exc), now)

    def _outcome_of(self, exc: BaseException) -> AttemptOutcome:
        if self._classify is not None:
            decided = self._classify(exc)
            if decided in (AttemptOutcome.BUSINESS_ERROR, AttemptOutcome.SYSTEM_ERROR):
                return decided
        if isinstance(exc, BusinessError):
            return AttemptOutcome.BUSINESS_ERROR
        return AttemptOutcome.SYSTEM_ERROR

    def run_stage(
        self, claim: Claim, handler: Callable[[Any], object], *, now: datetime | None = None
    ) -> Stage:
        """Call ``handler(payload)`` for the claim and record the outcome.

        An int result is an error code; any other result is success; an ``Exception``
        is classified (business or system). Other ``BaseException`` s propagate and the
        stage stays RUNNING until its lease expires.
        """
        try:
            result = handler(claim.item.payload)
        except Exception as exc:  # noqa: BLE001 - recorded, never swallowed silently
            return self.fail(claim, exc, now=now)
        if isinstance(result, int) and not isinstance(result, bool):
            return self.complete(claim, code=result, now=now)
        return self.complete(claim, now=now)

    def _record(
        self,
        claim: Claim,
        outcome: AttemptOutcome,
        code: int,
        error: str | None,
        now: datetime | None,
    ) -> Stage:
        at = self._now(now)
        definition = self.process(claim.item.process)
        with self._leased(claim) as events:
            stage = self._current(claim)
            item = self._item(stage.item_id)
            # The stage row is written first (it is the lock: a racing takeover waits on it
            # or makes this update fail), the attempt row after it, in the same transaction.
            if outcome is not AttemptOutcome.SUCCESS and not error:
                error = f"error code {code}"
            stage = self._advance(definition, stage, item, outcome, code, error, at, events)
            started = claim.attempt.started_at
            self.store.update_attempt(
                claim.attempt._replace(
                    ended_at=at,
                    duration=max(0.0, (at - started).total_seconds()),
                    outcome=outcome,
                    code=code,
                    error=error,
                )
            )
            return stage

    def _advance(  # noqa: PLR0917 - internal
        self,
        definition: ProcessDefinition,
        stage: Stage,
        item: Item,
        outcome: AttemptOutcome,
        code: int,
        error: str | None,
        at: datetime,
        events: list[LedgerEvent],
    ) -> Stage:
        process = definition.name
        if outcome is AttemptOutcome.SUCCESS:
            stage = self._stage_to(
                stage,
                StageStatus.SUCCEEDED,
                at,
                None,
                lease_owner=None,
                lease_expires_at=None,
                last_error=None,
            )
            events.append(LedgerEvent(EventKind.STAGE_SUCCEEDED, at, process, item.id, stage.step))
            if stage.position + 1 < len(definition.steps):
                self._new_stage(
                    item, definition.steps[stage.position + 1].name, stage.position + 1, at
                )
            else:
                self._item_to(item, ItemStatus.SUCCEEDED, at, stage.step)
                events.append(
                    LedgerEvent(EventKind.ITEM_SUCCEEDED, at, process, item.id, stage.step)
                )
            return stage
        text = error or f"error code {code}"
        if outcome is AttemptOutcome.BUSINESS_ERROR:
            stage = self._stage_to(
                stage,
                StageStatus.REJECTED,
                at,
                text,
                lease_owner=None,
                lease_expires_at=None,
                last_error=text,
            )
            item = self._item_to(item, ItemStatus.REJECTED, at, stage.step)
            self._dead_letter(
                process,
                item.run_id,
                item.id,
                DeadLetterReason.REJECTED,
                text,
                _canonical(item.payload),
                at,
                events,
            )
            events.append(
                LedgerEvent(EventKind.ITEM_REJECTED, at, process, item.id, stage.step, detail=text)
            )
            return stage
        stage, _ = self._after_failure(definition, stage, item, at, text, events)
        return stage

    # -- dead letters --------------------------------------------------------------

    def dead_letters(
        self,
        *,
        process: str | None = None,
        run_key: str | None = None,
        include_redriven: bool = False,
    ) -> list[DeadLetter]:
        """Dead letters, oldest first (redriven ones only if asked)."""
        with self.store.transaction():
            run_id = None if run_key is None else self._run(run_key).id
            letters = self.store.dead_letters(process, run_id)
        return [d for d in letters if include_redriven or d.redriven_at is None]

    def redrive(
        self,
        letter_id: int,
        *,
        payload: Any = None,
        run_key: str | None = None,
        now: datetime | None = None,
    ) -> Item:
        """Send a dead letter back: its item's failed stage gets a fresh retry budget, or
        (a record that never became an item) ``payload`` (default: the stored one) is
        registered with :meth:`start_or_resume`. Returns the item.
        """
        at = self._now(now)
        with self.store.transaction():
            letter = self.store.get_dead_letter(letter_id)
            if letter is None:
                raise NotFoundError(f"no dead letter {letter_id!r}")
            if letter.redriven_at is not None:
                raise LedgerError(f"dead letter {letter_id} was already redriven")
        if letter.item_id is None:
            data = payload
            if data is None:
                data = json.loads(letter.payload)
                if isinstance(data, str):  # a line of text as it arrived: parse it again
                    try:
                        data = json.loads(data)
                    except ValueError:
                        raise SchemaError(
                            "the dead-lettered record is not JSON: pass payload=",
                            keyword="json",
                        ) from None
            item, _ = self.start_or_resume(letter.process, data, run_key=run_key, now=at)
            with self.store.transaction():
                self.store.mark_redriven(letter_id, _ts(at))  # type: ignore[arg-type]
            return item
        with self._tx() as events:
            if not self.store.mark_redriven(letter_id, _ts(at)):  # type: ignore[arg-type]  # pragma: no cover - a concurrent redrive won
                raise LedgerError(f"dead letter {letter_id} was already redriven")
            item = self._item(letter.item_id)
            stage = self.store.stages_of(item.id)[-1]
            if stage.status in (StageStatus.EXHAUSTED, StageStatus.REJECTED):
                self._stage_to(
                    stage,
                    StageStatus.PENDING,
                    at,
                    "redrive",
                    budget_base=stage.attempts,
                    next_attempt_at=None,
                )
            item = self._item_to(item, ItemStatus.PENDING, at, "redrive")
            events.append(LedgerEvent(EventKind.REDRIVEN, at, item.process, item.id, stage.step))
            return item

    # -- reports -------------------------------------------------------------------

    def report(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        run_key: str | None = None,
        top: int = 10,
    ) -> LedgerReport:
        """Counts by status, per-step statistics and the ``top`` failure reasons.

        Runs and items count when created in ``[since, until)``; attempts when started in it.
        """
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValueError(f"top must be an int >= 1, got {top!r}")
        lo = _ts(since and _aware(since, "since"))
        hi = _ts(until and _aware(until, "until"))
        with self.store.transaction(read_only=True):
            run_id = None if run_key is None else self._run(run_key).id
            counts = self.store.report_counts(lo, hi, run_id)
            acc: dict[str, list[int]] = {}
            durations: dict[str, list[float]] = {}
            fails: dict[tuple[str, str], int] = {}
            for step, outcome, duration, attempt_no, error in self.store.report_attempts(
                lo, hi, run_id
            ):
                row = acc.get(step)
                if row is None:
                    row = acc[step] = [0, 0, 0, 0, 0]
                    durations[step] = []
                row[0] += 1
                if attempt_no == 1:
                    row[1] += 1
                if outcome == "success":
                    row[2] += 1
                elif outcome is not None:
                    row[4 if outcome == "business_error" else 3] += 1
                    key = (step, error or "")
                    fails[key] = fails.get(key, 0) + 1
                if duration is not None:
                    durations[step].append(duration)
            letters = len(self.store.dead_letters(None, run_id)) if run_id is not None else None
        by_kind: dict[str, dict[str, int]] = {"run": {}, "item": {}, "stage": {}}
        for kind, status, n in counts:
            by_kind[kind][status] = n
        stats = []
        for step in sorted(acc):
            attempts, stages, ok, system, business = acc[step]
            values = durations[step]
            values.sort()
            pct = [_percentile(values, p) if values else None for p in (50, 90, 99)]
            stats.append(
                StepStats(
                    step,
                    attempts,
                    stages,
                    ok,
                    system,
                    business,
                    round(ok / attempts, 6),
                    round(attempts / stages, 6) if stages else 0.0,
                    pct[0],
                    pct[1],
                    pct[2],
                    values[-1] if values else None,
                )
            )
        ranked = sorted(fails.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
        failures = [(step, error, n) for (step, error), n in ranked]
        if letters is None:
            with self.store.transaction(read_only=True):
                letters = sum(
                    1
                    for d in self.store.dead_letters(None, None)
                    if _in_range(d.created_at, lo, hi)
                )
        return LedgerReport(
            since,
            until,
            by_kind["run"],
            by_kind["item"],
            by_kind["stage"],
            tuple(stats),
            tuple(FailureReason(*f) for f in failures),
            letters,
        )

    def run_report(self, run_key: str) -> dict[str, Any]:
        """One run's full report as a JSON-ready dict: the run, its counts, steps, failures
        and dead letters (with payloads)."""
        run = self.get_run(run_key)
        report = self.report(run_key=run_key)
        letters = self.dead_letters(run_key=run_key, include_redriven=True)
        end = run.finished_at
        return {
            "run_key": run.run_key,
            "process": run.process,
            "status": run.status.value,
            "trigger": run.trigger.value,
            "params": run.params,
            "link": None if run.link is None else run.link._asdict(),
            "created_at": _iso(run.created_at),
            "finished_at": _iso(end),
            "duration": None if end is None else (end - run.created_at).total_seconds(),
            "items": report.items,
            "stages": report.stages,
            "steps": [s._asdict() for s in report.steps],
            "failures": [f._asdict() for f in report.failures],
            "dead_letters": [
                {
                    "id": d.id,
                    "reason": d.reason.value,
                    "error": d.error,
                    "payload": d.payload,
                    "item_id": d.item_id,
                    "redriven_at": _iso(d.redriven_at),
                }
                for d in letters
            ],
        }


class Pipeline:
    """A keyed run over an input of records through named steps (the FlowLedger manner).

    Each record (a mapping, or a line of JSON text) becomes an item of ``process`` and
    goes through the steps in order within the same call; system errors are retried
    with the step's policy (``sleep`` waits out the backoff, the ledger's clock is read
    again after it). A malformed line, a payload failing a schema or a dedup key seen
    twice in one input is dead-lettered and the run continues; an item that succeeded in
    an earlier run is skipped. The run always ends finished or FAILED, never RUNNING.

    Args:
        ledger: The ledger (its process ``process`` must be defined).
        process: The process name.
        handlers: ``{step name: handler(payload)}``; see :meth:`Ledger.run_stage`.
        sleep: Waits seconds (default ``time.sleep``; inject a fake in tests).
        worker: The worker name recorded on attempts.
    """

    def __init__(
        self,
        ledger: Ledger,
        process: str,
        handlers: Mapping[str, Callable[[Any], object]],
        *,
        sleep: Callable[[float], object] | None = None,
        worker: str = "pipeline",
    ) -> None:
        definition = ledger.process(process)
        missing = [s.name for s in definition.steps if s.name not in handlers]
        if missing:
            raise ValueError(f"handlers lacks steps {missing!r} of process {process!r}")
        self.ledger = ledger
        self.process = process
        self.handlers = dict(handlers)
        if sleep is None:
            import time  # noqa: PLC0415

            sleep = time.sleep
        self._sleep = sleep
        self.worker = worker

    def run(
        self,
        run_key: str,
        records: Iterable[Any],
        *,
        params: Mapping[str, Any] | None = None,
        trigger: Trigger = Trigger.MANUAL,
        link: ExternalLink | None = None,
    ) -> dict[str, Any]:
        """Run (or resume) ``run_key`` over ``records``; return the run report dict with
        ``counts`` (records, processed, skipped, dead_lettered) added.
        """
        ledger = self.ledger
        run, _ = ledger.start_run(self.process, run_key, params=params, trigger=trigger, link=link)
        counts = {"records": 0, "processed": 0, "skipped": 0, "dead_lettered": 0}
        if run.status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
            report = ledger.run_report(run_key)
            report["counts"] = counts
            return report
        seen: set[str] = set()
        definition = ledger.process(self.process)
        try:
            for record in records:
                counts["records"] += 1
                self._one(run, definition, record, seen, counts)
            ledger.finish_run(run_key)
        except BaseException as exc:
            ledger.fail_run(run_key, _error_text(exc))
            raise
        report = ledger.run_report(run_key)
        report["counts"] = counts
        return report

    def _one(
        self,
        run: Run,
        definition: ProcessDefinition,
        record: Any,
        seen: set[str],
        counts: dict[str, int],
    ) -> None:
        ledger = self.ledger
        at = ledger._now(None)  # noqa: SLF001 - same module
        payload = record
        try:
            if isinstance(record, (str, bytes, bytearray)):
                payload = json.loads(record)
            _canonical(payload)
            for step in definition.steps:
                if step.schema is not None:
                    _validate(step.schema, payload, "$")
            key = definition.dedup.key(payload)
        except (ValueError, RecursionError) as exc:
            malformed = not isinstance(exc, SchemaError) or exc.keyword == "json"
            reason = DeadLetterReason.MALFORMED if malformed else DeadLetterReason.INVALID
            self._letter(run, reason, _error_text(exc), record, at)
            counts["dead_lettered"] += 1
            return
        if key in seen:
            self._letter(
                run, DeadLetterReason.DUPLICATE, f"dedup key {key} repeated in input", payload, at
            )
            counts["dead_lettered"] += 1
            return
        seen.add(key)
        item, is_new = ledger.start_or_resume(self.process, payload, run_key=run.run_key)
        if not is_new and item.status not in _ITEM_ACTIVE:
            counts["skipped"] += 1
            return
        if not is_new and item.run_id != run.id:
            with ledger.store.transaction():
                item = ledger._item(item.id)  # noqa: SLF001
                ledger.store.update_item(item._replace(run_id=run.id), item.version)
        counts["processed"] += 1
        while True:
            claim = ledger.claim(self.process, worker=self.worker, item_id=item.id)
            if claim is None:
                stages = ledger.stages(item.id)
                waiting = [s for s in stages if s.status is StageStatus.RETRY_WAITING]
                if not waiting:
                    return
                due = waiting[0].next_attempt_at
                delay = (due - ledger._now(None)).total_seconds()  # type: ignore[operator]  # noqa: SLF001
                self._sleep(max(0.0, delay))
                if ledger._now(None) < due:  # type: ignore[operator]  # noqa: SLF001
                    claim = ledger.claim(self.process, worker=self.worker, item_id=item.id, now=due)
                    if claim is None:  # pragma: no cover - the stage was due at `due`
                        return
                else:
                    continue
            ledger.run_stage(
                claim,
                self.handlers[claim.stage.step],
                now=max(ledger._now(None), claim.attempt.started_at),  # noqa: SLF001
            )

    def _letter(
        self, run: Run, reason: DeadLetterReason, error: str, record: Any, at: datetime
    ) -> None:
        if isinstance(record, (bytes, bytearray)):
            record = bytes(record).decode("utf-8", "replace")
        try:
            text = json.dumps(record, sort_keys=True, default=str, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            text = json.dumps(str(record))
        ledger = self.ledger
        with ledger._tx() as events:  # noqa: SLF001
            ledger._dead_letter(self.process, run.id, None, reason, error, text, at, events)  # noqa: SLF001
