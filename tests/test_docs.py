"""The docs stay true: every fenced block of README.md and of every page under docs/ is checked.

What each kind of block gets (the first word of the info string decides the kind):

- ``python``: the page's Python blocks run in order, in one namespace per page (a module
  of its own), in a fresh temporary working directory (so a page that creates SQLite files
  leaves nothing behind). They are compiled as if they began with ``from __future__ import
  annotations``, so a reference page's signatures name types without importing them.
  Every Python block runs: ``no-run`` in an info string is refused. A block that shows a
  peer library's code says so with the second word, ```` ```python peer ````: the page's
  test leaves it out (so the page's other blocks must not depend on it), and a second test
  runs the whole page with it when every third-party package it imports (or the names
  written after ``peer``) can be imported, and is skipped naming the missing packages
  otherwise (fails instead when ``INTERLOCK_REQUIRE_PEERS`` is set: CI installs the
  ``bench`` and ``docs`` extras and runs these tests again). Blocks that need a
  PostgreSQL server (on a page about PostgreSQL; elsewhere
  use SQLite) are marked ```` ```python postgres ```` and treated alike: left out of the
  page's test, they run in a second test when ``INTERLOCK_TEST_POSTGRES_DSN`` names a
  server, and read it as ``os.environ["DATABASE_URL"]``, the conninfo of a private schema
  of that server (conftest's ``postgres`` fixture). Without it that test is skipped, or
  fails when ``INTERLOCK_REQUIRE_POSTGRES`` is set, like the other PostgreSQL tests.
- ``pycon``, and any ``python``/``text``/unlabelled block whose first line starts with
  ``>>>``: a doctest (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``) run in the page's
  namespace at its place in the page, so the output it shows is checked.
- ``json``: parses with ``json.loads``; ``jsonl`` (JSON Lines): each line parses.
- ``sh``, ``bash``, ``shell``, ``console``: not run (they would need files, servers and a
  network). Each line is a command (in a ``console`` block only the lines that start with
  ``$``), continued by a trailing backslash or, outside ``console`` blocks, by an indented
  next line; commands are split at ``&&``, ``||``, ``;`` and a `` | `` with spaces around
  it. Every ``python -m interlock ...`` or ``interlock ...`` command must be accepted by
  the real argument parser (``interlock.__main__._parser()``; ``--help`` and ``--version``
  count as accepted). A usage synopsis is checked in two forms: with every ``[optional]``
  group left out, and with every group in (``...`` dropped, the first of ``A|B`` taken),
  so its placeholders (``FILE``, ``PATH``) are parsed as values; an upper-case placeholder
  the parser refuses (``N`` for a number, ``MODE`` for one of a set of choices) stands for
  any valid value and is replaced by ``1`` or the first choice. A ``pip install`` of
  ``.[extra]`` must name extras that pyproject.toml defines. Other commands (pip, pytest,
  ruff, mypy, bash, ...) are left alone.
- ``mermaid``: not rendered; the diagram must start with a known diagram keyword.
- ``text``, ``sql``, ``toml``, ``yaml``, ``http`` and the other kinds in ``NOT_RUN``: not
  executed. In the tutorial each ``text`` block is output the page's code prints, and
  must appear in it verbatim. A block of any other kind, or with no kind, fails: a typo
  such as ``pyhton`` would otherwise silently stop a block from running.
"""

from __future__ import annotations
import __future__

import ast
import contextlib
import doctest
import importlib
import io
import json
import os
import re
import shlex
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import PostgresDatabase

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

PYTHON = {"python", "py", "python3"}
DOCTEST = {"pycon", "doctest"}
JSON = {"json"}
JSON_LINES = {"jsonl", "ndjson"}
SHELL = {"sh", "bash", "shell", "console"}
MERMAID_KEYWORDS = {
    "stateDiagram-v2",
    "stateDiagram",
    "flowchart",
    "graph",
    "sequenceDiagram",
    "classDiagram",
    "erDiagram",
}
NOT_RUN = {"text", "mermaid", "sql", "toml", "yaml", "ini", "http", "diff", "csv", "xml"}
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ANNOTATIONS = __future__.annotations.compiler_flag


FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`\n]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts, its info string split into words, its body."""

    page: Path
    line: int
    words: tuple[str, ...]
    body: str

    @property
    def kind(self) -> str:
        return self.words[0] if self.words else ""

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"

    @property
    def is_doctest(self) -> bool:
        if self.kind in DOCTEST:
            return True
        first = next((line for line in self.body.splitlines() if line.strip()), "")
        return self.kind in {*PYTHON, "text", ""} and first.lstrip().startswith(">>>")


def fenced_blocks(page: Path) -> list[Block]:
    """Every fenced block of a Markdown page, in order (indented fences are dedented)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence = opening["indent"], opening["fence"]
        start = index
        body: list[str] = []
        while index < len(lines):
            closing = FENCE.match(lines[index])
            index += 1
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            line = lines[index - 1]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
        words = tuple(opening["info"].split())
        found.append(Block(page, start, words, "\n".join(body) + "\n"))
    return found


BLOCKS = {page: fenced_blocks(page) for page in PAGES}


def _pages_with(predicate: Callable[[Block], bool]) -> list[Path]:
    return [page for page in PAGES if any(predicate(b) for b in BLOCKS[page])]


# --- Python blocks and doctests ------------------------------------------------------------


def _imported_packages(source: str) -> list[str]:
    """The top-level third-party packages a piece of code imports (not stdlib, not interlock)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module.split(".")[0])
    third_party = [
        n
        for n in names
        if n not in sys.stdlib_module_names and n not in {"interlock", "__future__"}
    ]
    return sorted(set(third_party))


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def _missing_peers(block: Block) -> list[str]:
    """The peer packages of a ``peer`` block that cannot be imported here."""
    named = list(block.words[block.words.index("peer") + 1 :])
    source = _doctest_source(block) if block.is_doctest else block.body
    return [name for name in named or _imported_packages(source) if not _importable(name)]


def _doctest_source(block: Block) -> str:
    examples = doctest.DocTestParser().get_examples(block.body)
    return "".join(example.source for example in examples)


def _run_doctest(block: Block, namespace: dict[str, object]) -> None:
    test = doctest.DocTestParser().get_doctest(
        block.body, namespace, block.where, str(block.page), block.line
    )
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    result = runner.run(test, out=report.write, clear_globs=False)
    assert result.failed == 0, f"{block.where}: doctest failed\n{report.getvalue()}"


def _executable(block: Block) -> bool:
    return block.kind.startswith("python") or block.kind in PYTHON or block.is_doctest


OPTIONAL = ("peer", "postgres")  # blocks that need something a plain checkout may not have


def _run_page(page: Path, monkeypatch: pytest.MonkeyPatch, *, including: str = "") -> str:
    """Run the page's Python blocks and doctests in order, and those marked ``including``."""
    code = [
        b
        for b in BLOCKS[page]
        if _executable(b) and not any(w in b.words for w in OPTIONAL if w != including)
    ]
    refused = [b.where for b in code if any("no-run" in word for word in b.words)]
    assert refused == [], "every Python block must run; fix or remove these"
    out = io.StringIO()
    # A real module, so that dataclasses, pickle and typing can find the page's classes.
    module = types.ModuleType("docs_" + re.sub(r"\W", "_", page.stem))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with contextlib.redirect_stdout(out):
        for block in code:
            if block.is_doctest:
                _run_doctest(block, module.__dict__)
            else:
                compiled = compile(block.body, block.where, "exec", ANNOTATIONS, True)
                exec(compiled, module.__dict__)  # noqa: S102
    return out.getvalue()


def _pages_marking(word: str) -> list[Path]:
    return [p for p in PAGES if any(_executable(b) and word in b.words for b in BLOCKS[p])]


@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if any(_executable(b) for b in BLOCKS[p])],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_python_blocks_run_in_order(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's Python blocks and doctests (but peer and postgres ones) run in order."""
    monkeypatch.chdir(tmp_path)
    printed = _run_page(page, monkeypatch)
    # The tutorial shows what it prints in ```text blocks: each must appear verbatim.
    if page.parent.name == "tutorial":
        printed = "\n".join(line.rstrip() for line in printed.splitlines())
        for shown in BLOCKS[page]:
            if shown.kind == "text" and not shown.is_doctest:
                assert shown.body.strip() in printed, shown.where


@pytest.mark.parametrize("page", _pages_marking("peer"), ids=lambda p: str(p.relative_to(ROOT)))
def test_peer_blocks_run_where_the_peer_is_installed(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its peer packages installed, the page runs again with its ``peer`` blocks in place."""
    missing = {
        name
        for block in BLOCKS[page]
        if _executable(block) and "peer" in block.words
        for name in _missing_peers(block)
    }
    if missing:
        message = f"peer blocks need {', '.join(sorted(missing))} (not installed)"
        if os.environ.get("INTERLOCK_REQUIRE_PEERS"):  # CI, after installing .[bench,docs]
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.chdir(tmp_path)
    _run_page(page, monkeypatch, including="peer")


@pytest.mark.parametrize("page", _pages_marking("postgres"), ids=lambda p: str(p.relative_to(ROOT)))
def test_postgres_blocks_run_against_a_server(
    page: Path, postgres: PostgresDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the test server, the page runs again with its ``postgres`` blocks in place."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", postgres.conninfo)
    _run_page(page, monkeypatch, including="postgres")


# --- JSON, shell, mermaid and the rest -----------------------------------------------------


def json_problems(block: Block) -> list[str]:
    """Why a ```json block (one document) or ```jsonl block (one per line) does not parse."""
    documents = block.body.splitlines() if block.kind in JSON_LINES else [block.body]
    problems = []
    for offset, text in enumerate(documents):
        if text.strip():
            try:
                json.loads(text)
            except ValueError as error:
                problems.append(f"{block.where}+{offset}: {error}")
    return problems


def test_json_blocks_parse() -> None:
    """Every ```json block is one JSON document; every line of a ```jsonl block is one."""
    problems = [
        problem
        for page in PAGES
        for block in BLOCKS[page]
        if block.kind in JSON | JSON_LINES
        for problem in json_problems(block)
    ]
    assert problems == []


def shell_commands(block: Block) -> list[str]:
    """The commands of a shell block, continuation lines joined, comments and output left out."""
    joined: list[str] = []
    continuing = False
    for raw in block.body.splitlines():
        line = raw.strip()
        if continuing:
            joined[-1] += " " + line
        elif block.kind == "console":
            if not line.startswith("$"):
                continue  # output
            joined.append(line[1:].strip())
        elif raw[:1].isspace() and line and joined:
            joined[-1] += " " + line  # a synopsis continued on an indented line
        elif line:
            joined.append(line.removeprefix("$ "))
        else:
            continue
        continuing = joined[-1].endswith("\\")
        if continuing:
            joined[-1] = joined[-1][:-1].rstrip()
    commands = []
    for line in joined:
        simple: list[str] = []
        for word in [*shlex.split(line, comments=True), "&&"]:
            separator = word in {"&&", "||", ";", "|"} or word.endswith(";")
            if word.endswith(";") and word != ";":
                simple.append(word[:-1])
            elif not separator:
                simple.append(word)
            if separator and simple:
                commands.append(shlex.join(simple))
                simple = []
    return commands


def interlock_arguments(command: str) -> list[str] | None:
    """The arguments of an ``interlock`` command line, or None for any other command."""
    words = shlex.split(command)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        words = words[1:]  # VAR=value prefixes
    if words[:1] == ["interlock"]:
        return words[1:]
    python = len(words) >= 3 and re.fullmatch(r"python[0-9.]*", Path(words[0]).name)
    if python and words[1:3] == ["-m", "interlock"]:
        return words[3:]
    return None


def synopsis_forms(arguments: list[str]) -> list[list[str]]:
    """A usage synopsis as concrete argument lists: optional groups all out, then all in."""
    if not any(re.search(r"^\[|\]$|\S\|\S|^\.\.\.$", word) for word in arguments):
        return [arguments]
    forms = []
    for keep in (False, True):
        depth = 0
        form = []
        for word in arguments:
            opened = len(word) - len(word.lstrip("["))
            depth += opened
            bare = word[opened:]
            closed = len(bare) - len(bare.rstrip("]"))
            bare = bare[: len(bare) - closed]
            if (keep or depth == 0) and bare not in ("", "..."):
                form.append(bare.split("|")[0] if not bare.startswith("|") else bare)
            depth -= closed
        forms.append(form)
    return forms


def _parse(arguments: list[str]) -> str | None:
    """None when the real parser accepts the arguments, else what it printed.

    An upper-case placeholder (``N``, ``MODE``) that the parser refuses as a value stands
    for any valid one: it is replaced by the first of the option's choices, or by ``1``.
    """
    from interlock.__main__ import _parser  # noqa: PLC0415 - the module under test

    arguments = list(arguments)
    for _ in range(len(arguments) + 1):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                _parser().parse_args(arguments)
            except SystemExit as stop:
                if stop.code not in (0, None):
                    message = err.getvalue().strip() or f"exit {stop.code}"
                else:
                    return None
            else:
                return None
        refused = re.search(r"argument ([^:\s]+): .*?'([A-Z][A-Z0-9_]*)'", message)
        if refused is None:
            return message
        names, placeholder = refused[1].split("/"), refused[2]
        spots = [
            i + 1
            for i, word in enumerate(arguments[:-1])
            if word in names and arguments[i + 1] == placeholder
        ]
        if not spots:
            return message
        choices = re.search(r"choose from (.+?)\)?$", message, re.MULTILINE)
        value = choices[1].split(",")[0].strip(" '\"") if choices else "1"
        arguments[spots[0]] = value
    return message


def _extras() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*=", section, re.MULTILINE))


@pytest.mark.parametrize("page", _pages_with(lambda b: b.kind in SHELL), ids=lambda p: p.name)
def test_shell_blocks_name_real_commands(page: Path) -> None:
    """Every interlock command line of the page parses; every pip extra it installs exists."""
    problems = []
    for block in BLOCKS[page]:
        if block.kind not in SHELL:
            continue
        for command in shell_commands(block):
            arguments = interlock_arguments(command)
            if arguments is not None:
                for form in synopsis_forms(arguments):
                    error = _parse(form)
                    if error is not None:
                        problems.append(f"{block.where}: {shlex.join(form)}\n  {error}")
            for extra in re.findall(r"\.\[([\w,.-]+)\]", command):
                unknown = set(extra.split(",")) - _extras()
                if "pip" in command and unknown:
                    problems.append(f"{block.where}: unknown extra {sorted(unknown)}")
    assert problems == [], "\n".join(problems)


def test_every_block_has_a_known_kind() -> None:
    """Every fenced block says what it is, and the kind is one this module checks or skips."""
    known = PYTHON | DOCTEST | JSON | JSON_LINES | SHELL | NOT_RUN
    unknown = [
        f"{b.where}: {b.kind or '(no info string)'}"
        for page in PAGES
        for b in BLOCKS[page]
        if b.kind not in known and not b.is_doctest and not _executable(b)
    ]
    assert unknown == []


def test_mermaid_blocks_name_a_diagram() -> None:
    """Every ```mermaid block starts with a known diagram keyword."""
    bad = []
    for page in PAGES:
        for block in BLOCKS[page]:
            if block.kind != "mermaid":
                continue
            lines = [line.strip() for line in block.body.splitlines()]
            first = next((line for line in lines if line and not line.startswith("%%")), "")
            if first.split(" ")[0] not in MERMAID_KEYWORDS:
                bad.append(f"{block.where}: {first!r}")
    assert bad == []


def test_the_block_checks_can_fail(tmp_path: Path) -> None:
    """Fences keep their info words; wrong doctest output, bad JSON and bad commands are caught."""
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "```python peer pybreaker",
                "import pybreaker",
                "```",
                "- a list item:",
                "",
                "  ```sh",
                "  interlock cdc parse \\",
                "      --strict -",
                "  ```",
                "```pycon",
                ">>> 1 + 1",
                "3",
                "```",
                "```jsonl",
                '{"a": 1}',
                '{"b": 2}',
                "```",
                "```json",
                '{"a": 1}',
                '{"b": 2}',
                "```",
            ]
        ),
        encoding="utf-8",
    )
    python, shell, pycon, lines, json_block = fenced_blocks(page)
    assert (python.words, python.body) == (("python", "peer", "pybreaker"), "import pybreaker\n")
    assert _missing_peers(python) == ([] if _importable("pybreaker") else ["pybreaker"])
    assert shell_commands(shell) == ["interlock cdc parse --strict -"]
    console = Block(page, 1, ("console",), "$ cd x; interlock --version | cat\n  output\n")
    assert shell_commands(console) == ["cd x", "interlock --version", "cat"]
    assert pycon.is_doctest
    with pytest.raises(AssertionError, match="doctest failed"):
        _run_doctest(pycon, {})
    assert json_problems(lines) == []
    assert len(json_problems(json_block)) == 1  # two documents in a ```json block
    assert synopsis_forms(["ledger", "report", "--db", "PATH", "[--top", "N]", "[--json]"]) == [
        ["ledger", "report", "--db", "PATH"],
        ["ledger", "report", "--db", "PATH", "--top", "N", "--json"],
    ]
    assert _parse(["cdc", "parse", "--flatten", "--delete-handling", "MODE", "FILE"]) is None
    assert "--no-such-option" in str(_parse(["cdc", "parse", "--no-such-option", "-"]))


# --- Structure ----------------------------------------------------------------------------


def test_the_docs_tree_is_complete() -> None:
    """The Diátaxis folders exist, and each available module has all three pages."""
    docs = ROOT / "docs"
    for folder in ("tutorial", "how-to", "reference", "explanation", "adr"):
        assert any((docs / folder).glob("*.md")), folder
    modules = sorted(
        p.stem
        for p in (ROOT / "src" / "interlock").glob("*.py")
        if not p.stem.startswith(("_", "cli"))
    )
    assert {"event_envelope", "sync_boundary", "cdc_event"} <= set(modules)
    for module in modules:
        assert (docs / "reference" / f"{module}.md").is_file()
        explanation = (docs / "explanation" / f"{module}.md").read_text(encoding="utf-8")
        head = explanation[:1500].lower()
        assert "use it when" in head or "use the" in head, f"{module}: verdict first"
        assert "mermaid" in explanation, f"{module}: a diagram of its decisions"


def test_every_public_name_is_in_its_reference_page() -> None:
    """Each name in a pattern module's ``__all__`` appears in its reference page."""
    missing = []
    for path in sorted((ROOT / "src" / "interlock").glob("*.py")):
        if path.stem.startswith(("_", "cli")):
            continue
        module = importlib.import_module(f"interlock.{path.stem}")
        page = (ROOT / "docs" / "reference" / f"{path.stem}.md").read_text(encoding="utf-8")
        missing += [
            f"{path.stem}.{name}"
            for name in module.__all__
            if not re.search(rf"\b{re.escape(name)}\b", page)
        ]
    assert not missing, missing


def test_relative_links_resolve() -> None:
    """Every relative Markdown link in README and docs points at a file that exists."""
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
