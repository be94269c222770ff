"""Shared fixtures: a throwaway PostgreSQL schema per test, when a server is configured,
a fresh interpreter, and plain callables that hide an ``async def``.

PostgreSQL tests need ``INTERLOCK_TEST_POSTGRES_DSN`` (libpq conninfo of a database the
tests may create schemas in; ``.ci/postgres start DIR`` starts one and prints it). Without
it they are skipped with that reason, unless ``INTERLOCK_REQUIRE_POSTGRES=1`` (set by
``.ci/run``), which turns the skip into a failure: in CI a skipped PostgreSQL test is a
failed one.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

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


# --------------------------------------------------------------------------------------
# A fresh interpreter
# --------------------------------------------------------------------------------------

SRC = Path(__file__).resolve().parents[1] / "src"


def _fresh_python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=True,
    )
    return proc.stdout.strip()


@pytest.fixture
def fresh_python() -> Callable[[str], str]:
    """Run code in a fresh interpreter that imports this checkout's src/; return stdout."""
    return _fresh_python


# --------------------------------------------------------------------------------------
# Plain callables that return an awaitable
# --------------------------------------------------------------------------------------

AWAITABLE_KINDS = [
    "async __call__",
    "returns a coroutine",
    "lambda over async def",
    "returns a Task",
]


class AsyncCallable:
    """An object whose ``__call__`` is ``async def``: not a coroutine function to inspect."""

    def __init__(self, body: Callable[..., Awaitable[Any]]) -> None:
        self.body = body

    async def __call__(self, *args: Any) -> Any:
        return await self.body(*args)


def _hide(kind: str, body: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    if kind == "async __call__":
        return AsyncCallable(body)
    if kind == "returns a coroutine":

        def call(*args: Any) -> Awaitable[Any]:
            return body(*args)

        return call
    if kind == "lambda over async def":
        return lambda *args: body(*args)  # noqa: PLW0108 - the lambda is the point
    return lambda *args: asyncio.ensure_future(body(*args))


@pytest.fixture(params=AWAITABLE_KINDS)
def awaitable_returning(
    request: pytest.FixtureRequest,
) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]]:
    """``awaitable_returning(body)``: ``body`` (an async def) behind a callable that
    ``inspect`` does not see as async; the test runs once per kind in AWAITABLE_KINDS."""
    return functools.partial(_hide, request.param)


@pytest.fixture
def async_callable() -> type[AsyncCallable]:
    """``async_callable(body)``: ``body`` behind an object whose ``__call__`` is async."""
    return AsyncCallable
