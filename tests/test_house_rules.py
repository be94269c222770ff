"""The house rules of CONVENTIONS.md, enforced: independence, copyability, exact exports, docs."""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import interlock

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "interlock"
ENTRY_POINTS = {"__init__", "__main__", "cli"}
# Command-line modules (cli_*) and private helpers of the command line (a leading
# underscore, such as _demo_world) are consumers of the patterns, not pattern modules.
PATTERN_MODULES = sorted(
    p.stem
    for p in PACKAGE.glob("*.py")
    if p.stem not in ENTRY_POINTS and not p.stem.startswith(("cli", "_"))
)
DOCSTRING_SECTIONS = ("Verdict:", "Prevents:", "References:", "Exceptions:", "Example:")


def _isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def _tree(module: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def test_there_are_pattern_modules() -> None:
    """The parametrised rules below have modules to check (an empty list would pass vacuously)."""
    assert {"event_envelope", "sync_boundary"} <= set(PATTERN_MODULES)


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_module_imports_only_the_standard_library(module: str) -> None:
    """A pattern module imports only stdlib modules and never a sibling (AST check)."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    offenders = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.level:
            offenders.append(f"relative import at line {node.lineno}")
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        offenders += [n for n in names if n.split(".")[0] not in stdlib]
    assert offenders == []


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_module_copied_alone_imports_and_passes_its_doctests(module: str, tmp_path: Path) -> None:
    """The file copied ALONE to an empty directory imports in a fresh interpreter; doctests pass."""
    shutil.copy(PACKAGE / f"{module}.py", tmp_path / f"{module}.py")
    script = textwrap.dedent(
        f"""
        import doctest, sys
        sys.path.insert(0, {str(tmp_path)!r})
        import {module} as m
        assert m.__file__.startswith({str(tmp_path)!r}), m.__file__
        assert not any(name == "interlock" or name.startswith("interlock.") for name in sys.modules)
        result = doctest.testmod(m)
        print(result.attempted, result.failed)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script],  # -I: no PYTHONPATH, no user site, no cwd
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    attempted, failed = map(int, proc.stdout.split()[-2:])
    assert attempted > 0
    assert failed == 0, proc.stdout


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_all_is_sorted_and_equals_the_public_names(module: str) -> None:
    """__all__ is sorted and lists exactly the public names the module defines."""
    mod = importlib.import_module(f"interlock.{module}")
    exported = list(mod.__all__)
    assert exported == sorted(exported, key=_isort_key)
    tree = _tree(module)
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    # TYPE_CHECKING = False is the import-free spelling of typing.TYPE_CHECKING, not API.
    public = {n for n in defined if not n.startswith("_")} - {"TYPE_CHECKING"}
    assert set(exported) == public


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_module_header_and_docstring_follow_the_house_layout(module: str) -> None:
    """SPDX header; docstring with verdict, failure modes, references, exceptions, doctest."""
    source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
    assert source.startswith("# SPDX-License-Identifier: MIT\n")
    doc = ast.get_docstring(_tree(module)) or ""
    for heading in DOCSTRING_SECTIONS:
        assert f"\n{heading}\n" in doc, f"{module}: missing {heading}"
    assert "Use it when" in doc
    assert "Do not use it when" in doc
    assert ">>> " in doc
    assert "from __future__ import annotations" in source


@pytest.mark.parametrize("module", PATTERN_MODULES)
def test_importing_a_module_does_not_import_asyncio(
    module: str, fresh_python: Callable[[str], str]
) -> None:
    """Importing a sync-first module leaves asyncio unloaded, so imports stay cheap."""
    code = f"import sys, interlock.{module}; print('asyncio' in sys.modules)"
    assert fresh_python(code) == "False"


def test_importing_the_package_imports_no_pattern_module(
    fresh_python: Callable[[str], str],
) -> None:
    """`import interlock` loads only the package itself, never a pattern module."""
    code = "import sys, interlock; print(sorted(m for m in sys.modules if 'interlock' in m))"
    assert fresh_python(code) == "['interlock']"


def test_package_docstring_lists_every_pattern_module() -> None:
    """The package docstring names every pattern module."""
    for module in PATTERN_MODULES:
        assert f"interlock.{module}" in (interlock.__doc__ or "")


def test_version_matches_pyproject() -> None:
    """`interlock.__version__` is the version pyproject.toml declares."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
    assert match is not None
    assert interlock.__version__ == match.group(1)
