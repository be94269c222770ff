# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Hot paths of interlock.webhook_handler: verifying GitHub, Stripe and Standard Webhooks.

Each path verifies one valid delivery of a JSON body of 1 KiB or 64 KiB, headers as a web
framework hands them over (the provider's headers plus the usual others, as a dict).

The floor is what the standard library alone needs for the same check: one
``hmac.new(secret, signed_bytes, sha256).digest()`` over the exact bytes the provider signed
(built once, before timing: for Stripe ``b"<t>." + body``, for Standard Webhooks
``b"<id>.<t>." + body``, for GitHub the body) and one ``hmac.compare_digest`` against the
expected digest, decoded from the header once before timing. It parses no header, reads no
clock and builds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from harness import (
    CONTACT_1KB,
    IAP,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    at_most,
    at_most_of,
    peer,
    with_version,
)

if TYPE_CHECKING:
    from collections.abc import Callable

STRIPE = with_version("stripe")
STANDARDWEBHOOKS = with_version("standardwebhooks")
SVIX = with_version("svix")

GITHUB_SECRET = "gh-webhook-secret-3f9a"  # noqa: S105 - a benchmark fixture
STRIPE_SECRET = "whsec_5f1d2c3b4a5968778695a4b3c2d1e0f1"  # noqa: S105
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # noqa: S105
SW_KEY = base64.b64decode(SW_SECRET.removeprefix("whsec_"))
MSG_ID = "msg_2Zq1cW8mQy6Dk1hT0bPZ7c4xJvE"

# What a framework passes along besides the provider's own headers.
COMMON_HEADERS = {
    "Host": "hooks.example.com",
    "User-Agent": "Provider-Hookshot/5.2",
    "Content-Type": "application/json",
    "Accept": "*/*",
    "Accept-Encoding": "gzip",
    "X-Forwarded-For": "192.0.2.10",
    "X-Forwarded-Proto": "https",
    "X-Request-Id": "0d3c2b1a-9e8f-4a7b-8c6d-5e4f3a2b1c0d",
}


def body_of(size: int) -> bytes:
    """A JSON body of exactly ``size`` bytes: contacts in a list, padded in a note field."""
    contact = json.dumps(CONTACT_1KB, separators=(",", ":"))
    items: list[str] = []
    while len(",".join([*items, contact])) + 64 < size:
        items.append(contact)
    prefix = '{"type":"contacts.updated","contacts":[' + ",".join(items) + '],"note":"'
    return (prefix + "x" * (size - len(prefix) - 2) + '"}').encode()


def _is_true(out: object) -> bool:
    return out is True


def _verified(out: object) -> bool:
    return getattr(out, "secret_index", None) == 0


def _none(out: object) -> bool:
    return out is None


# --------------------------------------------------------------------------------------
# GitHub: X-Hub-Signature-256 "sha256=<hex>" over the body
# --------------------------------------------------------------------------------------


def github(size: int) -> Callable[[], HotPath]:
    body = body_of(size)
    key = GITHUB_SECRET.encode()
    digest = hmac.new(key, body, hashlib.sha256).digest()
    headers = {
        **COMMON_HEADERS,
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + digest.hex(),
    }

    def floor() -> Call:
        def call() -> bool:
            return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), digest)

        return call

    def interlock() -> Call:
        from interlock.webhook_handler import verify

        return lambda: verify("github", body=body, headers=headers, secret=GITHUB_SECRET)

    def iap() -> Call:
        handler = peer("integration_automation_patterns.webhook_handler").WebhookHandler(
            secret=GITHUB_SECRET, tolerance_seconds=None
        )
        signature = headers["X-Hub-Signature-256"]
        return lambda: handler.parse(body, signature)

    def goals(result: PathResult) -> list[Verdict]:
        return [at_most(result, "interlock", 1.5 if size <= 1024 else 1.1)]

    def path() -> HotPath:
        return HotPath(
            name=f"webhook-github-{size // 1024}k",
            summary=f"verify a GitHub delivery, {size // 1024} KiB JSON body",
            contenders=(
                Contender(
                    "floor",
                    "floor",
                    "hmac.new(secret, body, sha256).digest() + compare_digest(pre-decoded)",
                    floor,
                    check=_is_true,
                ),
                Contender(
                    "interlock",
                    "interlock",
                    'verify("github", body=, headers=dict of 12, secret=str)',
                    interlock,
                    check=_verified,
                ),
                Contender(
                    "iap",
                    IAP,
                    "WebhookHandler.parse(body, header) (also json.loads the body)",
                    iap,
                    requires="integration_automation_patterns",
                    check=lambda out: getattr(out, "payload", None) is not None,
                ),
            ),
            goals=goals,
        )

    path.__name__ = path.__qualname__ = f"webhook_github_{size // 1024}k"
    return path


# --------------------------------------------------------------------------------------
# Stripe: Stripe-Signature "t=<ts>,v1=<hex>" over "<ts>.<body>"
# --------------------------------------------------------------------------------------


def stripe(size: int) -> Callable[[], HotPath]:
    body = body_of(size)
    key = STRIPE_SECRET.encode()
    timestamp = int(time.time())  # the peers read the wall clock: sign "now"
    signed_bytes = f"{timestamp}.".encode() + body
    digest = hmac.new(key, signed_bytes, hashlib.sha256).digest()
    header = f"t={timestamp},v1={digest.hex()}"
    headers = {**COMMON_HEADERS, "Stripe-Signature": header}

    def floor() -> Call:
        def call() -> bool:
            return hmac.compare_digest(hmac.new(key, signed_bytes, hashlib.sha256).digest(), digest)

        return call

    def interlock() -> Call:
        from interlock.webhook_handler import verify

        return lambda: verify("stripe", body=body, headers=headers, secret=STRIPE_SECRET)

    def stripe_python() -> Call:
        signature = peer("stripe").WebhookSignature

        def call() -> Any:
            return signature.verify_header(body, header, STRIPE_SECRET, tolerance=300)

        return call

    def iap() -> Call:
        handler = peer("integration_automation_patterns.webhook_handler").WebhookHandler(
            secret=STRIPE_SECRET, tolerance_seconds=300
        )
        return lambda: handler.parse(body, header)

    def goals(result: PathResult) -> list[Verdict]:
        return [at_most(result, "interlock", 1.5 if size <= 1024 else 1.1)]

    def path() -> HotPath:
        return HotPath(
            name=f"webhook-stripe-{size // 1024}k",
            summary=f"verify a Stripe delivery, {size // 1024} KiB JSON body, 300 s window",
            contenders=(
                Contender(
                    "floor",
                    "floor",
                    'hmac.new(secret, b"<t>." + body (pre-built), sha256).digest()'
                    " + compare_digest(pre-decoded)",
                    floor,
                    check=_is_true,
                ),
                Contender(
                    "interlock",
                    "interlock",
                    'verify("stripe", ...): header parsed, both-way 300 s window, time.time()',
                    interlock,
                    check=_verified,
                ),
                Contender(
                    "stripe",
                    STRIPE,
                    "WebhookSignature.verify_header(body, header, secret, tolerance=300)",
                    stripe_python,
                    requires="stripe",
                    check=_is_true,
                ),
                Contender(
                    "iap",
                    IAP,
                    "WebhookHandler(secret, 300).parse(body, header)",
                    iap,
                    requires="integration_automation_patterns",
                    check=lambda out: getattr(out, "payload", None) is not None,
                    note=(
                        f"{IAP} hashes the body alone, never '<t>.' + body as Stripe signs: "
                        "it cannot verify a real Stripe signature, so it is reported as an error."
                    ),
                ),
            ),
            goals=goals,
            notes=(
                (
                    "stripe-python's verify_header checks the timestamp only when tolerance= is "
                    "given (its default is None) and only for old deliveries; construct_event "
                    "passes 300 and parses the JSON. interlock checks both directions by default."
                ),
            ),
        )

    path.__name__ = path.__qualname__ = f"webhook_stripe_{size // 1024}k"
    return path


# --------------------------------------------------------------------------------------
# Standard Webhooks: webhook-id / webhook-timestamp / webhook-signature "v1,<base64>"
# --------------------------------------------------------------------------------------


def standard(size: int) -> Callable[[], HotPath]:
    body = body_of(size)
    timestamp = int(time.time())
    signed_bytes = f"{MSG_ID}.{timestamp}.".encode() + body
    digest = hmac.new(SW_KEY, signed_bytes, hashlib.sha256).digest()
    signature = "v1," + base64.b64encode(digest).decode()
    headers = {
        **COMMON_HEADERS,
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    svix_headers = {
        **COMMON_HEADERS,
        "svix-id": MSG_ID,
        "svix-timestamp": str(timestamp),
        "svix-signature": signature,
    }

    def floor() -> Call:
        def call() -> bool:
            return hmac.compare_digest(
                hmac.new(SW_KEY, signed_bytes, hashlib.sha256).digest(), digest
            )

        return call

    def interlock() -> Call:
        from interlock.webhook_handler import verify

        return lambda: verify("standard-webhooks", body=body, headers=headers, secret=SW_SECRET)

    def interlock_svix() -> Call:
        from interlock.webhook_handler import verify

        return lambda: verify("svix", body=body, headers=svix_headers, secret=SW_SECRET)

    def standardwebhooks() -> Call:
        webhook = peer("standardwebhooks.webhooks").Webhook(SW_SECRET)
        return lambda: webhook.verify(body, headers, json_parse=False)

    def svix() -> Call:
        webhook = peer("svix.webhooks").Webhook(SW_SECRET)
        return lambda: webhook.verify(body, svix_headers)

    def goals(result: PathResult) -> list[Verdict]:
        return [
            at_most_of(result, "interlock", "standardwebhooks", 0.5),
            at_most(result, "interlock", 1.5 if size <= 1024 else 1.1),
        ]

    def path() -> HotPath:
        return HotPath(
            name=f"webhook-standard-{size // 1024}k",
            summary=f"verify a Standard Webhooks delivery, {size // 1024} KiB JSON body",
            contenders=(
                Contender(
                    "floor",
                    "floor",
                    'hmac.new(key, b"<id>.<t>." + body (pre-built), sha256).digest()'
                    " + compare_digest(pre-decoded)",
                    floor,
                    check=_is_true,
                ),
                Contender(
                    "interlock",
                    "interlock",
                    'verify("standard-webhooks", ...): key parsed once (cached), 300 s window',
                    interlock,
                    check=_verified,
                ),
                Contender(
                    "interlock-svix",
                    "interlock (svix)",
                    'verify("svix", ...) with svix-* headers',
                    interlock_svix,
                    check=_verified,
                ),
                Contender(
                    "standardwebhooks",
                    STANDARDWEBHOOKS,
                    "Webhook(secret).verify(body, headers, json_parse=False), secret decoded once",
                    standardwebhooks,
                    requires="standardwebhooks",
                    check=_none,
                ),
                Contender(
                    "svix",
                    SVIX,
                    "svix.webhooks.Webhook(secret).verify(body, headers)",
                    svix,
                    requires="svix",
                    check=_none,
                ),
            ),
            goals=goals,
            notes=(
                (
                    "The peers decode the body to str and encode it again before hashing; "
                    "standardwebhooks is timed with json_parse=False (its default also parses "
                    "the JSON), so every contender does only the verification."
                ),
            ),
        )

    path.__name__ = path.__qualname__ = f"webhook_standard_{size // 1024}k"
    return path


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (
    github(1024),
    github(65536),
    stripe(1024),
    stripe(65536),
    standard(1024),
    standard(65536),
)
