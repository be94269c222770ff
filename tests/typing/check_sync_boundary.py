# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Type-checks the public API of interlock.sync_boundary under ``mypy --strict``.

Not collected by pytest; run ``mypy --strict tests/typing/check_sync_boundary.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from interlock.sync_boundary import (
    ABSENT,
    ConflictReason,
    FieldMapping,
    MergeError,
    RecordAuthority,
    SharedPolicy,
    SyncArgumentError,
    SyncArgumentTypeError,
    SyncBoundary,
    SyncBoundaryError,
    SyncConflict,
    SyncPlan,
    TransformError,
)


def fixed_clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=timezone.utc)


def union_tags(field: str, value_a: Any, value_b: Any, baseline: Any) -> Any:
    del field, baseline
    return sorted({*value_a, *value_b})


def seed_style() -> SyncConflict | None:
    boundary = SyncBoundary(
        record_type="contact",
        system_a_id="crm",
        system_b_id="erp",
        field_authority={"email": RecordAuthority.SYSTEM_A},
        excluded_fields={"internal_notes"},
        allow_system_b_override=False,
    )
    owner: RecordAuthority | None = boundary.authority_for("email")
    synced: list[str] = boundary.synced_fields()
    owned: list[str] = boundary.fields_owned_by(RecordAuthority.SYSTEM_A)
    flag: bool = boundary.is_synced("email")
    del owner, synced, owned, flag
    return boundary.detect_conflict("email", "a", "b", "rec-1", "old")


def new_style() -> SyncPlan:
    phone = FieldMapping("Phone", to_b=str.strip, to_a=str.strip)
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {
            "email": RecordAuthority.SYSTEM_A,
            "phone": RecordAuthority.SHARED,
            "tags": RecordAuthority.SHARED,
        },
        set(),
        True,
        allow_system_a_override=True,
        field_map={"email": "EmailAddress", "phone": phone, "tags": "Tags"},
        shared_policy=union_tags,
        clock=fixed_clock,
    )
    review_boundary = SyncBoundary(
        "contact", "crm", "erp", shared_policy=SharedPolicy.REVIEW, clock=fixed_clock
    )
    del review_boundary
    b_name: str | None = boundary.b_name_for("email")
    del b_name
    plan: SyncPlan = boundary.plan(
        {"email": "a@x", "phone": "555"},
        {"EmailAddress": "b@x"},
        {"email": "b@x"},
        record_id="C-1",
        modified_a=fixed_clock(),
        modified_b={"Phone": None, "EmailAddress": fixed_clock()},
    )
    new_a: dict[str, Any]
    new_b: dict[str, Any]
    new_a, new_b = plan.apply({"email": "a@x"}, {"EmailAddress": "b@x"})
    empty: bool = plan.is_empty
    del new_a, new_b, empty
    return plan


def read_conflicts(plan: SyncPlan) -> list[str]:
    lines: list[str] = []
    for conflict in plan.conflicts:
        reason: ConflictReason | None = conflict.reason
        known: bool = conflict.baseline_known
        writer: RecordAuthority | None = conflict.last_writer()
        stamp: datetime = conflict.detected_at
        missing: bool = conflict.value_a is ABSENT
        lines.append(f"{conflict.field_name} {reason} {known} {writer} {stamp} {missing}")
    return lines


def handle_errors() -> str:
    try:
        new_style()
    except TransformError as error:
        return f"{error.field} {error.direction}"
    except MergeError as error:
        return error.field
    except SyncArgumentTypeError as error:
        return error.argument
    except SyncArgumentError as error:
        field: str | None = error.field
        value: object = error.value
        return f"{error.argument} {field} {value!r}"
    except SyncBoundaryError as error:
        return str(error)
    return ""


conflict = SyncConflict(
    "email",
    None,
    "b@x",
    "rec-1",
    None,
    fixed_clock(),
    None,
    None,
    baseline_known=True,
    reason=ConflictReason.BOTH_CHANGED,
)
print(seed_style(), read_conflicts(new_style()), handle_errors(), conflict)  # noqa: T201
