# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Command line: ``python -m interlock <command>`` (also installed as ``interlock``).

Commands:
    demo    run the end-to-end demo of the patterns that exist today

The command line parses arguments and prints; behaviour lives in the pattern modules.
Exit codes: 0 success, 1 the command failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from interlock import __version__

if TYPE_CHECKING:
    from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interlock",
        description="Reliable-integration patterns for Python, one stdlib-only module each.",
    )
    parser.add_argument("--version", action="version", version=f"interlock {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "demo",
        help="run the end-to-end demo",
        description=(
            "An order event goes through its delivery lifecycle (a failure, a retry, an "
            "acknowledgement) and out as a CloudEvents HTTP request; a CRM/ERP contact "
            "sync is planned field by field. Deterministic: fixed times, no network."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from interlock.cli_demo import run_demo  # noqa: PLC0415 - keep `--help` and `--version` fast

    try:
        run_demo(sys.stdout)
    except BrokenPipeError:  # `python -m interlock demo | head` is fine
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the tests
    sys.exit(main())
