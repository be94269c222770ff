# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Webhook signatures verified and produced for every major provider, from the raw bytes.

Verdict:
    Use it when an HTTP endpoint receives webhooks (Stripe, GitHub, Slack, Shopify, Twilio,
    Standard Webhooks / Svix, and the other schemes in :data:`SCHEMES`) and must accept
    exactly the deliveries the provider signed: raw bytes, the provider's secret format,
    replay windows checked in both directions, rotated secrets and several signatures per
    header; or when you send webhooks and want the headers a receiver expects (:func:`sign`).
    :class:`WebhookReceiver` puts verification, deduplication by delivery id and the HTTP
    status to answer in front of your handler, with any web framework.
    Do not use it when the provider authenticates with mutual TLS, OAuth bearer tokens or IP
    allow-lists only (there is no signature to check), or when you need to sign with an
    asymmetric private key (SendGrid and Discord are verified here, never signed).

Prevents:
    - Verifying re-serialised JSON: ``body`` must be the raw ``bytes`` received; a ``str``
      is refused with a ``TypeError`` that says why.
    - Secret-format mistakes: ``whsec_`` secrets are base64-decoded strictly, hex keys must
      be hex, stray whitespace is an error instead of a silently different key.
    - Replays: timestamps are checked against a window in both directions (too old and too
      new are different errors carrying the skew in seconds), with per-scheme defaults.
    - Broken rotation: ``secret`` may be a list; every signature in a header is compared
      with every secret, and the result says which secret matched.
    - Timing leaks and crashes: digests are decoded and compared as bytes with
      ``hmac.compare_digest`` after a length check; malformed headers raise this module's
      errors, never ``IndexError``, ``binascii.Error`` or ``UnicodeDecodeError``.
    - Processing a retried delivery twice, or losing one: :class:`WebhookReceiver` claims
      the delivery's key before the handler runs and marks it done only after the handler
      succeeded; a failed handler releases the claim so that the provider's retry runs it
      again, and concurrent deliveries of one key (threads, or processes sharing a
      :class:`SQLiteDeliveryStore`) run the handler once.

References:
    - Standard Webhooks specification (github.com/standard-webhooks/standard-webhooks, spec/
      standard-webhooks.md); Svix "Verifying payloads".
    - Provider documentation: Stripe "Check the webhook signatures", GitHub "Validating
      webhook deliveries", Slack "Verifying requests from Slack", Shopify, Twilio "Webhooks
      security", Square, Zoom, PagerDuty v3, Paddle Billing, Mailgun, HubSpot (v1-v3),
      Intercom, Linear, Twitch EventSub, Adyen HMAC, Razorpay, SendGrid Event Webhook
      security, Discord interactions.
    - RFC 2104 (HMAC), RFC 8032 (Ed25519), FIPS 186-5 / SEC 1 (ECDSA P-256), RFC 9110
      section 5.3 (combining repeated header fields).

Exceptions:
    WebhookVerificationError (ValueError)       root; .scheme
    +-- MissingHeaderError                      a required header is absent; .header
    +-- MalformedHeaderError                    a header cannot be parsed; .header, .reason
    +-- TimestampOutsideToleranceError          replay window; .timestamp, .now, .tolerance, .skew
    |   +-- TimestampTooOldError                skew > tolerance
    |   +-- TimestampTooNewError                -skew > tolerance
    +-- NoMatchingSignatureError                no signature matched any secret; .header,
    |                                           .received, .secrets_tried, .timestamp, .webhook_id
    +-- InvalidSecretError                      the configured secret is unusable; .secret_index

    Configuration mistakes (an unknown scheme name, a missing ``url`` for a scheme that signs
    the URL, an unknown option) raise ``ValueError`` or ``TypeError`` naming the argument.

Example:
    >>> body = b"Hello, World!"
    >>> headers = {
    ...     "X-Hub-Signature-256": "sha256="
    ...     "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    ... }
    >>> result = verify("github", body=body, headers=headers, secret="It's a Secret to Everybody")
    >>> result.scheme, result.secret_index
    ('github', 0)
    >>> signed = sign("stripe", body=b'{"id": "evt_1"}', secret="whsec_test", timestamp=1700000000)
    >>> signed["Stripe-Signature"][:32]
    't=1700000000,v1=a0c091828640f0b6'
    >>> verify(
    ...     "stripe",
    ...     body=b'{"id": "evt_1"}',
    ...     headers=signed,
    ...     secret=["whsec_old", "whsec_test"],
    ...     now=1700000030,
    ... ).secret_index
    1
    >>> try:
    ...     verify(
    ...         "stripe",
    ...         body=b'{"id": "evt_1"}',
    ...         headers=signed,
    ...         secret="whsec_test",
    ...         now=1700000400,
    ...     )
    ... except TimestampTooOldError as exc:
    ...     print(exc.skew, exc.tolerance)
    400.0 300.0

    Receiving: the handler runs once per delivery id, however often the provider retries.

    >>> handled = []
    >>> receiver = WebhookReceiver(
    ...     "github", secret="It's a Secret to Everybody", handler=lambda d: handled.append(d.key)
    ... )
    >>> delivery = {**headers, "X-GitHub-Delivery": "72d3162e"}
    >>> [receiver.receive(body, delivery).outcome.name for _ in range(2)], handled
    (['PROCESSED', 'DUPLICATE'], ['github:id:72d3162e'])
"""

from __future__ import annotations

# Every scheme function takes (spec, request) so the registry can call any of them: some do
# not use spec. The shared steps they call take more positional parameters than usual.
# ruff: noqa: PLR0917, ARG001
import binascii
import hashlib
import hmac
import importlib
import inspect
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

# json, urllib.parse, datetime, uuid, string and sqlite3 load on first use: importing this module
# stays cheap and the hot paths (GitHub, Stripe, Standard Webhooks) never need them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
    from types import ModuleType
    from typing import Any, Final, Protocol, TypeAlias, TypeVar

    _T = TypeVar("_T")

    HeadersInput: TypeAlias = "Mapping[str, str] | Iterable[tuple[str, str]]"
    SecretInput: TypeAlias = "str | bytes | Sequence[str | bytes]"
    _Verifier: TypeAlias = "Callable[[_Scheme, _Inbound], VerifiedWebhook]"
    _Signer: TypeAlias = "Callable[[_Scheme, _Outbound], dict[str, str]]"
else:
    # typing costs milliseconds to import; at run time a Protocol is a plain base class
    # (stores are matched by duck typing, as the type checker matches them structurally).
    Protocol = object

__all__ = [
    "SCHEMES",
    "ClaimResult",
    "DeliveryState",
    "DeliveryStore",
    "HmacScheme",
    "InMemoryDeliveryStore",
    "InvalidSecretError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "NoMatchingSignatureError",
    "ReceiveOutcome",
    "ReceiveResult",
    "SQLiteDeliveryStore",
    "TimestampOutsideToleranceError",
    "TimestampTooNewError",
    "TimestampTooOldError",
    "VerifiedWebhook",
    "WebhookDelivery",
    "WebhookReceiver",
    "WebhookVerificationError",
    "sign",
    "verify",
    "zoom_url_validation_response",
]

_INF = float("inf")

try:  # the C functions behind hmac.digest() and hmac.new(): no Python frames per call
    from _hashlib import hmac_digest as _hmac_digest
    from _hashlib import hmac_new as _hmac_new
except ImportError:  # pragma: no cover - Python built without OpenSSL
    _hmac_digest = hmac.digest  # type: ignore[assignment]
    _hmac_new = hmac.new  # type: ignore[assignment]
_compare = hmac.compare_digest

# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


class WebhookVerificationError(ValueError):
    """Root of every error a delivery that must be refused produces.

    Attributes:
        scheme: the scheme name the delivery was checked against.
    """

    def __init__(self, message: str, *, scheme: str) -> None:
        self.scheme = scheme
        ValueError.__init__(self, f"{scheme}: {message}")


class MissingHeaderError(WebhookVerificationError):
    """A header (or, for Mailgun and Adyen, a body field) the scheme needs is absent.

    Attributes:
        header: the header name as the provider documents it (body fields are named
            ``"body: <path>"``).
    """

    def __init__(self, header: str, *, scheme: str) -> None:
        self.header = header
        super().__init__(f"{header} is missing", scheme=scheme)


class MalformedHeaderError(WebhookVerificationError):
    """A header is present but cannot be parsed as the scheme defines it.

    Attributes:
        header: the header name as the provider documents it.
        reason: what is wrong with it, in words (the value itself is not repeated).
    """

    def __init__(self, header: str, reason: str, *, scheme: str) -> None:
        self.header = header
        self.reason = reason
        super().__init__(f"{header} is malformed: {reason}", scheme=scheme)


class TimestampOutsideToleranceError(WebhookVerificationError):
    """The signed timestamp is outside the replay window.

    Attributes:
        timestamp: the delivery's timestamp, unix seconds (float for millisecond schemes).
        now: the verifier's clock, unix seconds.
        tolerance: the allowed distance in seconds, in either direction.
        skew: ``now - timestamp`` in seconds: positive when the delivery is old, negative
            when it claims to come from the future.
    """

    def __init__(self, timestamp: float, *, now: float, tolerance: float, scheme: str) -> None:
        self.timestamp = timestamp
        self.now = float(now)
        self.tolerance = tolerance
        self.skew = float(now) - timestamp
        direction = "old" if self.skew > 0 else "new"
        super().__init__(
            f"timestamp {timestamp} is {abs(self.skew):g} s too {direction} "
            f"(tolerance {tolerance:g} s, now {now:g})",
            scheme=scheme,
        )


class TimestampTooOldError(TimestampOutsideToleranceError):
    """The delivery was signed longer ago than the tolerance: a replay or a stuck queue."""


class TimestampTooNewError(TimestampOutsideToleranceError):
    """The delivery claims a time further in the future than the tolerance: a clock problem."""


class NoMatchingSignatureError(WebhookVerificationError):
    """The header was well-formed but no signature in it matched any configured secret.

    Attributes:
        header: the header that carried the signatures.
        received: the signature texts as received (hex or base64, without prefixes).
        secrets_tried: how many secrets (or public keys) were tried.
        timestamp: the signed timestamp (unix seconds) when the scheme has one, else None.
        webhook_id: the delivery id when the scheme has one, else None.
    """

    def __init__(
        self,
        header: str,
        *,
        received: tuple[str, ...],
        secrets_tried: int,
        timestamp: int | None,
        webhook_id: str | None,
        scheme: str,
    ) -> None:
        self.header = header
        self.received = received
        self.secrets_tried = secrets_tried
        self.timestamp = timestamp
        self.webhook_id = webhook_id
        plural = "" if secrets_tried == 1 else "s"
        super().__init__(
            f"none of the {len(received)} signature(s) in {header} matches the "
            f"{secrets_tried} secret{plural} configured",
            scheme=scheme,
        )


class InvalidSecretError(WebhookVerificationError):
    """The configured secret or public key cannot be used (the server's mistake, not the sender's).

    Attributes:
        secret_index: which secret of the list is wrong (0 for a single secret).
        reason: what is wrong with it, in words (the secret itself is never repeated).
    """

    def __init__(self, reason: str, *, secret_index: int | None, scheme: str) -> None:
        self.secret_index = secret_index
        self.reason = reason
        where = "" if secret_index is None else f" #{secret_index}"
        super().__init__(f"secret{where} is invalid: {reason}", scheme=scheme)


# --------------------------------------------------------------------------------------
# Value types
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """What a successful :func:`verify` established about one delivery.

    Attributes:
        scheme: the canonical scheme name (``"stripe"``, ``"github"``, ...).
        timestamp: the signed timestamp in unix seconds (millisecond schemes are floored),
            or None when the scheme signs no time.
        webhook_id: the delivery id from the headers where the scheme sends one (Standard
            Webhooks ``webhook-id``, ``X-GitHub-Delivery``, the Mailgun token, ...), else None.
        secret_index: the index of the secret (or public key) that matched.
        event_type: the event name from the headers where the scheme sends one
            (``X-GitHub-Event``, ``X-Shopify-Topic``, Twitch message type, ...), else None.
    """

    scheme: str
    timestamp: int | None
    webhook_id: str | None
    secret_index: int | None
    event_type: str | None = None


class _VerifiedFields:
    """VerifiedWebhook's slots without its frozen ``__setattr__``: a result is filled in
    here, then becomes a VerifiedWebhook (CPython allows ``__class__`` assignment between
    classes with identical slots). A frozen dataclass sets each field through
    ``object.__setattr__``; this is about three times cheaper, and a result is built on
    every verification."""

    __slots__ = VerifiedWebhook.__slots__  # the same names in the same order

    scheme: str
    timestamp: int | None
    webhook_id: str | None
    secret_index: int | None
    event_type: str | None


_new_object = object.__new__
_object_setattr = object.__setattr__


def _verified(
    scheme: str,
    timestamp: int | None,
    webhook_id: str | None,
    secret_index: int,
    event_type: str | None,
) -> VerifiedWebhook:
    """VerifiedWebhook(scheme, timestamp, webhook_id, secret_index, event_type), cheaply."""
    result = _new_object(_VerifiedFields)
    result.scheme = scheme
    result.timestamp = timestamp
    result.webhook_id = webhook_id
    result.secret_index = secret_index
    result.event_type = event_type
    _object_setattr(result, "__class__", VerifiedWebhook)
    return result  # type: ignore[return-value]  # it is a VerifiedWebhook now


class _Inbound:
    """One delivery as a scheme's verifier reads it: built once by :func:`verify`, never
    changed after (the ``Final`` attributes make the type checker refuse an assignment).

    Hand-written with slots: a frozen dataclass would set each field through
    ``object.__setattr__`` (about three times slower, on every verification) and add half a
    millisecond to the import.
    """

    __slots__ = ("body", "headers", "keys", "method", "now", "options", "tolerance", "url")

    def __init__(
        self,
        body: bytes,
        headers: dict[str, str],
        keys: list[bytes],
        now: float | None,
        tolerance: float | None,
        url: str | None,
        method: str,
        options: dict[str, Any],
    ) -> None:
        self.body: Final = body  # the raw bytes received
        self.headers: Final = headers  # by lower-case name (see _headers_for)
        self.keys: Final = keys  # one per secret, parsed in the scheme's key format
        self.now: Final = now  # None: read time.time() when a timestamp is checked
        self.tolerance: Final = tolerance  # the replay window in seconds, None: none
        self.url: Final = url
        self.method: Final = method
        self.options: Final = options  # scheme options; "_config" for an HmacScheme


class _Outbound:
    """One delivery as a scheme's signer reads it: built once by :func:`sign`, never changed
    after (see :class:`_Inbound`)."""

    __slots__ = ("body", "keys", "method", "options", "timestamp", "url", "webhook_id")

    def __init__(
        self,
        body: bytes,
        keys: list[bytes],
        timestamp: int,
        webhook_id: str | None,
        url: str | None,
        method: str,
        options: dict[str, Any],
    ) -> None:
        self.body: Final = body
        self.keys: Final = keys
        self.timestamp: Final = timestamp  # unix seconds
        self.webhook_id: Final = webhook_id  # None: the scheme makes one where it needs one
        self.url: Final = url
        self.method: Final = method
        self.options: Final = options


class _Scheme:
    """One scheme: its name, defaults and the two functions that implement it."""

    __slots__ = (
        "key_format",
        "name",
        "names",
        "options",
        "sign",
        "timestamped",
        "tolerance",
        "verify",
    )

    def __init__(
        self,
        name: str,
        verify: _Verifier,
        sign: _Signer | None,
        *,
        tolerance: float | None = None,
        timestamped: bool = False,
        key_format: str = "utf8",
        options: frozenset[str] = frozenset(),
        names: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.name = name
        # (lower case, provider's spelling) of every header the scheme reads on its usual
        # path: a plain dict holding all of them under one of those spellings is read
        # directly, without lower-casing every name in it (see _headers_for).
        self.names = names
        self.verify = verify
        self.sign = sign
        self.tolerance = tolerance
        self.timestamped = timestamped or tolerance is not None
        self.key_format = key_format
        self.options = options


_PLACEHOLDERS = frozenset({"body", "timestamp", "id", "url", "method"})


@dataclass(frozen=True, slots=True)
class HmacScheme:
    """A configurable HMAC scheme for senders without a named scheme (Salesforce, ServiceNow,
    in-house services).

    Pass an instance as ``scheme`` to :func:`verify` and :func:`sign`, or pass ``"generic"``
    with these fields as keyword options.

    Attributes:
        header: the header carrying the signature, e.g. ``"X-Signature"``.
        algorithm: the hash: ``"sha1"``, ``"sha256"``, ``"sha384"`` or ``"sha512"``.
        encoding: how the digest is written: ``"hex"`` or ``"base64"``.
        prefix: text before the digest, e.g. ``"sha256="`` (required when set).
        template: the signed content; ``{body}`` (exactly once) plus any of ``{timestamp}``,
            ``{id}``, ``{url}``, ``{method}``; ``{{`` and ``}}`` are literal braces.
        timestamp_header: the header carrying the timestamp (needed for ``{timestamp}`` and
            for replay checks), or None.
        timestamp_unit: ``"s"`` or ``"ms"``: the unit of the timestamp header.
        id_header: the header carrying the delivery id (needed for ``{id}``), or None.
        secret_encoding: how string secrets are turned into key bytes: ``"utf8"``,
            ``"base64"`` (an optional ``whsec_`` prefix is accepted) or ``"hex"``.
        separator: when set, the header may carry several signatures separated by it.
        tolerance: default replay window in seconds (needs ``timestamp_header``), or None.
        name: the scheme name reported in results and errors.
    """

    header: str
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    template: str = "{body}"
    timestamp_header: str | None = None
    timestamp_unit: str = "s"
    id_header: str | None = None
    secret_encoding: str = "utf8"  # noqa: S105 - a format name, not a secret
    separator: str | None = None
    tolerance: float | None = None
    name: str = "generic"
    _parts: tuple[tuple[tuple[bool, str], ...], tuple[tuple[bool, str], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.header, str) or not _is_token(self.header):
            raise ValueError(f"header must be an HTTP header name, got {self.header!r}")
        if self.algorithm not in {"sha1", "sha256", "sha384", "sha512"}:
            raise ValueError(
                f"algorithm must be sha1, sha256, sha384 or sha512, got {self.algorithm!r}"
            )
        if self.encoding not in {"hex", "base64"}:
            raise ValueError(f"encoding must be 'hex' or 'base64', got {self.encoding!r}")
        if not isinstance(self.prefix, str):
            raise TypeError(f"prefix must be a str, got {self.prefix!r}")
        for name in ("timestamp_header", "id_header"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _is_token(value)):
                raise ValueError(f"{name} must be an HTTP header name or None, got {value!r}")
        if self.timestamp_unit not in {"s", "ms"}:
            raise ValueError(f"timestamp_unit must be 's' or 'ms', got {self.timestamp_unit!r}")
        if self.secret_encoding not in {"utf8", "base64", "hex"}:
            raise ValueError(
                f"secret_encoding must be 'utf8', 'base64' or 'hex', got {self.secret_encoding!r}"
            )
        if self.separator is not None and (
            not isinstance(self.separator, str) or not self.separator
        ):
            raise ValueError(f"separator must be a non-empty str or None, got {self.separator!r}")
        if self.tolerance is not None:
            _check_tolerance(self.tolerance)
            if self.timestamp_header is None:
                raise ValueError("tolerance needs timestamp_header: there is no time to check")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        object.__setattr__(self, "_parts", self._compile())

    def _uses(self, name: str) -> bool:
        return any(p == (True, name) for part in self._parts for p in part)

    def _content(self, values: dict[str, str], url: str | None) -> tuple[bytes, bytes]:
        """The signed bytes before and after the body, placeholders filled from ``values``."""
        if self._uses("url"):
            values["url"] = _need_url(url, self.name)
        before, after = self._parts
        return (
            _utf8("".join(values[t] if is_field else t for is_field, t in before)),
            _utf8("".join(values[t] if is_field else t for is_field, t in after)),
        )

    def _compile(self) -> tuple[tuple[tuple[bool, str], ...], tuple[tuple[bool, str], ...]]:
        if not isinstance(self.template, str):
            raise TypeError(f"template must be a str, got {self.template!r}")
        try:
            parsed = list(_string().Formatter().parse(self.template))
        except ValueError as exc:
            raise ValueError(f"template {self.template!r} is not valid: {exc}") from None
        before: list[tuple[bool, str]] = []
        after: list[tuple[bool, str]] = []
        seen_body = False
        for literal, name, spec, conversion in parsed:
            (after if seen_body else before).append((False, literal))
            if name is None:
                continue
            if name not in _PLACEHOLDERS or spec or conversion:
                raise ValueError(
                    f"template placeholder {{{name}}} is not one of "
                    "{body}, {timestamp}, {id}, {url}, {method}"
                )
            if name == "body":
                if seen_body:
                    raise ValueError("template must contain {body} exactly once")
                seen_body = True
                continue
            if name == "timestamp" and self.timestamp_header is None:
                raise ValueError("template uses {timestamp} but timestamp_header is None")
            if name == "id" and self.id_header is None:
                raise ValueError("template uses {id} but id_header is None")
            (after if seen_body else before).append((True, name))
        if not seen_body:
            raise ValueError("template must contain {body} exactly once")
        return tuple(p for p in before if p[1]), tuple(p for p in after if p[1])


# --------------------------------------------------------------------------------------
# Lazy loaders and small codecs
# --------------------------------------------------------------------------------------

_MODULES: dict[str, ModuleType] = {}


def _lazy(name: str) -> ModuleType:
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(name)
    return module


def _string() -> ModuleType:
    return _lazy("string")


def _json() -> ModuleType:
    return _lazy("json")


def _urlparse() -> ModuleType:
    return _lazy("urllib.parse")


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _is_token(name: str) -> bool:
    return bool(name) and all(c in _TOKEN_CHARS for c in name)


def _unhex(text: str) -> bytes | None:
    """Strict hex (either case): None for odd lengths, whitespace or any other character."""
    try:
        return binascii.a2b_hex(text)
    except ValueError:  # binascii.Error, or a str that is not ASCII
        return None


def _unb64(text: str, *, padding_optional: bool = False) -> bytes | None:
    """Strict standard base64: None for characters outside the alphabet or bad padding."""
    if padding_optional and not text.endswith("="):
        text += "=" * (-len(text) % 4)
    if len(text) % 4:
        return None
    try:
        if sys.version_info >= (3, 11):  # a2b_base64(strict_mode=) is new in 3.11
            raw: bytes = binascii.a2b_base64(text, strict_mode=True)
        else:  # pragma: no cover - Python 3.10
            raw = _a2b_base64_checked(text)
    except ValueError:  # binascii.Error, or a str that is not ASCII
        return None
    return raw or None


def _a2b_base64_checked(text: str) -> bytes:  # pragma: no cover - used on Python 3.10 only
    """What ``strict_mode=True`` checks, for Python 3.10: alphabet, then padding at the end."""
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    stripped = raw.rstrip(b"=")
    if not stripped or len(raw) - len(stripped) > 2 or stripped.translate(None, _B64_ALPHABET):
        raise ValueError("not strict base64")
    return binascii.a2b_base64(raw)


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    raise TypeError(f"{what} must be str or bytes, got {type(value).__name__}")


def _check_tolerance(tolerance: object) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
        raise TypeError(f"tolerance must be a number of seconds or None, got {tolerance!r}")
    if not tolerance >= 0:  # also refuses NaN
        raise ValueError(f"tolerance must be >= 0 seconds (math.inf disables), got {tolerance!r}")
    return float(tolerance)


# --------------------------------------------------------------------------------------
# Inputs: body, headers, secrets
# --------------------------------------------------------------------------------------


def _body(body: object) -> bytes:
    if type(body) is bytes:
        return body
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        raise TypeError(
            "body must be the raw request bytes exactly as received, not str: the signature "
            "covers bytes, and a decoded (or re-serialised) body differs from them. Pass "
            "request.body / request.get_data() / await request.body(), not parsed JSON."
        )
    raise TypeError(f"body must be bytes, got {type(body).__name__}")


def _headers(headers: object) -> dict[str, str]:
    """Lower-case header names once; repeated names are combined with ", " (RFC 9110 5.3)."""
    if type(headers) is dict:
        try:
            lowered = {k.lower(): v for k, v in headers.items()}
        except AttributeError:  # a name that is neither str nor bytes: the slow path says so
            pass
        else:
            # Same size: no two names differ only in case. A first name that is not str means
            # bytes names (ASGI style), which the slow path decodes.
            if len(lowered) == len(headers) and type(next(iter(lowered), "")) is str:
                return lowered
    if isinstance(headers, (str, bytes, bytearray)):
        raise TypeError("headers must be a mapping or a list of (name, value) pairs")
    items = headers.items() if hasattr(headers, "items") else headers
    out: dict[str, str] = {}
    try:
        iterator = iter(items)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError("headers must be a mapping or a list of (name, value) pairs") from None
    for pair in iterator:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise TypeError("headers must be a mapping or a list of (name, value) pairs") from None
        key = _text(name, "a header name").lower()
        text = _text(value, f"header {key!r}")
        previous = out.get(key)
        out[key] = text if previous is None else f"{previous}, {text}"
    return out


def _headers_for(spec: _Scheme, headers: object) -> dict[str, str]:
    """The headers the scheme reads, by lower-case name.

    Fast path for a plain dict: each name the scheme reads is looked up in the provider's
    spelling and in lower case (two values are combined, as repeated fields are). Only when
    one of them is under neither spelling are all names lower-cased (:func:`_headers`).
    """
    if type(headers) is dict and spec.names:
        get = headers.get
        found = {}
        for lower, canonical in spec.names:
            value = get(canonical)
            if value is None:
                value = get(lower)
                if value is None:
                    return _headers(headers)
            elif lower != canonical:
                other = get(lower)
                if other is not None and other != value:
                    return _headers(headers)
            found[lower] = value
        return found
    return _headers(headers)


def _get(h: dict[str, str], name: str) -> str | None:
    value = h.get(name)
    if value is None or type(value) is str:
        return value
    return _text(value, f"header {name!r}")


def _need(h: dict[str, str], name: str, label: str, scheme: str) -> str:
    value = h.get(name)
    if value is None:
        raise MissingHeaderError(label, scheme=scheme)
    if type(value) is not str:
        value = _text(value, f"header {label!r}")
    value = value.strip()
    if not value:
        raise MalformedHeaderError(label, "is empty", scheme=scheme)
    return value


def _secret_key(secret: object, fmt: str, index: int, scheme: str) -> bytes:
    if isinstance(secret, (bytes, bytearray, memoryview)):
        raw = bytes(secret)
        if not raw:
            raise InvalidSecretError("is empty", secret_index=index, scheme=scheme)
        if fmt == "ed25519" and len(raw) != 32:
            raise InvalidSecretError(
                f"an Ed25519 public key is 32 bytes, got {len(raw)}",
                secret_index=index,
                scheme=scheme,
            )
        return raw
    if not isinstance(secret, str):
        raise TypeError(
            f"secret must be str, bytes or a sequence of them, got {type(secret).__name__}"
        )
    if not secret:
        raise InvalidSecretError("is empty", secret_index=index, scheme=scheme)
    if secret.strip() != secret:
        raise InvalidSecretError(
            "has leading or trailing whitespace (a copy-paste accident?)",
            secret_index=index,
            scheme=scheme,
        )
    key: bytes | None
    if fmt == "utf8":
        return _utf8(secret)
    if fmt == "whsec":
        text = secret[6:] if secret.startswith("whsec_") else secret
        key = _unb64(text, padding_optional=True)
        if not key:
            raise InvalidSecretError(
                "must be 'whsec_' followed by base64 (letters, digits, '+', '/', '=')",
                secret_index=index,
                scheme=scheme,
            )
        return key
    if fmt == "hex":
        key = _unhex(secret)
        if not key:
            raise InvalidSecretError("must be hex digits", secret_index=index, scheme=scheme)
        return key
    if fmt == "ed25519":
        key = _unhex(secret)
        if key is None or len(key) != 32:
            raise InvalidSecretError(
                "an Ed25519 public key must be 64 hex digits (32 bytes)",
                secret_index=index,
                scheme=scheme,
            )
        return key
    # p256: base64 of a DER SubjectPublicKeyInfo (as SendGrid shows it) or of a raw point
    key = _unb64(secret)
    if not key:
        raise InvalidSecretError(
            "a P-256 public key must be base64 (DER SubjectPublicKeyInfo)",
            secret_index=index,
            scheme=scheme,
        )
    return key


_KEY_CACHE: dict[tuple[object, str], list[bytes]] = {}
_KEY_CACHE_SIZE = 256


def _keys(secret: object, fmt: str, scheme: str) -> list[bytes]:
    """The key bytes of each secret, parsed once per process for the secrets seen recently.

    The cache holds what the application already holds (its configured secrets) and is
    bounded; a secret that fails to parse is never cached.
    """
    cache_key: tuple[object, str] | None = None
    keys = None
    try:
        key = (secret if type(secret) is not list else tuple(secret), fmt)
        keys = _KEY_CACHE.get(key)
        cache_key = key
    except TypeError:  # unhashable: parse every time
        pass
    if keys is not None:
        return keys
    if isinstance(secret, (str, bytes, bytearray, memoryview)):
        keys = [_secret_key(secret, fmt, 0, scheme)]
    else:
        try:
            secrets = list(secret)  # type: ignore[call-overload]
        except TypeError:
            raise TypeError(
                f"secret must be str, bytes or a sequence of them, got {type(secret).__name__}"
            ) from None
        if not secrets:
            raise InvalidSecretError(
                "the list of secrets is empty", secret_index=None, scheme=scheme
            )
        keys = [_secret_key(s, fmt, i, scheme) for i, s in enumerate(secrets)]
    if cache_key is not None and type(cache_key[0]) in (str, bytes, tuple):
        if len(_KEY_CACHE) >= _KEY_CACHE_SIZE:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = keys
    return keys


# --------------------------------------------------------------------------------------
# Shared steps: timestamps, matching
# --------------------------------------------------------------------------------------


def _int_header(text: str, label: str, scheme: str) -> int:
    """A non-negative decimal integer of at most 16 ASCII digits (no sign, no spaces)."""
    if not (0 < len(text) <= 16 and text.isascii() and text.isdigit()):
        raise MalformedHeaderError(label, "is not a unix timestamp (decimal digits)", scheme=scheme)
    return int(text)


def _check_time(timestamp: float, now: float | None, tolerance: float | None, scheme: str) -> None:
    if tolerance is None or tolerance == _INF:
        return
    if now is None:
        now = time.time()
    skew = now - timestamp
    if skew > tolerance:
        raise TimestampTooOldError(timestamp, now=now, tolerance=tolerance, scheme=scheme)
    if -skew > tolerance:
        raise TimestampTooNewError(timestamp, now=now, tolerance=tolerance, scheme=scheme)


def _mac(key: bytes, algorithm: str, body: bytes, before: bytes = b"", after: bytes = b"") -> bytes:
    if not before and not after:
        return hmac.digest(key, body, algorithm)
    if len(body) <= 16384:
        return hmac.digest(key, before + body + after, algorithm)
    mac = hmac.new(key, before, algorithm)  # large bodies: no copy of the body
    mac.update(body)
    mac.update(after)
    return mac.digest()


def _key_index(
    keys: list[bytes],
    candidates: list[bytes],
    body: bytes,
    before: bytes = b"",
    after: bytes = b"",
    algorithm: str = "sha256",
    digest: Callable[[bytes], bytes] | None = None,
) -> int:
    """Index of the first key whose digest is one of the candidates, else -1.

    The digest is the HMAC of ``before + body + after`` under the key, or ``digest(key)``
    where given (HubSpot v1 and v2 hash the secret with the content instead).
    """
    message = before + body + after if digest is None and len(body) <= 16384 else None
    for index, key in enumerate(keys):
        if message is not None:
            expected = _hmac_digest(key, message, algorithm)
        elif digest is not None:
            expected = digest(key)
        else:  # large bodies: no copy of the body
            expected = _mac(key, algorithm, body, before, after)
        size = len(expected)
        for candidate in candidates:
            if len(candidate) == size and _compare(candidate, expected):
                return index
    return -1


def _result(
    spec: _Scheme,
    index: int,
    header: str,
    received: Iterable[str],
    keys: list[bytes],
    timestamp: int | None,
    webhook_id: str | None,
    event_type: str | None = None,
) -> VerifiedWebhook:
    if index < 0:
        raise NoMatchingSignatureError(
            header,
            received=tuple(received),
            secrets_tried=len(keys),
            timestamp=timestamp,
            webhook_id=webhook_id,
            scheme=spec.name,
        )
    return _verified(spec.name, timestamp, webhook_id, index, event_type)


def _decoded(
    texts: list[str],
    decode: Callable[[str], bytes | None],
    label: str,
    scheme: str,
    what: str = "signature",
) -> list[bytes]:
    out = [raw for raw in map(decode, texts) if raw is not None]
    if not out:
        raise MalformedHeaderError(label, f"carries no decodable {what}", scheme=scheme)
    return out


def _header_time(request: _Inbound, text: str, label: str, scheme: str) -> int:
    """The unix seconds in ``text`` (read from ``label``), checked against the replay window."""
    timestamp = _int_header(text, label, scheme)
    _check_time(timestamp, request.now, request.tolerance, scheme)
    return timestamp


def _unprefixed(value: str, prefix: str, label: str, scheme: str) -> str:
    if not value.startswith(prefix):
        raise MalformedHeaderError(label, f"does not start with {prefix!r}", scheme=scheme)
    return value[len(prefix) :]


def _entries(
    value: str, separator: str | None, delimiter: str, tag: str, time_tag: str | None = None
) -> tuple[list[str], list[str]]:
    """The texts of the ``tag`` entries and of the ``time_tag`` entries in a header of
    ``<name><delimiter><text>`` entries split by ``separator`` (None: white space)."""
    texts: list[str] = []
    times: list[str] = []
    for entry in value.split(separator):
        name, _, text = entry.strip().partition(delimiter)
        if name == tag:
            texts.append(text)
        elif name == time_tag:
            times.append(text)
    return texts, times


def _hmac_verdict(
    spec: _Scheme,
    request: _Inbound,
    label: str,
    received: list[str],
    decode: Callable[[str], bytes | None],
    before: bytes = b"",
    after: bytes = b"",
    *,
    algorithm: str = "sha256",
    timestamp: int | None = None,
    webhook_id: str | None = None,
    event_header: str | None = None,
) -> VerifiedWebhook:
    """What the HMAC schemes end with, once their headers are read: decode the signatures
    ``received`` in ``label``, match them with the HMAC of ``before + body + after`` under
    each key, read ``event_header`` (after the match, as every scheme always has), and
    return the result or raise :class:`NoMatchingSignatureError`."""
    keys = request.keys
    candidates = _decoded(received, decode, label, spec.name)
    index = _key_index(keys, candidates, request.body, before, after, algorithm)
    event_type = None if event_header is None else _get(request.headers, event_header)
    return _result(spec, index, label, received, keys, timestamp, webhook_id, event_type)


def _signatures(
    request: _Outbound,
    before: bytes = b"",
    after: bytes = b"",
    *,
    prefix: str = "",
    separator: str | None = None,
    encode: Callable[[bytes], str] = bytes.hex,
    algorithm: str = "sha256",
) -> str:
    """``prefix`` + the encoded HMAC of ``before + body + after``: under every key, joined by
    ``separator``, where the header carries several signatures; else under the first key."""
    body = request.body
    keys = request.keys if separator is not None else request.keys[:1]
    return (separator or "").join(
        prefix + encode(_mac(key, algorithm, body, before, after)) for key in keys
    )


def _no_options(spec: _Scheme, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - spec.options)
    if unknown:
        raise TypeError(f"unknown option(s) for scheme {spec.name!r}: {', '.join(unknown)}")


def _need_url(url: str | None, scheme: str) -> str:
    if not isinstance(url, str) or not url:
        raise ValueError(f"url is required for scheme {scheme!r}: the provider signs the URL")
    return url


def _new_id(prefix: str, size: int = 16) -> str:
    return prefix + os.urandom(size).hex()


# --------------------------------------------------------------------------------------
# Schemes, one at a time
# --------------------------------------------------------------------------------------
#
# A verifier is called as verifier(spec, request: _Inbound) and a signer as
# signer(spec, request: _Outbound); spec tells apart the schemes that share a function.
# Each scheme reads its headers itself, in its own order and with its own error wording
# (which error a broken delivery gets depends on that order). What follows the reading is
# shared: _hmac_verdict (decode, match, result), or _key_index and _result where a scheme
# decodes or reads its ids its own way; signers end in _signatures.

# Standard Webhooks and Svix: "{id}.{timestamp}.{body}", HMAC-SHA256, base64, whsec_ secret,
# space-separated "v1,<sig>" entries.


def _v_standard(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    h = request.headers
    first = "webhook"
    if spec.name == "svix" and "svix-signature" in h:
        first = "svix"
    id_label, ts_label, sig_label = f"{first}-id", f"{first}-timestamp", f"{first}-signature"
    webhook_id = _need(h, id_label, id_label, spec.name)
    ts_text = _need(h, ts_label, ts_label, spec.name)
    signature = _need(h, sig_label, sig_label, spec.name)
    timestamp = _header_time(request, ts_text, ts_label, spec.name)
    received, _ = _entries(signature, None, ",", "v1")
    before = _utf8(f"{webhook_id}.{timestamp}.")  # the timestamp as an int: no leading zeros
    return _hmac_verdict(
        spec,
        request,
        sig_label,
        received,
        _unb64,
        before,
        timestamp=timestamp,
        webhook_id=webhook_id,
    )


def _s_standard(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    webhook_id = request.webhook_id or _new_id("msg_")
    timestamp = request.timestamp
    before = _utf8(f"{webhook_id}.{timestamp}.")
    sigs = _signatures(request, before, prefix="v1,", separator=" ", encode=_b64)
    p = spec.name if spec.name == "svix" else "webhook"
    return {f"{p}-id": webhook_id, f"{p}-timestamp": str(timestamp), f"{p}-signature": sigs}


# One header carrying the timestamp and the signatures as tagged entries, HMAC-SHA256 over
# "{timestamp}<joint>{body}" keyed with the secret as UTF-8 text:
# - Stripe: Stripe-Signature "t=<ts>,v1=<hex>[,v1=<hex>...][,v0=...]" over "{t}.{body}" (the
#   whsec_ secret is used as text, not base64-decoded);
# - Paddle Billing: Paddle-Signature "ts=<ts>;h1=<hex>[;h1=<hex>]" over "{ts}:{body}"
#   (Paddle's SDKs allow 5 s of clock difference).

_TAGGED = {
    # name: (header, entry separator, timestamp tag, signature tag, joint)
    "stripe": ("Stripe-Signature", ",", "t", "v1", "."),
    "paddle": ("Paddle-Signature", ";", "ts", "h1", ":"),
}


def _v_tagged(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    name = spec.name
    label, separator, time_tag, tag, joint = _TAGGED[name]
    what = "signature"
    if name == "stripe":
        # Stripe's header is not stripped nor refused when empty ("has no t= timestamp"
        # then), and its decoding error names the v1 entries.
        value = request.headers.get("stripe-signature")
        if value is None:
            raise MissingHeaderError(label, scheme=name)
        if type(value) is not str:
            value = _text(value, f"header {label!r}")
        what = "v1 signature"
    else:
        value = _need(request.headers, label.lower(), label, name)
    received, times = _entries(value, separator, "=", tag, time_tag)
    if len(times) > 1:
        raise MalformedHeaderError(label, f"has two {time_tag}= entries", scheme=name)
    if not times:
        raise MalformedHeaderError(label, f"has no {time_tag}= timestamp", scheme=name)
    timestamp = _header_time(request, times[0], label, name)
    candidates = _decoded(received, _unhex, label, name, what)
    before = (times[0] + joint).encode("ascii")
    index = _key_index(request.keys, candidates, request.body, before)
    return _result(spec, index, label, received, request.keys, timestamp, None)


def _s_tagged(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    label, separator, time_tag, tag, joint = _TAGGED[spec.name]
    timestamp = request.timestamp
    before = f"{timestamp}{joint}".encode("ascii")
    sigs = _signatures(request, before, prefix=tag + "=", separator=separator)
    return {label: f"{time_tag}={timestamp}{separator}{sigs}"}


# GitHub: X-Hub-Signature-256 "sha256=<hex>" over the body; the legacy X-Hub-Signature
# "sha1=<hex>" is used only when the SHA-256 header is absent. Intercom sends the SHA-1 form.


def _v_github(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    h = request.headers
    value = h.get("x-hub-signature-256")
    if value is not None and spec.name == "github":
        label, prefix, algorithm = "X-Hub-Signature-256", "sha256=", "sha256"
    else:
        value = h.get("x-hub-signature")
        label, prefix, algorithm = "X-Hub-Signature", "sha1=", "sha1"
        if value is None:
            missing = "X-Hub-Signature-256" if spec.name == "github" else label
            raise MissingHeaderError(missing, scheme=spec.name)
    if type(value) is not str:
        value = _text(value, f"header {label!r}")
    text = _unprefixed(value.strip(), prefix, label, spec.name)
    signature = _unhex(text)
    if signature is None:  # GitHub's own wording for one undecodable signature
        raise MalformedHeaderError(label, "is not hex after the prefix", scheme=spec.name)
    index = _key_index(request.keys, [signature], request.body, algorithm=algorithm)
    if index < 0 or spec.name != "github":
        return _result(spec, index, label, (text,), request.keys, None, None)
    webhook_id = _get(h, "x-github-delivery")
    return _verified("github", None, webhook_id, index, _get(h, "x-github-event"))


def _s_github(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    out = {"X-Hub-Signature": _signatures(request, prefix="sha1=", algorithm="sha1")}
    if spec.name == "github":
        out["X-Hub-Signature-256"] = _signatures(request, prefix="sha256=")
        if request.webhook_id:
            out["X-GitHub-Delivery"] = request.webhook_id
    return out


# "<prefix>=<hex>" of HMAC-SHA256 over "<version>:<timestamp>:<body>": Slack (v0, seconds)
# and Zoom (v0, seconds) share the shape with different header names.

_VERSIONED = {
    "slack": ("X-Slack-Signature", "X-Slack-Request-Timestamp"),
    "zoom": ("x-zm-signature", "x-zm-request-timestamp"),
}


def _v_versioned(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    sig_label, ts_label = _VERSIONED[spec.name]
    ts_text = _need(request.headers, ts_label.lower(), ts_label, spec.name)
    value = _need(request.headers, sig_label.lower(), sig_label, spec.name)
    timestamp = _header_time(request, ts_text, ts_label, spec.name)
    received = [_unprefixed(value, "v0=", sig_label, spec.name)]
    before = f"v0:{ts_text}:".encode("ascii")
    return _hmac_verdict(spec, request, sig_label, received, _unhex, before, timestamp=timestamp)


def _s_versioned(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    sig_label, ts_label = _VERSIONED[spec.name]
    timestamp = request.timestamp
    value = _signatures(request, f"v0:{timestamp}:".encode("ascii"), prefix="v0=")
    return {ts_label: str(timestamp), sig_label: value}


# One header, the whole body, HMAC, no timestamp: Shopify (base64), Razorpay, PagerDuty,
# Linear (hex). PagerDuty sends "v1=<hex>" entries separated by commas (rotation).

_PLAIN = {
    # name: (signature header, id header, event-type header, encoding)
    "shopify": ("X-Shopify-Hmac-Sha256", "X-Shopify-Webhook-Id", "X-Shopify-Topic", "base64"),
    "razorpay": ("X-Razorpay-Signature", "X-Razorpay-Event-Id", None, "hex"),
    "pagerduty": ("X-PagerDuty-Signature", "X-Webhook-Id", "X-Webhook-Subscription", "v1-hex"),
    "linear": ("Linear-Signature", "Linear-Delivery", "Linear-Event", "hex"),
}


def _v_plain(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    sig_label, id_label, type_label, encoding = _PLAIN[spec.name]
    h = request.headers
    value = _need(h, sig_label.lower(), sig_label, spec.name)
    timestamp = None
    if spec.name == "linear":
        timestamp = _linear_timestamp(spec, request)
    received = _entries(value, ",", "=", "v1")[0] if encoding == "v1-hex" else [value]
    decode = _unb64 if encoding == "base64" else _unhex
    candidates = _decoded(received, decode, sig_label, spec.name)
    index = _key_index(request.keys, candidates, request.body)
    webhook_id = _get(h, id_label.lower())
    if webhook_id is None and spec.name == "shopify":
        webhook_id = _get(h, "x-shopify-event-id")
    event_type = _get(h, type_label.lower()) if type_label else None
    keys = request.keys
    return _result(spec, index, sig_label, received, keys, timestamp, webhook_id, event_type)


def _linear_timestamp(spec: _Scheme, request: _Inbound) -> int | None:
    text = _get(request.headers, "linear-timestamp")
    tol = request.tolerance
    if text is not None:
        ms = _int_header(text.strip(), "Linear-Timestamp", spec.name)
    elif tol is None or tol == _INF:
        return None
    else:
        value = _json_body(request.body, spec.name).get("webhookTimestamp")
        if value is None:
            raise MissingHeaderError("Linear-Timestamp", scheme=spec.name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise MalformedHeaderError(
                "body: webhookTimestamp", "is not milliseconds since the epoch", scheme=spec.name
            )
        ms = value
    _check_time(ms / 1000, request.now, tol, spec.name)
    return ms // 1000


def _s_plain(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    sig_label, id_label, _, encoding = _PLAIN[spec.name]
    if encoding == "v1-hex":
        value = _signatures(request, prefix="v1=", separator=",")
    else:
        value = _signatures(request, encode=_b64 if encoding == "base64" else bytes.hex)
    out = {sig_label: value}
    if spec.name == "linear":
        out["Linear-Timestamp"] = str(request.timestamp * 1000)
    if request.webhook_id:
        out[id_label] = request.webhook_id
    return out


def _json_body(body: bytes, scheme: str) -> dict[str, Any]:
    try:
        value = _json().loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        raise MalformedHeaderError("body", "is not JSON", scheme=scheme) from None
    if not isinstance(value, dict):
        raise MalformedHeaderError("body", "is not a JSON object", scheme=scheme)
    return value


# Twilio: X-Twilio-Signature = base64 HMAC-SHA1 over the full URL followed by the POST
# parameters sorted by name (name + value for each distinct value, values sorted). JSON
# requests carry bodySHA256=<hex sha256 of the body> in the URL query and sign the URL alone.
# Twilio may sign the URL with or without the default port, so both forms are tried.


def _twilio_urls(url: str) -> list[str]:
    try:
        parts = _urlparse().urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    host = hostport
    if port is not None:
        host = hostport[: hostport.rfind(":")]
        other = parts._replace(netloc=f"{userinfo}{at}{host}").geturl()
        return [url, other]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if default is None or not host:
        return [url]
    return [url, parts._replace(netloc=f"{userinfo}{at}{host}:{default}").geturl()]


def _twilio_content(url: str, body: bytes, method: str, scheme: str) -> tuple[bytes, str | None]:
    """(the signed bytes for one URL, the bodySHA256 hex from the query or None)."""
    parse = _urlparse()
    try:
        query = parse.urlsplit(url).query
    except ValueError:
        query = ""
    body_hash = None
    for name, value in parse.parse_qsl(query, keep_blank_values=True):
        if name == "bodySHA256":
            body_hash = value
    text = url
    if body_hash is None and method.upper() != "GET" and body:
        pairs: dict[str, set[str]] = {}
        for name, value in parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            pairs.setdefault(name, set()).add(value)
        text += "".join(name + value for name in sorted(pairs) for value in sorted(pairs[name]))
    return _utf8(text), body_hash


def _v_twilio(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    url = _need_url(request.url, spec.name)
    value = _need(request.headers, "x-twilio-signature", "X-Twilio-Signature", spec.name)
    body, keys = request.body, request.keys
    received = [value]
    candidates = _decoded(received, _unb64, "X-Twilio-Signature", spec.name)
    index = -1
    for variant in _twilio_urls(url):
        content, body_hash = _twilio_content(variant, body, request.method, spec.name)
        index = _key_index(keys, candidates, content, algorithm="sha1")
        if index >= 0:
            if body_hash is not None:
                actual = hashlib.sha256(body).hexdigest()
                if not hmac.compare_digest(_utf8(body_hash.lower()), actual.encode("ascii")):
                    raise NoMatchingSignatureError(
                        "bodySHA256",
                        received=(body_hash,),
                        secrets_tried=len(keys),
                        timestamp=None,
                        webhook_id=None,
                        scheme=spec.name,
                    )
            break
    webhook_id = _get(request.headers, "i-twilio-idempotency-token")
    return _result(spec, index, "X-Twilio-Signature", received, keys, None, webhook_id)


def _s_twilio(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    url = _need_url(request.url, spec.name)
    content, _ = _twilio_content(url, request.body, request.method, spec.name)
    out = {"X-Twilio-Signature": _b64(hmac.digest(request.keys[0], content, "sha1"))}
    if request.webhook_id:
        out["I-Twilio-Idempotency-Token"] = request.webhook_id
    return out


# Square: x-square-hmacsha256-signature = base64 HMAC-SHA256 over notification URL + body
# (the legacy x-square-signature is HMAC-SHA1 of the same, used only when the first is absent).


def _v_square(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    before = _utf8(_need_url(request.url, spec.name))
    h = request.headers
    label, algorithm = "x-square-hmacsha256-signature", "sha256"
    if label not in h and "x-square-signature" in h:
        label, algorithm = "x-square-signature", "sha1"
    value = _need(h, label, label, spec.name)
    return _hmac_verdict(spec, request, label, [value], _unb64, before, algorithm=algorithm)


def _s_square(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    before = _utf8(_need_url(request.url, spec.name))
    return {"x-square-hmacsha256-signature": _signatures(request, before, encode=_b64)}


# Mailgun: the signature is in the body, not a header: JSON {"signature": {"timestamp",
# "token", "signature"}} or the form fields timestamp, token, signature (legacy webhooks).
# hex HMAC-SHA256 over timestamp + token; the body itself is not signed.


def _v_mailgun(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    body = request.body
    fields: dict[str, Any]
    if body.lstrip()[:1] == b"{":
        outer = _json_body(body, spec.name)
        fields = outer.get("signature")  # type: ignore[assignment]
        if fields is None:
            raise MissingHeaderError("body: signature", scheme=spec.name)
        if not isinstance(fields, dict):
            raise MalformedHeaderError("body: signature", "is not an object", scheme=spec.name)
        where = "body: signature."
    else:
        parse = _urlparse()
        fields = dict(parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        where = "body: "
    values = []
    for name in ("timestamp", "token", "signature"):
        value = fields.get(name)
        if value is None:
            raise MissingHeaderError(where + name, scheme=spec.name)
        if not isinstance(value, str) or not value:
            raise MalformedHeaderError(where + name, "is not a non-empty string", scheme=spec.name)
        values.append(value)
    ts_text, token, text = values
    timestamp = _header_time(request, ts_text, where + "timestamp", spec.name)
    candidates = _decoded([text], _unhex, where + "signature", spec.name)
    index = _key_index(request.keys, candidates, _utf8(ts_text + token))
    return _result(spec, index, where + "signature", [text], request.keys, timestamp, token)


def _s_mailgun(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    timestamp = request.timestamp
    token = request.webhook_id or _new_id("", 25)
    digest = hmac.digest(request.keys[0], _utf8(f"{timestamp}{token}"), "sha256")
    return {"timestamp": str(timestamp), "token": token, "signature": digest.hex()}


# HubSpot. v3: X-HubSpot-Signature-v3 = base64 HMAC-SHA256 over method + URI + body +
# X-HubSpot-Request-Timestamp (milliseconds), with some percent-escapes in the URI decoded.
# v2: hex SHA-256 of secret + method + URI + body; v1: hex SHA-256 of secret + body (plain
# hashes, not HMACs), chosen by X-HubSpot-Signature-Version. v3 wins when present.

_HUBSPOT_DECODE = (
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
)


def _hubspot_uri(url: str) -> str:
    for escaped, char in _HUBSPOT_DECODE:
        url = url.replace(escaped, char).replace(escaped.lower(), char)
    return url


def _v_hubspot(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    name, h, method = spec.name, request.headers, request.method
    required = request.options.get("version")  # pins one version: no downgrade to v1/v2
    if required not in (None, "v1", "v2", "v3"):
        raise ValueError(f"version must be 'v1', 'v2' or 'v3', got {required!r}")
    if required == "v3" or (required is None and "x-hubspot-signature-v3" in h):
        label = "X-HubSpot-Signature-v3"
        value = _need(h, "x-hubspot-signature-v3", label, name)
        ts_text = _need(h, "x-hubspot-request-timestamp", "X-HubSpot-Request-Timestamp", name)
        ms = _int_header(ts_text, "X-HubSpot-Request-Timestamp", name)
        _check_time(ms / 1000, request.now, request.tolerance, name)
        before = _utf8(method.upper() + _hubspot_uri(_need_url(request.url, name)))
        after = ts_text.encode("ascii")
        timestamp = ms // 1000
        return _hmac_verdict(
            spec, request, label, [value], _unb64, before, after, timestamp=timestamp
        )
    label = "X-HubSpot-Signature"
    value = _need(h, "x-hubspot-signature", label, name)
    version = (_get(h, "x-hubspot-signature-version") or "v1").strip()
    if required is not None and version != required:
        raise MalformedHeaderError(
            "X-HubSpot-Signature-Version", f"is not {required} as required", scheme=name
        )
    if version == "v1":
        middle = b""
    elif version == "v2":
        middle = _utf8(method.upper() + _need_url(request.url, name))
    else:
        raise MalformedHeaderError("X-HubSpot-Signature-Version", "is not v1 or v2", scheme=name)
    received = [value]
    candidates = _decoded(received, _unhex, label, name)
    body = request.body
    index = _key_index(
        request.keys, candidates, body, digest=lambda k: hashlib.sha256(k + middle + body).digest()
    )
    return _result(spec, index, label, received, request.keys, None, None)


def _s_hubspot(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    url, method = request.url, request.method
    version = request.options.get("version", "v3" if url else "v1")
    if version == "v3":
        ms = str(request.timestamp * 1000)
        before = _utf8(method.upper() + _hubspot_uri(_need_url(url, spec.name)))
        digest = _signatures(request, before, ms.encode("ascii"), encode=_b64)
        return {"X-HubSpot-Signature-v3": digest, "X-HubSpot-Request-Timestamp": ms}
    if version == "v2":
        middle = _utf8(method.upper() + _need_url(url, spec.name))
    elif version == "v1":
        middle = b""
    else:
        raise ValueError(f"version must be 'v1', 'v2' or 'v3', got {version!r}")
    return {
        "X-HubSpot-Signature": hashlib.sha256(request.keys[0] + middle + request.body).hexdigest(),
        "X-HubSpot-Signature-Version": version,
    }


# Twitch EventSub: Twitch-Eventsub-Message-Signature "sha256=<hex>" over message id +
# timestamp (RFC 3339, nanoseconds) + body; Twitch says to reject messages older than 10 min.


def _rfc3339(text: str) -> float | None:
    """Seconds since the epoch for an RFC 3339 date-time, or None when it is not one."""
    if len(text) < 20 or not text.isascii():
        return None
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    if (
        not digits.isdigit()
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "Tt "
        or text[13] != ":"
        or text[16] != ":"
    ):
        return None
    rest = text[19:]
    fraction = 0.0
    if rest[:1] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        if end == 1:
            return None
        fraction = float("0" + rest[:end])
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and (rest[1:3] + rest[4:]).isdigit():
        offset = (int(rest[1:3]) * 60 + int(rest[4:])) * 60 * (1 if rest[0] == "+" else -1)
    else:
        return None
    dt = _lazy("datetime")
    try:
        moment = dt.datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            tzinfo=dt.timezone.utc,
        )
    except ValueError:
        return None
    return float(moment.timestamp()) - offset + fraction


def _v_twitch(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    name, h = spec.name, request.headers
    id_label = "Twitch-Eventsub-Message-Id"
    ts_label = "Twitch-Eventsub-Message-Timestamp"
    sig_label = "Twitch-Eventsub-Message-Signature"
    webhook_id = _need(h, id_label.lower(), id_label, name)
    ts_text = _need(h, ts_label.lower(), ts_label, name)
    value = _need(h, sig_label.lower(), sig_label, name)
    moment = _rfc3339(ts_text)
    if moment is None:
        raise MalformedHeaderError(ts_label, "is not an RFC 3339 date-time", scheme=name)
    _check_time(moment, request.now, request.tolerance, name)
    received = [_unprefixed(value, "sha256=", sig_label, name)]
    return _hmac_verdict(
        spec,
        request,
        sig_label,
        received,
        _unhex,
        _utf8(webhook_id + ts_text),
        timestamp=int(moment // 1),
        webhook_id=webhook_id,
        event_header="twitch-eventsub-message-type",
    )


def _s_twitch(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    dt = _lazy("datetime")
    moment = dt.datetime.fromtimestamp(request.timestamp, dt.timezone.utc)
    ts_text = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    webhook_id = request.webhook_id or str(_lazy("uuid").UUID(bytes=os.urandom(16), version=4))
    return {
        "Twitch-Eventsub-Message-Id": webhook_id,
        "Twitch-Eventsub-Message-Timestamp": ts_text,
        "Twitch-Eventsub-Message-Signature": _signatures(
            request, _utf8(webhook_id + ts_text), prefix="sha256="
        ),
        "Twitch-Eventsub-Message-Type": "notification",
    }


# Adyen. Management and platform webhooks: HmacSignature header = base64 HMAC-SHA256 of the
# body. Standard notifications: each NotificationRequestItem carries
# additionalData.hmacSignature over pspReference:originalReference:merchantAccountCode:
# merchantReference:value:currency:eventCode:success (missing fields empty). The key is hex.

_ADYEN_FIELDS = ("pspReference", "originalReference", "merchantAccountCode", "merchantReference")


def _adyen_field(item: dict[str, Any], name: str, scheme: str) -> str:
    value = item.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise MalformedHeaderError(f"body: {name}", "is not a string or integer", scheme=scheme)


def _adyen_signing_string(item: dict[str, Any], scheme: str) -> str:
    amount = item.get("amount") or {}
    if not isinstance(amount, dict):
        raise MalformedHeaderError("body: amount", "is not an object", scheme=scheme)
    parts = [_adyen_field(item, name, scheme) for name in _ADYEN_FIELDS]
    parts += [_adyen_field(amount, "value", scheme), _adyen_field(amount, "currency", scheme)]
    parts += [_adyen_field(item, "eventCode", scheme), _adyen_field(item, "success", scheme)]
    return ":".join(parts)


def _v_adyen(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    name = spec.name
    if "hmacsignature" in request.headers:
        value = _need(request.headers, "hmacsignature", "HmacSignature", name)
        return _hmac_verdict(spec, request, "HmacSignature", [value], _unb64)
    items = _json_body(request.body, name).get("notificationItems")
    if items is None:
        raise MissingHeaderError("HmacSignature", scheme=name)
    if not isinstance(items, list) or not items:
        raise MalformedHeaderError(
            "body: notificationItems", "is not a non-empty list", scheme=name
        )
    first = -1
    event_type = None
    for position, wrapper in enumerate(items):
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        where = f"body: notificationItems[{position}].NotificationRequestItem"
        if not isinstance(item, dict):
            raise MalformedHeaderError(where, "is not an object", scheme=name)
        extra = item.get("additionalData")
        text = extra.get("hmacSignature") if isinstance(extra, dict) else None
        label = where + ".additionalData.hmacSignature"
        if not isinstance(text, str):
            raise MissingHeaderError(label, scheme=name)
        candidates = _decoded([text], _unb64, label, name)
        content = _utf8(_adyen_signing_string(item, name))
        index = _key_index(request.keys, candidates, content)
        if index < 0:
            return _result(spec, index, label, [text], request.keys, None, None)
        if position == 0:
            first = index
            event_type = item.get("eventCode") if isinstance(item.get("eventCode"), str) else None
    return _verified(name, None, None, first, event_type)


def _s_adyen(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    return {"HmacSignature": _signatures(request, encode=_b64)}


# SendGrid (ECDSA P-256 over timestamp + body, base64 DER signature, base64 SPKI key) and
# Discord (Ed25519 over timestamp + body, hex signature, hex key): public keys, no signing.
# Both read the signature header, then the timestamp header; each decodes and checks the
# signature its own way.


def _sendgrid_index(keys: list[bytes], message: bytes, value: str, label: str, scheme: str) -> int:
    signature = _unb64(value)
    if signature is None:
        raise MalformedHeaderError(label, "is not base64", scheme=scheme)
    for index, key in enumerate(keys):
        try:
            point = _load_p256_public_key(key)
        except ValueError as exc:
            raise InvalidSecretError(str(exc), secret_index=index, scheme=scheme) from None
        if _ecdsa_p256_verify(point, message, signature):
            return index
    return -1


def _discord_index(keys: list[bytes], message: bytes, value: str, label: str, scheme: str) -> int:
    signature = _unhex(value)
    if signature is None or len(signature) != 64:
        raise MalformedHeaderError(label, "is not 128 hex digits", scheme=scheme)
    return next((i for i, key in enumerate(keys) if _ed25519_verify(key, message, signature)), -1)


_ASYMMETRIC = {
    # name: (signature header, timestamp header, index of the key that verifies, else -1)
    "sendgrid": (
        "X-Twilio-Email-Event-Webhook-Signature",
        "X-Twilio-Email-Event-Webhook-Timestamp",
        _sendgrid_index,
    ),
    "discord": ("X-Signature-Ed25519", "X-Signature-Timestamp", _discord_index),
}


def _v_asymmetric(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    name = spec.name
    sig_label, ts_label, key_index = _ASYMMETRIC[name]
    value = _need(request.headers, sig_label.lower(), sig_label, name)
    ts_text = _need(request.headers, ts_label.lower(), ts_label, name)
    timestamp = _header_time(request, ts_text, ts_label, name)
    message = ts_text.encode("ascii") + request.body
    index = key_index(request.keys, message, value, sig_label, name)
    return _result(spec, index, sig_label, [value], request.keys, timestamp, None)


# The configurable scheme.


def _v_generic(spec: _Scheme, request: _Inbound) -> VerifiedWebhook:
    config: HmacScheme = request.options["_config"]
    name, h = spec.name, request.headers
    value = _need(h, config.header.lower(), config.header, name)
    values: dict[str, str] = {"method": request.method.upper()}
    timestamp = None
    if config.timestamp_header is not None:
        ts_text = _need(h, config.timestamp_header.lower(), config.timestamp_header, name)
        number = _int_header(ts_text, config.timestamp_header, name)
        seconds = number / 1000 if config.timestamp_unit == "ms" else number
        _check_time(seconds, request.now, request.tolerance, name)
        timestamp = int(seconds // 1)
        values["timestamp"] = ts_text
    webhook_id = None
    if config.id_header is not None:
        webhook_id = _get(h, config.id_header.lower())
        if webhook_id is None and config._uses("id"):  # noqa: SLF001
            raise MissingHeaderError(config.id_header, scheme=name)
        values["id"] = webhook_id or ""
    before, after = config._content(values, request.url)  # noqa: SLF001
    received = []
    for raw_entry in value.split(config.separator) if config.separator else [value]:
        entry = raw_entry.strip()
        if entry.startswith(config.prefix):
            received.append(entry[len(config.prefix) :])
    return _hmac_verdict(
        spec,
        request,
        config.header,
        received,
        _unhex if config.encoding == "hex" else _unb64,
        before,
        after,
        algorithm=config.algorithm,
        timestamp=timestamp,
        webhook_id=webhook_id,
    )


def _s_generic(spec: _Scheme, request: _Outbound) -> dict[str, str]:
    config: HmacScheme = request.options["_config"]
    out: dict[str, str] = {}
    values = {"method": request.method.upper()}
    if config.timestamp_header is not None:
        timestamp = request.timestamp
        ts_text = str(timestamp * 1000 if config.timestamp_unit == "ms" else timestamp)
        out[config.timestamp_header] = values["timestamp"] = ts_text
    if config.id_header is not None:
        webhook_id = request.webhook_id or _new_id("")
        out[config.id_header] = values["id"] = webhook_id
    before, after = config._content(values, request.url)  # noqa: SLF001
    out[config.header] = _signatures(
        request,
        before,
        after,
        prefix=config.prefix,
        separator=config.separator,
        encode=bytes.hex if config.encoding == "hex" else _b64,
        algorithm=config.algorithm,
    )
    return out


# --------------------------------------------------------------------------------------
# The registry and the public functions
# --------------------------------------------------------------------------------------


def _names(*spellings: str) -> tuple[tuple[str, str], ...]:
    return tuple((name.lower(), name) for name in spellings)


def _registry() -> dict[str, _Scheme]:
    s = _Scheme
    return {
        "standard-webhooks": s(
            "standard-webhooks",
            _v_standard,
            _s_standard,
            tolerance=300.0,
            key_format="whsec",
            names=_names("webhook-id", "webhook-timestamp", "webhook-signature"),
        ),
        "svix": s(
            "svix",
            _v_standard,
            _s_standard,
            tolerance=300.0,
            key_format="whsec",
            names=_names("svix-id", "svix-timestamp", "svix-signature"),
        ),
        "stripe": s(
            "stripe", _v_tagged, _s_tagged, tolerance=300.0, names=_names("Stripe-Signature")
        ),
        "github": s(
            "github",
            _v_github,
            _s_github,
            names=_names("X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"),
        ),
        "slack": s(
            "slack",
            _v_versioned,
            _s_versioned,
            tolerance=300.0,
            names=_names("X-Slack-Signature", "X-Slack-Request-Timestamp"),
        ),
        "shopify": s("shopify", _v_plain, _s_plain),
        "twilio": s("twilio", _v_twilio, _s_twilio),
        "square": s("square", _v_square, _s_square),
        "zoom": s("zoom", _v_versioned, _s_versioned, tolerance=300.0),
        "pagerduty": s("pagerduty", _v_plain, _s_plain),
        "paddle": s("paddle", _v_tagged, _s_tagged, tolerance=5.0),
        "mailgun": s("mailgun", _v_mailgun, _s_mailgun, timestamped=True),
        "hubspot": s(
            "hubspot", _v_hubspot, _s_hubspot, tolerance=300.0, options=frozenset({"version"})
        ),
        "intercom": s("intercom", _v_github, _s_github),
        "linear": s("linear", _v_plain, _s_plain, tolerance=60.0),
        "twitch": s("twitch", _v_twitch, _s_twitch, tolerance=600.0),
        "adyen": s("adyen", _v_adyen, _s_adyen, key_format="hex"),
        "razorpay": s("razorpay", _v_plain, _s_plain),
        "sendgrid": s("sendgrid", _v_asymmetric, None, timestamped=True, key_format="p256"),
        "discord": s("discord", _v_asymmetric, None, timestamped=True, key_format="ed25519"),
    }


_SCHEMES = _registry()

SCHEMES: Mapping[str, float | None] = MappingProxyType(
    {name: spec.tolerance for name, spec in _SCHEMES.items()} | {"generic": None}
)
"""Every scheme name :func:`verify` accepts, with its default tolerance in seconds (None: no
replay window by default; set ``tolerance=`` to check one where the scheme signs a time)."""

_SECRET_FORMATS = {"utf8": "utf8", "base64": "whsec", "hex": "hex"}
_GENERIC_OPTIONS = frozenset(HmacScheme.__dataclass_fields__) - {"_parts"}


def _resolve(scheme: object, options: dict[str, Any]) -> tuple[_Scheme, dict[str, Any]]:
    if isinstance(scheme, str):
        spec = _SCHEMES.get(scheme)
        if spec is not None:
            if options:
                _no_options(spec, options)
            return spec, options
        if scheme == "generic":
            unknown = sorted(set(options) - _GENERIC_OPTIONS)
            if unknown:
                raise TypeError(f"unknown option(s) for scheme 'generic': {', '.join(unknown)}")
            return _resolve(HmacScheme(**options), {})
        raise ValueError(
            f"scheme must be one of {', '.join(sorted(SCHEMES))} or an HmacScheme, got {scheme!r}"
        )
    if isinstance(scheme, HmacScheme):
        if options:
            raise TypeError(f"unknown option(s) for an HmacScheme: {', '.join(sorted(options))}")
        spec = _Scheme(
            scheme.name,
            _v_generic,
            _s_generic,
            tolerance=scheme.tolerance,
            timestamped=scheme.timestamp_header is not None,
            key_format=_SECRET_FORMATS[scheme.secret_encoding],
        )
        return spec, {"_config": scheme}
    raise TypeError(f"scheme must be a scheme name or an HmacScheme, got {type(scheme).__name__}")


# --------------------------------------------------------------------------------------
# Fast paths: GitHub, Stripe, Standard Webhooks and Svix with a plain dict and one str secret
# --------------------------------------------------------------------------------------
#
# Each one accepts only a delivery that the general path accepts too, with the same
# result, and returns None for anything else (a header under another spelling or not a
# str, a timestamp outside the default window, no match, ...): verify() then runs the
# general path, which accepts it or raises the precise error. So a rejected delivery pays
# twice, an accepted one skips the generic header, option and secret handling.

_FAST_UTF8_KEYS: dict[str, bytes] = {}
_FAST_WHSEC_KEYS: dict[str, bytes] = {}


def _fast_key(secret: str, fmt: str, scheme: str) -> bytes:
    """The key of one str secret, parsed by :func:`_keys` (its errors) and cached by value."""
    cache = _FAST_UTF8_KEYS if fmt == "utf8" else _FAST_WHSEC_KEYS
    key = _keys(secret, fmt, scheme)[0]
    if len(cache) >= _KEY_CACHE_SIZE:
        cache.clear()
    cache[secret] = key
    return key


def _fast_github(
    body: bytes, headers: dict[Any, Any], secret: str, now: float | None
) -> VerifiedWebhook | None:
    # Each name as _headers_for reads it: the provider's spelling, else lower case; both
    # present with different values goes to the general path (which combines them).
    get = headers.get
    value = get("X-Hub-Signature-256")
    if value is None:
        value = get("x-hub-signature-256")
    elif get("x-hub-signature-256") not in (None, value):
        return None
    webhook_id = get("X-GitHub-Delivery")
    if webhook_id is None:
        webhook_id = get("x-github-delivery")
    elif get("x-github-delivery") not in (None, webhook_id):
        return None
    event_type = get("X-GitHub-Event")
    if event_type is None:
        event_type = get("x-github-event")
    elif get("x-github-event") not in (None, event_type):
        return None
    if type(value) is not str or type(webhook_id) is not str or type(event_type) is not str:
        return None
    value = value.strip()
    if value[:7] != "sha256=":
        return None
    try:
        signature = binascii.a2b_hex(value[7:])
    except ValueError:
        return None
    key = _FAST_UTF8_KEYS.get(secret)
    if key is None:
        key = _fast_key(secret, "utf8", "github")
    # The C HMAC object measured about 20% cheaper than the one-shot hmac_digest() for a
    # 1 KiB body (CPython 3.11, OpenSSL 3), so the fast paths use it.
    if len(signature) == 32 and _compare(signature, _hmac_new(key, body, "sha256").digest()):
        result = _new_object(_VerifiedFields)  # as in _verified(), one call less
        result.scheme = "github"
        result.timestamp = None
        result.webhook_id = webhook_id
        result.secret_index = 0
        result.event_type = event_type
        _object_setattr(result, "__class__", VerifiedWebhook)
        return result  # type: ignore[return-value]
    return None


def _fast_stripe(
    body: bytes, headers: dict[Any, Any], secret: str, now: float | None
) -> VerifiedWebhook | None:
    # Only the usual shape "t=<digits>,v1=<hex>"; anything else (v0 entries, several v1
    # signatures, spaces) goes to the general path.
    get = headers.get
    value = get("Stripe-Signature")
    if value is None:
        value = get("stripe-signature")
    elif get("stripe-signature") not in (None, value):
        return None
    if type(value) is not str or value[:2] != "t=":
        return None
    ts_text, found, text = value[2:].partition(",v1=")
    if not (found and 0 < len(ts_text) <= 16 and ts_text.isascii() and ts_text.isdigit()):
        return None
    timestamp = int(ts_text)
    skew = (time.time() if now is None else now) - timestamp
    if not -300.0 <= skew <= 300.0:  # the default window; NaN fails it too
        return None
    try:
        signature = binascii.a2b_hex(text)  # a "," or a space left in text fails here
    except ValueError:
        return None
    key = _FAST_UTF8_KEYS.get(secret)
    if key is None:
        key = _fast_key(secret, "utf8", "stripe")
    mac = _hmac_new(key, (ts_text + ".").encode(), "sha256")  # no copy of the body
    mac.update(body)
    expected = mac.digest()
    if len(signature) == 32 and _compare(signature, expected):
        result = _new_object(_VerifiedFields)  # as in _verified(), one call less
        result.scheme = "stripe"
        result.timestamp = timestamp
        result.webhook_id = None
        result.secret_index = 0
        result.event_type = None
        _object_setattr(result, "__class__", VerifiedWebhook)
        return result  # type: ignore[return-value]
    return None


def _fast_standard(
    body: bytes,
    headers: dict[Any, Any],
    secret: str,
    now: float | None,
    scheme: str = "standard-webhooks",
    names: tuple[str, str, str] = ("webhook-id", "webhook-timestamp", "webhook-signature"),
) -> VerifiedWebhook | None:
    get = headers.get  # these names are lower case: one spelling to look up
    webhook_id, ts_text, signature = get(names[0]), get(names[1]), get(names[2])
    if type(webhook_id) is not str or type(ts_text) is not str or type(signature) is not str:
        return None
    webhook_id, ts_text = webhook_id.strip(), ts_text.strip()
    if not (webhook_id and 0 < len(ts_text) <= 16 and ts_text.isascii() and ts_text.isdigit()):
        return None
    if ts_text[0] == "0":  # signed as str(int(...)): leading zeros take the general path
        return None
    timestamp = int(ts_text)
    skew = (time.time() if now is None else now) - timestamp
    if not -300.0 <= skew <= 300.0:  # the default window; NaN fails it too
        return None
    key = _FAST_WHSEC_KEYS.get(secret)
    if key is None:
        key = _fast_key(secret, "whsec", scheme)
    try:
        before = f"{webhook_id}.{ts_text}.".encode()
    except UnicodeEncodeError:  # a lone surrogate: the general path encodes it
        return None
    mac = _hmac_new(key, before, "sha256")  # no copy of the body
    mac.update(body)
    expected = mac.digest()
    if len(signature) == 47 and signature[:3] == "v1,":  # the usual single signature
        texts: Iterable[str] = (signature[3:],)
    else:
        entries = (entry.partition(",") for entry in signature.split())
        texts = [text for version, _, text in entries if version == "v1"]
    for text in texts:
        if len(text) == 44:  # base64 of 32 bytes
            if sys.version_info >= (3, 11):
                try:
                    candidate = binascii.a2b_base64(text, strict_mode=True)
                except ValueError:
                    continue
            else:  # pragma: no cover - Python 3.10
                candidate = _unb64(text) or b""
            if _compare(candidate, expected):
                result = _new_object(_VerifiedFields)  # as in _verified(), one call less
                result.scheme = scheme
                result.timestamp = timestamp
                result.webhook_id = webhook_id
                result.secret_index = 0
                result.event_type = None
                _object_setattr(result, "__class__", VerifiedWebhook)
                return result  # type: ignore[return-value]
    return None


def _fast_svix(
    body: bytes, headers: dict[Any, Any], secret: str, now: float | None
) -> VerifiedWebhook | None:
    return _fast_standard(body, headers, secret, now, "svix", _SVIX_NAMES)


_SVIX_NAMES = ("svix-id", "svix-timestamp", "svix-signature")
_FAST: dict[str, Callable[[bytes, dict[Any, Any], str, float | None], VerifiedWebhook | None]] = {
    "github": _fast_github,
    "stripe": _fast_stripe,
    "standard-webhooks": _fast_standard,
    "svix": _fast_svix,
}


def verify(
    scheme: str | HmacScheme,
    *,
    body: bytes,
    headers: HeadersInput,
    secret: SecretInput,
    now: float | None = None,
    tolerance: float | None = None,
    url: str | None = None,
    method: str = "POST",
    **options: Any,
) -> VerifiedWebhook:
    """Verify one delivery's signature (and timestamp) the way ``scheme`` defines it.

    Args:
        scheme: a name from :data:`SCHEMES` or an :class:`HmacScheme`.
        body: the raw request body, exactly the bytes received (``str`` is a ``TypeError``).
        headers: a mapping or a list of ``(name, value)`` pairs; names match in any case,
            repeated names are combined with ``", "``.
        secret: the signing secret, or a sequence of them while rotating (each is tried, the
            result names the one that matched). ``bytes`` are used as the key as they are;
            ``str`` secrets are parsed in the provider's format (``whsec_`` base64 for
            Standard Webhooks and Svix, hex for Adyen, the public key for SendGrid (base64
            DER) and Discord (hex), UTF-8 text otherwise).
        now: the verifier's clock in unix seconds; None reads ``time.time()``; NaN and
            infinities are a ``ValueError``.
        tolerance: the replay window in seconds, in both directions; None is the scheme's
            default (:data:`SCHEMES`); ``math.inf`` switches the check off.
        url: the full URL the provider called (Twilio, Square, HubSpot v2/v3; generic
            templates with ``{url}``).
        method: the HTTP method (HubSpot v2/v3, Twilio, generic ``{method}``).
        **options: scheme-specific options: for ``"generic"`` the fields of
            :class:`HmacScheme`.

    Raises:
        WebhookVerificationError: through one of its subclasses when the delivery must be
            refused (or the secret is unusable: :class:`InvalidSecretError`).
        TypeError: ``body`` is a ``str`` or another argument has the wrong type.
        ValueError: an unknown scheme, ``url`` missing where the scheme signs it, or a
            non-finite ``now``.
    """
    if (
        type(headers) is dict
        and type(body) is bytes
        and type(secret) is str
        and type(scheme) is str
        and tolerance is None
        and not options
        and (now is None or type(now) is float or type(now) is int)
        and type(method) is str
    ):
        fast = _FAST.get(scheme)
        if fast is not None:
            verified = fast(body, headers, secret, now)
            if verified is not None:
                return verified
    if type(scheme) is str and not options:
        spec = _SCHEMES.get(scheme)
        if spec is None:
            spec, options = _resolve(scheme, options)
    else:
        spec, options = _resolve(scheme, options)
    if type(body) is not bytes:
        body = _body(body)
    h = _headers_for(spec, headers)
    if tolerance is None:
        tol = spec.tolerance
    else:
        tol = _check_tolerance(tolerance)
        if not spec.timestamped:
            raise ValueError(f"tolerance: scheme {spec.name!r} signs no timestamp")
    if (
        now is not None
        and type(now) is not float
        and (isinstance(now, bool) or not isinstance(now, (int, float)))
    ):
        raise TypeError(f"now must be unix seconds (int or float) or None, got {now!r}")
    if now is not None and not -_INF < now < _INF:  # NaN would pass every window check
        raise ValueError(f"now must be a finite number of unix seconds, got {now!r}")
    if method != "POST" and not isinstance(method, str):
        raise TypeError(f"method must be a str, got {method!r}")
    keys = _keys(secret, spec.key_format, spec.name)
    return spec.verify(spec, _Inbound(body, h, keys, now, tol, url, method, options))


def sign(
    scheme: str | HmacScheme,
    *,
    body: bytes,
    secret: SecretInput,
    timestamp: int | None = None,
    webhook_id: str | None = None,
    url: str | None = None,
    method: str = "POST",
    **options: Any,
) -> dict[str, str]:
    """Produce the headers a provider would send with ``body`` (outbound webhooks, tests).

    Args:
        scheme: a name from :data:`SCHEMES` (HMAC schemes only) or an :class:`HmacScheme`.
        body: the exact bytes that will be sent.
        secret: the signing secret; a sequence signs with every secret where the scheme
            carries several signatures (Standard Webhooks, Svix, Stripe, PagerDuty, Paddle,
            generic with a ``separator``) and with the first one elsewhere.
        timestamp: unix seconds to sign; None reads ``time.time()``.
        webhook_id: the delivery id for schemes that carry one; None makes a random one
            where the scheme requires it.
        url: the full URL the receiver will see (Twilio, Square, HubSpot v2/v3).
        method: the HTTP method (HubSpot, Twilio, generic ``{method}``).
        **options: ``version="v1"|"v2"|"v3"`` for HubSpot (default v3 with a url, else v1);
            the :class:`HmacScheme` fields for ``"generic"``.

    Returns:
        header names (the provider's spelling) to values. For Mailgun, whose signature
        travels in the body, the ``timestamp``, ``token`` and ``signature`` fields.

    Raises:
        ValueError: SendGrid and Discord (signing needs the provider's private key), an
            unknown scheme or a missing ``url``.
        TypeError: ``body`` is not bytes.
        InvalidSecretError: the secret cannot be used.
    """
    spec, options = _resolve(scheme, options)
    body = _body(body)
    if spec.sign is None:
        raise ValueError(
            f"scheme {spec.name!r} is signed with the provider's private key; sign() "
            "implements the HMAC schemes only"
        )
    if timestamp is None:
        timestamp = int(time.time())
    elif isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise TypeError(f"timestamp must be non-negative unix seconds (int), got {timestamp!r}")
    if webhook_id is not None and not isinstance(webhook_id, str):
        raise TypeError(f"webhook_id must be a str or None, got {webhook_id!r}")
    keys = _keys(secret, spec.key_format, spec.name)
    return spec.sign(spec, _Outbound(body, keys, timestamp, webhook_id, url, method, options))


def zoom_url_validation_response(plain_token: str, secret: str | bytes) -> dict[str, str]:
    """The JSON object Zoom expects back from an ``endpoint.url_validation`` event.

    ``encryptedToken`` is the hex HMAC-SHA256 of ``plainToken`` keyed with the webhook
    secret token. Verify the request itself with ``verify("zoom", ...)`` first.

    >>> zoom_url_validation_response("qgg8vlvZRS6UYooatFL8Aw", "zoom_secret_token")[
    ...     "encryptedToken"
    ... ][:16]
    'bd48235863f4a632'
    """
    if not isinstance(plain_token, str) or not plain_token:
        raise TypeError(f"plain_token must be a non-empty str, got {plain_token!r}")
    key = _secret_key(secret, "utf8", 0, "zoom")
    return {
        "plainToken": plain_token,
        "encryptedToken": hmac.digest(key, _utf8(plain_token), "sha256").hex(),
    }


# --- asymmetric primitives (merged from /tmp/webhook_parts/asymmetric.py) ---
# (type aliases for the type checker only)
if TYPE_CHECKING:
    # (ed25519 module, ec module, hashes module, InvalidSignature exception class)
    _CryptographyBackend = tuple[ModuleType, ModuleType, ModuleType, type[Exception]]
    _EdPoint = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z
    _EdCached = tuple[int, int, int, int]  # (Y - X, Y + X, 2*d*T, 2*Z), ready for addition
    _P256Jacobian = tuple[int, int, int]  # (X, Y, Z), x = X/Z^2, y = Y/Z^3; Z == 0 is infinity
    _P256Affine = tuple[int, int]


# --- Asymmetric signatures: Ed25519 (Discord) and ECDSA P-256 (SendGrid) ---------------------
#
# Pure standard-library verification, used when the optional ``cryptography`` package is not
# installed (and always available as the ``*_pure`` functions).
#
# Timing: the arithmetic below is variable-time (Python integers, early returns, wNAF digits
# that depend on the scalars). That is safe here because verification only ever handles
# public data: the sender's public key, the received message and the received signature.
# No secret enters these functions, so how long they take tells an observer nothing they
# do not already have. Signing, which would need a private key, is deliberately absent.
#
# The lazily built tables (_ED_BASE_TABLE, _P256_BASE_TABLE, the backend cache) are filled
# by appending to a list; two threads racing on the first call both build a correct value
# and every caller reads element 0, so no lock is needed.


_CRYPTOGRAPHY_BACKEND_CACHE: list[_CryptographyBackend | None] = []


def _cryptography_backend() -> _CryptographyBackend | None:
    """The ``cryptography`` hazmat modules when that package is installed, else None (cached).

    Loaded with :func:`importlib.import_module` on first use so this module stays
    standard-library-only; the answer is remembered for the life of the process.
    """
    if not _CRYPTOGRAPHY_BACKEND_CACHE:
        backend: _CryptographyBackend | None
        try:
            ed25519 = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ed25519")
            ec = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ec")
            hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
            exceptions = importlib.import_module("cryptography.exceptions")
        except ImportError:
            backend = None
        else:
            backend = (ed25519, ec, hashes, exceptions.InvalidSignature)
        _CRYPTOGRAPHY_BACKEND_CACHE.append(backend)
    return _CRYPTOGRAPHY_BACKEND_CACHE[0]


def _ec_wnaf(scalar: int, width: int) -> list[int]:
    """Width-``width`` non-adjacent form of ``scalar`` >= 0, least significant digit first.

    Every non-zero digit is odd and in (-2^(width-1), 2^(width-1)), and any two non-zero
    digits are at least ``width`` positions apart, so a scalar multiplication needs only
    the odd multiples 1P, 3P, ..., (2^(width-1) - 1)P and about one addition per
    ``width + 1`` doublings (Hankerson, Menezes, Vanstone, *Guide to ECC*, algorithm 3.35).
    """
    window = 1 << width
    half = window >> 1
    digits: list[int] = []
    while scalar:
        digit = 0
        if scalar & 1:
            digit = scalar & (window - 1)
            if digit >= half:
                digit -= window
            scalar -= digit
        digits.append(digit)
        scalar >>= 1
    return digits


def _ec_joint_wnaf(first: int, second: int, width: int) -> list[tuple[int, int]]:
    """wNAF digits of two scalars side by side, most significant first (Straus's method).

    One chain of doublings then serves both scalar multiplications: at each position,
    double once and add the table entry for each non-zero digit.
    """
    first_digits = _ec_wnaf(first, width)
    second_digits = _ec_wnaf(second, width)
    length = max(len(first_digits), len(second_digits))
    first_digits += [0] * (length - len(first_digits))
    second_digits += [0] * (length - len(second_digits))
    return list(zip(reversed(first_digits), reversed(second_digits), strict=True))


# --- Ed25519 (RFC 8032) -----------------------------------------------------------------------

# Curve constants of edwards25519, RFC 8032 section 5.1: -x^2 + y^2 = 1 + d*x^2*y^2 over GF(p).
_ED_P = 2**255 - 19
_ED_D = (
    37095705934669439343138083508754565189542113879843219016388785533085940283555  # -121665/121666
)
_ED_L = 2**252 + 27742317777372353535851937790883648493  # order of the base point B
_ED_SQRT_M1 = (
    19681161376707505956807079304988542015446066515923890162744021073123829784752  # 2^((p-1)/4)
)
_ED_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_ED_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960  # 4/5
_ED_IDENTITY: _EdPoint = (0, 1, 1, 0)
_ED_WINDOW = 5  # wNAF width: tables of 8 odd multiples per point

_ED_BASE_TABLE: list[dict[int, _EdCached]] = []  # the table for B, built on first use


def _ed_decode_point(encoded: bytes) -> _EdPoint | None:
    """Decode a 32-byte point as RFC 8032 section 5.1.3 describes; None if it is invalid.

    Rejects a y coordinate >= p (a non-canonical encoding), a y with no matching x on the
    curve, and x = 0 with the sign bit set.
    """
    value = int.from_bytes(encoded, "little")
    sign = value >> 255
    y = value & ((1 << 255) - 1)
    if y >= _ED_P:
        return None
    u = (y * y - 1) % _ED_P
    v = (_ED_D * y * y + 1) % _ED_P
    # Candidate square root of u/v without an inversion: x = u * v^3 * (u * v^7)^((p-5)/8).
    v3 = v * v * v % _ED_P
    x = u * v3 * pow(u * v3 * v3 * v, (_ED_P - 5) // 8, _ED_P) % _ED_P
    vxx = v * x * x % _ED_P
    if vxx == (-u) % _ED_P:
        x = x * _ED_SQRT_M1 % _ED_P
    elif vxx != u:
        return None  # u/v is not a square: no point has this y
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _ED_P - x
    return (x, y, 1, x * y % _ED_P)


def _ed_double(point: _EdPoint) -> _EdPoint:
    """2P in extended coordinates (RFC 8032 section 5.1.4, doubling formulas for a = -1)."""
    x1, y1, z1, _ = point
    a = x1 * x1 % _ED_P
    b = y1 * y1 % _ED_P
    c = 2 * z1 * z1 % _ED_P
    h = a + b
    xy = x1 + y1
    e = h - xy * xy % _ED_P
    g = a - b
    f = c + g
    return (e * f % _ED_P, g * h % _ED_P, f * g % _ED_P, e * h % _ED_P)


def _ed_add(point: _EdPoint, other: _EdCached) -> _EdPoint:
    """P + Q with Q in cached form (RFC 8032 section 5.1.4 addition; complete, no special cases)."""
    x1, y1, z1, t1 = point
    y_minus_x, y_plus_x, t2d, z2 = other
    a = (y1 - x1) * y_minus_x % _ED_P
    b = (y1 + x1) * y_plus_x % _ED_P
    c = t1 * t2d % _ED_P
    d = z1 * z2 % _ED_P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % _ED_P, g * h % _ED_P, f * g % _ED_P, e * h % _ED_P)


def _ed_cache(point: _EdPoint) -> _EdCached:
    """The cached form (Y - X, Y + X, 2dT, 2Z) of a point, as :func:`_ed_add` consumes it."""
    x, y, z, t = point
    return ((y - x) % _ED_P, (y + x) % _ED_P, 2 * _ED_D * t % _ED_P, 2 * z % _ED_P)


def _ed_table(point: _EdPoint) -> dict[int, _EdCached]:
    """Cached odd multiples +-1P, +-3P, ..., +-15P keyed by wNAF digit."""
    twice = _ed_cache(_ed_double(point))
    table: dict[int, _EdCached] = {}
    multiple = point
    for digit in range(1, 1 << (_ED_WINDOW - 1), 2):
        cached = _ed_cache(multiple)
        table[digit] = cached
        # -P = (-X, Y, Z, -T): swap Y - X and Y + X, negate T.
        table[-digit] = (cached[1], cached[0], -cached[2] % _ED_P, cached[3])
        multiple = _ed_add(multiple, twice)
    return table


def _ed_double_scalar_mult(s: int, k: int, neg_a: _EdPoint) -> _EdPoint:
    """[s]B + [k](-A) by Straus's method: one chain of doublings shared by both scalars."""
    if not _ED_BASE_TABLE:
        base = (_ED_BX, _ED_BY, 1, _ED_BX * _ED_BY % _ED_P)
        _ED_BASE_TABLE.append(_ed_table(base))
    base_table = _ED_BASE_TABLE[0]
    point_table = _ed_table(neg_a)
    acc = _ED_IDENTITY
    for s_digit, k_digit in _ec_joint_wnaf(s, k, _ED_WINDOW):
        acc = _ed_double(acc)
        if s_digit:
            acc = _ed_add(acc, base_table[s_digit])
        if k_digit:
            acc = _ed_add(acc, point_table[k_digit])
    return acc


def _ed25519_verify_pure(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Verify an Ed25519 signature as RFC 8032 section 5.1.7 describes, in pure Python.

    Checks S < L (section 5.1.7 step 1), decodes A strictly (section 5.1.3), then the
    cofactorless group equation [S]B == R + [k]A with k = SHA-512(R || A || M) mod L, as
    encode([S]B - [k]A) == R, which also refuses every R that strict decoding would.
    Small-order keys are not rejected (RFC 8032 does not ask for it).

    Raises:
        ValueError: ``public_key`` is not 32 bytes or ``signature`` is not 64 bytes.
    """
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    if len(signature) != 64:
        raise ValueError(f"an Ed25519 signature is 64 bytes, got {len(signature)}")
    r_bytes = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= _ED_L:
        return False  # non-canonical S: [S]B would still match, so this must be refused here
    a_point = _ed_decode_point(public_key)
    if a_point is None:
        return False
    digest = hashlib.sha512(r_bytes + public_key + message).digest()
    k = int.from_bytes(digest, "little") % _ED_L
    ax, ay, az, at = a_point
    x, y, z, _ = _ed_double_scalar_mult(s, k, (-ax % _ED_P, ay, az, -at % _ED_P))
    # [S]B - [k]A == R, checked by encoding the left side (section 5.1.2) and comparing bytes.
    # The encoding is canonical, so an R that would fail strict decoding (y >= p, x = 0 with
    # the sign bit set, no point with that y) never matches: this is the strict decoding of
    # R without paying for its square root.
    z_inv = pow(z, -1, _ED_P)
    x_affine = x * z_inv % _ED_P
    y_affine = y * z_inv % _ED_P
    return (y_affine | (x_affine & 1) << 255).to_bytes(32, "little") == r_bytes


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Verify an Ed25519 signature (RFC 8032), through ``cryptography`` when it is installed.

    The encoding checks (S < L, a canonical A) run here first, so both paths accept and
    refuse the same encodings; the accelerator only does the curve arithmetic (OpenSSL
    compares the encoding of [S]B - [k]A with R, as the pure path does).

    Raises:
        ValueError: ``public_key`` is not 32 bytes or ``signature`` is not 64 bytes.
    """
    backend = _cryptography_backend()
    if backend is None:
        return _ed25519_verify_pure(public_key, message, signature)
    if len(public_key) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(public_key)}")
    if len(signature) != 64:
        raise ValueError(f"an Ed25519 signature is 64 bytes, got {len(signature)}")
    if int.from_bytes(signature[32:], "little") >= _ED_L:
        return False
    if _ed_decode_point(public_key) is None:
        return False
    ed25519, _, _, invalid_signature = backend
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(bytes(public_key))
        key.verify(bytes(signature), bytes(message))
    except (invalid_signature, ValueError):
        return False
    return True


# --- ECDSA over NIST P-256 (FIPS 186-4/186-5, SEC 1 v2) ---------------------------------------

# Curve constants of P-256 (secp256r1, prime256v1): FIPS 186-4 appendix D.1.2.3,
# SEC 2 v2 section 2.4.2, NIST SP 800-186 section 3.2.1.3. y^2 = x^3 - 3x + b over GF(p).
_P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # order of G
_P256_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_P256_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
_P256_WINDOW = 5
_P256_INFINITY: _P256Jacobian = (1, 1, 0)

# DER of the AlgorithmIdentifier OIDs (RFC 5480 section 2.1.1): id-ecPublicKey
# 1.2.840.10045.2.1 and the named curve secp256r1 / prime256v1 1.2.840.10045.3.1.7.
_P256_OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")
_P256_OID_PRIME256V1 = bytes.fromhex("2a8648ce3d030107")

_P256_BASE_TABLE: list[dict[int, _P256Affine]] = []  # the table for G, built on first use


def _p256_der_element(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Read one DER element with ``tag`` at ``pos``; return where its contents start and end.

    Strict DER (ITU-T X.690 section 10.1): definite, minimal length octets.

    Raises:
        ValueError: another tag, a truncated element or a non-minimal length.
    """
    if pos + 2 > len(data):
        raise ValueError("truncated DER element")
    if data[pos] != tag:
        raise ValueError(f"expected DER tag 0x{tag:02x}, found 0x{data[pos]:02x}")
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count not in (1, 2):
            raise ValueError("unsupported DER length form (indefinite or more than 2 octets)")
        if pos + count > len(data):
            raise ValueError("truncated DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise ValueError("non-minimal DER length")
        pos += count
    if pos + length > len(data):
        raise ValueError("DER element runs past the end of the data")
    return pos, pos + length


def _p256_on_curve(x: int, y: int) -> bool:
    """Whether (x, y) is a point of P-256 with both coordinates in [0, p)."""
    return (
        0 <= x < _P256_P and 0 <= y < _P256_P and (y * y - (x * x - 3) * x - _P256_B) % _P256_P == 0
    )


def _p256_decode_point(encoded: bytes) -> tuple[int, int]:
    """Decode a SEC1 point (SEC 1 v2 section 2.3.4): 0x04 || X || Y, or 0x02/0x03 || X.

    Raises:
        ValueError: the point at infinity, another length or prefix, or not on the curve.
    """
    if encoded[:1] == b"\x00":
        raise ValueError("the public key is the point at infinity")
    if len(encoded) == 65 and encoded[0] == 0x04:
        x = int.from_bytes(encoded[1:33], "big")
        y = int.from_bytes(encoded[33:], "big")
    elif len(encoded) == 33 and encoded[0] in (0x02, 0x03):
        x = int.from_bytes(encoded[1:], "big")
        if x >= _P256_P:
            raise ValueError("the public key's x coordinate is not below p")
        rhs = ((x * x - 3) * x + _P256_B) % _P256_P
        y = pow(rhs, (_P256_P + 1) // 4, _P256_P)  # a square root, since p = 3 (mod 4)
        if y & 1 != encoded[0] & 1:
            y = _P256_P - y
    else:
        raise ValueError(
            "a P-256 public key is 65 bytes starting 0x04 or 33 bytes starting 0x02/0x03, "
            f"got {len(encoded)} bytes"
        )
    if not _p256_on_curve(x, y):
        raise ValueError("the public key is not a point on the P-256 curve")
    return x, y


def _load_p256_public_key(data: bytes) -> tuple[int, int]:
    """Load a P-256 public key: DER SubjectPublicKeyInfo (RFC 5480) or a raw SEC1 point.

    SendGrid shows its verification key as base64 of the DER SubjectPublicKeyInfo; decode
    the base64 first. The point is checked to be on the curve and not the point at
    infinity (SEC 1 v2 section 3.2.2.1; P-256 has cofactor 1, so that is sufficient).

    Raises:
        ValueError: anything but one P-256 key, with the reason.
    """
    data = bytes(data)
    if data[:1] != b"\x30":
        return _p256_decode_point(data)
    start, end = _p256_der_element(data, 0, 0x30)  # SubjectPublicKeyInfo
    if end != len(data):
        raise ValueError("trailing bytes after the SubjectPublicKeyInfo")
    alg_start, alg_end = _p256_der_element(data, start, 0x30)  # AlgorithmIdentifier
    oid_start, oid_end = _p256_der_element(data, alg_start, 0x06)
    if data[oid_start:oid_end] != _P256_OID_EC_PUBLIC_KEY:
        raise ValueError("the key is not an elliptic-curve key (algorithm is not id-ecPublicKey)")
    curve_start, curve_end = _p256_der_element(data, oid_end, 0x06)
    if data[curve_start:curve_end] != _P256_OID_PRIME256V1 or curve_end != alg_end:
        raise ValueError("the key is not on the named curve P-256 (prime256v1)")
    bits_start, bits_end = _p256_der_element(data, alg_end, 0x03)  # BIT STRING
    if bits_end != end:
        raise ValueError("trailing bytes inside the SubjectPublicKeyInfo")
    if bits_start == bits_end or data[bits_start] != 0:
        raise ValueError("the public key BIT STRING must have zero unused bits")
    return _p256_decode_point(data[bits_start + 1 : bits_end])


def _p256_parse_signature(signature_der: bytes) -> tuple[int, int] | None:
    """(r, s) from a DER ``SEQUENCE { r INTEGER, s INTEGER }`` (RFC 3279 section 2.2.3).

    Strict: minimal lengths and integers, positive, nothing after the sequence. None when
    malformed.
    """
    try:
        start, end = _p256_der_element(signature_der, 0, 0x30)
        if end != len(signature_der):
            return None
        integers: list[int] = []
        pos = start
        for _ in range(2):
            int_start, pos = _p256_der_element(signature_der, pos, 0x02)
            content = signature_der[int_start:pos]
            if not content or content[0] & 0x80:
                return None  # empty or negative
            if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
                return None  # a redundant leading zero
            integers.append(int.from_bytes(content, "big"))
    except ValueError:
        return None
    if pos != end:
        return None
    return integers[0], integers[1]


def _p256_double(point: _P256Jacobian) -> _P256Jacobian:
    """2P in Jacobian coordinates, using a = -3 (Hankerson et al., *Guide to ECC*, alg. 3.21)."""
    x, y, z = point
    if z == 0:
        return point
    zz = z * z % _P256_P
    yy = y * y % _P256_P
    m = 3 * (x - zz) * (x + zz) % _P256_P
    s = 4 * x * yy % _P256_P
    x3 = (m * m - 2 * s) % _P256_P
    y3 = (m * (s - x3) - 8 * yy * yy) % _P256_P
    return (x3, y3, 2 * y * z % _P256_P)


def _p256_add_affine(point: _P256Jacobian, other: _P256Affine) -> _P256Jacobian:
    """P + Q with P Jacobian and Q affine (mixed addition), handling P == +-Q and infinity."""
    x1, y1, z1 = point
    x2, y2 = other
    if z1 == 0:
        return (x2, y2, 1)
    z1z1 = z1 * z1 % _P256_P
    h = (x2 * z1z1 - x1) % _P256_P
    r = (y2 * z1 * z1z1 - y1) % _P256_P
    if h == 0:
        return _p256_double(point) if r == 0 else _P256_INFINITY
    hh = h * h % _P256_P
    hhh = h * hh % _P256_P
    v = x1 * hh % _P256_P
    x3 = (r * r - hhh - 2 * v) % _P256_P
    y3 = (r * (v - x3) - y1 * hhh) % _P256_P
    return (x3, y3, z1 * h % _P256_P)


def _p256_table(x: int, y: int) -> dict[int, _P256Affine]:
    """Affine odd multiples +-1P, ..., +-15P keyed by wNAF digit (two inversions in all)."""
    tx, ty, tz = _p256_double((x, y, 1))
    tz_inv = pow(tz, -1, _P256_P)
    twice = (tx * tz_inv * tz_inv % _P256_P, ty * tz_inv * tz_inv * tz_inv % _P256_P)
    jacobians: list[_P256Jacobian] = [(x, y, 1)]
    for _ in range((1 << (_P256_WINDOW - 2)) - 1):
        jacobians.append(_p256_add_affine(jacobians[-1], twice))
    # Batch inversion (Montgomery's trick): one modular inverse for all the Z coordinates.
    prefix = [1]
    for _, _, z in jacobians:
        prefix.append(prefix[-1] * z % _P256_P)
    inverse = pow(prefix[-1], -1, _P256_P)
    table: dict[int, _P256Affine] = {}
    for index in range(len(jacobians) - 1, -1, -1):
        px, py, pz = jacobians[index]
        z_inv = inverse * prefix[index] % _P256_P
        inverse = inverse * pz % _P256_P
        z_inv2 = z_inv * z_inv % _P256_P
        ax, ay = px * z_inv2 % _P256_P, py * z_inv2 * z_inv % _P256_P
        table[2 * index + 1] = (ax, ay)
        table[-(2 * index + 1)] = (ax, _P256_P - ay)
    return table


def _ecdsa_p256_verify_pure(
    public_key: tuple[int, int], message: bytes, signature_der: bytes
) -> bool:
    """Verify an ECDSA P-256 / SHA-256 signature (FIPS 186-5 section 6.4.2), in pure Python.

    ``public_key`` is the (x, y) that :func:`_load_p256_public_key` returns. A malformed DER
    signature, r or s outside [1, n - 1], or a mismatch returns False. There is no low-S
    rule in ECDSA: s and n - s both verify.

    Raises:
        ValueError: ``public_key`` is not a point on P-256.
    """
    qx, qy = public_key
    if not _p256_on_curve(qx, qy):
        raise ValueError("the public key is not a point on the P-256 curve")
    parsed = _p256_parse_signature(signature_der)
    if parsed is None:
        return False
    r, s = parsed
    if not (0 < r < _P256_N and 0 < s < _P256_N):
        return False
    e = int.from_bytes(hashlib.sha256(message).digest(), "big")  # 256 bits: no truncation
    w = pow(s, -1, _P256_N)
    u1 = e * w % _P256_N
    u2 = r * w % _P256_N
    if not _P256_BASE_TABLE:
        _P256_BASE_TABLE.append(_p256_table(_P256_GX, _P256_GY))
    g_table = _P256_BASE_TABLE[0]
    q_table = _p256_table(qx, qy)
    acc = _P256_INFINITY
    for d1, d2 in _ec_joint_wnaf(u1, u2, _P256_WINDOW):
        acc = _p256_double(acc)
        if d1:
            acc = _p256_add_affine(acc, g_table[d1])
        if d2:
            acc = _p256_add_affine(acc, q_table[d2])
    x, _, z = acc
    if z == 0:
        return False
    # Accept when x(R) mod n == r. x(R) = X / Z^2 and x(R) < p < 2n, so x(R) is r or r + n;
    # comparing X with candidate * Z^2 avoids an inversion.
    zz = z * z % _P256_P
    return any(
        candidate < _P256_P and (candidate * zz - x) % _P256_P == 0
        for candidate in (r, r + _P256_N)
    )


def _ecdsa_p256_verify(public_key: tuple[int, int], message: bytes, signature_der: bytes) -> bool:
    """Verify an ECDSA P-256 / SHA-256 signature, through ``cryptography`` when installed.

    The strict DER and range checks run here on both paths, so both accept and refuse the
    same encodings.

    Raises:
        ValueError: ``public_key`` is not a point on P-256.
    """
    backend = _cryptography_backend()
    if backend is None:
        return _ecdsa_p256_verify_pure(public_key, message, signature_der)
    qx, qy = public_key
    if not _p256_on_curve(qx, qy):
        raise ValueError("the public key is not a point on the P-256 curve")
    parsed = _p256_parse_signature(signature_der)
    if parsed is None or not (0 < parsed[0] < _P256_N and 0 < parsed[1] < _P256_N):
        return False
    _, ec, hashes, invalid_signature = backend
    try:
        key = ec.EllipticCurvePublicNumbers(qx, qy, ec.SECP256R1()).public_key()
        key.verify(bytes(signature_der), bytes(message), ec.ECDSA(hashes.SHA256()))
    except (invalid_signature, ValueError):
        return False
    return True


# --- end of asymmetric primitives ---


# --------------------------------------------------------------------------------------
# Receiving: claim-then-complete deduplication in front of a handler
# --------------------------------------------------------------------------------------


class DeliveryState(Enum):
    """Where one delivery key stands in a :class:`DeliveryStore`.

    ``ABSENT``: never claimed, released after a failed handler, or purged.
    ``IN_PROGRESS``: claimed; a worker runs the handler and holds a lease until
    ``expires_at``. ``EXPIRED``: claimed, but the lease ran out (the worker crashed or
    overran); the next delivery may retake it. ``DONE``: the handler succeeded.
    """

    ABSENT = "absent"
    IN_PROGRESS = "in_progress"
    EXPIRED = "expired"
    DONE = "done"


# The claim lifecycle as a transition table: (state found, operation) -> state after.
# A pair missing from the table leaves the record as it is: claiming an IN_PROGRESS or
# DONE key is refused, releasing a DONE key never reopens finished work, and purging
# skips live leases. Both stores decide claims with it; their complete, release and
# purge implement the other rows (the tests check both stores against a model of it).
_DELIVERY_TRANSITIONS: dict[tuple[DeliveryState, str], DeliveryState] = {
    (DeliveryState.ABSENT, "claim"): DeliveryState.IN_PROGRESS,
    (DeliveryState.EXPIRED, "claim"): DeliveryState.IN_PROGRESS,
    (DeliveryState.ABSENT, "complete"): DeliveryState.DONE,
    (DeliveryState.IN_PROGRESS, "complete"): DeliveryState.DONE,
    (DeliveryState.EXPIRED, "complete"): DeliveryState.DONE,
    (DeliveryState.DONE, "complete"): DeliveryState.DONE,
    (DeliveryState.IN_PROGRESS, "release"): DeliveryState.ABSENT,
    (DeliveryState.EXPIRED, "release"): DeliveryState.ABSENT,
    (DeliveryState.EXPIRED, "purge"): DeliveryState.ABSENT,
    (DeliveryState.DONE, "purge"): DeliveryState.ABSENT,
}


class ReceiveOutcome(Enum):
    """What :meth:`WebhookReceiver.receive` did with a delivery; ``.status`` is its HTTP code.

    ``PROCESSED`` (200): verified, claimed, the handler succeeded, the key is done.
    ``DUPLICATE`` (200): verified, but the key was done already; the handler did not
    run. 200 tells the provider to stop retrying.
    ``IN_PROGRESS`` (503, with ``Retry-After``): another worker holds a live claim on
    the key; the provider should retry later, when the claim is done or has expired.
    ``REJECTED`` (400): the delivery failed verification; the handler did not run.
    ``HANDLER_FAILED`` (500): the handler raised; the claim was released so that the
    provider's retry runs the handler again.
    """

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IN_PROGRESS = "in_progress"
    REJECTED = "rejected"
    HANDLER_FAILED = "handler_failed"

    @property
    def status(self) -> int:
        """The HTTP status code to answer with."""
        return _OUTCOME_STATUS[self]

    @property
    def phrase(self) -> str:
        """A short response body that reveals nothing about why a delivery was rejected."""
        return _OUTCOME_PHRASE[self]


_OUTCOME_STATUS = {
    ReceiveOutcome.PROCESSED: 200,
    ReceiveOutcome.DUPLICATE: 200,
    ReceiveOutcome.IN_PROGRESS: 503,
    ReceiveOutcome.REJECTED: 400,
    ReceiveOutcome.HANDLER_FAILED: 500,
}
_OUTCOME_PHRASE = {
    ReceiveOutcome.PROCESSED: "processed",
    ReceiveOutcome.DUPLICATE: "duplicate delivery, already processed",
    ReceiveOutcome.IN_PROGRESS: "delivery in progress, retry later",
    ReceiveOutcome.REJECTED: "webhook rejected",
    ReceiveOutcome.HANDLER_FAILED: "processing failed, retry later",
}


_set = object.__setattr__


class _Value:
    """Base of the receiver's immutable values: slotted, compared and hashed by their fields.

    Hand-written rather than frozen dataclasses: each of those costs about half a
    millisecond at import, and this module is imported by every verifier.
    """

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()  # the fields, in order

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot assign to {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__match_args__)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__match_args__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())


class ClaimResult(_Value):
    """The answer of :meth:`DeliveryStore.claim` (immutable).

    Attributes:
        claimed: True when the caller now holds the claim and must run the handler,
            then call ``complete`` (success) or ``release`` (failure).
        found: the state the key was in before the claim: ``ABSENT`` or ``EXPIRED``
            when claimed (``EXPIRED``: a crashed or overrunning worker's lease was
            retaken), ``IN_PROGRESS`` or ``DONE`` when refused.
        token: identifies this claim (pass it to ``release``); None when refused.
        expires_at: when the live lease ends (unix seconds), for ``claimed`` and
            ``IN_PROGRESS``; None otherwise.
        attempts: how many times the key has been claimed, this claim included.
    """

    __match_args__ = ("claimed", "found", "token", "expires_at", "attempts")
    __slots__ = __match_args__
    claimed: bool
    found: DeliveryState
    token: str | None
    expires_at: float | None
    attempts: int

    def __init__(
        self,
        claimed: bool,  # noqa: FBT001 - a value's field, as in a dataclass
        found: DeliveryState,
        token: str | None = None,
        expires_at: float | None = None,
        attempts: int = 0,
    ) -> None:
        _set(self, "claimed", claimed)
        _set(self, "found", found)
        _set(self, "token", token)
        _set(self, "expires_at", expires_at)
        _set(self, "attempts", attempts)


class WebhookDelivery(_Value):
    """What the handler of a :class:`WebhookReceiver` is called with (immutable).

    Attributes:
        body: the raw request body, exactly as verified.
        headers: the request headers, as passed to ``receive``.
        verified: the :class:`VerifiedWebhook` that ``verify`` returned.
        key: the deduplication key the delivery was claimed under.
        attempt: 1 for the first claim of the key, 2 after one failed or expired run, ...
    """

    __match_args__ = ("body", "headers", "verified", "key", "attempt")
    __slots__ = __match_args__
    body: bytes
    headers: HeadersInput
    verified: VerifiedWebhook
    key: str
    attempt: int

    def __init__(
        self,
        body: bytes,
        headers: HeadersInput,
        verified: VerifiedWebhook,
        key: str,
        attempt: int,
    ) -> None:
        _set(self, "body", body)
        _set(self, "headers", headers)
        _set(self, "verified", verified)
        _set(self, "key", key)
        _set(self, "attempt", attempt)


class ReceiveResult(_Value):
    """What :meth:`WebhookReceiver.receive` returns: the HTTP answer and what happened.

    Immutable. Attributes:
        status: the HTTP status code to answer with (``outcome.status``).
        outcome: a :class:`ReceiveOutcome`.
        webhook_id: the provider's delivery id, None when the scheme has none or the
            delivery was rejected.
        detail: what happened, for logs. It may say which verification check failed;
            never send it to the caller (``outcome.phrase`` is the safe response body).
        key: the deduplication key; None for a rejected delivery.
        retry_after: seconds the provider should wait (``IN_PROGRESS`` only), else None.
        response: what the handler returned (``PROCESSED`` only), e.g. a challenge
            answer to send back as the body; None otherwise.
        error: the exception behind ``REJECTED`` or ``HANDLER_FAILED``, else None.
        attempt: the claim number of the key: this delivery's claim (``PROCESSED``,
            ``HANDLER_FAILED``) or the other worker's (``IN_PROGRESS``); else 0.
    """

    __match_args__ = (
        "status",
        "outcome",
        "webhook_id",
        "detail",
        "key",
        "retry_after",
        "response",
        "error",
        "attempt",
    )
    __slots__ = __match_args__
    status: int
    outcome: ReceiveOutcome
    webhook_id: str | None
    detail: str
    key: str | None
    retry_after: int | None
    response: object
    error: BaseException | None
    attempt: int

    def __init__(
        self,
        status: int,
        outcome: ReceiveOutcome,
        webhook_id: str | None,
        detail: str,
        key: str | None = None,
        retry_after: int | None = None,
        response: object = None,
        error: BaseException | None = None,
        attempt: int = 0,
    ) -> None:
        _set(self, "status", status)
        _set(self, "outcome", outcome)
        _set(self, "webhook_id", webhook_id)
        _set(self, "detail", detail)
        _set(self, "key", key)
        _set(self, "retry_after", retry_after)
        _set(self, "response", response)
        _set(self, "error", error)
        _set(self, "attempt", attempt)

    @property
    def headers(self) -> dict[str, str]:
        """Response headers to send: ``Retry-After`` for ``IN_PROGRESS``, else none."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}


class DeliveryStore(Protocol):
    """Where a :class:`WebhookReceiver` records which delivery keys are claimed or done.

    Every method is atomic with respect to every other caller of the same store, in
    this process and (for a shared database) in others. Times are unix seconds from
    the receiver's clock. The states and transitions are those of :class:`DeliveryState`.
    """

    def claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult:
        """Claim ``key`` for ``lease_seconds`` if it is ``ABSENT`` or ``EXPIRED``; atomic."""

    def complete(self, key: str, *, now: float) -> None:
        """Mark ``key`` ``DONE`` (whatever its state: the handler's work happened)."""

    def release(self, key: str, *, token: str | None = None) -> bool:
        """Drop the claim on ``key`` so it can be claimed again; True if one was dropped.

        With ``token``, only the claim that token names is dropped: a worker whose
        lease expired and was retaken cannot release its successor's claim. A ``DONE``
        key is never reopened.
        """

    def state(self, key: str, *, now: float) -> DeliveryState:
        """The state of ``key`` at ``now``."""

    def purge(self, *, before: float) -> int:
        """Forget ``DONE`` keys completed before ``before`` and claims expired before it.

        Returns how many keys were forgotten. A forgotten key is ``ABSENT``: a delivery
        of it is processed again, so keep keys as long as a provider may redeliver.
        """


def _claim_token() -> str:
    return os.urandom(12).hex()


def _seconds(name: str, value: object, *, positive: bool) -> float:
    """``value`` as float seconds, or TypeError/ValueError naming ``name`` and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    if positive and value == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return float(value)


def _state_of(state: str, expires_at: float | None, now: float) -> DeliveryState:
    """The state of a stored record: ``"in_progress"`` past its lease reads as EXPIRED.

    A released record reads as ABSENT; it is kept only to count the key's attempts.
    """
    if state == "done":
        return DeliveryState.DONE
    if state == "released":
        return DeliveryState.ABSENT
    if expires_at is not None and expires_at <= now:
        return DeliveryState.EXPIRED
    return DeliveryState.IN_PROGRESS


class _Record:
    __slots__ = ("attempts", "completed_at", "expires_at", "state", "token")

    def __init__(self) -> None:
        self.state = "in_progress"
        self.token: str | None = None
        self.expires_at: float | None = None
        self.completed_at: float | None = None
        self.attempts = 0


class InMemoryDeliveryStore:
    """A :class:`DeliveryStore` in a dict behind a lock: one process, any number of threads.

    Its records die with the process, so after a restart a provider's retry of a
    delivery that was processed before the restart is processed again. Use
    :class:`SQLiteDeliveryStore` (or your own store) when that matters or when several
    worker processes receive webhooks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def __repr__(self) -> str:
        return f"InMemoryDeliveryStore(keys={len(self._records)})"

    def __len__(self) -> int:
        """How many keys the store holds a record of (claimed, released or done)."""
        return len(self._records)

    def _state(self, record: _Record | None, now: float) -> DeliveryState:
        if record is None:
            return DeliveryState.ABSENT
        return _state_of(record.state, record.expires_at, now)

    def claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult:
        """Claim ``key`` for ``lease_seconds`` if it is ``ABSENT`` or ``EXPIRED``; atomic."""
        lease = _seconds("lease_seconds", lease_seconds, positive=True)
        with self._lock:
            record = self._records.get(key)
            found = self._state(record, now)
            if (found, "claim") not in _DELIVERY_TRANSITIONS:
                expires_at = None
                if record is not None and found is DeliveryState.IN_PROGRESS:
                    expires_at = record.expires_at
                attempts = 0 if record is None else record.attempts
                return ClaimResult(
                    claimed=False, found=found, expires_at=expires_at, attempts=attempts
                )
            if record is None:
                record = self._records[key] = _Record()
            record.state = "in_progress"
            record.token = _claim_token()
            record.expires_at = now + lease
            record.attempts += 1
            return ClaimResult(
                claimed=True,
                found=found,
                token=record.token,
                expires_at=record.expires_at,
                attempts=record.attempts,
            )

    def complete(self, key: str, *, now: float) -> None:
        """Mark ``key`` ``DONE`` (whatever its state: the handler's work happened)."""
        with self._lock:
            record = self._records.get(key)
            if record is None:
                record = self._records[key] = _Record()
            elif record.state == "done":
                return
            record.state = "done"
            record.token = None
            record.expires_at = None
            record.completed_at = now

    def release(self, key: str, *, token: str | None = None) -> bool:
        """Drop the claim on ``key`` (only the one ``token`` names, if given); never a DONE key."""
        with self._lock:
            record = self._records.get(key)
            if record is None or record.state != "in_progress" or token not in (None, record.token):
                return False
            record.state = "released"
            record.token = None
            return True

    def state(self, key: str, *, now: float) -> DeliveryState:
        """The state of ``key`` at ``now``."""
        with self._lock:
            return self._state(self._records.get(key), now)

    def purge(self, *, before: float) -> int:
        """Forget ``DONE`` keys completed before ``before`` and claims expired before it."""
        with self._lock:
            stale = [
                key
                for key, record in self._records.items()
                if (record.state == "done" and (record.completed_at or 0.0) < before)
                or (record.state != "done" and (record.expires_at or 0.0) < before)
            ]
            for key in stale:
                del self._records[key]
            return len(stale)


# One tuple of statements per schema version: _DELIVERY_MIGRATIONS[0] creates version 1.
_DELIVERY_MIGRATIONS = (
    (
        (
            "CREATE TABLE IF NOT EXISTS interlock_webhook_deliveries ("
            " key TEXT PRIMARY KEY,"
            " state TEXT NOT NULL CHECK (state IN ('in_progress', 'released', 'done')),"
            " token TEXT,"
            " lease_expires_at REAL,"
            " completed_at REAL,"
            " attempts INTEGER NOT NULL DEFAULT 0,"
            " updated_at REAL NOT NULL)"
        ),
        (
            "CREATE INDEX IF NOT EXISTS interlock_webhook_deliveries_purge"
            " ON interlock_webhook_deliveries (state, completed_at, lease_expires_at)"
        ),
    ),
)
_SELECT_DELIVERY = (
    "SELECT state, lease_expires_at, attempts FROM interlock_webhook_deliveries WHERE key = ?"
)


class SQLiteDeliveryStore:
    """A :class:`DeliveryStore` in an SQLite database that several worker processes share.

    Every claim is one ``BEGIN IMMEDIATE`` transaction: it takes the database's write
    lock before it reads the key, so two processes never both find a key claimable.
    A claim that finds the key ``DONE`` is answered from a plain read, without the
    write lock. Times are readings of the receivers' clock: every process sharing the
    file must use the same wall clock (``time.time``).

    Args:
        database: a file path (created if missing; each thread gets its own connection,
            in WAL mode), or an open ``sqlite3.Connection``, used as is behind a lock
            (open it with ``check_same_thread=False`` to share it between threads, and
            do not use it for other transactions meanwhile). ``":memory:"`` as a path is
            refused: every thread would get its own empty database; pass a connection.
        timeout: seconds a writer waits for another process's write lock before
            ``sqlite3.OperationalError`` ("database is locked") propagates.
        migrate: create or upgrade the tables now (:meth:`migrate`); pass False when a
            deployment step runs :meth:`migrate` instead.

    Errors of the database propagate as ``sqlite3`` exceptions.
    """

    def __init__(
        self,
        database: str | os.PathLike[str] | sqlite3.Connection,
        *,
        timeout: float = 5.0,
        migrate: bool = True,
    ) -> None:
        import sqlite3  # noqa: PLC0415 - deferred: only this store needs it

        self.timeout = _seconds("timeout", timeout, positive=False)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._path: str | None = None
        self._shared: sqlite3.Connection | None = None
        if isinstance(database, sqlite3.Connection):
            self._shared = database
        elif isinstance(database, (str, os.PathLike)):
            path = os.fspath(database)
            if not isinstance(path, str):
                raise TypeError(f"database must be a str path, got {database!r}")
            if path in ("", ":memory:") or path.startswith("file::memory:"):
                raise ValueError(
                    f"database={database!r}: every connection would get its own empty "
                    "database; pass a file path, or a sqlite3.Connection"
                )
            self._path = path
        else:
            raise TypeError(
                f"database must be a path or a sqlite3.Connection, got {type(database).__name__}"
            )
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        where = "<connection>" if self._path is None else self._path
        return f"SQLiteDeliveryStore({where!r})"

    def __enter__(self) -> SQLiteDeliveryStore:  # noqa: PYI034 - typing.Self is 3.11+
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this store opened (never a connection you passed in).

        A later call opens a new one.
        """
        with self._lock:
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for conn in opened:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._shared is not None:
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            import sqlite3  # noqa: PLC0415 - deferred: only this store needs it

            path = self._path or ""
            conn = sqlite3.connect(
                path,
                timeout=self.timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=path.startswith("file:"),
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._lock:
                self._opened.append(conn)
                self._local.conn = conn
        return conn

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction; roll back if it raises."""
        conn = self._connection()
        shared = self._shared is not None
        if shared:
            self._lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        finally:
            if shared:
                self._lock.release()

    def _read(self, key: str) -> tuple[str, float | None, int] | None:
        """The key's row (state, lease_expires_at, attempts), read outside a transaction."""
        conn = self._connection()
        if self._shared is None:
            return conn.execute(_SELECT_DELIVERY, (key,)).fetchone()  # type: ignore[no-any-return]
        with self._lock:
            return conn.execute(_SELECT_DELIVERY, (key,)).fetchone()  # type: ignore[no-any-return]

    def migrate(self) -> int:
        """Create or upgrade the tables (idempotent); return the schema version reached.

        The applied versions are rows of ``interlock_webhook_delivery_schema``; the
        deliveries live in ``interlock_webhook_deliveries``. Safe to run from several
        processes at once: it is one ``BEGIN IMMEDIATE`` transaction.
        """

        def work(conn: sqlite3.Connection) -> int:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS interlock_webhook_delivery_schema"
                " (version INTEGER NOT NULL)"
            )
            row = conn.execute(
                "SELECT MAX(version) FROM interlock_webhook_delivery_schema"
            ).fetchone()
            version = row[0] or 0
            if version > len(_DELIVERY_MIGRATIONS):
                raise ValueError(
                    f"the database has delivery store schema version {version}; "
                    f"this code knows versions up to {len(_DELIVERY_MIGRATIONS)}"
                )
            for number, statements in enumerate(_DELIVERY_MIGRATIONS[version:], version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO interlock_webhook_delivery_schema VALUES (?)", (number,))
            return len(_DELIVERY_MIGRATIONS)

        return self._transaction(work)

    def claim(self, key: str, *, now: float, lease_seconds: float) -> ClaimResult:
        """Claim ``key`` for ``lease_seconds`` if it is ``ABSENT`` or ``EXPIRED``; atomic."""
        lease = _seconds("lease_seconds", lease_seconds, positive=True)
        row = self._read(key)
        if row is not None and row[0] == "done":  # final until purged: no write lock needed
            return ClaimResult(claimed=False, found=DeliveryState.DONE, attempts=row[2])

        def work(conn: sqlite3.Connection) -> ClaimResult:
            row = conn.execute(_SELECT_DELIVERY, (key,)).fetchone()
            found = DeliveryState.ABSENT if row is None else _state_of(row[0], row[1], now)
            attempts = 0 if row is None else int(row[2])
            if (found, "claim") not in _DELIVERY_TRANSITIONS:
                expires_at = row[1] if found is DeliveryState.IN_PROGRESS else None
                return ClaimResult(
                    claimed=False, found=found, expires_at=expires_at, attempts=attempts
                )
            token = _claim_token()
            conn.execute(
                "INSERT INTO interlock_webhook_deliveries"
                " (key, state, token, lease_expires_at, completed_at, attempts, updated_at)"
                " VALUES (?, 'in_progress', ?, ?, NULL, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET state = 'in_progress', token = excluded.token,"
                " lease_expires_at = excluded.lease_expires_at, completed_at = NULL,"
                " attempts = excluded.attempts, updated_at = excluded.updated_at",
                (key, token, now + lease, attempts + 1, now),
            )
            return ClaimResult(
                claimed=True,
                found=found,
                token=token,
                expires_at=now + lease,
                attempts=attempts + 1,
            )

        return self._transaction(work)

    def complete(self, key: str, *, now: float) -> None:
        """Mark ``key`` ``DONE`` (whatever its state: the handler's work happened)."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO interlock_webhook_deliveries"
                " (key, state, token, lease_expires_at, completed_at, attempts, updated_at)"
                " VALUES (?, 'done', NULL, NULL, ?, 0, ?)"
                " ON CONFLICT (key) DO UPDATE SET state = 'done', token = NULL,"
                " lease_expires_at = NULL, completed_at = excluded.completed_at,"
                " updated_at = excluded.updated_at WHERE state <> 'done'",
                (key, now, now),
            )

        self._transaction(work)

    def release(self, key: str, *, token: str | None = None) -> bool:
        """Drop the claim on ``key`` (only the one ``token`` names, if given); never a DONE key."""

        def work(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE interlock_webhook_deliveries SET state = 'released', token = NULL"
                " WHERE key = ? AND state = 'in_progress' AND (? IS NULL OR token = ?)",
                (key, token, token),
            )
            return cursor.rowcount > 0

        return self._transaction(work)

    def state(self, key: str, *, now: float) -> DeliveryState:
        """The state of ``key`` at ``now``."""
        row = self._read(key)
        return DeliveryState.ABSENT if row is None else _state_of(row[0], row[1], now)

    def purge(self, *, before: float) -> int:
        """Forget ``DONE`` keys completed before ``before`` and claims expired before it."""

        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM interlock_webhook_deliveries"
                " WHERE (state = 'done' AND completed_at < ?)"
                " OR (state <> 'done' AND lease_expires_at < ?)",
                (before, before),
            )
            return cursor.rowcount

        return self._transaction(work)


_VERIFY_ARGUMENTS = frozenset({"body", "headers", "secret", "now", "url", "method"})

if TYPE_CHECKING:
    DeliveryKeyFunction: TypeAlias = Callable[[bytes, VerifiedWebhook], str]
    WebhookHandlerFunction: TypeAlias = Callable[[WebhookDelivery], object | Awaitable[object]]


class WebhookReceiver:
    """Verify a delivery, run its handler at most once at a time, and say what to answer.

    Framework-agnostic: call :meth:`receive` (or :meth:`receive_async`) with the raw
    body and the headers from any web framework, and answer with the result's
    ``status``, ``headers`` and ``outcome.phrase``.

    Args:
        scheme: a scheme name or generic HMAC scheme, as for :func:`verify`.
        secret: the secret, or a list of secrets during a rotation, as for :func:`verify`.
        handler: called with a :class:`WebhookDelivery` after verification and a
            successful claim. Raising marks the delivery ``HANDLER_FAILED`` and releases
            the claim. It may be a coroutine function when you call :meth:`receive_async`.
        store: a :class:`DeliveryStore`; default: a new :class:`InMemoryDeliveryStore`.
        tolerance: seconds, as for :func:`verify` (None: the scheme's default).
        clock: returns unix seconds; used for verification and for leases (a wall
            clock, because leases are compared across processes).
        lease_seconds: how long a claim keeps other deliveries of the key out. Make it
            longer than your slowest handler run: a claim that outlives its lease may be
            retaken, and the handler may then run twice. A crashed worker's claim is
            retaken after at most this long.
        retention_seconds: how long :meth:`purge` keeps done keys. Keep keys for longer
            than the provider retries or lets people redeliver.
        delivery_key: ``(body, verified) -> str``, the deduplication key; default: see
            :meth:`key_for`.
        **verify_options: scheme-specific options passed on to :func:`verify`.
    """

    def __init__(
        self,
        scheme: str | HmacScheme,
        *,
        secret: SecretInput,
        handler: WebhookHandlerFunction,
        store: DeliveryStore | None = None,
        tolerance: float | None = None,
        clock: Callable[[], float] = time.time,
        lease_seconds: float = 300.0,
        retention_seconds: float = 30 * 86400.0,
        delivery_key: DeliveryKeyFunction | None = None,
        **verify_options: object,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        if not callable(clock):
            raise TypeError(f"clock must be callable, got {clock!r}")
        if delivery_key is not None and not callable(delivery_key):
            raise TypeError(f"delivery_key must be callable or None, got {delivery_key!r}")
        if store is None:
            store = InMemoryDeliveryStore()
        else:
            methods = ("claim", "complete", "release", "state", "purge")
            missing = [name for name in methods if not callable(getattr(store, name, None))]
            if missing:
                raise TypeError(f"store {store!r} is not a DeliveryStore: no {', '.join(missing)}")
        reserved = sorted(_VERIFY_ARGUMENTS.intersection(verify_options))
        if reserved:
            raise TypeError(f"{', '.join(reserved)}: set per delivery by receive(), not here")
        self.scheme = scheme
        self.store = store
        self.lease_seconds = _seconds("lease_seconds", lease_seconds, positive=True)
        self.retention_seconds = _seconds("retention_seconds", retention_seconds, positive=True)
        self._secret = tuple(secret) if isinstance(secret, list) else secret
        self._handler = handler
        self._clock = clock
        self._delivery_key = delivery_key
        self._verify_options: dict[str, Any] = dict(verify_options)
        if tolerance is not None:
            self._verify_options["tolerance"] = tolerance
        # Configuration errors surface here, not as rejected deliveries: verify() on an
        # empty delivery raises ValueError or TypeError for an unknown scheme, option or a
        # bad tolerance, and InvalidSecretError for an unusable secret. The verification
        # error an empty delivery then gets is the expected outcome.
        try:
            verify(
                scheme,
                body=b"",
                headers=(),
                secret=self._secret,
                now=0.0,
                url="https://receiver.invalid/",
                **self._verify_options,
            )
        except InvalidSecretError:
            raise
        except WebhookVerificationError:
            pass

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.scheme!r}, store={self.store!r})"

    @staticmethod
    def key_for(body: bytes, verified: VerifiedWebhook) -> str:
        """The default deduplication key of a verified delivery.

        ``"<scheme>:id:<webhook id>"`` when the scheme carries a delivery id in its
        headers, else ``"<scheme>:sha256:<hex SHA-256 of the raw body>"``: a provider
        resends the same body when it retries (with a fresh timestamp and signature,
        which is why neither is part of the key). Two distinct events with identical
        bodies would share a key; pass ``delivery_key=`` to key on an id in the body.

        >>> v = VerifiedWebhook("github", None, "72d3162e", 0, "push")
        >>> WebhookReceiver.key_for(b"{}", v)
        'github:id:72d3162e'
        >>> WebhookReceiver.key_for(b"{}", VerifiedWebhook("stripe", 1, None, 0, None))[:20]
        'stripe:sha256:44136f'
        """
        if verified.webhook_id is not None:
            return f"{verified.scheme}:id:{verified.webhook_id}"
        return f"{verified.scheme}:sha256:{hashlib.sha256(body).hexdigest()}"

    def purge(self) -> int:
        """Forget keys done more than ``retention_seconds`` ago; return how many went."""
        return self.store.purge(before=self._clock() - self.retention_seconds)

    def receive(
        self,
        body: bytes,
        headers: HeadersInput,
        *,
        url: str | None = None,
        method: str = "POST",
    ) -> ReceiveResult:
        """Verify, claim, run the handler and complete; return what to answer.

        Raises:
            TypeError: ``body`` is not bytes, or the handler returned an awaitable
                (use :meth:`receive_async`).
            InvalidSecretError: the configured secret is unusable: the server's own
                misconfiguration, so it propagates (your framework answers 500 and the
                provider retries) instead of being reported as the sender's fault.
            Exception: whatever the store raises (e.g. ``sqlite3.OperationalError``).
        """
        started = self._start(body, headers, url, method)
        if isinstance(started, ReceiveResult):
            return started
        delivery, claim = started
        try:
            response = self._handler(delivery)
        except Exception as exc:  # noqa: BLE001 - any handler failure means: retry later
            return self._failed(delivery, claim, exc)
        except BaseException:
            self._release(delivery, claim)
            raise
        if inspect.isawaitable(response):
            close = getattr(response, "close", None)
            if close is not None:
                close()  # a coroutine that is never awaited would warn
            self._release(delivery, claim)
            raise TypeError(f"handler {self._handler!r} returned an awaitable; use receive_async()")
        return self._processed(delivery, claim, response)

    async def receive_async(
        self,
        body: bytes,
        headers: HeadersInput,
        *,
        url: str | None = None,
        method: str = "POST",
    ) -> ReceiveResult:
        """Like :meth:`receive`, and awaits the handler's result when it is awaitable.

        The store is called synchronously: SQLite calls block the event loop for as
        long as they wait for a lock (at most ``busy_timeout``).
        """
        started = self._start(body, headers, url, method)
        if isinstance(started, ReceiveResult):
            return started
        delivery, claim = started
        try:
            response = self._handler(delivery)
            if inspect.isawaitable(response):
                response = await response
        except Exception as exc:  # noqa: BLE001 - any handler failure means: retry later
            return self._failed(delivery, claim, exc)
        except BaseException:  # cancellation: free the key for the provider's retry
            self._release(delivery, claim)
            raise
        return self._processed(delivery, claim, response)

    def _start(
        self,
        body: bytes,
        headers: HeadersInput,
        url: str | None,
        method: str,
    ) -> ReceiveResult | tuple[WebhookDelivery, ClaimResult]:
        if not hasattr(headers, "items") and iter(headers) is headers:
            headers = list(headers)  # a one-shot iterator: keep the pairs for the handler
        now = self._clock()
        try:
            verified = verify(
                self.scheme,
                body=body,
                headers=headers,
                secret=self._secret,
                now=now,
                url=url,
                method=method,
                **self._verify_options,
            )
        except InvalidSecretError:
            raise
        except WebhookVerificationError as exc:
            return ReceiveResult(
                ReceiveOutcome.REJECTED.status,
                ReceiveOutcome.REJECTED,
                None,
                f"verification failed: {type(exc).__name__}: {exc}",
                error=exc,
            )
        raw = bytes(body)
        if self._delivery_key is None:
            key = self.key_for(raw, verified)
        else:
            key = self._delivery_key(raw, verified)
            if not isinstance(key, str) or not key:
                raise TypeError(f"delivery_key must return a non-empty str, got {key!r}")
        claim = self.store.claim(key, now=now, lease_seconds=self.lease_seconds)
        webhook_id = verified.webhook_id
        if claim.found is DeliveryState.DONE:
            outcome = ReceiveOutcome.DUPLICATE
            return ReceiveResult(
                outcome.status, outcome, webhook_id, f"{key} was processed before", key=key
            )
        if not claim.claimed:
            outcome = ReceiveOutcome.IN_PROGRESS
            expires_at = now + self.lease_seconds if claim.expires_at is None else claim.expires_at
            wait = max(1, math.ceil(expires_at - now))
            return ReceiveResult(
                outcome.status,
                outcome,
                webhook_id,
                f"{key} is claimed by another worker for {wait} s more",
                key=key,
                retry_after=wait,
                attempt=claim.attempts,
            )
        delivery = WebhookDelivery(raw, headers, verified, key, claim.attempts)
        return delivery, claim

    def _release(self, delivery: WebhookDelivery, claim: ClaimResult) -> None:
        self.store.release(delivery.key, token=claim.token)

    def _failed(
        self, delivery: WebhookDelivery, claim: ClaimResult, exc: Exception
    ) -> ReceiveResult:
        self._release(delivery, claim)
        outcome = ReceiveOutcome.HANDLER_FAILED
        return ReceiveResult(
            outcome.status,
            outcome,
            delivery.verified.webhook_id,
            f"handler raised {type(exc).__name__}: {exc}; {delivery.key} released for a retry",
            key=delivery.key,
            error=exc,
            attempt=delivery.attempt,
        )

    def _processed(
        self, delivery: WebhookDelivery, claim: ClaimResult, response: object
    ) -> ReceiveResult:
        now = self._clock()
        self.store.complete(delivery.key, now=now)
        detail = f"{delivery.key} processed"
        if claim.expires_at is not None and now > claim.expires_at:
            detail += f" after its lease ran out ({now - claim.expires_at:.3f} s late)"
        outcome = ReceiveOutcome.PROCESSED
        return ReceiveResult(
            outcome.status,
            outcome,
            delivery.verified.webhook_id,
            detail,
            key=delivery.key,
            response=response,
            attempt=delivery.attempt,
        )
