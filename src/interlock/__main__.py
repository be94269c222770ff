# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Command line: ``python -m interlock <command>`` (also installed as ``interlock``).

Commands:
    demo        run the end-to-end demo of the patterns that exist today
    cdc         cdc parse: Debezium JSON lines in, normalised JSON lines out
    webhooks    webhooks sign|verify: debug a webhook signature
    ledger      ledger report: what ran, what failed and how long it took
    outbox      outbox relay: publish a SQLite or PostgreSQL outbox as JSON lines

Each command lives in its own ``interlock.cli_<name>`` module with two functions:
``add_parser(subparsers)`` declares its arguments and ``run(args, stdout, stderr)``
returns the exit code. The command line parses arguments and prints; behaviour lives in
the pattern modules, which a command imports only when it runs.
Exit codes: 0 success, 1 the command failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import TYPE_CHECKING

from interlock import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence

# command name -> the module that implements it
COMMANDS = {
    "demo": "interlock.cli_demo",
    "cdc": "interlock.cli_cdc",
    "webhooks": "interlock.cli_webhooks",
    "ledger": "interlock.cli_ledger",
    "outbox": "interlock.cli_outbox",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="Reliable-integration patterns for Python, one stdlib-only module each.",
    )
    parser.add_argument("--version", action="version", version=f"interlock {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    command = importlib.import_module(COMMANDS[args.command])
    try:
        return int(command.run(args, sys.stdout, sys.stderr))
    except BrokenPipeError:  # `python -m interlock demo | head` is fine
        return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
