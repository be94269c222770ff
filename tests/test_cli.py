"""The command line: `python -m interlock demo`, help, version and exit codes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import interlock
from interlock.__main__ import main
from interlock.cli_demo import run_demo

SRC = Path(__file__).resolve().parents[1] / "src"


def test_demo_runs_in_a_fresh_interpreter() -> None:
    """`python -m interlock demo` exits 0 and tells both stories and the summary."""
    proc = subprocess.run(
        [sys.executable, "-m", "interlock", "demo"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1. An order event through its delivery lifecycle" in out
    assert "ce-specversion: 1.0" in out
    assert "A request without ce-specversion is refused" in out
    assert "2. A CRM/ERP contact sync, planned field by field" in out
    assert "What each pattern prevented" in out
    assert proc.stderr == ""


def test_demo_is_deterministic() -> None:
    """Two runs print exactly the same report (injected clocks, no randomness)."""
    first, second = io.StringIO(), io.StringIO()
    run_demo(first)
    run_demo(second)
    assert first.getvalue() == second.getvalue()


def test_demo_shows_the_lifecycle_and_the_plan() -> None:
    """The report has the retry, the refused late failure, the plan rows and the echo check."""
    out = io.StringIO()
    run_demo(out)
    text = out.getvalue()
    prose = " ".join(text.split())  # wrapped paragraphs, read as one line
    assert "Attempt 1 failed; the retry policy schedules attempt 2 in 30 s." in text
    assert "cannot move from processed to retrying" in prose
    assert "ERP       EmailAddress   grace@new.example" in text
    assert "ERP       PhoneNo        15550199" in text
    assert "CRM       credit_limit   5000" in text
    assert "review    payment_terms" in text
    assert "planning again writes 0 fields" in prose
    assert "the CRM gets nothing" in prose


def test_main_demo_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """main(["demo"]) prints the report and returns 0."""
    assert main(["demo"]) == 0
    assert "What each pattern prevented" in capsys.readouterr().out


def test_no_command_prints_help_and_returns_two(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a command, usage goes to stderr and the exit code is 2."""
    assert main([]) == 2
    assert "usage: interlock" in capsys.readouterr().err


def test_unknown_command_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command is an argument error (exit 2) explained on stderr."""
    with pytest.raises(SystemExit) as info:
        main(["bogus"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the package version."""
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"interlock {interlock.__version__}"


def test_broken_pipe_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piping the demo into a reader that closes early (`| head`) still exits 0."""

    def closed(_out: object) -> None:
        raise BrokenPipeError

    monkeypatch.setattr("interlock.cli_demo.run_demo", closed)
    assert main(["demo"]) == 0
