# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Benchmark interlock's hot paths against the standard-library floor and the installed peers.

Every hot path is measured in one process, interleaved: each round runs every contender
once, for a batch of calls, and the order rotates from round to round, so a burst of
noise from another process lands on all contenders alike (the import cost, which needs
fresh interpreters, runs one child per contender per round, interleaved the same way).
The table leads with the ratio to the floor (the median of the per-round ratios); the
absolute median time per call is secondary, because it depends on the machine.

    python benchmarks/run.py                    # every hot path, full run
    python benchmarks/run.py --quick            # a smoke run for CI (under a minute)
    python benchmarks/run.py --only cloudevent-parse-1kb --json results.json

Goals are reported as PASS/FAIL lines, never asserted: the exit status is 0 whenever the
run completed, 2 for bad arguments. A peer that is not installed is reported and skipped;
a peer that raises is reported with its error.

Hot paths live in the ``hot_<area>.py`` files next to this script (one per pattern area),
each exporting ``HOT_PATHS``: a tuple of functions that build one ``HotPath`` each with the
pieces of ``harness.py``. This script finds the files by name, so adding an area is adding
a file; the import cost runs last.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import HotPath, PathResult, Settings, run_path

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the hot_*.py files import harness as a sibling


def discover() -> tuple[Callable[[], HotPath], ...]:
    """Every hot path of every ``hot_<area>.py`` file, import cost last."""
    areas = sorted(p.stem for p in HERE.glob("hot_*.py"))
    areas.sort(key=lambda area: area == "hot_import")
    found: list[Callable[[], HotPath]] = []
    for area in areas:
        found.extend(importlib.import_module(area).HOT_PATHS)
    return tuple(found)


HOT_PATHS = discover()
NAMES = tuple(f.__name__.replace("_", "-") for f in HOT_PATHS)

# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def print_result(result: PathResult, seconds: float) -> None:
    path = result.path
    scale = 1e6 if path.unit.startswith("ms") else 1e3
    print(f"\n== {path.name} ==\n{path.summary}. (measured in {seconds:.1f} s)")
    print(
        f"{result.rounds} interleaved rounds. x floor = median of the per-round ratios to the "
        "floor;\nspread = interquartile range of the rounds over their median."
    )
    width = max([len("contender"), *(len(o.name) for o in result.outcomes.values())])
    print(f"\n  {'contender':<{width}}  {'x floor':>7}  {path.unit:>9}  spread  timed")
    for outcome in result.outcomes.values():
        if outcome.status == "ok":
            ratio = result.ratio(outcome.key)
            shown = "n/a" if ratio is None else f"{ratio:.2f}x"
            figures = f"{shown:>7}  {outcome.median_ns / scale:>9.2f}  {outcome.spread:>6.0%}"
            print(f"  {outcome.name:<{width}}  {figures}  {outcome.timed}")
        else:
            why = f"{outcome.status}: {outcome.message}" if outcome.message else outcome.status
            print(
                f"  {outcome.name:<{width}}  {'-':>7}  {'-':>9}  {'-':>6}  {outcome.timed} [{why}]"
            )
    for note in [c.note for c in path.contenders if c.note] + list(path.notes):
        print(f"  {note}")
    print()
    for verdict in result.verdicts:
        prefix = "info" if verdict.status == "info" else f"GOAL {verdict.status}"
        print(f"  {prefix:<9}  {verdict.text}")


def as_json(results: list[PathResult], settings: Settings) -> dict[str, Any]:
    paths = {}
    for result in results:
        contenders = []
        for outcome in result.outcomes.values():
            entry: dict[str, Any] = {
                "key": outcome.key,
                "name": outcome.name,
                "timed": outcome.timed,
                "status": outcome.status,
            }
            if outcome.status == "ok":
                entry["ratio_to_floor"] = result.ratio(outcome.key)
                entry["median_us_per_call"] = outcome.median_ns / 1e3
                entry["spread_iqr_over_median"] = outcome.spread
                entry["calls_per_batch"] = outcome.calls_per_batch
            else:
                entry["message"] = outcome.message
            contenders.append(entry)
        paths[result.path.name] = {
            "summary": result.path.summary,
            "rounds": result.rounds,
            "contenders": contenders,
            "goals": [{"status": v.status, "text": v.text} for v in result.verdicts],
        }
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "quick": settings.quick,
        "hot_paths": paths,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results as JSON")
    parser.add_argument("--only", metavar="NAME", choices=NAMES, help=f"one of: {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    if args.json is not None and not args.json.resolve().parent.is_dir():
        parser.error(f"--json: directory {args.json.resolve().parent} does not exist")
    settings = Settings(quick=args.quick)

    import interlock.event_envelope

    print(
        f"interlock benchmarks: {platform.python_implementation()} {platform.python_version()}"
        f" on {platform.platform()}, {os.cpu_count()} CPUs, {'quick' if args.quick else 'full'}"
        f" run\ninterlock from {Path(interlock.event_envelope.__file__).parent}"
    )
    results = []
    for build in HOT_PATHS:
        if args.only is None or args.only == build.__name__.replace("_", "-"):
            path = build()
            if settings.quick and path.heavy and args.only is None:
                print(f"\n== {path.name} ==\nskipped in a quick run (set-up heavy); --only runs it")
                continue
            started = time.perf_counter()
            results.append(run_path(path, settings))
            print_result(results[-1], time.perf_counter() - started)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results, settings), indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
