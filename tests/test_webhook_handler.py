"""interlock.webhook_handler: provider vectors, round trips, fuzzing, the rules of verify/sign."""

# Secrets in this file are test fixtures, not credentials.
# ruff: noqa: S105, S106

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import webhook_handler as wh
from interlock.webhook_handler import (
    SCHEMES,
    HmacScheme,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    NoMatchingSignatureError,
    TimestampOutsideToleranceError,
    TimestampTooNewError,
    TimestampTooOldError,
    VerifiedWebhook,
    WebhookVerificationError,
    sign,
    verify,
    zoom_url_validation_response,
)


def _vectors_dir() -> Path:
    here = Path(__file__).resolve()
    for base in (here.parents[2], here.parents[1]):
        candidate = base / "shared" / "vectors" / "webhooks"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/vectors/webhooks")


VECTORS = _vectors_dir()
SCHEME_NAMES = {"standard_webhooks": "standard-webhooks", "discord_ed25519": "discord"}


def _load() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(VECTORS.glob("*.json")):
        if path.name == "index.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        scheme = SCHEME_NAMES.get(data["scheme"], data["scheme"])
        out += [(scheme, v) for v in data["vectors"]]
    return out


ALL_VECTORS = _load()


def _body(v: dict[str, Any]) -> bytes:
    if "body_b64" in v:
        return base64.b64decode(v["body_b64"])
    if "body_spec" in v:
        return v["body_spec"]["repeat"].encode() * v["body_spec"]["count"]
    if "body_json" in v:
        return json.dumps(v["body_json"]).encode()
    if "notification_item" in v:
        fields = dict(v["notification_item"])
        fields.setdefault("additionalData", {"hmacSignature": v["expected"]})
        item = {"NotificationRequestItem": fields}
        return json.dumps({"live": "false", "notificationItems": [item]}).encode()
    if "params" in v and "body_b64" not in v:
        return urlencode(v["params"], doseq=True).encode()
    return v.get("body_utf8", "").encode()


def _now(scheme: str, v: dict[str, Any]) -> float | None:
    headers = {k.lower(): val for k, val in v.get("headers", {}).items()}
    if "timestamp_ms" in v:
        return int(v["timestamp_ms"]) / 1000
    if "timestamp" in v:
        return float(v["timestamp"])
    if scheme == "twitch":
        text = headers["twitch-eventsub-message-timestamp"]
        return datetime.fromisoformat(text[:26] + "+00:00").timestamp()
    if "linear-timestamp" in headers:
        return int(headers["linear-timestamp"]) / 1000
    return None


def _secret(v: dict[str, Any]) -> str:
    for name in ("secret", "secret_hex", "public_key_hex", "public_key_b64_spki"):
        if name in v:
            return str(v[name])
    raise KeyError("secret")


def _call(scheme: str, v: dict[str, Any], **changes: Any) -> VerifiedWebhook:
    kwargs: dict[str, Any] = {
        "body": _body(v),
        "headers": v.get("headers", {}),
        "secret": _secret(v),
        "now": _now(scheme, v),
        "url": v.get("url"),
        "method": v.get("method", "POST"),
    }
    kwargs.update(changes)
    return verify(scheme, **kwargs)


# Vectors whose shape is not a delivery: tested by the dedicated tests further down.
SPECIAL = {"zoom-url-validation-constructed", "razorpay-payment-signature"}
DELIVERIES = [
    pytest.param(scheme, v, id=v["name"])
    for scheme, v in ALL_VECTORS
    if v["name"] not in SPECIAL and (scheme != "discord" or "headers" in v)
]


def test_every_vector_file_is_loaded() -> None:
    """Every vector file listed in index.json is read and every vector in it is a case."""
    index = json.loads((VECTORS / "index.json").read_text(encoding="utf-8"))
    listed = {entry["name"] for entries in index.values() for entry in entries}
    assert listed == {v["name"] for _, v in ALL_VECTORS}
    assert len(ALL_VECTORS) >= 40


@pytest.mark.parametrize(("scheme", "vector"), DELIVERIES)
def test_vector_outcome(scheme: str, vector: dict[str, Any]) -> None:
    """A provider vector verifies when expected to, else it is refused with the specific error."""
    if vector.get("expected") is False:
        with pytest.raises(NoMatchingSignatureError):
            _call(scheme, vector)
        return
    result = _call(scheme, vector)
    assert result.scheme == scheme
    assert result.secret_index == 0


@pytest.mark.parametrize(("scheme", "vector"), DELIVERIES)
def test_vector_with_changed_body_or_secret_is_refused(scheme: str, vector: dict[str, Any]) -> None:
    """One changed byte of a vector's signed content, or its secret: NoMatchingSignatureError."""
    if vector.get("expected") is False:
        return
    if scheme == "mailgun":  # Mailgun signs timestamp + token, not the body
        changed = json.loads(_body(vector))
        changed["signature"]["token"] = "owyldpe6nxhmrn78epljl6bj0orrki1u3d2v5e6cnlmmuox8jr"
        body = json.dumps(changed).encode()
    elif scheme == "adyen" and "notification_item" in vector:
        changed = json.loads(_body(vector))
        changed["notificationItems"][0]["NotificationRequestItem"]["eventCode"] = "REFUND"
        body = json.dumps(changed).encode()
    elif scheme == "twilio" and not vector["params"]:
        body = b""
        vector = {**vector, "url": vector["url"].replace("foo=1", "foo=2")}
    else:
        original = _body(vector)
        body = original[:-1] + bytes([original[-1] ^ 1]) if original else b"x"
    with pytest.raises(NoMatchingSignatureError):
        _call(scheme, vector, body=body)
    other = {
        "adyen": "00" * 32,
        "discord": "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "standard-webhooks": "whsec_" + base64.b64encode(b"another key").decode(),
        "svix": "whsec_" + base64.b64encode(b"another key").decode(),
    }.get(scheme, "another secret")
    if scheme == "sendgrid":
        other = vector["negatives"]["bad_key_b64"]
    with pytest.raises(NoMatchingSignatureError):
        _call(scheme, vector, secret=other)


def _vector(name: str) -> tuple[str, dict[str, Any]]:
    return next((s, v) for s, v in ALL_VECTORS if v["name"] == name)


def test_vector_secret_rotation_reports_the_matching_index() -> None:
    """Paddle's three-secret rotation vector matches the third secret, and the result says so."""
    secrets = [_vector(f"paddle-hello-secret{i}")[1]["secret"] for i in range(3)]
    scheme, vector = _vector("paddle-hello-secret2")
    assert _call(scheme, vector, secret=secrets).secret_index == 2


def test_sendgrid_vector_negatives() -> None:
    """SendGrid's published negatives: wrong key, wrong signature, wrong payload, bad timestamp."""
    scheme, vector = _vector("sendgrid-python-test")
    negatives = vector["negatives"]
    headers = dict(vector["headers"])
    with pytest.raises(NoMatchingSignatureError):
        _call(scheme, vector, secret=negatives["bad_key_b64"])
    bad_sig = {**headers, "X-Twilio-Email-Event-Webhook-Signature": negatives["bad_sig_b64"]}
    with pytest.raises(NoMatchingSignatureError):
        _call(scheme, vector, headers=bad_sig)
    with pytest.raises(NoMatchingSignatureError):
        _call(scheme, vector, body=negatives["bad_payload"].encode())
    bad_ts = {**headers, "X-Twilio-Email-Event-Webhook-Timestamp": negatives["bad_timestamp"]}
    with pytest.raises(MalformedHeaderError) as info:
        _call(scheme, vector, headers=bad_ts)
    assert info.value.header == "X-Twilio-Email-Event-Webhook-Timestamp"


@pytest.mark.parametrize(
    "vector",
    [v for s, v in ALL_VECTORS if s == "discord" and "headers" not in v],
    ids=lambda v: v["name"],
)
def test_rfc8032_vectors_through_the_ed25519_primitive(vector: dict[str, Any]) -> None:
    """The RFC 8032 section 7.1 vectors verify, and fail with one bit of the message changed."""
    key = bytes.fromhex(vector["public_key_hex"])
    message = bytes.fromhex(vector["message_hex"])
    signature = bytes.fromhex(vector["signature_hex"])
    assert wh._ed25519_verify(key, message, signature)
    assert not wh._ed25519_verify(key, message + b"\x00", signature)


def test_zoom_url_validation_vector() -> None:
    """The Zoom endpoint-validation response carries hex HMAC-SHA256 of the plain token."""
    _, vector = _vector("zoom-url-validation-constructed")
    response = zoom_url_validation_response(vector["plainToken"], vector["secret"])
    assert response == {"plainToken": vector["plainToken"], "encryptedToken": vector["expected"]}
    with pytest.raises(TypeError):
        zoom_url_validation_response("", "secret")


def test_razorpay_payment_signature_through_the_generic_scheme() -> None:
    """Razorpay's checkout signature (order|payment) verifies through a generic HMAC scheme."""
    _, vector = _vector("razorpay-payment-signature")
    scheme = HmacScheme(header="X-Razorpay-Signature")
    result = verify(
        scheme,
        body=vector["message"].encode(),
        headers={"X-Razorpay-Signature": vector["expected"]},
        secret=vector["secret"],
    )
    assert result.scheme == "generic"


def test_twilio_json_body_must_match_body_sha256() -> None:
    """A Twilio JSON delivery whose body does not hash to the URL's bodySHA256 is refused."""
    scheme, vector = _vector("twilio-sdk-json-bodySHA256")
    with pytest.raises(NoMatchingSignatureError) as info:
        _call(scheme, vector, body=b'{"property": "other"}')
    assert info.value.header == "bodySHA256"


# --------------------------------------------------------------------------------------
# Round trips: verify(sign(...)) for every HMAC scheme
# --------------------------------------------------------------------------------------

HMAC_SCHEMES = sorted(n for n in SCHEMES if n not in {"sendgrid", "discord", "generic"})
URL = "https://example.com/hooks/in?tenant=7"
MULTI = {"standard-webhooks", "svix", "stripe", "pagerduty", "paddle"}


def _secret_text(scheme: str, raw: bytes) -> str:
    if scheme in {"standard-webhooks", "svix"}:
        return "whsec_" + base64.b64encode(raw).decode()
    if scheme == "adyen":
        return raw.hex().upper()
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize("scheme", HMAC_SCHEMES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=300),
    raw_secrets=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=3),
    timestamp=st.integers(min_value=0, max_value=2**33),
)
def test_sign_then_verify_round_trips(
    scheme: str, body: bytes, raw_secrets: list[bytes], timestamp: int
) -> None:
    """verify(sign(...)) accepts for every HMAC scheme, any body, secrets and time."""
    secrets = [_secret_text(scheme, raw) for raw in raw_secrets]
    signed = sign(scheme, body=body, secret=secrets, timestamp=timestamp, webhook_id="d-1", url=URL)
    headers: dict[str, str] = signed
    if scheme == "mailgun":
        body, headers = json.dumps({"signature": signed}).encode(), {}
    result = verify(scheme, body=body, headers=headers, secret=secrets, now=timestamp, url=URL)
    assert result.secret_index == 0
    if SCHEMES[scheme] is not None or scheme == "mailgun":
        assert result.timestamp == timestamp
    if scheme in MULTI and len(secrets) > 1:
        later = verify(scheme, body=body, headers=headers, secret=secrets[1:], now=timestamp)
        assert later.secret_index == 0


@settings(max_examples=50, deadline=None)
@given(
    body=st.binary(max_size=200),
    secret=st.text(min_size=1, max_size=20).map(str.strip).filter(bool),
    timestamp=st.integers(min_value=0, max_value=2**33),
    encoding=st.sampled_from(["hex", "base64"]),
    algorithm=st.sampled_from(["sha1", "sha256", "sha384", "sha512"]),
    template=st.sampled_from(
        ["{body}", "{timestamp}.{body}", "{method} {url}\n{id}:{body}:{timestamp}", "v0:{{{body}}}"]
    ),
)
def test_generic_scheme_round_trips(  # noqa: PLR0917
    body: bytes, secret: str, timestamp: int, encoding: str, algorithm: str, template: str
) -> None:
    """A configurable HMAC scheme verifies what it signs, for any template, digest and encoding."""
    config = HmacScheme(
        header="X-Signature",
        algorithm=algorithm,
        encoding=encoding,
        prefix=f"{algorithm}=",
        template=template,
        timestamp_header="X-Timestamp",
        id_header="X-Delivery",
        tolerance=30,
    )
    headers = sign(config, body=body, secret=secret, timestamp=timestamp, url=URL)
    result = verify(config, body=body, headers=headers, secret=secret, now=timestamp + 30, url=URL)
    assert (result.timestamp, result.webhook_id) == (timestamp, headers["X-Delivery"])


# --------------------------------------------------------------------------------------
# Fuzz: only this module's errors come out
# --------------------------------------------------------------------------------------

KNOWN_HEADERS = sorted(
    {
        name.lower()
        for scheme in HMAC_SCHEMES
        for name in sign(scheme, body=b"x", secret=_secret_text(scheme, b"k"), timestamp=1, url=URL)
    }
    | {
        "x-hubspot-signature",
        "x-hubspot-signature-version",
        "x-square-signature",
        "x-signature-ed25519",
        "x-signature-timestamp",
        "x-twilio-email-event-webhook-signature",
        "x-twilio-email-event-webhook-timestamp",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-signature",
    }
)
PREFIXES = ["", "t=1,v1=", "sha256=", "sha1=", "v0=", "v1,", "ts=1;h1=", "v1=", "1700000000"]
header_values = st.one_of(
    st.text(max_size=40),
    st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(max_size=70)),
    st.integers(min_value=0, max_value=2**40).map(str),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=40).map(bytes.hex),
)
header_maps = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_HEADERS), st.text(max_size=10)), header_values, max_size=6
)
bodies = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda x: json.dumps(x).encode(),
        st.recursive(
            st.none() | st.integers() | st.text(max_size=8) | st.booleans(),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "signature",
                            "timestamp",
                            "token",
                            "notificationItems",
                            "NotificationRequestItem",
                            "additionalData",
                            "hmacSignature",
                            "amount",
                            "webhookTimestamp",
                        ]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=10,
        ),
    ),
)
FUZZ_SECRETS = {
    "standard-webhooks": "whsec_c2VjcmV0",
    "svix": "whsec_c2VjcmV0",
    "adyen": "00ff",
    "discord": "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    "sendgrid": _vector("sendgrid-python-test")[1]["public_key_b64_spki"],
}


@pytest.mark.parametrize("scheme", sorted(n for n in SCHEMES if n != "generic"))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=header_maps, body=bodies, now=st.floats(0, 2e10) | st.none())
def test_fuzz_only_verification_errors(
    scheme: str, headers: dict[str, str], body: bytes, now: float | None
) -> None:
    """Arbitrary header names, values and bodies raise only WebhookVerificationError."""
    secret = FUZZ_SECRETS.get(scheme, "secret")
    with contextlib.suppress(
        NoMatchingSignatureError,
        MissingHeaderError,
        MalformedHeaderError,
        TimestampOutsideToleranceError,
    ):
        verify(scheme, body=body, headers=headers, secret=secret, now=now, url=URL)


@settings(max_examples=100, deadline=None)
@given(secret=st.text(max_size=30) | st.binary(max_size=30))
def test_fuzz_secrets_only_invalid_secret_or_mismatch(secret: str | bytes) -> None:
    """Arbitrary secret text for every format is parsed or refused with InvalidSecretError."""
    for scheme in ("standard-webhooks", "adyen", "discord", "sendgrid", "stripe"):
        with contextlib.suppress(InvalidSecretError, MissingHeaderError):
            verify(scheme, body=b"{}", headers={}, secret=secret)


# --------------------------------------------------------------------------------------
# The rules, one at a time
# --------------------------------------------------------------------------------------

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_str_body_is_refused_with_an_explanation() -> None:
    """A str body raises TypeError that explains raw bytes are needed."""
    with pytest.raises(TypeError, match="raw request bytes"):
        verify("github", body="Hello, World!", headers={}, secret="s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="raw request bytes"):
        sign("github", body="x", secret="s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be bytes"):
        verify("github", body=None, headers={}, secret="s")  # type: ignore[arg-type]


def test_bytearray_and_memoryview_bodies_are_accepted() -> None:
    """Buffers holding the raw bytes verify like bytes."""
    for body in (bytearray(GITHUB_BODY), memoryview(GITHUB_BODY)):
        result = verify(
            "github",
            body=body,  # type: ignore[arg-type]
            headers={"X-Hub-Signature-256": GITHUB_SIG},
            secret=GITHUB_SECRET,
        )
        assert result.secret_index == 0


def test_headers_any_case_pairs_and_bytes() -> None:
    """Headers match case-insensitively from dicts, pair lists, bytes pairs and mappings."""
    name, value = "X-HUB-signature-256", GITHUB_SIG
    forms: list[Any] = [
        {name: value},
        [(name, value), ("Content-Type", "application/json")],
        [(name.encode(), value.encode())],
        {name.encode(): value.encode()},
        _Mapping({name: value}),
    ]
    lower = {"x-hub-signature-256": value, "x-github-delivery": "d", "x-github-event": "push"}
    forms.append(lower)
    for headers in forms:
        assert verify("github", body=GITHUB_BODY, headers=headers, secret=GITHUB_SECRET)
    assert verify("github", body=GITHUB_BODY, headers=lower, secret=GITHUB_SECRET).webhook_id == "d"


class _Mapping:
    """A mapping that is not a dict (like a framework's header object)."""

    def __init__(self, data: dict[str, str]) -> None:
        self._data = data

    def items(self) -> list[tuple[str, str]]:
        return list(self._data.items())


def test_repeated_headers_are_combined_not_silently_chosen() -> None:
    """Repeated header values are combined (RFC 9110): a smuggled second signature is malformed."""
    pairs = [("X-Hub-Signature-256", GITHUB_SIG), ("x-hub-signature-256", "sha256=00")]
    with pytest.raises(MalformedHeaderError):
        verify("github", body=GITHUB_BODY, headers=pairs, secret=GITHUB_SECRET)
    same_name_two_cases = {"X-Hub-Signature-256": GITHUB_SIG, "x-hub-signature-256": GITHUB_SIG}
    with pytest.raises(MalformedHeaderError):
        verify("github", body=GITHUB_BODY, headers=same_name_two_cases, secret=GITHUB_SECRET)


@pytest.mark.parametrize(
    "headers",
    ["x", b"x", 5, [("a",)], [1], {1: "x"}, [("a", 1)]],
)
def test_wrong_header_types_raise_type_error(headers: Any) -> None:
    """Headers that are not a mapping or (name, value) pairs of text raise TypeError."""
    with pytest.raises(TypeError):
        verify("github", body=b"", headers=headers, secret="s")


def test_header_values_that_are_not_text_raise_type_error() -> None:
    """A header value that is neither str nor bytes is a TypeError, not a crash."""
    with pytest.raises(TypeError):
        verify("github", body=b"", headers={"X-Hub-Signature-256": 5}, secret="s")  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        verify("zoom", body=b"", headers={"x-zm-request-timestamp": 5}, secret="s")  # type: ignore[dict-item]


def test_bytes_header_values_from_a_dict_are_decoded() -> None:
    """Byte values in a plain dict (ASGI style) are read as latin-1 text."""
    signed = sign("github", body=b"x", secret="s", webhook_id="d-1")
    headers = {k: v.encode() for k, v in signed.items()}
    result = verify("github", body=b"x", headers=headers, secret="s")  # type: ignore[arg-type]
    assert result.webhook_id == "d-1"
    zoom = {k: v.encode() for k, v in sign("zoom", body=b"x", secret="s", timestamp=5).items()}
    assert verify("zoom", body=b"x", headers=zoom, secret="s", now=5)  # type: ignore[arg-type]


def test_missing_and_malformed_github_headers() -> None:
    """Missing, unprefixed and non-hex GitHub signatures raise the specific errors."""
    with pytest.raises(MissingHeaderError) as missing:
        verify("github", body=GITHUB_BODY, headers={}, secret=GITHUB_SECRET)
    assert missing.value.header == "X-Hub-Signature-256"
    with pytest.raises(MalformedHeaderError, match="does not start with"):
        verify("github", body=b"", headers={"X-Hub-Signature-256": "md5=00"}, secret="s")
    with pytest.raises(MalformedHeaderError, match="not hex"):
        verify("github", body=b"", headers={"X-Hub-Signature-256": "sha256=zz"}, secret="s")
    with pytest.raises(MissingHeaderError) as intercom:
        verify("intercom", body=b"", headers={}, secret="s")
    assert intercom.value.header == "X-Hub-Signature"


def test_github_prefers_sha256_and_falls_back_to_legacy_sha1() -> None:
    """With both headers GitHub checks SHA-256 only; SHA-1 is used when SHA-256 is absent."""
    signed = sign("github", body=GITHUB_BODY, secret=GITHUB_SECRET, webhook_id="72d3162e")
    headers = {**signed, "X-GitHub-Event": "push"}
    result = verify("github", body=GITHUB_BODY, headers=headers, secret=GITHUB_SECRET)
    assert (result.webhook_id, result.event_type) == ("72d3162e", "push")
    broken = {**headers, "X-Hub-Signature-256": "sha256=" + "00" * 32}
    with pytest.raises(NoMatchingSignatureError) as info:
        verify("github", body=GITHUB_BODY, headers=broken, secret=GITHUB_SECRET)
    assert info.value.header == "X-Hub-Signature-256"
    assert info.value.received == ("00" * 32,)
    legacy = {"X-Hub-Signature": signed["X-Hub-Signature"]}
    assert verify("github", body=GITHUB_BODY, headers=legacy, secret=GITHUB_SECRET)


def test_timestamp_too_old_and_too_new_carry_the_skew() -> None:
    """Outside the window, too old and too new are different errors with skew, now and tolerance."""
    headers = sign("slack", body=b"a=1", secret="s", timestamp=1_000_000)
    with pytest.raises(TimestampTooOldError) as old:
        verify("slack", body=b"a=1", headers=headers, secret="s", now=1_000_301)
    assert (old.value.skew, old.value.tolerance, old.value.timestamp) == (301.0, 300.0, 1_000_000)
    with pytest.raises(TimestampTooNewError) as new:
        verify("slack", body=b"a=1", headers=headers, secret="s", now=999_000)
    assert new.value.skew == -1000.0
    assert isinstance(new.value, TimestampOutsideToleranceError)
    assert "too new" in str(new.value)
    assert verify("slack", body=b"a=1", headers=headers, secret="s", now=1_000_300)
    assert verify("slack", body=b"a=1", headers=headers, secret="s", now=1, tolerance=math.inf)
    with pytest.raises(TimestampTooOldError):
        verify("slack", body=b"a=1", headers=headers, secret="s", now=1_000_011, tolerance=10)


def test_clock_defaults_to_time_time() -> None:
    """Without now, a fresh signature verifies and an ancient one is too old."""
    fresh = sign("stripe", body=b"{}", secret="whsec_x")
    assert verify("stripe", body=b"{}", headers=fresh, secret="whsec_x").timestamp is not None
    stale = sign("stripe", body=b"{}", secret="whsec_x", timestamp=1)
    with pytest.raises(TimestampTooOldError):
        verify("stripe", body=b"{}", headers=stale, secret="whsec_x")


def test_default_tolerances_follow_the_providers() -> None:
    """Per-scheme defaults: 300 s (5-minute schemes), Linear 60, Twitch 600, none without time."""
    assert SCHEMES["standard-webhooks"] == SCHEMES["svix"] == SCHEMES["slack"] == 300
    assert SCHEMES["hubspot"] == SCHEMES["zoom"] == SCHEMES["stripe"] == 300
    assert (SCHEMES["linear"], SCHEMES["twitch"], SCHEMES["paddle"]) == (60, 600, 5)
    assert SCHEMES["github"] is None
    assert SCHEMES["shopify"] is None


@pytest.mark.parametrize(
    ("tolerance", "error"),
    [(-1, ValueError), (math.nan, ValueError), ("300", TypeError), (True, TypeError)],
)
def test_bad_tolerance_is_a_configuration_error(tolerance: Any, error: type[Exception]) -> None:
    """A negative, NaN or non-numeric tolerance raises ValueError/TypeError naming it."""
    with pytest.raises(error, match="tolerance"):
        verify("stripe", body=b"", headers={}, secret="s", tolerance=tolerance)


def test_tolerance_for_a_scheme_without_timestamp_is_refused() -> None:
    """Asking for a replay window on a scheme that signs no time is a ValueError."""
    with pytest.raises(ValueError, match="signs no timestamp"):
        verify("github", body=b"", headers={}, secret="s", tolerance=60)


def test_bad_now_and_method_types() -> None:
    """now must be a number and method a str."""
    with pytest.raises(TypeError, match="now"):
        verify("github", body=b"", headers={}, secret="s", now="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="method"):
        verify("github", body=b"", headers={}, secret="s", method=None)  # type: ignore[arg-type]


def test_rotation_tries_every_secret_and_every_signature() -> None:
    """With secrets [old, new] and a header carrying two signatures, the result names the match."""
    secrets = ["whsec_" + base64.b64encode(k).decode() for k in (b"old-key", b"new-key")]
    signed = sign("standard-webhooks", body=b"{}", secret=secrets[::-1], timestamp=10)
    assert signed["webhook-signature"].count("v1,") == 2
    result = verify("standard-webhooks", body=b"{}", headers=signed, secret=secrets, now=10)
    assert result.secret_index == 0
    only_new = sign("standard-webhooks", body=b"{}", secret=secrets[1], timestamp=10)
    assert (
        verify(
            "standard-webhooks", body=b"{}", headers=only_new, secret=secrets, now=10
        ).secret_index
        == 1
    )
    with pytest.raises(NoMatchingSignatureError) as info:
        verify("standard-webhooks", body=b"{}", headers=only_new, secret=secrets[:1], now=10)
    assert info.value.secrets_tried == 1
    assert info.value.webhook_id == only_new["webhook-id"]
    assert info.value.timestamp == 10


@pytest.mark.parametrize(
    ("scheme", "secret", "reason"),
    [
        ("standard-webhooks", "whsec_not base64!", "base64"),
        ("standard-webhooks", "whsec_", "base64"),
        ("svix", "whsec_abc=d", "base64"),
        ("stripe", " whsec_abc", "whitespace"),
        ("stripe", "whsec_abc\n", "whitespace"),
        ("stripe", "", "empty"),
        ("stripe", b"", "empty"),
        ("stripe", [], "empty"),
        ("adyen", "xyz", "hex"),
        ("adyen", "0 1", "hex"),
        ("discord", "abcd", "32 bytes"),
        ("discord", b"short", "32 bytes"),
        ("sendgrid", "not base64", "base64"),
    ],
)
def test_secrets_are_parsed_strictly(scheme: str, secret: Any, reason: str) -> None:
    """Junk in a secret raises InvalidSecretError with the reason, never a different key."""
    with pytest.raises(InvalidSecretError, match=reason) as info:
        verify(scheme, body=b"", headers={}, secret=secret)
    assert "whsec_abc" not in str(info.value)


def test_whsec_secrets_accept_missing_padding_and_no_prefix() -> None:
    """A whsec_ secret without '=' padding, or without the prefix, decodes to the same key."""
    _, vector = _vector("sw-libs-sign")
    kwargs = {"body": _body(vector), "headers": vector["headers"], "now": vector["timestamp"]}
    assert verify("standard-webhooks", secret=vector["secret"].removeprefix("whsec_"), **kwargs)
    padded = "whsec_" + base64.b64encode(b"sixteen byte key").decode()
    assert padded.endswith("=")
    signed = sign("svix", body=b"x", secret=padded, timestamp=1)
    assert verify("svix", body=b"x", headers=signed, secret=padded.rstrip("="), now=1)


def test_bytes_secrets_are_used_as_the_key() -> None:
    """A bytes secret is the HMAC key itself (no whsec_ decoding)."""
    signed = sign("standard-webhooks", body=b"x", secret=b"raw key", timestamp=1)
    assert verify("standard-webhooks", body=b"x", headers=signed, secret=b"raw key", now=1)


def test_secret_of_wrong_type() -> None:
    """A secret that is not str/bytes or a sequence of them raises TypeError."""
    with pytest.raises(TypeError):
        verify("stripe", body=b"", headers={}, secret=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        verify("stripe", body=b"", headers={}, secret=[5])  # type: ignore[list-item]


def test_unknown_scheme_and_options() -> None:
    """Unknown scheme names and options are configuration errors naming them."""
    with pytest.raises(ValueError, match="scheme must be one of"):
        verify("gitlab", body=b"", headers={}, secret="s")
    with pytest.raises(TypeError, match="scheme must be"):
        verify(5, body=b"", headers={}, secret="s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown option"):
        verify("github", body=b"", headers={}, secret="s", color="red")
    with pytest.raises(TypeError, match="unknown option"):
        verify("generic", body=b"", headers={}, secret="s", header="X-S", color="red")
    with pytest.raises(TypeError, match="unknown option"):
        verify(HmacScheme(header="X-S"), body=b"", headers={}, secret="s", color="red")


def test_url_is_required_where_the_provider_signs_it() -> None:
    """Twilio, Square and HubSpot v3 need the URL; without it a ValueError names url."""
    for scheme in ("twilio", "square"):
        with pytest.raises(ValueError, match="url is required"):
            verify(scheme, body=b"", headers={}, secret="s")
        with pytest.raises(ValueError, match="url is required"):
            sign(scheme, body=b"", secret="s")


def test_asymmetric_schemes_cannot_sign() -> None:
    """sign() refuses SendGrid and Discord: they need the provider's private key."""
    for scheme in ("sendgrid", "discord"):
        with pytest.raises(ValueError, match="private key"):
            sign(scheme, body=b"", secret="00" * 32)


def test_sign_argument_checks() -> None:
    """sign() validates timestamp and webhook_id types."""
    with pytest.raises(TypeError, match="timestamp"):
        sign("stripe", body=b"", secret="s", timestamp=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="timestamp"):
        sign("stripe", body=b"", secret="s", timestamp=-1)
    with pytest.raises(TypeError, match="webhook_id"):
        sign("stripe", body=b"", secret="s", webhook_id=5)  # type: ignore[arg-type]


def test_sign_makes_ids_where_the_scheme_needs_them() -> None:
    """Without webhook_id, Standard Webhooks, Twitch and Mailgun get a fresh random id."""
    first = sign("standard-webhooks", body=b"", secret="whsec_c2VjcmV0", timestamp=1)
    second = sign("standard-webhooks", body=b"", secret="whsec_c2VjcmV0", timestamp=1)
    assert first["webhook-id"].startswith("msg_")
    assert first["webhook-id"] != second["webhook-id"]
    twitch = sign("twitch", body=b"", secret="s", timestamp=1)
    assert len(twitch["Twitch-Eventsub-Message-Id"]) == 36
    assert twitch["Twitch-Eventsub-Message-Timestamp"] == "1970-01-01T00:00:01Z"
    assert len(sign("mailgun", body=b"", secret="s", timestamp=1)["token"]) == 50


def test_stripe_header_rules() -> None:
    """Stripe: v0 is ignored, two t= entries and a missing t= are malformed, junk v1 is skipped."""
    body = b"{}"
    good = sign("stripe", body=body, secret="whsec_x", timestamp=100)["Stripe-Signature"]
    assert verify(
        "stripe",
        body=body,
        headers={"Stripe-Signature": good + ",v0=abc,junk"},
        secret="whsec_x",
        now=100,
    )
    assert verify(
        "stripe",
        body=body,
        headers={"Stripe-Signature": good + ",v1=zz"},
        secret="whsec_x",
        now=100,
    )
    for value, reason in [
        ("t=1,t=2,v1=00", "two t="),
        ("v1=00", "no t="),
        ("t=1,v0=00", "no decodable v1"),
        ("t=abc,v1=00", "unix timestamp"),
        ("t=-1,v1=00", "unix timestamp"),
        ("t=" + "9" * 17 + ",v1=00", "unix timestamp"),
    ]:
        with pytest.raises(MalformedHeaderError, match=reason):
            verify(
                "stripe",
                body=body,
                headers={"Stripe-Signature": value},
                secret="s",
                tolerance=math.inf,
            )
    with pytest.raises(MissingHeaderError):
        verify("stripe", body=body, headers={}, secret="s")
    assert verify(
        "stripe",
        body=body,
        headers={"Stripe-Signature": good.encode()},  # type: ignore[dict-item]
        secret="whsec_x",
        now=100,
    )
    bytes_header = {b"stripe-signature": good.encode()}
    assert verify("stripe", body=body, headers=bytes_header, secret="whsec_x", now=100)  # type: ignore[arg-type]


def test_large_bodies_are_signed_without_copying_and_still_match() -> None:
    """A 64 KiB body takes the streaming path and matches the one-shot HMAC."""
    body = bytes(range(256)) * 256
    signed = sign("stripe", body=body, secret="k", timestamp=5)
    expected = hmac.new(b"k", b"5." + body, hashlib.sha256).hexdigest()
    assert signed["Stripe-Signature"] == f"t=5,v1={expected}"
    assert verify("stripe", body=body, headers=signed, secret="k", now=5)


def test_standard_webhooks_headers_and_versions() -> None:
    """Only v1 entries count; a header with none is malformed; svix falls back to webhook-*."""
    secret = "whsec_c2VjcmV0"
    signed = sign("standard-webhooks", body=b"x", secret=secret, timestamp=1, webhook_id="m1")
    headers = {**signed, "webhook-signature": "v1a,abc " + signed["webhook-signature"]}
    assert verify("standard-webhooks", body=b"x", headers=headers, secret=secret, now=1)
    bad = {**signed, "webhook-signature": "v2,abc v1a,xyz"}
    with pytest.raises(MalformedHeaderError):
        verify("standard-webhooks", body=b"x", headers=bad, secret=secret, now=1)
    empty = {**signed, "webhook-id": "  "}
    with pytest.raises(MalformedHeaderError, match="empty"):
        verify("standard-webhooks", body=b"x", headers=empty, secret=secret, now=1)
    result = verify("svix", body=b"x", headers=signed, secret=secret, now=1)
    assert result.webhook_id == "m1"
    svix = sign("svix", body=b"x", secret=secret, timestamp=1, webhook_id="m2")
    assert set(svix) == {"svix-id", "svix-timestamp", "svix-signature"}
    with pytest.raises(MissingHeaderError) as info:
        verify("svix", body=b"x", headers={}, secret=secret)
    assert info.value.header == "webhook-id"


def test_pagerduty_rotation_header() -> None:
    """PagerDuty's comma-separated v1 entries: any one matching is enough."""
    signed = sign("pagerduty", body=b"{}", secret=["a", "b"], webhook_id="w1")
    assert signed["X-PagerDuty-Signature"].count("v1=") == 2
    result = verify("pagerduty", body=b"{}", headers=signed, secret="b")
    assert result.webhook_id == "w1"
    with pytest.raises(MalformedHeaderError):
        verify("pagerduty", body=b"{}", headers={"X-PagerDuty-Signature": "v2=00"}, secret="b")


def test_shopify_event_id_and_topic() -> None:
    """Shopify reports X-Shopify-Webhook-Id (or X-Shopify-Event-Id) and the topic."""
    signed = sign("shopify", body=b"{}", secret="k")
    headers = {**signed, "X-Shopify-Event-Id": "e1", "X-Shopify-Topic": "orders/create"}
    result = verify("shopify", body=b"{}", headers=headers, secret="k")
    assert (result.webhook_id, result.event_type) == ("e1", "orders/create")
    padded = {**signed, "X-Shopify-Hmac-Sha256": signed["X-Shopify-Hmac-Sha256"] + "\n"}
    assert verify("shopify", body=b"{}", headers=padded, secret="k")


def test_paddle_header_rules() -> None:
    """Paddle: ts= once, h1 entries, a 5 s default window."""
    signed = sign("paddle", body=b"{}", secret="pdl_k", timestamp=100)
    assert verify("paddle", body=b"{}", headers=signed, secret="pdl_k", now=105)
    extended = {"Paddle-Signature": signed["Paddle-Signature"] + ";h2=future"}
    assert verify("paddle", body=b"{}", headers=extended, secret="pdl_k", now=100)
    with pytest.raises(TimestampTooOldError):
        verify("paddle", body=b"{}", headers=signed, secret="pdl_k", now=106)
    for value, reason in [("ts=1;ts=2;h1=00", "two ts="), ("h1=00", "no ts=")]:
        with pytest.raises(MalformedHeaderError, match=reason):
            verify("paddle", body=b"{}", headers={"Paddle-Signature": value}, secret="k")


def test_mailgun_form_fields_and_errors() -> None:
    """Mailgun's legacy form fields verify; missing or non-string fields are named."""
    fields = sign("mailgun", body=b"", secret="key-1", timestamp=1403645220, webhook_id="tok")
    form = urlencode({**fields, "event": "delivered"}).encode()
    result = verify("mailgun", body=form, headers={}, secret="key-1", now=1403645220)
    assert (result.webhook_id, result.timestamp) == ("tok", 1403645220)
    with pytest.raises(MissingHeaderError, match="body: signature is missing"):
        verify("mailgun", body=b"{}", headers={}, secret="k")
    with pytest.raises(MalformedHeaderError, match="not an object"):
        verify("mailgun", body=b'{"signature": 1}', headers={}, secret="k")
    with pytest.raises(MissingHeaderError, match="token"):
        verify("mailgun", body=b'{"signature": {"timestamp": "1"}}', headers={}, secret="k")
    with pytest.raises(MalformedHeaderError, match="non-empty string"):
        verify("mailgun", body=b'{"signature": {"timestamp": 1}}', headers={}, secret="k")
    with pytest.raises(MalformedHeaderError, match="not JSON"):
        verify("mailgun", body=b"{nope", headers={}, secret="k")
    with pytest.raises(MalformedHeaderError, match="not a JSON object"):
        verify("adyen", body=b"[1]", headers={}, secret="00")
    assert verify("mailgun", body=form, headers={}, secret="key-1", now=2e9, tolerance=math.inf)
    with pytest.raises(TimestampTooOldError):
        verify("mailgun", body=form, headers={}, secret="key-1", now=2e9, tolerance=300)


def test_hubspot_versions() -> None:
    """HubSpot v1 and v2 (plain SHA-256) and v3 (HMAC, ms timestamp, decoded URI) all verify."""
    url = "https://example.com/hook?a=1&b=%3A%2F"
    for version in ("v1", "v2", "v3"):
        signed = sign("hubspot", body=b"{}", secret="cs", timestamp=50, url=url, version=version)
        result = verify("hubspot", body=b"{}", headers=signed, secret="cs", now=50, url=url)
        assert result.timestamp == (50 if version == "v3" else None)
    assert "X-HubSpot-Signature-v3" in sign("hubspot", body=b"", secret="cs", url=url)
    assert "X-HubSpot-Signature" in sign("hubspot", body=b"", secret="cs")
    v3 = sign("hubspot", body=b"{}", secret="cs", timestamp=50, url=url)
    decoded = verify(
        "hubspot",
        body=b"{}",
        headers=v3,
        secret="cs",
        now=50,
        url="https://example.com/hook?a=1&b=:/",
    )
    assert decoded.timestamp == 50
    with pytest.raises(MalformedHeaderError, match="v1 or v2"):
        verify(
            "hubspot",
            body=b"",
            headers={"X-HubSpot-Signature": "00", "X-HubSpot-Signature-Version": "v9"},
            secret="cs",
        )
    with pytest.raises(ValueError, match="version"):
        sign("hubspot", body=b"", secret="cs", version="v9")
    unversioned = {
        "X-HubSpot-Signature": sign("hubspot", body=b"", secret="cs")["X-HubSpot-Signature"]
    }
    assert verify("hubspot", body=b"", headers=unversioned, secret="cs")


def test_square_legacy_sha1_header() -> None:
    """Square's legacy x-square-signature (HMAC-SHA1 of URL + body) is used without SHA-256."""
    url = "https://example.com/square"
    digest = hmac.new(b"k", url.encode() + b"{}", hashlib.sha1).digest()
    headers = {"X-Square-Signature": base64.b64encode(digest).decode()}
    assert verify("square", body=b"{}", headers=headers, secret="k", url=url)


def test_twilio_get_requests_and_odd_urls() -> None:
    """GET requests sign the URL alone; URLs with credentials, odd ports or unknown schemes work."""
    for url in (
        "https://user:pw@example.com/twiml?x=1",
        "ftp://example.com/x",
        "https://example.com:8443/x",
        "https://[::1/x",
    ):
        signed = sign("twilio", body=b"a=1", secret="tok", url=url, method="GET", webhook_id="i1")
        result = verify("twilio", body=b"a=1", headers=signed, secret="tok", url=url, method="GET")
        assert result.webhook_id == "i1"


def test_linear_timestamp_from_header_or_body() -> None:
    """Linear's timestamp comes from Linear-Timestamp or the body's webhookTimestamp (ms)."""
    body = json.dumps({"webhookTimestamp": 1_700_000_000_000}).encode()
    signed = sign("linear", body=body, secret="s", timestamp=1_700_000_000)
    only_sig = {"Linear-Signature": signed["Linear-Signature"]}
    result = verify("linear", body=body, headers=only_sig, secret="s", now=1_700_000_059)
    assert result.timestamp == 1_700_000_000
    with pytest.raises(TimestampTooOldError):
        verify("linear", body=body, headers=only_sig, secret="s", now=1_700_000_061)
    with pytest.raises(NoMatchingSignatureError):
        verify("linear", body=b"{}", headers=only_sig, secret="s", tolerance=math.inf)
    with pytest.raises(MissingHeaderError, match="Linear-Timestamp"):
        verify("linear", body=b"{}", headers=only_sig, secret="s")
    with pytest.raises(MalformedHeaderError, match="webhookTimestamp"):
        verify("linear", body=b'{"webhookTimestamp": "x"}', headers=only_sig, secret="s")


def test_twitch_timestamps() -> None:
    """Twitch timestamps are RFC 3339 with offsets and fractions; anything else is malformed."""
    signed = sign("twitch", body=b"{}", secret="s", timestamp=1_573_899_072, webhook_id="m")
    moment = "2019-11-16T11:11:12.5+01:00"
    digest = hmac.new(b"s", b"m" + moment.encode() + b"{}", hashlib.sha256).hexdigest()
    headers = {
        **signed,
        "Twitch-Eventsub-Message-Timestamp": moment,
        "Twitch-Eventsub-Message-Signature": "sha256=" + digest,
    }
    result = verify("twitch", body=b"{}", headers=headers, secret="s", now=1_573_899_072)
    assert (result.timestamp, result.event_type) == (1_573_899_072, "notification")
    for bad in (
        "2019-11-16",
        "2019-11-16T11:11:12.+01:00",
        "2019-11-16T11:11:12Q",
        "2019-11-16X11:11:12Z",
        "2019-02-30T11:11:12Z",
        "2019-11-16T11:11:12-0100",
        "２０１９-11-16T11:11:12Z",
    ):
        with pytest.raises(MalformedHeaderError, match="RFC 3339"):
            verify(
                "twitch",
                body=b"{}",
                headers={**headers, "Twitch-Eventsub-Message-Timestamp": bad},
                secret="s",
            )
    with pytest.raises(MalformedHeaderError, match="sha256="):
        verify(
            "twitch",
            body=b"{}",
            headers={**headers, "Twitch-Eventsub-Message-Signature": digest},
            secret="s",
            now=1_573_899_072,
        )


def test_versioned_schemes_need_their_prefix() -> None:
    """Slack and Zoom signatures must start with v0=."""
    signed = sign("zoom", body=b"{}", secret="s", timestamp=1)
    bad = {**signed, "x-zm-signature": signed["x-zm-signature"][3:]}
    with pytest.raises(MalformedHeaderError, match="v0="):
        verify("zoom", body=b"{}", headers=bad, secret="s", now=1)


def test_adyen_notifications() -> None:
    """Every Adyen notification item must verify; malformed items are named."""
    key = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
    _, vector = _vector("adyen-notification-item")
    item = dict(vector["notification_item"])
    item["additionalData"] = {"hmacSignature": vector["expected"]}
    good = {"NotificationRequestItem": item}
    body = json.dumps({"notificationItems": [good, good]}).encode()
    result = verify("adyen", body=body, headers={}, secret=key)
    assert (result.secret_index, result.event_type) == (0, "AUTHORISATION")
    forged = {"NotificationRequestItem": {**item, "success": "false"}}
    with pytest.raises(NoMatchingSignatureError, match=r"notificationItems\[1\]"):
        verify(
            "adyen",
            body=json.dumps({"notificationItems": [good, forged]}).encode(),
            headers={},
            secret=key,
        )
    cases = [
        ({}, MissingHeaderError, "HmacSignature"),
        ({"notificationItems": []}, MalformedHeaderError, "non-empty list"),
        ({"notificationItems": [1]}, MalformedHeaderError, "not an object"),
        (
            {"notificationItems": [{"NotificationRequestItem": {}}]},
            MissingHeaderError,
            "hmacSignature",
        ),
        (
            {"notificationItems": [{"NotificationRequestItem": {**item, "amount": 5}}]},
            MalformedHeaderError,
            "amount",
        ),
        (
            {"notificationItems": [{"NotificationRequestItem": {**item, "success": True}}]},
            MalformedHeaderError,
            "success",
        ),
    ]
    for payload, error, text in cases:
        with pytest.raises(error, match=text):
            verify("adyen", body=json.dumps(payload).encode(), headers={}, secret=key)


def test_discord_header_rules() -> None:
    """Discord signatures must be 128 hex digits; a bytes key of 32 bytes is accepted."""
    _, vector = _vector("discord-constructed")
    key = bytes.fromhex(vector["public_key_hex"])
    headers = vector["headers"]
    result = verify("discord", body=_body(vector), headers=headers, secret=[key], now=1_700_000_000)
    assert result.timestamp == 1_700_000_000
    short = {**headers, "X-Signature-Ed25519": "00" * 63}
    with pytest.raises(MalformedHeaderError, match="128 hex"):
        verify("discord", body=_body(vector), headers=short, secret=key)
    with pytest.raises(TimestampTooOldError):
        verify(
            "discord",
            body=_body(vector),
            headers=headers,
            secret=key,
            now=1_700_000_400,
            tolerance=300,
        )


def test_sendgrid_rejects_keys_that_are_not_p256() -> None:
    """A base64 secret that is not a P-256 key is InvalidSecretError; bad base64 is malformed."""
    scheme, vector = _vector("sendgrid-python-test")
    not_a_key = base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
    with pytest.raises(InvalidSecretError):
        _call(scheme, vector, secret=not_a_key)
    bad = {**vector["headers"], "X-Twilio-Email-Event-Webhook-Signature": "%%%"}
    with pytest.raises(MalformedHeaderError, match="base64"):
        _call(scheme, vector, headers=bad)


def test_generic_scheme_configuration_is_validated() -> None:
    """HmacScheme refuses bad header names, algorithms, encodings and templates at construction."""
    bad: list[dict[str, Any]] = [
        {"header": "bad header"},
        {"header": "X-S", "algorithm": "md5"},
        {"header": "X-S", "encoding": "base32"},
        {"header": "X-S", "prefix": 5},
        {"header": "X-S", "timestamp_header": "x y"},
        {"header": "X-S", "timestamp_unit": "us"},
        {"header": "X-S", "secret_encoding": "rot13"},
        {"header": "X-S", "separator": ""},
        {"header": "X-S", "tolerance": 30},
        {"header": "X-S", "tolerance": -1, "timestamp_header": "X-T"},
        {"header": "X-S", "name": ""},
        {"header": "X-S", "template": 5},
        {"header": "X-S", "template": "{body"},
        {"header": "X-S", "template": "{nonce}{body}"},
        {"header": "X-S", "template": "{body!r}"},
        {"header": "X-S", "template": "{body}{body}"},
        {"header": "X-S", "template": "{timestamp}"},
        {"header": "X-S", "template": "{timestamp}{body}"},
        {"header": "X-S", "template": "{id}{body}"},
        {"header": "X-S", "template": "no body here"},
    ]
    for kwargs in bad:
        with pytest.raises((ValueError, TypeError)):
            HmacScheme(**kwargs)


def test_generic_scheme_as_options_with_separator_and_secret_encodings() -> None:
    """'generic' with options, several signatures per header, base64/hex secrets and ms times."""
    options = {
        "header": "X-Sig",
        "separator": " ",
        "secret_encoding": "base64",
        "timestamp_header": "X-Ts",
        "timestamp_unit": "ms",
        "template": "{timestamp}.{body}",
    }
    secret = base64.b64encode(b"k1").decode()
    signed = sign("generic", body=b"x", secret=[secret, secret], timestamp=7, **options)
    assert signed["X-Ts"] == "7000"
    assert len(signed["X-Sig"].split(" ")) == 2
    result = verify("generic", body=b"x", headers=signed, secret=secret, now=7, **options)
    assert result.timestamp == 7
    hex_scheme = HmacScheme(header="X-Sig", secret_encoding="hex", id_header="X-Id")
    signed = sign(hex_scheme, body=b"x", secret="00ff")
    assert verify(hex_scheme, body=b"x", headers=signed, secret="00ff").webhook_id == signed["X-Id"]
    with_id = HmacScheme(header="X-Sig", id_header="X-Id", template="{id}{body}")
    with pytest.raises(MissingHeaderError, match="X-Id"):
        verify(with_id, body=b"x", headers={"X-Sig": "00"}, secret="s")
    with pytest.raises(MalformedHeaderError):
        verify(
            HmacScheme(header="X-Sig", prefix="v1="), body=b"x", headers={"X-Sig": "00"}, secret="s"
        )


def test_errors_are_value_errors_with_context() -> None:
    """Every error is a ValueError subclass carrying its context as attributes."""
    error = MalformedHeaderError("X-A", "is odd", scheme="github")
    assert isinstance(error, WebhookVerificationError)
    assert isinstance(error, ValueError)
    assert (error.header, error.reason, error.scheme) == ("X-A", "is odd", "github")
    assert str(error) == "github: X-A is malformed: is odd"
    assert "secret #2 is invalid" in str(InvalidSecretError("x", secret_index=2, scheme="s"))


def test_result_is_frozen() -> None:
    """VerifiedWebhook is an immutable value."""
    result = VerifiedWebhook("github", None, "d", 0)
    with pytest.raises(AttributeError):
        result.scheme = "x"  # type: ignore[misc]
    assert result == VerifiedWebhook("github", None, "d", 0, None)


def test_secret_buffers_and_odd_base64_lengths() -> None:
    """Buffer secrets work (uncached); base64 of an impossible length is refused."""
    signed = sign("github", body=b"x", secret=b"key")
    for secret in ([bytearray(b"key")], memoryview(b"key"), bytearray(b"key")):
        assert verify("github", body=b"x", headers=signed, secret=secret).secret_index == 0  # type: ignore[arg-type]
    with pytest.raises(InvalidSecretError, match="base64"):
        verify("standard-webhooks", body=b"", headers={}, secret="whsec_A")


def test_conflicting_spellings_in_a_dict_are_combined() -> None:
    """Provider spelling and lower-case name with different values in one dict: malformed."""
    signed = sign("github", body=GITHUB_BODY, secret=GITHUB_SECRET, webhook_id="d")
    headers = {**signed, "X-GitHub-Event": "push", "x-hub-signature-256": "sha256=00"}
    with pytest.raises(MalformedHeaderError):
        verify("github", body=GITHUB_BODY, headers=headers, secret=GITHUB_SECRET)
    same = {
        **signed,
        "X-GitHub-Event": "push",
        "x-hub-signature-256": signed["X-Hub-Signature-256"],
    }
    assert verify("github", body=GITHUB_BODY, headers=same, secret=GITHUB_SECRET).webhook_id == "d"


def test_hubspot_version_can_be_pinned() -> None:
    """version= pins HubSpot to one signature version: stripping the v3 header is no downgrade."""
    url = "https://example.com/hook"
    v1 = sign("hubspot", body=b"{}", secret="cs", version="v1")
    with pytest.raises(MissingHeaderError, match="X-HubSpot-Signature-v3"):
        verify("hubspot", body=b"{}", headers=v1, secret="cs", url=url, version="v3")
    with pytest.raises(MalformedHeaderError, match="not v2 as required"):
        verify("hubspot", body=b"{}", headers=v1, secret="cs", url=url, version="v2")
    assert verify("hubspot", body=b"{}", headers=v1, secret="cs", version="v1")
    both = {**v1, **sign("hubspot", body=b"{}", secret="cs", url=url, timestamp=9)}
    assert verify("hubspot", body=b"{}", headers=both, secret="cs", version="v1").timestamp is None
    with pytest.raises(ValueError, match="version"):
        verify("hubspot", body=b"{}", headers=v1, secret="cs", version="v4")


# --- Fast paths (plain dict, one str secret) agree with the general path -----------------

FAST_NOW = 1_700_000_000
FAST_SECRETS = {
    "github": "gh-fast-secret",
    "stripe": "whsec_fast_stripe",
    "standard-webhooks": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "svix": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


def _outcome(scheme: str, body: bytes, headers: Any, secret: Any, now: Any) -> object:
    """What verify() does with a delivery: its result's fields, or the error's type and text."""
    try:
        result = verify(scheme, body=body, headers=headers, secret=secret, now=now)
    except (WebhookVerificationError, TypeError, ValueError) as exc:
        return (type(exc), str(exc))
    return (result.scheme, result.timestamp, result.webhook_id, result.secret_index, result)


def _general_outcome(scheme: str, body: bytes, headers: Any, secret: Any, now: Any) -> object:
    """The same call with the fast paths switched off."""
    saved = wh._FAST
    wh._FAST = {}
    try:
        return _outcome(scheme, body, headers, secret, now)
    finally:
        wh._FAST = saved


def _fast_delivery(scheme: str, body: bytes, timestamp: int) -> dict[str, str]:
    headers = sign(
        scheme, body=body, secret=FAST_SECRETS[scheme], timestamp=timestamp, webhook_id="evt-9"
    )
    if scheme == "github":
        headers["X-GitHub-Event"] = "push"
    return headers


def _swap(headers: dict[str, Any], name: str, new_name: str, value: Any = None) -> dict[str, Any]:
    """``headers`` with ``name`` renamed (and its value replaced when ``value`` is given)."""
    out = {k: v for k, v in headers.items() if k != name}
    out[new_name] = headers[name] if value is None else value
    return out


def _fast_cases() -> list[Any]:
    body = b'{"id": "evt_1", "data": {"object": {"amount": 2000}}}'
    cases: list[tuple[str, str, dict[str, Any], int, bytes]] = []
    for scheme in FAST_SECRETS:
        good = _fast_delivery(scheme, body, FAST_NOW)
        cases += [
            (scheme, "genuine", good, FAST_NOW, body),
            (
                scheme,
                "genuine, large body",
                _fast_delivery(scheme, body * 400, FAST_NOW),
                FAST_NOW,
                body * 400,
            ),
            (scheme, "old", good, FAST_NOW + 301, body),
            (scheme, "new", good, FAST_NOW - 301, body),
            (scheme, "tampered body", good, FAST_NOW, body + b" "),
            (scheme, "lower-case names", {k.lower(): v for k, v in good.items()}, FAST_NOW, body),
            (scheme, "upper-case names", {k.upper(): v for k, v in good.items()}, FAST_NOW, body),
            (scheme, "bytes values", {k: v.encode() for k, v in good.items()}, FAST_NOW, body),
        ]
        for name, value in good.items():
            cases += [
                (scheme, f"{name} missing", _swap(good, name, "X-Other"), FAST_NOW, body),
                (scheme, f"{name} padded", {**good, name: f"  {value} "}, FAST_NOW, body),
                (scheme, f"{name} empty", {**good, name: " "}, FAST_NOW, body),
                (scheme, f"{name} lower too", {**good, name.lower(): value}, FAST_NOW, body),
                (scheme, f"{name} conflict", {**good, name.lower(): value + "0"}, FAST_NOW, body),
                (
                    scheme,
                    f"{name} garbage",
                    {**good, name: value[:-3] + "!?\u00e9"},
                    FAST_NOW,
                    body,
                ),
            ]
    stripe = _fast_delivery("stripe", body, FAST_NOW)["Stripe-Signature"]
    ts, v1 = stripe.split(",")
    for variant in (
        f"{v1},{ts}",
        f"{ts}, {v1}",
        f"{ts},{v1},v0=00",
        f"{ts},v1=00,{v1}",
        f"{ts},{ts},{v1}",
        f"t=0{FAST_NOW},{v1}",
        f"t=+{FAST_NOW},{v1}",
        f"t={FAST_NOW}",
        f"{ts},v1=zz",
        f"{ts},v1={v1[3:-2]}",
    ):
        cases.append(("stripe", variant, {"Stripe-Signature": variant}, FAST_NOW, body))
    standard = _fast_delivery("standard-webhooks", body, FAST_NOW)
    signature = standard["webhook-signature"]
    for variant in (
        f"v2,{signature[3:]} {signature}",
        f"v1,{'A' * 43}= {signature}",
        f"v1,{'*' * 44} {signature}",
        f"v1,{signature[3:-4]} {signature}",
        f"v1,{'A' * 43}=",
        f"v1a,{signature[3:]}",
    ):
        headers = {**standard, "webhook-signature": variant}
        cases.append(("standard-webhooks", variant, headers, FAST_NOW, body))
    for ts_text in ("0", "00017", " 1700000000", "1e9", "\u0661\u0662", "9" * 17):
        headers = {**standard, "webhook-timestamp": ts_text}
        cases.append(("standard-webhooks", f"timestamp {ts_text!r}", headers, FAST_NOW, body))
    surrogate = sign(
        "standard-webhooks",
        body=body,
        secret=FAST_SECRETS["standard-webhooks"],
        timestamp=FAST_NOW,
        webhook_id="evt-\ud800",
    )
    cases.append(("standard-webhooks", "lone surrogate in the id", surrogate, FAST_NOW, body))
    svix = _fast_delivery("svix", body, FAST_NOW)
    as_webhook = {k.replace("svix-", "webhook-"): v for k, v in svix.items()}
    cases.append(("svix", "svix with webhook-* names", as_webhook, FAST_NOW, body))
    return [
        pytest.param(scheme, headers, now, body, id=f"{scheme}: {case}")
        for scheme, case, headers, now, body in cases
    ]


@pytest.mark.parametrize(("scheme", "headers", "now", "body"), _fast_cases())
def test_fast_paths_decide_as_the_general_path_does(
    scheme: str, headers: dict[str, Any], now: int, body: bytes
) -> None:
    """A plain-dict delivery gets the same result or the same error with or without fast paths."""
    secret = FAST_SECRETS[scheme]
    expected = _general_outcome(scheme, body, headers, secret, now)
    assert _outcome(scheme, body, headers, secret, now) == expected
    assert _outcome(scheme, body, headers, secret, float(now)) == expected


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(sorted(FAST_SECRETS)),
    body=st.binary(max_size=300),
    skew=st.integers(-400, 400),
    edits=st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["", " ", "0", ",", "=", "v1,", "t=", "A"])),
        max_size=3,
    ),
    spelling=st.sampled_from([str.lower, str.upper, str.title, str]),
)
def test_fast_paths_agree_on_mutated_deliveries(
    scheme: str, body: bytes, skew: int, edits: list[tuple[int, str]], spelling: Any
) -> None:
    """Random edits of a genuine delivery's header values: the fast path decides as the general."""
    headers: dict[str, Any] = {}
    for position, (name, value) in enumerate(_fast_delivery(scheme, body, FAST_NOW).items()):
        edited = value
        for where, text in edits:
            if where % 3 == position % 3:
                edited = edited[: where * 7] + text + edited[where * 7 :]
        headers[spelling(name)] = edited
    secret = FAST_SECRETS[scheme]
    now = FAST_NOW + skew
    expected = _general_outcome(scheme, body, headers, secret, now)
    assert _outcome(scheme, body, headers, secret, now) == expected


def test_fast_paths_leave_other_arguments_to_the_general_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rotation lists, a tolerance, bytes secrets and non-dict headers skip the fast path."""
    body = b"{}"
    good = _fast_delivery("stripe", body, FAST_NOW)
    calls = []
    fast_stripe = wh._FAST["stripe"]
    monkeypatch.setitem(wh._FAST, "stripe", lambda *a: calls.append(a) or fast_stripe(*a))
    secret = FAST_SECRETS["stripe"]
    for kwargs in (
        {"secret": [secret]},
        {"secret": secret, "tolerance": 300},
        {"secret": secret, "headers": list(good.items())},
        {"secret": secret.encode()},
        {"secret": secret, "now": True},
    ):
        arguments: dict[str, Any] = {"headers": good, "now": FAST_NOW, **kwargs}
        try:
            verify("stripe", body=body, **arguments)
        except TypeError:
            assert kwargs.get("now") is True
    assert calls == []
    assert verify("stripe", body=body, headers=good, secret=secret, now=FAST_NOW).timestamp
    assert len(calls) == 1


def test_not_a_number_clock_is_refused() -> None:
    """now=NaN would pass every window comparison: it is a ValueError, with or without fast path."""
    good = _fast_delivery("stripe", b"{}", FAST_NOW)
    for headers in (good, list(good.items())):
        with pytest.raises(ValueError, match="finite"):
            verify(
                "stripe", body=b"{}", headers=headers, secret=FAST_SECRETS["stripe"], now=math.nan
            )
    with pytest.raises(ValueError, match="finite"):
        verify("github", body=b"{}", headers={}, secret="s", now=math.inf)


def test_fast_key_cache_is_bounded_and_keeps_secret_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-secret key cache is emptied when full; a bad secret still raises its error."""
    monkeypatch.setattr(wh, "_KEY_CACHE_SIZE", 2)
    monkeypatch.setattr(wh, "_FAST_UTF8_KEYS", {})
    body = b"{}"
    for n in range(5):
        secret = f"gh-secret-{n}"
        headers = {
            **sign("github", body=body, secret=secret, webhook_id="d"),
            "X-GitHub-Event": "e",
        }
        assert verify("github", body=body, headers=headers, secret=secret).secret_index == 0
        assert len(wh._FAST_UTF8_KEYS) <= 2
    headers = {**sign("github", body=body, secret="x", webhook_id="d"), "X-GitHub-Event": "e"}
    with pytest.raises(InvalidSecretError):
        verify("github", body=body, headers=headers, secret=" x")
