# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock outbox relay`` command: a relay process for a SQL outbox.

Usage::

    python -m interlock outbox relay --db PATH|DSN --sink jsonl:PATH|stdout [--once]
        [--migrate] [--batch-size N] [--poll-interval S] [--lease-seconds S]
        [--max-attempts N]

It runs an :class:`interlock.outbox.OutboxRelay` over the outbox in ``--db`` and
publishes each message as one line of compact ASCII JSON: ``message_id``, ``topic``,
``key``, ``event_type``, ``headers``, ``payload``, ``created_at`` (seconds since the Unix
epoch) and ``attempt`` (1 on the first delivery; more means a redelivery).

``--db``: a PostgreSQL connection string if it starts with ``postgresql://`` or
``postgres://``, or if it starts with a libpq ``keyword=value`` pair (``host=db
dbname=shop``); anything else is a SQLite file path (write ``./host=x.db`` for a file
whose name looks like a pair). PostgreSQL needs psycopg, imported only then. The SQLite
file must exist unless ``--migrate`` is given; ``--migrate`` creates the outbox tables
(``interlock.outbox.migrate``) before relaying.

``--sink jsonl:PATH`` appends to PATH; the lines of a batch are written, flushed and
(for a regular file) fsynced before the relay marks the batch sent, so a crash never
leaves a message marked sent that is not in the file: delivery is at least once, a crash
may repeat the last batch. If the file does not end with a newline (a write cut short),
one is added first so no line is glued to a partial one. One relay per file.
``--sink stdout`` writes the same lines to standard output (flushed per batch). If the
sink cannot be written, the batch's messages go back to pending (their attempt does not
count) and the relay stops.

Without ``--once`` the relay runs until SIGINT or SIGTERM, which let the current batch
finish (a claim finding nothing waits ``--poll-interval`` seconds); ``--once`` stops at
the first claim that finds nothing due. Progress is redrawn on stderr when it is a
terminal; a summary line always ends the run: ``published`` (messages this run wrote and
marked sent), ``failed`` (left pending for a retry, such as a batch the sink could not
write), ``dead-lettered`` (this run's last failed deliveries), then the outbox's pending,
in-flight and dead-letter counts as :func:`interlock.outbox.stats` sees them. A database
error stops the relay (exit 1): run it under a supervisor that restarts it.

Exit codes: 0 the relay stopped as asked (drained, or a signal); 1 it stopped on a
failure (the sink, or the database mid-run); 2 bad arguments, the database or the sink
cannot be opened, or the database has no outbox (run with ``--migrate``).

This module only parses arguments and prints; relaying is interlock.outbox's. The one
piece of glue here is :class:`_SinkFirstStore`, an ``OutboxStore`` around ``SQLOutbox``
that makes the sink durable before it forwards a batch's outcome.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from types import FrameType

    from interlock.outbox import OutboxMessage

__all__ = ["add_parser", "is_postgres_dsn", "run"]

PROG = "interlock outbox relay"
PROGRESS_INTERVAL_SECONDS = 0.5
SIGNAL_POLL_SECONDS = 0.05  # how often an idle wait looks at the signal flag

# A PostgreSQL URL, or libpq keyword/value text: it opens with ``keyword=``.
_DSN = re.compile(r"\A\s*(?:postgres(?:ql)?://|[A-Za-z_][A-Za-z0-9_]*\s*=)")


def is_postgres_dsn(text: str) -> bool:
    """Whether ``--db`` text names PostgreSQL (a URL or ``keyword=value`` text), not a file.

    >>> is_postgres_dsn("postgresql://app@db/shop"), is_postgres_dsn("host=db dbname=shop")
    (True, True)
    >>> is_postgres_dsn("shop.db"), is_postgres_dsn("./host=x.db")
    (False, False)
    """
    return _DSN.match(text) is not None


def _sink(text: str) -> str:
    if text == "stdout" or (text.startswith("jsonl:") and len(text) > len("jsonl:")):
        return text
    raise _argument_error(f"expected jsonl:PATH or stdout, got {text!r}")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _argument_error(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise _argument_error(f"must be >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _argument_error(f"expected seconds, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise _argument_error(f"must be a finite number of seconds >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise _argument_error(f"must be > 0 seconds, got {text!r}")
    return value


def _argument_error(message: str) -> Exception:
    import argparse  # noqa: PLC0415 - only a bad argument needs it

    return argparse.ArgumentTypeError(message)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``outbox`` command (with its ``relay`` sub-command) to ``subparsers``.

    The parsed arguments carry ``outbox_command`` (``"relay"`` or ``None``), ``db``,
    ``sink``, ``once``, ``migrate``, ``batch_size``, ``poll_interval``,
    ``lease_seconds`` and ``max_attempts``; pass them to :func:`run`.
    """
    outbox: argparse.ArgumentParser = subparsers.add_parser(
        "outbox",
        help="outbox relay: publish a SQLite or PostgreSQL outbox to JSON lines",
        description="Work with an interlock.outbox table.",
    )
    commands = outbox.add_subparsers(dest="outbox_command", metavar="SUBCOMMAND")
    relay = commands.add_parser(
        "relay",
        help="publish the outbox's messages as JSON lines, at least once, in order per key",
        description=(
            "Relay an interlock.outbox table to a JSON lines sink: each batch is written "
            "(and fsynced) before it is marked sent. Runs until SIGINT/SIGTERM, or with "
            "--once until nothing is due. Exit codes: 0 stopped as asked, 1 stopped on a "
            "failure, 2 bad arguments, cannot connect, or no outbox."
        ),
    )
    relay.add_argument(
        "--db",
        required=True,
        metavar="PATH|DSN",
        help=(
            "a SQLite file, or a PostgreSQL URL (postgresql://...) or libpq "
            "'keyword=value' string (host=... dbname=...)"
        ),
    )
    relay.add_argument(
        "--sink",
        required=True,
        type=_sink,
        metavar="jsonl:PATH|stdout",
        help="append JSON lines to PATH (fsynced per batch), or write them to stdout",
    )
    relay.add_argument(
        "--once", action="store_true", help="publish what is due, then exit (default: run)"
    )
    relay.add_argument(
        "--migrate", action="store_true", help="create the outbox tables first if missing"
    )
    relay.add_argument(
        "--batch-size", type=_count, default=100, metavar="N", help="messages per claim (100)"
    )
    relay.add_argument(
        "--poll-interval",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="seconds to wait after a claim that found nothing (1.0)",
    )
    relay.add_argument(
        "--lease-seconds",
        type=_positive_seconds,
        default=30.0,
        metavar="S",
        help="how long a claimed batch is held before another relay may take it (30)",
    )
    relay.add_argument(
        "--max-attempts",
        type=_count,
        default=10,
        metavar="N",
        help="deliveries before a message is dead-lettered (10)",
    )
    return outbox


# --------------------------------------------------------------------------------------
# Sinks
# --------------------------------------------------------------------------------------


class _SinkError(Exception):
    """The sink could not be written: the relay stops."""


class _Sink:
    """Collects a batch's lines as the relay publishes; ``commit`` makes them durable."""

    def __init__(self, name: str, out: TextIO, *, own: bool, fsync: bool) -> None:
        self.name = name
        self._out = out
        self._own = own
        self._fsync = fsync
        self._lines: list[str] = []

    def publish(self, message: OutboxMessage) -> None:
        self._lines.append(_line(message))

    def commit(self) -> None:
        """Write, flush and (for a regular file) fsync the lines published since the last one."""
        lines, self._lines = self._lines, []
        if not lines:
            return
        self._out.write("".join(lines))
        self._out.flush()
        if self._fsync:
            import os  # noqa: PLC0415 - only a file sink needs it

            os.fsync(self._out.fileno())

    def close(self) -> None:
        if self._own:  # our own file; standard output belongs to the caller
            with contextlib.suppress(OSError):  # a failed write left bytes in the buffer
                self._out.close()


def _line(message: OutboxMessage) -> str:
    import json  # noqa: PLC0415 - `--help` stays cheap

    record = {
        "message_id": message.message_id,
        "topic": message.topic,
        "key": message.key,
        "event_type": message.event_type,
        "headers": dict(message.headers),
        "payload": message.payload,
        "created_at": message.created_at,
        "attempt": message.attempt,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


def _open_sink(spec: str, stdout: TextIO) -> _Sink:
    """Open the sink; raise OSError if a file sink cannot be opened for appending."""
    if spec == "stdout":
        return _Sink("stdout", stdout, own=False, fsync=False)
    import os  # noqa: PLC0415
    import stat  # noqa: PLC0415

    path = spec[len("jsonl:") :]
    out = open(path, "a", encoding="ascii", newline="\n")  # noqa: SIM115, PTH123 - _Sink closes
    try:
        info = os.fstat(out.fileno())
        regular = stat.S_ISREG(info.st_mode)
        if regular and info.st_size > 0:
            with open(path, "rb") as tail:  # noqa: PTH123
                tail.seek(-1, os.SEEK_END)
                ragged = tail.read(1) != b"\n"
            if ragged:  # a write was cut short: start on a line of our own
                out.write("\n")
                out.flush()
    except BaseException:
        out.close()
        raise
    return _Sink(spec, out, own=True, fsync=regular)


# --------------------------------------------------------------------------------------
# The store the relay drives: the sink first, then the outbox
# --------------------------------------------------------------------------------------


class _Counts:
    def __init__(self) -> None:
        self.published = 0
        self.failed = 0
        self.dead = 0


class _SinkFirstStore:
    """An ``OutboxStore`` around ``SQLOutbox``: commits the sink before a batch's outcome.

    Every message the relay published since the last claim is in the sink's pending
    lines (the sink's ``publish`` cannot fail), so they are exactly the batch's ``sent``
    rows. If the sink cannot be written, those rows are settled as released (pending
    again, the attempt not counted) and :class:`_SinkError` stops the relay.
    """

    def __init__(
        self, store: Any, sink: _Sink, counts: _Counts, on_batch: Callable[[], None]
    ) -> None:
        self._store = store
        self._sink = sink
        self._counts = counts
        self._on_batch = on_batch

    def claim(
        self,
        *,
        limit: int,
        lease_seconds: float,
        max_attempts: int,
        dead_blocks_key: bool,
        now: float | None = None,
    ) -> Any:
        return self._store.claim(
            limit=limit,
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
            dead_blocks_key=dead_blocks_key,
            now=now,
        )

    def settle(
        self,
        token: str,
        *,
        sent: Sequence[int],
        failed: Sequence[tuple[int, str, float | None]],
        released: Sequence[int],
        now: float | None = None,
    ) -> int:
        try:
            self._sink.commit()
        except OSError as exc:
            self._counts.failed += len(sent)
            self._store.settle(token, sent=(), failed=failed, released=[*released, *sent], now=now)
            raise _SinkError(
                f"cannot write to {self._sink.name}: {exc.strerror or exc}; "
                f"{len(sent)} message(s) of the batch left pending"
            ) from exc
        changed = int(
            self._store.settle(token, sent=sent, failed=failed, released=released, now=now)
        )
        self._counts.published += len(sent)
        for _, _, delay in failed:
            if delay is None:
                self._counts.dead += 1
            else:
                self._counts.failed += 1
        self._on_batch()
        return changed

    def close(self) -> None:
        self._store.close()


class _Stop:
    """What ``OutboxRelay.run`` polls: set by SIGINT/SIGTERM, or (``--once``) when idle.

    The signal handler only sets a flag (an ``Event.set()`` in a handler can deadlock on
    the event's own lock); an idle wait looks at the flag every few hundredths of a second.
    """

    def __init__(self, *, once: bool) -> None:
        self.once = once
        self.signal: str | None = None
        self.drained = False

    def is_set(self) -> bool:
        return self.signal is not None or self.drained

    def wait(self, timeout: float | None = None) -> bool:
        if self.once:  # a claim found nothing due: the outbox is drained
            self.drained = True
            return True
        deadline = time.monotonic() + (timeout or 0.0)
        while self.signal is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, SIGNAL_POLL_SECONDS))
        return self.is_set()

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal = signal.Signals(signum).name


class _Progress:
    """A throttled progress line on a terminal, cleared before the summary."""

    def __init__(
        self, stderr: TextIO, counts: _Counts, *, enabled: bool, clock: Callable[[], float]
    ) -> None:
        self.stderr = stderr
        self.counts = counts
        self.enabled = enabled
        self.clock = clock
        self.last = clock()
        self.shown = False

    def tick(self) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.last < PROGRESS_INTERVAL_SECONDS:
            return
        self.last = now
        c = self.counts
        self.stderr.write(
            f"\r{PROG}: published {c.published}, failed {c.failed}, dead-lettered {c.dead}"
        )
        self.stderr.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stderr.write("\r\x1b[K")
            self.shown = False


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


class _Database:
    """An open connection and the driver errors it raises."""

    def __init__(self, conn: Any, errors: tuple[type[BaseException], ...], label: str) -> None:
        self.conn = conn
        self.errors = errors
        self.label = label


class _RefusedError(Exception):
    """Setting up failed before any message moved: exit 2 with this message."""


def _connect(db: str, *, create: bool) -> _Database:
    if is_postgres_dsn(db):
        try:
            import psycopg  # noqa: PLC0415 - only PostgreSQL needs the driver
        except ImportError:
            raise _RefusedError(
                "a PostgreSQL --db needs psycopg: pip install 'psycopg[binary]'"
            ) from None
        try:
            conn: Any = psycopg.connect(db)
        except psycopg.Error as exc:
            raise _RefusedError(f"cannot connect to PostgreSQL: {_first_line(exc)}") from None
        return _Database(conn, (psycopg.Error,), "the PostgreSQL database")
    import sqlite3  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    mode = "rwc" if create else "rw"  # without --migrate, never create an empty file
    try:
        uri = Path(db).absolute().as_uri() + f"?mode={mode}"
        conn = sqlite3.connect(uri, uri=True, timeout=30)
    except (sqlite3.Error, ValueError) as exc:
        raise _RefusedError(f"cannot open {db!r}: {exc}") from None
    return _Database(conn, (sqlite3.Error,), repr(db))


def _prepare(database: _Database, *, create: bool) -> None:
    """Migrate (``--migrate``) or check that the outbox tables are there."""
    from interlock.outbox import SchemaVersionError, migrate, stats  # noqa: PLC0415

    conn = database.conn
    try:
        if create:
            migrate(conn)
        stats(conn)  # reads the outbox table: fails if it is not there
        conn.rollback()  # end the read transaction (PostgreSQL opened one)
    except SchemaVersionError as exc:
        raise _RefusedError(str(exc)) from None
    except database.errors as exc:
        _rollback(database)
        if create:
            raise _RefusedError(
                f"cannot create the outbox in {database.label}: {_first_line(exc)}"
            ) from None
        raise _RefusedError(
            f"{database.label} has no outbox ({_first_line(exc)}): run with --migrate "
            "to create it, or call interlock.outbox.migrate(conn)"
        ) from None


def _first_line(exc: BaseException) -> str:
    """An error's first line (PostgreSQL's messages go on with context lines)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _rollback(database: _Database) -> None:
    with contextlib.suppress(*database.errors):
        database.conn.rollback()


def run(
    args: argparse.Namespace,
    stdout: TextIO,
    stderr: TextIO,
    *,
    isatty: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run ``outbox relay`` with parsed ``args``; return the exit code.

    ``isatty`` says whether ``stderr`` is a terminal (default: ``stderr.isatty``);
    ``clock`` throttles the progress line (seconds). SIGINT and SIGTERM handlers are
    installed for the run (main thread only) and restored afterwards.
    """
    if getattr(args, "outbox_command", None) != "relay":
        stderr.write("usage: interlock outbox relay --db PATH|DSN --sink jsonl:PATH|stdout\n")
        return 2
    try:
        sink = _open_sink(args.sink, stdout)
    except OSError as exc:
        stderr.write(f"{PROG}: cannot open sink {args.sink}: {exc.strerror or exc}\n")
        return 2
    try:
        try:
            database = _connect(args.db, create=args.migrate)
        except _RefusedError as exc:
            stderr.write(f"{PROG}: {exc}\n")
            return 2
        try:
            _prepare(database, create=args.migrate)
            return _relay(args, database, sink, stderr, isatty=isatty, clock=clock)
        except _RefusedError as exc:
            stderr.write(f"{PROG}: {exc}\n")
            return 2
        finally:
            with contextlib.suppress(*database.errors):
                database.conn.close()
    finally:
        sink.close()


def _relay(
    args: argparse.Namespace,
    database: _Database,
    sink: _Sink,
    stderr: TextIO,
    *,
    isatty: Callable[[], bool] | None,
    clock: Callable[[], float],
) -> int:
    from interlock.outbox import OutboxRelay, SQLOutbox  # noqa: PLC0415

    counts = _Counts()
    progress = _Progress(stderr, counts, enabled=(isatty or stderr.isatty)(), clock=clock)
    store = _SinkFirstStore(SQLOutbox(database.conn), sink, counts, progress.tick)
    relay = OutboxRelay(
        store,
        sink.publish,
        batch_size=args.batch_size,
        lease_seconds=args.lease_seconds,
        max_attempts=args.max_attempts,
    )
    stop = _Stop(once=args.once)
    code, problem = 0, None
    previous = _install(stop)
    try:
        relay.run(stop, idle_seconds=args.poll_interval)
    except _SinkError as exc:
        code, problem = 1, str(exc)
    except database.errors as exc:
        code, problem = 1, f"database error, stopping: {type(exc).__name__}: {_first_line(exc)}"
        _rollback(database)
    finally:
        _restore(previous)
        progress.clear()
    if problem is not None:
        stderr.write(f"{PROG}: {problem}\n")
    _summary(stderr, database, counts, relay.lost_leases, stop)
    return code


def _summary(
    stderr: TextIO, database: _Database, counts: _Counts, lost_leases: int, stop: _Stop
) -> None:
    from interlock.outbox import stats  # noqa: PLC0415

    line = (
        f"{PROG}: published {counts.published}, failed {counts.failed}, dead-lettered {counts.dead}"
    )
    if lost_leases:
        line += f", lost leases {lost_leases}"
    try:
        now = stats(database.conn)
        database.conn.rollback()
    except database.errors:
        _rollback(database)
    else:
        line += (
            f"; outbox: {now.pending} pending, {now.in_flight} in flight, "
            f"{now.dead_lettered} dead letters"
        )
    if stop.signal is not None:
        line += f" (stopped by {stop.signal})"
    stderr.write(line + "\n")


_SIGNALS = ("SIGINT", "SIGTERM")


def _install(stop: _Stop) -> dict[int, Any]:
    """Point SIGINT and SIGTERM at ``stop``; return the handlers to restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    for name in _SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, stop.handle)
    return previous


def _restore(previous: dict[int, Any]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
