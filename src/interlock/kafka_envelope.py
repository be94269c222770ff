# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Kafka records without a Kafka client: the CloudEvents binding, partitioning, dead letters.

Verdict:
    Use it when an integration produces or consumes CloudEvents on Kafka and you want the
    record shapes every client uses (topic, key bytes, value bytes, headers as ``(str,
    bytes)`` pairs) built and read exactly as the CloudEvents Kafka binding, Kafka's
    default partitioner, Kafka Connect and Spring Kafka do, so a Java, Go or Python
    service on the same topic agrees with you byte for byte.
    Do not use it when you need the client itself (connections, offsets, consumer groups,
    transactions) or schema-registry formats (Avro, Protobuf): the module builds and reads
    records, it never talks to a broker. Pass its records to confluent-kafka, kafka-python
    or aiokafka.

Prevents:
    - Lossy events: binary mode (``ce_`` headers, ``content-type``, data in the value) and
      structured mode (``application/cloudevents+json``) round-trip every valid event;
      an event without data is a tombstone in binary mode only, as the binding says.
    - Misrouted keys: ``partition_for`` is Kafka's own murmur2 partitioner (seed
      ``0x9747b28c``, ``& 0x7fffffff``, modulo), so a record keyed here lands on the
      partition a Java producer would choose; ``aggregate_key`` gives one stable key per
      aggregate, never Python's salted ``hash()``.
    - Consumers reading a schema they do not know: the ``schemaversion`` attribute is
      checked on consume and an unknown major version is refused by name.
    - Poison records that vanish or loop: a dead-letter record carries the failure in
      Kafka Connect's (``__connect.errors.*``) or Spring Kafka's (``kafka_dlt-*``)
      headers, either one reads back into one value, and retry-topic chains are named
      the way Spring names them.
    - Unidentifiable records: a record without an event id gets a UUID 5 of its topic,
      partition and offset, the same in every process.
    - Records the broker would refuse: illegal topic names, header keys that are not
      text, values that are not bytes, and records over the size limit are refused
      before they reach the client.

References:
    - CloudEvents 1.0.2: Kafka protocol binding (cloudevents/spec, tag v1.0.2,
      cloudevents/bindings/kafka-protocol-binding.md), JSON event format, the
      Partitioning extension (``partitionkey``).
    - Apache Kafka: ``org.apache.kafka.common.utils.Utils.murmur2`` and ``toPositive``
      (the default partitioner for keyed records), ``Topic.validate`` (topic names),
      ``max.message.bytes`` (1 MiB default), the Connect ``DeadLetterQueueReporter``.
    - Spring for Apache Kafka: ``KafkaHeaders.DLT_*``, ``DeadLetterPublishingRecoverer``
      and ``@RetryableTopic`` topic suffixes.

Exceptions:
    KafkaEnvelopeError (ValueError)             root of everything this module raises
    +-- InvalidRecordError                      a record field breaks a rule; .field, .rule
    |   +-- RecordTooLargeError                 over the size limit; .size, .limit
    +-- InvalidTopicError                       an illegal topic name; .topic, .rule
    +-- CloudEventBindingError                  an event <-> record mapping; .attribute, .rule
    +-- UnsupportedSchemaVersionError           an unknown major version; .seen, .supported
    +-- DeadLetterHeaderError                   dead-letter headers missing or malformed; .header

    Configuration mistakes (``partitions=0``, an unknown client flavour, a non-callable)
    raise ``ValueError`` or ``TypeError`` naming the argument.

Example:
    >>> event = {
    ...     "specversion": "1.0",
    ...     "id": "ord-1001",
    ...     "source": "/shop/orders",
    ...     "type": "com.example.order.created",
    ...     "partitionkey": "order:1001",
    ...     "schemaversion": "2.1",
    ...     "data": {"total": "49.90"},
    ... }
    >>> record = to_record(event, "orders")
    >>> record.key, record.value
    (b'order:1001', b'{"total":"49.90"}')
    >>> [name for name, _ in record.headers][:3]
    ['ce_specversion', 'ce_id', 'ce_source']
    >>> from_record(record, supported_majors={2}) == {
    ...     **event,
    ...     "datacontenttype": "application/json",
    ... }
    True
    >>> partition_for(b"foobar", 12)
    6
    >>> failed = KafkaRecord("orders", b"oops", partition=3, offset=42)
    >>> dlq = dead_letter_record(failed, ValueError("bad JSON"), topic="orders.DLT")
    >>> info = DeadLetterInfo.from_headers(dlq.headers)
    >>> info.topic, info.partition, info.offset, info.exception_class
    ('orders', 3, 42, 'ValueError')
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from functools import cache, lru_cache

# typing, json, base64, struct, uuid, re and traceback load only for the type checker or on
# first use: importing this module stays cheap (see docs/explanation/architecture.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Collection
    from types import ModuleType
    from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "RECORD_ID_NAMESPACE",
    "STRUCTURED_CONTENT_TYPE",
    "CloudEventBindingError",
    "ContentMode",
    "DeadLetterDialect",
    "DeadLetterHeaderError",
    "DeadLetterInfo",
    "InvalidRecordError",
    "InvalidTopicError",
    "KafkaEnvelopeError",
    "KafkaRecord",
    "RecordTooLargeError",
    "RetryTopicChain",
    "UnsupportedSchemaVersionError",
    "aggregate_key",
    "check_schema_version",
    "content_mode",
    "dead_letter_record",
    "dead_letter_topic",
    "from_record",
    "murmur2",
    "partition_for",
    "record_event_id",
    "to_record",
    "validate_topic",
]

DEFAULT_MAX_RECORD_BYTES: Final = 1_048_576
"""The default size limit in bytes: 1 MiB, Kafka's default ``max.request.size``."""

RECORD_ID_NAMESPACE: Final = "2176f824-627a-5f9e-bf7a-d46e614fd7eb"
"""The UUID namespace of derived record ids: ``uuid5(NAMESPACE_URL, "urn:interlock:kafka_envelope:record")``."""  # noqa: E501

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=UTF-8"
"""The ``content-type`` header of a structured-mode record (the binding's own example)."""

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class KafkaEnvelopeError(ValueError):
    """Root of every error this module raises on bad input."""


class InvalidRecordError(KafkaEnvelopeError):
    """A record field breaks a rule of the Kafka record format.

    Attributes:
        field: the field concerned (``"key"``, ``"value"``, ``"headers[2]"``, ...).
        rule: the rule that was broken, in words.
    """

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.rule))


class RecordTooLargeError(InvalidRecordError):
    """A record is larger than the configured limit.

    Attributes:
        size: the record's size in bytes (key, value, header keys and values).
        limit: the limit in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        InvalidRecordError.__init__(
            self, "record", f"{size} bytes is over the limit of {limit} bytes"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.size, self.limit))


class InvalidTopicError(KafkaEnvelopeError):
    """A topic name Kafka would refuse.

    Attributes:
        topic: the name as given.
        rule: the rule it breaks.
    """

    def __init__(self, topic: object, rule: str) -> None:
        self.topic = topic
        self.rule = rule
        super().__init__(f"topic {topic!r}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.topic, self.rule))


class CloudEventBindingError(KafkaEnvelopeError):
    """An event cannot be mapped to a record, or a record is not a valid CloudEvent.

    Attributes:
        attribute: the attribute, member or header concerned (``"id"``, ``"ce_time"``,
            ``"content-type"``, ``"value"``).
        rule: the rule that was broken, in words.
    """

    def __init__(self, attribute: str, rule: str) -> None:
        self.attribute = attribute
        self.rule = rule
        super().__init__(f"{attribute}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.attribute, self.rule))


class UnsupportedSchemaVersionError(KafkaEnvelopeError):
    """An event's ``schemaversion`` is missing (when required) or of an unknown major.

    Attributes:
        seen: the version as received (``None`` when missing).
        supported: the major versions this consumer reads, sorted.
    """

    def __init__(self, seen: object, supported: Iterable[int], reason: str = "") -> None:
        self.seen = seen
        self.supported = tuple(sorted(supported))
        self.reason = reason
        majors = ", ".join(map(str, self.supported)) or "none"
        what = "no schema version" if seen is None else f"schema version {seen!r}"
        super().__init__(
            f"{what} is not supported{': ' + reason if reason else ''}; "
            f"this consumer supports major versions {majors}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.seen, self.supported, self.reason))


class DeadLetterHeaderError(KafkaEnvelopeError):
    """Dead-letter headers are missing or malformed.

    Attributes:
        header: the header concerned (or ``"headers"`` for the set as a whole).
        rule: the rule that was broken.
    """

    def __init__(self, header: str, rule: str) -> None:
        self.header = header
        self.rule = rule
        super().__init__(f"{header}: {rule}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.header, self.rule))


# --------------------------------------------------------------------------------------
# Enums
# --------------------------------------------------------------------------------------


class ContentMode(enum.Enum):
    """The two content modes the CloudEvents Kafka binding defines (it has no batch mode)."""

    BINARY = "binary"  # attributes in ce_ headers, data in the value
    STRUCTURED = "structured"  # the whole event as application/cloudevents+json


# Enum members as globals: attribute access on an Enum class is slow on Python 3.11.
_BINARY, _STRUCTURED = ContentMode.BINARY, ContentMode.STRUCTURED


class DeadLetterDialect(enum.Enum):
    """The header conventions a dead-letter record can carry its failure in."""

    KAFKA_CONNECT = "kafka-connect"  # __connect.errors.* headers, text values
    SPRING_KAFKA = "spring-kafka"  # kafka_dlt-* headers, binary partition/offset/timestamp


# --------------------------------------------------------------------------------------
# Lazy imports and small helpers
# --------------------------------------------------------------------------------------


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    import re  # noqa: PLC0415 - deferred: importing this module stays cheap

    return re.compile(pattern)


@cache
def _module(name: str) -> ModuleType:
    import importlib  # noqa: PLC0415 - deferred: importing this module stays cheap

    return importlib.import_module(name)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


_new_object = object.__new__
_set = object.__setattr__  # how a frozen dataclass sets its own fields


# --------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------

_MAX_TOPIC_LENGTH = 249
_TOPICS_SEEN: set[object] = set()  # topic names validate_topic accepted (bounded)
_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@lru_cache(maxsize=1024)
def _topic_problem(topic: str) -> str | None:
    if not topic:
        return "is empty"
    if topic in (".", ".."):
        return "'.' and '..' are not legal topic names"
    if len(topic) > _MAX_TOPIC_LENGTH:
        return f"is {len(topic)} characters long; the limit is {_MAX_TOPIC_LENGTH}"
    bad = [c for c in topic if c not in _TOPIC_CHARS]
    if bad:
        return f"contains {bad[0]!r}; legal characters are ASCII letters, digits, '.', '_', '-'"
    return None


def validate_topic(topic: str) -> str:
    """Return ``topic`` if Kafka accepts it as a topic name, else raise.

    Kafka's rules (``org.apache.kafka.common.internals.Topic``): 1 to 249 characters from
    ``[a-zA-Z0-9._-]``, and neither ``.`` nor ``..``.

    Raises:
        InvalidTopicError: the name breaks a rule (the error says which).
    """
    if type(topic) is not str:
        raise InvalidTopicError(topic, f"must be a str, got {_kind(topic)}")
    problem = _topic_problem(topic)
    if problem is not None:
        raise InvalidTopicError(topic, problem)
    return topic


def dead_letter_topic(topic: str, *, suffix: str = ".DLT") -> str:
    """The dead-letter topic of ``topic``: Spring's ``DeadLetterPublishingRecoverer`` default.

    ``orders`` gives ``orders.DLT``. Pass ``suffix="-dlt"`` for the ``@RetryableTopic``
    convention (see :class:`RetryTopicChain`).

    Raises:
        InvalidTopicError: the resulting name is not a legal topic name.
    """
    validate_topic(topic)
    if not isinstance(suffix, str):
        raise TypeError(f"suffix must be a str, got {suffix!r}")
    return validate_topic(topic + suffix)


@dataclass(frozen=True, slots=True)
class RetryTopicChain:
    """The topics a failing record moves through: main, retry topics, dead-letter topic.

    The default names are those of Spring Kafka's ``@RetryableTopic`` with
    ``SUFFIX_WITH_INDEX_VALUE``: ``orders``, ``orders-retry-0``, ``orders-retry-1``, ...,
    ``orders-dlt``. With ``delays_ms`` the retry topics are suffixed with their delay
    instead (``SUFFIX_WITH_DELAY_VALUE``): ``orders-retry-1000``, ``orders-retry-5000``.

    Attributes:
        topic: the main topic.
        retries: the number of retry topics (0 means straight to the dead-letter topic).
        retry_suffix: the suffix of retry topics (Spring's default ``-retry``).
        dlt_suffix: the suffix of the dead-letter topic (Spring's default ``-dlt``).
        delays_ms: one delay in milliseconds per retry topic, or ``None`` for indexes.
        topics: computed: every topic of the chain in order, the main topic first.
    """

    topic: str
    retries: int
    _: KW_ONLY
    retry_suffix: str = "-retry"
    dlt_suffix: str = "-dlt"
    delays_ms: tuple[int, ...] | None = None
    topics: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        validate_topic(self.topic)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int, got {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries!r}")
        for name in ("retry_suffix", "dlt_suffix"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty str, got {value!r}")
        if self.retry_suffix == self.dlt_suffix:
            raise ValueError(
                f"retry_suffix and dlt_suffix must differ, both are {self.dlt_suffix!r}"
            )
        if self.delays_ms is None:
            parts = [str(i) for i in range(self.retries)]
        else:
            delays = tuple(self.delays_ms)
            if any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in delays):
                raise ValueError(f"delays_ms must be ints >= 0, got {self.delays_ms!r}")
            if len(delays) != self.retries:
                raise ValueError(
                    f"delays_ms has {len(delays)} delays for {self.retries} retries: "
                    "give one delay per retry topic"
                )
            if len(set(delays)) != len(delays):
                raise ValueError(
                    f"delays_ms repeats a delay, so two topics would share a name: {delays!r}"
                )
            _set(self, "delays_ms", delays)
            parts = [str(d) for d in delays]
        names = (
            self.topic,
            *(f"{self.topic}{self.retry_suffix}-{part}" for part in parts),
            self.topic + self.dlt_suffix,
        )
        for name in names:
            validate_topic(name)
        _set(self, "topics", names)

    @property
    def retry_topics(self) -> tuple[str, ...]:
        """The retry topics in the order a record visits them."""
        return self.topics[1:-1]

    @property
    def dead_letter_topic(self) -> str:
        """The last topic: where a record goes when every retry failed."""
        return self.topics[-1]

    def next_topic(self, current: str) -> str | None:
        """Where a record that failed on ``current`` goes next; ``None`` after the last topic.

        Raises:
            ValueError: ``current`` is not a topic of this chain.
        """
        try:
            index = self.topics.index(current)
        except ValueError:
            raise ValueError(f"{current!r} is not a topic of the chain {self.topics!r}") from None
        return self.topics[index + 1] if index + 1 < len(self.topics) else None


# --------------------------------------------------------------------------------------
# The record
# --------------------------------------------------------------------------------------

_TIMESTAMP_TYPES = frozenset({"CreateTime", "LogAppendTime"})
_CLIENT_FLAVOURS = ("confluent-kafka", "kafka-python")


def _check_optional_bytes(name: str, value: object) -> bytes | None:
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidRecordError(name, f"must be bytes or None, got {_kind(value)}")


def _check_headers(headers: object) -> tuple[tuple[str, bytes | None], ...]:
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes, bytearray)):
        items = headers
    else:
        raise InvalidRecordError(
            "headers", f"must be a sequence of (str, bytes) pairs, got {_kind(headers)}"
        )
    out = []
    for index, item in enumerate(items):
        where = f"headers[{index}]"
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise InvalidRecordError(where, f"must be a (key, value) pair, got {item!r}")
        key, value = item
        if type(key) is not str:
            raise InvalidRecordError(where, f"the key must be a str, got {_kind(key)}")
        if not key:
            raise InvalidRecordError(where, "the key must not be empty")
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidRecordError(where, "the key is not encodable as UTF-8") from None
        out.append((key, _check_optional_bytes(where, value)))
    return tuple(out)


def _check_optional_int(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRecordError(name, f"must be an int or None, got {_kind(value)}")
    if value < 0:
        raise InvalidRecordError(name, f"must be >= 0, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One Kafka record in the plain shape every client uses; frozen.

    Attributes:
        topic: a legal topic name (see :func:`validate_topic`).
        value: the value bytes, or ``None`` (a tombstone on a compacted topic).
        key: the key bytes, or ``None``.
        headers: ``(key, value)`` pairs in order; duplicates are allowed and kept. Keys are
            non-empty text, values bytes or ``None``. A mapping or any iterable of pairs is
            accepted and stored as a tuple of tuples.
        partition: the partition (>= 0), or ``None`` to let the producer choose.
        offset: the offset of a consumed record (>= 0), else ``None``.
        timestamp_ms: milliseconds since the epoch (>= 0), or ``None``.
        timestamp_type: ``"CreateTime"``, ``"LogAppendTime"`` or ``None``.

    ``bytearray`` and ``memoryview`` values are copied to ``bytes``.

    Raises:
        InvalidRecordError: a field has the wrong type or value (the error names it).
        InvalidTopicError: the topic is not a legal topic name.
    """

    topic: str
    value: bytes | None = None
    _: KW_ONLY
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    partition: int | None = None
    offset: int | None = None
    timestamp_ms: int | None = None
    timestamp_type: str | None = None

    def __post_init__(self) -> None:
        validate_topic(self.topic)
        _set(self, "value", _check_optional_bytes("value", self.value))
        _set(self, "key", _check_optional_bytes("key", self.key))
        _set(self, "headers", _check_headers(self.headers))
        _check_optional_int("partition", self.partition)
        _check_optional_int("offset", self.offset)
        _check_optional_int("timestamp_ms", self.timestamp_ms)
        if self.timestamp_type is not None and self.timestamp_type not in _TIMESTAMP_TYPES:
            raise InvalidRecordError(
                "timestamp_type",
                f"must be 'CreateTime', 'LogAppendTime' or None, got {self.timestamp_type!r}",
            )

    @property
    def size_bytes(self) -> int:
        """Key, value, header keys (UTF-8) and header values, in bytes.

        The framing Kafka adds (varints, the batch header) is not counted, so the broker
        sees a few dozen bytes more.
        """
        size = len(self.key or b"") + len(self.value or b"")
        for name, value in self.headers:
            size += len(name.encode("utf-8")) + len(value or b"")
        return size

    def check_size(self, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> KafkaRecord:
        """Return the record if :attr:`size_bytes` is at most ``max_bytes``, else raise.

        Raises:
            RecordTooLargeError: the record is larger than ``max_bytes``.
            ValueError: ``max_bytes`` is not a positive int.
        """
        _check_limit(max_bytes)
        size = self.size_bytes
        if size > max_bytes:
            raise RecordTooLargeError(size, max_bytes)
        return self

    def header(self, key: str) -> bytes | None:
        """The value of the LAST header named ``key`` (as Kafka's ``lastHeader``), or ``None``."""
        for name, value in reversed(self.headers):
            if name == key:
                return value
        return None

    def header_values(self, key: str) -> list[bytes | None]:
        """Every value of the headers named ``key``, in order."""
        return [value for name, value in self.headers if name == key]

    @classmethod
    def from_client(cls, message: Any) -> KafkaRecord:
        """Read a record a client delivered, duck-typed; no client is imported.

        - confluent-kafka ``Message``: methods ``topic()``, ``partition()``, ``offset()``,
          ``key()``, ``value()``, ``headers()``, ``timestamp()`` (a ``(type, ms)`` pair:
          1 CreateTime, 2 LogAppendTime, 0 none) and ``error()`` (must be ``None``).
        - kafka-python and aiokafka ``ConsumerRecord``: attributes ``topic``,
          ``partition``, ``offset``, ``key``, ``value``, ``headers``, ``timestamp`` and
          ``timestamp_type`` (0 CreateTime, 1 LogAppendTime).

        A negative partition, offset or timestamp (the clients' "unknown") becomes
        ``None``. Key and value must be bytes: configure the consumer without
        deserializers.

        Raises:
            InvalidRecordError: the message is an error event, or a field is not what a
                record holds (for example a ``str`` value from a string deserializer).
            TypeError: ``message`` looks like neither client's record.
        """
        topic_attr = getattr(message, "topic", None)
        if topic_attr is None:
            raise TypeError(f"{_kind(message)} is not a Kafka client record: it has no topic")
        if callable(topic_attr):  # confluent-kafka
            error_method = getattr(message, "error", None)
            error = error_method() if callable(error_method) else None
            if error is not None:
                raise InvalidRecordError(
                    "error", f"the client delivered an error, not a record: {error}"
                )
            stamp = message.timestamp()
            kind, millis = stamp if isinstance(stamp, tuple) and len(stamp) == 2 else (0, None)
            stamp_type = {1: "CreateTime", 2: "LogAppendTime"}.get(kind)
            fields = (
                message.topic(),
                message.value(),
                message.key(),
                message.headers(),
                message.partition(),
                message.offset(),
                millis if stamp_type is not None else None,
                stamp_type,
            )
        else:  # kafka-python, aiokafka
            kind = getattr(message, "timestamp_type", None)
            stamp_type = {0: "CreateTime", 1: "LogAppendTime"}.get(kind) if kind in (0, 1) else None
            millis = getattr(message, "timestamp", None)
            fields = (
                topic_attr,
                getattr(message, "value", None),
                getattr(message, "key", None),
                getattr(message, "headers", None),
                getattr(message, "partition", None),
                getattr(message, "offset", None),
                millis,
                stamp_type if millis is not None else None,
            )
        topic, value, key, headers, partition, offset, millis, stamp_type = fields
        partition, offset, millis = (
            None if isinstance(n, int) and not isinstance(n, bool) and n < 0 else n
            for n in (partition, offset, millis)
        )
        return cls(
            topic,
            value,
            key=key,
            headers=() if headers is None else headers,
            partition=partition,
            offset=offset,
            timestamp_ms=millis,
            timestamp_type=stamp_type if millis is not None else None,
        )

    def to_producer_kwargs(self, *, client: str = "confluent-kafka") -> dict[str, Any]:
        """Keyword arguments for the client's produce call.

        - ``client="confluent-kafka"``: ``Producer.produce(**kwargs)``: ``topic``,
          ``value``, ``key``, ``headers``, and ``partition`` and ``timestamp`` when set.
        - ``client="kafka-python"`` (also aiokafka): ``send(**kwargs)``: ``topic``,
          ``value``, ``key``, ``headers``, and ``partition`` and ``timestamp_ms`` when set.

        ``headers`` is a list of ``(str, bytes | None)`` pairs, which both accept.

        Raises:
            ValueError: an unknown ``client``.
        """
        if client not in _CLIENT_FLAVOURS:
            raise ValueError(f"client must be one of {_CLIENT_FLAVOURS}, got {client!r}")
        kwargs: dict[str, Any] = {
            "topic": self.topic,
            "value": self.value,
            "key": self.key,
            "headers": list(self.headers),
        }
        if self.partition is not None:
            kwargs["partition"] = self.partition
        if self.timestamp_ms is not None:
            kwargs["timestamp" if client == "confluent-kafka" else "timestamp_ms"] = (
                self.timestamp_ms
            )
        return kwargs


def _trusted_record(
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: tuple[tuple[str, bytes | None], ...],
    *,
    partition: int | None,
    timestamp_ms: int | None,
) -> KafkaRecord:
    """Build a record from fields this module already validated (skips __post_init__)."""
    record = _new_object(KafkaRecord)
    set_topic, set_value, set_key, set_headers, set_partition, set_offset, set_ms, set_type = (
        _RECORD_SLOTS
    )
    set_topic(record, topic)
    set_value(record, value)
    set_key(record, key)
    set_headers(record, headers)
    set_partition(record, partition)
    set_offset(record, None)
    set_ms(record, timestamp_ms)
    set_type(record, None)
    return record


# The slot setters of KafkaRecord: writing them directly skips the frozen __setattr__.
_RECORD_SLOTS = tuple(
    getattr(KafkaRecord, name).__set__
    for name in (
        "topic",
        "value",
        "key",
        "headers",
        "partition",
        "offset",
        "timestamp_ms",
        "timestamp_type",
    )
)


def _check_limit(max_bytes: object) -> None:
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_record_bytes must be a positive int, got {max_bytes!r}")


# --------------------------------------------------------------------------------------
# Partitioning
# --------------------------------------------------------------------------------------

_M32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2`` of ``data``: a signed 32-bit int, as the Java client returns.

    MurmurHash2 with seed ``0x9747b28c``, multiplier ``0x5bd1e995`` and shift 24, reading
    4-byte little-endian blocks. Same value as Java's for the same bytes.

    Raises:
        TypeError: ``data`` is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {_kind(data)}")
    data = bytes(data)
    length = len(data)
    m = 0x5BD1E995
    h = (0x9747B28C ^ length) & _M32
    blocks = length & ~3
    if blocks:
        for block in _module("struct").unpack(f"<{blocks // 4}I", data[:blocks]):
            k = (block * m) & _M32
            k ^= k >> 24
            k = (k * m) & _M32
            h = ((h * m) & _M32) ^ k
    tail = length & 3
    if tail == 3:
        h ^= data[blocks + 2] << 16
    if tail >= 2:
        h ^= data[blocks + 1] << 8
    if tail:
        h ^= data[blocks]
        h = (h * m) & _M32
    h ^= h >> 13
    h = (h * m) & _M32
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a record with ``key``.

    ``toPositive(murmur2(key)) % partitions``, where ``toPositive(n) = n & 0x7fffffff``
    (Java's ``BuiltInPartitioner.partitionForKey``). A record with no key has no fixed
    partition (Kafka spreads those with its sticky partitioner), so ``None`` is refused.

    Raises:
        TypeError: ``key`` is not bytes-like or ``partitions`` not an int.
        ValueError: ``partitions`` is less than 1.
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int):
        raise TypeError(f"partitions must be an int, got {partitions!r}")
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions!r}")
    if key is None:
        raise TypeError("key is None: Kafka gives keyless records no fixed partition")
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def aggregate_key(*parts: str | int) -> bytes:
    """A stable record key for one aggregate: ``aggregate_key("order", 1001) == b"order:1001"``.

    Parts are joined with ``:`` after escaping ``%`` as ``%25`` and ``:`` as ``%3A`` in
    each, so different part lists never give the same key; the result is UTF-8. The key
    is the same in every process and language, unlike Python's salted ``hash()``, so all
    events of one aggregate land on one partition and stay in order.

    Raises:
        TypeError: a part is not a ``str`` or an ``int`` (``bool`` and ``float`` are
            refused: their text is not stable across languages).
        ValueError: no parts, or a part that is not encodable as UTF-8.
    """
    if not parts:
        raise ValueError("aggregate_key needs at least one part")
    texts = []
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, (str, int)):
            raise TypeError(f"aggregate key parts must be str or int, got {part!r}")
        text = str(part)
        if "%" in text or ":" in text:
            text = text.replace("%", "%25").replace(":", "%3A")
        texts.append(text)
    try:
        return ":".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"aggregate key parts must be encodable as UTF-8: {parts!r}") from None


def record_event_id(record: KafkaRecord) -> str:
    """A deterministic event id for a consumed record: a UUID 5 of its coordinates.

    ``str(uuid5(UUID(RECORD_ID_NAMESPACE), f"{topic}/{partition}/{offset}"))``. Topic
    names cannot contain ``/``, so different coordinates never share a name. The same
    record read twice gets the same id in every process.

    Raises:
        InvalidRecordError: the record has no partition or offset (it was not consumed).
        TypeError: ``record`` is not a :class:`KafkaRecord`.
    """
    if not isinstance(record, KafkaRecord):
        raise TypeError(f"record must be a KafkaRecord, got {_kind(record)}")
    if record.partition is None or record.offset is None:
        raise InvalidRecordError(
            "offset" if record.partition is not None else "partition",
            "a derived event id needs the partition and offset of a consumed record",
        )
    uuid = _module("uuid")
    name = f"{record.topic}/{record.partition}/{record.offset}"
    return str(uuid.uuid5(uuid.UUID(RECORD_ID_NAMESPACE), name))


# --------------------------------------------------------------------------------------
# CloudEvents: attribute rules
# --------------------------------------------------------------------------------------

_SPECVERSION = "1.0"
_CORE = frozenset(
    {"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_DATA_MEMBERS = frozenset({"data", "data_base64"})
_NOT_HEADERS = frozenset({"data", "data_base64", "datacontenttype"})
_FAST_CHECKED = frozenset({"source", "time"})
# Event shapes (attribute names in order) the fast binary path has prepared (bounded).
_SHAPES: dict[tuple[str, ...], tuple[Any, tuple[str, ...], int]] = {}
_SKIPPED = frozenset({"specversion", "id", "source", "type", "data", "data_base64"})
# Attribute names whose only rule is "a String": subject, and extension names seen valid
# (added by _check_attribute, bounded so that hostile input cannot grow it forever).
_PLAIN_NAMES: set[str] = {"subject", "specversion", "id", "type"}
_PLAIN_NAMES_MAX = 1024
_HEADER_PREFIX = "ce_"
_CONTENT_TYPE = "content-type"
_JSON_FORMAT = "application/cloudevents+json"
_BATCH_FORMAT = "application/cloudevents-batch+json"
_CE_MEDIA_PREFIX = "application/cloudevents"
_STRUCTURED_HEADER_VALUE = STRUCTURED_CONTENT_TYPE.encode("ascii")
_JSON_HEADER_VALUE = b"application/json"
_STRUCTURED_HEADERS: tuple[tuple[str, bytes | None], ...] = (
    (_CONTENT_TYPE, _STRUCTURED_HEADER_VALUE),
)
_STRUCTURED_HEADERS_SIZE = len(_CONTENT_TYPE) + len(_STRUCTURED_HEADER_VALUE)
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# CloudEvents 1.0.2 "String": no C0/C1 controls, no lone surrogates, no noncharacters.
_FORBIDDEN = (
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(chr(plane * 0x10000 + 0xFFFE) + chr(plane * 0x10000 + 0xFFFF) for plane in range(17))
    + "]"
)
_URI_REFERENCE = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})+"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"  # noqa: S105 - an RFC 7230 token, not a secret
_MEDIA_TYPE = (
    rf"{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"(?:[^\"\\]|\\.)*\"))*[ \t]*"
)
_RFC3339 = (
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:(?:[0-5][0-9]|60)(?:\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_EXTENSION_NAME = r"[a-z0-9]+"


def _check_text(attribute: str, value: object) -> str:
    if type(value) is str and value.isascii() and value.isprintable() and value:
        return value  # fast path: printable ASCII
    if not isinstance(value, str):
        raise CloudEventBindingError(attribute, f"must be a String, got {_kind(value)}")
    if not value:
        raise CloudEventBindingError(attribute, "must be a non-empty String")
    _check_chars(attribute, value)
    return value


def _check_chars(attribute: str, value: str) -> None:
    bad = _regex(_FORBIDDEN).search(value)
    if bad is not None:
        raise CloudEventBindingError(
            attribute, f"contains U+{ord(bad.group()):04X}, which a CloudEvents String forbids"
        )


@lru_cache(maxsize=1024)
def _uri_problem(text: str, absolute: bool) -> str | None:  # noqa: FBT001 - positional: cached
    if _regex(_URI_REFERENCE).fullmatch(text) is None or text.count("#") > 1:
        return f"{text!r} is not an RFC 3986 URI-reference"
    head = _regex(r"[/?#]").split(text, maxsplit=1)[0]
    scheme, colon, _ = head.partition(":")
    if colon and _regex(_SCHEME).fullmatch(scheme) is None:
        return f"{text!r}: {scheme!r} is not a URI scheme"
    if absolute and not colon:
        return f"{text!r} must be an absolute URI with a scheme"
    return None


@lru_cache(maxsize=256)
def _media_problem(text: str) -> str | None:
    if _regex(_MEDIA_TYPE).fullmatch(text) is None:
        return f"{text!r} is not an RFC 2046 media type"
    return None


@lru_cache(maxsize=256)
def _is_json_media(media_type: str | None) -> bool:
    if media_type is None:
        return True
    subtype = media_type.split(";", 1)[0].strip().lower().partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


@lru_cache(maxsize=256)
def _is_text_media(media_type: str) -> bool:
    essence, _, params = media_type.lower().partition(";")
    major, _, subtype = essence.strip().partition("/")
    return (
        major == "text"
        or subtype == "xml"
        or subtype.endswith("+xml")
        or "charset=" in params.replace(" ", "")
    )


@lru_cache(maxsize=256)
def _charset(media_type: str) -> str:
    for param in media_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return "utf-8"


def _check_event(event: object) -> None:
    """Validate a CloudEvents 1.0.2 event given as a mapping; raise CloudEventBindingError."""
    if type(event) is not dict and not isinstance(event, Mapping):
        raise CloudEventBindingError(
            "event", f"must be a mapping of attributes, got {_kind(event)}"
        )
    get = event.get
    version = get("specversion")
    if version != _SPECVERSION:
        if version is None:
            raise CloudEventBindingError("specversion", "is required")
        raise CloudEventBindingError("specversion", f"{version!r} is not supported (only '1.0')")
    event_id, source, event_type = get("id"), get("source"), get("type")
    for name, value in (("id", event_id), ("source", source), ("type", event_type)):
        if value is None:
            raise CloudEventBindingError(name, "is required")
        _check_text(name, value)
    problem = _uri_problem(source, False)  # noqa: FBT003
    if problem is not None:
        raise CloudEventBindingError("source", problem)
    plain = _PLAIN_NAMES
    for name, value in event.items():
        if name in _SKIPPED:
            continue
        # fast path: a known name whose only rule is "a non-empty String", printable ASCII
        if name in plain and type(value) is str and value.isascii() and value.isprintable():
            if value:
                continue
        elif type(name) is not str:
            raise CloudEventBindingError(str(name), "attribute names must be str")
        _check_attribute(name, value)
    if "data" in event and "data_base64" in event:
        raise CloudEventBindingError("data_base64", "an event has data or data_base64, not both")
    if "data_base64" in event:
        _decode_base64(event["data_base64"])
    elif "data" in event:
        data = event["data"]
        dct = get("datacontenttype")
        if not (data is None or isinstance(data, str) or _is_json_media(dct)):
            raise CloudEventBindingError(
                "data",
                f"datacontenttype {dct!r} is not JSON, so data must be a str, not {_kind(data)}",
            )


def _check_attribute(name: str, value: object) -> None:
    if value is None:
        raise CloudEventBindingError(name, "is null: leave an attribute without a value out")
    if name in _CORE:
        text = _check_text(name, value)
        if name == "time":
            if _regex(_RFC3339).fullmatch(text) is None:
                raise CloudEventBindingError("time", f"{text!r} is not an RFC 3339 date-time")
        elif name == "datacontenttype":
            problem = _media_problem(text)
            if problem is not None:
                raise CloudEventBindingError(name, problem)
        elif name == "dataschema":
            problem = _uri_problem(text, True)  # noqa: FBT003
            if problem is not None:
                raise CloudEventBindingError(name, problem)
        return
    if _regex(_EXTENSION_NAME).fullmatch(name) is None:
        raise CloudEventBindingError(
            name, "attribute names use only lower-case ASCII letters and digits"
        )
    if len(_PLAIN_NAMES) < _PLAIN_NAMES_MAX:
        _PLAIN_NAMES.add(name)
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise CloudEventBindingError(
                name, f"Integer {value} is outside the signed 32-bit range"
            )
        return
    if not isinstance(value, str):
        raise CloudEventBindingError(
            name, f"values are String, Integer or Boolean, got {_kind(value)}"
        )
    if not (value.isascii() and value.isprintable()):
        _check_chars(name, value)


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise CloudEventBindingError("data_base64", f"must be a Base64 String, got {_kind(value)}")
    try:
        decoded: bytes = _module("base64").b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):  # binascii.Error is a ValueError
        raise CloudEventBindingError("data_base64", "is not RFC 4648 Base64") from None
    return decoded


def check_schema_version(
    version: object,
    supported_majors: Collection[int],
    *,
    required: bool = False,
) -> int | None:
    """The major of a ``schemaversion`` value, if this consumer supports it; else raise.

    A version is ``MAJOR``, ``MAJOR.MINOR`` or ``MAJOR.MINOR.PATCH`` (decimal digits,
    an optional leading ``v``), or a non-negative Integer meaning the major. Minor and
    patch changes are compatible by definition; only the major is checked. ``None``
    (no version) returns ``None``, unless ``required``.

    Raises:
        UnsupportedSchemaVersionError: the major is not in ``supported_majors``, the
            version is malformed, or it is missing and ``required`` is true.
        TypeError: ``supported_majors`` is not a collection of ints.
    """
    majors = _check_majors(supported_majors)
    return _schema_major(version, majors, required=required)


def _check_majors(supported: object) -> frozenset[int]:
    if isinstance(supported, (str, bytes)) or not isinstance(supported, Iterable):
        raise TypeError(f"supported_majors must be a collection of ints, got {supported!r}")
    majors = frozenset(supported)
    if any(isinstance(m, bool) or not isinstance(m, int) for m in majors):
        raise TypeError(f"supported_majors must hold ints, got {supported!r}")
    return majors


def _schema_major(version: object, majors: frozenset[int], *, required: bool) -> int | None:
    if version is None:
        if required:
            raise UnsupportedSchemaVersionError(None, majors, "the event carries no schemaversion")
        return None
    if isinstance(version, int) and not isinstance(version, bool) and version >= 0:
        major = version
    elif isinstance(version, str) and _regex(r"[vV]?[0-9]{1,9}(?:\.[0-9]{1,9}){0,2}").fullmatch(
        version
    ):
        major = int(version.lstrip("vV").split(".", 1)[0])
    else:
        raise UnsupportedSchemaVersionError(version, majors, "expected MAJOR[.MINOR[.PATCH]]")
    if major not in majors:
        raise UnsupportedSchemaVersionError(version, majors, f"major version {major} is unknown")
    return major


# --------------------------------------------------------------------------------------
# CloudEvents: the Kafka binding
# --------------------------------------------------------------------------------------


@cache
def _encoder() -> Any:
    return _module("json").JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@cache
def _dumps() -> Callable[[object], str]:
    """Compact, strict JSON text: ``_encoder().encode``, or the C encoder built once.

    ``JSONEncoder.encode`` builds a new C encoder on every call; this one is built once
    and reused. It has no cycle check: a cycle ends in RecursionError, which callers
    treat like any other unencodable value.
    """
    encoder = _encoder()
    module = _module("json.encoder")
    make = getattr(module, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return encoder.encode  # type: ignore[no-any-return]
    # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
    #  skipkeys, allow_nan): no cycle check, no sorting, no skipping, no NaN
    chunks = make(None, encoder.default, module.encode_basestring, None, ":", ",", *(False,) * 3)
    join = "".join

    def dumps(value: object) -> str:
        if isinstance(value, str):  # the C encoder wants a container or a scalar
            return encoder.encode(value)  # type: ignore[no-any-return]
        return join(chunks(value, 0))

    global _DUMPS  # noqa: PLW0603 - a lazily built module-level function, set once
    _DUMPS = dumps
    return dumps


_DUMPS: Callable[[object], str] | None = None


def _time_match(text: str) -> object:
    """``_regex(_RFC3339).fullmatch(text)``, with the compiled pattern kept at hand."""
    global _TIME_MATCH  # noqa: PLW0603 - a lazily compiled pattern, set once
    if _TIME_MATCH is None:
        _TIME_MATCH = _regex(_RFC3339).fullmatch
    return _TIME_MATCH(text)


_TIME_MATCH: Callable[[str], object] | None = None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


@cache
def _decoder() -> Any:
    return _module("json").JSONDecoder(parse_constant=_reject_constant)


def _json_bytes(value: object, attribute: str) -> bytes:
    try:
        return _dumps()(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # ValueError: NaN, cycles, surrogates
        raise CloudEventBindingError(attribute, f"cannot be written as JSON: {exc}") from None


def _json_loads(raw: bytes, attribute: str) -> Any:
    try:
        return _decoder().decode(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CloudEventBindingError(attribute, f"is not UTF-8 JSON: {exc}") from None


def _header_text(value: object) -> bytes:
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    return str(value).encode("utf-8")


def to_record(
    event: Mapping[str, Any],
    topic: str,
    *,
    mode: ContentMode = ContentMode.BINARY,
    key: bytes | str | None = None,
    partition: int | None = None,
    timestamp_ms: int | None = None,
    headers: Iterable[tuple[str, bytes | None]] = (),
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> KafkaRecord:
    """A CloudEvent (a structured-mode dict) as a Kafka record, in binary or structured mode.

    - Binary mode: every attribute but the data becomes a ``ce_<name>`` header whose
      value is the attribute's text in UTF-8 (Booleans ``true``/``false``, Integers in
      decimal); ``datacontenttype`` becomes the ``content-type`` header. JSON data (a JSON
      or absent ``datacontenttype``) is written as compact UTF-8 JSON and an absent
      ``datacontenttype`` is sent as ``application/json``; ``str`` data with another media
      type is encoded in its ``charset`` (UTF-8 by default); ``data_base64`` is decoded
      into the value as-is. An event without data has a ``None`` value: a tombstone.
    - Structured mode: the ``content-type`` header is :data:`STRUCTURED_CONTENT_TYPE` and
      the value is the whole event in the JSON format.

    ``key``: the record key (``str`` is encoded as UTF-8). When ``None`` and the event has
    a ``partitionkey`` attribute, that is the key (the binding's Key Mapper for the
    Partitioning extension); the attribute stays in the event. ``headers`` are added after
    the binding's own; they may not be ``content-type`` or start with ``ce_``.

    Raises:
        CloudEventBindingError: the event is not a valid CloudEvent, or binary mode cannot
            carry it (a ``null`` or non-text data with a non-JSON media type).
        InvalidRecordError: an extra header or the key is malformed.
        RecordTooLargeError: the record is larger than ``max_record_bytes``.
        InvalidTopicError: ``topic`` is not a legal topic name.
    """
    if (  # the common case in one lane: a plain event, nothing else asked
        (mode is _BINARY or mode is _STRUCTURED)
        and type(event) is dict
        and key is None
        and not headers
        and partition is None
        and timestamp_ms is None
        and topic in _TOPICS_SEEN
    ):
        record = _fast_record(event, topic, max_record_bytes, binary=mode is _BINARY)
        if record is not None:
            return record
    if mode is not _BINARY and mode is not _STRUCTURED:
        raise TypeError(f"mode must be a ContentMode, got {mode!r}")
    if topic not in _TOPICS_SEEN:
        validate_topic(topic)
        if len(_TOPICS_SEEN) < 1024:
            _TOPICS_SEEN.add(topic)
    parts = _validated(event, binary=mode is _BINARY)
    if key is None:
        partition_key = event.get("partitionkey")
        if partition_key is not None:
            key = (
                partition_key.encode()
                if type(partition_key) is str
                else _header_text(partition_key)
            )
    elif isinstance(key, str):
        try:
            key = key.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRecordError("key", "a str key must be encodable as UTF-8") from None
    else:
        key = _check_optional_bytes("key", key)
    if partition is not None:
        _check_optional_int("partition", partition)
    if timestamp_ms is not None:
        _check_optional_int("timestamp_ms", timestamp_ms)
    extra = _check_headers(headers) if headers else ()
    for name, _ in extra:
        if name == _CONTENT_TYPE or name.startswith(_HEADER_PREFIX):
            raise CloudEventBindingError(
                name, "this header belongs to the binding; put it in the event"
            )
    value: bytes | None
    out: tuple[tuple[str, bytes | None], ...]
    if mode is _STRUCTURED:
        value = _json_bytes(event if type(event) is dict else dict(event), "event")
        out = ((_CONTENT_TYPE, _STRUCTURED_HEADER_VALUE), *extra)
        size = len(value) + len(_CONTENT_TYPE) + len(_STRUCTURED_HEADER_VALUE)
        extra_start = 1
    else:
        value, out, size = parts or _binary_parts(event)
        extra_start = len(out)
        if extra:
            out += extra
    if max_record_bytes != DEFAULT_MAX_RECORD_BYTES:
        _check_limit(max_record_bytes)
    size += len(key or b"")
    for name, raw in out[extra_start:]:
        size += (len(name) if name.isascii() else len(name.encode())) + len(raw or b"")
    if size > max_record_bytes:
        raise RecordTooLargeError(size, max_record_bytes)
    return _trusted_record(topic, value, key, out, partition=partition, timestamp_ms=timestamp_ms)


def _validated(
    event: Mapping[str, Any], *, binary: bool
) -> tuple[bytes | None, tuple[tuple[str, bytes | None], ...], int] | None:
    """Validate ``event`` (cheaply when it is common); in binary mode, its fast parts if any."""
    if type(event) is dict:
        if binary:
            parts = _binary_fast(event)
            if parts is not None:
                return parts
        elif _fast_check(event) is not None:
            return None
    _check_event(event)
    return None


def _fast_record(
    event: dict[str, Any], topic: str, max_record_bytes: int, *, binary: bool
) -> KafkaRecord | None:
    """The record of a common event keyed by its partitionkey, or None to defer."""
    parts = _binary_fast(event) if binary else _structured_fast(event)
    partition_key = event.get("partitionkey")
    if parts is None or not (partition_key is None or type(partition_key) is str):
        return None
    value, out, size = parts
    key = None
    if partition_key is not None:
        key = partition_key.encode()
        size += len(key)
    if size > max_record_bytes:
        return None  # the general path raises RecordTooLargeError
    return _trusted_record(topic, value, key, out, partition=None, timestamp_ms=None)


def _structured_fast(
    event: dict[str, Any],
) -> tuple[bytes | None, tuple[tuple[str, bytes | None], ...], int] | None:
    """Value, headers and size of a common event in structured mode, or None to defer."""
    if _fast_check(event) is None:
        return None
    try:
        value = (_DUMPS or _dumps())(event).encode()
    except (TypeError, ValueError, RecursionError):
        return None
    return value, _STRUCTURED_HEADERS, len(value) + _STRUCTURED_HEADERS_SIZE


def _binary_parts(
    event: Mapping[str, Any],
) -> tuple[bytes | None, tuple[tuple[str, bytes | None], ...], int]:
    """Headers and value of a validated event in binary mode, and their size in bytes."""
    headers: list[tuple[str, bytes | None]] = []
    dct = event.get("datacontenttype")
    append = headers.append
    for name, attr in event.items():
        if name in _NOT_HEADERS:
            continue
        text = attr.encode() if type(attr) is str else _header_text(attr)
        append(("ce_" + name, text))
    value: bytes | None = None
    if "data_base64" in event:
        value = _decode_base64(event["data_base64"])
    elif "data" in event:
        data = event["data"]
        if _is_json_media(dct):
            if dct is not None and _charset(dct).lower() not in ("utf-8", "utf8"):
                raise CloudEventBindingError(
                    "datacontenttype", f"JSON is UTF-8 (RFC 8259); {dct!r} asks otherwise"
                )
            value = _json_bytes(data, "data")
            if dct is None:
                dct = "application/json"
        elif data is None:
            raise CloudEventBindingError(
                "data",
                f"a null data cannot be carried in a {dct!r} value in binary mode; "
                "use structured mode",
            )
        else:
            try:
                value = data.encode(_charset(dct))
            except (LookupError, ValueError) as exc:  # unknown codec, UnicodeEncodeError
                raise CloudEventBindingError(
                    "data", f"cannot be encoded as {dct!r}: {exc}"
                ) from None
    if dct is not None:
        headers.append(
            (
                _CONTENT_TYPE,
                _JSON_HEADER_VALUE if dct == "application/json" else dct.encode("utf-8"),
            )
        )
    size = len(value or b"")
    for name, raw in headers:  # attribute names are ASCII (checked)
        size += len(name) + len(raw or b"")
    return value, tuple(headers), size


@lru_cache(maxsize=256)
def _is_utf8_json_media(media_type: str) -> bool:
    """A valid JSON media type whose charset, if any, is UTF-8 (the fast path's only kind)."""
    return (
        _media_problem(media_type) is None
        and _is_json_media(media_type)
        and _charset(media_type).lower() in ("utf-8", "utf8")
    )


def _fast_shape(keys: tuple[str, ...]) -> tuple[Any, tuple[str, ...], int] | None:
    """For the attribute names of an event, in order: what the fast path needs, or None.

    ``(getter of the attribute values, their header names, the header names' size)``.
    Only shapes made of known-valid names qualify: no ``data_base64`` or ``dataschema``,
    the four required attributes, and extension names already validated once.
    """
    names = tuple(k for k in keys if k not in _NOT_HEADERS)
    if "data_base64" in keys or not {"specversion", "id", "source", "type"} <= set(names):
        return None
    if any(k not in _PLAIN_NAMES and k not in _FAST_CHECKED for k in names):
        return None  # dataschema, or an extension name not seen yet
    headers = tuple("ce_" + k for k in names)
    shape = (_module("operator").itemgetter(*names), headers, sum(map(len, headers)))
    if len(_SHAPES) < 256:
        _SHAPES[keys] = shape
    return shape


def _fast_check(
    event: dict[str, Any],
) -> tuple[tuple[Any, tuple[str, ...], int], tuple[str, ...], str, str | None] | None:
    """Validate a common event cheaply: ``(shape, values, joined values, dct)`` or None.

    A common event has printable-ASCII String attributes whose names are already known to
    be valid, no ``data_base64`` and a JSON (or no) ``datacontenttype``, so its data may be
    any JSON value. None means "not common": the caller validates with _check_event.
    """
    keys = tuple(event)
    shape = _SHAPES.get(keys) or _fast_shape(keys)
    if shape is None:
        return None
    values = shape[0](event)
    try:
        joined = "".join(values)  # a TypeError when a value is not a str
    except TypeError:
        return None
    if not (joined.isascii() and joined.isprintable() and all(values)):
        return None  # non-ASCII, a control character or an empty String
    get = event.get
    if get("specversion") != _SPECVERSION:
        return None
    if _uri_problem(get("source"), False) is not None:  # noqa: FBT003
        return None
    time = get("time")
    if time is not None and _time_match(time) is None:
        return None
    dct = get("datacontenttype")
    if dct is not None and (type(dct) is not str or not _is_utf8_json_media(dct)):
        return None
    return shape, values, joined, dct


def _binary_fast(
    event: dict[str, Any],
) -> tuple[bytes | None, tuple[tuple[str, bytes | None], ...], int] | None:
    """:func:`_binary_parts` of a common event in one pass, validating as it goes.

    Handles printable-ASCII String attributes of names already known to be valid, and
    JSON data. Returns ``None`` for anything else (or anything wrong): the caller then
    takes the general path, which validates fully and names the problem.
    """
    checked = _fast_check(event)
    if checked is None:
        return None
    (_, header_names, size), values, joined, dct = checked
    headers = list(zip(header_names, map(str.encode, values), strict=True))
    size += len(joined)
    value = None
    if "data" in event:
        try:
            value = (_DUMPS or _dumps())(event["data"]).encode()
        except (TypeError, ValueError, RecursionError):
            return None
        size += len(value)
        if dct is None:
            dct = "application/json"
    if dct is not None:
        raw = _JSON_HEADER_VALUE if dct == "application/json" else dct.encode()
        headers.append((_CONTENT_TYPE, raw))
        size += len(_CONTENT_TYPE) + len(raw)
    return value, tuple(headers), size


def content_mode(record: KafkaRecord) -> ContentMode | None:
    """How ``record`` carries a CloudEvent, judged by the binding's rules; ``None`` if not one.

    A ``content-type`` starting with ``application/cloudevents`` (any case) is
    structured mode; otherwise a record with a ``ce_specversion`` header is binary mode;
    anything else is not a CloudEvent.
    """
    ct = record.header(_CONTENT_TYPE)
    if ct is not None and ct[: len(_CE_MEDIA_PREFIX)].lower() == _CE_MEDIA_PREFIX.encode():
        return ContentMode.STRUCTURED
    if record.header(_HEADER_PREFIX + "specversion") is not None:
        return ContentMode.BINARY
    return None


def _utf8_header(name: str, raw: bytes | None) -> str:
    if raw is None:
        raise CloudEventBindingError(name, "has a null value")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CloudEventBindingError(name, "is not UTF-8 text") from None


def from_record(
    record: KafkaRecord,
    *,
    supported_majors: Collection[int] | None = None,
    require_schema_version: bool = False,
    fill_missing_id: bool = False,
) -> dict[str, Any]:
    """Read the CloudEvent a record carries, as a structured-mode dict; the mode is detected.

    A ``content-type`` starting with ``application/cloudevents`` is structured mode (only
    ``application/cloudevents+json`` in UTF-8 is read); anything else is binary mode.
    In binary mode ``ce_`` headers become attributes (their values as strings) and
    ``content-type`` the ``datacontenttype``; a ``None`` value means no data; a JSON
    media type's value is parsed into ``data``, a textual one (``text/*``, XML, or a
    ``charset`` parameter) decoded into a ``str`` ``data``, any other value (or one
    without ``content-type``) becomes ``data_base64``. In structured mode ``null``
    attributes are read as absent.

    - ``supported_majors``: when given, the ``schemaversion`` attribute is checked with
      :func:`check_schema_version`; ``require_schema_version`` refuses an event without one.
    - ``fill_missing_id``: an event without ``id`` gets :func:`record_event_id` instead of
      being refused.

    Raises:
        CloudEventBindingError: the record is not a valid CloudEvent (the error names the
            header or attribute), or is a batch, which the Kafka binding does not define.
        UnsupportedSchemaVersionError: see ``supported_majors``.
        TypeError: ``record`` is not a :class:`KafkaRecord`.
    """
    if not isinstance(record, KafkaRecord):
        raise TypeError(
            f"record must be a KafkaRecord, got {_kind(record)} (see KafkaRecord.from_client)"
        )
    majors = None if supported_majors is None else _check_majors(supported_majors)
    content_types = record.header_values(_CONTENT_TYPE)
    if len(content_types) > 1:
        raise CloudEventBindingError(_CONTENT_TYPE, "the header appears more than once")
    content_type = _utf8_header(_CONTENT_TYPE, content_types[0]).strip() if content_types else None
    essence = "" if content_type is None else content_type.split(";", 1)[0].strip().lower()
    if essence.startswith(_CE_MEDIA_PREFIX):
        event = _read_structured(record, content_type or "", essence)
    else:
        event = _read_binary(record, content_type)
    if fill_missing_id and "id" not in event:
        event["id"] = record_event_id(record)
    _check_event(event)
    if majors is not None:
        _schema_major(event.get("schemaversion"), majors, required=require_schema_version)
    return event


def _read_structured(record: KafkaRecord, content_type: str, essence: str) -> dict[str, Any]:
    if essence == _BATCH_FORMAT:
        raise CloudEventBindingError(_CONTENT_TYPE, "the Kafka binding defines no batch mode")
    if essence != _JSON_FORMAT:
        raise CloudEventBindingError(
            _CONTENT_TYPE, f"event format {essence!r} is not supported (JSON only)"
        )
    charset = _charset(content_type).lower()
    if charset not in ("utf-8", "utf8"):
        raise CloudEventBindingError(_CONTENT_TYPE, f"JSON must be UTF-8, not charset {charset!r}")
    if record.value is None:
        raise CloudEventBindingError("value", "a structured-mode record needs a value")
    parsed = _json_loads(record.value, "value")
    if type(parsed) is not dict:
        raise CloudEventBindingError("value", f"must be a JSON object, got {_kind(parsed)}")
    return {k: v for k, v in parsed.items() if v is not None or k == "data"}


def _read_binary(record: KafkaRecord, content_type: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for name, raw in record.headers:
        if not name.startswith(_HEADER_PREFIX):
            continue
        attribute = name[len(_HEADER_PREFIX) :]
        if attribute in event:
            raise CloudEventBindingError(name, "the header appears more than once")
        if attribute in _DATA_MEMBERS or attribute == "datacontenttype":
            raise CloudEventBindingError(name, f"{attribute!r} is not carried in a ce_ header")
        event[attribute] = _utf8_header(name, raw)
    if content_type is not None:
        event["datacontenttype"] = content_type
    value = record.value
    if value is not None:
        if content_type is not None and _is_json_media(content_type):
            charset = _charset(content_type).lower()
            if charset not in ("utf-8", "utf8"):
                raise CloudEventBindingError(
                    _CONTENT_TYPE, f"JSON must be UTF-8, not charset {charset!r}"
                )
            event["data"] = _json_loads(value, "value")
        elif content_type is not None and _is_text_media(content_type):
            try:
                event["data"] = value.decode(_charset(content_type))
            except (LookupError, ValueError) as exc:  # unknown codec, UnicodeDecodeError
                raise CloudEventBindingError(
                    "value", f"does not decode as {content_type!r}: {exc}"
                ) from None
        else:
            event["data_base64"] = _module("base64").b64encode(value).decode("ascii")
    return event


# --------------------------------------------------------------------------------------
# Dead letters
# --------------------------------------------------------------------------------------

_CONNECT = "__connect.errors."
_SPRING = "kafka_dlt-"
_CONNECT_HEADERS = (
    ("topic", "topic"),
    ("partition", "partition"),
    ("offset", "offset"),
    ("connector_name", "connector.name"),
    ("task_id", "task.id"),
    ("stage", "stage"),
    ("class_name", "class.name"),
    ("exception_class", "exception.class.name"),
    ("exception_message", "exception.message"),
    ("stacktrace", "exception.stacktrace"),
)
_CONNECT_INTS = frozenset({"partition", "offset", "task_id"})
_SPRING_TEXT = (
    ("topic", "original-topic"),
    ("timestamp_type", "original-timestamp-type"),
    ("consumer_group", "original-consumer-group"),
    ("exception_class", "exception-fqcn"),
    ("cause_class", "exception-cause-fqcn"),
    ("exception_message", "exception-message"),
    ("stacktrace", "exception-stacktrace"),
)
_SPRING_INTS = (
    ("partition", "original-partition", 4),
    ("offset", "original-offset", 8),
    ("timestamp_ms", "original-timestamp", 8),
)
_SPRING_KEY_ERRORS = {
    "exception_class": "key-exception-fqcn",
    "exception_message": "key-exception-message",
    "stacktrace": "key-exception-stacktrace",
}


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    """Why and from where a record was dead-lettered, in either header dialect; frozen.

    Attributes:
        dialect: the header dialect this was read from, or is written in.
        topic: the topic the failed record was consumed from.
        partition: its partition, or ``None``.
        offset: its offset, or ``None``.
        exception_class: the error's class name (a Java FQCN, or a Python
            ``module.QualName``; builtins without a module), or ``None``.
        exception_message: the error's message, or ``None``.
        stacktrace: the formatted stack trace, or ``None``.
        timestamp_ms, timestamp_type, consumer_group, cause_class: Spring Kafka only: the
            record's timestamp and its type (``"CreateTime"``, ...), the consumer group, and
            the class of the error's cause.
        key_error: Spring Kafka only: the key (not the value) failed, so the
            ``kafka_dlt-key-exception-*`` headers carry the error.
        connector_name, task_id, stage, class_name: Kafka Connect only: the connector,
            its task number, the stage that failed (``VALUE_CONVERTER``, ``TASK_PUT``,
            ...) and the class executing it.
    """

    dialect: DeadLetterDialect
    topic: str
    partition: int | None = None
    offset: int | None = None
    exception_class: str | None = None
    exception_message: str | None = None
    stacktrace: str | None = None
    _: KW_ONLY
    timestamp_ms: int | None = None
    timestamp_type: str | None = None
    consumer_group: str | None = None
    cause_class: str | None = None
    key_error: bool = False
    connector_name: str | None = None
    task_id: int | None = None
    stage: str | None = None
    class_name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.dialect, DeadLetterDialect):
            raise TypeError(f"dialect must be a DeadLetterDialect, got {self.dialect!r}")
        if not isinstance(self.topic, str) or not self.topic:
            raise TypeError(f"topic must be a non-empty str, got {self.topic!r}")
        for name in (
            "exception_class",
            "exception_message",
            "stacktrace",
            "timestamp_type",
            "consumer_group",
            "cause_class",
            "connector_name",
            "stage",
            "class_name",
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str or None, got {value!r}")
            if value is not None and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{name} is not encodable as UTF-8: {value!r}") from None
        limits = {"partition": 2**31, "offset": 2**63, "timestamp_ms": 2**63, "task_id": 2**31}
        for name, limit in limits.items():
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int or None, got {value!r}")
            if value is not None and not -limit <= value < limit:
                raise ValueError(
                    f"{name} {value} does not fit the header's signed {limit.bit_length()}-bit int"
                )
        if not isinstance(self.key_error, bool):
            raise TypeError(f"key_error must be a bool, got {self.key_error!r}")
        if self.key_error and self.dialect is not DeadLetterDialect.SPRING_KAFKA:
            raise ValueError(
                "key_error is a Spring Kafka header convention; dialect is Kafka Connect"
            )
        if self.key_error and self.exception_class is None:
            raise ValueError("key_error needs the exception_class of the key's error")

    @classmethod
    def from_exception(
        cls,
        record: KafkaRecord,
        error: BaseException,
        *,
        dialect: DeadLetterDialect = DeadLetterDialect.KAFKA_CONNECT,
        include_stacktrace: bool = True,
        consumer_group: str | None = None,
        key_error: bool = False,
        connector_name: str | None = None,
        task_id: int | None = None,
        stage: str | None = None,
        class_name: str | None = None,
    ) -> DeadLetterInfo:
        """Describe the failure of ``record`` with ``error``.

        ``exception_class`` is ``module.QualName`` (``QualName`` for builtins),
        ``exception_message`` is ``str(error)`` (``None`` when empty), ``stacktrace`` the
        formatted traceback (``traceback.format_exception``) unless ``include_stacktrace``
        is false, ``cause_class`` the class of ``error.__cause__`` or ``__context__``.
        Record coordinates and the timestamp come from ``record``.
        """
        if not isinstance(record, KafkaRecord):
            raise TypeError(f"record must be a KafkaRecord, got {_kind(record)}")
        if not isinstance(error, BaseException):
            raise TypeError(f"error must be an exception, got {_kind(error)}")
        cause = error.__cause__ or error.__context__
        stack = None
        if include_stacktrace:
            lines = _module("traceback").format_exception(type(error), error, error.__traceback__)
            stack = _utf8_safe("".join(lines))
        spring = dialect is DeadLetterDialect.SPRING_KAFKA
        return cls(
            dialect,
            record.topic,
            record.partition,
            record.offset,
            _class_name(type(error)),
            _utf8_safe(str(error)) or None,
            stack,
            timestamp_ms=record.timestamp_ms if spring else None,
            timestamp_type=record.timestamp_type if spring else None,
            consumer_group=consumer_group if spring else None,
            cause_class=_class_name(type(cause)) if spring and cause is not None else None,
            key_error=key_error if spring else False,
            connector_name=None if spring else connector_name,
            task_id=None if spring else task_id,
            stage=None if spring else stage,
            class_name=None if spring else class_name,
        )

    def to_headers(self) -> tuple[tuple[str, bytes | None], ...]:
        """The failure as headers of :attr:`dialect`; fields that are ``None`` are left out.

        Kafka Connect: ``__connect.errors.*`` with UTF-8 text values (numbers in decimal);
        when there is an ``exception_class``, the message and stack trace headers are
        always written, with a ``None`` value when unknown (as Connect does). Spring Kafka:
        ``kafka_dlt-*`` with UTF-8 text, and partition as a 4-byte, offset and timestamp as
        8-byte big-endian signed ints.
        """
        out: list[tuple[str, bytes | None]] = []
        if self.dialect is DeadLetterDialect.KAFKA_CONNECT:
            for attr, suffix in _CONNECT_HEADERS:
                value = getattr(self, attr)
                if value is None:
                    always = (
                        attr in ("exception_message", "stacktrace")
                        and self.exception_class is not None
                    )
                    if always:
                        out.append((_CONNECT + suffix, None))
                    continue
                out.append((_CONNECT + suffix, str(value).encode("utf-8")))
            return tuple(out)
        struct = _module("struct")
        for attr, suffix, width in _SPRING_INTS:
            value = getattr(self, attr)
            if value is not None:
                out.append((_SPRING + suffix, struct.pack(">i" if width == 4 else ">q", value)))
        for attr, suffix in _SPRING_TEXT:
            value = getattr(self, attr)
            if value is None:
                continue
            name = _SPRING + suffix
            if self.key_error and attr in _SPRING_KEY_ERRORS:
                name = _SPRING + _SPRING_KEY_ERRORS[attr]
            out.append((name, value.encode("utf-8")))
        return tuple(out)

    @classmethod
    def from_headers(
        cls,
        headers: Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None],
        *,
        dialect: DeadLetterDialect | None = None,
    ) -> DeadLetterInfo:
        """Read the failure from a dead-letter record's headers, in either dialect.

        The dialect is detected from the header prefixes; pass ``dialect`` when a record
        carries both. When a header appears more than once the last one counts (Kafka's
        ``lastHeader``).

        Raises:
            DeadLetterHeaderError: no dead-letter headers, both dialects without
                ``dialect=``, no original topic, or a malformed value (the error names the
                header).
            InvalidRecordError: ``headers`` is not a sequence of ``(str, bytes)`` pairs.
        """
        items = _check_headers(headers)
        if dialect is None:
            connect = any(name.startswith(_CONNECT) for name, _ in items)
            spring = any(name.startswith(_SPRING) for name, _ in items)
            if connect and spring:
                raise DeadLetterHeaderError(
                    "headers", "both Kafka Connect and Spring Kafka headers: pass dialect="
                )
            if not (connect or spring):
                raise DeadLetterHeaderError(
                    "headers", "no Kafka Connect or Spring Kafka dead-letter headers"
                )
            dialect = DeadLetterDialect.KAFKA_CONNECT if connect else DeadLetterDialect.SPRING_KAFKA
        elif not isinstance(dialect, DeadLetterDialect):
            raise TypeError(f"dialect must be a DeadLetterDialect or None, got {dialect!r}")
        last = dict(items)
        if dialect is DeadLetterDialect.KAFKA_CONNECT:
            fields = _connect_fields(last)
        else:
            fields = _spring_fields(last)
        topic = fields.pop("topic", None)
        if not topic:
            prefix = (
                _CONNECT + "topic"
                if dialect is DeadLetterDialect.KAFKA_CONNECT
                else _SPRING + "original-topic"
            )
            raise DeadLetterHeaderError(
                prefix, "is missing or empty: the original topic is required"
            )
        try:
            return cls(dialect, topic, **fields)
        except (TypeError, ValueError) as exc:
            raise DeadLetterHeaderError("headers", str(exc)) from None

    @classmethod
    def from_record(
        cls, record: KafkaRecord, *, dialect: DeadLetterDialect | None = None
    ) -> DeadLetterInfo:
        """:meth:`from_headers` of ``record.headers``."""
        if not isinstance(record, KafkaRecord):
            raise TypeError(f"record must be a KafkaRecord, got {_kind(record)}")
        return cls.from_headers(record.headers, dialect=dialect)


def _connect_fields(last: dict[str, bytes | None]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for attr, suffix in _CONNECT_HEADERS:
        name = _CONNECT + suffix
        raw = last.get(name)
        if raw is None:
            continue
        text = _dead_letter_text(name, raw)
        if attr in _CONNECT_INTS:
            if _regex(r"-?[0-9]{1,19}").fullmatch(text) is None:
                raise DeadLetterHeaderError(name, f"{text!r} is not a decimal integer")
            fields[attr] = int(text)
        else:
            fields[attr] = text
    return fields


def _spring_fields(last: dict[str, bytes | None]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    struct = _module("struct")
    for attr, suffix, width in _SPRING_INTS:
        name = _SPRING + suffix
        raw = last.get(name)
        if raw is None:
            continue
        if len(raw) != width:
            raise DeadLetterHeaderError(
                name, f"must be a {width}-byte big-endian int, got {len(raw)} bytes"
            )
        fields[attr] = struct.unpack(">i" if width == 4 else ">q", raw)[0]
    for attr, suffix in _SPRING_TEXT:
        name = _SPRING + suffix
        raw = last.get(name)
        if raw is None and attr in _SPRING_KEY_ERRORS:
            name = _SPRING + _SPRING_KEY_ERRORS[attr]
            raw = last.get(name)
            if raw is not None:
                fields["key_error"] = True
        if raw is not None:
            fields[attr] = _dead_letter_text(name, raw)
    return fields


def _dead_letter_text(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DeadLetterHeaderError(name, "is not UTF-8 text") from None


def _utf8_safe(text: str) -> str:
    """``text`` with lone surrogates escaped, so it can be written as UTF-8."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _class_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def dead_letter_record(
    record: KafkaRecord,
    failure: BaseException | DeadLetterInfo,
    *,
    topic: str,
    dialect: DeadLetterDialect = DeadLetterDialect.KAFKA_CONNECT,
    same_partition: bool = False,
    keep_original: bool = True,
    include_stacktrace: bool = True,
    consumer_group: str | None = None,
    key_error: bool = False,
    connector_name: str | None = None,
    task_id: int | None = None,
    stage: str | None = None,
    class_name: str | None = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> KafkaRecord:
    """The dead-letter record for ``record``: same key, value and headers, plus the failure.

    ``failure`` is the exception (described with :meth:`DeadLetterInfo.from_exception`
    in ``dialect``, with the context arguments) or a ready :class:`DeadLetterInfo`
    (whose own dialect is used). Headers of that dialect already on the record (from an
    earlier failure) are removed and the new ones appended. With ``keep_original`` (the
    default) and an exception, the original topic, partition, offset and timestamp found
    in those earlier headers are kept, so a record that went through retry topics still
    names where it first came from. The timestamp of ``record`` is kept;
    ``same_partition`` sends it to the same partition number (Spring's default: the
    dead-letter topic then needs at least as many partitions).

    Raises:
        InvalidTopicError: ``topic`` is not a legal topic name.
        RecordTooLargeError: the record with its headers is over ``max_record_bytes``.
        TypeError: ``record`` or ``failure`` has the wrong type.
    """
    if not isinstance(record, KafkaRecord):
        raise TypeError(f"record must be a KafkaRecord, got {_kind(record)}")
    validate_topic(topic)
    _check_limit(max_record_bytes)
    if isinstance(failure, DeadLetterInfo):
        info = failure
    else:
        info = DeadLetterInfo.from_exception(
            record,
            failure,
            dialect=dialect,
            include_stacktrace=include_stacktrace,
            consumer_group=consumer_group,
            key_error=key_error,
            connector_name=connector_name,
            task_id=task_id,
            stage=stage,
            class_name=class_name,
        )
        if keep_original:
            info = _keep_origin(record, info)
    prefix = _CONNECT if info.dialect is DeadLetterDialect.KAFKA_CONNECT else _SPRING
    kept = tuple((name, value) for name, value in record.headers if not name.startswith(prefix))
    out = KafkaRecord(
        topic,
        record.value,
        key=record.key,
        headers=kept + info.to_headers(),
        partition=record.partition if same_partition else None,
        timestamp_ms=record.timestamp_ms,
        timestamp_type=None,
    )
    return out.check_size(max_record_bytes)


def _keep_origin(record: KafkaRecord, info: DeadLetterInfo) -> DeadLetterInfo:
    prefix = _CONNECT if info.dialect is DeadLetterDialect.KAFKA_CONNECT else _SPRING
    if not any(name.startswith(prefix) for name, _ in record.headers):
        return info
    try:
        earlier = DeadLetterInfo.from_headers(record.headers, dialect=info.dialect)
    except KafkaEnvelopeError:
        return info  # unreadable earlier headers: this failure is the origin we know
    return _replace(
        info,
        topic=earlier.topic,
        partition=earlier.partition,
        offset=earlier.offset,
        timestamp_ms=earlier.timestamp_ms
        if info.dialect is DeadLetterDialect.SPRING_KAFKA
        else None,
        timestamp_type=earlier.timestamp_type
        if info.dialect is DeadLetterDialect.SPRING_KAFKA
        else None,
    )


def _replace(info: DeadLetterInfo, **changes: Any) -> DeadLetterInfo:
    return _module("dataclasses").replace(info, **changes)  # type: ignore[no-any-return]
