"""The `outbox relay` command line (interlock.cli_outbox): sinks, drains, signals, errors."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from interlock.__main__ import main
from interlock.cli_outbox import _Counts, _Sink, _SinkFirstStore, add_parser, is_postgres_dsn, run
from interlock.outbox import (
    MemoryOutbox,
    OutboxStats,
    SQLOutbox,
    add,
    dead_letters,
    migrate,
    stats,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import PostgresDatabase

SRC = Path(__file__).resolve().parents[1] / "src"
KEYS = ("a", "b", "c")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse argv with a parser built the way __main__ builds it."""
    parser = argparse.ArgumentParser(prog="interlock")
    commands = parser.add_subparsers(dest="command")
    add_parser(commands)
    return parser.parse_args(argv)


def invoke(
    argv: list[str],
    *,
    isatty: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(parse_args(argv), out, err, isatty=isatty or (lambda: False), clock=clock)
    return code, out.getvalue(), err.getvalue()


def fill(conn: Any, count: int, *, start: int = 0) -> list[str]:
    """Add ``count`` messages round-robin over three keys and commit; return their ids."""
    ids = [
        add(
            conn,
            topic="orders",
            key=KEYS[n % len(KEYS)],
            payload={"n": n, "text": "caf\u00e9"},
            headers={"trace": f"t-{n}"},
        )
        for n in range(start, start + count)
    ]
    conn.commit()
    return ids


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


def outbox_stats(path: Path) -> OutboxStats:
    conn = sqlite3.connect(path)
    try:
        return stats(conn)
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A migrated SQLite outbox with 12 committed messages over three keys."""
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path)
    migrate(conn)
    fill(conn, 12)
    conn.close()
    return path


def check_published(published: list[dict[str, Any]], ids: list[str] | None = None) -> None:
    """Each message once, per-key order kept, every field of the message present."""
    seen = [line["message_id"] for line in published]
    assert len(seen) == len(set(seen))
    if ids is not None:
        assert sorted(seen) == sorted(ids)
    for key in KEYS:
        ns = [line["payload"]["n"] for line in published if line["key"] == key]
        assert ns == sorted(ns)
    for line in published:
        assert set(line) == {
            "message_id",
            "topic",
            "key",
            "event_type",
            "headers",
            "payload",
            "created_at",
            "attempt",
        }
        assert line["topic"] == line["event_type"] == "orders"
        assert line["headers"] == {"trace": f"t-{line['payload']['n']}"}
        assert line["payload"]["text"] == "caf\u00e9"
        assert line["attempt"] == 1
        assert isinstance(line["created_at"], float)


def test_once_drains_sqlite_into_jsonl(db: Path, tmp_path: Path) -> None:
    """--once publishes every committed message exactly once, in per-key order, then exits 0."""
    sink = tmp_path / "out.jsonl"
    code, out, err = invoke(
        [
            "outbox",
            "relay",
            "--db",
            str(db),
            "--sink",
            f"jsonl:{sink}",
            "--once",
            "--batch-size",
            "2",
        ]
    )
    assert code == 0, err
    assert out == ""
    published = lines(sink)
    assert len(published) == 12
    check_published(published)
    assert "published 12, failed 0, dead-lettered 0" in err
    assert outbox_stats(db).sent == 12
    assert outbox_stats(db).pending == 0


def test_second_run_publishes_nothing(db: Path, tmp_path: Path) -> None:
    """Running --once again on a drained outbox appends nothing and says it published 0."""
    sink = tmp_path / "out.jsonl"
    argv = ["outbox", "relay", "--db", str(db), "--sink", f"jsonl:{sink}", "--once"]
    assert invoke(argv)[0] == 0
    first = sink.read_bytes()
    code, _, err = invoke(argv)
    assert code == 0
    assert sink.read_bytes() == first
    assert "published 0," in err


def test_later_messages_are_appended_once(db: Path, tmp_path: Path) -> None:
    """Messages committed after a drain are appended by the next run; none is repeated."""
    sink = tmp_path / "out.jsonl"
    argv = ["outbox", "relay", "--db", str(db), "--sink", f"jsonl:{sink}", "--once"]
    assert invoke(argv)[0] == 0
    conn = sqlite3.connect(db)
    fill(conn, 6, start=12)
    conn.close()
    assert invoke(argv)[0] == 0
    published = lines(sink)
    assert [line["payload"]["n"] for line in published[12:]] == list(range(12, 18))
    check_published(published)


def test_stdout_sink(db: Path) -> None:
    """--sink stdout writes the same JSON lines to standard output."""
    code, out, err = invoke(["outbox", "relay", "--db", str(db), "--sink", "stdout", "--once"])
    assert code == 0, err
    published = [json.loads(line) for line in out.splitlines()]
    assert len(published) == 12
    check_published(published)


def test_postgres_once(postgres: PostgresDatabase, tmp_path: Path) -> None:
    """A libpq conninfo --db relays a PostgreSQL outbox into the file, each message once."""
    conn = postgres.connect()
    migrate(conn)
    ids = fill(conn, 9)
    sink = tmp_path / "out.jsonl"
    argv = ["outbox", "relay", "--db", postgres.conninfo, "--sink", f"jsonl:{sink}", "--once"]
    code, _, err = invoke([*argv, "--batch-size", "4"])
    assert code == 0, err
    check_published(lines(sink), ids)
    assert "published 9," in err
    assert stats(conn).sent == 9
    conn.rollback()
    assert invoke(argv)[0] == 0
    assert len(lines(sink)) == 9
    conn.close()


def test_postgres_missing_schema_exits_two(postgres: PostgresDatabase, tmp_path: Path) -> None:
    """A PostgreSQL schema without the outbox exits 2 and says --migrate, which then works."""
    sink = tmp_path / "out.jsonl"
    argv = ["outbox", "relay", "--db", postgres.conninfo, "--sink", f"jsonl:{sink}", "--once"]
    code, _, err = invoke(argv)
    assert code == 2
    assert "no outbox" in err
    assert "--migrate" in err
    code, _, err = invoke([*argv, "--migrate"])
    assert code == 0, err
    assert "published 0," in err


def test_runs_until_sigterm(tmp_path: Path) -> None:
    """A relay process publishes messages committed while it runs and exits 0 on SIGTERM."""
    path = tmp_path / "outbox.db"
    conn = sqlite3.connect(path, timeout=30)
    migrate(conn)
    sink = tmp_path / "out.jsonl"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlock",
            "outbox",
            "relay",
            "--db",
            str(path),
            "--sink",
            f"jsonl:{sink}",
            "--poll-interval",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        ids = fill(conn, 6)
        deadline = time.monotonic() + 60
        while not (sink.exists() and len(sink.read_text(encoding="ascii").splitlines()) >= 6):
            if child.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    check_published(lines(sink), ids)
    assert "published 6, failed 0, dead-lettered 0" in err
    assert "stopped by SIGTERM" in err
    assert stats(conn).sent == 6
    conn.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["outbox", "relay", "--sink", "stdout"],
        ["outbox", "relay", "--db", "x.db"],
        ["outbox", "relay", "--db", "x.db", "--sink", "kafka:orders"],
        ["outbox", "relay", "--db", "x.db", "--sink", "jsonl:"],
        ["outbox", "relay", "--db", "x.db", "--sink", "stdout", "--batch-size", "0"],
        ["outbox", "relay", "--db", "x.db", "--sink", "stdout", "--max-attempts", "two"],
        ["outbox", "relay", "--db", "x.db", "--sink", "stdout", "--poll-interval", "-1"],
        ["outbox", "relay", "--db", "x.db", "--sink", "stdout", "--poll-interval", "nan"],
        ["outbox", "relay", "--db", "x.db", "--sink", "stdout", "--lease-seconds", "0"],
    ],
)
def test_bad_arguments_exit_two(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A missing or malformed option is a usage error: exit 2 with the reason on stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_outbox_without_a_subcommand_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """`interlock outbox` alone prints the usage and returns 2."""
    assert main(["outbox"]) == 2
    assert "usage: interlock outbox relay" in capsys.readouterr().err


def test_missing_file_exits_two_without_creating_it(tmp_path: Path) -> None:
    """A --db file that does not exist is refused (exit 2) and not created."""
    path = tmp_path / "nope.db"
    code, _, err = invoke(["outbox", "relay", "--db", str(path), "--sink", "stdout", "--once"])
    assert code == 2
    assert "cannot open" in err
    assert not path.exists()


def test_missing_schema_exits_two_with_the_hint(tmp_path: Path) -> None:
    """A SQLite database without the outbox tables exits 2 and points at --migrate."""
    path = tmp_path / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (id TEXT)")
    conn.close()
    code, out, err = invoke(["outbox", "relay", "--db", str(path), "--sink", "stdout", "--once"])
    assert code == 2
    assert out == ""
    assert "no outbox" in err
    assert "run with --migrate" in err


def test_migrate_creates_the_outbox(tmp_path: Path) -> None:
    """--migrate creates the database and its outbox tables, then relays (nothing yet)."""
    path = tmp_path / "new.db"
    code, _, err = invoke(
        ["outbox", "relay", "--db", str(path), "--sink", "stdout", "--once", "--migrate"]
    )
    assert code == 0, err
    assert outbox_stats(path) == OutboxStats(0, None, 0, 0, 0)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_unwritable_sink_leaves_messages_pending(db: Path, tmp_path: Path) -> None:
    """A sink that fails mid-run stops the relay (exit 1); no message is marked sent."""
    code, _, err = invoke(["outbox", "relay", "--db", str(db), "--sink", "jsonl:/dev/full"])
    assert code == 1
    assert "cannot write to jsonl:/dev/full" in err
    assert "published 0, failed 12" in err
    after = outbox_stats(db)
    assert (after.sent, after.pending, after.in_flight) == (0, 12, 0)
    sink = tmp_path / "out.jsonl"  # the next run delivers them, as first attempts
    code, _, err = invoke(["outbox", "relay", "--db", str(db), "--sink", f"jsonl:{sink}", "--once"])
    assert code == 0, err
    check_published(lines(sink))
    assert len(lines(sink)) == 12


def test_sink_that_cannot_be_opened_exits_two(db: Path, tmp_path: Path) -> None:
    """A jsonl path in a missing directory is refused before anything is claimed."""
    sink = tmp_path / "missing" / "out.jsonl"
    code, _, err = invoke(["outbox", "relay", "--db", str(db), "--sink", f"jsonl:{sink}", "--once"])
    assert code == 2
    assert "cannot open sink" in err
    assert outbox_stats(db).pending == 12


def test_a_line_cut_short_is_not_glued_to_the_next(db: Path, tmp_path: Path) -> None:
    """A sink file ending mid-line gets a newline first, so every new line parses."""
    sink = tmp_path / "out.jsonl"
    sink.write_text('{"cut": ', encoding="ascii")
    code, _, err = invoke(["outbox", "relay", "--db", str(db), "--sink", f"jsonl:{sink}", "--once"])
    assert code == 0, err
    first, *rest = sink.read_text(encoding="ascii").splitlines()
    assert first == '{"cut": '
    check_published([json.loads(line) for line in rest])
    assert len(rest) == 12


def test_max_attempts_dead_letters_a_message_whose_leases_expired(db: Path, tmp_path: Path) -> None:
    """--max-attempts reaches the relay: a head leased that often by dead relays is dead."""
    conn = sqlite3.connect(db)
    SQLOutbox(conn).claim(  # a relay that claimed everything and died; its lease is long over
        limit=100, lease_seconds=1.0, max_attempts=10, dead_blocks_key=True, now=time.time() - 60
    )
    conn.close()
    sink = tmp_path / "out.jsonl"
    code, _, err = invoke(
        [
            "outbox",
            "relay",
            "--db",
            str(db),
            "--sink",
            f"jsonl:{sink}",
            "--once",
            "--max-attempts",
            "1",
        ]
    )
    assert code == 0, err
    assert sink.read_text(encoding="ascii") == ""
    assert "9 pending, 0 in flight, 3 dead letters" in err  # each key's head; the rest wait
    conn = sqlite3.connect(db)
    assert all("lease expired" in (d.last_error or "") for d in dead_letters(conn))
    conn.close()


def test_progress_line_on_a_terminal(db: Path) -> None:
    """On a terminal a throttled progress line is drawn per batch and cleared before the summary."""
    ticks = iter(range(0, 1000, 1))
    code, _, err = invoke(
        ["outbox", "relay", "--db", str(db), "--sink", "stdout", "--once", "--batch-size", "5"],
        isatty=lambda: True,
        clock=lambda: float(next(ticks)),
    )
    assert code == 0
    assert "\rinterlock outbox relay: published 5, failed 0, dead-lettered 0" in err
    assert "\r\x1b[K" in err
    assert err.endswith("dead letters\n")
    assert err.rsplit("\r\x1b[K", 1)[1].startswith("interlock outbox relay: published 12,")


def test_no_progress_line_off_a_terminal(db: Path) -> None:
    """Off a terminal stderr gets the summary line only."""
    code, _, err = invoke(["outbox", "relay", "--db", str(db), "--sink", "stdout", "--once"])
    assert code == 0
    assert err.count("\n") == 1
    assert "\r" not in err


def test_the_store_counts_failures_and_dead_letters() -> None:
    """Failed and dead-lettered outcomes from the relay are counted and forwarded as they are."""
    memory = MemoryOutbox()
    for n in range(3):
        memory.add(topic="orders", key=f"k{n}", payload=n)
    counts = _Counts()
    store = _SinkFirstStore(
        memory, _Sink("test", io.StringIO(), own=False, fsync=False), counts, lambda: None
    )
    claim = store.claim(limit=3, lease_seconds=30, max_attempts=3, dead_blocks_key=True)
    (a, _), (b, _), (c, _) = claim.rows
    store.settle(claim.token, sent=[a], failed=[(b, "E: x", 5.0), (c, "E: y", None)], released=[])
    assert (counts.published, counts.failed, counts.dead) == (1, 1, 1)
    assert memory.stats().dead_lettered == 1
    assert memory.stats().sent == 1


@pytest.mark.parametrize(
    ("text", "is_postgres"),
    [
        ("postgresql://app:secret@db:5432/shop", True),
        ("postgres://db/shop", True),
        ("host=db dbname=shop", True),
        ("  dbname = shop", True),
        ("shop.db", False),
        ("/var/lib/app/outbox.sqlite", False),
        ("./host=x.db", False),
        ("C:\\data\\outbox.db", False),
        ("file.db?mode=ro", False),
    ],
)
def test_postgres_dsn_or_sqlite_path(text: str, is_postgres: bool) -> None:
    """URLs and libpq keyword=value text go to PostgreSQL; anything else is a SQLite path."""
    assert is_postgres_dsn(text) is is_postgres
