"""The PostgreSQL fixture gives each test its own schema on a real server."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import PostgresDatabase


def test_each_test_gets_a_private_schema(postgres: PostgresDatabase) -> None:
    """Tables created through the fixture land in the test's schema, first on the search path."""
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE probe (n integer)")
        conn.execute("INSERT INTO probe VALUES (1)")
        conn.commit()
        row = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe'"
        ).fetchone()
    assert row == (postgres.schema,)
    with postgres.connect() as other:  # a second connection sees the committed row
        assert other.execute("SELECT n FROM probe").fetchall() == [(1,)]
