"""The conformance table of README.md: counted by the test suite, never typed by hand.

The table says how many conformance vectors the tests check, per area (CloudEvents JSON
format, HTTP and Kafka bindings, Debezium, each webhook provider, the Kafka Connect and
Spring Kafka dead-letter headers, idempotency and saga vectors), and how many public
names of the seed package (integration-automation-patterns 0.1.0) interlock keeps.
``test_readme_shows_the_conformance_table`` renders the table and requires README.md to
hold it verbatim between ``<!-- conformance:start -->`` and ``<!-- conformance:end -->``.
To refresh it after the tests or the vectors changed::

    INTERLOCK_WRITE_CONFORMANCE=1 python -m pytest tests/test_conformance.py

which rewrites that section of README.md (and passes).

How the vector counts are made, so that they cannot drift from what is tested:

- A child process collects the whole test suite with pytest (``--collect-only``: nothing
  runs), so the test modules load their vectors with their own code, exactly as in a real
  run. Before collecting, the child wraps ``Path.read_text``, ``Path.read_bytes`` and
  ``json.loads``: every JSON value parsed from a file under ``../shared/vectors`` is
  remembered by identity, with its file and its JSON pointer.
- A *vector* is an element of a JSON array in a vector file, or a whole file when a test
  is parametrized by the file's name (the Debezium tests are). It is counted when some
  collected test case receives that very object (or that file name) as a parameter; when
  a test takes a vector and another takes a part of it, the vector counts once. A *test
  case* is one collected test id that receives at least one vector.
- So a vector no test takes any more drops out of the table, and a new parametrized test
  over a vector file enters it, without anyone editing this module. A vector copied or
  re-parsed before it reaches the parameters is not recognised, and vectors checked
  inside one test body (the JSON batch example, the 17 SDK divergences, each of which
  has a test function of its own) are not test cases of their own: the table can count
  fewer vectors than the tests check, never more.
- The area comes from the vector's file (the webhook provider from the file name) and,
  for the CloudEvents conformance features, from the case's ``binding``.

The seed row checks interlock itself: each public name of the seed's ``event_envelope``
and ``sync_boundary`` (classes, enum members with their values, constructor fields at
their positions, methods with their positional parameters, hard-coded below from the
0.1.0 wheel because the seed is frozen) is looked up in interlock's modules.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

import interlock

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START = "<!-- conformance:start -->"
END = "<!-- conformance:end -->"
WRITE_VARIABLE = "INTERLOCK_WRITE_CONFORMANCE"


def _vectors_dir() -> Path:
    """``shared/vectors`` beside the repository (or inside it), as the vector tests find it."""
    here = Path(__file__).resolve()
    for base in (here.parents[2], here.parents[1]):
        candidate = base / "shared" / "vectors"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/vectors")


# ======================================================================================
# The child process: collect the suite, record which vectors become parameters
# ======================================================================================


def _pointer(parent: str, key: object) -> str:
    """A JSON pointer (RFC 6901) one step below ``parent``."""
    return f"{parent}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _collect(vectors: Path, out: Path) -> int:
    """Collect the test suite; write which vectors each collected test case receives."""
    vectors = vectors.resolve()
    origins: dict[int, tuple[str, str]] = {}
    alive: list[object] = []  # every recorded object stays alive, so ids stay unique

    def record(value: object, file: str, pointer: str) -> None:
        # Containers and strings longer than one character are never shared between
        # parses (CPython caches only the empty and one-character strings).
        if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > 1):
            origins.setdefault(id(value), (file, pointer))
            alive.append(value)

    def walk(node: object, file: str, pointer: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, file, _pointer(pointer, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                record(child, file, _pointer(pointer, index))
                walk(child, file, _pointer(pointer, index))

    class VectorText(str):
        vector_file = ""

    class VectorBytes(bytes):
        vector_file = ""

    def vector_file(path: Path) -> str | None:
        resolved = path.resolve()
        return (
            resolved.relative_to(vectors).as_posix() if resolved.is_relative_to(vectors) else None
        )

    original_read_text = Path.read_text
    original_read_bytes = Path.read_bytes
    original_loads = json.loads

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        text = original_read_text(self, *args, **kwargs)
        file = vector_file(self)
        if file is None:
            return text
        tagged = VectorText(text)
        tagged.vector_file = file
        return tagged

    def read_bytes(self: Path) -> bytes:
        data = original_read_bytes(self)
        file = vector_file(self)
        if file is None:
            return data
        tagged = VectorBytes(data)
        tagged.vector_file = file
        return tagged

    def loads(source: Any, *args: Any, **kwargs: Any) -> Any:
        value = original_loads(source, *args, **kwargs)
        if isinstance(source, (VectorText, VectorBytes)):
            record(value, source.vector_file, "")
            walk(value, source.vector_file, "")
        return value

    files = {p.relative_to(vectors).as_posix() for p in vectors.rglob("*.json")}
    names: dict[str, str | None] = {}
    for file in sorted(files):
        base = file.rsplit("/", 1)[-1]
        names[base] = None if base in names else file  # an ambiguous base name is no name
        names[file] = file

    def origin_of(value: object) -> tuple[str, str] | None:
        if id(value) in origins:
            return origins[id(value)]
        if isinstance(value, str) and names.get(value):
            return str(names[value]), ""
        return None

    class Recorder:
        def __init__(self) -> None:
            self.cases: list[dict[str, Any]] = []

        def pytest_collection_finish(self, session: pytest.Session) -> None:
            for item in session.items:
                callspec = getattr(item, "callspec", None)
                if callspec is None:
                    continue
                found = [origin_of(value) for value in callspec.params.values()]
                hits = sorted({hit for hit in found if hit is not None})
                if hits:
                    self.cases.append({"nodeid": item.nodeid, "vectors": hits})

    Path.read_text = read_text  # type: ignore[method-assign]
    Path.read_bytes = read_bytes  # type: ignore[method-assign]
    json.loads = loads  # type: ignore[assignment]
    recorder = Recorder()
    try:
        code = pytest.main(
            [
                "--collect-only",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--ignore={Path(__file__).resolve()}",
                str(ROOT / "tests"),
            ],
            plugins=[recorder],
        )
    finally:
        Path.read_text = original_read_text  # type: ignore[method-assign]
        Path.read_bytes = original_read_bytes  # type: ignore[method-assign]
        json.loads = original_loads
    out.write_text(json.dumps(recorder.cases), encoding="utf-8")
    return int(code)


_COLLECTED: list[list[dict[str, Any]]] = []


def collected_vector_cases() -> list[dict[str, Any]]:
    """Each collected test case that receives vectors: its node id and its vectors."""
    if not _COLLECTED:
        env = dict(os.environ)
        source = str(Path(interlock.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "cases.json"
            child = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), str(_vectors_dir()), str(out)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            assert child.returncode == 0, f"collection failed:\n{child.stdout}\n{child.stderr}"
            _COLLECTED.append(json.loads(out.read_text(encoding="utf-8")))
    return _COLLECTED[0]


# ======================================================================================
# Areas and the table
# ======================================================================================

PROVIDER_NAMES = {
    "github": "GitHub",
    "hubspot": "HubSpot",
    "pagerduty": "PagerDuty",
    "sendgrid": "SendGrid",
    "standard_webhooks": "Standard Webhooks",
}
DEAD_LETTER_DIALECTS = {"kafka_connect": "Kafka Connect", "spring_kafka": "Spring Kafka"}
AREA_ORDER = [
    "CloudEvents 1.0.2: JSON format",
    "CloudEvents 1.0.2: HTTP binding",
    "CloudEvents 1.0.2: Kafka binding",
    "Debezium change events",
    "Webhooks: ",
    "Dead-letter headers: ",
    "Idempotency keys",
    "Transactional outbox",
    "Saga compensation order",
]


def _resolve(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer."""
    for token in pointer.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def area_of(file: str, pointer: str, vectors: Path) -> str:
    """The conformance area a vector belongs to, from its file (and for some, its content)."""
    folder, _, name = file.rpartition("/")
    stem = name.removesuffix(".json")
    if folder == "cloudevents":
        if name == "conformance-features.json" and pointer.count("/") >= 2:
            case = _resolve(json.loads((vectors / file).read_text(encoding="utf-8")), pointer)
            binding = str(case.get("binding", "")) if isinstance(case, dict) else ""
            label = binding.upper() if binding == "http" else binding.title()
            return f"CloudEvents 1.0.2: {label} binding"
        if name.startswith("ce-1.0.2-http-"):
            return "CloudEvents 1.0.2: HTTP binding"
        if name.startswith("ce-1.0.2-kafka-"):
            return "CloudEvents 1.0.2: Kafka binding"
        return "CloudEvents 1.0.2: JSON format"
    if folder == "debezium":
        return "Debezium change events"
    if folder == "webhooks":
        return "Webhooks: " + PROVIDER_NAMES.get(stem, stem.replace("_", " ").title())
    if file == "brokers/dead-letter-headers.json":
        dialect = pointer.split("/")[1] if pointer.count("/") >= 1 else ""
        return "Dead-letter headers: " + DEAD_LETTER_DIALECTS.get(dialect, dialect or "all")
    named = {
        "idempotency": "Idempotency keys",
        "outbox": "Transactional outbox",
        "sagas": "Saga compensation order",
    }
    return named.get(folder, f"{folder or 'vectors'}: {stem}")


def _outermost(found: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The vectors not inside another counted vector of the same file."""
    return {
        (file, pointer)
        for file, pointer in found
        if not any(
            other_file == file
            and other != pointer
            and (other == "" or pointer.startswith(other + "/"))
            for other_file, other in found
        )
    }


def vector_rows(cases: list[dict[str, Any]], vectors: Path) -> list[tuple[str, str, int, int]]:
    """(area, source, vectors, test cases) per area, in the table's order."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    tests: dict[str, set[str]] = defaultdict(set)
    for case in cases:
        for file, pointer in case["vectors"]:
            area = area_of(file, pointer, vectors)
            found[area].add((file, pointer))
            tests[area].add(case["nodeid"])
    rows = []
    for area in sorted(found, key=_area_key):
        counted = _outermost(found[area])
        files = sorted({file for file, _ in counted})
        source = f"`{files[0]}`" if len(files) == 1 else _files_in(files)
        rows.append((area, source, len(counted), len(tests[area])))
    return rows


def _area_key(area: str) -> tuple[int, str]:
    rank = next((i for i, p in enumerate(AREA_ORDER) if area.startswith(p)), len(AREA_ORDER))
    return rank, area


def _files_in(files: list[str]) -> str:
    folders = sorted({file.rpartition("/")[0] for file in files})
    where = ", ".join(f"`{folder}/`" for folder in folders)
    return f"{len(files)} files in {where}"


def _vectors(count: int) -> str:
    return f"{count} vector" if count == 1 else f"{count} vectors"


def render_table(cases: list[dict[str, Any]], vectors: Path) -> str:
    """The Markdown table README.md shows between the conformance markers."""
    rows = vector_rows(cases, vectors)
    all_files = {file for case in cases for file, _ in case["vectors"]}
    all_vectors = sum(count for _, _, count, _ in rows)
    all_tests = len({case["nodeid"] for case in cases})
    kept = [name for name in SEED_NAMES if seed_name_kept(name)]
    lines = [
        "| area | source | checked | test cases |",
        "| --- | --- | ---: | ---: |",
        *(f"| {a} | {s} | {_vectors(n)} | {t} |" for a, s, n, t in rows),
        (
            f"| all vectors | {len(all_files)} files in `shared/vectors/` | {_vectors(all_vectors)}"
            f" | {all_tests} |"
        ),
        (
            "| integration-automation-patterns 0.1.0 API | `event_envelope`, `sync_boundary` |"
            f" {len(kept)} of {len(SEED_NAMES)} names kept | {len(SEED_NAMES)} |"
        ),
    ]
    return "\n".join(lines) + "\n"


# ======================================================================================
# The seed's public names (integration-automation-patterns 0.1.0, from its wheel)
# ======================================================================================

SEED_API: dict[str, dict[str, dict[str, Any]]] = {
    "event_envelope": {
        "DeliveryStatus": {
            "members": {
                "PENDING": "pending",
                "DISPATCHED": "dispatched",
                "ACKNOWLEDGED": "acknowledged",
                "PROCESSED": "processed",
                "RETRYING": "retrying",
                "FAILED": "failed",
                "SKIPPED": "skipped",
            }
        },
        "RetryPolicy": {
            "fields": ("max_attempts", "backoff_seconds", "exponential", "max_backoff_seconds"),
            "methods": {
                "wait_seconds_for_attempt": ("attempt_number",),
                "is_exhausted": ("attempt_number",),
            },
        },
        "EventEnvelope": {
            "fields": (
                "event_id",
                "event_type",
                "source_system",
                "payload",
                "correlation_id",
                "schema_version",
                "created_at",
                "status",
                "attempt_count",
                "retry_policy",
                "tags",
            ),
            "methods": {
                "mark_dispatched": (),
                "mark_acknowledged": (),
                "mark_processed": (),
                "mark_failed": (),
                "mark_skipped": ("reason",),
                "next_retry_wait_seconds": (),
                "is_terminal": (),
                "to_audit_line": (),
            },
        },
    },
    "sync_boundary": {
        "RecordAuthority": {
            "members": {
                "SYSTEM_A": "system_a",
                "SYSTEM_B": "system_b",
                "SHARED": "shared",
                "MANUAL": "manual",
            }
        },
        "SyncConflict": {
            "fields": (
                "field_name",
                "value_a",
                "value_b",
                "record_id",
                "last_sync_value",
                "detected_at",
                "system_a_modified_at",
                "system_b_modified_at",
            ),
            "methods": {"last_writer": ()},
        },
        "SyncBoundary": {
            "fields": (
                "record_type",
                "system_a_id",
                "system_b_id",
                "field_authority",
                "excluded_fields",
                "allow_system_b_override",
            ),
            "methods": {
                "authority_for": ("field_name",),
                "is_synced": ("field_name",),
                "synced_fields": (),
                "fields_owned_by": ("authority",),
                "detect_conflict": (
                    "field_name",
                    "value_a",
                    "value_b",
                    "record_id",
                    "last_sync_value",
                    "system_a_modified_at",
                    "system_b_modified_at",
                ),
            },
        },
    },
}


def _seed_names() -> list[str]:
    names = []
    for module, classes in SEED_API.items():
        for cls, parts in classes.items():
            names.append(f"{module}.{cls}")
            names += [f"{module}.{cls}.{member}" for member in parts.get("members", {})]
            names += [f"{module}.{cls}.{field}" for field in parts.get("fields", ())]
            names += [f"{module}.{cls}.{method}" for method in parts.get("methods", {})]
    return names


SEED_NAMES = _seed_names()


def _positional(function: Any) -> list[str]:
    """The names of a callable's positional parameters (``self`` included for methods)."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]


def check_seed_name(module_name: str, cls_name: str, kind: str, name: str, seed: Any) -> bool:
    """Whether interlock has one seed name as the seed had it.

    ``kind`` is ``"class"``, ``"member"`` (``seed``: the enum value), ``"field"`` (``seed``:
    its position among the constructor's parameters) or ``"method"`` (``seed``: the names
    of its positional parameters after ``self``).
    """
    cls = getattr(importlib.import_module(f"interlock.{module_name}"), cls_name, None)
    if not isinstance(cls, type):
        return False
    if kind == "class":
        return True
    if kind == "member":
        member = cls.__members__.get(name) if issubclass(cls, Enum) else None
        return member is not None and member.value == seed
    if kind == "field":
        fields = _positional(cls)
        return bool(len(fields) > seed and fields[seed] == name)
    method = getattr(cls, name, None)
    return callable(method) and _positional(method)[1 : 1 + len(seed)] == list(seed)


def seed_name_kept(name: str) -> bool:
    """Whether interlock keeps the seed name ``module.Class[.attribute]``."""
    module_name, cls_name, *rest = name.split(".")
    if not rest:
        return check_seed_name(module_name, cls_name, "class", cls_name, None)
    (attribute,) = rest
    parts = SEED_API[module_name][cls_name]
    if attribute in parts.get("members", {}):
        return check_seed_name(
            module_name, cls_name, "member", attribute, parts["members"][attribute]
        )
    if attribute in parts.get("fields", ()):
        position = parts["fields"].index(attribute)
        return check_seed_name(module_name, cls_name, "field", attribute, position)
    return check_seed_name(module_name, cls_name, "method", attribute, parts["methods"][attribute])


# ======================================================================================
# Tests
# ======================================================================================


def test_seed_names_are_the_seeds_sixty_two() -> None:
    """The hard-coded seed list has every class, member, field and method of 0.1.0, once."""
    assert len(SEED_NAMES) == len(set(SEED_NAMES)) == 62


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_name_is_kept(name: str) -> None:
    """Each public name of integration-automation-patterns 0.1.0 still works in interlock."""
    assert seed_name_kept(name), f"interlock.{name} is not what the seed had"


def test_a_changed_seed_name_is_reported() -> None:
    """The check fails for a missing class or method, a changed value, position or signature."""
    assert check_seed_name("event_envelope", "EventEnvelope", "method", "mark_processed", ())
    assert not check_seed_name("sync_boundary", "NoSuchClass", "class", "NoSuchClass", None)
    assert not check_seed_name("event_envelope", "EventEnvelope", "method", "no_such", ())
    assert not check_seed_name("event_envelope", "DeliveryStatus", "member", "PENDING", "new")
    assert not check_seed_name("sync_boundary", "SyncBoundary", "field", "system_b_id", 1)
    assert not check_seed_name(
        "sync_boundary", "SyncBoundary", "method", "detect_conflict", ("value_a", "field_name")
    )


def test_areas_follow_the_files() -> None:
    """Vectors are sorted into areas by file, provider and CloudEvents binding."""
    vectors = _vectors_dir()
    features = json.loads((vectors / "cloudevents/conformance-features.json").read_text("utf-8"))
    bindings = {case["binding"] for case in features["cases"]}
    assert {"http", "kafka"} <= bindings
    kafka = next(i for i, case in enumerate(features["cases"]) if case["binding"] == "kafka")
    assert area_of("cloudevents/conformance-features.json", f"/cases/{kafka}", vectors) == (
        "CloudEvents 1.0.2: Kafka binding"
    )
    assert area_of("cloudevents/ce-1.0.2-spec-example.json", "", vectors).endswith("JSON format")
    assert area_of("webhooks/github.json", "/vectors/0", vectors) == "Webhooks: GitHub"
    assert area_of("brokers/dead-letter-headers.json", "/spring_kafka/headers/2", vectors) == (
        "Dead-letter headers: Spring Kafka"
    )
    assert _outermost({("a.json", "/v/1"), ("a.json", "/v/1/x/0"), ("b.json", "")}) == {
        ("a.json", "/v/1"),
        ("b.json", ""),
    }


def test_every_vector_area_has_test_cases() -> None:
    """The collection finds the vector tests of every area the issue names."""
    areas = {row[0] for row in vector_rows(collected_vector_cases(), _vectors_dir())}
    for expected in (
        "CloudEvents 1.0.2: JSON format",
        "CloudEvents 1.0.2: HTTP binding",
        "CloudEvents 1.0.2: Kafka binding",
        "Debezium change events",
        "Webhooks: Stripe",
        "Webhooks: Standard Webhooks",
        "Dead-letter headers: Kafka Connect",
        "Dead-letter headers: Spring Kafka",
    ):
        assert expected in areas
    providers = {area for area in areas if area.startswith("Webhooks: ")}
    index = json.loads((_vectors_dir() / "webhooks" / "index.json").read_text("utf-8"))
    assert len(providers) == len(index)  # one row per provider file


def test_readme_shows_the_conformance_table() -> None:
    """README.md holds the table this module computes, verbatim, between its markers."""
    table = render_table(collected_vector_cases(), _vectors_dir())
    expected = f"{START}\n{table}{END}"
    readme = README.read_text(encoding="utf-8")
    assert readme.count(START) == 1, f"README needs {START} once"
    assert readme.count(END) == 1, f"README needs {END} once"
    if os.environ.get(WRITE_VARIABLE, "") == "1":
        before, rest = readme.split(START, 1)
        _, after = rest.split(END, 1)
        README.write_text(before + expected + after, encoding="utf-8")
        readme = README.read_text(encoding="utf-8")
    assert expected in readme, (
        f"README's conformance table is out of date: run {WRITE_VARIABLE}=1 "
        "python -m pytest tests/test_conformance.py"
    )


if __name__ == "__main__":  # the child process of collected_vector_cases()
    sys.exit(_collect(Path(sys.argv[1]), Path(sys.argv[2])))
