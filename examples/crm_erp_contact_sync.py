# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Plan a two-way contact sync between a CRM (system A) and an ERP (system B).

Run it with ``python examples/crm_erp_contact_sync.py`` after ``pip install .``.
It uses in-memory dictionaries for both systems and for the baseline store, prints
the plan for each contact, applies the updates, and lists what a person must review.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from interlock.sync_boundary import (
    ABSENT,
    FieldMapping,
    RecordAuthority,
    SyncBoundary,
    SyncConflict,
    SyncPlan,
)


def phone_to_erp(value: Any) -> Any:
    """The CRM stores "+15550100"; the ERP stores the digits only."""
    return value if value is None else value.removeprefix("+")


def phone_to_crm(value: Any) -> Any:
    return value if value is None else "+" + value


CONTACTS = SyncBoundary(
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
    allow_system_b_override=True,
    field_map={
        "email": "EmailAddress",
        "full_name": "Name",
        "phone": FieldMapping("PhoneNo", to_b=phone_to_erp, to_a=phone_to_crm),
        "credit_limit": "CreditLimit",
        "payment_terms": "PaymentTerms",
    },
)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=timezone.utc)


# The two systems, keyed by contact id, each in its own field names.
crm: dict[str, dict[str, Any]] = {
    "C-1": {
        "email": "ada@example.com",
        "full_name": "Ada Lovelace",
        "phone": "+15550100",
        "payment_terms": "NET30",
        "lead_score": 87,
    },
    "C-2": {
        "email": "grace@new.example",
        "full_name": "Grace Hopper",
        "phone": "+15550111",
        "credit_limit": 1000,
        "payment_terms": "NET30",
    },
    "C-3": {
        "email": "alan@example.com",
        "full_name": "Alan M. Turing",
        "phone": "+15550122",
        "credit_limit": 2000,
        "payment_terms": "NET15",
    },
}
erp: dict[str, dict[str, Any]] = {
    "C-1": {},  # not in the ERP yet
    "C-2": {
        "EmailAddress": "grace@old.example",  # the echo of what sync wrote last time
        "Name": "Grace Hopper",
        "PhoneNo": "15550199",
        "CreditLimit": 5000,
        "PaymentTerms": "NET30",
    },
    "C-3": {
        "EmailAddress": "alan@bletchley.example",
        "Name": "Alan Turing",
        "PhoneNo": "15550133",
        "CreditLimit": 2000,
        "PaymentTerms": "NET45",
    },
}
# What the previous sync left behind (CRM names and representation).
baselines: dict[str, dict[str, Any]] = {
    "C-2": {
        "email": "grace@old.example",
        "full_name": "Grace Hopper",
        "phone": "+15550111",
        "credit_limit": 1000,
        "payment_terms": "NET30",
    },
    "C-3": {
        "email": "alan@example.com",
        "full_name": "Alan Turing",
        "phone": "+15550100",
        "credit_limit": 2000,
        "payment_terms": "NET30",
    },
}
# Record-level modification times, used by last-writer-wins on shared fields.
modified_crm = {"C-1": at(9), "C-2": at(9), "C-3": at(11)}
modified_erp = {"C-1": None, "C-2": at(10), "C-3": at(10)}


def show(value: Any) -> str:
    return "(missing)" if value is ABSENT else repr(value)


def describe(plan: SyncPlan) -> list[str]:
    lines = [f"contact {plan.record_id}"]
    if plan.is_empty:
        lines.append("  already in sync")
    for name, value in plan.updates_b.items():
        lines.append(f"  {CONTACTS.system_b_id} <- {name} = {value!r}")
    for name, value in plan.updates_a.items():
        lines.append(f"  {CONTACTS.system_a_id} <- {name} = {value!r}")
    for conflict in plan.conflicts:
        reason = conflict.reason.value if conflict.reason else "unknown"
        baseline = repr(conflict.last_sync_value) if conflict.baseline_known else "unknown"
        lines.append(
            f"  REVIEW {conflict.field_name} [{reason}]: "
            f"{CONTACTS.system_a_id}={show(conflict.value_a)} "
            f"{CONTACTS.system_b_id}={show(conflict.value_b)} baseline={baseline}"
        )
    return lines


def main() -> int:
    review_queue: list[SyncConflict] = []
    for contact_id in sorted(crm):
        plan = CONTACTS.plan(
            crm[contact_id],
            erp[contact_id],
            baselines.get(contact_id),
            record_id=contact_id,
            modified_a=modified_crm[contact_id],
            modified_b=modified_erp[contact_id],
        )
        print("\n".join(describe(plan)))
        # Write both sides first, then store the baseline: if a write fails, the old
        # baseline stays and the next run plans the same updates again.
        crm[contact_id], erp[contact_id] = plan.apply(crm[contact_id], erp[contact_id])
        baselines[contact_id] = dict(plan.new_baseline)
        review_queue.extend(plan.conflicts)

    print()
    print(f"{len(review_queue)} field(s) waiting for review")
    print("ERP after sync:", erp["C-1"])
    # Planning again over the synced records writes nothing; review items stay open.
    for contact_id in sorted(crm):
        again = CONTACTS.plan(crm[contact_id], erp[contact_id], baselines[contact_id])
        updates = len(again.updates_a) + len(again.updates_b)
        print(f"second run for {contact_id}: {updates} update(s), {len(again.conflicts)} in review")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
