# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock demo`` scenario: the patterns that exist today, end to end.

1. An order event from a storefront goes through its delivery lifecycle: the first
   delivery to the ERP fails, the retry policy schedules a retry, the second is
   acknowledged and processed. The event leaves as a CloudEvents HTTP request in binary
   mode, and the receiver reads it back; a forged request missing a required attribute
   is refused with the rule it broke.
2. A CRM/ERP contact sync is planned field by field: authority, a field-name mapping with
   a value transform, echo suppression and a conflict sent to review.

Everything is deterministic: fixed times from an injected clock, no network, no files.
This is a consumer of the pattern modules; it only arranges calls and prints.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, TextIO

from interlock.event_envelope import (
    CloudEventError,
    EventEnvelope,
    InvalidTransitionError,
    RetryPolicy,
)
from interlock.sync_boundary import FieldMapping, RecordAuthority, SyncBoundary

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Sequence

__all__ = ["add_parser", "run", "run_demo"]

START = datetime(2026, 11, 22, 9, 0, tzinfo=timezone.utc)


class _Clock:
    """A demo clock that moves only when the story says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _table(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [list(map(str, header)), *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for index, row in enumerate(cells):
        out.write(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n"
        )
        if index == 0:
            out.write("  " + "  ".join("-" * w for w in widths) + "\n")


def _say(out: TextIO, text: str, *, bullet: bool = False) -> None:
    first, rest = ("- ", "  ") if bullet else ("", "")
    out.write(textwrap.fill(text, 88, initial_indent=first, subsequent_indent=rest) + "\n")


def _section(out: TextIO, title: str) -> None:
    out.write(f"\n{title}\n{'=' * len(title)}\n")


def _envelope_story(out: TextIO) -> list[str]:
    clock = _Clock()
    _section(out, "1. An order event through its delivery lifecycle")
    order = EventEnvelope(
        "ord-1001-created",
        "com.example.order.created",
        "/storefront/orders",
        {"order_id": "1001", "customer": "C-2", "total": "49.90", "currency": "EUR"},
        correlation_id="checkout-7f3a",
        retry_policy=RetryPolicy(max_attempts=4, backoff_seconds=30),
        subject="orders/1001",
        clock=clock,
    )
    order.mark_dispatched()
    clock.advance(2)
    order.mark_failed(reason="ERP answered 503 Service Unavailable")
    wait = order.next_retry_wait_seconds()
    out.write(f"Attempt 1 failed; the retry policy schedules attempt 2 in {wait} s.\n")
    clock.advance(wait)
    order.mark_dispatched()
    clock.advance(1)
    order.mark_acknowledged()
    order.mark_processed()
    out.write("Attempt 2 was acknowledged and processed.\n\n")
    _table(
        out,
        ("time (UTC)", "from", "to", "reason"),
        (
            (step.at.strftime("%H:%M:%S"), step.source.value, step.target.value, step.reason)
            for step in order.history
        ),
    )
    try:
        order.mark_failed(reason="a late, duplicate error report")
    except InvalidTransitionError as exc:
        out.write("\n")
        _say(out, f"A late failure report is refused: {exc}")
    out.write(f"\nThe audit line:\n{order.to_audit_line()}\n")

    _section(out, "   ...and out as a CloudEvents 1.0.2 HTTP request (binary mode)")
    headers, body = order.to_http()
    for name, value in headers.items():
        out.write(f"  {name}: {value}\n")
    out.write(f"\n  {body.decode()}\n")
    received = EventEnvelope.from_http(headers, body)
    same = received.payload == order.payload and received.event_id == order.event_id
    out.write("\n")
    _say(
        out,
        f"The receiver reads it back: id={received.event_id} type={received.event_type} "
        f"same payload={same}.",
    )
    forged = {k: v for k, v in headers.items() if k != "ce-specversion"}
    try:
        EventEnvelope.from_http(forged, body)
    except CloudEventError as exc:
        _say(out, f"A request without ce-specversion is refused: {exc}")
    return [
        (
            "event_envelope: a late failure report could not reopen a processed order; the retry "
            f"waited {wait} s (not double); the receiver refused an event missing specversion"
        ),
    ]


def _phone_to_erp(value: str) -> str:
    return value.removeprefix("+")


def _phone_to_crm(value: str) -> str:
    return "+" + value


def _sync_story(out: TextIO) -> list[str]:
    _section(out, "2. A CRM/ERP contact sync, planned field by field")
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        field_authority={
            "email": RecordAuthority.SYSTEM_A,
            "full_name": RecordAuthority.SHARED,
            "phone": RecordAuthority.SHARED,
            "credit_limit": RecordAuthority.SYSTEM_B,
            "payment_terms": RecordAuthority.MANUAL,
        },
        excluded_fields={"lead_score"},
        field_map={
            "email": "EmailAddress",
            "full_name": "Name",
            "phone": FieldMapping("PhoneNo", to_b=_phone_to_erp, to_a=_phone_to_crm),
            "credit_limit": "CreditLimit",
            "payment_terms": "PaymentTerms",
        },
        clock=lambda: START,
    )
    crm = {
        "email": "grace@new.example",
        "full_name": "Grace Hopper",
        "phone": "+15550199",
        "credit_limit": 1000,
        "payment_terms": "NET30",
        "lead_score": 91,
    }
    erp = {
        "EmailAddress": "grace@old.example",
        "Name": "Grace B. Hopper",
        "PhoneNo": "15550111",
        "CreditLimit": 5000,
        "PaymentTerms": "NET60",
    }
    # What the previous sync left: the name was "Grace Hopper" on both sides.
    baseline = {
        "email": "grace@old.example",
        "full_name": "Grace Hopper",
        "phone": "+15550111",
        "credit_limit": 1000,
        "payment_terms": "NET30",
    }
    _say(
        out,
        "Authority: the CRM owns email, the ERP owns credit_limit, both may edit full_name "
        "and phone, payment_terms needs a person, lead_score is never synced. The ERP "
        "stores phones without the leading '+', so the phone mapping converts both ways.",
    )
    out.write("\n")
    _table(
        out,
        ("field (CRM name)", "CRM", "ERP", "last synced"),
        (
            (name, crm.get(name, "-"), erp.get(boundary.b_name_for(name) or "", "-"), value)
            for name, value in baseline.items()
        ),
    )
    plan = boundary.plan(crm, erp, baseline, record_id="C-2")
    out.write("\nThe plan:\n")
    rows = [("ERP", name, value) for name, value in plan.updates_b.items()]
    rows += [("CRM", name, value) for name, value in plan.updates_a.items()]
    rows += [
        ("review", c.field_name, f"CRM={c.value_a!r} ERP={c.value_b!r} ({c.reason.value})")
        for c in plan.conflicts
        if c.reason is not None
    ]
    _table(out, ("write to", "field", "value"), rows)
    new_crm, new_erp = plan.apply(crm, erp)
    again = boundary.plan(new_crm, new_erp, plan.new_baseline, record_id="C-2")
    # The CRM edits the name again while the ERP's change feed still carries the value
    # sync wrote there: that echo must not travel back and revert the CRM.
    renamed = {**new_crm, "full_name": "Rear Admiral Grace Hopper"}
    echo = boundary.plan(renamed, new_erp, plan.new_baseline, record_id="C-2")
    out.write("\n")
    _say(
        out,
        "After applying it and storing the new baseline, planning again writes "
        f"{len(again.updates_a) + len(again.updates_b)} fields and keeps "
        f"{len(again.conflicts)} item(s) in review.",
    )
    _say(
        out,
        "Then the CRM renames the contact while the ERP's feed still echoes the old name: "
        f"the ERP gets {dict(echo.updates_b)}, the CRM gets {dict(echo.updates_a) or 'nothing'}.",
    )
    return [
        (
            "sync_boundary: the ERP-owned credit limit was not overwritten by the CRM, the "
            "ERP's name edit reached the CRM without an echo back, and the payment-terms "
            "disagreement went to a person instead of being guessed"
        ),
    ]


def run_demo(out: TextIO) -> None:
    """Run the whole demo, writing a readable report to ``out``."""
    out.write("interlock demo: reliable-integration patterns, end to end\n")
    prevented = _envelope_story(out)
    prevented += _sync_story(out)
    _section(out, "What each pattern prevented")
    for line in prevented:
        _say(out, line, bullet=True)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Declare ``demo`` on the main parser."""
    subparsers.add_parser(
        "demo",
        help="run the end-to-end demo",
        description=(
            "An order event goes through its delivery lifecycle (a failure, a retry, an "
            "acknowledgement) and out as a CloudEvents HTTP request; a CRM/ERP contact "
            "sync is planned field by field. Deterministic: fixed times, no network."
        ),
    )


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:  # noqa: ARG001 - the command interface
    """Run the demo; the exit code is 0."""
    run_demo(stdout)
    return 0
