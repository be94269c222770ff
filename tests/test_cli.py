"""The command line: `python -m interlock demo`, help, version and exit codes."""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import interlock
from interlock.__main__ import main
from interlock.cli_demo import DEFAULT_SEED, run, run_demo

if TYPE_CHECKING:
    from conftest import PostgresDatabase

SRC = Path(__file__).resolve().parents[1] / "src"


def _interlock(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run `python -m interlock ARGS` in a fresh interpreter; bytes out, never raises."""
    return subprocess.run(
        [sys.executable, "-m", "interlock", *args],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )


def _demo_text(seed: int = DEFAULT_SEED) -> str:
    out = io.StringIO()
    run_demo(out, seed=seed)
    return out.getvalue()


def test_demo_runs_in_a_fresh_interpreter() -> None:
    """`python -m interlock demo` exits 0, prints its five sections and the summary, no stderr."""
    proc = _interlock("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode()
    assert out.startswith("interlock demo: order to cash, seed 7, on SQLite")
    for heading in (
        "1. The storefront sends its orders as signed webhooks",
        "2. The outbox relay publishes the orders to the ERP",
        "3. A saga fulfils each order: stock, payment, shipment",
        "4. The ERP's change events update the CRM",
        "5. The ledger: every order's stages and attempts",
        "What each pattern prevented",
    ):
        assert f"\n{heading}\n{'=' * len(heading)}\n" in out
    assert proc.stderr == b""


def test_demo_is_byte_identical_for_a_seed() -> None:
    """Two runs with the same --seed print exactly the same bytes (simulated clock, seeded ERP)."""
    first, second = _interlock("demo", "--seed", "11"), _interlock("demo", "--seed", "11")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert b"seed 11" in first.stdout


def test_demo_shows_each_steps_key_facts() -> None:
    """Forged refused, duplicate deduplicated, breaker opened and closed, saga compensated,
    a conflict in review, the ledger report and the summary all appear."""
    text = _demo_text()
    prose = " ".join(text.split())  # wrapped paragraphs and cells, read as one line
    # 1. webhooks
    assert "400  refused: NoMatchingSignatureError" in text
    assert "duplicate (wh-1002-a1): nothing written" in text
    assert "1 forged request refused with 400 before anything was written" in prose
    # 2. outbox, retry, circuit breaker
    assert "closed > open" in text
    assert "half-open > closed" in text
    assert "All 5 orders reached the ERP, each once" in prose
    # 3. saga
    assert re.search(r"1004\s+RSV-004, released\s+declined: card declined", text)
    assert re.search(r"1001\s+RSV-001\s+ch_0001\s+TRK\d+\s+completed", text)
    # 4. change events and the sync boundary
    assert re.search(
        r"payment_terms\s+both\s+NET45\s+NET60\s+NET30\s+review \(both-changed\)", text
    )
    assert "already applied (same event id): skipped" in prose
    assert "nothing to write: the echo of the sync's own change" in prose
    # 5. the ledger's report
    assert "The run finished completed_with_errors; this is its ledger.report():" in prose
    assert re.search(r"payment\s+5\s+4\s+0\s+1\s+80%", text)
    assert "Dead letters: 1, order 1004 (rejected: PaymentDeclined" in prose
    for pattern in ("webhook_handler", "idempotency", "outbox", "retry", "circuit_breaker"):
        assert re.search(rf"^  {pattern}\s", text, re.MULTILINE), pattern
    for pattern in ("saga", "cdc_event", "sync_boundary", "ledger"):
        assert re.search(rf"^  {pattern}\s", text, re.MULTILINE), pattern


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 42, 2026, 987654321])
def test_demo_story_holds_for_any_seed(seed: int) -> None:
    """Whatever the seed, the breaker opens and recovers, every order reaches the ERP once,
    one saga compensates and one field goes to review."""
    text = _demo_text(seed)
    prose = " ".join(text.split())
    assert f"seed {seed}," in text
    assert "All 5 orders reached the ERP, each once" in prose
    assert "closed > open" in text
    assert "half-open > closed" in text
    assert "4 orders shipped. Order 1004's card was declined" in prose
    assert "1 field waits for a person (payment_terms: CRM NET45, ERP NET60)" in prose
    assert "Dead letters: 1, order 1004" in prose


def test_demo_seeds_change_which_erp_calls_fail() -> None:
    """Different seeds give different ERP failures (the relay table differs)."""

    def relay_table(seed: int) -> str:
        text = _demo_text(seed)
        return text[text.index("2. The outbox relay") : text.index("3. A saga")]

    assert len({relay_table(seed) for seed in (0, 1, 2, 3, 4)}) > 1


def test_demo_db_keeps_a_ledger_that_ledger_report_reads(tmp_path: Path) -> None:
    """--db PATH leaves an SQLite file; `interlock ledger report --db PATH` reads it (exit 0)."""
    path = tmp_path / "demo.db"
    proc = _interlock("demo", "--db", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"on SQLite file {path}, kept".encode() in proc.stdout
    assert path.is_file()
    report = _interlock("ledger", "report", "--db", str(path))
    assert report.returncode == 0, report.stderr
    out = report.stdout.decode()
    assert "completed_with_errors" in out
    assert re.search(r"payment\s+5\s+5\s+80\.0%", out)


def test_demo_refuses_an_existing_db_file(tmp_path: Path) -> None:
    """--db naming an existing file exits 2 with a message, and leaves the file alone."""
    path = tmp_path / "mine.db"
    path.write_bytes(b"not the demo's")
    err = io.StringIO()
    args = argparse.Namespace(seed=7, db=str(path), postgres=None, schema=None)
    assert run(args, io.StringIO(), err) == 2
    assert "exists" in err.getvalue()
    assert path.read_bytes() == b"not the demo's"


def test_demo_on_postgres_prints_the_same_report(postgres: PostgresDatabase) -> None:
    """--postgres DSN runs the same story: only the header line differs; the schema is dropped."""
    import psycopg  # noqa: PLC0415 - the fixture skipped the test when it is missing

    proc = _interlock("demo", "--postgres", postgres.dsn)
    assert proc.returncode == 0, proc.stderr
    header, _, body = proc.stdout.decode().partition("\n")
    schema = re.fullmatch(r".* on PostgreSQL, schema (\w+) \(dropped at the end\)", header)
    assert schema is not None, header
    assert body == _demo_text().partition("\n")[2]
    with psycopg.connect(postgres.dsn) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema.group(1),)
        ).fetchone()
    assert found == (0,)


def test_demo_on_postgres_keeps_a_named_schema(postgres: PostgresDatabase) -> None:
    """--schema NAME keeps the demo's tables, the ledger's among them, in that schema."""
    import psycopg  # noqa: PLC0415 - the fixture skipped the test when it is missing

    kept = f"{postgres.schema}_kept"
    try:
        proc = _interlock("demo", "--postgres", postgres.dsn, "--schema", kept)
        assert proc.returncode == 0, proc.stderr
        with psycopg.connect(postgres.dsn) as conn:
            status = conn.execute(f"SELECT status FROM {kept}.ledger_run").fetchall()  # noqa: S608
        assert status == [("completed_with_errors",)]
    finally:
        with psycopg.connect(postgres.dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {kept} CASCADE")


def test_demo_with_an_unreachable_postgres_exits_two() -> None:
    """A --postgres DSN that does not connect (or no psycopg) exits 2 with a message on stderr."""
    proc = _interlock("demo", "--postgres", "host=127.0.0.1 port=1 dbname=nope connect_timeout=5")
    assert proc.returncode == 2
    assert proc.stderr.startswith(b"interlock demo: ")
    assert b"PostgreSQL" in proc.stderr or b"psycopg" in proc.stderr
    assert proc.stdout == b""


def test_demo_schema_needs_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    """--schema without --postgres, or not a plain SQL name, is a usage error (exit 2)."""
    assert main(["demo", "--schema", "kept"]) == 2
    assert "--schema needs --postgres" in capsys.readouterr().err
    assert main(["demo", "--postgres", "host=x", "--schema", "bad; drop"]) == 2


def test_demo_db_and_postgres_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    """--db and --postgres together are refused by argparse (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["demo", "--db", "x.db", "--postgres", "host=x"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_demo_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --help` explains --seed, --db, --postgres and what happens to the schema."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for option in ("--seed", "--db PATH", "--postgres DSN", "--schema NAME"):
        assert option in help_text
    assert "dropped at the end unless --schema names one to keep" in help_text


def test_main_demo_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """main(["demo"]) prints the report and returns 0."""
    assert main(["demo"]) == 0
    assert "What each pattern prevented" in capsys.readouterr().out


def test_no_command_prints_help_and_returns_two(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, usage goes to stderr and the exit code is 2."""
    assert main([]) == 2
    assert "usage: interlock" in capsys.readouterr().err


def test_unknown_command_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command is an argument error (exit 2) explained on stderr."""
    with pytest.raises(SystemExit) as info:
        main(["bogus"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"interlock {interlock.__version__}"


def test_broken_pipe_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piping the demo into a reader that closes early (`| head`) still exits 0."""

    def closed(_out: object, **_options: object) -> None:
        raise BrokenPipeError

    monkeypatch.setattr("interlock.cli_demo.run_demo", closed)
    assert main(["demo"]) == 0
