# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock webhooks sign|verify`` commands: debug a failing integration.

``verify`` says what matched, or exactly why nothing did: which header is missing or
malformed, the clock skew against the tolerance, how many signatures and secrets were tried,
and the first 8 characters of each received and each computed signature (never more, so the
output is safe to paste into a ticket). ``sign`` prints the headers a provider would send.

Secrets: ``--secret`` may be repeated (rotation, tried in order); ``--secret env:NAME`` reads
an environment variable and ``--secret @PATH`` a file (without its trailing newline), so the
secret need not appear in the shell history or the process list.

Exit codes: 0 verified / signed, 1 verification failed, 2 bad arguments or configuration.
This is a consumer of :mod:`interlock.webhook_handler`; it only parses and prints.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from interlock.webhook_handler import (
    SCHEMES,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    NoMatchingSignatureError,
    TimestampOutsideToleranceError,
    WebhookVerificationError,
    sign,
    verify,
)

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser", "run"]

PREFIX = 8  # characters of a signature that may be printed


@dataclass(frozen=True)
class _Request:
    """What the command line was given, read and parsed once."""

    args: argparse.Namespace
    body: bytes
    secrets: list[str]
    headers: list[tuple[str, str]]
    options: dict[str, Any]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``webhooks`` (with ``sign`` and ``verify``) to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "webhooks",
        help="sign or verify a webhook delivery (debugging)",
        description=(
            "Verify a delivery saved to a file (or read from stdin) and print what matched "
            "or exactly why nothing did; or print the headers a provider would send."
        ),
    )
    actions = parser.add_subparsers(dest="webhooks_action", metavar="ACTION", required=True)
    for action, text in (
        ("verify", "verify a delivery: prints what matched or why not"),
        ("sign", "print the headers a provider would send with BODY"),
    ):
        sub = actions.add_parser(action, help=text, description=text)
        sub.add_argument("--scheme", required=True, choices=sorted(SCHEMES), metavar="SCHEME")
        sub.add_argument(
            "--secret",
            action="append",
            required=True,
            help="the secret (repeat for rotation); env:NAME or @PATH read it from elsewhere",
        )
        sub.add_argument(
            "--header",
            action="append",
            default=[],
            metavar="K:V",
            help="a received header (verify) or an option such as version:v2 (sign)",
        )
        sub.add_argument("--url", help="the full URL the provider called")
        sub.add_argument("--method", default="POST", help="the HTTP method (default POST)")
        sub.add_argument(
            "--now",
            type=float,
            help="unix seconds: the verifier's clock (verify) or the time to sign (sign)",
        )
        sub.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="K=V",
            help="a scheme option, e.g. version=v2 (hubspot) or header=X-Sig (generic)",
        )
        if action == "verify":
            sub.add_argument("--tolerance", type=float, help="replay window in seconds")
        else:
            sub.add_argument("--id", dest="webhook_id", help="the delivery id to sign")
        sub.add_argument("body", metavar="BODY_FILE|-", help="the raw body; - reads stdin")
    return parser


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``webhooks sign`` or ``webhooks verify``; return the exit code."""
    try:
        request = _Request(
            args,
            _read_body(args.body),
            [_read_secret(s) for s in args.secret],
            [_split(h, ":", "--header") for h in args.header],
            dict(_split(o, "=", "--option") for o in args.option),
        )
        if args.webhooks_action == "sign":
            return _sign(request, stdout)
        return _verify(request, stdout)
    except (ValueError, TypeError, OSError) as exc:  # configuration, unreadable files
        stderr.write(f"error: {exc}\n")
        return 2


def _split(text: str, sep: str, flag: str) -> tuple[str, str]:
    name, found, value = text.partition(sep)
    if not found or not name.strip():
        raise ValueError(f"{flag} must look like NAME{sep}VALUE, got {text!r}")
    return name.strip(), value.strip()


def _read_body(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def _read_secret(text: str) -> str:
    if text.startswith("env:"):
        value = os.environ.get(text[4:])
        if value is None:
            raise ValueError(f"--secret {text}: the environment variable is not set")
        return value
    if text.startswith("@"):
        return Path(text[1:]).read_text(encoding="utf-8").rstrip("\r\n")
    return text


def _sign(request: _Request, out: TextIO) -> int:
    args = request.args
    signed = sign(
        args.scheme,
        body=request.body,
        secret=request.secrets,
        timestamp=None if args.now is None else int(args.now),
        webhook_id=args.webhook_id,
        url=args.url,
        method=args.method,
        **request.options,
    )
    for name, value in signed.items():
        out.write(f"{name}: {value}\n")
    return 0


def _verify(request: _Request, out: TextIO) -> int:
    args = request.args
    now = time.time() if args.now is None else args.now
    try:
        result = verify(
            args.scheme,
            body=request.body,
            headers=request.headers,
            secret=request.secrets,
            now=now,
            tolerance=args.tolerance,
            url=args.url,
            method=args.method,
            **request.options,
        )
    except WebhookVerificationError as exc:
        out.write(f"NOT VERIFIED: {exc}\n")
        _explain(exc, request, now, out)
        return 1
    out.write(f"VERIFIED: {result.scheme} signature matched secret #{result.secret_index}")
    out.write(f" (of {len(request.secrets)} configured)\n")
    if result.timestamp is not None:
        out.write(f"  timestamp: {result.timestamp} (clock skew {now - result.timestamp:+g} s)\n")
    if result.webhook_id is not None:
        out.write(f"  webhook id: {result.webhook_id}\n")
    if result.event_type is not None:
        out.write(f"  event type: {result.event_type}\n")
    return 0


def _explain(exc: WebhookVerificationError, request: _Request, now: float, out: TextIO) -> None:
    if isinstance(exc, MissingHeaderError):
        names = ", ".join(name for name, _ in request.headers) or "(none)"
        out.write(f"  missing: {exc.header}\n  headers given: {names}\n")
    elif isinstance(exc, MalformedHeaderError):
        out.write(f"  header: {exc.header}\n  problem: {exc.reason}\n")
    elif isinstance(exc, TimestampOutsideToleranceError):
        direction = "in the past" if exc.skew > 0 else "in the future"
        out.write(
            f"  timestamp: {exc.timestamp:g}, now: {exc.now:g}\n"
            f"  clock skew: {exc.skew:+g} s ({direction}); tolerance: {exc.tolerance:g} s\n"
        )
    elif isinstance(exc, InvalidSecretError):
        out.write(f"  secret #{exc.secret_index}: {exc.reason}\n")
    else:  # NoMatchingSignatureError: the only other subclass
        assert isinstance(exc, NoMatchingSignatureError)  # noqa: S101 - narrows for mypy
        out.write(f"  header: {exc.header}\n")
        for text in exc.received:
            out.write(f"  received:            {text[:PREFIX]}...\n")
        for index, secret in enumerate(request.secrets):
            computed = _computed(exc, request, secret, now)
            shown = f"{computed[:PREFIX]}..." if computed else "(cannot be computed here)"
            out.write(f"  computed, secret #{index}: {shown}\n")
        if exc.timestamp is not None:
            out.write(f"  timestamp: {exc.timestamp} (clock skew {now - exc.timestamp:+g} s)\n")
        body = request.body
        digest = hashlib.sha256(body).hexdigest()[:PREFIX]
        out.write(f"  body: {len(body)} bytes, sha256 {digest}...")
        if body.endswith(b"\n"):
            out.write(" (ends with a newline: was it added when the body was saved?)")
        out.write("\n")


SIGN_NEVER = frozenset({"sendgrid", "discord"})


def _computed(
    exc: NoMatchingSignatureError, request: _Request, secret: str, now: float
) -> str | None:
    """The signature ``sign`` computes for the delivery's own timestamp and id, or None."""
    args, body = request.args, request.body
    if exc.header == "bodySHA256":
        return hashlib.sha256(body).hexdigest()
    if exc.header.startswith("body: notificationItems") or args.scheme in SIGN_NEVER:
        return None
    given = {name.lower(): value for name, value in request.headers}
    options = request.options
    if args.scheme == "twitch":  # signs the timestamp text as received, with nanoseconds
        content = given.get("twitch-eventsub-message-id", "") + given.get(
            "twitch-eventsub-message-timestamp", ""
        )
        return hmac.new(secret.encode(), content.encode() + body, "sha256").hexdigest()
    if args.scheme == "hubspot":
        ms = given.get("x-hubspot-request-timestamp", "000")
        if exc.header == "X-HubSpot-Signature-v3" and not ms.endswith("000"):
            return None  # sign() works in whole seconds; this timestamp has milliseconds
        if exc.header == "X-HubSpot-Signature":
            options = {**options, "version": given.get("x-hubspot-signature-version", "v1")}
    signed = sign(
        args.scheme,
        body=body,
        secret=secret,
        timestamp=exc.timestamp if exc.timestamp is not None else int(now),
        webhook_id=exc.webhook_id,
        url=args.url,
        method=args.method,
        **options,
    )
    wanted = exc.header.rsplit(".", 1)[-1].removeprefix("body: ").lower()
    value = next((v for k, v in signed.items() if k.lower() == wanted), "")
    tokens = value.replace(";", " ").replace(",", " ").replace("=", " ").split()
    return max(tokens, key=len) if tokens else None
