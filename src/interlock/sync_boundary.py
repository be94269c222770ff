# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Field-level authority between two systems of record, conflict detection and three-way sync plans.

Verdict:
    Use it when two systems (a CRM and an ERP, say) hold the same records, both can
    edit them, and a sync job must decide field by field which edit reaches the other
    side, with a stored baseline so that its own writes are not mistaken for edits.
    Do not use it when only one system ever writes (a one-way copy needs no planner),
    when you need ordering or atomicity across several records (it plans one record at
    a time and performs no I/O), or when both sides edit the same text concurrently and
    you need character-level merging (that calls for a CRDT or operational transform).

Prevents:
    - Echo loops: a value that sync wrote into B comes back through B's change feed
      and is sent back to A, reverting a newer edit made in A meanwhile.
    - Silent lost updates: both systems edited a field and a two-way diff lets one
      edit overwrite the other without anyone being told.
    - Authority drift: nobody can say which system owns a field, so whichever job
      ran last wins.
    - Absent read as None: a field missing from one payload wipes the other system's
      value.
    - Ambiguous conflicts: "no baseline is known" and "the baseline was None" look
      the same.

References:
    - Three-way merge against a common ancestor: Khanna, Kunal and Pierce,
      "A Formal Investigation of Diff3" (FSTTCS 2007).
    - Last-writer-wins register: Shapiro, Preguica, Baquero and Zawirski,
      "A comprehensive study of Convergent and Commutative Replicated Data Types"
      (INRIA RR-7506, 2011).
    - Hohpe and Woolf, Enterprise Integration Patterns (2003): Message Translator
      (field mapping and value transforms between two systems' models).
    - The SyncBoundary / RecordAuthority / SyncConflict API of
      integration-automation-patterns 0.1.0, kept source-compatible.

Exceptions:
    ValueError
        SyncBoundaryError               root; catch it for anything this module raises
            SyncArgumentError           a bad argument: .argument, .value, .field
                SyncArgumentTypeError   the argument has the wrong type; also a TypeError
            TransformError              a to_a / to_b transform raised: .field, .direction
            MergeError                  the shared merge callable raised: .field

Example:
    A CRM (system A) owns e-mail, an ERP (system B) owns the credit limit, and both
    may edit the phone number. The baseline is what the previous sync left behind.

    >>> boundary = SyncBoundary(
    ...     "contact",
    ...     "crm",
    ...     "erp",
    ...     field_authority={
    ...         "email": RecordAuthority.SYSTEM_A,
    ...         "credit_limit": RecordAuthority.SYSTEM_B,
    ...         "phone": RecordAuthority.SHARED,
    ...     },
    ...     field_map={"email": "EmailAddress", "credit_limit": "CreditLimit", "phone": "Phone"},
    ... )
    >>> crm = {"email": "ada@new.example", "credit_limit": 0, "phone": "555-0100"}
    >>> erp = {"EmailAddress": "ada@old.example", "CreditLimit": 5000, "Phone": "555-0199"}
    >>> baseline = {"email": "ada@old.example", "credit_limit": 5000, "phone": "555-0100"}
    >>> plan = boundary.plan(crm, erp, baseline, record_id="C-42")
    >>> dict(plan.updates_b)
    {'EmailAddress': 'ada@new.example'}
    >>> dict(plan.updates_a)
    {'credit_limit': 5000, 'phone': '555-0199'}
    >>> plan.conflicts
    ()
    >>> new_crm, new_erp = plan.apply(crm, erp)
    >>> new_erp["EmailAddress"], new_crm["phone"]
    ('ada@new.example', '555-0199')

    When both sides changed a shared field and no timestamps say who wrote last, the
    field goes to review instead of being overwritten:

    >>> plan = boundary.plan({"phone": "555-0111"}, {"Phone": "555-0122"}, {"phone": "555-0100"})
    >>> [(c.field_name, c.reason.value) for c in plan.conflicts]
    [('phone', 'no-timestamps')]
"""

from __future__ import annotations

__all__ = [
    "ABSENT",
    "ConflictReason",
    "FieldMapping",
    "MergeError",
    "RecordAuthority",
    "SharedPolicy",
    "SyncArgumentError",
    "SyncArgumentTypeError",
    "SyncBoundary",
    "SyncBoundaryError",
    "SyncConflict",
    "SyncPlan",
    "TransformError",
]

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import partial
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypeAlias

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class SyncBoundaryError(ValueError):
    """Root of every error this module raises.

    It subclasses ``ValueError`` so that handlers written for bad values keep working.
    """


class SyncArgumentError(SyncBoundaryError):
    """An argument to a constructor, ``plan()`` or ``apply()`` is invalid.

    Attributes:
        argument: The name of the offending parameter, e.g. ``"field_map"``.
        value: The offending value (the whole argument or the bad entry in it).
        field: The field name the problem concerns, or None.
    """

    def __init__(
        self, message: str, *, argument: str, value: object, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.argument = argument
        self.value = value
        self.field = field


class SyncArgumentTypeError(SyncArgumentError, TypeError):
    """An argument has the wrong type; also a ``TypeError``."""


class TransformError(SyncBoundaryError):
    """A ``to_a`` or ``to_b`` transform raised; the original is ``__cause__``.

    Attributes:
        field: The field name in system A's names.
        direction: ``"to_a"`` or ``"to_b"``.
    """

    def __init__(self, message: str, *, field: str, direction: str) -> None:
        super().__init__(message)
        self.field = field
        self.direction = direction


class MergeError(SyncBoundaryError):
    """The shared-field merge callable raised; the original is ``__cause__``.

    Attributes:
        field: The field name in system A's names.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# ---------------------------------------------------------------------------
# Enums and value types
# ---------------------------------------------------------------------------


class _Absent(Enum):
    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"

    __str__ = __repr__


ABSENT: Final = _Absent.ABSENT
"""Marks a key that is not in a mapping: a field missing from a record, or no baseline.

It is distinct from ``None``: ``None`` is a real value, ``ABSENT`` means "not there".
The planner never writes ``ABSENT`` into a record or a baseline.
"""


class RecordAuthority(Enum):
    """Which system decides the value of a field.

    ``SYSTEM_A`` / ``SYSTEM_B``: that system's value is copied to the other one.
    ``SHARED``: either system may edit; the planner merges three-way against the
    baseline and settles two-sided edits with the boundary's ``shared_policy``.
    ``MANUAL``: every difference goes to a person for review.
    """

    SYSTEM_A = "system_a"
    SYSTEM_B = "system_b"
    SHARED = "shared"
    MANUAL = "manual"


class ConflictReason(Enum):
    """Why a field was sent to review instead of being synced (machine-readable)."""

    BOTH_CHANGED = "both-changed"
    """Both systems changed the field since the baseline, to different values."""
    NO_BASELINE = "no-baseline"
    """The values differ and no baseline says which side changed."""
    MANUAL_AUTHORITY = "manual-authority"
    """The field has ``RecordAuthority.MANUAL`` and the two values differ."""
    B_OVERRIDE = "b-override"
    """B edited a ``SYSTEM_A`` field and ``allow_system_b_override`` is set."""
    A_OVERRIDE = "a-override"
    """A edited a ``SYSTEM_B`` field and ``allow_system_a_override`` is set."""
    NO_TIMESTAMPS = "no-timestamps"
    """Last-writer-wins was needed but a modification time is missing."""
    TIE = "tie"
    """Last-writer-wins was needed but both modification times are equal."""
    ABSENT = "absent"
    """The outcome would delete the field from a system, which a plan never does."""


class SharedPolicy(Enum):
    """How a ``SHARED`` field is settled when both sides changed (or no baseline is known).

    A merge callable may be given instead of a member of this enum.
    """

    LAST_WRITER_WINS = "last-writer-wins"
    """The later modification time wins; a missing or equal time goes to review."""
    REVIEW = "review"
    """Every two-sided change goes to review."""


_Transform: TypeAlias = Callable[[Any], Any]
_Merge: TypeAlias = Callable[[str, Any, Any, Any], Any]
_Stamps: TypeAlias = "datetime | Mapping[str, datetime | None] | None"


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """How one field of system A appears in system B.

    ``to_b`` converts a value from A's representation to B's, ``to_a`` the other way;
    give both or neither. They must round-trip (``to_a(to_b(v)) == v`` for every value
    A may hold), otherwise the planner sees a difference on every run.

    Args:
        b_name: The field's name in system B.
        to_b: Converts A's value to B's representation (keyword-only).
        to_a: Converts B's value to A's representation (keyword-only).

    Raises:
        SyncArgumentTypeError: ``b_name`` is not a string, or a transform is not callable.
        SyncArgumentError: ``b_name`` is empty, or only one transform is given.
    """

    b_name: str
    to_b: _Transform | None = field(default=None, kw_only=True)
    to_a: _Transform | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.b_name, str):
            raise SyncArgumentTypeError(
                f"b_name must be a str, got {self.b_name!r}", argument="b_name", value=self.b_name
            )
        if not self.b_name:
            raise SyncArgumentError("b_name must not be empty", argument="b_name", value="")
        for name, fn in (("to_b", self.to_b), ("to_a", self.to_a)):
            if fn is not None and not callable(fn):
                raise SyncArgumentTypeError(
                    f"{name} must be callable or None, got {fn!r}", argument=name, value=fn
                )
        if (self.to_b is None) != (self.to_a is None):
            given = "to_b" if self.to_a is None else "to_a"
            raise SyncArgumentError(
                f"to_b and to_a must be given together (only {given} was given for "
                f"{self.b_name!r}): values are compared in A's representation",
                argument=given,
                value=self.to_b if self.to_a is None else self.to_a,
            )


@dataclass(frozen=True, slots=True, init=False)
class SyncConflict:
    """A field whose two values the planner will not reconcile on its own.

    Positional construction is the seed's: ``SyncConflict(field_name, value_a, value_b,
    record_id, last_sync_value=None, detected_at=None, system_a_modified_at=None,
    system_b_modified_at=None)``. ``detected_at`` defaults to the current UTC time.

    In a conflict produced by ``SyncBoundary.plan()``, ``field_name`` is A's name and
    every value is in A's representation (B's value after ``to_a``); a missing field
    is ``ABSENT``.

    Args:
        baseline_known: Keyword-only. Whether ``last_sync_value`` is a real baseline.
            When omitted it is inferred as ``last_sync_value is not None`` (the seed's
            meaning), so pass ``baseline_known=True`` for a baseline that was None.
            When it is False, ``last_sync_value`` must be None.
        reason: Keyword-only. Why the field went to review; None when built by hand.

    Raises:
        SyncArgumentError: ``baseline_known=False`` with a ``last_sync_value``.
        SyncArgumentTypeError: a time is not a datetime, naive and aware times are
            mixed, or ``reason`` is not a ``ConflictReason``.
    """

    field_name: str
    value_a: Any
    value_b: Any
    record_id: str
    last_sync_value: Any
    detected_at: datetime
    system_a_modified_at: datetime | None
    system_b_modified_at: datetime | None
    baseline_known: bool
    reason: ConflictReason | None

    # The positional parameters are the seed API's, kept for source compatibility.
    def __init__(  # noqa: PLR0917
        self,
        field_name: str,
        value_a: Any,
        value_b: Any,
        record_id: str,
        last_sync_value: Any = None,
        detected_at: datetime | None = None,
        system_a_modified_at: datetime | None = None,
        system_b_modified_at: datetime | None = None,
        *,
        baseline_known: bool | None = None,
        reason: ConflictReason | None = None,
    ) -> None:
        if baseline_known is None:
            baseline_known = last_sync_value is not None
        elif not isinstance(baseline_known, bool):
            raise SyncArgumentTypeError(
                f"baseline_known must be a bool or None, got {baseline_known!r}",
                argument="baseline_known",
                value=baseline_known,
            )
        elif not baseline_known and last_sync_value is not None:
            raise SyncArgumentError(
                f"last_sync_value must be None when baseline_known is False, "
                f"got {last_sync_value!r}",
                argument="last_sync_value",
                value=last_sync_value,
            )
        if reason is not None and not isinstance(reason, ConflictReason):
            raise SyncArgumentTypeError(
                f"reason must be a ConflictReason or None, got {reason!r}",
                argument="reason",
                value=reason,
            )
        for name, stamp in (
            ("detected_at", detected_at),
            ("system_a_modified_at", system_a_modified_at),
            ("system_b_modified_at", system_b_modified_at),
        ):
            if stamp is not None and not isinstance(stamp, datetime):
                raise SyncArgumentTypeError(
                    f"{name} must be a datetime or None, got {stamp!r}", argument=name, value=stamp
                )
        _require_comparable(
            [system_a_modified_at, system_b_modified_at], argument="system_b_modified_at"
        )
        setter = object.__setattr__
        setter(self, "field_name", field_name)
        setter(self, "value_a", value_a)
        setter(self, "value_b", value_b)
        setter(self, "record_id", record_id)
        setter(self, "last_sync_value", last_sync_value)
        setter(self, "detected_at", _utc_now() if detected_at is None else detected_at)
        setter(self, "system_a_modified_at", system_a_modified_at)
        setter(self, "system_b_modified_at", system_b_modified_at)
        setter(self, "baseline_known", baseline_known)
        setter(self, "reason", reason)

    def last_writer(self) -> RecordAuthority | None:
        """Return the system with the later modification time.

        Returns:
            ``RecordAuthority.SYSTEM_A`` or ``SYSTEM_B``; None when either time is
            missing or both are equal.
        """
        return _last_writer(self.system_a_modified_at, self.system_b_modified_at)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPlan:
    """What to write to each system for one record, and what needs a person.

    A plan is a value: its mappings are read-only and it holds no reference to the
    records it was computed from. Build one with ``SyncBoundary.plan()``.

    Attributes:
        record_id: The identifier passed to ``plan()``.
        updates_a: Field name (A's names) to the new value for system A.
        updates_b: Field name (B's names) to the new value for system B, already in
            B's representation.
        conflicts: Fields sent to review, in ``field_authority`` order. They are not
            in either update mapping.
        new_baseline: What to store and pass as ``last_synced`` next time, once both
            updates are applied: the agreed value of every synced field (A's names and
            representation); for a conflicting field, its previous baseline if one was
            known. Fields missing from both records, and fields outside the boundary,
            are left out.
    """

    record_id: str
    updates_a: Mapping[str, Any]
    updates_b: Mapping[str, Any]
    conflicts: tuple[SyncConflict, ...]
    new_baseline: Mapping[str, Any]

    def __post_init__(self) -> None:
        setter = object.__setattr__
        if not isinstance(self.record_id, str):
            raise SyncArgumentTypeError(
                f"record_id must be a str, got {self.record_id!r}",
                argument="record_id",
                value=self.record_id,
            )
        for name in ("updates_a", "updates_b", "new_baseline"):
            value = getattr(self, name)
            _require_mapping(name, value)
            setter(self, name, MappingProxyType(dict(value)))
        conflicts: object = self.conflicts
        if not isinstance(conflicts, Iterable) or not all(
            isinstance(item, SyncConflict) for item in conflicts
        ):
            raise SyncArgumentTypeError(
                f"conflicts must be an iterable of SyncConflict, got {conflicts!r}",
                argument="conflicts",
                value=conflicts,
            )
        setter(self, "conflicts", tuple(self.conflicts))

    def __reduce__(self) -> tuple[Any, ...]:
        # MappingProxyType cannot be pickled; rebuild from plain dicts instead.
        return (
            partial(
                SyncPlan,
                record_id=self.record_id,
                updates_a=dict(self.updates_a),
                updates_b=dict(self.updates_b),
                conflicts=self.conflicts,
                new_baseline=dict(self.new_baseline),
            ),
            (),
        )

    @property
    def is_empty(self) -> bool:
        """True when the plan has no updates for either system and no conflicts."""
        return not self.updates_a and not self.updates_b and not self.conflicts

    def apply(
        self, record_a: Mapping[str, Any], record_b: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return copies of both records with the updates applied.

        The arguments are not modified; conflicting fields keep their current values.

        Raises:
            SyncArgumentTypeError: a record is not a mapping.
        """
        _require_mapping("record_a", record_a)
        _require_mapping("record_b", record_b)
        new_a = dict(record_a)
        new_a.update(self.updates_a)
        new_b = dict(record_b)
        new_b.update(self.updates_b)
        return new_a, new_b


class _Route(NamedTuple):
    """One synced field, resolved at construction so that plan() does no lookups."""

    a_name: str
    b_name: str
    authority: RecordAuthority
    to_a: _Transform | None
    to_b: _Transform | None


# ---------------------------------------------------------------------------
# Implementation helpers
# ---------------------------------------------------------------------------


def _utc_now() -> datetime:
    """Return the current time in UTC (the default clock)."""
    return datetime.now(timezone.utc)


def _same(left: Any, right: Any) -> bool:
    """Value equality in which two NaNs are the same value, so that plans converge."""
    if left is right or left == right:
        return True
    # NaN is the only float unequal to itself.
    return (
        isinstance(left, float)
        and isinstance(right, float)
        and left != left  # noqa: PLR0124
        and right != right  # noqa: PLR0124
    )


def _edited(value: Any, base: Any) -> bool:
    """Whether a non-authoritative side may have edited the field since the baseline.

    With a baseline, any departure from it is an edit. Without one, a value that differs
    from the authoritative side's might be an edit (so it is never dropped silently);
    a missing field is not.
    """
    if base is ABSENT:
        return value is not ABSENT
    return not _same(value, base)


def _last_writer(
    modified_a: datetime | None, modified_b: datetime | None
) -> RecordAuthority | None:
    """Return the later writer, or None on a missing time or a tie."""
    if modified_a is None or modified_b is None:
        return None
    if modified_a > modified_b:
        return RecordAuthority.SYSTEM_A
    if modified_b > modified_a:
        return RecordAuthority.SYSTEM_B
    return None


def _require_mapping(argument: str, value: object) -> None:
    if not isinstance(value, Mapping):
        raise SyncArgumentTypeError(
            f"{argument} must be a mapping, got {type(value).__name__}: {value!r}",
            argument=argument,
            value=value,
        )


def _require_comparable(stamps: Iterable[datetime | None], *, argument: str) -> None:
    """Refuse a mix of naive and aware datetimes, which Python cannot order."""
    kinds = {stamp.utcoffset() is None for stamp in stamps if stamp is not None}
    if len(kinds) > 1:
        raise SyncArgumentTypeError(
            "modification times mix naive and aware datetimes, which cannot be compared",
            argument=argument,
            value=None,
        )


def _check_stamps(argument: str, stamps: object) -> list[datetime]:
    """Validate a ``modified_a``/``modified_b`` argument; return the datetimes in it."""
    if stamps is None:
        return []
    if isinstance(stamps, datetime):
        return [stamps]
    if not isinstance(stamps, Mapping):
        raise SyncArgumentTypeError(
            f"{argument} must be a datetime, a mapping of field name to datetime, or None, "
            f"got {stamps!r}",
            argument=argument,
            value=stamps,
        )
    found: list[datetime] = []
    for key, stamp in stamps.items():
        if isinstance(stamp, datetime):
            found.append(stamp)
        elif stamp is not None:
            raise SyncArgumentTypeError(
                f"{argument}[{key!r}] must be a datetime or None, got {stamp!r}",
                argument=argument,
                value=stamp,
                field=key if isinstance(key, str) else None,
            )
    return found


def _stamp_for(stamps: _Stamps, name: str) -> datetime | None:
    if stamps is None or isinstance(stamps, datetime):
        return stamps
    return stamps.get(name)


def _transform(fn: _Transform | None, value: Any, *, field: str, direction: str) -> Any:
    """Apply a user transform; wrap whatever it raises in a TransformError."""
    if fn is None:
        return value
    try:
        return fn(value)
    except Exception as exc:
        raise TransformError(
            f"{direction} transform for field {field!r} raised {type(exc).__name__}: {exc}",
            field=field,
            direction=direction,
        ) from exc


def _merge(fn: _Merge, name: str, value_a: Any, value_b: Any, baseline: Any) -> Any:
    """Call the user's merge callable; wrap whatever it raises in a MergeError."""
    try:
        return fn(name, value_a, value_b, baseline)
    except Exception as exc:
        raise MergeError(
            f"merge callable for field {name!r} raised {type(exc).__name__}: {exc}", field=name
        ) from exc


# ---------------------------------------------------------------------------
# Construction-time validation for SyncBoundary
# ---------------------------------------------------------------------------


def _validate_authority(
    field_authority: Mapping[str, RecordAuthority] | None,
) -> dict[str, RecordAuthority]:
    if field_authority is None:
        return {}
    _require_mapping("field_authority", field_authority)
    result: dict[str, RecordAuthority] = {}
    for key, owner in field_authority.items():
        if not isinstance(key, str):
            raise SyncArgumentTypeError(
                f"field_authority keys must be str, got {key!r}",
                argument="field_authority",
                value=key,
            )
        if not isinstance(owner, RecordAuthority):
            raise SyncArgumentTypeError(
                f"field_authority[{key!r}] must be a RecordAuthority, got {owner!r}",
                argument="field_authority",
                value=owner,
                field=key,
            )
        result[key] = owner
    return result


def _validate_excluded(excluded_fields: Iterable[str] | None) -> frozenset[str]:
    if excluded_fields is None:
        return frozenset()
    if isinstance(excluded_fields, (str, bytes)) or not isinstance(excluded_fields, Iterable):
        raise SyncArgumentTypeError(
            f"excluded_fields must be a collection of field names, got {excluded_fields!r}",
            argument="excluded_fields",
            value=excluded_fields,
        )
    names = tuple(excluded_fields)
    for name in names:
        if not isinstance(name, str):
            raise SyncArgumentTypeError(
                f"excluded_fields entries must be str, got {name!r}",
                argument="excluded_fields",
                value=name,
            )
    return frozenset(names)


def _validate_field_map(
    field_map: Mapping[str, str | FieldMapping] | None,
    authority: Mapping[str, RecordAuthority],
    excluded: frozenset[str],
) -> dict[str, FieldMapping]:
    if field_map is None:
        field_map = {}
    _require_mapping("field_map", field_map)
    result: dict[str, FieldMapping] = {}
    for key, target in field_map.items():
        if not isinstance(key, str):
            raise SyncArgumentTypeError(
                f"field_map keys must be str, got {key!r}", argument="field_map", value=key
            )
        if key not in authority and key not in excluded:
            raise SyncArgumentError(
                f"field_map key {key!r} is neither in field_authority nor in excluded_fields",
                argument="field_map",
                value=key,
                field=key,
            )
        if isinstance(target, FieldMapping):
            result[key] = target
        elif isinstance(target, str):
            if not target:
                raise SyncArgumentError(
                    f"field_map[{key!r}] must not be empty",
                    argument="field_map",
                    value=target,
                    field=key,
                )
            result[key] = FieldMapping(target)
        else:
            raise SyncArgumentTypeError(
                f"field_map[{key!r}] must be a str or a FieldMapping, got {target!r}",
                argument="field_map",
                value=target,
                field=key,
            )
    owners: dict[str, str] = {}
    for a_name in [*authority, *(key for key in result if key not in authority)]:
        mapping = result.get(a_name)
        b_name = a_name if mapping is None else mapping.b_name
        if b_name in owners:
            raise SyncArgumentError(
                f"field_map gives B name {b_name!r} to both {owners[b_name]!r} and {a_name!r}",
                argument="field_map",
                value=b_name,
                field=a_name,
            )
        owners[b_name] = a_name
    return result


def _validate_policy(shared_policy: object) -> SharedPolicy | _Merge:
    if isinstance(shared_policy, SharedPolicy):
        return shared_policy
    if isinstance(shared_policy, str):
        for member in SharedPolicy:
            if member.value == shared_policy:
                return member
        known = ", ".join(repr(member.value) for member in SharedPolicy)
        raise SyncArgumentError(
            f"shared_policy {shared_policy!r} is unknown; use one of {known} or a merge callable",
            argument="shared_policy",
            value=shared_policy,
        )
    if callable(shared_policy):
        return shared_policy
    raise SyncArgumentTypeError(
        f"shared_policy must be a SharedPolicy or a merge callable, got {shared_policy!r}",
        argument="shared_policy",
        value=shared_policy,
    )


# ---------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class SyncBoundary:
    """The synchronization contract between two systems for one record type.

    It says which fields are synced, which system is authoritative for each, how a
    field is named and represented in system B, and how two-sided edits of shared
    fields are settled. ``plan()`` turns one record pair plus the stored baseline
    into a ``SyncPlan``; it performs no I/O.

    A boundary is immutable configuration: ``field_authority`` and ``field_map`` are
    read-only mappings and ``excluded_fields`` is a frozenset (the seed used a mutable
    dict and set). ``plan()`` and every other method are pure functions of their
    arguments and this configuration, so one boundary can be shared by any number of
    threads without locking. The only outside calls are the transforms, the merge
    callable and the clock you supply.

    Args:
        record_type: A name for the record type, e.g. ``"contact"``.
        system_a_id: Identifier of system A, e.g. ``"crm"``.
        system_b_id: Identifier of system B, e.g. ``"erp"``.
        field_authority: A's field name to the authoritative system. Only these
            fields are synced, in this order.
        excluded_fields: A's field names that are never synced; exclusion wins over
            ``field_authority`` and ``field_map``.
        allow_system_b_override: When True, a B edit (since the baseline) of a
            ``SYSTEM_A`` field goes to review instead of being overwritten.
        allow_system_a_override: Keyword-only; the same for A edits of ``SYSTEM_B``
            fields.
        field_map: Keyword-only. A's field name to B's name (a str) or to a
            ``FieldMapping`` with transforms. Unmapped fields have the same name and
            representation in both systems. Every key must be in ``field_authority``
            or ``excluded_fields``, and no two fields may share a B name.
        shared_policy: Keyword-only. ``SharedPolicy.LAST_WRITER_WINS`` (default),
            ``SharedPolicy.REVIEW`` (or either's string value), or a merge callable
            ``(field, value_a, value_b, baseline) -> value`` whose result is written to
            both systems; values are in A's representation and ``baseline`` is
            ``ABSENT`` when unknown. It is never called when either side is ``ABSENT``.
        clock: Keyword-only. Returns the current time for ``SyncConflict.detected_at``;
            defaults to UTC now. ``plan()`` calls it at most once.

    Raises:
        SyncArgumentTypeError: an argument or an entry in it has the wrong type.
        SyncArgumentError: a ``field_map`` key the boundary does not know, a B name
            used twice, or an unknown ``shared_policy`` string.
    """

    record_type: str
    system_a_id: str
    system_b_id: str
    field_authority: Mapping[str, RecordAuthority]
    excluded_fields: frozenset[str]
    allow_system_b_override: bool
    allow_system_a_override: bool
    field_map: Mapping[str, FieldMapping]
    shared_policy: SharedPolicy | _Merge
    clock: Callable[[], datetime]
    _routes: tuple[_Route, ...] = field(init=False, repr=False, compare=False)

    # The positional parameters are the seed API's, kept for source compatibility.
    def __init__(  # noqa: PLR0917
        self,
        record_type: str,
        system_a_id: str,
        system_b_id: str,
        field_authority: Mapping[str, RecordAuthority] | None = None,
        excluded_fields: Iterable[str] | None = None,
        # Positional and boolean because the seed API had it so.
        allow_system_b_override: bool = False,  # noqa: FBT001, FBT002
        *,
        allow_system_a_override: bool = False,
        field_map: Mapping[str, str | FieldMapping] | None = None,
        shared_policy: SharedPolicy | _Merge = SharedPolicy.LAST_WRITER_WINS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        for name, text in (
            ("record_type", record_type),
            ("system_a_id", system_a_id),
            ("system_b_id", system_b_id),
        ):
            if not isinstance(text, str):
                raise SyncArgumentTypeError(
                    f"{name} must be a str, got {text!r}", argument=name, value=text
                )
        for name, flag in (
            ("allow_system_b_override", allow_system_b_override),
            ("allow_system_a_override", allow_system_a_override),
        ):
            if not isinstance(flag, bool):
                raise SyncArgumentTypeError(
                    f"{name} must be a bool, got {flag!r}", argument=name, value=flag
                )
        authority = _validate_authority(field_authority)
        excluded = _validate_excluded(excluded_fields)
        mappings = _validate_field_map(field_map, authority, excluded)
        policy = _validate_policy(shared_policy)
        if not callable(clock):
            raise SyncArgumentTypeError(
                f"clock must be callable, got {clock!r}", argument="clock", value=clock
            )
        routes = []
        for a_name, owner in authority.items():
            if a_name in excluded:
                continue
            mapping = mappings.get(a_name)
            if mapping is None:
                routes.append(_Route(a_name, a_name, owner, None, None))
            else:
                routes.append(_Route(a_name, mapping.b_name, owner, mapping.to_a, mapping.to_b))

        setter = object.__setattr__
        setter(self, "record_type", record_type)
        setter(self, "system_a_id", system_a_id)
        setter(self, "system_b_id", system_b_id)
        setter(self, "field_authority", MappingProxyType(authority))
        setter(self, "excluded_fields", excluded)
        setter(self, "allow_system_b_override", allow_system_b_override)
        setter(self, "allow_system_a_override", allow_system_a_override)
        setter(self, "field_map", MappingProxyType(mappings))
        setter(self, "shared_policy", policy)
        setter(self, "clock", clock)
        setter(self, "_routes", tuple(routes))

    def __reduce__(self) -> tuple[Any, ...]:
        # MappingProxyType cannot be pickled; rebuild through __init__ instead.
        return (
            partial(
                SyncBoundary,
                record_type=self.record_type,
                system_a_id=self.system_a_id,
                system_b_id=self.system_b_id,
                field_authority=dict(self.field_authority),
                excluded_fields=set(self.excluded_fields),
                allow_system_b_override=self.allow_system_b_override,
                allow_system_a_override=self.allow_system_a_override,
                field_map=dict(self.field_map),
                shared_policy=self.shared_policy,
                clock=self.clock,
            ),
            (),
        )

    # -- seed API -----------------------------------------------------------

    def authority_for(self, field_name: str) -> RecordAuthority | None:
        """Return the authoritative system for a field of A.

        Returns:
            The field's ``RecordAuthority``; None when the field is excluded or not in
            ``field_authority``.
        """
        if field_name in self.excluded_fields:
            return None
        return self.field_authority.get(field_name)

    def is_synced(self, field_name: str) -> bool:
        """Return True when the field is in ``field_authority`` and not excluded."""
        return field_name not in self.excluded_fields and field_name in self.field_authority

    def synced_fields(self) -> list[str]:
        """Return the synced field names (A's names), in ``field_authority`` order."""
        return [route.a_name for route in self._routes]

    def fields_owned_by(self, authority: RecordAuthority) -> list[str]:
        """Return the synced fields whose authority is ``authority``, in order."""
        return [route.a_name for route in self._routes if route.authority == authority]

    # The positional parameters are the seed API's, kept for source compatibility.
    def detect_conflict(  # noqa: PLR0917
        self,
        field_name: str,
        value_a: Any,
        value_b: Any,
        record_id: str,
        last_sync_value: Any = ABSENT,
        system_a_modified_at: datetime | None = None,
        system_b_modified_at: datetime | None = None,
    ) -> SyncConflict | None:
        """Tell whether both systems changed a field since the last sync.

        This is the seed's two-sided-edit check; it ignores authority and mapping
        (use ``plan()`` for those). Leaving ``last_sync_value`` out (or passing
        ``ABSENT``) means no baseline is known; an explicit None is a real baseline.

        Returns:
            None when the field is not synced or the values are equal, or when a
            baseline is known and at most one side differs from it. Otherwise a
            ``SyncConflict`` with reason ``BOTH_CHANGED`` (baseline known) or
            ``NO_BASELINE``; ``detected_at`` comes from the boundary's clock.
        """
        if not self.is_synced(field_name):
            return None
        if _same(value_a, value_b):
            return None
        known = last_sync_value is not ABSENT
        if known and (_same(last_sync_value, value_a) or _same(last_sync_value, value_b)):
            return None
        return SyncConflict(
            field_name,
            value_a,
            value_b,
            record_id,
            last_sync_value if known else None,
            self.clock(),
            system_a_modified_at,
            system_b_modified_at,
            baseline_known=known,
            reason=ConflictReason.BOTH_CHANGED if known else ConflictReason.NO_BASELINE,
        )

    # -- planning -----------------------------------------------------------

    def b_name_for(self, field_name: str) -> str | None:
        """Return the name system B uses for a synced field of A, or None if unsynced."""
        for route in self._routes:
            if route.a_name == field_name:
                return route.b_name
        return None

    def plan(
        self,
        record_a: Mapping[str, Any],
        record_b: Mapping[str, Any],
        last_synced: Mapping[str, Any] | None = None,
        *,
        record_id: str = "",
        modified_a: datetime | Mapping[str, datetime | None] | None = None,
        modified_b: datetime | Mapping[str, datetime | None] | None = None,
    ) -> SyncPlan:
        """Plan the sync of one record: updates for each system and fields for review.

        Each synced field is compared in A's representation (B's value goes through
        ``to_a``) against the baseline, and decided by its authority:

        - ``SYSTEM_A``: B gets A's value when they differ. With
          ``allow_system_b_override``, a B edit since the baseline goes to review
          (``B_OVERRIDE``) instead. ``SYSTEM_B`` is the mirror image.
        - ``MANUAL``: any difference goes to review (``MANUAL_AUTHORITY``).
        - ``SHARED``: a side that still holds the baseline value is unchanged, so the
          other side's edit is copied over. That is also how echoes are ignored: a
          value sync wrote earlier equals the baseline. Without a baseline, a field
          missing on one side is filled from the other. When both sides changed, or
          no baseline is known and both have values, ``shared_policy`` decides.

        A field missing from a record is ``ABSENT``: equal only to another missing
        field, never to None. A plan never deletes: an outcome that would remove a
        field from a system goes to review (``ConflictReason.ABSENT``) instead.

        Args:
            record_a: The record in system A, keyed by A's field names.
            record_b: The record in system B, keyed by B's field names.
            last_synced: The previous plan's ``new_baseline`` (A's names and
                representation); a missing key means no baseline for that field.
            record_id: Copied into the plan and its conflicts.
            modified_a: When A last modified the fields: one datetime for the whole
                record, or a mapping of A's field names to datetimes. Used only by
                last-writer-wins.
            modified_b: The same for B, keyed by B's field names.

        Returns:
            The ``SyncPlan``. The arguments are not modified.

        Raises:
            SyncArgumentTypeError: a record or baseline is not a mapping, ``record_id``
                is not a str, or a modification time is not a datetime (or mixes
                naive and aware datetimes).
            TransformError: a transform raised.
            MergeError: the merge callable raised.
        """
        _require_mapping("record_a", record_a)
        _require_mapping("record_b", record_b)
        if last_synced is not None:
            _require_mapping("last_synced", last_synced)
        if not isinstance(record_id, str):
            raise SyncArgumentTypeError(
                f"record_id must be a str, got {record_id!r}", argument="record_id", value=record_id
            )
        stamps = _check_stamps("modified_a", modified_a)
        _require_comparable(stamps, argument="modified_a")
        _require_comparable(stamps + _check_stamps("modified_b", modified_b), argument="modified_b")

        updates_a: dict[str, Any] = {}
        updates_b: dict[str, Any] = {}
        baseline: dict[str, Any] = {}
        conflicts: list[SyncConflict] = []
        detected_at: datetime | None = None
        for route in self._routes:
            name = route.a_name
            value_a = record_a.get(name, ABSENT)
            value_b = record_b.get(route.b_name, ABSENT)
            if value_b is not ABSENT:
                value_b = _transform(route.to_a, value_b, field=name, direction="to_a")
            base = ABSENT if last_synced is None else last_synced.get(name, ABSENT)
            stamp_a = _stamp_for(modified_a, name)
            stamp_b = _stamp_for(modified_b, route.b_name)

            value, reason = self._decide(
                route, value_a, value_b, base, stamp_a=stamp_a, stamp_b=stamp_b
            )
            if reason is None and value is ABSENT:
                if value_a is ABSENT and value_b is ABSENT:
                    continue  # Missing on both sides: nothing to do, nothing to remember.
                reason = ConflictReason.ABSENT
            if reason is not None:
                if detected_at is None:
                    detected_at = self.clock()
                known = base is not ABSENT
                conflicts.append(
                    SyncConflict(
                        name,
                        value_a,
                        value_b,
                        record_id,
                        base if known else None,
                        detected_at,
                        stamp_a,
                        stamp_b,
                        baseline_known=known,
                        reason=reason,
                    )
                )
                if known:
                    baseline[name] = base
                continue
            if not _same(value, value_a):
                updates_a[name] = value
            if not _same(value, value_b):
                updates_b[route.b_name] = _transform(
                    route.to_b, value, field=name, direction="to_b"
                )
            baseline[name] = value

        return SyncPlan(
            record_id=record_id,
            updates_a=updates_a,
            updates_b=updates_b,
            conflicts=tuple(conflicts),
            new_baseline=baseline,
        )

    def _decide(
        self,
        route: _Route,
        value_a: Any,
        value_b: Any,
        base: Any,
        *,
        stamp_a: datetime | None,
        stamp_b: datetime | None,
    ) -> tuple[Any, ConflictReason | None]:
        """Return ``(value both sides should hold, None)`` or ``(None, review reason)``."""
        if _same(value_a, value_b):
            return value_a, None
        known = base is not ABSENT
        authority = route.authority
        if authority is RecordAuthority.MANUAL:
            return None, ConflictReason.MANUAL_AUTHORITY
        if authority is RecordAuthority.SYSTEM_A:
            if self.allow_system_b_override and _edited(value_b, base):
                return None, ConflictReason.B_OVERRIDE
            return value_a, None
        if authority is RecordAuthority.SYSTEM_B:
            if self.allow_system_a_override and _edited(value_a, base):
                return None, ConflictReason.A_OVERRIDE
            return value_b, None
        # SHARED: three-way against the baseline.
        if known:
            if _same(value_a, base):
                return value_b, None
            if _same(value_b, base):
                return value_a, None
        elif value_a is ABSENT:
            return value_b, None
        elif value_b is ABSENT:
            return value_a, None
        policy = self.shared_policy
        if policy is SharedPolicy.REVIEW:
            return None, ConflictReason.BOTH_CHANGED if known else ConflictReason.NO_BASELINE
        if policy is SharedPolicy.LAST_WRITER_WINS:
            if stamp_a is None or stamp_b is None:
                return None, ConflictReason.NO_TIMESTAMPS
            winner = _last_writer(stamp_a, stamp_b)
            if winner is None:
                return None, ConflictReason.TIE
            return (value_a if winner is RecordAuthority.SYSTEM_A else value_b), None
        if value_a is ABSENT or value_b is ABSENT:
            return None, ConflictReason.ABSENT
        return _merge(policy, route.a_name, value_a, value_b, base), None
