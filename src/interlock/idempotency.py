# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Idempotency keys: claim then complete, request fingerprints, leases, expiry and an inbox.

Verdict:
    Use it when a request or a message can arrive more than once (client retries, an
    at-least-once broker, a webhook provider's redelivery, an RPA bot re-running a queue
    item) and its effect must not happen twice: an HTTP handler with an
    ``Idempotency-Key`` header, a consumer deduplicating by message id, a job keyed by
    the content of its input. Records live in memory, SQLite or PostgreSQL.
    Do not use it when the effect is idempotent by itself (a PUT of a whole resource, an
    upsert keyed by the message id): a key store is then only cost. Do not expect
    exactly-once from a store whose transaction is separate from the effect: a worker
    that dies after the effect and before ``complete`` leaves a claim that is retaken
    when its lease ends, and the effect runs again. Only :func:`inbox`, which writes the
    dedup record in the effect's own transaction, makes the effect happen exactly once.

Prevents:
    - Duplicate side effects from retries: the first caller claims ``(scope, key)``;
      later callers get the stored result, or "in progress" while the first still runs.
    - Lost retries: a failed run releases its claim (unless ``keep`` says the failure is
      final), so a retry runs again; a key is never marked seen before the work succeeds.
    - Stuck keys after a crash: a claim is a lease; a worker killed mid-effect leaves a
      claim that the next caller retakes when the lease ends.
    - A stale worker overwriting its successor: complete and release need the claim's
      token; a retaken claim raises :class:`ClaimLostError` instead.
    - Key reuse with another payload: a request fingerprint (SHA-256 of canonical JSON,
      of chosen fields, or your own function) is stored and compared.
    - Unbounded growth: every record has a TTL; :meth:`~InMemoryIdempotencyStore.purge_expired`
      sweeps them.

References:
    - draft-ietf-httpapi-idempotency-key-header (the ``Idempotency-Key`` HTTP header:
      400 missing key, 409 request outstanding, 422 key reused with another payload).
    - RFC 8941 section 3.3.3 (sf-string), RFC 9457 (problem details).
    - Stripe API "Idempotent requests"; AWS Lambda Powertools idempotency utility (key
      derivation from canonical JSON; the in-progress / completed record machine).
    - Hohpe & Woolf, *Enterprise Integration Patterns*: Idempotent Receiver;
      microservices.io: Idempotent Consumer, Transactional Inbox.

Exceptions:
    IdempotencyError (ValueError)      root; .status is the HTTP status to answer with
    +-- InvalidKeyError                400: key malformed, not a str or too long; .key, .reason
    |   +-- MissingKeyError            400: no key, or an empty one
    +-- KeyInProgressError             409: a live claim holds the key; .lease_expires_at
    +-- KeyReusedError                 422: same key, another fingerprint; .fingerprint
    +-- ClaimLostError                 409: the claim was retaken, released or expired
    +-- StoredFailureError             a kept failure replayed; .error_type, .message

    Configuration mistakes raise ``TypeError`` or ``ValueError`` naming the argument.
    Database errors propagate as the driver's exceptions.

Example:
    >>> store = InMemoryIdempotencyStore(clock=lambda: 1000.0)
    >>> calls = []
    >>> @idempotent(store, scope="charge", key="request_id")
    ... def charge(request_id: str, amount: int) -> dict[str, object]:
    ...     calls.append(request_id)
    ...     return {"charged": amount}
    >>> charge("k1", 100), charge("k1", 100), calls
    ({'charged': 100}, {'charged': 100}, ['k1'])
    >>> try:
    ...     charge("k1", 200)
    ... except KeyReusedError as error:
    ...     print(http_status(error), error.key)
    422 k1
    >>> claim = store.claim("charge", "k2")
    >>> store.claim("charge", "k2").in_progress
    True
    >>> store.complete(claim, {"charged": 5})
    >>> store.claim("charge", "k2").result
    {'charged': 5}
    >>> import sqlite3
    >>> conn = sqlite3.connect(":memory:")
    >>> migrate(conn)
    1
    >>> for message_id in ["m1", "m2", "m1"]:
    ...     with inbox(conn, scope="billing", key=message_id, now=1000.0) as entry:
    ...         print(message_id, entry.is_new)
    ...     conn.commit()
    m1 True
    m2 True
    m1 False
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

# json, hashlib, inspect and functools load on first use: importing this module stays
# cheap. typing loads only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any, Literal, Protocol, TypeVar

    _T = TypeVar("_T")
    _F = TypeVar("_F", bound=Callable[..., Any])
else:
    # typing costs milliseconds to import; at run time a Protocol is a plain base class.
    Protocol = object

__all__ = [
    "MAX_KEY_LENGTH",
    "Claim",
    "ClaimLostError",
    "IdempotencyError",
    "IdempotencyRecord",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "InboxEntry",
    "InvalidKeyError",
    "KeyInProgressError",
    "KeyReusedError",
    "MissingKeyError",
    "RecordState",
    "SQLIdempotencyStore",
    "StoredFailureError",
    "canonical_json",
    "fingerprint",
    "http_status",
    "idempotent",
    "inbox",
    "migrate",
    "parse_idempotency_key",
    "problem_details",
]

MAX_KEY_LENGTH = 255
"""The longest idempotency key accepted, in characters (Stripe's limit)."""

_INF = float("inf")

_MODULES: dict[str, ModuleType] = {}


def _lazy(name: str) -> ModuleType:
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(name)
    return module


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class IdempotencyError(ValueError):
    """Root of every error this module raises about keys, claims and replays.

    Attributes:
        status: the HTTP status code to answer a client with (see :func:`http_status`).
    """

    status = 500


class InvalidKeyError(IdempotencyError):
    """The idempotency key is malformed, not a string, or too long (HTTP 400).

    Attributes:
        key: the value received (``None`` when there was none).
        reason: what is wrong with it, in words.
    """

    status = 400

    def __init__(self, key: object, reason: str) -> None:
        self.key = key
        self.reason = reason
        shown = repr(key) if not isinstance(key, str) or len(key) <= 80 else repr(key[:80]) + "..."
        ValueError.__init__(self, f"invalid idempotency key {shown}: {reason}")


class MissingKeyError(InvalidKeyError):
    """The operation needs an idempotency key and none (or an empty one) was given (400)."""

    def __init__(self, key: object = None) -> None:
        InvalidKeyError.__init__(self, key, "an idempotency key is required")


class KeyInProgressError(IdempotencyError):
    """Another caller holds a live claim on the key (HTTP 409): retry later.

    Attributes:
        scope, key: the record.
        lease_expires_at: when the other caller's lease ends (unix seconds); after that
            the key can be retaken.
    """

    status = 409

    def __init__(self, scope: str, key: str, lease_expires_at: float | None) -> None:
        self.scope = scope
        self.key = key
        self.lease_expires_at = lease_expires_at
        ValueError.__init__(
            self, f"a request with idempotency key {key!r} is in progress in scope {scope!r}"
        )


class KeyReusedError(IdempotencyError):
    """The key was used before with a request of another fingerprint (HTTP 422).

    Attributes:
        scope, key: the record.
        fingerprint: the fingerprint of this request.
        stored_fingerprint: the fingerprint stored with the key.
    """

    status = 422

    def __init__(self, scope: str, key: str, fingerprint: str, stored_fingerprint: str) -> None:
        self.scope = scope
        self.key = key
        self.fingerprint = fingerprint
        self.stored_fingerprint = stored_fingerprint
        ValueError.__init__(
            self,
            f"idempotency key {key!r} in scope {scope!r} was used with another request "
            f"(fingerprint {fingerprint[:16]}..., stored {stored_fingerprint[:16]}...)",
        )


class ClaimLostError(IdempotencyError):
    """Complete was called with a claim that no longer holds the record (HTTP 409).

    Its lease ran out and another caller retook the key, or it was released, completed
    or expired. The work may have run twice: make leases longer than the slowest run.

    Attributes:
        scope, key: the record.
    """

    status = 409

    def __init__(self, scope: str, key: str) -> None:
        self.scope = scope
        self.key = key
        ValueError.__init__(
            self, f"the claim on idempotency key {key!r} in scope {scope!r} is no longer held"
        )


class StoredFailureError(IdempotencyError):
    """A failure kept as the final result of a key (``keep``), raised again on a replay.

    Attributes:
        error_type: ``"module.QualName"`` of the original exception.
        message: ``str()`` of the original exception.
        status: the original exception's ``status`` (or ``status_code``) when it had an
            integer one, else 500.
        result: the stored failure record as decoded.
    """

    def __init__(self, error_type: str, message: str, status: int | None, result: object) -> None:
        self.error_type = error_type
        self.message = message
        self.status = 500 if status is None else status
        self.result = result
        ValueError.__init__(self, f"replayed failure {error_type}: {message}")


# --------------------------------------------------------------------------------------
# States and values
# --------------------------------------------------------------------------------------


class RecordState(Enum):
    """Where a ``(scope, key)`` stands at a given time.

    ``ABSENT``: no record, released after a failure, or past its TTL.
    ``IN_PROGRESS``: claimed; a worker holds the lease. ``EXPIRED``: claimed but the lease
    ran out (the worker crashed or overran); the next claim retakes it. ``COMPLETED``: the
    result is stored and replayed until the TTL passes.
    """

    ABSENT = "absent"
    IN_PROGRESS = "in_progress"
    EXPIRED = "expired"
    COMPLETED = "completed"


# The record lifecycle: (state found, operation) -> state after. A pair missing from the
# table is refused: claiming IN_PROGRESS or COMPLETED returns the record as it is,
# completing or releasing what the claim no longer holds raises ClaimLostError / is False.
# "expire" is the TTL passing (purge_expired deletes such records).
_TRANSITIONS: dict[tuple[RecordState, str], RecordState] = {
    (RecordState.ABSENT, "claim"): RecordState.IN_PROGRESS,
    (RecordState.EXPIRED, "claim"): RecordState.IN_PROGRESS,
    (RecordState.IN_PROGRESS, "complete"): RecordState.COMPLETED,
    (RecordState.EXPIRED, "complete"): RecordState.COMPLETED,
    (RecordState.IN_PROGRESS, "release"): RecordState.ABSENT,
    (RecordState.EXPIRED, "release"): RecordState.ABSENT,
    (RecordState.IN_PROGRESS, "expire"): RecordState.ABSENT,
    (RecordState.EXPIRED, "expire"): RecordState.ABSENT,
    (RecordState.COMPLETED, "expire"): RecordState.ABSENT,
}


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer of :meth:`IdempotencyStore.claim`.

    Attributes:
        scope, key: the record.
        found: the state before this claim: ``ABSENT`` or ``EXPIRED`` when ``claimed``
            (``EXPIRED``: a crashed or overrunning worker's lease was retaken),
            ``IN_PROGRESS`` or ``COMPLETED`` when not.
        claimed: the caller holds the claim: run the work, then ``complete`` or ``release``.
        token: identifies this claim; ``None`` when not claimed.
        lease_expires_at: when this claim's lease ends (``claimed``) or the other
            worker's (``IN_PROGRESS``), unix seconds; else ``None``.
        result: the stored result, decoded, when ``found`` is ``COMPLETED``.
        failed: the stored result is a kept failure.
    """

    scope: str
    key: str
    found: RecordState
    claimed: bool
    token: str | None = None
    lease_expires_at: float | None = None
    result: object = None
    failed: bool = False

    @property
    def is_new(self) -> bool:
        """Same as ``claimed``: this caller runs the work."""
        return self.claimed

    @property
    def is_replay(self) -> bool:
        """The key is completed: answer with ``result`` and do not run the work."""
        return self.found is RecordState.COMPLETED

    @property
    def in_progress(self) -> bool:
        """Another caller holds a live claim: answer 409 or retry later."""
        return not self.claimed and self.found is RecordState.IN_PROGRESS


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A stored record as :meth:`IdempotencyStore.get` reads it (times in unix seconds)."""

    scope: str
    key: str
    state: RecordState
    fingerprint: str | None
    created_at: float
    expires_at: float
    lease_expires_at: float | None
    completed_at: float | None
    result: object
    failed: bool


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """What :func:`inbox` recorded: ``is_new`` when this transaction inserted the key.

    Its own context manager: ``__exit__`` does nothing (it never commits).
    """

    is_new: bool

    @property
    def is_duplicate(self) -> bool:
        """The key was recorded before (by a committed transaction): skip the effect."""
        return not self.is_new

    def __enter__(self) -> InboxEntry:  # noqa: PYI034 - typing.Self is 3.11+
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


# The only two answers inbox() gives, made once: the inbox runs for every message.
_NEW_ENTRY = InboxEntry(is_new=True)
_DUPLICATE_ENTRY = InboxEntry(is_new=False)


# --------------------------------------------------------------------------------------
# Keys, fingerprints, HTTP mapping
# --------------------------------------------------------------------------------------


def canonical_json(
    value: object, *, separators: tuple[str, str] = (",", ":"), ensure_ascii: bool = False
) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal text.

    NaN and infinities raise ``ValueError``; types JSON cannot represent raise
    ``TypeError``. Floats are written as Python's ``repr`` (this is not RFC 8785).

    >>> canonical_json({"b": 1, "a": [1.5, "é"]})
    '{"a":[1.5,"é"],"b":1}'
    """
    text: str = _lazy("json").dumps(
        value, sort_keys=True, separators=separators, ensure_ascii=ensure_ascii, allow_nan=False
    )
    return text


def fingerprint(
    value: object,
    *,
    fields: Sequence[str] | None = None,
    algorithm: str = "sha256",
    separators: tuple[str, str] = (",", ":"),
    ensure_ascii: bool = False,
) -> str:
    """The hex digest of ``canonical_json(value)`` (of the chosen ``fields`` only, if given).

    Args:
        value: a JSON-serialisable value (a mapping when ``fields`` is given).
        fields: names of the mapping's keys to hash; absent ones are left out, so
            ``{"a": 1}`` and ``{"a": 1, "b": None}`` differ.
        algorithm: a :mod:`hashlib` name.
        separators, ensure_ascii: as for :func:`canonical_json`; AWS Powertools' keys use
            ``algorithm="md5", separators=(", ", ": "), ensure_ascii=True``.

    >>> fingerprint({"amount": 100, "note": "x"}, fields=["amount"]) == fingerprint({"amount": 100})
    True
    """
    if fields is not None:
        if isinstance(fields, (str, bytes)):
            raise TypeError(f"fields must be a sequence of names, got {fields!r}")
        if not isinstance(value, Mapping):
            raise TypeError(f"fields needs a mapping to select from, got {type(value).__name__}")
        value = {name: value[name] for name in fields if name in value}
    hashlib = _lazy("hashlib")
    try:
        digest = hashlib.new(algorithm, usedforsecurity=False)
    except (ValueError, TypeError):
        raise ValueError(f"algorithm must be a hashlib algorithm name, got {algorithm!r}") from None
    if digest.digest_size == 0:  # shake_*: a variable-length digest has no fixed hex form
        raise ValueError(f"algorithm must have a fixed digest size, got {algorithm!r}")
    digest.update(canonical_json(value, separators=separators, ensure_ascii=ensure_ascii).encode())
    hexdigest: str = digest.hexdigest()
    return hexdigest


def parse_idempotency_key(value: str | None, *, lenient: bool = False) -> str:
    """The key of an ``Idempotency-Key`` header value: an RFC 8941 sf-string.

    ``None`` raises :class:`MissingKeyError`; anything else that is not a quoted string
    of printable ASCII (escapes ``\\"`` and ``\\\\`` only, nothing after the closing
    quote) raises :class:`InvalidKeyError`. ``lenient=True`` also accepts a bare value of
    visible ASCII characters, as Stripe-style clients send. ``'""'`` parses to ``""``,
    which a store then refuses as missing.

    >>> parse_idempotency_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"')
    '8e03978e-40d5-43e8-bc93-6894a57f9324'
    """
    if value is None:
        raise MissingKeyError(None)
    if not isinstance(value, str):
        raise InvalidKeyError(value, f"a header value must be a str, got {type(value).__name__}")
    text = value.strip(" \t")
    if not text.startswith('"'):
        if lenient and text and all("!" <= ch <= "~" for ch in text):
            return text
        raise InvalidKeyError(value, "not an sf-string (a double-quoted string)")
    out: list[str] = []
    index, end = 1, len(text)
    while index < end:
        ch = text[index]
        if ch == "\\":
            if index + 1 >= end or text[index + 1] not in '"\\':
                raise InvalidKeyError(value, 'only \\" and \\\\ escapes are allowed')
            out.append(text[index + 1])
            index += 2
            continue
        if ch == '"':
            if index != end - 1:
                raise InvalidKeyError(value, "unexpected text after the closing quote")
            return "".join(out)
        if not " " <= ch <= "~":
            raise InvalidKeyError(value, f"character {ch!r} is not printable ASCII")
        out.append(ch)
        index += 1
    raise InvalidKeyError(value, "no closing quote")


def http_status(error: BaseException) -> int:
    """The HTTP status for an error, per the IETF Idempotency-Key draft.

    400 missing or invalid key, 409 a request with the key is in progress (or a claim
    was lost), 422 key reused with another payload, a replayed kept failure's own
    status, 500 for anything else.

    >>> http_status(MissingKeyError()), http_status(RuntimeError())
    (400, 500)
    """
    if isinstance(error, IdempotencyError):
        return error.status
    return 500


_PROBLEMS: dict[type[IdempotencyError], tuple[str, str]] = {
    MissingKeyError: (
        "Idempotency-Key is missing",
        "This operation is idempotent: send an Idempotency-Key header.",
    ),
    KeyReusedError: (
        "Idempotency-Key is already used",
        (
            "This Idempotency-Key was used with a different request payload; "
            "use a new key for a new request."
        ),
    ),
    KeyInProgressError: (
        "A request is outstanding for this Idempotency-Key",
        "A request with this Idempotency-Key is still being processed; retry later.",
    ),
    ClaimLostError: (
        "A request is outstanding for this Idempotency-Key",
        "Another request took over this Idempotency-Key; retry later.",
    ),
}


def problem_details(error: BaseException, *, type_uri: str = "about:blank") -> dict[str, object]:
    """An RFC 9457 ``application/problem+json`` body for an error (``type``, ``title``,
    ``status``, ``detail``), with the IETF draft's titles for the idempotency errors.

    >>> problem_details(MissingKeyError())["title"]
    'Idempotency-Key is missing'
    """
    status = http_status(error)
    for kind, words in _PROBLEMS.items():
        if isinstance(error, kind):
            title, detail = words
            break
    else:
        if isinstance(error, InvalidKeyError):
            title, detail = "Idempotency-Key is invalid", error.reason
        elif isinstance(error, StoredFailureError):
            title, detail = "Request failed", "This request failed before; the failure is replayed."
        else:
            title, detail = "Internal Server Error", "The request could not be processed."
    return {"type": type_uri, "title": title, "status": status, "detail": detail}


def _check_key(key: object) -> str:
    if key is None or key == "":
        raise MissingKeyError(key)
    if not isinstance(key, str):
        raise InvalidKeyError(key, f"must be a str, got {type(key).__name__}")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(key, f"longer than {MAX_KEY_LENGTH} characters")
    return key


def _check_scope(scope: object) -> str:
    if not isinstance(scope, str):
        raise TypeError(f"scope must be a str, got {scope!r}")
    if not scope:
        raise ValueError(f"scope must not be empty, got {scope!r}")
    return scope


def _check_fingerprint(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"fingerprint must be a str or None, got {value!r}")
    return value


def _seconds(name: str, value: object) -> float:
    """``value`` as float seconds > 0, or TypeError/ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not 0 < value < _INF:
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _callable(name: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")


def _reused(scope: str, key: str, given: str | None, stored: str | None) -> None:
    if given is not None and stored is not None and given != stored:
        raise KeyReusedError(scope, key, given, stored)


def _state_of(
    state: str, lease_expires_at: float | None, expires_at: float, now: float
) -> RecordState:
    """The state of a stored row at ``now``: past its TTL reads as ABSENT."""
    if expires_at <= now:
        return RecordState.ABSENT
    if state == "completed":
        return RecordState.COMPLETED
    if lease_expires_at is not None and lease_expires_at <= now:
        return RecordState.EXPIRED
    return RecordState.IN_PROGRESS


def _take_over(
    scope: str, key: str, fingerprint: str | None, found: RecordState, stored: str | None
) -> tuple[bool, str | None]:
    """Judge a claim on a record found in state ``found`` whose fingerprint is ``stored``.

    Whether the claim takes the record, and the fingerprint the record keeps if it does
    (an expired record keeps its own when the claim brings none); KeyReusedError when the
    two fingerprints differ. Both stores decide a claim here.
    """
    if found is not RecordState.ABSENT:
        _reused(scope, key, fingerprint, stored)
    if (found, "claim") not in _TRANSITIONS:
        return False, fingerprint
    if fingerprint is None and found is RecordState.EXPIRED:
        return True, stored
    return True, fingerprint


def _claim_token() -> str:
    return os.urandom(16).hex()


def _json_encode(result: object) -> str:
    text: str = _lazy("json").dumps(
        result, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text


def _json_decode(text: str) -> object:
    return _lazy("json").loads(text)


# --------------------------------------------------------------------------------------
# Stores
# --------------------------------------------------------------------------------------


class IdempotencyStore(Protocol):
    """Where claims and results of ``(scope, key)`` records live.

    Every method is atomic with respect to every other caller of the same store, in this
    process and (for a shared database) in others. ``now=None`` reads the store's clock.
    """

    def claim(
        self,
        scope: str,
        key: str | None,
        *,
        fingerprint: str | None = None,
        lease_seconds: float | None = None,
        now: float | None = None,
    ) -> Claim:
        """Claim the key if ``ABSENT`` or ``EXPIRED``; else report it (see :class:`Claim`)."""

    def complete(
        self,
        claim: Claim,
        result: object = None,
        *,
        failed: bool = False,
        ttl_seconds: float | None = None,
        now: float | None = None,
    ) -> None:
        """Store ``result`` as the key's final result; ClaimLostError if no longer held."""

    def release(self, claim: Claim, *, now: float | None = None) -> bool:
        """Delete the record if this claim still holds it; True if it did."""

    def get(self, scope: str, key: str, *, now: float | None = None) -> IdempotencyRecord | None:
        """The record, or None when absent or past its TTL."""

    def purge_expired(self, *, now: float | None = None) -> int:
        """Delete records past their TTL; return how many."""


class _StoreBase:
    """Configuration shared by both stores, validated once."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        lease_seconds: float,
        ttl_seconds: float,
        encode: Callable[[object], str],
        decode: Callable[[str], object],
    ) -> None:
        _callable("clock", clock)
        _callable("encode", encode)
        _callable("decode", decode)
        self.clock = clock
        self.lease_seconds = _seconds("lease_seconds", lease_seconds)
        self.ttl_seconds = _seconds("ttl_seconds", ttl_seconds)
        self._encode = encode
        self._decode = decode

    def _now(self, now: float | None) -> float:
        return float(self.clock() if now is None else now)

    def _lease(self, lease_seconds: float | None) -> float:
        return (
            self.lease_seconds
            if lease_seconds is None
            else _seconds("lease_seconds", lease_seconds)
        )

    def _ttl(self, ttl_seconds: float | None) -> float:
        return self.ttl_seconds if ttl_seconds is None else _seconds("ttl_seconds", ttl_seconds)

    def _encoded(self, claim: Claim, result: object) -> str:
        if not isinstance(claim, Claim) or not claim.claimed:
            raise TypeError(f"complete() needs a Claim that was claimed, got {claim!r}")
        text = self._encode(result)
        if not isinstance(text, str):
            raise TypeError(f"encode must return a str, returned {type(text).__name__}")
        return text

    def _decoded(self, text: str | None) -> object:
        return None if text is None else self._decode(text)

    def _refused(self, scope: str, key: str, held: tuple[RecordState, Any, Any, Any]) -> Claim:
        """A claim on a record it may not take: the stored result, else the holder's lease.

        ``held`` is what the store read: (state, lease end, stored result, failed flag).
        """
        found, lease_end, text, failed = held
        if found is RecordState.COMPLETED:
            return Claim(
                scope, key, found, claimed=False, result=self._decoded(text), failed=bool(failed)
            )
        return Claim(scope, key, found, claimed=False, lease_expires_at=float(lease_end))


class _Row:
    __slots__ = (
        "completed_at",
        "created_at",
        "expires_at",
        "failed",
        "fingerprint",
        "lease_expires_at",
        "result",
        "state",
        "token",
    )

    def __init__(
        self, fingerprint: str | None, token: str, now: float, lease: float, ttl: float
    ) -> None:
        self.state = "in_progress"
        self.fingerprint = fingerprint
        self.token: str | None = token
        self.lease_expires_at: float | None = now + lease
        self.created_at = now
        self.completed_at: float | None = None
        self.expires_at = now + ttl
        self.result: str | None = None
        self.failed = False


class InMemoryIdempotencyStore(_StoreBase):
    """An :class:`IdempotencyStore` in a dict behind a lock: one process, any threads.

    Also the test double. Results are stored encoded, as the SQL store stores them, so a
    result the codec cannot encode fails here too.

    Args:
        clock: unix seconds.
        lease_seconds: default lease of a claim; longer than the slowest run of the work.
        ttl_seconds: how long a record is kept, from its claim and again from completion.
        encode, decode: the result codec (default: JSON text).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 300.0,
        ttl_seconds: float = 86400.0,
        encode: Callable[[object], str] = _json_encode,
        decode: Callable[[str], object] = _json_decode,
    ) -> None:
        super().__init__(
            clock=clock,
            lease_seconds=lease_seconds,
            ttl_seconds=ttl_seconds,
            encode=encode,
            decode=decode,
        )
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str], _Row] = {}

    def __repr__(self) -> str:
        return f"InMemoryIdempotencyStore(records={len(self._rows)})"

    def __len__(self) -> int:
        """How many records the store holds (expired ones included until purged)."""
        return len(self._rows)

    def claim(
        self,
        scope: str,
        key: str | None,
        *,
        fingerprint: str | None = None,
        lease_seconds: float | None = None,
        now: float | None = None,
    ) -> Claim:
        """Claim the key if ``ABSENT`` or ``EXPIRED``; else report it (see :class:`Claim`)."""
        scope, key = _check_scope(scope), _check_key(key)
        fingerprint = _check_fingerprint(fingerprint)
        lease, ttl, at = self._lease(lease_seconds), self.ttl_seconds, self._now(now)
        with self._lock:
            row = self._rows.get((scope, key))
            found = (
                RecordState.ABSENT
                if row is None
                else _state_of(row.state, row.lease_expires_at, row.expires_at, at)
            )
            stored = None if row is None else row.fingerprint
            taken, fingerprint = _take_over(scope, key, fingerprint, found, stored)
            if not taken:
                assert row is not None  # noqa: S101 - ABSENT is always claimable
                held = (found, row.lease_expires_at, row.result, row.failed)
            else:
                new = _Row(fingerprint, _claim_token(), at, lease, ttl)
                self._rows[scope, key] = new
                return Claim(
                    scope,
                    key,
                    found,
                    claimed=True,
                    token=new.token,
                    lease_expires_at=new.lease_expires_at,
                )
        return self._refused(scope, key, held)

    def complete(
        self,
        claim: Claim,
        result: object = None,
        *,
        failed: bool = False,
        ttl_seconds: float | None = None,
        now: float | None = None,
    ) -> None:
        """Store ``result`` as the key's final result; ClaimLostError if no longer held."""
        text = self._encoded(claim, result)
        ttl, at = self._ttl(ttl_seconds), self._now(now)
        with self._lock:
            row = self._rows.get((claim.scope, claim.key))
            if (
                row is None
                or row.state != "in_progress"
                or row.token != claim.token
                or row.expires_at <= at
            ):
                raise ClaimLostError(claim.scope, claim.key)
            row.state = "completed"
            row.token = None
            row.lease_expires_at = None
            row.result = text
            row.failed = bool(failed)
            row.completed_at = at
            row.expires_at = at + ttl

    def release(self, claim: Claim, *, now: float | None = None) -> bool:  # noqa: ARG002
        """Delete the record if this claim still holds it; True if it did."""
        with self._lock:
            row = self._rows.get((claim.scope, claim.key))
            if row is None or row.state != "in_progress" or row.token != claim.token:
                return False
            del self._rows[claim.scope, claim.key]
            return True

    def get(self, scope: str, key: str, *, now: float | None = None) -> IdempotencyRecord | None:
        """The record, or None when absent or past its TTL."""
        at = self._now(now)
        with self._lock:
            row = self._rows.get((scope, key))
            if row is None:
                return None
            values = (
                row.state,
                row.fingerprint,
                row.created_at,
                row.expires_at,
                row.lease_expires_at,
                row.completed_at,
                row.result,
                row.failed,
            )
        return _record(scope, key, values, at, self._decoded)

    def purge_expired(self, *, now: float | None = None) -> int:
        """Delete records past their TTL; return how many."""
        at = self._now(now)
        with self._lock:
            stale = [k for k, row in self._rows.items() if row.expires_at <= at]
            for k in stale:
                del self._rows[k]
            return len(stale)


def _record(
    scope: str,
    key: str,
    values: tuple[Any, ...],
    now: float,
    decode: Callable[[str | None], object],
) -> IdempotencyRecord | None:
    """An IdempotencyRecord from (state, fingerprint, created, expires, lease, completed,
    result, failed), or None when past its TTL."""
    state, fp, created, expires, lease, completed, text, failed = values
    found = _state_of(state, lease, expires, now)
    if found is RecordState.ABSENT:
        return None
    return IdempotencyRecord(
        scope,
        key,
        found,
        fp,
        float(created),
        float(expires),
        None if lease is None else float(lease),
        None if completed is None else float(completed),
        decode(text),
        bool(failed),
    )


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
        for mark, part in zip(marks, parts[1:]):  # noqa: B905 - lengths match by construction
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


# The dialect of each connection class and each statement in each paramstyle, computed once:
# the inbox runs on every message a consumer handles.
_DIALECTS: dict[type, _Dialect] = {}
_STATEMENTS: dict[tuple[str, str], str] = {}
_INBOX_STATEMENTS: dict[str, str] = {}  # paramstyle -> the inbox statement without fingerprint


def _dialect(conn: object) -> _Dialect:
    dialect = _DIALECTS.get(type(conn))
    if dialect is None:
        dialect = _DIALECTS[type(conn)] = _dialect_of(conn)
    return dialect


def _sql(dialect: _Dialect, text: str) -> str:
    statement = _STATEMENTS.get((dialect.paramstyle, text))
    if statement is None:
        statement = _STATEMENTS[dialect.paramstyle, text] = dialect.sql(text)
    return statement


# --------------------------------------------------------------------------------------
# SQL schema and statements
# --------------------------------------------------------------------------------------

# One tuple of statements per schema version: _MIGRATIONS[0] creates version 1.
# (Table and column names are literals: nothing user-supplied is ever put into SQL.)
_MIGRATIONS = (
    (
        (
            "CREATE TABLE IF NOT EXISTS interlock_idempotency_keys ("
            " scope TEXT NOT NULL,"
            " key TEXT NOT NULL,"
            " state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),"
            " fingerprint TEXT,"
            " token TEXT,"
            " lease_expires_at DOUBLE PRECISION,"
            " created_at DOUBLE PRECISION NOT NULL,"
            " completed_at DOUBLE PRECISION,"
            " expires_at DOUBLE PRECISION NOT NULL,"
            " result TEXT,"
            " failed INTEGER NOT NULL DEFAULT 0,"
            " PRIMARY KEY (scope, key))"
        ),
        (
            "CREATE INDEX IF NOT EXISTS interlock_idempotency_keys_expires"
            " ON interlock_idempotency_keys (expires_at)"
        ),
    ),
)
# A transaction-scoped advisory lock serialises concurrent migrate() calls on PostgreSQL
# (CREATE TABLE IF NOT EXISTS alone races on the catalog). The number spells "idmp".
_PG_MIGRATE_LOCK = "SELECT pg_advisory_xact_lock(1768189296)"
_INSERT_CLAIM = (
    "INSERT INTO interlock_idempotency_keys (scope, key, state, fingerprint, token,"
    " lease_expires_at, created_at, completed_at, expires_at, result, failed)"
    " VALUES (?, ?, 'in_progress', ?, ?, ?, ?, NULL, ?, NULL, 0)"
    " ON CONFLICT (scope, key) DO NOTHING"
)
_SELECT_ROW = (
    "SELECT state, fingerprint, created_at, expires_at, lease_expires_at, completed_at,"
    " result, failed FROM interlock_idempotency_keys WHERE scope = ? AND key = ?"
)
_RETAKE = (
    "UPDATE interlock_idempotency_keys SET state = 'in_progress', fingerprint = ?,"
    " token = ?, lease_expires_at = ?, created_at = ?, completed_at = NULL,"
    " expires_at = ?, result = NULL, failed = 0 WHERE scope = ? AND key = ?"
)
_COMPLETE = (
    "UPDATE interlock_idempotency_keys SET state = 'completed', token = NULL,"
    " lease_expires_at = NULL, result = ?, failed = ?, completed_at = ?, expires_at = ?"
    " WHERE scope = ? AND key = ? AND token = ? AND state = 'in_progress' AND expires_at > ?"
)
_RELEASE = (
    "DELETE FROM interlock_idempotency_keys"
    " WHERE scope = ? AND key = ? AND token = ? AND state = 'in_progress'"
)
_PURGE = "DELETE FROM interlock_idempotency_keys WHERE expires_at <= ?"
_INBOX = (
    "INSERT INTO interlock_idempotency_keys (scope, key, state, fingerprint, token,"
    " lease_expires_at, created_at, completed_at, expires_at, result, failed)"
    " VALUES (?, ?, 'completed', ?, NULL, NULL, ?, ?, ?, NULL, 0)"
    " ON CONFLICT (scope, key) DO NOTHING"
)
# Without a fingerprint the NULL is written in the SQL: binding None costs sqlite3 an adapter
# lookup, a fifth of the statement's time.
_INBOX_NO_FINGERPRINT = _INBOX.replace("'completed', ?,", "'completed', NULL,")
_INBOX_FINGERPRINT = (
    "SELECT fingerprint FROM interlock_idempotency_keys WHERE scope = ? AND key = ?"
)


def _begin(conn: Any, cursor: Any, dialect: _Dialect, *, immediate: bool) -> None:
    """Open a transaction the way the dialect needs (a no-op when one is open)."""
    if dialect.name == "sqlite":
        if immediate and not conn.in_transaction:
            cursor.execute("BEGIN IMMEDIATE")
    elif getattr(conn, "autocommit", False) is True:
        cursor.execute("BEGIN")


def _rollback(conn: Any) -> None:
    with _lazy("contextlib").suppress(Exception):  # the original error matters more
        conn.rollback()


def _check_version(version: int) -> None:
    if version > len(_MIGRATIONS):
        raise ValueError(
            f"the database has idempotency schema version {version}; "
            f"this code knows versions up to {len(_MIGRATIONS)}"
        )


def migrate(conn: Any) -> int:
    """Create or upgrade the idempotency tables on ``conn`` and commit; return the version.

    Idempotent, and safe from several processes at once (SQLite: ``BEGIN IMMEDIATE``;
    PostgreSQL: an advisory lock). Versions are rows of ``interlock_idempotency_schema``.
    ``ValueError`` when the database holds a newer schema than this code knows.
    """
    dialect = _dialect(conn)
    cursor = conn.cursor()
    try:
        _begin(conn, cursor, dialect, immediate=True)
        if dialect.name == "postgresql":
            cursor.execute(_PG_MIGRATE_LOCK)
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS interlock_idempotency_schema (version INTEGER NOT NULL)"
        )
        cursor.execute("SELECT MAX(version) FROM interlock_idempotency_schema")
        version = cursor.fetchone()[0] or 0
        _check_version(version)
        for number, statements in enumerate(_MIGRATIONS[version:], version + 1):
            for statement in statements:
                cursor.execute(statement)
            cursor.execute(
                dialect.sql("INSERT INTO interlock_idempotency_schema (version) VALUES (?)"),
                (number,),
            )
        conn.commit()
    except BaseException:
        _rollback(conn)
        raise
    return len(_MIGRATIONS)


def inbox(
    conn: Any,
    *,
    scope: str,
    key: str | None,
    fingerprint: str | None = None,
    ttl_seconds: float = 86400.0,
    now: float | None = None,
) -> InboxEntry:
    """Record ``(scope, key)`` inside the caller's open transaction; never commits.

    Run the effect on the same connection when ``entry.is_new``, then commit: the record
    and the effect commit or roll back together, so the effect happens exactly once. A
    concurrent transaction recording the same key waits on the unique key and then sees
    a duplicate (or new, if the first rolled back). On SQLite begin the transaction with
    ``BEGIN IMMEDIATE``. ``KeyReusedError`` when a duplicate's stored fingerprint differs.

    Any existing record of the key is a duplicate, also one past its TTL: a record leaves
    only through :meth:`~SQLIdempotencyStore.purge_expired`, so a late redelivery is never
    applied again before the sweep. Give the inbox its own scopes, apart from a store's.
    """
    # The checks of the common case inline: this runs once per message a consumer handles.
    if type(scope) is not str or not scope:
        _check_scope(scope)
    if type(key) is not str or not key or len(key) > MAX_KEY_LENGTH:
        key = _check_key(key)  # raises
    if fingerprint is not None and type(fingerprint) is not str:
        _check_fingerprint(fingerprint)
    ttl = ttl_seconds
    if type(ttl) is not float or not 0 < ttl < _INF:
        ttl = _seconds("ttl_seconds", ttl_seconds)
    at = time.time() if now is None else now if type(now) is float else float(now)
    dialect = _DIALECTS.get(type(conn)) or _dialect(conn)
    cursor = conn.cursor()
    if fingerprint is None:
        statement = _INBOX_STATEMENTS.get(dialect.paramstyle)
        if statement is None:
            statement = _INBOX_STATEMENTS[dialect.paramstyle] = dialect.sql(_INBOX_NO_FINGERPRINT)
        cursor.execute(statement, (scope, key, at, at, at + ttl))
    else:
        cursor.execute(_sql(dialect, _INBOX), (scope, key, fingerprint, at, at, at + ttl))
    if cursor.rowcount == 1:
        return _NEW_ENTRY
    if fingerprint is not None:
        cursor.execute(_sql(dialect, _INBOX_FINGERPRINT), (scope, key))
        row = cursor.fetchone()
        _reused(scope, str(key), fingerprint, None if row is None else row[0])
    return _DUPLICATE_ENTRY


class SQLIdempotencyStore(_StoreBase):
    """An :class:`IdempotencyStore` in SQLite or PostgreSQL, shared by many processes.

    Every call is one short transaction that the store commits. Run :func:`migrate`
    (or :meth:`migrate`) once before use.

    Args:
        connect: a zero-argument callable returning a new DB-API connection (the store
            opens one per thread, owns it and closes it in :meth:`close`), or one open
            connection (it has a ``cursor`` attribute), used behind a lock, committed on,
            never closed. Do not pass a connection you use for your own transactions.
        clock, lease_seconds, ttl_seconds, encode, decode: as for
            :class:`InMemoryIdempotencyStore`.
    """

    def __init__(
        self,
        connect: Any,
        *,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 300.0,
        ttl_seconds: float = 86400.0,
        encode: Callable[[object], str] = _json_encode,
        decode: Callable[[str], object] = _json_decode,
    ) -> None:
        super().__init__(
            clock=clock,
            lease_seconds=lease_seconds,
            ttl_seconds=ttl_seconds,
            encode=encode,
            decode=decode,
        )
        self._lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[Any] = []
        self._shared: Any = None
        self._factory: Callable[[], Any] | None = None
        if hasattr(connect, "cursor"):
            self._shared = (connect, _dialect(connect))
        elif callable(connect):
            self._factory = connect
        else:
            raise TypeError(
                f"connect must be a DB-API connection or a callable returning one, got {connect!r}"
            )

    def __repr__(self) -> str:
        where = "<connection>" if self._factory is None else "<factory>"
        return f"SQLIdempotencyStore({where})"

    def __enter__(self) -> SQLIdempotencyStore:  # noqa: PYI034 - typing.Self is 3.11+
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this store opened (never one you passed in).

        A later call opens a new one. Open sqlite3 connections with
        ``check_same_thread=False`` for close() to reach those of other threads.
        """
        with self._lock:
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for conn in opened:
            # A sqlite3 connection opened in another thread without check_same_thread=False
            # refuses to close here; it closes when it is garbage collected.
            with _lazy("contextlib").suppress(Exception):
                conn.close()

    def _connection(self) -> tuple[Any, _Dialect]:
        pair: tuple[Any, _Dialect] | None = getattr(self._local, "pair", None)
        if pair is None:
            assert self._factory is not None  # noqa: S101 - shared stores never get here
            conn = self._factory()
            pair = (conn, _dialect(conn))
            with self._lock:
                self._opened.append(conn)
                self._local.pair = pair
        return pair

    def _transaction(self, work: Callable[[Any, _Dialect], _T], *, immediate: bool = False) -> _T:
        """Run ``work(cursor, dialect)`` in one transaction and commit; roll back if it raises."""
        shared = self._shared is not None
        if shared:
            self._lock.acquire()
        try:
            conn, dialect = self._shared if shared else self._connection()
            cursor = conn.cursor()
            try:
                _begin(conn, cursor, dialect, immediate=immediate)
                result = work(cursor, dialect)
                conn.commit()
            except BaseException:
                _rollback(conn)
                raise
            return result
        finally:
            if shared:
                self._lock.release()

    def migrate(self) -> int:
        """Run :func:`migrate` on the store's connection; return the schema version."""
        if self._shared is not None:
            with self._lock:
                return migrate(self._shared[0])
        return migrate(self._connection()[0])

    def claim(
        self,
        scope: str,
        key: str | None,
        *,
        fingerprint: str | None = None,
        lease_seconds: float | None = None,
        now: float | None = None,
    ) -> Claim:
        """Claim the key if ``ABSENT`` or ``EXPIRED``; else report it (see :class:`Claim`)."""
        scope, key = _check_scope(scope), _check_key(key)
        fingerprint = _check_fingerprint(fingerprint)
        lease, ttl, at = self._lease(lease_seconds), self.ttl_seconds, self._now(now)

        def work(cursor: Any, dialect: _Dialect) -> Claim | tuple[RecordState, Any, Any, Any]:
            select = _SELECT_ROW + (" FOR UPDATE" if dialect.name == "postgresql" else "")
            while True:
                token = _claim_token()
                cursor.execute(
                    _sql(dialect, _INSERT_CLAIM),
                    (scope, key, fingerprint, token, at + lease, at, at + ttl),
                )
                if cursor.rowcount == 1:
                    return Claim(
                        scope,
                        key,
                        RecordState.ABSENT,
                        claimed=True,
                        token=token,
                        lease_expires_at=at + lease,
                    )
                cursor.execute(_sql(dialect, select), (scope, key))
                row = cursor.fetchone()
                if row is not None:  # else: released meanwhile (PostgreSQL): insert again
                    break
            state, stored_fp, _, expires, lease_end, _, text, failed = row
            found = _state_of(state, lease_end, expires, at)
            taken, keep_fp = _take_over(scope, key, fingerprint, found, stored_fp)
            if not taken:
                return (found, lease_end, text, failed)
            cursor.execute(
                _sql(dialect, _RETAKE),
                (keep_fp, token, at + lease, at, at + ttl, scope, key),
            )
            return Claim(scope, key, found, claimed=True, token=token, lease_expires_at=at + lease)

        answer = self._transaction(work, immediate=True)
        if isinstance(answer, Claim):
            return answer
        return self._refused(scope, key, answer)

    def complete(
        self,
        claim: Claim,
        result: object = None,
        *,
        failed: bool = False,
        ttl_seconds: float | None = None,
        now: float | None = None,
    ) -> None:
        """Store ``result`` as the key's final result; ClaimLostError if no longer held."""
        text = self._encoded(claim, result)
        ttl, at = self._ttl(ttl_seconds), self._now(now)

        def work(cursor: Any, dialect: _Dialect) -> int:
            cursor.execute(
                _sql(dialect, _COMPLETE),
                (text, int(bool(failed)), at, at + ttl, claim.scope, claim.key, claim.token, at),
            )
            count: int = cursor.rowcount
            return count

        if self._transaction(work) != 1:
            raise ClaimLostError(claim.scope, claim.key)

    def release(self, claim: Claim, *, now: float | None = None) -> bool:  # noqa: ARG002
        """Delete the record if this claim still holds it; True if it did."""
        if claim.token is None:
            return False

        def work(cursor: Any, dialect: _Dialect) -> bool:
            cursor.execute(_sql(dialect, _RELEASE), (claim.scope, claim.key, claim.token))
            return bool(cursor.rowcount == 1)

        return self._transaction(work)

    def get(self, scope: str, key: str, *, now: float | None = None) -> IdempotencyRecord | None:
        """The record, or None when absent or past its TTL."""
        at = self._now(now)

        def work(cursor: Any, dialect: _Dialect) -> tuple[Any, ...] | None:
            cursor.execute(_sql(dialect, _SELECT_ROW), (scope, key))
            row = cursor.fetchone()
            return None if row is None else tuple(row)

        values = self._transaction(work)
        if values is None:
            return None
        return _record(scope, key, values, at, self._decoded)

    def purge_expired(self, *, now: float | None = None) -> int:
        """Delete records past their TTL; return how many."""
        at = self._now(now)

        def work(cursor: Any, dialect: _Dialect) -> int:
            cursor.execute(_sql(dialect, _PURGE), (at,))
            count: int = cursor.rowcount
            return count

        return self._transaction(work)


# --------------------------------------------------------------------------------------
# The decorator
# --------------------------------------------------------------------------------------


def _describe(error: Exception) -> dict[str, object]:
    """A kept failure as JSON: its type, message and HTTP-like status, if it has one."""
    status = getattr(error, "status", None)
    if not isinstance(status, int) or isinstance(status, bool):
        status = getattr(error, "status_code", None)
        if not isinstance(status, int) or isinstance(status, bool):
            status = None
    kind = type(error)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(error),
        "status": status,
    }


def _stored_failure(result: object) -> StoredFailureError:
    if isinstance(result, Mapping):
        status = result.get("status")
        return StoredFailureError(
            str(result.get("type", "")),
            str(result.get("message", "")),
            status if isinstance(status, int) and not isinstance(status, bool) else None,
            result,
        )
    return StoredFailureError("", repr(result), None, result)


def idempotent(  # noqa: PLR0915 - validation, then the wrapper's small closures
    store: IdempotencyStore,
    *,
    scope: str,
    key: Callable[..., str | None] | str | None = None,
    fingerprint: Callable[..., str | None] | Literal[False] | None = None,
    keep: Callable[[Exception], bool] | None = None,
    lease_seconds: float | None = None,
    ttl_seconds: float | None = None,
) -> Callable[[_F], _F]:
    """Run the decorated function at most once per key; replay its result afterwards.

    Works on plain functions and on coroutine functions (the wrapper is then one too).

    Args:
        store: an :class:`IdempotencyStore`.
        scope: names the operation; keys of different scopes never collide.
        key: a callable over the function's arguments returning the key; or the name of
            the parameter holding it; or ``None``: the :func:`fingerprint` of all bound
            arguments (deduplication by content).
        fingerprint: a callable over the arguments returning the request fingerprint;
            ``None``: :func:`fingerprint` of all bound arguments; ``False``: not checked.
        keep: a predicate on an exception the function raised: true stores the failure
            as the key's final result (replays raise :class:`StoredFailureError`); false
            (or no ``keep``) releases the claim so that a retry runs the function again.
        lease_seconds, ttl_seconds: override the store's defaults.

    Raises (on a call):
        MissingKeyError, InvalidKeyError: no usable key. KeyReusedError: the key was used
        with another fingerprint. KeyInProgressError: another caller holds a live claim.
        StoredFailureError: the key's kept failure, replayed. ClaimLostError: the lease
        ran out and another caller retook the key before this one completed.
    """
    _check_scope(scope)
    if not (key is None or isinstance(key, str) or callable(key)):
        raise TypeError(f"key must be a callable, a parameter name or None, got {key!r}")
    if not (fingerprint is None or fingerprint is False or callable(fingerprint)):
        raise TypeError(f"fingerprint must be a callable, False or None, got {fingerprint!r}")
    if keep is not None:
        _callable("keep", keep)
    for name, value in (("lease_seconds", lease_seconds), ("ttl_seconds", ttl_seconds)):
        if value is not None:
            _seconds(name, value)
    for method in ("claim", "complete", "release"):
        if not callable(getattr(store, method, None)):
            raise TypeError(f"store must be an IdempotencyStore (no {method}()), got {store!r}")

    def decorate(function: _F) -> _F:  # noqa: PLR0915 - one closure per step of a call
        _callable("function", function)
        inspect = _lazy("inspect")
        signature = inspect.signature(function)
        if isinstance(key, str) and key not in signature.parameters:
            raise ValueError(f"key={key!r} is not a parameter of {function.__qualname__}")

        def arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Claim:
            named = None
            if key is None:
                named = arguments(args, kwargs)
                the_key: object = _fingerprint(named)
            elif isinstance(key, str):
                named = arguments(args, kwargs)
                the_key = named[key]
            else:
                the_key = key(*args, **kwargs)
            if fingerprint is False:
                print_ = None
            elif fingerprint is None:
                print_ = _fingerprint(arguments(args, kwargs) if named is None else named)
            else:
                print_ = fingerprint(*args, **kwargs)
            claim = store.claim(
                scope,
                the_key,  # type: ignore[arg-type]  # checked by the store
                fingerprint=print_,
                lease_seconds=lease_seconds,
            )
            if claim.claimed or claim.is_replay:
                return claim
            raise KeyInProgressError(scope, claim.key, claim.lease_expires_at)

        def replay(claim: Claim) -> Any:
            if claim.failed:
                raise _stored_failure(claim.result)
            return claim.result

        def failed(claim: Claim, error: BaseException) -> None:
            if keep is not None and isinstance(error, Exception) and keep(error):
                store.complete(claim, _describe(error), failed=True, ttl_seconds=ttl_seconds)
            else:
                store.release(claim)

        def finish(claim: Claim, result: object) -> None:
            try:
                store.complete(claim, result, ttl_seconds=ttl_seconds)
            except IdempotencyError:
                raise
            except (TypeError, ValueError):  # the result cannot be encoded: nothing stored
                store.release(claim)
                raise

        functools = _lazy("functools")
        if inspect.iscoroutinefunction(function):

            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                claim = start(args, kwargs)
                if not claim.claimed:
                    return replay(claim)
                try:
                    result = await function(*args, **kwargs)
                except BaseException as error:
                    failed(claim, error)
                    raise
                finish(claim, result)
                return result

            return functools.wraps(function)(awrapper)  # type: ignore[no-any-return]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            claim = start(args, kwargs)
            if not claim.claimed:
                return replay(claim)
            try:
                result = function(*args, **kwargs)
            except BaseException as error:
                failed(claim, error)
                raise
            finish(claim, result)
            return result

        return functools.wraps(function)(wrapper)  # type: ignore[no-any-return]

    return decorate


_fingerprint = fingerprint
