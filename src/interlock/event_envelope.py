# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Event envelope with a validated delivery lifecycle, a retry policy and a CloudEvents 1.0.2 codec.

Verdict:
    Use it when an integration moves events between systems and you need each event to
    carry its own identity, delivery state, retry schedule and audit trail, and to cross
    process boundaries as a standard CloudEvent (JSON format, JSON batch, HTTP binding).
    Do not use it when you need a broker client, a durable queue or exactly-once delivery
    by itself: the envelope describes and validates an event, it does not store or send
    it (pair it with an outbox and an idempotent consumer for that).

Prevents:
    - Silent lifecycle corruption: every status change goes through an explicit
      transition table; an illegal move (``mark_failed`` after ``PROCESSED``) raises an
      error naming both states, and each move is recorded with its time.
    - Retry storms and runaway retries: bounded attempts by default, a first retry that
      waits ``backoff_seconds`` (not double), a cap, and opt-in jitter that keeps
      spreading clients even at the cap.
    - Lossy or invented CloudEvents: a reader that never fills in a missing attribute,
      treats ``null`` as absent, keeps ``"data": null`` distinct from no data, keeps
      timestamps to the nanosecond, and rejects what the specification forbids with an
      error that names the attribute and the rule.
    - Header smuggling in the HTTP binding: percent-decoding rejects overlong UTF-8 and
      quoted-string values are unescaped before decoding.

References:
    - CloudEvents 1.0.2: core specification, JSON event format (with the JSON batch
      format) and HTTP protocol binding (github.com/cloudevents/spec, tag v1.0.2).
    - RFC 3339 (date-time), RFC 3986 (URI and URI-reference syntax), RFC 4648 section 4
      (base64), RFC 2045/2046 (media types), RFC 7230 section 3.2.6 (quoted-string).
    - M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015
      (full, equal and decorrelated jitter).

Exceptions:
    EnvelopeError (ValueError)                  root of everything this module raises
    +-- InvalidTransitionError                  illegal lifecycle move; .current, .target
    +-- CloudEventError                         invalid CloudEvent; .attribute, .rule
        +-- UnsupportedSpecVersionError         a specversion other than "1.0"; .specversion

    Configuration mistakes (a negative backoff, a naive ``created_at``) raise
    ``ValueError`` or ``TypeError`` naming the argument. ``CloudEventWarning`` (a
    ``UserWarning``) flags names the specification only discourages.

Example:
    >>> from datetime import datetime, timedelta, timezone
    >>> at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    >>> env = EventEnvelope(
    ...     "evt-1", "crm.contact.updated", "/crm", {"id": 7}, created_at=at, clock=lambda: at
    ... )
    >>> env.mark_dispatched()
    >>> env.mark_failed(reason="HTTP 503")
    >>> env.status, env.next_retry_wait_seconds()
    (<DeliveryStatus.RETRYING: 'retrying'>, 30)
    >>> [t.target.value for t in env.history]
    ['dispatched', 'retrying']
    >>> ce = env.to_cloudevent()
    >>> ce["specversion"], ce["id"], ce["source"], ce["time"], ce["data"]
    ('1.0', 'evt-1', '/crm', '2026-01-02T03:04:05Z', {'id': 7})
    >>> EventEnvelope.from_cloudevent(ce).payload
    {'id': 7}
    >>> Timestamp.parse("2018-04-05T17:31:00.123456789Z").nanosecond
    123456789
"""

from __future__ import annotations

import binascii
import enum
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache, lru_cache

# typing and random load only for the type checker (and random when jitter needs it):
# importing this module stays cheap. See docs/explanation/architecture.md.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import random
    from types import ModuleType
    from typing import Any

__all__ = [
    "NO_DATA",
    "CloudEventError",
    "CloudEventWarning",
    "DeliveryStatus",
    "EnvelopeError",
    "EventEnvelope",
    "InvalidTransitionError",
    "Jitter",
    "NoData",
    "RetryPolicy",
    "Timestamp",
    "Transition",
    "UnsupportedSpecVersionError",
    "from_http_batch",
    "from_json_batch",
    "to_http_batch",
    "to_json_batch",
]

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class EnvelopeError(ValueError):
    """Root of every error this module raises on bad input or an illegal move."""


class InvalidTransitionError(EnvelopeError):
    """A lifecycle move the transition table does not allow.

    Attributes:
        current: the status the envelope is in.
        target: the status the caller tried to move it to.
        event_id: the envelope's id.
    """

    def __init__(self, event_id: str, current: DeliveryStatus, target: DeliveryStatus) -> None:
        self.event_id = event_id
        self.current = current
        self.target = target
        targets = _TRANSITIONS[current]
        allowed = ", ".join(s.value for s in DeliveryStatus if s in targets) or "nothing (terminal)"
        super().__init__(
            f"event {event_id!r} cannot move from {current.value} to {target.value}; "
            f"{current.value} allows {allowed}"
        )


class CloudEventError(EnvelopeError):
    """A CloudEvent (or one of its encodings) breaks a rule of the specification.

    Attributes:
        attribute: the attribute, member or header concerned (``"id"``, ``"data"``, ...).
        rule: the rule that was broken, in words.
    """

    def __init__(self, attribute: str, rule: str) -> None:
        self.attribute = attribute
        self.rule = rule
        super().__init__(f"CloudEvent attribute {attribute!r}: {rule}")


class UnsupportedSpecVersionError(CloudEventError):
    """The event declares a CloudEvents ``specversion`` this reader does not implement."""

    def __init__(self, specversion: object, *, where: str = "") -> None:
        self.specversion = specversion
        super().__init__("specversion", f"{where}only '1.0' is supported, got {specversion!r}")


class CloudEventWarning(UserWarning):
    """A name or value the specification discourages (SHOULD NOT) but allows."""


# --------------------------------------------------------------------------------------
# Enums and value types
# --------------------------------------------------------------------------------------


class DeliveryStatus(enum.Enum):
    """Where one event is in its delivery lifecycle."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    PROCESSED = "processed"
    RETRYING = "retrying"
    FAILED = "failed"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"


_S = DeliveryStatus
_TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    _S.PENDING: frozenset({_S.DISPATCHED, _S.SKIPPED, _S.DEAD_LETTERED}),
    # DISPATCHED -> DISPATCHED is a redelivery (an ack timed out and the event was resent).
    _S.DISPATCHED: frozenset(
        {
            _S.DISPATCHED,
            _S.ACKNOWLEDGED,
            _S.PROCESSED,
            _S.RETRYING,
            _S.FAILED,
            _S.SKIPPED,
            _S.DEAD_LETTERED,
        }
    ),
    _S.ACKNOWLEDGED: frozenset(
        {_S.PROCESSED, _S.RETRYING, _S.FAILED, _S.SKIPPED, _S.DEAD_LETTERED}
    ),
    _S.RETRYING: frozenset({_S.DISPATCHED, _S.SKIPPED, _S.DEAD_LETTERED}),
    _S.PROCESSED: frozenset(),
    _S.FAILED: frozenset(),
    _S.SKIPPED: frozenset(),
    _S.DEAD_LETTERED: frozenset(),
}
_TERMINAL = frozenset(s for s, targets in _TRANSITIONS.items() if not targets)


class Jitter(enum.Enum):
    """How a retry delay is randomised (Brooker, 2015). ``NONE`` keeps schedules exact."""

    NONE = "none"
    FULL = "full"  # uniform(0, delay)
    EQUAL = "equal"  # delay/2 + uniform(0, delay/2)
    DECORRELATED = "decorrelated"  # uniform(base, min(cap, 3 * previous))


class NoData(enum.Enum):
    """Type of :data:`NO_DATA`, the payload of an event that carries no data at all."""

    NO_DATA = "NO_DATA"

    def __repr__(self) -> str:
        return "NO_DATA"


NO_DATA = NoData.NO_DATA
"""Payload marker for an event without data (distinct from ``None``, an explicit null)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded lifecycle move: from which status, to which, when, and why."""

    source: DeliveryStatus
    target: DeliveryStatus
    at: datetime
    reason: str = ""


# Python 3.11+ reads any RFC 3339 date-time that passed _RFC3339 (Z, any fraction digits).
_FROMISOFORMAT_READS_RFC3339 = sys.version_info >= (3, 11)
_new_object = object.__new__
_set_attribute = object.__setattr__  # how a frozen dataclass sets its own fields
_RFC3339 = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


@dataclass(frozen=True, slots=True)
class Timestamp:
    """An RFC 3339 date-time kept at full precision.

    ``datetime`` stops at microseconds and cannot hold a leap second; CloudEvents
    producers send nanoseconds. A ``Timestamp`` keeps the exact text (with upper-case
    ``T`` and ``Z``) next to the parsed instant.

    Attributes:
        text: the RFC 3339 text, every fractional digit kept.
        moment: the same instant as an aware ``datetime``, truncated to microseconds; a
            leap second (``:60``) maps to ``:59.999999``; ``-00:00`` maps to UTC.

    >>> ts = Timestamp.parse("1985-04-12t23:20:50.52z")
    >>> ts.text, ts.nanosecond
    ('1985-04-12T23:20:50.52Z', 520000000)
    """

    text: str
    moment: datetime

    def __post_init__(self) -> None:
        try:
            parsed = Timestamp.parse(self.text)
        except CloudEventError as exc:
            raise ValueError(f"text must be RFC 3339 date-time text: {exc.rule}") from None
        if parsed.text != self.text:
            raise ValueError(f"text must be canonical (upper-case T and Z): {parsed.text!r}")
        if not isinstance(self.moment, datetime) or self.moment != parsed.moment:
            raise ValueError(f"moment {self.moment!r} is not the instant {self.text!r} names")

    @classmethod
    def _trusted(cls, text: str, moment: datetime) -> Timestamp:
        stamp = _new_object(cls)
        _set_attribute(stamp, "text", text)
        _set_attribute(stamp, "moment", moment)
        return stamp

    @property
    def nanosecond(self) -> int:
        """The fraction of the second in nanoseconds (0 to 999_999_999), truncated."""
        text = self.text
        if text[19] != ".":
            return 0
        end = 20
        while text[end] in "0123456789":  # the zone always follows the digits
            end += 1
        return int(text[20:end][:9].ljust(9, "0"))

    @classmethod
    def parse(cls, text: str, *, attribute: str = "time") -> Timestamp:
        """Parse RFC 3339 ``date-time`` text strictly, or raise :class:`CloudEventError`.

        Forms ``datetime.fromisoformat`` accepts but RFC 3339 forbids (a space separator,
        no offset, a date alone, basic format, no seconds, ``+0100``) are refused.
        """
        if type(text) is not str:
            raise CloudEventError(attribute, f"a Timestamp must be a string, not {_kind(text)}")
        m = _regex(_RFC3339).fullmatch(text)
        if m is None:
            raise CloudEventError(
                attribute,
                f"{text!r} is not an RFC 3339 date-time "
                "(YYYY-MM-DDTHH:MM:SS[.fraction] then Z or +HH:MM)",
            )
        fraction, zone = m.groups()
        if zone in ("Z", "z"):
            zone, iso_zone = "Z", "+00:00"
        elif zone[1:3] > "23" or zone[4:6] > "59":
            raise CloudEventError(attribute, f"{text!r} has a UTC offset out of range")
        else:
            iso_zone = zone
        if text[10] != "T" or zone != m.group(2):
            text = f"{text[:10]}T{text[11:19]}{'.' + fraction if fraction else ''}{zone}"
        clock_text = text[11:19]
        impossible = f"{text!r} names a date or time of day that does not exist"
        if clock_text[:2] > "23":  # checked here: some Pythons read 24:00 as next midnight
            raise CloudEventError(attribute, impossible)
        if clock_text[6:] == "60":  # datetime has no leap second: use :59.999999
            iso = f"{text[:17]}59.999999{iso_zone}"
            _check_leap_second(text, iso, attribute)
        elif _FROMISOFORMAT_READS_RFC3339:  # the text was validated above
            iso = text
        else:  # pragma: no cover - Python 3.10 only; CI runs the suite on 3.10 too
            iso = f"{text[:19]}.{fraction[:6].ljust(6, '0') if fraction else '000000'}{iso_zone}"
        try:
            moment = datetime.fromisoformat(iso)
        except ValueError:
            raise CloudEventError(attribute, impossible) from None
        return cls._trusted(text, moment)

    @classmethod
    def from_datetime(cls, moment: datetime, *, nanosecond: int | None = None) -> Timestamp:
        """Build a Timestamp from an aware ``datetime``.

        Args:
            moment: an aware datetime whose UTC offset is a whole number of minutes.
            nanosecond: the full fraction in nanoseconds; it must agree with the
                datetime's microseconds. ``None`` keeps the microseconds (six digits,
                or none when they are zero).
        """
        text = _format_datetime(moment, "moment")
        if nanosecond is None:
            return cls._trusted(text, moment)
        if isinstance(nanosecond, bool) or not isinstance(nanosecond, int):
            raise TypeError(f"nanosecond must be an int, got {nanosecond!r}")
        if not 0 <= nanosecond < 1_000_000_000 or nanosecond // 1000 != moment.microsecond:
            raise ValueError(
                f"nanosecond={nanosecond!r} must be 0..999999999 and agree with "
                f"microsecond={moment.microsecond}"
            )
        zone = text[26:] if moment.microsecond else text[19:]
        return cls._trusted(f"{text[:19]}.{nanosecond:09d}{zone}", moment)

    def __str__(self) -> str:
        return self.text


def _check_leap_second(text: str, iso_at_59: str, attribute: str) -> None:
    """RFC 3339 5.7: a leap second is 23:59:60 UTC on the last day of a month."""
    try:
        utc = datetime.fromisoformat(iso_at_59).astimezone(timezone.utc)
        last_day = (utc + timedelta(days=1)).day == 1
    except ValueError:
        return  # an impossible date: the caller's fromisoformat reports it
    except OverflowError:  # at the edge of datetime's range: 9999-12-31 is a last day
        last_day = True
        utc = datetime.fromisoformat(iso_at_59)
        if utc.utcoffset():
            raise CloudEventError(
                attribute, f"{text!r}: the instant falls outside the years 1 to 9999"
            ) from None
    if (utc.hour, utc.minute) != (23, 59) or not last_day:
        raise CloudEventError(
            attribute, f"{text!r}: a leap second is 23:59:60 UTC on the last day of a month"
        )


@dataclass(slots=True)
class RetryPolicy:
    """When to retry a failed delivery, and how long to wait first.

    Attributes:
        max_attempts: total delivery attempts allowed, the first included; ``None``
            means unlimited (ask for it explicitly).
        backoff_seconds: the wait before the first retry, in seconds.
        exponential: double the wait for each further retry (else a fixed wait).
        max_backoff_seconds: the cap on any wait, in seconds.
        jitter: randomisation applied after the cap (default none: reproducible).
        rng: the random source for jitter; injected for tests (default: a shared
            ``random.Random``).

    >>> policy = RetryPolicy(backoff_seconds=10, max_backoff_seconds=50)
    >>> [policy.wait_seconds_for_attempt(n) for n in range(4)]
    [10, 20, 40, 50]
    >>> policy.is_exhausted(3)
    True
    """

    max_attempts: int | None = 3
    backoff_seconds: float = 30
    exponential: bool = True
    max_backoff_seconds: float = 3600
    _: KW_ONLY
    jitter: Jitter = Jitter.NONE
    rng: random.Random | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        m, low, high = self.max_attempts, self.backoff_seconds, self.max_backoff_seconds
        if (
            (m is None or (type(m) is int and m >= 1))
            and type(low) in _SECONDS_TYPES
            and type(high) in _SECONDS_TYPES
            and 0 <= low <= high < _INFINITY
            and type(self.exponential) is bool
            and type(self.jitter) is Jitter
            and (self.rng is None or isinstance(self.rng, _random().Random))
        ):
            return
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ValueError(f"max_attempts must be an int >= 1 or None, got {m!r}")
        _check_seconds("backoff_seconds", low)
        _check_seconds("max_backoff_seconds", high)
        if high < low:
            raise ValueError(f"max_backoff_seconds={high!r} is below backoff_seconds={low!r}")
        if not isinstance(self.exponential, bool):
            raise TypeError(f"exponential must be a bool, got {self.exponential!r}")
        if not isinstance(self.jitter, Jitter):
            raise TypeError(f"jitter must be a Jitter, got {self.jitter!r}")
        if self.rng is not None and not isinstance(self.rng, _random().Random):
            raise TypeError(f"rng must be a random.Random, got {self.rng!r}")

    def base_wait_seconds(self, attempt_number: int) -> float:
        """The un-jittered, capped wait before retry ``attempt_number`` (zero-based)."""
        if isinstance(attempt_number, bool) or not isinstance(attempt_number, int):
            raise TypeError(f"attempt_number must be an int, got {attempt_number!r}")
        if attempt_number < 0:
            raise ValueError(f"attempt_number must be >= 0, got {attempt_number!r}")
        if not self.exponential:
            return self.backoff_seconds
        if attempt_number >= 1024:  # 2**1024 overflows a float; the cap applies long before
            return self.max_backoff_seconds
        return min(self.backoff_seconds * (1 << attempt_number), self.max_backoff_seconds)

    def wait_seconds_for_attempt(
        self, attempt_number: int, *, previous: float | None = None
    ) -> float:
        """The wait before retry ``attempt_number`` (0 is the first retry), jitter applied.

        Fixed: ``backoff_seconds``. Exponential: ``min(backoff_seconds * 2**n, cap)``.
        Jitter is applied after the cap, so capped clients stay spread out.

        Args:
            attempt_number: zero-based retry number.
            previous: the wait actually used before the previous retry, for
                decorrelated jitter (default: the un-jittered previous wait).
        """
        delay = self.base_wait_seconds(attempt_number)
        jitter = self.jitter
        if jitter is Jitter.NONE:
            return delay
        rng = self.rng if self.rng is not None else _shared_rng()
        if jitter is Jitter.FULL:
            return rng.uniform(0, delay)
        if jitter is Jitter.EQUAL:
            return delay / 2 + rng.uniform(0, delay / 2)
        base = self.backoff_seconds
        if previous is None:
            previous = base if attempt_number == 0 else self.base_wait_seconds(attempt_number - 1)
        upper = min(self.max_backoff_seconds, max(base, previous * 3))
        return rng.uniform(base, upper)

    def is_exhausted(self, attempt_number: int) -> bool:
        """True when ``attempt_number`` attempts have used the whole budget."""
        return self.max_attempts is not None and attempt_number >= self.max_attempts


_SECONDS_TYPES = (int, float)

_INFINITY = float("inf")


@cache
def _shared_rng() -> random.Random:
    """The random source for jitter when none is injected (not a secret, so not secrets)."""
    rng: random.Random = _random().Random()
    return rng


# --------------------------------------------------------------------------------------
# CloudEvents validation helpers
# --------------------------------------------------------------------------------------

_SPECVERSION = "1.0"
_CORE = frozenset(
    {"specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_EXTENSION_NAME = r"[a-z0-9]+"
_ENVELOPE_EXTENSIONS = frozenset({"correlationid", "schemaversion"})
# 1.0.2 "String": no C0/C1 controls, no lone surrogates, no Unicode noncharacters.
_FORBIDDEN_CHARS = (
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(p * 0x10000 + 0xFFFE)}{chr(p * 0x10000 + 0xFFFF)}" for p in range(17))
    + "]"
)
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*"
_URI_CHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*"
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z\-]+"  # RFC 7230 token
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MEDIA_TYPE = rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|{_QUOTED}))*[ \t]*"
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


# Imports and regular expressions are loaded on first use, which keeps
# `import interlock.event_envelope` cheap (see benchmarks/README.md, import-cost).
@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@cache
def _json() -> ModuleType:
    import json  # noqa: PLC0415 - deferred: see above

    return json


@cache
def _random() -> ModuleType:
    import random  # noqa: PLC0415 - deferred: see above

    return random


@cache
def _base64() -> ModuleType:
    import base64  # noqa: PLC0415 - deferred: see above

    return base64


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_seconds(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    # NaN is the only value unequal to itself; math.isfinite would cost an import.
    if value != value or value in (_INFINITY, -_INFINITY) or value < 0:  # noqa: PLR0124
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def _format_datetime(moment: datetime, name: str) -> str:
    if type(moment) is datetime and moment.tzinfo is timezone.utc:
        return moment.isoformat()[:-6] + "Z"  # fast path: UTC
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {moment!r}")
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment!r}")
    if offset.microseconds or offset.seconds % 60:
        raise ValueError(f"{name} has a UTC offset of {offset}, not a whole number of minutes")
    text = moment.isoformat()
    return text[:-6] + "Z" if not offset else text


def _check_string(attribute: str, value: object, *, allow_empty: bool = False) -> str:
    if type(value) is str and value.isascii() and value.isprintable() and value:
        return value  # fast path: printable ASCII is always allowed
    if not isinstance(value, str):
        raise CloudEventError(attribute, f"must be a String, got {_kind(value)}")
    if not value and not allow_empty:
        raise CloudEventError(attribute, "must be a non-empty String")
    bad = _regex(_FORBIDDEN_CHARS).search(value)
    if bad is not None:
        raise CloudEventError(
            attribute,
            f"String contains U+{ord(bad.group()):04X}, which CloudEvents forbids "
            "(control characters, surrogates, noncharacters)",
        )
    return value


def _check_uri(attribute: str, value: object, *, absolute: bool) -> str:
    text = _check_string(attribute, value)
    problem = _absolute_uri_problem(text) if absolute else _uri_reference_problem(text)
    if problem is not None:
        raise CloudEventError(attribute, problem)
    return text


@lru_cache(maxsize=1024)  # sources repeat across events: check each one once
def _uri_reference_problem(text: str) -> str | None:
    """What makes ``text`` not an RFC 3986 URI-reference, or None."""
    if _regex(_URI_CHARS).fullmatch(text) is None or text.count("#") > 1:
        return f"{text!r} is not RFC 3986 syntax"
    # A ':' before the first '/', '?' or '#' must end a scheme (RFC 3986 section 4.2).
    head = re.split(r"[/?#]", text, maxsplit=1)[0]
    scheme, colon, _rest = head.partition(":")
    if colon and _regex(_SCHEME).fullmatch(scheme) is None:
        return f"{text!r}: {scheme!r} is not a valid URI scheme"
    return None


@lru_cache(maxsize=256)
def _absolute_uri_problem(text: str) -> str | None:
    """What makes ``text`` not an RFC 3986 absolute URI (section 4.3), or None."""
    problem = _uri_reference_problem(text)
    if problem is not None:
        return problem
    if ":" not in re.split(r"[/?#]", text, maxsplit=1)[0]:
        return f"{text!r} must be an absolute URI with a scheme"
    if "#" in text:
        return f"{text!r}: an absolute URI (RFC 3986 section 4.3) has no fragment"
    return None


def _check_media_type(attribute: str, value: object) -> str:
    text = _check_string(attribute, value)
    if not _is_media_type(text):
        raise CloudEventError(attribute, f"{text!r} is not an RFC 2046 media type")
    return text


@lru_cache(maxsize=256)
def _is_media_type(text: str) -> bool:
    return _regex(_MEDIA_TYPE).fullmatch(text) is not None


@lru_cache(maxsize=256)
def _is_json_media(media_type: str | None) -> bool:
    if media_type is None:
        return True
    essence = media_type.split(";", 1)[0].strip().lower()
    subtype = essence.partition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


@lru_cache(maxsize=256)
def _is_text_media(media_type: str) -> bool:
    essence, _, params = media_type.lower().partition(";")
    essence = essence.strip()
    major, _, subtype = essence.partition("/")
    return (
        major == "text"
        or subtype == "xml"
        or subtype.endswith("+xml")
        or "charset=" in params.replace(" ", "")
    )


def _charset(media_type: str) -> str:
    for param in media_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"')
    return "utf-8"


def _check_extension_name(name: object) -> None:
    if not isinstance(name, str) or _regex(_EXTENSION_NAME).fullmatch(name) is None:
        raise CloudEventError(
            str(name), "extension attribute names use only lower-case ASCII letters and digits"
        )
    if name == "data":
        raise CloudEventError(name, "'data' is reserved for the event payload")
    if name in _CORE:
        raise CloudEventError(name, "an extension cannot reuse a context attribute's name")
    if len(name) > 20 or name[0].isdigit():
        warnings.warn(
            f"CloudEvents attribute name {name!r} should be at most 20 characters and "
            "start with a letter",
            CloudEventWarning,
            stacklevel=4,
        )


def _check_extension_value(name: str, value: object) -> str | int | bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise CloudEventError(name, f"Integer {value} is outside the signed 32-bit range")
        return value
    if isinstance(value, str):
        return _check_string(name, value, allow_empty=True)
    raise CloudEventError(
        name, f"extension values are String, Integer or Boolean, got {_kind(value)}"
    )


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise CloudEventError("data_base64", f"must be a Base64 String, got {_kind(value)}")
    try:
        decoded: bytes = _base64().b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CloudEventError("data_base64", "is not RFC 4648 Base64") from None
    return decoded


def _dumps(value: object, attribute: str) -> str:
    try:
        text: str = _json().dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise CloudEventError(attribute, f"cannot be written as JSON: {exc}") from exc
    return text


def _utf8(text: str, attribute: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CloudEventError(
            attribute,
            "contains a lone surrogate, which UTF-8 (and so JSON on the wire) cannot carry",
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


@cache
def _decoder() -> Any:
    return _json().JSONDecoder(parse_constant=_reject_constant)


def _loads(raw: str | bytes | bytearray, what: str) -> Any:
    """Strict JSON: UTF-8 text (RFC 8259), no NaN or Infinity; errors are CloudEventError."""
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
        return _decoder().decode(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CloudEventError(what, f"is not valid JSON: {exc}") from exc


# --------------------------------------------------------------------------------------
# HTTP binding helpers (percent-encoding and header maps)
# --------------------------------------------------------------------------------------

_SAFE_HEADER_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "%"}
_PERCENT_RUN = r"(?:%[0-9A-Fa-f]{2})+"
_BAD_PERCENT = r"%(?![0-9A-Fa-f]{2})"
_CE_HEADER_PREFIX = "ce-"
_STRUCTURED = "application/cloudevents"
_JSON_FORMAT = "application/cloudevents+json"
_BATCH_FORMAT = "application/cloudevents-batch+json"


def _percent_encode(value: str) -> str:
    if (
        value.isascii()
        and value.isprintable()
        and not ('"' in value or "%" in value or " " in value)
    ):
        return value  # fast path: nothing to encode
    out = []
    for ch in value:
        if ch in _SAFE_HEADER_CHARS:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def _unquote_header(name: str, value: str) -> str:
    if not value.startswith('"'):
        return value
    if len(value) < 2 or value[-1] != '"':
        raise CloudEventError(name, "quoted-string has no closing double quote")
    out = []
    i, end = 1, len(value) - 1
    while i < end:
        ch = value[i]
        if ch == "\\":
            if i + 1 >= end:
                raise CloudEventError(name, "quoted-string ends with a lone backslash")
            out.append(value[i + 1])
            i += 2
        elif ch == '"':
            raise CloudEventError(name, "quoted-string has an unescaped double quote")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _percent_decode(name: str, value: str) -> str:
    value = _unquote_header(name, value)
    if "%" not in value:
        return value
    if _regex(_BAD_PERCENT).search(value) is not None:
        raise CloudEventError(name, "'%' must start a two-digit hexadecimal escape")

    def decode_run(m: re.Match[str]) -> str:
        run = m.group()
        raw = bytes(int(run[i + 1 : i + 3], 16) for i in range(0, len(run), 3))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CloudEventError(
                name, f"percent-encoded bytes {run!r} are not valid UTF-8"
            ) from None

    return _regex(_PERCENT_RUN).sub(decode_run, value)


def _header_items(headers: object) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        items = list(headers.items())
    elif isinstance(headers, Iterable) and not isinstance(headers, (str, bytes)):
        items = list(headers)
    else:
        raise TypeError(f"headers must be a mapping or a list of pairs, got {_kind(headers)}")
    out: list[tuple[str, str]] = []
    for item in items:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"each header must be a (name, value) pair, got {item!r}")
        name, value = item
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"header names and values must be str, got {item!r}")
        out.append((name.lower(), value))
    return out


def _content_type(items: list[tuple[str, str]]) -> str | None:
    found = [v for k, v in items if k == "content-type"]
    if len(found) > 1:
        raise CloudEventError("content-type", "the header appears more than once")
    return found[0].strip() if found else None


def _media_essence(content_type: str | None) -> str:
    return "" if content_type is None else content_type.split(";", 1)[0].strip().lower()


def _check_json_charset(content_type: str) -> None:
    charset = _charset(content_type).lower()
    if charset not in ("utf-8", "utf8"):
        raise CloudEventError("content-type", f"JSON must be UTF-8, not charset {charset!r}")


# --------------------------------------------------------------------------------------
# The envelope
# --------------------------------------------------------------------------------------

_UNSET_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)  # identity-checked placeholder


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _aware_now(clock: Callable[[], datetime]) -> datetime:
    now = clock()
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise TypeError(f"clock must return an aware datetime, got {now!r}")
    return now


@dataclass
class EventEnvelope:
    """One event with its identity, payload, delivery state, retry policy and history.

    The first eleven fields are those of integration-automation-patterns 0.1.0, in the
    same order and with the same defaults; the rest are keyword-only.

    Attributes:
        event_id: unique id, the idempotency key (CloudEvents ``id``).
        event_type: what happened, e.g. ``"crm.contact.updated"`` (CloudEvents ``type``).
        source_system: where it happened (CloudEvents ``source``, a URI-reference).
        payload: the data: any JSON value, ``bytes`` (sent as ``data_base64``), a
            ``str`` for a non-JSON ``data_content_type``, or :data:`NO_DATA`.
        correlation_id: links the event to a workflow (extension ``correlationid``;
            empty means none).
        schema_version: version of the payload schema (extension ``schemaversion``;
            empty means none).
        created_at: aware datetime of creation (default: ``clock()``); the CloudEvents
            ``time`` unless ``time`` gives a more precise one.
        status: the delivery status.
        attempt_count: delivery attempts made so far.
        retry_policy: how failures are retried.
        tags: local key/value metadata (not sent on the wire).
        subject: CloudEvents ``subject``.
        data_content_type: CloudEvents ``datacontenttype``.
        data_schema: CloudEvents ``dataschema`` (an absolute URI).
        time: the exact CloudEvents ``time`` when it was read from the wire or needs
            nanoseconds; ``None`` means ``created_at`` is the time.
        include_time: whether the CloudEvent carries ``time`` at all (an event read
            without one is written back without one: a reader never invents it).
        extensions: other CloudEvents extension attributes (String, Integer, Boolean).
        history: every recorded transition, oldest first.
        clock: returns the current aware datetime; injected for tests.

    An envelope is a mutable record owned by one worker at a time; it holds no lock.
    """

    event_id: str
    event_type: str
    source_system: str
    payload: Any
    correlation_id: str = ""
    schema_version: str = "1.0"
    created_at: datetime = _UNSET_TIME
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempt_count: int = 0
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    tags: dict[str, str] = field(default_factory=dict)
    _: KW_ONLY
    subject: str | None = None
    data_content_type: str | None = None
    data_schema: str | None = None
    time: Timestamp | None = None
    include_time: bool = True
    extensions: dict[str, str | int | bool] = field(default_factory=dict)
    history: tuple[Transition, ...] = ()
    clock: Callable[[], datetime] = field(default=_utc_now, repr=False, compare=False)
    _retry_wait: float | None = field(default=None, init=False, repr=False, compare=False)
    _last_wait: float | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.created_at is _UNSET_TIME:
            if isinstance(self.time, Timestamp):
                self.created_at = self.time.moment
            elif not callable(self.clock):
                raise TypeError(f"clock must be callable, got {self.clock!r}")
            else:
                self.created_at = self.clock()
        elif isinstance(self.time, Timestamp) and self.time.moment != self.created_at:
            raise ValueError(
                f"time={self.time.text!r} and created_at={self.created_at!r} disagree; "
                "give one, or the same instant"
            )
        # Fast path: one expression for the common, valid case; the slow path explains.
        if not (
            type(self.event_id) is str
            and type(self.event_type) is str
            and type(self.source_system) is str
            and type(self.correlation_id) is str
            and type(self.schema_version) is str
            and type(self.created_at) is datetime
            and type(self.status) is DeliveryStatus
            and type(self.attempt_count) is int
            and self.attempt_count >= 0
            and type(self.retry_policy) is RetryPolicy
            and type(self.tags) is dict
            and type(self.extensions) is dict
            and (self.time is None or type(self.time) is Timestamp)
            and type(self.history) is tuple
            and callable(self.clock)
        ):
            self._explain_invalid()

    def _explain_invalid(self) -> None:
        for name in ("event_id", "event_type", "source_system", "correlation_id", "schema_version"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a str, got {getattr(self, name)!r}")
        if not isinstance(self.created_at, datetime):
            raise TypeError(f"created_at must be a datetime, got {self.created_at!r}")
        if not isinstance(self.status, DeliveryStatus):
            raise TypeError(f"status must be a DeliveryStatus, got {self.status!r}")
        count = self.attempt_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"attempt_count must be an int >= 0, got {count!r}")
        for name, kind in (
            ("retry_policy", RetryPolicy),
            ("tags", dict),
            ("extensions", dict),
            ("history", tuple),
        ):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        if self.time is not None and not isinstance(self.time, Timestamp):
            raise TypeError(f"time must be a Timestamp or None, got {self.time!r}")
        if not callable(self.clock):
            raise TypeError(f"clock must be callable, got {self.clock!r}")

    # ---- lifecycle -------------------------------------------------------------------

    def _move(self, target: DeliveryStatus, reason: str = "") -> None:
        current = self.status
        if target not in _TRANSITIONS[current]:
            raise InvalidTransitionError(self.event_id, current, target)
        self.status = target
        self.history = (*self.history, Transition(current, target, self.clock(), reason))

    def mark_dispatched(self) -> None:
        """Record a delivery attempt: ``attempt_count`` goes up by one; status DISPATCHED."""
        self._move(DeliveryStatus.DISPATCHED)
        self.attempt_count += 1
        self._retry_wait = None

    def mark_acknowledged(self) -> None:
        """Record that the receiver confirmed receipt."""
        self._move(DeliveryStatus.ACKNOWLEDGED)

    def mark_processed(self) -> None:
        """Record that processing completed (terminal)."""
        self._move(DeliveryStatus.PROCESSED)

    def mark_failed(self, reason: str = "", *, dead_letter: bool = False) -> None:
        """Record a failed attempt: RETRYING while the budget lasts, else FAILED (terminal).

        With ``dead_letter=True`` an exhausted event becomes DEAD_LETTERED (terminal, with
        ``reason``) instead of FAILED, for callers that route exhausted events to a
        dead-letter destination. The wait before the next attempt is fixed here (so jitter
        is drawn once).
        """
        policy = self.retry_policy
        if policy.is_exhausted(self.attempt_count):
            if dead_letter:
                self.mark_dead_lettered(reason or "retry budget exhausted")
            else:
                self._move(DeliveryStatus.FAILED, reason)
            return
        self._move(DeliveryStatus.RETRYING, reason)
        retry_number = max(self.attempt_count - 1, 0)
        self._retry_wait = self._last_wait = policy.wait_seconds_for_attempt(
            retry_number, previous=self._last_wait
        )

    def mark_skipped(self, reason: str = "") -> None:
        """Record that the event was deliberately not processed (terminal).

        A non-empty ``reason`` is stored in ``tags["skip_reason"]``.
        """
        self._move(DeliveryStatus.SKIPPED, reason)
        if reason:
            self.tags["skip_reason"] = reason

    def mark_dead_lettered(self, reason: str) -> None:
        """Route the event to a dead-letter destination (terminal); ``reason`` is required.

        Use it instead of :meth:`mark_failed` when you give up on an event, including a
        poison message that was never dispatched. The reason is kept in the history and
        in ``tags["dead_letter_reason"]``.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty str, got {reason!r}")
        self._move(DeliveryStatus.DEAD_LETTERED, reason)
        self.tags["dead_letter_reason"] = reason

    @property
    def dead_letter_reason(self) -> str | None:
        """Why the event was dead-lettered, or None."""
        if self.status is not DeliveryStatus.DEAD_LETTERED:
            return None
        return self.tags.get("dead_letter_reason")

    def next_retry_wait_seconds(self) -> float:
        """Seconds to wait before the next attempt: 0 unless RETRYING.

        The first retry waits ``backoff_seconds``, the second twice that (exponential),
        and so on up to the cap.
        """
        if self.status is not DeliveryStatus.RETRYING:
            return 0
        if self._retry_wait is not None:
            return self._retry_wait
        return self.retry_policy.base_wait_seconds(max(self.attempt_count - 1, 0))

    def is_terminal(self) -> bool:
        """True in PROCESSED, FAILED, SKIPPED and DEAD_LETTERED."""
        return self.status in _TERMINAL

    def to_audit_line(self) -> str:
        """One structured log line with the envelope's identity and state."""
        return (
            f"[INTEGRATION_EVENT] event_id={self.event_id} "
            f"type={self.event_type} "
            f"source={self.source_system} "
            f"status={self.status.value} "
            f"attempts={self.attempt_count} "
            f"correlation={self.correlation_id or 'none'} "
            f"schema={self.schema_version} "
            f"created={self.created_at.isoformat()}"
        )

    # ---- CloudEvents: JSON format ----------------------------------------------------

    def _time_text(self) -> str:
        if self.time is not None:
            return self.time.text
        moment = self.created_at
        if moment.tzinfo is timezone.utc:  # fast path; _format_datetime explains the rest
            return moment.isoformat()[:-6] + "Z"
        try:
            return _format_datetime(moment, "created_at")
        except (TypeError, ValueError) as exc:
            raise CloudEventError(
                "time", f"{exc} (a CloudEvents time needs a UTC offset)"
            ) from None

    def to_cloudevent(self) -> dict[str, Any]:
        """The event as a CloudEvents 1.0.2 structured-mode JSON object (a dict).

        ``json.dumps`` of the result is a valid ``application/cloudevents+json`` body.
        Bytes payloads become ``data_base64``; :data:`NO_DATA` omits ``data``.

        Raises:
            CloudEventError: an attribute breaks the specification (the error names it).
        """
        event_id, event_type, source = self.event_id, self.event_type, self.source_system
        correlation, version = self.correlation_id, self.schema_version
        try:  # fast path: every common attribute is printable ASCII and the source is known
            joined = "".join((event_id, event_type, source, correlation, version))
            fast = (
                joined.isascii() and joined.isprintable() and _uri_reference_problem(source) is None
            )
        except TypeError:  # a non-str attribute: the slow path names it
            fast = False
        if not (fast and event_id and event_type and source):
            _check_string("id", event_id)
            _check_string("type", event_type)
            _check_uri("source", source, absolute=False)
            if correlation:
                _check_string("correlationid", correlation)
            if version:
                _check_string("schemaversion", version)
        ce: dict[str, Any] = {
            "specversion": _SPECVERSION,
            "id": event_id,
            "source": source,
            "type": event_type,
        }
        if self.include_time:
            ce["time"] = self._time_text()
        if self.subject is not None:
            ce["subject"] = _check_string("subject", self.subject)
        dct = self.data_content_type
        if dct is not None:
            ce["datacontenttype"] = _check_media_type("datacontenttype", dct)
        if self.data_schema is not None:
            ce["dataschema"] = _check_uri("dataschema", self.data_schema, absolute=True)
        if correlation:
            ce["correlationid"] = correlation
        if version:
            ce["schemaversion"] = version
        for name, value in self.extensions.items():
            _check_extension_name(name)
            if name in ce:
                raise CloudEventError(name, "set both by its envelope field and in extensions")
            ce[name] = _check_extension_value(name, value)
        payload = self.payload
        if payload is NO_DATA:
            return ce
        if isinstance(payload, (bytes, bytearray, memoryview)):
            ce["data_base64"] = _base64().b64encode(payload).decode("ascii")
        elif payload is None or isinstance(payload, str) or _is_json_media(dct):
            ce["data"] = payload
        else:
            raise CloudEventError(
                "data",
                f"datacontenttype {dct!r} is not JSON, so data must be str or bytes, "
                f"not {_kind(payload)}",
            )
        return ce

    def to_json(self) -> bytes:
        """The event in the CloudEvents JSON format, as UTF-8 bytes."""
        return _utf8(_dumps(self.to_cloudevent(), "data"), "data")

    @classmethod
    def from_cloudevent(
        cls,
        obj: Mapping[str, Any] | str | bytes | bytearray,
        *,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> EventEnvelope:
        """Read a CloudEvents 1.0.2 structured-mode event (a dict, or JSON text or bytes).

        Nothing missing is invented: an event without ``time`` yields
        ``include_time=False`` (``created_at`` is then the reading time from ``clock``);
        an event without ``data`` yields ``payload is NO_DATA``. ``null`` attributes
        are treated as absent; ``"data": null`` is kept as a ``None`` payload.

        Raises:
            CloudEventError: the event breaks the specification (the error names the
                attribute and the rule); UnsupportedSpecVersionError for a
                specversion other than 1.0.
        """
        if isinstance(obj, (str, bytes, bytearray)):
            obj = _loads(obj, "event")
        if type(obj) is not dict and not isinstance(obj, Mapping):
            raise CloudEventError("event", f"must be a JSON object, got {_kind(obj)}")
        return cls._from_members(obj, retry_policy, clock)

    @classmethod
    def _from_members(
        cls,
        obj: Mapping[str, Any],
        retry_policy: RetryPolicy | None,
        clock: Callable[[], datetime],
    ) -> EventEnvelope:
        get = obj.get
        version = get("specversion")
        if version != _SPECVERSION:
            if version is None:
                raise CloudEventError("specversion", "is required")
            raise UnsupportedSpecVersionError(version)
        event_id, source, event_type = get("id"), get("source"), get("type")
        correlation, schema_version = get("correlationid"), get("schemaversion")
        _check_required(event_id, source, event_type, correlation, schema_version)
        subject = get("subject")
        if subject is not None:
            _check_string("subject", subject)
        dct = get("datacontenttype")
        if dct is not None:
            _check_media_type("datacontenttype", dct)
        schema = get("dataschema")
        if schema is not None:
            _check_uri("dataschema", schema, absolute=True)
        time_text = get("time")
        stamp = None if time_text is None else Timestamp.parse(time_text)
        extensions = _read_extensions(obj)
        # A non-empty String maps onto its envelope field; any other legal value (an
        # empty String, an Integer, a Boolean) stays an extension, so it round-trips.
        if correlation is not None and not (type(correlation) is str and correlation):
            extensions["correlationid"] = correlation
            correlation = None
        if schema_version is not None and not (type(schema_version) is str and schema_version):
            extensions["schemaversion"] = schema_version
            schema_version = None
        payload = _read_payload(obj, dct)
        if retry_policy is None:
            retry_policy = RetryPolicy()
        elif not isinstance(retry_policy, RetryPolicy):
            raise TypeError(f"retry_policy must be a RetryPolicy, got {retry_policy!r}")
        fields: dict[str, Any] = {
            "event_id": event_id,
            "event_type": event_type,
            "source_system": source,
            "payload": payload,
            "correlation_id": correlation or "",
            "schema_version": schema_version or "",
            "created_at": stamp.moment if stamp is not None else _aware_now(clock),
            "status": DeliveryStatus.PENDING,
            "attempt_count": 0,
            "retry_policy": retry_policy,
            "tags": {},
            "subject": subject,
            "data_content_type": dct,
            "data_schema": schema,
            "time": stamp,
            "include_time": stamp is not None,
            "extensions": extensions,
            "history": (),
            "clock": clock,
        }
        if cls is not EventEnvelope:  # a subclass may validate more in __post_init__
            return cls(**fields)
        # Every value was validated above; skip the constructor's second pass.
        env = _new_object(cls)
        env.__dict__ = fields
        return env

    # ---- CloudEvents: HTTP binding ---------------------------------------------------

    def to_http(self, *, structured: bool = False) -> tuple[dict[str, str], bytes]:
        """The event as an HTTP message: ``(headers, body)``.

        Binary mode (the default) puts attributes in percent-encoded ``ce-`` headers and
        the data in the body; ``content-type`` is the ``datacontenttype``, or
        ``application/json`` for JSON data without one (the JSON format's implied type).
        Structured mode sends the whole event as ``application/cloudevents+json``.
        """
        if structured:
            return {"content-type": f"{_JSON_FORMAT}; charset=utf-8"}, self.to_json()
        ce = self.to_cloudevent()
        headers: dict[str, str] = {}
        body = b""
        dct = ce.pop("datacontenttype", None)
        if "data_base64" in ce:
            body = bytes(self.payload)
            del ce["data_base64"]
            if dct is not None and _is_json_media(dct):
                try:  # a binary-mode reader parses a JSON body: the bytes must be JSON text
                    _loads(body, "data")
                except CloudEventError:
                    raise CloudEventError(
                        "data", f"bytes sent as {dct!r} in binary mode must be UTF-8 JSON text"
                    ) from None
        elif "data" in ce:
            data = ce.pop("data")
            if _is_json_media(dct):
                if dct is not None and _charset(dct).lower() not in ("utf-8", "utf8"):
                    raise CloudEventError(
                        "datacontenttype", f"JSON is UTF-8 (RFC 8259); {dct!r} asks otherwise"
                    )
                body = _utf8(_dumps(data, "data"), "data")
                if dct is None:
                    dct = "application/json"
            elif data is None:
                raise CloudEventError(
                    "data", f"an explicit null cannot be carried in a {dct!r} body (binary mode)"
                )
            else:  # a non-JSON media type with str data (checked by to_cloudevent)
                try:
                    body = data.encode(_charset(dct))
                except (LookupError, ValueError) as exc:  # unknown codec, UnicodeError
                    raise CloudEventError("data", f"cannot be encoded as {dct!r}: {exc}") from None
        for name, value in ce.items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            headers[_CE_HEADER_PREFIX + name] = _percent_encode(text)
        if dct is not None:
            headers["content-type"] = dct
        return headers, body

    @classmethod
    def from_http(
        cls,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        body: bytes,
        *,
        retry_policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> EventEnvelope:
        """Read one event from an HTTP message; the mode is chosen by ``Content-Type``.

        ``application/cloudevents+json`` is structured mode (any mirrored ``ce-`` headers
        are ignored); other content types are binary mode. Header names are matched
        case-insensitively; values are unescaped as quoted-strings, then
        percent-decoded as strict UTF-8. In binary mode extension values arrive as
        strings; a JSON body is parsed, a textual one (``text/*``, XML, or a charset
        parameter) is decoded to ``str``, anything else stays ``bytes``; an empty body
        means no data.

        Raises:
            CloudEventError: the message is not a valid CloudEvent, or it is a batch
                (use :func:`from_http_batch`).
        """
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"body must be the raw bytes received, got {_kind(body)}")
        items = _header_items(headers)
        content_type = _content_type(items)
        essence = _media_essence(content_type)
        if essence == _BATCH_FORMAT:
            raise CloudEventError("content-type", "this is a batch; read it with from_http_batch()")
        if essence.startswith(_STRUCTURED):
            if essence != _JSON_FORMAT:
                raise CloudEventError(
                    "content-type", f"event format {essence!r} is not supported (JSON only)"
                )
            _check_json_charset(content_type or "")
            return cls.from_cloudevent(bytes(body), retry_policy=retry_policy, clock=clock)
        members: dict[str, Any] = {}
        for name, value in items:
            if not name.startswith(_CE_HEADER_PREFIX):
                continue
            attribute = name[len(_CE_HEADER_PREFIX) :]
            if attribute in members:
                raise CloudEventError(name, "the header appears more than once")
            if attribute in _ENVELOPE_MEMBERS or attribute == "datacontenttype":
                raise CloudEventError(name, f"{attribute!r} is not carried in a ce- header")
            members[attribute] = _percent_decode(name, value)
        if content_type is not None:
            members["datacontenttype"] = content_type
        if body:
            # The HTTP binding implies no media type: without Content-Type the body is bytes.
            if content_type is not None and _is_json_media(content_type):
                _check_json_charset(content_type)
                members["data"] = _loads(bytes(body), "data")
            elif content_type is not None and _is_text_media(content_type):
                try:
                    members["data"] = bytes(body).decode(_charset(content_type))
                except (LookupError, ValueError) as exc:  # unknown codec, UnicodeError
                    raise CloudEventError("data", f"body does not decode: {exc}") from None
            else:
                members["data_base64"] = _base64().b64encode(body).decode("ascii")
        return cls._from_members(members, retry_policy, clock)


_ENVELOPE_MEMBERS = frozenset({"data", "data_base64"})
_KNOWN_MEMBERS = _CORE | _ENVELOPE_MEMBERS | _ENVELOPE_EXTENSIONS


def _check_required(
    event_id: object, source: object, event_type: object, correlation: object, version: object
) -> None:
    """Validate id, source, type and the two envelope extensions of an event being read."""
    try:  # fast path: the common attributes are printable ASCII and the source is known
        parts: tuple[Any, ...] = (
            event_id,
            event_type,
            source,
            "" if correlation is None else correlation,
            "" if version is None else version,
        )
        joined = "".join(parts)
        fast = joined.isascii() and joined.isprintable()
    except TypeError:  # a missing or non-string attribute: the slow path names it
        fast = False
    if fast and event_id and event_type and source and _uri_reference_problem(source) is None:
        return
    for required, value in (("id", event_id), ("source", source), ("type", event_type)):
        if value is None:
            raise CloudEventError(required, "is required")
    _check_string("id", event_id)
    _check_uri("source", source, absolute=False)
    _check_string("type", event_type)
    if correlation is not None:
        _check_extension_value("correlationid", correlation)
    if version is not None:
        _check_extension_value("schemaversion", version)


def _read_extensions(obj: Mapping[str, Any]) -> dict[str, str | int | bool]:
    extensions: dict[str, str | int | bool] = {}
    if obj.keys() <= _KNOWN_MEMBERS:
        return extensions
    for name, value in obj.items():  # wire order, so a rewrite is byte-stable
        if name in _KNOWN_MEMBERS:
            continue
        if not isinstance(name, str) or _regex(_EXTENSION_NAME).fullmatch(name) is None:
            raise CloudEventError(
                str(name), "extension attribute names use only lower-case ASCII letters and digits"
            )
        if value is not None:  # null means absent
            extensions[name] = _check_extension_value(name, value)
    return extensions


def _read_payload(obj: Mapping[str, Any], dct: str | None) -> Any:
    raw64 = obj.get("data_base64")
    if "data" not in obj:
        return NO_DATA if raw64 is None else _decode_base64(raw64)
    if raw64 is not None:
        raise CloudEventError("data_base64", "data and data_base64 are mutually exclusive")
    payload = obj["data"]
    if payload is not None and not _is_json_media(dct) and not isinstance(payload, str):
        raise CloudEventError(
            "data",
            f"datacontenttype {dct!r} is not JSON, so data must be a string, not {_kind(payload)}",
        )
    return payload


# --------------------------------------------------------------------------------------
# JSON batch format and HTTP batched mode
# --------------------------------------------------------------------------------------


def to_json_batch(envelopes: Iterable[EventEnvelope]) -> bytes:
    """Events in the CloudEvents JSON batch format (``application/cloudevents-batch+json``)."""
    events = []
    for env in envelopes:
        if not isinstance(env, EventEnvelope):
            raise TypeError(f"a batch holds EventEnvelope objects, got {_kind(env)}")
        events.append(env.to_cloudevent())
    return _dumps(events, "data").encode("utf-8")


def from_json_batch(
    raw: str | bytes | bytearray | Iterable[Mapping[str, Any]],
    *,
    retry_policy: RetryPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> list[EventEnvelope]:
    """Read a JSON batch (text, bytes, or an already parsed list). ``[]`` is valid.

    Each event is validated like :meth:`EventEnvelope.from_cloudevent`; an error names
    the position of the bad event in its message.
    """
    items = _loads(raw, "batch") if isinstance(raw, (str, bytes, bytearray)) else raw
    if not isinstance(items, list):
        if isinstance(items, Iterable) and not isinstance(items, Mapping):
            items = list(items)
        else:
            raise CloudEventError("batch", f"must be a JSON array, got {_kind(items)}")
    return [_batch_member(index, item, retry_policy, clock) for index, item in enumerate(items)]


def _batch_member(
    index: int,
    item: object,
    retry_policy: RetryPolicy | None,
    clock: Callable[[], datetime],
) -> EventEnvelope:
    if not isinstance(item, Mapping):
        raise CloudEventError("event", f"batch event #{index}: must be a JSON object")
    try:
        return EventEnvelope.from_cloudevent(item, retry_policy=retry_policy, clock=clock)
    except UnsupportedSpecVersionError as exc:
        raise UnsupportedSpecVersionError(exc.specversion, where=f"batch event #{index}: ") from exc
    except CloudEventError as exc:
        raise CloudEventError(exc.attribute, f"batch event #{index}: {exc.rule}") from exc


def to_http_batch(envelopes: Iterable[EventEnvelope]) -> tuple[dict[str, str], bytes]:
    """Events as one HTTP batched-mode message: ``(headers, body)``."""
    return {"content-type": f"{_BATCH_FORMAT}; charset=utf-8"}, to_json_batch(envelopes)


def from_http_batch(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    *,
    retry_policy: RetryPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> list[EventEnvelope]:
    """Read an HTTP message in batched mode (``application/cloudevents-batch+json``).

    A structured or binary single-event message is also accepted and returned as a
    one-element list, so a receiver can call this for every request.
    """
    if not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"body must be the raw bytes received, got {_kind(body)}")
    items = _header_items(headers)
    content_type = _content_type(items)
    if _media_essence(content_type) == _BATCH_FORMAT:
        _check_json_charset(content_type or "")
        return from_json_batch(bytes(body), retry_policy=retry_policy, clock=clock)
    return [EventEnvelope.from_http(items, body, retry_policy=retry_policy, clock=clock)]
