# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""The ``python -m interlock ledger report`` command: what happened in a SQLite ledger.

Usage::

    python -m interlock ledger report --db PATH [--since ISO] [--until ISO] [--run KEY]
                                      [--top N] [--json]

Without ``--run``: runs, items and stages counted by status, per-step attempts, success
rate, attempts per stage and duration percentiles, and the top failure reasons, over
``[--since, --until)`` (ISO 8601; a time without an offset is UTC). With ``--run KEY``:
that run's full report, dead letters included. ``--json`` prints the same as one JSON
document (``LedgerReport.to_dict()`` or ``Ledger.run_report()``).

Exit codes: 0 the report was printed; 1 the file is not a ledger or the run is unknown;
2 bad arguments (unreadable file, bad time).

This module only parses arguments and prints; the reports are interlock.ledger's.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["add_parser", "run"]

PROG = "interlock ledger"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ledger`` command (with its ``report`` sub-command) to ``subparsers``.

    The parsed arguments carry ``ledger_command`` (``"report"`` or ``None``), ``db``,
    ``since``, ``until``, ``run_key``, ``top`` and ``json``; pass them to :func:`run`.
    """
    ledger: argparse.ArgumentParser = subparsers.add_parser(
        "ledger",
        help="ledger report: runs, items, steps and failures from a SQLite ledger",
        description="Read an interlock.ledger SQLite file.",
    )
    commands = ledger.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND")
    report = commands.add_parser(
        "report",
        help="counts by status, per-step statistics, top failures; or one run's report",
        description="Print a ledger report as tables (or JSON).",
    )
    report.add_argument("--db", required=True, metavar="PATH", help="the SQLite ledger file")
    report.add_argument("--since", metavar="ISO", help="from this time (ISO 8601, UTC if naive)")
    report.add_argument("--until", metavar="ISO", help="before this time (ISO 8601)")
    report.add_argument("--run", dest="run_key", metavar="KEY", help="one run's full report")
    report.add_argument("--top", type=int, default=10, metavar="N", help="failure reasons shown")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return ledger


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _table(out: TextIO, title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    out.write(f"\n{title}\n")
    if not rows:
        out.write("  (none)\n")
        return
    cells = [[_cell(v) for v in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        line = "  ".join(
            v.ljust(w) if i == 0 or not _numeric(v) else v.rjust(w)
            for i, (v, w) in enumerate(zip(row, widths, strict=True))
        )
        out.write("  " + line.rstrip() + "\n")
        if n == 0:
            out.write("  " + "  ".join("-" * w for w in widths) + "\n")


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").isdigit()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _counts(out: TextIO, title: str, counts: dict[str, int]) -> None:
    _table(out, title, ("status", "count"), sorted(counts.items()))


def _steps(out: TextIO, steps: list[dict[str, Any]]) -> None:
    rows = [
        (
            s["step"],
            s["attempts"],
            s["stages"],
            f"{100 * s['success_rate']:.1f}%",
            s["attempts_per_stage"],
            s["p50"],
            s["p90"],
            s["p99"],
            s["max"],
        )
        for s in steps
    ]
    header = (
        "step",
        "attempts",
        "stages",
        "success",
        "att/stage",
        "p50 s",
        "p90 s",
        "p99 s",
        "max s",
    )
    _table(out, "Steps", header, rows)


def _failures(out: TextIO, failures: list[dict[str, Any]]) -> None:
    rows = [(f["attempts"], f["step"], f["error"]) for f in failures]
    _table(out, "Top failure reasons", ("count", "step", "error"), rows)


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``ledger report`` with parsed ``args``; return the exit code."""
    if getattr(args, "ledger_command", None) != "report":
        stderr.write("usage: interlock ledger report --db PATH [--since ISO] [--run KEY]\n")
        return 2
    try:
        since, until = _when(args.since), _when(args.until)
    except ValueError as exc:
        stderr.write(f"{PROG}: bad time: {exc}\n")
        return 2
    if args.top < 1:
        stderr.write(f"{PROG}: --top must be >= 1, got {args.top}\n")
        return 2
    import sqlite3  # noqa: PLC0415 - only when the command runs
    from pathlib import Path  # noqa: PLC0415

    from interlock.ledger import Ledger, LedgerError, SQLLedgerStore  # noqa: PLC0415

    try:
        uri = Path(args.db).absolute().as_uri() + "?mode=rw"  # never creates a file
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        stderr.write(f"{PROG}: cannot open {args.db!r}: {exc}\n")
        return 2
    try:
        ledger = Ledger(SQLLedgerStore(conn))
        if args.run_key is not None:
            data = ledger.run_report(args.run_key)
        else:
            data = ledger.report(since=since, until=until, top=args.top).to_dict()
    except LedgerError as exc:
        stderr.write(f"{PROG}: {exc}\n")
        return 1
    except sqlite3.DatabaseError as exc:
        stderr.write(f"{PROG}: {args.db!r} is not an interlock ledger: {exc}\n")
        return 1
    finally:
        conn.close()
    if args.json:
        stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    if args.run_key is not None:
        _print_run(stdout, data)
    else:
        _print_report(stdout, data)
    return 0


def _print_report(out: TextIO, data: dict[str, Any]) -> None:
    out.write(f"Ledger report  since={data['since'] or '-'}  until={data['until'] or '-'}\n")
    _counts(out, "Runs", data["runs"])
    _counts(out, "Items", data["items"])
    _counts(out, "Stages", data["stages"])
    _steps(out, data["steps"])
    _failures(out, data["failures"])
    out.write(f"\nDead letters: {data['dead_letters']}\n")


def _print_run(out: TextIO, data: dict[str, Any]) -> None:
    link = data["link"]
    out.write(f"Run {data['run_key']}  process={data['process']}  status={data['status']}\n")
    out.write(f"  trigger={data['trigger']}  params={json.dumps(data['params'])}\n")
    if link is not None:
        out.write(f"  link={link['engine']}:{link['external_id']} {link['url'] or ''}".rstrip())
        out.write("\n")
    out.write(
        f"  created={data['created_at']}  finished={data['finished_at'] or '-'}"
        f"  duration={_cell(data['duration'])} s\n"
    )
    _counts(out, "Items", data["items"])
    _counts(out, "Stages", data["stages"])
    _steps(out, data["steps"])
    _failures(out, data["failures"])
    rows = [
        (d["id"], d["reason"], d["item_id"], d["error"], d["payload"], d["redriven_at"])
        for d in data["dead_letters"]
    ]
    _table(out, "Dead letters", ("id", "reason", "item", "error", "payload", "redriven"), rows)
