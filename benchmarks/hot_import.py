# SPDX-License-Identifier: MIT
# SPDX-FileCopyrightText: 2026 interlock contributors
"""Import cost: each pattern module in a fresh interpreter, against the peers."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness import (
    CE,
    IAP,
    SRC,
    Call,
    Contender,
    HotPath,
    PathResult,
    Verdict,
    self_timed,
)

if TYPE_CHECKING:
    from collections.abc import Callable

_IMPORT_LINE = re.compile(r"import time:\s*\d+\s*\|\s*(\d+)\s*\| (\S.*)$")
_SELF_LINE = re.compile(r"import time:\s*(\d+)\s*\|\s*\d+\s*\|\s*(\S+)$")
_MARK = "--benchmark-starts-here--"


def fresh_env(cache_dir: str) -> dict[str, str]:
    """The environment for child interpreters: this checkout first, bytecode cached.

    Bytecode goes to a private cache (``PYTHONPYCACHEPREFIX``) so an installed-like,
    compiled import is measured even under ``PYTHONDONTWRITEBYTECODE``, and the
    repository is not written to.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    if (SRC / "interlock").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return env


def run_child(code: str, env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (this one's executable); raise with its last words."""
    child = subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [sys.executable, *options, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"child interpreter exited with {child.returncode}: {last}")
    return child


def import_ns(statement: str, env: dict[str, str]) -> int:
    """Cumulative ``-X importtime`` of one import statement in a fresh interpreter."""
    code = f"import sys; sys.stderr.write({_MARK!r} + '\\n'); sys.stderr.flush(); {statement}"
    stderr = run_child(code, env, "-X", "importtime").stderr
    after = stderr.split(_MARK, 1)[1]
    top_level = (_IMPORT_LINE.match(line) for line in after.splitlines())
    return sum(int(m.group(1)) for m in top_level if m) * 1000  # microseconds -> ns


def own_import_ns(statement: str, env: dict[str, str], package: str) -> int:
    """Self ``-X importtime`` of the modules of ``package`` alone (not what they import)."""
    code = f"import sys; sys.stderr.write({_MARK!r} + '\\n'); sys.stderr.flush(); {statement}"
    after = run_child(code, env, "-X", "importtime").stderr.split(_MARK, 1)[1]
    lines = (_SELF_LINE.match(line) for line in after.splitlines())
    own = (int(m.group(1)) for m in lines if m and m.group(2).split(".")[0] == package)
    return sum(own) * 1000  # microseconds -> ns


def stdlib_imports_of(module: str) -> list[str]:
    """The absolute imports at the top of a module's source, read without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"cannot find the source of {module}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return sorted({n for n in names if n != "__future__"})


def import_cost() -> HotPath:
    cache = tempfile.TemporaryDirectory(prefix="interlock-bench-pyc-")
    env = fresh_env(cache.name)
    statements = {
        "interlock": "import interlock.event_envelope",
        "cloudevents": "import cloudevents.core.v1.event, cloudevents.core.formats.json, "
        "cloudevents.core.bindings.http",
        "iap": "import integration_automation_patterns.event_envelope",
    }

    def importing(key: str) -> Callable[[], Call]:
        return lambda: lambda: import_ns(statements[key], env)

    def floor() -> Call:
        statement = "import " + ", ".join(stdlib_imports_of("interlock.event_envelope"))
        return lambda: import_ns(statement, env)

    def goals(result: PathResult) -> list[Verdict]:
        try:
            return import_goals(result, statements, env)
        finally:
            cache.cleanup()  # the private bytecode cache lives as long as this hot path

    return HotPath(
        name="import-cost",
        summary="import the module in a fresh interpreter (cumulative -X importtime, "
        "bytecode already cached), one child process per contender per round",
        contenders=(
            Contender("floor", "floor", "the stdlib modules event_envelope imports", floor),
            Contender(
                "interlock", "interlock", "import interlock.event_envelope", importing("interlock")
            ),
            Contender(
                "cloudevents",
                CE,
                "import core event, JSON format, HTTP binding",
                importing("cloudevents"),
                requires="cloudevents",
            ),
            Contender(
                "iap",
                IAP,
                "import its event_envelope (loads the whole package)",
                importing("iap"),
                requires="integration_automation_patterns",
            ),
        ),
        goals=goals,
        full_rounds=11,
        quick_rounds=5,
        measure=self_timed,
        unit="ms/import",
    )


def import_goals(
    result: PathResult, statements: dict[str, str], env: dict[str, str]
) -> list[Verdict]:
    verdicts = []
    interlock, floor = result.ok("interlock"), result.ok("floor")
    goal = "interlock's own import cost (self time of its modules, -X importtime) < 10 ms"
    if interlock is None or floor is None:
        verdicts.append(Verdict("SKIP", f"{goal}: not measured"))
    else:
        # The difference of two ~50 ms totals is too noisy for a 10 ms line; the self time
        # of interlock's own modules, read from the same kind of child, is not.
        own = statistics.median(
            own_import_ns(statements["interlock"], env, "interlock") for _ in range(result.rounds)
        )
        verdicts.append(Verdict("PASS" if own < 10e6 else "FAIL", f"{goal}: {own / 1e6:.1f} ms"))
        verdicts.append(
            Verdict(
                "info",
                f"the whole import in a fresh interpreter: {interlock.median_ns / 1e6:.1f} ms, "
                f"of which the stdlib modules it needs (dataclasses, re, datetime, ...): "
                f"{floor.median_ns / 1e6:.1f} ms",
            )
        )
    verdicts.extend(every_module_goals(env, rounds=min(result.rounds, 5)))
    for key in ("interlock", "cloudevents", "iap"):
        if key != "interlock" and result.ok(key) is None:
            continue
        code = f"import sys; {statements[key]}; print('asyncio' in sys.modules)"
        try:
            loaded = run_child(code, env).stdout.strip() == "True"
        except Exception as exc:
            verdicts.append(Verdict("SKIP", f"asyncio check for {key} failed: {exc}"))
            continue
        if key == "interlock":
            verdicts.append(
                Verdict("FAIL" if loaded else "PASS", "asyncio not in sys.modules after the import")
            )
        else:
            name = result.outcomes[key].name
            verdicts.append(Verdict("info", f"{name} imports asyncio: {'yes' if loaded else 'no'}"))
    return verdicts


def pattern_modules() -> list[str]:
    """The pattern modules of the checkout (entry points and CLI modules excluded)."""
    package = SRC / "interlock"
    return sorted(p.stem for p in package.glob("*.py") if not p.stem.startswith(("_", "cli")))


def every_module_goals(env: dict[str, str], rounds: int) -> list[Verdict]:
    """Each pattern module imported alone: its own self time, and no asyncio."""
    verdicts = []
    for module in pattern_modules():
        statement = f"import interlock.{module}"
        try:
            own = statistics.median(
                own_import_ns(statement, env, "interlock") for _ in range(rounds)
            )
            code = f"import sys; {statement}; print('asyncio' in sys.modules)"
            loaded = run_child(code, env).stdout.strip() == "True"
        except Exception as exc:
            verdicts.append(Verdict("SKIP", f"interlock.{module}: import failed: {exc}"))
            continue
        ok = own < 10e6 and not loaded
        verdicts.append(
            Verdict(
                "PASS" if ok else "FAIL",
                f"import interlock.{module}: own cost < 10 ms and no asyncio: "
                f"{own / 1e6:.1f} ms, asyncio {'loaded' if loaded else 'not loaded'}",
            )
        )
    return verdicts


HOT_PATHS: tuple[Callable[[], HotPath], ...] = (import_cost,)
