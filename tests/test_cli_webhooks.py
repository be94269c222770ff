"""`interlock webhooks sign|verify`: what matched, or exactly why not, with exit codes."""

# Secrets in this file are test fixtures, not credentials.
# ruff: noqa: S105, S106

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import TYPE_CHECKING

import pytest

from interlock import cli_webhooks
from interlock.webhook_handler import sign

if TYPE_CHECKING:
    from pathlib import Path

GITHUB_BODY = b"Hello, World!"
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def _run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="interlock")
    commands = parser.add_subparsers(dest="command")
    cli_webhooks.add_parser(commands)
    args = parser.parse_args(["webhooks", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = cli_webhooks.run(args, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def body_file(tmp_path: Path) -> Path:
    path = tmp_path / "body.bin"
    path.write_bytes(GITHUB_BODY)
    return path


def test_verify_prints_what_matched(body_file: Path) -> None:
    """A good GitHub delivery prints VERIFIED, the secret index and the delivery id; exit 0."""
    code, out, err = _run(
        [
            "verify",
            "--scheme",
            "github",
            "--secret",
            "old",
            "--secret",
            GITHUB_SECRET,
            "--header",
            f"X-Hub-Signature-256: {GITHUB_SIG}",
            "--header",
            "X-GitHub-Delivery: 72d3162e",
            "--header",
            "X-GitHub-Event: push",
            str(body_file),
        ]
    )
    assert (code, err) == (0, "")
    assert "VERIFIED: github signature matched secret #1 (of 2 configured)" in out
    assert "webhook id: 72d3162e" in out
    assert "event type: push" in out


def test_verify_mismatch_shows_prefixes_only(body_file: Path) -> None:
    """A wrong secret prints the header, 8-character received/computed prefixes and body facts."""
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "github",
            "--secret",
            "wrong",
            "--header",
            f"X-Hub-Signature-256:{GITHUB_SIG}",
            str(body_file),
        ]
    )
    assert code == 1
    assert "NOT VERIFIED" in out
    assert "header: X-Hub-Signature-256" in out
    assert "received:            757107ea...\n" in out
    assert "757107ea0" not in out
    wrong = sign("github", body=GITHUB_BODY, secret="wrong")["X-Hub-Signature-256"][7:15]
    assert f"computed, secret #0: {wrong}...\n" in out
    assert "body: 13 bytes" in out


def test_verify_reports_clock_skew(tmp_path: Path) -> None:
    """A stale Stripe delivery prints its timestamp, the skew and the tolerance."""
    body = tmp_path / "event.json"
    body.write_bytes(b'{"id": "evt_1"}')
    header = sign("stripe", body=body.read_bytes(), secret="whsec_k", timestamp=1000)
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "stripe",
            "--secret",
            "whsec_k",
            "--header",
            f"Stripe-Signature:{header['Stripe-Signature']}",
            "--now",
            "1400",
            str(body),
        ]
    )
    assert code == 1
    assert "clock skew: +400 s (in the past); tolerance: 300 s" in out
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "stripe",
            "--secret",
            "whsec_k",
            "--header",
            f"Stripe-Signature:{header['Stripe-Signature']}",
            "--now",
            "1010",
            str(body),
        ]
    )
    assert code == 0
    assert "timestamp: 1000 (clock skew +10 s)" in out
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "stripe",
            "--secret",
            "whsec_k",
            "--header",
            f"Stripe-Signature:{header['Stripe-Signature']}",
            "--now",
            "500",
            str(body),
        ]
    )
    assert "(in the future)" in out


def test_verify_names_missing_and_malformed_headers(body_file: Path) -> None:
    """A missing header is named with the headers given; a malformed one with the problem."""
    code, out, _ = _run(
        ["verify", "--scheme", "github", "--secret", "s", "--header", "A: b", str(body_file)]
    )
    assert code == 1
    assert "missing: X-Hub-Signature-256\n  headers given: A" in out
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "github",
            "--secret",
            "s",
            "--header",
            "X-Hub-Signature-256: md5=1",
            str(body_file),
        ]
    )
    assert "problem: does not start with 'sha256='" in out
    code, out, _ = _run(["verify", "--scheme", "github", "--secret", "s", str(body_file)])
    assert "headers given: (none)" in out


def test_verify_reports_an_invalid_secret(body_file: Path) -> None:
    """An unusable whsec_ secret is reported with its index, exit 1."""
    code, out, _ = _run(["verify", "--scheme", "svix", "--secret", "whsec_!!", str(body_file)])
    assert code == 1
    assert "secret #0: must be 'whsec_' followed by base64" in out


def test_sign_prints_headers_and_round_trips(body_file: Path) -> None:
    """sign prints provider headers that verify accepts."""
    code, out, _ = _run(
        [
            "sign",
            "--scheme",
            "standard-webhooks",
            "--secret",
            "whsec_c2VjcmV0",
            "--now",
            "1700000000",
            "--id",
            "msg_1",
            str(body_file),
        ]
    )
    assert code == 0
    headers = [line for line in out.splitlines() if line]
    assert headers[0] == "webhook-id: msg_1"
    argv = ["verify", "--scheme", "standard-webhooks", "--secret", "whsec_c2VjcmV0"]
    for line in headers:
        argv += ["--header", line]
    code, out, _ = _run([*argv, "--now", "1700000000", str(body_file)])
    assert code == 0, out
    assert "webhook id: msg_1" in out


def test_secrets_from_environment_and_file(
    body_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--secret env:NAME and --secret @PATH read the secret without putting it on the line."""
    monkeypatch.setenv("HOOK_SECRET", GITHUB_SECRET)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(GITHUB_SECRET + "\n", encoding="utf-8")
    for source in ("env:HOOK_SECRET", f"@{secret_file}"):
        code, out, _ = _run(
            [
                "verify",
                "--scheme",
                "github",
                "--secret",
                source,
                "--header",
                f"X-Hub-Signature-256:{GITHUB_SIG}",
                str(body_file),
            ]
        )
        assert code == 0, out


def test_configuration_errors_exit_2(body_file: Path, tmp_path: Path) -> None:
    """Unset env secrets, bad --header/--option, missing files and url-less Twilio exit 2."""
    cases = [
        ["verify", "--scheme", "github", "--secret", "env:NOPE_NOT_SET", str(body_file)],
        ["verify", "--scheme", "github", "--secret", "s", "--header", "nocolon", str(body_file)],
        ["sign", "--scheme", "github", "--secret", "s", "--option", "x", str(body_file)],
        ["verify", "--scheme", "github", "--secret", "s", str(tmp_path / "missing")],
        ["sign", "--scheme", "twilio", "--secret", "s", str(body_file)],
        ["sign", "--scheme", "discord", "--secret", "00" * 32, str(body_file)],
    ]
    for argv in cases:
        code, out, err = _run(argv)
        assert code == 2, argv
        assert err.startswith("error: ")
        assert out == ""


def test_body_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    """BODY_FILE '-' reads the raw bytes from standard input."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GITHUB_BODY)))
    code, out, _ = _run(
        [
            "verify",
            "--scheme",
            "github",
            "--secret",
            GITHUB_SECRET,
            "--header",
            f"X-Hub-Signature-256:{GITHUB_SIG}",
            "-",
        ]
    )
    assert code == 0, out


def _wrong(scheme: str) -> str:
    return "whsec_d3Jvbmc=" if scheme == "standard-webhooks" else "wrong-secret"


def _mismatch(scheme: str, body: bytes, signed: dict[str, str], tmp_path: Path, *extra: str) -> str:
    path = tmp_path / f"{scheme}.bin"
    path.write_bytes(body)
    argv = ["verify", "--scheme", scheme, "--secret", _wrong(scheme), *extra]
    for name, value in signed.items():
        argv += ["--header", f"{name}:{value}"]
    code, out, _ = _run([*argv, str(path)])
    assert code == 1
    return out


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [
        ("stripe", ()),
        ("standard-webhooks", ()),
        ("slack", ()),
        ("paddle", ()),
        ("twitch", ()),
        ("hubspot", ("--url", "https://example.com/h")),
        ("twilio", ("--url", "https://example.com/t")),
    ],
)
def test_mismatch_shows_the_computed_prefix_per_scheme(
    scheme: str, extra: tuple[str, ...], tmp_path: Path
) -> None:
    """For each header shape the computed prefix is the digest the wrong secret gives."""
    secret = "whsec_c2VjcmV0" if scheme == "standard-webhooks" else "right-secret"
    url = extra[1] if extra else None
    body = b"a=1&b=2"
    signed = sign(scheme, body=body, secret=secret, timestamp=1000, url=url, webhook_id="m1")
    out = _mismatch(scheme, body, signed, tmp_path, "--now", "1000", *extra)
    line = next(x for x in out.splitlines() if "computed, secret #0" in x)
    assert "(cannot" not in line
    expected = sign(
        scheme, body=body, secret=_wrong(scheme), timestamp=1000, url=url, webhook_id="m1"
    )
    if scheme == "twitch":  # the timestamp text is signed as received
        expected = signed
    shown = line.split(": ")[1].removesuffix("...")
    assert len(shown) == 8
    if scheme != "twitch":
        assert any(shown in value for value in expected.values())


def test_mismatch_special_cases(tmp_path: Path) -> None:
    """HubSpot v1, Mailgun body fields, Twilio bodySHA256 and asymmetric schemes."""
    signed = sign("hubspot", body=b"{}", secret="cs", version="v1")
    out = _mismatch("hubspot", b"{}", signed, tmp_path)
    assert "(cannot" not in out
    fields = sign("mailgun", body=b"", secret="k", timestamp=5, webhook_id="tok")
    body = json.dumps({"signature": fields}).encode()
    out = _mismatch("mailgun", body, {}, tmp_path, "--now", "5")
    assert "header: body: signature.signature" in out
    assert "(cannot" not in out
    url = "https://example.com/t?bodySHA256=" + "0" * 64
    signed = sign("twilio", body=b"{}", secret="wrong-secret", url=url)
    out = _mismatch("twilio", b"{}", signed, tmp_path, "--url", url)
    assert "header: bodySHA256" in out
    hubspot_ms = {"X-HubSpot-Signature-v3": "AAAA", "X-HubSpot-Request-Timestamp": "1000123"}
    out = _mismatch(
        "hubspot", b"{}", hubspot_ms, tmp_path, "--now", "1000", "--url", "https://example.com/h"
    )
    assert "(cannot be computed here)" in out
    discord = {"X-Signature-Ed25519": "00" * 64, "X-Signature-Timestamp": "1"}
    path = tmp_path / "d.bin"
    path.write_bytes(b"{}")
    argv = [
        "verify",
        "--scheme",
        "discord",
        "--secret",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ]
    for name, value in discord.items():
        argv += ["--header", f"{name}:{value}"]
    code, out, _ = _run([*argv, str(path)])
    assert code == 1
    assert "(cannot be computed here)" in out
    item = {"NotificationRequestItem": {"additionalData": {"hmacSignature": "AAAA"}}}
    adyen = json.dumps({"notificationItems": [item]}).encode()
    path.write_bytes(adyen)
    code, out, _ = _run(["verify", "--scheme", "adyen", "--secret", "00ff", str(path)])
    assert "(cannot be computed here)" in out


def test_body_ending_in_newline_gets_a_hint(tmp_path: Path) -> None:
    """A saved body ending in a newline is pointed out (editors add one)."""
    signed = sign("github", body=b"{}", secret="right-secret")
    out = _mismatch("github", b"{}\n", signed, tmp_path)
    assert "ends with a newline" in out


def test_sign_with_hubspot_option(body_file: Path) -> None:
    """--option passes scheme options such as HubSpot's version."""
    code, out, _ = _run(
        ["sign", "--scheme", "hubspot", "--secret", "cs", "--option", "version=v1", str(body_file)]
    )
    assert code == 0
    assert "X-HubSpot-Signature-Version: v1" in out
