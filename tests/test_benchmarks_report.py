"""benchmarks/run.py reporting: the summary table and the results file, from hand-made results.

Nothing here times anything: the results are built by hand with fixed samples, so the
figures are known in advance.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def run() -> ModuleType:
    """benchmarks/run.py, imported by path with its directory on sys.path (for harness)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location("bench_run", BENCHMARKS / "run.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, "bench_run", module)  # its dataclasses look it up there
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness(run: ModuleType) -> ModuleType:
    """The harness module run.py uses (Outcome and Verdict live there)."""
    return sys.modules["harness"]


def never() -> Any:
    raise AssertionError("a hand-made result is never prepared")


def make_result(
    run: ModuleType,
    harness: ModuleType,
    name: str,
    samples: dict[str, list[float] | str],
    *,
    requires: dict[str, str] | None = None,
    verdicts: tuple[tuple[str, str], ...] = (),
    timed: str = "a call",
) -> Any:
    """A PathResult with the given per-round samples (or a status such as "not installed")."""
    requires = requires or {}
    contenders = tuple(
        harness.Contender(key, f"{key} name", timed, never, requires=requires.get(key))
        for key in samples
    )
    path = harness.HotPath(name, f"the {name} job", contenders)
    outcomes = {}
    for key, value in samples.items():
        outcome = harness.Outcome(key, f"{key} name", timed)
        if isinstance(value, str):
            outcome.status = value
        else:
            outcome.samples = list(value)
        outcomes[key] = outcome
    result = run.PathResult(path, 3, outcomes)
    result.verdicts = [harness.Verdict(status, text) for status, text in verdicts]
    return result


def breaker(run: ModuleType, harness: ModuleType) -> Any:
    return make_result(
        run,
        harness,
        "breaker-closed-call",
        {
            "floor": [100.0, 200.0, 100.0],
            "interlock": [150.0, 300.0, 150.0],
            "interlock-rate": [200.0, 400.0, 200.0],
            "pybreaker": [1000.0, 2000.0, 1000.0],
            "circuitbreaker": "not installed",
        },
        requires={"pybreaker": "pybreaker", "circuitbreaker": "circuitbreaker"},
        verdicts=(("PASS", "a"), ("FAIL", "b"), ("PASS", "c"), ("info", "d"), ("SKIP", "e")),
    )


def environment(run: ModuleType) -> Any:
    return run.Environment(
        generated="2026-11-22T10:00:00+00:00",
        platform="Linux-6.1-x86_64-with-glibc2.36",
        cpu_count=2,
        processor="Example CPU @ 2.50GHz",
        python="CPython 3.11.7",
        interlock="0.1.0",
        packages=(("circuitbreaker", "not installed"), ("pybreaker", "1.4.1")),
    )


def test_summary_row_gives_ratios_to_the_floor_and_interlock_relative_to_each_peer(
    run: ModuleType, harness: ModuleType
) -> None:
    """Interlock and peers get x floor; each measured peer gets interlock's time over its own."""
    row = run.summarise(breaker(run, harness))
    assert row.interlock == (("interlock", "1.50x"), ("interlock-rate", "2.00x"))
    assert row.others == (("pybreaker", "10.0x"), ("circuitbreaker", "not installed"))
    assert row.versus == (("pybreaker", "0.15x"),)
    assert row.remark == ""


def test_goal_counts_leave_out_info_lines(run: ModuleType, harness: ModuleType) -> None:
    """The goals cell counts PASS, FAIL and SKIP verdicts in that order and ignores info lines."""
    assert run.summarise(breaker(run, harness)).goals == "2 PASS, 1 FAIL, 1 SKIP"
    none = make_result(run, harness, "p", {"floor": [1.0], "interlock": [2.0]})
    assert run.summarise(none).goals == "no goal"


def test_a_path_without_a_measured_floor_is_shown_as_such(
    run: ModuleType, harness: ModuleType
) -> None:
    """No floor (no contenders) or a failed floor gives a remark instead of ratios."""
    empty = make_result(run, harness, "ledger-attempt-postgres", {}, verdicts=(("SKIP", "x"),))
    assert run.summarise(empty).remark == "not measured"
    assert run.summarise(empty).goals == "1 SKIP"
    failed = make_result(run, harness, "p", {"floor": "error", "interlock": [1.0]})
    assert run.summarise(failed).remark == "floor error"


def test_a_skipped_path_appears_in_both_summaries(run: ModuleType, harness: ModuleType) -> None:
    """A heavy path skipped by --quick has its own row, in the terminal and in Markdown."""
    skipped = run.Skipped("ledger-report-sqlite", run.QUICK_SKIP)
    items = [breaker(run, harness), skipped]
    text = "\n".join(run.summary_lines(run.summarise(item) for item in items))
    assert f"ledger-report-sqlite           skipped: {run.QUICK_SKIP}" in text
    markdown = run.render_results(items, environment(run), quick=True, only=None)
    assert f"| `ledger-report-sqlite` | skipped: {run.QUICK_SKIP} | - | - | - |" in markdown
    assert f"### ledger-report-sqlite\n\nSkipped: {run.QUICK_SKIP}." in markdown


def test_terminal_summary_fits_in_100_columns_without_splitting_a_figure(
    run: ModuleType, harness: ModuleType
) -> None:
    """Many peers wrap onto further lines of at most 99 columns; no "key ratio" pair is split."""
    peers = {f"a-rather-long-peer-key-{n}": [300.0 + n] for n in range(8)}
    result = make_result(
        run,
        harness,
        "ledger-attempt-sqlite-batched",
        {"floor": [100.0], "interlock": [150.0], "interlock-structured": [160.0], **peers},
        requires=dict.fromkeys(peers, "peer"),
    )
    lines = run.summary_lines([run.summarise(result)])
    assert max(len(line) for line in lines) <= 99
    text = "\n".join(lines)
    for n in range(8):
        assert f"a-rather-long-peer-key-{n} {run.times(3.0 + n / 100)}" in text
        assert f"{run.times(1.5 / (3.0 + n / 100))} a-rather-long-peer-key-{n}" in text


def test_ratios_keep_about_three_significant_figures(run: ModuleType) -> None:
    """Small ratios keep their digits (0.042x, not 0.04x) and large ones drop decimals."""
    assert [run.times(r) for r in (0.0416, 0.5, 1.234, 12.34, 276.12, None)] == [
        "0.042x",
        "0.50x",
        "1.23x",
        "12.3x",
        "276x",
        "n/a",
    ]


def test_results_file_has_the_header_summary_and_each_path(
    run: ModuleType, harness: ModuleType
) -> None:
    """The file states date, machine, Python, run kind and peers, then the summary and tables."""
    text = run.render_results(
        [breaker(run, harness)], environment(run), quick=False, only="breaker-closed-call"
    )
    assert text.startswith("# interlock benchmark results\n")
    assert "- Date (UTC): 2026-11-22T10:00:00+00:00\n" in text
    assert "- Machine: Linux-6.1-x86_64-with-glibc2.36; 2 CPUs; Example CPU @ 2.50GHz\n" in text
    assert "- Python: CPython 3.11.7\n" in text
    assert "- Run: full; hot paths: `--only breaker-closed-call`\n" in text
    assert "- Peers and drivers: circuitbreaker not installed, pybreaker 1.4.1\n" in text
    assert (
        "| `breaker-closed-call` | interlock 1.50x<br>interlock-rate 2.00x"
        " | pybreaker 10.0x<br>circuitbreaker not installed | 0.15x pybreaker<br>- "
        "| 2 PASS, 1 FAIL, 1 SKIP |"
    ) in text
    assert "| pybreaker name | 10.00x | 1.00 | 0% | a call |" in text
    assert "| circuitbreaker name | - | - | - | a call [not installed] |" in text
    assert "- GOAL FAIL: b\n" in text
    assert "- info: d\n" in text
    assert text.index("## Summary") < text.index("### breaker-closed-call")


def test_results_file_is_the_same_for_the_same_results(
    run: ModuleType, harness: ModuleType
) -> None:
    """Rendering the same results and environment twice gives the same bytes."""
    first = run.render_results([breaker(run, harness)], environment(run), quick=True, only=None)
    second = run.render_results([breaker(run, harness)], environment(run), quick=True, only=None)
    assert first == second
    assert "- Run: quick" in first


def test_table_cells_escape_the_pipe(run: ModuleType, harness: ModuleType) -> None:
    """A timed description containing "|" does not break the Markdown table."""
    result = make_result(
        run, harness, "p", {"floor": [1.0], "interlock": [2.0]}, timed="stop_a() | stop_b()"
    )
    text = run.render_results([result], environment(run), quick=False, only=None)
    assert "| interlock name | 2.00x | 0.00 | 0% | stop_a() \\| stop_b() |" in text


def test_package_versions_are_sorted_and_name_missing_ones(
    run: ModuleType, harness: ModuleType
) -> None:
    """Required modules map to their distribution and version, sorted; a missing one says so."""
    result = make_result(
        run,
        harness,
        "p",
        {"floor": [1.0], "zz": [1.0], "pt": [1.0]},
        requires={"zz": "no_such_module_for_interlock", "pt": "pytest"},
    )
    assert run.package_versions([result]) == (
        ("no_such_module_for_interlock", "not installed"),
        ("pytest", pytest.__version__),
    )


def test_quick_run_skips_a_heavy_path_and_writes_the_results_file(
    run: ModuleType, harness: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """main --quick skips a heavy path (nothing timed), lists it as skipped, writes both files."""

    def heavy_path() -> Any:
        contender = harness.Contender("floor", "floor", "a call", never)
        return harness.HotPath("heavy-path", "a heavy job", (contender,), heavy=True)

    monkeypatch.setattr(run, "HOT_PATHS", (heavy_path,))
    monkeypatch.setattr(run, "NAMES", ("heavy-path",))
    out, data = tmp_path / "RESULTS.md", tmp_path / "r.json"
    assert run.main(["--quick", "--results", str(out), "--json", str(data)]) == 0
    text = out.read_text(encoding="utf-8")
    assert f"| `heavy-path` | skipped: {run.QUICK_SKIP} | - | - | - |" in text
    assert "- Run: quick" in text
    assert json.loads(data.read_text())["skipped"] == {"heavy-path": run.QUICK_SKIP}


def test_results_into_a_missing_directory_is_a_usage_error(run: ModuleType, tmp_path: Path) -> None:
    """--results naming a file in a directory that does not exist exits with status 2."""
    with pytest.raises(SystemExit) as exited:
        run.main(["--results", str(tmp_path / "missing" / "RESULTS.md")])
    assert exited.value.code == 2
