"""Shared fixtures: a throwaway PostgreSQL schema per test, when a server is configured.

PostgreSQL tests need ``INTERLOCK_TEST_POSTGRES_DSN`` (libpq conninfo of a database the
tests may create schemas in; ``.ci/postgres start DIR`` starts one and prints it). Without
it they are skipped with that reason, unless ``INTERLOCK_REQUIRE_POSTGRES=1`` (set by
``.ci/run``), which turns the skip into a failure: in CI a skipped PostgreSQL test is a
failed one.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

DSN_VARIABLE = "INTERLOCK_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "INTERLOCK_REQUIRE_POSTGRES"


@dataclass(frozen=True)
class PostgresDatabase:
    """One test's private schema on the configured server.

    ``conninfo`` is a libpq connection string whose ``search_path`` is the private schema,
    so a subprocess (a crash test's worker) can connect to the same tables with
    ``psycopg.connect(conninfo)``.
    """

    dsn: str
    schema: str

    @property
    def conninfo(self) -> str:
        return f"{self.dsn} options='-c search_path={self.schema}'"

    def connect(self, **kwargs: Any) -> Any:
        """A new psycopg connection (not in autocommit mode unless asked) to the schema."""
        import psycopg  # noqa: PLC0415 - a test-only driver, needed only by these tests

        return psycopg.connect(self.conninfo, **kwargs)


def _require() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0")


@pytest.fixture
def postgres() -> Iterator[PostgresDatabase]:
    """A fresh schema on the test server, dropped afterwards (skip if none is configured)."""
    dsn = os.environ.get(DSN_VARIABLE, "")
    if not dsn:
        reason = f"PostgreSQL tests need {DSN_VARIABLE}; `.ci/postgres start DIR` starts a server"
        if _require():
            pytest.fail(f"{REQUIRE_VARIABLE} is set: {reason}")
        pytest.skip(reason)
    try:
        import psycopg  # noqa: PLC0415
    except ImportError:
        if _require():
            raise
        pytest.skip("PostgreSQL tests need psycopg (pip install -e '.[dev]')")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield PostgresDatabase(dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
