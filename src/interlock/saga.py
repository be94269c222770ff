# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Sagas that survive crashes: ordered steps, compensation in reverse, a durable log.

Verdict:
    Use it when one business operation spans systems that cannot share a transaction
    (reserve stock in the ERP, charge the card, create the shipment) and a failure or a
    crash half-way must end in one of two states: everything done, or everything that was
    done semantically undone, with a log an operator can read.
    Do not use it when the systems share a database (use its transaction), when the steps
    cannot be undone and cannot be retried (no saga helps), or when you need a workflow
    engine with timers, signals and human tasks (Temporal, Camunda): this is an
    orchestrator library with an append-only log, not a scheduler.

Prevents:
    - Money charged and stock reserved with no record after a crash: every step start,
      result, failure and compensation is appended to a durable log before the next
      action runs; ``resume()`` finishes or compensates from the log, and ``pending()``
      lists the sagas to resume at start-up.
    - Running an action or a completed compensation twice: ``resume()`` never re-runs a
      step the log shows finished; an action whose outcome is unknown (started, not
      finished) is re-run only when the step is declared ``idempotent=True``.
    - Compensating the wrong step: step names are unique (``add_step`` refuses a
      duplicate), and compensations run in exact reverse order of completion.
    - Hidden compensation failures: every failed attempt is in the result
      (``compensation_failures``) and the log; a compensation that keeps failing after its
      retries leaves the saga ``STUCK`` with the step, the error and the history, never
      silently dropped.
    - Skipped compensation on cancellation: ``KeyboardInterrupt``, ``SystemExit`` and task
      cancellation during a step leave the step "started, not finished" in the log, the
      saga in ``pending()``, and ``resume()`` compensates or finishes it.
    - A step that timed out but took effect staying in place: each step chooses whether
      its own compensation runs when it fails (``compensate_on_failure``: never,
      if_uncertain, always).

References:
    - Hector Garcia-Molina and Kenneth Salem, "Sagas", SIGMOD 1987.
    - Chris Richardson, microservices.io "Pattern: Saga" and *Microservices Patterns*
      (2018), chapter 4: pivot and retriable transactions, semantic locks.
    - Temporal ``Saga`` (Java SDK) and eventuate-tram-sagas, for how engines differ on
      compensating the failed step and on compensation errors.

Exceptions:
    SagaError (RuntimeError)                    root of everything this module raises
    +-- DuplicateStepError (ValueError)         a step name used twice; .name
    +-- InvalidTransitionError                  a state change the table forbids; .source, .target
    +-- SagaConflictError                       the log already holds that record; .saga_id, .seq
    +-- SagaDefinitionError (ValueError)        resume() with steps the log does not know
    +-- StepFailedError                         a failure read back from the log; .step
    +-- StepTimeoutError (TimeoutError)         a step ran past its timeout; .step, .timeout
    +-- SagaDeadlineError (TimeoutError)        the saga's deadline passed; .deadline_at
    +-- UnknownSagaError (LookupError)          no saga with that id in the log; .saga_id

    Configuration mistakes raise ``ValueError`` or ``TypeError`` naming the argument.

Example:
    >>> saga = SagaOrchestrator("order")
    >>> undone = []
    >>> _ = saga.add_step("reserve", lambda: "R-1", lambda: undone.append("reserve"))
    >>> _ = saga.add_step("charge", lambda: 1 / 0, lambda: undone.append("charge"))
    >>> result = saga.execute()
    >>> result.succeeded, result.failed_step, type(result.error).__name__
    (False, 'charge', 'ZeroDivisionError')
    >>> result.completed_steps, result.compensated_steps, undone
    (['reserve'], ['reserve'], ['reserve'])
    >>> result.status
    <SagaStatus.COMPENSATED: 'compensated'>
    >>> ctx_saga = SagaOrchestrator("ctx", pass_context=True)
    >>> _ = ctx_saga.add_step("a", lambda ctx: 2)
    >>> _ = ctx_saga.add_step("b", lambda ctx: ctx.results["a"] * 21)
    >>> ctx_saga.execute(saga_id="s-1").step_results
    {'a': 2, 'b': 42}
    >>> idempotency_key("s-1", "b") == idempotency_key("s-1", "b")
    True
"""

from __future__ import annotations

import enum
import os
import sys
import threading
import time
from inspect import isawaitable
from types import MappingProxyType
from typing import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
    from types import ModuleType
    from typing import Any, Protocol
else:
    Protocol = object

__all__ = [
    "SAGA_TRANSITIONS",
    "SCHEMA_VERSION",
    "STEP_TRANSITIONS",
    "CompensateOnFailure",
    "CompensationFailure",
    "DuplicateStepError",
    "InMemorySagaLog",
    "InvalidTransitionError",
    "RecordKind",
    "RetryPolicy",
    "SQLSagaLog",
    "SagaConflictError",
    "SagaDeadlineError",
    "SagaDefinitionError",
    "SagaError",
    "SagaLog",
    "SagaOrchestrator",
    "SagaRecord",
    "SagaResult",
    "SagaRun",
    "SagaStatus",
    "SagaStep",
    "StepContext",
    "StepFailedError",
    "StepRun",
    "StepStatus",
    "StepTimeoutError",
    "UnknownSagaError",
    "idempotency_key",
    "inspect_saga",
]

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class SagaError(RuntimeError):
    """Root of every error this module raises."""


class DuplicateStepError(SagaError, ValueError):
    """``add_step`` was given a name another step of the saga already has.

    Attributes:
        name: the repeated step name.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        ValueError.__init__(self, f"step name {name!r} is already used in this saga")


class InvalidTransitionError(SagaError):
    """A saga or step state change that the transition table does not allow.

    Attributes:
        source: the state before.
        target: the state asked for.
    """

    def __init__(self, source: enum.Enum, target: enum.Enum, what: str = "") -> None:
        self.source = source
        self.target = target
        RuntimeError.__init__(
            self, f"{what}illegal transition {source.name} -> {target.name}".strip()
        )


class SagaConflictError(SagaError):
    """The log already holds a record at that position: another process runs this saga.

    Attributes:
        saga_id: the saga.
        seq: the record's position in the saga's log.
    """

    def __init__(self, saga_id: str, seq: int) -> None:
        self.saga_id = saga_id
        self.seq = seq
        RuntimeError.__init__(
            self, f"saga {saga_id!r}: record {seq} already written (is another process running it?)"
        )


class SagaDefinitionError(SagaError, ValueError):
    """``resume()`` was given an orchestrator whose steps differ from those in the log."""


class StepFailedError(SagaError):
    """A step's failure read back from the log (the original exception object is gone).

    Attributes:
        step: the step name, or ``None`` for a saga-level cause (the deadline).
        detail: ``"ExceptionType: message"`` as recorded.
    """

    def __init__(self, step: str | None, detail: str) -> None:
        self.step = step
        self.detail = detail
        RuntimeError.__init__(self, f"step {step!r}: {detail}")


class StepTimeoutError(SagaError, TimeoutError):
    """A step ran past its timeout; its outcome is unknown (it may have taken effect).

    Attributes:
        step: the step name.
        timeout: the limit that passed, in seconds.
    """

    def __init__(self, step: str, timeout: float) -> None:
        self.step = step
        self.timeout = timeout
        TimeoutError.__init__(self, f"step {step!r} did not finish within {timeout:g} s")


class SagaDeadlineError(SagaError, TimeoutError):
    """The saga's deadline passed before a step before the pivot could start.

    Attributes:
        deadline_at: the deadline, a reading of the orchestrator's clock (seconds).
    """

    def __init__(self, deadline_at: float) -> None:
        self.deadline_at = deadline_at
        TimeoutError.__init__(self, f"saga deadline {deadline_at:.3f} passed")


class UnknownSagaError(SagaError, LookupError):
    """No saga with that id is in the log.

    Attributes:
        saga_id: the id asked for.
    """

    def __init__(self, saga_id: str) -> None:
        self.saga_id = saga_id
        LookupError.__init__(self, f"no saga {saga_id!r} in the log")


# --------------------------------------------------------------------------------------
# States and transition tables
# --------------------------------------------------------------------------------------


class SagaStatus(enum.Enum):
    """Where a saga run is."""

    PENDING = "pending"
    """Defined, not started (never written to the log)."""
    RUNNING = "running"
    """Forward: steps are running in order."""
    COMPENSATING = "compensating"
    """A step before the pivot failed: completed steps are being undone in reverse order."""
    COMPLETED = "completed"
    """Every step succeeded (terminal)."""
    COMPENSATED = "compensated"
    """Every step that needed undoing was compensated (terminal)."""
    STUCK = "stuck"
    """A compensation (or a step after the pivot) kept failing: an operator must look;
    ``resume()`` tries again from where it stopped."""


class StepStatus(enum.Enum):
    """Where one step of a saga run is."""

    PENDING = "pending"
    RUNNING = "running"
    """Started; in the log without an outcome this means "outcome unknown"."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Raised an exception: the step did not take effect (the step's contract)."""
    UNCERTAIN = "uncertain"
    """Timed out, raised ``TimeoutError`` or was interrupted: it may have taken effect."""
    COMPENSATING = "compensating"
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    """The last compensation attempt failed (retried, or the saga is ``STUCK``)."""


class CompensateOnFailure(enum.Enum):
    """Whether a step's own compensation runs when the step itself fails."""

    NEVER = "never"
    """Only completed steps are compensated (natsaga, Temporal's register-after-success)."""
    IF_UNCERTAIN = "if_uncertain"
    """Compensate the failed step when its outcome is unknown: timeout, interruption."""
    ALWAYS = "always"
    """Always compensate it (saga_py, Temporal's register-before-call); must be a no-op
    when the step never took effect."""


class RecordKind(enum.Enum):
    """The kinds of records in the saga log, in the order a run writes them."""

    SAGA_STARTED = "saga_started"
    STEP_STARTED = "step_started"
    STEP_SUCCEEDED = "step_succeeded"
    STEP_FAILED = "step_failed"
    SAGA_COMPENSATING = "saga_compensating"
    COMPENSATION_STARTED = "compensation_started"
    COMPENSATION_SUCCEEDED = "compensation_succeeded"
    COMPENSATION_FAILED = "compensation_failed"
    SAGA_COMPLETED = "saga_completed"
    SAGA_COMPENSATED = "saga_compensated"
    SAGA_STUCK = "saga_stuck"
    SAGA_RESUMED = "saga_resumed"


_SP, _SR, _SC, _SD, _SX, _SS = (
    SagaStatus.PENDING,
    SagaStatus.RUNNING,
    SagaStatus.COMPENSATING,
    SagaStatus.COMPLETED,
    SagaStatus.COMPENSATED,
    SagaStatus.STUCK,
)
SAGA_TRANSITIONS: Mapping[SagaStatus, frozenset[SagaStatus]] = MappingProxyType(
    {
        _SP: frozenset({_SR}),
        _SR: frozenset({_SD, _SC, _SS}),
        _SC: frozenset({_SX, _SS}),
        _SS: frozenset({_SR, _SC}),
        _SD: frozenset(),
        _SX: frozenset(),
    }
)
"""Every saga state change: ``SAGA_TRANSITIONS[source]`` is the set of allowed targets."""

_TP, _TR, _TS, _TF, _TU, _TC, _TX, _TCF = (
    StepStatus.PENDING,
    StepStatus.RUNNING,
    StepStatus.SUCCEEDED,
    StepStatus.FAILED,
    StepStatus.UNCERTAIN,
    StepStatus.COMPENSATING,
    StepStatus.COMPENSATED,
    StepStatus.COMPENSATION_FAILED,
)
STEP_TRANSITIONS: Mapping[StepStatus, frozenset[StepStatus]] = MappingProxyType(
    {
        _TP: frozenset({_TR}),
        _TR: frozenset({_TS, _TF, _TU}),
        _TF: frozenset({_TR, _TC}),
        _TU: frozenset({_TR, _TC}),
        _TS: frozenset({_TC}),
        _TC: frozenset({_TX, _TCF}),
        _TCF: frozenset({_TC}),
        _TX: frozenset(),
    }
)
"""Every step state change: ``STEP_TRANSITIONS[source]`` is the set of allowed targets."""

# The same tables keyed by id(): Enum.__hash__ runs Python code, id() does not.
_STEP_NEXT = {id(k): frozenset(map(id, v)) for k, v in STEP_TRANSITIONS.items()}
_SAGA_NEXT = {id(k): frozenset(map(id, v)) for k, v in SAGA_TRANSITIONS.items()}
_TERMINAL = frozenset({_SD, _SX})
_KINDS = {k.value: k for k in RecordKind}
_STATUSES = {s.value: s for s in SagaStatus}
_NAMESPACE = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"  # RFC 4122 NAMESPACE_URL


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


class SagaRecord(NamedTuple):
    """One append-only log record (an immutable tuple: cheap enough for the hot path).

    ``at`` is a reading of the orchestrator's clock (seconds since the epoch by default);
    ``attempt`` counts from 1 for step and compensation records, else 0; ``error`` is
    ``"ExceptionType: message"`` for failures; ``data`` is the step's result for
    ``STEP_SUCCEEDED``, ``{"uncertain": bool}`` for ``STEP_FAILED`` and the definition
    (``{"name", "steps", "deadline_at"}``) for ``SAGA_STARTED``.
    """

    saga_id: str
    seq: int
    kind: RecordKind
    step: str | None = None
    attempt: int = 0
    at: float = 0.0
    error: str | None = None
    data: Any = None


class CompensationFailure(NamedTuple):
    """One failed compensation attempt, as the result reports it."""

    step: str
    attempt: int
    error: BaseException


class _Value:  # noqa: PLW1641 - _Frozen hashes; SagaResult is mutable
    """Hand-written value classes (a dataclass costs ~1 ms of import time each):
    ``__repr__`` and ``__eq__`` over ``_fields``; frozen subclasses also hash."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()


class _Frozen(_Value):
    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")


class RetryPolicy(_Frozen):
    """How often and how patiently to retry: compensations, and steps after the pivot.

    An immutable value, compared and hashed by its fields.

    Attributes:
        attempts: attempts in total (1 = no retry).
        initial: the delay before the second attempt, in seconds.
        multiplier: each later delay is the previous one times this.
        maximum: no delay is longer than this, in seconds.
    """

    __slots__ = ("attempts", "initial", "maximum", "multiplier")
    _fields = ("attempts", "initial", "multiplier", "maximum")
    attempts: int
    initial: float
    multiplier: float
    maximum: float

    def __init__(
        self,
        attempts: int = 3,
        initial: float = 0.1,
        multiplier: float = 2.0,
        maximum: float = 30.0,
    ) -> None:
        if type(attempts) is not int or attempts < 1:
            raise ValueError(f"attempts must be an int >= 1, not {attempts!r}")
        for name, value in (("initial", initial), ("multiplier", multiplier), ("maximum", maximum)):
            if not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, not {value!r}")
        for name, value in (
            ("attempts", attempts),
            ("initial", initial),
            ("multiplier", multiplier),
            ("maximum", maximum),
        ):
            object.__setattr__(self, name, value)

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt (1-based)."""
        return float(min(self.maximum, self.initial * self.multiplier ** (failures - 1)))


class SagaStep(_Frozen):
    """One step's definition: its action, its compensation and how it behaves on failure.

    An immutable value, compared and hashed by its fields.

    Attributes:
        name: unique within the saga; it keys the log, the results and the idempotency key.
        action: the forward call; its return value is the step's result.
        compensate: the semantic undo, or ``None`` when there is nothing to undo.
        pass_context: call ``action(ctx)``/``compensate(ctx)`` with a :class:`StepContext`
            (``True``) or with no argument like 0.44 (``False``); ``None`` = the saga's default.
        compensate_on_failure: whether this step's own compensation runs when the step
            itself fails (see :class:`CompensateOnFailure`).
        idempotent: the action may be run again with the same idempotency key (used when
            a crash leaves its outcome unknown, and for retries after the pivot).
        timeout: seconds the action (and each compensation attempt) may take, or ``None``.
        pivot: after this step succeeds the saga only moves forward.
    """

    __slots__ = (
        "action",
        "compensate",
        "compensate_on_failure",
        "idempotent",
        "name",
        "pass_context",
        "pivot",
        "timeout",
    )
    _fields = (
        "name",
        "action",
        "compensate",
        "pass_context",
        "compensate_on_failure",
        "idempotent",
        "timeout",
        "pivot",
    )
    name: str
    action: Callable[..., Any]
    compensate: Callable[..., Any] | None
    pass_context: bool | None
    compensate_on_failure: CompensateOnFailure
    idempotent: bool
    timeout: float | None
    pivot: bool

    def __init__(  # noqa: PLR0917 - positional like 0.44's SagaStep(name, action, compensate)
        self,
        name: str,
        action: Callable[..., Any],
        compensate: Callable[..., Any] | None = None,
        pass_context: bool | None = None,  # noqa: FBT001
        compensate_on_failure: CompensateOnFailure = CompensateOnFailure.IF_UNCERTAIN,
        idempotent: bool = False,  # noqa: FBT001, FBT002
        timeout: float | None = None,
        pivot: bool = False,  # noqa: FBT001, FBT002
    ) -> None:
        values = (
            name,
            action,
            compensate,
            pass_context,
            compensate_on_failure,
            idempotent,
            timeout,
            pivot,
        )
        for field_name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, field_name, value)


class SagaResult(_Value):
    """The outcome of ``execute()``/``resume()`` (0.44's fields first; mutable like 0.44's).

    Attributes:
        succeeded: every step completed.
        failed_step: the step whose failure made the saga compensate or stop, else ``None``.
        error: that failure (the live exception, or :class:`StepFailedError` after a
            resume in another process), else ``None``.
        completed_steps: steps whose action succeeded, in completion order.
        compensated_steps: steps whose compensation succeeded, in the order they ran.
        step_results: step name -> the action's return value.
        saga_id: the run's id in the log.
        status: the saga's state when the call returned.
        compensation_failures: every failed compensation attempt, retried or not.
        uncertain_steps: steps whose outcome is unknown and that were not compensated.
        stuck_reason: why the saga is ``STUCK``, else ``None``.
    """

    __slots__ = (
        "compensated_steps",
        "compensation_failures",
        "completed_steps",
        "error",
        "failed_step",
        "saga_id",
        "status",
        "step_results",
        "stuck_reason",
        "succeeded",
        "uncertain_steps",
    )
    _fields = (
        "succeeded",
        "failed_step",
        "error",
        "completed_steps",
        "compensated_steps",
        "step_results",
        "saga_id",
        "status",
        "compensation_failures",
        "uncertain_steps",
        "stuck_reason",
    )

    __hash__ = None  # type: ignore[assignment]  # mutable, as in 0.44: not hashable

    def __init__(  # noqa: PLR0917 - positional like 0.44's SagaResult
        self,
        succeeded: bool,  # noqa: FBT001
        failed_step: str | None = None,
        error: BaseException | None = None,
        completed_steps: list[str] | None = None,
        compensated_steps: list[str] | None = None,
        step_results: dict[str, Any] | None = None,
        saga_id: str = "",
        status: SagaStatus = SagaStatus.PENDING,
        compensation_failures: tuple[CompensationFailure, ...] = (),
        uncertain_steps: tuple[str, ...] = (),
        stuck_reason: str | None = None,
    ) -> None:
        self.succeeded = succeeded
        self.failed_step = failed_step
        self.error = error
        self.completed_steps: list[str] = [] if completed_steps is None else completed_steps
        self.compensated_steps: list[str] = [] if compensated_steps is None else compensated_steps
        self.step_results: dict[str, Any] = {} if step_results is None else step_results
        self.saga_id = saga_id
        self.status = status
        self.compensation_failures = compensation_failures
        self.uncertain_steps = uncertain_steps
        self.stuck_reason = stuck_reason


class StepRun(NamedTuple):
    """One step of a saga run as an operator sees it (from the log; an immutable tuple).

    Times are readings of the orchestrator's clock (seconds); ``None`` when not reached.
    """

    name: str
    status: StepStatus
    attempts: int
    started_at: float | None
    finished_at: float | None
    error: str | None
    compensation_attempts: int
    compensation_error: str | None
    result: Any


class SagaRun(NamedTuple):
    """A saga run as an operator sees it: status, timings, errors and the full history.

    An immutable tuple; ``steps`` in definition order, ``history`` every record in order.
    """

    saga_id: str
    name: str
    status: SagaStatus
    started_at: float | None
    finished_at: float | None
    failed_step: str | None
    error: str | None
    stuck_reason: str | None
    steps: tuple[StepRun, ...]
    history: tuple[SagaRecord, ...]


class StepContext:
    """What a context-taking step receives.

    Attributes:
        saga_id: the saga run's id.
        step: this step's name.
        attempt: 1 for the first attempt of this action or compensation.
        compensating: ``True`` inside a compensation.
        results: read-only view of the results of the steps completed so far.
        idempotency_key: deterministic for (saga id, step, action or compensation): the
            same in every attempt and every process; pass it to the external system.
    """

    __slots__ = ("_key", "attempt", "compensating", "results", "saga_id", "step")

    def __init__(
        self,
        saga_id: str,
        step: str,
        results: Mapping[str, Any],
        *,
        attempt: int = 1,
        compensating: bool = False,
    ) -> None:
        self.saga_id = saga_id
        self.step = step
        self.results = results
        self.attempt = attempt
        self.compensating = compensating
        self._key: str | None = None

    @property
    def idempotency_key(self) -> str:
        if self._key is None:
            self._key = idempotency_key(self.saga_id, self.step, compensate=self.compensating)
        return self._key

    def __repr__(self) -> str:
        return (
            f"StepContext(saga_id={self.saga_id!r}, step={self.step!r}, "
            f"attempt={self.attempt}, compensating={self.compensating})"
        )


def idempotency_key(saga_id: str, step: str, *, compensate: bool = False) -> str:
    """The step's idempotency key: a UUID5 of ``saga_id``, ``step`` (and "compensate").

    >>> idempotency_key("order-1", "charge") == idempotency_key("order-1", "charge")
    True
    >>> idempotency_key("order-1", "charge") != idempotency_key(
    ...     "order-1", "charge", compensate=True
    ... )
    True
    """
    uuid = _uuid()
    name = f"interlock.saga/{saga_id}/{step}" + ("/compensate" if compensate else "")
    return str(uuid.uuid5(uuid.UUID(_NAMESPACE), name))


def _uuid() -> ModuleType:
    import uuid  # noqa: PLC0415 - deferred: ~15 ms, only keys and generated ids need it

    return uuid


# --------------------------------------------------------------------------------------
# The log: Protocol, in memory, SQL
# --------------------------------------------------------------------------------------


class SagaLog(Protocol):
    """Append-only storage of saga records. ``append`` is durable when it returns."""

    def append(self, record: SagaRecord) -> None:
        """Store the record; raise :class:`SagaConflictError` if its (saga_id, seq) exists."""

    def records(self, saga_id: str) -> list[SagaRecord]:
        """The saga's records in ``seq`` order (empty when unknown)."""

    def pending(self, name: str | None = None) -> list[str]:
        """Ids of sagas RUNNING or COMPENSATING (to resume), oldest first."""

    def stuck(self, name: str | None = None) -> list[str]:
        """Ids of sagas STUCK (for an operator), oldest first."""


_STATUS_OF_KIND = {
    RecordKind.SAGA_STARTED: _SR,
    RecordKind.SAGA_COMPENSATING: _SC,
    RecordKind.SAGA_COMPLETED: _SD,
    RecordKind.SAGA_COMPENSATED: _SX,
    RecordKind.SAGA_STUCK: _SS,
}

_SAGA_KIND_IDS = frozenset(map(id, _STATUS_OF_KIND))


def _seq_of(record: SagaRecord) -> int:
    return record[1]


_STATUS_BY_KIND_ID = {id(k): v for k, v in _STATUS_OF_KIND.items()}
_KIND_VALUES = {id(k): k.value for k in RecordKind}


class InMemorySagaLog:
    """The log in a dict: the default, the test double, and fast (thread-safe).

    Args:
        keep_finished: how many COMPLETED/COMPENSATED sagas to keep (oldest are
            forgotten first); ``None`` keeps all.
    """

    def __init__(self, *, keep_finished: int | None = None) -> None:
        if keep_finished is not None and (type(keep_finished) is not int or keep_finished < 0):
            raise ValueError(f"keep_finished must be None or an int >= 0, not {keep_finished!r}")
        self._keep = keep_finished
        self._lock = threading.Lock()
        self._records: dict[str, dict[int, SagaRecord]] = {}
        self._status: dict[str, tuple[str, SagaStatus]] = {}
        self._finished: list[str] = []

    def append(self, record: SagaRecord) -> None:
        # Lock-free on the hot path: dict.setdefault is atomic in CPython, so of two
        # writers of the same (saga_id, seq) exactly one wins and the other gets the error.
        saga_id, seq = record[0], record[1]
        records = self._records.get(saga_id)
        if records is None:
            records = self._records.setdefault(saga_id, {})
        if seq != len(records) and seq not in records:
            raise SagaConflictError(saga_id, seq)  # a gap: a record was skipped
        if records.setdefault(seq, record) is not record:
            raise SagaConflictError(saga_id, seq)
        kind = record[2]
        if id(kind) in _SAGA_KIND_IDS:
            with self._lock:
                self._saga_status(record, kind)

    def _saga_status(self, record: SagaRecord, kind: RecordKind) -> None:
        status = _STATUS_BY_KIND_ID[id(kind)]
        saga_id = record.saga_id
        if kind is RecordKind.SAGA_STARTED:
            self._status[saga_id] = (record.data["name"], status)
        else:
            self._status[saga_id] = (self._status[saga_id][0], status)
        if (status is _SD or status is _SX) and self._keep is not None:
            self._finished.append(saga_id)
            while len(self._finished) > self._keep:
                gone = self._finished.pop(0)
                del self._records[gone], self._status[gone]

    def records(self, saga_id: str) -> list[SagaRecord]:
        records = self._records.get(saga_id)
        return [] if records is None else sorted(records.values(), key=_seq_of)

    def _with(self, statuses: frozenset[SagaStatus], name: str | None) -> list[str]:
        with self._lock:
            return [
                saga_id
                for saga_id, (saga_name, status) in self._status.items()
                if status in statuses and (name is None or name == saga_name)
            ]

    def pending(self, name: str | None = None) -> list[str]:
        return self._with(frozenset({_SR, _SC}), name)

    def stuck(self, name: str | None = None) -> list[str]:
        return self._with(frozenset({_SS}), name)


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
        for mark, part in zip(marks, parts[1:], strict=True):
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


SCHEMA_VERSION = 1
_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS interlock_saga_schema (version INTEGER NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS interlock_saga ("
        " saga_id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)"
    ),
    "CREATE INDEX IF NOT EXISTS interlock_saga_status ON interlock_saga (status, created_at)",
    (
        "CREATE TABLE IF NOT EXISTS interlock_saga_record ("
        " saga_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, step TEXT,"
        " attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL, error TEXT, data TEXT,"
        " PRIMARY KEY (saga_id, seq))"
    ),
)


def _json() -> ModuleType:
    import json  # noqa: PLC0415 - deferred: only the SQL log needs it

    return json


def _is_integrity_error(exc: BaseException) -> bool:
    return any(cls.__name__ == "IntegrityError" for cls in type(exc).__mro__)


class SQLSagaLog:
    """The log in SQL over a DB-API 2.0 connection you pass in (sqlite3 or PostgreSQL).

    Each ``append`` is one INSERT (plus an INSERT/UPDATE of the saga's status row for
    saga-level records) and one COMMIT. Results and data are stored as JSON, so step
    results must be JSON-serialisable with this log. The connection must not be in
    autocommit mode and must not be shared between threads: give each thread its own log.
    Run :meth:`migrate` once (idempotent) before use.
    """

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._dialect = _dialect_of(conn)
        sql = self._dialect.sql
        self._insert = sql(
            "INSERT INTO interlock_saga_record (saga_id, seq, kind, step, attempt, at, error, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._new_saga = sql(
            "INSERT INTO interlock_saga (saga_id, name, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)"
        )
        self._set_status = sql(
            "UPDATE interlock_saga SET status = ?, updated_at = ? WHERE saga_id = ?"
        )
        self._select = sql(
            "SELECT saga_id, seq, kind, step, attempt, at, error, data"
            " FROM interlock_saga_record WHERE saga_id = ? ORDER BY seq"
        )
        self._dumps = _json().dumps
        self._loads = _json().loads
        self._cur = conn.cursor()

    @classmethod
    def migrate(cls, conn: Any) -> int:
        """Create or upgrade the tables (idempotent); return the schema version."""
        dialect = _dialect_of(conn)
        cur = conn.cursor()
        try:
            for statement in _MIGRATIONS:
                cur.execute(statement)
            cur.execute("SELECT version FROM interlock_saga_schema")
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    dialect.sql("INSERT INTO interlock_saga_schema (version) VALUES (?)"),
                    (SCHEMA_VERSION,),
                )
                version = SCHEMA_VERSION
            else:
                version = int(row[0])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.close()
        return version

    def append(self, record: SagaRecord) -> None:
        conn = self._conn
        saga_id, seq, kind, step, attempt, at, error, data = record
        text = None if data is None else self._dumps(data)
        cur = self._cur  # one cursor for the log's life: the connection is not shared
        try:
            cur.execute(
                self._insert, (saga_id, seq, _KIND_VALUES[id(kind)], step, attempt, at, error, text)
            )
            if id(kind) in _SAGA_KIND_IDS:
                status = _STATUS_BY_KIND_ID[id(kind)].value
                if kind is RecordKind.SAGA_STARTED:
                    cur.execute(self._new_saga, (saga_id, data["name"], status, at, at))
                else:
                    cur.execute(self._set_status, (status, at, saga_id))
            conn.commit()
        except BaseException as exc:
            conn.rollback()
            if _is_integrity_error(exc):
                raise SagaConflictError(saga_id, seq) from exc
            raise

    def records(self, saga_id: str) -> list[SagaRecord]:
        cur = self._conn.cursor()
        try:
            cur.execute(self._select, (saga_id,))
            rows = cur.fetchall()
            self._conn.commit()
        finally:
            cur.close()
        loads = self._loads
        return [
            SagaRecord(
                r[0],
                r[1],
                _KINDS[r[2]],
                r[3],
                r[4],
                r[5],
                r[6],
                None if r[7] is None else loads(r[7]),
            )
            for r in rows
        ]

    def _with(self, statuses: tuple[str, ...], name: str | None) -> list[str]:
        marks = ", ".join("?" for _ in statuses)
        query = f"SELECT saga_id FROM interlock_saga WHERE status IN ({marks})"  # noqa: S608
        args: tuple[Any, ...] = statuses
        if name is not None:
            query += " AND name = ?"
            args += (name,)
        cur = self._conn.cursor()
        try:
            cur.execute(self._dialect.sql(query + " ORDER BY created_at, saga_id"), args)
            rows = cur.fetchall()
            self._conn.commit()
        finally:
            cur.close()
        return [r[0] for r in rows]

    def pending(self, name: str | None = None) -> list[str]:
        return self._with((_SR.value, _SC.value), name)

    def stuck(self, name: str | None = None) -> list[str]:
        return self._with((_SS.value,), name)


# --------------------------------------------------------------------------------------
# Replaying records into a run's state
# --------------------------------------------------------------------------------------


class _Step:
    """One step's state in a run. Class attributes are the defaults: creating a run of
    many steps then costs one attribute write per step."""

    status = _TP
    attempts = 0
    comp_attempts = 0
    result: Any = None
    error: str | None = None
    exc: BaseException | None = None
    comp_error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def __init__(self, name: str) -> None:
        self.name = name


class _Run:
    """A saga run's state, rebuilt from its records. Scalars default on the class."""

    name = ""
    status = _SP
    seq = 0
    compensating = False
    failed_step: str | None = None
    error: str | None = None
    exc: BaseException | None = None
    stuck_reason: str | None = None
    deadline_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def __init__(self, saga_id: str) -> None:
        self.saga_id = saga_id
        self.steps: dict[str, _Step] = {}
        self.results: dict[str, Any] = {}
        self.view = MappingProxyType(self.results)
        self.completed: list[str] = []
        self.compensated: list[str] = []
        self.failures: list[CompensationFailure] = []

    def move(self, target: SagaStatus) -> None:
        if id(target) not in _SAGA_NEXT[id(self.status)]:
            raise InvalidTransitionError(self.status, target, f"saga {self.saga_id!r}: ")
        self.status = target


def _move(step: _Step, target: StepStatus) -> None:
    if id(target) not in _STEP_NEXT[id(step.status)]:
        raise InvalidTransitionError(step.status, target, f"step {step.name!r}: ")
    step.status = target


def _step_of(run: _Run, name: str | None) -> _Step:
    step = run.steps.get(name or "")
    if step is None:
        raise SagaDefinitionError(f"saga {run.saga_id!r}: the log names unknown step {name!r}")
    return step


def _apply(run: _Run, rec: SagaRecord, exc: BaseException | None = None) -> None:  # noqa: PLR0915
    """Advance the run's state by one record (validating the transition)."""
    kind = rec.kind
    if kind is RecordKind.STEP_STARTED:
        step = _step_of(run, rec.step)
        _move(step, _TR)
        step.attempts = rec.attempt
        step.started_at = rec.at
        step.finished_at = None
    elif kind is RecordKind.STEP_SUCCEEDED:
        step = _step_of(run, rec.step)
        _move(step, _TS)
        step.result = rec.data
        step.finished_at = rec.at
        step.error = None
        run.results[step.name] = rec.data
        run.completed.append(step.name)
    elif kind is RecordKind.STEP_FAILED:
        step = _step_of(run, rec.step)
        uncertain = bool(rec.data and rec.data.get("uncertain"))
        _move(step, _TU if uncertain else _TF)
        step.error = rec.error
        step.exc = exc
        step.finished_at = rec.at
    elif kind is RecordKind.COMPENSATION_STARTED:
        step = _step_of(run, rec.step)
        _move(step, _TC)
        step.comp_attempts = rec.attempt
    elif kind is RecordKind.COMPENSATION_SUCCEEDED:
        step = _step_of(run, rec.step)
        _move(step, _TX)
        step.comp_error = None
        run.compensated.append(step.name)
    elif kind is RecordKind.COMPENSATION_FAILED:
        step = _step_of(run, rec.step)
        _move(step, _TCF)
        step.comp_error = rec.error
        cause = exc if exc is not None else StepFailedError(step.name, rec.error or "")
        run.failures.append(CompensationFailure(step.name, rec.attempt, cause))
    elif kind is RecordKind.SAGA_STARTED:
        run.move(_SR)
        data = rec.data
        run.name = data["name"]
        run.steps = {name: _Step(name) for name in data["steps"]}
        run.deadline_at = data.get("deadline_at")
        run.started_at = rec.at
    elif kind is RecordKind.SAGA_COMPENSATING:
        run.move(_SC)
        run.compensating = True
        run.failed_step = rec.step
        run.error = rec.error
        run.exc = exc
    elif kind is RecordKind.SAGA_STUCK:
        run.move(_SS)
        run.stuck_reason = rec.error
        if not run.compensating:
            run.failed_step = rec.step
            run.error = (rec.data or {}).get("cause")
            run.exc = exc
    elif kind is RecordKind.SAGA_RESUMED:
        run.move(_SC if run.compensating else _SR)
        run.stuck_reason = None
    else:  # SAGA_COMPLETED, SAGA_COMPENSATED
        run.move(_STATUS_BY_KIND_ID[id(kind)])
        run.finished_at = rec.at


def _replay(saga_id: str, records: Iterable[SagaRecord]) -> _Run:
    run = _Run(saga_id)
    for rec in records:
        if rec.seq != run.seq:
            raise SagaConflictError(saga_id, rec.seq)
        _apply(run, rec)
        run.seq += 1
    if run.status is _SP:
        raise UnknownSagaError(saga_id)
    return run


def inspect_saga(log: SagaLog, saga_id: str) -> SagaRun:
    """Read one saga run from the log for an operator: status, timings, errors, history.

    Raises:
        UnknownSagaError: the log has no such saga.
    """
    history = tuple(log.records(saga_id))
    run = _replay(saga_id, history)
    steps = tuple(
        StepRun(
            s.name,
            s.status,
            s.attempts,
            s.started_at,
            s.finished_at,
            s.error,
            s.comp_attempts,
            s.comp_error,
            s.result,
        )
        for s in run.steps.values()
    )
    return SagaRun(
        saga_id,
        run.name,
        run.status,
        run.started_at,
        run.finished_at,
        run.failed_step,
        run.error,
        run.stuck_reason,
        steps,
        history,
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------
# The orchestrator
# --------------------------------------------------------------------------------------

_CALL = 0
_SLEEP = 1
_ONE = 2
_STEP_STARTED = RecordKind.STEP_STARTED
_STEP_SUCCEEDED = RecordKind.STEP_SUCCEEDED
_new_record = tuple.__new__
_PLAIN = frozenset({type(None), int, str, float, bool, dict, list, tuple, bytes})
_INTERRUPTED = "interrupted: started, outcome unknown"

# A call's outcome: (ok, value or exception, outcome uncertain).
if TYPE_CHECKING:
    _Outcome = tuple[bool, Any, bool]
    _Call = tuple[str, Callable[..., Any], tuple[Any, ...], float | None]
    _Op = tuple[int, Any]
    _Gen = Generator[_Op, Any, None]


class SagaOrchestrator:
    """Runs a saga's steps in order and compensates in reverse when one fails.

    Args:
        name: the saga's name (a kind, like ``"order"``; each run has its own id).
        log: where records go; default a private :class:`InMemorySagaLog` keeping the
            last 100 finished runs.
        pass_context: the default for steps: call them with a :class:`StepContext`
            (``True``) or with no argument like 0.44 (``False``).
        compensation_retry: attempts and backoff for each compensation.
        forward_retry: attempts and backoff for the pivot (when its outcome is unknown)
            and the steps after it.
        deadline: seconds from the saga's start after which no step before the pivot
            starts (the saga compensates instead); ``None`` = no deadline.
        clock: seconds since the epoch (record timestamps, deadlines, survives restarts).
        sleep: waits between retries; in ``execute_async`` an awaitable result is awaited
            (default ``time.sleep``, and ``asyncio.sleep`` in ``execute_async``).
    """

    def __init__(
        self,
        name: str,
        *,
        log: SagaLog | None = None,
        pass_context: bool = False,
        compensation_retry: RetryPolicy | None = None,
        forward_retry: RetryPolicy | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, not {name!r}")
        for arg, value in (
            ("compensation_retry", compensation_retry),
            ("forward_retry", forward_retry),
        ):
            if value is not None and not isinstance(value, RetryPolicy):
                raise TypeError(f"{arg} must be a RetryPolicy, not {value!r}")
        if deadline is not None and (
            not isinstance(deadline, (int, float)) or not deadline > 0 or deadline == float("inf")
        ):
            raise ValueError(f"deadline must be None or seconds > 0, not {deadline!r}")
        if not callable(clock):
            raise TypeError(f"clock must be callable, not {clock!r}")
        if sleep is not None and not callable(sleep):
            raise TypeError(f"sleep must be callable, not {sleep!r}")
        self.name = name
        self.log: SagaLog = InMemorySagaLog(keep_finished=100) if log is None else log
        self.pass_context = bool(pass_context)
        self.compensation_retry = compensation_retry or RetryPolicy()
        self.forward_retry = forward_retry or RetryPolicy()
        self.deadline = deadline
        self._clock = clock
        self._sleep = sleep
        self._steps: list[SagaStep] = []
        self._units: list[tuple[SagaStep, ...]] = []
        self._pivot: int | None = None  # index in _units

    # -- definition ---------------------------------------------------------------------

    @property
    def steps(self) -> tuple[SagaStep, ...]:
        """The step definitions in order."""
        return tuple(self._steps)

    def add_step(
        self,
        name: str,
        action: Callable[..., Any],
        compensate: Callable[..., Any] | None = None,
        *,
        pass_context: bool | None = None,
        compensate_on_failure: CompensateOnFailure | str = CompensateOnFailure.IF_UNCERTAIN,
        idempotent: bool = False,
        timeout: float | None = None,
        pivot: bool = False,
    ) -> SagaOrchestrator:
        """Append a step (see :class:`SagaStep` for the arguments); return ``self``.

        Raises:
            DuplicateStepError: the name is already used.
            ValueError, TypeError: a bad argument (named in the message).
        """
        step = self._check(
            SagaStep(
                name,
                action,
                compensate,
                pass_context,
                compensate_on_failure,  # type: ignore[arg-type]  # checked in _check
                idempotent,
                timeout,
                pivot,
            )
        )
        self._add((step,))
        return self

    def add_parallel(self, *steps: SagaStep) -> SagaOrchestrator:
        """Append steps that run at the same time (threads in ``execute``, tasks in
        ``execute_async``). If one fails, the others still finish, and every member that
        completed is compensated with the earlier steps. A pivot cannot be in a group.
        """
        if len(steps) < 2:
            raise ValueError(f"add_parallel needs at least two steps, not {len(steps)}")
        checked = []
        for step in steps:
            if not isinstance(step, SagaStep):
                raise TypeError(f"add_parallel takes SagaStep values, not {step!r}")
            if step.pivot:
                raise ValueError(f"step {step.name!r}: a pivot cannot run in a parallel group")
            checked.append(self._check(step))
        names = [s.name for s in checked]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise DuplicateStepError(name)
        self._add(tuple(checked))
        return self

    def _add(self, unit: tuple[SagaStep, ...]) -> None:
        if unit[0].pivot:
            self._pivot = len(self._units)
        self._units.append(unit)
        self._steps.extend(unit)

    def _check(self, step: SagaStep) -> SagaStep:
        name, action, compensate = step.name, step.action, step.compensate
        compensate_on_failure, timeout, pivot = step.compensate_on_failure, step.timeout, step.pivot
        pass_context = step.pass_context
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, not {name!r}")
        if any(s.name == name for s in self._steps):
            raise DuplicateStepError(name)
        if not callable(action):
            raise TypeError(f"action of step {name!r} must be callable, not {action!r}")
        if compensate is not None and not callable(compensate):
            raise TypeError(
                f"compensate of step {name!r} must be callable or None, not {compensate!r}"
            )
        try:
            policy = CompensateOnFailure(compensate_on_failure)
        except ValueError:
            raise ValueError(
                f"compensate_on_failure must be one of never, if_uncertain, always, "
                f"not {compensate_on_failure!r}"
            ) from None
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or not timeout > 0 or timeout == float("inf")
        ):
            raise ValueError(
                f"timeout of step {name!r} must be None or seconds > 0, not {timeout!r}"
            )
        if pivot and self._pivot is not None:
            raise ValueError(f"step {name!r}: the saga already has a pivot step")
        if (pivot or self._pivot is not None) and compensate is not None:
            raise ValueError(
                f"step {name!r}: the pivot and the steps after it are not compensated; "
                "pass compensate=None"
            )
        return SagaStep(
            name,
            action,
            compensate,
            self.pass_context if pass_context is None else bool(pass_context),
            policy,
            bool(step.idempotent),
            None if timeout is None else float(timeout),
            bool(pivot),
        )

    # -- running ------------------------------------------------------------------------

    def execute(self, *, saga_id: str | None = None) -> SagaResult:
        """Run a new saga to its end; steps must be synchronous (else use ``execute_async``).

        ``KeyboardInterrupt``/``SystemExit`` during a step propagate; the step stays
        "started" in the log and :meth:`resume` finishes or compensates the saga.

        Raises:
            SagaConflictError: ``saga_id`` is already in the log.
        """
        run = self._start(saga_id)
        return self._drive_sync(run)

    async def execute_async(self, *, saga_id: str | None = None) -> SagaResult:
        """Run a new saga; awaitable steps are awaited, groups run with ``asyncio.gather``.

        Cancellation during a step propagates; the saga is resumable from its log.
        """
        run = self._start(saga_id)
        return await self._drive_async(run)

    def resume(self, saga_id: str) -> SagaResult:
        """Finish a saga from its log: forward, or compensate, never repeating finished work.

        An action the log shows started but not finished is re-run when its step is
        ``idempotent``; otherwise its outcome is "uncertain": before the pivot the saga
        compensates (this step too unless ``compensate_on_failure`` is NEVER), at or after
        the pivot the saga is ``STUCK``. An unfinished compensation is run again
        (compensations must be idempotent: they get their own idempotency key). A
        ``STUCK`` saga is retried from where it stopped. A finished saga is only reported.

        Raises:
            UnknownSagaError: no such saga in the log.
            SagaDefinitionError: the log's steps differ from this orchestrator's.
        """
        return self._drive_sync(self._load(saga_id))

    async def resume_async(self, saga_id: str) -> SagaResult:
        """``resume`` for sagas with async steps."""
        return await self._drive_async(self._load(saga_id))

    def pending(self) -> list[str]:
        """Ids of this saga's runs that need :meth:`resume` (RUNNING or COMPENSATING)."""
        return self.log.pending(self.name)

    def stuck(self) -> list[str]:
        """Ids of this saga's runs that are STUCK and wait for an operator."""
        return self.log.stuck(self.name)

    def inspect(self, saga_id: str) -> SagaRun:
        """The run as an operator sees it (see :func:`inspect_saga`)."""
        return inspect_saga(self.log, saga_id)

    def settle(
        self, saga_id: str, step: str, *, result: Any = None, compensated: bool = False
    ) -> None:
        """Record an operator's finding for a step whose outcome the saga cannot know.

        With ``compensated=False``: the step's action did take effect with ``result``
        (for an uncertain or failed step, e.g. after the pivot). With ``compensated=True``:
        the step's compensation is done (for a compensation that kept failing and was
        fixed by hand). Then call :meth:`resume`.
        """
        run = self._load(saga_id)
        if run.status in _TERMINAL:
            raise InvalidTransitionError(run.status, run.status, f"saga {saga_id!r} is finished: ")
        target = run.steps.get(step)
        if target is None:
            raise ValueError(f"step must be a step of saga {saga_id!r}, not {step!r}")
        if compensated:
            if target.status not in (_TC, _TCF, _TS, _TU, _TF):
                raise InvalidTransitionError(target.status, _TX, f"step {step!r}: ")
            if target.status is not _TC:
                self._emit(run, RecordKind.COMPENSATION_STARTED, step, target.comp_attempts + 1)
            self._emit(run, RecordKind.COMPENSATION_SUCCEEDED, step, target.comp_attempts)
            return
        if target.status not in (_TR, _TF, _TU):
            raise InvalidTransitionError(target.status, _TS, f"step {step!r}: ")
        if target.status is not _TR:
            self._emit(run, RecordKind.STEP_STARTED, step, target.attempts + 1)
        self._emit(run, RecordKind.STEP_SUCCEEDED, step, target.attempts, data=result)

    def _start(self, saga_id: str | None) -> _Run:
        if saga_id is None:
            saga_id = os.urandom(16).hex()  # 128 random bits, like a UUID4
        elif not isinstance(saga_id, str) or not saga_id:
            raise ValueError(f"saga_id must be a non-empty str, not {saga_id!r}")
        if not self._steps:
            raise ValueError(f"saga {self.name!r} has no steps")
        run = _Run(saga_id)
        deadline_at = None if self.deadline is None else self._clock() + self.deadline
        meta = {
            "name": self.name,
            "steps": [s.name for s in self._steps],
            "deadline_at": deadline_at,
        }
        self._emit(run, RecordKind.SAGA_STARTED, data=meta)
        return run

    def _load(self, saga_id: str) -> _Run:
        run = _replay(saga_id, self.log.records(saga_id))
        names = [s.name for s in self._steps]
        if run.name != self.name or list(run.steps) != names:
            raise SagaDefinitionError(
                f"saga {saga_id!r} was started as {run.name!r} with steps {list(run.steps)}, "
                f"not {self.name!r} with {names}"
            )
        return run

    def _emit(  # noqa: PLR0917 - internal, called positionally on the hot path
        self,
        run: _Run,
        kind: RecordKind,
        step: str | None = None,
        attempt: int = 0,
        error: str | None = None,
        data: Any = None,
        exc: BaseException | None = None,
    ) -> None:
        rec = SagaRecord(run.saga_id, run.seq, kind, step, attempt, self._clock(), error, data)
        _apply(run, rec, exc)  # validates the transition before anything is written
        self.log.append(rec)
        run.seq += 1

    def _result(self, run: _Run) -> SagaResult:
        error = run.exc
        if error is None and run.error is not None:
            error = StepFailedError(run.failed_step, run.error)
        uncertain: tuple[str, ...] = ()
        if run.status is not _SD:
            uncertain = tuple(
                s.name for s in run.steps.values() if s.status is _TU or s.status is _TR
            )
        return SagaResult(
            run.status is _SD,
            run.failed_step,
            error,
            run.completed,  # the run ends here: its lists become the result's
            run.compensated,
            run.results,
            run.saga_id,
            run.status,
            tuple(run.failures),
            uncertain,
            run.stuck_reason,
        )

    # -- the decisions, as a generator of calls and sleeps (one copy for sync and async)

    def _plan(self, run: _Run, *, inline: bool) -> _Gen:
        if run.status is _SS:
            self._emit(run, RecordKind.SAGA_RESUMED)
        if run.status is _SR:
            yield from self._forward(run, inline)
        if run.status is _SC:
            yield from self._backward(run)

    def _forward(self, run: _Run, inline: bool) -> _Gen:  # noqa: FBT001, PLR0915
        pivot = self._pivot
        retry = self.forward_retry
        steps = run.steps
        saga_id, clock, append = run.saga_id, self._clock, self.log.append
        results, completed = run.results, run.completed
        no_deadline = run.deadline_at is None
        for index, unit in enumerate(self._units):
            tries = 0
            d = unit[0]
            name = d.name
            s = steps[name]
            if no_deadline and s.status is _TP and len(unit) == 1:
                # The common case, kept short: a pending step's first attempt. The state
                # changes PENDING -> RUNNING -> SUCCEEDED are in STEP_TRANSITIONS (a test
                # checks); the records are the same as _emit writes.
                rec = _new_record(
                    SagaRecord, (saga_id, run.seq, _STEP_STARTED, name, 1, clock(), None, None)
                )
                s.status = _TR
                s.attempts = 1
                s.started_at = rec[5]
                append(rec)
                run.seq += 1
                args = (StepContext(saga_id, name, run.view),) if d.pass_context else ()
                if inline and d.timeout is None:
                    try:
                        value = d.action(*args)
                        ok, uncertain = True, False
                        if type(value) not in _PLAIN and isawaitable(value):
                            ok, value = False, _refuse_awaitable(name, value)
                    except Exception as err:  # noqa: BLE001 - the step's failure is data
                        ok, value, uncertain = False, err, isinstance(err, TimeoutError)
                else:
                    ok, value, uncertain = yield (_ONE, (name, d.action, args, d.timeout))
                if ok:
                    rec = _new_record(
                        SagaRecord,
                        (saga_id, run.seq, _STEP_SUCCEEDED, name, 1, clock(), None, value),
                    )
                    s.status = _TS
                    s.result = value
                    s.finished_at = rec[5]
                    results[name] = value
                    completed.append(name)
                    append(rec)
                    run.seq += 1
                    continue
                self._emit(
                    run, RecordKind.STEP_FAILED, name, 1, _describe(value),
                    {"uncertain": uncertain}, value,
                )  # fmt: skip
                tries = 1
            after = pivot is not None and index > pivot
            while True:
                runnable: list[SagaStep] = []
                for d in unit:
                    s = steps[d.name]
                    status = s.status
                    if status is _TS:
                        continue
                    if status is _TR:  # started in a run that never finished it
                        self._emit(
                            run, RecordKind.STEP_FAILED, d.name, s.attempts, _INTERRUPTED,
                            {"uncertain": True},
                        )  # fmt: skip
                        status = _TU
                    if status is _TF and not after:
                        self._emit(run, RecordKind.SAGA_COMPENSATING, d.name, 0, s.error, exc=s.exc)
                        return
                    if status is _TU:
                        if not d.idempotent and (after or d.pivot):
                            reason = (
                                f"step {d.name!r}: outcome unknown and the step is not idempotent"
                            )
                            self._stuck(run, d.name, reason, s)
                            return
                        if not d.idempotent or (tries and not d.pivot and not after):
                            self._emit(
                                run, RecordKind.SAGA_COMPENSATING, d.name, 0, s.error, exc=s.exc
                            )
                            return
                    if status is not _TP and tries >= retry.attempts:
                        self._stuck(run, d.name, f"step {d.name!r} failed {tries} times", s)
                        return
                    runnable.append(d)
                if not runnable:
                    break
                if tries:
                    yield (_SLEEP, retry.delay(tries))
                now = self._clock()
                remaining = None
                if run.deadline_at is not None and not after:
                    remaining = run.deadline_at - now
                    if remaining <= 0 and not (unit[0].pivot and steps[unit[0].name].status is _TU):
                        exc = SagaDeadlineError(run.deadline_at)
                        self._emit(
                            run, RecordKind.SAGA_COMPENSATING, None, 0, _describe(exc), exc=exc
                        )
                        return
                tries += 1
                calls = []
                for d in runnable:
                    s = steps[d.name]
                    self._emit(run, RecordKind.STEP_STARTED, d.name, s.attempts + 1)
                    timeout = d.timeout
                    if remaining is not None and remaining > 0:
                        timeout = remaining if timeout is None else min(timeout, remaining)
                    args = (
                        (StepContext(run.saga_id, d.name, run.view, attempt=s.attempts),)
                        if d.pass_context
                        else ()
                    )
                    calls.append((d.name, d.action, args, timeout))
                outcomes = yield (_CALL, calls)
                for d, (ok, value, uncertain) in zip(runnable, outcomes, strict=True):
                    s = steps[d.name]
                    if ok:
                        self._emit(run, RecordKind.STEP_SUCCEEDED, d.name, s.attempts, data=value)
                    else:
                        self._emit(
                            run, RecordKind.STEP_FAILED, d.name, s.attempts, _describe(value),
                            {"uncertain": uncertain}, value,
                        )  # fmt: skip
        self._emit(run, RecordKind.SAGA_COMPLETED)

    def _stuck(self, run: _Run, step: str, reason: str, s: _Step) -> None:
        self._emit(run, RecordKind.SAGA_STUCK, step, 0, reason, {"cause": s.error}, s.exc)

    def _backward(self, run: _Run) -> _Gen:
        retry = self.compensation_retry
        for d in reversed(self._steps):
            s = run.steps[d.name]
            status = s.status
            if status is _TR:
                self._emit(
                    run,
                    RecordKind.STEP_FAILED,
                    d.name,
                    s.attempts,
                    _INTERRUPTED,
                    {"uncertain": True},
                )
                status = _TU
            if status is _TP or status is _TX or d.compensate is None:
                continue
            policy = d.compensate_on_failure
            if status is _TF and policy is not CompensateOnFailure.ALWAYS:
                continue
            if status is _TU and policy is CompensateOnFailure.NEVER:
                continue
            if status is _TC:
                self._emit(
                    run, RecordKind.COMPENSATION_FAILED, d.name, s.comp_attempts, _INTERRUPTED
                )
            tries = 0
            while True:
                if tries:
                    yield (_SLEEP, retry.delay(tries))
                tries += 1
                self._emit(run, RecordKind.COMPENSATION_STARTED, d.name, s.comp_attempts + 1)
                args = (
                    (
                        StepContext(
                            run.saga_id,
                            d.name,
                            run.view,
                            attempt=s.comp_attempts,
                            compensating=True,
                        ),
                    )
                    if d.pass_context
                    else ()
                )
                ((ok, value, _),) = yield (_CALL, [(d.name, d.compensate, args, d.timeout)])
                if ok:
                    self._emit(run, RecordKind.COMPENSATION_SUCCEEDED, d.name, s.comp_attempts)
                    break
                self._emit(
                    run,
                    RecordKind.COMPENSATION_FAILED,
                    d.name,
                    s.comp_attempts,
                    _describe(value),
                    exc=value,
                )
                if tries >= retry.attempts:
                    reason = (
                        f"compensation of step {d.name!r} failed {tries} times; "
                        f"last error {_describe(value)}"
                    )
                    self._emit(run, RecordKind.SAGA_STUCK, d.name, 0, reason)
                    return
        self._emit(run, RecordKind.SAGA_COMPENSATED)

    # -- drivers: perform the plan's calls and sleeps ------------------------------------

    def _drive_sync(self, run: _Run) -> SagaResult:
        plan = self._plan(run, inline=True)
        try:
            op = next(plan)
            while True:
                code = op[0]
                if code == _ONE:
                    op = plan.send(self._calls_sync((op[1],))[0])
                elif code == _SLEEP:
                    (time.sleep if self._sleep is None else self._sleep)(op[1])
                    op = plan.send(None)
                else:
                    op = plan.send(self._calls_sync(op[1]))
        except StopIteration:
            pass
        finally:
            plan.close()
        return self._result(run)

    def _calls_sync(self, calls: Sequence[_Call]) -> list[_Outcome]:
        if len(calls) == 1 and calls[0][3] is None:
            name, fn, args, _ = calls[0]
            try:
                value = fn(*args)
            except Exception as exc:  # noqa: BLE001 - the step's failure is data
                return [(False, exc, isinstance(exc, TimeoutError))]
            if type(value) not in _PLAIN and isawaitable(value):
                return [(False, _refuse_awaitable(name, value), False)]
            return [(True, value, False)]
        # Timeouts and groups: each call in a daemon thread; a call that outlives its
        # timeout keeps running there (Python cannot stop a thread) and is "uncertain".
        started = [_Worker(call) for call in calls]
        t0 = self._clock()
        out: list[_Outcome] = []
        for worker in started:
            timeout = worker.call[3]
            if timeout is not None:
                timeout = max(0.0, timeout - (self._clock() - t0))
            if not worker.done.wait(timeout):
                out.append((False, StepTimeoutError(worker.call[0], worker.call[3] or 0.0), True))
                continue
            ok, value = worker.outcome
            if not ok and not isinstance(value, Exception):
                raise value  # KeyboardInterrupt or SystemExit inside a worker
            if ok and isawaitable(value):
                out.append((False, _refuse_awaitable(worker.call[0], value), False))
            elif ok:
                out.append((True, value, False))
            else:
                out.append((False, value, isinstance(value, TimeoutError)))
        return out

    async def _drive_async(self, run: _Run) -> SagaResult:
        asyncio = _asyncio()
        plan = self._plan(run, inline=False)
        try:
            op = next(plan)
            while True:
                if op[0] == _SLEEP:
                    waited = (asyncio.sleep if self._sleep is None else self._sleep)(op[1])
                    if isawaitable(waited):
                        await waited
                    op = plan.send(None)
                elif op[0] == _ONE:
                    op = plan.send(await self._call_async(asyncio, op[1]))
                elif len(op[1]) == 1:
                    op = plan.send([await self._call_async(asyncio, op[1][0])])
                else:
                    outcomes = await asyncio.gather(*(self._call_async(asyncio, c) for c in op[1]))
                    op = plan.send(list(outcomes))
        except StopIteration:
            pass
        finally:
            plan.close()
        return self._result(run)

    async def _call_async(self, asyncio: ModuleType, call: _Call) -> _Outcome:
        name, fn, args, timeout = call
        try:
            value = fn(*args)
            if isawaitable(value):
                if timeout is None:
                    value = await value
                else:
                    try:
                        value = await asyncio.wait_for(value, timeout)
                    except (TimeoutError, asyncio.TimeoutError):
                        return (False, StepTimeoutError(name, timeout), True)
        except Exception as exc:  # noqa: BLE001 - the step's failure is data
            return (False, exc, isinstance(exc, TimeoutError))
        return (True, value, False)


class _Worker:
    """One call running in a daemon thread."""

    __slots__ = ("call", "done", "outcome")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.done = threading.Event()
        self.outcome: tuple[bool, Any] = (False, None)
        threading.Thread(target=self._run, name=f"saga-step-{call[0]}", daemon=True).start()

    def _run(self) -> None:
        _, fn, args, _ = self.call
        try:
            self.outcome = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the orchestrating thread
            self.outcome = (False, exc)
        finally:
            self.done.set()


def _refuse_awaitable(name: str, value: Awaitable[Any]) -> TypeError:
    close = getattr(value, "close", None)
    if close is not None:
        close()  # a coroutine that will never run: no "never awaited" warning
    return TypeError(f"step {name!r} returned an awaitable: run the saga with execute_async()")


def _asyncio() -> ModuleType:
    import asyncio  # noqa: PLC0415 - deferred: only execute_async needs it

    return asyncio
