# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Tests for interlock.sync_boundary."""

from __future__ import annotations

import ast
import copy
import dataclasses
import pickle
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interlock import sync_boundary as module
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

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MODULE_PATH = Path(module.__file__)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
A = RecordAuthority.SYSTEM_A
B = RecordAuthority.SYSTEM_B
SHARED = RecordAuthority.SHARED
MANUAL = RecordAuthority.MANUAL


def _at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _fixed_clock() -> datetime:
    return T0


def _contact_boundary(**overrides: Any) -> SyncBoundary:
    """The boundary the seed's tests used: e-mail and status owned by A, billing by B."""
    arguments: dict[str, Any] = {
        "record_type": "contact",
        "system_a_id": "crm",
        "system_b_id": "erp",
        "field_authority": {"email": A, "billing_address": B, "status": A},
        "excluded_fields": {"internal_notes"},
    }
    arguments.update(overrides)
    return SyncBoundary(**arguments)


def _one_field(authority: RecordAuthority, **options: Any) -> SyncBoundary:
    """A boundary with one synced field, "f", and a fixed clock."""
    options.setdefault("clock", _fixed_clock)
    return SyncBoundary("thing", "a", "b", {"f": authority}, **options)


def _upper_mapping() -> FieldMapping:
    """A's e-mail is lower case; B stores it upper case (a round-tripping pair)."""
    return FieldMapping("EmailAddress", to_b=str.upper, to_a=str.lower)


# ===========================================================================
# Module shape (house rules)
# ===========================================================================


def test_module_starts_with_spdx_header() -> None:
    """The first two lines are the SPDX licence and copyright header."""
    lines = MODULE_PATH.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == [
        "# SPDX-License-Identifier: MIT",
        "# SPDX-FileCopyrightText: 2026 interlock contributors",
    ]


def test_module_docstring_has_required_sections() -> None:
    """The docstring has the Verdict, Prevents, References, Exceptions and Example sections."""
    doc = module.__doc__ or ""
    for heading in ("Verdict:", "Prevents:", "References:", "Exceptions:", "Example:"):
        assert re.search(rf"^{heading}\n    \S", doc, re.MULTILINE), heading
    assert "Use it when" in doc
    assert "Do not use it when" in doc
    assert ">>> " in doc
    assert "import interlock" not in doc
    assert "from interlock" not in doc


def test_all_is_sorted_and_exact() -> None:
    """__all__ is sorted and equals the public names the module defines."""
    tree = ast.parse(MODULE_PATH.read_text(encoding="utf-8"))
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            defined.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.Assign):
            defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {name for name in defined if not name.startswith("_")}
    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public


def test_module_imports_only_the_standard_library() -> None:
    """Every import is from the standard library; no sibling interlock module is imported."""
    tree = ast.parse(MODULE_PATH.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            roots = [(node.module or "").split(".")[0]]
        else:
            continue
        for root in roots:
            assert root == "__future__" or root in sys.stdlib_module_names, root


def test_module_works_when_copied_alone(tmp_path: Path) -> None:
    """A copy of the file under another name, alone in a directory, passes its doctests."""
    copied = tmp_path / "contact_sync_copy.py"
    shutil.copyfile(MODULE_PATH, copied)
    result = subprocess.run(
        [sys.executable, "-I", "-m", "doctest", "-v", str(copied)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Test passed." in result.stdout


# ===========================================================================
# Seed compatibility (integration-automation-patterns 0.1.0)
#
# The seed's expectations, restated: code written against the seed only changes
# its import path.
# ===========================================================================


def test_seed_record_authority_values() -> None:
    """RecordAuthority keeps the seed's four members and string values."""
    assert [(m.name, m.value) for m in RecordAuthority] == [
        ("SYSTEM_A", "system_a"),
        ("SYSTEM_B", "system_b"),
        ("SHARED", "shared"),
        ("MANUAL", "manual"),
    ]


def test_seed_authority_for_mapped_fields() -> None:
    """authority_for returns the configured authority of a mapped field."""
    boundary = _contact_boundary()
    assert boundary.authority_for("email") == A
    assert boundary.authority_for("billing_address") == B


def test_seed_authority_for_excluded_and_unknown_fields() -> None:
    """authority_for returns None for an excluded field and for an unknown one."""
    boundary = _contact_boundary()
    assert boundary.authority_for("internal_notes") is None
    assert boundary.authority_for("unknown_field") is None


def test_seed_is_synced() -> None:
    """is_synced is True only for a mapped, non-excluded field."""
    boundary = _contact_boundary()
    assert boundary.is_synced("email") is True
    assert boundary.is_synced("internal_notes") is False
    assert boundary.is_synced("no_such_field") is False


def test_seed_exclusion_wins_over_authority() -> None:
    """A field both excluded and given an authority is not synced."""
    boundary = _contact_boundary(
        field_authority={"email": A, "internal_notes": A}, excluded_fields={"internal_notes"}
    )
    assert boundary.is_synced("internal_notes") is False
    assert boundary.authority_for("internal_notes") is None
    assert boundary.synced_fields() == ["email"]


def test_seed_synced_fields_in_authority_order_without_excluded() -> None:
    """synced_fields lists the mapped fields in order, without excluded ones."""
    boundary = _contact_boundary()
    assert boundary.synced_fields() == ["email", "billing_address", "status"]
    assert isinstance(boundary.synced_fields(), list)


def test_seed_fields_owned_by() -> None:
    """fields_owned_by lists exactly the fields a system is authoritative for."""
    boundary = _contact_boundary()
    assert boundary.fields_owned_by(A) == ["email", "status"]
    assert boundary.fields_owned_by(B) == ["billing_address"]
    assert boundary.fields_owned_by(MANUAL) == []


def test_seed_positional_construction() -> None:
    """The seed's positional constructor order still works, including the override flag."""
    boundary = SyncBoundary("contact", "crm", "erp", {"email": A}, {"notes"}, True)
    assert boundary.record_type == "contact"
    assert boundary.system_a_id == "crm"
    assert boundary.system_b_id == "erp"
    assert boundary.allow_system_b_override is True
    assert "notes" in boundary.excluded_fields
    assert boundary.field_authority["email"] == A


def test_seed_defaults() -> None:
    """With only the three identifiers, nothing is synced and override is off."""
    boundary = SyncBoundary("contact", "crm", "erp")
    assert boundary.synced_fields() == []
    assert boundary.excluded_fields == frozenset()
    assert boundary.allow_system_b_override is False


def test_seed_no_conflict_when_values_equal() -> None:
    """detect_conflict returns None when both systems hold the same value."""
    assert _contact_boundary().detect_conflict("email", "a@x.com", "a@x.com", "rec-1") is None


def test_seed_conflict_when_both_differ_from_last_sync() -> None:
    """detect_conflict reports a conflict when both sides moved away from the baseline."""
    conflict = _contact_boundary().detect_conflict(
        field_name="email",
        value_a="new_a@x.com",
        value_b="new_b@x.com",
        record_id="rec-1",
        last_sync_value="old@x.com",
    )
    assert isinstance(conflict, SyncConflict)
    assert conflict.field_name == "email"


def test_seed_no_conflict_when_only_one_side_changed() -> None:
    """detect_conflict returns None when only A or only B changed since the baseline."""
    boundary = _contact_boundary()
    assert boundary.detect_conflict("email", "new@x.com", "old@x.com", "r", "old@x.com") is None
    assert boundary.detect_conflict("email", "old@x.com", "new@x.com", "r", "old@x.com") is None


def test_seed_conflict_without_last_sync_value() -> None:
    """Without a baseline, any difference is a conflict."""
    assert _contact_boundary().detect_conflict("email", "a@x.com", "b@x.com", "rec-1") is not None


def test_seed_no_conflict_for_unsynced_fields() -> None:
    """detect_conflict ignores excluded and unmapped fields."""
    boundary = _contact_boundary()
    assert boundary.detect_conflict("internal_notes", "val_a", "val_b", "rec-1") is None
    assert boundary.detect_conflict("unknown_field", "val_a", "val_b", "rec-1") is None


def test_seed_conflict_carries_its_values() -> None:
    """The conflict holds both values, the baseline and the record id."""
    conflict = _contact_boundary().detect_conflict(
        "email", "a@x.com", "b@x.com", "rec-42", last_sync_value="old@x.com"
    )
    assert conflict is not None
    assert conflict.value_a == "a@x.com"
    assert conflict.value_b == "b@x.com"
    assert conflict.last_sync_value == "old@x.com"
    assert conflict.record_id == "rec-42"


def test_seed_detect_conflict_passes_modification_times() -> None:
    """detect_conflict copies the two modification times into the conflict."""
    conflict = _contact_boundary().detect_conflict("email", "a", "b", "r", "o", _at(1), _at(2))
    assert conflict is not None
    assert conflict.system_a_modified_at == _at(1)
    assert conflict.system_b_modified_at == _at(2)
    assert conflict.last_writer() == B


def test_seed_last_writer_a_and_b() -> None:
    """last_writer names the system with the later modification time."""
    a_later = SyncConflict(
        field_name="email",
        value_a="new",
        value_b="old",
        record_id="r1",
        system_a_modified_at=_at(100),
        system_b_modified_at=_at(50),
    )
    b_later = SyncConflict("email", "old", "new", "r1", None, None, _at(50), _at(100))
    assert a_later.last_writer() == A
    assert b_later.last_writer() == B


def test_seed_last_writer_none_without_times_or_on_tie() -> None:
    """last_writer is None when a time is missing or both times are equal."""
    assert SyncConflict("email", "a", "b", "r1").last_writer() is None
    only_a = SyncConflict("email", "a", "b", "r1", system_a_modified_at=_at(1))
    assert only_a.last_writer() is None
    tie = SyncConflict(
        "email", "a", "b", "r1", system_a_modified_at=_at(100), system_b_modified_at=_at(100)
    )
    assert tie.last_writer() is None


def test_seed_conflict_positional_fields_and_default_time() -> None:
    """SyncConflict keeps the seed's positional order and defaults detected_at to aware UTC now."""
    conflict = SyncConflict("email", "a", "b", "r1", "old", T0)
    assert (conflict.field_name, conflict.value_a, conflict.value_b) == ("email", "a", "b")
    assert (conflict.record_id, conflict.last_sync_value, conflict.detected_at) == ("r1", "old", T0)
    fresh = SyncConflict("email", "a", "b", "r1")
    assert fresh.detected_at.utcoffset() == timedelta(0)
    assert fresh.system_a_modified_at is None
    assert fresh.system_b_modified_at is None


# ===========================================================================
# SyncConflict: known versus unknown baseline
# ===========================================================================


def test_conflict_infers_baseline_known_like_the_seed() -> None:
    """Without baseline_known, a non-None last_sync_value means the baseline is known."""
    assert SyncConflict("f", 1, 2, "r", "old").baseline_known is True
    assert SyncConflict("f", 1, 2, "r").baseline_known is False


def test_conflict_can_record_a_none_baseline() -> None:
    """baseline_known=True with last_sync_value=None records a baseline that was None."""
    conflict = SyncConflict("f", 1, 2, "r", None, baseline_known=True)
    assert conflict.baseline_known is True
    assert conflict.last_sync_value is None


def test_conflict_rejects_unknown_baseline_with_a_value() -> None:
    """baseline_known=False with a last_sync_value is contradictory and refused."""
    with pytest.raises(SyncArgumentError, match="last_sync_value must be None") as info:
        SyncConflict("f", 1, 2, "r", "old", baseline_known=False)
    assert info.value.argument == "last_sync_value"
    assert info.value.value == "old"


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"baseline_known": "yes"}, "baseline_known"),
        ({"reason": "tie"}, "reason"),
        ({"detected_at": "2026-01-01"}, "detected_at"),
        ({"system_a_modified_at": 5}, "system_a_modified_at"),
        ({"system_b_modified_at": 5}, "system_b_modified_at"),
    ],
)
def test_conflict_validates_argument_types(kwargs: dict[str, Any], argument: str) -> None:
    """SyncConflict refuses wrongly typed keyword arguments, naming the argument."""
    with pytest.raises(SyncArgumentTypeError, match=argument) as info:
        SyncConflict("f", 1, 2, "r", **kwargs)
    assert info.value.argument == argument
    assert isinstance(info.value, TypeError)


def test_conflict_refuses_naive_and_aware_times_together() -> None:
    """Mixing a naive and an aware modification time is refused up front."""
    with pytest.raises(SyncArgumentTypeError, match="naive and aware"):
        SyncConflict("f", 1, 2, "r", system_a_modified_at=T0, system_b_modified_at=_naive())


def _naive() -> datetime:
    return datetime(2026, 3, 1, 12, 0)


def test_conflict_is_frozen() -> None:
    """A conflict is an immutable value."""
    conflict = SyncConflict("f", 1, 2, "r")
    with pytest.raises(dataclasses.FrozenInstanceError):
        conflict.value_a = 3  # type: ignore[misc]


def test_conflict_replace_keeps_fields() -> None:
    """dataclasses.replace works on a conflict and keeps the other fields."""
    conflict = SyncConflict("f", 1, 2, "r", None, T0, baseline_known=True)
    changed = dataclasses.replace(conflict, reason=ConflictReason.TIE)
    assert changed.reason is ConflictReason.TIE
    assert changed.baseline_known is True
    assert changed.detected_at == T0


# ===========================================================================
# detect_conflict: the new baseline semantics
# ===========================================================================


def test_detect_conflict_treats_explicit_none_as_a_real_baseline() -> None:
    """An explicit last_sync_value=None is a baseline: only B moved away from it."""
    boundary = _contact_boundary()
    assert boundary.detect_conflict("email", None, "b@x.com", "r", last_sync_value=None) is None


def test_detect_conflict_absent_means_unknown_baseline() -> None:
    """Passing ABSENT is the same as leaving last_sync_value out."""
    boundary = _contact_boundary(clock=_fixed_clock)
    omitted = boundary.detect_conflict("email", None, "b@x.com", "r")
    explicit = boundary.detect_conflict("email", None, "b@x.com", "r", last_sync_value=ABSENT)
    assert omitted is not None
    assert omitted == explicit
    assert omitted.baseline_known is False
    assert omitted.last_sync_value is None
    assert omitted.reason is ConflictReason.NO_BASELINE


def test_detect_conflict_reason_and_clock() -> None:
    """A two-sided edit is BOTH_CHANGED and is stamped with the boundary's clock."""
    conflict = _contact_boundary(clock=_fixed_clock).detect_conflict("email", 1, 2, "r", None)
    assert conflict is not None
    assert conflict.reason is ConflictReason.BOTH_CHANGED
    assert conflict.baseline_known is True
    assert conflict.detected_at == T0


# ===========================================================================
# plan(): authority rules
# ===========================================================================


def test_system_a_field_copies_a_to_b() -> None:
    """A SYSTEM_A field that differs is written to B with A's value."""
    plan = _one_field(A).plan({"f": "new"}, {"f": "old"}, {"f": "old"})
    assert dict(plan.updates_b) == {"f": "new"}
    assert dict(plan.updates_a) == {}
    assert plan.conflicts == ()
    assert dict(plan.new_baseline) == {"f": "new"}


def test_system_a_field_overwrites_b_edit_without_override() -> None:
    """Without allow_system_b_override, a B edit of a SYSTEM_A field is overwritten (seed)."""
    plan = _one_field(A).plan({"f": "base"}, {"f": "b-edit"}, {"f": "base"})
    assert dict(plan.updates_b) == {"f": "base"}
    assert plan.conflicts == ()


def test_system_a_field_sends_b_edit_to_review_with_override() -> None:
    """With allow_system_b_override, a B edit of a SYSTEM_A field goes to review."""
    boundary = _one_field(A, allow_system_b_override=True)
    plan = boundary.plan({"f": "base"}, {"f": "b-edit"}, {"f": "base"}, record_id="r9")
    assert plan.updates_a == {}
    assert plan.updates_b == {}
    (conflict,) = plan.conflicts
    assert conflict.reason is ConflictReason.B_OVERRIDE
    assert (conflict.value_a, conflict.value_b, conflict.last_sync_value) == (
        "base",
        "b-edit",
        "base",
    )
    assert conflict.record_id == "r9"
    assert dict(plan.new_baseline) == {"f": "base"}


def test_system_a_override_still_propagates_a_edits() -> None:
    """With the override flag, an A edit over an unchanged B is still copied to B."""
    boundary = _one_field(A, allow_system_b_override=True)
    plan = boundary.plan({"f": "a-edit"}, {"f": "base"}, {"f": "base"})
    assert dict(plan.updates_b) == {"f": "a-edit"}
    assert plan.conflicts == ()


def test_system_a_override_reviews_two_sided_edits() -> None:
    """With the override flag, a B edit is reviewed even when A also changed."""
    boundary = _one_field(A, allow_system_b_override=True)
    plan = boundary.plan({"f": "a-edit"}, {"f": "b-edit"}, {"f": "base"})
    assert [c.reason for c in plan.conflicts] == [ConflictReason.B_OVERRIDE]


def test_system_a_override_without_baseline_sends_a_differing_b_value_to_review() -> None:
    """With the override flag but no baseline, B's differing value may be an edit: review."""
    boundary = _one_field(A, allow_system_b_override=True)
    plan = boundary.plan({"f": "a"}, {"f": "b"})
    assert plan.updates_b == {}
    assert [c.reason for c in plan.conflicts] == [ConflictReason.B_OVERRIDE]
    assert plan.conflicts[0].baseline_known is False
    filled = boundary.plan({"f": "a"}, {})  # a field missing from B is not an edit
    assert dict(filled.updates_b) == {"f": "a"}
    assert filled.conflicts == ()


def test_nan_values_converge() -> None:
    """Two NaNs are the same value: equal NaNs plan nothing, and a re-plan is empty."""
    nan = float("nan")
    boundary = _one_field(A)
    plan = boundary.plan({"f": nan}, {"f": float("nan")}, {"f": nan})
    assert plan.is_empty
    first = boundary.plan({"f": nan}, {"f": 1.0}, {"f": 1.0})
    again = boundary.plan(*first.apply({"f": nan}, {"f": 1.0}), first.new_baseline)
    assert again.is_empty
    assert boundary.detect_conflict("f", nan, float("nan"), "r") is None


def test_system_b_field_copies_b_to_a() -> None:
    """A SYSTEM_B field that differs is written to A with B's value."""
    plan = _one_field(B).plan({"f": "old"}, {"f": "new"}, {"f": "old"})
    assert dict(plan.updates_a) == {"f": "new"}
    assert plan.updates_b == {}
    assert dict(plan.new_baseline) == {"f": "new"}


def test_system_b_field_overwrites_a_edit_without_override() -> None:
    """Without allow_system_a_override, an A edit of a SYSTEM_B field is overwritten."""
    plan = _one_field(B).plan({"f": "a-edit"}, {"f": "base"}, {"f": "base"})
    assert dict(plan.updates_a) == {"f": "base"}


def test_system_b_field_sends_a_edit_to_review_with_override() -> None:
    """With allow_system_a_override, an A edit of a SYSTEM_B field goes to review."""
    boundary = _one_field(B, allow_system_a_override=True)
    plan = boundary.plan({"f": "a-edit"}, {"f": "base"}, {"f": "base"})
    assert [c.reason for c in plan.conflicts] == [ConflictReason.A_OVERRIDE]
    assert plan.updates_a == {}
    assert plan.updates_b == {}


def test_manual_field_reviews_any_difference() -> None:
    """A MANUAL field goes to review on any difference, even a one-sided edit."""
    plan = _one_field(MANUAL).plan({"f": "a-edit"}, {"f": "base"}, {"f": "base"})
    assert [c.reason for c in plan.conflicts] == [ConflictReason.MANUAL_AUTHORITY]
    assert plan.updates_a == {}
    assert plan.updates_b == {}


def test_manual_field_equal_values_are_recorded_in_baseline() -> None:
    """A MANUAL field with equal values needs nothing and becomes the baseline."""
    plan = _one_field(MANUAL).plan({"f": 7}, {"f": 7})
    assert plan.is_empty
    assert dict(plan.new_baseline) == {"f": 7}


# ===========================================================================
# plan(): shared fields
# ===========================================================================


def test_shared_field_only_a_changed_updates_b() -> None:
    """A SHARED field changed only in A is copied to B."""
    plan = _one_field(SHARED).plan({"f": "a"}, {"f": "base"}, {"f": "base"})
    assert dict(plan.updates_b) == {"f": "a"}
    assert plan.updates_a == {}


def test_shared_field_only_b_changed_updates_a() -> None:
    """A SHARED field changed only in B is copied to A."""
    plan = _one_field(SHARED).plan({"f": "base"}, {"f": "b"}, {"f": "base"})
    assert dict(plan.updates_a) == {"f": "b"}
    assert plan.updates_b == {}


def test_shared_field_same_edit_on_both_sides_agrees() -> None:
    """Both sides changing to the same value needs no update and moves the baseline."""
    plan = _one_field(SHARED).plan({"f": "same"}, {"f": "same"}, {"f": "base"})
    assert plan.is_empty
    assert dict(plan.new_baseline) == {"f": "same"}


def test_shared_last_writer_wins_a_later() -> None:
    """Under last-writer-wins, a later A edit is written to B."""
    plan = _one_field(SHARED).plan(
        {"f": "a"}, {"f": "b"}, {"f": "base"}, modified_a={"f": _at(20)}, modified_b={"f": _at(10)}
    )
    assert dict(plan.updates_b) == {"f": "a"}
    assert plan.updates_a == {}


def test_shared_last_writer_wins_b_later_with_record_level_times() -> None:
    """A single datetime per side applies to every field; a later B edit is written to A."""
    plan = _one_field(SHARED).plan(
        {"f": "a"}, {"f": "b"}, {"f": "base"}, modified_a=_at(10), modified_b=_at(20)
    )
    assert dict(plan.updates_a) == {"f": "b"}
    assert plan.updates_b == {}


def test_shared_last_writer_wins_without_baseline() -> None:
    """Without a baseline, two different values are settled by the timestamps."""
    plan = _one_field(SHARED).plan({"f": "a"}, {"f": "b"}, modified_a=_at(30), modified_b=_at(20))
    assert dict(plan.updates_b) == {"f": "a"}


def test_shared_last_writer_wins_missing_time_goes_to_review() -> None:
    """A missing modification time sends the two-sided edit to review."""
    plan = _one_field(SHARED).plan(
        {"f": "a"}, {"f": "b"}, {"f": "base"}, modified_a={"f": _at(1)}, modified_b={"f": None}
    )
    (conflict,) = plan.conflicts
    assert conflict.reason is ConflictReason.NO_TIMESTAMPS
    assert conflict.system_a_modified_at == _at(1)
    assert conflict.system_b_modified_at is None
    assert plan.updates_a == {}
    assert plan.updates_b == {}


def test_shared_last_writer_wins_tie_goes_to_review() -> None:
    """Equal modification times send the two-sided edit to review."""
    plan = _one_field(SHARED).plan(
        {"f": "a"}, {"f": "b"}, {"f": "base"}, modified_a=_at(5), modified_b=_at(5)
    )
    (conflict,) = plan.conflicts
    assert conflict.reason is ConflictReason.TIE
    assert conflict.last_writer() is None


def test_shared_review_policy() -> None:
    """The REVIEW policy reviews two-sided edits (both-changed) and unknown baselines."""
    boundary = _one_field(SHARED, shared_policy=SharedPolicy.REVIEW)
    both = boundary.plan(
        {"f": "a"}, {"f": "b"}, {"f": "base"}, modified_a=_at(2), modified_b=_at(1)
    )
    assert [c.reason for c in both.conflicts] == [ConflictReason.BOTH_CHANGED]
    unknown = boundary.plan({"f": "a"}, {"f": "b"})
    assert [c.reason for c in unknown.conflicts] == [ConflictReason.NO_BASELINE]
    assert unknown.conflicts[0].baseline_known is False


def test_shared_policy_accepts_string_value() -> None:
    """shared_policy also accepts a SharedPolicy's string value."""
    boundary = _one_field(SHARED, shared_policy="review")
    assert boundary.shared_policy is SharedPolicy.REVIEW


def test_shared_merge_callable_writes_result_to_both_sides() -> None:
    """A merge callable's result is written to both systems and becomes the baseline."""
    calls: list[tuple[Any, ...]] = []

    def merge(name: str, value_a: Any, value_b: Any, baseline: Any) -> Any:
        calls.append((name, value_a, value_b, baseline))
        return sorted({*value_a, *value_b})

    boundary = _one_field(SHARED, shared_policy=merge)
    plan = boundary.plan({"f": ["x", "a"]}, {"f": ["x", "b"]}, {"f": ["x"]})
    assert calls == [("f", ["x", "a"], ["x", "b"], ["x"])]
    assert dict(plan.updates_a) == {"f": ["a", "b", "x"]}
    assert dict(plan.updates_b) == {"f": ["a", "b", "x"]}
    assert dict(plan.new_baseline) == {"f": ["a", "b", "x"]}


def test_shared_merge_result_equal_to_one_side_updates_only_the_other() -> None:
    """When the merge picks one side's value, only the other side is updated."""
    boundary = _one_field(SHARED, shared_policy=lambda _n, a, b, _base: max(a, b))
    plan = boundary.plan({"f": 3}, {"f": 9}, {"f": 1})
    assert dict(plan.updates_a) == {"f": 9}
    assert plan.updates_b == {}


def test_shared_merge_gets_absent_for_unknown_baseline() -> None:
    """Without a baseline, the merge callable receives ABSENT as the baseline."""
    seen: list[Any] = []

    def merge(_name: str, value_a: Any, _value_b: Any, baseline: Any) -> Any:
        seen.append(baseline)
        return value_a

    _one_field(SHARED, shared_policy=merge).plan({"f": 1}, {"f": 2})
    assert seen == [ABSENT]


def test_shared_merge_never_sees_a_missing_value() -> None:
    """A removal on one side against an edit on the other goes to review, not to merge."""

    def merge(*_args: Any) -> Any:
        raise AssertionError("merge must not be called")

    plan = _one_field(SHARED, shared_policy=merge).plan({}, {"f": "b-edit"}, {"f": "base"})
    (conflict,) = plan.conflicts
    assert conflict.reason is ConflictReason.ABSENT
    assert conflict.value_a is ABSENT


def test_merge_error_names_field_and_keeps_cause() -> None:
    """A merge callable that raises is wrapped in MergeError naming the field."""

    def merge(*_args: Any) -> Any:
        raise ZeroDivisionError("boom")

    with pytest.raises(MergeError, match=r"'f'.*ZeroDivisionError: boom") as info:
        _one_field(SHARED, shared_policy=merge).plan({"f": 1}, {"f": 2}, {"f": 0})
    assert info.value.field == "f"
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert isinstance(info.value, SyncBoundaryError)


# ===========================================================================
# plan(): echo suppression
# ===========================================================================


def test_echo_of_sync_write_is_not_sent_back() -> None:
    """Sync wrote "x" to B, A moved on to "y", B echoes "x": B gets "y", A is not reverted."""
    boundary = _one_field(SHARED)
    first = boundary.plan({"f": "x"}, {}, {})
    assert dict(first.updates_b) == {"f": "x"}
    record_a, _ = first.apply({"f": "x"}, {})
    record_a["f"] = "y"  # A edits after the sync
    echo = {"f": "x"}  # B's change feed replays what sync wrote
    second = boundary.plan(record_a, echo, first.new_baseline)
    assert dict(second.updates_b) == {"f": "y"}
    assert second.updates_a == {}
    assert second.conflicts == ()


def test_echo_suppression_through_mapping_and_transforms() -> None:
    """An echoed value in B's name and representation is recognised as sync's own write."""
    boundary = SyncBoundary(
        "contact", "crm", "erp", {"email": A}, field_map={"email": _upper_mapping()}
    )
    first = boundary.plan({"email": "x@example.com"}, {})
    assert dict(first.updates_b) == {"EmailAddress": "X@EXAMPLE.COM"}
    echo = {"EmailAddress": "X@EXAMPLE.COM"}
    second = boundary.plan({"email": "y@example.com"}, echo, first.new_baseline)
    assert dict(second.updates_b) == {"EmailAddress": "Y@EXAMPLE.COM"}
    assert second.updates_a == {}


def test_naive_two_way_diff_would_revert_a() -> None:
    """Without the baseline the same echo is ambiguous and is not silently applied."""
    plan = _one_field(SHARED).plan({"f": "y"}, {"f": "x"})
    assert plan.updates_a == {}
    assert [c.reason for c in plan.conflicts] == [ConflictReason.NO_TIMESTAMPS]


# ===========================================================================
# plan(): field mapping and transforms
# ===========================================================================


def test_mapping_uses_b_names_and_b_representation() -> None:
    """Updates for B use B's field names and values converted with to_b."""
    boundary = SyncBoundary(
        "contact",
        "crm",
        "erp",
        {"email": A, "limit": B},
        field_map={"email": _upper_mapping(), "limit": "CreditLimit"},
    )
    plan = boundary.plan(
        {"email": "ada@example.com", "limit": 0}, {"EmailAddress": "OLD@X", "CreditLimit": 500}
    )
    assert dict(plan.updates_b) == {"EmailAddress": "ADA@EXAMPLE.COM"}
    assert dict(plan.updates_a) == {"limit": 500}
    assert dict(plan.new_baseline) == {"email": "ada@example.com", "limit": 500}
    assert boundary.b_name_for("email") == "EmailAddress"
    assert boundary.b_name_for("limit") == "CreditLimit"
    assert boundary.b_name_for("nope") is None


def test_values_are_compared_in_a_representation() -> None:
    """B's value, converted with to_a, equal to A's value means no update."""
    boundary = SyncBoundary("c", "a", "b", {"email": A}, field_map={"email": _upper_mapping()})
    plan = boundary.plan({"email": "ada@x"}, {"EmailAddress": "ADA@X"})
    assert plan.is_empty
    assert dict(plan.new_baseline) == {"email": "ada@x"}


def test_conflict_values_are_in_a_representation() -> None:
    """A conflict reports A's field name and B's value after to_a."""
    boundary = SyncBoundary(
        "c", "a", "b", {"email": MANUAL}, field_map={"email": _upper_mapping()}, clock=_fixed_clock
    )
    (conflict,) = boundary.plan({"email": "a@x"}, {"EmailAddress": "B@X"}).conflicts
    assert (conflict.field_name, conflict.value_a, conflict.value_b) == ("email", "a@x", "b@x")


def test_excluded_mapping_is_ignored() -> None:
    """A field both excluded and mapped is not synced: exclusion wins."""
    boundary = SyncBoundary(
        "c", "a", "b", {"f": A, "notes": A}, {"notes"}, field_map={"notes": "Notes"}
    )
    plan = boundary.plan({"f": 1, "notes": "a"}, {"f": 1, "Notes": "b"})
    assert plan.is_empty
    assert boundary.b_name_for("notes") is None


def test_to_a_error_names_field_and_direction() -> None:
    """A to_a transform that raises becomes TransformError(field, "to_a") with the cause."""
    mapping = FieldMapping("N", to_b=str, to_a=int)
    boundary = SyncBoundary("c", "a", "b", {"n": B}, field_map={"n": mapping})
    with pytest.raises(TransformError, match="to_a transform for field 'n'") as info:
        boundary.plan({"n": 1}, {"N": "not a number"})
    assert (info.value.field, info.value.direction) == ("n", "to_a")
    assert isinstance(info.value.__cause__, ValueError)


def test_to_b_error_names_field_and_direction() -> None:
    """A to_b transform that raises becomes TransformError(field, "to_b") with the cause."""

    def to_b(value: Any) -> Any:
        return {"A": 1}[value]

    boundary = SyncBoundary(
        "c", "a", "b", {"n": A}, field_map={"n": FieldMapping("N", to_b=to_b, to_a=str)}
    )
    with pytest.raises(TransformError, match=r"to_b.*KeyError") as info:
        boundary.plan({"n": "Z"}, {})
    assert (info.value.field, info.value.direction) == ("n", "to_b")
    assert isinstance(info.value.__cause__, KeyError)


# ===========================================================================
# plan(): missing fields are ABSENT, never None
# ===========================================================================


def test_missing_on_b_is_filled_from_authoritative_a() -> None:
    """A SYSTEM_A field missing from B is written to B (e.g. a new record)."""
    plan = _one_field(A).plan({"f": None}, {})
    assert dict(plan.updates_b) == {"f": None}
    assert dict(plan.new_baseline) == {"f": None}


def test_missing_on_authoritative_side_is_reviewed_not_written_as_none() -> None:
    """A SYSTEM_A field missing from A is not wiped from B: it goes to review."""
    plan = _one_field(A).plan({}, {"f": "keep"}, {"f": "keep"})
    assert plan.updates_b == {}
    (conflict,) = plan.conflicts
    assert conflict.reason is ConflictReason.ABSENT
    assert conflict.value_a is ABSENT
    assert conflict.value_b == "keep"
    assert dict(plan.new_baseline) == {"f": "keep"}


def test_missing_is_not_equal_to_none() -> None:
    """An explicit None and a missing field differ; None is copied like any value."""
    plan = _one_field(SHARED).plan({"f": None}, {})
    assert dict(plan.updates_b) == {"f": None}
    assert _one_field(SHARED).plan({"f": None}, {"f": None}).is_empty


def test_shared_missing_without_baseline_is_filled_from_the_other_side() -> None:
    """Without a baseline, a SHARED field present on one side only is copied over."""
    plan = _one_field(SHARED).plan({}, {"f": "b"})
    assert dict(plan.updates_a) == {"f": "b"}


def test_shared_removal_since_baseline_is_reviewed() -> None:
    """A SHARED field removed on one side since the baseline goes to review, not deletion."""
    plan = _one_field(SHARED).plan({"f": "base"}, {}, {"f": "base"})
    assert [c.reason for c in plan.conflicts] == [ConflictReason.ABSENT]
    assert plan.updates_a == {}


def test_missing_on_both_sides_is_left_alone() -> None:
    """A field missing from both records needs nothing and leaves the baseline."""
    plan = _one_field(SHARED).plan({}, {}, {"f": "stale"})
    assert plan.is_empty
    assert dict(plan.new_baseline) == {}


def test_last_writer_wins_for_a_missing_winner_is_reviewed() -> None:
    """Last-writer-wins that would copy a missing value goes to review instead."""
    plan = _one_field(SHARED).plan(
        {}, {"f": "b"}, {"f": "base"}, modified_a=_at(9), modified_b=_at(1)
    )
    assert [c.reason for c in plan.conflicts] == [ConflictReason.ABSENT]


# ===========================================================================
# plan(): baseline, boundary and plan values
# ===========================================================================


def test_explicit_none_baseline_is_known() -> None:
    """A baseline entry of None is a real baseline: only A changed away from it."""
    plan = _one_field(SHARED).plan({"f": "a"}, {"f": None}, {"f": None})
    assert dict(plan.updates_b) == {"f": "a"}
    assert plan.conflicts == ()


def test_conflict_records_whether_baseline_was_known() -> None:
    """Plan conflicts say whether a baseline was known; unknown keeps last_sync_value None."""
    boundary = _one_field(MANUAL)
    (known,) = boundary.plan({"f": 1}, {"f": 2}, {"f": None}).conflicts
    (unknown,) = boundary.plan({"f": 1}, {"f": 2}).conflicts
    assert (known.baseline_known, known.last_sync_value) == (True, None)
    assert (unknown.baseline_known, unknown.last_sync_value) == (False, None)


def test_conflict_keeps_previous_baseline_and_unknown_stays_unknown() -> None:
    """A conflicting field keeps its old baseline, or none if none was known."""
    boundary = _one_field(MANUAL)
    assert dict(boundary.plan({"f": 1}, {"f": 2}, {"f": 0}).new_baseline) == {"f": 0}
    assert dict(boundary.plan({"f": 1}, {"f": 2}).new_baseline) == {}


def test_fields_outside_boundary_are_never_touched() -> None:
    """Excluded and unmapped fields appear in no update, conflict or baseline."""
    boundary = _contact_boundary()
    plan = boundary.plan(
        {"email": "e", "internal_notes": "a", "extra": 1},
        {"email": "e", "internal_notes": "b", "extra": 2},
        {"internal_notes": "z", "extra": 0},
    )
    assert plan.is_empty
    assert dict(plan.new_baseline) == {"email": "e"}


def test_updates_follow_field_authority_order() -> None:
    """Updates and conflicts are listed in field_authority order."""
    boundary = SyncBoundary("c", "a", "b", {"z": A, "m": A, "a": A}, clock=_fixed_clock)
    plan = boundary.plan({"z": 1, "m": 1, "a": 1}, {})
    assert list(plan.updates_b) == ["z", "m", "a"]


def test_record_id_and_clock_are_used_once() -> None:
    """Conflicts carry the record id and one clock reading; no conflict, no reading."""
    readings: list[datetime] = []

    def clock() -> datetime:
        readings.append(_at(len(readings)))
        return readings[-1]

    boundary = SyncBoundary("c", "a", "b", {"f": MANUAL, "g": MANUAL}, clock=clock)
    assert boundary.plan({"f": 1, "g": 1}, {"f": 1, "g": 1}).is_empty
    assert readings == []
    plan = boundary.plan({"f": 1, "g": 1}, {"f": 2, "g": 2}, record_id="C-1")
    assert readings == [_at(0)]
    assert [(c.record_id, c.detected_at) for c in plan.conflicts] == [("C-1", _at(0))] * 2


def test_plan_is_a_read_only_value() -> None:
    """A plan's mappings cannot be modified and the plan cannot be reassigned."""
    plan = _one_field(A).plan({"f": 1}, {})
    with pytest.raises(TypeError):
        plan.updates_b["f"] = 2  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.record_id = "x"  # type: ignore[misc]


def test_plan_copies_its_inputs() -> None:
    """A SyncPlan built from dicts does not follow later changes to those dicts."""
    updates = {"f": 1}
    plan = SyncPlan(record_id="r", updates_a=updates, updates_b={}, conflicts=(), new_baseline={})
    updates["f"] = 2
    assert dict(plan.updates_a) == {"f": 1}


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"record_id": 1}, "record_id"),
        ({"conflicts": 3}, "conflicts"),
        ({"conflicts": ["not a conflict"]}, "conflicts"),
    ],
)
def test_plan_value_validation(kwargs: dict[str, Any], argument: str) -> None:
    """SyncPlan refuses a non-str record id and conflicts that are not SyncConflicts."""
    arguments: dict[str, Any] = {
        "record_id": "r",
        "updates_a": {},
        "updates_b": {},
        "conflicts": (),
        "new_baseline": {},
    }
    arguments.update(kwargs)
    with pytest.raises(SyncArgumentTypeError, match=argument) as info:
        SyncPlan(**arguments)
    assert info.value.argument == argument


def test_plan_rejects_non_mapping_fields() -> None:
    """SyncPlan refuses an update that is not a mapping."""
    with pytest.raises(SyncArgumentTypeError, match="updates_b must be a mapping"):
        SyncPlan(record_id="r", updates_a={}, updates_b=[], conflicts=(), new_baseline={})  # type: ignore[arg-type]


def test_apply_returns_new_dicts_and_leaves_inputs() -> None:
    """apply() returns updated copies and never mutates the records it is given."""
    boundary = SyncBoundary("c", "a", "b", {"f": A, "g": B}, field_map={"g": "G"})
    record_a = {"f": 1, "g": 1, "other": "a"}
    record_b = {"f": 0, "G": 2, "other": "b"}
    plan = boundary.plan(record_a, record_b)
    new_a, new_b = plan.apply(record_a, record_b)
    assert new_a == {"f": 1, "g": 2, "other": "a"}
    assert new_b == {"f": 1, "G": 2, "other": "b"}
    assert record_a == {"f": 1, "g": 1, "other": "a"}
    assert record_b == {"f": 0, "G": 2, "other": "b"}
    assert new_a is not record_a
    assert new_b is not record_b


def test_apply_rejects_non_mappings() -> None:
    """apply() refuses a record that is not a mapping."""
    plan = _one_field(A).plan({}, {})
    with pytest.raises(SyncArgumentTypeError, match="record_b must be a mapping"):
        plan.apply({}, ["f"])  # type: ignore[arg-type]


def test_is_empty() -> None:
    """is_empty is False when there is an update or a conflict."""
    assert not _one_field(A).plan({"f": 1}, {}).is_empty
    assert not _one_field(MANUAL).plan({"f": 1}, {"f": 2}).is_empty
    assert _one_field(A).plan({"f": 1}, {"f": 1}).is_empty


def test_plans_and_boundaries_pickle() -> None:
    """Boundaries and plans survive pickle and deepcopy (for process pools and caches)."""
    boundary = SyncBoundary(
        "c", "a", "b", {"f": MANUAL}, {"x"}, field_map={"f": "F"}, clock=_fixed_clock
    )
    plan = boundary.plan({"f": 1}, {"F": 2}, record_id="r")
    assert pickle.loads(pickle.dumps(boundary)) == boundary  # noqa: S301
    assert pickle.loads(pickle.dumps(plan)) == plan  # noqa: S301
    assert copy.deepcopy(plan) == plan
    assert pickle.loads(pickle.dumps(ABSENT)) is ABSENT  # noqa: S301


def test_boundary_is_immutable_configuration() -> None:
    """The boundary copies its arguments and exposes read-only views of them."""
    authority = {"f": A}
    excluded = {"x"}
    boundary = SyncBoundary("c", "a", "b", authority, excluded)
    authority["g"] = B
    excluded.add("f")
    assert boundary.synced_fields() == ["f"]
    assert boundary.excluded_fields == frozenset({"x"})
    with pytest.raises(TypeError):
        boundary.field_authority["g"] = B  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        boundary.allow_system_b_override = True  # type: ignore[misc]


def test_boundary_replace_revalidates() -> None:
    """dataclasses.replace builds a new, validated boundary."""
    boundary = SyncBoundary("c", "a", "b", {"f": SHARED}, field_map={"f": "F"})
    review = dataclasses.replace(boundary, shared_policy=SharedPolicy.REVIEW)
    assert review.shared_policy is SharedPolicy.REVIEW
    assert review.b_name_for("f") == "F"
    with pytest.raises(SyncArgumentError):
        dataclasses.replace(boundary, shared_policy="newest")  # type: ignore[arg-type]


def test_plan_is_safe_to_share_across_threads() -> None:
    """Many threads planning with one boundary all get the same plan."""
    boundary = SyncBoundary("c", "a", "b", {f"f{i}": SHARED for i in range(20)}, clock=_fixed_clock)
    record_a = {f"f{i}": i for i in range(20)}
    record_b = {f"f{i}": i + (i % 3) for i in range(20)}
    baseline = {f"f{i}": i for i in range(0, 20, 2)}
    expected = boundary.plan(record_a, record_b, baseline)
    with ThreadPoolExecutor(max_workers=8) as pool:
        plans = list(pool.map(lambda _: boundary.plan(record_a, record_b, baseline), range(200)))
    assert all(plan == expected for plan in plans)


def test_last_writer_on_plan_conflict() -> None:
    """Plan conflicts carry the per-field times, so last_writer() can be asked later."""
    boundary = _one_field(SHARED, shared_policy=SharedPolicy.REVIEW)
    plan = boundary.plan(
        {"f": 1}, {"f": 2}, {"f": 0}, modified_a={"f": _at(1)}, modified_b={"f": _at(2)}
    )
    assert plan.conflicts[0].last_writer() == B


def test_modified_b_is_keyed_by_b_names() -> None:
    """modified_b is looked up by B's field name."""
    boundary = SyncBoundary("c", "a", "b", {"f": SHARED}, field_map={"f": "F"})
    plan = boundary.plan(
        {"f": 1}, {"F": 2}, {"f": 0}, modified_a={"f": _at(1)}, modified_b={"F": _at(2)}
    )
    assert dict(plan.updates_a) == {"f": 2}


# ===========================================================================
# Validation
# ===========================================================================


@pytest.mark.parametrize(
    ("kwargs", "error", "fragments"),
    [
        ({"record_type": 5}, SyncArgumentTypeError, ["record_type", "5"]),
        ({"system_b_id": None}, SyncArgumentTypeError, ["system_b_id", "None"]),
        ({"field_authority": [("f", A)]}, SyncArgumentTypeError, ["field_authority"]),
        ({"field_authority": {"f": "system_a"}}, SyncArgumentTypeError, ["'f'", "'system_a'"]),
        ({"field_authority": {1: A}}, SyncArgumentTypeError, ["field_authority keys", "1"]),
        ({"excluded_fields": "notes"}, SyncArgumentTypeError, ["excluded_fields", "'notes'"]),
        ({"excluded_fields": 3}, SyncArgumentTypeError, ["excluded_fields", "3"]),
        ({"excluded_fields": ["a", 2]}, SyncArgumentTypeError, ["excluded_fields entries", "2"]),
        ({"allow_system_b_override": "yes"}, SyncArgumentTypeError, ["allow_system_b_override"]),
        ({"allow_system_a_override": 1}, SyncArgumentTypeError, ["allow_system_a_override"]),
        ({"field_map": ["f"]}, SyncArgumentTypeError, ["field_map must be a mapping"]),
        ({"field_map": {1: "F"}}, SyncArgumentTypeError, ["field_map keys", "1"]),
        ({"field_map": {"f": 3}}, SyncArgumentTypeError, ["field_map['f']", "3"]),
        ({"field_map": {"f": ""}}, SyncArgumentError, ["field_map['f']", "empty"]),
        ({"field_map": {"typo": "T"}}, SyncArgumentError, ["'typo'", "field_authority"]),
        ({"field_map": {"f": "g"}}, SyncArgumentError, ["'g'", "'f'"]),
        ({"field_map": {"f": "X", "g": "X"}}, SyncArgumentError, ["'X'", "'f'", "'g'"]),
        ({"shared_policy": "newest"}, SyncArgumentError, ["'newest'", "last-writer-wins"]),
        ({"shared_policy": 3}, SyncArgumentTypeError, ["shared_policy", "3"]),
        ({"clock": "now"}, SyncArgumentTypeError, ["clock", "'now'"]),
    ],
)
def test_boundary_validation(
    kwargs: dict[str, Any], error: type[Exception], fragments: list[str]
) -> None:
    """Bad constructor arguments raise the module's errors naming the argument and value."""
    arguments: dict[str, Any] = {
        "record_type": "c",
        "system_a_id": "a",
        "system_b_id": "b",
        "field_authority": {"f": A, "g": B},
    }
    arguments.update(kwargs)
    with pytest.raises(error) as info:
        SyncBoundary(**arguments)
    assert type(info.value) is error
    for fragment in fragments:
        assert fragment in str(info.value)
    argument = next(iter(kwargs))
    assert info.value.argument == argument  # type: ignore[attr-defined]
    assert isinstance(info.value, ValueError)


def test_duplicate_b_name_through_excluded_field_is_refused() -> None:
    """A B name used by an excluded, mapped field and a synced field is still a duplicate."""
    with pytest.raises(SyncArgumentError, match="'F'") as info:
        SyncBoundary("c", "a", "b", {"F": A}, {"x"}, field_map={"x": "F"})
    assert info.value.field == "x"


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"b_name": 3}, SyncArgumentTypeError, "b_name must be a str"),
        ({"b_name": ""}, SyncArgumentError, "b_name must not be empty"),
        ({"b_name": "B", "to_b": "upper", "to_a": str.lower}, SyncArgumentTypeError, "to_b"),
        ({"b_name": "B", "to_b": str.upper, "to_a": 1}, SyncArgumentTypeError, "to_a"),
        ({"b_name": "B", "to_b": str.upper}, SyncArgumentError, "given together"),
        ({"b_name": "B", "to_a": str.lower}, SyncArgumentError, "only to_a"),
    ],
)
def test_field_mapping_validation(
    kwargs: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    """FieldMapping refuses a bad name, a non-callable transform or a lone transform."""
    with pytest.raises(error, match=fragment) as info:
        FieldMapping(**kwargs)
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("args", "kwargs", "argument"),
    [
        (([], {}), {}, "record_a"),
        (({}, None), {}, "record_b"),
        (({}, {}, "baseline"), {}, "last_synced"),
        (({}, {}), {"record_id": 7}, "record_id"),
        (({}, {}), {"modified_a": "yesterday"}, "modified_a"),
        (({}, {}), {"modified_b": {"f": 5}}, "modified_b"),
        (({}, {}), {"modified_a": T0, "modified_b": {"f": _naive()}}, "modified_b"),
        (({}, {}), {"modified_a": {"f": T0, "g": _naive()}}, "modified_a"),
    ],
)
def test_plan_validation(args: tuple[Any, ...], kwargs: dict[str, Any], argument: str) -> None:
    """Bad plan() arguments raise SyncArgumentTypeError naming the argument."""
    with pytest.raises(SyncArgumentTypeError) as info:
        _one_field(SHARED).plan(*args, **kwargs)
    assert info.value.argument == argument
    assert argument in str(info.value) or "naive and aware" in str(info.value)


def test_plan_timestamp_error_names_the_field() -> None:
    """A bad per-field modification time names that field."""
    with pytest.raises(SyncArgumentTypeError, match=r"modified_b\['F'\]") as info:
        _one_field(SHARED).plan({}, {}, modified_b={"F": "noon"})  # type: ignore[dict-item]
    assert info.value.field == "F"
    assert info.value.value == "noon"


def test_error_tree() -> None:
    """Every module error derives from SyncBoundaryError, itself a ValueError."""
    assert issubclass(SyncBoundaryError, ValueError)
    for error in (SyncArgumentError, TransformError, MergeError):
        assert issubclass(error, SyncBoundaryError)
    assert issubclass(SyncArgumentTypeError, SyncArgumentError)
    assert issubclass(SyncArgumentTypeError, TypeError)


# ===========================================================================
# Property-based tests with hypothesis
# ===========================================================================

FIELDS = ("f0", "f1", "f2", "f3", "f4")
OUTSIDE = ("extra", "notes")
VALUES = st.sampled_from([None, 0, 1, "x", "y", ABSENT])  # ABSENT: leave the key out
TIMES = st.one_of(st.none(), st.sampled_from([_at(0), _at(1), _at(2)]))
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _wrap(value: Any) -> Any:
    return ("wrapped", value)


def _unwrap(value: Any) -> Any:
    return value[1]


def _merge_by_repr(_name: str, value_a: Any, value_b: Any, _baseline: Any) -> Any:
    return max((value_a, value_b), key=repr)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One drawn boundary, record pair, baseline and timestamps."""

    boundary: SyncBoundary
    record_a: dict[str, Any]
    record_b: dict[str, Any]
    baseline: dict[str, Any]
    modified_a: Any
    modified_b: Any

    def plan(
        self,
        record_a: Mapping[str, Any] | None = None,
        record_b: Mapping[str, Any] | None = None,
        baseline: Mapping[str, Any] | None = None,
    ) -> SyncPlan:
        return self.boundary.plan(
            self.record_a if record_a is None else record_a,
            self.record_b if record_b is None else record_b,
            self.baseline if baseline is None else baseline,
            record_id="R",
            modified_a=self.modified_a,
            modified_b=self.modified_b,
        )

    def a_view_of_b(self, record_b: Mapping[str, Any], name: str) -> Any:
        """B's value for A's field ``name``, in A's representation, or ABSENT."""
        b_name = self.boundary.b_name_for(name)
        assert b_name is not None
        if b_name not in record_b:
            return ABSENT
        mapping = self.boundary.field_map.get(name)
        if mapping is None or mapping.to_a is None:
            return record_b[b_name]
        return mapping.to_a(record_b[b_name])


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    authority = {
        name: draw(st.sampled_from(list(RecordAuthority)))
        for name in FIELDS
        if draw(st.booleans()) or name == "f0"
    }
    excluded = draw(st.sets(st.sampled_from(FIELDS[1:] + OUTSIDE[1:])))
    field_map: dict[str, str | FieldMapping] = {}
    for name in authority:
        kind = draw(st.sampled_from(["same", "renamed", "transformed"]))
        if kind == "renamed":
            field_map[name] = "B_" + name
        elif kind == "transformed":
            field_map[name] = FieldMapping("B_" + name, to_b=_wrap, to_a=_unwrap)
    policies: list[SharedPolicy | Callable[[str, Any, Any, Any], Any]] = [
        SharedPolicy.LAST_WRITER_WINS,
        SharedPolicy.REVIEW,
        _merge_by_repr,
    ]
    policy = draw(st.sampled_from(policies))
    boundary = SyncBoundary(
        "thing",
        "a",
        "b",
        authority,
        excluded,
        draw(st.booleans()),
        allow_system_a_override=draw(st.booleans()),
        field_map=field_map,
        shared_policy=policy,
        clock=_fixed_clock,
    )
    record_a: dict[str, Any] = {}
    record_b: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    modified_a: dict[str, datetime | None] = {}
    modified_b: dict[str, datetime | None] = {}
    for name in FIELDS + OUTSIDE:
        mapping = field_map.get(name)
        b_name = name if mapping is None else getattr(mapping, "b_name", mapping)
        assert isinstance(b_name, str)
        value = draw(VALUES)
        if value is not ABSENT:
            record_a[name] = value
        value = draw(VALUES)
        if value is not ABSENT:
            record_b[b_name] = _wrap(value) if isinstance(mapping, FieldMapping) else value
        value = draw(VALUES)
        if value is not ABSENT:
            baseline[name] = value
        modified_a[name] = draw(TIMES)
        modified_b[b_name] = draw(TIMES)
    style = draw(st.sampled_from(["none", "record", "field"]))
    if style == "none":
        return Scenario(boundary, record_a, record_b, baseline, None, None)
    if style == "record":
        return Scenario(boundary, record_a, record_b, baseline, _at(1), draw(TIMES))
    return Scenario(boundary, record_a, record_b, baseline, modified_a, modified_b)


@PROPERTY_SETTINGS
@given(scenarios())
def test_property_apply_converges_non_conflicting_fields(scenario: Scenario) -> None:
    """After apply(), every synced, non-conflicting field is equal in both systems."""
    plan = scenario.plan()
    new_a, new_b = plan.apply(scenario.record_a, scenario.record_b)
    in_review = {conflict.field_name for conflict in plan.conflicts}
    for name in scenario.boundary.synced_fields():
        if name in in_review:
            continue
        assert new_a.get(name, ABSENT) == scenario.a_view_of_b(new_b, name), name


@PROPERTY_SETTINGS
@given(scenarios())
def test_property_replanning_is_a_fixed_point(scenario: Scenario) -> None:
    """Re-planning the applied records with the new baseline (same times) updates nothing.

    Proved precisely: the second plan has no updates for either system, exactly the
    same conflicts (unresolved fields stay unresolved, with the same reason and
    values), and the same new baseline.
    """
    plan = scenario.plan()
    new_a, new_b = plan.apply(scenario.record_a, scenario.record_b)
    again = scenario.plan(new_a, new_b, plan.new_baseline)
    assert again.updates_a == {}
    assert again.updates_b == {}
    assert again.conflicts == plan.conflicts
    assert again.new_baseline == plan.new_baseline


@PROPERTY_SETTINGS
@given(scenarios())
def test_property_plan_never_mutates_inputs(scenario: Scenario) -> None:
    """plan() and apply() leave the records, baseline and timestamps untouched."""
    before = copy.deepcopy(
        (
            scenario.record_a,
            scenario.record_b,
            scenario.baseline,
            scenario.modified_a,
            scenario.modified_b,
        )
    )
    plan = scenario.plan()
    plan.apply(scenario.record_a, scenario.record_b)
    after = (
        scenario.record_a,
        scenario.record_b,
        scenario.baseline,
        scenario.modified_a,
        scenario.modified_b,
    )
    assert after == before


@PROPERTY_SETTINGS
@given(scenarios())
def test_property_fields_outside_boundary_never_updated(scenario: Scenario) -> None:
    """Only synced fields (by A's or B's name) appear in updates, conflicts and the baseline."""
    plan = scenario.plan()
    synced = set(scenario.boundary.synced_fields())
    b_names = {scenario.boundary.b_name_for(name) for name in synced}
    assert set(plan.updates_a) <= synced
    assert set(plan.updates_b) <= b_names
    assert set(plan.new_baseline) <= synced
    in_review = {conflict.field_name for conflict in plan.conflicts}
    assert in_review <= synced
    assert not in_review & set(plan.updates_a)
    assert not {scenario.boundary.b_name_for(name) for name in in_review} & set(plan.updates_b)
    assert all(value is not ABSENT for value in plan.updates_a.values())
    assert all(value is not ABSENT for value in plan.new_baseline.values())


JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.datetimes(),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.dictionaries(
        st.sampled_from(["f", "F", "g", 1]),
        st.one_of(
            st.none(),
            st.integers(),
            st.datetimes(),
            st.datetimes(timezones=st.just(timezone.utc)),
            st.sampled_from(list(RecordAuthority)),
        ),
        max_size=3,
    ),
)


@settings(max_examples=400, deadline=None)
@given(record_a=JUNK, record_b=JUNK, last=JUNK, record_id=JUNK, mod_a=JUNK, mod_b=JUNK)
def test_fuzz_plan_raises_only_module_errors(
    *, record_a: Any, record_b: Any, last: Any, record_id: Any, mod_a: Any, mod_b: Any
) -> None:
    """plan() on arbitrary inputs either returns a plan or raises a SyncBoundaryError."""
    boundary = SyncBoundary(
        "c", "a", "b", {"f": SHARED, "g": A}, field_map={"f": "F"}, clock=_fixed_clock
    )
    try:
        plan = boundary.plan(
            record_a,
            record_b,
            last,
            record_id=record_id,
            modified_a=mod_a,
            modified_b=mod_b,
        )
    except SyncBoundaryError:
        return
    plan.apply(record_a, record_b)


@settings(max_examples=400, deadline=None)
@given(JUNK, JUNK, JUNK, JUNK, st.one_of(JUNK, st.sets(st.text(max_size=2), max_size=2)))
def test_fuzz_constructor_raises_only_module_errors(
    record_type: Any, authority: Any, field_map: Any, policy: Any, excluded: Any
) -> None:
    """SyncBoundary on arbitrary arguments either succeeds or raises a SyncBoundaryError."""
    try:
        SyncBoundary(
            record_type,
            "a",
            "b",
            authority,
            excluded,
            field_map=field_map,
            shared_policy=policy,
        )
    except SyncBoundaryError:
        return


def test_absent_sentinel_is_distinct_and_readable() -> None:
    """ABSENT prints as ABSENT and is equal only to itself, never to None."""
    assert repr(ABSENT) == "ABSENT"
    assert str(ABSENT) == "ABSENT"
    assert ABSENT != None  # noqa: E711
    assert copy.deepcopy(ABSENT) is ABSENT
