"""The `cdc parse` command line (interlock.cli_cdc): normalised lines, bad lines, exit codes."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from interlock.cdc_event import CDCEvent, DeleteHandling
from interlock.cli_cdc import (
    DELETE_HANDLING_CHOICES,
    PROGRESS_MIN_BYTES,
    PROGRESS_MIN_LINES,
    add_parser,
    run,
)

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

SOURCE = {
    "connector": "postgresql",
    "name": "shop",
    "db": "shop",
    "schema": "public",
    "table": "customers",
    "txId": 556,
    "ts_ms": 1767225600200,
}
INSERT = {"op": "c", "after": {"id": 7, "email": "a@example.com"}, "source": {**SOURCE, "lsn": 100}}
UPDATE = {
    "op": "u",
    "before": {"id": 7, "email": "a@example.com"},
    "after": {"id": 7, "email": "b@example.com"},
    "source": {**SOURCE, "lsn": 200},
}
DELETE = {
    "op": "d",
    "before": {"id": 7, "email": "b@example.com"},
    "source": {**SOURCE, "lsn": 300},
}
BEGIN = {"status": "BEGIN", "id": "556", "ts_ms": 1, "event_count": None, "data_collections": None}


def lines(*values: Any) -> bytes:
    """JSON lines of the given record values (a str is written as-is)."""
    return b"".join((v if isinstance(v, str) else json.dumps(v)).encode() + b"\n" for v in values)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse argv with a parser built the way __main__ builds it."""
    parser = argparse.ArgumentParser(prog="interlock")
    commands = parser.add_subparsers(dest="command")
    add_parser(commands)
    return parser.parse_args(argv)


class FakeClock:
    """A monotonic clock that advances by a fixed step on every read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def call(
    argv: list[str], data: bytes = b"", *, tty: bool = False, clock: FakeClock | None = None
) -> tuple[int, str, str]:
    """Run the command with stdin data; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = run(
        parse_args(["cdc", "parse", *argv]),
        out,
        err,
        stdin=io.BytesIO(data),
        isatty=lambda: tty,
        clock=clock or FakeClock(0.0),
    )
    return code, out.getvalue(), err.getvalue()


def test_good_lines_become_normalised_change_lines() -> None:
    """Each record gives one JSON line: kind, then to_audit_dict(include_values=True)."""
    code, out, err = call(["-"], lines(INSERT, UPDATE))
    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    expected = CDCEvent.from_debezium(UPDATE).to_audit_dict(include_values=True)
    assert rows[1] == {"kind": "change", **expected}
    assert list(rows[1]) == ["kind", *expected]
    assert rows[0]["operation"] == "INSERT"
    assert rows[1]["changed_fields"] == ["email"]


def test_tombstones_and_transaction_markers_are_normalised() -> None:
    """A null line is a TOMBSTONE change; a BEGIN marker is a transaction line."""
    code, out, _ = call(["-"], lines(BEGIN, DELETE, "null"))
    assert code == 0
    begin, delete, tombstone = (json.loads(line) for line in out.splitlines())
    assert begin == {
        "kind": "transaction",
        "event_id": begin["event_id"],
        "status": "BEGIN",
        "id": "556",
        "ts_ms": 1,
        "event_count": None,
        "data_collections": [],
    }
    assert delete["operation"] == "DELETE"
    assert tombstone["operation"] == "TOMBSTONE"


def test_bad_lines_are_reported_with_numbers_and_good_lines_still_written() -> None:
    """A bad line goes to stderr with its number; the rest is read; exit code 1."""
    code, out, err = call(["-"], lines(INSERT, "{not json", {"op": "x"}, UPDATE))
    assert code == 1
    assert len(out.splitlines()) == 2
    assert "<stdin>: line 2: " in err
    assert "<stdin>: line 3: op" in err
    assert "2 of 4 lines were bad" in err


def test_strict_stops_at_the_first_bad_line() -> None:
    """--strict: lines after the first bad one are not read; exit code 1."""
    code, out, err = call(["--strict", "-"], lines(INSERT, "[]", UPDATE))
    assert code == 1
    assert len(out.splitlines()) == 1
    assert "line 2" in err


def test_reads_a_file_and_reports_a_missing_one(tmp_path: Path) -> None:
    """A path is read; a missing file is a clear message and exit code 2."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines(INSERT))
    code, out, _ = call([str(path)])
    assert code == 0
    assert json.loads(out)["operation"] == "INSERT"
    code, out, err = call([str(tmp_path / "missing.jsonl")])
    assert (code, out) == (2, "")
    assert "cannot open" in err
    assert "missing.jsonl" in err


def test_flatten_writes_rows_with_rewritten_deletes() -> None:
    """--flatten: rows as ExtractNewRecordState emits them (rewrite mode by default)."""
    code, out, _ = call(["--flatten", "-"], lines(BEGIN, INSERT, DELETE, "null"))
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": 7, "email": "a@example.com", "__deleted": "false"},
        {"id": 7, "email": "b@example.com", "__deleted": "true"},
    ]


def test_flatten_with_tombstone_handling_writes_null_lines() -> None:
    """--delete-handling tombstone: deletes dropped, tombstones kept as the line null."""
    code, out, _ = call(["--flatten", "--delete-handling", "tombstone", "-"], lines(DELETE, "null"))
    assert code == 0
    assert out.splitlines() == ["null"]


def test_flatten_writes_mongodb_values_as_json() -> None:
    """Decoded Extended JSON values (bytes, dates, decimals, timestamps) are written as JSON."""
    after = json.dumps(
        {
            "_id": {"$oid": "5f1b2c3d4e5f6a7b8c9d0e1f"},
            "blob": {"$binary": {"base64": "AAE=", "subType": "00"}},
            "at": {"$date": {"$numberLong": "0"}},
            "price": {"$numberDecimal": "1.10"},
            "ts": {"$timestamp": {"t": 5, "i": 1}},
        }
    )
    record = {
        "op": "c",
        "after": after,
        "source": {
            "connector": "mongodb",
            "name": "m",
            "db": "d",
            "collection": "c",
            "ord": 1,
            "ts_ms": 5,
        },
    }
    code, out, err = call(["--flatten", "-"], lines(record))
    assert (code, err) == (0, "")
    row = json.loads(out)
    assert row["blob"] == "AAE="
    assert row["at"].startswith("1970-01-01T00:00:00")
    assert row["price"] == "1.10"
    assert row["ts"] == {"t": 5, "i": 1}


def test_progress_is_shown_on_a_terminal_for_large_input_and_cleared() -> None:
    """On a terminal, past PROGRESS_MIN_LINES lines of stdin, a throttled line is redrawn."""
    data = lines(*([INSERT] * (PROGRESS_MIN_LINES + 50)))
    code, out, err = call(["-"], data, tty=True, clock=FakeClock(0.01))
    assert code == 0
    assert len(out.splitlines()) == PROGRESS_MIN_LINES + 50
    assert "\rinterlock cdc parse: " in err
    assert " lines, 0 bad" in err
    assert err.endswith("\r\x1b[K")
    # throttled: with the clock advancing 0.01 s a line, at most one redraw per 50 lines
    assert err.count("\rinterlock") <= 2


def test_no_progress_when_not_a_terminal_or_small(tmp_path: Path) -> None:
    """Not a terminal, or a file under PROGRESS_MIN_BYTES: stderr stays empty."""
    data = lines(*([INSERT] * (PROGRESS_MIN_LINES + 5)))
    assert call(["-"], data, tty=False, clock=FakeClock(1.0))[2] == ""
    small = tmp_path / "small.jsonl"
    small.write_bytes(lines(INSERT, UPDATE))
    assert call([str(small)], tty=True, clock=FakeClock(1.0))[2] == ""


def test_progress_shows_a_percentage_for_a_large_file(tmp_path: Path) -> None:
    """A file over PROGRESS_MIN_BYTES on a terminal shows how far reading has got."""
    one = lines(INSERT)
    big = tmp_path / "big.jsonl"
    big.write_bytes(one * (PROGRESS_MIN_BYTES // len(one) + 1))
    code, _, err = call([str(big)], tty=True, clock=FakeClock(1.0))
    assert code == 0
    assert "%)" in err


def test_bad_line_clears_the_progress_line_first() -> None:
    """A bad-line report is not glued to the progress line."""
    data = lines(*([INSERT] * PROGRESS_MIN_LINES), "{bad", INSERT)
    code, _, err = call(["-"], data, tty=True, clock=FakeClock(1.0))
    assert code == 1
    assert "\r\x1b[Kinterlock cdc parse: <stdin>: line 10001: " in err


def test_missing_file_argument_is_an_argparse_error() -> None:
    """`cdc parse` without FILE exits 2 through argparse."""
    with pytest.raises(SystemExit) as info:
        parse_args(["cdc", "parse"])
    assert info.value.code == 2


def test_cdc_without_a_sub_command_is_exit_code_2() -> None:
    """`cdc` alone prints the usage and returns 2."""
    err = io.StringIO()
    assert run(parse_args(["cdc"]), io.StringIO(), err, isatty=lambda: False) == 2
    assert "usage" in err.getvalue()


def test_read_errors_are_exit_code_1() -> None:
    """An OSError while reading is reported and gives exit code 1."""

    class Failing(io.BytesIO):
        def __iter__(self) -> Any:
            raise OSError("disk gone")

    err = io.StringIO()
    args = parse_args(["cdc", "parse", "-"])
    assert run(args, io.StringIO(), err, stdin=Failing(), isatty=lambda: False) == 1
    assert "read failed: disk gone" in err.getvalue()


def test_a_closed_pipe_ends_quietly() -> None:
    """BrokenPipeError on stdout (`| head`) ends the run with exit code 0."""

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError

    args = parse_args(["cdc", "parse", "-"])
    code = run(
        args, ClosedPipe(), io.StringIO(), stdin=io.BytesIO(lines(INSERT)), isatty=lambda: False
    )
    assert code == 0


@pytest.mark.skipif(
    "cli_cdc" not in (SRC / "interlock" / "__main__.py").read_text(encoding="utf-8"),
    reason="waits for the integrator to wire cli_cdc into interlock.__main__",
)
def test_python_dash_m_interlock_cdc_parse(tmp_path: Path) -> None:
    """`python -m interlock cdc parse FILE` runs in a fresh interpreter with the exit codes."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(lines(INSERT, "{bad"))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-m", "interlock", "cdc", "parse", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["operation"] == "INSERT"
    assert "line 2" in proc.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "interlock", "cdc", "parse", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert missing.returncode == 2
    assert "cannot open" in missing.stderr


def test_delete_handling_choices_are_the_modes_of_cdc_event() -> None:
    """The spelled-out --delete-handling choices equal DeleteHandling's values, in order."""
    assert tuple(mode.value for mode in DeleteHandling) == DELETE_HANDLING_CHOICES


def test_building_the_parser_does_not_import_cdc_event(
    fresh_python: Callable[[str], str],
) -> None:
    """`interlock --help` stays cheap: add_parser imports no pattern module."""
    code = (
        "import argparse, sys; from interlock import cli_cdc; "
        "cli_cdc.add_parser(argparse.ArgumentParser().add_subparsers()); "
        "print('interlock.cdc_event' in sys.modules)"
    )
    assert fresh_python(code) == "False"
