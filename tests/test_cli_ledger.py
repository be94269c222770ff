"""The `ledger report` command line (interlock.cli_ledger): tables, JSON, time ranges, errors."""

from __future__ import annotations

import argparse
import io
import json
import sqlite3
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest

from interlock.cli_ledger import add_parser, run
from interlock.ledger import (
    Backoff,
    Dedup,
    ExternalLink,
    Ledger,
    ManualClock,
    ProcessDefinition,
    RetryPolicy,
    SQLLedgerStore,
    Step,
    connect_sqlite,
    migrate,
)

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse argv with a parser built the way __main__ builds it."""
    parser = argparse.ArgumentParser(prog="interlock")
    commands = parser.add_subparsers(dest="command")
    add_parser(commands)
    return parser.parse_args(argv)


def invoke(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(parse_args(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A SQLite ledger with one run: two items succeed, one is rejected, one retried."""
    path = str(tmp_path / "ledger.db")
    conn = connect_sqlite(path)
    migrate(conn)
    clock = ManualClock(T0)
    ledger = Ledger(SQLLedgerStore(conn), clock=clock)
    ledger.define(
        ProcessDefinition(
            "invoice",
            (
                Step("erp", retry=RetryPolicy(max_attempts=3, backoff=Backoff.FIXED, base_delay=1)),
                Step("bank"),
            ),
            dedup=Dedup.fields("no"),
        )
    )
    ledger.start_run("invoice", "2026-01-05", link=ExternalLink("jenkins", "77", "https://ci/77"))
    for no in ("A", "B", "C"):
        ledger.start_or_resume("invoice", {"no": no}, run_key="2026-01-05")
    codes = {"erp": [-2, 0, 0, 0], "bank": [0, 9, 0]}
    while True:
        claim = ledger.claim("invoice", worker="bot")
        if claim is None:
            clock.advance(5)
            claim = ledger.claim("invoice", worker="bot")
            if claim is None:
                break
        clock.advance(2)
        queue = codes[claim.stage.step]
        code = queue.pop(0) if queue else 0
        ledger.complete(
            claim,
            code=code,
            error=None if code == 0 else "IBAN invalid" if code > 0 else "ERP timeout",
        )
    ledger.finish_run("2026-01-05")
    conn.close()
    return path


def test_report_prints_readable_tables(db: str) -> None:
    """The report shows counts by status, per-step rows and failure reasons as aligned tables."""
    code, out, err = invoke(["ledger", "report", "--db", db])
    assert (code, err) == (0, "")
    assert out.startswith("Ledger report  since=-  until=-")
    for heading in ("Runs", "Items", "Stages", "Steps", "Top failure reasons"):
        assert f"\n{heading}\n" in out
    assert "completed_with_errors" in out
    erp_row = next(line for line in out.splitlines() if line.strip().startswith("erp "))
    assert erp_row.split()[:4] == ["erp", "4", "3", "75.0%"]
    assert "IBAN invalid" in out
    assert "ERP timeout" in out
    assert out.rstrip().endswith("Dead letters: 1")


def test_report_json_and_time_range(db: str) -> None:
    """--json prints the report dict; --since/--until filter it (naive times are UTC)."""
    code, out, _ = invoke(["ledger", "report", "--db", db, "--json"])
    data = json.loads(out)
    assert code == 0
    assert data["items"] == {"rejected": 1, "succeeded": 2}
    code, out, _ = invoke(["ledger", "report", "--db", db, "--json", "--since", "2026-01-06T00:00"])
    data = json.loads(out)
    assert (code, data["items"], data["steps"], data["since"]) == (
        0,
        {},
        [],
        "2026-01-06T00:00:00Z",
    )
    code, out, _ = invoke(
        [
            "ledger",
            "report",
            "--db",
            db,
            "--since",
            "2026-01-05T00:00Z",
            "--until",
            "2026-01-05T09:00:03+00:00",
            "--top",
            "1",
        ]
    )
    assert code == 0
    assert "(none)" not in out.split("Steps")[1].split("Top")[0]


def test_run_report_tables_and_json(db: str) -> None:
    """--run KEY prints that run's header, link, steps and dead letters (or its JSON)."""
    code, out, _ = invoke(["ledger", "report", "--db", db, "--run", "2026-01-05"])
    assert code == 0
    assert out.startswith("Run 2026-01-05  process=invoice  status=completed_with_errors")
    assert "link=jenkins:77 https://ci/77" in out
    assert "\nDead letters\n" in out
    assert "rejected" in out
    code, out, _ = invoke(["ledger", "report", "--db", db, "--run", "2026-01-05", "--json"])
    assert json.loads(json.loads(out)["dead_letters"][0]["payload"]) in ({"no": n} for n in "ABC")


def test_an_empty_ledger_prints_none(tmp_path: Path) -> None:
    """A migrated but empty ledger prints '(none)' tables; a run without a link omits it."""
    path = str(tmp_path / "empty.db")
    conn = connect_sqlite(path)
    migrate(conn)
    ledger = Ledger(SQLLedgerStore(conn), clock=ManualClock(T0))
    ledger.define(ProcessDefinition("p", (Step("s"),)))
    ledger.start_run("p", "k")
    conn.close()
    code, out, _ = invoke(["ledger", "report", "--db", path])
    assert code == 0
    assert "(none)" in out
    code, out, _ = invoke(["ledger", "report", "--db", path, "--run", "k"])
    assert code == 0
    assert "link=" not in out
    assert "finished=-" in out


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["ledger"], 2, "usage"),
        (["ledger", "report", "--db", "X", "--since", "yesterday"], 2, "bad time"),
        (["ledger", "report", "--db", "X", "--top", "0"], 2, "--top"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], code: int, message: str) -> None:
    """A missing sub-command, a bad time or a bad --top exit with 2 and say why."""
    got, _, err = invoke(argv)
    assert got == code
    assert message in err


def test_missing_file_unknown_run_and_foreign_database(db: str, tmp_path: Path) -> None:
    """A missing file exits 2; an unknown run or a non-ledger database exits 1."""
    code, _, err = invoke(["ledger", "report", "--db", str(tmp_path / "nope.db")])
    assert code == 2
    assert "cannot open" in err
    assert not (tmp_path / "nope.db").exists()
    code, _, err = invoke(["ledger", "report", "--db", db, "--run", "nope"])
    assert code == 1
    assert "no run 'nope'" in err
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    code, _, err = invoke(["ledger", "report", "--db", str(other)])
    assert code == 1
    assert "not an interlock ledger" in err
