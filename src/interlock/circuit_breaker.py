# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""A circuit breaker for sync and asyncio calls that never holds its lock while your code runs.

Verdict:
    Use it when a dependency (a CRM, an ERP, a payment gateway, a database) can fail or
    slow down for minutes at a time and callers should fail fast instead of piling up on
    it: after repeated failures the breaker opens, rejects calls at once with
    ``CircuitOpenError``, and after a recovery period lets a bounded number of probe
    calls through to decide whether to close again.
    Do not use it when failures are independent one-off errors (retry them instead), when
    every call must be attempted whatever happens (an audit write), or as a rate limiter
    or a timeout: a breaker only decides *whether* to call, it neither spaces calls out
    nor stops a call that hangs (wrap the call in a timeout; see docs/explanation).

Prevents:
    - Cascading failure: callers stop queueing on a dead dependency and get an immediate
      ``CircuitOpenError`` carrying ``.remaining`` seconds and the last failure as
      ``__cause__``.
    - A thundering herd at recovery: half-open admits exactly ``half_open_max_calls``
      concurrent probes; every other caller is rejected immediately, and a probe that
      never reports back re-opens the breaker after ``probe_timeout`` seconds.
    - Serialised callers: the lock guards a few integer updates only, never the call, so
      N threads run N protected calls at the same time.
    - Wrong bookkeeping: ``KeyboardInterrupt``, ``SystemExit`` and
      ``asyncio.CancelledError`` are neither successes nor failures; excluded exceptions
      neither count nor reset the failure count; a late outcome from before a state
      change cannot corrupt the current state (permits carry a generation).
    - Silent behaviour changes from observers: listeners run outside the lock and a
      listener that raises is logged and counted, never propagated.

References:
    - Michael T. Nygard, *Release It!* (2nd ed., 2018), "Circuit Breaker".
    - Martin Fowler, "CircuitBreaker" (martinfowler.com/bliki/CircuitBreaker.html).
    - Resilience4j CircuitBreaker documentation (count- and time-based sliding windows,
      minimum number of calls, slow-call rate, DISABLED and FORCED_OPEN states).
    - SQLite documentation: "Write-Ahead Logging" and "BEGIN IMMEDIATE" transactions,
      used by ``SQLiteBreakerStore`` for state shared between processes.

Exceptions:
    CircuitBreakerError (RuntimeError)   root of everything this module raises
    +-- CircuitOpenError                 a call was rejected; .name, .state, .remaining
    |                                    (.retry_after is the 0.44 peer's name), the
    |                                    last failure as __cause__
    +-- CircuitStoreError                the shared state store failed; .name, .detail; the
                                         driver's error as __cause__

    Exceptions raised by the protected call propagate unchanged (the call that trips
    the breaker re-raises its own exception). Configuration mistakes raise
    ``ValueError`` or ``TypeError`` naming the argument.

Example:
    >>> now = [0.0]
    >>> breaker = CircuitBreaker(
    ...     "crm", failure_threshold=2, recovery_timeout=30.0, clock=lambda: now[0]
    ... )
    >>> @breaker.call
    ... def fetch(ok):
    ...     if not ok:
    ...         raise ConnectionError("crm down")
    ...     return "account"
    >>> for _ in range(2):
    ...     try:
    ...         fetch(False)
    ...     except ConnectionError:
    ...         pass
    >>> breaker.state
    <CircuitState.OPEN: 'open'>
    >>> try:
    ...     fetch(True)
    ... except CircuitOpenError as exc:
    ...     print(exc.name, exc.remaining, repr(exc.__cause__))
    crm 30.0 ConnectionError('crm down')
    >>> now[0] = 30.0  # the recovery timeout has passed: one probe may run
    >>> fetch(True), breaker.state
    ('account', <CircuitState.CLOSED: 'closed'>)
"""

from __future__ import annotations

import enum
import itertools
import math
import os
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache, wraps
from types import MappingProxyType

# typing, inspect, json, sqlite3, logging and contextvars load only for the type checker or
# on first use: importing this module stays cheap and never imports asyncio.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from types import ModuleType, TracebackType
    from typing import Any, Literal, ParamSpec, Protocol, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")
    Record = dict[str, Any]
    EventKind = Literal["state_change", "success", "failure", "ignored", "rejected"]
    ExceptionRule = tuple[type[BaseException], ...] | Callable[[BaseException], bool]
else:
    Protocol = object

__all__ = [
    "TRANSITIONS",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitBreakerError",
    "CircuitBreakerEvent",
    "CircuitBreakerMetrics",
    "CircuitBreakerStats",
    "CircuitOpenError",
    "CircuitState",
    "CircuitStoreError",
    "InMemoryBreakerStore",
    "Permit",
    "SQLiteBreakerStore",
]

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class CircuitBreakerError(RuntimeError):
    """Root of every error this module raises (not of the errors your own calls raise)."""


class CircuitOpenError(CircuitBreakerError):
    """A call was rejected because the breaker is open, forced open, or its probes are busy.

    Attributes:
        name: the breaker's name.
        remaining: seconds until the breaker will admit a call again, at the earliest
            (``0.0`` or more; ``math.inf`` while forced open). In half-open with every
            probe slot busy it is the time until the oldest probe times out.
        state: the ``CircuitState`` the breaker was in when it rejected the call.

    The last failure the breaker recorded, if any, is the ``__cause__``.
    """

    def __init__(self, name: str, remaining: float, *, state: CircuitState | None = None) -> None:
        self.name = name
        self.remaining = max(0.0, float(remaining))
        self.state = CircuitState.OPEN if state is None else state
        RuntimeError.__init__(
            self, f"circuit {name!r} is {self.state.value}; retry after {self.remaining:.3f}s"
        )

    @property
    def retry_after(self) -> float:
        """The 0.44 peer's name for ``remaining`` (seconds)."""
        return self.remaining

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_open_error, (self.name, self.remaining, self.state))


def _rebuild_open_error(name: str, remaining: float, state: CircuitState) -> CircuitOpenError:
    return CircuitOpenError(name, remaining, state=state)


class CircuitStoreError(CircuitBreakerError):
    """The shared state store could not be read or written (the cause is the driver's error).

    Attributes:
        name: the breaker's name (``"*"`` when ``migrate()`` failed).
        detail: what went wrong, in words.
    """

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail
        RuntimeError.__init__(self, f"circuit {name!r}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.detail))


# --------------------------------------------------------------------------------------
# States, transitions and value types
# --------------------------------------------------------------------------------------


class CircuitState(enum.Enum):
    """A breaker's state: the 0.44 peer's three (same values), then two only set by hand."""

    CLOSED = "closed"
    """Calls pass; outcomes are counted by the trip policies."""
    OPEN = "open"
    """Calls are rejected until the (possibly grown) recovery timeout has passed."""
    HALF_OPEN = "half_open"
    """At most ``half_open_max_calls`` probe calls run at once; the rest are rejected."""
    FORCED_OPEN = "forced_open"
    """Every call is rejected until ``reset()`` or ``disable()`` (``force_open()``)."""
    DISABLED = "disabled"
    """Every call passes and nothing trips until ``reset()`` or ``force_open()``."""


_C, _O, _H, _F, _D = (
    CircuitState.CLOSED,
    CircuitState.OPEN,
    CircuitState.HALF_OPEN,
    CircuitState.FORCED_OPEN,
    CircuitState.DISABLED,
)

TRANSITIONS: Mapping[CircuitState, frozenset[CircuitState]] = MappingProxyType(
    {
        _C: frozenset({_O, _F, _D}),
        _O: frozenset({_H, _C, _F, _D}),
        _H: frozenset({_C, _O, _F, _D}),
        _F: frozenset({_C, _D}),
        _D: frozenset({_C, _F}),
    }
)
"""Every state change the breaker can make: ``TRANSITIONS[source]`` is the set of targets."""

_BY_VALUE = {s.value: s for s in CircuitState}


@dataclass(frozen=True, slots=True)
class CircuitBreakerEvent:
    """What a listener receives.

    Attributes:
        kind: ``"state_change"``, ``"success"``, ``"failure"``, ``"ignored"`` or
            ``"rejected"``.
        name: the breaker's name.
        state: the state after the event.
        previous_state: for ``"state_change"``, the state before it; else ``None``.
        exception: the exception of a ``"failure"`` or ``"ignored"`` outcome, the
            ``CircuitOpenError`` of a ``"rejected"`` call, else ``None``.
    """

    kind: EventKind
    name: str
    state: CircuitState
    previous_state: CircuitState | None = None
    exception: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CircuitBreakerMetrics:
    """A consistent snapshot of one breaker, taken under its lock (``metrics()``).

    Counts are totals since the breaker (or its shared record) was created; ``reset()``
    does not clear them. Times are readings of the breaker's clock (seconds).
    """

    name: str
    state: CircuitState
    generation: int
    """Increases on every state change and on ``reset()``."""
    consecutive_failures: int
    successes: int
    failures: int
    ignored: int
    rejected: int
    slow_calls: int
    """Successful calls slower than ``slow_call_duration`` (counted as failures by rate)."""
    trips: int
    """How many times the breaker went to OPEN (from CLOSED or HALF_OPEN)."""
    window_calls: int
    window_failures: int
    failure_rate: float | None
    """``window_failures / window_calls`` when a rate policy is set and a call was counted."""
    probes_in_flight: int
    open_duration: float
    """Seconds the breaker stays OPEN after its latest trip (grows after failed probes)."""
    open_remaining: float
    last_failure_time: float | None
    last_state_change_time: float
    listener_errors: int

    @property
    def failure_count(self) -> int:
        """The 0.44 peer's name for ``consecutive_failures``."""
        return self.consecutive_failures

    @property
    def success_count(self) -> int:
        """The 0.44 peer's name for ``successes``."""
        return self.successes


CircuitBreakerStats = CircuitBreakerMetrics
"""The 0.44 peer's name for the snapshot type (``stats()`` returns the same snapshot)."""


# --------------------------------------------------------------------------------------
# The decision core: pure state, mutated only under the breaker's lock or a store's
# transaction. It never calls user code and never reads a clock itself.
# --------------------------------------------------------------------------------------

_SUCCESS, _FAILURE, _IGNORED = 0, 1, 2
_RECORD_VERSION = 1


class _Core:
    __slots__ = (
        "consecutive",
        "events",
        "failures",
        "generation",
        "ho_successes",
        "ignored",
        "last_change",
        "last_failure_time",
        "next_probe",
        "open_duration",
        "opened_at",
        "probes",
        "rejected",
        "slow",
        "state",
        "successes",
        "trips",
        "w_calls",
        "w_fails",
        "w_last",
        "w_pos",
        "w_ring",
        "w_sec_calls",
        "w_sec_fails",
    )

    def __init__(self, cfg: CircuitBreaker, now: float) -> None:
        self.state = _C
        self.generation = 0
        self.consecutive = 0
        self.opened_at = now
        self.open_duration = cfg.recovery_timeout
        self.ho_successes = 0
        self.probes: dict[int, float] = {}
        self.next_probe = 0
        self.successes = self.failures = self.ignored = self.rejected = 0
        self.slow = self.trips = 0
        self.last_change = now
        self.last_failure_time: float | None = None
        self.events: list[tuple[str, CircuitState | None, BaseException | None]] = []
        self.clear_window(cfg)

    # -- sliding windows (O(1) per call; the time window clears at most its size) -----

    def clear_window(self, cfg: CircuitBreaker) -> None:
        size = cfg.window_size if cfg.failure_rate_threshold is not None else 0
        self.w_calls = self.w_fails = self.w_pos = 0
        self.w_last: int | None = None
        if cfg.window == "count":
            self.w_ring = [0] * size
            self.w_sec_calls: list[int] = []
            self.w_sec_fails: list[int] = []
        else:
            self.w_ring = []
            self.w_sec_calls = [0] * size
            self.w_sec_fails = [0] * size

    def _window_add(self, failed: int, now: float) -> None:
        if self.w_ring:
            ring, pos = self.w_ring, self.w_pos
            if self.w_calls == len(ring):
                self.w_fails -= ring[pos]
            else:
                self.w_calls += 1
            ring[pos] = failed
            self.w_fails += failed
            self.w_pos = (pos + 1) % len(ring)
            return
        size = len(self.w_sec_calls)
        second = math.floor(now)
        last = self.w_last
        if last is None:
            last = self.w_last = second
        elif second > last:
            for tick in range(last + 1, min(second, last + size) + 1):
                index = tick % size
                self.w_calls -= self.w_sec_calls[index]
                self.w_fails -= self.w_sec_fails[index]
                self.w_sec_calls[index] = self.w_sec_fails[index] = 0
            last = self.w_last = second
        index = last % size  # a clock that steps back counts in the latest second
        self.w_sec_calls[index] += 1
        self.w_sec_fails[index] += failed
        self.w_calls += 1
        self.w_fails += failed

    def _rate_tripped(self, cfg: CircuitBreaker) -> bool:
        threshold = cfg.failure_rate_threshold
        return (
            threshold is not None
            and self.w_calls >= cfg.minimum_calls
            and self.w_fails >= threshold * self.w_calls
        )

    # -- transitions -------------------------------------------------------------------

    def move(self, cfg: CircuitBreaker, target: CircuitState, now: float) -> None:
        source = self.state
        if target not in TRANSITIONS[source]:  # pragma: no cover - a bug, not an input
            raise CircuitBreakerError(f"illegal transition {source.name} -> {target.name}")
        self.state = target
        self.generation += 1
        self.last_change = now
        self.probes = {}
        self.ho_successes = 0
        if target is _O:
            self.trips += 1
            self.opened_at = now
            if source is _H:
                grown = self.open_duration * cfg.recovery_multiplier
                self.open_duration = min(grown, cfg.max_recovery_timeout)
            else:
                self.open_duration = cfg.recovery_timeout
        self.consecutive = 0  # counting restarts in every state
        self.clear_window(cfg)
        if target is _C:
            self.open_duration = cfg.recovery_timeout
        self.events.append(("state_change", source, None))

    def poll(self, cfg: CircuitBreaker, now: float) -> None:
        """Apply the transitions that time alone causes."""
        if self.state is _O and now >= self.opened_at + self.open_duration:
            self.move(cfg, _H, now)
        elif (
            self.state is _H
            and self.probes
            and now >= min(self.probes.values()) + cfg.probe_timeout
        ):
            self.move(cfg, _O, now)  # a probe never reported back: count it as failed

    def remaining(self, cfg: CircuitBreaker, now: float) -> float:
        if self.state is _O:
            return max(0.0, self.opened_at + self.open_duration - now)
        if self.state is _F:
            return math.inf
        if self.state is _H and len(self.probes) >= cfg.half_open_max_calls:
            return max(0.0, min(self.probes.values()) + cfg.probe_timeout - now)
        return 0.0

    def acquire(self, cfg: CircuitBreaker, now: float) -> tuple[int, int | None] | float:
        """A permit as (generation, probe id or None), or the seconds to wait when rejected."""
        self.poll(cfg, now)
        state = self.state
        if state is _C or state is _D:
            return (self.generation, None)
        if state is _H and len(self.probes) < cfg.half_open_max_calls:
            probe = self.next_probe
            self.next_probe = probe + 1
            self.probes[probe] = now
            return (self.generation, probe)
        self.rejected += 1
        return self.remaining(cfg, now)

    def record(  # noqa: PLR0917 - internal, positional for speed
        self,
        cfg: CircuitBreaker,
        generation: int,
        probe: int | None,
        outcome: int,
        now: float,
        slow: bool,  # noqa: FBT001 - internal, positional for speed
    ) -> bool:
        """Apply one outcome; False when the permit is stale (issued before a state change)."""
        if generation != self.generation:
            return False
        state = self.state
        if probe is not None:
            del self.probes[probe]  # same generation: the probe is still registered
        if outcome == _IGNORED:
            self.ignored += 1
            return True
        if outcome == _SUCCESS:
            self.successes += 1
            if slow:
                self.slow += 1
            if state is _H:
                self.ho_successes += 1
                if self.ho_successes >= cfg.success_threshold:
                    self.move(cfg, _C, now)
            elif state is _C:
                self.consecutive = 0
                if cfg.failure_rate_threshold is not None:
                    self._window_add(1 if slow else 0, now)
                    if slow and self._rate_tripped(cfg):
                        self.move(cfg, _O, now)
            return True
        self.failures += 1
        self.last_failure_time = now
        if state is _H:
            self.move(cfg, _O, now)
        elif state is _C:
            self.consecutive += 1
            if cfg.failure_rate_threshold is not None:
                self._window_add(1, now)
            threshold = cfg.failure_threshold
            if (threshold is not None and self.consecutive >= threshold) or self._rate_tripped(cfg):
                self.move(cfg, _O, now)
        return True

    # -- records for stores (JSON-compatible dicts) ------------------------------------

    _FIELDS = (
        "consecutive",
        "failures",
        "generation",
        "ho_successes",
        "ignored",
        "last_change",
        "last_failure_time",
        "next_probe",
        "open_duration",
        "opened_at",
        "rejected",
        "slow",
        "successes",
        "trips",
        "w_calls",
        "w_fails",
        "w_last",
        "w_pos",
        "w_ring",
        "w_sec_calls",
        "w_sec_fails",
    )

    def to_record(self) -> Record:
        record: Record = {name: getattr(self, name) for name in self._FIELDS}
        record["version"] = _RECORD_VERSION
        record["state"] = self.state.value
        record["probes"] = [[key, value] for key, value in self.probes.items()]
        return record

    @classmethod
    def from_record(cls, cfg: CircuitBreaker, record: Record | None, now: float) -> _Core:
        core = cls(cfg, now)
        if record is None:
            return core
        if not isinstance(record, dict) or record.get("version") != _RECORD_VERSION:
            version = record.get("version") if isinstance(record, dict) else record
            raise CircuitStoreError(cfg.name, f"unknown record version {version!r}")
        for name in cls._FIELDS:
            value = record.get(name, _NO_RESULT)
            if not _FIELD_CHECKS[name](value):
                raise CircuitStoreError(cfg.name, f"malformed record: {name}={value!r}")
            setattr(core, name, value)
        state = record.get("state")
        probes = record.get("probes")
        if (
            not isinstance(state, str)
            or state not in _BY_VALUE
            or not (
                isinstance(probes, list)
                and all(
                    isinstance(pair, list)
                    and len(pair) == 2
                    and _is_int(pair[0])
                    and _is_number(pair[1])
                    for pair in probes
                )
            )
        ):
            raise CircuitStoreError(
                cfg.name, f"malformed record: state={state!r} probes={probes!r}"
            )
        core.state = _BY_VALUE[state]
        core.probes = {key: float(started) for key, started in probes}
        expected = cfg.window_size if cfg.failure_rate_threshold is not None else 0
        ring, calls, fails = core.w_ring, core.w_sec_calls, core.w_sec_fails
        if (
            len(ring) + len(calls) != expected
            or bool(ring) != (cfg.window == "count" and expected > 0)
            or len(calls) != len(fails)
            or not 0 <= core.w_pos < max(len(ring), 1)
        ):
            core.clear_window(cfg)  # another process uses a different window: start over
        return core


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _is_int_list(value: object) -> bool:
    return type(value) is list and all(type(item) is int for item in value)


_FIELD_CHECKS: dict[str, Callable[[object], bool]] = dict.fromkeys(
    _Core._FIELDS,  # noqa: SLF001 - the record layout
    _is_int,
)
_FIELD_CHECKS.update(
    last_change=_is_number,
    open_duration=_is_number,
    opened_at=_is_number,
    last_failure_time=lambda value: value is None or _is_number(value),
    w_last=lambda value: value is None or _is_int(value),
    w_ring=_is_int_list,
    w_sec_calls=_is_int_list,
    w_sec_fails=_is_int_list,
)


# --------------------------------------------------------------------------------------
# Stores: where the core lives when several breakers (or processes) share one state
# --------------------------------------------------------------------------------------


class BreakerStore(Protocol):
    """Where shared breaker state lives: one JSON-compatible record per breaker name.

    ``update`` must run ``change`` and save what it returns atomically with respect to
    every other ``update`` of the same name, in every thread and process that shares the
    store. ``change`` receives ``None`` when the name has no record yet. The record's
    layout is private to this module (it carries a ``"version"`` key).
    """

    def update(self, name: str, change: Callable[[Record | None], Record]) -> None:
        """Replace the record of ``name`` with ``change(current)``, atomically."""


class InMemoryBreakerStore:
    """A ``BreakerStore`` in a dict behind a lock: breakers of one process sharing state.

    Also the test double for code written against ``BreakerStore``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}

    def update(self, name: str, change: Callable[[Record | None], Record]) -> None:
        """Replace the record of ``name`` with ``change(current)`` under the store's lock."""
        with self._lock:
            self._records[name] = change(self._records.get(name))

    def names(self) -> list[str]:
        """The breaker names that have a record, sorted."""
        with self._lock:
            return sorted(self._records)


_MIGRATIONS = (
    ("CREATE TABLE IF NOT EXISTS interlock_circuit_breaker (name TEXT PRIMARY KEY, record TEXT)"),
)


class SQLiteBreakerStore:
    """A ``BreakerStore`` in an SQLite file: processes on one host share breaker state.

    Each ``update`` is one ``BEGIN IMMEDIATE`` transaction (read, decide, write), so
    every process sees the same state and four processes admit one half-open probe in
    total. The file is put in WAL mode. Timestamps in the record are readings of each
    breaker's clock, so every process must use a clock that is the same across processes
    on the host (``time.monotonic`` is, on Linux, macOS and Windows).

    Args:
        path: the database file (created if missing).
        timeout: seconds to wait for another process's transaction before failing with
            ``CircuitStoreError``.
        migrate: create or upgrade the table now (``migrate()``); pass ``False`` when a
            deployment step runs ``migrate()`` instead.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 5.0, migrate: bool = True
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {path!r}")
        _check_seconds("timeout", timeout, allow_zero=True)
        self.path = os.fspath(path)
        self.timeout = float(timeout)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        if migrate:
            self.migrate()

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A connection must not cross a fork (SQLite's rule): the child opens its own
            # and leaves the parent's untouched.
            self._conn = None
            self._pid = os.getpid()
        if self._conn is None:
            sqlite = _sqlite3()
            conn = sqlite.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            self._conn = conn
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return self._conn

    def migrate(self) -> int:
        """Create or upgrade the table (idempotent); return the schema version reached."""
        sqlite = _sqlite3()
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS interlock_circuit_breaker_schema"
                        " (version INTEGER NOT NULL)"
                    )
                    row = conn.execute(
                        "SELECT MAX(version) FROM interlock_circuit_breaker_schema"
                    ).fetchone()
                    version = row[0] or 0
                    for number, statement in enumerate(_MIGRATIONS[version:], version + 1):
                        conn.execute(statement)
                        conn.execute(
                            "INSERT INTO interlock_circuit_breaker_schema VALUES (?)", (number,)
                        )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite.Error as exc:
                if self._conn is not None:  # the constructor may be failing: leave nothing open
                    self._conn.close()
                    self._conn = None
                raise CircuitStoreError("*", f"cannot migrate {self.path}: {exc}") from exc
        return len(_MIGRATIONS)

    def update(self, name: str, change: Callable[[Record | None], Record]) -> None:
        """Run ``change`` on the stored record inside one ``BEGIN IMMEDIATE`` transaction."""
        sqlite, json = _sqlite3(), _json()
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    row = conn.execute(
                        "SELECT record FROM interlock_circuit_breaker WHERE name = ?", (name,)
                    ).fetchone()
                    try:
                        current = None if row is None else json.loads(row[0])
                    except ValueError as exc:
                        raise CircuitStoreError(name, f"record is not JSON: {exc}") from exc
                    record = change(current)
                    conn.execute(
                        "INSERT INTO interlock_circuit_breaker (name, record) VALUES (?, ?)"
                        " ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                        (name, json.dumps(record, separators=(",", ":"))),
                    )
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite.Error as exc:
                raise CircuitStoreError(name, f"store {self.path} failed: {exc}") from exc

    def close(self) -> None:
        """Close the connection (a later ``update`` reopens it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


@cache
def _sqlite3() -> ModuleType:
    import sqlite3  # noqa: PLC0415 - deferred: only SQLiteBreakerStore needs it

    return sqlite3


@cache
def _json() -> ModuleType:
    import json  # noqa: PLC0415 - deferred: only SQLiteBreakerStore needs it

    return json


@cache
def _inspect() -> ModuleType:
    import inspect  # noqa: PLC0415 - deferred: only the decorator needs it

    return inspect


@cache
def _logger() -> Any:
    import logging  # noqa: PLC0415 - deferred: only a raising listener needs it

    return logging.getLogger(__name__)


def _check_seconds(argument: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, not {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{argument} must be a finite number of seconds {bound}, not {value!r}")
    return float(value)


def _check_count(argument: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{argument} must be >= 1, not {value!r}")
    return value


def _check_rule(argument: str, value: object) -> ExceptionRule:
    if callable(value) and not isinstance(value, type):
        return value
    if isinstance(value, type):
        value = (value,)
    if not isinstance(value, tuple) or not all(
        isinstance(item, type) and issubclass(item, BaseException) for item in value
    ):
        raise TypeError(
            f"{argument} must be exception classes or a predicate on exceptions, not {value!r}"
        )
    return value


def _matches(rule: ExceptionRule, exc: BaseException) -> bool:
    if isinstance(rule, tuple):
        return isinstance(exc, rule)
    return bool(rule(exc))


# --------------------------------------------------------------------------------------
# Permits and the breaker
# --------------------------------------------------------------------------------------

_NO_RESULT: Any = object()


class Permit:
    """The right to make one call, from ``CircuitBreaker.acquire()``; report its outcome once.

    Report with ``success()``, ``failure()``, ``ignore()`` or ``record()``; the first
    report counts and later ones do nothing. A permit is also a context manager (``with
    breaker.acquire():``) that reports the block's outcome. A permit issued before a state
    change (a probe that timed out, a ``reset()``) is stale: its report is dropped.

    Attributes:
        generation: the breaker generation the permit was issued in.
        probe: ``True`` for a half-open probe.
    """

    __slots__ = ("_breaker", "_done", "_probe_id", "_started", "generation")

    def __init__(
        self, breaker: CircuitBreaker, generation: int, probe_id: int | None, started: float
    ) -> None:
        self._breaker = breaker
        self.generation = generation
        self._probe_id = probe_id
        self._started = started
        self._done = False

    @property
    def probe(self) -> bool:
        """True when this permit is a half-open probe."""
        return self._probe_id is not None

    def success(self, result: object = _NO_RESULT) -> None:
        """Report a successful call (``result`` goes through ``failure_result`` if given)."""
        self.record(None, result)

    def failure(self, exception: BaseException | None = None) -> None:
        """Report a failed call, whatever the exception (``exception`` feeds ``__cause__``)."""
        if not self._done:
            self._done = True
            self._breaker._end(self.generation, self._probe_id, self._started, _FAILURE, exception)  # noqa: SLF001

    def ignore(self, exception: BaseException | None = None) -> None:
        """Report a call that neither succeeded nor failed; its probe slot is freed."""
        if not self._done:
            self._done = True
            self._breaker._end(self.generation, self._probe_id, self._started, _IGNORED, exception)  # noqa: SLF001

    def record(self, exception: BaseException | None = None, result: object = _NO_RESULT) -> None:
        """Classify and report: the exception a call raised (or ``None``) and its result."""
        if not self._done:
            self._done = True
            breaker = self._breaker
            if exception is None:
                outcome = _SUCCESS
                predicate = breaker.failure_result
                if result is not _NO_RESULT and predicate is not None and predicate(result):
                    outcome = _FAILURE
            else:
                outcome = breaker._classify(exception)  # noqa: SLF001
            breaker._end(self.generation, self._probe_id, self._started, outcome, exception)  # noqa: SLF001

    def __enter__(self) -> Permit:  # noqa: PYI034 - typing.Self is 3.11+
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.record(exc)


class CircuitBreaker:
    """A thread-safe and asyncio-safe circuit breaker; the lock is never held during a call.

    Args:
        name: identifies the breaker in errors, events, metrics and a shared store.
        failure_threshold: consecutive failures that open the breaker (``None`` turns the
            consecutive policy off; then ``failure_rate_threshold`` is required).
        recovery_timeout: seconds the breaker stays OPEN after it trips from CLOSED.
        half_open_max_calls: probe calls allowed at the same time in HALF_OPEN.
        success_threshold: successful probes that close the breaker (the 0.44 peer's name).
        probe_timeout: seconds after which a probe that has not reported back counts as
            failed and re-opens the breaker (default: ``recovery_timeout``, or 60 when
            that is 0).
        recovery_multiplier: the open duration is multiplied by this after each failed
            probe (1.0: constant; 2.0: doubling).
        max_recovery_timeout: the cap of that growth in seconds (default: 16 times
            ``recovery_timeout`` when the multiplier is above 1).
        failure_rate_threshold: open when failed calls / calls in the sliding window
            reaches this fraction (0 < x <= 1) with at least ``minimum_calls`` calls.
        window: ``"count"`` (the last ``window_size`` calls) or ``"time"`` (the calls of
            the last ``window_size`` whole seconds of the clock).
        window_size: calls, or seconds, of the sliding window.
        minimum_calls: calls the window must hold before the rate is judged.
        slow_call_duration: a successful call taking at least this many seconds counts
            as a failure for the rate policy (needs ``failure_rate_threshold``).
        expected_exceptions: exception classes, or a predicate, that count as failures
            (the 0.44 peer's name; default ``(Exception,)``). Other exceptions are ignored.
        exclude: exception classes, or a predicate, that are ignored even when expected:
            they neither count as failures nor reset the consecutive count.
        failure_result: a predicate on a returned value: ``True`` counts the call as a
            failure (the value is still returned).
        clock: seconds, monotonic (injected in tests).
        store: a ``BreakerStore`` to share state with other breakers of the same name;
            default: private state in this object.
        listeners: callables receiving a ``CircuitBreakerEvent``.

    ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` and ``asyncio.CancelledError``
    (every ``BaseException`` that is not an ``Exception``) are always ignored.
    """

    def __init__(  # noqa: PLR0915 - one validation per argument, in order
        self,
        name: str,
        *,
        failure_threshold: int | None = 5,
        recovery_timeout: float = 60.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        probe_timeout: float | None = None,
        recovery_multiplier: float = 1.0,
        max_recovery_timeout: float | None = None,
        failure_rate_threshold: float | None = None,
        window: Literal["count", "time"] = "count",
        window_size: int = 100,
        minimum_calls: int = 10,
        slow_call_duration: float | None = None,
        expected_exceptions: ExceptionRule = (Exception,),
        exclude: ExceptionRule = (),
        failure_result: Callable[[Any], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        store: BreakerStore | None = None,
        listeners: Iterable[Callable[[CircuitBreakerEvent], object]] = (),
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str, not {name!r}")
        self.name = name
        self.failure_threshold = _check_count("failure_threshold", failure_threshold, optional=True)
        self.recovery_timeout = _check_seconds(
            "recovery_timeout", recovery_timeout, allow_zero=True
        )
        self.half_open_max_calls: int = _check_count("half_open_max_calls", half_open_max_calls)  # type: ignore[assignment]
        self.success_threshold: int = _check_count("success_threshold", success_threshold)  # type: ignore[assignment]
        self.probe_timeout = (
            (self.recovery_timeout or 60.0)
            if probe_timeout is None
            else _check_seconds("probe_timeout", probe_timeout)
        )
        if isinstance(recovery_multiplier, bool) or not isinstance(
            recovery_multiplier, (int, float)
        ):
            raise TypeError(f"recovery_multiplier must be a number, not {recovery_multiplier!r}")
        if not (math.isfinite(recovery_multiplier) and recovery_multiplier >= 1):
            raise ValueError(
                f"recovery_multiplier must be finite and >= 1, not {recovery_multiplier!r}"
            )
        self.recovery_multiplier = float(recovery_multiplier)
        if max_recovery_timeout is None:
            self.max_recovery_timeout = self.recovery_timeout * (
                16.0 if self.recovery_multiplier > 1 else 1.0
            )
        else:
            self.max_recovery_timeout = _check_seconds(
                "max_recovery_timeout", max_recovery_timeout, allow_zero=True
            )
            if self.max_recovery_timeout < self.recovery_timeout:
                raise ValueError(
                    "max_recovery_timeout must be >= recovery_timeout,"
                    f" not {max_recovery_timeout!r}"
                )
        if failure_rate_threshold is not None:
            if isinstance(failure_rate_threshold, bool) or not isinstance(
                failure_rate_threshold, (int, float)
            ):
                raise TypeError(
                    f"failure_rate_threshold must be a number, not {failure_rate_threshold!r}"
                )
            if not 0 < failure_rate_threshold <= 1:
                raise ValueError(
                    f"failure_rate_threshold must be in (0, 1], not {failure_rate_threshold!r}"
                )
            failure_rate_threshold = float(failure_rate_threshold)
        elif failure_threshold is None:
            raise ValueError(
                "failure_threshold=None needs a failure_rate_threshold: no policy could trip"
            )
        self.failure_rate_threshold = failure_rate_threshold
        if window not in ("count", "time"):
            raise ValueError(f"window must be 'count' or 'time', not {window!r}")
        self.window = window
        self.window_size: int = _check_count("window_size", window_size)  # type: ignore[assignment]
        self.minimum_calls: int = _check_count("minimum_calls", minimum_calls)  # type: ignore[assignment]
        if slow_call_duration is not None:
            if failure_rate_threshold is None:
                raise ValueError(
                    f"slow_call_duration={slow_call_duration!r} needs a failure_rate_threshold"
                )
            slow_call_duration = _check_seconds("slow_call_duration", slow_call_duration)
        self.slow_call_duration = slow_call_duration
        self.expected_exceptions = _check_rule("expected_exceptions", expected_exceptions)
        self.exclude = _check_rule("exclude", exclude)
        if failure_result is not None and not callable(failure_result):
            raise TypeError(f"failure_result must be callable, not {failure_result!r}")
        self.failure_result = failure_result
        if not callable(clock):
            raise TypeError(f"clock must be callable, not {clock!r}")
        self._clock = clock
        if store is not None and not callable(getattr(store, "update", None)):
            raise TypeError(f"store must have an update(name, change) method, not {store!r}")
        self._store = store
        listeners = tuple(listeners)
        for listener in listeners:
            if not callable(listener):
                raise TypeError(f"listeners must be callables, not {listener!r}")
        self._listeners = listeners
        self._lock = threading.Lock()
        self._core = _Core(self, clock())
        self._last_failure: BaseException | None = None
        # Fast path: with the consecutive policy only, no listeners, no store, CLOSED and
        # no failures counted, a success changes nothing, so a call needs no lock at all.
        self._fast_capable = (
            failure_rate_threshold is None and failure_result is None and store is None
        )
        self._fast_ok = itertools.count()
        self._listener_errors = itertools.count()
        # The permits of `with breaker:` blocks, per thread and per asyncio task.
        self._context: ContextVar[tuple[Permit, ...]] = ContextVar(
            f"interlock.circuit_breaker:{name}", default=()
        )
        self._fast: int | None = None
        self._refresh()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._core.state.value}>"

    # -- the decision core, under the lock or a store transaction ----------------------

    def _refresh(self) -> None:
        core = self._core
        self._fast = (
            core.generation
            if self._fast_capable
            and not self._listeners
            and core.state is _C
            and core.consecutive == 0
            else None
        )

    def _locked(self, operation: Callable[[CircuitBreaker, _Core, float], R]) -> R:
        """Run ``operation(self, core, now)`` atomically; then listeners, outside the lock."""
        store = self._store
        if store is None:
            with self._lock:
                core = self._core
                result = operation(self, core, self._clock())
                events, core.events = core.events, []
                self._refresh()
        else:
            box: list[Any] = []

            def change(record: Record | None) -> Record:
                now = self._clock()
                core = _Core.from_record(self, record, now)
                box.append(operation(self, core, now))
                box.append(core)
                return core.to_record()

            store.update(self.name, change)
            result, core = box[-2], box[-1]
            events = core.events
            with self._lock:
                self._core = core  # the latest view, for repr and the last state seen
        if events and self._listeners:
            self._emit_changes(core, events)
        return result

    def _emit_changes(
        self, core: _Core, events: list[tuple[str, CircuitState | None, BaseException | None]]
    ) -> None:
        # The state at each step is rebuilt from the sequence of state changes.
        states = [core.state]
        for kind, previous, _ in reversed(events):
            if kind == "state_change":
                assert previous is not None  # noqa: S101 - set by _move
                states.append(previous)
        states.reverse()
        step = 0
        for kind, previous, exc in events:
            if kind == "state_change":
                step += 1
            state = states[step]
            self._emit(kind, state, previous, exc)

    def _emit(
        self,
        kind: str,
        state: CircuitState,
        previous: CircuitState | None = None,
        exception: BaseException | None = None,
    ) -> None:
        event = CircuitBreakerEvent(kind, self.name, state, previous, exception)  # type: ignore[arg-type]
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001, PERF203 - a listener never changes the breaker
                next(self._listener_errors)
                _logger().exception(
                    "circuit breaker %r: listener %r raised on %s", self.name, listener, kind
                )

    def _classify(self, exc: BaseException) -> int:
        if not isinstance(exc, Exception) or _matches(self.exclude, exc):
            return _IGNORED
        return _FAILURE if _matches(self.expected_exceptions, exc) else _IGNORED

    def _rejection(self, remaining: float, state: CircuitState) -> CircuitOpenError:
        error = CircuitOpenError(self.name, remaining, state=state)
        error.__cause__ = self._last_failure
        if self._listeners:
            self._emit("rejected", state, None, error)
        return error

    def acquire(self) -> Permit:
        """Take a permit for one call, or raise ``CircuitOpenError`` at once.

        Report the call's outcome on the permit (``success``, ``failure``, ``ignore``,
        ``record``, or use it as a context manager). Every permit must be reported:
        a half-open probe that is never reported holds its slot until ``probe_timeout``.
        """
        generation, probe, now = self._begin()
        return Permit(self, generation, probe, now)

    def _begin(self) -> tuple[int, int | None, float]:
        """Admit one call: (generation, probe id or None, start time), or raise."""
        if self._store is None and not self._listeners:
            # The common case inlined: one short critical section, no events to deliver.
            with self._lock:
                core = self._core
                if core.state is _C:
                    # The start time only matters to the slow-call policy.
                    started = 0.0 if self.slow_call_duration is None else self._clock()
                    return (core.generation, None, started)
                now = self._clock()
                decision = core.acquire(self, now)
                if core.events:
                    core.events = []
                    self._refresh()
                state = core.state
            if type(decision) is tuple:
                return (decision[0], decision[1], now)
            raise self._rejection(decision, state)  # type: ignore[arg-type]
        outcome = self._locked(_acquire_op)
        if len(outcome) == 3:
            return outcome
        raise self._rejection(*outcome)

    def _end(
        self,
        generation: int,
        probe: int | None,
        started: float,
        outcome: int,
        exc: BaseException | None,
    ) -> None:
        """Report the outcome of a call admitted by ``_begin``."""
        slow = False
        if self.slow_call_duration is not None and outcome == _SUCCESS:
            slow = self._clock() - started >= self.slow_call_duration
        if outcome == _FAILURE and exc is not None:
            self._last_failure = exc
        if self._store is None and not self._listeners:
            # The common case inlined: no closure, no events to deliver.
            with self._lock:
                core = self._core
                core.record(self, generation, probe, outcome, self._clock(), slow)
                if core.events:
                    core.events = []
                if self._fast_capable:
                    self._refresh()
            return

        def op(breaker: CircuitBreaker, core: _Core, now: float) -> None:
            if core.record(breaker, generation, probe, outcome, now, slow) and self._listeners:
                kind = ("success", "failure", "ignored")[outcome]
                core.events.insert(0, (kind, None, exc))

        self._locked(op)

    def _classified_end(
        self, generation: int, probe: int | None, started: float, exc: BaseException
    ) -> None:
        self._end(generation, probe, started, self._classify(exc), exc)

    def _result_end(
        self, generation: int, probe: int | None, started: float, result: object
    ) -> None:
        predicate = self.failure_result
        if predicate is not None and predicate(result):
            self._end(generation, probe, started, _FAILURE, None)
        else:
            self._end(generation, probe, started, _SUCCESS, None)

    # -- calling -----------------------------------------------------------------------

    def call(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (a plain function or an ``async def``) so every call is guarded.

        Coroutine functions get an ``async`` wrapper; other callables a plain one. When
        a plain call returns an awaitable (an object whose ``__call__`` is ``async def``,
        a function returning a coroutine, a Future or a Task), the wrapper returns a
        coroutine that awaits it and reports the outcome when it finishes.
        Rejected calls raise ``CircuitOpenError``; ``fn``'s own exceptions propagate.
        """
        if not callable(fn):
            raise TypeError(f"call() needs a callable, not {fn!r}")
        if _inspect().iscoroutinefunction(fn):
            return self._decorate_async(fn)  # type: ignore[arg-type, return-value]
        return self._decorate_sync(fn)

    def _decorate_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        fast_ok = self._fast_ok

        @wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            token = self._fast
            if token is not None:
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    self._classified_end(token, None, 0.0, exc)
                    raise
                if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                    return self._settle(result, token, None, 0.0, fast=True)  # type: ignore[return-value]
                if self._fast is token:
                    next(fast_ok)
                else:
                    self._end(token, None, 0.0, _SUCCESS, None)
                return result
            generation, probe, started = self._begin()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                self._classified_end(generation, probe, started, exc)
                raise
            if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
                return self._settle(result, generation, probe, started, fast=False)  # type: ignore[return-value]
            if self.failure_result is None:
                self._end(generation, probe, started, _SUCCESS, None)
            else:
                self._result_end(generation, probe, started, result)
            return result

        return guarded

    def _decorate_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        fast_ok = self._fast_ok

        @wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            token = self._fast
            if token is not None:
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    self._classified_end(token, None, 0.0, exc)
                    raise
                if self._fast is token:
                    next(fast_ok)
                else:
                    self._end(token, None, 0.0, _SUCCESS, None)
                return result
            generation, probe, started = self._begin()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                self._classified_end(generation, probe, started, exc)
                raise
            if self.failure_result is None:
                self._end(generation, probe, started, _SUCCESS, None)
            else:
                self._result_end(generation, probe, started, result)
            return result

        return guarded

    async def _settle(
        self,
        awaitable: Any,
        generation: int,
        probe: int | None,
        started: float,
        *,
        fast: bool,
    ) -> Any:
        """Await what a plain call returned; report its outcome as an ``async def`` call's."""
        try:
            result = await awaitable
        except BaseException as exc:
            self._classified_end(generation, probe, started, exc)
            raise
        if fast and self._fast is generation:
            next(self._fast_ok)
        else:
            self._result_end(generation, probe, started, result)
        return result

    def execute(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Call ``fn(*args, **kwargs)`` under the breaker (the 0.44 peer's explicit form).

        If ``fn`` returns an awaitable, this returns a coroutine that awaits it and
        reports the outcome when it finishes (as ``execute_async`` would).
        """
        generation, probe, started = self._begin()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._classified_end(generation, probe, started, exc)
            raise
        if hasattr(result, "__await__") and getattr(type(result), "__await__", None):
            return self._settle(result, generation, probe, started, fast=False)  # type: ignore[return-value]
        self._result_end(generation, probe, started, result)
        return result

    async def execute_async(
        self, fn: Callable[..., Awaitable[R]], /, *args: Any, **kwargs: Any
    ) -> R:
        """Await ``fn(*args, **kwargs)`` under the breaker."""
        generation, probe, started = self._begin()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._classified_end(generation, probe, started, exc)
            raise
        self._result_end(generation, probe, started, result)
        return result

    def __enter__(self) -> CircuitBreaker:  # noqa: PYI034 - typing.Self is 3.11+
        permit = self.acquire()
        context = self._context
        context.set((*context.get(), permit))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        context = self._context
        *rest, permit = context.get()
        context.set(tuple(rest))
        permit.record(exc)

    async def __aenter__(self) -> CircuitBreaker:  # noqa: PYI034 - typing.Self is 3.11+
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, traceback)

    # -- control and observation -------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state (OPEN becomes HALF_OPEN here once the recovery time passed)."""
        return self._locked(_poll_op)

    @property
    def last_failure(self) -> BaseException | None:
        """The last exception this process recorded as a failure, or ``None``."""
        return self._last_failure

    def force_open(self) -> None:
        """Reject every call until ``reset()`` or ``disable()`` (FORCED_OPEN)."""
        self._locked(lambda breaker, core, now: _control(breaker, core, now, _F))

    def disable(self) -> None:
        """Let every call through and never trip until ``reset()`` or ``force_open()``."""
        self._locked(lambda breaker, core, now: _control(breaker, core, now, _D))

    def reset(self) -> None:
        """Return to CLOSED with no failures counted; reports of older permits are dropped."""
        self._last_failure = None
        self._locked(lambda breaker, core, now: _control(breaker, core, now, _C))

    def add_listener(self, listener: Callable[[CircuitBreakerEvent], object]) -> None:
        """Call ``listener(event)`` on every state change and outcome (outside the lock)."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener!r}")
        with self._lock:
            self._listeners = (*self._listeners, listener)
            self._refresh()

    def remove_listener(self, listener: Callable[[CircuitBreakerEvent], object]) -> None:
        """Stop calling ``listener`` (``ValueError`` if it was not added)."""
        with self._lock:
            listeners = list(self._listeners)
            listeners.remove(listener)
            self._listeners = tuple(listeners)
            self._refresh()

    def metrics(self) -> CircuitBreakerMetrics:
        """A consistent snapshot of the state and the counters."""
        return self._locked(CircuitBreaker._snapshot)

    stats = metrics

    def _snapshot(self, core: _Core, now: float) -> CircuitBreakerMetrics:
        core.poll(self, now)
        rate = None
        if self.failure_rate_threshold is not None and core.w_calls:
            rate = core.w_fails / core.w_calls
        return CircuitBreakerMetrics(
            name=self.name,
            state=core.state,
            generation=core.generation,
            consecutive_failures=core.consecutive,
            successes=core.successes + _peek(self._fast_ok),
            failures=core.failures,
            ignored=core.ignored,
            rejected=core.rejected,
            slow_calls=core.slow,
            trips=core.trips,
            window_calls=core.w_calls,
            window_failures=core.w_fails,
            failure_rate=rate,
            probes_in_flight=len(core.probes),
            open_duration=core.open_duration,
            open_remaining=core.remaining(self, now),
            last_failure_time=core.last_failure_time,
            last_state_change_time=core.last_change,
            listener_errors=_peek(self._listener_errors),
        )


def _peek(counter: itertools.count[int]) -> int:
    """How many times ``next`` was called on ``counter`` (it reprs as ``count(N)``)."""
    return int(repr(counter)[6:-1])


def _acquire_op(breaker: CircuitBreaker, core: _Core, now: float) -> tuple[Any, ...]:
    decision = core.acquire(breaker, now)
    if isinstance(decision, tuple):
        return (*decision, now)
    return (decision, core.state)


def _poll_op(breaker: CircuitBreaker, core: _Core, now: float) -> CircuitState:
    core.poll(breaker, now)
    return core.state


def _control(breaker: CircuitBreaker, core: _Core, now: float, target: CircuitState) -> None:
    core.poll(breaker, now)
    if target is _C:
        if core.state is _C:
            core.generation += 1  # in-flight reports from before the reset are dropped
            core.consecutive = 0
            core.clear_window(breaker)
        else:
            core.move(breaker, _C, now)
    elif core.state is not target:
        core.move(breaker, target, now)
