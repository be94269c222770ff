"""The docs stay true: their Python blocks run, and the output they show is what prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PAGES = sorted(
    [
        ROOT / "README.md",
        *(ROOT / "docs" / "tutorial").glob("*.md"),
        *(ROOT / "docs" / "how-to").glob("*.md"),
    ]
)


def blocks(page: Path, language: str) -> list[str]:
    """The fenced blocks of one language, in order."""
    return [
        body for lang, body in BLOCK.findall(page.read_text(encoding="utf-8")) if lang == language
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_in_order(page: Path) -> None:
    """Every ```python block of the page runs, in order, in one namespace."""
    code = blocks(page, "python")
    if not code:
        pytest.skip("no Python blocks")
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for index, body in enumerate(code):
            exec(compile(body, f"{page.name}[{index}]", "exec"), namespace)  # noqa: S102
    # The tutorial shows what it prints in ```text blocks: each must appear verbatim.
    if page.parent.name == "tutorial":
        printed = "\n".join(line.rstrip() for line in out.getvalue().splitlines())
        for shown in blocks(page, "text"):
            assert shown.strip() in printed, shown


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


def test_relative_links_resolve() -> None:
    """Every relative Markdown link in README and docs points at a file that exists."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
