# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Debezium change events read safely: tombstones, four connectors, stable ids, stream positions.

Verdict:
    Use it when a consumer reads Debezium change events (from Kafka, a file, an HTTP sink,
    Debezium Server) and needs every record of a real stream turned into a typed, immutable
    value: tombstones, truncates, logical-decoding messages and transaction markers
    included, with an idempotency key that is the same every time the record is read and a
    position that orders the events of one connector.
    Do not use it when you need a Kafka client, offset storage, schema-registry formats
    (Avro, Protobuf) or exactly-once processing by itself: the module parses and
    describes records, it does not fetch them or remember which ones it has seen (pair it
    with an idempotent consumer keyed on ``event_id``).

Prevents:
    - Crashes on ordinary records: a tombstone (``None`` after a delete), ``"source": null``,
      ``"transaction": null``, a truncate or a message event is a result, not an exception.
    - Duplicate side effects: ``event_id`` is derived from the connector, the server and
      the source position, so a redelivered record gets the same id in every process.
    - Out-of-order application: ``position`` orders events in stream order (PostgreSQL by
      commit then LSN, not by LSN alone) and refuses to compare two different streams.
    - Silent loss: timestamps stay exact integers (``ts_ns`` to the nanosecond); MongoDB
      Extended JSON keeps 64-bit integers, decimals, dates and binary data; one bad line
      in a file is reported with its number and the good lines are still read.
    - Leaking row values: ``to_audit_dict()`` lists changed field names only, unless values
      are asked for, and then masks the fields you name.
    - Invalid CloudEvents: extension names are lower-case letters and digits of at most 20
      characters, unlike those Debezium's own converter writes.

References:
    - Debezium connector documentation for PostgreSQL, MySQL, SQL Server and MongoDB
      (debezium.io/documentation/reference/stable/connectors/), the New Record State
      Extraction SMT (transformations/event-flattening) and the CloudEvents converter
      (integrations/cloudevents).
    - MongoDB Extended JSON v2 specification (github.com/mongodb/specifications,
      source/extended-json).
    - CloudEvents 1.0.2: core specification (attribute naming) and JSON event format.

Exceptions:
    CDCError (ValueError)                       root of everything this module raises
    +-- CDCParseError                           a record breaks its format; .path, .rule, .line
    +-- IncomparablePositionError (TypeError)   positions of two streams compared; .left, .right

    Configuration mistakes (an unknown ``delete_handling``, a non-callable ``on_error``)
    raise ``ValueError`` or ``TypeError`` naming the argument.

Example:
    >>> value = {
    ...     "op": "u",
    ...     "before": {"id": 7, "email": "old@example.com", "plan": "free"},
    ...     "after": {"id": 7, "email": "new@example.com", "plan": "free"},
    ...     "source": {
    ...         "connector": "postgresql",
    ...         "name": "shop",
    ...         "db": "shop",
    ...         "schema": "public",
    ...         "table": "customers",
    ...         "lsn": 24023128,
    ...         "txId": 556,
    ...         "ts_ms": 1559033904863,
    ...     },
    ... }
    >>> event = CDCEvent.from_debezium(value)
    >>> event.operation, sorted(event.changed_fields())
    (<CDCOperation.UPDATE: 'UPDATE'>, ['email'])
    >>> event.event_id == CDCEvent.from_debezium(value).event_id
    True
    >>> str(event.position)
    'postgresql/shop@24023128,24023128'
    >>> event.to_audit_dict()["changed_fields"]
    ['email']
    >>> tombstone = CDCEvent.from_debezium(None, key={"id": 7})
    >>> tombstone.operation, tombstone.key
    (<CDCOperation.TOMBSTONE: 'TOMBSTONE'>, {'id': 7})
    >>> decode_extended_json('{"n": {"$numberLong": "9007199254740993"}}')
    {'n': 9007199254740993}
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, FrozenInstanceError, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache

# typing, json, base64, decimal, uuid, hashlib and re load only for the type checker or on
# first use: importing this module stays cheap. See docs/explanation/architecture.md.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterator
    from decimal import Decimal
    from types import ModuleType
    from typing import Any, Final, Literal
    from uuid import UUID

__all__ = [
    "ABSENT",
    "DROPPED",
    "BsonTimestamp",
    "CDCError",
    "CDCEvent",
    "CDCMarker",
    "CDCMessage",
    "CDCOperation",
    "CDCParseError",
    "CDCPosition",
    "CDCSourceMetadata",
    "CDCTransaction",
    "CDCTransactionEvent",
    "CDCUpdateDescription",
    "DeleteHandling",
    "IncomparablePositionError",
    "SnapshotMarker",
    "TransactionStatus",
    "decode_extended_json",
    "iter_jsonl",
    "parse_record",
]

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class CDCError(ValueError):
    """Root of every error this module raises on bad input or an impossible request."""


class CDCParseError(CDCError):
    """A record value, key, line or CloudEvent breaks its format.

    Attributes:
        path: where the bad value is, as dotted names from the top of what was parsed
            (``"payload.source.lsn"``, ``"after._id.$numberLong"``, ``"value"``).
        rule: the rule that was broken, in words.
        line: the 1-based line number when the record came from :func:`iter_jsonl`,
            else ``None``.
    """

    def __init__(self, path: str, rule: str, *, line: int | None = None) -> None:
        self.path = path
        self.rule = rule
        self.line = line
        where = "" if line is None else f"line {line}: "
        ValueError.__init__(self, f"{where}{path}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_parse_error, (self.path, self.rule, self.line))


def _rebuild_parse_error(path: str, rule: str, line: int | None) -> CDCParseError:
    return CDCParseError(path, rule, line=line)


class IncomparablePositionError(CDCError, TypeError):
    """Two positions that no stream order relates were compared.

    Positions order the events of one connector reading one server. Those of different
    connectors, servers, or of a connector whose order is unknown cannot be compared.

    Attributes:
        left: the position on the left of the comparison.
        right: the position on the right.
    """

    def __init__(self, left: CDCPosition, right: CDCPosition, reason: str) -> None:
        self.left = left
        self.right = right
        self.reason = reason
        ValueError.__init__(self, f"cannot order {left} and {right}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.left, self.right, self.reason))


# --------------------------------------------------------------------------------------
# Enums and markers
# --------------------------------------------------------------------------------------


class CDCOperation(enum.Enum):
    """What a record says happened. The first five members and values are the seed's."""

    INSERT = "INSERT"  # op "c"
    UPDATE = "UPDATE"  # op "u"
    DELETE = "DELETE"  # op "d"
    SNAPSHOT = "SNAPSHOT"  # op "r": a row read by an initial or incremental snapshot
    TRUNCATE = "TRUNCATE"  # op "t"
    MESSAGE = "MESSAGE"  # op "m": a PostgreSQL logical decoding message
    TOMBSTONE = "TOMBSTONE"  # a null record value after a delete (log compaction marker)

    @property
    def code(self) -> str | None:
        """Debezium's ``op`` letter (``"c"``, ``"u"``, ...); ``None`` for a tombstone."""
        return _OP_CODE[self]


_OPERATIONS = {
    "c": CDCOperation.INSERT,
    "u": CDCOperation.UPDATE,
    "d": CDCOperation.DELETE,
    "r": CDCOperation.SNAPSHOT,
    "t": CDCOperation.TRUNCATE,
    "m": CDCOperation.MESSAGE,
}
_OP_CODE: dict[CDCOperation, str | None] = {op: code for code, op in _OPERATIONS.items()}
_OP_CODE[CDCOperation.TOMBSTONE] = None
# Reading an enum member as a class attribute costs a metaclass lookup (~0.25 us here);
# the parser compares against these instead.
_MESSAGE = CDCOperation.MESSAGE
_SNAPSHOT = CDCOperation.SNAPSHOT


class SnapshotMarker(enum.Enum):
    """Debezium's ``source.snapshot``, normalised: a boolean or one of its strings."""

    FALSE = "false"  # streamed from the log (also: absent, null, false)
    TRUE = "true"  # read by a snapshot (also: true)
    FIRST = "first"
    FIRST_IN_DATA_COLLECTION = "first_in_data_collection"
    LAST_IN_DATA_COLLECTION = "last_in_data_collection"
    LAST = "last"
    INCREMENTAL = "incremental"

    @property
    def is_snapshot(self) -> bool:
        """True for every member but ``FALSE``."""
        return self is not SnapshotMarker.FALSE


class TransactionStatus(enum.Enum):
    """Which boundary a transaction metadata event marks."""

    BEGIN = "BEGIN"
    END = "END"


class DeleteHandling(enum.Enum):
    """How :meth:`CDCEvent.flatten` treats deletes and tombstones.

    The values are those of Debezium's ``delete.tombstone.handling.mode``.
    """

    DROP = "drop"
    TOMBSTONE = "tombstone"
    REWRITE = "rewrite"
    REWRITE_WITH_TOMBSTONE = "rewrite-with-tombstone"
    DELETE_TO_TOMBSTONE = "delete-to-tombstone"


class CDCMarker(enum.Enum):
    """Type of :data:`ABSENT` and :data:`DROPPED`, markers distinct from ``None``."""

    ABSENT = "ABSENT"
    DROPPED = "DROPPED"

    def __repr__(self) -> str:
        return self.value


ABSENT: Final = CDCMarker.ABSENT
"""In :meth:`CDCEvent.diff`: the field is not in that row image (or there is no image)."""

DROPPED: Final = CDCMarker.DROPPED
"""From :meth:`CDCEvent.flatten`: the record produces no output record at all."""

# --------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------
#
# The value classes are written by hand rather than with @dataclass(frozen=True,
# slots=True): the methods that decorator generates are compiled with exec() at import
# time, which cost ~2 ms per class, and a frozen dataclass's __init__ sets each field
# through object.__setattr__, which is the slowest way to fill an instance. Each class is
# still a dataclass to the dataclasses module (fields(), replace(), asdict(), match
# statements): @dataclass(init=False, repr=False, eq=False) only records the annotated
# fields and generates nothing. __init__, __repr__, __eq__, __hash__, immutability and
# pickling come from _Value and the classes themselves, with a frozen dataclass's
# behaviour. See "Speed and laziness" in docs/explanation/cdc_event.md.

_set_attribute = object.__setattr__  # how a frozen value sets its own slots
_new = object.__new__
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PENDING: Any = object()  # a lazily computed slot not computed yet
_NOW: Any = object()  # CDCEvent's captured_at default: the time of construction


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Value:
    """Immutable, slotted, compared and hashed by its fields, as a frozen dataclass is.

    Subclasses list their fields in ``_fields`` and the slots holding them, in the same
    order, in ``_slots`` (a lazily computed field's slot is its name with a leading
    underscore), those compared and shown by ``repr`` in ``_compared``, and those hashed
    in ``_hashed``.
    """

    __slots__ = ()
    _slots: tuple[str, ...] = ()
    _fields: tuple[str, ...] = ()
    _compared: tuple[str, ...] = ()
    _hashed: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._compared)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = self._compared
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in self._hashed))

    def __getstate__(self) -> tuple[Any, ...]:
        # Lazily computed fields are computed: a copy or a pickle holds finished values.
        return tuple(getattr(self, name) for name in self._fields)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        for slot, value in zip(self._slots, state, strict=True):
            _set_attribute(self, slot, value)


@dataclass(init=False, repr=False, eq=False)
class BsonTimestamp(_Value):
    """A MongoDB ``$timestamp``: seconds since the epoch and an ordinal within the second."""

    __slots__ = ("time", "increment")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = _hashed = ("time", "increment")

    time: int
    increment: int

    def __init__(self, time: int, increment: int) -> None:
        self.__setstate__((time, increment))

    def __lt__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, BsonTimestamp)  # noqa: S101 - for the type checker
        return (self.time, self.increment) < (other.time, other.increment)

    def __le__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, BsonTimestamp)  # noqa: S101 - for the type checker
        return (self.time, self.increment) <= (other.time, other.increment)

    def __gt__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, BsonTimestamp)  # noqa: S101 - for the type checker
        return (self.time, self.increment) > (other.time, other.increment)

    def __ge__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, BsonTimestamp)  # noqa: S101 - for the type checker
        return (self.time, self.increment) >= (other.time, other.increment)


@dataclass(init=False, repr=False, eq=False)
class CDCPosition(_Value):
    """Where an event sits in its connector's stream; compares in stream order.

    ``key`` holds integers whose tuple order is the stream order:

    - PostgreSQL: ``(commit, lsn)`` where ``commit`` is the first element of
      ``source.sequence`` (the LSN of the last committed transaction) when present, else
      the ``lsn``; events are streamed in commit order, so LSN alone is not stream order.
    - MySQL and MariaDB: ``(binlog file number, pos, row)``.
    - SQL Server: ``(commit_lsn as three integers, change_lsn as three, event_serial_no)``;
      a missing ``change_lsn`` or serial number counts as -1.
    - MongoDB: ``(ts_ms, ord)``, the cluster time and the ordinal within its second.

    An empty ``key`` means no order is known (an unknown connector, or a record without
    its position fields); such a position still compares equal or not, but ``<`` raises.

    Attributes:
        engine: Debezium's ``source.connector`` (``"postgresql"``, ``"mysql"``, ...).
        server: Debezium's ``source.name``, the logical server name (topic prefix).
        key: the ordering integers, or ``()``.

    >>> a = CDCPosition("mysql", "db1", (3, 154, 0))
    >>> b = CDCPosition("mysql", "db1", (3, 154, 1))
    >>> a < b, max(a, b) is b
    (True, True)
    """

    __slots__ = ("engine", "server", "key")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = _hashed = ("engine", "server", "key")

    engine: str
    server: str
    key: tuple[int, ...]

    def __init__(self, engine: str, server: str, key: tuple[int, ...] = ()) -> None:
        self.__setstate__((engine, server, key))

    @property
    def ordered(self) -> bool:
        """True when the position can be compared with ``<`` (its key is not empty)."""
        return bool(self.key)

    def _keys(self, other: CDCPosition) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if self.engine != other.engine:
            raise IncomparablePositionError(self, other, "they come from different connectors")
        if self.server != other.server:
            raise IncomparablePositionError(self, other, "they come from different servers")
        if not self.key or not other.key:
            raise IncomparablePositionError(
                self, other, "a position without its source fields has no stream order"
            )
        return self.key, other.key

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, CDCPosition):
            return NotImplemented
        left, right = self._keys(other)
        return left < right

    def __le__(self, other: object) -> bool:
        if not isinstance(other, CDCPosition):
            return NotImplemented
        left, right = self._keys(other)
        return left <= right

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, CDCPosition):
            return NotImplemented
        left, right = self._keys(other)
        return left > right

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, CDCPosition):
            return NotImplemented
        left, right = self._keys(other)
        return left >= right

    def __str__(self) -> str:
        where = ",".join(str(part) for part in self.key) if self.key else "unordered"
        return f"{self.engine or 'unknown'}/{self.server or 'unknown'}@{where}"


@dataclass(init=False, repr=False, eq=False)
class CDCTransaction(_Value):
    """The ``transaction`` block of a change event (transaction metadata enabled).

    Attributes:
        id: the transaction id (PostgreSQL ``txId:LSN``, MySQL GTID, ...).
        total_order: the event's place among all events of the transaction (from 1).
        data_collection_order: its place among the transaction's events for its table.
    """

    __slots__ = ("id", "total_order", "data_collection_order")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = _hashed = ("id", "total_order", "data_collection_order")

    id: str
    total_order: int | None
    data_collection_order: int | None

    def __init__(
        self,
        id: str,  # noqa: A002 - the field's name
        total_order: int | None = None,
        data_collection_order: int | None = None,
    ) -> None:
        self.__setstate__((id, total_order, data_collection_order))


@dataclass(init=False, repr=False, eq=False)
class CDCMessage(_Value):
    """A PostgreSQL logical decoding message (``pg_logical_emit_message``), op ``m``.

    Attributes:
        prefix: the prefix the application chose (also the record key).
        content: the message content, Base64-decoded.
    """

    __slots__ = ("prefix", "content")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = _hashed = ("prefix", "content")

    prefix: str
    content: bytes

    def __init__(self, prefix: str, content: bytes) -> None:
        self.__setstate__((prefix, content))


@dataclass(init=False, repr=False, eq=False)
class CDCUpdateDescription(_Value):
    """MongoDB's ``updateDescription``: what an update changed, without a full document.

    Attributes:
        updated_fields: new values by field path (dotted for nested fields), decoded
            from Extended JSON (not hashed: the value hashes by the other two).
        removed_fields: paths of the fields the update removed.
        truncated_arrays: ``(path, new_size)`` for each array the update shortened.
    """

    __slots__ = ("updated_fields", "removed_fields", "truncated_arrays")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = ("updated_fields", "removed_fields", "truncated_arrays")
    _hashed = ("removed_fields", "truncated_arrays")

    updated_fields: dict[str, Any]
    removed_fields: tuple[str, ...]
    truncated_arrays: tuple[tuple[str, int], ...]

    def __init__(
        self,
        updated_fields: dict[str, Any] | None = None,
        removed_fields: tuple[str, ...] = (),
        truncated_arrays: tuple[tuple[str, int], ...] = (),
    ) -> None:
        updated = {} if updated_fields is None else updated_fields
        self.__setstate__((updated, removed_fields, truncated_arrays))


_SOURCE_FIELDS = (
    "database",
    "schema",
    "table",
    "connector",
    "lsn",
    "server_id",
    "engine",
    "name",
    "version",
    "snapshot",
    "ts_ms",
    "ts_us",
    "ts_ns",
    "tx_id",
    "xmin",
    "sequence",
    "binlog_file",
    "binlog_pos",
    "binlog_row",
    "gtid",
    "thread",
    "query",
    "change_lsn",
    "commit_lsn",
    "event_serial_no",
    "replica_set",
    "ord",
    "fields",
)


class _SourceSlots:
    """The storage of CDCSourceMetadata, and of the _SourceDraft the parser fills."""

    __slots__ = (*_SOURCE_FIELDS, "_position")


@dataclass(init=False, repr=False, eq=False)
class CDCSourceMetadata(_SourceSlots, _Value):
    """The ``source`` block of a change event: where and when the change happened.

    The six positional fields are those of integration-automation-patterns 0.44.2, in its
    order and with its meaning; the rest are keyword-only.

    Attributes:
        database: ``source.db``.
        schema: ``source.schema`` (empty for MySQL and MongoDB).
        table: ``source.table``, or ``source.collection`` for MongoDB.
        connector: the CDC tool: always ``"debezium"`` for parsed records (the seed's
            meaning). Debezium's own ``source.connector`` is ``engine``.
        lsn: ``source.lsn`` as text (PostgreSQL), else ``None``.
        server_id: ``source.server_id`` as text (MySQL), else ``None``.
        engine: Debezium's ``source.connector``: ``"postgresql"``, ``"mysql"``,
            ``"mariadb"``, ``"sqlserver"``, ``"mongodb"``, or any other name.
        name: ``source.name``, the logical server name (topic prefix).
        version: ``source.version``, the Debezium version.
        snapshot: ``source.snapshot``, normalised.
        ts_ms, ts_us, ts_ns: when the change was made in the database, exact integers
            since the epoch (milli-, micro-, nanoseconds), as sent.
        tx_id, xmin, sequence: PostgreSQL ``txId``, ``xmin`` and ``sequence`` (the JSON
            text ``["<last commit LSN>", "<LSN>"]`` read into integers or ``None``).
        binlog_file, binlog_pos, binlog_row, gtid, thread, query: MySQL ``file``,
            ``pos``, ``row``, ``gtid``, ``thread`` and ``query``.
        change_lsn, commit_lsn, event_serial_no: SQL Server's.
        replica_set, ord: MongoDB ``rs`` and ``ord``.
        fields: every member of the source block as received, for any connector
            (treat it as read-only; not hashed).
        position: the stream position computed from the fields above (not compared,
            hashed or shown by ``repr``; computed on first use when parsed).
    """

    __slots__ = ()
    _slots = _SourceSlots.__slots__
    _fields = (*_SOURCE_FIELDS, "position")
    _compared = _SOURCE_FIELDS
    _hashed = _SOURCE_FIELDS[:-1]

    database: str
    schema: str
    table: str
    connector: str
    lsn: str | None
    server_id: str | None
    _: KW_ONLY
    engine: str
    name: str
    version: str
    snapshot: SnapshotMarker
    ts_ms: int | None
    ts_us: int | None
    ts_ns: int | None
    tx_id: int | None
    xmin: int | None
    sequence: tuple[int | None, ...] | None
    binlog_file: str | None
    binlog_pos: int | None
    binlog_row: int | None
    gtid: str | None
    thread: int | None
    query: str | None
    change_lsn: str | None
    commit_lsn: str | None
    event_serial_no: int | None
    replica_set: str | None
    ord: int | None
    fields: dict[str, Any]
    position: CDCPosition = field(init=False, repr=False, compare=False)

    def __init__(  # noqa: PLR0917 - the dataclass signature
        self,
        database: str,
        schema: str,
        table: str,
        connector: str = "unknown",
        lsn: str | None = None,
        server_id: str | None = None,
        *,
        engine: str = "",
        name: str = "",
        version: str = "",
        snapshot: SnapshotMarker = SnapshotMarker.FALSE,
        ts_ms: int | None = None,
        ts_us: int | None = None,
        ts_ns: int | None = None,
        tx_id: int | None = None,
        xmin: int | None = None,
        sequence: tuple[int | None, ...] | None = None,
        binlog_file: str | None = None,
        binlog_pos: int | None = None,
        binlog_row: int | None = None,
        gtid: str | None = None,
        thread: int | None = None,
        query: str | None = None,
        change_lsn: str | None = None,
        commit_lsn: str | None = None,
        event_serial_no: int | None = None,
        replica_set: str | None = None,
        ord: int | None = None,  # noqa: A002 - the field's name
        fields: dict[str, Any] | None = None,
    ) -> None:
        texts = (database, schema, table, connector, engine, name, version)
        for label, text in zip(_SOURCE_FIELDS[:4] + _SOURCE_FIELDS[6:9], texts, strict=True):
            if not isinstance(text, str):
                raise TypeError(f"{label} must be a str, got {text!r}")
        if not isinstance(snapshot, SnapshotMarker):
            raise TypeError(f"snapshot must be a SnapshotMarker, got {snapshot!r}")
        self.__setstate__(
            (
                database,
                schema,
                table,
                connector,
                lsn,
                server_id,
                engine,
                name,
                version,
                snapshot,
                ts_ms,
                ts_us,
                ts_ns,
                tx_id,
                xmin,
                sequence,
                binlog_file,
                binlog_pos,
                binlog_row,
                gtid,
                thread,
                query,
                change_lsn,
                commit_lsn,
                event_serial_no,
                replica_set,
                ord,
                {} if fields is None else fields,
                None,
            )
        )
        _set_attribute(self, "_position", _position(self))  # checks the position fields


def _source_position(self: CDCSourceMetadata) -> CDCPosition:
    position: CDCPosition | None = self._position  # type: ignore[attr-defined]
    if position is None:  # a parsed source block: its fields were checked when read
        position = _position(self)
        _set_attribute(self, "_position", position)
    return position


CDCSourceMetadata.position = property(  # type: ignore[assignment]
    _source_position, doc="The stream position computed from the fields (cached)."
)


class _SourceDraft(_SourceSlots):
    """A CDCSourceMetadata being filled by the parser; it becomes one when full.

    It has CDCSourceMetadata's slots and object's ``__setattr__``, so the parser fills
    them with plain assignments (a frozen class's fields can only be set through
    ``object.__setattr__``, several times slower); ``__class__`` is then set to
    CDCSourceMetadata, whose layout is the same.
    """

    __slots__ = ()


def _position(source: CDCSourceMetadata) -> CDCPosition:
    """The stream position of a source block (see CDCPosition for the rules)."""
    engine = source.engine
    key: tuple[int, ...] = ()
    if engine == "postgresql":
        if source.lsn is not None:
            lsn = _digits_or_fail("lsn", source.lsn)
            sequence = source.sequence
            commit = sequence[0] if sequence and sequence[0] is not None else lsn
            key = (commit, lsn)
    elif engine in ("mysql", "mariadb"):
        if source.binlog_file is not None and source.binlog_pos is not None:
            number = _binlog_number(source.binlog_file)
            if number is None:
                raise ValueError(f"binlog_file must end in .<digits>, got {source.binlog_file!r}")
            key = (number, source.binlog_pos, source.binlog_row or 0)
    elif engine == "sqlserver":
        if source.commit_lsn is not None:
            commit_lsn = _sqlserver_lsn_or_fail("commit_lsn", source.commit_lsn)
            change = (
                (-1, -1, -1)
                if source.change_lsn is None
                else _sqlserver_lsn_or_fail("change_lsn", source.change_lsn)
            )
            serial = -1 if source.event_serial_no is None else source.event_serial_no
            key = (*commit_lsn, *change, serial)
    elif engine == "mongodb" and source.ts_ms is not None and source.ord is not None:
        key = (source.ts_ms, source.ord)
    return CDCPosition(engine, source.name, key)


def _digits_or_fail(name: str, text: str) -> int:
    value = _decimal_int(text)
    if value is None:
        raise ValueError(f"{name} must be decimal digits, got {text!r}")
    return value


def _sqlserver_lsn_or_fail(name: str, text: str) -> tuple[int, int, int]:
    value = _sqlserver_lsn(text)
    if value is None:
        raise ValueError(
            f"{name} must be a SQL Server LSN like 00000027:00000758:0003, got {text!r}"
        )
    return value


@dataclass(init=False, repr=False, eq=False)
class CDCTransactionEvent(_Value):
    """A transaction metadata event (the ``<prefix>.transaction`` topic): BEGIN or END.

    Attributes:
        status: BEGIN or END.
        id: the transaction id, as in the ``transaction`` block of its change events.
        ts_ms: when the boundary was processed (milliseconds since the epoch), if sent.
        event_count: the number of change events in the transaction (END only).
        data_collections: ``(table, event count)`` pairs (END only), in the order sent.
        event_id: a deterministic id: a UUID 5 of the status and the transaction id.
    """

    __slots__ = ("status", "id", "ts_ms", "event_count", "data_collections", "event_id")  # noqa: RUF023 - field order
    _slots = __slots__
    _fields = _compared = _hashed = __slots__

    status: TransactionStatus
    id: str
    ts_ms: int | None
    event_count: int | None
    data_collections: tuple[tuple[str, int], ...]
    event_id: str

    def __init__(  # noqa: PLR0917 - the dataclass signature
        self,
        status: TransactionStatus,
        id: str,  # noqa: A002 - the field's name
        ts_ms: int | None = None,
        event_count: int | None = None,
        data_collections: tuple[tuple[str, int], ...] = (),
        event_id: str = "",
    ) -> None:
        if not isinstance(status, TransactionStatus):
            raise TypeError(f"status must be a TransactionStatus, got {status!r}")
        if not isinstance(id, str):
            raise TypeError(f"id must be a str, got {id!r}")
        if event_id == "":
            event_id = _uuid5(["transaction", status.value, id])
        self.__setstate__((status, id, ts_ms, event_count, data_collections, event_id))

    @classmethod
    def from_debezium(cls, payload: Any) -> CDCTransactionEvent:
        """Read one transaction metadata record value (dict, JSON text or bytes).

        The ``{"schema": ..., "payload": ...}`` wrapper is accepted. Counts sent as
        strings of digits are read as integers.

        Raises:
            CDCParseError: the value is not a BEGIN or END record; ``.path`` names the
                member.
        """
        body, prefix, _owned = _unwrap(payload)
        if body is None:
            raise CDCParseError("value", "a transaction event cannot be null (a tombstone)")
        if "op" in body:
            raise CDCParseError(
                f"{prefix}op", "this is a change event: read it with CDCEvent.from_debezium()"
            )
        return _parse_transaction_event(body, prefix)


class _EventSlots:
    """The storage of CDCEvent, and of the _EventDraft the parser fills."""

    __slots__ = (  # noqa: RUF023 - field order
        "operation",
        "_source",
        "before",
        "after",
        "_event_id",
        "_captured_at",
        "transaction_id",
        "key",
        "ts_ms",
        "ts_us",
        "ts_ns",
        "transaction",
        "message",
        "update_description",
    )


@dataclass(init=False, repr=False, eq=False)
class CDCEvent(_EventSlots, _Value):
    """One Debezium change event, or the tombstone that follows a delete.

    The seven positional fields are those of integration-automation-patterns 0.44.2, in
    its order; the rest are keyword-only. Build events with :meth:`from_debezium`,
    :func:`parse_record` or :meth:`from_cloudevent`; constructing one directly is for
    tests and adapters.

    Attributes:
        operation: what happened (``TOMBSTONE`` for a null record value).
        source: where and when it happened; an empty block for a tombstone or
            ``"source": null``.
        before: the row before the change, or ``None`` (inserts, snapshot reads). With
            PostgreSQL's default replica identity it holds only the key columns.
        after: the row after the change, or ``None`` (deletes). A row sent as JSON text
            is parsed; MongoDB documents are decoded from Extended JSON.
        event_id: deterministic id (see the module's explanation page): the same record
            gives the same id in any process. Given explicitly, it is kept.
        captured_at: ``source.ts_us`` (else ``source.ts_ms``) as an aware UTC datetime;
            ``None`` when the record carries neither or it is out of ``datetime``'s range.
            Constructed directly without it: the current time, as in the seed.
        transaction_id: ``transaction.id``, or ``None``.
        key: the record key as given (a ``{"schema", "payload"}`` wrapper removed);
            for a message event without one, ``{"prefix": <prefix>}``, Debezium's key.
        ts_ms, ts_us, ts_ns: when the connector processed the change (exact integers).
        transaction: the whole ``transaction`` block, or ``None``.
        message: the logical decoding message (op ``m``), or ``None``.
        update_description: MongoDB's ``updateDescription``, or ``None``.

    Values are immutable and hashable (by ``event_id``); the row dicts are the ones parsed
    and must not be modified. In a parsed event, ``source``, ``event_id`` and
    ``captured_at`` are computed on first use from what the parser already checked, and
    kept (see "Speed and laziness" in the explanation page).
    """

    __slots__ = ()
    _slots = _EventSlots.__slots__
    _fields = _compared = (
        "operation",
        "source",
        "before",
        "after",
        "event_id",
        "captured_at",
        "transaction_id",
        "key",
        "ts_ms",
        "ts_us",
        "ts_ns",
        "transaction",
        "message",
        "update_description",
    )

    operation: CDCOperation
    source: CDCSourceMetadata
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    event_id: str
    captured_at: datetime | None
    transaction_id: str | None
    _: KW_ONLY
    key: Any
    ts_ms: int | None
    ts_us: int | None
    ts_ns: int | None
    transaction: CDCTransaction | None
    message: CDCMessage | None
    update_description: CDCUpdateDescription | None

    def __init__(  # noqa: PLR0917 - the dataclass signature
        self,
        operation: CDCOperation,
        source: CDCSourceMetadata,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        event_id: str = "",
        captured_at: datetime | None = _NOW,
        transaction_id: str | None = None,
        *,
        key: Any = None,
        ts_ms: int | None = None,
        ts_us: int | None = None,
        ts_ns: int | None = None,
        transaction: CDCTransaction | None = None,
        message: CDCMessage | None = None,
        update_description: CDCUpdateDescription | None = None,
    ) -> None:
        if not isinstance(operation, CDCOperation):
            raise TypeError(f"operation must be a CDCOperation, got {operation!r}")
        if not isinstance(source, CDCSourceMetadata):
            raise TypeError(f"source must be a CDCSourceMetadata, got {source!r}")
        for name, row in (("before", before), ("after", after)):
            if row is not None and not isinstance(row, dict):
                raise TypeError(f"{name} must be a dict or None, got {row!r}")
        if not isinstance(event_id, str):
            raise TypeError(f"event_id must be a str, got {event_id!r}")
        if captured_at is _NOW:
            captured_at = _utc_now()
        elif captured_at is not None and (
            not isinstance(captured_at, datetime) or captured_at.utcoffset() is None
        ):
            raise ValueError(f"captured_at must be an aware datetime, got {captured_at!r}")
        self.__setstate__(
            (
                operation,
                source,
                before,
                after,
                event_id or None,
                captured_at,
                transaction_id,
                key,
                ts_ms,
                ts_us,
                ts_ns,
                transaction,
                message,
                update_description,
            )
        )
        if event_id == "":
            try:
                event_id = _uuid5(_identity(self, None))
            except (TypeError, ValueError, RecursionError) as exc:
                raise TypeError(
                    f"cannot derive event_id: a row or key is not JSON: {exc}"
                ) from None
            _set_attribute(self, "_event_id", event_id)

    def __hash__(self) -> int:
        return hash(self.event_id)

    # ---- reading ---------------------------------------------------------------------

    @classmethod
    def from_debezium(
        cls, payload: Any, *, key: Any = None, follows: CDCEvent | None = None
    ) -> CDCEvent:
        """Read one Debezium record value: a dict, or its JSON text (``str``) or bytes.

        The ``{"schema": ..., "payload": ...}`` wrapper of the JSON converter with
        ``schemas.enable=true`` is accepted and removed. ``None`` (or the JSON text
        ``null``) is a tombstone: an event with ``operation`` TOMBSTONE.

        Args:
            payload: the record value.
            key: the record key (a dict or any JSON value, or its JSON text or bytes; a
                wrapper is removed). Kept as ``event.key``; it does not change the id of
                a change event.
            follows: for a tombstone, the delete event it follows; its id then derives
                from that event's id (else from the key alone). Ignored otherwise.

        Raises:
            CDCParseError: the value is not a Debezium change event; ``.path`` names the
                bad member (``payload.source.lsn``) and ``.rule`` the rule.
        """
        body, prefix, owned = _unwrap(payload)
        record_key = None if key is None else _read_key(key)
        if body is None:
            return _tombstone(record_key, follows)
        if "op" not in body and "status" in body:
            raise CDCParseError(
                f"{prefix}status",
                "this is a transaction metadata event: read it with "
                "CDCTransactionEvent.from_debezium() or parse_record()",
            )
        return _parse_change(body, prefix, record_key, owned)

    @classmethod
    def from_cloudevent(cls, event: Any) -> CDCEvent:
        """Read a change event from a CloudEvents 1.0.2 structured-mode JSON event.

        Two shapes are read: the one :meth:`to_cloudevent` writes (the whole Debezium
        payload in ``data``), and the one Debezium's CloudEvents converter writes with
        JSON data (the row images in ``data``, everything else in ``iodebezium*``
        extension attributes, whose values are strings). Debezium's non-conforming
        names (``iodebeziumtxId``, names over 20 characters) are accepted on read.
        ``subject``, when present, is the record key as JSON text.

        Raises:
            CDCParseError: not a CloudEvent, data that is not JSON (Debezium's Avro
                variant), or a change event that breaks the Debezium format.
        """
        if isinstance(event, (str, bytes, bytearray, memoryview)):
            event = _loads(event, "event")
        if not isinstance(event, Mapping):
            raise CDCParseError("event", f"must be a JSON object, got {_kind(event)}")
        if event.get("specversion") != "1.0":
            raise CDCParseError("specversion", "must be '1.0' (CloudEvents 1.0.2)")
        for required in ("id", "source", "type"):
            value = event.get(required)
            if not isinstance(value, str) or not value:
                raise CDCParseError(required, "is required and must be a non-empty String")
        media = event.get("datacontenttype")
        if media is not None and (not isinstance(media, str) or not _is_json_media(media)):
            raise CDCParseError(
                "datacontenttype",
                f"{media!r} is not JSON: only JSON data is read (Avro needs its schema registry)",
            )
        if event.get("data_base64") is not None:
            raise CDCParseError("data_base64", "binary data is not a JSON change event")
        data = event.get("data")
        if not isinstance(data, Mapping):
            raise CDCParseError("data", f"must be a JSON object, got {_kind(data)}")
        subject = event.get("subject")
        record_key = None
        if subject is not None:
            if not isinstance(subject, str):
                raise CDCParseError("subject", f"must be a String, got {_kind(subject)}")
            try:
                record_key = _decoder().decode(subject)
            except (ValueError, RecursionError):
                record_key = subject  # not written by to_cloudevent(): keep the text
        if "op" in data:
            return _parse_change(data, "data.", record_key)
        body, where = _payload_from_extensions(event, data)
        try:
            return _parse_change(body, "", record_key)
        except CDCParseError as exc:
            path = where.get(exc.path)
            if path is None:
                path = f"data.{exc.path}" if exc.path.startswith(_DATA_MEMBERS) else exc.path
            raise CDCParseError(path, exc.rule) from None

    # ---- derived values --------------------------------------------------------------

    @property
    def position(self) -> CDCPosition:
        """The event's stream position (that of its source block)."""
        return self.source.position

    @property
    def is_tombstone(self) -> bool:
        """True for the null record value that follows a delete."""
        return self.operation is CDCOperation.TOMBSTONE

    @property
    def is_snapshot(self) -> bool:
        """True when the event was read by a snapshot rather than streamed from the log."""
        return self.operation is CDCOperation.SNAPSHOT or self.source.snapshot.is_snapshot

    def changed_fields(self) -> set[str]:
        """Names of the fields an UPDATE changed: altered, added and removed ones.

        From MongoDB's ``updateDescription`` when present (updated, removed and truncated
        field paths), else by comparing ``before`` and ``after``: a field whose value
        differs, or that is in one image and not the other, changed. Empty for other
        operations, or when an image is missing (as in the seed). With PostgreSQL's
        default replica identity ``before`` holds only the key columns, so every other
        column counts as changed.
        """
        if self.operation is not CDCOperation.UPDATE:
            return set()
        described = self.update_description
        if described is not None:
            return (
                set(described.updated_fields)
                | set(described.removed_fields)
                | {path for path, _size in described.truncated_arrays}
            )
        before, after = self.before, self.after
        if before is None or after is None:
            return set()
        return {
            name
            for name in before.keys() | after.keys()
            if not _same(before.get(name, ABSENT), after.get(name, ABSENT))
        }

    def diff(self) -> dict[str, tuple[Any, Any]]:
        """``{field: (old, new)}`` for each of :meth:`changed_fields`.

        A side the field is missing from (or an image that is missing) is :data:`ABSENT`.
        MongoDB paths are looked up through nested documents and arrays.
        """
        changed = self.changed_fields()
        described = self.update_description
        out: dict[str, tuple[Any, Any]] = {}
        for name in sorted(changed):
            old = _lookup(self.before, name, nested=described is not None)
            if described is not None and name in described.updated_fields:
                new = described.updated_fields[name]
            else:
                new = _lookup(self.after, name, nested=described is not None)
            out[name] = (old, new)
        return out

    def to_audit_dict(
        self, *, include_values: bool = False, mask: Iterable[str] = ()
    ) -> dict[str, Any]:
        """A JSON-serialisable summary for an audit log; no row values unless asked.

        The first nine keys are the seed's (``table`` is ``"<schema>.<table>"``,
        ``captured_at`` ISO 8601 or ``None``); ``engine``, ``server``, ``position`` and
        ``snapshot`` follow.

        Args:
            include_values: also add ``key``, ``before`` and ``after``, with values made
                JSON-safe (Decimal and UUID as text, bytes as Base64, datetimes in ISO
                8601).
            mask: top-level field names whose values are replaced by ``"***"`` in
                ``key``, ``before`` and ``after``.
        """
        if not isinstance(include_values, bool):
            raise TypeError(f"include_values must be a bool, got {include_values!r}")
        if isinstance(mask, (str, bytes)) or not isinstance(mask, Iterable):
            raise TypeError(f"mask must be an iterable of field names, got {mask!r}")
        hidden = frozenset(mask)
        source = self.source
        audit: dict[str, Any] = {
            "event_id": self.event_id,
            "operation": self.operation.value,
            "table": f"{source.schema}.{source.table}",
            "database": source.database,
            "connector": source.connector,
            "captured_at": None if self.captured_at is None else self.captured_at.isoformat(),
            "transaction_id": self.transaction_id,
            "changed_fields": sorted(self.changed_fields()),
            "lsn": source.lsn,
            "engine": source.engine,
            "server": source.name,
            "position": str(source.position),
            "snapshot": source.snapshot.value,
        }
        if include_values:
            try:
                audit["key"] = _masked(self.key, hidden)
                audit["before"] = _masked(self.before, hidden)
                audit["after"] = _masked(self.after, hidden)
            except RecursionError:
                raise CDCError(f"event {self.event_id} holds values nested too deeply") from None
        return audit

    def flatten(
        self,
        *,
        delete_handling: DeleteHandling | str = DeleteHandling.TOMBSTONE,
        add_fields: Iterable[str] = (),
    ) -> dict[str, Any] | Literal[CDCMarker.DROPPED] | None:
        """The record as Debezium's ExtractNewRecordState SMT would emit it.

        Returns a new dict (the row), ``None`` (a record whose value is null: a
        tombstone), or :data:`DROPPED` (no record). Inserts, updates and snapshot reads
        give ``after``. Deletes and tombstones follow ``delete_handling``:

        ============================ ===================================== ==============
        mode                         delete event                          tombstone
        ============================ ===================================== ==============
        ``DROP``                     DROPPED                               DROPPED
        ``TOMBSTONE`` (the default)  DROPPED                               ``None``
        ``REWRITE``                  ``before`` + ``"__deleted": "true"``  DROPPED
        ``REWRITE_WITH_TOMBSTONE``   ``before`` + ``"__deleted": "true"``  ``None``
        ``DELETE_TO_TOMBSTONE``      ``None``                              DROPPED
        ============================ ===================================== ==============

        In the two rewrite modes every other row also gets ``"__deleted": "false"``.
        Truncate and message events have no row: DROPPED.

        Args:
            delete_handling: a :class:`DeleteHandling` or its Debezium name.
            add_fields: metadata to add, as in the SMT's ``add.fields``: ``op``,
                ``ts_ms``, ``ts_us`` and ``ts_ns`` are the envelope's; ``source.<name>``
                and any other bare name are members of the source block;
                ``transaction.<name>`` are the transaction block's (``id``,
                ``total_order``, ``data_collection_order``). Each is added as ``__``
                plus the name with dots made underscores (``source.ts_ms`` gives
                ``__source_ts_ms``); a missing one is ``None``.

        Raises:
            CDCError: an insert, update or snapshot read without ``after`` (MongoDB
                without the full document), or a delete to rewrite without ``before``.
        """
        mode = _delete_handling(delete_handling)
        names = _add_field_names(add_fields)
        operation = self.operation
        rewrite = mode in (DeleteHandling.REWRITE, DeleteHandling.REWRITE_WITH_TOMBSTONE)
        if operation is CDCOperation.TOMBSTONE:
            keep = mode in (DeleteHandling.TOMBSTONE, DeleteHandling.REWRITE_WITH_TOMBSTONE)
            return None if keep else DROPPED
        if operation is CDCOperation.DELETE:
            if mode is DeleteHandling.DELETE_TO_TOMBSTONE:
                return None
            if not rewrite:
                return DROPPED
            if self.before is None:
                raise CDCError(f"delete {self.event_id} has no before image to rewrite")
            row = dict(self.before)
            self._add_metadata(row, names)
            row["__deleted"] = "true"
            return row
        if operation in (CDCOperation.TRUNCATE, CDCOperation.MESSAGE):
            return DROPPED
        if self.after is None:
            raise CDCError(
                f"{operation.value.lower()} {self.event_id} has no after image to flatten "
                "(MongoDB sends one only with a full-document capture mode)"
            )
        row = dict(self.after)
        self._add_metadata(row, names)
        if rewrite:
            row["__deleted"] = "false"
        return row

    def _add_metadata(self, row: dict[str, Any], names: tuple[str, ...]) -> None:
        for name in names:
            row["__" + name.replace(".", "_")] = self._metadata(name)

    def _metadata(self, name: str) -> Any:
        if name == "op":
            return self.operation.code
        if name in ("ts_ms", "ts_us", "ts_ns"):
            return getattr(self, name)
        struct, dot, member = name.partition(".")
        if dot and struct == "transaction":
            block = self.transaction
            if block is None or member not in ("id", "total_order", "data_collection_order"):
                return None
            return getattr(block, member)
        if dot and struct == "source":
            name = member
        return self.source.fields.get(name)

    # ---- CloudEvents -----------------------------------------------------------------

    def to_cloudevent(self) -> dict[str, Any]:
        """The event as a CloudEvents 1.0.2 structured-mode JSON object (a dict).

        ``data`` is the whole Debezium payload (``op``, ``before``, ``after``,
        ``source``, timestamps, ``transaction``, ``message``, ``updateDescription``;
        MongoDB values written back as Extended JSON), so :meth:`from_cloudevent` gives
        back an equal event. ``id`` is ``event_id``; ``source`` is
        ``/debezium/<engine>/<server>``; ``type`` is
        ``io.debezium.connector.<engine>.DataChangeEvent``; ``time`` is the source
        timestamp at its full precision; ``subject`` is the key as JSON text.
        Extension attributes, all Strings with conforming names (lower-case letters and
        digits, at most 20 characters): ``iodebeziumop``, ``iodebeziumconnector``,
        ``iodebeziumname``, ``iodebeziumdb``, ``iodebeziumschema``, ``iodebeziumtable``,
        ``iodebeziumsnapshot``, ``iodebeziumtsms``, ``iodebeziumlsn``, ``iodebeziumtxid``,
        each only when it has a value.

        Raises:
            CDCError: the event is a tombstone (it carries no change to describe).
        """
        if self.operation is CDCOperation.TOMBSTONE:
            raise CDCError("a tombstone has no CloudEvent form: it carries only a key")
        source = self.source
        engine = _uri_segment(source.engine or "unknown")
        ce: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": f"/debezium/{engine}/{_uri_segment(source.name or 'unknown')}",
            "type": f"io.debezium.connector.{engine}.DataChangeEvent",
        }
        time = _rfc3339(source.ts_ns, source.ts_us, source.ts_ms)
        if time is not None:
            ce["time"] = time
        ce["datacontenttype"] = "application/json"
        if self.key is not None:
            # JSON leaves DEL unescaped; a CloudEvents String must not contain it.
            ce["subject"] = _canonical_json(self.key).replace("\x7f", "\\u007f")
        tx = self.transaction
        extensions = {
            "iodebeziumop": self.operation.code,
            "iodebeziumconnector": source.engine,
            "iodebeziumname": source.name,
            "iodebeziumdb": source.database,
            "iodebeziumschema": source.schema,
            "iodebeziumtable": source.table,
            "iodebeziumsnapshot": source.snapshot.value,
            "iodebeziumtsms": None if source.ts_ms is None else str(source.ts_ms),
            "iodebeziumlsn": source.lsn,
            "iodebeziumtxid": None if tx is None else tx.id,
        }
        # Only values that are CloudEvents Strings (no control characters) are written.
        ce.update({name: v for name, v in extensions.items() if v and v.isprintable()})
        try:
            ce["data"] = self._payload()
        except RecursionError:
            raise CDCError(f"event {self.event_id} holds values nested too deeply") from None
        return ce

    def _payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "op": self.operation.code,
            "before": _encode_extended(self.before),
            "after": _encode_extended(self.after),
            "source": dict(self.source.fields) or _source_members(self.source),
        }
        for name in ("ts_ms", "ts_us", "ts_ns"):
            if getattr(self, name) is not None:
                payload[name] = getattr(self, name)
        tx = self.transaction
        if tx is not None:
            payload["transaction"] = {
                "id": tx.id,
                "total_order": tx.total_order,
                "data_collection_order": tx.data_collection_order,
            }
        if self.message is not None:
            payload["message"] = {
                "prefix": self.message.prefix,
                "content": _base64().b64encode(self.message.content).decode("ascii"),
            }
        described = self.update_description
        if described is not None:
            payload["updateDescription"] = {
                "updatedFields": _encode_extended(described.updated_fields),
                "removedFields": list(described.removed_fields),
                "truncatedArrays": [
                    {"field": path, "newSize": size} for path, size in described.truncated_arrays
                ],
            }
        return payload


# The lazily computed fields of a parsed event. Each is computed from values the parser
# has already checked, so computing it cannot fail; two threads reading it first at the
# same time both compute it and store equal values (see tests: TestLaziness).


def _event_source(self: CDCEvent) -> CDCSourceMetadata:
    source = self._source  # type: ignore[attr-defined]
    if isinstance(source, CDCSourceMetadata):
        return source
    # The screened source block of a record, or None: see _parse_change.
    built = CDCSourceMetadata("", "", "", "debezium") if source is None else _build_source(source)
    _set_attribute(self, "_source", built)
    return built


def _event_id(self: CDCEvent) -> str:
    event_id: str | None = self._event_id  # type: ignore[attr-defined]
    if event_id is None:  # a position-derived id: strings and integers only
        event_id = _uuid5(_identity(self, None))
        _set_attribute(self, "_event_id", event_id)
    return event_id


def _event_captured_at(self: CDCEvent) -> datetime | None:
    moment: datetime | None = self._captured_at  # type: ignore[attr-defined]
    if moment is _PENDING:
        source = self.source
        moment = _instant(source.ts_us, source.ts_ms)
        _set_attribute(self, "_captured_at", moment)
    return moment


CDCEvent.source = property(_event_source, doc="Where and when it happened.")  # type: ignore[assignment]
CDCEvent.event_id = property(_event_id, doc="The deterministic id.")  # type: ignore[assignment]
CDCEvent.captured_at = property(  # type: ignore[assignment]
    _event_captured_at, doc="source.ts_us (else source.ts_ms) as an aware UTC datetime."
)


class _EventDraft(_EventSlots):
    """A CDCEvent being filled by the parser; it becomes one when full (see _SourceDraft)."""

    __slots__ = ()


# --------------------------------------------------------------------------------------
# Reading records
# --------------------------------------------------------------------------------------


def parse_record(
    payload: Any, *, key: Any = None, follows: CDCEvent | None = None
) -> CDCEvent | CDCTransactionEvent:
    """Read any record of a Debezium stream: change event, tombstone or transaction marker.

    A value with ``status`` and no ``op`` is a transaction metadata event
    (:class:`CDCTransactionEvent`); anything else is read by
    :meth:`CDCEvent.from_debezium` with the same ``key`` and ``follows``.

    Raises:
        CDCParseError: the value is neither; ``.path`` names the bad member.
    """
    body, prefix, owned = _unwrap(payload)
    record_key = None if key is None else _read_key(key)
    if body is None:
        return _tombstone(record_key, follows)
    if "op" not in body and "status" in body:
        return _parse_transaction_event(body, prefix)
    return _parse_change(body, prefix, record_key, owned)


def iter_jsonl(
    source: Iterable[str] | Iterable[bytes] | str | os.PathLike[str],
    *,
    on_error: Callable[[CDCParseError], object] | None = None,
) -> Iterator[CDCEvent | CDCTransactionEvent]:
    """Read record values from JSON lines, one record per line, with :func:`parse_record`.

    ``source`` is a text or binary file object (or any iterable of lines), or a path
    (``str`` or path-like), opened in binary mode and closed when the iteration ends.
    Blank lines are skipped; a line ``null`` is a tombstone, and a tombstone right after a
    delete is read with ``follows=`` that delete.

    A line that is not a valid record raises :class:`CDCParseError` with ``.line`` set;
    with ``on_error`` the error is passed to it instead and reading goes on, so one bad
    line never loses the good ones.
    """
    if on_error is not None and not callable(on_error):
        raise TypeError(f"on_error must be callable or None, got {on_error!r}")
    if isinstance(source, (str, os.PathLike)):
        return _iter_path(source, on_error)
    if isinstance(source, (bytes, bytearray, memoryview)) or not isinstance(source, Iterable):
        raise TypeError(
            f"source must be a file object, an iterable of lines or a path, got {_kind(source)}"
        )
    return _iter_lines(source, on_error)


def _iter_path(
    path: str | os.PathLike[str], on_error: Callable[[CDCParseError], object] | None
) -> Iterator[CDCEvent | CDCTransactionEvent]:
    with open(path, "rb") as lines:  # noqa: PTH123 - a str path is accepted as open() does
        yield from _iter_lines(lines, on_error)


def _iter_lines(
    lines: Iterable[Any], on_error: Callable[[CDCParseError], object] | None
) -> Iterator[CDCEvent | CDCTransactionEvent]:
    previous: CDCEvent | None = None
    for number, line in enumerate(lines, 1):
        if isinstance(line, (str, bytes, bytearray)):
            text = _strip(line)
            if not text:
                continue
            try:
                record = parse_record(text, follows=previous)
            except CDCParseError as exc:
                error = exc
            else:
                previous = (
                    record
                    if isinstance(record, CDCEvent) and record.operation is CDCOperation.DELETE
                    else None
                )
                yield record
                continue
        else:
            error = CDCParseError("line", f"must be str or bytes, got {_kind(line)}")
        located = CDCParseError(error.path, error.rule, line=number)
        if on_error is None:
            raise located
        on_error(located)
        previous = None


def _strip(line: str | bytes | bytearray) -> str | bytes | bytearray:
    """A line without the JSON whitespace around it."""
    if isinstance(line, str):
        return line.strip(" \t\r\n")
    return line.strip(b" \t\r\n")


def decode_extended_json(value: Any) -> Any:
    """Decode MongoDB Extended JSON v2 (canonical or relaxed, and the v1 ``$binary`` form).

    A ``str`` or bytes is JSON text and is parsed first; anything else is an
    already-parsed value whose type wrappers are decoded in place (a new value is
    returned). ``$oid`` gives the hex string; ``$numberInt`` and ``$numberLong`` an
    ``int``; ``$numberDouble`` a ``float`` (``NaN`` and infinities included);
    ``$numberDecimal`` a ``decimal.Decimal``; ``$date`` an aware UTC ``datetime``;
    ``$binary`` ``bytes`` (subtype 4, a UUID, gives ``uuid.UUID``, as does ``$uuid``);
    ``$timestamp`` a :class:`BsonTimestamp`; ``$symbol`` a ``str``; ``$undefined``
    ``None``. Other wrappers (``$regularExpression``, ``$code``, ``$minKey``, ...) stay
    dicts. A wrapper with a malformed value raises.

    Raises:
        CDCParseError: invalid JSON or a malformed wrapper; ``.path`` starts at ``value``.
    """
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        value = _loads(value, "value")
    return _decode_extended_at(value, "value")


# --------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


# Imports and regular expressions are loaded on first use, which keeps
# `import interlock.cdc_event` cheap.
@cache
def _regex(pattern: str) -> re.Pattern[str]:
    import re  # noqa: PLC0415 - deferred: see above

    return re.compile(pattern)


@cache
def _json() -> ModuleType:
    import json  # noqa: PLC0415 - deferred: see above

    return json


@cache
def _base64() -> ModuleType:
    import base64  # noqa: PLC0415 - deferred: see above

    return base64


@cache
def _decimal() -> ModuleType:
    import decimal  # noqa: PLC0415 - deferred: see above

    return decimal


@cache
def _hashlib() -> ModuleType:
    import hashlib  # noqa: PLC0415 - deferred: see above

    return hashlib


@cache
def _uuid() -> ModuleType:
    import uuid  # noqa: PLC0415 - deferred: see above

    return uuid


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


@cache
def _decoder() -> Any:
    return _json().JSONDecoder(parse_constant=_reject_constant)


def _loads(raw: str | bytes | bytearray | memoryview, path: str) -> Any:
    """Strict JSON: UTF-8 text (RFC 8259), no NaN or Infinity; errors are CDCParseError."""
    try:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8")
        return _decoder().decode(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CDCParseError(path, f"is not valid JSON: {exc}") from None


@cache
def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    scan: Callable[[str, int], tuple[Any, int]] = _decoder().scan_once
    return scan


def _unwrap(payload: Any) -> tuple[Mapping[str, Any] | None, str, bool]:
    """The change event body, the path prefix of its members (``"payload."`` or ``""``),
    and whether the body was parsed here from JSON text (so no caller holds it).

    JSON text is read as :func:`_loads` reads it. ``str`` and ``bytes`` go straight to
    the decoder's scanner at offset 0 first (no whitespace skipping, no wrapper calls);
    what the scanner alone cannot read to the end (surrounding whitespace, an error) is
    read again by _loads, whose result or error is the one returned.
    """
    owned = False
    kind = type(payload)
    if kind is bytes or kind is str:
        owned = True
        try:
            text = payload if kind is str else payload.decode()
            payload, end = _scanner()(text, 0)
        except (ValueError, RecursionError, StopIteration):  # _loads says what is wrong
            payload = _loads(text if kind is str else payload, "value")
        else:
            if end != len(text):
                payload = _loads(text, "value")
    elif isinstance(payload, (bytearray, memoryview)):
        payload = _loads(payload, "value")
        owned = True
    if payload is None:
        return None, "", owned
    if type(payload) is not dict and not isinstance(payload, Mapping):
        raise CDCParseError("value", f"must be a JSON object or null, got {_kind(payload)}")
    if "payload" in payload and payload.keys() <= {"schema", "payload"}:
        body = payload["payload"]
        if body is None:
            return None, "", owned
        if type(body) is not dict and not isinstance(body, Mapping):
            raise CDCParseError("payload", f"must be a JSON object or null, got {_kind(body)}")
        return body, "payload.", owned
    return payload, "", owned


def _read_key(key: Any) -> Any:
    if isinstance(key, (str, bytes, bytearray, memoryview)):
        key = _loads(key, "key")
    while isinstance(key, Mapping) and "payload" in key and key.keys() <= {"schema", "payload"}:
        key = key["payload"]  # the JSON converter's wrapper; its payload is decoded already
    if isinstance(key, Mapping):
        return key if type(key) is dict else dict(key)
    if key is None or isinstance(key, (list, str, int, float)):
        return key
    raise CDCParseError("key", f"must be a JSON value, got {_kind(key)}")


def _decimal_int(text: str) -> int | None:
    """The int a string of ASCII decimal digits (optionally signed) spells, else None."""
    if _regex(r"-?[0-9]{1,4000}").fullmatch(text) is None:
        return None
    return int(text)


def _int(value: object, path: str) -> int | None:
    if value is None:
        return None
    if type(value) is int:
        return value
    if isinstance(value, str):
        number = _decimal_int(value)
        if number is not None:
            return number
    elif isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    raise CDCParseError(path, f"must be an integer or a string of digits, got {_kind(value)}")


def _text(value: object, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise CDCParseError(path, f"must be a string, got {_kind(value)}")


def _text_or_number(value: object, path: str) -> str | None:
    """Text for a field the seed kept as ``str(value)`` (lsn, server_id)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise CDCParseError(path, f"must be a string or an integer, got {_kind(value)}")


def _binlog_number(name: str) -> int | None:
    match = _regex(r".*\.([0-9]{1,18})").fullmatch(name)
    return None if match is None else int(match.group(1))


def _sqlserver_lsn(text: str) -> tuple[int, int, int] | None:
    match = _regex(r"([0-9A-Fa-f]{1,8}):([0-9A-Fa-f]{1,8}):([0-9A-Fa-f]{1,4})").fullmatch(text)
    if match is None:
        return None
    high, middle, low = match.groups()
    return int(high, 16), int(middle, 16), int(low, 16)


_SNAPSHOT_VALUES = {marker.value: marker for marker in SnapshotMarker}


def _snapshot(value: object, last_record: object, path: str) -> SnapshotMarker:
    if value is None or value is False:
        return SnapshotMarker.FALSE
    if value is True:
        # Older Debezium versions marked the last snapshot row with last_snapshot_record.
        return SnapshotMarker.LAST if last_record is True else SnapshotMarker.TRUE
    if isinstance(value, str):
        # A value a future Debezium adds is still a snapshot row: TRUE, raw in .fields.
        return _SNAPSHOT_VALUES.get(value, SnapshotMarker.TRUE if value else SnapshotMarker.FALSE)
    raise CDCParseError(path, f"must be a boolean or a snapshot marker string, got {_kind(value)}")


def _sequence(value: object, path: str) -> tuple[int | None, ...] | None:
    """PostgreSQL ``source.sequence``: JSON text of an array of digit strings or nulls."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise CDCParseError(path, f"must be JSON text of an array, got {_kind(value)}")
    items = _loads(value, path)
    if not isinstance(items, list):
        raise CDCParseError(path, "must be JSON text of an array of LSNs")
    out: list[int | None] = []
    for item in items:
        number = _int(item, path)
        out.append(number)
    return tuple(out)


def _parse_source(value: object, prefix: str) -> CDCSourceMetadata:  # noqa: PLR0915 - one per member
    """Check and read a source block; ``None`` gives an empty one."""
    if value is None:
        return CDCSourceMetadata("", "", "", "debezium")
    if not isinstance(value, Mapping):
        raise CDCParseError(f"{prefix}source", f"must be an object or null, got {_kind(value)}")
    p = f"{prefix}source."
    get = value.get
    engine = _text(get("connector"), p + "connector") or ""
    mongo = engine == "mongodb"
    table = _text(get("collection" if mongo else "table"), p + ("collection" if mongo else "table"))
    source: Any = _new(_SourceDraft)
    source.engine = engine
    source.name = _text(get("name"), p + "name") or ""
    source.version = _text(get("version"), p + "version") or ""
    source.snapshot = _snapshot(get("snapshot"), get("last_snapshot_record"), p + "snapshot")
    source.ts_ms = _int(get("ts_ms"), p + "ts_ms")
    source.ts_us = _int(get("ts_us"), p + "ts_us")
    source.ts_ns = _int(get("ts_ns"), p + "ts_ns")
    source.fields = value if type(value) is dict else dict(value)
    source.tx_id = source.xmin = source.sequence = None
    source.binlog_file = source.binlog_pos = source.binlog_row = None
    source.gtid = source.thread = source.query = None
    source.change_lsn = source.commit_lsn = source.event_serial_no = None
    source.replica_set = source.ord = source._position = None  # noqa: SLF001
    if engine == "postgresql":
        source.tx_id = _int(get("txId"), p + "txId")
        source.xmin = _int(get("xmin"), p + "xmin")
        source.sequence = _sequence(get("sequence"), p + "sequence")
        lsn = _int(get("lsn"), p + "lsn")
        source.lsn = None if lsn is None else str(lsn)
    else:
        source.lsn = _text_or_number(get("lsn"), p + "lsn")
    if engine in ("mysql", "mariadb"):
        binlog_file = _text(get("file"), p + "file")
        if binlog_file is not None and _binlog_number(binlog_file) is None:
            raise CDCParseError(
                p + "file", f"{binlog_file!r} is not a binlog name (<base>.<digits>)"
            )
        source.binlog_file = binlog_file
        source.binlog_pos = _int(get("pos"), p + "pos")
        source.binlog_row = _int(get("row"), p + "row")
        source.gtid = _text(get("gtid"), p + "gtid")
        source.thread = _int(get("thread"), p + "thread")
        source.query = _text(get("query"), p + "query")
    elif engine == "sqlserver":
        change_lsn = _text(get("change_lsn"), p + "change_lsn")
        if change_lsn is not None and _sqlserver_lsn(change_lsn) is None:
            raise CDCParseError(
                p + "change_lsn", f"{change_lsn!r} is not a SQL Server LSN (hex:hex:hex)"
            )
        commit_lsn = _text(get("commit_lsn"), p + "commit_lsn")
        if commit_lsn is not None and _sqlserver_lsn(commit_lsn) is None:
            raise CDCParseError(
                p + "commit_lsn", f"{commit_lsn!r} is not a SQL Server LSN (hex:hex:hex)"
            )
        source.change_lsn = change_lsn
        source.commit_lsn = commit_lsn
        source.event_serial_no = _int(get("event_serial_no"), p + "event_serial_no")
    elif mongo:
        source.replica_set = _text(get("rs"), p + "rs")
        source.ord = _int(get("ord"), p + "ord")
    source.database = _text(get("db"), p + "db") or ""
    source.schema = _text(get("schema"), p + "schema") or ""
    source.table = table or ""
    source.connector = "debezium"
    source.server_id = _text_or_number(get("server_id"), p + "server_id")
    source.__class__ = CDCSourceMetadata
    read: CDCSourceMetadata = source
    return read


# Which members of a source block _parse_source reads, per connector: the plain JSON type
# it takes without conversion or error (a member may also be null), and the second type
# some members may have. The text of a few members is then checked (_screen_source).
_SOURCE_COMMON: dict[str, type] = {
    "connector": str,
    "name": str,
    "version": str,
    "snapshot": str,  # or bool
    "ts_ms": int,
    "ts_us": int,
    "ts_ns": int,
    "lsn": str,  # or int
    "db": str,
    "schema": str,
    "server_id": str,  # or int
    "table": str,
}
_SOURCE_SECOND: dict[str, type] = {"snapshot": bool, "lsn": int, "server_id": int}
_SOURCE_SCREENS: dict[str | None, tuple[dict[str, type], dict[str, type]]] = {
    "postgresql": (
        {**_SOURCE_COMMON, "txId": int, "xmin": int, "sequence": str, "lsn": int},
        {"snapshot": bool, "server_id": int},
    ),
    "mysql": (
        {
            **_SOURCE_COMMON,
            "file": str,
            "pos": int,
            "row": int,
            "gtid": str,
            "thread": int,
            "query": str,
        },
        _SOURCE_SECOND,
    ),
    "sqlserver": (
        {**_SOURCE_COMMON, "change_lsn": str, "commit_lsn": str, "event_serial_no": int},
        _SOURCE_SECOND,
    ),
    "mongodb": ({**_SOURCE_COMMON, "rs": str, "ord": int, "collection": str}, _SOURCE_SECOND),
}
_SOURCE_SCREENS["mariadb"] = _SOURCE_SCREENS["mysql"]
del _SOURCE_SCREENS["mongodb"][0]["table"]
_OTHER_SCREEN = (_SOURCE_COMMON, _SOURCE_SECOND)
_SEQUENCE = r'\[(?:"[0-9]{1,20}"|null)(?:,(?:"[0-9]{1,20}"|null))*\]'


def _compile_sequence_match(text: str) -> object:
    """Match ``text`` against _SEQUENCE, and make _sequence_match the compiled pattern's.

    Every PostgreSQL record is screened, so _screen_source calls the bound ``fullmatch``
    directly rather than through :func:`_regex` (a cache lookup per record); compiling
    on first use keeps ``re`` out of the import.
    """
    global _sequence_match  # noqa: PLW0603 - rebound once, to an equal function
    _sequence_match = _regex(_SEQUENCE).fullmatch
    return _sequence_match(text)


_sequence_match: Callable[[str], object] = _compile_sequence_match


def _screen_source(value: dict[str, Any]) -> bool | None:
    """Whether a source block can be read without a conversion or an error, and how.

    ``None`` when some member :func:`_parse_source` reads is neither null nor of a
    plain JSON type it takes as it is (a string of digits for an integer, say), or is
    text that breaks its format: read it with _parse_source, which converts or raises.
    Otherwise the block is valid and :func:`_build_source` reads it; the result then
    says whether it gives an ordered position (the conditions of :func:`_position`).
    """
    get = value.get
    engine = get("connector")
    if engine is not None and type(engine) is not str:
        return None
    types, second = _SOURCE_SCREENS.get(engine, _OTHER_SCREEN)
    for name, member in value.items():
        kind = types.get(name)
        if type(member) is kind or member is None or kind is None:
            continue
        if type(member) is not second.get(name):
            return None
    if engine == "postgresql":
        sequence = get("sequence")
        if sequence is not None and _sequence_match(sequence) is None:
            return None
        return get("lsn") is not None
    if engine == "mysql" or engine == "mariadb":  # noqa: PLR1714 - faster than a tuple
        binlog_file = get("file")
        if binlog_file is not None and _binlog_number(binlog_file) is None:
            return None
        return binlog_file is not None and get("pos") is not None
    if engine == "sqlserver":
        change_lsn, commit_lsn = get("change_lsn"), get("commit_lsn")
        if change_lsn is not None and _sqlserver_lsn(change_lsn) is None:
            return None
        if commit_lsn is None:
            return False
        return None if _sqlserver_lsn(commit_lsn) is None else True
    return engine == "mongodb" and get("ts_ms") is not None and get("ord") is not None


def _build_source(value: dict[str, Any]) -> CDCSourceMetadata:
    """What _parse_source gives for a block that passed :func:`_screen_source`.

    Every member read is null or of its plain type, so only ``lsn`` and ``server_id``
    (integers become text), ``snapshot`` and ``sequence`` need converting.
    """
    get = value.get
    engine = get("connector") or ""
    source: Any = _new(_SourceDraft)
    source.database = get("db") or ""
    source.schema = get("schema") or ""
    source.table = get("collection" if engine == "mongodb" else "table") or ""
    source.connector = "debezium"
    lsn = get("lsn")
    source.lsn = lsn if lsn is None or type(lsn) is str else str(lsn)
    server_id = get("server_id")
    source.server_id = server_id if server_id is None or type(server_id) is str else str(server_id)
    source.engine = engine
    source.name = get("name") or ""
    source.version = get("version") or ""
    source.snapshot = _snapshot(get("snapshot"), get("last_snapshot_record"), "source.snapshot")
    source.ts_ms = get("ts_ms")
    source.ts_us = get("ts_us")
    source.ts_ns = get("ts_ns")
    source.tx_id = source.xmin = source.sequence = None
    source.binlog_file = source.binlog_pos = source.binlog_row = None
    source.gtid = source.thread = source.query = None
    source.change_lsn = source.commit_lsn = source.event_serial_no = None
    source.replica_set = source.ord = source._position = None  # noqa: SLF001
    if engine == "postgresql":
        source.tx_id = get("txId")
        source.xmin = get("xmin")
        sequence = get("sequence")
        if sequence is not None:  # screened: ["<digits>" or null, ...] without spaces
            source.sequence = tuple(
                None if item == "null" else int(item[1:-1]) for item in sequence[1:-1].split(",")
            )
    elif engine == "mysql" or engine == "mariadb":  # noqa: PLR1714 - faster than a tuple
        source.binlog_file = get("file")
        source.binlog_pos = get("pos")
        source.binlog_row = get("row")
        source.gtid = get("gtid")
        source.thread = get("thread")
        source.query = get("query")
    elif engine == "sqlserver":
        source.change_lsn = get("change_lsn")
        source.commit_lsn = get("commit_lsn")
        source.event_serial_no = get("event_serial_no")
    elif engine == "mongodb":
        source.replica_set = get("rs")
        source.ord = get("ord")
    source.fields = value
    source.__class__ = CDCSourceMetadata
    read: CDCSourceMetadata = source
    return read


def _row(value: object, path: str, *, mongo: bool) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):  # MongoDB sends documents as (Extended) JSON text
        value = _loads(value, path)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise CDCParseError(path, f"must hold a JSON object, got {_kind(value)}")
    elif not isinstance(value, Mapping):
        raise CDCParseError(path, f"must be an object, null or JSON text, got {_kind(value)}")
    if not mongo:
        return value if type(value) is dict else dict(value)
    document: dict[str, Any] = _decode_extended_at(value, path)
    return document


def _parse_transaction_block(value: object, prefix: str) -> CDCTransaction:
    """A transaction block that is not null."""
    p = f"{prefix}transaction"
    if not isinstance(value, Mapping):
        raise CDCParseError(p, f"must be an object or null, got {_kind(value)}")
    tx_id = _text_or_number(value.get("id"), f"{p}.id")
    if tx_id is None:
        raise CDCParseError(f"{p}.id", "is required in a transaction block")
    return CDCTransaction(
        tx_id,
        _int(value.get("total_order"), f"{p}.total_order"),
        _int(value.get("data_collection_order"), f"{p}.data_collection_order"),
    )


def _parse_message(value: object, prefix: str) -> CDCMessage:
    p = f"{prefix}message"
    if not isinstance(value, Mapping):
        raise CDCParseError(p, f"is required for op 'm' and must be an object, got {_kind(value)}")
    prefix_text = _text(value.get("prefix"), f"{p}.prefix") or ""
    content = value.get("content")
    if content is None:
        return CDCMessage(prefix_text, b"")
    if not isinstance(content, str):
        raise CDCParseError(f"{p}.content", f"must be Base64 text, got {_kind(content)}")
    return CDCMessage(prefix_text, _decode_base64(content, f"{p}.content"))


def _decode_base64(text: str, path: str) -> bytes:
    try:
        decoded: bytes = _base64().b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
        raise CDCParseError(path, "is not RFC 4648 Base64") from None
    return decoded


def _parse_update_description(value: object, prefix: str) -> CDCUpdateDescription:
    """An updateDescription that is not null."""
    p = f"{prefix}updateDescription"
    if not isinstance(value, Mapping):
        raise CDCParseError(p, f"must be an object or null, got {_kind(value)}")
    updated = value.get("updatedFields")
    updated_fields: dict[str, Any] = {}
    if isinstance(updated, str):
        updated_fields = _row(updated, f"{p}.updatedFields", mongo=True) or {}
    elif isinstance(updated, Mapping):
        updated_fields = _decode_extended_at(updated, f"{p}.updatedFields")
    elif updated is not None:
        raise CDCParseError(
            f"{p}.updatedFields", f"must be an object or its JSON text, got {_kind(updated)}"
        )
    removed = value.get("removedFields")
    if removed is None:
        removed = []
    if not isinstance(removed, list) or not all(isinstance(name, str) for name in removed):
        raise CDCParseError(f"{p}.removedFields", "must be an array of field paths or null")
    arrays = _named_counts(value.get("truncatedArrays"), f"{p}.truncatedArrays", "field", "newSize")
    return CDCUpdateDescription(updated_fields, tuple(removed), arrays)


def _instant(micros: int | None, millis: int | None) -> datetime | None:
    try:
        if micros is not None:
            return _EPOCH + timedelta(microseconds=micros)
        if millis is not None:
            return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        return None
    return None


def _parse_change(  # noqa: PLR0915 - one check per member, in the order of the format
    # owned is positional: a call with a keyword argument takes CPython's slower path.
    body: Mapping[str, Any],
    prefix: str,
    key: Any,
    owned: bool = False,  # noqa: FBT001, FBT002
) -> CDCEvent:
    """Check a change event body and read it into a CDCEvent.

    Everything is checked here. With ``owned`` (the body was parsed from JSON text by
    this module, so nobody else holds it) and a source block that passes
    :func:`_screen_source`, building ``source``, ``captured_at`` and a position-derived
    ``event_id`` is left to their first use: none of them can fail any more.
    """
    code = body.get("op")
    operation = _OPERATIONS.get(code) if type(code) is str or isinstance(code, str) else None
    if operation is None:
        if code is None:
            raise CDCParseError(
                f"{prefix}op", "is required: a Debezium change event has op c, u, d, r, t or m"
            )
        raise CDCParseError(
            f"{prefix}op", f"{code!r} is not a Debezium operation (c, u, d, r, t, m)"
        )
    raw_source = body.get("source")
    source: CDCSourceMetadata | dict[str, Any] | None
    positioned: bool | None
    if type(raw_source) is dict and (positioned := _screen_source(raw_source)) is not None:
        # A valid block of plain JSON values: built on first use when nobody else holds
        # the dict, else now.
        source = raw_source if owned else _build_source(raw_source)
        mongo = raw_source.get("connector") == "mongodb"
    elif owned and raw_source is None:
        source, mongo, positioned = None, False, False  # built on first use
    else:
        source = _parse_source(raw_source, prefix)
        mongo = source.engine == "mongodb"
        positioned = source.position.ordered
    before = body.get("before")
    if mongo or (before is not None and type(before) is not dict):
        before = _row(before, f"{prefix}before", mongo=mongo)
    after = body.get("after")
    if mongo or (after is not None and type(after) is not dict):
        after = _row(after, f"{prefix}after", mongo=mongo)
    transaction = body.get("transaction")
    if transaction is not None:
        transaction = _parse_transaction_block(transaction, prefix)
    message = None
    if operation is _MESSAGE:
        message = _parse_message(body.get("message"), prefix)
        if key is None:
            key = {"prefix": message.prefix}
    described = body.get("updateDescription")
    if described is not None:
        described = _parse_update_description(described, prefix)
    ts_ms = body.get("ts_ms")
    if ts_ms is not None and type(ts_ms) is not int:
        ts_ms = _int(ts_ms, f"{prefix}ts_ms")
    ts_us = body.get("ts_us")
    if ts_us is not None and type(ts_us) is not int:
        ts_us = _int(ts_us, f"{prefix}ts_us")
    ts_ns = body.get("ts_ns")
    if ts_ns is not None and type(ts_ns) is not int:
        ts_ns = _int(ts_ns, f"{prefix}ts_ns")
    draft: Any = _new(_EventDraft)
    draft.operation = operation
    draft._source = source  # noqa: SLF001
    draft.before = before
    draft.after = after
    draft._event_id = None  # noqa: SLF001
    draft._captured_at = _PENDING  # noqa: SLF001
    draft.transaction_id = None if transaction is None else transaction.id
    draft.key = key
    draft.ts_ms = ts_ms
    draft.ts_us = ts_us
    draft.ts_ns = ts_ns
    draft.transaction = transaction
    draft.message = message
    draft.update_description = described
    draft.__class__ = CDCEvent
    event: CDCEvent = draft
    if not positioned or operation is _SNAPSHOT:
        # The id derives from row values, which may be too deep to write: derive it now.
        try:
            event_id = _uuid5(_identity(event, None))
        except RecursionError:
            raise CDCParseError(prefix.rstrip(".") or "value", "is nested too deeply") from None
        _set_attribute(event, "_event_id", event_id)
    return event


def _tombstone(key: Any, follows: CDCEvent | None) -> CDCEvent:
    if follows is not None and not isinstance(follows, CDCEvent):
        raise TypeError(f"follows must be a CDCEvent or None, got {follows!r}")
    draft: Any = _new(_EventDraft)
    draft.operation = CDCOperation.TOMBSTONE
    draft._source = None  # noqa: SLF001 - an empty source block, built on first use
    draft.before = draft.after = None
    draft._event_id = draft._captured_at = None  # noqa: SLF001
    draft.transaction_id = draft.transaction = draft.message = None
    draft.ts_ms = draft.ts_us = draft.ts_ns = draft.update_description = None
    draft.key = key
    draft.__class__ = CDCEvent
    event: CDCEvent = draft
    try:
        event_id = _uuid5(_identity(event, follows))
    except RecursionError:
        raise CDCParseError("key", "is nested too deeply") from None
    _set_attribute(event, "_event_id", event_id)
    return event


def _named_counts(
    value: Any, path: str, name_key: str, count_key: str
) -> tuple[tuple[str, int], ...]:
    """An array (or null) of objects each holding a name and an integer count."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CDCParseError(path, "must be an array or null")
    pairs = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            raise CDCParseError(where, f"must be an object with {name_key} and {count_key}")
        name = _text(item.get(name_key), f"{where}.{name_key}")
        count = _int(item.get(count_key), f"{where}.{count_key}")
        if name is None or count is None:
            raise CDCParseError(where, f"must have both {name_key} and {count_key}")
        pairs.append((name, count))
    return tuple(pairs)


def _parse_transaction_event(body: Mapping[str, Any], prefix: str) -> CDCTransactionEvent:
    status_text = body.get("status")
    status = (
        TransactionStatus.__members__.get(status_text) if isinstance(status_text, str) else None
    )
    if status is None:
        raise CDCParseError(f"{prefix}status", f"must be 'BEGIN' or 'END', got {status_text!r}")
    tx_id = _text_or_number(body.get("id"), f"{prefix}id")
    if tx_id is None:
        raise CDCParseError(f"{prefix}id", "is required: the transaction id")
    pairs = _named_counts(
        body.get("data_collections"),
        f"{prefix}data_collections",
        "data_collection",
        "event_count",
    )
    return CDCTransactionEvent(
        status,
        tx_id,
        _int(body.get("ts_ms"), f"{prefix}ts_ms"),
        _int(body.get("event_count"), f"{prefix}event_count"),
        pairs,
    )


# --------------------------------------------------------------------------------------
# Deterministic ids
# --------------------------------------------------------------------------------------

_ID_VERSION = "interlock.cdc_event/1"


_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")  # uuid.NAMESPACE_URL


def _uuid5_of(namespace: bytes, name: str) -> bytes:
    """The 16 bytes ``uuid.uuid5`` gives (RFC 4122 section 4.3), without its UUID object."""
    data = namespace + name.encode("utf-8")
    digest = bytearray(_hashlib().sha1(data, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return bytes(digest)


@cache
def _id_namespace() -> bytes:
    return _uuid5_of(_NAMESPACE_URL, _ID_VERSION)


def _uuid5(parts: list[Any]) -> str:
    """``str(uuid.uuid5(<the id namespace>, <canonical JSON of parts>))``."""
    text = _uuid5_of(_id_namespace(), _canonical_json(parts)).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@cache
def _canonical_encoder() -> Any:
    return _json().JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=_canonical_default
    )


def _canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, ASCII: ``json.dumps`` with those options, encoder kept."""
    text: str = _canonical_encoder().encode(value)
    return text


def _identity(event: CDCEvent, follows: CDCEvent | None) -> list[Any]:
    """What an event id is derived from (see docs/explanation/cdc_event.md)."""
    if event.operation is CDCOperation.TOMBSTONE:
        if follows is not None:
            return ["tombstone-after", follows.event_id]
        return ["tombstone", event.key]
    source = event.source
    position = source.position
    parts: list[Any] = [
        source.engine,
        source.name,
        event.operation.code,
        source.database,
        source.schema,
        source.table,
        list(position.key),
        source.tx_id,  # PostgreSQL's txId, as in Debezium's own CloudEvents id
    ]
    if not position.key:
        # No position: the content is the identity (a redelivered copy is identical).
        parts.append(_payload_for_identity(event))
    elif event.operation is CDCOperation.SNAPSHOT:
        # A snapshot gives every row the same position: the row tells them apart.
        parts.append(event.after if event.after is not None else event.before)
    return parts


def _payload_for_identity(event: CDCEvent) -> list[Any]:
    tx = event.transaction
    message = event.message
    described = event.update_description
    return [
        event.before,
        event.after,
        event.source.fields,
        [event.ts_ms, event.ts_us, event.ts_ns],
        None if tx is None else [tx.id, tx.total_order, tx.data_collection_order],
        None if message is None else [message.prefix, message.content],
        None
        if described is None
        else [described.updated_fields, described.removed_fields, described.truncated_arrays],
    ]


def _canonical_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$binary": _base64().b64encode(value).decode("ascii")}
    if isinstance(value, datetime):
        return {"$date": value.isoformat()}
    if isinstance(value, BsonTimestamp):
        return {"$timestamp": [value.time, value.increment]}
    if isinstance(value, _decimal().Decimal):
        return {"$numberDecimal": str(value)}
    if isinstance(value, _uuid().UUID):
        return {"$uuid": str(value)}
    raise TypeError(f"{type(value).__name__} is not JSON")


# --------------------------------------------------------------------------------------
# MongoDB Extended JSON
# --------------------------------------------------------------------------------------


class _At(Exception):  # noqa: N818 - internal: carries a path while unwinding
    """A malformed Extended JSON value; the path is collected while unwinding."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.parts: list[str] = []


_INFINITY = float("inf")
_INT32 = 2**31
_INT64 = 2**63
_NUMBER_DOUBLE = r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_NUMBER_DECIMAL = r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|Infinity|Inf|NaN)"
_ISO_DATE = (
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
_UUID_TEXT = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_NOT_A_WRAPPER = object()


def _decode_extended_at(value: Any, path: str) -> Any:
    try:
        return _extended(value)
    except _At as exc:
        raise CDCParseError(path + "".join(reversed(exc.parts)), exc.rule) from None
    except RecursionError:
        raise CDCParseError(path, "is nested too deeply") from None


def _extended(value: Any) -> Any:
    if isinstance(value, Mapping):
        if len(value) <= 2 and any(type(k) is str and k[:1] == "$" for k in value):
            decoded = _wrapper(value)
            if decoded is not _NOT_A_WRAPPER:
                return decoded
        out: dict[Any, Any] = {}
        for name, member in value.items():
            if isinstance(member, (Mapping, list)):
                try:
                    member = _extended(member)  # noqa: PLW2901 - decoded in place
                except _At as exc:
                    exc.parts.append(f".{name}")
                    raise
            out[name] = member
        return out
    if isinstance(value, list):
        items = []
        for index, member in enumerate(value):
            if isinstance(member, (Mapping, list)):
                try:
                    member = _extended(member)  # noqa: PLW2901 - decoded in place
                except _At as exc:
                    exc.parts.append(f"[{index}]")
                    raise
            items.append(member)
        return items
    return value


def _wrapper(value: Mapping[Any, Any]) -> Any:
    """Decode one type wrapper, or return _NOT_A_WRAPPER for a plain document."""
    if len(value) == 2:
        if value.keys() == {"$binary", "$type"}:  # v1 (legacy) binary
            return _binary(value["$binary"], value["$type"])
        return _NOT_A_WRAPPER
    ((name, inner),) = value.items()
    decode = _WRAPPERS.get(name)
    if decode is None:
        return _NOT_A_WRAPPER
    try:
        return decode(inner)
    except _At as exc:
        exc.parts.append(f".{name}")
        raise


def _oid(inner: object) -> str:
    if not isinstance(inner, str) or _regex("[0-9A-Fa-f]{24}").fullmatch(inner) is None:
        raise _At("an ObjectId is 24 hexadecimal digits")
    return inner


def _number_int(inner: object) -> int:
    return _wrapped_int(inner, _INT32, "a $numberInt is a string of a 32-bit integer")


def _number_long(inner: object) -> int:
    return _wrapped_int(inner, _INT64, "a $numberLong is a string of a 64-bit integer")


def _binary_v2(inner: object) -> bytes | UUID:
    if not isinstance(inner, Mapping) or inner.keys() != {"base64", "subType"}:
        raise _At("a $binary holds base64 and subType")
    return _binary(inner["base64"], inner["subType"])


def _uuid_text(inner: object) -> UUID:
    if not isinstance(inner, str) or _regex(_UUID_TEXT).fullmatch(inner) is None:
        raise _At("a $uuid is 32 hexadecimal digits in the 8-4-4-4-12 form")
    value: UUID = _uuid().UUID(inner)
    return value


def _symbol(inner: object) -> str:
    if not isinstance(inner, str):
        raise _At("a $symbol is a string")
    return inner


def _undefined(inner: object) -> None:
    if inner is not True:
        raise _At("$undefined must be true")


def _wrapped_int(inner: object, bound: int, rule: str) -> int:
    number = _decimal_int(inner) if isinstance(inner, str) else None
    if number is None or not -bound <= number < bound:
        raise _At(rule)
    return number


def _number_double(inner: object) -> float:
    if inner in ("Infinity", "-Infinity", "NaN"):
        return float(str(inner))
    if not isinstance(inner, str) or _regex(_NUMBER_DOUBLE).fullmatch(inner) is None:
        raise _At("a $numberDouble is a decimal number string, Infinity, -Infinity or NaN")
    return float(inner)


def _number_decimal(inner: object) -> Decimal:
    if not isinstance(inner, str) or _regex(_NUMBER_DECIMAL).fullmatch(inner) is None:
        raise _At("a $numberDecimal is a decimal number string, Infinity or NaN")
    try:
        number: Decimal = _decimal().Decimal(inner)
    except (ArithmeticError, ValueError):  # decimal.InvalidOperation
        raise _At("a $numberDecimal is a decimal number string, Infinity or NaN") from None
    return number


def _binary(data: object, subtype: object) -> bytes | UUID:
    if not isinstance(data, str):
        raise _At("binary data is Base64 text")
    if not isinstance(subtype, str) or _regex("[0-9A-Fa-f]{1,2}").fullmatch(subtype) is None:
        raise _At("a binary subtype is one or two hexadecimal digits")
    try:
        raw: bytes = _base64().b64decode(data.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
        raise _At("binary data is not RFC 4648 Base64") from None
    if int(subtype, 16) == 4 and len(raw) == 16:
        uuid_value: UUID = _uuid().UUID(bytes=raw)
        return uuid_value
    return raw


def _date(inner: object) -> datetime:
    if isinstance(inner, Mapping) and inner.keys() == {"$numberLong"}:
        millis = _wrapped_int(inner["$numberLong"], _INT64, "a $date holds a $numberLong")
    elif type(inner) is int:
        millis = inner
    elif isinstance(inner, str):
        return _iso_date(inner)
    else:
        raise _At("a $date is an ISO 8601 string or a $numberLong of milliseconds")
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise _At("the date is outside the range of Python's datetime") from None


def _iso_date(text: str) -> datetime:
    match = _regex(_ISO_DATE).fullmatch(text)
    if match is None:
        raise _At("a $date string is RFC 3339 (YYYY-MM-DDTHH:MM:SS[.fff]Z)")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone in ("Z", "z"):
        offset = timedelta(0)
    else:
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if zone[0] == "-":
            offset = -offset
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=timezone(offset),
        )
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _At(f"{text!r} names a date or time that does not exist") from None


def _timestamp(inner: object) -> BsonTimestamp:
    if isinstance(inner, Mapping) and inner.keys() == {"t", "i"}:
        seconds, increment = inner["t"], inner["i"]
        if (
            type(seconds) is int
            and type(increment) is int
            and 0 <= seconds < 2**32
            and 0 <= increment < 2**32
        ):
            return BsonTimestamp(seconds, increment)
    raise _At("a $timestamp holds t and i, unsigned 32-bit integers")


_WRAPPERS: dict[str, Callable[[Any], Any]] = {
    "$oid": _oid,
    "$numberInt": _number_int,
    "$numberLong": _number_long,
    "$numberDouble": _number_double,
    "$numberDecimal": _number_decimal,
    "$binary": _binary_v2,
    "$uuid": _uuid_text,
    "$date": _date,
    "$timestamp": _timestamp,
    "$symbol": _symbol,
    "$undefined": _undefined,
}


def _encode_extended(value: Any) -> Any:
    """Decoded values back to JSON: relaxed Extended JSON for the non-JSON types."""
    if isinstance(value, dict):
        return {name: _encode_extended(member) for name, member in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_extended(member) for member in value]
    if isinstance(value, float):
        if value != value:  # noqa: PLR0124 - NaN is the only value unequal to itself
            return {"$numberDouble": "NaN"}
        if value in (_INFINITY, -_INFINITY):
            return {"$numberDouble": "Infinity" if value > 0 else "-Infinity"}
        return value
    if value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = _base64().b64encode(value).decode("ascii")
        return {"$binary": {"base64": text, "subType": "00"}}
    if isinstance(value, datetime):
        moment = value.astimezone(timezone.utc)
        if moment.microsecond % 1000 == 0 and moment.year >= 1970:
            return {"$date": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        if moment.microsecond % 1000 == 0:
            millis = (moment - _EPOCH) // timedelta(milliseconds=1)
            return {"$date": {"$numberLong": str(millis)}}
        return {"$date": moment.isoformat(timespec="microseconds").replace("+00:00", "Z")}
    if isinstance(value, BsonTimestamp):
        return {"$timestamp": {"t": value.time, "i": value.increment}}
    if isinstance(value, _decimal().Decimal):
        return {"$numberDecimal": str(value)}
    if isinstance(value, _uuid().UUID):
        text = _base64().b64encode(value.bytes).decode("ascii")
        return {"$binary": {"base64": text, "subType": "04"}}
    return value


# --------------------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------------------


def _same(left: Any, right: Any) -> bool:
    return left is right or bool(left == right)


def _lookup(document: dict[str, Any] | None, path: str, *, nested: bool) -> Any:
    """A field of a row image, or ABSENT; MongoDB paths go through documents and arrays."""
    if document is None:
        return ABSENT
    if not nested or path in document:
        return document.get(path, ABSENT)
    current: Any = document
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return ABSENT
    return current


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(name): _jsonable(member) for name, member in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(member) for member in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _base64().b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, BsonTimestamp):
        return {"t": value.time, "i": value.increment}
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)  # Decimal, UUID


def _masked(value: Any, hidden: frozenset[str]) -> Any:
    if isinstance(value, dict) and hidden:
        return {
            str(name): "***" if name in hidden else _jsonable(member)
            for name, member in value.items()
        }
    return _jsonable(value)


def _delete_handling(value: object) -> DeleteHandling:
    if isinstance(value, DeleteHandling):
        return value
    if isinstance(value, str):
        for mode in DeleteHandling:
            if mode.value == value:
                return mode
    names = ", ".join(mode.value for mode in DeleteHandling)
    raise ValueError(f"delete_handling must be a DeleteHandling or one of {names}; got {value!r}")


def _add_field_names(names: object) -> tuple[str, ...]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"add_fields must be an iterable of field names, got {names!r}")
    out = tuple(names)
    for name in out:
        if not isinstance(name, str) or not name:
            raise ValueError(f"add_fields holds non-empty field names, got {name!r}")
    return out


def _source_members(source: CDCSourceMetadata) -> dict[str, Any]:
    """A source block for an event built without one (constructed directly)."""
    members: dict[str, Any] = {
        "connector": source.engine or None,
        "name": source.name or None,
        "version": source.version or None,
        "snapshot": source.snapshot.value if source.snapshot.is_snapshot else None,
        "db": source.database or None,
        "ts_ms": source.ts_ms,
        "ts_us": source.ts_us,
        "ts_ns": source.ts_ns,
    }
    if source.engine == "mongodb":
        members["collection"] = source.table or None
        members["rs"] = source.replica_set
        members["ord"] = source.ord
    else:
        members["schema"] = source.schema or None
        members["table"] = source.table or None
    lsn = None if source.lsn is None else _decimal_int(source.lsn)
    typed = {
        "lsn": source.lsn if lsn is None else lsn,
        "server_id": source.server_id,
        "txId": source.tx_id,
        "xmin": source.xmin,
        "sequence": None
        if source.sequence is None
        else _canonical_json([None if n is None else str(n) for n in source.sequence]),
        "file": source.binlog_file,
        "pos": source.binlog_pos,
        "row": source.binlog_row,
        "gtid": source.gtid,
        "thread": source.thread,
        "query": source.query,
        "change_lsn": source.change_lsn,
        "commit_lsn": source.commit_lsn,
        "event_serial_no": source.event_serial_no,
    }
    members.update((name, value) for name, value in typed.items() if value is not None)
    return {name: value for name, value in members.items() if value is not None}


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _uri_segment(text: str) -> str:
    """Percent-encode everything but RFC 3986 unreserved characters (UTF-8 bytes)."""
    out = []
    for ch in text:
        if ch in _UNRESERVED:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _rfc3339(nanos: int | None, micros: int | None, millis: int | None) -> str | None:
    for value, digits in ((nanos, 9), (micros, 6), (millis, 3)):
        if value is None:
            continue
        seconds, fraction = divmod(value, 10**digits)
        try:
            moment = _EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            return None
        return f"{moment.isoformat()[:19]}.{fraction:0{digits}d}Z"
    return None


_JSON_MEDIA = r"[A-Za-z0-9!#$&^_.+-]+/(?:json|[A-Za-z0-9!#$&^_.+-]*\+json)(?:[ \t]*;.*)?"


def _is_json_media(media_type: str) -> bool:
    return _regex(_JSON_MEDIA).fullmatch(media_type.strip().lower()) is not None


# Debezium's CloudEvents converter: extension name (after "iodebezium") -> payload member.
_EXTENSION_SOURCE_NAMES = {
    "tsms": "ts_ms",
    "tsus": "ts_us",
    "tsns": "ts_ns",
    "serverid": "server_id",
    "changelsn": "change_lsn",
    "commitlsn": "commit_lsn",
    "eventserialno": "event_serial_no",
    "lastsnapshotrecord": "last_snapshot_record",
}
_EXTENSION_TRANSACTION_NAMES = {
    "txid": "id",
    "txtotalorder": "total_order",
    "txdatacollectionorder": "data_collection_order",
}
_DATA_MEMBERS = ("before", "after", "updateDescription")


def _payload_from_extensions(
    event: Mapping[str, Any], data: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A Debezium payload from a CloudEvent of Debezium's converter, and where each came from."""
    source: dict[str, Any] = {}
    transaction: dict[str, Any] = {}
    body: dict[str, Any] = {name: data[name] for name in _DATA_MEMBERS if name in data}
    where: dict[str, str] = {}
    for name, value in event.items():
        if not isinstance(name, str) or not name.startswith("iodebezium") or value is None:
            continue
        rest = name[len("iodebezium") :]
        if rest == "op":
            body["op"] = value
            where["op"] = name
        elif rest in _EXTENSION_TRANSACTION_NAMES:
            member = _EXTENSION_TRANSACTION_NAMES[rest]
            transaction[member] = value
            where[f"transaction.{member}"] = name
        else:
            member = _EXTENSION_SOURCE_NAMES.get(rest, rest)
            source[member] = value
            where[f"source.{member}"] = name
    if "op" not in body:
        raise CDCParseError("iodebeziumop", "is required when data is not a whole Debezium payload")
    body["source"] = source
    if transaction:
        body["transaction"] = transaction
    return body, where
