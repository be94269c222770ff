# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock cdc parse`` command: Debezium JSON lines in, normalised JSON lines out.

Usage::

    python -m interlock cdc parse [--flatten [--delete-handling MODE]] [--strict] FILE|-

Each input line is one Debezium record value (a change event, a tombstone ``null`` or a
transaction marker, with or without the JSON converter's schema wrapper), read with
:func:`interlock.cdc_event.iter_jsonl`. Each good line gives one output line of compact
JSON (ASCII only, so any terminal or pipe can carry it):

- a change event or tombstone: ``{"kind": "change", ...}`` followed by the keys of
  ``CDCEvent.to_audit_dict(include_values=True)`` in its order (``event_id``,
  ``operation``, ``table``, ..., ``key``, ``before``, ``after``);
- a transaction marker: ``{"kind": "transaction", "event_id", "status", "id", "ts_ms",
  "event_count", "data_collections": [[name, count], ...]}``;
- with ``--flatten``: the row ``CDCEvent.flatten()`` emits (Debezium's
  ExtractNewRecordState), ``delete_handling`` ``rewrite`` by default (deletes become the
  old row with ``"__deleted": "true"``); a ``None`` result is the line ``null``; records
  the mode drops and transaction markers give no line. Row values that JSON lacks are
  written as ``to_audit_dict`` writes them (bytes as Base64, datetimes in ISO 8601,
  decimals and UUIDs as text, BSON timestamps as ``{"t", "i"}``).

A bad line is reported on stderr with its line number and reading goes on (``--strict``:
reading stops there). When stderr is a terminal and the input is large (a file over
1 MiB, or standard input past 10 000 lines), a progress line is redrawn on stderr at
most every 0.5 s and cleared at the end.

Exit codes: 0 every line was good; 1 at least one line was bad (or reading failed);
2 bad arguments (the file cannot be opened).

This module only parses arguments and prints; the parsing is interlock.cdc_event's.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator

    from interlock.cdc_event import CDCEvent, CDCParseError, CDCTransactionEvent, DeleteHandling

__all__ = [
    "DELETE_HANDLING_CHOICES",
    "PROGRESS_MIN_BYTES",
    "PROGRESS_MIN_LINES",
    "add_parser",
    "run",
]

PROGRESS_MIN_BYTES = 1_048_576  # a file at least this large shows progress on a terminal
PROGRESS_MIN_LINES = 10_000  # standard input shows progress once this many lines were read
PROGRESS_INTERVAL_SECONDS = 0.5
PROG = "interlock cdc parse"
# DeleteHandling's values, spelled out so that `--help` does not import interlock.cdc_event
# (a test checks they stay equal).
DELETE_HANDLING_CHOICES = (
    "drop",
    "tombstone",
    "rewrite",
    "rewrite-with-tombstone",
    "delete-to-tombstone",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``cdc`` command (with its ``parse`` sub-command) to ``subparsers``.

    ``subparsers`` is what ``ArgumentParser.add_subparsers()`` returned. The parsed
    arguments carry ``cdc_command`` (``"parse"`` or ``None``), ``file``, ``flatten``,
    ``delete_handling`` and ``strict``; pass them to :func:`run`.
    """
    cdc = subparsers.add_parser(
        "cdc",
        help="read Debezium change events",
        description="Read Debezium change events (interlock.cdc_event).",
    )
    commands = cdc.add_subparsers(dest="cdc_command", metavar="COMMAND")
    parse = commands.add_parser(
        "parse",
        help="normalise Debezium JSON lines",
        description=(
            "Read Debezium record values, one JSON document per line, and write one "
            "normalised JSON line per record. Bad lines are reported on stderr with their "
            "line numbers. Exit codes: 0 all lines good, 1 a bad line, 2 bad arguments."
        ),
    )
    parse.add_argument("file", metavar="FILE", help="a JSON lines file, or - for standard input")
    parse.add_argument(
        "--flatten",
        action="store_true",
        help="write the flattened row (Debezium's ExtractNewRecordState) instead of the event",
    )
    parse.add_argument(
        "--delete-handling",
        choices=DELETE_HANDLING_CHOICES,
        default="rewrite",
        help="how --flatten treats deletes and tombstones (default: rewrite)",
    )
    parse.add_argument(
        "--strict", action="store_true", help="stop at the first bad line (exit code 1)"
    )
    return cdc  # type: ignore[no-any-return]


def run(
    args: argparse.Namespace,
    stdout: TextIO,
    stderr: TextIO,
    *,
    stdin: BinaryIO | None = None,
    isatty: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``cdc parse`` with parsed ``args``; return the exit code.

    ``stdin`` is read for ``FILE`` ``-`` (default: ``sys.stdin.buffer``); ``isatty`` says
    whether ``stderr`` is a terminal (default: ``stderr.isatty``); ``clock`` throttles the
    progress line (seconds).
    """
    if getattr(args, "cdc_command", None) != "parse":
        stderr.write("usage: interlock cdc parse [--flatten] [--strict] FILE|-\n")
        return 2
    on_terminal = (isatty or stderr.isatty)()
    total: int | None = None
    if args.file == "-":
        source: BinaryIO = stdin if stdin is not None else sys.stdin.buffer
        close = False
    else:
        try:
            source = open(args.file, "rb")  # noqa: SIM115, PTH123 - closed in the finally below
        except OSError as exc:
            stderr.write(f"{PROG}: cannot open {args.file!r}: {exc.strerror or exc}\n")
            return 2
        close = True
        total = _size(source)
    try:
        return _parse(
            args, source, stdout, stderr, on_terminal=on_terminal, total=total, clock=clock
        )
    finally:
        if close:
            source.close()


def _size(source: BinaryIO) -> int:
    import os  # noqa: PLC0415 - only a file input needs it

    return os.fstat(source.fileno()).st_size


class _Progress:
    """Counts lines and bytes as they are read; redraws a throttled line on a terminal."""

    def __init__(
        self, stderr: TextIO, *, enabled: bool, total: int | None, clock: Callable[[], float]
    ) -> None:
        self.stderr = stderr
        self.enabled = enabled and (total is None or total >= PROGRESS_MIN_BYTES)
        self.total = total
        self.clock = clock
        self.lines = 0
        self.bytes = 0
        self.bad = 0
        self.shown = False
        self.last = clock()

    def count(self, lines: BinaryIO) -> Iterator[bytes]:
        for line in lines:
            self.lines += 1
            self.bytes += len(line)
            if self.enabled:
                self.tick()
            yield line

    def tick(self) -> None:
        if self.total is None and self.lines < PROGRESS_MIN_LINES:
            return
        now = self.clock()
        if now - self.last < PROGRESS_INTERVAL_SECONDS:
            return
        self.last = now
        share = f" ({100 * self.bytes // self.total}%)" if self.total else ""
        self.stderr.write(f"\r{PROG}: {self.lines} lines{share}, {self.bad} bad")
        self.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stderr.write("\r\x1b[K")
            self.shown = False


def _parse(
    args: argparse.Namespace,
    source: BinaryIO,
    stdout: TextIO,
    stderr: TextIO,
    *,
    on_terminal: bool,
    total: int | None,
    clock: Callable[[], float],
) -> int:
    from interlock.cdc_event import CDCParseError, DeleteHandling, iter_jsonl  # noqa: PLC0415

    progress = _Progress(stderr, enabled=on_terminal, total=total, clock=clock)
    name = "<stdin>" if args.file == "-" else args.file

    def report(error: CDCParseError) -> None:
        progress.bad += 1
        progress.clear()
        stderr.write(f"{PROG}: {name}: {error}\n")

    mode = DeleteHandling(args.delete_handling)
    try:
        for item in iter_jsonl(progress.count(source), on_error=None if args.strict else report):
            line = _normalise(item, flatten=args.flatten, delete_handling=mode)
            if line is not None:
                stdout.write(line + "\n")
    except CDCParseError as exc:  # --strict: the first bad line stops the run
        report(exc)
        return 1
    except BrokenPipeError:  # `... | head` closed the pipe: not an error
        return 0
    except OSError as exc:
        progress.clear()
        stderr.write(f"{PROG}: {name}: read failed: {exc}\n")
        return 1
    finally:
        progress.clear()
    if progress.bad:
        stderr.write(f"{PROG}: {name}: {progress.bad} of {progress.lines} lines were bad\n")
        return 1
    return 0


def _normalise(
    item: CDCEvent | CDCTransactionEvent, *, flatten: bool, delete_handling: DeleteHandling
) -> str | None:
    from interlock.cdc_event import DROPPED, CDCTransactionEvent  # noqa: PLC0415

    if isinstance(item, CDCTransactionEvent):
        if flatten:
            return None
        return _dumps(
            {
                "kind": "transaction",
                "event_id": item.event_id,
                "status": item.status.value,
                "id": item.id,
                "ts_ms": item.ts_ms,
                "event_count": item.event_count,
                "data_collections": [list(pair) for pair in item.data_collections],
            }
        )
    if flatten:
        row = item.flatten(delete_handling=delete_handling)
        return None if row is DROPPED else _dumps(row)
    return _dumps({"kind": "change", **item.to_audit_dict(include_values=True)})


def _dumps(value: object) -> str:
    import json  # noqa: PLC0415 - `--help` stays cheap

    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> object:
    """JSON for the row values flatten() keeps as Python objects (as to_audit_dict writes them)."""
    import base64  # noqa: PLC0415 - only rows with binary values need it
    from datetime import date  # noqa: PLC0415

    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, date):
        return value.isoformat()
    time_part = getattr(value, "time", None)
    increment = getattr(value, "increment", None)
    if isinstance(time_part, int) and isinstance(increment, int):  # BsonTimestamp
        return {"t": time_part, "i": increment}
    return str(value)  # Decimal, UUID
