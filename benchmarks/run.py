# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Benchmark interlock's hot paths against the standard-library floor and the installed peers.

Every hot path is measured in one process, interleaved: each round runs every contender
once, for a batch of calls, and the order rotates from round to round, so a burst of
noise from another process lands on all contenders alike (the import cost, which needs
fresh interpreters, runs one child per contender per round, interleaved the same way).
The table leads with the ratio to the floor (the median of the per-round ratios); the
absolute median time per call is secondary, because it depends on the machine. After the
per-path tables comes one summary table of every hot path.

    python benchmarks/run.py                    # every hot path, full run
    python benchmarks/run.py --quick            # a smoke run for CI (under a minute)
    python benchmarks/run.py --only cloudevent-parse-1kb --json results.json
    python benchmarks/run.py --results benchmarks/RESULTS.md   # refresh RESULTS.md

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
import importlib.metadata
import json
import os
import platform
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import Contender, HotPath, PathResult, Settings, run_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

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


@dataclass(frozen=True)
class Skipped:
    """A hot path that was chosen but not run (a set-up heavy path in a quick run)."""

    name: str
    reason: str


QUICK_SKIP = "set-up heavy, not run by --quick (--only runs it)"

# --------------------------------------------------------------------------------------
# Reporting: shared pieces
# --------------------------------------------------------------------------------------


def role(contender: Contender) -> str:
    """``"floor"``, ``"interlock"`` (a key starting with ``interlock``), or ``"other"``.

    The others are the peers (contenders with ``requires=``) and any further reference a
    hot path measures (outbox-add's bare INSERT); the summary lists them together.
    """
    if contender.key == "floor":
        return "floor"
    if contender.key.startswith("interlock"):
        return "interlock"
    return "other"


def times(ratio: float | None) -> str:
    """A ratio with at most three significant figures: 0.042x, 1.23x, 12.3x, 123x."""
    if ratio is None:
        return "n/a"
    if ratio < 0.1:
        return f"{ratio:.3f}x"
    if ratio < 9.995:
        return f"{ratio:.2f}x"
    if ratio < 99.95:
        return f"{ratio:.1f}x"
    return f"{ratio:.0f}x"


def scale(path: HotPath) -> float:
    """Nanoseconds per displayed unit: milliseconds for ``ms/...`` units, else microseconds."""
    return 1e6 if path.unit.startswith("ms") else 1e3


def why(status: str, message: str) -> str:
    """A contender's non-``ok`` status, with its error message when there is one."""
    return f"{status}: {message}" if message else status


def goal_counts(result: PathResult) -> str:
    """``"2 PASS, 1 FAIL"``: how many goals of each verdict (``info`` lines are not goals)."""
    statuses = [v.status for v in result.verdicts]
    counts = [f"{statuses.count(s)} {s}" for s in ("PASS", "FAIL", "SKIP") if s in statuses]
    return ", ".join(counts) or "no goal"


def table_notes(path: HotPath) -> list[str]:
    return [c.note for c in path.contenders if c.note] + list(path.notes)


def goal_line(status: str, text: str) -> str:
    return f"{'info' if status == 'info' else f'GOAL {status}'}: {text}"


# --------------------------------------------------------------------------------------
# The per-path table
# --------------------------------------------------------------------------------------


def print_result(result: PathResult, seconds: float) -> None:
    path = result.path
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
            median = outcome.median_ns / scale(path)
            figures = f"{shown:>7}  {median:>9.2f}  {outcome.spread:>6.0%}"
            print(f"  {outcome.name:<{width}}  {figures}  {outcome.timed}")
        else:
            status = why(outcome.status, outcome.message)
            print(
                f"  {outcome.name:<{width}}  {'-':>7}  {'-':>9}  {'-':>6}  {outcome.timed}"
                f" [{status}]"
            )
    for note in table_notes(path):
        print(f"  {note}")
    print()
    for verdict in result.verdicts:
        prefix = "info" if verdict.status == "info" else f"GOAL {verdict.status}"
        print(f"  {prefix:<9}  {verdict.text}")


# --------------------------------------------------------------------------------------
# The summary: one row per hot path
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One hot path in the summary; the lists hold ``(label, figure)`` pairs."""

    name: str
    interlock: tuple[tuple[str, str], ...] = ()  # each interlock contender, x floor
    others: tuple[tuple[str, str], ...] = ()  # each peer (and reference), x floor or status
    versus: tuple[tuple[str, str], ...] = ()  # interlock's time over each measured other
    goals: str = ""
    remark: str = ""  # why nothing is shown: skipped, not measured


def summarise(result: PathResult | Skipped) -> SummaryRow:
    """The summary row of one hot path (contenders named by their key)."""
    if isinstance(result, Skipped):
        return SummaryRow(result.name, remark=f"skipped: {result.reason}")
    path, goals = result.path, goal_counts(result)
    floor = result.outcomes.get("floor")
    if floor is None or floor.status != "ok":
        remark = "not measured" if floor is None else f"floor {floor.status}"
        return SummaryRow(path.name, goals=goals, remark=remark)
    interlock = [c for c in path.contenders if role(c) == "interlock"]
    primary = interlock[0].key if interlock else None

    def figure(key: str) -> str:
        outcome = result.outcomes[key]
        return times(result.ratio(key)) if outcome.status == "ok" else outcome.status

    others, versus = [], []
    for contender in path.contenders:
        if role(contender) != "other":
            continue
        others.append((contender.key, figure(contender.key)))
        if primary is not None and result.ok(contender.key) is not None:
            versus.append((contender.key, times(result.ratio(primary, contender.key))))
    return SummaryRow(
        path.name,
        interlock=tuple((c.key, figure(c.key)) for c in interlock),
        others=tuple(others),
        versus=tuple(versus),
        goals=goals,
    )


SUMMARY_LEGEND = (
    "x floor: the median of the per-round ratios to the floor (the floor itself is 1.00x).",
    (
        "\"0.12x pybreaker\": interlock's time relative to pybreaker's, the median of the"
        " per-round ratios (below 1.00x, interlock is faster). Peers also lists any further"
        " reference a path measures. Contenders are named by their key; each path's table"
        " names them in full."
    ),
)

NAME_WIDTH, FIRST_WIDTH, GOALS_WIDTH = 31, 46, 22  # 99 columns in all


def pack(items: Sequence[str], width: int) -> list[str]:
    """Join ``items`` with ", " into lines of at most ``width`` (an item is never split)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) + 1 <= width:
            lines[-1] += f", {item}"
        elif lines:
            lines[-1] += ","
            lines.append(item)
        else:
            lines.append(item)
    return lines or [""]


def summary_lines(rows: Iterable[SummaryRow]) -> list[str]:
    """The summary as text for a terminal of 100 columns."""
    indent = " " * NAME_WIDTH
    rest = 99 - NAME_WIDTH
    heading = f"{'hot path':<{NAME_WIDTH}}{'interlock, x floor':<{FIRST_WIDTH}}"
    out = [f"{heading}{'goals':>{GOALS_WIDTH}}"]
    for row in rows:
        if row.remark:
            first = pack([row.remark], FIRST_WIDTH)
        else:
            first = pack([f"{key} {figure}" for key, figure in row.interlock], FIRST_WIDTH)
        head = f"{row.name:<{NAME_WIDTH}}{first[0]:<{FIRST_WIDTH}}{row.goals:>{GOALS_WIDTH}}"
        out.append(head.rstrip())
        out.extend(indent + line for line in first[1:])
        for label, pairs in (
            ("  peers, x floor", [f"{key} {figure}" for key, figure in row.others]),
            ("  interlock's time", [f"{figure} {key}" for key, figure in row.versus]),
        ):
            if pairs:
                lines = pack(pairs, rest)
                out.append(f"{label:<{NAME_WIDTH}}{lines[0]}")
                out.extend(indent + line for line in lines[1:])
    return out


def print_summary(items: Sequence[PathResult | Skipped]) -> None:
    print("\n== summary ==")
    for paragraph in SUMMARY_LEGEND:
        print(textwrap.fill(paragraph, 99))
    print()
    for line in summary_lines(summarise(item) for item in items):
        print(line)


# --------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Environment:
    """Where and when a run happened: the header of the results file."""

    generated: str  # UTC, ISO 8601 to the second
    platform: str
    cpu_count: int | None
    processor: str
    python: str  # implementation and version
    interlock: str  # the measured package's version
    packages: tuple[tuple[str, str], ...]  # (peer or driver, version or "not installed")


def processor_name() -> str:
    """The CPU model from /proc/cpuinfo when there is one, else what ``platform`` knows."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("model name", "Hardware", "cpu model") and value.strip():
            return value.strip()
    return platform.processor() or "unknown"


def package_versions(results: Iterable[PathResult]) -> tuple[tuple[str, str], ...]:
    """Every module a contender ``requires`` (peers, drivers), as its distribution and version."""
    modules = {c.requires for r in results for c in r.path.contenders if c.requires}
    distributions = importlib.metadata.packages_distributions()
    found: dict[str, str] = {}
    for module in modules:
        for name in distributions.get(module, [module]):
            found[name] = installed_version(name)
    return tuple(sorted(found.items()))


def installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(results: Iterable[PathResult]) -> Environment:
    import interlock

    return Environment(
        generated=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        platform=platform.platform(),
        cpu_count=os.cpu_count(),
        processor=processor_name(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        interlock=str(getattr(interlock, "__version__", "unknown")),
        packages=package_versions(results),
    )


def cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_summary(rows: Iterable[SummaryRow]) -> list[str]:
    out = [
        "| Hot path | interlock, x floor | Peers, x floor | interlock's time | Goals |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.remark:
            out.append(f"| `{row.name}` | {cell(row.remark)} | - | - | {row.goals or '-'} |")
            continue
        measured = dict(row.versus)
        interlock = "<br>".join(cell(f"{key} {figure}") for key, figure in row.interlock)
        others = "<br>".join(cell(f"{key} {figure}") for key, figure in row.others)
        versus = "<br>".join(
            cell(f"{measured[key]} {key}") if key in measured else "-" for key, _ in row.others
        )
        out.append(f"| `{row.name}` | {interlock} | {others} | {versus} | {row.goals} |")
    return out


def markdown_path(result: PathResult | Skipped) -> list[str]:
    if isinstance(result, Skipped):
        return [f"### {result.name}", "", f"Skipped: {result.reason}."]
    path = result.path
    out = [
        f"### {path.name}",
        "",
        f"{cell(path.summary)}. {result.rounds} interleaved rounds.",
        "",
    ]
    if not result.outcomes:
        out.append("No contender was set up for this run.")
    else:
        out.append(f"| Contender | x floor | {path.unit} | spread | Timed |")
        out.append("|---|---:|---:|---:|---|")
    for outcome in result.outcomes.values():
        if outcome.status == "ok":
            ratio = result.ratio(outcome.key)
            figures = (
                f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | "
                f"{outcome.median_ns / scale(path):.2f} | {outcome.spread:.0%}"
            )
            timed = outcome.timed
        else:
            figures = "- | - | -"
            timed = f"{outcome.timed} [{why(outcome.status, outcome.message)}]"
        out.append(f"| {cell(outcome.name)} | {figures} | {cell(timed)} |")
    notes = table_notes(path)
    if notes:
        out.extend(["", "Notes:", "", *(f"- {cell(note)}" for note in notes)])
    if result.verdicts:
        goals = (f"- {cell(goal_line(v.status, v.text))}" for v in result.verdicts)
        out.extend(["", "Goals:", "", *goals])
    return out


def render_results(
    items: Sequence[PathResult | Skipped],
    env: Environment,
    *,
    quick: bool,
    only: str | None,
    readme: str = "README.md",
) -> str:
    """The results file: the same results and environment always give the same text."""
    run = "quick (`--quick`: fewer rounds, set-up heavy paths skipped)" if quick else "full"
    chosen = f"`--only {only}`" if only else f"all {len(items)}"
    packages = ", ".join(f"{name} {version}" for name, version in env.packages) or "none"
    cpus = env.cpu_count or "unknown"
    lines = [
        "# interlock benchmark results",
        "",
        (
            "Written by `python benchmarks/run.py --results PATH`. Ratios come first: absolute"
            " times describe this machine more than the code. The method is in"
            f" [benchmarks/README.md]({readme})."
        ),
        "",
        f"- Date (UTC): {env.generated}",
        f"- Machine: {cell(env.platform)}; {cpus} CPUs; {cell(env.processor)}",
        f"- Python: {env.python}",
        f"- interlock: {env.interlock}",
        f"- Run: {run}; hot paths: {chosen}",
        f"- Peers and drivers: {packages}",
        "",
        "## Summary",
        "",
        " ".join(SUMMARY_LEGEND),
        "",
        *markdown_summary(summarise(item) for item in items),
        "",
        "## Hot paths",
    ]
    for item in items:
        lines.extend(["", *markdown_path(item)])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def as_json(items: Sequence[PathResult | Skipped], settings: Settings) -> dict[str, Any]:
    paths = {}
    for result in items:
        if isinstance(result, Skipped):
            continue
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
        "skipped": {s.name: s.reason for s in items if isinstance(s, Skipped)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI smoke run)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write results as JSON")
    parser.add_argument(
        "--results",
        metavar="PATH",
        type=Path,
        help="also write the results as Markdown (how benchmarks/RESULTS.md is made)",
    )
    parser.add_argument("--only", metavar="NAME", choices=NAMES, help=f"one of: {', '.join(NAMES)}")
    args = parser.parse_args(argv)
    for option in ("json", "results"):
        target = getattr(args, option)
        if target is not None and not target.resolve().parent.is_dir():
            parser.error(f"--{option}: directory {target.resolve().parent} does not exist")
    settings = Settings(quick=args.quick)

    import interlock.event_envelope

    print(
        f"interlock benchmarks: {platform.python_implementation()} {platform.python_version()}"
        f" on {platform.platform()}, {os.cpu_count()} CPUs, {'quick' if args.quick else 'full'}"
        f" run\ninterlock from {Path(interlock.event_envelope.__file__).parent}"
    )
    items: list[PathResult | Skipped] = []
    for build in HOT_PATHS:
        if args.only is None or args.only == build.__name__.replace("_", "-"):
            path = build()
            if settings.quick and path.heavy and args.only is None:
                items.append(Skipped(path.name, QUICK_SKIP))
                print(f"\n== {path.name} ==\nskipped in a quick run (set-up heavy); --only runs it")
                continue
            started = time.perf_counter()
            result = run_path(path, settings)
            items.append(result)
            print_result(result, time.perf_counter() - started)
    print_summary(items)
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(items, settings), indent=2) + "\n")
        print(f"\nresults written to {args.json}")
    if args.results is not None:
        results = [item for item in items if isinstance(item, PathResult)]
        readme = os.path.relpath(HERE / "README.md", args.results.resolve().parent)
        text = render_results(
            items, environment(results), quick=args.quick, only=args.only, readme=readme
        )
        args.results.write_text(text, encoding="utf-8")
        print(f"\nresults written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
